//! A refresh whose answer was lost can be retried: the same refresh token presented again shortly
//! after its first use, by the same client, gets the same successor instead of ending the session.
//! Anything else that presents a spent token is still reuse, and revokes the session.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, header};
use chrono::Duration;
use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Gql, TestApp};

const REFRESH: &str = "mutation($token: String!) { refreshSession(input: {refreshToken: $token}) { accessToken refreshToken session { id } } }";
const VIEWER: &str = "{ viewer { user { email } } }";
const PHONE: Client = Client {
    ip: "198.51.100.20",
    agent: "ExampleApp/1.0 (phone)",
};

/// Where a request comes from: the socket's address and the `User-Agent`.
#[derive(Debug, Clone, Copy)]
struct Client {
    ip: &'static str,
    agent: &'static str,
}

impl Client {
    fn at_ip(self, ip: &'static str) -> Self {
        Self { ip, ..self }
    }

    fn with_agent(self, agent: &'static str) -> Self {
        Self { agent, ..self }
    }
}

/// POSTs a GraphQL operation as `client` would.
async fn gql_from(t: &TestApp, client: Client, token: Option<&str>, query: &str, variables: Value) -> Gql {
    let mut request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/graphql-response+json")
        .header(header::USER_AGENT, client.agent);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = json!({ "query": query, "variables": variables }).to_string();
    let mut request = request.body(Body::from(body)).expect("request");
    let addr: SocketAddr = format!("{}:50000", client.ip).parse().expect("an address");
    request.extensions_mut().insert(ConnectInfo(addr));
    let (_, _, body) = t.send(request).await;
    Gql(serde_json::from_slice(&body).expect("JSON response"))
}

/// Exchanges `token` as `client`.
async fn refresh(t: &TestApp, client: Client, token: &Value) -> Gql {
    gql_from(t, client, None, REFRESH, json!({ "token": token })).await
}

/// Logs in as the administrator from `client`; returns the `login` payload.
async fn login(t: &TestApp, client: Client) -> Value {
    let login = gql_from(
        t,
        client,
        None,
        "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) {
           accessToken refreshToken session { id } } }",
        json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD }),
    )
    .await;
    login.data()["login"].clone()
}

/// The email the viewer query finds with `access`, or the error code.
async fn viewer(t: &TestApp, access: &Value) -> String {
    let viewer = t.gql(access.as_str(), VIEWER, json!({})).await;
    match viewer.0.get("errors") {
        Some(_) => viewer.code().to_owned(),
        None => viewer.data()["viewer"]["user"]["email"]
            .as_str()
            .unwrap()
            .to_owned(),
    }
}

/// Why the administrator's session `id` was revoked (null while it lives), read with a fresh login.
async fn revoked_reason(t: &TestApp, id: &Value) -> Value {
    let admin = t.admin_token().await;
    let list = t
        .gql(
            Some(&admin),
            "{ viewer { sessions(first: 100) { nodes { id revokedReason } } } }",
            json!({}),
        )
        .await;
    list.data()["viewer"]["sessions"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| &s["id"] == id)
        .expect("the session is listed")["revokedReason"]
        .clone()
}

/// The audit events of `action` (newest first): (ip, user agent, metadata).
async fn events(t: &TestApp, action: &str) -> Vec<(Value, Value, Value)> {
    let admin = t.admin_token().await;
    let response = t
        .gql(
            Some(&admin),
            "query($a: [String!]) { auditEvents(first: 100, filter: {actions: $a}) {
               edges { node { context { ip userAgent } metadata } } } }",
            json!({ "a": [action] }),
        )
        .await;
    response.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let node = &e["node"];
            (
                node["context"]["ip"].clone(),
                node["context"]["userAgent"].clone(),
                node["metadata"].clone(),
            )
        })
        .collect()
}

/// Asserts `replay` was refused as reuse and the session is gone, with every token in it.
async fn assert_revoked(t: &TestApp, replay: &Gql, session: &Value, successor: &Value) {
    assert_eq!(replay.code(), "UNAUTHENTICATED");
    assert!(replay.message().contains("revoked"), "{}", replay.message());
    assert_eq!(revoked_reason(t, session).await, "refresh_token_reused");
    let descendant = refresh(t, PHONE, &successor["refreshToken"]).await;
    assert_eq!(descendant.code(), "UNAUTHENTICATED", "its successor dies too");
    assert_eq!(viewer(t, &successor["accessToken"]).await, "UNAUTHENTICATED");
}

async fn a_retry_within_the_window_gets_the_same_successor(t: TestApp) {
    let login = login(&t, PHONE).await;
    let first = refresh(&t, PHONE, &login["refreshToken"]).await;
    let first = first.data()["refreshSession"].clone();

    // The answer never arrived; the client tries again a few seconds later.
    t.clock.advance(Duration::seconds(4));
    let retry = refresh(&t, PHONE, &login["refreshToken"]).await;
    let retry = retry.data()["refreshSession"].clone();
    assert_eq!(retry["refreshToken"], first["refreshToken"], "the same successor");
    assert_eq!(retry["session"]["id"], login["session"]["id"]);
    assert_eq!(
        viewer(&t, &retry["accessToken"]).await,
        ADMIN_EMAIL,
        "a working access token"
    );
    assert_eq!(viewer(&t, &first["accessToken"]).await, ADMIN_EMAIL);
    assert!(revoked_reason(&t, &login["session"]["id"]).await.is_null());

    // Again, right at the end of the window: still a retry.
    t.clock.advance(Duration::seconds(1));
    let again = refresh(&t, PHONE, &login["refreshToken"]).await;
    assert_eq!(
        again.data()["refreshSession"]["refreshToken"],
        first["refreshToken"]
    );

    // The successor works as any refresh token, once.
    let next = refresh(&t, PHONE, &first["refreshToken"]).await;
    let next = next.data()["refreshSession"].clone();
    assert_ne!(next["refreshToken"], first["refreshToken"]);
    assert_eq!(viewer(&t, &next["accessToken"]).await, ADMIN_EMAIL);

    let refreshed = events(&t, "session.refreshed").await;
    assert_eq!(refreshed.len(), 4, "{refreshed:?}");
    let retried: Vec<_> = refreshed
        .iter()
        .filter(|(_, _, metadata)| metadata["retried"] == true)
        .collect();
    assert_eq!(retried.len(), 2, "each retry is audited as one: {refreshed:?}");
    for (ip, agent, _) in &refreshed {
        assert_eq!(ip, PHONE.ip);
        assert_eq!(agent, PHONE.agent);
    }
    assert!(events(&t, "session.refresh_reused").await.is_empty());
}

async fn a_replay_after_the_window_is_reuse(t: TestApp) {
    let login = login(&t, PHONE).await;
    let first = refresh(&t, PHONE, &login["refreshToken"]).await;
    let first = first.data()["refreshSession"].clone();
    t.clock.advance(Duration::seconds(6));
    let late = refresh(&t, PHONE, &login["refreshToken"]).await;
    assert_revoked(&t, &late, &login["session"]["id"], &first).await;
    let reused = events(&t, "session.refresh_reused").await;
    assert_eq!(reused.len(), 1);
    assert_eq!(reused[0].0, PHONE.ip);
}

async fn a_replay_from_another_client_is_reuse(t: TestApp) {
    for other in [PHONE.at_ip("203.0.113.99"), PHONE.with_agent("curl/8.5.0")] {
        let login = login(&t, PHONE).await;
        let first = refresh(&t, PHONE, &login["refreshToken"]).await;
        let first = first.data()["refreshSession"].clone();
        t.clock.advance(Duration::seconds(1));
        let stolen = refresh(&t, other, &login["refreshToken"]).await;
        assert_revoked(&t, &stolen, &login["session"]["id"], &first).await;
    }
    let reused = events(&t, "session.refresh_reused").await;
    assert_eq!(reused.len(), 2);
    assert_eq!(reused[0].1, "curl/8.5.0", "the replaying client is recorded");
    assert_eq!(reused[1].0, "203.0.113.99");
}

async fn a_replay_after_the_successor_was_used_is_reuse(t: TestApp) {
    let login = login(&t, PHONE).await;
    let first = refresh(&t, PHONE, &login["refreshToken"]).await;
    let first = first.data()["refreshSession"].clone();
    let second = refresh(&t, PHONE, &first["refreshToken"]).await;
    let second = second.data()["refreshSession"].clone();
    // Within the window, from the same client: but the client has moved on, so this is a replay.
    let replay = refresh(&t, PHONE, &login["refreshToken"]).await;
    assert_revoked(&t, &replay, &login["session"]["id"], &second).await;
}

async fn concurrent_refreshes_of_one_token_share_one_successor(t: TestApp) {
    for round in 0..3 {
        let login = login(&t, PHONE).await;
        let racers: Vec<_> = (0..4)
            .map(|_| {
                let (t, token) = (t.clone(), login["refreshToken"].clone());
                tokio::spawn(async move { refresh(&t, PHONE, &token).await })
            })
            .collect();
        let mut successors = Vec::new();
        for racer in racers {
            let outcome = racer.await.unwrap();
            successors.push(outcome.data()["refreshSession"]["refreshToken"].clone());
        }
        assert!(
            successors.iter().all(|s| s == &successors[0]),
            "round {round}: one successor (its id is in the token): {successors:?}"
        );
        let next = refresh(&t, PHONE, &successors[0]).await;
        assert!(next.data()["refreshSession"]["accessToken"].is_string());
        assert!(revoked_reason(&t, &login["session"]["id"]).await.is_null());
    }
}

async fn no_grace_window_means_any_replay_is_reuse(t: TestApp) {
    let strict = t.instance(|c| c.refresh_reuse_grace_seconds = 0).await;
    let login = login(&strict, PHONE).await;
    let first = refresh(&strict, PHONE, &login["refreshToken"]).await;
    let first = first.data()["refreshSession"].clone();
    let replay = refresh(&strict, PHONE, &login["refreshToken"]).await;
    assert_revoked(&strict, &replay, &login["session"]["id"], &first).await;

    // Racing itself, a client without a window gets one success.
    let login = self::login(&strict, PHONE).await;
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let (t, token) = (strict.clone(), login["refreshToken"].clone());
            tokio::spawn(async move { refresh(&t, PHONE, &token).await })
        })
        .collect();
    let mut succeeded = 0;
    for racer in racers {
        let outcome = racer.await.unwrap();
        if outcome.0.get("errors").is_none() {
            succeeded += 1;
        } else {
            assert_eq!(outcome.code(), "UNAUTHENTICATED");
        }
    }
    assert_eq!(succeeded, 1);
}

crate::backend_tests!(
    a_retry_within_the_window_gets_the_same_successor,
    a_replay_after_the_window_is_reuse,
    a_replay_from_another_client_is_reuse,
    a_replay_after_the_successor_was_used_is_reuse,
    concurrent_refreshes_of_one_token_share_one_successor,
    no_grace_window_means_any_replay_is_reuse,
);
