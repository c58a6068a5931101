//! Queries over `jobs`, the durable outbox: enqueue inside the caller's transaction, claim due
//! jobs (on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so instances never take the same one), and
//! settle each claim.
//!
//! A claim is identified by the job's id *and* its attempt number: a worker whose lease lapsed and
//! whose job was taken over can no longer settle it.

use chrono::TimeDelta;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::JobRow;
use super::notify::{self, JOBS_CHANNEL};
use super::page::paginate;
use super::schema::jobs;
use super::types::{Id, Timestamp};
use super::{DbConn, Page, PageOf, with_conn};
use crate::error::Result;

pub const PENDING: &str = "pending";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const DEAD: &str = "dead";

/// Inserts `row` within the caller's transaction and announces it once that commits.
pub async fn insert(tx: &mut DbConn, row: &JobRow) -> Result<()> {
    insert_all(tx, std::slice::from_ref(row)).await
}

/// Inserts several jobs within the caller's transaction (many rows per statement).
pub async fn insert_all(tx: &mut DbConn, rows: &[JobRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    super::insert_many!(tx, jobs::table, rows, INSERT_CHUNK)?;
    notify::announce(tx, JOBS_CHANNEL).await?;
    tx.jobs_enqueued();
    Ok(())
}

/// Rows per INSERT statement: well under both backends' limits on bound parameters.
const INSERT_CHUNK: usize = 500;

/// Claims up to `limit` due jobs for `lease`: pending ones whose time has come, and running ones
/// whose previous claim lapsed (their worker died or hung). Returns them with the new attempt.
///
/// Lanes throttle related jobs (one webhook endpoint's deliveries): a job with a lane position
/// waits while an earlier job of its lane is pending or running, or any other job of its lane is
/// running, so an ordered lane runs one job at a time in position order; jobs in a lane without
/// positions run at most `lane_width` at once (counted at claim time, so instances claiming at the
/// same instant may briefly exceed it).
pub async fn claim(
    conn: &mut DbConn,
    now: Timestamp,
    lease: TimeDelta,
    limit: i64,
    lane_width: i64,
) -> Result<Vec<JobRow>> {
    conn.transaction(async |tx| {
        let other = diesel::alias!(jobs as other);
        macro_rules! due {
            () => {
                jobs::table
                    .filter(
                        (jobs::status.eq(PENDING).and(jobs::run_at.le(now)))
                            .or(jobs::status.eq(RUNNING).and(jobs::locked_until.le(now))),
                    )
                    // Ordered: no earlier job of the lane unsettled, and none running at all
                    // (a retried earlier job must not overtake one already being sent).
                    .filter(
                        jobs::lane_position
                            .is_null()
                            .or(diesel::dsl::not(diesel::dsl::exists(
                                other.filter(
                                    other.field(jobs::lane).eq(jobs::lane).and(
                                        (other
                                            .field(jobs::lane_position)
                                            .lt(jobs::lane_position)
                                            .and(other.field(jobs::status).eq_any([PENDING, RUNNING])))
                                        .or(other
                                            .field(jobs::status)
                                            .eq(RUNNING)
                                            .and(other.field(jobs::id).ne(jobs::id))),
                                    ),
                                ),
                            ))),
                    )
                    // Unordered: fewer than `lane_width` of the lane running.
                    .filter(
                        jobs::lane
                            .is_null()
                            .or(jobs::lane_position.is_not_null())
                            .or(other
                                .filter(
                                    other
                                        .field(jobs::lane)
                                        .eq(jobs::lane)
                                        .and(other.field(jobs::status).eq(RUNNING))
                                        .and(other.field(jobs::locked_until).gt(now)),
                                )
                                .count()
                                .single_value()
                                .lt(lane_width)),
                    )
                    .order(jobs::run_at.asc())
                    .limit(limit)
                    .select((jobs::id, jobs::lane, jobs::lane_position))
            };
        }
        let due: Vec<(Id, Option<String>, Option<i64>)> = super::load_skip_locked!(tx, due!())?;
        let ids = within_lane_width(tx, due, now, lane_width).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = with_conn!(tx, |c| {
            diesel::update(jobs::table.filter(jobs::id.eq_any(&ids)))
                .set((
                    jobs::status.eq(RUNNING),
                    jobs::attempts.eq(jobs::attempts + 1),
                    jobs::locked_until.eq(now + lease),
                    jobs::updated_at.eq(now),
                ))
                .execute(c)
                .await?;
            jobs::table
                .filter(jobs::id.eq_any(&ids))
                .order(jobs::run_at.asc())
                .select(JobRow::as_select())
                .load(c)
                .await
        })?;
        Ok(rows)
    })
    .await
}

/// The ids of `due` to claim: all but those of unordered lanes already running `lane_width` jobs.
async fn within_lane_width(
    tx: &mut DbConn,
    due: Vec<(Id, Option<String>, Option<i64>)>,
    now: Timestamp,
    lane_width: i64,
) -> Result<Vec<Id>> {
    let lanes: Vec<String> = due
        .iter()
        .filter(|(_, _, position)| position.is_none())
        .filter_map(|(_, lane, _)| lane.clone())
        .collect();
    let mut running: std::collections::HashMap<String, i64> = if lanes.is_empty() {
        std::collections::HashMap::new()
    } else {
        let counts: Vec<(Option<String>, i64)> = with_conn!(tx, |c| jobs::table
            .filter(jobs::lane.eq_any(&lanes))
            .filter(jobs::status.eq(RUNNING).and(jobs::locked_until.gt(now)))
            .group_by(jobs::lane)
            .select((jobs::lane, diesel::dsl::count_star()))
            .load(c)
            .await)?;
        counts
            .into_iter()
            .filter_map(|(lane, count)| Some((lane?, count)))
            .collect()
    };
    Ok(due
        .into_iter()
        .filter(|(_, lane, position)| match (lane, position) {
            (Some(lane), None) => {
                let taken = running.entry(lane.clone()).or_default();
                *taken += 1;
                *taken <= lane_width
            }
            _ => true,
        })
        .map(|(id, _, _)| id)
        .collect())
}

/// The running job `$id` as claimed for `$attempt`.
macro_rules! claimed {
    ($id:expr, $attempt:expr) => {
        jobs::table.filter(
            jobs::id
                .eq($id)
                .and(jobs::status.eq(RUNNING))
                .and(jobs::attempts.eq($attempt)),
        )
    };
}

/// Settles a claim as done. False when the claim was no longer this worker's.
pub async fn succeed(conn: &mut DbConn, id: Id, attempt: i32, now: Timestamp) -> Result<bool> {
    let updated = with_conn!(conn, |c| diesel::update(claimed!(id, attempt))
        .set((
            jobs::status.eq(SUCCEEDED),
            jobs::locked_until.eq(None::<Timestamp>),
            jobs::updated_at.eq(now),
            jobs::finished_at.eq(now),
        ))
        .execute(c)
        .await)?;
    Ok(updated > 0)
}

/// Settles a claim as failed for now: the job is due again at `run_at`.
pub async fn retry_at(
    conn: &mut DbConn,
    id: Id,
    attempt: i32,
    error: &str,
    run_at: Timestamp,
    now: Timestamp,
) -> Result<bool> {
    let updated = with_conn!(conn, |c| diesel::update(claimed!(id, attempt))
        .set((
            jobs::status.eq(PENDING),
            jobs::run_at.eq(run_at),
            jobs::locked_until.eq(None::<Timestamp>),
            jobs::last_error.eq(error),
            jobs::updated_at.eq(now),
        ))
        .execute(c)
        .await)?;
    Ok(updated > 0)
}

/// Settles a claim as failed for good: the job goes to the dead letters.
pub async fn kill(conn: &mut DbConn, id: Id, attempt: i32, error: &str, now: Timestamp) -> Result<bool> {
    let updated = with_conn!(conn, |c| diesel::update(claimed!(id, attempt))
        .set((
            jobs::status.eq(DEAD),
            jobs::locked_until.eq(None::<Timestamp>),
            jobs::last_error.eq(error),
            jobs::updated_at.eq(now),
            jobs::finished_at.eq(now),
        ))
        .execute(c)
        .await)?;
    Ok(updated > 0)
}

/// Puts a dead job back in the queue, due now, with a fresh set of attempts. False when the job
/// is not dead (pending, running and delivered jobs are left alone).
pub async fn revive(conn: &mut DbConn, id: Id, now: Timestamp) -> Result<bool> {
    let updated = with_conn!(conn, |c| diesel::update(
        jobs::table.filter(jobs::id.eq(id).and(jobs::status.eq(DEAD)))
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
        notify::announce(conn, JOBS_CHANNEL).await?;
    }
    Ok(updated > 0)
}

/// When the next job falls due (a pending one's time, or a running one's lapsing lease). Lane
/// jobs already past their time are left out: a claim just found them held back by their lane,
/// and the runner is woken when a job of a lane settles.
pub async fn next_due(conn: &mut DbConn, now: Timestamp) -> Result<Option<Timestamp>> {
    let (pending, running) = with_conn!(conn, |c| {
        let pending: Option<Timestamp> = jobs::table
            .filter(jobs::status.eq(PENDING))
            .filter(jobs::lane.is_null().or(jobs::run_at.gt(now)))
            .order(jobs::run_at.asc())
            .select(jobs::run_at)
            .limit(1)
            .get_result(c)
            .await
            .optional()?;
        let running: Option<Option<Timestamp>> = jobs::table
            .filter(jobs::status.eq(RUNNING))
            .order(jobs::locked_until.asc())
            .select(jobs::locked_until)
            .limit(1)
            .get_result(c)
            .await
            .optional()?;
        Ok::<_, diesel::result::Error>((pending, running.flatten()))
    })?;
    Ok(match (pending, running) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

pub async fn find(conn: &mut DbConn, id: Id) -> Result<Option<JobRow>> {
    let row = with_conn!(conn, |c| jobs::table
        .find(id)
        .select(JobRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub kinds: Vec<String>,
    pub statuses: Vec<String>,
    /// Only these organizations' jobs (`None`: every job, organization or not).
    pub organization_ids: Option<Vec<Id>>,
    pub recipient: Option<String>,
}

pub async fn list(conn: &mut DbConn, filter: &JobFilter, page: &Page) -> Result<PageOf<JobRow>> {
    macro_rules! filtered {
        () => {{
            let mut query = jobs::table.into_boxed();
            if !filter.kinds.is_empty() {
                query = query.filter(jobs::kind.eq_any(&filter.kinds));
            }
            if !filter.statuses.is_empty() {
                query = query.filter(jobs::status.eq_any(&filter.statuses));
            }
            if let Some(ids) = &filter.organization_ids {
                query = query.filter(jobs::organization_id.eq_any(ids));
            }
            if let Some(recipient) = &filter.recipient {
                query = query.filter(jobs::recipient.eq(recipient));
            }
            query
        }};
    }
    let (rows, total) = with_conn!(conn, |c| {
        let rows = paginate!(filtered!().select(JobRow::as_select()), jobs::id, page)
            .load(c)
            .await?;
        let total: i64 = filtered!().count().get_result(c).await?;
        Ok::<_, diesel::result::Error>((rows, total))
    })?;
    Ok(page.finish(rows, total))
}

/// Deletes settled jobs that finished before `cutoff`; returns how many.
pub async fn delete_finished_before(conn: &mut DbConn, cutoff: Timestamp) -> Result<usize> {
    let deleted = with_conn!(conn, |c| diesel::delete(
        jobs::table.filter(jobs::finished_at.lt(cutoff))
    )
    .execute(c)
    .await)?;
    Ok(deleted)
}
