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

use tokio::sync::Mutex;

use super::record;
use crate::db::{Backend, Db, audit};
use crate::error::Result;

/// Events positioned per transaction: bounds how long a pass holds the sequence row.
const BATCH: i64 = 1_000;

/// One process's way into positioning: passes within a process run one at a time, so a burst of
/// readers settling at once costs one pass, not one pooled connection each queued on the row.
pub struct Sequencer {
    db: Db,
    turn: Mutex<()>,
}

impl Sequencer {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            turn: Mutex::new(()),
        }
    }

    /// Positions every event committed to the inbox so far and returns how many it moved (0 on
    /// SQLite, whose transactions position their own events).
    pub async fn settle(&self) -> Result<usize> {
        if self.db.backend() != Backend::Postgres {
            return Ok(0);
        }
        let _turn = self.turn.lock().await;
        let mut conn = self.db.conn().await?;
        let mut moved = 0;
        while audit::inbox_waiting(&mut conn).await? {
            let batch = conn
                .transaction(async |tx| {
                    audit::lock_log(tx).await?;
                    let waiting = audit::inbox_batch(tx, BATCH).await?;
                    let (keys, pending): (Vec<i64>, Vec<_>) = waiting.into_iter().unzip();
                    if !pending.is_empty() {
                        let last = audit::take_seqs(tx, pending.len() as i64).await?;
                        record::append(tx, last - pending.len() as i64, pending).await?;
                        audit::inbox_remove(tx, &keys).await?;
                    }
                    Ok(keys.len())
                })
                .await?;
            if batch == 0 {
                break;
            }
            moved += batch;
            audit::announce(&mut conn).await?;
        }
        Ok(moved)
    }

    /// [`settle`](Self::settle) for readers: a read goes ahead on what is positioned when settling
    /// fails (the sequence row held by a frozen instance, say), rather than failing too.
    pub async fn settle_for_read(&self) {
        if let Err(error) = self.settle().await {
            tracing::warn!(error = ?error, "could not position new audit events before a read");
        }
    }
}
