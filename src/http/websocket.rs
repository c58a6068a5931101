//! `/graphql` over WebSocket: `graphql-transport-ws` (and the legacy `graphql-ws`), with every
//! operation authenticated as of now.
//!
//! The client authenticates in `connection_init` with `{"authorization": "Bearer …"}` (or with the
//! upgrade request's own `Authorization` header). The connection keeps that credential and checks
//! it again, through the same path as an HTTP request, before every operation it starts, whenever
//! this process revokes a session or key or changes an account, and every half second (so that a
//! revocation on another instance ends it within a second). A credential no longer live, an
//! access token expired included, closes the connection with 4403 and ends all its operations. A
//! client keeps a connection past its access token's expiry by sending, before it, a `ping` whose
//! payload is `{"authorization": "Bearer <fresh token>"}` for the same user; the `pong` confirms it.

mod clients;
mod messages;

use std::collections::HashMap;
use std::hash::BuildHasher as _;
use std::time::Duration;

use async_graphql::{Request as GqlRequest, Response as GqlResponse};
use axum::extract::ws::{Message, WebSocket};
use axum::extract::{FromRequestParts as _, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse as _, Response};
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use serde_json::Value;
use tokio::time::{Instant, MissedTickBehavior};

pub(crate) use self::clients::Clients;
use self::messages::{ClientMessage, Protocol, code};
use super::drain::{RESTART_CODE, RESTART_REASON, Stage};
use super::{HttpState, principal};
use crate::app::App;
use crate::db::Id;
use crate::graphql::{RequestContext, request_data};
use crate::identity::authenticate::authenticate;
use crate::identity::live_credentials::TRUSTED_FOR;
use crate::identity::{Actor, ClientInfo, Principal};

/// Read and write buffer of each connection: GraphQL messages are small, and tungstenite's
/// 128 KiB defaults would cost every idle live-feed connection a quarter of a megabyte.
/// How long a closing connection waits for the peer's close frame.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(1);
const BUFFER_BYTES: usize = 8 * 1024;

/// Upgrades `GET /graphql` to a WebSocket, unless the client already holds as many as allowed.
pub(crate) async fn upgrade(state: HttpState, mut parts: Parts) -> Response {
    if state.drain.stage() == Stage::Closing {
        return (StatusCode::SERVICE_UNAVAILABLE, RESTART_REASON).into_response();
    }
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade.protocols(messages::PROTOCOLS),
        Err(rejection) => return rejection.into_response(),
    };
    let Some(protocol) = upgrade
        .selected_protocol()
        .and_then(|name| Protocol::from_name(name.as_bytes()))
    else {
        return (
            StatusCode::BAD_REQUEST,
            "offer the graphql-transport-ws (or graphql-ws) subprotocol",
        )
            .into_response();
    };
    let client = principal::client_info(&parts, &state.app.config);
    let config = state.app.config.clone();
    let address = client.ip.clone().unwrap_or_default();
    let Some(seat) = state.sockets.seat(address, config.ws_max_connections_per_client) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many open WebSockets from this client",
        )
            .into_response();
    };
    let header_credential = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(messages::credential_from);
    upgrade
        .read_buffer_size(BUFFER_BYTES)
        .write_buffer_size(BUFFER_BYTES)
        .max_message_size(config.max_body_bytes)
        .on_upgrade(move |socket| async move {
            let connection = Connection {
                state,
                protocol,
                client,
                header_credential,
                phase: Phase::AwaitingInit,
                operations: HashMap::new(),
            };
            connection.serve(socket).await;
            drop(seat);
        })
}

/// Where the handshake stands.
enum Phase {
    AwaitingInit,
    /// Acknowledged, anonymous or with the credential to check again.
    Ready(Option<Credential>),
}

/// The credential a connection acts with (deliberately not `Debug`).
struct Credential {
    secret: String,
    user_id: Id,
}

/// How a connection ends: with a close frame, or because the peer is gone.
enum End {
    Close(u16, String),
    Gone,
}

impl End {
    fn close(code: u16, reason: impl Into<String>) -> Self {
        Self::Close(code, reason.into())
    }
}

/// The outcome of checking a connection's credential again.
#[expect(
    clippy::large_enum_variant,
    reason = "one at a time per connection, consumed at once; boxing would cost an allocation per check"
)]
enum Check {
    /// Still live: the actor as of now (none for an anonymous connection).
    Live(Option<Actor>),
    /// No longer live, and why.
    Refused(String),
    /// The check could not be made (e.g. the database is unavailable).
    Unavailable,
}

struct Connection {
    state: HttpState,
    protocol: Protocol,
    client: ClientInfo,
    /// The credential of the upgrade request, used when `connection_init` names none.
    header_credential: Option<String>,
    phase: Phase,
    /// Running operations by client-chosen id.
    operations: HashMap<String, BoxStream<'static, GqlResponse>>,
}

impl Connection {
    async fn serve(mut self, mut socket: WebSocket) {
        let config = self.state.app.config.clone();
        let init_deadline = tokio::time::sleep(Duration::from_millis(config.ws_init_timeout_ms));
        tokio::pin!(init_deadline);
        let mut revocations = self.state.app.credentials.revocations();
        let mut revocations_open = true;
        let period = TRUSTED_FOR.to_std().unwrap_or(Duration::from_millis(500));
        // Spread the checks of connections opened together over the period.
        let mut recheck = tokio::time::interval_at(Instant::now() + jitter(period), period);
        recheck.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let keepalive_period = Duration::from_secs(config.ws_keepalive_seconds.max(1));
        let mut keepalive = tokio::time::interval_at(Instant::now() + keepalive_period, keepalive_period);
        let keepalive_on = config.ws_keepalive_seconds > 0;
        let mut heard_since_ping = true;
        let mut drain = self.state.drain.watch();
        let closing = async move {
            // The drain outlives every connection (the state holds it), so this ends only there.
            let _ = drain.wait_for(|stage| *stage == Stage::Closing).await;
        };
        tokio::pin!(closing);
        let end = loop {
            let awaiting_init = matches!(self.phase, Phase::AwaitingInit);
            let holds_credential = matches!(self.phase, Phase::Ready(Some(_)));
            let step = tokio::select! {
                incoming = socket.recv() => {
                    heard_since_ping = true;
                    match incoming {
                        Some(Ok(Message::Text(text))) => self.on_message(&mut socket, text.as_bytes()).await,
                        Some(Ok(Message::Binary(bytes))) => self.on_message(&mut socket, &bytes).await,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                        Some(Ok(Message::Close(_)) | Err(_)) | None => Err(End::Gone),
                    }
                }
                (id, response) = next_response(&mut self.operations) => {
                    self.on_response(&mut socket, id, response).await
                }
                () = &mut init_deadline, if awaiting_init => {
                    Err(End::close(code::INIT_TIMEOUT, "Connection initialisation timeout"))
                }
                changed = revocations.changed(), if holds_credential && revocations_open => {
                    match changed {
                        Ok(()) => self.recheck().await,
                        Err(_) => {
                            revocations_open = false;
                            Ok(())
                        }
                    }
                }
                _ = recheck.tick(), if holds_credential => self.recheck().await,
                () = &mut closing => Err(End::close(RESTART_CODE, RESTART_REASON)),
                _ = keepalive.tick(), if keepalive_on => {
                    if heard_since_ping {
                        heard_since_ping = false;
                        send(&mut socket, Message::Ping(Default::default())).await
                    } else {
                        Err(End::Gone) // no answer since the last ping: the peer is gone
                    }
                }
            };
            if let Err(end) = step {
                break end;
            }
        };
        if let End::Close(code, reason) = end {
            tracing::debug!(code, reason = %reason, "closing a WebSocket");
            if send(&mut socket, messages::close(code, &reason)).await.is_ok() {
                // The closing handshake: wait (briefly) for the peer's close, discarding what it
                // sent meanwhile. Dropping a socket with unread data resets the connection, and
                // the reset can overtake the close frame, losing the client its close code.
                let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
                    while let Some(Ok(message)) = socket.recv().await {
                        if matches!(message, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
            }
        }
    }

    async fn on_message(&mut self, socket: &mut WebSocket, bytes: &[u8]) -> Result<(), End> {
        let Some(message) = ClientMessage::parse(bytes) else {
            return Err(End::close(code::BAD_REQUEST, "Invalid message received"));
        };
        match message {
            ClientMessage::ConnectionInit { payload } => self.on_init(socket, payload).await,
            ClientMessage::Subscribe { id, payload } => self.on_subscribe(socket, id, payload).await,
            ClientMessage::Complete { id } => {
                if self.operations.remove(&id).is_some() {
                    send(socket, messages::text("complete", Some(&id), None::<()>)).await?;
                }
                Ok(())
            }
            ClientMessage::ConnectionTerminate {} => Err(End::close(code::NORMAL, "")),
            ClientMessage::Ping { payload } => self.on_ping(socket, payload).await,
            ClientMessage::Pong {} => Ok(()),
        }
    }

    async fn on_init(&mut self, socket: &mut WebSocket, payload: Option<Value>) -> Result<(), End> {
        if !matches!(self.phase, Phase::AwaitingInit) {
            return Err(End::close(
                code::TOO_MANY_INIT,
                "Too many initialisation requests",
            ));
        }
        let secret = match messages::payload_credential(payload.as_ref()) {
            Ok(Some(secret)) => Some(secret),
            Ok(None) => self.header_credential.take(),
            Err(()) => return self.refuse(socket, "invalid credential").await,
        };
        let credential = match secret {
            None => None,
            Some(secret) => match check_credential(&self.state.app, &self.client, &secret).await {
                Check::Live(Some(actor)) => Some(Credential {
                    secret,
                    user_id: actor.user_id(),
                }),
                // Only blank text, which `credential_from` already turned into none.
                Check::Live(None) => None,
                Check::Refused(reason) => return self.refuse(socket, &reason).await,
                Check::Unavailable => return Err(End::close(code::INTERNAL, "internal error")),
            },
        };
        self.phase = Phase::Ready(credential);
        send(socket, messages::text("connection_ack", None, None::<()>)).await
    }

    /// Refuses credentials at `connection_init`: 4403 (legacy clients are told first).
    async fn refuse(&mut self, socket: &mut WebSocket, reason: &str) -> Result<(), End> {
        if self.protocol == Protocol::Legacy {
            let error = serde_json::json!({ "message": reason });
            send(socket, messages::text("connection_error", None, Some(error))).await?;
        }
        Err(End::close(code::FORBIDDEN, reason))
    }

    async fn on_subscribe(&mut self, socket: &mut WebSocket, id: String, payload: Value) -> Result<(), End> {
        if matches!(self.phase, Phase::AwaitingInit) {
            return Err(End::close(code::UNAUTHORIZED, "Unauthorized"));
        }
        if self.operations.contains_key(&id) {
            return Err(End::close(
                code::SUBSCRIBER_EXISTS,
                format!("Subscriber for {id} already exists"),
            ));
        }
        let Ok(mut request) = serde_json::from_value::<GqlRequest>(payload) else {
            return Err(End::close(code::BAD_REQUEST, "Invalid message received"));
        };
        let max = self.state.app.config.ws_max_operations;
        if self.operations.len() >= max {
            let message = format!("at most {max} operations may run at once on one connection");
            return send(socket, messages::operation_error(&id, &message, "RATE_LIMITED")).await;
        }
        let principal = match self.check().await {
            Check::Live(Some(actor)) => Principal::Authenticated(actor),
            Check::Live(None) => Principal::ANONYMOUS,
            Check::Refused(reason) => return Err(End::close(code::FORBIDDEN, reason)),
            Check::Unavailable => {
                return send(
                    socket,
                    messages::operation_error(&id, "internal error", "INTERNAL"),
                )
                .await;
            }
        };
        request.data = request_data(RequestContext {
            app: self.state.app.clone(),
            principal,
            client: self.client.clone(),
        });
        if let Some(document) = self.state.documents.parse(&request.query) {
            request.set_parsed_query(document);
        }
        let stream = self.state.schema.execute_stream(request);
        self.operations.insert(id, stream);
        Ok(())
    }

    /// `ping`, optionally carrying a fresh credential for the same user (before the old one expires).
    async fn on_ping(&mut self, socket: &mut WebSocket, payload: Option<Value>) -> Result<(), End> {
        let fresh = match messages::payload_credential(payload.as_ref()) {
            Ok(fresh) => fresh,
            Err(()) => return Err(End::close(code::FORBIDDEN, "invalid credential")),
        };
        if let Some(secret) = fresh {
            let user_id = match &self.phase {
                Phase::AwaitingInit => {
                    return Err(End::close(code::UNAUTHORIZED, "Unauthorized"));
                }
                Phase::Ready(None) => {
                    return Err(End::close(
                        code::FORBIDDEN,
                        "an anonymous connection takes no credential: connect again with it",
                    ));
                }
                Phase::Ready(Some(credential)) => credential.user_id,
            };
            match check_credential(&self.state.app, &self.client, &secret).await {
                Check::Live(Some(actor)) if actor.user_id() == user_id => {
                    self.phase = Phase::Ready(Some(Credential { secret, user_id }));
                }
                Check::Live(_) => {
                    return Err(End::close(code::FORBIDDEN, "the credential is another user's"));
                }
                Check::Refused(reason) => return Err(End::close(code::FORBIDDEN, reason)),
                Check::Unavailable => return Err(End::close(code::INTERNAL, "internal error")),
            }
        }
        send(socket, messages::text("pong", None, None::<()>)).await
    }

    async fn on_response(
        &mut self,
        socket: &mut WebSocket,
        id: String,
        response: Option<GqlResponse>,
    ) -> Result<(), End> {
        match response {
            Some(response) => {
                let kind = match self.protocol {
                    Protocol::TransportWs => "next",
                    Protocol::Legacy => "data",
                };
                send(socket, messages::text(kind, Some(&id), Some(response))).await
            }
            None => {
                self.operations.remove(&id);
                send(socket, messages::text("complete", Some(&id), None::<()>)).await
            }
        }
    }

    /// The periodic (or woken) check: a credential no longer live ends the connection; one that
    /// cannot be checked right now is checked again next time.
    async fn recheck(&mut self) -> Result<(), End> {
        match self.check().await {
            Check::Live(_) => Ok(()),
            Check::Refused(reason) => Err(End::close(code::FORBIDDEN, reason)),
            Check::Unavailable => Ok(()),
        }
    }

    /// The connection's credential checked as of now.
    async fn check(&mut self) -> Check {
        let Phase::Ready(Some(credential)) = &self.phase else {
            return Check::Live(None);
        };
        match check_credential(&self.state.app, &self.client, &credential.secret).await {
            Check::Live(Some(actor)) if actor.user_id() != credential.user_id => {
                Check::Refused("the credential is another user's".to_owned())
            }
            other => other,
        }
    }
}

/// Authenticates `secret` exactly as an HTTP request's bearer credential.
async fn check_credential(app: &App, client: &ClientInfo, secret: &str) -> Check {
    match authenticate(app, Some(secret), client).await {
        Ok(Principal::Authenticated(actor)) => Check::Live(Some(actor)),
        Ok(Principal::Anonymous {
            rejected: Some(reason),
        }) => Check::Refused(reason),
        Ok(Principal::Anonymous { rejected: None }) => Check::Live(None),
        Err(error) => {
            tracing::warn!(error = ?error, "could not check a WebSocket's credential");
            Check::Unavailable
        }
    }
}

/// The next response of any running operation: `(id, None)` when that operation has ended.
async fn next_response(
    operations: &mut HashMap<String, BoxStream<'static, GqlResponse>>,
) -> (String, Option<GqlResponse>) {
    std::future::poll_fn(|cx| {
        for (id, stream) in operations.iter_mut() {
            if let std::task::Poll::Ready(item) = stream.poll_next_unpin(cx) {
                return std::task::Poll::Ready((id.clone(), item));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

async fn send(socket: &mut WebSocket, message: Message) -> Result<(), End> {
    socket.send(message).await.map_err(|_| End::Gone)
}

/// A random offset within `period`.
fn jitter(period: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new().hash_one(0_u8);
    let millis = u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(random % millis)
}
