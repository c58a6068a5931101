//! Webhook delivery end to end: audit events delivered by the job runner to a real HTTP receiver
//! (`tests/webhook_receiver.py`), every request verified with the Standard Webhooks reference
//! library — in commit order, filtered and scoped, signed across a secret rotation, retried on the
//! documented schedule into the dead-letter queue and recovered from it, through every kind of
//! receiver fault and an instance crash — on SQLite and PostgreSQL.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, header};
use chrono::{DateTime, TimeDelta, Utc};
use portcullis::app::App;
use portcullis::clock::Clock as _;
use portcullis::config::Config;
use portcullis::jobs::Runner;
use serde_json::{Value, json};

use crate::support::{Gql, TestApp, test_config};
use crate::webhook_receiver::WebhookReceiver;

/// How long to wait for a delivery or a state at most: a bound on waiting, not a speed claim.
const PATIENCE: Duration = Duration::from_secs(30);

/// The retry delays after failure 1, 2, ... 7 (each ±20 % jitter); the 8th failure is final.
const SCHEDULE: [i64; 7] = [5, 300, 1800, 7200, 18000, 36000, 36000];

const ENDPOINT_FIELDS: &str = "id organizationId url description eventTypes enabled ordered includeSensitive disabledReason failingSince previousSecretExpiresAt createdAt updatedAt";

const MESSAGE_FIELDS: &str = "id eventType eventId eventCursor status replay test attemptCount nextAttemptAt lastError createdAt deliveredAt attempts { id attemptedAt statusCode durationMs responseBody error }";

const AUDIT_FIELDS: &str = "id occurredAt action actor { type id displayName } targets { type id displayName } organizationId outcome context { ip userAgent requestId } metadata version hash previousHash erasedAt";

crate::backend_tests!(
    deliveries_verify_with_the_reference_library_in_commit_order,
    event_type_filters_and_organization_scope,
    rotation_signs_with_both_secrets_during_the_overlap,
    a_failing_receiver_gets_everything_in_order_once_it_recovers,
    exhausted_messages_go_to_the_dead_letter_queue_and_recover,
    receiver_faults_each_have_their_outcome,
    a_crashed_instance_loses_nothing,
    send_test_webhook_and_retry_a_dead_message,
    an_unordered_endpoint_does_not_hold_later_messages_back,
    a_retry_goes_to_the_endpoint_as_it_is_now,
    an_endpoint_failing_for_too_long_is_disabled_and_can_be_enabled_again,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A second gateway on the test's database that runs the job runner (and with it the webhook
/// dispatcher), with a short delivery timeout.
///
/// Tests start it only once their receivers know the endpoints' secrets (the secret exists only
/// once the endpoint does), so that no delivery arrives before the receiver can verify it.
async fn delivering_instance(t: &TestApp) -> (App, Runner) {
    delivering_instance_with(t, |_| {}).await
}

async fn delivering_instance_with(t: &TestApp, tweak: impl FnOnce(&mut Config)) -> (App, Runner) {
    let mut config = test_config(t.app.db.url());
    config.job_poll_ms = 50;
    config.webhook_timeout_seconds = 2;
    tweak(&mut config);
    let app = App::start(config, t.clock.clone())
        .await
        .expect("delivering instance starts");
    let runner = Runner::start(&app);
    (app, runner)
}

/// Polls `probe` until it answers `Ok`, failing the test with its last `Err` after [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
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

/// A JSON value as a GraphQL input literal (so the tests need not know input type names).
fn literal(value: &Value) -> String {
    match value {
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(name, value)| format!("{name}: {}", literal(value)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(literal).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// Runs `mutation { name(input: {...}) { selection } }`.
async fn mutate(t: &TestApp, token: &str, name: &str, input: Value, selection: &str) -> Gql {
    let query = format!(
        "mutation {{ {name}(input: {}) {{ {selection} }} }}",
        literal(&input)
    );
    t.gql(Some(token), &query, json!({})).await
}

/// Creates an endpoint from `input` (a `createWebhookEndpoint` input); returns (id, secret).
async fn create_endpoint(t: &TestApp, token: &str, input: Value) -> (String, String) {
    let created = mutate(
        t,
        token,
        "createWebhookEndpoint",
        input.clone(),
        &format!("endpoint {{ {ENDPOINT_FIELDS} }} secret"),
    )
    .await;
    let payload = &created.data()["createWebhookEndpoint"];
    let endpoint = &payload["endpoint"];
    assert_eq!(endpoint["url"], input["url"]);
    assert_eq!(
        endpoint["enabled"],
        input.get("enabled").cloned().unwrap_or(json!(true))
    );
    let secret = payload["secret"].as_str().expect("a secret").to_owned();
    assert!(
        secret.starts_with("whsec_"),
        "a Standard Webhooks secret: {secret}"
    );
    (endpoint["id"].as_str().expect("an id").to_owned(), secret)
}

async fn endpoint(t: &TestApp, token: &str, id: &str) -> Value {
    let query = format!("query($id: ID!) {{ webhookEndpoint(id: $id) {{ {ENDPOINT_FIELDS} }} }}");
    t.gql(Some(token), &query, json!({ "id": id })).await.data()["webhookEndpoint"].clone()
}

/// Every message of an endpoint (up to 50: the complexity limit allows no more).
async fn messages(t: &TestApp, token: &str, endpoint: &str) -> Vec<Value> {
    let query = format!(
        "query($e: ID!) {{ webhookMessages(filter: {{endpointId: $e}}, first: 50) {{ totalCount nodes {{ {MESSAGE_FIELDS} }} }} }}"
    );
    let response = t.gql(Some(token), &query, json!({ "e": endpoint })).await;
    response.data()["webhookMessages"]["nodes"]
        .as_array()
        .expect("nodes")
        .clone()
}

/// `totalCount` of an endpoint's messages. (Compared with the nodes only once nothing changes:
/// the count and the page are separate reads, so while messages are being added they may differ.)
async fn message_count(t: &TestApp, token: &str, endpoint: &str) -> u64 {
    let response = t
        .gql(
            Some(token),
            "query($e: ID!) { webhookMessages(filter: {endpointId: $e}) { totalCount } }",
            json!({ "e": endpoint }),
        )
        .await;
    response.data()["webhookMessages"]["totalCount"]
        .as_u64()
        .expect("totalCount")
}

/// The message `id` of `endpoint`.
async fn message(t: &TestApp, token: &str, endpoint: &str, id: &str) -> Option<Value> {
    messages(t, token, endpoint)
        .await
        .into_iter()
        .find(|m| m["id"] == id)
}

/// Up to 50 audit edges (`{cursor, node}`), oldest first, narrowed by `filter` (an `AuditEventFilter`).
async fn audit_log(t: &TestApp, token: &str, filter: Value) -> Vec<Value> {
    let query = format!(
        "query($f: AuditEventFilter) {{ auditEvents(first: 50, order: OLDEST_FIRST, filter: $f) {{ edges {{ cursor node {{ {AUDIT_FIELDS} }} }} }} }}"
    );
    let response = t.gql(Some(token), &query, json!({ "f": filter })).await;
    response.data()["auditEvents"]["edges"]
        .as_array()
        .expect("edges")
        .clone()
}

/// The audit events with `action` one of whose targets is `target`.
async fn audit_events_on(t: &TestApp, token: &str, action: &str, target: &str) -> Vec<Value> {
    audit_log(t, token, json!({ "actions": [action] }))
        .await
        .into_iter()
        .map(|edge| edge["node"].clone())
        .filter(|node| {
            node["targets"]
                .as_array()
                .is_some_and(|targets| targets.iter().any(|t| t["id"] == target))
        })
        .collect()
}

/// A GraphQL request from a browser: with a client address, a `User-Agent` and a request id.
async fn gql_as_browser(t: &TestApp, token: &str, query: &str, variables: Value) -> Gql {
    let mut request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::USER_AGENT, "WebhookBrowser/1.0")
        .header("x-request-id", "req-webhook-1")
        .body(Body::from(
            json!({ "query": query, "variables": variables }).to_string(),
        ))
        .unwrap();
    let client: SocketAddr = "203.0.113.7:4711".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(client));
    let (_, _, body) = t.send(request).await;
    Gql(serde_json::from_slice(&body).unwrap())
}

async fn rename_organization(t: &TestApp, token: &str, org: &str, name: &str) {
    gql_as_browser(
        t,
        token,
        "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { id } } }",
        json!({ "input": { "id": org, "name": name } }),
    )
    .await
    .data();
}

fn header<'a>(request: &'a Value, name: &str) -> &'a str {
    request["headers"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} header in {request:#}"))
}

fn webhook_id(request: &Value) -> &str {
    header(request, "webhook-id")
}

/// The JSON body of a received request.
fn body(request: &Value) -> Value {
    let text = request["body"].as_str().expect("a body");
    serde_json::from_str(text).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {text}"))
}

/// The audit event id a received request carries.
fn event_id(request: &Value) -> String {
    body(request)["data"]["id"].as_str().expect("data.id").to_owned()
}

fn verified_with(request: &Value, secret: &str) -> bool {
    request["verified"][secret]
        .as_bool()
        .unwrap_or_else(|| panic!("the receiver did not check {secret}: {request:#}"))
}

/// The `v1,` entries of a request's `webhook-signature` header.
fn signatures(request: &Value) -> Vec<String> {
    header(request, "webhook-signature")
        .split(' ')
        .map(str::to_owned)
        .collect()
}

fn instant(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a date-time: {value}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {text}"))
        .with_timezone(&Utc)
}

/// The `webhook-timestamp` a request carried, as an instant.
fn sent_at(request: &Value) -> DateTime<Utc> {
    let seconds: i64 = request["timestamp_header"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("webhook-timestamp is Unix seconds: {request:#}"));
    DateTime::from_timestamp(seconds, 0).expect("a valid timestamp")
}

fn ids(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .map(|v| v["id"].as_str().expect("an id").to_owned())
        .collect()
}

fn status_codes(message: &Value) -> Vec<Value> {
    message["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["statusCode"].clone())
        .collect()
}

fn attempt_count(message: &Value) -> usize {
    message["attempts"].as_array().map_or(0, Vec::len)
}

/// Whether a message's row and its attempts were read at the same point: they are separate reads,
/// so while an attempt is being made the list may already hold it when the status does not yet.
fn consistent(message: &Value) -> bool {
    message["attemptCount"] == attempt_count(message)
}

/// Drives a failing message through its whole retry schedule: after each failure checks the
/// delay to the next attempt against the schedule, then moves the clock to it. Returns the
/// message once DEAD.
async fn drive_to_dead(t: &TestApp, endpoint: &str, id: &str) -> Value {
    let mut seen = 0;
    loop {
        let token = t.admin_token().await;
        let current = eventually(&format!("attempt {} of message {id}", seen + 1), || async {
            match message(t, &token, endpoint, id).await {
                Some(m)
                    if (m["status"] == "FAILED" || m["status"] == "DEAD")
                        && attempt_count(&m) > seen
                        && consistent(&m) =>
                {
                    Ok(m)
                }
                other => Err(format!("{other:#?}")),
            }
        })
        .await;
        let attempts = current["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), seen + 1, "one attempt at a time: {current:#}");
        assert_eq!(current["attemptCount"], attempts.len(), "{current:#}");
        seen = attempts.len();
        if current["status"] == "DEAD" {
            assert_eq!(seen, 8, "dead after 8 attempts, not {seen}: {current:#}");
            assert!(current["nextAttemptAt"].is_null(), "{current:#}");
            return current;
        }
        assert!(
            seen < 8,
            "still {} after {seen} attempts: {current:#}",
            current["status"]
        );
        let attempted = instant(&attempts[seen - 1]["attemptedAt"]);
        let next = instant(&current["nextAttemptAt"]);
        let delay = (next - attempted).num_milliseconds();
        let nominal = SCHEDULE[seen - 1] * 1000;
        assert!(
            (nominal * 8 / 10 - 1000..=nominal * 12 / 10 + 1000).contains(&delay),
            "after failure {seen} the next attempt is {delay} ms later, not {nominal} ms ±20 %: {current:#}"
        );
        t.clock.set(next.max(t.clock.now()) + TimeDelta::seconds(1));
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

async fn deliveries_verify_with_the_reference_library_in_commit_order(t: TestApp) {
    let admin = t.admin_token().await;
    let receiver = WebhookReceiver::start();
    let (endpoint_id, secret) = create_endpoint(
        &t,
        &admin,
        json!({ "url": receiver.url(), "description": "everything" }),
    )
    .await;
    receiver.set_secrets(&[&secret]);
    let (_instance, runner) = delivering_instance(&t).await;
    let shown = endpoint(&t, &admin, &endpoint_id).await;
    assert_eq!(shown["organizationId"], Value::Null, "gateway-wide");
    assert_eq!(shown["eventTypes"], json!([]), "all events");
    assert_eq!(
        (&shown["ordered"], &shown["includeSensitive"]),
        (&json!(true), &json!(false))
    );

    for i in 1..=5 {
        t.create_organization(&admin, &format!("org-{i}")).await;
    }

    // What the endpoint is owed: every audit event from its own creation on, in commit order.
    let log = audit_log(&t, &admin, json!({})).await;
    let creation = log
        .iter()
        .position(|e| {
            e["node"]["action"] == "webhook.endpoint_created"
                && e["node"]["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|target| target["id"] == endpoint_id.as_str())
        })
        .expect("a webhook.endpoint_created event naming the endpoint");
    let owed = &log[creation..];
    let created = owed
        .iter()
        .filter(|e| e["node"]["action"] == "organization.created")
        .count();
    assert_eq!(created, 5, "{owed:#?}");
    let last_owed = owed.last().unwrap()["node"]["id"].clone();

    let requests = eventually("the last event at the receiver", || async {
        let requests = receiver.requests();
        if requests.iter().any(|r| body(r)["data"]["id"] == last_owed) {
            Ok(requests)
        } else {
            Err(format!("{requests:#?}"))
        }
    })
    .await;
    let deliveries: Vec<&Value> = requests.iter().collect();
    let delivered_ids: Vec<Value> = deliveries.iter().map(|r| body(r)["data"]["id"].clone()).collect();
    let owed_ids: Vec<Value> = owed.iter().map(|e| e["node"]["id"].clone()).collect();
    assert_eq!(
        delivered_ids, owed_ids,
        "its own creation first, then each later event once, in commit order"
    );

    let now = t.clock.now();
    for (request, edge) in deliveries.iter().zip(owed) {
        assert!(
            verified_with(request, &secret),
            "the reference library verifies the signature: {request:#}"
        );
        assert_eq!(signatures(request).len(), 1, "one signature without a rotation");
        assert_eq!(request["method"], "POST");
        assert_eq!(request["path"], "/hook");
        assert_eq!(request["status"], 200);
        assert!(
            header(request, "content-type").starts_with("application/json"),
            "{request:#}"
        );
        assert_eq!(
            sent_at(request).timestamp(),
            now.timestamp(),
            "signed at the gateway's time"
        );
        let payload = body(request);
        let node = &edge["node"];
        assert_eq!(payload["type"], node["action"]);
        assert_eq!(instant(&payload["timestamp"]), instant(&node["occurredAt"]));
        assert_ne!(payload["replay"], true, "not a replay: {payload:#}");
        let data = &payload["data"];
        assert_eq!(data["cursor"], edge["cursor"], "the audit log's cursor");
        for field in [
            "id",
            "occurredAt",
            "action",
            "actor",
            "targets",
            "organizationId",
            "outcome",
            "metadata",
            "version",
            "hash",
            "previousHash",
            "erasedAt",
        ] {
            assert_eq!(data[field], node[field], "data.{field} as auditEvents shows it");
        }
        assert_eq!(data["context"]["requestId"], node["context"]["requestId"]);
    }

    // (No new login here: its audit event would be owed to this endpoint too.)
    let stored = eventually("every message DELIVERED", || async {
        let stored = messages(&t, &admin, &endpoint_id).await;
        if stored.len() >= deliveries.len() && stored.iter().all(|m| m["status"] == "DELIVERED") {
            Ok(stored)
        } else {
            Err(format!("{stored:#?}"))
        }
    })
    .await;
    assert_eq!(stored.len(), requests.len(), "one message per delivered event");
    assert_eq!(message_count(&t, &admin, &endpoint_id).await, stored.len() as u64);
    for (request, edge) in deliveries.iter().zip(owed) {
        let m = stored
            .iter()
            .find(|m| m["id"] == webhook_id(request))
            .unwrap_or_else(|| panic!("a message with the webhook-id {}", webhook_id(request)));
        assert_eq!(m["eventId"], edge["node"]["id"]);
        assert_eq!(m["eventType"], edge["node"]["action"]);
        assert_eq!(m["eventCursor"], edge["cursor"]);
        assert_eq!((&m["replay"], &m["test"]), (&json!(false), &json!(false)));
        assert_eq!(m["attemptCount"], 1);
        assert_eq!(status_codes(m), [json!(200)]);
        assert_eq!(m["attempts"][0]["responseBody"], "ok");
        assert!(m["lastError"].is_null(), "{m:#}");
        assert!(!m["deliveredAt"].is_null(), "{m:#}");
    }
    runner.stop(Duration::from_secs(5)).await;
}

async fn event_type_filters_and_organization_scope(t: TestApp) {
    let admin = t.admin_token().await;
    let org_a = t.create_organization(&admin, "org-a").await;
    let org_b = t.create_organization(&admin, "org-b").await;
    let org_admin = t.builtin_role(&admin, "org_admin").await;
    let (ann, _) = t.user_with_token(&admin, "ann@example.com").await;
    t.gql(
        Some(&admin),
        "mutation($u: ID!, $r: ID!, $o: ID) { assignRole(input: {userId: $u, roleId: $r, organizationId: $o}) { roleAssignment { id } } }",
        json!({ "u": ann, "r": org_admin, "o": org_a }),
    )
    .await
    .data();
    let ann_token = t.login("ann@example.com", crate::support::PASSWORD).await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    // An unknown event type is refused, naming the field.
    let unknown = mutate(
        &t,
        &ann_token,
        "createWebhookEndpoint",
        json!({ "organizationId": org_a, "url": "http://127.0.0.1:9/hook", "eventTypes": ["organisation.created"] }),
        "endpoint { id }",
    )
    .await;
    assert_eq!(unknown.code(), "BAD_USER_INPUT", "{:#}", unknown.0);
    assert!(unknown.field().starts_with("input.eventTypes"), "{:#}", unknown.0);
    // Ann administers A only: no endpoint for B, none gateway-wide.
    for input in [
        json!({ "organizationId": org_b, "url": "http://127.0.0.1:9/hook" }),
        json!({ "url": "http://127.0.0.1:9/hook" }),
    ] {
        let refused = mutate(&t, &ann_token, "createWebhookEndpoint", input, "endpoint { id }").await;
        assert_eq!(refused.code(), "FORBIDDEN", "{:#}", refused.0);
    }

    // Ann's endpoint: all of A's events. The administrator's: `organization.*` everywhere, and
    // all of A's events with the sensitive context.
    let of_a = WebhookReceiver::start();
    let (a_id, a_secret) = create_endpoint(
        &t,
        &ann_token,
        json!({ "organizationId": org_a, "url": of_a.url() }),
    )
    .await;
    of_a.set_secrets(&[&a_secret]);
    assert_eq!(
        endpoint(&t, &ann_token, &a_id).await["organizationId"],
        org_a.as_str()
    );
    let prefixed = WebhookReceiver::start();
    let (_, p_secret) = create_endpoint(
        &t,
        &admin,
        json!({ "url": prefixed.url(), "eventTypes": ["organization.*"] }),
    )
    .await;
    prefixed.set_secrets(&[&p_secret]);
    let sensitive = WebhookReceiver::start();
    let (_, s_secret) = create_endpoint(
        &t,
        &admin,
        json!({ "organizationId": org_a, "url": sensitive.url(), "includeSensitive": true }),
    )
    .await;
    sensitive.set_secrets(&[&s_secret]);
    let (_instance, runner) = delivering_instance(&t).await;

    // Events: in B, in A (from a browser), gateway-wide, and a role assignment in B.
    rename_organization(&t, &admin, &org_b, "Org B").await;
    rename_organization(&t, &admin, &org_a, "Org A").await;
    let bob = t.create_user(&admin, "bob@example.com").await;
    t.gql(
        Some(&admin),
        "mutation($u: ID!, $r: ID!, $o: ID) { assignRole(input: {userId: $u, roleId: $r, organizationId: $o}) { roleAssignment { id } } }",
        json!({ "u": bob, "r": org_admin, "o": org_b }),
    )
    .await
    .data();
    // Last, a rename of each: delivery is ordered, so once these arrive everything before has.
    rename_organization(&t, &admin, &org_a, "Org A (last)").await;
    rename_organization(&t, &admin, &org_b, "Org B (last)").await;

    let log = audit_log(&t, &admin, json!({})).await;
    let renames: Vec<&Value> = log
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["action"] == "organization.updated")
        .collect();
    assert_eq!(renames.len(), 4, "{renames:#?}");
    let (b_first, a_first, a_last, b_last) = (
        renames[0]["id"].clone(),
        renames[1]["id"].clone(),
        renames[2]["id"].clone(),
        renames[3]["id"].clone(),
    );
    assert_eq!(renames[1]["organizationId"], org_a.as_str());

    let arrived = |receiver: &WebhookReceiver, id: &Value| {
        receiver.requests().iter().any(|r| body(r)["data"]["id"] == *id)
    };
    eventually("the last renames at their receivers", || async {
        let done = arrived(&of_a, &a_last) && arrived(&sensitive, &a_last) && arrived(&prefixed, &b_last);
        if done {
            Ok(())
        } else {
            Err(format!(
                "A: {:#?}\nprefix: {:#?}\nsensitive: {:#?}",
                of_a.requests(),
                prefixed.requests(),
                sensitive.requests()
            ))
        }
    })
    .await;

    // A's endpoint: A's events only, A's first rename among them, masked.
    let a_requests = of_a.requests();
    for request in &a_requests {
        assert!(verified_with(request, &a_secret), "{request:#}");
        assert_eq!(
            body(request)["data"]["organizationId"],
            org_a.as_str(),
            "only A's events: {request:#}"
        );
    }
    let a_rename = a_requests
        .iter()
        .map(body)
        .find(|b| b["data"]["id"] == a_first)
        .expect("A's rename delivered to A's endpoint");
    assert_eq!(a_rename["type"], "organization.updated");
    assert_eq!(
        a_rename["data"]["context"]["userAgent"], "[masked]",
        "{a_rename:#}"
    );
    assert_eq!(a_rename["data"]["context"]["ip"], "[masked]", "{a_rename:#}");
    assert_eq!(a_rename["data"]["context"]["requestId"], "req-webhook-1");
    assert!(!arrived(&of_a, &b_first), "B's rename is not A's business");

    // The sensitive one: the same event, unmasked.
    let s_rename = sensitive
        .requests()
        .iter()
        .map(body)
        .find(|b| b["data"]["id"] == a_first)
        .expect("A's rename delivered to the sensitive endpoint");
    assert!(sensitive.requests().iter().all(|r| verified_with(r, &s_secret)));
    assert_eq!(s_rename["data"]["context"]["userAgent"], "WebhookBrowser/1.0");
    assert_eq!(s_rename["data"]["context"]["ip"], "203.0.113.7");

    // The prefix filter: organization events of both organizations, nothing else.
    let p_requests = prefixed.requests();
    let p_types: Vec<String> = p_requests
        .iter()
        .map(|r| body(r)["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        p_types.iter().all(|t| t.starts_with("organization.")),
        "only organization.* events: {p_types:?}"
    );
    let p_ids: Vec<Value> = p_requests.iter().map(|r| body(r)["data"]["id"].clone()).collect();
    assert_eq!(
        p_ids,
        [b_first, a_first, a_last, b_last],
        "the four renames, in commit order"
    );
    assert!(p_requests.iter().all(|r| verified_with(r, &p_secret)));
    runner.stop(Duration::from_secs(5)).await;
}

async fn rotation_signs_with_both_secrets_during_the_overlap(t: TestApp) {
    let admin = t.admin_token().await;
    let receiver = WebhookReceiver::start();
    let (endpoint_id, old) = create_endpoint(
        &t,
        &admin,
        json!({ "url": receiver.url(), "eventTypes": ["organization.created"] }),
    )
    .await;
    receiver.set_secrets(&[&old]);
    let (_instance, runner) = delivering_instance(&t).await;

    let rotated = mutate(
        &t,
        &admin,
        "rotateWebhookSecret",
        json!({ "id": endpoint_id, "overlapSeconds": 3600 }),
        "endpoint { id previousSecretExpiresAt } secret",
    )
    .await;
    let rotated = &rotated.data()["rotateWebhookSecret"];
    let new = rotated["secret"].as_str().expect("the new secret").to_owned();
    assert!(new.starts_with("whsec_") && new != old, "{rotated:#}");
    let rotated_at = t.clock.now();
    assert_eq!(
        instant(&rotated["endpoint"]["previousSecretExpiresAt"]),
        rotated_at + TimeDelta::seconds(3600)
    );
    assert_eq!(
        audit_events_on(&t, &admin, "webhook.secret_rotated", &endpoint_id)
            .await
            .len(),
        1
    );
    receiver.set_secrets(&[&old, &new]);

    t.create_organization(&admin, "during-overlap").await;
    let requests = receiver.wait_for(1, PATIENCE).await;
    let during = requests.first().expect("a delivery during the overlap");
    assert_eq!(body(during)["type"], "organization.created");
    let entries = signatures(during);
    assert_eq!(
        entries.len(),
        2,
        "two signatures while the old secret lasts: {entries:?}"
    );
    assert!(entries.iter().all(|e| e.starts_with("v1,")), "{entries:?}");
    assert!(
        verified_with(during, &old),
        "the old secret still verifies: {during:#}"
    );
    assert!(verified_with(during, &new), "the new secret verifies: {during:#}");

    t.clock.advance(TimeDelta::seconds(3601));
    let admin = t.admin_token().await;
    t.create_organization(&admin, "after-overlap").await;
    let requests = receiver.wait_for(2, PATIENCE).await;
    let after = requests.get(1).expect("a delivery after the overlap");
    assert_eq!(
        signatures(after).len(),
        1,
        "one signature once the overlap is over"
    );
    assert!(verified_with(after, &new), "{after:#}");
    assert!(
        !verified_with(after, &old),
        "the old secret no longer verifies: {after:#}"
    );
    assert_eq!(sent_at(after).timestamp(), t.clock.now().timestamp());
    runner.stop(Duration::from_secs(5)).await;
}

async fn a_failing_receiver_gets_everything_in_order_once_it_recovers(t: TestApp) {
    let admin = t.admin_token().await;
    let receiver = WebhookReceiver::start();
    receiver.set_mode("fail");
    let (endpoint_id, secret) = create_endpoint(
        &t,
        &admin,
        json!({ "url": receiver.url(), "eventTypes": ["organization.created"] }),
    )
    .await;
    receiver.set_secrets(&[&secret]);
    let (_instance, runner) = delivering_instance(&t).await;
    for slug in ["first", "second", "third"] {
        t.create_organization(&admin, slug).await;
    }
    let events: Vec<Value> = audit_log(&t, &admin, json!({ "actions": ["organization.created"] }))
        .await
        .into_iter()
        .map(|e| e["node"].clone())
        .collect();
    let event_ids = ids(&events);
    assert_eq!(event_ids.len(), 3);

    // The first fails; the others wait behind it, unattempted.
    let failed_at = t.clock.now();
    let stored = eventually("the first message FAILED", || async {
        let stored = messages(&t, &admin, &endpoint_id).await;
        let first = stored.iter().find(|m| m["eventId"] == event_ids[0].as_str());
        match first {
            Some(m) if stored.len() == 3 && m["status"] == "FAILED" => Ok(stored),
            _ => Err(format!("{stored:#?}")),
        }
    })
    .await;
    let by_event = |stored: &[Value], event: &str| -> Value {
        stored
            .iter()
            .find(|m| m["eventId"] == event)
            .unwrap_or_else(|| panic!("a message for event {event}: {stored:#?}"))
            .clone()
    };
    let first = by_event(&stored, &event_ids[0]);
    assert_eq!(status_codes(&first), [json!(500)]);
    assert_eq!(first["attemptCount"], 1);
    assert_eq!(
        first["attempts"][0]["responseBody"],
        "receiver failing on purpose"
    );
    assert!(
        first["lastError"].as_str().is_some_and(|e| !e.is_empty()),
        "{first:#}"
    );
    let next = instant(&first["nextAttemptAt"]) - failed_at;
    assert!(
        (TimeDelta::seconds(4)..=TimeDelta::seconds(6)).contains(&next),
        "the first retry 5 s ±20 % later, not {next}"
    );
    for event in &event_ids[1..] {
        let waiting = by_event(&stored, event);
        assert_eq!(waiting["status"], "PENDING", "ordered: it waits: {waiting:#}");
        assert_eq!(waiting["attemptCount"], 0, "{waiting:#}");
    }
    let failed_requests = receiver.requests();
    assert_eq!(
        failed_requests.len(),
        1,
        "only the first was tried: {failed_requests:#?}"
    );
    assert_eq!(webhook_id(&failed_requests[0]), first["id"].as_str().unwrap());

    receiver.set_mode("accept");
    t.clock.advance(TimeDelta::seconds(7));
    let requests = receiver.wait_for(4, PATIENCE).await;
    assert_eq!(requests.len(), 4, "{requests:#?}");
    let arrived: Vec<String> = requests.iter().map(event_id).collect();
    assert_eq!(
        arrived,
        [
            event_ids[0].clone(),
            event_ids[0].clone(),
            event_ids[1].clone(),
            event_ids[2].clone()
        ],
        "the failed one again, then the rest in order"
    );
    assert_eq!(
        webhook_id(&requests[0]),
        webhook_id(&requests[1]),
        "a retry keeps its webhook-id"
    );
    assert_eq!(
        requests.iter().map(|r| r["status"].clone()).collect::<Vec<_>>(),
        [json!(500), json!(200), json!(200), json!(200)]
    );
    assert!(requests.iter().all(|r| verified_with(r, &secret)));

    let admin = t.admin_token().await;
    let stored = eventually("all three DELIVERED", || async {
        let stored = messages(&t, &admin, &endpoint_id).await;
        if stored.iter().all(|m| m["status"] == "DELIVERED") {
            Ok(stored)
        } else {
            Err(format!("{stored:#?}"))
        }
    })
    .await;
    let first = by_event(&stored, &event_ids[0]);
    assert_eq!(status_codes(&first), [json!(500), json!(200)]);
    assert_eq!(first["attemptCount"], 2);
    for (event, request) in event_ids.iter().zip(&requests[1..]) {
        assert_eq!(
            by_event(&stored, event)["id"],
            webhook_id(request),
            "webhook-id = message id"
        );
    }
    runner.stop(Duration::from_secs(5)).await;
}

async fn exhausted_messages_go_to_the_dead_letter_queue_and_recover(t: TestApp) {
    let admin = t.admin_token().await;
    let receiver = WebhookReceiver::start();
    receiver.set_mode("fail");
    // The endpoint fails for a day and more here; this test is about the message, not about
    // disabling a failing endpoint.
    let (endpoint_id, secret) = create_endpoint(
        &t,
        &admin,
        json!({ "url": receiver.url(), "eventTypes": ["organization.created"] }),
    )
    .await;
    receiver.set_secrets(&[&secret]);
    let (_instance, runner) =
        delivering_instance_with(&t, |config| config.webhook_disable_after_hours = 10_000).await;
    let started = t.clock.now();
    t.create_organization(&admin, "doomed").await;
    let event = audit_log(&t, &admin, json!({ "actions": ["organization.created"] }))
        .await
        .pop()
        .expect("the organization.created event")["node"]
        .clone();

    let first = eventually("a message for the event", || async {
        match messages(&t, &admin, &endpoint_id).await.pop() {
            Some(m) => Ok(m),
            None => Err("no message".to_owned()),
        }
    })
    .await;
    let message_id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(first["eventId"], event["id"]);

    let dead = drive_to_dead(&t, &endpoint_id, &message_id).await;
    let codes = status_codes(&dead);
    assert!(
        codes.iter().all(|code| *code == 500),
        "every attempt answered 500: {codes:?}"
    );
    let requests = receiver.requests();
    assert_eq!(requests.len(), 8, "eight attempts reached the receiver");
    assert!(
        requests
            .iter()
            .all(|r| webhook_id(r) == message_id && verified_with(r, &secret))
    );
    let admin = t.admin_token().await;
    let dead_list = t
        .gql(
            Some(&admin),
            "query($e: ID!) { webhookMessages(filter: {endpointId: $e, status: DEAD}) { totalCount nodes { id } } }",
            json!({ "e": endpoint_id }),
        )
        .await;
    assert_eq!(
        dead_list.data()["webhookMessages"]["nodes"],
        json!([{ "id": message_id }])
    );
    let exhausted = audit_log(&t, &admin, json!({ "actions": ["webhook.message_exhausted"] })).await;
    assert_eq!(
        exhausted.len(),
        1,
        "one webhook.message_exhausted event: {exhausted:#?}"
    );
    let named: Vec<&Value> = exhausted[0]["node"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|target| &target["id"])
        .collect();
    assert!(
        named.contains(&&json!(message_id)) || named.contains(&&json!(endpoint_id)),
        "the event names the message or its endpoint: {exhausted:#?}"
    );

    // The receiver is fixed: recovering the endpoint sends the dead message again, same id.
    receiver.set_mode("accept");
    let recovered = mutate(
        &t,
        &admin,
        "recoverWebhookEndpoint",
        json!({ "endpointId": endpoint_id, "since": started.to_rfc3339() }),
        "queued",
    )
    .await;
    assert!(
        recovered.data()["recoverWebhookEndpoint"]["queued"]
            .as_i64()
            .unwrap()
            >= 1,
        "{:#}",
        recovered.0
    );
    let requests = receiver.wait_for(9, PATIENCE).await;
    let again = requests.get(8).expect("the recovered message delivered");
    assert_eq!(webhook_id(again), message_id);
    assert_eq!(again["status"], 200);
    assert_eq!(event_id(again), event["id"].as_str().unwrap());
    assert!(verified_with(again, &secret));
    let delivered = eventually("the recovered message DELIVERED", || async {
        match message(&t, &admin, &endpoint_id, &message_id).await {
            Some(m) if m["status"] == "DELIVERED" => Ok(m),
            other => Err(format!("{other:#?}")),
        }
    })
    .await;
    assert_eq!(status_codes(&delivered).last(), Some(&json!(200)));

    // A replay of the range: a new message for the same event, marked as a replay.
    let replayed = mutate(
        &t,
        &admin,
        "replayWebhookEvents",
        json!({
            "endpointId": endpoint_id,
            "since": started.to_rfc3339(),
            "until": (t.clock.now() + TimeDelta::seconds(1)).to_rfc3339(),
        }),
        "queued",
    )
    .await;
    assert_eq!(
        replayed.data()["replayWebhookEvents"]["queued"],
        1,
        "{:#}",
        replayed.0
    );
    let requests = receiver.wait_for(10, PATIENCE).await;
    let replay = requests.get(9).expect("the replay delivered");
    assert_ne!(webhook_id(replay), message_id, "a replay is a new message");
    let replay_body = body(replay);
    assert_eq!(replay_body["replay"], true, "{replay_body:#}");
    assert_eq!(replay_body["type"], "organization.created");
    assert_eq!(replay_body["data"]["id"], event["id"]);
    assert!(verified_with(replay, &secret));
    let replay_message = eventually("the replay message DELIVERED", || async {
        match message(&t, &admin, &endpoint_id, webhook_id(replay)).await {
            Some(m) if m["status"] == "DELIVERED" => Ok(m),
            other => Err(format!("{other:#?}")),
        }
    })
    .await;
    assert_eq!(replay_message["replay"], true);
    assert_eq!(replay_message["eventId"], event["id"]);
    // Both requests are audited (the recovery as a replay of what failed).
    let requested = audit_events_on(&t, &admin, "webhook.replay_requested", &endpoint_id).await;
    assert_eq!(requested.len(), 2, "{requested:#?}");
    assert!(
        requested
            .iter()
            .any(|e| e["metadata"]["queued"] == 1 && e["metadata"]["recover"] != true),
        "the replay is audited with what it queued: {requested:#?}"
    );
    runner.stop(Duration::from_secs(5)).await;
}

async fn receiver_faults_each_have_their_outcome(t: TestApp) {
    let admin = t.admin_token().await;
    let modes = [
        "gone",
        "ratelimit:120",
        "unavailable:90",
        "redirect",
        "huge",
        "hang",
        "reset",
    ];
    let mut endpoints = Vec::new();
    for mode in modes {
        let receiver = WebhookReceiver::start();
        receiver.set_mode(mode);
        let (id, secret) = create_endpoint(
            &t,
            &admin,
            json!({ "url": receiver.url(), "eventTypes": ["organization.created"], "description": mode }),
        )
        .await;
        receiver.set_secrets(&[&secret]);
        endpoints.push((mode, receiver, id));
    }
    // And one that is down: nothing listens on its port until it comes back.
    let mut down = WebhookReceiver::start();
    let (down_id, down_secret) = create_endpoint(
        &t,
        &admin,
        json!({ "url": down.url(), "eventTypes": ["organization.created"], "description": "down" }),
    )
    .await;
    down.set_secrets(&[&down_secret]);
    down.stop();
    let (_instance, runner) = delivering_instance(&t).await;
    let sent_at_clock = t.clock.now();
    t.create_organization(&admin, "faulty").await;

    let settled = |m: &Value| {
        (m["status"] == "FAILED" || m["status"] == "DELIVERED" || m["status"] == "DEAD")
            && attempt_count(m) >= 1
    };
    for (mode, receiver, id) in &endpoints {
        let stored = eventually(&format!("the first attempt to the `{mode}` receiver"), || async {
            let stored = messages(&t, &admin, id).await;
            match stored.first() {
                Some(m) if stored.len() == 1 && settled(m) => Ok(m.clone()),
                _ => Err(format!("{stored:#?}")),
            }
        })
        .await;
        let requests = receiver.requests();
        assert!(!requests.is_empty(), "the `{mode}` receiver was reached");
        assert_eq!(webhook_id(&requests[0]), stored["id"].as_str().unwrap());
        let attempt = &stored["attempts"][0];
        let error = attempt["error"].as_str().unwrap_or("");
        match *mode {
            "gone" => {
                assert_eq!(attempt["statusCode"], 410);
                let disabled = eventually("the endpoint disabled", || async {
                    let shown = endpoint(&t, &admin, id).await;
                    if shown["enabled"] == false {
                        Ok(shown)
                    } else {
                        Err(format!("{shown:#}"))
                    }
                })
                .await;
                assert!(
                    disabled["disabledReason"].as_str().is_some_and(|r| !r.is_empty()),
                    "{disabled:#}"
                );
                let audited = audit_events_on(&t, &admin, "webhook.endpoint_disabled", id).await;
                assert_eq!(audited.len(), 1, "one webhook.endpoint_disabled event naming it");
            }
            "ratelimit:120" | "unavailable:90" => {
                let (code, pause) = if *mode == "ratelimit:120" {
                    (429, 120)
                } else {
                    (503, 90)
                };
                assert_eq!(attempt["statusCode"], code);
                assert_eq!(stored["status"], "FAILED");
                let wait = instant(&stored["nextAttemptAt"]) - instant(&attempt["attemptedAt"]);
                assert!(
                    wait >= TimeDelta::seconds(pause),
                    "Retry-After: {pause} is honoured, not {wait}: {stored:#}"
                );
            }
            "redirect" => {
                assert_eq!(attempt["statusCode"], 302, "a redirect is not followed");
                assert_eq!(stored["status"], "FAILED");
            }
            "huge" => {
                assert_eq!(stored["status"], "DELIVERED");
                assert_eq!(attempt["statusCode"], 200);
                assert_eq!(
                    attempt["responseBody"].as_str().unwrap_or_default(),
                    "x".repeat(1024),
                    "the first 1024 bytes of the response"
                );
            }
            "hang" => {
                assert_eq!(stored["status"], "FAILED");
                assert!(attempt["statusCode"].is_null(), "{stored:#}");
                assert!(
                    error.to_lowercase().contains("time"),
                    "the error says it timed out: {stored:#}"
                );
                // Not a speed claim: the attempt lasted at least the 2 s timeout it waited.
                assert!(
                    attempt["durationMs"].as_i64().unwrap_or(0) >= 1900,
                    "durationMs of a timed-out attempt: {stored:#}"
                );
            }
            "reset" => {
                assert_eq!(stored["status"], "FAILED");
                assert!(attempt["statusCode"].is_null(), "{stored:#}");
                assert!(!error.is_empty(), "a reset is an error: {stored:#}");
            }
            other => unreachable!("{other}"),
        }
    }

    let unreachable = eventually("the first attempt to the stopped receiver", || async {
        let stored = messages(&t, &admin, &down_id).await;
        match stored.first() {
            Some(m) if settled(m) => Ok(m.clone()),
            _ => Err(format!("{stored:#?}")),
        }
    })
    .await;
    assert_eq!(unreachable["status"], "FAILED");
    assert!(
        unreachable["attempts"][0]["statusCode"].is_null(),
        "{unreachable:#}"
    );
    assert!(
        unreachable["attempts"][0]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "a refused connection is an error: {unreachable:#}"
    );

    // Once the pause asked for has passed, the rate-limited message goes through; the receiver
    // that was down is back and gets its retry.
    let (_, limited, limited_id) = &endpoints[1];
    limited.set_mode("accept");
    down.restart();
    t.clock.set(sent_at_clock + TimeDelta::seconds(121));
    let admin = t.admin_token().await;
    for (what, id) in [("rate-limited", limited_id), ("once unreachable", &down_id)] {
        eventually(&format!("the {what} message DELIVERED"), || async {
            let stored = messages(&t, &admin, id).await;
            match stored.first() {
                Some(m) if m["status"] == "DELIVERED" => Ok(()),
                _ => Err(format!("{stored:#?}")),
            }
        })
        .await;
    }
    let back = down.requests();
    assert_eq!(
        back.len(),
        1,
        "the receiver that was down got the retry: {back:#?}"
    );
    assert!(verified_with(&back[0], &down_secret), "{:#}", back[0]);
    runner.stop(Duration::from_secs(5)).await;
}

async fn a_crashed_instance_loses_nothing(t: TestApp) {
    let admin = t.admin_token().await;
    let receiver = WebhookReceiver::start();
    let lease = |config: &mut Config| config.job_lease_seconds = 30;
    let (endpoint_id, secret) = create_endpoint(
        &t,
        &admin,
        json!({ "url": receiver.url(), "eventTypes": ["organization.created"] }),
    )
    .await;
    receiver.set_secrets(&[&secret]);
    // The receiver hangs at first, so that the crash cuts a delivery off in mid-request.
    receiver.set_mode("hang");
    let (_doomed, doomed_runner) = delivering_instance_with(&t, lease).await;

    for i in 1..=10 {
        t.create_organization(&admin, &format!("burst-{i}")).await;
    }
    let in_flight = receiver.wait_for(1, PATIENCE).await;
    assert_eq!(in_flight.len(), 1, "the first delivery reached the receiver");
    // The crash, in the middle of the burst and of that request (its timeout is 2 s).
    doomed_runner.stop(Duration::ZERO).await;
    receiver.set_mode("accept");
    let (_survivor, survivor_runner) = delivering_instance_with(&t, lease).await;
    for i in 11..=20 {
        t.create_organization(&admin, &format!("burst-{i}")).await;
    }
    // The crashed instance's lease lapses (30 s on the gateway's clock).
    t.clock.advance(TimeDelta::seconds(31));
    let admin = t.admin_token().await;

    let events = ids(
        &audit_log(&t, &admin, json!({ "actions": ["organization.created"] }))
            .await
            .into_iter()
            .map(|e| e["node"].clone())
            .collect::<Vec<_>>(),
    );
    assert_eq!(events.len(), 20);
    let requests = eventually("every event at the receiver", || async {
        let requests = receiver.requests();
        let mut firsts: Vec<String> = Vec::new();
        for request in &requests {
            let id = event_id(request);
            if !firsts.contains(&id) {
                firsts.push(id);
            }
        }
        if firsts.len() >= 20 {
            Ok(requests)
        } else {
            Err(format!("{} of 20 events: {firsts:?}", firsts.len()))
        }
    })
    .await;
    let mut firsts: Vec<String> = Vec::new();
    let mut id_of_event = std::collections::HashMap::new();
    for request in &requests {
        assert!(verified_with(request, &secret), "{request:#}");
        let event = event_id(request);
        let id = webhook_id(request).to_owned();
        let known = id_of_event.entry(event.clone()).or_insert_with(|| id.clone());
        assert_eq!(
            *known, id,
            "a duplicate delivery of event {event} has the same webhook-id"
        );
        if !firsts.contains(&event) {
            firsts.push(event);
        }
    }
    assert_eq!(firsts, events, "first deliveries in commit order");
    for event in &events {
        assert!(
            requests
                .iter()
                .any(|r| event_id(r) == *event && r["status"] == 200),
            "event {event} was accepted at least once (the cut-off one too)"
        );
    }

    let stored = eventually("every message DELIVERED", || async {
        let stored = messages(&t, &admin, &endpoint_id).await;
        if stored.len() >= 20 && stored.iter().all(|m| m["status"] == "DELIVERED") {
            Ok(stored)
        } else {
            Err(format!("{stored:#?}"))
        }
    })
    .await;
    assert_eq!(
        stored.len(),
        20,
        "one message per event, none doubled by the takeover"
    );
    assert_eq!(message_count(&t, &admin, &endpoint_id).await, 20);
    survivor_runner.stop(Duration::from_secs(5)).await;
}

async fn send_test_webhook_and_retry_a_dead_message(t: TestApp) {
    let admin = t.admin_token().await;
    let receiver = WebhookReceiver::start();
    let (endpoint_id, secret) = create_endpoint(
        &t,
        &admin,
        json!({ "url": receiver.url(), "eventTypes": ["organization.created"] }),
    )
    .await;
    receiver.set_secrets(&[&secret]);
    let (_instance, runner) =
        delivering_instance_with(&t, |config| config.webhook_disable_after_hours = 10_000).await;

    let sent = mutate(
        &t,
        &admin,
        "sendTestWebhook",
        json!({ "endpointId": endpoint_id }),
        "message { id }",
    )
    .await;
    let test_id = sent.data()["sendTestWebhook"]["message"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let requests = receiver.wait_for(1, PATIENCE).await;
    let request = requests.first().expect("the test message delivered");
    assert_eq!(webhook_id(request), test_id);
    assert!(verified_with(request, &secret), "{request:#}");
    assert_eq!(body(request)["type"], "webhook.test");
    let stored = eventually("the test message DELIVERED", || async {
        match message(&t, &admin, &endpoint_id, &test_id).await {
            Some(m) if m["status"] == "DELIVERED" => Ok(m),
            other => Err(format!("{other:#?}")),
        }
    })
    .await;
    assert_eq!(stored["test"], true);
    assert_eq!(stored["eventType"], "webhook.test");

    // A test message to a failing receiver dies; a retry of the dead message delivers it.
    receiver.set_mode("fail");
    let sent = mutate(
        &t,
        &admin,
        "sendTestWebhook",
        json!({ "endpointId": endpoint_id }),
        "message { id }",
    )
    .await;
    let doomed = sent.data()["sendTestWebhook"]["message"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    drive_to_dead(&t, &endpoint_id, &doomed).await;
    receiver.set_mode("accept");
    let admin = t.admin_token().await;
    let retried = mutate(
        &t,
        &admin,
        "retryWebhookMessage",
        json!({ "id": doomed }),
        "message { id status }",
    )
    .await;
    let retried = &retried.data()["retryWebhookMessage"]["message"];
    assert_eq!(retried["id"], doomed.as_str());
    assert_ne!(retried["status"], "DEAD", "{retried:#}");
    let requests = receiver.wait_for(10, PATIENCE).await;
    let last = requests.get(9).expect("the retried message delivered");
    assert_eq!(webhook_id(last), doomed);
    assert_eq!(last["status"], 200);
    assert!(verified_with(last, &secret));
    eventually("the retried message DELIVERED", || async {
        match message(&t, &admin, &endpoint_id, &doomed).await {
            Some(m) if m["status"] == "DELIVERED" => Ok(()),
            other => Err(format!("{other:#?}")),
        }
    })
    .await;
    let audited = audit_log(&t, &admin, json!({ "actions": ["webhook.message_retried"] })).await;
    assert_eq!(
        audited.len(),
        1,
        "one webhook.message_retried event: {audited:#?}"
    );
    runner.stop(Duration::from_secs(5)).await;
}

async fn an_unordered_endpoint_does_not_hold_later_messages_back(t: TestApp) {
    let admin = t.admin_token().await;
    let receiver = WebhookReceiver::start();
    receiver.set_mode("fail:1");
    let (endpoint_id, secret) = create_endpoint(
        &t,
        &admin,
        json!({ "url": receiver.url(), "eventTypes": ["organization.created"], "ordered": false }),
    )
    .await;
    assert_eq!(endpoint(&t, &admin, &endpoint_id).await["ordered"], false);
    receiver.set_secrets(&[&secret]);
    let (_instance, runner) = delivering_instance(&t).await;
    for slug in ["first", "second", "third"] {
        t.create_organization(&admin, slug).await;
    }
    let events = ids(
        &audit_log(&t, &admin, json!({ "actions": ["organization.created"] }))
            .await
            .into_iter()
            .map(|e| e["node"].clone())
            .collect::<Vec<_>>(),
    );

    // Without moving the clock (no retry is due): the one that failed waits, the others do not.
    let stored = eventually("one FAILED and two DELIVERED", || async {
        let stored = messages(&t, &admin, &endpoint_id).await;
        let count = |status: &str| stored.iter().filter(|m| m["status"] == status).count();
        if stored.len() == 3 && count("FAILED") == 1 && count("DELIVERED") == 2 {
            Ok(stored)
        } else {
            Err(format!("{stored:#?}"))
        }
    })
    .await;
    let failed = stored.iter().find(|m| m["status"] == "FAILED").unwrap();
    assert_eq!(status_codes(failed), [json!(500)]);
    let mut delivered: Vec<String> = stored
        .iter()
        .filter(|m| m["status"] == "DELIVERED")
        .map(|m| m["eventId"].as_str().unwrap().to_owned())
        .collect();
    delivered.push(failed["eventId"].as_str().unwrap().to_owned());
    delivered.sort();
    let mut all = events.clone();
    all.sort();
    assert_eq!(delivered, all, "one message per event");

    t.clock.advance(TimeDelta::seconds(7));
    let requests = receiver.wait_for(4, PATIENCE).await;
    assert_eq!(requests.len(), 4, "{requests:#?}");
    let retried: Vec<&Value> = requests
        .iter()
        .filter(|r| webhook_id(r) == failed["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        retried.iter().map(|r| r["status"].clone()).collect::<Vec<_>>(),
        [json!(500), json!(200)],
        "the failed one, retried under the same webhook-id"
    );
    assert!(requests.iter().all(|r| verified_with(r, &secret)));
    runner.stop(Duration::from_secs(5)).await;
}

async fn a_retry_goes_to_the_endpoint_as_it_is_now(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "moving").await;
    let old_home = WebhookReceiver::start();
    old_home.set_mode("fail");
    let new_home = WebhookReceiver::start();
    let (endpoint_id, secret) = create_endpoint(
        &t,
        &admin,
        json!({ "url": old_home.url(), "eventTypes": ["organization.updated"] }),
    )
    .await;
    old_home.set_secrets(&[&secret]);
    new_home.set_secrets(&[&secret]);
    let (_instance, runner) = delivering_instance(&t).await;
    rename_organization(&t, &admin, &org, "Moving Inc").await;

    let failed = eventually("the first attempt FAILED", || async {
        let stored = messages(&t, &admin, &endpoint_id).await;
        match stored.first() {
            Some(m) if m["status"] == "FAILED" => Ok(m.clone()),
            _ => Err(format!("{stored:#?}")),
        }
    })
    .await;
    let first = old_home.requests();
    assert_eq!(first.len(), 1);
    assert_eq!(
        body(&first[0])["data"]["context"]["userAgent"],
        "[masked]",
        "masked while the endpoint does not include sensitive data"
    );

    // The endpoint moves and now includes sensitive data: the retry goes there, unmasked.
    let updated = mutate(
        &t,
        &admin,
        "updateWebhookEndpoint",
        json!({ "id": endpoint_id, "url": new_home.url(), "includeSensitive": true }),
        "endpoint { url includeSensitive }",
    )
    .await;
    assert_eq!(
        updated.data()["updateWebhookEndpoint"]["endpoint"],
        json!({ "url": new_home.url(), "includeSensitive": true })
    );
    t.clock.advance(TimeDelta::seconds(7));
    let moved = new_home.wait_for(1, PATIENCE).await;
    let retry = moved.first().expect("the retry at the new URL");
    assert_eq!(
        webhook_id(retry),
        failed["id"].as_str().unwrap(),
        "the same message"
    );
    assert!(verified_with(retry, &secret), "{retry:#}");
    assert_eq!(body(retry)["data"]["context"]["userAgent"], "WebhookBrowser/1.0");
    assert_eq!(body(retry)["data"]["id"], body(&first[0])["data"]["id"]);
    assert_eq!(old_home.requests().len(), 1, "nothing more to the old URL");
    runner.stop(Duration::from_secs(5)).await;
}

async fn an_endpoint_failing_for_too_long_is_disabled_and_can_be_enabled_again(t: TestApp) {
    let admin = t.admin_token().await;
    let receiver = WebhookReceiver::start();
    receiver.set_mode("fail");
    let (endpoint_id, secret) = create_endpoint(
        &t,
        &admin,
        json!({ "url": receiver.url(), "eventTypes": ["organization.created"] }),
    )
    .await;
    receiver.set_secrets(&[&secret]);
    let (_instance, runner) =
        delivering_instance_with(&t, |config| config.webhook_disable_after_hours = 1).await;
    let failing_from = t.clock.now();
    t.create_organization(&admin, "unlucky").await;

    // Retries at about 5 s, 5 min, 30 min and 2 h: the fifth attempt is more than an hour after
    // the first failure, and its failure disables the endpoint.
    let mut seen = 0;
    let disabled = loop {
        let token = t.admin_token().await;
        let current = eventually(&format!("attempt {} settled", seen + 1), || async {
            // The message first: once it reads FAILED, the endpoint's health is recorded.
            let stored = messages(&t, &token, &endpoint_id).await;
            let shown = endpoint(&t, &token, &endpoint_id).await;
            match stored.first() {
                Some(m)
                    if shown["enabled"] == false
                        || (m["status"] == "FAILED" && attempt_count(m) > seen && consistent(m)) =>
                {
                    Ok((shown, m.clone()))
                }
                _ => Err(format!("{shown:#}\n{stored:#?}")),
            }
        })
        .await;
        let (shown, message) = current;
        if shown["enabled"] == false {
            break (shown, message);
        }
        assert_eq!(
            instant(&shown["failingSince"]),
            failing_from,
            "failing since the first failure: {shown:#}"
        );
        seen = attempt_count(&message);
        assert!(seen < 8, "never disabled: {message:#}");
        let next = instant(&message["nextAttemptAt"]);
        t.clock.set(next.max(t.clock.now()) + TimeDelta::seconds(1));
    };
    let (shown, _) = disabled;
    assert!(
        shown["disabledReason"].as_str().is_some_and(|r| !r.is_empty()),
        "{shown:#}"
    );
    let admin = t.admin_token().await;
    let stored = eventually("the message settled", || async {
        let stored = messages(&t, &admin, &endpoint_id).await;
        match stored.first() {
            Some(m) if m["status"] != "PENDING" => Ok(m.clone()),
            _ => Err(format!("{stored:#?}")),
        }
    })
    .await;
    let attempts = stored["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 5, "disabled after the fifth failure: {stored:#}");
    assert!(
        instant(&attempts[4]["attemptedAt"]) - failing_from >= TimeDelta::hours(1),
        "{stored:#}"
    );
    assert_eq!(
        audit_events_on(&t, &admin, "webhook.endpoint_disabled", &endpoint_id)
            .await
            .len(),
        1
    );

    // Enabled again (the receiver fixed): failure state cleared, new events delivered.
    receiver.set_mode("accept");
    let enabled = mutate(
        &t,
        &admin,
        "updateWebhookEndpoint",
        json!({ "id": endpoint_id, "enabled": true }),
        "endpoint { enabled disabledReason failingSince }",
    )
    .await;
    assert_eq!(
        enabled.data()["updateWebhookEndpoint"]["endpoint"],
        json!({ "enabled": true, "disabledReason": null, "failingSince": null })
    );
    let before = receiver.requests().len();
    t.create_organization(&admin, "lucky").await;
    let requests = receiver.wait_for(before + 1, PATIENCE).await;
    let last = requests.last().unwrap();
    assert_eq!(last["status"], 200);
    assert!(verified_with(last, &secret));
    assert_eq!(body(last)["type"], "organization.created");
    runner.stop(Duration::from_secs(5)).await;
}
