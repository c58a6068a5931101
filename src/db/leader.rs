//! Periodic work done by one instance at a time, on the database's clock.
//!
//! Every instance runs the same timers; on PostgreSQL a pass first tries a transaction-level
//! advisory lock (`pg_try_advisory_xact_lock`) and skips its turn when another instance holds it.
//! The lock lives in a transaction on a connection of its own, opened to the direct (LISTEN) URL
//! for the pass: an advisory lock means nothing through a pooler in transaction mode. A process
//! that dies mid-pass loses the connection, and one that freezes (SIGSTOP, a stalled VM) leaves the
//! transaction idle, which the server ends after `idle_in_transaction_session_timeout`: either
//! way the lock is released and another instance takes the next turn. The kernel keeps a frozen
//! process's TCP connections alive, so keepalives alone would not. A pass that outlives that
//! limit may find a second pass beside it; every periodic job is safe to overlap (deletes of what
//! is due, purges under the log's row lock), the lock only saves the duplicate work.
//!
//! The pass is handed the database's `now()`, so that instances whose clocks disagree agree on
//! what is due: a clock a year fast must not expire everything. SQLite serves one process: there the pass always runs,
//! on the caller's clock.

use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

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
    /// Takes a transaction-level advisory lock if it is free.
    fn pg_try_advisory_xact_lock(key: BigInt) -> diesel::sql_types::Bool;
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
    let silence = match db.idle_in_transaction_timeout_ms() {
        0 => String::new(),
        ms => format!("SET LOCAL idle_in_transaction_session_timeout = {ms}"),
    };
    c.batch_execute(&format!("BEGIN; {silence}")).await?;
    let (held, now): (bool, Timestamp) = diesel::select((
        pg_try_advisory_xact_lock(key),
        diesel::dsl::sql::<PortableTimestamp>("now()"),
    ))
    .get_result(c)
    .await?;
    if !held {
        return Ok(None);
    }
    let outcome = work(now).await;
    // The work's result stands whatever happens here: a closed connection released the lock
    // already, and a failed release must not hide work already done (a purge unrecorded, say).
    if let Err(error) = c.batch_execute("COMMIT").await {
        tracing::warn!(error = ?error, "ending a periodic turn failed; its lock went with its connection");
    }
    outcome.map(Some)
}
