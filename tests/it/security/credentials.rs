//! Credentials: tampered and forged tokens, refresh reuse, revoked API keys, export links.
//!
//! Already proven elsewhere, not repeated here: a tampered and an expired access token
//! (`sessions::expired_and_tampered_access_tokens_are_rejected`), refresh-token reuse ending the
//! whole family (`sessions::refresh_tokens_rotate_and_reuse_revokes_the_session`), a revoked API key
//! (`api_keys::api_keys_authenticate_until_revoked`), an export link with edited parameters and
//! after expiry (`audit_export::signed_links_work_once_for_their_parameters`), a flood of tokens
//! naming unknown keys (`cluster_keys::unknown_kids_cause_a_bounded_number_of_key_reloads`).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};

pub(crate) const VIEWER: &str = "{ viewer { user { email } } }";
const REFRESH: &str = "mutation($token: String!) { refreshSession(input: {refreshToken: $token}) { accessToken accessTokenExpiresAt session { expiresAt } } }";

/// The claims of a real token, to put under forged headers and signatures.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The published keys: (kid, raw public key) of each.
async fn published_keys(t: &TestApp) -> Vec<(String, Vec<u8>)> {
    let (status, _, body) = t
        .send(
            Request::get("/.well-known/jwks.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let jwks: Value = serde_json::from_slice(&body).unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| {
            (
                key["kid"].as_str().unwrap().to_owned(),
                URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

/// `claims` signed by a fresh Ed25519 key that the gateway does not have, under `kid`.
pub(crate) fn signed_by_a_stranger(claims: &Value, kid: &str) -> String {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(pkcs8.as_ref())).unwrap()
}

pub(crate) async fn assert_refused(t: &TestApp, token: &str, why: &str) {
    let refused = t.gql(Some(token), VIEWER, json!({})).await;
    assert_eq!(refused.code(), "UNAUTHENTICATED", "{why}: {:?}", refused.0);
}

/// `alg: none`, HS256 keyed with the public key, another Ed25519 key under the real `kid`, an
/// unknown `kid`, and tokens of the wrong kind (an export link as a bearer token) are all refused.
async fn forged_access_tokens_are_refused(t: TestApp) {
    let token = t.admin_token().await;
    let claims = claims_of(&token);
    let (kid, public_key) = published_keys(&t).await.remove(0);

    let none_header = json!({ "alg": "none", "typ": "JWT", "kid": kid });
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(none_header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    assert_refused(&t, &unsigned, "alg none").await;
    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.kid = Some(kid.clone());
    let confused = jsonwebtoken::encode(&hs256, &claims, &EncodingKey::from_secret(&public_key)).unwrap();
    assert_refused(&t, &confused, "HS256 with the public key").await;
    assert_refused(
        &t,
        &signed_by_a_stranger(&claims, &kid),
        "a stranger's key, real kid",
    )
    .await;
    let unknown = Uuid::now_v7().to_string();
    assert_refused(&t, &signed_by_a_stranger(&claims, &unknown), "unknown kid").await;
    assert_refused(&t, &signed_by_a_stranger(&claims, "not-a-uuid"), "garbage kid").await;

    // Tokens of one kind do not pass for the other.
    let link = t
        .gql(
            Some(&token),
            "mutation { createAuditExport(input: {format: CSV}) { url } }",
            json!({}),
        )
        .await;
    let url = link.data()["createAuditExport"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let link_token = url.rsplit_once("token=").unwrap().1.to_owned();
    assert_refused(&t, &link_token, "an export link as a bearer token").await;
    let (status, _, _) = t
        .send(
            Request::get(format!("/audit/export?format=csv&token={token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an access token as an export link"
    );
    // The real token still works: nothing above disturbed it.
    assert_eq!(
        t.gql(Some(&token), VIEWER, json!({})).await.data()["viewer"]["user"]["email"],
        ADMIN_EMAIL
    );
}

/// An access token never outlives its session: refreshing near the session's end gives a token
/// that expires with it, and a token that claims to live longer is refused once the session ends.
async fn access_tokens_end_with_their_session(t: TestApp) {
    let login = t.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let session_ends = t.app.now() + t.app.session_ttl();
    t.clock.advance(t.app.session_ttl() - Duration::minutes(3));
    let refreshed = t
        .gql(None, REFRESH, json!({ "token": login["refreshToken"] }))
        .await;
    let refreshed = refreshed.data()["refreshSession"].clone();
    assert_eq!(
        refreshed["accessTokenExpiresAt"], refreshed["session"]["expiresAt"],
        "capped at the session's end, not ten minutes on"
    );
    assert_eq!(refreshed["accessTokenExpiresAt"], session_ends.0.to_rfc3339());
    let token = refreshed["accessToken"].as_str().unwrap();
    assert!(t.gql(Some(token), VIEWER, json!({})).await.data()["viewer"].is_object());

    t.clock.advance(Duration::minutes(4));
    assert_refused(&t, token, "past the session's end").await;
    // A token signed to live longer (as an instance without the cap would) is refused too.
    let claims = claims_of(token);
    let long_lived = t
        .app
        .keys
        .issue(
            claims["sub"].as_str().unwrap().parse().unwrap(),
            claims["sid"].as_str().unwrap().parse().unwrap(),
            t.app.now() + Duration::days(1),
            t.app.now(),
        )
        .unwrap();
    let refused = t.gql(Some(&long_lived.token), VIEWER, json!({})).await;
    assert_eq!(refused.code(), "UNAUTHENTICATED");
    assert_eq!(refused.message(), "session expired");
}

/// Two refreshes of one token at the same time make exactly one successor: from one client, within
/// the retry window, both get it; with the window off, exactly one succeeds (`refresh_grace.rs`).
async fn two_concurrent_refreshes_of_one_token_make_one_successor(t: TestApp) {
    for round in 0..3 {
        let login = t.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let refresh = |t: TestApp, token: Value| {
            tokio::spawn(async move {
                let query = "mutation($token: String!) { refreshSession(input: {refreshToken: $token}) { refreshToken } }";
                t.gql(None, query, json!({ "token": token })).await
            })
        };
        let first = refresh(t.clone(), login["refreshToken"].clone());
        let second = refresh(t.clone(), login["refreshToken"].clone());
        let outcomes = [first.await.unwrap(), second.await.unwrap()];
        let successors: Vec<&Value> = outcomes
            .iter()
            .map(|o| &o.data()["refreshSession"]["refreshToken"])
            .collect();
        assert_eq!(successors[0], successors[1], "round {round}: {outcomes:?}");
    }
}

/// A signed export link dies with the session or API key that made it.
async fn export_links_die_with_the_credential_that_made_them(t: TestApp) {
    let create = "mutation { createAuditExport(input: {format: NDJSON}) { url } }";
    let path_of = |url: &str| url.trim_start_matches("http://portcullis.test").to_owned();
    let get = |path: String| {
        let t = t.clone();
        async move { t.send(Request::get(path).body(Body::empty()).unwrap()).await.0 }
    };

    let token = t.admin_token().await;
    let link = t.gql(Some(&token), create, json!({})).await;
    let by_session = path_of(link.data()["createAuditExport"]["url"].as_str().unwrap());
    assert_eq!(get(by_session.clone()).await, StatusCode::OK);
    let key = t
        .gql(
            Some(&token),
            "mutation { createApiKey(input: {name: \"exporter\"}) { secret apiKey { id } } }",
            json!({}),
        )
        .await;
    let key_id = key.data()["createApiKey"]["apiKey"]["id"].clone();
    let secret = key.data()["createApiKey"]["secret"].as_str().unwrap().to_owned();
    let link = t.gql(Some(&secret), create, json!({})).await;
    let by_key = path_of(link.data()["createAuditExport"]["url"].as_str().unwrap());
    assert_eq!(get(by_key.clone()).await, StatusCode::OK);

    t.gql(
        Some(&token),
        "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { apiKey { id } } }",
        json!({ "id": key_id }),
    )
    .await
    .data();
    assert_eq!(
        get(by_key).await,
        StatusCode::UNAUTHORIZED,
        "after the key's revocation"
    );
    t.gql(Some(&token), "mutation { logout { session { id } } }", json!({}))
        .await
        .data();
    assert_eq!(get(by_session).await, StatusCode::UNAUTHORIZED, "after logout");
}

crate::backend_tests!(
    forged_access_tokens_are_refused,
    access_tokens_end_with_their_session,
    two_concurrent_refreshes_of_one_token_make_one_successor,
    export_links_die_with_the_credential_that_made_them,
);
