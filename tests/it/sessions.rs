//! Login, access tokens, rotating refresh tokens with reuse detection, logout and session lists.

use chrono::Duration;
use serde_json::json;

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};

const REFRESH: &str = "mutation($token: String!) { refreshSession(input: {refreshToken: $token}) { accessToken refreshToken session { id } } }";
const VIEWER: &str = "{ viewer { user { email } authMethod } }";

async fn login_gives_tokens_that_identify_the_viewer(t: TestApp) {
    let login = t.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token = login["accessToken"].as_str().unwrap();
    assert!(login["refreshToken"].as_str().unwrap().starts_with("prt_"));
    assert_eq!(
        login["accessTokenExpiresAt"], "2026-11-26T09:10:00+00:00",
        "ten minutes by default"
    );
    let viewer = t.gql(Some(token), VIEWER, json!({})).await;
    assert_eq!(viewer.data()["viewer"]["user"]["email"], ADMIN_EMAIL);
    assert_eq!(viewer.data()["viewer"]["authMethod"], "PASSWORD");
    let anonymous = t.gql(None, VIEWER, json!({})).await;
    assert!(anonymous.data()["viewer"].is_null());
}

async fn login_failures_do_not_reveal_which_part_was_wrong(t: TestApp) {
    let login =
        "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }";
    let wrong_password = t
        .gql(None, login, json!({ "e": ADMIN_EMAIL, "p": "wrong-password" }))
        .await;
    let unknown_email = t
        .gql(
            None,
            login,
            json!({ "e": "nobody@example.com", "p": "wrong-password" }),
        )
        .await;
    assert_eq!(wrong_password.code(), "UNAUTHENTICATED");
    assert_eq!(
        wrong_password.0["errors"], unknown_email.0["errors"],
        "identical failures"
    );
}

async fn expired_and_tampered_access_tokens_are_rejected(t: TestApp) {
    let login = t.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token = login["accessToken"].as_str().unwrap().to_owned();

    let mut tampered = token.clone();
    let flip = tampered.len() - 5;
    let replacement = if &tampered[flip..flip + 1] == "A" {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(flip..flip + 1, replacement);
    let rejected = t.gql(Some(&tampered), VIEWER, json!({})).await;
    assert_eq!(rejected.code(), "UNAUTHENTICATED");
    assert_eq!(rejected.message(), "invalid access token");
    let garbage = t.gql(Some("not-a-jwt"), VIEWER, json!({})).await;
    assert_eq!(garbage.code(), "UNAUTHENTICATED");

    t.clock.advance(Duration::minutes(11));
    let expired = t.gql(Some(&token), VIEWER, json!({})).await;
    assert_eq!(expired.code(), "UNAUTHENTICATED");
    assert_eq!(expired.message(), "access token expired");

    // A client holding a stale access token can still refresh.
    let refreshed = t
        .gql(Some(&token), REFRESH, json!({ "token": login["refreshToken"] }))
        .await;
    let fresh = refreshed.data()["refreshSession"]["accessToken"]
        .as_str()
        .unwrap();
    assert_eq!(
        t.gql(Some(fresh), VIEWER, json!({})).await.data()["viewer"]["user"]["email"],
        ADMIN_EMAIL
    );
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_session(t: TestApp) {
    let login = t.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let first = t
        .gql(None, REFRESH, json!({ "token": login["refreshToken"] }))
        .await;
    let first = first.data()["refreshSession"].clone();
    assert_ne!(
        first["refreshToken"], login["refreshToken"],
        "a new refresh token each time"
    );
    assert_eq!(first["session"]["id"], login["session"]["id"], "same session");
    let second = t
        .gql(None, REFRESH, json!({ "token": first["refreshToken"] }))
        .await;
    let second = second.data()["refreshSession"].clone();

    // Replaying the spent first token (past the few seconds in which the client that spent it may
    // retry, `refresh_grace.rs`): refused, and the whole session dies with it.
    t.clock.advance(Duration::seconds(6));
    let replay = t
        .gql(None, REFRESH, json!({ "token": first["refreshToken"] }))
        .await;
    assert_eq!(replay.code(), "UNAUTHENTICATED");
    assert!(replay.message().contains("revoked"), "{}", replay.message());
    let descendant = t
        .gql(None, REFRESH, json!({ "token": second["refreshToken"] }))
        .await;
    assert_eq!(
        descendant.code(),
        "UNAUTHENTICATED",
        "tokens descended from the login die too"
    );
    let access = t.gql(second["accessToken"].as_str(), VIEWER, json!({})).await;
    assert_eq!(access.code(), "UNAUTHENTICATED");
    assert_eq!(access.message(), "session revoked");

    let sessions = t.admin_token().await;
    let list = t
        .gql(
            Some(&sessions),
            "{ viewer { sessions { nodes { id revokedReason current } } } }",
            json!({}),
        )
        .await;
    let nodes = list.data()["viewer"]["sessions"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    let old = nodes.iter().find(|n| n["id"] == login["session"]["id"]).unwrap();
    assert_eq!(old["revokedReason"], "refresh_token_reused");
    assert_eq!(old["current"], false);
    assert!(nodes.iter().any(|n| n["current"] == true));

    for bad in [
        "",
        "prt_short",
        "garbage",
        "prt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let refused = t.gql(None, REFRESH, json!({ "token": bad })).await;
        assert_eq!(refused.code(), "UNAUTHENTICATED", "{bad}");
    }
}

async fn refresh_fails_after_the_session_expires(t: TestApp) {
    let login = t.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    t.clock.advance(Duration::days(31));
    let late = t
        .gql(None, REFRESH, json!({ "token": login["refreshToken"] }))
        .await;
    assert_eq!(late.code(), "UNAUTHENTICATED");
    assert_eq!(late.message(), "session expired");
}

async fn logout_and_revoke_end_sessions(t: TestApp) {
    let a = t.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let b = t.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token_a = a["accessToken"].as_str().unwrap();
    let token_b = b["accessToken"].as_str().unwrap();

    let logout = t
        .gql(
            Some(token_a),
            "mutation { logout { session { id revokedAt current } } }",
            json!({}),
        )
        .await;
    assert_eq!(logout.data()["logout"]["session"]["id"], a["session"]["id"]);
    assert!(logout.data()["logout"]["session"]["revokedAt"].is_string());
    assert_eq!(
        t.gql(Some(token_a), VIEWER, json!({})).await.code(),
        "UNAUTHENTICATED"
    );
    let refresh = t.gql(None, REFRESH, json!({ "token": a["refreshToken"] })).await;
    assert_eq!(refresh.code(), "UNAUTHENTICATED");

    // B ends a session of someone else: not found (no leak); its own: done.
    let admin = token_b;
    let (_, user_token) = t.user_with_token(admin, "sessions@example.com").await;
    let revoke = "mutation($id: ID!) { revokeSession(input: {id: $id}) { session { id revokedReason } } }";
    let foreign = t
        .gql(Some(&user_token), revoke, json!({ "id": b["session"]["id"] }))
        .await;
    assert_eq!(foreign.code(), "NOT_FOUND");
    let own = t
        .gql(Some(token_b), revoke, json!({ "id": b["session"]["id"] }))
        .await;
    assert_eq!(own.data()["revokeSession"]["session"]["revokedReason"], "revoked");
    assert_eq!(
        t.gql(Some(token_b), VIEWER, json!({})).await.code(),
        "UNAUTHENTICATED"
    );
}

async fn rotated_signing_keys_keep_old_tokens_valid(t: TestApp) {
    let before = t.admin_token().await;
    t.app.keys.rotate(&t.app.db, t.app.now()).await.expect("rotate");
    let after = t.admin_token().await;
    assert_eq!(
        t.gql(Some(&before), VIEWER, json!({})).await.data()["viewer"]["user"]["email"],
        ADMIN_EMAIL
    );
    assert_eq!(
        t.gql(Some(&after), VIEWER, json!({})).await.data()["viewer"]["user"]["email"],
        ADMIN_EMAIL
    );
    let jwks = t.app.keys.jwks();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "the retired key is still published"
    );

    // Once every token it signed has expired, the retired key leaves the set.
    t.clock.advance(Duration::minutes(11));
    t.app.keys.reload(&t.app.db, t.app.now()).await.expect("reload");
    assert_eq!(t.app.keys.jwks()["keys"].as_array().unwrap().len(), 1);
}

async fn repeated_login_failures_are_rate_limited(t: TestApp) {
    let login = "mutation($p: String!) { login(input: {email: \"admin@example.com\", password: $p}) { accessToken } }";
    for _ in 0..10 {
        let wrong = t.gql(None, login, json!({ "p": "wrong-password" })).await;
        assert_eq!(wrong.code(), "UNAUTHENTICATED");
    }
    let limited = t.gql(None, login, json!({ "p": ADMIN_PASSWORD })).await;
    assert_eq!(limited.code(), "RATE_LIMITED", "even the right password waits");
    assert_eq!(limited.0["errors"][0]["extensions"]["retryAfterSeconds"], 900);
    t.clock.advance(Duration::minutes(15));
    let allowed = t.gql(None, login, json!({ "p": ADMIN_PASSWORD })).await;
    assert!(allowed.data()["login"]["accessToken"].is_string());
}

crate::backend_tests!(
    repeated_login_failures_are_rate_limited,
    login_gives_tokens_that_identify_the_viewer,
    login_failures_do_not_reveal_which_part_was_wrong,
    expired_and_tampered_access_tokens_are_rejected,
    refresh_tokens_rotate_and_reuse_revokes_the_session,
    refresh_fails_after_the_session_expires,
    logout_and_revoke_end_sessions,
    rotated_signing_keys_keep_old_tokens_valid,
);
