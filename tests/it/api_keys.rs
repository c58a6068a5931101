//! API keys: shown once, authenticate as their owner, listed by prefix, revocable, expiring.

use chrono::Duration;
use serde_json::json;

use crate::support::TestApp;

const CREATE: &str = "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id name prefix expiresAt } } }";
const VIEWER: &str = "{ viewer { user { email } authMethod } }";

async fn api_keys_authenticate_until_revoked(t: TestApp) {
    let admin = t.admin_token().await;
    let (_, token) = t.user_with_token(&admin, "robot@example.com").await;
    let created = t
        .gql(Some(&token), CREATE, json!({ "input": { "name": "deploy bot" } }))
        .await;
    let payload = &created.data()["createApiKey"];
    let secret = payload["secret"].as_str().unwrap().to_owned();
    let prefix = payload["apiKey"]["prefix"].as_str().unwrap();
    assert!(secret.starts_with(prefix) && secret.len() > prefix.len() + 40);

    let viewer = t.gql(Some(&secret), VIEWER, json!({})).await;
    assert_eq!(viewer.data()["viewer"]["user"]["email"], "robot@example.com");
    assert_eq!(viewer.data()["viewer"]["authMethod"], "API_KEY");

    let listed = t
        .gql(
            Some(&token),
            "{ viewer { apiKeys { totalCount nodes { prefix lastUsedAt } } } }",
            json!({}),
        )
        .await;
    let keys = &listed.data()["viewer"]["apiKeys"];
    assert_eq!(keys["totalCount"], 1);
    assert_eq!(keys["nodes"][0]["prefix"], prefix);
    assert!(keys["nodes"][0]["lastUsedAt"].is_string());
    assert!(
        !listed.0.to_string().contains(&secret),
        "the secret is never shown again"
    );

    let mut wrong = secret.clone();
    wrong.pop();
    wrong.push(if secret.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        t.gql(Some(&wrong), VIEWER, json!({})).await.message(),
        "invalid API key"
    );

    let other = t.user_with_token(&admin, "nosy@example.com").await.1;
    let revoke = "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { apiKey { revokedAt } } }";
    let foreign = t
        .gql(Some(&other), revoke, json!({ "id": payload["apiKey"]["id"] }))
        .await;
    assert_eq!(
        foreign.code(),
        "NOT_FOUND",
        "someone else's key does not exist for you"
    );
    let revoked = t
        .gql(Some(&token), revoke, json!({ "id": payload["apiKey"]["id"] }))
        .await;
    assert!(revoked.data()["revokeApiKey"]["apiKey"]["revokedAt"].is_string());
    let refused = t.gql(Some(&secret), VIEWER, json!({})).await;
    assert_eq!(refused.code(), "UNAUTHENTICATED");
    assert_eq!(refused.message(), "API key revoked");
}

async fn api_keys_expire(t: TestApp) {
    let admin = t.admin_token().await;
    let past = t
        .gql(
            Some(&admin),
            CREATE,
            json!({ "input": { "name": "old", "expiresAt": "2020-01-01T00:00:00Z" } }),
        )
        .await;
    assert_eq!(past.code(), "BAD_USER_INPUT");
    assert_eq!(past.field(), "expiresAt");
    let empty = t
        .gql(Some(&admin), CREATE, json!({ "input": { "name": " " } }))
        .await;
    assert_eq!(empty.field(), "name");

    let created = t
        .gql(
            Some(&admin),
            CREATE,
            json!({ "input": { "name": "temp", "expiresAt": "2026-11-27T09:00:00Z" } }),
        )
        .await;
    let secret = created.data()["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(t.gql(Some(&secret), VIEWER, json!({})).await.data()["viewer"].is_object());
    t.clock.advance(Duration::days(2));
    let expired = t.gql(Some(&secret), VIEWER, json!({})).await;
    assert_eq!(expired.message(), "API key expired");
}

async fn api_keys_need_a_caller(t: TestApp) {
    let anonymous = t.gql(None, CREATE, json!({ "input": { "name": "x" } })).await;
    assert_eq!(anonymous.code(), "UNAUTHENTICATED");
}

crate::backend_tests!(
    api_keys_authenticate_until_revoked,
    api_keys_expire,
    api_keys_need_a_caller
);
