//! WebSockets: every message authenticated as of now, protocol close codes, caps.

use std::sync::Arc;

use chrono::TimeDelta;
use futures_util::{SinkExt as _, StreamExt as _};
use portcullis::app::App;
use portcullis::config::Config;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::support::{PASSWORD, TestApp};
use crate::websocket::{
    HEARTBEAT, LEGACY_WS, Server, TRANSPORT_WS, WAIT, Ws, connect, init, next_frame, recv, recv_close, send,
    viewer_id,
};

const OWN_FEED: &str = "subscription { auditEvents(own: true) { cursor node { action } } }";

/// The same gateway with some settings changed.
fn configured(t: &TestApp, change: impl FnOnce(&mut Config)) -> App {
    let mut config = (*t.app.config).clone();
    change(&mut config);
    let mut app = t.app.clone();
    app.config = Arc::new(config);
    app
}

/// A socket authenticated with `credential` and following its user's own audit feed, shown to be
/// live by one event (an API key created over HTTP with `token`).
async fn following_own_feed(t: &TestApp, server: &Server, credential: &str, token: &str) -> Ws {
    let mut ws = connect(server, TRANSPORT_WS).await;
    init(
        &mut ws,
        json!({ "authorization": format!("Bearer {credential}") }),
    )
    .await;
    send(
        &mut ws,
        json!({ "id": "feed", "type": "subscribe", "payload": { "query": OWN_FEED } }),
    )
    .await;
    // The subscription is registered before the next message is read, and the feed starts from
    // the newest event: one created after a round trip is delivered.
    send(&mut ws, json!({ "type": "ping" })).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    t.gql(
        Some(token),
        "mutation { createApiKey(input: { name: \"probe\" }) { apiKey { id } } }",
        json!({}),
    )
    .await
    .data();
    let event = recv(&mut ws).await;
    assert_eq!(event["id"], "feed", "{event:#}");
    assert_eq!(
        event["payload"]["data"]["auditEvents"]["node"]["action"], "api_key.created",
        "{event:#}"
    );
    ws
}

/// After a revocation: the next operation on `ws` is not answered, and the socket closes with 4403
/// (ending the feed). Whatever arrives before the close frame must be no answer to it.
async fn refused_from_now_on(ws: &mut Ws, operation: &str, reason: &str) {
    // The close may already be on its way; sending into a closing socket is allowed to fail.
    let _ = ws
        .send(Message::text(
            json!({ "id": "after", "type": "subscribe", "payload": { "query": operation } }).to_string(),
        ))
        .await;
    let frame = closed_with(ws).await;
    assert_eq!(u16::from(frame.code), 4403, "{frame:?}");
    assert_eq!(frame.reason.as_str(), reason);
}

/// Reads until the close frame, failing on any answer to the operation `after`.
async fn closed_with(ws: &mut Ws) -> CloseFrame {
    loop {
        match next_frame(ws).await {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(text.as_str()).expect("JSON");
                assert_ne!(message["id"], "after", "answered after revocation: {message:#}");
            }
            Some(Ok(Message::Close(Some(frame)))) => return frame,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

async fn websocket_ends_at_logout(t: TestApp) {
    let admin = t.admin_token().await;
    let (_, token) = t.user_with_token(&admin, "ws-logout@example.com").await;
    let server = Server::start(&t).await;
    let mut ws = following_own_feed(&t, &server, &token, &token).await;

    t.gql(Some(&token), "mutation { logout { session { id } } }", json!({}))
        .await
        .data();
    refused_from_now_on(&mut ws, "{ viewer { user { id } } }", "session revoked").await;
    drop(ws);
    server.stop().await;
}

async fn websocket_ends_when_its_session_is_revoked(t: TestApp) {
    let admin = t.admin_token().await;
    let email = "ws-revoke@example.com";
    t.create_user(&admin, email).await;
    let first = t.login(email, PASSWORD).await;
    let token = first["accessToken"].as_str().expect("token").to_owned();
    let session = first["session"]["id"].as_str().expect("session").to_owned();
    let other = t.login(email, PASSWORD).await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let server = Server::start(&t).await;
    let mut ws = following_own_feed(&t, &server, &token, &token).await;

    // Revoked from the user's other session.
    t.gql(
        Some(&other),
        "mutation($id: ID!) { revokeSession(input: { id: $id }) { session { id } } }",
        json!({ "id": session }),
    )
    .await
    .data();
    refused_from_now_on(
        &mut ws,
        "mutation { createApiKey(input: { name: \"late\" }) { secret } }",
        "session revoked",
    )
    .await;
    drop(ws);
    server.stop().await;
}

/// A new API key of the user `token` signs in as: (secret, id).
async fn api_key(t: &TestApp, token: &str) -> (String, String) {
    let created = t
        .gql(
            Some(token),
            "mutation { createApiKey(input: { name: \"socket\" }) { secret apiKey { id } } }",
            json!({}),
        )
        .await;
    let field = |pointer: &str| {
        created.data()["createApiKey"]
            .pointer(pointer)
            .and_then(Value::as_str)
            .expect("secret and id")
            .to_owned()
    };
    (field("/secret"), field("/apiKey/id"))
}

async fn websocket_ends_when_its_api_key_is_revoked(t: TestApp) {
    let admin = t.admin_token().await;
    let (_, token) = t.user_with_token(&admin, "ws-key@example.com").await;
    let (secret, key) = api_key(&t, &token).await;
    let server = Server::start(&t).await;
    let mut ws = following_own_feed(&t, &server, &secret, &token).await;

    t.gql(
        Some(&token),
        "mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { id } } }",
        json!({ "id": key }),
    )
    .await
    .data();
    refused_from_now_on(&mut ws, "{ viewer { user { id } } }", "API key revoked").await;
    drop(ws);
    server.stop().await;
}

async fn websocket_ends_when_its_account_is_disabled(t: TestApp) {
    let admin = t.admin_token().await;
    let (user, token) = t.user_with_token(&admin, "ws-disabled@example.com").await;
    let (secret, _) = api_key(&t, &token).await;
    let server = Server::start(&t).await;
    let mut by_token = following_own_feed(&t, &server, &token, &token).await;
    let mut by_key = following_own_feed(&t, &server, &secret, &token).await;

    t.gql(
        Some(&admin),
        "mutation($id: ID!) { disableUser(input: { id: $id }) { user { id } } }",
        json!({ "id": user }),
    )
    .await
    .data();
    // Disabling ends the account's sessions and revokes its API keys.
    let mutation = "mutation { createApiKey(input: { name: \"late\" }) { secret } }";
    refused_from_now_on(&mut by_token, mutation, "session revoked").await;
    refused_from_now_on(&mut by_key, mutation, "API key revoked").await;
    drop((by_token, by_key));
    server.stop().await;
}

/// A revocation committed by another instance (sharing the database) ends the socket once the
/// credential's last confirmation has lapsed (the clock moves past it), without any further
/// message from the client.
async fn websocket_ends_when_another_instance_revokes(t: TestApp) {
    let admin = t.admin_token().await;
    let (_, token) = t.user_with_token(&admin, "ws-elsewhere@example.com").await;
    let other = App::start((*t.app.config).clone(), t.clock.clone())
        .await
        .expect("a second instance starts");
    let server = Server::start_app(other).await;
    let mut ws = connect(&server, TRANSPORT_WS).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {token}") })).await;
    send(
        &mut ws,
        json!({ "id": "beat", "type": "subscribe", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "next");

    // Logged out through the first instance, which the second hears nothing of.
    t.gql(Some(&token), "mutation { logout { session { id } } }", json!({}))
        .await
        .data();
    t.clock.advance(TimeDelta::seconds(1));
    let frame = loop {
        match next_frame(&mut ws).await {
            Some(Ok(Message::Text(_))) => continue, // heartbeats until the re-check
            Some(Ok(Message::Close(Some(frame)))) => break frame,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(frame.code), 4403, "{frame:?}");
    assert_eq!(frame.reason.as_str(), "session revoked");
    drop(ws);
    server.stop().await;
}

/// An access token that expires mid-connection ends it, unless the client sent a fresh one for the
/// same user in a `ping` payload before.
async fn websocket_outlives_its_token_only_when_given_a_fresh_one(t: TestApp) {
    let admin = t.admin_token().await;
    let email = "ws-expiry@example.com";
    let user = t.create_user(&admin, email).await;
    let login = t.login(email, PASSWORD).await;
    let token = login["accessToken"].as_str().expect("token").to_owned();
    let refresh = login["refreshToken"].as_str().expect("refresh").to_owned();
    let server = Server::start(&t).await;
    let mut ws = connect(&server, TRANSPORT_WS).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {token}") })).await;

    // Half-way through the token's life (600 s), the client refreshes and hands the socket the
    // new token; another user's token is refused on a second socket.
    t.clock.advance(TimeDelta::seconds(300));
    let refreshed = t
        .gql(
            None,
            "mutation($r: String!) { refreshSession(input: { refreshToken: $r }) { accessToken } }",
            json!({ "r": refresh }),
        )
        .await;
    let fresh = refreshed.data()["refreshSession"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    send(
        &mut ws,
        json!({ "type": "ping", "payload": { "authorization": format!("Bearer {fresh}") } }),
    )
    .await;
    assert_eq!(recv(&mut ws).await, json!({ "type": "pong" }));

    let mut other_user = connect(&server, TRANSPORT_WS).await;
    init(
        &mut other_user,
        json!({ "authorization": format!("Bearer {admin}") }),
    )
    .await;
    send(
        &mut other_user,
        json!({ "type": "ping", "payload": { "authorization": format!("Bearer {fresh}") } }),
    )
    .await;
    let frame = recv_close(&mut other_user).await;
    assert_eq!(u16::from(frame.code), 4403, "{frame:?}");
    drop(other_user);

    // Past the first token's expiry the socket still answers, as the refreshed token's user.
    t.clock.advance(TimeDelta::seconds(400));
    send(
        &mut ws,
        json!({ "id": "q", "type": "subscribe", "payload": { "query": "{ viewer { user { id } } }" } }),
    )
    .await;
    let answer = recv(&mut ws).await;
    assert_eq!(
        answer["payload"]["data"]["viewer"]["user"]["id"], user,
        "{answer:#}"
    );
    assert_eq!(recv(&mut ws).await, json!({ "type": "complete", "id": "q" }));

    // Past the fresh token's expiry too, the socket is closed without a further message.
    t.clock.advance(TimeDelta::seconds(300));
    let frame = recv_close(&mut ws).await;
    assert_eq!(u16::from(frame.code), 4403, "{frame:?}");
    assert_eq!(frame.reason.as_str(), "access token expired");
    drop(ws);
    server.stop().await;
}

async fn websocket_without_connection_init_is_closed_with_4408(t: TestApp) {
    let server = Server::start_app(configured(&t, |c| c.ws_init_timeout_ms = 200)).await;
    for protocol in [TRANSPORT_WS, LEGACY_WS] {
        let mut ws = connect(&server, protocol).await;
        let frame = recv_close(&mut ws).await;
        assert_eq!(u16::from(frame.code), 4408, "{protocol}: {frame:?}");
        drop(ws);
    }
    // An acknowledged connection is not timed out.
    let mut ws = connect(&server, TRANSPORT_WS).await;
    init(&mut ws, json!({})).await;
    send(
        &mut ws,
        json!({ "id": "beat", "type": "subscribe", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    for _ in 0..2 {
        assert_eq!(recv(&mut ws).await["type"], "next");
    }
    drop(ws);
    server.stop().await;
}

/// Refused credentials close with 4403 on either protocol; non-ASCII ones too, and the server
/// goes on serving (it used to panic slicing the presented API key).
async fn websocket_refused_credentials_close_with_4403(t: TestApp) {
    let server = Server::start(&t).await;
    let non_ascii = format!("pck_{}", "\u{e9}".repeat(40));
    let cases = [
        (
            json!({ "authorization": "Bearer garbage" }),
            "invalid access token",
        ),
        (
            json!({ "authorization": format!("Bearer {non_ascii}") }),
            "invalid API key",
        ),
        (json!({ "authorization": non_ascii }), "invalid API key"),
        (
            json!({ "authorization": "pck_abcdefghijk\u{e9}rest-of-it" }),
            "invalid API key",
        ),
        (
            json!({ "authorization": "\u{1f511}\u{1f511}" }),
            "invalid access token",
        ),
        (json!({ "authorization": 7 }), "invalid credential"),
    ];
    for (payload, reason) in &cases {
        let mut ws = connect(&server, TRANSPORT_WS).await;
        send(&mut ws, json!({ "type": "connection_init", "payload": payload })).await;
        let frame = recv_close(&mut ws).await;
        assert_eq!(u16::from(frame.code), 4403, "{payload}: {frame:?}");
        assert_eq!(frame.reason.as_str(), *reason, "{payload}");
        drop(ws);

        let mut ws = connect(&server, LEGACY_WS).await;
        send(&mut ws, json!({ "type": "connection_init", "payload": payload })).await;
        let message = recv(&mut ws).await;
        assert_eq!(message["type"], "connection_error", "{message:#}");
        let frame = recv_close(&mut ws).await;
        assert_eq!(u16::from(frame.code), 4403, "{payload}: {frame:?}");
        drop(ws);
    }

    // Still serving, over WebSocket and HTTP.
    let token = t.admin_token().await;
    let user_id = viewer_id(&t, &token).await;
    let mut ws = connect(&server, TRANSPORT_WS).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {token}") })).await;
    send(
        &mut ws,
        json!({ "id": "q", "type": "subscribe", "payload": { "query": "{ viewer { user { id } } }" } }),
    )
    .await;
    let answer = recv(&mut ws).await;
    assert_eq!(
        answer["payload"]["data"]["viewer"]["user"]["id"],
        user_id.as_str()
    );
    drop(ws);
    server.stop().await;
}

/// Upgrades beyond the per-client cap are refused (HTTP 429) until a connection closes.
async fn websocket_connections_per_client_are_capped(t: TestApp) {
    let server = Server::start_app(configured(&t, |c| c.ws_max_connections_per_client = 3)).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut ws = connect(&server, TRANSPORT_WS).await;
        init(&mut ws, json!({})).await;
        open.push(ws);
    }
    assert_eq!(upgrade_status(&server).await, StatusCode::TOO_MANY_REQUESTS);

    // Closing one frees its place once the server has let go of it.
    let mut closing = open.pop().expect("a socket");
    closing.close(None).await.expect("close");
    crate::websocket::expect_closed(&mut closing).await;
    drop(closing);
    let mut admitted = false;
    for _ in 0..50 {
        if upgrade_status(&server).await == StatusCode::SWITCHING_PROTOCOLS {
            admitted = true;
            break;
        }
        tokio::time::sleep(WAIT / 50).await;
    }
    assert!(admitted, "a place was freed");
    drop(open);
    server.stop().await;
}

/// The status of a bare upgrade attempt (the socket, if any, is dropped at once).
async fn upgrade_status(server: &Server) -> StatusCode {
    let mut request = server.url().into_client_request().expect("client request");
    request.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(TRANSPORT_WS),
    );
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("answer in time")
    {
        Ok((_, response)) => response.status(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status(),
        Err(other) => panic!("unexpected handshake failure: {other:?}"),
    }
}

/// Operations running at once on one connection are capped; an id still running is refused.
async fn websocket_operations_per_connection_are_capped(t: TestApp) {
    let server = Server::start_app(configured(&t, |c| c.ws_max_operations = 2)).await;
    let mut ws = connect(&server, TRANSPORT_WS).await;
    init(&mut ws, json!({})).await;
    for id in ["1", "2", "3"] {
        send(
            &mut ws,
            json!({ "id": id, "type": "subscribe", "payload": { "query": HEARTBEAT } }),
        )
        .await;
    }
    let refused = loop {
        let message = recv(&mut ws).await;
        if message["type"] == "error" {
            break message;
        }
        assert_eq!(message["type"], "next", "{message:#}");
        assert_ne!(message["id"], "3", "{message:#}");
    };
    assert_eq!(refused["id"], "3");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");

    // Completing one makes room.
    send(&mut ws, json!({ "id": "1", "type": "complete" })).await;
    send(
        &mut ws,
        json!({ "id": "3", "type": "subscribe", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    loop {
        let message = recv(&mut ws).await;
        assert_ne!(message["type"], "error", "{message:#}");
        if message["type"] == "next" && message["id"] == "3" {
            break;
        }
    }

    // Reusing the id of a running operation closes with 4409.
    send(
        &mut ws,
        json!({ "id": "2", "type": "subscribe", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    let frame = loop {
        match next_frame(&mut ws).await {
            Some(Ok(Message::Text(_))) => continue,
            Some(Ok(Message::Close(Some(frame)))) => break frame,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(frame.code), 4409, "{frame:?}");
    drop(ws);
    server.stop().await;
}

/// The server pings idle connections (WebSocket ping frames, answered by every client).
async fn websocket_connections_are_kept_alive(t: TestApp) {
    let server = Server::start_app(configured(&t, |c| c.ws_keepalive_seconds = 1)).await;
    let mut ws = connect(&server, TRANSPORT_WS).await;
    init(&mut ws, json!({})).await;
    let frame = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("a frame in time");
    assert!(matches!(frame, Some(Ok(Message::Ping(_)))), "{frame:?}");
    drop(ws);
    server.stop().await;
}

crate::backend_tests!(
    websocket_ends_at_logout,
    websocket_ends_when_its_session_is_revoked,
    websocket_ends_when_its_api_key_is_revoked,
    websocket_ends_when_its_account_is_disabled,
    websocket_ends_when_another_instance_revokes,
    websocket_outlives_its_token_only_when_given_a_fresh_one,
    websocket_without_connection_init_is_closed_with_4408,
    websocket_refused_credentials_close_with_4403,
    websocket_connections_per_client_are_capped,
    websocket_operations_per_connection_are_capped,
    websocket_connections_are_kept_alive,
);
