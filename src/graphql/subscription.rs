//! Subscriptions served over WebSocket.

use std::time::Duration;

use async_graphql::{Context, ID, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;

use super::context::ContextExt;
use super::ids::to_id;
use crate::error::Error;

/// A liveness tick, carrying who the connection is authenticated as.
#[derive(SimpleObject, Clone)]
pub struct Heartbeat {
    /// Server time of the tick.
    pub at: DateTime<Utc>,
    /// The user the connection authenticated as in `connection_init`; null when anonymous.
    pub user_id: Option<ID>,
}

#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Emits a tick at once and then every `intervalSeconds` (1–3600): lets a dashboard see that
    /// its live connection, and its authentication, still hold.
    async fn heartbeat(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] interval_seconds: i32,
    ) -> async_graphql::Result<impl Stream<Item = Heartbeat> + use<>> {
        if !(1..=3600).contains(&interval_seconds) {
            return Err(Error::bad_input("intervalSeconds", "must be between 1 and 3600").into());
        }
        let request = ctx.request()?;
        let user_id = request
            .principal
            .optional_actor()?
            .map(|actor| to_id(actor.user_id()));
        let clock = request.app.clock.clone();
        let period = Duration::from_secs(interval_seconds.unsigned_abs().into());
        let ticks = tokio::time::interval(period);
        Ok(futures_util::stream::unfold(ticks, move |mut ticks| {
            let clock = clock.clone();
            let user_id = user_id.clone();
            async move {
                ticks.tick().await;
                Some((
                    Heartbeat {
                        at: clock.now(),
                        user_id,
                    },
                    ticks,
                ))
            }
        }))
    }
}
