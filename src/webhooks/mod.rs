//! Webhooks: the audit log delivered outward to integrators' endpoints, signed as Standard
//! Webhooks 1.0 prescribes.
//!
//! - **Endpoints** ([`endpoints`]) say where to send which events: an organization's events, or
//!   (gateway-wide) all of them, narrowed by action names and prefixes.
//! - **Dispatch** ([`dispatch`]) follows the committed log, in commit order, and turns each event an
//!   endpoint wants into a message: a row plus a job in the shared durable queue, in the same
//!   transaction as the endpoint's advanced cursor, so an event becomes a message exactly once and
//!   nothing an audited transaction does waits for it.
//! - **Delivery** ([`deliver`]) is that job: signed, sent through a guarded client ([`client`]),
//!   retried on the Standard Webhooks schedule, then dead-lettered. An ordered endpoint's messages
//!   share a job lane, so each waits for the earlier ones.
//! - **Operators** ([`messages`]) list messages and attempts, retry, replay ranges of the log,
//!   recover an endpoint's failures, send tests, and watch attempts live.

pub mod client;
pub mod deliver;
pub mod destination;
pub mod dispatch;
pub mod endpoints;
pub mod event_types;
pub mod messages;
pub mod payload;
pub mod signature;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::config::Config;
use crate::db::models::WebhookAttemptRow;
use crate::error::Result;

/// Attempts held for live views that are behind.
const LIVE_BACKLOG: usize = 1024;

/// This process's webhook machinery: the client, and the broadcast of attempts it makes.
pub struct Webhooks {
    pub client: client::Client,
    pub rules: destination::Rules,
    attempts: broadcast::Sender<Arc<WebhookAttemptRow>>,
}

impl Webhooks {
    pub fn configured(config: &Config) -> Result<Self> {
        let rules = destination::Rules {
            allow_http: config.webhook_allow_http,
            allow_private: config.webhook_allow_private,
        };
        let timeout = Duration::from_secs(config.webhook_timeout_seconds.max(1));
        let (attempts, _) = broadcast::channel(LIVE_BACKLOG);
        Ok(Self {
            client: client::Client::new(rules, timeout)?,
            rules,
            attempts,
        })
    }

    /// Attempts this process makes from now on.
    pub fn attempts(&self) -> broadcast::Receiver<Arc<WebhookAttemptRow>> {
        self.attempts.subscribe()
    }

    pub(crate) fn announce(&self, attempt: WebhookAttemptRow) {
        // No receivers is fine: nobody is watching.
        let _ = self.attempts.send(Arc::new(attempt));
    }
}
