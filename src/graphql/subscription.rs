//! Subscriptions served over WebSocket.

use std::time::Duration;

use async_graphql::{Context, ID, MergedSubscription, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;

use super::audit::{AuditEvent, AuditEventFilter, parse_cursor};
use super::context::ContextExt;
use super::ids::to_id;
use crate::app::App;
use crate::audit::{cursor, feed};
use crate::error::Error;

/// A liveness tick, carrying who the connection is authenticated as.
#[derive(SimpleObject, Clone)]
pub struct Heartbeat {
    /// Server time of the tick.
    pub at: DateTime<Utc>,
    /// The user the connection authenticated as in `connection_init`; null when anonymous.
    pub user_id: Option<ID>,
}

#[derive(MergedSubscription, Default)]
pub struct Subscription(
    Heartbeats,
    AuditSubscription,
    super::webhooks::WebhookSubscription,
);

#[derive(Default)]
pub struct Heartbeats;

/// Live data over WebSocket (`graphql-transport-ws` or `graphql-ws`).
#[Subscription]
impl Heartbeats {
    /// Emits a tick at once and then every `intervalSeconds` (1–3600): lets a dashboard see that
    /// its live connection, and its authentication, still hold. When the connection's session or
    /// API key is revoked or expires, or its account is disabled, the connection closes (4403),
    /// ending this stream with every other on it.
    async fn heartbeat(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] interval_seconds: i32,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Heartbeat>> + use<>> {
        if !(1..=3600).contains(&interval_seconds) {
            return Err(Error::bad_input("intervalSeconds", "must be between 1 and 3600").into());
        }
        let request = ctx.request()?;
        let actor = request.principal.optional_actor()?.cloned();
        let period = Duration::from_secs(interval_seconds.unsigned_abs().into());
        let state = Ticks {
            app: request.app.clone(),
            user_id: actor.map(|actor| to_id(actor.user_id())),
            interval: tokio::time::interval(period),
        };
        Ok(futures_util::stream::unfold(state, Ticks::next))
    }
}

/// The live audit feed.
#[derive(Default)]
pub struct AuditSubscription;

#[Subscription]
impl AuditSubscription {
    /// Audit events as they are committed, on any instance, filtered as in `auditEvents` and
    /// authorized for you the same way (`own: true` follows only your own events, like
    /// `viewer.auditEvents`). With `after` (a cursor from `auditEvents` or from this feed) the
    /// events after it are replayed first, oldest first, with no gap or duplicate at the switch.
    /// A subscriber that falls too far behind is ended with LAGGED and `extensions.resumeAfter`,
    /// the cursor to subscribe again from.
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditEventFilter>,
        after: Option<String>,
        #[graphql(default = false)] own: bool,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<AuditFeedEdge>> + use<>> {
        let request = ctx.request()?;
        let actor = request.principal.actor()?;
        let filter = filter.unwrap_or_default().model()?;
        let after = after.as_deref().map(|c| parse_cursor("after", c)).transpose()?;
        let receiver = feed::subscribe(&request.app, actor, filter, after, own).await?;
        Ok(futures_util::stream::unfold(
            receiver,
            |mut receiver| async move {
                let item = receiver.recv().await?;
                let item = item
                    .map(|row| AuditFeedEdge {
                        cursor: cursor::encode(row.seq),
                        node: AuditEvent(row),
                    })
                    .map_err(async_graphql::Error::from);
                Some((item, receiver))
            },
        ))
    }
}

/// One event of the live feed and the cursor to resume after it.
#[derive(SimpleObject)]
pub struct AuditFeedEdge {
    pub cursor: String,
    pub node: AuditEvent,
}

/// The state of one heartbeat stream. Its credential is the connection's to check, before every
/// operation and while it is open.
struct Ticks {
    app: App,
    user_id: Option<ID>,
    interval: tokio::time::Interval,
}

impl Ticks {
    async fn next(mut self) -> Option<(async_graphql::Result<Heartbeat>, Self)> {
        self.interval.tick().await;
        let beat = Heartbeat {
            at: self.app.clock.now(),
            user_id: self.user_id.clone(),
        };
        Some((Ok(beat), self))
    }
}
