//! Role grants bounded by the granter's own power: no escalation inside an organization.

use portcullis::audit::{self, AuditAction, Event, Target};
use portcullis::db::models::RoleAssignmentRow;
use portcullis::db::{Id, cedar_schemas, role_assignments};
use serde_json::{Value, json};

use crate::support::{Gql, TestApp};

const BUILT_INS: [&str; 5] = ["super_admin", "org_owner", "org_admin", "org_member", "auditor"];

const ASSIGN: &str = "mutation($u: ID!, $r: ID!, $o: ID) {
  assignRole(input: {userId: $u, roleId: $r, organizationId: $o}) { roleAssignment { id } }
}";
const UPDATE_ORG: &str =
    "mutation($o: ID!) { updateOrganization(input: {id: $o, name: \"Taken over\"}) { organization { id } } }";
const CREATE_ROLE: &str = "mutation($input: CreateRoleInput!) { createRole(input: $input) { role { id } } }";
const UPDATE_ROLE: &str =
    "mutation($input: UpdateRoleInput!) { updateRole(input: $input) { role { id permissions } } }";

/// `None` when the operation succeeded, else its error code.
fn outcome(response: &Gql) -> Option<String> {
    response.0["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_owned)
}

fn id_of<'a>(roles: &'a [(String, String)], key: &str) -> &'a str {
    &roles.iter().find(|(k, _)| k == key).unwrap().1
}

async fn assign(t: &TestApp, token: &str, user: &str, role: &str, org: Option<&str>) -> Gql {
    t.gql(Some(token), ASSIGN, json!({ "u": user, "r": role, "o": org }))
        .await
}

async fn add_member(t: &TestApp, admin: &str, org: &str, user: &str) {
    t.gql(
        Some(admin),
        "mutation($o: ID!, $u: ID!) { addMember(input: {organizationId: $o, userId: $u}) { membership { id } } }",
        json!({ "o": org, "u": user }),
    )
    .await
    .data();
}

async fn create_role(t: &TestApp, token: &str, key: &str, permissions: Value, org: Option<&str>) -> Gql {
    t.gql(
        Some(token),
        CREATE_ROLE,
        json!({ "input": { "key": key, "name": key, "permissions": permissions, "organizationId": org } }),
    )
    .await
}

fn created_id(response: &Gql) -> String {
    response.data()["createRole"]["role"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every built-in granter × every built-in role × global / organization scope.
async fn built_in_decision_table(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "acme").await;
    let roles = t.roles_by_key(&admin).await;

    // Granters: the super-administrator, a holder of each built-in role in `acme`, a plain member.
    let mut granters: Vec<(&str, String)> = vec![("super_admin (global)", admin.clone())];
    for key in ["org_owner", "org_admin", "auditor"] {
        let (id, token) = t.user_with_token(&admin, &format!("{key}@example.com")).await;
        add_member(&t, &admin, &org, &id).await;
        assign(&t, &admin, &id, id_of(&roles, key), Some(&org))
            .await
            .data();
        granters.push((key, token));
    }
    let (member, member_token) = t.user_with_token(&admin, "member@example.com").await;
    add_member(&t, &admin, &org, &member).await;
    granters.push(("org_member", member_token));

    let forbidden = Some("FORBIDDEN");
    let bad = Some("BAD_USER_INPUT");
    // (granter, granted, global outcome, in-organization outcome)
    let table: [(&str, &str, Option<&str>, Option<&str>); 25] = [
        ("super_admin (global)", "super_admin", None, bad),
        ("super_admin (global)", "org_owner", None, None),
        ("super_admin (global)", "org_admin", None, None),
        ("super_admin (global)", "org_member", None, None),
        ("super_admin (global)", "auditor", None, None),
        ("org_owner", "super_admin", forbidden, forbidden),
        ("org_owner", "org_owner", forbidden, None),
        ("org_owner", "org_admin", forbidden, None),
        ("org_owner", "org_member", forbidden, None),
        // policy.read and cedar_schema.read: the owner does not hold them.
        ("org_owner", "auditor", forbidden, forbidden),
        ("org_admin", "super_admin", forbidden, forbidden),
        ("org_admin", "org_owner", forbidden, forbidden),
        ("org_admin", "org_admin", forbidden, None),
        ("org_admin", "org_member", forbidden, None),
        ("org_admin", "auditor", forbidden, forbidden),
        ("auditor", "super_admin", forbidden, forbidden),
        ("auditor", "org_owner", forbidden, forbidden),
        ("auditor", "org_admin", forbidden, forbidden),
        ("auditor", "org_member", forbidden, forbidden),
        ("auditor", "auditor", forbidden, forbidden),
        ("org_member", "super_admin", forbidden, forbidden),
        ("org_member", "org_owner", forbidden, forbidden),
        ("org_member", "org_admin", forbidden, forbidden),
        ("org_member", "org_member", forbidden, forbidden),
        ("org_member", "auditor", forbidden, forbidden),
    ];
    let mut checked = 0;
    for (granter, token) in &granters {
        // A fresh grantee per granter, so that one granter's grants never collide with another's.
        let grantee = t
            .create_user(
                &admin,
                &format!(
                    "to-{}@example.com",
                    granter.replace(' ', "-").replace(['(', ')'], "")
                ),
            )
            .await;
        for granted in BUILT_INS {
            let (_, _, global, scoped) = table
                .iter()
                .find(|(g, r, _, _)| g == granter && *r == granted)
                .unwrap_or_else(|| panic!("no row for {granter} granting {granted}"));
            for (scope, expected) in [(None, global), (Some(org.as_str()), scoped)] {
                let response = assign(&t, token, &grantee, id_of(&roles, granted), scope).await;
                assert_eq!(
                    outcome(&response).as_deref(),
                    *expected,
                    "{granter} grants {granted} {}: {:#}",
                    scope.map_or("globally", |_| "in the organization"),
                    response.0
                );
                if *expected == bad {
                    assert_eq!(response.field(), "organizationId", "{:#}", response.0);
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, table.len() * 2);
}

/// Custom roles: a subset of the granter's permissions is theirs to give; one more is not — when
/// assigning, creating or updating a role alike.
async fn custom_roles_are_bounded_by_the_granter(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "acme").await;
    let roles = t.roles_by_key(&admin).await;
    let (owner, owner_token) = t.user_with_token(&admin, "owner@example.com").await;
    let (dave, dave_token) = t.user_with_token(&admin, "dave@example.com").await;
    let grantee = t.create_user(&admin, "grantee@example.com").await;
    assign(&t, &admin, &owner, id_of(&roles, "org_owner"), Some(&org))
        .await
        .data();
    assign(&t, &admin, &dave, id_of(&roles, "org_admin"), Some(&org))
        .await
        .data();

    let admin_permissions = json!([
        "organization.read",
        "member.list",
        "member.add",
        "member.remove",
        "role.read",
        "role.assign",
        "audit.read",
        "audit.verify"
    ]);
    let subset = created_id(
        &create_role(
            &t,
            &owner_token,
            "recruiter",
            json!(["member.list", "member.add"]),
            Some(&org),
        )
        .await,
    );
    let same =
        created_id(&create_role(&t, &owner_token, "deputy", admin_permissions.clone(), Some(&org)).await);
    let mut more = admin_permissions.as_array().unwrap().clone();
    more.push(json!("organization.update"));
    let one_more = created_id(&create_role(&t, &owner_token, "deputy_plus", json!(more), Some(&org)).await);

    for (role, expected) in [(&subset, None), (&same, None), (&one_more, Some("FORBIDDEN"))] {
        let response = assign(&t, &dave_token, &grantee, role, Some(&org)).await;
        assert_eq!(
            outcome(&response).as_deref(),
            expected,
            "org_admin assigns: {:#}",
            response.0
        );
    }
    let by_owner = assign(&t, &owner_token, &grantee, &one_more, Some(&org)).await;
    assert!(
        outcome(&by_owner).is_none(),
        "the owner holds it all: {:#}",
        by_owner.0
    );

    // A global custom role: only someone holding all of it gateway-wide assigns it, and only there.
    let global = created_id(&create_role(&t, &admin, "roving", json!(["member.list"]), None).await);
    assert_eq!(
        outcome(&assign(&t, &owner_token, &grantee, &global, None).await).as_deref(),
        Some("FORBIDDEN")
    );
    assert!(outcome(&assign(&t, &owner_token, &grantee, &global, Some(&org)).await).is_none());

    // Creating a role: the owner may put in what it holds in the organization, not more.
    let beyond = create_role(
        &t,
        &owner_token,
        "reader",
        json!(["member.list", "policy.read"]),
        Some(&org),
    )
    .await;
    assert_eq!(outcome(&beyond).as_deref(), Some("FORBIDDEN"), "{:#}", beyond.0);
    // `*` is not a name a role can be given: only the built-in super_admin carries it.
    let gateway_wide = create_role(&t, &admin, "everything", json!(["*"]), Some(&org)).await;
    assert_eq!(gateway_wide.field(), "permissions", "{:#}", gateway_wide.0);
    // …and updating one alike; taking permissions away is always possible.
    let add_held = t
        .gql(Some(&owner_token), UPDATE_ROLE, json!({ "input": { "id": subset, "permissions": ["member.list", "member.add", "audit.read_sensitive"] } }))
        .await;
    assert!(outcome(&add_held).is_none(), "{:#}", add_held.0);
    let add_beyond = t
        .gql(
            Some(&owner_token),
            UPDATE_ROLE,
            json!({ "input": { "id": subset, "permissions": ["member.list", "user.list"] } }),
        )
        .await;
    assert_eq!(
        outcome(&add_beyond).as_deref(),
        Some("FORBIDDEN"),
        "{:#}",
        add_beyond.0
    );
    let admins_role = created_id(
        &create_role(
            &t,
            &admin,
            "admins_reader",
            json!(["member.list", "policy.read"]),
            Some(&org),
        )
        .await,
    );
    let narrowed = t
        .gql(
            Some(&owner_token),
            UPDATE_ROLE,
            json!({ "input": { "id": admins_role, "permissions": ["policy.read"] } }),
        )
        .await;
    assert!(
        outcome(&narrowed).is_none(),
        "removing grants nothing: {:#}",
        narrowed.0
    );
}

/// The attack from the review: an org admin makes itself owner, or an org-scoped super-admin.
async fn org_admin_cannot_escalate(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "acme").await;
    let roles = t.roles_by_key(&admin).await;
    let (dave, dave_token) = t.user_with_token(&admin, "dave@example.com").await;
    let erin = t.create_user(&admin, "erin@example.com").await;
    add_member(&t, &admin, &org, &dave).await;
    add_member(&t, &admin, &org, &erin).await;
    assign(&t, &admin, &dave, id_of(&roles, "org_admin"), Some(&org))
        .await
        .data();

    for (who, role) in [
        (&dave, "org_owner"),
        (&dave, "super_admin"),
        (&erin, "super_admin"),
        (&erin, "org_owner"),
    ] {
        let refused = assign(&t, &dave_token, who, id_of(&roles, role), Some(&org)).await;
        assert_eq!(refused.code(), "FORBIDDEN", "{role}: {:#}", refused.0);
        let global = assign(&t, &dave_token, who, id_of(&roles, role), None).await;
        assert_eq!(global.code(), "FORBIDDEN", "{role} globally: {:#}", global.0);
    }
    let update = t.gql(Some(&dave_token), UPDATE_ORG, json!({ "o": org })).await;
    assert_eq!(update.code(), "FORBIDDEN", "still not an owner: {:#}", update.0);
    let sensitive = t
        .gql(Some(&dave_token), "mutation($input: CreateRoleInput!) { createRole(input: $input) { role { id } } }",
            json!({ "input": { "key": "mine", "name": "Mine", "organizationId": org, "permissions": ["organization.update"] } }))
        .await;
    assert_eq!(sensitive.code(), "FORBIDDEN");
    let held = t
        .gql(
            Some(&admin),
            "query($u: ID!) { user(id: $u) { roleAssignments { totalCount } } }",
            json!({ "u": dave }),
        )
        .await;
    assert_eq!(
        held.data()["user"]["roleAssignments"]["totalCount"],
        1,
        "only org_admin: {:#}",
        held.0
    );

    // Each refusal is audited, naming what was beyond the granter.
    let denied = t
        .gql(
            Some(&admin),
            "query($f: AuditEventFilter) { auditEvents(first: 50, filter: $f) { edges { node { metadata targets { type } } } } }",
            json!({ "f": { "actions": ["authorization.denied"], "organizationId": org } }),
        )
        .await;
    let edges = denied.data()["auditEvents"]["edges"].as_array().unwrap().clone();
    let grant_refusals: Vec<&Value> = edges
        .iter()
        .filter(|e| {
            e["node"]["metadata"]["action"] == "role.assign" && e["node"]["metadata"]["beyond"].is_array()
        })
        .collect();
    assert_eq!(grant_refusals.len(), 4, "{edges:#?}");
    assert!(
        grant_refusals.iter().any(|e| e["node"]["metadata"]["beyond"]
            .as_array()
            .unwrap()
            .contains(&json!("organization.update"))),
        "{grant_refusals:#?}"
    );

    // A super-administrator can still make Dave owner; Dave as owner then renames.
    assign(&t, &admin, &dave, id_of(&roles, "org_owner"), Some(&org))
        .await
        .data();
    t.gql(Some(&dave_token), UPDATE_ORG, json!({ "o": org }))
        .await
        .data();
}

/// The bound is the engine's decision: an administrator's forbid narrows what one may grant too.
async fn forbids_narrow_what_one_may_grant(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "acme").await;
    let roles = t.roles_by_key(&admin).await;
    let (owner, owner_token) = t.user_with_token(&admin, "owner@example.com").await;
    let grantee = t.create_user(&admin, "grantee@example.com").await;
    assign(&t, &admin, &owner, id_of(&roles, "org_owner"), Some(&org))
        .await
        .data();
    t.gql(
        Some(&admin),
        "mutation($input: CreatePolicyInput!) { createPolicy(input: $input) { policy { id } } }",
        json!({ "input": {
            "name": "sensitive audit reads need MFA",
            "source": "forbid (principal, action == Portcullis::Action::\"audit.read_sensitive\", resource) unless { context.mfa };",
            "enabled": true,
        } }),
    )
    .await
    .data();
    let refused = assign(&t, &owner_token, &grantee, id_of(&roles, "org_owner"), Some(&org)).await;
    assert_eq!(refused.code(), "FORBIDDEN", "{:#}", refused.0);
    let fine = assign(&t, &owner_token, &grantee, id_of(&roles, "org_admin"), Some(&org)).await;
    assert!(outcome(&fine).is_none(), "{:#}", fine.0);
}

/// An assignment as the gateway made them before the bound: written with its audit event.
async fn insert_assignment(
    t: &TestApp,
    user: &str,
    role: &str,
    org: Option<&str>,
    by: Option<&str>,
) -> String {
    let row = RoleAssignmentRow {
        id: Id::new_v7(),
        user_id: user.parse().unwrap(),
        role_id: role.parse().unwrap(),
        organization_id: org.map(|o| o.parse().unwrap()),
        created_at: t.app.now(),
    };
    let mut conn = t.app.db.conn().await.unwrap();
    let now = t.app.now();
    conn.transaction(async |tx| {
        role_assignments::insert(tx, &row).await?;
        cedar_schemas::bump_version(tx).await?;
        if let Some(by) = by {
            let event = Event::system(AuditAction::RoleAssigned)
                .as_user(by.parse().unwrap(), "before the bound")
                .in_organization(row.organization_id)
                .target(Target::new("role_assignment", row.id, None));
            audit::record(tx, now, event).await?;
        }
        Ok(())
    })
    .await
    .unwrap();
    t.app.engine.refresh(&t.app.db).await.unwrap();
    row.id.to_string()
}

/// `portcullis audit escalations` lists what the bound would refuse today, and nothing else.
async fn the_cli_lists_escalated_assignments(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "acme").await;
    let roles = t.roles_by_key(&admin).await;
    let (dave, dave_token) = t.user_with_token(&admin, "dave@example.com").await;
    let (owner, _) = t.user_with_token(&admin, "owner@example.com").await;
    let frank = t.create_user(&admin, "frank@example.com").await;
    let erin = t.create_user(&admin, "erin@example.com").await;
    let gina = t.create_user(&admin, "gina@example.com").await;
    add_member(&t, &admin, &org, &dave).await;
    // Legitimate grants, through the API: never listed.
    assign(&t, &admin, &dave, id_of(&roles, "org_admin"), Some(&org))
        .await
        .data();
    assign(&t, &admin, &owner, id_of(&roles, "org_owner"), Some(&org))
        .await
        .data();
    assign(&t, &dave_token, &frank, id_of(&roles, "org_admin"), Some(&org))
        .await
        .data();

    let url = t.app.db.url().to_owned();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["audit", "escalations"])
            .env("PORTCULLIS_DATABASE_URL", &url)
            .env("PORTCULLIS_LOG", "error")
            .output()
            .expect("the CLI runs")
    };
    let clean = run();
    let stdout = String::from_utf8_lossy(&clean.stdout).into_owned();
    assert!(clean.status.success(), "{stdout}");
    assert!(stdout.contains("no escalated role assignments"), "{stdout}");

    // As the review found them: Dave made himself owner; Erin holds super_admin in the organization;
    // Gina holds auditor there with no record of who gave it.
    let self_made = insert_assignment(&t, &dave, id_of(&roles, "org_owner"), Some(&org), Some(&dave)).await;
    let scoped_super =
        insert_assignment(&t, &erin, id_of(&roles, "super_admin"), Some(&org), Some(&dave)).await;
    let unknown = insert_assignment(&t, &gina, id_of(&roles, "auditor"), Some(&org), None).await;

    let found = run();
    let stdout = String::from_utf8_lossy(&found.stdout).into_owned();
    assert_eq!(found.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let line = |id: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(&format!("assignment {id}:")))
            .unwrap_or_else(|| panic!("{id} not listed: {stdout}"))
    };
    let dave_line = line(&self_made);
    assert!(
        dave_line.contains(&format!(
            "user {dave} holds org_owner in organization {org}, assigned by {dave}"
        )) && dave_line.contains("organization.update"),
        "{dave_line}"
    );
    assert!(
        line(&scoped_super).contains("gateway-wide role held in an organization"),
        "{stdout}"
    );
    let gina_line = line(&unknown);
    assert!(
        gina_line.contains("assigned by unknown") && gina_line.contains("policy.read"),
        "{gina_line}"
    );
}

/// A role can restrict its holder (a `forbid` template attached to it): an org admin on probation
/// cannot lift it by unassigning it from themselves; a super-administrator can.
async fn restrictions_are_not_unassigned_by_their_holder(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "acme").await;
    let roles = t.roles_by_key(&admin).await;
    let (dave, dave_token) = t.user_with_token(&admin, "dave@example.com").await;
    let erin = t.create_user(&admin, "erin@example.com").await;
    add_member(&t, &admin, &org, &erin).await;
    assign(&t, &admin, &dave, id_of(&roles, "org_admin"), Some(&org))
        .await
        .data();
    let probation = created_id(&create_role(&t, &admin, "probation", json!([]), Some(&org)).await);
    let template = t
        .gql(
            Some(&admin),
            "mutation($input: CreatePolicyInput!) { createPolicy(input: $input) { policy { id } } }",
            json!({ "input": {
                "name": "no removals on probation",
                "source": "forbid (principal in ?principal, action == Portcullis::Action::\"member.remove\", resource);",
            } }),
        )
        .await;
    let template = template.data()["createPolicy"]["policy"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.gql(
        Some(&admin),
        "mutation($r: ID!, $p: ID!) { attachPolicy(input: {roleId: $r, policyId: $p}) { role { id } } }",
        json!({ "r": probation, "p": template }),
    )
    .await
    .data();
    assign(&t, &admin, &dave, &probation, Some(&org)).await.data();
    let remove = "mutation($o: ID!, $u: ID!) { removeMember(input: {organizationId: $o, userId: $u}) { membership { id } } }";
    let unassign = "mutation($u: ID!, $r: ID!, $o: ID) { unassignRole(input: {userId: $u, roleId: $r, organizationId: $o}) { roleAssignment { id } } }";
    let on_probation = t
        .gql(Some(&dave_token), remove, json!({ "o": org, "u": erin }))
        .await;
    assert_eq!(on_probation.code(), "FORBIDDEN", "{:#}", on_probation.0);

    let lifted = t
        .gql(
            Some(&dave_token),
            unassign,
            json!({ "u": dave, "r": probation, "o": org }),
        )
        .await;
    assert_eq!(lifted.code(), "FORBIDDEN", "{:#}", lifted.0);
    let still = t
        .gql(Some(&dave_token), remove, json!({ "o": org, "u": erin }))
        .await;
    assert_eq!(still.code(), "FORBIDDEN", "{:#}", still.0);
    // A role without restrictions is unassigned as before.
    let helper = created_id(&create_role(&t, &admin, "helper", json!(["member.list"]), Some(&org)).await);
    assign(&t, &dave_token, &erin, &helper, Some(&org)).await.data();
    t.gql(
        Some(&dave_token),
        unassign,
        json!({ "u": erin, "r": helper, "o": org }),
    )
    .await
    .data();

    t.gql(
        Some(&admin),
        unassign,
        json!({ "u": dave, "r": probation, "o": org }),
    )
    .await
    .data();
    t.gql(Some(&dave_token), remove, json!({ "o": org, "u": erin }))
        .await
        .data();
}

crate::backend_tests!(
    built_in_decision_table,
    custom_roles_are_bounded_by_the_granter,
    org_admin_cannot_escalate,
    forbids_narrow_what_one_may_grant,
    the_cli_lists_escalated_assignments,
    restrictions_are_not_unassigned_by_their_holder,
);
