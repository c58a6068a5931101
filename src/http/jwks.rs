//! `/.well-known/jwks.json`: the public keys that verify access tokens.

use axum::Json;
use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::response::IntoResponse;

use super::HttpState;

/// Short cache lifetime so verifiers pick up a rotation quickly.
pub(crate) async fn keys(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(CACHE_CONTROL, "public, max-age=60")],
        Json(state.app.keys.jwks()),
    )
}
