//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use super::HttpState;
use super::drain::Stage;
use crate::db;

/// The process is up.
pub(crate) async fn live() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// The database answers and has every migration this binary ships, and no shutdown has begun
/// (a draining instance says so at once, so load balancers stop sending it new work).
pub(crate) async fn ready(State(state): State<HttpState>) -> impl IntoResponse {
    if state.drain.stage() != Stage::Serving {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        );
    }
    let database = state.app.db.ping().await;
    let migrations = db::latest_migration(&state.app.db).await;
    match (database, migrations) {
        (Ok(()), Ok((latest, true))) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "database": "ok", "migration": latest })),
        ),
        (Ok(()), Ok((latest, false))) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "not ready", "database": "ok", "migration": format!("{latest} pending") }),
            ),
        ),
        (database, _) => {
            let detail = if database.is_ok() {
                "migration check failed"
            } else {
                "unreachable"
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not ready", "database": detail })),
            )
        }
    }
}
