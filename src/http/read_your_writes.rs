//! Read-your-writes across replicas over HTTP: a response to a write tells the client how far
//! the log had come (`Portcullis-Written-At`); the client's later reads hand it back
//! (`Portcullis-Read-After`) and are served by a replica only once it has replayed that far.
//!
//! Only with `PORTCULLIS_DATABASE_REPLICA_URLS`; the rules themselves live in `db::replicas`.

use axum::http::{HeaderMap, HeaderValue};

use crate::app::App;
use crate::db::replicas::{ReadAfter, WalPosition};
use crate::error::Result;

/// Sent by a client: its reads must see at least this position.
pub(crate) const READ_AFTER: &str = "portcullis-read-after";
/// Sent to a client after a write: the position its later reads can ask for.
pub(crate) const WRITTEN_AT: &str = "portcullis-written-at";

/// What the request's reads must see; a malformed header is the client's error.
pub(crate) fn read_after(headers: &HeaderMap) -> Result<ReadAfter> {
    let value = headers.get(READ_AFTER).map(|value| value.to_str().unwrap_or("?"));
    ReadAfter::from_header(value)
}

/// The position that covers what this request wrote; `None` without replicas (nobody needs it)
/// or when the primary could not say (the client then reads the latest, which is always safe).
/// Its audit events may not be positioned yet: reads of the log settle and then ask for the
/// latest position anyway (`audit::read`), so no request waits for the sequencer here.
pub(crate) async fn written_at(app: &App) -> Option<WalPosition> {
    if !app.db.has_replicas() {
        return None;
    }
    match app.db.written_position().await {
        Ok(position) => position,
        Err(error) => {
            tracing::warn!(error = ?error, "could not read the primary's WAL position");
            None
        }
    }
}

/// The header announcing `position`.
pub(crate) fn header(position: WalPosition) -> Option<HeaderValue> {
    HeaderValue::from_str(&position.to_string()).ok()
}
