//! Work done on a timer rather than on demand: expiring invitations, forgetting old ones, and
//! clearing settled jobs and the credential attempts whose window or lock has ended. Every instance
//! keeps the timer; one at a time does the work, on the database's clock (see `db::leader`).

use std::time::Duration;

use chrono::TimeDelta;
use tokio::sync::watch;

use crate::app::App;
use crate::db::leader::{self, Periodic};
use crate::db::{Timestamp, credential_attempts, jobs};
use crate::error::Result;
use crate::invitations;

/// How often the sweeps run.
const EVERY: Duration = Duration::from_secs(60);

/// Settled jobs (delivered or dead) are kept this long for operators to look at.
const SETTLED_JOB_RETENTION: TimeDelta = TimeDelta::days(30);

pub(super) async fn run(app: App, mut stopped: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => return,
        }
        let swept = leader::exclusively(&app.db, Periodic::Sweeps, app.now(), async |now| {
            sweep_at(&app, now).await
        });
        match swept.await {
            Ok(Some(())) => {}
            Ok(None) => tracing::debug!("another instance is sweeping"),
            Err(error) => tracing::warn!(error = ?error, "periodic sweep failed"),
        }
    }
}

/// One round of every sweep on the application's clock (what tests call to move time along).
pub async fn sweep(app: &App) -> Result<()> {
    sweep_at(app, app.now()).await
}

/// One round of every sweep as of `now`.
async fn sweep_at(app: &App, now: Timestamp) -> Result<()> {
    invitations::expiry::sweep(app, now).await?;
    let ceremonies = crate::passkeys::ceremony::sweep(app, now).await?;
    let links = crate::passkeys::setup_links::sweep(app, now).await?;
    if ceremonies + links > 0 {
        tracing::debug!(
            ceremonies,
            links,
            "deleted expired passkey ceremonies and setup links"
        );
    }
    let mut conn = app.db.conn().await?;
    let deleted = jobs::delete_finished_before(&mut conn, now - SETTLED_JOB_RETENTION).await?;
    if deleted > 0 {
        tracing::info!(deleted, "deleted settled jobs");
    }
    // Keeps the rate limits' table as small as the keys of the last window or lockout. The rows
    // were stamped by the instances' clocks and, on PostgreSQL, are judged here by the database's:
    // clocks in step differ by too little to matter against windows of minutes.
    let attempts = credential_attempts::delete_expired(&mut conn, now).await?;
    if attempts > 0 {
        tracing::debug!(attempts, "deleted expired credential attempt counts");
    }
    Ok(())
}
