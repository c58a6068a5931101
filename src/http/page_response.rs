//! The headers every server-rendered page gets: a strict Content-Security-Policy, no referrer,
//! no caching, no sniffing — and the static assets the pages link to.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::identity::secrets;
use crate::pages;

/// An HTML page under the pages' policy: scripts only from the gateway itself (no inline script,
/// no eval), fetches only to the gateway (`/graphql`), styles from the stylesheet and the one
/// `<style>` carrying `nonce`, images (logos) over HTTPS.
pub(super) fn html_response(status: StatusCode, html: String, nonce: &str) -> Response {
    let policy = format!(
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'nonce-{nonce}'; \
         img-src https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// A fresh random value for a nonce or a CSRF token.
pub(super) fn random() -> crate::error::Result<String> {
    Ok(secrets::encode(&secrets::random_bytes::<24>()?))
}

/// `GET /assets/pages.css`
pub(crate) async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", pages::STYLESHEET)
}

/// `GET /assets/login.js`
pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", pages::SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=3600"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
