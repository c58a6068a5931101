//! Periodic work done by one instance at a time, on the database's clock.
//!
//! Every instance runs the same timers; on PostgreSQL a pass first tries a session-level advisory
//! lock (`pg_try_advisory_lock`) and skips its turn when another instance holds it. The lock lives
//! on a connection of its own, opened to the direct (LISTEN) URL for the pass: a session lock
//! means nothing through a pooler in transaction mode, and a process that dies mid-pass loses the
//! connection, so PostgreSQL releases the lock with it. The pass is handed
//! the database's `now()`, so that instances whose clocks disagree agree on what is due: a clock a
//! year fast must not expire everything. SQLite serves one process: there the pass always runs,
//! on the caller's clock.

use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::types::PortableTimestamp;
use super::{Backend, Db, Timestamp};
use crate::error::{Error, Result};

/// Advisory lock keys of periodic work (see also `startup_lock::STARTUP_LOCK_KEY`): "pcsweeps"
/// and "pcretain" in ASCII, so they never collide with each other or the start-up lock.
#[derive(Debug, Clone, Copy)]
#[repr(i64)]
pub enum Periodic {
    /// Invitation expiry, passkey ceremonies and setup links, settled jobs, credential attempts.
    Sweeps = 0x7063_7377_6565_7073,
    /// Audit retention.
    Retention = 0x7063_7265_7461_696e,
}

#[diesel::declare_sql_function]
extern "SQL" {
    /// Takes a session-level advisory lock if it is free.
    fn pg_try_advisory_lock(key: BigInt) -> diesel::sql_types::Bool;
    /// Releases one.
    fn pg_advisory_unlock(key: BigInt) -> diesel::sql_types::Bool;
}

/// Runs `work` unless another instance is doing `which` right now (then `Ok(None)`). `work` gets
/// the database's time on PostgreSQL, `fallback` on SQLite.
pub async fn exclusively<T>(
    db: &Db,
    which: Periodic,
    fallback: Timestamp,
    work: impl AsyncFnOnce(Timestamp) -> Result<T>,
) -> Result<Option<T>> {
    if db.backend() == Backend::Sqlite {
        return work(fallback).await.map(Some);
    }
    let key = which as i64;
    let c = &mut AsyncPgConnection::establish(db.listen_url())
        .await
        .map_err(Error::internal)?;
    let (held, now): (bool, Timestamp) = diesel::select((
        pg_try_advisory_lock(key),
        diesel::dsl::sql::<PortableTimestamp>("now()"),
    ))
    .get_result(c)
    .await?;
    if !held {
        return Ok(None);
    }
    let outcome = work(now).await;
    // The work's result stands whatever happens here: dropping the connection releases the lock
    // anyway, and a failed unlock must not hide work already done (a purge unrecorded, say).
    if let Err(error) = diesel::select(pg_advisory_unlock(key))
        .get_result::<bool>(c)
        .await
    {
        tracing::warn!(error = ?error, "releasing a periodic lock failed; closing its connection");
    }
    outcome.map(Some)
}
