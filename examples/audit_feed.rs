//! Follows the gateway's audit log live: logs in, subscribes to `auditEvents` over WebSocket
//! (`graphql-transport-ws`) and prints one line per event. A starting point for shipping the log to
//! a SIEM, a chat channel or a file.
//!
//! ```sh
//! PORTCULLIS_EMAIL=admin@example.com PORTCULLIS_PASSWORD=change-me-please \
//!     cargo run --example audit_feed
//! # only policy and role changes, starting after a cursor printed by an earlier run:
//! PORTCULLIS_EMAIL=admin@example.com PORTCULLIS_PASSWORD=change-me-please \
//!     PORTCULLIS_AUDIT_FILTER_ACTIONS='policy.*,role.*' PORTCULLIS_AUDIT_AFTER=<cursor> \
//!     cargo run --example audit_feed
//! ```
//!
//! Environment:
//!
//! | Variable                          | Default                 | Meaning                                 |
//! |-----------------------------------|-------------------------|-----------------------------------------|
//! | `PORTCULLIS_URL`                  | `http://127.0.0.1:8080` | Base URL of the gateway                 |
//! | `PORTCULLIS_EMAIL`                | (required)              | The account to follow the log as        |
//! | `PORTCULLIS_PASSWORD`             | (required)              | Its password                            |
//! | `PORTCULLIS_AUDIT_FILTER_ACTIONS` | unset: every action     | Comma list of actions, or `policy.*`    |
//! | `PORTCULLIS_AUDIT_ORGANIZATION`   | unset: the whole log    | Follow this organization's log only     |
//! | `PORTCULLIS_AUDIT_OWN`            | `false`                 | `true`: only the account's own events   |
//! | `PORTCULLIS_AUDIT_AFTER`          | unset: from now on      | Cursor to resume after (replayed first) |
//!
//! Each event prints as one line on standard output; diagnostics go to standard error:
//!
//! ```text
//! 2026-11-26T10:53:16.450888+00:00 organization.updated "Ada" → organization:01a2… "Acme" cursor=AAAAAAAAAAc
//! ```
//!
//! (Display names are quoted and escaped: they are user input, and must not forge lines.)
//!
//! What it may follow is what the account may read: the whole log needs `audit.read` on the
//! gateway, one organization's log (`PORTCULLIS_AUDIT_ORGANIZATION`) `audit.read` there (its owners,
//! administrators and auditors); anyone may follow their own events (`PORTCULLIS_AUDIT_OWN=true`).
//!
//! Keeping its place: every event comes with a cursor, and the client remembers the last one it
//! printed. When the connection drops, the gateway restarts, or the gateway ends the subscription
//! with `LAGGED` (this client read too slowly), it reconnects with exponential backoff (0.5 s
//! doubling to 30 s, with jitter) and subscribes again with `after` set to that cursor (or to the
//! `extensions.resumeAfter` of a `LAGGED` error, which is never earlier): the gateway replays what
//! was committed in between, oldest first, then goes live again, so no event is missed or printed
//! twice. On Ctrl-C it prints the cursor to pass as `PORTCULLIS_AUDIT_AFTER` next time. A real
//! shipper would store that cursor durably once each event is safely delivered.
//!
//! Access tokens are short-lived, but an open subscription outlives its token (the gateway checks the
//! session instead, every 15 s). Before each reconnection the client refreshes the token if it is
//! about to expire, and logs in again if the session was revoked. Wrong credentials, a filter the
//! gateway rejects and missing permission stop the client instead of retrying.

use std::error::Error;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;
type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const LOGIN: &str = "mutation($email: String!, $password: String!) {
  login(input: { email: $email, password: $password }) { accessToken accessTokenExpiresAt refreshToken } }";
const REFRESH: &str = "mutation($refreshToken: String!) {
  refreshSession(input: { refreshToken: $refreshToken }) { accessToken accessTokenExpiresAt refreshToken } }";
const SUBSCRIBE: &str = "subscription($after: String, $filter: AuditEventFilter, $own: Boolean!) {
  auditEvents(after: $after, filter: $filter, own: $own) {
    cursor
    node { id occurredAt action outcome actor { type id displayName } targets { type id displayName } } } }";

const NEWEST: &str = "query($filter: AuditEventFilter) {
  auditEvents(first: 1, filter: $filter) { edges { cursor } } }";
const NEWEST_OWN: &str = "query($filter: AuditEventFilter) {
  viewer { auditEvents(first: 1, filter: $filter) { edges { cursor } } } }";

/// How long to wait for the socket, `connection_ack`, or an HTTP answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The client pings this often when the line is quiet ...
const PING_EVERY: Duration = Duration::from_secs(30);
/// ... and gives the connection up when it has heard nothing at all for this long.
const SILENCE_LIMIT: Duration = Duration::from_secs(75);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Refresh the access token when it expires sooner than this.
const TOKEN_MARGIN: TimeDelta = TimeDelta::seconds(30);

/// Credentials, and the tokens they last produced.
struct Credentials {
    http: reqwest::Client,
    endpoint: String,
    email: String,
    password: String,
    tokens: Option<Tokens>,
}

struct Tokens {
    access: String,
    expires_at: DateTime<Utc>,
    refresh: String,
}

/// Why following stopped.
enum Stop {
    /// Try again after a backoff: the connection dropped, the gateway is restarting, …
    Retry(String),
    /// Like `Retry`, but the HTTP request was never sent (no connection).
    Unreachable(String),
    /// `LAGGED`: subscribe again at once (`after` already holds the resume point).
    Lagged,
    /// The gateway no longer accepts the token or its session: log in again.
    Reauthenticate(String),
    /// Retrying cannot help: wrong credentials, a rejected filter, missing permission.
    Fatal(String),
}

impl Credentials {
    /// A valid access token: the current one, a refreshed one, or one from a new login.
    async fn access_token(&mut self) -> std::result::Result<String, Stop> {
        if let Some(tokens) = self.tokens.take() {
            if tokens.expires_at - Utc::now() > TOKEN_MARGIN {
                let access = tokens.access.clone();
                self.tokens = Some(tokens);
                return Ok(access);
            }
            // A refresh token works once: presenting it twice ends the session (and is recorded as
            // `session.refresh_reused`), so it is forgotten unless the request never left.
            match self
                .call(
                    REFRESH,
                    json!({ "refreshToken": tokens.refresh }),
                    "/refreshSession",
                )
                .await
            {
                Ok(tokens) => {
                    let access = tokens.access.clone();
                    self.tokens = Some(tokens);
                    return Ok(access);
                }
                Err(Stop::Unreachable(reason)) => {
                    self.tokens = Some(tokens);
                    return Err(Stop::Retry(reason));
                }
                Err(Stop::Reauthenticate(reason) | Stop::Fatal(reason)) => {
                    eprintln!("refresh refused ({reason}); logging in again");
                }
                Err(other) => return Err(other),
            }
        }
        let variables = json!({ "email": self.email, "password": self.password });
        let tokens = match self.call(LOGIN, variables, "/login").await {
            Ok(tokens) => tokens,
            // Wrong credentials or a disabled account: retrying cannot help.
            Err(Stop::Reauthenticate(reason)) => return Err(Stop::Fatal(format!("login: {reason}"))),
            Err(other) => return Err(other),
        };
        let access = tokens.access.clone();
        self.tokens = Some(tokens);
        Ok(access)
    }

    /// Runs one GraphQL operation over HTTP and returns its `data`.
    async fn execute(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> std::result::Result<Value, Stop> {
        let mut request = self
            .http
            .post(&self.endpoint)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                Stop::Unreachable(e.to_string())
            } else {
                Stop::Retry(e.to_string())
            }
        })?;
        let body: Value = response.json().await.map_err(|e| Stop::Retry(e.to_string()))?;
        if let Some(errors) = body.get("errors").and_then(Value::as_array) {
            return Err(classify(errors));
        }
        Ok(body.get("data").cloned().unwrap_or(Value::Null))
    }

    /// Runs `login` or `refreshSession` and reads the tokens at `at`.
    async fn call(&self, query: &str, variables: Value, at: &str) -> std::result::Result<Tokens, Stop> {
        let data = self
            .execute(query, variables, None)
            .await
            .map_err(|stop| match stop {
                Stop::Retry(reason) => Stop::Retry(format!("{at}: {reason}")),
                Stop::Unreachable(reason) => Stop::Unreachable(format!("{at}: {reason}")),
                other => other,
            })?;
        let tokens = data.pointer(at).unwrap_or(&Value::Null);
        let field = |name: &str| tokens.get(name).and_then(Value::as_str);
        match (
            field("accessToken"),
            field("accessTokenExpiresAt"),
            field("refreshToken"),
        ) {
            (Some(access), Some(expires_at), Some(refresh)) => Ok(Tokens {
                access: access.to_owned(),
                expires_at: expires_at
                    .parse()
                    .map_err(|_| Stop::Retry(format!("{at}: unreadable accessTokenExpiresAt")))?,
                refresh: refresh.to_owned(),
            }),
            _ => Err(Stop::Retry(format!("{at}: no tokens in the response"))),
        }
    }
}

/// Sorts GraphQL errors into what to do next.
fn classify(errors: &[Value]) -> Stop {
    let message = errors
        .iter()
        .map(|e| e["message"].as_str().unwrap_or("(no message)"))
        .collect::<Vec<_>>()
        .join("; ");
    let codes: Vec<&str> = errors
        .iter()
        .filter_map(|e| e.pointer("/extensions/code").and_then(Value::as_str))
        .collect();
    if codes.contains(&"LAGGED") {
        Stop::Lagged
    } else if codes.contains(&"UNAUTHENTICATED") {
        Stop::Reauthenticate(message)
    } else if codes.iter().any(|c| ["FORBIDDEN", "BAD_USER_INPUT"].contains(c))
        || (codes.is_empty() && !message.is_empty())
    {
        // No code at all: a parse or validation error of the operation itself.
        Stop::Fatal(message)
    } else {
        Stop::Retry(message)
    }
}

/// The `filter` argument, from the environment.
fn filter() -> Value {
    let mut filter = serde_json::Map::new();
    let actions: Vec<String> = std::env::var("PORTCULLIS_AUDIT_FILTER_ACTIONS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if !actions.is_empty() {
        filter.insert("actions".to_owned(), json!(actions));
    }
    if let Ok(organization) = std::env::var("PORTCULLIS_AUDIT_ORGANIZATION")
        && !organization.trim().is_empty()
    {
        filter.insert("organizationId".to_owned(), json!(organization.trim()));
    }
    Value::Object(filter)
}

/// One line per event: `occurredAt action actor → targets cursor=…`.
fn print_event(edge: &Value) {
    let node = &edge["node"];
    let name = |v: &Value| v["displayName"].as_str().map(str::to_owned);
    let actor = &node["actor"];
    let actor = match name(actor) {
        Some(display) => format!("{display:?}"),
        None => actor["id"].as_str().map_or_else(
            || actor["type"].as_str().unwrap_or("?").to_lowercase(),
            str::to_owned,
        ),
    };
    let targets: Vec<String> = node["targets"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|t| {
            let kind = t["type"].as_str().unwrap_or("?");
            let id = t["id"].as_str().unwrap_or("?");
            match name(t) {
                Some(display) => format!("{kind}:{id} {display:?}"),
                None => format!("{kind}:{id}"),
            }
        })
        .collect();
    let outcome = match node["outcome"].as_str() {
        Some("SUCCESS") | None => String::new(),
        Some(other) => format!(" [{other}]"),
    };
    println!(
        "{} {}{outcome} {actor} → {} cursor={}",
        node["occurredAt"].as_str().unwrap_or("?"),
        node["action"].as_str().unwrap_or("?"),
        if targets.is_empty() {
            "-".to_owned()
        } else {
            targets.join(", ")
        },
        edge["cursor"].as_str().unwrap_or("?"),
    );
}

async fn send(socket: &mut Socket, message: Value) -> std::result::Result<(), Stop> {
    socket
        .send(Message::text(message.to_string()))
        .await
        .map_err(|e| Stop::Retry(format!("send: {e}")))
}

/// Opens a socket, authenticates, and waits for `connection_ack`.
async fn connect(url: &str, token: &str) -> std::result::Result<Socket, Stop> {
    let mut request = url
        .into_client_request()
        .map_err(|e| Stop::Fatal(format!("{url}: {e}")))?;
    request.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request))
        .await
        .map_err(|_| Stop::Retry("connect: timed out".to_owned()))?
        .map_err(|e| Stop::Retry(format!("connect: {e}")))?;
    let init =
        json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    send(&mut socket, init).await?;
    let waited = tokio::time::timeout(CONNECT_TIMEOUT, async {
        while let Some(message) = socket.next().await {
            match message.map_err(|e| Stop::Retry(format!("connection_init: {e}")))? {
                Message::Text(text) => {
                    let message: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    match message["type"].as_str() {
                        Some("connection_ack") => return Ok(()),
                        Some("ping") => send(&mut socket, json!({ "type": "pong" })).await?,
                        _ => {}
                    }
                }
                // The gateway refuses credentials by closing the socket with the reason.
                Message::Close(frame) => {
                    let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                    return Err(Stop::Reauthenticate(format!("connection refused: {reason}")));
                }
                _ => {}
            }
        }
        Err(Stop::Retry("closed during connection_init".to_owned()))
    })
    .await;
    match waited {
        Ok(Ok(())) => Ok(socket),
        Ok(Err(stop)) => Err(stop),
        Err(_) => Err(Stop::Retry("no connection_ack in time".to_owned())),
    }
}

/// One connection: subscribes after `after` and prints events until something ends it. `after`
/// always holds the cursor to resume from.
async fn follow(url: &str, token: &str, arguments: &Value, after: &mut Option<String>) -> Stop {
    let mut socket = match connect(url, token).await {
        Ok(socket) => socket,
        Err(stop) => return stop,
    };
    let mut variables = arguments.clone();
    variables["after"] = json!(after);
    let subscribe = json!({
        "id": "1",
        "type": "subscribe",
        "payload": { "query": SUBSCRIBE, "variables": variables },
    });
    if let Err(stop) = send(&mut socket, subscribe).await {
        return stop;
    }
    eprintln!(
        "following the audit log (after {})",
        after.as_deref().unwrap_or("now")
    );
    let stop = read(&mut socket, after).await;
    // Best effort: tell the gateway we are leaving.
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
    stop
}

async fn read(socket: &mut Socket, after: &mut Option<String>) -> Stop {
    let mut pings = tokio::time::interval(PING_EVERY);
    pings.tick().await;
    let mut heard = tokio::time::Instant::now();
    loop {
        let message = tokio::select! {
            message = socket.next() => message,
            _ = pings.tick() => {
                if heard.elapsed() > SILENCE_LIMIT {
                    return Stop::Retry("the connection went silent".to_owned());
                }
                if let Err(stop) = send(socket, json!({ "type": "ping" })).await {
                    return stop;
                }
                continue;
            }
        };
        heard = tokio::time::Instant::now();
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                let reason = frame
                    .map(|f| format!("{} {}", f.code, f.reason))
                    .unwrap_or_default();
                return Stop::Retry(format!("closed by the gateway {reason}"));
            }
            Some(Ok(_)) => continue, // WebSocket-level ping/pong frames are answered by tungstenite
            Some(Err(error)) => return Stop::Retry(error.to_string()),
            None => return Stop::Retry("connection closed".to_owned()),
        };
        let message: Value = match serde_json::from_str(text.as_str()) {
            Ok(message) => message,
            Err(error) => return Stop::Retry(format!("unreadable message: {error}")),
        };
        match message["type"].as_str() {
            Some("next") => {
                let payload = &message["payload"];
                if let Some(errors) = payload.get("errors").and_then(Value::as_array) {
                    let stop = classify(errors);
                    if let Stop::Lagged = stop {
                        // The gateway's resume point is at or after the last event we printed:
                        // the events in between did not match the filter.
                        let resume = errors
                            .iter()
                            .find_map(|e| e.pointer("/extensions/resumeAfter").and_then(Value::as_str));
                        if let Some(resume) = resume {
                            *after = Some(resume.to_owned());
                        }
                    }
                    return stop;
                }
                let edge = &payload["data"]["auditEvents"];
                if edge.is_object() {
                    print_event(edge);
                    if let Some(cursor) = edge["cursor"].as_str() {
                        *after = Some(cursor.to_owned());
                    }
                }
            }
            Some("error") => {
                let errors = message["payload"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                return classify(errors);
            }
            Some("complete") => return Stop::Retry("the gateway ended the subscription".to_owned()),
            Some("ping") => {
                if let Err(stop) = send(socket, json!({ "type": "pong" })).await {
                    return stop;
                }
            }
            _ => {}
        }
    }
}

/// The cursor of the newest event the subscription could deliver (same scope: the organization, or
/// the account's own events), if there is one.
async fn newest_cursor(
    credentials: &Credentials,
    token: &str,
    arguments: &Value,
) -> std::result::Result<Option<String>, Stop> {
    let (query, at) = if arguments["own"] == Value::Bool(true) {
        (NEWEST_OWN, "/viewer/auditEvents/edges/0/cursor")
    } else {
        (NEWEST, "/auditEvents/edges/0/cursor")
    };
    let scope = json!({ "organizationId": arguments["filter"]["organizationId"] });
    let data = credentials
        .execute(query, json!({ "filter": scope }), Some(token))
        .await?;
    Ok(data.pointer(at).and_then(Value::as_str).map(str::to_owned))
}

/// Up to ±25 % of `delay`, so that many clients do not reconnect in step.
fn jitter(delay: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let factor = 0.75 + f64::from(nanos % 1_000) / 2_000.0;
    delay.mul_f64(factor)
}

/// Follows the log until a fatal error; `after` is where to resume.
async fn run(mut credentials: Credentials, url: &str, after: &mut Option<String>) -> Result<()> {
    let own = match std::env::var("PORTCULLIS_AUDIT_OWN").as_deref().map(str::trim) {
        Err(_) | Ok("" | "false" | "0") => false,
        Ok("true" | "1") => true,
        Ok(other) => return Err(format!("PORTCULLIS_AUDIT_OWN must be true or false, not {other}").into()),
    };
    let arguments = json!({ "filter": filter(), "own": own });
    // Without a cursor to start from, anchor at the newest event in scope: the feed then never
    // depends on "now", and a reconnection before the first event loses nothing.
    let mut anchored = after.is_some();
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = tokio::time::Instant::now();
        let before = after.clone();
        let stop = match credentials.access_token().await {
            Ok(token) if !anchored => match newest_cursor(&credentials, &token, &arguments).await {
                Ok(cursor) => {
                    *after = cursor;
                    anchored = true;
                    continue;
                }
                Err(stop) => stop,
            },
            Ok(token) => follow(url, &token, &arguments, after).await,
            Err(stop) => stop,
        };
        // A connection that delivered events or lasted a while was healthy: start over.
        if *after != before || started.elapsed() > BACKOFF_MAX {
            backoff = BACKOFF_MIN;
        }
        match stop {
            Stop::Fatal(reason) => return Err(reason.into()),
            Stop::Reauthenticate(reason) => {
                // A revoked or expired session: log in again (wrong credentials then fail at login).
                let delay = jitter(backoff);
                eprintln!("{reason}; logging in again in {:.1} s", delay.as_secs_f64());
                credentials.tokens = None;
                tokio::time::sleep(delay).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Stop::Lagged => {
                eprintln!(
                    "fell behind (LAGGED); resuming after {}",
                    after.as_deref().unwrap_or("now")
                );
            }
            Stop::Retry(reason) | Stop::Unreachable(reason) => {
                let delay = jitter(backoff);
                eprintln!("{reason}; reconnecting in {:.1} s", delay.as_secs_f64());
                tokio::time::sleep(delay).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let base = std::env::var("PORTCULLIS_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let base = base.trim_end_matches('/');
    // This example is built without TLS (the crate's dev-dependencies leave it out); in your own
    // client enable reqwest's and tokio-tungstenite's `rustls` features and map https to wss.
    let ws_url = match base.split_once("://") {
        Some(("http", rest)) => format!("ws://{rest}/graphql"),
        _ => return Err(format!("PORTCULLIS_URL must start with http:// (no TLS here), not {base}").into()),
    };
    let credentials = Credentials {
        http: reqwest::Client::builder().timeout(CONNECT_TIMEOUT).build()?,
        endpoint: format!("{base}/graphql"),
        email: std::env::var("PORTCULLIS_EMAIL").map_err(|_| "set PORTCULLIS_EMAIL")?,
        password: std::env::var("PORTCULLIS_PASSWORD").map_err(|_| "set PORTCULLIS_PASSWORD")?,
        tokens: None,
    };
    let mut after = std::env::var("PORTCULLIS_AUDIT_AFTER")
        .ok()
        .filter(|a| !a.trim().is_empty());
    let outcome = tokio::select! {
        outcome = run(credentials, &ws_url, &mut after) => outcome,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    if let Some(cursor) = &after {
        eprintln!("to resume where this run stopped: PORTCULLIS_AUDIT_AFTER={cursor}");
    }
    outcome
}
