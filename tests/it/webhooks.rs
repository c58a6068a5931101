//! Webhooks through the API: endpoints created (their secret shown once), listed, changed,
//! rotated and deleted under audit; bad input refused naming the field; destinations held to
//! https and public addresses when the operator says so (also when connecting); organization
//! administrators kept to their organization; messages listed and filtered; attempts watched live
//! only by those who may see the endpoint — on SQLite and PostgreSQL.
//!
//! Delivery itself (signatures, retries, ordering, dead letters) is in `webhook_delivery.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::StreamExt as _;
use portcullis::app::App;
use portcullis::clock::Clock as _;
use portcullis::jobs::Runner;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Gql, TestApp, test_config};
use crate::websocket::{Server, TRANSPORT_WS, connect, init, recv, send};

crate::backend_tests!(
    create_shows_the_secret_once_and_lists_endpoints,
    bad_input_is_refused_naming_the_field_and_writes_nothing,
    https_and_public_destinations_are_enforced_when_configured,
    organization_admins_manage_only_their_organizations_endpoints,
    update_rotate_and_delete_are_audited,
    a_url_change_within_the_same_origin_is_audited,
    messages_list_with_filters,
    webhook_deliveries_are_watched_only_by_those_who_see_the_endpoint,
);

/// How long to wait for a delivery at most: a bound on waiting, not a speed claim.
const PATIENCE: Duration = Duration::from_secs(30);

/// Every field of a `WebhookEndpoint` but the relation.
const ENDPOINT: &str = "fragment E on WebhookEndpoint { id organizationId url description eventTypes enabled ordered includeSensitive disabledReason failingSince previousSecretExpiresAt createdAt updatedAt }";
/// Every field of a `WebhookMessage`, with its attempts.
const MESSAGE: &str = "fragment M on WebhookMessage { id endpointId eventType eventId eventCursor status replay test attemptCount nextAttemptAt lastError createdAt deliveredAt attempts { id messageId endpointId statusCode error succeeded } }";

/// A URL nothing listens at (the tests that use it run no delivery).
const NOWHERE: &str = "http://127.0.0.1:9/hook";

async fn create(t: &TestApp, token: &str, input: Value) -> Gql {
    let query = format!(
        "mutation($input: CreateWebhookEndpointInput!) {{ createWebhookEndpoint(input: $input) {{ secret endpoint {{ ...E }} }} }} {ENDPOINT}"
    );
    t.gql(Some(token), &query, json!({ "input": input })).await
}

/// Creates an endpoint; returns (the endpoint, its secret).
async fn created(t: &TestApp, token: &str, input: Value) -> (Value, String) {
    let response = create(t, token, input).await;
    let payload = &response.data()["createWebhookEndpoint"];
    let secret = payload["secret"].as_str().expect("a secret").to_owned();
    (payload["endpoint"].clone(), secret)
}

fn id_of(value: &Value) -> String {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an id in {value}"))
        .to_owned()
}

async fn update(t: &TestApp, token: &str, input: Value) -> Gql {
    let query = format!(
        "mutation($input: UpdateWebhookEndpointInput!) {{ updateWebhookEndpoint(input: $input) {{ endpoint {{ ...E }} }} }} {ENDPOINT}"
    );
    t.gql(Some(token), &query, json!({ "input": input })).await
}

async fn rotate(t: &TestApp, token: &str, input: Value) -> Gql {
    let query = format!(
        "mutation($input: RotateWebhookSecretInput!) {{ rotateWebhookSecret(input: $input) {{ secret endpoint {{ ...E }} }} }} {ENDPOINT}"
    );
    t.gql(Some(token), &query, json!({ "input": input })).await
}

async fn delete(t: &TestApp, token: &str, id: &str) -> Gql {
    t.gql(
        Some(token),
        "mutation($id: ID!) { deleteWebhookEndpoint(input: {id: $id}) { deletedId } }",
        json!({ "id": id }),
    )
    .await
}

async fn send_test(t: &TestApp, token: &str, endpoint: &str) -> Gql {
    let query = format!(
        "mutation($e: ID!) {{ sendTestWebhook(input: {{endpointId: $e}}) {{ message {{ ...M }} }} }} {MESSAGE}"
    );
    t.gql(Some(token), &query, json!({ "e": endpoint })).await
}

async fn replay(t: &TestApp, token: &str, input: Value) -> Gql {
    t.gql(
        Some(token),
        "mutation($input: ReplayWebhookEventsInput!) { replayWebhookEvents(input: $input) { queued lastCursor complete } }",
        json!({ "input": input }),
    )
    .await
}

async fn recover(t: &TestApp, token: &str, endpoint: &str) -> Gql {
    t.gql(
        Some(token),
        "mutation($e: ID!) { recoverWebhookEndpoint(input: {endpointId: $e, since: \"2026-01-01T00:00:00Z\"}) { queued } }",
        json!({ "e": endpoint }),
    )
    .await
}

/// `webhookEndpoint(id)`, or null.
async fn endpoint(t: &TestApp, token: &str, id: &str) -> Value {
    let query = format!("query($id: ID!) {{ webhookEndpoint(id: $id) {{ ...E }} }} {ENDPOINT}");
    t.gql(Some(token), &query, json!({ "id": id })).await.data()["webhookEndpoint"].clone()
}

/// `webhookEndpoints` (an organization's, or gateway-wide), as `{totalCount, nodes}`.
async fn endpoints(t: &TestApp, token: &str, org: Option<&str>) -> Value {
    let query = format!(
        "query($o: ID) {{ webhookEndpoints(organizationId: $o, first: 50) {{ totalCount nodes {{ ...E }} }} }} {ENDPOINT}"
    );
    t.gql(Some(token), &query, json!({ "o": org })).await.data()["webhookEndpoints"].clone()
}

async fn messages(t: &TestApp, token: &str, filter: Value) -> Gql {
    let query = format!(
        "query($f: WebhookMessageFilter!) {{ webhookMessages(filter: $f, first: 50) {{ totalCount nodes {{ ...M }} }} }} {MESSAGE}"
    );
    t.gql(Some(token), &query, json!({ "f": filter })).await
}

/// `webhookMessage(id)`, or null.
async fn message(t: &TestApp, token: &str, id: &str) -> Value {
    let query = format!("query($id: ID!) {{ webhookMessage(id: $id) {{ ...M }} }} {MESSAGE}");
    t.gql(Some(token), &query, json!({ "id": id })).await.data()["webhookMessage"].clone()
}

/// Audit events with `action`, oldest first.
async fn audit(t: &TestApp, token: &str, action: &str) -> Vec<Value> {
    let response = t
        .gql(
            Some(token),
            "query($a: String!) { auditEvents(first: 100, order: OLDEST_FIRST, filter: {actions: [$a]}) { nodes { action organizationId outcome actor { id } targets { type id } metadata } } }",
            json!({ "a": action }),
        )
        .await;
    response.data()["auditEvents"]["nodes"]
        .as_array()
        .expect("nodes")
        .clone()
}

/// Audit events of every `webhook.*` action.
async fn webhook_audit(t: &TestApp, token: &str) -> Vec<Value> {
    audit(t, token, "webhook.*").await
}

fn targets(event: &Value, kind: &str) -> Vec<String> {
    event["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter(|target| target["type"] == kind)
        .map(|target| target["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn instant(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .unwrap_or_else(|| panic!("a timestamp, got {value}"))
        .with_timezone(&Utc)
}

/// The key inside a `whsec_…` secret.
fn key_of(secret: &str) -> Vec<u8> {
    let encoded = secret
        .strip_prefix("whsec_")
        .unwrap_or_else(|| panic!("a Standard Webhooks secret: {secret}"));
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_else(|e| panic!("base64 after whsec_ in {secret}: {e}"))
}

async fn viewer_id(t: &TestApp, token: &str) -> String {
    t.gql(Some(token), "{ viewer { user { id } } }", json!({}))
        .await
        .data()["viewer"]["user"]["id"]
        .as_str()
        .expect("viewer id")
        .to_owned()
}

async fn assign(t: &TestApp, admin: &str, user: &str, role: &str, org: &str) {
    let assigned = t
        .gql(
            Some(admin),
            "mutation($u: ID!, $r: ID!, $o: ID) { assignRole(input: {userId: $u, roleId: $r, organizationId: $o}) { roleAssignment { id } } }",
            json!({ "u": user, "r": role, "o": org }),
        )
        .await;
    assigned.data();
}

/// The same database served by another gateway instance, with `tweak` applied to its configuration.
async fn instance(t: &TestApp, tweak: impl FnOnce(&mut portcullis::config::Config)) -> TestApp {
    let mut config = test_config(t.app.db.url());
    config.job_poll_ms = 50;
    config.webhook_timeout_seconds = 2;
    tweak(&mut config);
    let app = App::start(config, t.clock.clone())
        .await
        .expect("second instance starts");
    TestApp {
        router: portcullis::http::router(app.clone()),
        app,
        clock: t.clock.clone(),
    }
}

/// Polls `probe` until it answers `Ok`, failing the test with its last `Err` after [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(state) if Instant::now() >= deadline => {
                panic!("gave up waiting ({PATIENCE:?}) for {what}; last seen: {state}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A receiver of our own on 127.0.0.1: answers every request 204 and counts the TCP connections it
/// accepted (a refused destination must not even be connected to).
struct Receiver {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("local address").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (counted, answered) = (connections.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let answered = answered.clone();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut chunk = [0_u8; 4096];
                    loop {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&chunk[..n]),
                        }
                        let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .and_then(|value| value.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + length {
                            break;
                        }
                    }
                    answered.fetch_add(1, Ordering::SeqCst);
                    let _ = stream
                        .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                        .await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Receiver {
            port,
            connections,
            requests,
            task,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------

async fn create_shows_the_secret_once_and_lists_endpoints(t: TestApp) {
    let admin = t.admin_token().await;
    let admin_id = viewer_id(&t, &admin).await;
    let org = t.create_organization(&admin, "acme").await;
    let now = t.clock.now();

    // Gateway-wide, with every default.
    let (wide, wide_secret) = created(&t, &admin, json!({ "url": NOWHERE })).await;
    assert!(
        key_of(&wide_secret).len() >= 24,
        "Standard Webhooks keys have 24 to 64 bytes: {wide_secret}"
    );
    let wide_id = id_of(&wide);
    assert_eq!(
        wide,
        json!({
            "id": wide_id,
            "organizationId": null,
            "url": NOWHERE,
            "description": "",
            "eventTypes": [],
            "enabled": true,
            "ordered": true,
            "includeSensitive": false,
            "disabledReason": null,
            "failingSince": null,
            "previousSecretExpiresAt": null,
            "createdAt": wide["createdAt"],
            "updatedAt": wide["updatedAt"],
        })
    );
    assert_eq!(instant(&wide["createdAt"]), now);
    assert_eq!(instant(&wide["updatedAt"]), now);

    // An organization's, with its options.
    let (scoped, scoped_secret) = created(
        &t,
        &admin,
        json!({
            "organizationId": org,
            "url": "http://127.0.0.1:8443/acme?token=path-secret-1",
            "description": "  Acme SIEM  ",
            "eventTypes": ["policy.*", " member.added ", "member.added"],
            "ordered": false,
            "enabled": false,
        }),
    )
    .await;
    let scoped_id = id_of(&scoped);
    assert_ne!(scoped_secret, wide_secret, "each endpoint has its own secret");
    assert!(key_of(&scoped_secret).len() >= 24);
    assert_eq!(scoped["organizationId"], org.as_str());
    assert_eq!(scoped["description"], "Acme SIEM", "trimmed");
    assert_eq!(
        scoped["eventTypes"],
        json!(["policy.*", "member.added"]),
        "trimmed and deduplicated"
    );
    assert_eq!(scoped["ordered"], false);
    assert_eq!(scoped["enabled"], false);

    // Read back by id and in the lists: the gateway's without organizationId, the organization's with it.
    assert_eq!(endpoint(&t, &admin, &wide_id).await, wide);
    assert_eq!(endpoint(&t, &admin, &scoped_id).await, scoped);
    assert_eq!(
        endpoints(&t, &admin, None).await,
        json!({ "totalCount": 1, "nodes": [wide] })
    );
    assert_eq!(
        endpoints(&t, &admin, Some(&org)).await,
        json!({ "totalCount": 1, "nodes": [scoped] })
    );
    let with_org = t
        .gql(
            Some(&admin),
            "query($id: ID!) { webhookEndpoint(id: $id) { organization { id name } } }",
            json!({ "id": scoped_id }),
        )
        .await;
    assert_eq!(
        with_org.data()["webhookEndpoint"]["organization"],
        json!({ "id": org, "name": "acme" })
    );

    // Neither secret is shown anywhere again: not by the endpoint, its messages, or the audit log.
    let message = send_test(&t, &admin, &wide_id).await;
    let message_id = id_of(&message.data()["sendTestWebhook"]["message"]);
    let everything = t
        .gql(
            Some(&admin),
            &format!(
                "query($w: ID!, $s: ID!, $m: ID!, $o: ID!) {{
                   w: webhookEndpoint(id: $w) {{ ...E }}
                   s: webhookEndpoint(id: $s) {{ ...E organization {{ id }} }}
                   all: webhookEndpoints {{ edges {{ cursor node {{ ...E }} }} }}
                   org: webhookEndpoints(organizationId: $o) {{ nodes {{ ...E }} }}
                   messages: webhookMessages(filter: {{endpointId: $w}}) {{ nodes {{ ...M }} }}
                   message: webhookMessage(id: $m) {{ ...M }}
                   auditEvents(first: 100) {{ nodes {{ action metadata targets {{ type id displayName }} }} }}
                 }} {ENDPOINT} {MESSAGE}"
            ),
            json!({ "w": wide_id, "s": scoped_id, "m": message_id, "o": org }),
        )
        .await;
    let text = everything.data().to_string();
    for secret in [&wide_secret, &scoped_secret] {
        let key = secret.trim_start_matches("whsec_");
        assert!(!text.contains(key), "a secret shown again: {text}");
    }

    // Each creation is audited, with what was asked for and without the secret.
    let events = audit(&t, &admin, "webhook.endpoint_created").await;
    assert_eq!(events.len(), 2, "{events:#?}");
    let (first, second) = (&events[0], &events[1]);
    assert_eq!(targets(first, "webhook_endpoint"), [wide_id.as_str()]);
    assert_eq!(first["organizationId"], Value::Null);
    assert_eq!(first["actor"]["id"], admin_id.as_str());
    assert_eq!(first["outcome"], "SUCCESS");
    // Of the URL, only the origin: receivers often carry a credential in the path or query.
    assert_eq!(first["metadata"]["urlOrigin"], "http://127.0.0.1:9");
    assert_eq!(first["metadata"]["eventTypes"], json!([]));
    assert_eq!(targets(second, "webhook_endpoint"), [scoped_id.as_str()]);
    assert_eq!(second["organizationId"], org.as_str());
    assert_eq!(
        second["metadata"]["eventTypes"],
        json!(["policy.*", "member.added"])
    );
    assert_eq!(second["metadata"]["enabled"], false);
    assert_eq!(second["metadata"]["urlOrigin"], "http://127.0.0.1:8443");
    assert_eq!(scoped["url"], "http://127.0.0.1:8443/acme?token=path-secret-1");
    for event in &events {
        assert!(
            !event.to_string().contains("path-secret-1"),
            "the URL's query in the log: {event:#}"
        );
        let metadata = event["metadata"].as_object().expect("metadata");
        assert!(
            !metadata.keys().any(|key| key.to_lowercase().contains("secret")),
            "{event:#}"
        );
        let text = event.to_string();
        for secret in [&wide_secret, &scoped_secret] {
            assert!(!text.contains(secret.trim_start_matches("whsec_")), "{text}");
        }
    }
}

async fn bad_input_is_refused_naming_the_field_and_writes_nothing(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "acme").await;
    let (good, _) = created(&t, &admin, json!({ "url": NOWHERE })).await;
    let good_id = id_of(&good);
    let audit_before = webhook_audit(&t, &admin).await;
    assert_eq!(audit_before.len(), 1, "the one creation: {audit_before:#?}");

    let long_url = format!("https://example.com/{}", "a".repeat(2048));
    let long_description = "d".repeat(501);
    let creations: Vec<(&str, Value, &str, &str)> = vec![
        ("not a URL", json!({ "url": "not a url" }), "input.url", "URL"),
        (
            "ftp",
            json!({ "url": "ftp://example.com/x" }),
            "input.url",
            "https",
        ),
        (
            "credentials in the URL",
            json!({ "url": "https://user:pass@example.com/x" }),
            "input.url",
            "credentials",
        ),
        (
            "a fragment",
            json!({ "url": "https://example.com/x#top" }),
            "input.url",
            "fragment",
        ),
        ("too long", json!({ "url": long_url }), "input.url", "2048"),
        (
            "an unknown event type",
            json!({ "url": NOWHERE, "eventTypes": ["member.added", "nothing.happened"] }),
            "input.eventTypes",
            "nothing.happened",
        ),
        (
            "a prefix without its dot",
            json!({ "url": NOWHERE, "eventTypes": ["polic*"] }),
            "input.eventTypes",
            "polic*",
        ),
        (
            "a description of 501 characters",
            json!({ "url": NOWHERE, "description": long_description }),
            "input.description",
            "500",
        ),
        (
            "a control character in the description",
            json!({ "url": NOWHERE, "description": "bell\u{7}" }),
            "input.description",
            "control",
        ),
        (
            "in an organization, bad url",
            json!({ "url": "nope", "organizationId": org }),
            "input.url",
            "URL",
        ),
    ];
    let mut failures = Vec::new();
    for (case, input, field, words) in creations {
        let response = create(&t, &admin, input).await;
        let body = &response.0;
        if body["errors"][0]["extensions"]["code"] != "BAD_USER_INPUT"
            || response.field() != field
            || !response.message().contains(words)
            || !body["data"].is_null()
        {
            failures.push(format!(
                "createWebhookEndpoint, {case}: expected BAD_USER_INPUT on {field} saying {words:?}, got {body}"
            ));
        }
    }

    // The same checks on update, against an endpoint that stays as it was.
    let updates: Vec<(&str, Value, &str)> = vec![
        ("not a URL", json!({ "id": good_id, "url": "::" }), "input.url"),
        (
            "credentials",
            json!({ "id": good_id, "url": "https://a:b@example.com/" }),
            "input.url",
        ),
        (
            "unknown event type",
            json!({ "id": good_id, "eventTypes": ["nothing.happened"] }),
            "input.eventTypes",
        ),
        (
            "long description",
            json!({ "id": good_id, "description": "d".repeat(501) }),
            "input.description",
        ),
    ];
    for (case, input, field) in updates {
        let response = update(&t, &admin, input).await;
        if response.0["errors"][0]["extensions"]["code"] != "BAD_USER_INPUT" || response.field() != field {
            failures.push(format!(
                "updateWebhookEndpoint, {case}: expected BAD_USER_INPUT on {field}, got {}",
                response.0
            ));
        }
    }
    for overlap in [-1, 700_000] {
        let response = rotate(&t, &admin, json!({ "id": good_id, "overlapSeconds": overlap })).await;
        if response.0["errors"][0]["extensions"]["code"] != "BAD_USER_INPUT"
            || response.field() != "input.overlapSeconds"
        {
            failures.push(format!(
                "rotateWebhookSecret, overlap {overlap}: expected BAD_USER_INPUT on input.overlapSeconds, got {}",
                response.0
            ));
        }
    }
    let replays: Vec<(&str, Value, &str)> = vec![
        (
            "neither since nor afterCursor",
            json!({ "endpointId": good_id }),
            "input.since",
        ),
        (
            "only until",
            json!({ "endpointId": good_id, "until": "2026-12-01T00:00:00Z" }),
            "input.since",
        ),
        (
            "a malformed cursor",
            json!({ "endpointId": good_id, "afterCursor": "not-a-cursor!" }),
            "input.afterCursor",
        ),
        (
            "until before since",
            json!({ "endpointId": good_id, "since": "2026-11-26T00:00:00Z", "until": "2026-11-25T00:00:00Z" }),
            "input.until",
        ),
    ];
    for (case, input, field) in replays {
        let response = replay(&t, &admin, input).await;
        if response.0["errors"][0]["extensions"]["code"] != "BAD_USER_INPUT" || response.field() != field {
            failures.push(format!(
                "replayWebhookEvents, {case}: expected BAD_USER_INPUT on {field}, got {}",
                response.0
            ));
        }
    }
    // Ids that are not ids.
    for (case, response, field) in [
        (
            "webhookEndpoint",
            t.gql(
                Some(&admin),
                "{ webhookEndpoint(id: \"nope\") { id } }",
                json!({}),
            )
            .await,
            "id",
        ),
        (
            "webhookMessages",
            messages(&t, &admin, json!({ "endpointId": "nope" })).await,
            "filter.endpointId",
        ),
        (
            "deleteWebhookEndpoint",
            delete(&t, &admin, "nope").await,
            "input.id",
        ),
    ] {
        if response.0["errors"][0]["extensions"]["code"] != "BAD_USER_INPUT" || response.field() != field {
            failures.push(format!(
                "{case} with a malformed id: expected BAD_USER_INPUT on {field}, got {}",
                response.0
            ));
        }
    }
    // An organization that does not exist.
    let missing = create(
        &t,
        &admin,
        json!({ "url": NOWHERE, "organizationId": "01900000-0000-7000-8000-000000000000" }),
    )
    .await;
    if missing.0["errors"][0]["extensions"]["code"] != "NOT_FOUND" {
        failures.push(format!(
            "createWebhookEndpoint in no organization: expected NOT_FOUND, got {}",
            missing.0
        ));
    }
    assert!(
        failures.is_empty(),
        "{} refusal(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Nothing was written: no endpoint, no change, no rotation, no replay, no audit event.
    assert_eq!(endpoints(&t, &admin, None).await["totalCount"], 1);
    assert_eq!(endpoints(&t, &admin, Some(&org)).await["totalCount"], 0);
    assert_eq!(endpoint(&t, &admin, &good_id).await, good);
    let queued = messages(&t, &admin, json!({ "endpointId": good_id })).await;
    assert_eq!(queued.data()["webhookMessages"]["totalCount"], 0);
    assert_eq!(webhook_audit(&t, &admin).await, audit_before);

    // The bounds themselves are accepted.
    let at_bounds = update(
        &t,
        &admin,
        json!({ "id": good_id, "description": "d".repeat(500) }),
    )
    .await;
    assert_eq!(
        at_bounds.data()["updateWebhookEndpoint"]["endpoint"]["description"]
            .as_str()
            .map(str::len),
        Some(500)
    );
    for overlap in [0, 604_800] {
        rotate(&t, &admin, json!({ "id": good_id, "overlapSeconds": overlap }))
            .await
            .data();
    }
}

async fn https_and_public_destinations_are_enforced_when_configured(t: TestApp) {
    let admin = t.admin_token().await;
    let strict = instance(&t, |config| {
        config.webhook_allow_http = false;
        config.webhook_allow_private = false;
    })
    .await;
    let strict_admin = strict.admin_token().await;

    let refused = [
        ("http://example.com/x", "https"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://10.0.0.1/x", "private"),
        ("https://192.168.1.20/x", "private"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://[::1]/x", "loopback"),
        ("https://[::ffff:127.0.0.1]/x", "loopback"),
        ("https://localhost/x", "loopback"),
        ("https://hooks.localhost/x", "loopback"),
        ("https://0.0.0.0/x", "loopback"),
    ];
    let mut failures = Vec::new();
    for (url, words) in refused {
        let response = create(&strict, &strict_admin, json!({ "url": url })).await;
        if response.0["errors"][0]["extensions"]["code"] != "BAD_USER_INPUT"
            || response.field() != "input.url"
            || !response.message().contains(words)
        {
            failures.push(format!(
                "{url}: expected BAD_USER_INPUT on input.url saying {words:?}, got {}",
                response.0
            ));
        }
    }
    // Changing an endpoint to such a URL is refused the same way.
    let (accepted, _) = created(&strict, &strict_admin, json!({ "url": "https://example.com/x" })).await;
    assert_eq!(accepted["url"], "https://example.com/x");
    let accepted_id = id_of(&accepted);
    for (url, _) in refused {
        let response = update(&strict, &strict_admin, json!({ "id": accepted_id, "url": url })).await;
        if response.0["errors"][0]["extensions"]["code"] != "BAD_USER_INPUT"
            || response.field() != "input.url"
        {
            failures.push(format!(
                "update to {url}: expected BAD_USER_INPUT on input.url, got {}",
                response.0
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} destination(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        endpoint(&t, &admin, &accepted_id).await["url"],
        "https://example.com/x"
    );
    assert_eq!(endpoints(&t, &admin, None).await["totalCount"], 1);
    // The permissive test instance takes what the strict one refuses.
    let (permissive, _) = created(&t, &admin, json!({ "url": "http://127.0.0.1:9/x" })).await;
    // Neither is delivered to from here on: only the endpoints below get messages.
    for id in [accepted_id, id_of(&permissive)] {
        update(&t, &admin, json!({ "id": id, "enabled": false }))
            .await
            .data();
    }

    // At connect time. Endpoints saved while the operator allowed private destinations point at a
    // receiver on loopback: one by the name `localhost`, and (where the machine's own host name
    // resolves to a loopback or private address, as it usually does) one by that name, which only
    // the resolver can judge. An instance that forbids private destinations sends them nothing.
    let receiver = Receiver::start().await;
    let mut hosts = vec!["localhost".to_owned()];
    match own_host_name_on_a_private_address().await {
        Some(name) => hosts.push(name),
        None => {
            eprintln!("this machine's host name does not resolve to a private address: resolver case not run")
        }
    }
    let mut sent = Vec::new();
    for host in &hosts {
        let url = format!("http://{host}:{}/hook", receiver.port);
        let (hook, _) = created(
            &t,
            &admin,
            json!({ "url": url, "eventTypes": ["policy.deleted"] }),
        )
        .await;
        let hook_id = id_of(&hook);
        let message = send_test(&t, &admin, &hook_id).await;
        sent.push((
            host.clone(),
            hook_id,
            id_of(&message.data()["sendTestWebhook"]["message"]),
        ));
    }
    let guarded = instance(&t, |config| {
        config.webhook_allow_http = true;
        config.webhook_allow_private = false;
    })
    .await;
    let runner = Runner::start(&guarded.app);
    for (host, _, message_id) in &sent {
        let attempted = eventually(&format!("an attempt at {host}"), || async {
            // Settled: the attempt recorded and the job back in the queue for its retry.
            let found = message(&t, &admin, message_id).await;
            match found["attempts"].as_array() {
                Some(attempts) if !attempts.is_empty() && found["status"] != "PENDING" => Ok(found),
                _ => Err(found.to_string()),
            }
        })
        .await;
        let attempt = &attempted["attempts"][0];
        let error = attempt["error"].as_str().unwrap_or_default();
        assert_eq!(attempt["statusCode"], Value::Null, "{attempted:#}");
        assert_eq!(attempt["succeeded"], false, "{attempted:#}");
        assert!(
            error.contains("loopback") || error.contains("forbidden address"),
            "the attempt at {host} says why it was refused: {attempted:#}"
        );
        assert_eq!(attempted["status"], "FAILED", "{attempted:#}");
        assert_eq!(attempted["lastError"], attempt["error"]);
    }
    runner.stop(Duration::from_secs(5)).await;
    assert_eq!(
        (receiver.connections(), receiver.requests()),
        (0, 0),
        "nothing reached the receiver"
    );

    // The receiver was there all along: where private destinations are allowed, the retries
    // (due 5 seconds later) arrive.
    t.clock.advance(TimeDelta::seconds(10));
    let open = instance(&t, |_| {}).await;
    let runner = Runner::start(&open.app);
    for (host, _, message_id) in &sent {
        eventually(&format!("the delivery to {host}"), || async {
            let found = message(&t, &admin, message_id).await;
            if found["status"] == "DELIVERED" {
                Ok(())
            } else {
                Err(found.to_string())
            }
        })
        .await;
    }
    runner.stop(Duration::from_secs(5)).await;
    assert_eq!(receiver.requests(), sent.len());
}

/// This machine's host name, if it resolves only to addresses a strict gateway refuses.
async fn own_host_name_on_a_private_address() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()?
        .trim()
        .to_owned();
    if name.is_empty() || name.eq_ignore_ascii_case("localhost") || name.contains("localhost") {
        return None;
    }
    let resolved: Vec<std::net::SocketAddr> =
        tokio::net::lookup_host((name.as_str(), 0)).await.ok()?.collect();
    let private = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local(),
    };
    (!resolved.is_empty() && resolved.iter().all(|addr| private(addr.ip()))).then_some(name)
}

async fn organization_admins_manage_only_their_organizations_endpoints(t: TestApp) {
    let admin = t.admin_token().await;
    let a = t.create_organization(&admin, "alpha").await;
    let b = t.create_organization(&admin, "beta").await;
    let org_admin = t.builtin_role(&admin, "org_admin").await;
    let org_owner = t.builtin_role(&admin, "org_owner").await;
    let (alice, alice_token) = t.user_with_token(&admin, "alice@example.com").await;
    assign(&t, &admin, &alice, &org_admin, &a).await;
    let (olive, olive_token) = t.user_with_token(&admin, "olive@example.com").await;
    assign(&t, &admin, &olive, &org_owner, &a).await;

    let (theirs, _) = created(
        &t,
        &admin,
        json!({ "url": NOWHERE, "organizationId": b, "description": "beta's" }),
    )
    .await;
    let theirs_id = id_of(&theirs);
    let theirs_message = id_of(&send_test(&t, &admin, &theirs_id).await.data()["sendTestWebhook"]["message"]);
    let (wide, _) = created(&t, &admin, json!({ "url": NOWHERE, "description": "gateway" })).await;
    let wide_id = id_of(&wide);

    // In A: allowed, and read back with A.
    let (mine, _) = created(
        &t,
        &alice_token,
        json!({ "url": "http://127.0.0.1:9/alpha", "organizationId": a }),
    )
    .await;
    let mine_id = id_of(&mine);
    assert_eq!(mine["organizationId"], a.as_str());
    assert_eq!(
        endpoints(&t, &alice_token, Some(&a)).await,
        json!({ "totalCount": 1, "nodes": [mine] })
    );
    let with_org = t
        .gql(
            Some(&alice_token),
            "query($id: ID!) { webhookEndpoint(id: $id) { organization { id } } }",
            json!({ "id": mine_id }),
        )
        .await;
    assert_eq!(
        with_org.data()["webhookEndpoint"]["organization"]["id"],
        a.as_str()
    );
    update(
        &t,
        &alice_token,
        json!({ "id": mine_id, "description": "alpha's" }),
    )
    .await
    .data();
    send_test(&t, &alice_token, &mine_id).await.data();

    // Not in B, not gateway-wide.
    let in_b = create(&t, &alice_token, json!({ "url": NOWHERE, "organizationId": b })).await;
    assert_eq!(in_b.code(), "FORBIDDEN", "{:#}", in_b.0);
    let wide_refused = create(&t, &alice_token, json!({ "url": NOWHERE })).await;
    assert_eq!(wide_refused.code(), "FORBIDDEN", "{:#}", wide_refused.0);
    for org in [Some(b.as_str()), None] {
        let query = "query($o: ID) { webhookEndpoints(organizationId: $o) { totalCount } }";
        let listed = t.gql(Some(&alice_token), query, json!({ "o": org })).await;
        assert_eq!(listed.code(), "FORBIDDEN", "{org:?}: {:#}", listed.0);
    }

    // B's endpoint (and the gateway's) as if it did not exist.
    for (whose, id) in [("B's", &theirs_id), ("the gateway's", &wide_id)] {
        assert_eq!(endpoint(&t, &alice_token, id).await, Value::Null, "{whose}");
        let attempts = [
            (
                "update",
                update(
                    &t,
                    &alice_token,
                    json!({ "id": id, "url": "http://127.0.0.1:9/stolen" }),
                )
                .await,
            ),
            ("delete", delete(&t, &alice_token, id).await),
            ("rotate", rotate(&t, &alice_token, json!({ "id": id })).await),
            ("send a test", send_test(&t, &alice_token, id).await),
            (
                "replay",
                replay(
                    &t,
                    &alice_token,
                    json!({ "endpointId": id, "since": "2026-01-01T00:00:00Z" }),
                )
                .await,
            ),
            ("recover", recover(&t, &alice_token, id).await),
            (
                "list messages",
                messages(&t, &alice_token, json!({ "endpointId": id })).await,
            ),
        ];
        for (what, response) in attempts {
            assert_eq!(response.code(), "NOT_FOUND", "{what} {whose}: {:#}", response.0);
            assert_eq!(response.0["data"], Value::Null, "{what} {whose}");
        }
    }
    assert_eq!(message(&t, &alice_token, &theirs_message).await, Value::Null);
    let retry = t
        .gql(
            Some(&alice_token),
            "mutation($id: ID!) { retryWebhookMessage(input: {id: $id}) { message { id } } }",
            json!({ "id": theirs_message }),
        )
        .await;
    assert_eq!(retry.code(), "NOT_FOUND", "{:#}", retry.0);

    // Unmasked IP addresses need audit.read_sensitive, which org_admin lacks and org_owner has.
    let sensitive = create(
        &t,
        &alice_token,
        json!({ "url": NOWHERE, "organizationId": a, "includeSensitive": true }),
    )
    .await;
    assert_eq!(sensitive.code(), "FORBIDDEN", "{:#}", sensitive.0);
    let made_sensitive = update(
        &t,
        &alice_token,
        json!({ "id": mine_id, "includeSensitive": true }),
    )
    .await;
    assert_eq!(made_sensitive.code(), "FORBIDDEN", "{:#}", made_sensitive.0);
    assert_eq!(endpoint(&t, &admin, &mine_id).await["includeSensitive"], false);
    let (owned, _) = created(
        &t,
        &olive_token,
        json!({ "url": NOWHERE, "organizationId": a, "includeSensitive": true }),
    )
    .await;
    assert_eq!(owned["includeSensitive"], true);
    // On an endpoint that sends unmasked data, an org_admin may change other things, but may not
    // send that data somewhere new.
    let owned_id = id_of(&owned);
    let redirected = update(
        &t,
        &alice_token,
        json!({ "id": owned_id, "url": "http://127.0.0.1:9/alice" }),
    )
    .await;
    assert_eq!(redirected.code(), "FORBIDDEN", "{:#}", redirected.0);
    assert_eq!(endpoint(&t, &admin, &owned_id).await["url"], NOWHERE);
    let described = update(
        &t,
        &alice_token,
        json!({ "id": owned_id, "description": "owned by olive" }),
    )
    .await;
    assert_eq!(
        described.data()["updateWebhookEndpoint"]["endpoint"]["description"],
        "owned by olive"
    );
    // And she may turn unmasking off.
    let turned_off = update(
        &t,
        &alice_token,
        json!({ "id": owned_id, "includeSensitive": false }),
    )
    .await;
    assert_eq!(
        turned_off.data()["updateWebhookEndpoint"]["endpoint"]["includeSensitive"],
        false
    );

    // B's endpoint and the gateway's are as the administrator left them, with B's message.
    assert_eq!(endpoint(&t, &admin, &theirs_id).await, theirs);
    assert_eq!(endpoint(&t, &admin, &wide_id).await, wide);
    let b_messages = messages(&t, &admin, json!({ "endpointId": theirs_id })).await;
    assert_eq!(b_messages.data()["webhookMessages"]["totalCount"], 1);
    assert_eq!(endpoints(&t, &admin, Some(&b)).await["totalCount"], 1);
    assert_eq!(endpoints(&t, &admin, None).await["totalCount"], 1);
    // And Alice's work is in A's log under her name; none of it in B's.
    let alice_events: Vec<Value> = webhook_audit(&t, &admin)
        .await
        .into_iter()
        .filter(|event| event["actor"]["id"] == alice.as_str())
        .collect();
    assert!(
        alice_events
            .iter()
            .all(|event| event["organizationId"] == a.as_str()),
        "{alice_events:#?}"
    );
    assert!(
        alice_events
            .iter()
            .any(|event| event["action"] == "webhook.endpoint_created"),
        "{alice_events:#?}"
    );
    assert!(
        alice_events
            .iter()
            .any(|event| event["action"] == "webhook.endpoint_updated"),
        "{alice_events:#?}"
    );
}

async fn update_rotate_and_delete_are_audited(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "acme").await;
    let (hook, first_secret) = created(
        &t,
        &admin,
        json!({ "url": NOWHERE, "organizationId": org, "description": "first" }),
    )
    .await;
    let id = id_of(&hook);

    // Changes.
    t.clock.advance(TimeDelta::minutes(1));
    let changed = update(
        &t,
        &admin,
        json!({
            "id": id,
            "url": "http://127.0.0.1:10/second?token=update-secret-2",
            "description": "second",
            "eventTypes": ["member.*"],
            "ordered": false,
        }),
    )
    .await;
    let changed = changed.data()["updateWebhookEndpoint"]["endpoint"].clone();
    assert_eq!(changed["url"], "http://127.0.0.1:10/second?token=update-secret-2");
    assert_eq!(changed["description"], "second");
    assert_eq!(changed["eventTypes"], json!(["member.*"]));
    assert_eq!(changed["ordered"], false);
    assert_eq!(changed["enabled"], true, "unchanged");
    assert_eq!(changed["createdAt"], hook["createdAt"]);
    assert_eq!(instant(&changed["updatedAt"]), t.clock.now());
    assert_eq!(endpoint(&t, &admin, &id).await, changed);
    let updated = audit(&t, &admin, "webhook.endpoint_updated").await;
    assert_eq!(updated.len(), 1, "{updated:#?}");
    assert_eq!(updated[0]["organizationId"], org.as_str());
    assert_eq!(targets(&updated[0], "webhook_endpoint"), [id.as_str()]);
    assert_eq!(
        updated[0]["metadata"]["changes"],
        json!({
            "urlOrigin": { "before": "http://127.0.0.1:9", "after": "http://127.0.0.1:10" },
            "url": { "before": "[redacted]", "after": "[changed]" },
            "description": { "before": "first", "after": "second" },
            "eventTypes": { "before": [], "after": ["member.*"] },
            "ordered": { "before": true, "after": false },
        })
    );

    // Disabled: nothing can be sent to it on demand.
    let disabled = update(&t, &admin, json!({ "id": id, "enabled": false })).await;
    assert_eq!(
        disabled.data()["updateWebhookEndpoint"]["endpoint"]["enabled"],
        false
    );
    for (what, response) in [
        ("a test", send_test(&t, &admin, &id).await),
        (
            "a replay",
            replay(
                &t,
                &admin,
                json!({ "endpointId": id, "since": "2026-01-01T00:00:00Z" }),
            )
            .await,
        ),
        ("a recovery", recover(&t, &admin, &id).await),
    ] {
        assert_eq!(response.code(), "CONFLICT", "{what}: {:#}", response.0);
        assert!(
            response.message().contains("disabled"),
            "{what}: {:#}",
            response.0
        );
        assert_eq!(
            response.0["errors"][0]["extensions"]["reason"], "ENDPOINT_DISABLED",
            "{what}: {:#}",
            response.0
        );
    }
    let nothing = messages(&t, &admin, json!({ "endpointId": id })).await;
    assert_eq!(nothing.data()["webhookMessages"]["totalCount"], 0);
    let enabled = update(&t, &admin, json!({ "id": id, "enabled": true })).await;
    let enabled = &enabled.data()["updateWebhookEndpoint"]["endpoint"];
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabledReason"], Value::Null);
    let toggles: Vec<Value> = audit(&t, &admin, "webhook.endpoint_updated")
        .await
        .into_iter()
        .skip(1)
        .map(|event| event["metadata"]["changes"].clone())
        .collect();
    assert_eq!(
        toggles,
        [
            json!({ "enabled": { "before": true, "after": false } }),
            json!({ "enabled": { "before": false, "after": true } }),
        ]
    );

    // Rotation: a new secret; the old one keeps signing for the overlap.
    let rotated = rotate(&t, &admin, json!({ "id": id, "overlapSeconds": 3600 })).await;
    let rotated = rotated.data()["rotateWebhookSecret"].clone();
    let second_secret = rotated["secret"].as_str().expect("a new secret").to_owned();
    assert_ne!(second_secret, first_secret);
    assert!(key_of(&second_secret).len() >= 24);
    assert_eq!(
        instant(&rotated["endpoint"]["previousSecretExpiresAt"]),
        t.clock.now() + TimeDelta::seconds(3600)
    );
    assert_eq!(
        endpoint(&t, &admin, &id).await["previousSecretExpiresAt"],
        rotated["endpoint"]["previousSecretExpiresAt"]
    );
    // The default overlap is a day.
    let by_default = rotate(&t, &admin, json!({ "id": id })).await;
    let by_default = by_default.data()["rotateWebhookSecret"].clone();
    assert_eq!(
        instant(&by_default["endpoint"]["previousSecretExpiresAt"]),
        t.clock.now() + TimeDelta::days(1)
    );
    // Without overlap, the old secret stops at once.
    let at_once = rotate(&t, &admin, json!({ "id": id, "overlapSeconds": 0 })).await;
    let at_once = at_once.data()["rotateWebhookSecret"].clone();
    assert_eq!(at_once["endpoint"]["previousSecretExpiresAt"], Value::Null);
    let secrets = [
        first_secret.clone(),
        second_secret.clone(),
        by_default["secret"].as_str().unwrap().to_owned(),
        at_once["secret"].as_str().unwrap().to_owned(),
    ];
    let distinct: std::collections::BTreeSet<&String> = secrets.iter().collect();
    assert_eq!(distinct.len(), 4, "every rotation mints a new secret");
    let rotations = audit(&t, &admin, "webhook.secret_rotated").await;
    assert_eq!(rotations.len(), 3, "{rotations:#?}");
    assert_eq!(targets(&rotations[0], "webhook_endpoint"), [id.as_str()]);
    assert_eq!(rotations[0]["metadata"]["overlapSeconds"], 3600);
    assert_eq!(rotations[1]["metadata"]["overlapSeconds"], 86400);
    assert_eq!(rotations[2]["metadata"]["overlapSeconds"], 0);
    let log_text = webhook_audit(&t, &admin).await;
    let log_text = serde_json::to_string(&log_text).unwrap();
    for secret in &secrets {
        assert!(
            !log_text.contains(secret.trim_start_matches("whsec_")),
            "a secret in the audit log"
        );
    }

    // Deletion takes its messages with it.
    let test_message = id_of(&send_test(&t, &admin, &id).await.data()["sendTestWebhook"]["message"]);
    assert_eq!(
        message(&t, &admin, &test_message).await["id"],
        test_message.as_str()
    );
    let deleted = delete(&t, &admin, &id).await;
    assert_eq!(deleted.data()["deleteWebhookEndpoint"]["deletedId"], id.as_str());
    assert_eq!(endpoint(&t, &admin, &id).await, Value::Null);
    assert_eq!(message(&t, &admin, &test_message).await, Value::Null);
    assert_eq!(endpoints(&t, &admin, Some(&org)).await["totalCount"], 0);
    let gone = messages(&t, &admin, json!({ "endpointId": id })).await;
    assert_eq!(gone.code(), "NOT_FOUND", "{:#}", gone.0);
    let again = delete(&t, &admin, &id).await;
    assert_eq!(again.code(), "NOT_FOUND", "{:#}", again.0);
    let deletions = audit(&t, &admin, "webhook.endpoint_deleted").await;
    assert_eq!(deletions.len(), 1, "{deletions:#?}");
    assert_eq!(targets(&deletions[0], "webhook_endpoint"), [id.as_str()]);
    assert_eq!(deletions[0]["organizationId"], org.as_str());
    assert_eq!(deletions[0]["metadata"]["urlOrigin"], "http://127.0.0.1:10");
    let log_text = serde_json::to_string(&webhook_audit(&t, &admin).await).unwrap();
    assert!(
        !log_text.contains("update-secret-2"),
        "the URL's query in the log: {log_text}"
    );
}

/// The log records only a URL's origin (its path or query may hold a credential), but a change of
/// path still sends the log somewhere else: the event must say that the URL changed.
async fn a_url_change_within_the_same_origin_is_audited(t: TestApp) {
    let admin = t.admin_token().await;
    let (hook, _) = created(&t, &admin, json!({ "url": "http://127.0.0.1:9/one" })).await;
    let id = id_of(&hook);
    let moved = update(
        &t,
        &admin,
        json!({ "id": id, "url": "http://127.0.0.1:9/elsewhere?token=moved-secret-3" }),
    )
    .await;
    assert_eq!(
        moved.data()["updateWebhookEndpoint"]["endpoint"]["url"],
        "http://127.0.0.1:9/elsewhere?token=moved-secret-3"
    );
    let updated = audit(&t, &admin, "webhook.endpoint_updated").await;
    assert_eq!(updated.len(), 1, "{updated:#?}");
    assert!(
        !updated[0].to_string().contains("moved-secret-3"),
        "the URL's query in the log: {:#}",
        updated[0]
    );
    let changes = updated[0]["metadata"]["changes"].as_object();
    assert!(
        changes.is_some_and(|changes| changes.keys().any(|key| key.starts_with("url"))),
        "the destination changed, but the event does not say so: {:#}",
        updated[0]["metadata"]
    );
}

async fn messages_list_with_filters(t: TestApp) {
    let admin = t.admin_token().await;
    let (hook, _) = created(
        &t,
        &admin,
        json!({ "url": NOWHERE, "eventTypes": ["webhook.endpoint_created"] }),
    )
    .await;
    let id = id_of(&hook);
    let start = t.clock.now();

    let first = send_test(&t, &admin, &id).await;
    let first = first.data()["sendTestWebhook"]["message"].clone();
    assert_eq!(
        first,
        json!({
            "id": first["id"],
            "endpointId": id,
            "eventType": "webhook.test",
            "eventId": null,
            "eventCursor": null,
            "status": "PENDING",
            "replay": false,
            "test": true,
            "attemptCount": 0,
            "nextAttemptAt": first["nextAttemptAt"],
            "lastError": null,
            "createdAt": first["createdAt"],
            "deliveredAt": null,
            "attempts": [],
        })
    );
    assert_eq!(instant(&first["createdAt"]), start);
    assert_eq!(instant(&first["nextAttemptAt"]), start, "due at once");
    t.clock.advance(TimeDelta::minutes(1));
    let second = send_test(&t, &admin, &id).await;
    let second = second.data()["sendTestWebhook"]["message"].clone();
    assert_ne!(second["id"], first["id"]);
    assert_eq!(instant(&second["createdAt"]), start + TimeDelta::minutes(1));

    let list = |filter: Value| {
        let t = t.clone();
        let admin = admin.clone();
        async move {
            let response = messages(&t, &admin, filter).await;
            let connection = response.data()["webhookMessages"].clone();
            let ids: Vec<Value> = connection["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .map(|node| node["id"].clone())
                .collect();
            (connection["totalCount"].clone(), ids)
        }
    };
    let both = vec![first["id"].clone(), second["id"].clone()];
    assert_eq!(
        list(json!({ "endpointId": id })).await,
        (json!(2), both.clone()),
        "oldest first"
    );
    let all = messages(&t, &admin, json!({ "endpointId": id })).await;
    assert_eq!(all.data()["webhookMessages"]["nodes"], json!([first, second]));
    assert_eq!(
        list(json!({ "endpointId": id, "status": "PENDING" })).await,
        (json!(2), both.clone())
    );
    for status in ["DELIVERED", "FAILED", "DEAD"] {
        assert_eq!(
            list(json!({ "endpointId": id, "status": status })).await,
            (json!(0), vec![]),
            "{status}"
        );
    }
    assert_eq!(
        list(json!({ "endpointId": id, "eventType": "webhook.test" })).await,
        (json!(2), both.clone())
    );
    assert_eq!(
        list(json!({ "endpointId": id, "eventType": "webhook.endpoint_created" })).await,
        (json!(0), vec![])
    );
    let middle = (start + TimeDelta::seconds(30)).to_rfc3339();
    assert_eq!(
        list(json!({ "endpointId": id, "since": middle })).await,
        (json!(1), vec![second["id"].clone()])
    );
    assert_eq!(
        list(json!({ "endpointId": id, "until": middle })).await,
        (json!(1), vec![first["id"].clone()])
    );
    // Paging.
    let page = t
        .gql(
            Some(&admin),
            "query($e: ID!) { webhookMessages(filter: {endpointId: $e}, first: 1) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } }",
            json!({ "e": id }),
        )
        .await;
    let page = page.data()["webhookMessages"].clone();
    assert_eq!(page["totalCount"], 2);
    assert_eq!(page["nodes"], json!([{ "id": first["id"] }]));
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let next = t
        .gql(
            Some(&admin),
            "query($e: ID!, $after: String) { webhookMessages(filter: {endpointId: $e}, first: 1, after: $after) { nodes { id } pageInfo { hasNextPage } } }",
            json!({ "e": id, "after": page["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(
        next.data()["webhookMessages"],
        json!({ "nodes": [{ "id": second["id"] }], "pageInfo": { "hasNextPage": false } })
    );

    // Only a failed or dead message can be retried.
    let retry = t
        .gql(
            Some(&admin),
            "mutation($id: ID!) { retryWebhookMessage(input: {id: $id}) { message { id status } } }",
            json!({ "id": first["id"] }),
        )
        .await;
    assert_eq!(retry.code(), "CONFLICT", "{:#}", retry.0);
    assert_eq!(retry.0["data"], Value::Null);
    assert_eq!(message(&t, &admin, first["id"].as_str().unwrap()).await, first);
    assert!(
        audit(&t, &admin, "webhook.message_retried").await.is_empty(),
        "a refused retry is not recorded as one"
    );

    // A replay queues the endpoint's events again (here: its own creation), marked as replays,
    // with their place in the log; continuing from the last cursor finds nothing more.
    let replayed = replay(
        &t,
        &admin,
        json!({ "endpointId": id, "since": start.to_rfc3339() }),
    )
    .await;
    let replayed = replayed.data()["replayWebhookEvents"].clone();
    assert_eq!(replayed["queued"], 1, "{replayed:#}");
    assert_eq!(replayed["complete"], true);
    let cursor = replayed["lastCursor"].as_str().expect("a cursor").to_owned();
    let created_event = t
        .gql(
            Some(&admin),
            "{ auditEvents(first: 1, filter: {actions: [\"webhook.endpoint_created\"]}) { edges { cursor node { id } } } }",
            json!({}),
        )
        .await;
    let created_edge = created_event.data()["auditEvents"]["edges"][0].clone();
    assert_eq!(created_edge["cursor"], cursor.as_str());
    let replays = messages(
        &t,
        &admin,
        json!({ "endpointId": id, "eventType": "webhook.endpoint_created" }),
    )
    .await;
    let replays = replays.data()["webhookMessages"]["nodes"].clone();
    assert_eq!(replays.as_array().map(Vec::len), Some(1), "{replays:#}");
    assert_eq!(replays[0]["replay"], true);
    assert_eq!(replays[0]["test"], false);
    assert_eq!(replays[0]["status"], "PENDING");
    assert_eq!(replays[0]["eventId"], created_edge["node"]["id"]);
    assert_eq!(replays[0]["eventCursor"], cursor.as_str());
    let more = replay(&t, &admin, json!({ "endpointId": id, "afterCursor": cursor })).await;
    assert_eq!(
        more.data()["replayWebhookEvents"],
        json!({ "queued": 0, "lastCursor": null, "complete": true })
    );
    let requested = audit(&t, &admin, "webhook.replay_requested").await;
    assert_eq!(requested.len(), 2, "{requested:#?}");
    assert_eq!(requested[0]["metadata"]["queued"], 1);
    assert_eq!(requested[1]["metadata"]["afterCursor"], cursor.as_str());
    assert_eq!(
        list(json!({ "endpointId": id })).await.0,
        json!(3),
        "two tests and one replay"
    );
}

const DELIVERIES: &str = "subscription($e: ID!) { webhookDeliveries(endpointId: $e) { id messageId endpointId statusCode succeeded error } }";

async fn webhook_deliveries_are_watched_only_by_those_who_see_the_endpoint(t: TestApp) {
    let admin = t.admin_token().await;
    let a = t.create_organization(&admin, "alpha").await;
    let b = t.create_organization(&admin, "beta").await;
    let receiver = Receiver::start().await;
    let (hook, _) = created(
        &t,
        &admin,
        json!({ "url": format!("http://127.0.0.1:{}/hook", receiver.port), "organizationId": b, "eventTypes": ["policy.deleted"] }),
    )
    .await;
    let hook_id = id_of(&hook);
    let org_admin = t.builtin_role(&admin, "org_admin").await;
    let (alice, alice_token) = t.user_with_token(&admin, "alice@example.com").await;
    assign(&t, &admin, &alice, &org_admin, &a).await;
    let (_, nobody_token) = t.user_with_token(&admin, "nobody@example.com").await;
    let server = Server::start(&t).await;

    // Refused at subscription: B's endpoint is not found by A's administrator or by a user without
    // roles, exactly as one that does not exist; anonymous callers are told to authenticate.
    let mut refusals = Vec::new();
    for (who, token, endpoint) in [
        ("org_admin of A", Some(&alice_token), hook_id.as_str()),
        ("nobody", Some(&nobody_token), hook_id.as_str()),
        (
            "nobody, no such endpoint",
            Some(&nobody_token),
            "01900000-0000-7000-8000-000000000000",
        ),
        ("anonymous", None, hook_id.as_str()),
    ] {
        let mut ws = connect(&server, TRANSPORT_WS).await;
        let payload = match token {
            Some(token) => json!({ "authorization": format!("Bearer {token}") }),
            None => json!({}),
        };
        init(&mut ws, payload).await;
        send(
            &mut ws,
            json!({ "id": "w", "type": "subscribe", "payload": { "query": DELIVERIES, "variables": { "e": endpoint } } }),
        )
        .await;
        let answer = recv(&mut ws).await;
        assert_eq!(answer["payload"]["data"], Value::Null, "{who}: {answer:#}");
        refusals.push((
            who,
            answer["payload"]["errors"][0]["extensions"]["code"].clone(),
            answer["payload"]["errors"][0]["message"].clone(),
        ));
        drop(ws);
    }
    let codes: Vec<(&str, Value)> = refusals
        .iter()
        .map(|(who, code, _)| (*who, code.clone()))
        .collect();
    assert_eq!(
        codes,
        [
            ("org_admin of A", json!("NOT_FOUND")),
            ("nobody", json!("NOT_FOUND")),
            ("nobody, no such endpoint", json!("NOT_FOUND")),
            ("anonymous", json!("UNAUTHENTICATED")),
        ]
    );
    assert_eq!(refusals[1].2, refusals[2].2, "hidden reads as absent");

    // The administrator watches an attempt made by another instance.
    let mut ws = connect(&server, TRANSPORT_WS).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {admin}") })).await;
    send(
        &mut ws,
        json!({ "id": "w", "type": "subscribe", "payload": { "query": DELIVERIES, "variables": { "e": hook_id } } }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    t.clock.advance(TimeDelta::seconds(1));
    let sent = send_test(&t, &admin, &hook_id).await;
    let message_id = id_of(&sent.data()["sendTestWebhook"]["message"]);
    let delivering = instance(&t, |_| {}).await;
    let runner = Runner::start(&delivering.app);
    let live = tokio::time::timeout(PATIENCE, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(text.as_str()).expect("JSON");
                    if frame["type"] == "next" {
                        return frame;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("the subscription ended: {other:?}"),
            }
        }
    })
    .await
    .expect("the attempt, live");
    runner.stop(Duration::from_secs(5)).await;
    assert_eq!(
        live["payload"]["data"]["webhookDeliveries"],
        json!({
            "id": live["payload"]["data"]["webhookDeliveries"]["id"],
            "messageId": message_id,
            "endpointId": hook_id,
            "statusCode": 204,
            "succeeded": true,
            "error": null,
        }),
        "{live:#}"
    );
    assert_eq!(receiver.requests(), 1);
    drop(ws);
    server.stop().await;
}
