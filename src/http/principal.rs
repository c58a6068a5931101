//! Who is calling, and from where, as far as HTTP headers and the socket tell.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;

use super::client_ip::client_ip;
use crate::app::App;
use crate::config::Config;
use crate::error::Result;
use crate::identity::authenticate::{authenticate, bearer_credential};
use crate::identity::{ClientInfo, Principal};

/// The principal named by the `Authorization` header (anonymous without one).
pub(crate) async fn from_headers(app: &App, headers: &HeaderMap, client: &ClientInfo) -> Result<Principal> {
    let header = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    match header {
        None => Ok(Principal::ANONYMOUS),
        Some(value) => match bearer_credential(value) {
            Some(credential) => authenticate(app, Some(credential), client).await,
            None => Ok(Principal::Anonymous {
                rejected: Some("the Authorization header must be `Bearer <token>`".to_owned()),
            }),
        },
    }
}

/// Address and user agent of the client. The address is the socket peer's, or — when that is a
/// trusted proxy — the client it forwarded for ([`client_ip`]); none without a socket (in-process).
pub(crate) fn client_info(parts: &Parts, config: &Config) -> ClientInfo {
    ClientInfo {
        ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| {
                client_ip(
                    addr.ip(),
                    &parts.headers,
                    &config.trusted_proxies,
                    config.forwarded_header,
                )
                .to_string()
            }),
        user_agent: parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect()),
        request_id: parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|id| id.chars().take(128).collect()),
    }
}
