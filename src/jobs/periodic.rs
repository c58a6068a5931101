//! Work done on a timer rather than on demand: expiring invitations, forgetting old ones, and
//! clearing settled jobs. Every instance runs it; each step is safe to run concurrently.

use std::time::Duration;

use chrono::TimeDelta;
use tokio::sync::watch;

use crate::app::App;
use crate::db::jobs;
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
        if let Err(error) = sweep(&app).await {
            tracing::warn!(error = ?error, "periodic sweep failed");
        }
    }
}

/// One round of every sweep (also what tests call to move time along).
pub async fn sweep(app: &App) -> Result<()> {
    invitations::expiry::sweep(app).await?;
    let ceremonies = crate::passkeys::ceremony::sweep(app).await?;
    let links = crate::passkeys::setup_links::sweep(app).await?;
    if ceremonies + links > 0 {
        tracing::debug!(
            ceremonies,
            links,
            "deleted expired passkey ceremonies and setup links"
        );
    }
    let mut conn = app.db.conn().await?;
    let deleted = jobs::delete_finished_before(&mut conn, app.now() - SETTLED_JOB_RETENTION).await?;
    if deleted > 0 {
        tracing::info!(deleted, "deleted settled jobs");
    }
    Ok(())
}
