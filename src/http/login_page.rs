//! The sign-in page (`/login`, and `/login?setup=<token>` for setup links) in the reader's
//! language: `?lang=` first, then `Accept-Language`.

use axum::extract::Query;
use axum::http::header::ACCEPT_LANGUAGE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::page_response::{html_response, random};
use crate::i18n;
use crate::pages::{self, LoginView};

/// Longest setup token put into the page; real ones are far shorter, so longer ones are junk.
const MAX_TOKEN_CHARS: usize = 200;

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    setup: Option<String>,
    lang: Option<String>,
}

/// `GET /login`
pub(crate) async fn show(headers: HeaderMap, Query(query): Query<LoginQuery>) -> Response {
    let Ok(nonce) = random() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut locales: Vec<String> = query.lang.into_iter().collect();
    if let Some(header) = headers.get(ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok()) {
        locales.extend(i18n::accept_language(header));
    }
    // The token is checked when used (startPasskeySetup); here it only has to be plausible text.
    let setup_token = query.setup.filter(|token| {
        token.len() <= MAX_TOKEN_CHARS
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    let view = LoginView {
        locales,
        setup_token,
        style_nonce: nonce.clone(),
    };
    match pages::render_login(&view) {
        Ok(html) => html_response(StatusCode::OK, html, &nonce),
        Err(error) => {
            tracing::error!(error = ?error, "rendering the sign-in page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
