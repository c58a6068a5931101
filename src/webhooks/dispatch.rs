//! Dispatch: follows the committed audit log and turns each event an endpoint wants into a message
//! and its delivery job — after the event's own transaction, so no audited write waits for
//! webhooks however many endpoints subscribe.
//!
//! Each endpoint has a cursor (the last position it has been dispatched through). One pass locks
//! the enabled endpoints that are behind (PostgreSQL: `SKIP LOCKED`, so instances running passes at
//! once split the endpoints rather than both taking one), reads the next events once for all of
//! them, inserts the messages and jobs and advances the cursors — all in one transaction: an event
//! becomes an endpoint's message exactly once, and a crash mid-pass leaves the cursor where it was.

use std::time::Duration;

use tokio::sync::watch;

use super::endpoints::patterns;
use super::event_types;
use crate::app::App;
use crate::audit::AuditAction;
use crate::db::audit::{self as log, Criteria, Scope};
use crate::db::models::{AuditEventRow, WebhookEndpointRow, WebhookMessageRow};
use crate::db::webhooks as rows;
use crate::db::{Id, Page, Timestamp};
use crate::error::Result;
use crate::jobs::{JobKind, NewJob, enqueue};

/// Events read per pass.
const BATCH: i64 = 500;
/// How often a pass runs even when nothing announced new events.
const BACKSTOP: Duration = Duration::from_secs(1);
/// Pause after a failed pass.
const AFTER_FAILURE: Duration = Duration::from_secs(1);

/// What kind of message a row is.
pub const EVENT: &str = "event";
pub const REPLAY: &str = "replay";
pub const TEST: &str = "test";

/// Runs passes whenever the audit feed publishes new events, until `stopped`.
pub(crate) async fn run(app: App, mut stopped: watch::Receiver<bool>) {
    let mut head = app.audit_feed.watch_head();
    loop {
        let pause = match pass(&app).await {
            Ok(true) => continue,
            Ok(false) => BACKSTOP,
            Err(error) => {
                tracing::warn!(error = ?error, "webhook dispatch failed; will try again");
                AFTER_FAILURE
            }
        };
        tokio::select! {
            changed = head.changed() => {
                if changed.is_err() {
                    // The feed is gone (the app is shutting down): fall back to the backstop.
                    tokio::time::sleep(pause).await;
                }
            }
            () = tokio::time::sleep(pause) => {}
            _ = stopped.changed() => return,
        }
        if *stopped.borrow() {
            return;
        }
    }
}

/// One pass; `true` when events remain for another (the batch was full).
pub async fn pass(app: &App) -> Result<bool> {
    let mut conn = app.db.conn().await?;
    let head = log::last_seq(&mut conn).await?;
    if !rows::any_behind(&mut conn, head).await? {
        return Ok(false);
    }
    let now = app.now();
    conn.transaction(async |tx| {
        let endpoints = rows::lock_behind(tx, head).await?;
        let Some(from) = endpoints.iter().map(|e| e.cursor_seq).min() else {
            return Ok(false);
        };
        let page = Page::after(Some(from), BATCH).before(head.saturating_add(1));
        let batch = log::list(tx, Scope::All, &Criteria::default(), &page).await?;
        let (events, full) = (batch.rows, batch.has_more);
        // Through `head` unless the batch was cut short of it.
        let through = match events.last() {
            Some(last) if full => last.seq,
            _ => head,
        };
        let mut jobs = Vec::new();
        let mut messages = Vec::new();
        for endpoint in &endpoints {
            let mut position = endpoint.next_position;
            let wanted = patterns(endpoint);
            for event in events
                .iter()
                .filter(|e| e.seq > endpoint.cursor_seq && e.seq <= through)
                .filter(|e| wants(endpoint, &wanted, e))
            {
                let (job, message) = message_for(endpoint, event, EVENT, Some(position), now)?;
                position += 1;
                jobs.push(job);
                messages.push(message);
            }
            rows::advance(tx, endpoint.id, through.max(endpoint.cursor_seq), position).await?;
        }
        enqueue(tx, now, jobs).await?;
        rows::insert_messages(tx, &messages).await?;
        Ok(full)
    })
    .await
}

/// Whether `endpoint` receives `event`: its organization's (or any, gateway-wide), of a wanted type.
fn wants(endpoint: &WebhookEndpointRow, wanted: &[String], event: &AuditEventRow) -> bool {
    if endpoint.organization_id.is_some() && event.organization_id != endpoint.organization_id {
        return false;
    }
    // News of exhausted messages is not sent to the endpoint it concerns, nor to endpoints that
    // are failing themselves: failing endpoints would otherwise feed each other forever.
    if event.action == AuditAction::WebhookMessageExhausted.name()
        && (endpoint.failing_since.is_some() || event.targets.contains(&endpoint.id.to_string()))
    {
        return false;
    }
    event_types::matches(wanted, &event.action)
}

/// A message of `kind` carrying `event` to `endpoint`, at lane `position`, with its job.
pub(crate) fn message_for(
    endpoint: &WebhookEndpointRow,
    event: &AuditEventRow,
    kind: &str,
    position: Option<i64>,
    now: Timestamp,
) -> Result<(NewJob, WebhookMessageRow)> {
    let message = WebhookMessageRow {
        id: Id::new_v7(),
        endpoint_id: endpoint.id,
        kind: kind.to_owned(),
        event_id: Some(event.id),
        event_seq: Some(event.seq),
        event_type: event.action.clone(),
        created_at: now,
    };
    Ok((delivery_job(endpoint, message.id, position)?, message))
}

/// The job that delivers message `id` to `endpoint`: in the endpoint's lane, at `position` when
/// the endpoint is ordered (none: beside the lane's order, a few at a time).
pub(crate) fn delivery_job(endpoint: &WebhookEndpointRow, id: Id, position: Option<i64>) -> Result<NewJob> {
    let mut job = NewJob::new(JobKind::WebhookDelivery, &serde_json::json!({}))?
        .in_lane(endpoint.id.to_string(), position.filter(|_| endpoint.ordered))
        .attempts(super::deliver::MAX_ATTEMPTS)
        .to(endpoint.url.clone());
    job.id = id;
    if let Some(org) = endpoint.organization_id {
        job = job.in_organization(org);
    }
    Ok(job)
}
