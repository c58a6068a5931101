//! Webhooks from a cluster of real gateway processes (the `portcullis` binary, twice, on one
//! PostgreSQL database) to a real receiver (`tests/webhook_receiver.py`): one process is killed
//! with SIGKILL in the middle of a burst — while a delivery is cut off in mid-request — and the
//! receiver still gets every event, verified, first deliveries in commit order, a repeat only with
//! the same `webhook-id`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::gateway_process::GatewayProcess;
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, TestDb};
use crate::webhook_receiver::WebhookReceiver;

/// Organizations created in the burst (one `organization.created` event each).
const ORGANIZATIONS: usize = 60;
/// Mutations in flight at once during the burst.
const IN_FLIGHT: usize = 4;
/// Mutations made before the receiver starts hanging (and the kill follows).
const HANG_AFTER: usize = 20;
/// Mutations after which the kill happens even if no delivery has reached the hanging receiver.
const KILL_BY: usize = 40;
/// How long to wait for every delivery at most: a bound on waiting, not a speed claim (the lease
/// of a killed process's delivery lapses after 20 s).
const PATIENCE: Duration = Duration::from_secs(75);

/// One `portcullis` process delivering webhooks (see `gateway_process`).
type Gateway = GatewayProcess;

/// Starts a delivering instance on `database_url` and waits until it is ready.
async fn start_gateway(http: &reqwest::Client, database_url: &str) -> Gateway {
    GatewayProcess::start(
        http,
        database_url,
        &[
            ("PORTCULLIS_WEBHOOK_ALLOW_HTTP", "true"),
            ("PORTCULLIS_WEBHOOK_ALLOW_PRIVATE", "true"),
            ("PORTCULLIS_JOB_POLL_MS", "200"),
            // Effective lease: max(20, 3 + 15, 3 + 15) = 20 s.
            ("PORTCULLIS_JOB_LEASE_SECONDS", "20"),
            ("PORTCULLIS_WEBHOOK_TIMEOUT_SECONDS", "3"),
            ("PORTCULLIS_SMTP_TIMEOUT_SECONDS", "3"),
            ("PORTCULLIS_DB_POOL_SIZE", "8"),
        ],
    )
    .await
}

/// POSTs a GraphQL operation; `Err` when no HTTP answer came (a killed process).
async fn gql(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Result<Value, String> {
    let mut request = http
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .body(json!({ "query": query, "variables": variables }).to_string());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let text = response.text().await.map_err(|e| e.to_string())?;
    Ok(serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

/// `data` of a response that must have no errors.
fn data(response: &Value) -> &Value {
    assert!(
        response.get("errors").is_none(),
        "unexpected errors: {response:#}"
    );
    &response["data"]
}

async fn admin_token(http: &reqwest::Client, gateway: &Gateway) -> String {
    let response = gql(
        http,
        &gateway.url,
        None,
        "mutation($email: String!, $password: String!) {
           login(input: {email: $email, password: $password}) { accessToken }
         }",
        json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }),
    )
    .await
    .expect("the gateway answers");
    data(&response)["login"]["accessToken"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

async fn create_organization(
    http: reqwest::Client,
    base: String,
    token: String,
    slug: String,
) -> Result<Value, String> {
    gql(
        &http,
        &base,
        Some(&token),
        "mutation($input: CreateOrganizationInput!) {
           createOrganization(input: $input) { organization { id slug } }
         }",
        json!({ "input": { "slug": slug, "name": slug } }),
    )
    .await
}

/// Every `organization.created` event, oldest (first committed) first, as (event id, slug).
async fn organization_events(
    http: &reqwest::Client,
    gateway: &Gateway,
    token: &str,
) -> Vec<(String, String)> {
    let mut events = Vec::new();
    let mut after = Value::Null;
    loop {
        let response = gql(
            http,
            &gateway.url,
            Some(token),
            "query($after: String) {
               auditEvents(first: 50, after: $after, order: OLDEST_FIRST,
                           filter: {actions: [\"organization.created\"]}) {
                 edges { node { id action metadata } }
                 pageInfo { hasNextPage endCursor }
               }
             }",
            json!({ "after": after }),
        )
        .await
        .expect("the survivor answers");
        let connection = &data(&response)["auditEvents"];
        for edge in connection["edges"].as_array().expect("edges") {
            let node = &edge["node"];
            assert_eq!(node["action"], "organization.created");
            let slug = node["metadata"]["slug"]
                .as_str()
                .unwrap_or_else(|| panic!("metadata.slug in {node:#}"));
            events.push((text(&node["id"]), slug.to_owned()));
        }
        if connection["pageInfo"]["hasNextPage"] != true {
            return events;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
        .to_owned()
}

/// The audit event id a received request carries (`data.id` of its JSON body).
fn event_id(request: &Value) -> String {
    let body = request["body"].as_str().expect("a body");
    let body: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {body}"));
    assert_eq!(body["type"], "organization.created", "{body:#}");
    text(&body["data"]["id"])
}

fn webhook_id(request: &Value) -> String {
    request["headers"]["webhook-id"]
        .as_str()
        .unwrap_or_else(|| panic!("no webhook-id header in {request:#}"))
        .to_owned()
}

/// The events with an accepted (200) delivery so far.
fn accepted_events(requests: &[Value]) -> HashSet<String> {
    requests
        .iter()
        .filter(|r| r["status"] == 200)
        .map(event_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateway_processes_lose_nothing_when_one_is_killed() {
    let Some((db, url)) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let outcome = tokio::spawn(kill_one_of_two(url)).await;
    // The processes are gone by now (killed when the scenario ended, even by a panic).
    db.drop_database().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

async fn kill_one_of_two(database_url: String) {
    let receiver = WebhookReceiver::start();
    receiver.set_mode("accept");
    let http = reqwest::Client::new();
    // One after the other: concurrent cold starts on an empty database are another matter.
    let survivor = start_gateway(&http, &database_url).await;
    let mut victim = start_gateway(&http, &database_url).await;
    let survivor_token = admin_token(&http, &survivor).await;
    let victim_token = admin_token(&http, &victim).await;

    let created = gql(
        &http,
        &survivor.url,
        Some(&survivor_token),
        "mutation($input: CreateWebhookEndpointInput!) {
           createWebhookEndpoint(input: $input) { secret endpoint { id ordered } }
         }",
        json!({ "input": {
            "url": receiver.url(),
            "eventTypes": ["organization.created"],
            "description": "cluster test",
        } }),
    )
    .await
    .expect("the gateway answers");
    let payload = &data(&created)["createWebhookEndpoint"];
    assert_eq!(payload["endpoint"]["ordered"], true, "ordered by default");
    let endpoint_id = text(&payload["endpoint"]["id"]);
    let secret = text(&payload["secret"]);
    receiver.set_secrets(&[&secret]);

    // The burst, alternating between the processes, a few mutations in flight. After HANG_AFTER
    // the receiver hangs; the first delivery to reach it is cut off by the kill if the victim
    // sent it (otherwise the survivor's own 3 s timeout cuts it off).
    let slugs: Vec<String> = (0..ORGANIZATIONS).map(|i| format!("burst-{i:02}")).collect();
    let mut tasks: JoinSet<(String, bool, Result<Value, String>)> = JoinSet::new();
    let mut outcomes: Vec<(String, bool, Result<Value, String>)> = Vec::new();
    let mut hang_from: Option<usize> = None;
    let mut killed_at: Option<Instant> = None;
    for (i, slug) in slugs.iter().enumerate() {
        if killed_at.is_none() {
            if hang_from.is_none() && i >= HANG_AFTER && receiver.requests().len() >= 5 {
                receiver.set_mode("hang");
                hang_from = Some(receiver.requests().len());
            }
            let hung = hang_from.is_some_and(|before| receiver.requests().len() > before);
            if hung || i >= KILL_BY {
                victim.kill();
                receiver.set_mode("accept");
                killed_at = Some(Instant::now());
                eprintln!(
                    "killed the victim after {i} mutations ({} requests at the receiver; hung: {hung})",
                    receiver.requests().len()
                );
            }
        }
        while tasks.len() >= IN_FLIGHT {
            outcomes.push(tasks.join_next().await.expect("a task").expect("no panic"));
        }
        let to_victim = killed_at.is_none() && i % 2 == 1;
        let (base, token) = if to_victim {
            (victim.url.clone(), victim_token.clone())
        } else {
            (survivor.url.clone(), survivor_token.clone())
        };
        let (http, slug) = (http.clone(), slug.clone());
        tasks.spawn(async move {
            let outcome = create_organization(http, base, token, slug.clone()).await;
            (slug, to_victim, outcome)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while let Some(outcome) = tasks.join_next().await {
        outcomes.push(outcome.expect("no panic"));
    }
    assert!(killed_at.is_some(), "the victim was killed mid-burst");
    // Mutations the kill cut off may or may not have committed: each is made again on the
    // survivor, where a slug already taken answers with an error (the audit log decides below).
    for (slug, to_victim, outcome) in outcomes {
        match outcome {
            Ok(response) if response.get("errors").is_none() => {}
            Err(error) if to_victim => {
                eprintln!("{slug}: cut off by the kill ({error}); made again on the survivor");
                let again = create_organization(
                    http.clone(),
                    survivor.url.clone(),
                    survivor_token.clone(),
                    slug.clone(),
                )
                .await
                .expect("the survivor answers");
                if again.get("errors").is_some() {
                    eprintln!("{slug}: had committed before the kill: {again}");
                }
            }
            other => panic!("{slug} (to the victim: {to_victim}): {other:?}"),
        }
    }

    // Commit order of the events, by the log through the API: exactly one per organization.
    let events = organization_events(&http, &survivor, &survivor_token).await;
    let mut logged_slugs: Vec<&str> = events.iter().map(|(_, slug)| slug.as_str()).collect();
    logged_slugs.sort_unstable();
    assert_eq!(
        logged_slugs,
        slugs.iter().map(String::as_str).collect::<Vec<_>>(),
        "one organization.created event per organization of the burst"
    );
    let order: Vec<String> = events.into_iter().map(|(id, _)| id).collect();
    let wanted: HashSet<String> = order.iter().cloned().collect();

    // Every event reaches the receiver (the killed process's delivery once its lease lapses).
    let deadline = Instant::now() + PATIENCE;
    let requests = loop {
        let requests = receiver.requests();
        let accepted = accepted_events(&requests);
        if wanted.is_subset(&accepted) {
            break requests;
        }
        if Instant::now() >= deadline {
            let missing: Vec<&String> = order.iter().filter(|e| !accepted.contains(*e)).collect();
            panic!(
                "lost: {} of {ORGANIZATIONS} events never delivered within {PATIENCE:?}: {missing:?}; \
                 {} requests at the receiver: {requests:#?}",
                missing.len(),
                requests.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = killed_at.expect("killed").elapsed();

    let mut firsts: Vec<String> = Vec::new();
    let mut id_of_event: HashMap<String, String> = HashMap::new();
    for request in &requests {
        assert_eq!(request["path"], "/hook", "{request:#}");
        assert_eq!(
            request["verified"][&secret], true,
            "verified with the endpoint's secret: {request:#}"
        );
        let event = event_id(request);
        assert!(wanted.contains(&event), "an event of the burst: {request:#}");
        let id = webhook_id(request);
        let first = id_of_event.entry(event.clone()).or_insert_with(|| id.clone());
        assert_eq!(
            *first, id,
            "a repeated delivery of event {event} has the webhook-id of its first"
        );
        if !firsts.contains(&event) {
            firsts.push(event);
        }
    }
    assert_eq!(firsts, order, "first deliveries in commit order");
    // One at a time: an event's first request comes only after the previous event was accepted.
    // (The receiver stores each request on arrival, not when it is answered, so this is as close
    // to "never two in flight" as it can see; the cut-off request itself never ends for it.)
    let mut accepted: HashSet<String> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    for request in &requests {
        let event = event_id(request);
        if seen.insert(event.clone()) {
            let position = order.iter().position(|e| *e == event).expect("known");
            if position > 0 {
                assert!(
                    accepted.contains(&order[position - 1]),
                    "event {event} was sent before the one committed before it was delivered: {request:#}"
                );
            }
        }
        if request["status"] == 200 {
            accepted.insert(event);
        }
    }
    let distinct: HashSet<&String> = id_of_event.values().collect();
    assert_eq!(distinct.len(), ORGANIZATIONS, "one webhook-id per event");

    // Whose delivery the kill cut off, as the receiver saw it.
    let repeats = requests.len() - ORGANIZATIONS;
    let hung: Vec<&Value> = requests.iter().filter(|r| r["status"].is_null()).collect();
    for request in &hung {
        let event = event_id(request);
        let again = requests
            .iter()
            .find(|r| r["number"].as_u64() > request["number"].as_u64() && event_id(r) == event)
            .map(|r| r["received_at"].clone());
        eprintln!(
            "cut-off delivery of {event} at {}; delivered again at {again:?}",
            request["received_at"]
        );
    }
    eprintln!(
        "{} requests ({repeats} repeats, {} cut off) for {ORGANIZATIONS} events; all delivered {took:?} after the kill",
        requests.len(),
        hung.len()
    );

    // The log of messages agrees: one per event, each delivered.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = gql(
            &http,
            &survivor.url,
            Some(&survivor_token),
            "query($e: ID!) {
               all: webhookMessages(filter: {endpointId: $e}) { totalCount }
               delivered: webhookMessages(filter: {endpointId: $e, status: DELIVERED}) { totalCount }
             }",
            json!({ "e": endpoint_id }),
        )
        .await
        .expect("the survivor answers");
        let counts = data(&response);
        assert_eq!(
            counts["all"]["totalCount"], ORGANIZATIONS,
            "one message per event, none doubled by the takeover"
        );
        if counts["delivered"]["totalCount"] == ORGANIZATIONS {
            break;
        }
        assert!(Instant::now() < deadline, "every message DELIVERED: {counts:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(survivor);
}
