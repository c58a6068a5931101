//! Read replicas: a read that may be stale by design goes to a streaming replica that has
//! replayed at least what its reader must see, else to the primary.
//!
//! What a read must see is a WAL position ([`WalPosition`]). A client that wrote learns the
//! position of its write from the response (`Portcullis-Written-At`) and hands it back
//! (`Portcullis-Read-After`); a client that says nothing must see everything committed before its
//! read began, so the primary's current position is asked for (a query that touches no table).
//! Either way the replica is used only if it has replayed that far, so a reader never sees its own
//! write missing.
//!
//! Whether a read may go to a replica at all is a property of the request, not of the query: the
//! HTTP layer opens a [`scope`] around operations that only read, and [`super::Db::reader`] looks
//! for it. Outside a scope — mutations, authorization and session checks, jobs, the CLI, work
//! spawned onto other tasks — every read goes to the primary, the safe default.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use diesel::sql_types::{Nullable, Text};
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use tokio::sync::OnceCell;

use crate::error::{Error, Result};

/// A position in PostgreSQL's write-ahead log (`pg_lsn`), written as PostgreSQL writes it:
/// two hexadecimal halves, `16/B374D848`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct WalPosition(u64);

impl fmt::Display for WalPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for WalPosition {
    type Err = ();

    fn from_str(text: &str) -> std::result::Result<Self, ()> {
        let (high, low) = text.trim().split_once('/').ok_or(())?;
        let half = |part: &str| {
            let valid = !part.is_empty() && part.len() <= 8 && part.bytes().all(|b| b.is_ascii_hexdigit());
            valid
                .then(|| u64::from_str_radix(part, 16).ok())
                .flatten()
                .ok_or(())
        };
        Ok(Self((half(high)? << 32) | half(low)?))
    }
}

/// What a read in this request must see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAfter {
    /// Everything committed anywhere before the read began: the primary's current position.
    Latest,
    /// At least this position: what the client last wrote, as a response told it.
    Position(WalPosition),
}

impl ReadAfter {
    /// From the `Portcullis-Read-After` header's value, if one was sent.
    pub fn from_header(value: Option<&str>) -> Result<Self> {
        match value {
            None => Ok(Self::Latest),
            Some(text) => text.parse().map(Self::Position).map_err(|()| {
                Error::bad_input(
                    "Portcullis-Read-After",
                    "expected a log position as a response's Portcullis-Written-At gave it, like 16/B374D848",
                )
            }),
        }
    }
}

/// What one request's reads must see; the primary's position is asked for at most once per
/// request, however many lists (aliases included) the request reads.
pub(super) struct RequestReads {
    after: ReadAfter,
    latest: OnceCell<WalPosition>,
}

impl RequestReads {
    /// The position this request's reads must see: the client's, or the primary's as of the
    /// request's first read (which covers everything committed before the request).
    pub(super) async fn target<F, Fut>(&self, primary: F) -> Result<WalPosition>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<WalPosition>>,
    {
        match self.after {
            ReadAfter::Position(position) => Ok(position),
            ReadAfter::Latest => self.latest.get_or_try_init(primary).await.copied(),
        }
    }
}

tokio::task_local! {
    static READS: Arc<RequestReads>;
}

/// Runs `work` with its reads allowed on a replica that has replayed what `after` asks for.
pub async fn scope<F: Future>(after: ReadAfter, work: F) -> F::Output {
    let reads = Arc::new(RequestReads {
        after,
        latest: OnceCell::new(),
    });
    READS.scope(reads, work).await
}

/// What the current task's reads must see, when they may go to a replica at all.
pub(super) fn current() -> Option<Arc<RequestReads>> {
    READS.try_with(Arc::clone).ok()
}

/// The streaming replicas of the primary, taken in turn.
pub(super) struct Replicas {
    members: Vec<Replica>,
    next: AtomicUsize,
}

struct Replica {
    pool: Pool<AsyncPgConnection>,
    /// The highest position this replica was seen to have replayed; it only moves forward, so a
    /// reader asking for less needs no round trip to learn it.
    replayed: AtomicU64,
}

impl Replicas {
    pub(super) fn new(pools: Vec<Pool<AsyncPgConnection>>) -> Self {
        let members = pools
            .into_iter()
            .map(|pool| Replica {
                pool,
                replayed: AtomicU64::new(0),
            })
            .collect();
        Self {
            members,
            next: AtomicUsize::new(0),
        }
    }

    /// A connection to a replica that has replayed `target`, trying each once starting from the
    /// next in turn; `None` when none has (or none answers), so the caller reads the primary.
    pub(super) async fn caught_up(&self, target: WalPosition) -> Option<Object<AsyncPgConnection>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for offset in 0..self.members.len() {
            let replica = &self.members[(start + offset) % self.members.len()];
            match replica.caught_up(target).await {
                Ok(Some(conn)) => return Some(conn),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(error = ?error, "a read replica did not answer; reading elsewhere")
                }
            }
        }
        None
    }
}

impl Replica {
    async fn caught_up(&self, target: WalPosition) -> Result<Option<Object<AsyncPgConnection>>> {
        let mut conn = self.pool.get().await.map_err(Error::internal)?;
        if AtomicU64::load(&self.replayed, Ordering::Acquire) >= target.0 {
            return Ok(Some(conn));
        }
        let replayed = replayed(&mut conn).await?;
        self.replayed.fetch_max(replayed.0, Ordering::AcqRel);
        Ok((replayed >= target).then_some(conn))
    }
}

/// How far a replica has replayed the primary's log. A server that is not in recovery (a
/// primary named as a replica) has everything it wrote itself.
async fn replayed(conn: &mut AsyncPgConnection) -> Result<WalPosition> {
    let text = diesel::select(diesel::dsl::sql::<Nullable<Text>>(
        "coalesce(pg_last_wal_replay_lsn(), pg_current_wal_lsn())::text",
    ))
    .get_result::<Option<String>>(conn)
    .await?;
    Ok(text.and_then(|text| text.parse().ok()).unwrap_or_default())
}

/// The primary's current write position: every transaction committed before this call is at
/// or below it.
pub(super) async fn written(conn: &mut AsyncPgConnection) -> Result<WalPosition> {
    let text = diesel::select(diesel::dsl::sql::<Text>("pg_current_wal_lsn()::text"))
        .get_result::<String>(conn)
        .await?;
    text.parse().map_err(|()| {
        Error::internal(anyhow::anyhow!(
            "PostgreSQL gave an unreadable WAL position: {text}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_and_write_as_postgresql_does() {
        let position: WalPosition = "16/B374D848".parse().unwrap();
        assert_eq!(position, WalPosition((0x16 << 32) | 0xB374_D848));
        assert_eq!(position.to_string(), "16/B374D848");
        assert_eq!("0/0".parse::<WalPosition>().unwrap(), WalPosition(0));
        assert!("0/1".parse::<WalPosition>().unwrap() > "0/0".parse().unwrap());
        assert!("1/0".parse::<WalPosition>().unwrap() > "0/FFFFFFFF".parse().unwrap());
        for bad in ["", "16", "/1", "1/", "g/1", "1/2/3", "123456789/0", "+1/0"] {
            assert!(bad.parse::<WalPosition>().is_err(), "{bad} should not parse");
        }
    }
}
