//! Queries over `credential_attempts`: the counts behind the credential rate limits, shared by
//! every instance on the database.
//!
//! Each step is one statement, so that it is atomic on both backends without a transaction: the
//! row lock of an upsert (PostgreSQL) or the single writer (SQLite) puts concurrent attempts from
//! any number of instances one after the other. The rules of the limits live in
//! `identity::rate_limit`; this room only knows how a row moves.

use chrono::TimeDelta;
use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::sql_types::Integer;
use diesel_async::RunQueryDsl;

use super::schema::credential_attempts as ca;
use super::types::{PortableTimestamp, Timestamp};
use super::{DbConn, with_conn};
use crate::error::Result;

/// A first attempt for a key, or a key whose row has expired.
#[derive(Insertable)]
#[diesel(table_name = ca)]
struct Fresh<'a> {
    limiter: &'a str,
    key_hash: &'a [u8],
    window_started: Timestamp,
    attempts: i32,
    locked_until: Option<Timestamp>,
    expires_at: Timestamp,
}

/// What counting one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Counted: the key's window began at `window_started` and now holds `attempts`.
    Yes {
        window_started: Timestamp,
        attempts: i32,
    },
    /// Not counted: the key is locked, or its budget is spent, until `until` (`None`: the row was
    /// deleted between the two statements; the caller may simply try again).
    Refused { until: Option<Timestamp> },
}

/// Counts an attempt for (`limiter`, `key_hash`) unless the key is locked or already holds `max`
/// attempts. A row whose window or lock has ended (`expires_at` ≤ `now`) starts afresh with this
/// attempt, its window ending `window` later.
///
/// The decision is the upsert's own `WHERE`, taken against the row as it is when the statement
/// holds it: attempts racing on any instances cannot all slip under the budget. A refusal costs a
/// second read, for the instant the caller may try again.
pub async fn count(
    conn: &mut DbConn,
    limiter: &str,
    key_hash: &[u8],
    max: i32,
    window: TimeDelta,
    now: Timestamp,
) -> Result<Counted> {
    let fresh = Fresh {
        limiter,
        key_hash,
        window_started: now,
        attempts: 1,
        locked_until: None,
        expires_at: now + window,
    };
    // In `SET` and `WHERE`, columns name the row as it was before this statement.
    let ended = ca::expires_at.le(now);
    let upsert = diesel::insert_into(ca::table)
        .values(&fresh)
        .on_conflict((ca::limiter, ca::key_hash))
        .do_update()
        .set((
            ca::window_started
                .eq(case_when(ended, now.into_sql::<PortableTimestamp>()).otherwise(ca::window_started)),
            ca::expires_at
                .eq(case_when(ended, (now + window).into_sql::<PortableTimestamp>())
                    .otherwise(ca::expires_at)),
            ca::attempts.eq(case_when(ended, 1.into_sql::<Integer>()).otherwise(ca::attempts + 1)),
            // The update happens only on a row free to count (see the filter): any lock is over.
            ca::locked_until.eq(None::<Timestamp>),
        ));
    // The `WHERE` of `ON CONFLICT DO UPDATE`: count on a row whose window or lock has ended, or on
    // an unlocked one with budget left. Otherwise nothing is written and nothing returned.
    let upsert = diesel::query_dsl::methods::FilterDsl::filter(
        upsert,
        ended.or(ca::locked_until.is_null().and(ca::attempts.lt(max))),
    )
    .returning((ca::window_started, ca::attempts));
    let counted = with_conn!(conn, |c| upsert
        .get_result::<(Timestamp, i32)>(c)
        .await
        .optional())?;
    if let Some((window_started, attempts)) = counted {
        return Ok(Counted::Yes {
            window_started,
            attempts,
        });
    }
    let until = with_conn!(conn, |c| ca::table
        .find((limiter, key_hash))
        .select(ca::expires_at)
        .get_result::<Timestamp>(c)
        .await
        .optional())?;
    Ok(Counted::Refused { until })
}

/// Until when the key refuses attempts at `now` — locked, or holding `max` counted attempts — or
/// `None` when it admits them. A read: callers that count only failures ask this first.
pub async fn refused_until(
    conn: &mut DbConn,
    limiter: &str,
    key_hash: &[u8],
    max: i32,
    now: Timestamp,
) -> Result<Option<Timestamp>> {
    let until = with_conn!(conn, |c| ca::table
        .find((limiter, key_hash))
        .filter(ca::expires_at.gt(now))
        .filter(ca::locked_until.is_not_null().or(ca::attempts.ge(max)))
        .select(ca::expires_at)
        .get_result::<Timestamp>(c)
        .await
        .optional())?;
    Ok(until)
}

/// Hands one attempt back to the window it was counted in (none once that window has given way
/// to another: a new window owes the old one nothing).
pub async fn hand_back(
    conn: &mut DbConn,
    limiter: &str,
    key_hash: &[u8],
    window_started: Timestamp,
) -> Result<()> {
    with_conn!(conn, |c| diesel::update(ca::table.find((limiter, key_hash)))
        .filter(ca::window_started.eq(window_started))
        .filter(ca::attempts.gt(0))
        .set(ca::attempts.eq(ca::attempts - 1))
        .execute(c)
        .await)?;
    Ok(())
}

/// Forgets the key: its next attempt starts a fresh window.
pub async fn forget(conn: &mut DbConn, limiter: &str, key_hash: &[u8]) -> Result<()> {
    with_conn!(conn, |c| diesel::delete(ca::table.find((limiter, key_hash)))
        .execute(c)
        .await)?;
    Ok(())
}

/// Locks the key until `until` unless a lock is already running at `now`; true when this call
/// set the lock (so that it is reported once, by one caller on one instance).
pub async fn lock(
    conn: &mut DbConn,
    limiter: &str,
    key_hash: &[u8],
    until: Timestamp,
    now: Timestamp,
) -> Result<bool> {
    let locked = with_conn!(conn, |c| diesel::update(ca::table.find((limiter, key_hash)))
        .filter(ca::locked_until.is_null().or(ca::expires_at.le(now)))
        .set((ca::locked_until.eq(until), ca::expires_at.eq(until)))
        .execute(c)
        .await)?;
    Ok(locked == 1)
}

/// Deletes the rows that no longer matter at `now` (their window or lock has ended); returns how
/// many. The next attempt for such a key would have started afresh anyway.
pub async fn delete_expired(conn: &mut DbConn, now: Timestamp) -> Result<usize> {
    let deleted = with_conn!(conn, |c| diesel::delete(ca::table.filter(ca::expires_at.le(now)))
        .execute(c)
        .await)?;
    Ok(deleted)
}

/// How many keys are tracked (for tests and operators).
pub async fn tracked(conn: &mut DbConn) -> Result<i64> {
    let count = with_conn!(conn, |c| ca::table.count().get_result(c).await)?;
    Ok(count)
}
