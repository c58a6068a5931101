//! Retention: the oldest events are deleted in commit order, in batches, and each chain's anchor
//! moves to its last deleted event, so verification of what remains still starts from a known hash.

use std::time::Duration;

use chrono::TimeDelta;

use super::{AuditAction, Event};
use crate::app::App;
use crate::authz::{Action, Resource, guard};
use crate::db::leader::{self, Periodic};
use crate::db::{Timestamp, audit};
use crate::error::{Error, Result};
use crate::identity::Actor;

/// Events deleted per transaction.
const BATCH: i64 = 1_000;
/// How often the retention job runs.
const EVERY: Duration = Duration::from_secs(3_600);

/// `purgeAuditEvents`: deletes the events before `before` (needs `audit.purge`), and records that it did.
pub async fn purge(app: &App, actor: &Actor, before: Timestamp) -> Result<u64> {
    guard::check(app, actor, Action::AuditPurge, Resource::Gateway).await?;
    if before > app.now() {
        return Err(Error::bad_input("before", "must not be in the future"));
    }
    let deleted = delete_before(app, before).await?;
    let event = Event::by(actor, AuditAction::AuditPurged)
        .with("before", before)
        .with("deleted", deleted);
    record_alone(app, event).await?;
    Ok(deleted)
}

/// Deletes every event older than `before`: the longest prefix of the log (in commit order) whose
/// events all occurred before it.
pub async fn delete_before(app: &App, before: Timestamp) -> Result<u64> {
    app.audit_sequencer.settle().await?;
    let mut conn = app.db.conn().await?;
    let bound = match audit::first_seq_since(&mut conn, before).await? {
        Some(seq) => seq,
        None => audit::last_seq(&mut conn).await? + 1,
    };
    let mut deleted = 0u64;
    loop {
        let removed = conn
            .transaction(async |tx| {
                audit::lock_log(tx).await?;
                let batch = audit::oldest_before(tx, bound, BATCH).await?;
                let Some(&(through, _, _)) = batch.last() else {
                    return Ok(0);
                };
                // The last event of each chain in this batch becomes that chain's anchor.
                let mut anchors = std::collections::HashMap::new();
                for (seq, organization, hash) in &batch {
                    anchors.insert(audit::chain_key(*organization), (*seq, hash.clone()));
                }
                for (key, (seq, hash)) in &anchors {
                    audit::set_anchor(tx, key, *seq, hash).await?;
                }
                audit::delete_through(tx, through).await
            })
            .await?;
        if removed == 0 {
            return Ok(deleted);
        }
        deleted += removed as u64;
    }
}

/// The background job: every hour, one instance deletes events older than the retention period (if
/// one is set) and records what it deleted. Stops when the process does.
pub fn spawn_job(app: &App) {
    let days = app.config.audit_retention_days;
    if days == 0 {
        return;
    }
    let app = app.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // One instance at a time, on the database's clock: an instance whose clock runs a year
            // fast must not delete a year of the log.
            let run = leader::exclusively(&app.db, Periodic::Retention, app.now(), async |now| {
                let before = now - TimeDelta::days(i64::from(days));
                Ok((before, delete_before(&app, before).await?))
            });
            match run.await {
                Ok(None | Some((_, 0))) => {}
                Ok(Some((before, deleted))) => {
                    tracing::info!(deleted, %before, "audit retention deleted old events");
                    let event = Event::system(AuditAction::AuditPurged)
                        .with("before", before)
                        .with("deleted", deleted)
                        .with("retentionDays", days);
                    if let Err(error) = record_alone(&app, event).await {
                        tracing::warn!(error = ?error, "could not record the retention run");
                    }
                }
                Err(error) => tracing::warn!(error = ?error, "audit retention failed"),
            }
        }
    });
}

async fn record_alone(app: &App, event: Event) -> Result<()> {
    let now = app.now();
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| super::record(tx, now, event).await)
        .await?;
    Ok(())
}
