//! The policy engine: a decision table over integrator requests and the gateway's own operations.

use serde_json::{Value, json};

use crate::support::{PASSWORD, TestApp};

const DOCS_SCHEMA: &str = r#"
namespace Docs {
  entity Folder in [Folder];
  entity Document in [Folder] { owner: Portcullis::User, locked: Bool };
  action "read", "edit", "delete" appliesTo {
    principal: Portcullis::User,
    resource: Document,
    context: { mfa: Bool }
  };
}
"#;

const AUTHORIZE: &str = "query($input: AuthorizeInput!) { authorize(input: $input) {
    allowed decision determiningPolicies { id name } errors policyVersion } }";

/// The documents the integrator passes along with each request.
fn documents(alice: &str, carol: &str) -> Value {
    json!([
        { "uid": { "type": "Docs::Folder", "id": "f1" }, "attrs": {}, "parents": [] },
        { "uid": { "type": "Docs::Folder", "id": "f1a" }, "attrs": {}, "parents": [{ "type": "Docs::Folder", "id": "f1" }] },
        { "uid": { "type": "Docs::Folder", "id": "f2" }, "attrs": {}, "parents": [] },
        doc("d1", "f1", alice, false),
        doc("d2", "f1", alice, true),
        doc("d3", "f2", alice, false),
        doc("d4", "f2", carol, false),
        doc("d5", "f1a", alice, false),
    ])
}

fn doc(id: &str, folder: &str, owner: &str, locked: bool) -> Value {
    json!({
        "uid": { "type": "Docs::Document", "id": id },
        "attrs": { "owner": { "__entity": { "type": "Portcullis::User", "id": owner } }, "locked": locked },
        "parents": [{ "type": "Docs::Folder", "id": folder }]
    })
}

struct World {
    admin: String,
    alice: (String, String),
    bob: (String, String),
    carol: (String, String),
    entities: Value,
    disabled_policy: String,
    viewer_role: String,
    template: String,
}

async fn gql_ok(t: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    t.gql(Some(token), query, variables).await.data().clone()
}

async fn create_policy(t: &TestApp, admin: &str, name: &str, source: &str, enabled: bool) -> String {
    let data = gql_ok(
        t,
        admin,
        "mutation($input: CreatePolicyInput!) { createPolicy(input: $input) { policy { id kind effect version } } }",
        json!({ "input": { "name": name, "source": source, "enabled": enabled } }),
    )
    .await;
    data["createPolicy"]["policy"]["id"].as_str().unwrap().to_owned()
}

async fn create_role(t: &TestApp, admin: &str, key: &str, permissions: Value, org: Option<&str>) -> String {
    let data = gql_ok(
        t,
        admin,
        "mutation($input: CreateRoleInput!) { createRole(input: $input) { role { id } } }",
        json!({ "input": { "key": key, "name": key, "permissions": permissions, "organizationId": org } }),
    )
    .await;
    data["createRole"]["role"]["id"].as_str().unwrap().to_owned()
}

async fn assign(t: &TestApp, admin: &str, user: &str, role: &str, org: Option<&str>) -> Value {
    t.gql(
        Some(admin),
        "mutation($input: RoleAssignmentInput!) { assignRole(input: $input) { roleAssignment { id } } }",
        json!({ "input": { "userId": user, "roleId": role, "organizationId": org } }),
    )
    .await
    .0
}

async fn world(t: &TestApp) -> World {
    let admin = t.admin_token().await;
    let put = t
        .gql(
            Some(&admin),
            "mutation($input: PutCedarSchemaInput!) { putCedarSchema(input: $input) { cedarSchema { namespace } } }",
            json!({ "input": { "namespace": "Docs", "source": DOCS_SCHEMA } }),
        )
        .await;
    assert_eq!(put.data()["putCedarSchema"]["cedarSchema"]["namespace"], "Docs");
    let alice = t.user_with_token(&admin, "alice@example.com").await;
    let bob = t.user_with_token(&admin, "bob@example.com").await;
    let carol = t.user_with_token(&admin, "carol@example.com").await;

    let editor = create_role(t, &admin, "editor", json!([]), None).await;
    let viewer = create_role(t, &admin, "viewer", json!([]), None).await;
    assign(t, &admin, &alice.0, &editor, None).await;
    assign(t, &admin, &bob.0, &viewer, None).await;

    create_policy(
        t,
        &admin,
        "editors work in f1",
        &format!(
            r#"permit (principal in Portcullis::Role::"{editor}", action in [Docs::Action::"read", Docs::Action::"edit"], resource in Docs::Folder::"f1");"#
        ),
        true,
    )
    .await;
    create_policy(
        t,
        &admin,
        "locked documents are read-only",
        r#"forbid (principal, action == Docs::Action::"edit", resource) when { resource.locked };"#,
        true,
    )
    .await;
    let template = create_policy(
        t,
        &admin,
        "holders read everything",
        r#"permit (principal in ?principal, action == Docs::Action::"read", resource);"#,
        true,
    )
    .await;
    let attached = t
        .gql(
            Some(&admin),
            "mutation($r: ID!, $p: ID!) { attachPolicy(input: {roleId: $r, policyId: $p}) { role { policies { id } } } }",
            json!({ "r": viewer, "p": template }),
        )
        .await;
    assert_eq!(
        attached.data()["attachPolicy"]["role"]["policies"][0]["id"],
        template.as_str()
    );
    create_policy(
        t,
        &admin,
        "deleting needs MFA",
        r#"forbid (principal, action == Docs::Action::"delete", resource) unless { context.mfa };"#,
        true,
    )
    .await;
    create_policy(
        t,
        &admin,
        "owners delete",
        r#"permit (principal, action == Docs::Action::"delete", resource) when { resource.owner == principal };"#,
        true,
    )
    .await;
    let disabled_policy = create_policy(
        t,
        &admin,
        "everyone edits everything",
        r#"permit (principal, action == Docs::Action::"edit", resource);"#,
        false,
    )
    .await;
    let entities = documents(&alice.0, &carol.0);
    World {
        admin,
        alice,
        bob,
        carol,
        entities,
        disabled_policy,
        viewer_role: viewer,
        template,
    }
}

/// Asks as `token` (for itself) and returns (allowed, names of determining policies).
async fn ask(
    t: &TestApp,
    token: &str,
    w: &World,
    action: &str,
    document: &str,
    mfa: bool,
) -> (bool, Vec<String>) {
    let response = t
        .gql(
            Some(token),
            AUTHORIZE,
            json!({ "input": {
                "action": { "type": "Docs::Action", "id": action },
                "resource": { "type": "Docs::Document", "id": document },
                "context": { "mfa": mfa },
                "entities": w.entities,
            } }),
        )
        .await;
    let decision = &response.data()["authorize"];
    assert!(decision["errors"].as_array().unwrap().is_empty(), "{decision:#}");
    assert_eq!(
        decision["decision"],
        if decision["allowed"] == true {
            "ALLOW"
        } else {
            "DENY"
        }
    );
    let names = decision["determiningPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    (decision["allowed"] == true, names)
}

/// (case, caller's token, action, document, context.mfa, expected decision, a policy expected to decide)
type Case<'a> = (&'a str, &'a String, &'a str, &'a str, bool, bool, Option<&'a str>);

async fn integrator_decision_table(t: TestApp) {
    let w = world(&t).await;
    let (alice, bob, carol) = (&w.alice.1, &w.bob.1, &w.carol.1);
    // (who, action, document, mfa, expected, a determining policy expected by name)
    let table: Vec<Case> = vec![
        (
            "role permit",
            alice,
            "read",
            "d1",
            false,
            true,
            Some("editors work in f1"),
        ),
        (
            "role permit, second action",
            alice,
            "edit",
            "d1",
            false,
            true,
            Some("editors work in f1"),
        ),
        (
            "forbid overrides permit",
            alice,
            "edit",
            "d2",
            false,
            false,
            Some("locked documents are read-only"),
        ),
        (
            "permit still reads a locked doc",
            alice,
            "read",
            "d2",
            false,
            true,
            None,
        ),
        (
            "outside the folder: default deny",
            alice,
            "read",
            "d3",
            false,
            false,
            None,
        ),
        (
            "parents are transitive",
            alice,
            "read",
            "d5",
            false,
            true,
            Some("editors work in f1"),
        ),
        (
            "template linked through a role",
            bob,
            "read",
            "d3",
            false,
            true,
            Some("holders read everything"),
        ),
        (
            "template grants only its action",
            bob,
            "edit",
            "d1",
            false,
            false,
            None,
        ),
        ("no role: default deny", carol, "read", "d1", false, false, None),
        (
            "owner deletes with MFA",
            carol,
            "delete",
            "d4",
            true,
            true,
            Some("owners delete"),
        ),
        (
            "context condition forbids without MFA",
            carol,
            "delete",
            "d4",
            false,
            false,
            Some("deleting needs MFA"),
        ),
        ("not the owner", alice, "delete", "d4", true, false, None),
        (
            "disabled policy is not in force",
            carol,
            "edit",
            "d3",
            false,
            false,
            None,
        ),
    ];
    for (case, token, action, document, mfa, expected, policy) in table {
        let (allowed, names) = ask(&t, token, &w, action, document, mfa).await;
        assert_eq!(allowed, expected, "{case}: {names:?}");
        if let Some(policy) = policy {
            assert!(names.iter().any(|n| n == policy), "{case}: determining {names:?}");
        }
        if !expected && policy.is_none() {
            assert!(
                names.is_empty(),
                "{case}: a default deny names no policy: {names:?}"
            );
        }
    }

    // Enabling the disabled policy brings it into force; the version moves.
    let before = t
        .gql(Some(carol), AUTHORIZE, json!({ "input": { "action": { "type": "Docs::Action", "id": "edit" },
            "resource": { "type": "Docs::Document", "id": "d3" }, "context": { "mfa": false }, "entities": w.entities } }))
        .await;
    let version = before.data()["authorize"]["policyVersion"].as_i64().unwrap();
    let updated = gql_ok(
        &t,
        &w.admin,
        "mutation($id: ID!) { updatePolicy(input: {id: $id, enabled: true}) { policy { version enabled } } }",
        json!({ "id": w.disabled_policy }),
    )
    .await;
    assert_eq!(updated["updatePolicy"]["policy"]["version"], 2);
    let (allowed, _) = ask(&t, carol, &w, "edit", "d3", false).await;
    assert!(allowed, "enabled policy permits");
    let (allowed, _) = ask(&t, alice, &w, "edit", "d2", false).await;
    assert!(!allowed, "a forbid still overrides the new permit");
    let after = t
        .gql(Some(carol), AUTHORIZE, json!({ "input": { "action": { "type": "Docs::Action", "id": "edit" },
            "resource": { "type": "Docs::Document", "id": "d3" }, "context": { "mfa": false }, "entities": w.entities } }))
        .await;
    assert!(after.data()["authorize"]["policyVersion"].as_i64().unwrap() > version);

    // Detaching the template takes the permission away from the role's holders.
    gql_ok(
        &t,
        &w.admin,
        "mutation($r: ID!, $p: ID!) { detachPolicy(input: {roleId: $r, policyId: $p}) { role { id } } }",
        json!({ "r": w.viewer_role, "p": w.template }),
    )
    .await;
    let (allowed, _) = ask(&t, bob, &w, "read", "d3", false).await;
    assert!(!allowed, "template detached");
}

async fn authorize_rules_for_callers(t: TestApp) {
    let w = world(&t).await;
    let question = |principal: Option<&str>| {
        json!({ "input": {
            "principal": principal.map(|id| json!({ "type": "Portcullis::User", "id": id })),
            "action": { "type": "Docs::Action", "id": "read" },
            "resource": { "type": "Docs::Document", "id": "d1" },
            "context": { "mfa": false },
            "entities": w.entities,
        } })
    };
    let for_alice = t.gql(Some(&w.bob.1), AUTHORIZE, question(Some(&w.alice.0))).await;
    assert_eq!(
        for_alice.code(),
        "FORBIDDEN",
        "asking for someone else needs authorize.any"
    );
    let by_admin = t.gql(Some(&w.admin), AUTHORIZE, question(Some(&w.alice.0))).await;
    assert_eq!(
        by_admin.data()["authorize"]["allowed"],
        true,
        "the admin asks for alice"
    );
    let by_admin_for_carol = t.gql(Some(&w.admin), AUTHORIZE, question(Some(&w.carol.0))).await;
    assert_eq!(by_admin_for_carol.data()["authorize"]["allowed"], false);
    let anonymous = t.gql(None, AUTHORIZE, question(None)).await;
    assert_eq!(anonymous.code(), "UNAUTHENTICATED");

    let forged = t
        .gql(
            Some(&w.bob.1),
            AUTHORIZE,
            json!({ "input": {
                "action": { "type": "Docs::Action", "id": "read" },
                "resource": { "type": "Docs::Document", "id": "d1" },
                "context": { "mfa": false },
                "entities": [{ "uid": { "type": "Portcullis::User", "id": w.bob.0 }, "attrs": {}, "parents": [] }],
            } }),
        )
        .await;
    assert_eq!(
        forged.code(),
        "BAD_USER_INPUT",
        "callers cannot supply gateway entities (and so roles)"
    );
    assert_eq!(forged.field(), "entities");

    let batch = t
        .gql(
            Some(&w.alice.1),
            "query($inputs: [AuthorizeInput!]!) { authorizeBatch(inputs: $inputs) { allowed } }",
            json!({ "inputs": [
                { "action": { "type": "Docs::Action", "id": "read" }, "resource": { "type": "Docs::Document", "id": "d1" }, "context": { "mfa": false }, "entities": w.entities },
                { "action": { "type": "Docs::Action", "id": "read" }, "resource": { "type": "Docs::Document", "id": "d3" }, "context": { "mfa": false }, "entities": w.entities },
                { "action": { "type": "Docs::Action", "id": "edit" }, "resource": { "type": "Docs::Document", "id": "d2" }, "context": { "mfa": false }, "entities": w.entities },
            ] }),
        )
        .await;
    let answers: Vec<bool> = batch.data()["authorizeBatch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["allowed"] == true)
        .collect();
    assert_eq!(answers, [true, false, false], "answers in order");
    let too_many: Vec<Value> = (0..101)
        .map(|_| json!({ "action": { "type": "Docs::Action", "id": "read" }, "resource": { "type": "Docs::Document", "id": "d1" } }))
        .collect();
    let refused = t
        .gql(
            Some(&w.alice.1),
            "query($inputs: [AuthorizeInput!]!) { authorizeBatch(inputs: $inputs) { allowed } }",
            json!({ "inputs": too_many }),
        )
        .await;
    assert_eq!(refused.field(), "inputs");
}

async fn policies_are_validated_with_locations(t: TestApp) {
    let admin = t.admin_token().await;
    let create = "mutation($input: CreatePolicyInput!) { createPolicy(input: $input) { policy { id } } }";
    let syntax = t
        .gql(
            Some(&admin),
            create,
            json!({ "input": { "name": "broken", "source": "permit (\n  principal,\n  action ==\n);" } }),
        )
        .await;
    assert_eq!(syntax.code(), "BAD_USER_INPUT");
    assert_eq!(syntax.field(), "source");
    let problems = syntax.0["errors"][0]["extensions"]["problems"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!problems.is_empty());
    assert!(problems[0]["line"].as_i64().unwrap() >= 3, "{problems:?}");
    assert!(problems[0]["column"].as_i64().is_some());

    let unknown = t
        .gql(
            Some(&admin),
            create,
            json!({ "input": { "name": "typo", "source": "permit (principal, action == Portcullis::Action::\"user.raed\", resource);\n" } }),
        )
        .await;
    assert_eq!(
        unknown.code(),
        "BAD_USER_INPUT",
        "schema validation catches unknown actions"
    );
    let bad_attr = t
        .gql(
            Some(&admin),
            create,
            json!({ "input": { "name": "attr", "source": "permit (principal, action, resource) when { principal.shoeSize > 3 };" } }),
        )
        .await;
    assert_eq!(bad_attr.code(), "BAD_USER_INPUT");
    assert!(bad_attr.message().contains("shoeSize"), "{}", bad_attr.message());
    let resource_slot = t
        .gql(Some(&admin), create, json!({ "input": { "name": "slot", "source": "permit (principal, action, resource in ?resource);" } }))
        .await;
    assert_eq!(resource_slot.code(), "BAD_USER_INPUT");

    let check = t
        .gql(
            Some(&admin),
            "query($s: String!) { validatePolicy(source: $s) { valid kind effect problems { message line column } } }",
            json!({ "s": "forbid (principal, action, resource) unless { context.mfa };" }),
        )
        .await;
    assert_eq!(check.data()["validatePolicy"]["valid"], true);
    assert_eq!(check.data()["validatePolicy"]["kind"], "STATIC");
    assert_eq!(check.data()["validatePolicy"]["effect"], "FORBID");
    let invalid = t
        .gql(
            Some(&admin),
            "query($s: String!) { validatePolicy(source: $s) { valid problems { line } } }",
            json!({ "s": "permit (principal, action, resource) when { context.nope };" }),
        )
        .await;
    assert_eq!(invalid.data()["validatePolicy"]["valid"], false);
    assert_eq!(invalid.data()["validatePolicy"]["problems"][0]["line"], 1);
    let stored = t
        .gql(Some(&admin), "{ policies { totalCount } }", json!({}))
        .await;
    assert_eq!(
        stored.data()["policies"]["totalCount"],
        0,
        "nothing saved by failures or validation"
    );

    // A schema change that would break an enabled policy is refused.
    let put = "mutation($input: PutCedarSchemaInput!) { putCedarSchema(input: $input) { cedarSchema { namespace } } }";
    t.gql(
        Some(&admin),
        put,
        json!({ "input": { "namespace": "Docs", "source": DOCS_SCHEMA } }),
    )
    .await
    .data();
    create_policy(
        &t,
        &admin,
        "uses locked",
        r#"forbid (principal, action, resource is Docs::Document) when { resource.locked };"#,
        true,
    )
    .await;
    let shrunk = "namespace Docs { entity Folder; entity Document in [Folder]; action \"read\" appliesTo { principal: Portcullis::User, resource: Document }; }";
    let refused = t
        .gql(
            Some(&admin),
            put,
            json!({ "input": { "namespace": "Docs", "source": shrunk } }),
        )
        .await;
    assert_eq!(refused.code(), "BAD_USER_INPUT");
    assert!(refused.message().contains("uses locked"), "{}", refused.message());
    let reserved = t
        .gql(
            Some(&admin),
            put,
            json!({ "input": { "namespace": "Portcullis", "source": "namespace Portcullis {}" } }),
        )
        .await;
    assert_eq!(reserved.field(), "namespace");
    let mismatch = t
        .gql(
            Some(&admin),
            put,
            json!({ "input": { "namespace": "Other", "source": DOCS_SCHEMA } }),
        )
        .await;
    assert_eq!(mismatch.field(), "source");
}

async fn roles_follow_their_rules(t: TestApp) {
    let admin = t.admin_token().await;
    let org_a = t.create_organization(&admin, "org-a").await;
    let org_b = t.create_organization(&admin, "org-b").await;
    let user = t.create_user(&admin, "someone@example.com").await;

    let bad_permission = t
        .gql(Some(&admin), "mutation { createRole(input: {key: \"x1\", name: \"X\", permissions: [\"user.fly\"]}) { role { id } } }", json!({}))
        .await;
    assert_eq!(bad_permission.field(), "permissions");
    let bad_key = t
        .gql(
            Some(&admin),
            "mutation { createRole(input: {key: \"Bad Key\", name: \"X\"}) { role { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(bad_key.field(), "key");
    let long = t
        .gql(
            Some(&admin),
            "mutation($d: String!) { createRole(input: {key: \"wordy\", name: \"W\", description: $d}) { role { id } } }",
            json!({ "d": "x".repeat(1001) }),
        )
        .await;
    assert_eq!(long.field(), "description");
    create_role(&t, &admin, "dup", json!([]), None).await;
    let duplicate = t
        .gql(
            Some(&admin),
            "mutation { createRole(input: {key: \"dup\", name: \"X\"}) { role { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(duplicate.code(), "CONFLICT");
    create_role(&t, &admin, "dup", json!([]), Some(&org_a)).await; // same key, other scope

    let local = create_role(&t, &admin, "local", json!(["member.list"]), Some(&org_a)).await;
    let elsewhere = assign(&t, &admin, &user, &local, Some(&org_b)).await;
    assert_eq!(
        elsewhere["errors"][0]["extensions"]["field"], "organizationId",
        "{elsewhere:#}"
    );
    let globally = assign(&t, &admin, &user, &local, None).await;
    assert_eq!(globally["errors"][0]["extensions"]["field"], "organizationId");
    assert!(assign(&t, &admin, &user, &local, Some(&org_a)).await["errors"].is_null());
    let twice = assign(&t, &admin, &user, &local, Some(&org_a)).await;
    assert_eq!(twice["errors"][0]["extensions"]["code"], "CONFLICT");

    let roles = t
        .gql(
            Some(&admin),
            "{ roles(first: 50) { nodes { id key builtIn permissions } } }",
            json!({}),
        )
        .await;
    let nodes = roles.data()["roles"]["nodes"].as_array().unwrap().clone();
    let keys: Vec<&str> = nodes.iter().map(|n| n["key"].as_str().unwrap()).collect();
    for builtin in ["super_admin", "org_owner", "org_admin", "org_member", "auditor"] {
        assert!(keys.contains(&builtin), "built-in {builtin} listed: {keys:?}");
    }
    let super_admin = nodes.iter().find(|n| n["key"] == "super_admin").unwrap();
    assert_eq!(super_admin["builtIn"], true);
    let delete = t
        .gql(
            Some(&admin),
            "mutation($id: ID!) { deleteRole(input: {id: $id}) { role { id } } }",
            json!({ "id": super_admin["id"] }),
        )
        .await;
    assert_eq!(delete.code(), "CONFLICT", "built-in roles cannot be deleted");
    let org_roles = t
        .gql(
            Some(&admin),
            "query($o: ID!) { roles(organizationId: $o, first: 50) { totalCount } }",
            json!({ "o": org_a }),
        )
        .await;
    assert_eq!(
        org_roles.data()["roles"]["totalCount"],
        5 + 1 + 2,
        "built-ins, global dup, org dup + local"
    );

    let static_policy = create_policy(
        &t,
        &admin,
        "static",
        "permit (principal, action == Portcullis::Action::\"user.list\", resource);",
        false,
    )
    .await;
    let attach = t
        .gql(
            Some(&admin),
            "mutation($r: ID!, $p: ID!) { attachPolicy(input: {roleId: $r, policyId: $p}) { role { id } } }",
            json!({ "r": local, "p": static_policy }),
        )
        .await;
    assert_eq!(attach.field(), "policyId", "only templates attach");

    let mine = t
        .gql(
            Some(&admin),
            "{ viewer { user { roleAssignments { nodes { role { key } organization { id } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        mine.data()["viewer"]["user"]["roleAssignments"]["nodes"][0]["role"]["key"],
        "super_admin"
    );
    assert!(mine.data()["viewer"]["user"]["roleAssignments"]["nodes"][0]["organization"].is_null());
}

/// The gateway's own operations, decided by roles held per organization.
async fn gateway_decisions_follow_roles_and_organizations(t: TestApp) {
    let admin = t.admin_token().await;
    let org_a = t.create_organization(&admin, "alpha").await;
    let org_b = t.create_organization(&admin, "beta").await;
    let (dave, dave_token) = t.user_with_token(&admin, "dave@example.com").await;
    let (erin, erin_token) = t.user_with_token(&admin, "erin@example.com").await;
    let (owner, owner_token) = t.user_with_token(&admin, "owner@example.com").await;
    let (carol, carol_token) = t.user_with_token(&admin, "carol@example.com").await;
    let newbie = t.create_user(&admin, "newbie@example.com").await;
    let org_admin = t.builtin_role(&admin, "org_admin").await;
    let org_owner = t.builtin_role(&admin, "org_owner").await;
    assign(&t, &admin, &dave, &org_admin, Some(&org_a)).await;
    assign(&t, &admin, &owner, &org_owner, Some(&org_a)).await;
    let add = "mutation($o: ID!, $u: ID!) { addMember(input: {organizationId: $o, userId: $u}) { membership { id } } }";
    t.gql(Some(&admin), add, json!({ "o": org_a, "u": erin }))
        .await
        .data();

    let code = |response: &crate::support::Gql| {
        response.0["errors"][0]["extensions"]["code"]
            .as_str()
            .map(str::to_owned)
    };
    // (case, token, query, variables, expected error code or None for success)
    let members = "query($o: ID!) { organization(id: $o) { members { totalCount } } }";
    let update = "mutation($o: ID!) { updateOrganization(input: {id: $o, name: \"Renamed\"}) { organization { id } } }";
    let cases: Vec<(&str, &str, &str, Value, Option<&str>)> = vec![
        (
            "org_admin adds a member in its organization",
            &dave_token,
            add,
            json!({ "o": org_a, "u": newbie }),
            None,
        ),
        (
            "org_admin of A cannot add in B",
            &dave_token,
            add,
            json!({ "o": org_b, "u": newbie }),
            Some("FORBIDDEN"),
        ),
        (
            "org_admin lists members of A",
            &dave_token,
            members,
            json!({ "o": org_a }),
            None,
        ),
        (
            "org_admin of A cannot rename A",
            &dave_token,
            update,
            json!({ "o": org_a }),
            Some("FORBIDDEN"),
        ),
        (
            "org_owner renames A",
            &owner_token,
            update,
            json!({ "o": org_a }),
            None,
        ),
        (
            "org_owner of A cannot rename B",
            &owner_token,
            update,
            json!({ "o": org_b }),
            Some("FORBIDDEN"),
        ),
        (
            "a member lists members",
            &erin_token,
            members,
            json!({ "o": org_a }),
            None,
        ),
        (
            "a member cannot add members",
            &erin_token,
            add,
            json!({ "o": org_a, "u": carol }),
            Some("FORBIDDEN"),
        ),
        (
            "no role: cannot create organizations",
            &carol_token,
            "mutation { createOrganization(input: {slug: \"c-org\", name: \"C\"}) { organization { id } } }",
            json!({}),
            Some("FORBIDDEN"),
        ),
        (
            "no role: cannot list users",
            &carol_token,
            "{ users { totalCount } }",
            json!({}),
            Some("FORBIDDEN"),
        ),
        (
            "super_admin reaches B",
            &admin,
            members,
            json!({ "o": org_b }),
            None,
        ),
    ];
    for (case, token, query, variables, expected) in cases {
        let response = t.gql(Some(token), query, variables).await;
        assert_eq!(code(&response).as_deref(), expected, "{case}: {:#}", response.0);
    }
    // Organizations you do not belong to are invisible, not forbidden.
    let hidden = t
        .gql(
            Some(&erin_token),
            "query($o: ID!) { organization(id: $o) { id } }",
            json!({ "o": org_b }),
        )
        .await;
    assert!(hidden.data()["organization"].is_null());
    let visible = t
        .gql(
            Some(&erin_token),
            "query($o: ID!) { organization(id: $o) { name } }",
            json!({ "o": org_a }),
        )
        .await;
    assert_eq!(visible.data()["organization"]["name"], "Renamed");

    // A global role applies in every organization.
    let roving = create_role(&t, &admin, "roving_recruiter", json!(["member.add"]), None).await;
    assign(&t, &admin, &carol, &roving, None).await;
    let anywhere = t
        .gql(Some(&carol_token), add, json!({ "o": org_b, "u": newbie }))
        .await;
    assert!(code(&anywhere).is_none(), "{:#}", anywhere.0);

    // Unassigning takes effect at once.
    let unassign = t
        .gql(
            Some(&admin),
            "mutation($u: ID!, $r: ID!, $o: ID) { unassignRole(input: {userId: $u, roleId: $r, organizationId: $o}) { roleAssignment { id } } }",
            json!({ "u": dave, "r": org_admin, "o": org_a }),
        )
        .await;
    unassign.data();
    let after = t
        .gql(Some(&dave_token), add, json!({ "o": org_a, "u": carol }))
        .await;
    assert_eq!(code(&after).as_deref(), Some("FORBIDDEN"));
}

/// Conditions on the request context: MFA, authentication method.
async fn context_conditions_apply_to_gateway_operations(t: TestApp) {
    let admin = t.admin_token().await;
    let mfa_policy = create_policy(
        &t,
        &admin,
        "organizations need MFA",
        r#"forbid (principal, action == Portcullis::Action::"organization.create", resource) unless { context.mfa };"#,
        true,
    )
    .await;
    let create = "mutation($s: String!) { createOrganization(input: {slug: $s, name: \"X\"}) { organization { id } } }";
    let refused = t.gql(Some(&admin), create, json!({ "s": "needs-mfa" })).await;
    assert_eq!(
        refused.code(),
        "MFA_REQUIRED",
        "even a super-administrator is bound by a forbid; a passkey step-up would lift this one"
    );
    gql_ok(
        &t,
        &admin,
        "mutation($id: ID!) { deletePolicy(input: {id: $id}) { policy { id } } }",
        json!({ "id": mfa_policy }),
    )
    .await;
    t.gql(Some(&admin), create, json!({ "s": "no-mfa-needed" }))
        .await
        .data();

    create_policy(
        &t,
        &admin,
        "no policy changes with API keys",
        r#"forbid (principal, action in [Portcullis::Action::"policy.create", Portcullis::Action::"policy.update", Portcullis::Action::"policy.delete"], resource) when { context.authMethod == "api_key" };"#,
        true,
    )
    .await;
    let key = gql_ok(
        &t,
        &admin,
        "mutation { createApiKey(input: {name: \"automation\"}) { secret } }",
        json!({}),
    )
    .await;
    let key = key["createApiKey"]["secret"].as_str().unwrap().to_owned();
    let by_key = t
        .gql(Some(&key), "mutation { createPolicy(input: {name: \"k\", source: \"permit (principal, action, resource);\", enabled: false}) { policy { id } } }", json!({}))
        .await;
    assert_eq!(by_key.code(), "FORBIDDEN");
    let by_password = t
        .gql(Some(&admin), "mutation { createPolicy(input: {name: \"p\", source: \"permit (principal, action, resource);\", enabled: false}) { policy { id } } }", json!({}))
        .await;
    by_password.data();
    let still_reads = t.gql(Some(&key), "{ policies { totalCount } }", json!({})).await;
    assert_eq!(still_reads.data()["policies"]["totalCount"], 2);
}

async fn policy_crud_and_listing(t: TestApp) {
    let admin = t.admin_token().await;
    let id = create_policy(
        &t,
        &admin,
        "Alpha rule",
        "permit (principal, action == Portcullis::Action::\"user.list\", resource);",
        true,
    )
    .await;
    create_policy(
        &t,
        &admin,
        "Beta rule",
        "forbid (principal, action == Portcullis::Action::\"user.create\", resource);",
        false,
    )
    .await;
    let list = "query($f: PolicyFilter) { policies(filter: $f) { totalCount nodes { name } } }";
    let forbids = t
        .gql(Some(&admin), list, json!({ "f": { "effect": "FORBID" } }))
        .await;
    assert_eq!(forbids.data()["policies"]["nodes"][0]["name"], "Beta rule");
    let enabled = t
        .gql(Some(&admin), list, json!({ "f": { "enabled": true } }))
        .await;
    assert_eq!(enabled.data()["policies"]["totalCount"], 1);
    let search = t
        .gql(Some(&admin), list, json!({ "f": { "search": "ALPHA" } }))
        .await;
    assert_eq!(search.data()["policies"]["totalCount"], 1);

    let read = t
        .gql(
            Some(&admin),
            "query($id: ID!) { policy(id: $id) { name version createdBy { email } source } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(read.data()["policy"]["createdBy"]["email"], "admin@example.com");
    let bad_update = t
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updatePolicy(input: {id: $id, source: \"permit (\"}) { policy { id } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(bad_update.field(), "source");
    let unchanged = t
        .gql(
            Some(&admin),
            "query($id: ID!) { policy(id: $id) { version } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        unchanged.data()["policy"]["version"],
        1,
        "a refused update changes nothing"
    );
    let deleted = t
        .gql(
            Some(&admin),
            "mutation($id: ID!) { deletePolicy(input: {id: $id}) { policy { name } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(deleted.data()["deletePolicy"]["policy"]["name"], "Alpha rule");
    let gone = t
        .gql(
            Some(&admin),
            "query($id: ID!) { policy(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert!(gone.data()["policy"].is_null());
    let (_, user) = t.user_with_token(&admin, "reader@example.com").await;
    assert_eq!(
        t.gql(Some(&user), "{ policies { totalCount } }", json!({}))
            .await
            .code(),
        "FORBIDDEN"
    );
    let _ = PASSWORD;
}

/// A principal's `email` and `status` are cached with its roles; changing them takes effect at once.
async fn principal_attributes_follow_account_changes(t: TestApp) {
    let w = world(&t).await;
    create_policy(
        &t,
        &w.admin,
        "active example.com accounts delete",
        r#"permit (principal, action == Docs::Action::"delete", resource)
           when { principal.status == "active" && principal.email like "*@example.com" };"#,
        true,
    )
    .await;
    let bob = &w.bob.0;
    let ask_for_bob = async || {
        let response = t
            .gql(
                Some(&w.admin),
                AUTHORIZE,
                json!({ "input": {
                    "principal": { "type": "Portcullis::User", "id": bob },
                    "action": { "type": "Docs::Action", "id": "delete" },
                    "resource": { "type": "Docs::Document", "id": "d4" },
                    "context": { "mfa": true },
                    "entities": w.entities,
                } }),
            )
            .await;
        response.data()["authorize"]["allowed"] == true
    };
    assert!(ask_for_bob().await, "active, at example.com");

    let update = "mutation($input: UpdateUserInput!) { updateUser(input: $input) { user { email } } }";
    t.gql(
        Some(&w.admin),
        update,
        json!({ "input": { "id": bob, "email": "bob@elsewhere.test" } }),
    )
    .await
    .data();
    assert!(!ask_for_bob().await, "the new email no longer matches");
    t.gql(
        Some(&w.admin),
        update,
        json!({ "input": { "id": bob, "email": "bob@example.com" } }),
    )
    .await
    .data();
    assert!(ask_for_bob().await, "matches again");

    let disable = "mutation($id: ID!) { disableUser(input: { id: $id }) { user { status } } }";
    let disabled = t.gql(Some(&w.admin), disable, json!({ "id": bob })).await;
    assert_eq!(disabled.data()["disableUser"]["user"]["status"], "DISABLED");
    assert!(!ask_for_bob().await, "a disabled account is no longer active");
}

/// `entitiesJson` (text) decides exactly as `entities` (a value); a batch's shared entities count
/// for every question, besides each question's own; every misuse names its field.
async fn entities_as_text_and_shared_in_a_batch(t: TestApp) {
    let w = world(&t).await;
    let question = |document: &str, entities: Value| {
        let mut input = json!({
            "action": { "type": "Docs::Action", "id": "read" },
            "resource": { "type": "Docs::Document", "id": document },
            "context": { "mfa": false },
        });
        if let Value::Object(extra) = entities {
            input.as_object_mut().unwrap().extend(extra);
        }
        json!({ "input": input })
    };
    let text = w.entities.to_string();
    let mut expected = Vec::new();
    for document in ["d1", "d3", "d5"] {
        let by_value = t
            .gql(
                Some(&w.alice.1),
                AUTHORIZE,
                question(document, json!({ "entities": w.entities })),
            )
            .await;
        let by_text = t
            .gql(
                Some(&w.alice.1),
                AUTHORIZE,
                question(document, json!({ "entitiesJson": text })),
            )
            .await;
        assert_eq!(
            by_value.data()["authorize"],
            by_text.data()["authorize"],
            "{document}: the same decision and explanation"
        );
        expected.push(by_text.data()["authorize"]["allowed"] == true);
    }
    assert_eq!(
        expected,
        [true, false, true],
        "alice reads in f1 (d5 through f1a), not in f2"
    );
    let allowed = t
        .gql(
            Some(&w.alice.1),
            AUTHORIZE,
            question("d1", json!({ "entitiesJson": text })),
        )
        .await;
    assert_eq!(allowed.data()["authorize"]["allowed"], true);

    let both = t
        .gql(
            Some(&w.alice.1),
            AUTHORIZE,
            question("d1", json!({ "entities": w.entities, "entitiesJson": text })),
        )
        .await;
    assert_eq!(both.code(), "BAD_USER_INPUT");
    assert_eq!(both.field(), "entitiesJson");
    let not_json = t
        .gql(
            Some(&w.alice.1),
            AUTHORIZE,
            question("d1", json!({ "entitiesJson": "[{" })),
        )
        .await;
    assert_eq!(not_json.field(), "entitiesJson");
    assert!(
        not_json.message().contains("not valid JSON"),
        "{}",
        not_json.message()
    );
    let forged =
        json!([{ "uid": { "type": "Portcullis::User", "id": w.bob.0 }, "attrs": {}, "parents": [] }]);
    let refused = t
        .gql(
            Some(&w.bob.1),
            AUTHORIZE,
            question("d1", json!({ "entitiesJson": forged.to_string() })),
        )
        .await;
    assert_eq!(
        refused.code(),
        "BAD_USER_INPUT",
        "gateway entities are refused as text too"
    );
    assert_eq!(refused.field(), "entitiesJson");

    // A batch: the folders shared, each document carried by its own question.
    let folders: Vec<Value> = w.entities.as_array().unwrap()[..3].to_vec();
    let own = |id: &str| {
        w.entities
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["uid"]["id"] == id)
            .cloned()
            .unwrap()
    };
    let batch = "query($inputs: [AuthorizeInput!]!, $entities: JSON, $entitiesJson: String) {
        authorizeBatch(inputs: $inputs, entities: $entities, entitiesJson: $entitiesJson) { allowed } }";
    let read = |document: &str, entities: Option<Value>| {
        json!({ "action": { "type": "Docs::Action", "id": "read" },
                "resource": { "type": "Docs::Document", "id": document },
                "context": { "mfa": false }, "entities": entities })
    };
    let answers = |response: &crate::support::Gql| -> Vec<bool> {
        response.data()["authorizeBatch"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["allowed"] == true)
            .collect()
    };
    let shared_only = t
        .gql(
            Some(&w.alice.1),
            batch,
            json!({ "inputs": [read("d1", None), read("d3", None), read("d5", None)], "entitiesJson": text }),
        )
        .await;
    assert_eq!(
        answers(&shared_only),
        expected,
        "every question sees the shared set"
    );
    let shared_and_own = t
        .gql(
            Some(&w.alice.1),
            batch,
            json!({
                "inputs": [read("d1", Some(json!([own("d1")]))), read("d3", Some(json!([own("d3")]))), read("d5", Some(json!([own("d5")])))],
                "entities": folders,
            }),
        )
        .await;
    assert_eq!(
        answers(&shared_and_own),
        expected,
        "a question's own document finds its folder (and d5 its folder's parent) in the shared set"
    );
    let mut changed = own("d1");
    changed["attrs"]["locked"] = json!(true);
    let with_errors = "query($inputs: [AuthorizeInput!]!, $entities: JSON) {
        authorizeBatch(inputs: $inputs, entities: $entities) { allowed decision error { code field message } } }";
    let conflicting = t
        .gql(
            Some(&w.alice.1),
            with_errors,
            json!({ "inputs": [read("d3", None), read("d1", Some(json!([changed]))), read("d1", Some(json!([own("d1")])))],
                    "entities": w.entities }),
        )
        .await;
    let answered = &conflicting.data()["authorizeBatch"];
    assert_eq!(
        answered[0]["allowed"], expected[1],
        "the first question is answered"
    );
    assert_eq!(answered[0]["error"], Value::Null);
    assert_eq!(
        answered[1]["error"]["code"], "BAD_USER_INPUT",
        "a question may not redefine a shared entity: {answered:#}"
    );
    assert_eq!(answered[1]["error"]["field"], "inputs.1.entities");
    assert_eq!(answered[1]["decision"], "DENY");
    assert_eq!(
        answered[2]["error"],
        Value::Null,
        "an entity given identically in the shared set and the question's own is one entity"
    );
    assert_eq!(answered[2]["allowed"], expected[0]);
    let shared_bad = t
        .gql(
            Some(&w.alice.1),
            batch,
            json!({ "inputs": [read("d1", None)], "entitiesJson": "{}" }),
        )
        .await;
    assert_eq!(shared_bad.field(), "entitiesJson");
}

/// A gateway role's `*` is every gateway action, not integrators' actions: a super-administrator
/// is allowed an integrator's action only by the integrator's own policies. And the gateway's own
/// entities are named canonically: another spelling of a user's id is refused, not half that user.
async fn gateway_roles_grant_gateway_actions_only(t: TestApp) {
    let admin = t.admin_token().await;
    let admin_id = t
        .login(crate::support::ADMIN_EMAIL, crate::support::ADMIN_PASSWORD)
        .await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = |principal: Value| {
        json!({ "input": { "principal": principal, "action": { "type": "Shop::Action", "id": "read" },
                           "resource": { "type": "Shop::Doc", "id": "d1" } } })
    };
    let me = json!({ "type": "Portcullis::User", "id": admin_id });
    let answer = gql_ok(&t, &admin, AUTHORIZE, read(me.clone())).await;
    assert_eq!(answer["authorize"]["allowed"], false, "{answer:#}");
    assert_eq!(answer["authorize"]["determiningPolicies"], json!([]));
    let own_user = gql_ok(
        &t,
        &admin,
        AUTHORIZE,
        json!({ "input": { "action": { "type": "Portcullis::Action", "id": "user.read" },
                           "resource": { "type": "Portcullis::User", "id": admin_id } } }),
    )
    .await;
    assert_eq!(
        own_user["authorize"]["allowed"], true,
        "gateway actions stay granted"
    );

    for spelling in [
        admin_id.to_uppercase(),
        admin_id.replace('-', ""),
        format!("urn:uuid:{admin_id}"),
    ] {
        let refused = t
            .gql(
                Some(&admin),
                AUTHORIZE,
                read(json!({ "type": "Portcullis::User", "id": spelling })),
            )
            .await;
        assert_eq!(refused.code(), "BAD_USER_INPUT", "{spelling}");
        assert_eq!(refused.field(), "principal");
        assert!(
            refused.message().contains(&admin_id),
            "names the canonical form: {}",
            refused.message()
        );
    }
}

crate::backend_tests!(
    gateway_roles_grant_gateway_actions_only,
    integrator_decision_table,
    authorize_rules_for_callers,
    policies_are_validated_with_locations,
    roles_follow_their_rules,
    gateway_decisions_follow_roles_and_organizations,
    context_conditions_apply_to_gateway_operations,
    policy_crud_and_listing,
    principal_attributes_follow_account_changes,
    entities_as_text_and_shared_in_a_batch,
);
