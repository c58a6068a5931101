//! Subscriptions served over WebSocket.

use std::time::Duration;

use async_graphql::{Context, ID, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;

use super::context::ContextExt;
use super::ids::to_id;
use crate::app::App;
use crate::error::Error;
use crate::identity::Actor;
use crate::identity::authenticate::revalidate;

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

/// Live data over WebSocket (`graphql-transport-ws` or `graphql-ws`).
#[Subscription]
impl Subscription {
    /// Emits a tick at once and then every `intervalSeconds` (1–3600): lets a dashboard see that
    /// its live connection, and its authentication, still hold. When the connection's session is
    /// revoked or expires, or its account is disabled, the stream sends UNAUTHENTICATED and ends.
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
            actor,
            interval: tokio::time::interval(period),
            ended: false,
        };
        Ok(futures_util::stream::unfold(state, Ticks::next))
    }
}

/// The state of one heartbeat stream.
struct Ticks {
    app: App,
    actor: Option<Actor>,
    interval: tokio::time::Interval,
    ended: bool,
}

impl Ticks {
    async fn next(mut self) -> Option<(async_graphql::Result<Heartbeat>, Self)> {
        if self.ended {
            return None;
        }
        self.interval.tick().await;
        if let Some(actor) = &self.actor
            && let Err(error) = revalidate(&self.app, actor).await
        {
            self.ended = true;
            return Some((Err(error.into()), self));
        }
        let beat = Heartbeat {
            at: self.app.clock.now(),
            user_id: self.actor.as_ref().map(|actor| to_id(actor.user_id())),
        };
        Some((Ok(beat), self))
    }
}
