//! Queries over webhook endpoints, their messages (each paired with the job that delivers it) and
//! delivery attempts.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::jobs::{DEAD, PENDING, RUNNING, SUCCEEDED};
use super::models::{JobRow, WebhookAttemptRow, WebhookEndpointRow, WebhookMessageRow};
use super::page::paginate;
use super::schema::{jobs, webhook_attempts, webhook_endpoints, webhook_messages};
use super::types::{Id, Timestamp};
use super::{DbConn, Page, PageOf, with_conn};
use crate::error::Result;

/// Rows per INSERT statement: well under both backends' limits on bound parameters.
const INSERT_CHUNK: usize = 400;

pub async fn insert_endpoint(conn: &mut DbConn, row: &WebhookEndpointRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(webhook_endpoints::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(())
}

pub async fn find_endpoint(conn: &mut DbConn, id: Id) -> Result<Option<WebhookEndpointRow>> {
    let row = with_conn!(conn, |c| webhook_endpoints::table
        .find(id)
        .select(WebhookEndpointRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// The endpoint, locked until the transaction ends (PostgreSQL; SQLite's writer holds the file).
pub async fn lock_endpoint(tx: &mut DbConn, id: Id) -> Result<Option<WebhookEndpointRow>> {
    macro_rules! query {
        () => {
            webhook_endpoints::table
                .find(id)
                .select(WebhookEndpointRow::as_select())
        };
    }
    let row = match tx {
        DbConn::Postgres(c, _) => {
            let c: &mut diesel_async::AsyncPgConnection = &mut *c;
            query!().for_update().get_result(c).await.optional()
        }
        DbConn::Sqlite(c, _) => {
            let c: &mut super::SqliteConn = &mut *c;
            query!().get_result(c).await.optional()
        }
    }?;
    Ok(row)
}

/// Writes every column of `row` back.
pub async fn update_endpoint(conn: &mut DbConn, row: &WebhookEndpointRow) -> Result<()> {
    with_conn!(conn, |c| diesel::update(webhook_endpoints::table.find(row.id))
        .set(row)
        .execute(c)
        .await)?;
    Ok(())
}

/// Deletes the endpoint with its queued and settled jobs (and so its messages and attempts).
pub async fn delete_endpoint(tx: &mut DbConn, id: Id) -> Result<bool> {
    let lane = id.to_string();
    let deleted = with_conn!(tx, |c| {
        diesel::delete(jobs::table.filter(jobs::lane.eq(&lane)))
            .execute(c)
            .await?;
        diesel::delete(webhook_endpoints::table.find(id)).execute(c).await
    })?;
    Ok(deleted > 0)
}

/// Which endpoints a list shows: the gateway-wide ones, or one organization's.
#[derive(Debug, Clone, Copy)]
pub enum EndpointScope {
    Gateway,
    Organization(Id),
}

pub async fn list_endpoints(
    conn: &mut DbConn,
    scope: EndpointScope,
    page: &Page,
) -> Result<PageOf<WebhookEndpointRow>> {
    macro_rules! scoped {
        () => {{
            let query = webhook_endpoints::table.into_boxed();
            match scope {
                EndpointScope::Gateway => query.filter(webhook_endpoints::organization_id.is_null()),
                EndpointScope::Organization(org) => query.filter(webhook_endpoints::organization_id.eq(org)),
            }
        }};
    }
    let (rows, total) = with_conn!(conn, |c| {
        let rows = paginate!(
            scoped!().select(WebhookEndpointRow::as_select()),
            webhook_endpoints::id,
            page
        )
        .load(c)
        .await?;
        let total: i64 = scoped!().count().get_result(c).await?;
        Ok::<_, diesel::result::Error>((rows, total))
    })?;
    Ok(page.finish(rows, total))
}

/// Whether any enabled endpoint has not yet seen the event at `head` (a read, to skip taking
/// locks when there is nothing to dispatch).
pub async fn any_behind(conn: &mut DbConn, head: i64) -> Result<bool> {
    let found = with_conn!(conn, |c| diesel::select(diesel::dsl::exists(
        webhook_endpoints::table
            .filter(webhook_endpoints::enabled.eq(true))
            .filter(webhook_endpoints::cursor_seq.lt(head))
    ))
    .get_result(c)
    .await)?;
    Ok(found)
}

/// Enabled endpoints that have not yet seen the event at `head`, locked for this transaction;
/// those another instance is dispatching to right now are skipped.
pub async fn lock_behind(tx: &mut DbConn, head: i64) -> Result<Vec<WebhookEndpointRow>> {
    macro_rules! query {
        () => {
            webhook_endpoints::table
                .filter(webhook_endpoints::enabled.eq(true))
                .filter(webhook_endpoints::cursor_seq.lt(head))
                .order(webhook_endpoints::id)
                .select(WebhookEndpointRow::as_select())
        };
    }
    let rows = super::load_skip_locked!(tx, query!())?;
    Ok(rows)
}

/// Moves an endpoint's dispatch cursor and lane position forward.
pub async fn advance(tx: &mut DbConn, id: Id, cursor_seq: i64, next_position: i64) -> Result<()> {
    with_conn!(tx, |c| diesel::update(webhook_endpoints::table.find(id))
        .set((
            webhook_endpoints::cursor_seq.eq(cursor_seq),
            webhook_endpoints::next_position.eq(next_position),
        ))
        .execute(c)
        .await)?;
    Ok(())
}

/// Reserves `count` consecutive lane positions of an endpoint; returns the first.
pub async fn reserve_positions(tx: &mut DbConn, id: Id, count: i64) -> Result<Option<i64>> {
    let Some(endpoint) = lock_endpoint(tx, id).await? else {
        return Ok(None);
    };
    let first = endpoint.next_position;
    with_conn!(tx, |c| diesel::update(webhook_endpoints::table.find(id))
        .set(webhook_endpoints::next_position.eq(first + count))
        .execute(c)
        .await)?;
    Ok(Some(first))
}

/// After a success: the endpoint is no longer failing.
pub async fn mark_healthy(conn: &mut DbConn, id: Id) -> Result<()> {
    with_conn!(conn, |c| diesel::update(
        webhook_endpoints::table
            .find(id)
            .filter(webhook_endpoints::failing_since.is_not_null()),
    )
    .set(webhook_endpoints::failing_since.eq(None::<Timestamp>))
    .execute(c)
    .await)?;
    Ok(())
}

/// After a failure: since when the endpoint has been failing (`now`, unless it already was).
pub async fn mark_failing(conn: &mut DbConn, id: Id, now: Timestamp) -> Result<Option<Timestamp>> {
    let since = with_conn!(conn, |c| {
        diesel::update(
            webhook_endpoints::table
                .find(id)
                .filter(webhook_endpoints::failing_since.is_null()),
        )
        .set(webhook_endpoints::failing_since.eq(now))
        .execute(c)
        .await?;
        webhook_endpoints::table
            .find(id)
            .select(webhook_endpoints::failing_since)
            .get_result::<Option<Timestamp>>(c)
            .await
            .optional()
    })?;
    Ok(since.flatten())
}

/// Disables an enabled endpoint, saying why. False when it was already disabled (or is gone).
pub async fn disable(tx: &mut DbConn, id: Id, reason: &str, now: Timestamp) -> Result<bool> {
    let updated = with_conn!(tx, |c| diesel::update(
        webhook_endpoints::table
            .find(id)
            .filter(webhook_endpoints::enabled.eq(true))
    )
    .set((
        webhook_endpoints::enabled.eq(false),
        webhook_endpoints::disabled_reason.eq(reason),
        webhook_endpoints::updated_at.eq(now),
    ))
    .execute(c)
    .await)?;
    Ok(updated > 0)
}

/// Inserts messages whose jobs the caller has just inserted in the same transaction.
pub async fn insert_messages(tx: &mut DbConn, rows: &[WebhookMessageRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    super::insert_many!(tx, webhook_messages::table, rows, INSERT_CHUNK)?;
    Ok(())
}

/// A message with the job that delivers it.
pub type MessageWithJob = (WebhookMessageRow, JobRow);

pub async fn find_message(conn: &mut DbConn, id: Id) -> Result<Option<MessageWithJob>> {
    let row = with_conn!(conn, |c| webhook_messages::table
        .inner_join(jobs::table)
        .filter(webhook_messages::id.eq(id))
        .select((WebhookMessageRow::as_select(), JobRow::as_select()))
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// Where a message stands, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    /// Not yet attempted, or being attempted.
    Pending,
    /// Delivered.
    Delivered,
    /// Failed at least once; another attempt is scheduled.
    Failed,
    /// Given up on: the dead-letter queue.
    Dead,
}

impl MessageStatus {
    /// The status of a message whose job is `job`.
    pub fn of(job: &JobRow) -> Self {
        match job.status.as_str() {
            SUCCEEDED => Self::Delivered,
            DEAD => Self::Dead,
            PENDING if job.attempts > 0 => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// Which messages to list.
#[derive(Debug, Clone)]
pub struct MessageFilter {
    pub endpoint_id: Id,
    pub status: Option<MessageStatus>,
    pub event_type: Option<String>,
    /// Inclusive bounds on when the message was created.
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

pub async fn list_messages(
    conn: &mut DbConn,
    filter: &MessageFilter,
    page: &Page,
) -> Result<PageOf<MessageWithJob>> {
    macro_rules! filtered {
        () => {{
            let mut query = webhook_messages::table
                .inner_join(jobs::table)
                .filter(webhook_messages::endpoint_id.eq(filter.endpoint_id))
                .into_boxed();
            query = match filter.status {
                None => query,
                Some(MessageStatus::Delivered) => query.filter(jobs::status.eq(SUCCEEDED)),
                Some(MessageStatus::Dead) => query.filter(jobs::status.eq(DEAD)),
                Some(MessageStatus::Failed) => {
                    query.filter(jobs::status.eq(PENDING).and(jobs::attempts.gt(0)))
                }
                Some(MessageStatus::Pending) => query.filter(
                    jobs::status
                        .eq(RUNNING)
                        .or(jobs::status.eq(PENDING).and(jobs::attempts.eq(0))),
                ),
            };
            if let Some(event_type) = &filter.event_type {
                query = query.filter(webhook_messages::event_type.eq(event_type));
            }
            if let Some(since) = filter.since {
                query = query.filter(webhook_messages::created_at.ge(since));
            }
            if let Some(until) = filter.until {
                query = query.filter(webhook_messages::created_at.le(until));
            }
            query
        }};
    }
    let (rows, total) = with_conn!(conn, |c| {
        let rows = paginate!(
            filtered!().select((WebhookMessageRow::as_select(), JobRow::as_select())),
            webhook_messages::id,
            page
        )
        .load(c)
        .await?;
        let total: i64 = filtered!().count().get_result(c).await?;
        Ok::<_, diesel::result::Error>((rows, total))
    })?;
    Ok(page.finish(rows, total))
}

/// The ids of an endpoint's failed (retrying) and dead messages created since `since`.
pub async fn failed_since(conn: &mut DbConn, endpoint_id: Id, since: Timestamp) -> Result<Vec<Id>> {
    let ids = with_conn!(conn, |c| webhook_messages::table
        .inner_join(jobs::table)
        .filter(webhook_messages::endpoint_id.eq(endpoint_id))
        .filter(webhook_messages::created_at.ge(since))
        .filter(
            jobs::status
                .eq(DEAD)
                .or(jobs::status.eq(PENDING).and(jobs::attempts.gt(0))),
        )
        .order(webhook_messages::id)
        .select(webhook_messages::id)
        .load(c)
        .await)?;
    Ok(ids)
}

/// Makes a failed or dead message's job due now, with a fresh set of attempts. False when the
/// message is pending, being sent or delivered.
pub async fn requeue(tx: &mut DbConn, id: Id, now: Timestamp) -> Result<bool> {
    let updated = with_conn!(tx, |c| diesel::update(
        jobs::table.filter(
            jobs::id.eq(id).and(
                jobs::status
                    .eq(DEAD)
                    .or(jobs::status.eq(PENDING).and(jobs::attempts.gt(0)))
            )
        )
    )
    .set((
        jobs::status.eq(PENDING),
        jobs::attempts.eq(0),
        jobs::run_at.eq(now),
        jobs::finished_at.eq(None::<Timestamp>),
        jobs::updated_at.eq(now),
    ))
    .execute(c)
    .await)?;
    if updated > 0 {
        super::notify::announce(tx, super::notify::JOBS_CHANNEL).await?;
        tx.jobs_enqueued();
    }
    Ok(updated > 0)
}

pub async fn insert_attempt(conn: &mut DbConn, row: &WebhookAttemptRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(webhook_attempts::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(())
}

/// The attempts of these messages, oldest first.
pub async fn attempts_of(conn: &mut DbConn, message_ids: &[Id]) -> Result<Vec<WebhookAttemptRow>> {
    let rows = with_conn!(conn, |c| webhook_attempts::table
        .filter(webhook_attempts::message_id.eq_any(message_ids))
        .order((webhook_attempts::attempted_at, webhook_attempts::id))
        .select(WebhookAttemptRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}

/// An endpoint's attempts made at or after `since`, oldest first (what a live view polls).
pub async fn attempts_since(
    conn: &mut DbConn,
    endpoint_id: Id,
    since: Timestamp,
    limit: i64,
) -> Result<Vec<WebhookAttemptRow>> {
    let rows = with_conn!(conn, |c| webhook_attempts::table
        .filter(webhook_attempts::endpoint_id.eq(endpoint_id))
        .filter(webhook_attempts::attempted_at.ge(since))
        .order((webhook_attempts::attempted_at, webhook_attempts::id))
        .limit(limit)
        .select(WebhookAttemptRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}
