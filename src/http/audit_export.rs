//! `GET /audit/export`: the audit log as a CSV or NDJSON download, streamed page by page. Callers
//! authenticate with a bearer header or a signed link's `token` (from `createAuditExport`).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::HttpState;
use super::principal::{client_info, from_headers};
use crate::audit::export::{Export, link_actor, parse_query, unsigned_part};
use crate::error::{Error, ErrorCode};
use crate::identity::Actor;

pub(crate) async fn export(State(state): State<HttpState>, parts: Parts) -> Response {
    match start(&state, &parts).await {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

async fn start(state: &HttpState, parts: &Parts) -> Result<Response, Error> {
    let app = &state.app;
    let query = parts.uri.query().unwrap_or_default();
    let request = parse_query(query)?;
    let client = client_info(parts, &app.config);
    let token = form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned());
    let actor: Actor = match token {
        Some(token) => link_actor(app, &token, &unsigned_part(query), &client).await?,
        None => from_headers(app, &parts.headers, &client).await?.actor()?.clone(),
    };
    let format = request.format;
    let export = Export::begin(app, &actor, request.filter, format, request.newest_first).await?;
    let chunks = futures_util::stream::unfold(Some(export), |state| async move {
        let mut export = state?;
        match export.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(Bytes::from(chunk)), Some(export))),
            Ok(None) => None,
            Err(error) => {
                // The status line is gone; ending the body early tells the client the file is cut short.
                tracing::error!(error = ?error, "audit export failed mid-stream");
                Some((Err(std::io::Error::other("audit export failed")), None))
            }
        }
    });
    let filename = format!(
        "attachment; filename=\"audit-{}.{}\"",
        app.now().0.format("%Y%m%dT%H%M%SZ"),
        format.as_str()
    );
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&filename) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// A refusal as a GraphQL-shaped JSON error, with the matching HTTP status.
fn error_response(error: &Error) -> Response {
    let status = match error.code() {
        ErrorCode::BadUserInput => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden | ErrorCode::MfaRequired => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Lagged | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if let Error::Internal(source) = error {
        tracing::error!(error = ?source, "audit export failed");
    }
    let mut extensions = json!({ "code": error.code().as_str() });
    if let Some(field) = error.field() {
        extensions["field"] = json!(field);
    }
    let body = json!({ "errors": [{ "message": error.message(), "extensions": extensions }] });
    (status, axum::Json(body)).into_response()
}
