//! The start-up lock: instances sharing one PostgreSQL database start one at a time.
//!
//! Migrations, the first signing key and the bootstrap administrator are each "create if absent";
//! instances started together on an empty database would otherwise race on them (two first keys,
//! two administrators, a migration failing halfway on another's table). SQLite serves one process
//! and needs no lock: there the guard is empty.

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use super::{Backend, Db};
use crate::error::{Error, Result};

/// The PostgreSQL advisory lock (`pg_advisory_lock`, session level) held while an instance starts:
/// the ASCII bytes of "portcull" (8101820098873224300). Advisory locks are per database, so
/// gateways on other databases of one server do not wait for each other. Nothing else in the
/// gateway uses advisory locks; an operator's own tooling must not use this key.
pub const STARTUP_LOCK_KEY: i64 = 0x706f_7274_6375_6c6c;

/// Held while an instance starts; [`StartupLock::release`] ends it. Dropped without release (a
/// start-up that failed), its connection closes and PostgreSQL releases the lock with it.
pub struct StartupLock {
    /// The dedicated connection whose session holds the lock (not pooled: the session must live
    /// exactly as long as the lock). `None` on SQLite.
    conn: Option<AsyncPgConnection>,
}

/// Waits until no other instance is starting on this database, then holds the start-up lock.
pub async fn startup_lock(db: &Db) -> Result<StartupLock> {
    let conn = match db.backend() {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let mut conn = AsyncPgConnection::establish(db.listen_url())
                .await
                .map_err(Error::internal)?;
            conn.batch_execute(&format!("SELECT pg_advisory_lock({STARTUP_LOCK_KEY})"))
                .await?;
            Some(conn)
        }
    };
    Ok(StartupLock { conn })
}

impl StartupLock {
    /// Lets the next instance start.
    pub async fn release(mut self) -> Result<()> {
        if let Some(mut conn) = self.conn.take() {
            conn.batch_execute(&format!("SELECT pg_advisory_unlock({STARTUP_LOCK_KEY})"))
                .await?;
        }
        Ok(())
    }
}
