//! HTTP: the axum router, its middleware and the server loop. The only room that imports axum.

mod audit_export;
mod client_ip;
mod documents;
mod drain;
mod graphiql;
mod graphql;
mod health;
mod invitation_page;
mod jwks;
mod login_page;
mod page_response;
mod principal;
mod read_your_writes;
mod websocket;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::app::App;
use crate::error::{Error, Result};
use crate::graphql::{self as gql, GatewaySchema};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How long in-flight requests get to finish once the listener has stopped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long WebSockets get for the closing handshake before the listener stops.
const CLOSE_FRAMES: Duration = Duration::from_millis(1_500);

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct HttpState {
    pub app: App,
    pub schema: GatewaySchema,
    pub documents: std::sync::Arc<documents::Documents>,
    /// Open WebSockets per client address.
    pub sockets: std::sync::Arc<websocket::Clients>,
    /// How far a shutdown has come.
    pub drain: std::sync::Arc<drain::Drain>,
}

/// The complete HTTP surface of the gateway.
pub fn router(app: App) -> Router {
    router_draining_with(app, Default::default())
}

fn router_draining_with(app: App, drain: std::sync::Arc<drain::Drain>) -> Router {
    let state = HttpState {
        schema: gql::schema(),
        app: app.clone(),
        documents: Default::default(),
        sockets: Default::default(),
        drain,
    };
    let router = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphiql", get(graphiql::page))
        .route("/", get(graphiql::redirect))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/.well-known/jwks.json", get(jwks::keys))
        .route("/audit/export", get(audit_export::export))
        .route(
            "/invitations/accept",
            get(invitation_page::show).post(invitation_page::submit),
        )
        .route("/login", get(login_page::show))
        .route(crate::pages::STYLESHEET_PATH, get(page_response::stylesheet))
        .route(crate::pages::SCRIPT_PATH, get(page_response::script))
        .with_state(state)
        .layer(DefaultBodyLimit::max(app.config.max_body_bytes));
    let router = match cors(&app.config.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains (see [`drain`]): not ready at
/// once, closing WebSockets after `PORTCULLIS_DRAIN_SECONDS`, then finishing in-flight requests
/// for a bounded time.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let linger = Duration::from_secs(app.config.drain_seconds);
    let drain = std::sync::Arc::new(drain::Drain::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    let stages = drain.clone();
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(());
        stages.advance(drain::Stage::Draining);
        tracing::info!(seconds = linger.as_secs(), "draining: not ready, still serving");
        tokio::time::sleep(linger).await;
        stages.advance(drain::Stage::Closing);
        // Close frames go out (and are answered) before the listener and the process stop.
        tokio::time::sleep(CLOSE_FRAMES).await;
        let _ = closed_tx.send(());
    };
    let server = axum::serve(
        listener,
        router_draining_with(app, drain).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = closed_rx.await;
    });
    tokio::spawn(signal);
    let server = tokio::spawn(async move { server.await });
    tokio::pin!(server);
    tokio::select! {
        finished = &mut server => return finished.map_err(Error::internal)?.map_err(Error::internal),
        _ = stop_rx => {}
    }
    match tokio::time::timeout(linger + CLOSE_FRAMES + SHUTDOWN_GRACE, &mut server).await {
        Ok(finished) => finished.map_err(Error::internal)?.map_err(Error::internal),
        Err(_) => {
            tracing::warn!("connections still open after the grace period; closing them");
            server.abort();
            Ok(())
        }
    }
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static(read_your_writes::READ_AFTER),
            ])
            // A dashboard reads the position of its writes to hand it back (read replicas).
            .expose_headers([HeaderName::from_static(read_your_writes::WRITTEN_AT)])
            .max_age(Duration::from_secs(600)),
    )
}
