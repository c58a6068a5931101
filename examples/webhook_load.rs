//! Load generator for webhooks: a local receiver (axum on 127.0.0.1), N gateway-wide endpoints
//! pointing at it, and M audited mutations (`createOrganization` through the gateway's router,
//! C in flight). Measures, in one run:
//!
//! - the mutation's latency with no endpoint, then with N endpoints subscribed (delivery is
//!   asynchronous, so the difference should be noise);
//! - deliveries per second from the first mutation to the last delivery received;
//! - commit-to-delivery time (receipt minus the event's `timestamp`) at p50 and p99.
//!
//! ```text
//! cargo run --release --example webhook_load -- sqlite:///tmp/webhook-load.db 1 2000 8
//! cargo run --release --example webhook_load -- postgres://postgres@127.0.0.1/webhook_load 100 200 8
//! ```
//! Arguments: database URL (its database must exist and may be empty), endpoints, mutations,
//! mutations in flight, and optionally the job runner's concurrency (default 16).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing::post;
use chrono::Utc;
use futures_util::StreamExt as _;
use portcullis::app::App;
use portcullis::clock::SystemClock;
use portcullis::config::Config;
use portcullis::db::users;
use portcullis::identity::{Actor, AuthMethod, ClientInfo, Mfa};
use portcullis::jobs::Runner;
use portcullis::webhooks::endpoints::{self, NewEndpoint};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const ADMIN: &str = "load-admin@example.com";
const PASSWORD: &str = "load-admin-password";
/// How long to wait for every delivery at most (a bound on waiting, not a target).
const PATIENCE: Duration = Duration::from_secs(600);

/// What the receiver saw: per delivery, commit-to-receipt in milliseconds.
#[derive(Default)]
struct Received {
    latencies_ms: Vec<f64>,
    last: Option<Instant>,
}

fn fail(error: portcullis::error::Error) -> anyhow::Error {
    anyhow::anyhow!("{error:?}")
}

async fn receive(State(seen): State<Arc<Mutex<Received>>>, headers: HeaderMap, body: String) -> StatusCode {
    let now = Utc::now();
    let Ok(message) = serde_json::from_str::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    if headers.get("webhook-signature").is_none() {
        return StatusCode::BAD_REQUEST;
    }
    let occurred = message["timestamp"]
        .as_str()
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok());
    if let Ok(mut seen) = seen.lock() {
        if let Some(occurred) = occurred {
            let delay = (now - occurred.with_timezone(&Utc))
                .num_microseconds()
                .unwrap_or(0);
            seen.latencies_ms.push(delay as f64 / 1000.0);
        }
        seen.last = Some(Instant::now());
    }
    StatusCode::NO_CONTENT
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "sqlite:///tmp/webhook-load.db".to_owned());
    let endpoint_count: usize = args.next().map_or(Ok(1), |n| n.parse())?;
    let mutations: usize = args.next().map_or(Ok(2000), |n| n.parse())?;
    let in_flight: usize = args.next().map_or(Ok(8), |n| n.parse())?;
    let job_concurrency: usize = args.next().map_or(Ok(16), |n| n.parse())?;

    let seen = Arc::new(Mutex::new(Received::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let receiver = axum::Router::new()
        .route("/hook/{n}", post(receive))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let mut config = Config::for_database(url);
    config.admin_email = Some(ADMIN.to_owned());
    config.admin_password = Some(PASSWORD.to_owned());
    config.webhook_allow_http = true;
    config.webhook_allow_private = true;
    config.job_poll_ms = 200;
    config.job_concurrency = job_concurrency;
    let app = App::start(config, Arc::new(SystemClock)).await.map_err(fail)?;
    let runner = Runner::start(&app);
    let router = portcullis::http::router(app.clone());
    let token = login(&router).await?;
    let run = uuid::Uuid::now_v7().simple().to_string();

    let baseline = mutate(&router, &token, &format!("a{}", &run[20..]), mutations, in_flight).await?;
    let admin = admin_actor(&app).await?;
    for n in 0..endpoint_count {
        let new = NewEndpoint {
            organization_id: None,
            url: format!("http://127.0.0.1:{port}/hook/{n}"),
            description: None,
            event_types: vec!["organization.created".to_owned()],
            enabled: true,
            ordered: true,
            include_sensitive: false,
        };
        endpoints::create(&app, &admin, new).await.map_err(fail)?;
    }
    // The baseline's events went to no endpoint: they were made before any existed.
    seen.lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .latencies_ms
        .clear();
    let started = Instant::now();
    let subscribed = mutate(&router, &token, &format!("b{}", &run[20..]), mutations, in_flight).await?;
    let expected = endpoint_count * mutations;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let received = seen
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .latencies_ms
            .len();
        if received >= expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut latencies, last) = {
        let seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        (seen.latencies_ms.clone(), seen.last)
    };
    anyhow::ensure!(
        latencies.len() >= expected,
        "only {} of {expected} deliveries arrived",
        latencies.len()
    );
    let span = last.map_or(Duration::ZERO, |last| last - started);
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "backend={:?} endpoints={endpoint_count} mutations={mutations} in_flight={in_flight} jobs={job_concurrency} \
         mutation_p50_ms_without={:.2} mutation_p50_ms_with={:.2} mutation_p99_ms_without={:.2} mutation_p99_ms_with={:.2} \
         deliveries={} deliveries_per_s={:.0} commit_to_delivery_p50_ms={:.1} commit_to_delivery_p99_ms={:.1}",
        app.db.backend(),
        baseline.p50,
        subscribed.p50,
        baseline.p99,
        subscribed.p99,
        latencies.len(),
        latencies.len() as f64 / span.as_secs_f64(),
        at(0.5),
        at(0.99),
    );
    runner.stop(Duration::from_secs(5)).await;
    Ok(())
}

struct Timings {
    p50: f64,
    p99: f64,
}

/// Creates `count` organizations through the router, `in_flight` at once; their latencies.
async fn mutate(
    router: &axum::Router,
    token: &str,
    prefix: &str,
    count: usize,
    in_flight: usize,
) -> anyhow::Result<Timings> {
    let query =
        "mutation($s: String!) { createOrganization(input: {slug: $s, name: $s}) { organization { id } } }";
    let results: Vec<Result<Duration, String>> = futures_util::stream::iter(0..count)
        .map(|i| {
            let router = router.clone();
            let body = json!({ "query": query, "variables": { "s": format!("{prefix}-{i}") } }).to_string();
            let token = token.to_owned();
            async move {
                let request = Request::post("/graphql")
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .body(Body::from(body))
                    .map_err(|e| e.to_string())?;
                let sent = Instant::now();
                let response = router.oneshot(request).await.map_err(|e| e.to_string())?;
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .map_err(|e| e.to_string())?;
                let answer: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                if answer["data"]["createOrganization"]["organization"]["id"].is_string() {
                    Ok(sent.elapsed())
                } else {
                    Err(answer.to_string())
                }
            }
        })
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await;
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    anyhow::ensure!(
        failures.is_empty(),
        "{} mutations failed, first: {}",
        failures.len(),
        failures[0]
    );
    let mut times: Vec<f64> = results
        .into_iter()
        .filter_map(Result::ok)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    Ok(Timings {
        p50: at(0.5),
        p99: at(0.99),
    })
}

async fn login(router: &axum::Router) -> anyhow::Result<String> {
    let query =
        "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }";
    let body = json!({ "query": query, "variables": { "e": ADMIN, "p": PASSWORD } }).to_string();
    let request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))?;
    let response = router.clone().oneshot(request).await?;
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
    let answer: Value = serde_json::from_slice(&bytes)?;
    answer["data"]["login"]["accessToken"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("login failed: {answer}"))
}

async fn admin_actor(app: &App) -> anyhow::Result<Actor> {
    let mut conn = app.db.conn().await.map_err(fail)?;
    let admin = users::find_by_email(&mut conn, ADMIN)
        .await
        .map_err(fail)?
        .ok_or_else(|| anyhow::anyhow!("no bootstrap administrator"))?;
    Ok(Actor {
        user: admin,
        method: AuthMethod::Password,
        session_id: None,
        api_key_id: None,
        mfa: Mfa::default(),
        client: ClientInfo::default(),
    })
}
