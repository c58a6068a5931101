//! The rules around invitations: grants bounded by the inviter, bad input row by row, state
//! changes only while pending, branding validation, and accepting as an existing account (signed
//! in through the API, or with a password on the accept page).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

use crate::invitations::{
    BY_TOKEN, PATIENCE, mailing_instance, organization, page_post, recipient, token_in,
};
use crate::smtp::SmtpSink;
use crate::support::{PASSWORD, TestApp};

const BULK: &str = "mutation($input: CreateInvitationsInput!) { createInvitations(input: $input) { createdCount results { status field message } } }";
const INVITE: &str = "mutation($o: ID!, $e: String!, $r: ID!) { createInvitation(input: {organizationId: $o, email: $e, roleIds: [$r]}) { invitation { id } } }";

fn statuses(response: &Value) -> Vec<String> {
    response["createInvitations"]["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn invitations_are_bounded_by_what_the_inviter_may_grant(t: TestApp) {
    let admin = t.admin_token().await;
    let (org, org_admin) = organization(&t, &admin).await;
    let org_owner = t.builtin_role(&admin, "org_owner").await;
    let super_admin = t.builtin_role(&admin, "super_admin").await;
    let other_org = t.create_organization(&admin, "elsewhere").await;
    let foreign = t
        .gql(
            Some(&admin),
            "mutation($o: ID!) { createRole(input: {key: \"local\", name: \"Local\", organizationId: $o, permissions: [\"member.list\"]}) { role { id } } }",
            json!({ "o": other_org }),
        )
        .await;
    let foreign = foreign.data()["createRole"]["role"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (manager, manager_token) = t.user_with_token(&admin, "manager@example.com").await;
    t.gql(
        Some(&admin),
        "mutation($o: ID!, $u: ID!) { addMember(input: {organizationId: $o, userId: $u}) { membership { id } } }",
        json!({ "o": org, "u": manager }),
    )
    .await
    .data();
    t.gql(
        Some(&admin),
        "mutation($u: ID!, $r: ID!, $o: ID) { assignRole(input: {userId: $u, roleId: $r, organizationId: $o}) { roleAssignment { id } } }",
        json!({ "u": manager, "r": org_admin, "o": org }),
    )
    .await
    .data();

    let rows = json!([
        { "email": "a@example.com", "roleIds": [org_owner] },
        { "email": "b@example.com", "roleIds": [org_admin] },
        { "email": "c@example.com", "roleIds": [super_admin] },
        { "email": "d@example.com", "roleIds": [foreign] },
        { "email": "e@example.com", "roleIds": [org_owner] },
    ]);
    let made = t
        .gql(
            Some(&manager_token),
            BULK,
            json!({ "input": { "organizationId": org, "invitations": rows } }),
        )
        .await;
    assert_eq!(
        statuses(made.data()),
        ["FORBIDDEN", "CREATED", "FORBIDDEN", "INVALID", "FORBIDDEN"]
    );
    let denied = t
        .gql(
            Some(&admin),
            "{ auditEvents(filter: {actions: [\"authorization.denied\"]}) { totalCount nodes: edges { node { metadata } } } }",
            json!({}),
        )
        .await;
    let denied = denied.data()["auditEvents"].clone();
    // Three rows were refused for two roles: one audited refusal per role, naming what is beyond.
    assert_eq!(
        denied["totalCount"], 2,
        "one refusal per refused role, not per row: {denied:#}"
    );
    for node in denied["nodes"].as_array().unwrap() {
        assert_eq!(node["node"]["metadata"]["action"], "role.assign");
    }
    let single = t
        .gql(
            Some(&manager_token),
            INVITE,
            json!({ "o": org, "e": "f@example.com", "r": org_owner }),
        )
        .await;
    assert_eq!(single.code(), "FORBIDDEN");
    // The administrator may offer the owner role, but not the gateway-wide one, in an organization.
    let by_admin = t
        .gql(
            Some(&admin),
            BULK,
            json!({ "input": { "organizationId": org, "invitations": [
                { "email": "a@example.com", "roleIds": [org_owner] },
                { "email": "c@example.com", "roleIds": [super_admin] },
            ] } }),
        )
        .await;
    assert_eq!(statuses(by_admin.data()), ["CREATED", "INVALID"]);
}

async fn bad_input_gets_a_clear_answer_and_changes_need_a_pending_invitation(t: TestApp) {
    let admin = t.admin_token().await;
    let (org, role) = organization(&t, &admin).await;
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({ "email": format!("p{i}@example.com"), "roleIds": [role] }))
        .collect();
    let refused = t
        .gql(
            Some(&admin),
            BULK,
            json!({ "input": { "organizationId": org, "invitations": too_many } }),
        )
        .await;
    assert_eq!(
        (refused.code(), refused.field()),
        ("BAD_USER_INPUT", "invitations")
    );
    let none = t
        .gql(
            Some(&admin),
            BULK,
            json!({ "input": { "organizationId": org, "invitations": [] } }),
        )
        .await;
    assert_eq!((none.code(), none.field()), ("BAD_USER_INPUT", "invitations"));
    let rows = json!([
        { "email": "long@example.com", "roleIds": [role], "message": "x".repeat(1001) },
        { "email": "norole@example.com", "roleIds": [] },
        { "email": "admin@example.com", "roleIds": [role] },
        { "email": "greedy@example.com", "roleIds": (0..21).map(|_| uuid::Uuid::now_v7().to_string()).collect::<Vec<_>>() },
    ]);
    let member = t
        .gql(
            Some(&admin),
            "mutation($o: ID!, $u: ID!) { addMember(input: {organizationId: $o, userId: $u}) { membership { id } } }",
            json!({ "o": org, "u": t.gql(Some(&admin), "{ viewer { user { id } } }", json!({})).await.data()["viewer"]["user"]["id"] }),
        )
        .await;
    member.data();
    let judged = t
        .gql(
            Some(&admin),
            BULK,
            json!({ "input": { "organizationId": org, "invitations": rows } }),
        )
        .await;
    let results = judged.data()["createInvitations"]["results"].clone();
    assert_eq!(results[0]["field"], "message");
    assert_eq!(results[1]["field"], "roleIds");
    assert_eq!(results[2]["status"], "ALREADY_MEMBER");
    assert_eq!(results[3]["field"], "roleIds");
    assert!(
        results[3]["message"].as_str().unwrap().contains("at most 20"),
        "{}",
        results[3]
    );
    let again = t
        .gql(
            Some(&admin),
            INVITE,
            json!({ "o": org, "e": "Admin@Example.com", "r": role }),
        )
        .await;
    assert_eq!(again.code(), "CONFLICT");
    assert_eq!(again.0["errors"][0]["extensions"]["reason"], "ALREADY_MEMBER");

    let made = t
        .gql(
            Some(&admin),
            INVITE,
            json!({ "o": org, "e": "gone@example.com", "r": role }),
        )
        .await;
    let id = made.data()["createInvitation"]["invitation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pending = t
        .gql(
            Some(&admin),
            INVITE,
            json!({ "o": org, "e": "GONE@example.com", "r": role }),
        )
        .await;
    assert_eq!(
        pending.0["errors"][0]["extensions"]["reason"],
        "DUPLICATE_PENDING"
    );
    assert_eq!(pending.0["errors"][0]["extensions"]["existingId"], id.as_str());
    let revoke = "mutation($id: ID!) { revokeInvitation(input: {id: $id}) { invitation { status revokedBy { email } } } }";
    let revoked = t.gql(Some(&admin), revoke, json!({ "id": id })).await;
    assert_eq!(
        revoked.data()["revokeInvitation"]["invitation"]["status"],
        "REVOKED"
    );
    assert_eq!(
        t.gql(Some(&admin), revoke, json!({ "id": id })).await.code(),
        "CONFLICT"
    );
    let resend = "mutation($id: ID!) { resendInvitation(input: {id: $id}) { invitation { id } } }";
    assert_eq!(
        t.gql(Some(&admin), resend, json!({ "id": id })).await.code(),
        "CONFLICT"
    );
    let listed = t
        .gql(
            Some(&admin),
            "query($o: ID!) { invitations(filter: {organizationId: $o, statuses: [REVOKED], email: \"gone\"}) { totalCount nodes { email } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(listed.data()["invitations"]["totalCount"], 1);

    let brand = "mutation($o: ID!, $l: String, $c: String, $u: String) { updateOrganizationBranding(input: {organizationId: $o, logoUrl: $u, primaryColor: $c, defaultLocale: $l}) { branding { logoUrl } } }";
    for (vars, field) in [
        (
            json!({ "o": org, "u": "http://insecure.example/logo.png" }),
            "logoUrl",
        ),
        (json!({ "o": org, "c": "red" }), "primaryColor"),
        (json!({ "o": org, "l": "xx" }), "defaultLocale"),
    ] {
        let bad = t.gql(Some(&admin), brand, vars).await;
        assert_eq!((bad.code(), bad.field()), ("BAD_USER_INPUT", field));
    }
}

async fn existing_accounts_accept_signed_in_or_with_their_password(t: TestApp) {
    let admin = t.admin_token().await;
    let (org, role) = organization(&t, &admin).await;
    let (_, bob_token) = t.user_with_token(&admin, "bob@example.com").await;
    let (_, eve_token) = t.user_with_token(&admin, "eve@example.com").await;
    t.create_user(&admin, "carol@example.com").await;
    let sink = SmtpSink::start();
    let (_mailer, runner) = mailing_instance(&t, &sink).await;
    let rows = json!([{ "email": "bob@example.com", "roleIds": [role] }, { "email": "carol@example.com", "roleIds": [role] }]);
    t.gql(
        Some(&admin),
        BULK,
        json!({ "input": { "organizationId": org, "invitations": rows } }),
    )
    .await
    .data();
    let mail = sink.wait_for(2, PATIENCE).await;
    let bob = token_in(mail.iter().find(|m| recipient(m) == "bob@example.com").unwrap());
    let carol = token_in(mail.iter().find(|m| recipient(m) == "carol@example.com").unwrap());

    let accept = "mutation($t: String!) { acceptInvitation(input: {token: $t}) { invitation { status } membership { id } session { accessToken } } }";
    let signed_out = t.gql(None, accept, json!({ "t": bob })).await;
    assert_eq!(
        signed_out.code(),
        "UNAUTHENTICATED",
        "an existing account signs in first"
    );
    let wrong_account = t.gql(Some(&eve_token), accept, json!({ "t": bob })).await;
    assert_eq!(
        (wrong_account.code(), wrong_account.field()),
        ("BAD_USER_INPUT", "token")
    );
    let accepted = t.gql(Some(&bob_token), accept, json!({ "t": bob })).await;
    assert_eq!(
        accepted.data()["acceptInvitation"]["invitation"]["status"],
        "ACCEPTED"
    );
    assert!(accepted.data()["acceptInvitation"]["session"].is_null());
    let listed = t
        .gql(
            Some(&bob_token),
            "query($o: ID!) { organization(id: $o) { invitations { totalCount } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(
        listed.data()["organization"]["invitations"]["totalCount"],
        2,
        "bob holds org_admin now"
    );

    // Carol accepts on the page with her password; a wrong one is refused and changes nothing.
    let (status, headers, body) = t
        .send(
            Request::get(format!("/invitations/accept?token={carol}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8(body).unwrap().contains("sign_in"),
        "the existing-account form"
    );
    let cookie = headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = cookie.split_once('=').unwrap().1.to_owned();
    let post = |password: &str| {
        let fields = [
            ("token", carol.as_str()),
            ("csrf_token", csrf.as_str()),
            ("intent", "sign_in"),
            ("password", password),
        ];
        page_post(&fields, Some(&cookie))
    };
    let (status, _, _) = t.send(post("not-her-password")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        t.gql(None, BY_TOKEN, json!({ "t": carol }))
            .await
            .0
            .get("errors")
            .is_none(),
        "still pending"
    );
    let (status, _, _) = t.send(post(PASSWORD)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        t.gql(None, BY_TOKEN, json!({ "t": carol })).await.code(),
        "NOT_FOUND",
        "accepted"
    );
    let failed = t
        .gql(
            Some(&admin),
            "{ auditEvents(filter: {actions: [\"session.login_failed\"]}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        failed.data()["auditEvents"]["totalCount"],
        1,
        "the wrong password is audited like a login"
    );
    runner.stop(std::time::Duration::from_secs(5)).await;
}

async fn guessing_links_is_throttled_and_resends_are_capped(t: TestApp) {
    let admin = t.admin_token().await;
    let (org, role) = organization(&t, &admin).await;
    for i in 0..20 {
        let guess = format!("pci_{:0>43}", i);
        assert_eq!(
            t.gql(None, BY_TOKEN, json!({ "t": guess })).await.code(),
            "NOT_FOUND"
        );
    }
    let throttled = t
        .gql(None, BY_TOKEN, json!({ "t": format!("pci_{:0>43}", 99) }))
        .await;
    assert_eq!(throttled.code(), "RATE_LIMITED");
    assert!(
        throttled.0["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            > 0
    );

    let made = t
        .gql(
            Some(&admin),
            INVITE,
            json!({ "o": org, "e": "often@example.com", "r": role }),
        )
        .await;
    let id = made.data()["createInvitation"]["invitation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resend = "mutation($id: ID!) { resendInvitation(input: {id: $id}) { invitation { sendCount } } }";
    for sends in 2..=6 {
        t.clock.advance(chrono::TimeDelta::seconds(61));
        let resent = t.gql(Some(&admin), resend, json!({ "id": id })).await;
        assert_eq!(
            resent.data()["resendInvitation"]["invitation"]["sendCount"],
            sends
        );
    }
    t.clock.advance(chrono::TimeDelta::seconds(61));
    let capped = t.gql(Some(&admin), resend, json!({ "id": id })).await;
    assert_eq!(capped.code(), "RATE_LIMITED", "five resends in all");
}

async fn dashboards_follow_invitations_on_the_live_audit_feed(t: TestApp) {
    use portcullis::audit::feed;
    use portcullis::audit::{ActionMatch, AuditFilter};
    use portcullis::identity::ClientInfo;
    use portcullis::identity::authenticate::authenticate;

    let admin = t.admin_token().await;
    let (org, role) = organization(&t, &admin).await;
    let actor = authenticate(&t.app, Some(&admin), &ClientInfo::default())
        .await
        .unwrap()
        .actor()
        .unwrap()
        .clone();
    // As the subscription's `actions: ["invitation.*"]` arrives.
    let filter = AuditFilter {
        organization_id: Some(org.parse().unwrap()),
        actions: vec![ActionMatch::parse("actions", "invitation.*").unwrap()],
        ..AuditFilter::default()
    };
    let mut live = feed::subscribe(&t.app, &actor, filter, None, false)
        .await
        .unwrap();
    let made = t
        .gql(
            Some(&admin),
            INVITE,
            json!({ "o": org, "e": "live@example.com", "r": role }),
        )
        .await;
    let id = made.data()["createInvitation"]["invitation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.gql(
        Some(&admin),
        "mutation($id: ID!) { revokeInvitation(input: {id: $id}) { invitation { id } } }",
        json!({ "id": id }),
    )
    .await
    .data();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let item = tokio::time::timeout(PATIENCE, live.recv())
            .await
            .unwrap_or_else(|_| panic!("an event in time; seen {seen:?}"))
            .expect("the feed is open")
            .unwrap();
        seen.push(item.action);
    }
    assert_eq!(seen, ["invitation.created", "invitation.revoked"]);
}

crate::backend_tests!(
    dashboards_follow_invitations_on_the_live_audit_feed,
    guessing_links_is_throttled_and_resends_are_capped,
    invitations_are_bounded_by_what_the_inviter_may_grant,
    bad_input_gets_a_clear_answer_and_changes_need_a_pending_invitation,
    existing_accounts_accept_signed_in_or_with_their_password,
);
