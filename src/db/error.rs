//! How database failures become gateway errors.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::error::Error;

impl From<DieselError> for Error {
    fn from(error: DieselError) -> Self {
        match cut_short(&error) {
            Some(reason) => {
                // Worth an operator's eye (lock contention, slow statements), not an error page.
                tracing::warn!(reason, error = %error, "the database cut an operation short");
                Error::Unavailable { reason }
            }
            None => Error::internal(error),
        }
    }
}

/// PostgreSQL's messages for the failures that end an operation and leave it rolled back, so that
/// a retry may succeed. diesel-async 0.9 reports these SQLSTATEs as `DatabaseErrorKind::Unknown`
/// without their code, so the (prefix of the) message is all there is to go on; they are the
/// server's English texts, so a server whose `lc_messages` translates them reports INTERNAL.
const CUT_SHORT: [(&str, &str); 6] = [
    // 55P03 lock_not_available, from lock_timeout.
    ("canceling statement due to lock timeout", "LOCK_TIMEOUT"),
    // 57014 query_canceled, from statement_timeout.
    (
        "canceling statement due to statement timeout",
        "STATEMENT_TIMEOUT",
    ),
    // 57014 query_canceled, from pg_cancel_backend (an operator).
    ("canceling statement due to user request", "QUERY_CANCELED"),
    // 25P03 idle_in_transaction_session_timeout: the session sat in a transaction too long.
    (
        "terminating connection due to idle-in-transaction timeout",
        "IDLE_IN_TRANSACTION_TIMEOUT",
    ),
    // 40P01 deadlock_detected: PostgreSQL chose this transaction as the victim.
    ("deadlock detected", "DEADLOCK"),
    // SQLite's SQLITE_BUSY once busy_timeout has run out.
    ("database is locked", "LOCK_TIMEOUT"),
];

/// How tokio-postgres (through diesel-async) reports a connection that is gone: closed by the
/// server (a session ended by `idle_in_transaction_session_timeout` mostly surfaces this way, when
/// the next statement finds the connection shut) or cut by the network. Its own English texts.
const CONNECTION_LOST: [&str; 2] = ["connection closed", "error communicating with the server"];

/// Why the database gave up on an operation that may succeed when retried; `None` for anything else.
fn cut_short(error: &DieselError) -> Option<&'static str> {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
            Some("SERIALIZATION_FAILURE")
        }
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => Some("CONNECTION_LOST"),
        DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, info) => CONNECTION_LOST
            .iter()
            .any(|prefix| info.message().starts_with(prefix))
            .then_some("CONNECTION_LOST"),
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            CUT_SHORT
                .iter()
                .find(|(prefix, _)| message.starts_with(prefix))
                .map(|(_, reason)| *reason)
        }
        _ => None,
    }
}

/// True when `error` is a unique-constraint violation, on either backend.
pub(crate) fn is_unique_violation(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Turns a unique violation into CONFLICT on `field`; anything else stays internal.
pub(crate) fn conflict_on(field: &'static str, message: &'static str) -> impl Fn(DieselError) -> Error {
    move |error| {
        if is_unique_violation(&error) {
            Error::conflict(field, message)
        } else {
            Error::from(error)
        }
    }
}
