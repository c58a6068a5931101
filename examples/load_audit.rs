//! Load generator for the audit log: what recording costs a mutation, how fast a large log exports,
//! and how far the live feed fans out. Three phases, each bounded in time:
//!
//! 1. **mutations**: `PORTCULLIS_LOAD_CONNECTIONS` keep-alive connections each rename an organization
//!    of their own (`updateOrganization`) back to back; every rename writes one `organization.updated`
//!    event in its transaction. Reports audited mutations/s, latency, failures, and checks that the
//!    log gained exactly one event per successful rename.
//! 2. **export**: makes sure the log holds `PORTCULLIS_EXPORT_EVENTS` events, then downloads
//!    `GET /audit/export` as NDJSON and as CSV, reading the body chunk by chunk (never whole).
//!    Reports rows/s, MB/s, time to first byte, and the gateway's RSS sampled every 100 ms during the
//!    download: flat memory is the target. An export holds the events committed before it began,
//!    its own `audit.exported` event included, so it has one row more than the log held. Seeding is
//!    skipped when `auditEvents { totalCount }` already reaches the target (seed large logs
//!    beforehand with `examples/seed_audit.rs`, below); otherwise the phase renames organizations
//!    concurrently until it does, for at most 6 × `PORTCULLIS_LOAD_SECONDS`, and exports what is
//!    there.
//! 3. **fanout**: opens `PORTCULLIS_SUBSCRIBERS` WebSocket connections (`graphql-transport-ws`, 16
//!    handshakes at a time, all with the administrator's token), each subscribed to
//!    `auditEvents(filter: { actions: ["organization.updated"] })`. One warm-up rename checks that
//!    every subscription is live; then a producer renames one organization `PORTCULLIS_FANOUT_RATE`
//!    times a second to `bench-<unix microseconds>`, and each subscriber computes receive time − send
//!    time from the target's display name. Reports events delivered against expected (produced ×
//!    subscribers), missing, duplicates, delivery latency, and the gateway's RSS before, with the
//!    subscribers idle, during the run and after they leave. The delivery latency includes the
//!    rename's own commit, reported separately. When the gateway ends a subscription (`LAGGED`, or an
//!    error), the subscriber subscribes again after the last cursor it received, as a real client
//!    would, and the report counts why subscriptions ended. A connection closed with 1012 (a draining
//!    gateway) is opened again, through the same URL (a load balancer's), resuming the same way.
//!
//! 4. **refresh** (not run by default; for fault runs): `PORTCULLIS_LOAD_CONNECTIONS` clients each
//!    log in and exchange their refresh token (`refreshSession`) back to back for
//!    `PORTCULLIS_LOAD_SECONDS`. A refresh whose answer is lost (a killed instance, a database
//!    restart: a transport error, a 5xx, `UNAVAILABLE`) is sent again with the same token, as a
//!    client would; the report counts sessions the gateway revoked for that retry — zero is the target.
//!
//! Every phase also reports the CPU the gateway (with `PORTCULLIS_GATEWAY_PID`) and this program
//! used, in cores busy on average: on a small machine the load generator's share matters.
//!
//! Start a release gateway with a bootstrap administrator, then run the example in another shell.
//! SQLite:
//!
//! ```sh
//! cargo build --release && cargo build --release --example load_audit
//! # optional, for the export phase: a million events, far faster than renaming through GraphQL
//! PORTCULLIS_DATABASE_URL=sqlite:///tmp/audit-load.db cargo run --release --example seed_audit -- 1000000
//! PORTCULLIS_DATABASE_URL=sqlite:///tmp/audit-load.db PORTCULLIS_ADMIN_EMAIL=admin@example.com \
//!     PORTCULLIS_ADMIN_PASSWORD=change-me-please PORTCULLIS_LOG=warn \
//!     target/release/portcullis serve --listen 127.0.0.1:8080 &
//! PORTCULLIS_GATEWAY_PID=$! PORTCULLIS_ADMIN_EMAIL=admin@example.com \
//!     PORTCULLIS_ADMIN_PASSWORD=change-me-please target/release/examples/load_audit
//! ```
//!
//! PostgreSQL (one database per run keeps the figures comparable):
//!
//! ```sh
//! createdb -h 127.0.0.1 -U postgres audit_load
//! PORTCULLIS_DATABASE_URL=postgres://postgres@127.0.0.1:5432/audit_load \
//!     cargo run --release --example seed_audit -- 1000000
//! PORTCULLIS_DATABASE_URL=postgres://postgres@127.0.0.1:5432/audit_load \
//!     PORTCULLIS_ADMIN_EMAIL=admin@example.com PORTCULLIS_ADMIN_PASSWORD=change-me-please \
//!     PORTCULLIS_LOG=warn target/release/portcullis serve --listen 127.0.0.1:8080 &
//! PORTCULLIS_GATEWAY_PID=$! PORTCULLIS_ADMIN_EMAIL=admin@example.com \
//!     PORTCULLIS_ADMIN_PASSWORD=change-me-please target/release/examples/load_audit
//! kill %1 && dropdb -h 127.0.0.1 -U postgres audit_load
//! ```
//!
//! Environment:
//!
//! | Variable                      | Default                    | Meaning                                  |
//! |-------------------------------|----------------------------|------------------------------------------|
//! | `PORTCULLIS_URL`              | `http://127.0.0.1:8080`    | Base URL of the gateway                  |
//! | `PORTCULLIS_ADMIN_EMAIL`      | (required)                 | The bootstrap administrator              |
//! | `PORTCULLIS_ADMIN_PASSWORD`   | (required)                 | Its password                             |
//! | `PORTCULLIS_LOAD_PHASES`      | `mutations,export,fanout`  | The phases to run, in this order         |
//! | `PORTCULLIS_LOAD_CONNECTIONS` | `16`                       | Connections renaming in phases 1 and 2   |
//! | `PORTCULLIS_LOAD_SECONDS`     | `10` (at most 60)          | Duration of phases 1 and 3; seeding ≤ 6× |
//! | `PORTCULLIS_EXPORT_EVENTS`    | `1000000`                  | Events the log should hold for phase 2   |
//! | `PORTCULLIS_EXPORT_SECONDS`   | `300` (at most 1800)       | Longest a download may take (then cut)   |
//! | `PORTCULLIS_SUBSCRIBERS`      | `1000`                     | WebSocket subscribers in phase 3         |
//! | `PORTCULLIS_FANOUT_RATE`      | `20` (at most 1000)        | Renames per second in phase 3            |
//! | `PORTCULLIS_GATEWAY_PID`      | unset                      | Report the gateway's RSS (Linux)         |
//!
//! Each run creates its own organizations (`load-audit-<unix seconds>-<pid>-<n>`: one per connection and
//! one for the fanout producer), so runs against the same database do not disturb each other; the
//! mutations phase counts only its own organizations' events, so several runs (one per instance of a
//! cluster, say) can load one database at once.
//!
//! The fanout phase holds `PORTCULLIS_SUBSCRIBERS` sockets in this process and as many in the
//! gateway: both need `ulimit -n` above that (the program warns when its own limit, or the gateway's
//! with `PORTCULLIS_GATEWAY_PID`, is too low). The load stays on the given URL; use a gateway on
//! this machine.

use std::collections::{BTreeMap, HashSet};
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};

const LOGIN: &str = "mutation($email: String!, $password: String!) {
  login(input: { email: $email, password: $password }) { accessToken } }";
const LOGIN_FOR_REFRESH: &str = "mutation($email: String!, $password: String!) {
  login(input: { email: $email, password: $password }) { refreshToken } }";
const REFRESH: &str = "mutation($token: String!) {
  refreshSession(input: { refreshToken: $token }) { refreshToken } }";
const CREATE_ORGANIZATION: &str = "mutation($input: CreateOrganizationInput!) {
  createOrganization(input: $input) { organization { id } } }";
const UPDATE_ORGANIZATION: &str = "mutation($input: UpdateOrganizationInput!) {
  updateOrganization(input: $input) { organization { id } } }";
const COUNT: &str =
    "query($filter: AuditEventFilter) { auditEvents(first: 1, filter: $filter) { totalCount } }";
const SUBSCRIBE: &str = "subscription($after: String) {
  auditEvents(after: $after, filter: { actions: [\"organization.updated\"] }) {
    cursor node { id occurredAt action actor { displayName } targets { type id displayName } } } }";

/// WebSocket handshakes in flight at once while the subscribers connect.
const HANDSHAKES: usize = 16;
/// How long the subscribers may take to connect, and the warm-up event to reach them all.
const SETUP_LIMIT: Duration = Duration::from_secs(60);
const WARM_UP_LIMIT: Duration = Duration::from_secs(30);
/// How long to wait for events still in flight when the producer stops.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// The close code of a draining gateway: reconnect and resume.
const SERVICE_RESTART: u16 = 1012;
/// How often, and how far apart, a subscriber tries to reconnect after losing its connection.
const REOPEN_ATTEMPTS: u32 = 40;
const REOPEN_PAUSE: Duration = Duration::from_millis(250);
/// How long a renaming connection waits after a failed rename before the next.
const FAILURE_PAUSE: Duration = Duration::from_millis(50);

/// How often one subscriber subscribes again after the gateway ended its subscription.
const MAX_RESUBSCRIPTIONS: u32 = 20;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;
type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One GraphQL endpoint, a few keep-alive connections, one bearer token.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    endpoint: String,
    token: Option<String>,
}

impl Client {
    fn new(endpoint: &str, token: Option<String>, pool: usize) -> Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(pool)
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            http,
            endpoint: endpoint.to_owned(),
            token,
        })
    }

    /// Runs one operation and returns its `data`, or an error naming the GraphQL errors.
    async fn execute(&self, query: &str, variables: &Value) -> Result<Value> {
        let mut request = self
            .http
            .post(&self.endpoint)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if let Some(errors) = body.get("errors").and_then(Value::as_array) {
            let messages: Vec<String> = errors
                .iter()
                .map(|e| e["message"].as_str().unwrap_or("(no message)").to_owned())
                .collect();
            return Err(format!("HTTP {status}: {}", messages.join("; ")).into());
        }
        match body.get("data") {
            Some(data) if !data.is_null() => Ok(data.clone()),
            _ => Err(format!("HTTP {status}: no data in the response").into()),
        }
    }

    /// Runs one operation and says whether it was done, refused (with the error's code), or its
    /// answer was lost (the client cannot tell whether it happened).
    async fn attempt(&self, query: &str, variables: &Value) -> Attempt {
        let sent = self
            .http
            .post(&self.endpoint)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Attempt::Lost(error.to_string()),
        };
        let status = response.status();
        let body: Value = match response.json().await {
            Ok(body) => body,
            Err(error) => return Attempt::Lost(format!("HTTP {status}: {error}")),
        };
        match body.pointer("/errors/0") {
            None => Attempt::Done(body["data"].clone()),
            Some(error) => {
                let code = error
                    .pointer("/extensions/code")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let message = error["message"].as_str().unwrap_or("").to_owned();
                if status.is_server_error() || code == "UNAVAILABLE" || code == "INTERNAL" {
                    Attempt::Lost(format!("HTTP {status}: {message}"))
                } else {
                    Attempt::Refused(code.to_owned(), message)
                }
            }
        }
    }

    async fn rename(&self, organization: &str, name: &str) -> Result<()> {
        let input = json!({ "input": { "id": organization, "name": name } });
        self.execute(UPDATE_ORGANIZATION, &input).await.map(drop)
    }

    /// `totalCount` of the events with these actions (all events when empty), about these targets
    /// (any when empty): a run counts only its own organizations', so several runs can share a log.
    async fn count_events(&self, actions: &[&str], targets: &[String]) -> Result<u64> {
        let mut filter = serde_json::Map::new();
        if !actions.is_empty() {
            filter.insert("actions".to_owned(), json!(actions));
        }
        if !targets.is_empty() {
            filter.insert("targetIds".to_owned(), json!(targets));
        }
        let filter = if filter.is_empty() {
            Value::Null
        } else {
            Value::Object(filter)
        };
        let data = self.execute(COUNT, &json!({ "filter": filter })).await?;
        data.pointer("/auditEvents/totalCount")
            .and_then(Value::as_u64)
            .ok_or_else(|| "the response has no totalCount".into())
    }
}

fn text(value: &Value, pointer: &str) -> Result<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("the response has no {pointer}").into())
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn micros(elapsed: Duration) -> u32 {
    u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX)
}

/// Sorts `latencies` (µs) and formats p50, p90, p99 and max in ms.
fn percentiles(latencies: &mut [u32]) -> String {
    latencies.sort_unstable();
    let at = |p: f64| {
        latencies
            .get(((latencies.len().saturating_sub(1)) as f64 * p).round() as usize)
            .map_or(0.0, |us| f64::from(*us) / 1000.0)
    };
    format!(
        "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0)
    )
}

/// The gateway's resident memory, from `/proc/<pid>/status`.
#[derive(Clone, Copy)]
struct Rss {
    /// VmRSS: resident now.
    rss_kib: u64,
    /// VmHWM: the most ever resident.
    peak_kib: u64,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl fmt::Display for Rss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RSS {:.1} MiB, peak {:.1} MiB",
            mib(self.rss_kib),
            mib(self.peak_kib)
        )
    }
}

fn gateway_rss(pid: Option<&str>) -> Option<Rss> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(name))?;
        line.trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Rss {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// Samples the gateway's RSS every 100 ms until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Option<RssRange>>,
}

/// What a [`Sampler`] saw.
struct RssRange {
    min_kib: u64,
    max_kib: u64,
    /// VmHWM at the last sample.
    peak_kib: u64,
    samples: usize,
}

impl fmt::Display for RssRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RSS min {:.1} MiB, max {:.1} MiB ({} samples); peak since start {:.1} MiB",
            mib(self.min_kib),
            mib(self.max_kib),
            self.samples,
            mib(self.peak_kib)
        )
    }
}

impl Sampler {
    fn start(pid: Option<&str>) -> Option<Self> {
        let pid = pid?.to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(100));
            let mut range: Option<RssRange> = None;
            loop {
                ticks.tick().await;
                if let Some(now) = gateway_rss(Some(&pid)) {
                    let r = range.get_or_insert(RssRange {
                        min_kib: now.rss_kib,
                        max_kib: now.rss_kib,
                        peak_kib: now.peak_kib,
                        samples: 0,
                    });
                    r.min_kib = r.min_kib.min(now.rss_kib);
                    r.max_kib = r.max_kib.max(now.rss_kib);
                    r.peak_kib = now.peak_kib;
                    r.samples += 1;
                }
                if stopped.load(Ordering::Relaxed) {
                    return range;
                }
            }
        });
        Some(Self { stop, task })
    }

    async fn finish(sampler: Option<Self>) -> Option<RssRange> {
        let sampler = sampler?;
        sampler.stop.store(true, Ordering::Relaxed);
        sampler.task.await.ok().flatten()
    }
}

/// CPU time (user + system) a process has used so far, in seconds, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // Clock ticks are USER_HZ, 100 a second on Linux.
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// The CPU the gateway and this program used over a stretch of wall time.
struct CpuClock {
    started: Instant,
    gateway: Option<f64>,
    this: Option<f64>,
}

impl CpuClock {
    fn start(pid: Option<&str>) -> Self {
        Self {
            started: Instant::now(),
            gateway: pid.and_then(cpu_seconds),
            this: cpu_seconds("self"),
        }
    }

    /// "gateway 1.62 cores, load generator 0.31 cores (2 available)", in cores busy on average.
    fn report(&self, pid: Option<&str>) -> String {
        let wall = self.started.elapsed().as_secs_f64().max(1e-3);
        let cores = |before: Option<f64>, now: Option<f64>| match (before, now) {
            (Some(before), Some(now)) => format!("{:.2} cores", (now - before) / wall),
            _ => "?".to_owned(),
        };
        let available = std::thread::available_parallelism().map_or(0, usize::from);
        let mut parts = Vec::new();
        if pid.is_some() {
            parts.push(format!(
                "gateway {}",
                cores(self.gateway, pid.and_then(cpu_seconds))
            ));
        }
        parts.push(format!(
            "load generator {}",
            cores(self.this, cpu_seconds("self"))
        ));
        format!("{} ({available} available)", parts.join(", "))
    }
}

/// The soft limit on open files of a process, from `/proc/<pid>/limits`.
fn open_files_limit(pid: &str) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// How the phases are run.
#[derive(Clone)]
struct Settings {
    base: String,
    endpoint: String,
    ws_url: String,
    email: String,
    password: String,
    connections: usize,
    seconds: u64,
    export_events: u64,
    export_seconds: u64,
    subscribers: usize,
    fanout_rate: u64,
    gateway_pid: Option<String>,
}

impl Settings {
    /// A fresh access token: each phase logs in, so that no token expires during a long run.
    async fn login(&self) -> Result<String> {
        let anonymous = Client::new(&self.endpoint, None, 1)?;
        let variables = json!({ "email": self.email, "password": self.password });
        let data = anonymous.execute(LOGIN, &variables).await?;
        text(&data, "/login/accessToken")
    }

    async fn admin(&self) -> Result<(String, Client)> {
        let token = self.login().await?;
        let client = Client::new(&self.endpoint, Some(token.clone()), 4)?;
        Ok((token, client))
    }

    fn pid(&self) -> Option<&str> {
        self.gateway_pid.as_deref()
    }
}

/// How one operation ended, as a client sees it.
enum Attempt {
    Done(Value),
    Refused(String, String),
    Lost(String),
}

/// What renaming connections saw.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    /// When each success was answered (Unix microseconds): the longest silence shows a stall.
    answered_us: Vec<u64>,
    failures: u64,
    first_failure: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.answered_us.extend(other.answered_us);
        self.failures += other.failures;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }

    fn fail(&mut self, error: &dyn fmt::Display) {
        self.failures += 1;
        if self.first_failure.is_none() {
            self.first_failure = Some(error.to_string());
        }
    }
}

/// One connection renaming `organization` back to back until `deadline`, or until `budget` (shared
/// by the connections) runs out; `done` counts successful renames.
async fn rename_loop(
    client: Client,
    organization: String,
    label: String,
    deadline: Instant,
    budget: Option<Arc<AtomicI64>>,
    done: Arc<AtomicU64>,
) -> Tally {
    let mut tally = Tally::default();
    let mut n = 0_u64;
    while Instant::now() < deadline {
        if let Some(budget) = &budget
            && budget.fetch_sub(1, Ordering::Relaxed) <= 0
        {
            break;
        }
        n += 1;
        let started = Instant::now();
        match client.rename(&organization, &format!("{label} {n}")).await {
            Ok(()) => {
                tally.latencies_us.push(micros(started.elapsed()));
                tally.answered_us.push(unix_micros());
                done.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                tally.fail(&error);
                // As a client would: a moment's pause before trying again, not a spin.
                tokio::time::sleep(FAILURE_PAUSE).await;
            }
        }
    }
    tally
}

/// Runs `rename_loop` on one connection per organization; returns the merged tally.
async fn rename_concurrently(
    settings: &Settings,
    token: &str,
    organizations: &[String],
    deadline: Instant,
    budget: Option<Arc<AtomicI64>>,
    done: &Arc<AtomicU64>,
) -> Result<Tally> {
    let mut tasks = Vec::with_capacity(organizations.len());
    for (c, organization) in organizations.iter().enumerate() {
        let client = Client::new(&settings.endpoint, Some(token.to_owned()), 1)?;
        tasks.push(tokio::spawn(rename_loop(
            client,
            organization.clone(),
            format!("load {c}"),
            deadline,
            budget.clone(),
            done.clone(),
        )));
    }
    let mut tally = Tally::default();
    for task in tasks {
        tally.merge(task.await?);
    }
    Ok(tally)
}

/// Phase 1: audited mutations.
async fn mutations(settings: &Settings, organizations: &[String]) -> Result<()> {
    let (token, admin) = settings.admin().await?;
    let before = admin
        .count_events(&["organization.updated"], organizations)
        .await?;
    let sampler = Sampler::start(settings.pid());
    let cpu = CpuClock::start(settings.pid());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(settings.seconds);
    let done = Arc::new(AtomicU64::new(0));
    let tally = rename_concurrently(settings, &token, organizations, deadline, None, &done).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu.report(settings.pid());
    let rss = Sampler::finish(sampler).await;
    let recorded = admin
        .count_events(&["organization.updated"], organizations)
        .await?
        - before;

    let mut latencies = tally.latencies_us;
    let ok = latencies.len();
    println!(
        "\nmutations (updateOrganization): {} connections, {elapsed:.1} s",
        organizations.len()
    );
    println!(
        "  audited mutations/s {:>8.0}   ({ok} ok, {} failed)",
        ok as f64 / elapsed,
        tally.failures
    );
    println!("  latency ms  {}", percentiles(&mut latencies));
    let mut answered = tally.answered_us;
    answered.sort_unstable();
    let longest_silence = answered
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or(0);
    println!(
        "  longest time without a successful mutation: {:.0} ms",
        longest_silence as f64 / 1000.0
    );
    // A rename whose answer was lost (a killed instance, a database restart) may have committed:
    // its event is there though the client saw a failure. Only fewer events than acknowledged
    // renames, or more than were tried, is wrong.
    let (ok_count, failures) = (ok as u64, tally.failures);
    let verdict = if recorded == ok_count {
        "one per successful mutation".to_owned()
    } else if recorded > ok_count && recorded <= ok_count + failures {
        format!(
            "one per successful mutation, and {} of the {failures} failed ones committed before their answer was lost",
            recorded - ok_count
        )
    } else if recorded < ok_count {
        format!(
            "LOST: {} acknowledged mutations have no event",
            ok_count - recorded
        )
    } else {
        "MISMATCH: more events than mutations tried".to_owned()
    };
    println!("  audit log   {recorded} organization.updated events recorded ({verdict})");
    println!("  CPU         {cpu}");
    if let Some(rss) = rss {
        println!("  gateway     {rss}");
    }
    if let Some(failure) = tally.first_failure {
        println!("  first failure: {failure}");
    }
    Ok(())
}

/// What one refreshing client saw.
#[derive(Default)]
struct Refreshes {
    ok: u64,
    /// Presentations of a token whose answer was lost (transport error, 5xx, UNAVAILABLE), sent
    /// again as a client would.
    retried: u64,
    /// Sessions the gateway revoked (UNAUTHENTICATED on a retry): what the grace window prevents.
    revoked: u64,
    first_revocation: Option<String>,
    first_lost: Option<String>,
}

/// One client: logs in, then exchanges its refresh token back to back until `deadline`; a
/// refresh whose answer is lost is sent again with the same token.
async fn refresh_loop(settings: Arc<Settings>, deadline: Instant) -> Result<Refreshes> {
    let client = Client::new(&settings.endpoint, None, 1)?;
    let credentials = json!({ "email": settings.email, "password": settings.password });
    let mut token = loop {
        match client.execute(LOGIN_FOR_REFRESH, &credentials).await {
            Ok(data) => break text(&data, "/login/refreshToken")?,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(REOPEN_PAUSE).await,
            Err(error) => return Err(error),
        }
    };
    let mut seen = Refreshes::default();
    let mut retrying = false;
    while Instant::now() < deadline {
        match client.attempt(REFRESH, &json!({ "token": token })).await {
            Attempt::Done(data) => {
                token = text(&data, "/refreshSession/refreshToken")?;
                seen.ok += 1;
                retrying = false;
            }
            Attempt::Lost(why) => {
                seen.retried += 1;
                seen.first_lost.get_or_insert(why);
                retrying = true;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Attempt::Refused(code, message) => {
                if code == "UNAUTHENTICATED" && retrying {
                    seen.revoked += 1;
                    seen.first_revocation.get_or_insert(message);
                } else if code != "RATE_LIMITED" {
                    return Err(format!("refresh refused: {code}: {message}").into());
                }
                // Start a new session, as the user would have to.
                let data = client.execute(LOGIN_FOR_REFRESH, &credentials).await?;
                token = text(&data, "/login/refreshToken")?;
                retrying = false;
            }
        }
    }
    Ok(seen)
}

/// Phase 4: refresh-token rotation while faults happen; reports sessions lost to retries.
async fn refresh(settings: &Settings) -> Result<()> {
    let settings = Arc::new(settings.clone());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(settings.seconds);
    let clients: Vec<_> = (0..settings.connections)
        .map(|_| tokio::spawn(refresh_loop(settings.clone(), deadline)))
        .collect();
    let mut total = Refreshes::default();
    for client in clients {
        let seen = client.await??;
        total.ok += seen.ok;
        total.retried += seen.retried;
        total.revoked += seen.revoked;
        total.first_revocation = total.first_revocation.or(seen.first_revocation);
        total.first_lost = total.first_lost.or(seen.first_lost);
    }
    println!(
        "\nrefresh (refreshSession): {} clients, {:.1} s",
        settings.connections,
        started.elapsed().as_secs_f64()
    );
    println!(
        "  refreshes   {} ok, {} answers lost and the same token sent again",
        total.ok, total.retried
    );
    println!(
        "  revoked     {} sessions revoked by a retried refresh",
        total.revoked
    );
    if let Some(lost) = total.first_lost {
        println!("  first lost answer: {lost}");
    }
    if let Some(revocation) = total.first_revocation {
        println!("  first revocation: {revocation}");
    }
    Ok(())
}

/// Phase 2: seeding if needed, then both export formats.
async fn export(settings: &Settings, organizations: &[String]) -> Result<()> {
    let (token, admin) = settings.admin().await?;
    let held = admin.count_events(&[], &[]).await?;
    let target = settings.export_events;
    println!("\nexport: the log holds {held} events (target {target})");
    if held < target {
        seed(settings, &token, &admin, organizations, target - held).await?;
    }
    for format in ["ndjson", "csv"] {
        let held = admin.count_events(&[], &[]).await?;
        download(settings, &token, format, held).await?;
    }
    Ok(())
}

/// Renames organizations concurrently until `missing` more events are in the log, or until
/// 6 × `PORTCULLIS_LOAD_SECONDS` have passed.
async fn seed(
    settings: &Settings,
    token: &str,
    admin: &Client,
    organizations: &[String],
    missing: u64,
) -> Result<()> {
    let limit = Duration::from_secs(settings.seconds * 6);
    println!(
        "  seeding {missing} events with {} connections (for at most {} s; seed large logs beforehand)",
        organizations.len(),
        limit.as_secs()
    );
    let started = Instant::now();
    let budget = Arc::new(AtomicI64::new(i64::try_from(missing).unwrap_or(i64::MAX)));
    let done = Arc::new(AtomicU64::new(0));
    let progress = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(10));
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let so_far = done.load(Ordering::Relaxed);
                println!(
                    "  … {so_far} events seeded ({:.0}/s)",
                    so_far as f64 / started.elapsed().as_secs_f64()
                );
            }
        })
    };
    let outcome = rename_concurrently(
        settings,
        token,
        organizations,
        started + limit,
        Some(budget),
        &done,
    )
    .await;
    progress.abort();
    let tally = outcome?;
    let elapsed = started.elapsed().as_secs_f64();
    let seeded = tally.latencies_us.len();
    let held = admin.count_events(&[], &[]).await?;
    println!(
        "  seeded {seeded} events in {elapsed:.1} s ({:.0}/s, {} failed); the log holds {held}",
        seeded as f64 / elapsed,
        tally.failures
    );
    if held < settings.export_events {
        println!(
            "  the target of {} was not reached in time: exporting the {held} events there are",
            settings.export_events
        );
    }
    if let Some(failure) = tally.first_failure {
        println!("  first failure: {failure}");
    }
    Ok(())
}

/// Counts the records of an export as its bytes stream by: newlines, outside quotes for CSV.
struct LineCounter {
    csv: bool,
    in_quotes: bool,
    lines: u64,
}

impl LineCounter {
    fn feed(&mut self, bytes: &[u8]) {
        if self.csv {
            for &b in bytes {
                match b {
                    b'"' => self.in_quotes = !self.in_quotes,
                    b'\n' if !self.in_quotes => self.lines += 1,
                    _ => {}
                }
            }
        } else {
            self.lines += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        }
    }
}

/// Downloads one export, streaming, and reports its rate and the gateway's memory meanwhile.
async fn download(settings: &Settings, token: &str, format: &str, held: u64) -> Result<()> {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .build()?;
    let url = format!(
        "{}/audit/export?format={format}&order=OLDEST_FIRST",
        settings.base
    );
    let sampler = Sampler::start(settings.pid());
    let cpu = CpuClock::start(settings.pid());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(settings.export_seconds);
    let sent = http.get(&url).bearer_auth(token).send().await;
    let mut response = match sent {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => {
            Sampler::finish(sampler).await;
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(format!("export {format}: HTTP {status}: {body}").into());
        }
        Err(error) => {
            Sampler::finish(sampler).await;
            return Err(format!("export {format}: {error}").into());
        }
    };
    let mut counter = LineCounter {
        csv: format == "csv",
        in_quotes: false,
        lines: 0,
    };
    let (mut bytes, mut chunks, mut largest) = (0_u64, 0_u64, 0_usize);
    let mut first_byte = None;
    let mut ended = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                first_byte.get_or_insert_with(|| started.elapsed());
                bytes += chunk.len() as u64;
                chunks += 1;
                largest = largest.max(chunk.len());
                counter.feed(&chunk);
            }
            Ok(Ok(None)) => break,
            Ok(Err(error)) => {
                ended = Some(format!("the body ended early: {error}"));
                break;
            }
            Err(_) => {
                ended = Some(format!(
                    "cut short after {} s (PORTCULLIS_EXPORT_SECONDS)",
                    settings.export_seconds
                ));
                break;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu.report(settings.pid());
    let rss = Sampler::finish(sampler).await;
    // The CSV header is a line too.
    let rows = if counter.csv {
        counter.lines.saturating_sub(1)
    } else {
        counter.lines
    };
    println!(
        "\nexport {format}: {rows} rows, {:.1} MB in {elapsed:.1} s",
        bytes as f64 / 1e6
    );
    println!(
        "  rows/s {:>10.0}   MB/s {:.1}   first byte after {:.0} ms, {chunks} chunks (largest {:.0} KiB)",
        rows as f64 / elapsed,
        bytes as f64 / 1e6 / elapsed,
        first_byte.map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        largest as f64 / 1024.0
    );
    // The export records its own `audit.exported` event, inside its snapshot.
    if ended.is_none() && rows != held + 1 {
        println!(
            "  note: {held} events before the download, so {} rows expected",
            held + 1
        );
    }
    println!("  CPU    {cpu}");
    if let Some(rss) = rss {
        println!("  gateway {rss}");
    }
    if let Some(ended) = ended {
        println!("  incomplete: {ended}");
    }
    Ok(())
}

/// Shared by the fanout subscribers.
struct Fanout {
    ws_url: String,
    token: String,
    /// The organization the producer renames.
    organization: String,
    handshakes: Semaphore,
    subscribed: AtomicUsize,
    failed: AtomicUsize,
    /// Subscribers that received the warm-up event.
    ready: AtomicUsize,
    /// Benchmark events received, all subscribers together (duplicates included).
    delivered: AtomicU64,
}

/// What one subscriber saw.
#[derive(Default)]
struct Subscriber {
    subscribed: bool,
    ready: bool,
    /// Send stamps of the benchmark events received, and their delivery latencies.
    stamps: Vec<u64>,
    latencies_us: Vec<u32>,
    /// GraphQL-over-WebSocket messages received after subscribing.
    messages: u64,
    /// The cursor of the last event received: where to resume.
    last_cursor: Option<String>,
    /// Why the gateway ended subscriptions (`LAGGED`, `INTERNAL`, `complete`, …), each followed by a
    /// new subscription after the last cursor, as a real client would.
    ended: BTreeMap<String, u32>,
    problems: u32,
    first_problem: Option<String>,
    /// The connection ended before the phase did.
    dropped: bool,
}

impl Subscriber {
    fn problem(&mut self, problem: String) {
        self.problems += 1;
        if self.first_problem.is_none() {
            self.first_problem = Some(problem);
        }
    }

    /// Records one event (`AuditFeedEdge`) received at `received` (unix µs).
    fn record(&mut self, fanout: &Fanout, edge: &Value, received: u64) {
        if let Some(cursor) = edge["cursor"].as_str() {
            self.last_cursor = Some(cursor.to_owned());
        }
        let Some(target) = edge.pointer("/node/targets/0") else {
            return;
        };
        if target["id"].as_str() != Some(fanout.organization.as_str()) {
            return;
        }
        let name = target["displayName"].as_str().unwrap_or_default();
        if let Some(stamp) = name.strip_prefix("bench-").and_then(|s| s.parse::<u64>().ok()) {
            self.stamps.push(stamp);
            let latency = received.saturating_sub(stamp);
            self.latencies_us.push(u32::try_from(latency).unwrap_or(u32::MAX));
            fanout.delivered.fetch_add(1, Ordering::Relaxed);
        } else if name.starts_with("warmup-") && !self.ready {
            self.ready = true;
            fanout.ready.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an ended subscription; whether to subscribe again (a bounded number of times).
    fn ended(&mut self, why: &str, detail: String) -> bool {
        *self.ended.entry(why.to_owned()).or_default() += 1;
        if why != "LAGGED" && self.first_problem.is_none() {
            self.first_problem = Some(detail);
        }
        self.ended.values().sum::<u32>() <= MAX_RESUBSCRIPTIONS
    }
}

fn subscribe_message(id: u32, after: Option<&str>) -> Message {
    let message = json!({
        "id": id.to_string(),
        "type": "subscribe",
        "payload": { "query": SUBSCRIBE, "variables": { "after": after } },
    });
    Message::text(message.to_string())
}

/// Connects, authenticates and subscribes (after `after`, when resuming); the handshake permit is
/// held until then.
async fn open_subscription(fanout: &Fanout, after: Option<&str>) -> Result<Socket> {
    let _permit = fanout.handshakes.acquire().await?;
    let mut request = fanout.ws_url.as_str().into_client_request()?;
    request.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let limit = Duration::from_secs(30);
    let (mut socket, _) = tokio::time::timeout(limit, tokio_tungstenite::connect_async(request))
        .await
        .map_err(|_| "WebSocket handshake timed out")??;
    let authorization = format!("Bearer {}", fanout.token);
    let init = json!({ "type": "connection_init", "payload": { "authorization": authorization } });
    socket.send(Message::text(init.to_string())).await?;
    let acknowledged = tokio::time::timeout(limit, async {
        while let Some(message) = socket.next().await {
            match message? {
                Message::Text(text) if text.as_str().contains("\"connection_ack\"") => return Ok(()),
                Message::Close(frame) => {
                    let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                    return Err(format!("connection refused: {reason}").into());
                }
                _ => {}
            }
        }
        Err::<(), Box<dyn Error + Send + Sync>>("closed before connection_ack".into())
    })
    .await;
    acknowledged.map_err(|_| "no connection_ack in time")??;
    socket.send(subscribe_message(1, after)).await?;
    Ok(socket)
}

/// Opens the subscription again after the last cursor, trying for a while (a balancer takes a
/// moment to notice a dead instance); `None`, with the subscriber marked dropped, when it cannot.
async fn reopen(fanout: &Fanout, tally: &mut Subscriber, why: &str, detail: String) -> Option<Socket> {
    if !tally.ended(why, detail) {
        tally.dropped = true;
        return None;
    }
    let mut last_error = String::new();
    for _ in 0..REOPEN_ATTEMPTS {
        match open_subscription(fanout, tally.last_cursor.as_deref()).await {
            Ok(socket) => return Some(socket),
            Err(error) => last_error = error.to_string(),
        }
        tokio::time::sleep(REOPEN_PAUSE).await;
    }
    tally.dropped = true;
    tally.problem(format!("reconnect: {last_error}"));
    None
}

/// One subscriber: records the benchmark events until `stop`.
async fn subscriber(fanout: Arc<Fanout>, mut stop: watch::Receiver<bool>) -> Subscriber {
    let mut tally = Subscriber::default();
    let mut socket = match open_subscription(&fanout, None).await {
        Ok(socket) => socket,
        Err(error) => {
            tally.problem(format!("connect: {error}"));
            fanout.failed.fetch_add(1, Ordering::Relaxed);
            return tally;
        }
    };
    tally.subscribed = true;
    fanout.subscribed.fetch_add(1, Ordering::Relaxed);
    let mut current = 1_u32;
    loop {
        let message = tokio::select! {
            message = socket.next() => message,
            _ = stop.changed() => break,
        };
        let received = unix_micros();
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            // A draining gateway says "reconnect elsewhere and resume"; a gateway that died (or
            // a balancer that lost it) says nothing. Either way, as a client would, open a new
            // connection (through the balancer) and subscribe after the last cursor.
            Some(Ok(Message::Close(Some(frame)))) if u16::from(frame.code) == SERVICE_RESTART => {
                match reopen(
                    &fanout,
                    &mut tally,
                    "closed with 1012",
                    "the gateway is restarting".to_owned(),
                )
                .await
                {
                    Some(reopened) => {
                        socket = reopened;
                        current = 1;
                        continue;
                    }
                    None => break,
                }
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                let detail = match message {
                    Some(Err(error)) => format!("connection: {error}"),
                    _ => "the gateway closed the connection".to_owned(),
                };
                match reopen(&fanout, &mut tally, "connection lost", detail).await {
                    Some(reopened) => {
                        socket = reopened;
                        current = 1;
                        continue;
                    }
                    None => break,
                }
            }
            Some(Ok(_)) => continue,
        };
        tally.messages += 1;
        let Ok(message) = serde_json::from_str::<Value>(text.as_str()) else {
            tally.problem("unreadable message".to_owned());
            continue;
        };
        let for_current = message["id"].as_str() == Some(current.to_string().as_str());
        // A subscription the gateway ended: why, and where to resume.
        let mut resume: Option<Option<String>> = None;
        match message["type"].as_str() {
            Some("next") if for_current => {
                let payload = &message["payload"];
                if let Some(errors) = payload.get("errors").and_then(Value::as_array) {
                    let first = errors.first().unwrap_or(&Value::Null);
                    let code = first.pointer("/extensions/code").and_then(Value::as_str);
                    let after = match code {
                        Some("LAGGED") => first.pointer("/extensions/resumeAfter").and_then(Value::as_str),
                        _ => tally.last_cursor.as_deref(),
                    }
                    .map(str::to_owned);
                    let why = code.unwrap_or("error without a code");
                    if !tally.ended(why, format!("error: {payload}")) {
                        break;
                    }
                    resume = Some(after);
                } else {
                    tally.record(&fanout, &payload["data"]["auditEvents"], received);
                }
            }
            Some("complete") if for_current => {
                if tally.ended("complete", "the gateway completed the subscription".to_owned()) {
                    resume = Some(tally.last_cursor.clone());
                } else {
                    break;
                }
            }
            Some("error") if for_current => {
                tally.problem(format!("error: {}", message["payload"]));
                break;
            }
            Some("ping") => {
                let pong = Message::text(json!({ "type": "pong" }).to_string());
                if socket.send(pong).await.is_err() {
                    tally.dropped = true;
                    break;
                }
            }
            _ => {}
        }
        if let Some(after) = resume {
            current += 1;
            if socket
                .send(subscribe_message(current, after.as_deref()))
                .await
                .is_err()
            {
                tally.dropped = true;
                break;
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
    tally
}

/// What the producer did.
#[derive(Default)]
struct Produced {
    /// Send stamps of the renames that succeeded.
    stamps: HashSet<u64>,
    tally: Tally,
}

/// Renames `organization` to `bench-<unix µs>` `rate` times a second for `seconds`. Each rename
/// runs in its own task, so that a slow commit does not delay the next one.
async fn produce(client: Client, organization: String, rate: u64, seconds: u64) -> Produced {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut renames = tokio::task::JoinSet::new();
    loop {
        ticks.tick().await;
        if Instant::now() >= deadline {
            break;
        }
        let (client, organization) = (client.clone(), organization.clone());
        renames.spawn(async move {
            let stamp = unix_micros();
            let started = Instant::now();
            let outcome = client.rename(&organization, &format!("bench-{stamp}")).await;
            (stamp, started.elapsed(), outcome.map_err(|e| e.to_string()))
        });
    }
    let mut produced = Produced::default();
    while let Some(joined) = renames.join_next().await {
        match joined {
            Ok((stamp, elapsed, Ok(()))) => {
                produced.stamps.insert(stamp);
                produced.tally.latencies_us.push(micros(elapsed));
            }
            Ok((_, _, Err(error))) => produced.tally.fail(&error),
            Err(error) => produced.tally.fail(&error),
        }
    }
    produced
}

/// Waits until `done` holds or `limit` passes; returns whether it held.
async fn wait_for(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// Phase 3: one producer, many live subscribers.
async fn fanout(settings: &Settings, organization: &str) -> Result<()> {
    let (token, _) = settings.admin().await?;
    let wanted = settings.subscribers;
    println!(
        "\nfanout: {wanted} subscribers, {} renames/s for {} s",
        settings.fanout_rate, settings.seconds
    );
    let needed = wanted as u64 + 64;
    let mut limits = vec![("this program", "self".to_owned())];
    if let Some(pid) = settings.pid() {
        limits.push(("the gateway", pid.to_owned()));
    }
    for (who, pid) in limits {
        if let Some(limit) = open_files_limit(&pid)
            && limit < needed
        {
            println!("  warning: {who} may open {limit} files (ulimit -n), fewer than the {needed} needed");
        }
    }
    let rss_before = gateway_rss(settings.pid());

    let fanout = Arc::new(Fanout {
        ws_url: settings.ws_url.clone(),
        token: token.clone(),
        organization: organization.to_owned(),
        handshakes: Semaphore::new(HANDSHAKES),
        subscribed: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        ready: AtomicUsize::new(0),
        delivered: AtomicU64::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    let tasks: Vec<_> = (0..wanted)
        .map(|_| tokio::spawn(subscriber(fanout.clone(), stopped.clone())))
        .collect();
    let all_in = wait_for(SETUP_LIMIT, || {
        fanout.subscribed.load(Ordering::Relaxed) + fanout.failed.load(Ordering::Relaxed) >= wanted
    })
    .await;
    let subscribed = fanout.subscribed.load(Ordering::Relaxed);
    println!(
        "  {subscribed} subscribed in {:.1} s ({} failed{})",
        started.elapsed().as_secs_f64(),
        fanout.failed.load(Ordering::Relaxed),
        if all_in {
            ""
        } else {
            ", the others were still connecting"
        }
    );

    // Warm-up: every subscription must see a warm-up event before the clock starts. A subscription
    // goes live when the gateway has processed `subscribe`, a little after the client sent it, so
    // the warm-up repeats every second until all have seen one.
    let producer = Client::new(&settings.endpoint, Some(token), 8)?;
    let warm_up = Instant::now();
    let all_ready = || fanout.ready.load(Ordering::Relaxed) >= fanout.subscribed.load(Ordering::Relaxed);
    let mut warmed = false;
    while !warmed && warm_up.elapsed() < WARM_UP_LIMIT {
        producer
            .rename(organization, &format!("warmup-{}", unix_micros()))
            .await?;
        warmed = wait_for(Duration::from_secs(1), all_ready).await;
    }
    let ready = fanout.ready.load(Ordering::Relaxed);
    if !warmed {
        println!(
            "  only {ready} of {subscribed} subscribers received the warm-up event within {} s: \
             the others are left out of the figures",
            WARM_UP_LIMIT.as_secs()
        );
    }
    let rss_idle = gateway_rss(settings.pid());

    let sampler = Sampler::start(settings.pid());
    let cpu = CpuClock::start(settings.pid());
    let produced = produce(
        producer,
        organization.to_owned(),
        settings.fanout_rate,
        settings.seconds,
    )
    .await;
    let expected_now = produced.stamps.len() as u64 * ready as u64;
    let drained = wait_for(DRAIN_LIMIT, || {
        fanout.delivered.load(Ordering::Relaxed) >= expected_now
    })
    .await;
    let cpu = cpu.report(settings.pid());
    let rss_during = Sampler::finish(sampler).await;
    let _ = stop.send(true);
    let mut subscribers = Vec::with_capacity(tasks.len());
    for task in tasks {
        subscribers.push(task.await?);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = gateway_rss(settings.pid());

    // Figures: only subscribers that were live (received the warm-up) count.
    let live: Vec<&Subscriber> = subscribers.iter().filter(|s| s.ready).collect();
    let late: Vec<&Subscriber> = subscribers.iter().filter(|s| s.subscribed && !s.ready).collect();
    if !late.is_empty() {
        let silent = late.iter().filter(|s| s.messages == 0).count();
        let events: usize = late.iter().map(|s| s.stamps.len()).sum();
        println!(
            "  not live    {} subscribed but missed the warm-up: {silent} received no message at all, \
             {events} benchmark events reached them",
            late.len()
        );
    }
    let produced_count = produced.stamps.len() as u64;
    let expected = produced_count * live.len() as u64;
    let (mut delivered, mut duplicates, mut unexpected) = (0_u64, 0_u64, 0_u64);
    let mut latencies = Vec::new();
    for s in &live {
        let mut stamps = s.stamps.clone();
        stamps.sort_unstable();
        let raw = stamps.len() as u64;
        stamps.dedup();
        duplicates += raw - stamps.len() as u64;
        let known = stamps
            .iter()
            .filter(|stamp| produced.stamps.contains(stamp))
            .count() as u64;
        delivered += known;
        unexpected += stamps.len() as u64 - known;
        latencies.extend_from_slice(&s.latencies_us);
    }
    let mut ended: BTreeMap<&str, u32> = BTreeMap::new();
    for s in &subscribers {
        for (why, count) in &s.ended {
            *ended.entry(why.as_str()).or_default() += count;
        }
    }
    let ended = if ended.is_empty() {
        "none".to_owned()
    } else {
        let listed: Vec<String> = ended
            .iter()
            .map(|(why, count)| format!("{why} ×{count}"))
            .collect();
        listed.join(", ")
    };
    let dropped = subscribers.iter().filter(|s| s.subscribed && s.dropped).count();
    let problems: u32 = subscribers.iter().map(|s| s.problems).sum();
    let first_problem = subscribers.iter().find_map(|s| s.first_problem.clone());

    let mut commits = produced.tally.latencies_us;
    println!(
        "  produced    {produced_count} renames ({:.1}/s, {} failed); commit latency ms {}",
        produced_count as f64 / settings.seconds as f64,
        produced.tally.failures,
        percentiles(&mut commits)
    );
    println!(
        "  delivered   {delivered} of {expected} expected ({} subscribers × {produced_count}): {} missing{}",
        live.len(),
        expected.saturating_sub(delivered),
        if drained {
            ""
        } else {
            " (the drain timed out after 10 s)"
        }
    );
    println!(
        "  per second  {:.0} events delivered",
        delivered as f64 / settings.seconds as f64
    );
    println!(
        "  anomalies   {duplicates} duplicates, {unexpected} unexpected, {dropped} connections dropped, \
         {problems} other problems"
    );
    println!("  subscriptions ended by the gateway (then resumed after the last cursor): {ended}");
    println!(
        "  delivery latency ms (send → receive)  {}",
        percentiles(&mut latencies)
    );
    println!("  CPU while producing  {cpu}");
    if let Some(rss) = rss_before {
        println!("  gateway before      {rss}");
    }
    if let Some(rss) = rss_idle {
        println!("  gateway subscribed  {rss} ({subscribed} idle subscribers)");
    }
    if let Some(rss) = rss_during {
        println!("  gateway producing   {rss}");
    }
    if let Some(rss) = rss_after {
        println!("  gateway after       {rss} (subscribers gone)");
    }
    if let Some(problem) = first_problem {
        println!("  first problem: {problem}");
    }
    if let Some(failure) = produced.tally.first_failure {
        println!("  first failed rename: {failure}");
    }
    Ok(())
}

fn env_number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .map_err(|_| format!("{name} must be a whole number").into()),
        Err(_) => Ok(default),
    }
}

/// Creates `count` organizations for this run; returns their ids.
async fn create_organizations(admin: &Client, count: usize) -> Result<Vec<String>> {
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let slug = format!("load-audit-{run}-{}-{n}", std::process::id());
        let input = json!({ "input": { "slug": slug, "name": slug } });
        let data = admin.execute(CREATE_ORGANIZATION, &input).await?;
        ids.push(text(&data, "/createOrganization/organization/id")?);
    }
    Ok(ids)
}

#[tokio::main]
async fn main() -> Result<()> {
    let base = std::env::var("PORTCULLIS_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let base = base.trim_end_matches('/').to_owned();
    let ws_url = match base.split_once("://") {
        Some(("http", rest)) => format!("ws://{rest}/graphql"),
        _ => return Err(format!("PORTCULLIS_URL must start with http://, not {base}").into()),
    };
    let phases: Vec<String> = std::env::var("PORTCULLIS_LOAD_PHASES")
        .unwrap_or_else(|_| "mutations,export,fanout".to_owned())
        .split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(unknown) = phases
        .iter()
        .find(|p| !["mutations", "export", "fanout", "refresh"].contains(&p.as_str()))
    {
        return Err(format!(
            "PORTCULLIS_LOAD_PHASES: unknown phase {unknown} (mutations, export, fanout, refresh)"
        )
        .into());
    }
    let settings = Settings {
        endpoint: format!("{base}/graphql"),
        base,
        ws_url,
        email: std::env::var("PORTCULLIS_ADMIN_EMAIL").map_err(|_| "set PORTCULLIS_ADMIN_EMAIL")?,
        password: std::env::var("PORTCULLIS_ADMIN_PASSWORD").map_err(|_| "set PORTCULLIS_ADMIN_PASSWORD")?,
        connections: env_number("PORTCULLIS_LOAD_CONNECTIONS", 16)?.clamp(1, 1024) as usize,
        seconds: env_number("PORTCULLIS_LOAD_SECONDS", 10)?.clamp(1, 60),
        export_events: env_number("PORTCULLIS_EXPORT_EVENTS", 1_000_000)?,
        export_seconds: env_number("PORTCULLIS_EXPORT_SECONDS", 300)?.clamp(1, 1800),
        subscribers: env_number("PORTCULLIS_SUBSCRIBERS", 1_000)?.clamp(1, 100_000) as usize,
        fanout_rate: env_number("PORTCULLIS_FANOUT_RATE", 20)?.clamp(1, 1000),
        gateway_pid: std::env::var("PORTCULLIS_GATEWAY_PID").ok(),
    };

    let (_, admin) = settings.admin().await?;
    // One organization per connection, and the fanout producer's.
    let organizations = create_organizations(&admin, settings.connections + 1).await?;
    let (producer, renamed) = organizations.split_last().ok_or("no organization was created")?;
    if let Some(rss) = gateway_rss(settings.pid()) {
        println!("gateway before load: {rss}");
    }
    for phase in &phases {
        match phase.as_str() {
            "mutations" => mutations(&settings, renamed).await?,
            "export" => export(&settings, renamed).await?,
            "refresh" => refresh(&settings).await?,
            _ => fanout(&settings, producer).await?,
        }
    }
    if let Some(rss) = gateway_rss(settings.pid()) {
        println!("\ngateway after load: {rss}");
    }
    Ok(())
}
