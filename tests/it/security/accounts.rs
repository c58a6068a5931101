//! Account changes: email and password changes, disabling, sessions ending with them.

use axum::body::Body;
use axum::http::{Request, header};
use portcullis::app::App;
use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, TestApp, test_config};

const UPDATE: &str = "mutation($input: UpdateUserInput!) { updateUser(input: $input) { user { id email } } }";
const VIEWER: &str = "{ viewer { user { id email } } }";
const REFRESH: &str =
    "mutation($token: String!) { refreshSession(input: {refreshToken: $token}) { accessToken } }";

/// The metadata of the newest event with `action`.
async fn last_metadata(t: &TestApp, admin: &str, action: &str) -> Value {
    let events = t
        .gql(
            Some(admin),
            "query($a: [String!]) { auditEvents(first: 1, filter: {actions: $a}) { edges { node { metadata } } } }",
            json!({ "a": [action] }),
        )
        .await;
    events.data()["auditEvents"]["edges"][0]["node"]["metadata"].clone()
}

/// A user changing their own email is refused the same way whether the address is taken or not
/// (no account-existence oracle), even with the right current password; an administrator changes it.
async fn users_cannot_change_their_own_email_yet(t: TestApp) {
    let admin = t.admin_token().await;
    t.create_user(&admin, "taken@example.com").await;
    let (me, token) = t.user_with_token(&admin, "self@example.com").await;

    let mut refusals = Vec::new();
    for (email, current) in [
        ("taken@example.com", None),
        ("free@example.com", None),
        ("TAKEN@example.com", Some(PASSWORD)),
        ("free@example.com", Some(PASSWORD)),
    ] {
        let refused = t
            .gql(
                Some(&token),
                UPDATE,
                json!({ "input": { "id": me, "email": email, "currentPassword": current } }),
            )
            .await;
        assert_eq!(refused.code(), "BAD_USER_INPUT", "{email}");
        assert_eq!(refused.field(), "email");
        assert!(
            refused
                .message()
                .contains("an administrator must change your email"),
            "{}",
            refused.message()
        );
        refusals.push(refused.0["errors"].clone());
    }
    assert!(
        refusals.windows(2).all(|pair| pair[0] == pair[1]),
        "taken and free addresses get the same answer: {refusals:?}"
    );
    let viewer = t.gql(Some(&token), VIEWER, json!({})).await;
    assert_eq!(viewer.data()["viewer"]["user"]["email"], "self@example.com");
    // Keeping one's own address, or only renaming, still works.
    let same = t
        .gql(
            Some(&token),
            UPDATE,
            json!({ "input": { "id": me, "email": "Self@Example.com", "displayName": "Self" } }),
        )
        .await;
    assert_eq!(same.data()["updateUser"]["user"]["email"], "self@example.com");

    // An administrator changes it, and may be told that an address is taken (they list users).
    let taken = t
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "input": { "id": me, "email": "taken@example.com" } }),
        )
        .await;
    assert_eq!(taken.code(), "CONFLICT");
    assert_eq!(taken.field(), "email");
    let changed = t
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "input": { "id": me, "email": "new-self@example.com" } }),
        )
        .await;
    assert_eq!(
        changed.data()["updateUser"]["user"]["email"],
        "new-self@example.com"
    );

    // An administrator's own change needs their current password.
    let admin_id = t.gql(Some(&admin), VIEWER, json!({})).await.data()["viewer"]["user"]["id"].clone();
    let without = t
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "input": { "id": admin_id, "email": "root@example.com" } }),
        )
        .await;
    assert_eq!(without.code(), "BAD_USER_INPUT");
    assert_eq!(without.field(), "currentPassword");
    let wrong = t
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "input": { "id": admin_id, "email": "root@example.com", "currentPassword": "not-the-one" } }),
        )
        .await;
    assert_eq!(wrong.field(), "currentPassword");
    let own = t
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "input": { "id": admin_id, "email": "root@example.com", "currentPassword": ADMIN_PASSWORD } }),
        )
        .await;
    assert_eq!(own.data()["updateUser"]["user"]["email"], "root@example.com");
}

/// A new password ends every other session of the account (their refresh tokens too) and keeps
/// the one that changed it; the change is audited with the count. A password an administrator
/// sets ends all of the user's sessions.
async fn a_new_password_ends_the_other_sessions(t: TestApp) {
    let admin = t.admin_token().await;
    let me = t.create_user(&admin, "careful@example.com").await;
    let here = t.login("careful@example.com", PASSWORD).await;
    let there = t.login("careful@example.com", PASSWORD).await;
    let here_token = here["accessToken"].as_str().unwrap();
    let there_token = there["accessToken"].as_str().unwrap();

    let changed = t
        .gql(
            Some(here_token),
            UPDATE,
            json!({ "input": { "id": me, "password": "a-new-password-2", "currentPassword": PASSWORD } }),
        )
        .await;
    changed.data();
    assert_eq!(
        t.gql(Some(here_token), VIEWER, json!({})).await.data()["viewer"]["user"]["id"],
        me.as_str(),
        "the session that changed it goes on"
    );
    let ended = t.gql(Some(there_token), VIEWER, json!({})).await;
    assert_eq!(ended.code(), "UNAUTHENTICATED");
    assert_eq!(ended.message(), "session revoked");
    let refresh = t
        .gql(None, REFRESH, json!({ "token": there["refreshToken"] }))
        .await;
    assert_eq!(refresh.code(), "UNAUTHENTICATED");
    let sessions = t
        .gql(
            Some(here_token),
            "{ viewer { sessions { nodes { id revokedReason } } } }",
            json!({}),
        )
        .await;
    let nodes = sessions.data()["viewer"]["sessions"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    let other = nodes.iter().find(|n| n["id"] == there["session"]["id"]).unwrap();
    assert_eq!(other["revokedReason"], "password_changed");
    let metadata = last_metadata(&t, &admin, "user.updated").await;
    assert_eq!(metadata["sessionsEnded"], 1, "{metadata}");

    // An administrator's reset ends them all, the user's current one included.
    let reset = t
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "input": { "id": me, "password": "reset-by-admin-3" } }),
        )
        .await;
    reset.data();
    assert_eq!(
        t.gql(Some(here_token), VIEWER, json!({})).await.code(),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        t.gql(Some(&admin), VIEWER, json!({})).await.data()["viewer"]["user"]["email"],
        ADMIN_EMAIL,
        "the administrator's own session is not theirs to lose"
    );
}

/// Disabling an account revokes its API keys (audited); re-enabling it does not bring them back.
async fn disabling_revokes_api_keys_for_good(t: TestApp) {
    let admin = t.admin_token().await;
    let (id, token) = t.user_with_token(&admin, "robot-owner@example.com").await;
    let key = t
        .gql(
            Some(&token),
            "mutation { createApiKey(input: {name: \"ci\"}) { secret } }",
            json!({}),
        )
        .await;
    let key = key.data()["createApiKey"]["secret"].as_str().unwrap().to_owned();
    assert!(t.gql(Some(&key), VIEWER, json!({})).await.data()["viewer"].is_object());

    for mutation in ["disableUser", "enableUser"] {
        t.gql(
            Some(&admin),
            &format!("mutation($id: ID!) {{ {mutation}(input: {{id: $id}}) {{ user {{ id }} }} }}"),
            json!({ "id": id }),
        )
        .await
        .data();
    }
    let refused = t.gql(Some(&key), VIEWER, json!({})).await;
    assert_eq!(refused.code(), "UNAUTHENTICATED");
    assert_eq!(refused.message(), "API key revoked");
    let metadata = last_metadata(&t, &admin, "user.disabled").await;
    assert_eq!(metadata["apiKeysRevoked"], 1, "{metadata}");
    assert_eq!(metadata["sessionsEnded"], 1, "{metadata}");
    // The owner signs in again and sees the key as revoked.
    let token = t.login("robot-owner@example.com", PASSWORD).await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let keys = t
        .gql(
            Some(&token),
            "{ viewer { apiKeys { nodes { revokedAt } } } }",
            json!({}),
        )
        .await;
    assert!(keys.data()["viewer"]["apiKeys"]["nodes"][0]["revokedAt"].is_string());
}

/// Once the bootstrap administrator changed their email, a restart with the same configuration
/// does not create a second super-administrator under the old address.
async fn bootstrap_does_not_return_after_the_administrator_changes_email(t: TestApp) {
    let admin = t.admin_token().await;
    let admin_id = t.gql(Some(&admin), VIEWER, json!({})).await.data()["viewer"]["user"]["id"].clone();
    t.gql(
        Some(&admin),
        UPDATE,
        json!({ "input": { "id": admin_id, "email": "boss@example.com", "currentPassword": ADMIN_PASSWORD } }),
    )
    .await
    .data();

    let restarted = App::start(test_config(t.app.db.url()), t.clock.clone())
        .await
        .expect("app restarts");
    drop(restarted);
    let login = t
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }",
            json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(login.code(), "UNAUTHENTICATED", "no new admin@example.com");
    let admin = t.login("boss@example.com", ADMIN_PASSWORD).await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let users = t.gql(Some(&admin), "{ users { totalCount } }", json!({})).await;
    assert_eq!(users.data()["users"]["totalCount"], 1);
}

/// Erasure pseudonymizes a person's email inside a recorded policy source and in export search
/// terms, whatever its case.
async fn erasure_reaches_emails_in_policy_sources_and_export_searches(t: TestApp) {
    let admin = t.admin_token().await;
    let pat = t.create_user(&admin, "pat@example.com").await;
    t.gql(
        Some(&admin),
        "mutation($input: CreatePolicyInput!) { createPolicy(input: $input) { policy { id } } }",
        json!({ "input": { "name": "pat reads", "source": "permit (principal, action == Portcullis::Action::\"user.list\", resource) when { principal.email == \"pat@example.com\" };" } }),
    )
    .await
    .data();
    for search in ["Pat@Example.COM", "logins of pat@example.com"] {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("format", "ndjson")
            .append_pair("search", search)
            .finish();
        let (status, _, _) = t
            .send(
                Request::get(format!("/audit/export?{query}"))
                    .header(header::AUTHORIZATION, format!("Bearer {admin}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert!(status.is_success());
    }
    let erased = t
        .gql(
            Some(&admin),
            "mutation($u: ID!) { eraseAuditPersonalData(input: {userId: $u}) { erasedEvents } }",
            json!({ "u": pat }),
        )
        .await;
    erased.data();
    let (_, _, log) = t
        .send(
            Request::get("/audit/export?format=ndjson")
                .header(header::AUTHORIZATION, format!("Bearer {admin}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let log = String::from_utf8(log).unwrap().to_ascii_lowercase();
    assert!(!log.contains("pat@example.com"), "{log}");
    assert!(log.contains("principal.email == \\\"erased-"), "{log}");
    assert!(log.contains("logins of erased-"), "{log}");
    let verified = t.gql(Some(&admin), "{ verifyAuditLog { ok } }", json!({})).await;
    assert_eq!(verified.data()["verifyAuditLog"]["ok"], true);
}

crate::backend_tests!(
    users_cannot_change_their_own_email_yet,
    a_new_password_ends_the_other_sessions,
    disabling_revokes_api_keys_for_good,
    bootstrap_does_not_return_after_the_administrator_changes_email,
    erasure_reaches_emails_in_policy_sources_and_export_searches,
);
