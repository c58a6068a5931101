//! Keeps every instance's key ring in step with the database: a reload when a rotation is
//! announced (PostgreSQL LISTEN), and a poll as a backstop for announcements lost while the
//! listening connection was down (and on SQLite, where a rotation comes from the CLI process).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::tokens::KeyRing;
use crate::clock::Clock;
use crate::db::{Backend, Db, Timestamp, notify};

/// How often every instance re-reads its keys regardless of announcements. A rotation's
/// publication delay should exceed it, so that even an instance that missed the announcement
/// knows the new key before anyone signs with it.
pub const KEY_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// Starts the listener (PostgreSQL) and the poll for `keys`; both end once the ring is dropped.
pub fn spawn(keys: &Arc<KeyRing>, db: Db, clock: Arc<dyn Clock>) {
    if db.backend() == Backend::Postgres {
        spawn_listener(Arc::downgrade(keys), db.clone(), clock.clone());
    }
    spawn_poll(Arc::downgrade(keys), db, clock);
}

async fn reload(keys: &KeyRing, db: &Db, clock: &dyn Clock, why: &str) {
    if let Err(error) = keys.reload(db, Timestamp(clock.now())).await {
        tracing::warn!(error = ?error, why, "reloading the signing keys failed");
    }
}

fn spawn_listener(keys: Weak<KeyRing>, db: Db, clock: Arc<dyn Clock>) {
    let wake = Arc::new(Notify::new());
    // Reloads when woken: once listening begins (a rotation may have come between the ring's load
    // and LISTEN) and on every announcement; announcements during a reload coalesce into one more.
    let reloader = {
        let (keys, db, wake) = (keys.clone(), db.clone(), wake.clone());
        async move {
            loop {
                wake.notified().await;
                let Some(keys) = keys.upgrade() else { return };
                reload(&keys, &db, clock.as_ref(), "rotation announced").await;
            }
        }
    };
    let listener = async move {
        let mut backoff = Duration::from_millis(100);
        while keys.strong_count() > 0 {
            if let Err(error) = notify::listen(db.listen_url(), notify::KEYS_CHANNEL, &wake).await {
                tracing::warn!(error = ?error, retry_in = ?backoff, "signing-key listener disconnected");
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
        wake.notify_one(); // lets the reloader see that the ring is gone
    };
    tokio::spawn(reloader);
    tokio::spawn(listener);
}

fn spawn_poll(keys: Weak<KeyRing>, db: Db, clock: Arc<dyn Clock>) {
    tokio::spawn(async move {
        // The ring was just loaded: the first poll is one period away.
        let first = tokio::time::Instant::now() + KEY_POLL_INTERVAL;
        let mut ticks = tokio::time::interval_at(first, KEY_POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(keys) = keys.upgrade() else { return };
            reload(&keys, &db, clock.as_ref(), "poll").await;
        }
    });
}
