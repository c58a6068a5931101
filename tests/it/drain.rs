//! A shutdown signal drains the gateway as a load balancer needs: `/readyz` turns 503 at once while
//! requests and subscriptions are still served, then WebSockets close with 1012 (reconnect and
//! resume), then the listener stops.

use std::time::{Duration, Instant};

use portcullis::app::App;
use serde_json::json;

use crate::support::{TestApp, test_config};
use tokio_tungstenite::tungstenite::Message;

use crate::websocket::{HEARTBEAT, Server, TRANSPORT_WS, connect, init, next_frame, recv, send};

/// Seconds between the signal and closing: long enough to watch the draining state.
const DRAIN_SECONDS: u64 = 3;

crate::backend_tests!(a_signal_drains_before_it_closes);

async fn a_signal_drains_before_it_closes(t: TestApp) {
    let mut config = test_config(t.app.db.url());
    config.drain_seconds = DRAIN_SECONDS;
    let app = App::start(config, t.clock.clone())
        .await
        .expect("a second instance");
    let server = Server::start_app(app).await;
    let base = server.http_url();
    let http = reqwest::Client::new();
    let ready = http.get(format!("{base}/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);

    let mut ws = connect(&server, TRANSPORT_WS).await;
    init(&mut ws, json!({})).await;
    send(
        &mut ws,
        json!({ "id": "beat", "type": "subscribe", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "next", "the subscription runs");

    let signalled = Instant::now();
    let serving = server.begin_shutdown();

    // Not ready at once (well before the drain ends)...
    let draining = loop {
        let response = http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("readyz while draining");
        if response.status() == 503 {
            break response.json::<serde_json::Value>().await.expect("JSON");
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(DRAIN_SECONDS),
            "/readyz turns 503 before the drain ends"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(draining["status"], "draining");
    // ...while new requests and running subscriptions are still served.
    let answered = http
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("a request while draining");
    assert_eq!(answered.status(), 200);
    assert_eq!(
        answered.json::<serde_json::Value>().await.expect("JSON")["data"]["__typename"],
        "Query"
    );
    assert_eq!(recv(&mut ws).await["type"], "next", "ticks go on while draining");

    // Then the subscriber is told to reconnect elsewhere: 1012, service restart.
    let close = loop {
        match next_frame(&mut ws).await {
            Some(Ok(Message::Text(_))) => continue, // ticks until then
            Some(Ok(Message::Close(Some(frame)))) => break frame,
            other => panic!("expected ticks, then a close frame; got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1012, "service restart: {close:?}");
    assert!(close.reason.contains("reconnect"), "{close:?}");
    assert!(
        signalled.elapsed() >= Duration::from_secs(DRAIN_SECONDS),
        "subscribers are closed only once the drain ends"
    );
    // The server then stops by itself, cleanly, and refuses connections.
    let finished = tokio::time::timeout(Duration::from_secs(20), serving)
        .await
        .expect("the server stops after draining")
        .expect("no panic");
    assert!(finished.is_ok(), "{finished:?}");
    assert!(
        signalled.elapsed() >= Duration::from_secs(DRAIN_SECONDS),
        "it served for the whole drain"
    );
    assert!(
        http.get(format!("{base}/healthz")).send().await.is_err(),
        "no longer listening"
    );
}
