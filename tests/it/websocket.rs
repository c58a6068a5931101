//! Subscriptions over a real WebSocket: `graphql-transport-ws` and the legacy `graphql-ws`.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{SinkExt as _, StreamExt as _};
use portcullis::clock::Clock as _;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::TestApp;

/// How long any single wait may take.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

pub(crate) const TRANSPORT_WS: &str = "graphql-transport-ws";
pub(crate) const LEGACY_WS: &str = "graphql-ws";

pub(crate) const HEARTBEAT: &str = "subscription { heartbeat(intervalSeconds: 1) { at userId } }";

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The gateway served on an ephemeral local port.
pub(crate) struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<portcullis::error::Result<()>>,
}

impl Server {
    pub(crate) async fn start(t: &TestApp) -> Server {
        Self::start_app(t.app.clone()).await
    }

    /// Serves `app` (e.g. with its own configuration, or a second instance on the same database).
    pub(crate) async fn start_app(app: portcullis::app::App) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(portcullis::http::serve(app, listener, shutdown));
        Server { addr, stop, task }
    }

    pub(crate) fn url(&self) -> String {
        format!("ws://{}/graphql", self.addr)
    }

    pub(crate) fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Signals shutdown and hands back the serving task, to watch the drain from outside.
    pub(crate) fn begin_shutdown(self) -> JoinHandle<portcullis::error::Result<()>> {
        let _ = self.stop.send(());
        self.task
    }

    /// Signals shutdown and expects the server to finish cleanly once clients are gone.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let finished = tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("server stops within its grace period")
            .expect("server task did not panic");
        assert!(finished.is_ok(), "serve failed: {finished:?}");
    }
}

/// Opens a WebSocket offering `protocol`, optionally with an `Authorization` header on the upgrade.
pub(crate) async fn connect_with(server: &Server, protocol: &str, authorization: Option<&str>) -> Ws {
    let mut request = server.url().into_client_request().expect("client request");
    request.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_str(protocol).expect("header"),
    );
    if let Some(authorization) = authorization {
        request.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(authorization).expect("header"),
        );
    }
    let (ws, response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("connect in time")
        .expect("WebSocket handshake");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let chosen = response
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok());
    assert_eq!(chosen, Some(protocol), "the server speaks the protocol offered");
    ws
}

pub(crate) async fn connect(server: &Server, protocol: &str) -> Ws {
    connect_with(server, protocol, None).await
}

pub(crate) async fn send(ws: &mut Ws, message: Value) {
    tokio::time::timeout(WAIT, ws.send(Message::text(message.to_string())))
        .await
        .expect("send in time")
        .expect("send");
}

/// The next frame that is not a ping or pong; `None` when the connection ended without one.
pub(crate) async fn next_frame(ws: &mut Ws) -> Option<Result<Message, WsError>> {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time");
        match frame {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => return other,
        }
    }
}

/// The next text message as JSON.
pub(crate) async fn recv(ws: &mut Ws) -> Value {
    match next_frame(ws).await {
        Some(Ok(Message::Text(text))) => serde_json::from_str(text.as_str()).expect("a JSON message"),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Expects the server to close with a close frame, and returns it.
pub(crate) async fn recv_close(ws: &mut Ws) -> CloseFrame {
    match next_frame(ws).await {
        Some(Ok(Message::Close(Some(frame)))) => frame,
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// Expects the connection to be over: a close frame, the end of the stream, or a reset.
pub(crate) async fn expect_closed(ws: &mut Ws) {
    match next_frame(ws).await {
        None | Some(Ok(Message::Close(_))) | Some(Err(_)) => {}
        Some(Ok(other)) => panic!("expected the connection to end, got {other:?}"),
    }
}

/// Sends `connection_init` with `payload` and expects `connection_ack`.
pub(crate) async fn init(ws: &mut Ws, payload: Value) {
    send(ws, json!({ "type": "connection_init", "payload": payload })).await;
    let ack = recv(ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack:#}");
}

/// The user id a token belongs to, asked over HTTP.
pub(crate) async fn viewer_id(t: &TestApp, token: &str) -> String {
    t.gql(Some(token), "{ viewer { user { id } } }", json!({}))
        .await
        .data()["viewer"]["user"]["id"]
        .as_str()
        .expect("viewer id")
        .to_owned()
}

/// Checks a heartbeat payload's data against the expected user (or anonymous).
fn assert_heartbeat(t: &TestApp, message: &Value, user_id: Option<&str>) {
    let heartbeat = &message["payload"]["data"]["heartbeat"];
    assert!(message["payload"].get("errors").is_none(), "{message:#}");
    match user_id {
        Some(id) => assert_eq!(heartbeat["userId"], id, "{message:#}"),
        None => assert!(heartbeat["userId"].is_null(), "{message:#}"),
    }
    let at: DateTime<Utc> = heartbeat["at"]
        .as_str()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .unwrap_or_else(|| panic!("`at` is a timestamp: {message:#}"))
        .with_timezone(&Utc);
    assert_eq!(at, t.clock.now(), "ticks carry the gateway's clock");
}

async fn transport_ws_heartbeat_carries_the_user(t: TestApp) {
    let token = t.admin_token().await;
    let user_id = viewer_id(&t, &token).await;
    let server = Server::start(&t).await;

    let mut ws = connect(&server, TRANSPORT_WS).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {token}") })).await;
    send(
        &mut ws,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": HEARTBEAT } }),
    )
    .await;

    let first = recv(&mut ws).await;
    assert_eq!(first["type"], "next", "{first:#}");
    assert_eq!(first["id"], "1");
    assert_heartbeat(&t, &first, Some(&user_id));

    // The stream keeps ticking (every second here).
    let second = recv(&mut ws).await;
    assert_eq!(second["type"], "next", "{second:#}");
    assert_heartbeat(&t, &second, Some(&user_id));

    // `ping` is answered with `pong`.
    send(&mut ws, json!({ "type": "ping" })).await;
    loop {
        let message = recv(&mut ws).await;
        if message["type"] == "next" {
            continue; // a tick that was already on its way
        }
        assert_eq!(message["type"], "pong", "{message:#}");
        break;
    }

    // The client ends the subscription; the server confirms and stops sending.
    send(&mut ws, json!({ "id": "1", "type": "complete" })).await;
    loop {
        let message = recv(&mut ws).await;
        if message["type"] == "next" {
            continue;
        }
        assert_eq!(message, json!({ "type": "complete", "id": "1" }));
        break;
    }
    let quiet = tokio::time::timeout(Duration::from_millis(1500), ws.next()).await;
    assert!(quiet.is_err(), "no ticks after complete: {quiet:?}");

    ws.close(None).await.expect("close");
    expect_closed(&mut ws).await;
    drop(ws);
    server.stop().await;
}

async fn transport_ws_credentials_in_other_places(t: TestApp) {
    let token = t.admin_token().await;
    let user_id = viewer_id(&t, &token).await;
    let server = Server::start(&t).await;

    // The bare token, without the scheme, and under a capitalised key.
    let mut ws = connect(&server, TRANSPORT_WS).await;
    init(&mut ws, json!({ "Authorization": token })).await;
    send(
        &mut ws,
        json!({ "id": "a", "type": "subscribe", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    let message = recv(&mut ws).await;
    assert_eq!(message["type"], "next", "{message:#}");
    assert_heartbeat(&t, &message, Some(&user_id));
    ws.close(None).await.expect("close");
    drop(ws);

    // The upgrade request's own Authorization header, with an empty init payload.
    let mut ws = connect_with(&server, TRANSPORT_WS, Some(&format!("Bearer {token}"))).await;
    init(&mut ws, json!({})).await;
    send(
        &mut ws,
        json!({ "id": "b", "type": "subscribe", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    let message = recv(&mut ws).await;
    assert_eq!(message["id"], "b");
    assert_heartbeat(&t, &message, Some(&user_id));
    ws.close(None).await.expect("close");
    drop(ws);

    // An API key works like an access token.
    let created = t
        .gql(
            Some(&token),
            "mutation { createApiKey(input: { name: \"ws\" }) { secret } }",
            json!({}),
        )
        .await;
    let secret = created.data()["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let mut ws = connect(&server, TRANSPORT_WS).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {secret}") })).await;
    send(
        &mut ws,
        json!({ "id": "c", "type": "subscribe", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    let message = recv(&mut ws).await;
    assert_heartbeat(&t, &message, Some(&user_id));
    ws.close(None).await.expect("close");
    drop(ws);

    server.stop().await;
}

async fn transport_ws_anonymous(t: TestApp) {
    let server = Server::start(&t).await;

    for payload in [Some(json!({})), None] {
        let mut ws = connect(&server, TRANSPORT_WS).await;
        let message = match &payload {
            Some(payload) => json!({ "type": "connection_init", "payload": payload }),
            None => json!({ "type": "connection_init" }),
        };
        send(&mut ws, message).await;
        let ack = recv(&mut ws).await;
        assert_eq!(ack["type"], "connection_ack", "{ack:#}");
        send(
            &mut ws,
            json!({ "id": "1", "type": "subscribe", "payload": { "query": HEARTBEAT } }),
        )
        .await;
        let message = recv(&mut ws).await;
        assert_eq!(message["type"], "next", "{message:#}");
        assert_heartbeat(&t, &message, None);
        ws.close(None).await.expect("close");
        drop(ws);
    }

    server.stop().await;
}

async fn transport_ws_rejected_credentials_close_the_connection(t: TestApp) {
    let server = Server::start(&t).await;

    // A refused `connection_init` closes with 4403 Forbidden and the reason.
    let mut ws = connect(&server, TRANSPORT_WS).await;
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": { "authorization": "Bearer garbage" } }),
    )
    .await;
    let frame = recv_close(&mut ws).await;
    assert_eq!(u16::from(frame.code), 4403, "{frame:?}");
    assert_eq!(frame.reason.as_str(), "invalid access token");
    expect_closed(&mut ws).await;
    drop(ws);

    // A garbage Authorization header on the upgrade is refused the same way.
    let mut ws = connect_with(&server, TRANSPORT_WS, Some("Bearer garbage")).await;
    send(&mut ws, json!({ "type": "connection_init", "payload": {} })).await;
    let frame = recv_close(&mut ws).await;
    assert_eq!(u16::from(frame.code), 4403, "{frame:?}");
    assert_eq!(frame.reason.as_str(), "invalid access token");
    drop(ws);

    // A token of a session that has ended is refused with the reason.
    let login = t
        .login(crate::support::ADMIN_EMAIL, crate::support::ADMIN_PASSWORD)
        .await;
    let token = login["accessToken"].as_str().expect("token").to_owned();
    t.gql(Some(&token), "mutation { logout { session { id } } }", json!({}))
        .await
        .data();
    let mut ws = connect(&server, TRANSPORT_WS).await;
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } }),
    )
    .await;
    let frame = recv_close(&mut ws).await;
    assert_eq!(u16::from(frame.code), 4403, "{frame:?}");
    assert_eq!(frame.reason.as_str(), "session revoked");
    drop(ws);

    server.stop().await;
}

async fn transport_ws_protocol_errors(t: TestApp) {
    let server = Server::start(&t).await;

    // Subscribing before `connection_init` ends the connection with 4401 Unauthorized.
    let mut ws = connect(&server, TRANSPORT_WS).await;
    send(
        &mut ws,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    let frame = recv_close(&mut ws).await;
    assert_eq!(u16::from(frame.code), 4401, "{frame:?}");
    drop(ws);

    // A second `connection_init` is refused with 4429.
    let mut ws = connect(&server, TRANSPORT_WS).await;
    init(&mut ws, json!({})).await;
    send(&mut ws, json!({ "type": "connection_init", "payload": {} })).await;
    let frame = recv_close(&mut ws).await;
    assert_eq!(u16::from(frame.code), 4429, "{frame:?}");
    drop(ws);

    // A message that is not JSON, or of a type the protocol does not define, closes with 4400.
    for bad in [
        "not json",
        r#"{"type":"nope"}"#,
        r#"{"type":"subscribe","id":"1"}"#,
    ] {
        let mut ws = connect(&server, TRANSPORT_WS).await;
        init(&mut ws, json!({})).await;
        tokio::time::timeout(WAIT, ws.send(Message::text(bad)))
            .await
            .expect("send in time")
            .expect("send");
        let frame = recv_close(&mut ws).await;
        assert_eq!(u16::from(frame.code), 4400, "{bad}: {frame:?}");
        drop(ws);
    }

    // A subscription whose arguments are invalid reports the error, then completes.
    let mut ws = connect(&server, TRANSPORT_WS).await;
    init(&mut ws, json!({})).await;
    send(
        &mut ws,
        json!({ "id": "bad", "type": "subscribe",
                "payload": { "query": "subscription { heartbeat(intervalSeconds: 0) { at } }" } }),
    )
    .await;
    let message = recv(&mut ws).await;
    assert_eq!(message["type"], "next", "{message:#}");
    assert_eq!(message["id"], "bad");
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{message:#}"
    );
    let message = recv(&mut ws).await;
    assert_eq!(message, json!({ "type": "complete", "id": "bad" }));

    // An operation that does not validate is reported the same way, and the connection lives on.
    send(
        &mut ws,
        json!({ "id": "nope", "type": "subscribe", "payload": { "query": "subscription { nope }" } }),
    )
    .await;
    let message = recv(&mut ws).await;
    assert_eq!(message["id"], "nope");
    assert!(
        message["payload"]["errors"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "{message:#}"
    );
    let message = recv(&mut ws).await;
    assert_eq!(message, json!({ "type": "complete", "id": "nope" }));

    // Queries run over the socket too.
    send(
        &mut ws,
        json!({ "id": "q", "type": "subscribe", "payload": { "query": "{ __typename }" } }),
    )
    .await;
    let message = recv(&mut ws).await;
    assert_eq!(message["type"], "next", "{message:#}");
    assert_eq!(message["payload"]["data"]["__typename"], "Query");
    let message = recv(&mut ws).await;
    assert_eq!(message, json!({ "type": "complete", "id": "q" }));
    ws.close(None).await.expect("close");
    drop(ws);

    // An upgrade without a GraphQL subprotocol is refused before the handshake.
    let request = server.url().into_client_request().expect("client request");
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("answer in time")
    {
        Err(WsError::Http(response)) => assert_eq!(response.status(), StatusCode::BAD_REQUEST),
        other => panic!("expected HTTP 400, got {other:?}"),
    }

    server.stop().await;
}

async fn legacy_graphql_ws(t: TestApp) {
    let token = t.admin_token().await;
    let user_id = viewer_id(&t, &token).await;
    let server = Server::start(&t).await;

    let mut ws = connect(&server, LEGACY_WS).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {token}") })).await;
    send(
        &mut ws,
        json!({ "id": "1", "type": "start", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    let message = recv(&mut ws).await;
    assert_eq!(message["type"], "data", "{message:#}");
    assert_eq!(message["id"], "1");
    assert_heartbeat(&t, &message, Some(&user_id));

    send(&mut ws, json!({ "id": "1", "type": "stop" })).await;
    loop {
        let message = recv(&mut ws).await;
        if message["type"] == "data" {
            continue;
        }
        assert_eq!(message, json!({ "type": "complete", "id": "1" }));
        break;
    }
    send(&mut ws, json!({ "type": "connection_terminate" })).await;
    expect_closed(&mut ws).await;
    drop(ws);

    // Anonymous.
    let mut ws = connect(&server, LEGACY_WS).await;
    init(&mut ws, json!({})).await;
    send(
        &mut ws,
        json!({ "id": "2", "type": "start", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    let message = recv(&mut ws).await;
    assert_eq!(message["type"], "data", "{message:#}");
    assert_heartbeat(&t, &message, None);
    ws.close(None).await.expect("close");
    drop(ws);

    // Rejected credentials: legacy clients get `connection_error`, then the connection ends.
    let mut ws = connect(&server, LEGACY_WS).await;
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": { "authorization": "Bearer garbage" } }),
    )
    .await;
    let message = recv(&mut ws).await;
    assert_eq!(message["type"], "connection_error", "{message:#}");
    assert_eq!(message["payload"]["message"], "invalid access token");
    expect_closed(&mut ws).await;
    drop(ws);

    server.stop().await;
}

async fn revoked_sessions_end_live_subscriptions(t: TestApp) {
    let token = t.admin_token().await;
    let user_id = viewer_id(&t, &token).await;
    let server = Server::start(&t).await;
    let mut ws = connect(&server, TRANSPORT_WS).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {token}") })).await;
    send(
        &mut ws,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    let first = recv(&mut ws).await;
    assert_heartbeat(&t, &first, Some(&user_id));

    let logout = t
        .gql(Some(&token), "mutation { logout { session { id } } }", json!({}))
        .await;
    logout.data();
    // The connection closes (4403), ending the subscription; ticks already sent may come first.
    let frame = loop {
        match next_frame(&mut ws).await {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(text.as_str()).expect("JSON");
                assert_eq!(message["type"], "next", "{message:#}");
                assert!(message["payload"].get("errors").is_none(), "{message:#}");
            }
            Some(Ok(Message::Close(Some(frame)))) => break frame,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(frame.code), 4403, "{frame:?}");
    assert_eq!(frame.reason.as_str(), "session revoked");
    drop(ws);
    server.stop().await;
}

const AUDIT_FEED: &str = "subscription($o: ID!, $after: String) {
  auditEvents(after: $after, filter: {organizationId: $o, actions: [\"organization.updated\"]}) {
    cursor node { action targets { displayName } context { requestId } } } }";

/// Renames `org` over HTTP (one `organization.updated` event each).
async fn rename(t: &TestApp, token: &str, org: &str, name: &str) {
    t.gql(
        Some(token),
        "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { id } } }",
        json!({ "input": { "id": org, "name": name } }),
    )
    .await
    .data();
}

/// Subscribes to `org`'s feed after `after` and returns the socket.
async fn audit_feed(server: &Server, token: &str, org: &str, after: Option<&str>) -> Ws {
    let mut ws = connect(server, TRANSPORT_WS).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {token}") })).await;
    send(
        &mut ws,
        json!({ "id": "feed", "type": "subscribe", "payload": { "query": AUDIT_FEED, "variables": { "o": org, "after": after } } }),
    )
    .await;
    ws
}

/// The next feed event: (cursor, the organization's name after the rename).
async fn feed_event(ws: &mut Ws) -> (String, String) {
    let message = recv(ws).await;
    assert_eq!(message["type"], "next", "{message:#}");
    let event = &message["payload"]["data"]["auditEvents"];
    assert_eq!(event["node"]["action"], "organization.updated", "{message:#}");
    (
        event["cursor"].as_str().unwrap().to_owned(),
        event["node"]["targets"][0]["displayName"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

/// The live feed over `graphql-transport-ws`: events as they happen; after a disconnect, a new
/// subscription from the last cursor gets exactly what was missed, then the live ones.
async fn audit_feed_resumes_across_a_reconnect(t: TestApp) {
    let token = t.admin_token().await;
    let org = t.create_organization(&token, "live").await;
    let server = Server::start(&t).await;

    // Subscribing from the newest cursor makes the start well-defined: nothing committed between
    // this read and the subscription taking effect is lost.
    let newest = t
        .gql(
            Some(&token),
            "{ auditEvents(first: 1) { edges { cursor } } }",
            json!({}),
        )
        .await;
    let newest = newest.data()["auditEvents"]["edges"][0]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ws = audit_feed(&server, &token, &org, Some(&newest)).await;
    let mut seen = Vec::new();
    let mut last_cursor = String::new();
    for name in ["one", "two", "three"] {
        rename(&t, &token, &org, name).await;
        let (cursor, got) = feed_event(&mut ws).await;
        seen.push(got);
        last_cursor = cursor;
    }
    ws.close(None).await.expect("close");
    drop(ws);

    // Missed while away.
    for name in ["four", "five"] {
        rename(&t, &token, &org, name).await;
    }
    let mut ws = audit_feed(&server, &token, &org, Some(&last_cursor)).await;
    for _ in 0..2 {
        seen.push(feed_event(&mut ws).await.1);
    }
    rename(&t, &token, &org, "six").await;
    seen.push(feed_event(&mut ws).await.1);
    assert_eq!(seen, ["one", "two", "three", "four", "five", "six"]);

    // A reader without rights in the organization is refused at subscription.
    let (_, other) = t.user_with_token(&token, "outsider@example.com").await;
    let mut refused = audit_feed(&server, &other, &org, None).await;
    let message = recv(&mut refused).await;
    assert_eq!(message["type"], "next", "{message:#}");
    assert_eq!(message["payload"]["data"], Value::Null);
    assert_eq!(message["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN");
    drop(refused);
    // And an anonymous connection is told to authenticate.
    let mut anonymous = connect(&server, TRANSPORT_WS).await;
    init(&mut anonymous, json!({})).await;
    send(
        &mut anonymous,
        json!({ "id": "feed", "type": "subscribe", "payload": { "query": AUDIT_FEED, "variables": { "o": org } } }),
    )
    .await;
    let message = recv(&mut anonymous).await;
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{message:#}"
    );
    drop(anonymous);
    ws.close(None).await.expect("close");
    drop(ws);
    server.stop().await;
}

crate::backend_tests!(
    revoked_sessions_end_live_subscriptions,
    transport_ws_heartbeat_carries_the_user,
    transport_ws_credentials_in_other_places,
    transport_ws_anonymous,
    transport_ws_rejected_credentials_close_the_connection,
    transport_ws_protocol_errors,
    legacy_graphql_ws,
    audit_feed_resumes_across_a_reconnect,
);
