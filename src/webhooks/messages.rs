//! Webhook messages as operators see them: listed with their attempts, retried, replayed from the
//! log, recovered after an outage, sent as a test, and watched live.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::TimeDelta;
use futures_util::Stream;

use super::dispatch::{self, REPLAY, TEST};
use super::endpoints::{self, patterns, resource_of};
use super::payload::TEST_TYPE;
use crate::app::App;
use crate::audit::{self, ActionMatch, AuditAction, AuditFilter, Event, Target, cursor};
use crate::authz::{Action, guard};
use crate::db::audit::{self as log, Scope};
use crate::db::models::{WebhookAttemptRow, WebhookEndpointRow, WebhookMessageRow};
use crate::db::webhooks::{self as rows, MessageFilter, MessageWithJob};
use crate::db::{Id, Page, PageOf, Timestamp};
use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::identity::authenticate::revalidate;
use crate::jobs::enqueue;

/// Most events one `replayWebhookEvents` call queues; the answer says where it stopped.
pub const MAX_REPLAY: i64 = 10_000;
/// Events read per query while replaying.
const REPLAY_PAGE: i64 = 500;

pub async fn list(
    app: &App,
    actor: &Actor,
    filter: &MessageFilter,
    page: &Page,
) -> Result<PageOf<MessageWithJob>> {
    let endpoint = endpoints::visible(app, actor, filter.endpoint_id).await?;
    // Messages show what happened (event types, positions, receivers' answers): the log's rule.
    guard::check(
        app,
        actor,
        Action::AuditRead,
        resource_of(endpoint.organization_id),
    )
    .await?;
    let mut conn = app.db.reader().await?;
    rows::list_messages(&mut conn, filter, page).await
}

/// One message, if the caller may see its endpoint.
pub async fn get(app: &App, actor: &Actor, id: Id) -> Result<Option<MessageWithJob>> {
    let mut conn = app.db.conn().await?;
    let Some(found) = rows::find_message(&mut conn, id).await? else {
        return Ok(None);
    };
    drop(conn);
    let Some(endpoint) = endpoints::get(app, actor, found.0.endpoint_id).await? else {
        return Ok(None);
    };
    let resource = resource_of(endpoint.organization_id);
    Ok(guard::allows(app, actor, Action::AuditRead, resource)
        .await?
        .then_some(found))
}

/// The endpoint, when the caller may deliver to it and it is enabled.
async fn deliverable(app: &App, actor: &Actor, endpoint_id: Id) -> Result<WebhookEndpointRow> {
    let endpoint = endpoints::visible(app, actor, endpoint_id).await?;
    guard::check(
        app,
        actor,
        Action::WebhookDeliver,
        resource_of(endpoint.organization_id),
    )
    .await?;
    if !endpoint.enabled {
        return Err(Error::conflict_because(
            "input.endpointId",
            "the endpoint is disabled; enable it first (updateWebhookEndpoint)",
            "ENDPOINT_DISABLED",
            None,
        ));
    }
    Ok(endpoint)
}

/// Queues a failed or dead message again, due now, with a fresh set of attempts.
pub async fn retry(app: &App, actor: &Actor, id: Id) -> Result<MessageWithJob> {
    let (message, job) = get(app, actor, id)
        .await?
        .ok_or(Error::NotFound("webhook message"))?;
    let endpoint = deliverable(app, actor, message.endpoint_id).await?;
    let now = app.now();
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        if !rows::requeue(tx, id, now).await? {
            return Err(Error::conflict_because(
                "input.id",
                "only a failed or dead message can be retried; this one is pending or delivered",
                "NOT_FAILED",
                None,
            ));
        }
        let event = Event::by(actor, AuditAction::WebhookMessageRetried)
            .in_organization(endpoint.organization_id)
            .target(endpoints::target(&endpoint))
            .target(Target::new("webhook_message", message.id, None))
            .with("eventType", &message.event_type)
            .with("lastError", &job.last_error);
        audit::record(tx, now, event).await.map(|_| ())
    })
    .await?;
    rows::find_message(&mut conn, id)
        .await?
        .ok_or(Error::NotFound("webhook message"))
}

/// Which part of the log `replayWebhookEvents` sends again.
#[derive(Debug, Clone, Default)]
pub struct ReplayRange {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Events after this log position (an event's `cursor`).
    pub after: Option<i64>,
}

/// What a replay queued.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub queued: i64,
    /// The position of the last event queued: pass it as `afterCursor` to continue when the
    /// replay stopped at [`MAX_REPLAY`].
    pub last_cursor: Option<String>,
    pub complete: bool,
}

/// Queues the endpoint's events in `range` again as new messages (marked as replays), in order.
pub async fn replay(app: &App, actor: &Actor, endpoint_id: Id, range: ReplayRange) -> Result<Replayed> {
    let endpoint = deliverable(app, actor, endpoint_id).await?;
    if range.since.is_none() && range.after.is_none() {
        return Err(Error::bad_input(
            "input.since",
            "give `since` or `afterCursor`: where the replay starts",
        ));
    }
    if let (Some(since), Some(until)) = (range.since, range.until)
        && until < since
    {
        return Err(Error::bad_input("input.until", "is before `since`"));
    }
    let wanted = patterns(&endpoint);
    let filter = AuditFilter {
        // Checked when the endpoint was saved: one that no longer parses is a fault, not "every
        // event" (which an empty list would mean).
        actions: wanted
            .iter()
            .map(|pattern| {
                ActionMatch::parse("eventTypes", pattern)
                    .map_err(|_| Error::internal(anyhow::anyhow!("stored event type {pattern:?}")))
            })
            .collect::<Result<_>>()?,
        since: range.since.map(Timestamp::stored),
        until: range.until.map(Timestamp::stored),
        ..AuditFilter::default()
    }
    .criteria();
    let scope = endpoint.organization_id.map_or(Scope::All, Scope::Organization);
    let mut conn = app.db.conn().await?;
    let mut events = Vec::new();
    let mut after = range.after;
    // One event past the cap says whether the range goes on.
    loop {
        let batch = log::list(&mut conn, scope, &filter, &Page::after(after, REPLAY_PAGE)).await?;
        let full = batch.has_more;
        after = batch.rows.last().map(|e| e.seq).or(after);
        events.extend(batch.rows);
        if !full || events.len() as i64 > MAX_REPLAY {
            break;
        }
    }
    let complete = events.len() as i64 <= MAX_REPLAY;
    events.truncate(MAX_REPLAY as usize);
    let now = app.now();
    let queued = events.len() as i64;
    let last_cursor = events.last().map(|e| cursor::encode(e.seq));
    conn.transaction(async |tx| {
        let first = rows::reserve_positions(tx, endpoint_id, queued)
            .await?
            .ok_or(Error::NotFound("webhook endpoint"))?;
        let mut jobs = Vec::with_capacity(events.len());
        let mut messages = Vec::with_capacity(events.len());
        for (offset, event) in (0_i64..).zip(&events) {
            let (job, message) = dispatch::message_for(&endpoint, event, REPLAY, Some(first + offset), now)?;
            jobs.push(job);
            messages.push(message);
        }
        enqueue(tx, now, jobs).await?;
        rows::insert_messages(tx, &messages).await?;
        let event = Event::by(actor, AuditAction::WebhookReplayRequested)
            .in_organization(endpoint.organization_id)
            .target(endpoints::target(&endpoint))
            .with("since", range.since)
            .with("until", range.until)
            .with("afterCursor", range.after.map(cursor::encode))
            .with("queued", queued);
        audit::record(tx, now, event).await.map(|_| ())
    })
    .await?;
    Ok(Replayed {
        queued,
        last_cursor,
        complete,
    })
}

/// Queues again every failed (retrying) and dead message of the endpoint created since `since`.
pub async fn recover(app: &App, actor: &Actor, endpoint_id: Id, since: Timestamp) -> Result<i64> {
    let endpoint = deliverable(app, actor, endpoint_id).await?;
    let now = app.now();
    let mut conn = app.db.conn().await?;
    let ids = rows::failed_since(&mut conn, endpoint_id, since).await?;
    conn.transaction(async |tx| {
        let mut queued = 0_i64;
        for id in &ids {
            if rows::requeue(tx, *id, now).await? {
                queued += 1;
            }
        }
        let event = Event::by(actor, AuditAction::WebhookReplayRequested)
            .in_organization(endpoint.organization_id)
            .target(endpoints::target(&endpoint))
            .with("recover", true)
            .with("since", since)
            .with("queued", queued);
        audit::record(tx, now, event).await?;
        Ok(queued)
    })
    .await
}

/// Queues a `webhook.test` message to the endpoint.
pub async fn send_test(app: &App, actor: &Actor, endpoint_id: Id) -> Result<MessageWithJob> {
    let endpoint = deliverable(app, actor, endpoint_id).await?;
    let now = app.now();
    let mut conn = app.db.conn().await?;
    let id = conn
        .transaction(async |tx| {
            let message = WebhookMessageRow {
                id: Id::new_v7(),
                endpoint_id,
                kind: TEST.to_owned(),
                event_id: None,
                event_seq: None,
                event_type: TEST_TYPE.to_owned(),
                created_at: now,
            };
            // Outside the order: a test should not wait behind a message in a long backoff.
            let job = dispatch::delivery_job(&endpoint, message.id, None)?;
            enqueue(tx, now, vec![job]).await?;
            rows::insert_messages(tx, std::slice::from_ref(&message)).await?;
            Ok(message.id)
        })
        .await?;
    rows::find_message(&mut conn, id)
        .await?
        .ok_or(Error::NotFound("webhook message"))
}

/// The attempts of these messages, oldest first.
pub async fn attempts_of(app: &App, message_ids: &[Id]) -> Result<Vec<WebhookAttemptRow>> {
    let mut conn = app.db.conn().await?;
    rows::attempts_of(&mut conn, message_ids).await
}

/// How often a live view looks for attempts made by other instances.
const LIVE_POLL: Duration = Duration::from_secs(1);
/// How often a live view re-checks its caller's credentials and permission.
const LIVE_REVALIDATE: Duration = Duration::from_secs(15);
/// How far back each look reaches: an attempt is stamped when it starts and recorded when it ends.
const LIVE_WINDOW: TimeDelta = TimeDelta::seconds(120);

/// Attempts at delivering to the endpoint, live: this instance's at once, other instances' within
/// a second. Ends when the caller loses the right to see the endpoint.
pub async fn watch(
    app: &App,
    actor: &Actor,
    endpoint_id: Id,
) -> Result<impl Stream<Item = Result<WebhookAttemptRow>> + use<>> {
    endpoints::visible(app, actor, endpoint_id).await?;
    let state = Live {
        app: app.clone(),
        actor: actor.clone(),
        endpoint_id,
        local: app.webhooks.attempts(),
        seen: HashMap::new(),
        ready: VecDeque::new(),
        since: app.now(),
        revalidated: tokio::time::Instant::now(),
        polls: tokio::time::interval(LIVE_POLL),
    };
    Ok(futures_util::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        match state.next().await {
            Ok(attempt) => Some((Ok(attempt), Some(state))),
            Err(error) => Some((Err(error), None)),
        }
    }))
}

struct Live {
    app: App,
    actor: Actor,
    endpoint_id: Id,
    local: tokio::sync::broadcast::Receiver<std::sync::Arc<WebhookAttemptRow>>,
    /// Attempts already sent that are still within the look-back window, with when they started.
    seen: HashMap<Id, Timestamp>,
    ready: VecDeque<WebhookAttemptRow>,
    /// When the view began: nothing older is sent.
    since: Timestamp,
    revalidated: tokio::time::Instant,
    /// Looks for other instances' attempts on its own beat, however busy this instance is.
    polls: tokio::time::Interval,
}

impl Live {
    async fn next(&mut self) -> Result<WebhookAttemptRow> {
        loop {
            if let Some(attempt) = self.ready.pop_front() {
                return Ok(attempt);
            }
            if self.revalidated.elapsed() >= LIVE_REVALIDATE {
                revalidate(&self.app, &self.actor).await?;
                endpoints::visible(&self.app, &self.actor, self.endpoint_id).await?;
                self.revalidated = tokio::time::Instant::now();
            }
            tokio::select! {
                received = self.local.recv() => {
                    if let Ok(attempt) = received
                        && attempt.endpoint_id == self.endpoint_id
                        && self.seen.insert(attempt.id, attempt.attempted_at).is_none()
                    {
                        return Ok((*attempt).clone());
                    }
                    continue;
                }
                _ = self.polls.tick() => {}
            }
            self.poll().await?;
        }
    }

    /// Picks up attempts recorded by other instances.
    async fn poll(&mut self) -> Result<()> {
        let floor = self.since.max(self.app.now() - LIVE_WINDOW);
        let mut conn = self.app.db.conn().await?;
        let found = rows::attempts_since(&mut conn, self.endpoint_id, floor, 500).await?;
        for attempt in found {
            if self.seen.insert(attempt.id, attempt.attempted_at).is_none() {
                self.ready.push_back(attempt);
            }
        }
        // Forget what has left the window, so the set stays small on a busy endpoint.
        self.seen.retain(|_, at| *at >= floor);
        Ok(())
    }
}
