//! The live feed: one hub per process reads newly committed events from the database, in commit
//! order, and broadcasts them; each subscriber replays what it missed from the database, then
//! follows the broadcast, filtered and authorized for itself.
//!
//! On PostgreSQL each pass first positions newly committed events (the [`Sequencer`]).
//! The hub wakes when this process commits a transaction, when PostgreSQL announces events committed
//! by another instance (LISTEN on a dedicated connection, reconnecting with backoff), and once a
//! second regardless. It always reads from its last published position, so after a lost connection
//! it backfills and subscribers lose nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, broadcast, mpsc, watch};

use super::sequencer::Sequencer;
use super::{AuditFilter, read};
use crate::app::App;
use crate::db::audit::{self as rows, Criteria, Scope};
use crate::db::models::AuditEventRow;
use crate::db::{Backend, Db, Page, notify};
use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::identity::authenticate::revalidate;

/// Events held for subscribers that are behind; past this a subscriber is cut off with its cursor.
const BACKLOG: usize = 4_096;
/// Events a subscriber has taken from the broadcast but the client has not yet read.
const SUBSCRIBER_BUFFER: usize = 32;
/// Events read from the database per query (hub and replays).
const PAGE: i64 = 500;
/// How often the hub looks even when nothing woke it.
const BACKSTOP: Duration = Duration::from_secs(1);
/// How often a subscriber's session or API key is checked while it listens.
const REVALIDATE: Duration = Duration::from_secs(15);

/// The hub's outputs, shared by every subscriber in the process.
pub struct Feed {
    events: broadcast::Sender<Arc<AuditEventRow>>,
    /// The position of the newest event published.
    published: watch::Receiver<i64>,
}

impl Feed {
    /// Starts the hub for `db`; it stops when the returned feed is dropped.
    pub async fn start(db: Db, sequencer: Arc<Sequencer>) -> Result<Arc<Self>> {
        let head = {
            let mut conn = db.conn().await?;
            rows::last_seq(&mut conn).await?
        };
        let (events, _) = broadcast::channel(BACKLOG);
        let (publish, published) = watch::channel(head);
        let feed = Arc::new(Self { events, published });
        let wake = Arc::new(Notify::new());
        if db.backend() == Backend::Postgres {
            spawn_listener(&feed, db.clone(), wake.clone());
        }
        spawn_hub(&feed, db, sequencer, wake, publish);
        Ok(feed)
    }

    /// The position of the newest event this process has published.
    pub fn head(&self) -> i64 {
        *self.published.borrow()
    }

    /// Changes whenever the hub publishes newer events (committed here or on another instance).
    pub fn watch_head(&self) -> watch::Receiver<i64> {
        self.published.clone()
    }
}

fn spawn_hub(
    feed: &Arc<Feed>,
    db: Db,
    sequencer: Arc<Sequencer>,
    wake: Arc<Notify>,
    publish: watch::Sender<i64>,
) {
    let weak = Arc::downgrade(feed);
    let events = feed.events.clone();
    let commits = db.commits().clone();
    tokio::spawn(async move {
        let mut last = *publish.borrow();
        loop {
            let committed = commits.notified();
            tokio::pin!(committed);
            committed.as_mut().enable();
            if let Err(error) = sequencer.settle().await {
                tracing::warn!(error = ?error, "audit feed could not position new events");
            }
            match publish_new(&db, &events, last).await {
                Ok(newest) => {
                    if newest != last {
                        last = newest;
                        publish.send_replace(last);
                    }
                }
                Err(error) => tracing::warn!(error = ?error, "audit feed could not read new events"),
            }
            if weak.strong_count() == 0 {
                return;
            }
            tokio::select! {
                () = &mut committed => {}
                () = wake.notified() => {}
                () = tokio::time::sleep(BACKSTOP) => {}
            }
        }
    });
}

/// Broadcasts every event after `last`, in order; returns the newest position published.
async fn publish_new(db: &Db, events: &broadcast::Sender<Arc<AuditEventRow>>, mut last: i64) -> Result<i64> {
    let mut conn = db.conn().await?;
    loop {
        let page = Page::after(Some(last), PAGE);
        let batch = rows::list(&mut conn, Scope::All, &Criteria::default(), &page).await?;
        for row in batch.rows {
            last = row.seq;
            // No receivers is fine: nobody is subscribed right now.
            let _ = events.send(Arc::new(row));
        }
        if !batch.has_more {
            return Ok(last);
        }
    }
}

fn spawn_listener(feed: &Arc<Feed>, db: Db, wake: Arc<Notify>) {
    let weak = Arc::downgrade(feed);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        while weak.strong_count() > 0 {
            if let Err(error) = notify::listen(db.listen_url(), notify::AUDIT_CHANNEL, &wake).await {
                tracing::warn!(error = ?error, retry_in = ?backoff, "audit feed listener disconnected");
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    });
}

/// What a subscriber receives: events, or the error that ends the subscription.
pub type Item = Result<AuditEventRow>;

/// Subscribes `actor` to events matching `filter` (authorized like `auditEvents`, or confined to
/// the actor's own events when `own`), replaying those after `after` first.
pub async fn subscribe(
    app: &App,
    actor: &Actor,
    filter: AuditFilter,
    after: Option<i64>,
    own: bool,
) -> Result<mpsc::Receiver<Item>> {
    let scope = if own {
        read::own_scope(app, actor).await?
    } else {
        read::scope_for(app, actor, &filter).await?
    };
    let sensitive = read::sees_sensitive(app, actor, scope).await?;
    // What committed before the subscription belongs to the snapshot, not to the live part.
    app.audit_sequencer.settle_for_read().await;
    // Subscribe before reading the snapshot: anything committed later arrives by broadcast.
    let live = app.audit_feed.events.subscribe();
    let snapshot = {
        let mut conn = app.db.conn().await?;
        rows::last_seq(&mut conn).await?
    };
    let (sender, receiver) = mpsc::channel(SUBSCRIBER_BUFFER);
    let subscriber = Subscriber {
        app: app.clone(),
        actor: actor.clone(),
        scope,
        filter,
        sensitive,
        own,
        sender,
        version: app.engine.state().version,
    };
    tokio::spawn(subscriber.run(live, after.map(|a| a.min(snapshot)), snapshot));
    Ok(receiver)
}

struct Subscriber {
    app: App,
    actor: Actor,
    scope: Scope,
    filter: AuditFilter,
    sensitive: bool,
    own: bool,
    sender: mpsc::Sender<Item>,
    /// The authorization version the subscriber was last authorized at.
    version: i64,
}

impl Subscriber {
    async fn run(
        mut self,
        mut live: broadcast::Receiver<Arc<AuditEventRow>>,
        after: Option<i64>,
        snapshot: i64,
    ) {
        let mut delivered = after.unwrap_or(snapshot);
        if after.is_some()
            && let Err(error) = self.replay(&mut delivered, snapshot).await
        {
            let _ = self.sender.send(Err(error)).await;
            return;
        }
        delivered = delivered.max(snapshot);
        // Spread the checks of subscribers that connected together over the period.
        let offset = REVALIDATE.mul_f64(f64::from(jitter()) / f64::from(u16::MAX));
        let mut checks = tokio::time::interval_at(tokio::time::Instant::now() + offset, REVALIDATE);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let received = tokio::select! {
                received = live.recv() => received,
                _ = checks.tick() => {
                    // A revoked session or disabled account ends the feed, as it ends `heartbeat`;
                    // a database that is merely busy is asked again next time.
                    match revalidate(&self.app, &self.actor).await {
                        Err(error @ Error::Unauthenticated(_)) => {
                            let _ = self.sender.send(Err(error)).await;
                            return;
                        }
                        Err(error) => tracing::warn!(error = ?error, "could not re-check a feed subscriber"),
                        Ok(mfa) if mfa != self.actor.mfa => {
                            // A lapsed step-up may change what the subscriber may read.
                            self.actor.mfa = mfa;
                            self.version = -1;
                        }
                        Ok(_) => {}
                    }
                    continue;
                }
            };
            let row = match received {
                Ok(row) => row,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let cursor = super::cursor::encode(delivered);
                    let _ = self.sender.send(Err(Error::Lagged { cursor })).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if row.seq <= delivered {
                continue;
            }
            if let Err(error) = self.still_allowed().await {
                let _ = self.sender.send(Err(error)).await;
                return;
            }
            delivered = row.seq;
            if !self.filter.matches(self.scope, &row) {
                continue;
            }
            if self.sender.send(Ok(self.shown(&row))).await.is_err() {
                return; // the client went away
            }
        }
    }

    /// Sends the stored events after `delivered` up to `snapshot`, oldest first.
    async fn replay(&mut self, delivered: &mut i64, snapshot: i64) -> Result<()> {
        loop {
            let page = Page::after(Some(*delivered), PAGE).before(snapshot + 1);
            let batch = {
                let mut conn = self.app.db.conn().await?;
                rows::list(&mut conn, self.scope, &self.filter.criteria(), &page).await?
            };
            for row in batch.rows {
                *delivered = row.seq;
                if self.sender.send(Ok(self.shown(&row))).await.is_err() {
                    return Ok(());
                }
            }
            if !batch.has_more {
                *delivered = snapshot;
                return Ok(());
            }
        }
    }

    /// Re-checks the subscriber's right to its scope whenever authorization changes.
    async fn still_allowed(&mut self) -> Result<()> {
        let version = self.app.engine.state().version;
        if version == self.version {
            return Ok(());
        }
        self.version = version;
        if self.own {
            read::own_scope(&self.app, &self.actor).await?;
        } else {
            read::scope_for(&self.app, &self.actor, &self.filter).await?;
        }
        self.sensitive = read::sees_sensitive(&self.app, &self.actor, self.scope).await?;
        Ok(())
    }

    fn shown(&self, row: &AuditEventRow) -> AuditEventRow {
        let mut row = row.clone();
        if !self.sensitive {
            read::mask(&mut row);
        }
        row
    }
}

/// A random `u16`, for spreading timers.
fn jitter() -> u16 {
    crate::identity::secrets::random_bytes::<2>().map_or(0, u16::from_be_bytes)
}
