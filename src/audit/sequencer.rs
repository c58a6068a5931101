//! Gives PostgreSQL's committed audit events their positions: moves them from the inbox into the
//! log in batches, each under the log's sequence row, and announces each batch after it commits.
//!
//! No request waits for this. Any instance may run a pass, and passes take turns on the sequence
//! row, so positions stay dense and a reader never sees a later position before an earlier one.
//! Each instance runs a pass after its own commits and once a second (the live feed's hub), so
//! events committed by an instance that died before positioning them are picked up by the others.
//! Readers of the log settle first, so a client reads its own writes.
//!
//! Hashing happens here too, one chain head read per chain per batch: audited transactions no
//! longer touch any chain head, so sign-ins all landing on the gateway-wide chain do not contend.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

use super::record;
use crate::db::{Backend, Db, DbConn, audit, settings};
use crate::error::Result;

/// Events positioned per transaction: bounds how long a pass holds the sequence row.
const BATCH: i64 = 1_000;

/// How long a pass may sit silent holding the sequence row before the server ends its session. A
/// pass only sends statements back to back, so silence means a frozen process (SIGSTOP, a stalled
/// VM) — whose kernel keeps its connections open — and every instance's positioning waits on it.
const PASS_SILENCE_MS: u32 = 2_000;

/// One process's way into positioning. Passes within a process run one at a time, and a caller
/// whom a pass that began after it arrived has already served does not run another: a burst of
/// readers settling at once costs one pass, not one each queued on the row.
pub struct Sequencer {
    db: Db,
    turn: Mutex<()>,
    /// Passes begun in this process (numbered from 1), and the number of the last one finished.
    begun: AtomicU64,
    finished: AtomicU64,
}

impl Sequencer {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            turn: Mutex::new(()),
            begun: AtomicU64::new(0),
            finished: AtomicU64::new(0),
        }
    }

    /// Positions every event committed to the inbox before the call and returns how many it moved
    /// (0 on SQLite, whose transactions position their own events). Take no pooled connection
    /// before calling it: a pass needs one of its own.
    pub async fn settle(&self) -> Result<usize> {
        if self.db.backend() != Backend::Postgres {
            return Ok(0);
        }
        // Any pass that begins from now on sees everything committed before this call.
        let serves_me = self.begun.load(Ordering::Acquire) + 1;
        let _turn = self.turn.lock().await;
        if self.finished.load(Ordering::Acquire) >= serves_me {
            return Ok(0);
        }
        let pass = self.begun.fetch_add(1, Ordering::AcqRel) + 1;
        let moved = self.pass().await;
        self.finished.store(pass, Ordering::Release);
        moved
    }

    /// Positions what is waiting, batch by batch, until a batch comes back short: that batch's
    /// statement saw every row committed before the pass began, so the pass ends even while
    /// writers keep committing.
    async fn pass(&self) -> Result<usize> {
        let mut conn = self.db.conn().await?;
        if !audit::inbox_waiting(&mut conn).await? {
            return Ok(0);
        }
        let mut moved = 0;
        loop {
            let batch = conn
                .transaction(async |tx| {
                    settings::limit_idle_in_transaction(tx, PASS_SILENCE_MS).await?;
                    audit::lock_log(tx).await?;
                    position_batch(tx).await
                })
                .await?;
            moved += batch;
            if batch > 0 {
                audit::announce(&mut conn).await?;
            }
            if batch < BATCH as usize {
                return Ok(moved);
            }
        }
    }

    /// [`settle`](Self::settle) for readers: a read goes ahead on what is positioned when settling
    /// fails (the sequence row held by a frozen instance, say), rather than failing too.
    pub async fn settle_for_read(&self) {
        if let Err(error) = self.settle().await {
            tracing::warn!(error = ?error, "could not position new audit events before a read");
        }
    }
}

/// Positions everything committed to the inbox, within `tx`, which must hold the log's sequence
/// row (`audit::lock_log`): for a transaction that rewrites the log and must see all of it.
pub(super) async fn position_waiting(tx: &mut DbConn) -> Result<usize> {
    if !matches!(tx, DbConn::Postgres(..)) {
        return Ok(0);
    }
    let mut moved = 0;
    loop {
        let batch = position_batch(tx).await?;
        moved += batch;
        if batch < BATCH as usize {
            return Ok(moved);
        }
    }
}

/// Moves up to one batch of committed inbox rows into the log, in the order they were written.
async fn position_batch(tx: &mut DbConn) -> Result<usize> {
    let waiting = audit::inbox_batch(tx, BATCH).await?;
    let (keys, pending): (Vec<i64>, Vec<_>) = waiting.into_iter().unzip();
    if !pending.is_empty() {
        let last = audit::take_seqs(tx, pending.len() as i64).await?;
        record::append(tx, last - pending.len() as i64, pending).await?;
        audit::inbox_remove(tx, &keys).await?;
    }
    Ok(keys.len())
}
