//! PostgreSQL LISTEN/NOTIFY: how instances sharing one database tell each other about changes.

use std::pin::pin;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::StreamExt as _;
use tokio::sync::Notify;

use super::DbConn;
use crate::error::{Error, Result};

/// The channel on which authorization changes are announced.
pub const AUTHZ_CHANNEL: &str = "portcullis_authz";
/// The channel on which new audit events are announced.
pub const AUDIT_CHANNEL: &str = "portcullis_audit";
/// The channel on which newly enqueued jobs are announced.
pub const JOBS_CHANNEL: &str = "portcullis_jobs";
/// The channel on which signing-key rotations are announced.
pub const KEYS_CHANNEL: &str = "portcullis_keys";

/// Announces a change on `channel` (PostgreSQL only; a no-op on SQLite). Inside a transaction the
/// notification is delivered at commit, so listeners never see an uncommitted change.
pub async fn announce(conn: &mut DbConn, channel: &str) -> Result<()> {
    if let DbConn::Postgres(c, _) = conn {
        c.batch_execute(&format!("NOTIFY {channel}")).await?;
    }
    Ok(())
}

/// Listens on `channel` over a dedicated connection (not from the pool), waking `wake` once
/// listening has begun (so the caller can catch up) and on every notification. Returns when the
/// connection is lost, so the caller can reconnect as it sees fit.
pub async fn listen(url: &str, channel: &str, wake: &Notify) -> Result<()> {
    let mut conn = AsyncPgConnection::establish(url).await.map_err(Error::internal)?;
    conn.batch_execute(&format!("LISTEN {channel}")).await?;
    wake.notify_one();
    let mut notifications = pin!(conn.notifications_stream());
    while let Some(notification) = notifications.next().await {
        notification?;
        wake.notify_one();
    }
    Err(Error::internal(anyhow::anyhow!("the LISTEN connection closed")))
}
