//! Relations: every object reached through another is read-checked like a root query.
//!
//! The finding: a member of A who appears in B's log only through a refused request read B's name
//! through `viewer.auditEvents { node { organization } }`; `Policy.createdBy` showed the author's
//! account to every policy reader. These cases hold the fix, and show that the people who may read
//! the related object still see it.

use serde_json::{Value, json};

use crate::support::TestApp;

const ASSIGN: &str = "mutation($u: ID!, $r: ID!, $o: ID) { assignRole(input: {userId: $u, roleId: $r, organizationId: $o}) { roleAssignment { id } } }";
const ADD_MEMBER: &str =
    "mutation($o: ID!, $u: ID!) { addMember(input: {organizationId: $o, userId: $u}) { membership { id } } }";

async fn ok(t: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    t.gql(Some(token), query, variables).await.data().clone()
}

async fn builtin_role(t: &TestApp, admin: &str, key: &str) -> String {
    let roles = ok(t, admin, "{ roles(first: 50) { nodes { id key } } }", json!({})).await;
    roles["roles"]["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|r| r["key"] == key))
        .and_then(|r| r["id"].as_str())
        .unwrap_or_else(|| panic!("built-in role {key}"))
        .to_owned()
}

async fn custom_role(t: &TestApp, admin: &str, key: &str, permissions: &[&str]) -> String {
    let created = ok(
        t,
        admin,
        "mutation($input: CreateRoleInput!) { createRole(input: $input) { role { id } } }",
        json!({ "input": { "key": key, "name": key, "permissions": permissions } }),
    )
    .await;
    created["createRole"]["role"]["id"]
        .as_str()
        .expect("role id")
        .to_owned()
}

/// The events of `viewer.auditEvents` (or the subscription's own feed) in B's log carry B's id
/// and no organization object; B's administrator still sees it.
async fn a_refused_request_does_not_reveal_the_other_organization(t: TestApp) {
    let admin = t.admin_token().await;
    let a = t.create_organization(&admin, "alpha").await;
    let b = t.create_organization(&admin, "beta-secret").await;
    let (mallory, token) = t.user_with_token(&admin, "mallory@example.com").await;
    ok(&t, &admin, ADD_MEMBER, json!({ "o": a, "u": mallory })).await;

    for attempt in [
        "mutation($b: ID!) { updateOrganization(input: {id: $b, name: \"x\"}) { organization { id } } }",
        "mutation($b: ID!) { addMember(input: {organizationId: $b, userId: $b}) { membership { id } } }",
    ] {
        let refused = t.gql(Some(&token), attempt, json!({ "b": b })).await;
        assert_eq!(refused.code(), "FORBIDDEN", "{attempt}");
    }

    let own = ok(
        &t,
        &token,
        "{ viewer { auditEvents { nodes { id action organizationId organization { id slug name } } } } }",
        json!({}),
    )
    .await;
    let nodes = own["viewer"]["auditEvents"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let in_b: Vec<&Value> = nodes.iter().filter(|n| n["organizationId"] == b).collect();
    assert_eq!(in_b.len(), 2, "both refusals are in B's log: {own}");
    for node in &in_b {
        assert_eq!(node["action"], "authorization.denied");
        assert!(node["organization"].is_null(), "B leaked: {node}");
    }
    assert!(!own.to_string().contains("beta-secret"), "{own}");

    // The same event read by id.
    let one = ok(
        &t,
        &token,
        "query($id: ID!) { auditEvent(id: $id) { organizationId organization { name } } }",
        json!({ "id": in_b[0]["id"] }),
    )
    .await;
    assert_eq!(one["auditEvent"]["organizationId"], b.as_str());
    assert!(one["auditEvent"]["organization"].is_null(), "{one}");

    // B's own administrator reads B's log with B in it.
    let (boss, boss_token) = t.user_with_token(&admin, "boss@example.com").await;
    let org_admin = builtin_role(&t, &admin, "org_admin").await;
    ok(&t, &admin, ASSIGN, json!({ "u": boss, "r": org_admin, "o": b })).await;
    let log = ok(
        &t,
        &boss_token,
        "query($b: ID!) { auditEvents(filter: {organizationId: $b, outcomes: [DENIED]}) { nodes { organization { slug } actor { id } } } }",
        json!({ "b": b }),
    )
    .await;
    let nodes = log["auditEvents"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(nodes.len(), 2, "{log}");
    for node in nodes {
        assert_eq!(node["organization"]["slug"], "beta-secret");
        assert_eq!(node["actor"]["id"], mallory.as_str());
    }
}

/// A policy reader who may not read accounts sees no author; a user reader does.
async fn policy_authors_are_shown_only_to_those_who_may_read_them(t: TestApp) {
    let admin = t.admin_token().await;
    let created = ok(
        &t,
        &admin,
        "mutation { createPolicy(input: {name: \"p\", enabled: false, source: \"permit (principal, action == Portcullis::Action::\\\"user.list\\\", resource);\"}) { policy { id } } }",
        json!({}),
    )
    .await;
    let policy = created["createPolicy"]["policy"]["id"].clone();
    let query = "query($p: ID!) { policy(id: $p) { name createdBy { id email } updatedBy { email } }
                   policies { nodes { createdBy { email } updatedBy { email } } } }";

    let (reader, reader_token) = t.user_with_token(&admin, "policy-reader@example.com").await;
    let reading = custom_role(&t, &admin, "policy_reader", &["policy.read"]).await;
    ok(
        &t,
        &admin,
        ASSIGN,
        json!({ "u": reader, "r": reading, "o": null }),
    )
    .await;
    let seen = ok(&t, &reader_token, query, json!({ "p": policy })).await;
    assert_eq!(seen["policy"]["name"], "p");
    assert!(seen["policy"]["createdBy"].is_null(), "{seen}");
    assert!(seen["policy"]["updatedBy"].is_null(), "{seen}");
    for node in seen["policies"]["nodes"].as_array().expect("nodes") {
        assert!(
            node["createdBy"].is_null() && node["updatedBy"].is_null(),
            "{seen}"
        );
    }
    assert!(!seen.to_string().contains("admin@"), "{seen}");

    let (auditor, auditor_token) = t.user_with_token(&admin, "user-reader@example.com").await;
    let both = custom_role(
        &t,
        &admin,
        "policy_and_user_reader",
        &["policy.read", "user.read"],
    )
    .await;
    ok(&t, &admin, ASSIGN, json!({ "u": auditor, "r": both, "o": null })).await;
    let seen = ok(&t, &auditor_token, query, json!({ "p": policy })).await;
    assert!(seen["policy"]["createdBy"]["email"].is_string(), "{seen}");
    assert_eq!(
        seen["policy"]["createdBy"],
        ok(&t, &admin, "{ viewer { user { id email } } }", json!({})).await["viewer"]["user"]
    );
}

/// Who holds which role in an organization is shown to its administrators; a role reader without
/// `member.list` sees the assignments and roles but not the people; holders see their own.
async fn role_holders_are_people_of_the_organization(t: TestApp) {
    let admin = t.admin_token().await;
    let a = t.create_organization(&admin, "alpha").await;
    let (ann, ann_token) = t.user_with_token(&admin, "ann@example.com").await;
    ok(&t, &admin, ADD_MEMBER, json!({ "o": a, "u": ann })).await;
    let org_admin = builtin_role(&t, &admin, "org_admin").await;
    ok(&t, &admin, ASSIGN, json!({ "u": ann, "r": org_admin, "o": a })).await;
    let (bob, _) = t.user_with_token(&admin, "bob@example.com").await;
    ok(&t, &admin, ADD_MEMBER, json!({ "o": a, "u": bob })).await;
    let auditor = builtin_role(&t, &admin, "auditor").await;
    ok(&t, &admin, ASSIGN, json!({ "u": bob, "r": auditor, "o": a })).await;
    let query = "query($o: ID!) { roleAssignments(filter: {organizationId: $o}) { nodes { user { email } role { key } organization { slug } } } }";

    // Ann (org_admin of A) sees everyone and everything.
    let seen = ok(&t, &ann_token, query, json!({ "o": a })).await;
    assert_eq!(
        seen["roleAssignments"]["nodes"],
        json!([
            { "user": { "email": "ann@example.com" }, "role": { "key": "org_admin" }, "organization": { "slug": "alpha" } },
            { "user": { "email": "bob@example.com" }, "role": { "key": "auditor" }, "organization": { "slug": "alpha" } },
        ])
    );

    // A gateway-wide role reader: assignments and roles, no people, no organization.
    let (carol, carol_token) = t.user_with_token(&admin, "carol@example.com").await;
    let role_reader = custom_role(&t, &admin, "role_reader", &["role.read"]).await;
    ok(
        &t,
        &admin,
        ASSIGN,
        json!({ "u": carol, "r": role_reader, "o": null }),
    )
    .await;
    let seen = ok(&t, &carol_token, query, json!({ "o": a })).await;
    assert_eq!(
        seen["roleAssignments"]["nodes"],
        json!([
            { "user": null, "role": { "key": "org_admin" }, "organization": null },
            { "user": null, "role": { "key": "auditor" }, "organization": null },
        ])
    );

    // Members of A list A's people, with their memberships' organization.
    let members = ok(
        &t,
        &ann_token,
        "query($o: ID!) { organization(id: $o) { members { nodes { user { email } organization { slug } } } } }",
        json!({ "o": a }),
    )
    .await;
    assert_eq!(
        members["organization"]["members"]["nodes"],
        json!([
            { "user": { "email": "ann@example.com" }, "organization": { "slug": "alpha" } },
            { "user": { "email": "bob@example.com" }, "organization": { "slug": "alpha" } },
        ])
    );

    // Holders see their own roles, even without role.read.
    let (dan, dan_token) = t.user_with_token(&admin, "dan@example.com").await;
    let nothing = custom_role(&t, &admin, "nothing", &[]).await;
    ok(&t, &admin, ASSIGN, json!({ "u": dan, "r": nothing, "o": a })).await;
    let own = ok(
        &t,
        &dan_token,
        "{ viewer { user { roleAssignments { nodes { user { email } role { key } organization { slug } } } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        own["viewer"]["user"]["roleAssignments"]["nodes"],
        json!([{ "user": { "email": "dan@example.com" }, "role": { "key": "nothing" }, "organization": null }])
    );
}

crate::backend_tests!(
    a_refused_request_does_not_reveal_the_other_organization,
    policy_authors_are_shown_only_to_those_who_may_read_them,
    role_holders_are_people_of_the_organization,
);
