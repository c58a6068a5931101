//! The HTTP client that delivers webhooks: no redirects, no proxies, a total timeout, and a
//! resolver that refuses forbidden addresses, so the address connected to is the address checked
//! (a name that resolved to a public address when the endpoint was saved and to 169.254.169.254
//! now is refused: DNS rebinding).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::destination::{self, Rules};
use crate::error::{Error, Result};

/// Bytes of a response body kept for operators; the rest is never read.
pub const KEPT_BODY_BYTES: usize = 1024;

/// What a receiver answered, or how reaching it failed.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: Option<u16>,
    /// `Retry-After`, when the receiver sent one (429 and 503).
    pub retry_after: Option<RetryAfter>,
    /// The first [`KEPT_BODY_BYTES`] of the body, lossily as UTF-8.
    pub body: Option<String>,
    pub error: Option<String>,
    pub duration: Duration,
}

/// A `Retry-After` header: delay-seconds, or an HTTP date (RFC 9110 §10.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    Seconds(u64),
    At(chrono::DateTime<chrono::Utc>),
}

impl RetryAfter {
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Ok(seconds) = text.parse::<u64>() {
            return Some(Self::Seconds(seconds));
        }
        // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is RFC 2822 with GMT.
        chrono::DateTime::parse_from_rfc2822(text)
            .ok()
            .map(|at| Self::At(at.with_timezone(&chrono::Utc)))
    }

    /// Seconds from `now` (a date in the past: none).
    pub fn seconds_after(self, now: chrono::DateTime<chrono::Utc>) -> u64 {
        match self {
            Self::Seconds(seconds) => seconds,
            Self::At(at) => u64::try_from((at - now).num_seconds()).unwrap_or(0),
        }
    }
}

/// One request to send.
pub struct Post<'a> {
    pub url: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// A client for webhook deliveries, built once per process.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    rules: Rules,
}

impl Client {
    pub fn new(rules: Rules, timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("portcullis-webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver { rules }))
            .build()
            .map_err(Error::internal)?;
        Ok(Self { http, rules })
    }

    /// Sends `post` once. Never errors: every failure is described in the answer.
    pub async fn send(&self, post: Post<'_>) -> Answer {
        let started = Instant::now();
        let failed = |error: String| Answer {
            status: None,
            retry_after: None,
            body: None,
            error: Some(error),
            duration: started.elapsed(),
        };
        // Literal addresses never reach the resolver: check them (and the scheme) here, against
        // the rules in force now.
        if let Err(error) = destination::check_url("url", post.url, self.rules) {
            return failed(format!("refused: {}", error_words(&error)));
        }
        let mut request = self
            .http
            .post(post.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in post.headers {
            request = request.header(name, value);
        }
        let mut response = match request.body(post.body).send().await {
            Ok(response) => response,
            Err(error) => return failed(describe(&error)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(RetryAfter::parse);
        let mut kept = Vec::new();
        let mut error = None;
        while kept.len() < KEPT_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    error = Some(format!("reading the response: {}", describe(&e)));
                    break;
                }
            }
        }
        // Dropping the response closes the connection rather than reading a huge body to its end.
        drop(response);
        kept.truncate(KEPT_BODY_BYTES);
        Answer {
            status: Some(status),
            retry_after,
            body: Some(String::from_utf8_lossy(&kept).into_owned()),
            error,
            duration: started.elapsed(),
        }
    }
}

fn error_words(error: &Error) -> String {
    match error {
        Error::BadUserInput { message, .. } => message.clone(),
        other => other.message(),
    }
}

/// Words for a failed request: the innermost cause is usually the informative one.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut innermost = None;
    while let Some(cause) = source {
        innermost = Some(cause.to_string());
        source = cause.source();
    }
    match innermost {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_owned(),
    }
}

/// Resolves with the system resolver, then keeps only the addresses the rules allow.
struct GuardedResolver {
    rules: Rules,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let rules = self.rules;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = destination::allowed_addresses(&resolved, rules);
            if allowed.is_empty() {
                // The refused address stays in the gateway's log: the error is shown to whoever
                // manages the endpoint, and must not map internal names for them.
                tracing::info!(%host, addresses = ?resolved, "webhook destination refused");
                let why = if resolved.is_empty() {
                    "resolved to no address"
                } else {
                    "resolved only to loopback, private or link-local addresses, which are refused \
                     (PORTCULLIS_WEBHOOK_ALLOW_PRIVATE)"
                };
                return Err(format!("{host} {why}").into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::RetryAfter;
    use chrono::{TimeZone as _, Utc};

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = Utc.with_ymd_and_hms(1994, 11, 6, 8, 49, 0).unwrap();
        assert_eq!(
            RetryAfter::parse(" 120 ").map(|r| r.seconds_after(now)),
            Some(120)
        );
        let date = RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(date.seconds_after(now), 37);
        assert_eq!(
            date.seconds_after(now + chrono::TimeDelta::hours(1)),
            0,
            "past: no wait"
        );
        assert_eq!(RetryAfter::parse("soon"), None);
        assert_eq!(RetryAfter::parse("-5"), None);
    }
}
