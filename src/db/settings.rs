//! How PostgreSQL connections are bounded: session time limits, TCP keepalives, where LISTEN goes.
//!
//! A process that dies or freezes while it holds a lock must not stall every other writer until
//! PostgreSQL happens to notice. Each pooled connection therefore gets, when it is established:
//! - `lock_timeout`: a statement waits this long for a lock, then fails (55P03);
//! - `statement_timeout`: a statement runs this long, then is cancelled (57014);
//! - `idle_in_transaction_session_timeout`: a session that sits inside a transaction this long
//!   without sending anything (a frozen process) is terminated, releasing its locks (25P03).
//!
//! They are sent as one `SET` batch right after connecting rather than as the `options` startup
//! parameter: the cost is one round trip per new connection (pooled, so rare), and it works through
//! poolers that refuse unknown startup parameters (PgBouncer does). A value of 0 sends nothing for
//! that setting, so the server's or the role's value (`ALTER ROLE … SET`) applies — what operators
//! behind PgBouncer in transaction mode want, since session `SET`s do not stick there.

use diesel::OptionalExtension as _;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl as _;

use super::DbConn;
use crate::error::Result;

diesel::define_sql_function!(fn current_setting(name: Text) -> Text);

/// The value of a PostgreSQL run-time setting on this connection, as `SHOW` prints it (`5s`);
/// `None` on SQLite.
pub async fn current(conn: &mut DbConn, name: &str) -> Result<Option<String>> {
    match conn {
        DbConn::Postgres(c, _) => {
            let value = diesel::select(current_setting(name))
                .get_result::<String>(&mut **c)
                .await
                .optional()?;
            Ok(value)
        }
        DbConn::Sqlite(..) => Ok(None),
    }
}

/// Ends this transaction's session if it sits idle inside it for `ms` — for a transaction that
/// holds a lock everyone needs and never waits on anything but the database, so that a frozen
/// holder is cut off sooner than the pool-wide limit would. No-op on SQLite.
pub async fn limit_idle_in_transaction(tx: &mut DbConn, ms: u32) -> Result<()> {
    if let DbConn::Postgres(c, _) = tx {
        diesel_async::SimpleAsyncConnection::batch_execute(
            &mut **c,
            &format!("SET LOCAL idle_in_transaction_session_timeout = {ms}"),
        )
        .await?;
    }
    Ok(())
}

/// Session limits for pooled PostgreSQL connections and the URL of LISTEN connections.
/// Ignored on SQLite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSettings {
    /// `lock_timeout` in milliseconds (0: not set by the gateway).
    pub lock_timeout_ms: u32,
    /// `statement_timeout` in milliseconds (0: not set by the gateway).
    pub statement_timeout_ms: u32,
    /// `idle_in_transaction_session_timeout` in milliseconds (0: not set by the gateway).
    pub idle_in_transaction_timeout_ms: u32,
    /// Where LISTEN connections go, when not to the main URL (which may be a transaction-mode
    /// pooler, where LISTEN does not work).
    pub listen_url: Option<String>,
    /// Streaming replicas that may serve reads which allow them (`db::replicas`).
    pub replica_urls: Vec<String>,
}

impl Default for PgSettings {
    /// The defaults of the configuration: 5 s for a lock, 30 s for a statement, 10 s idle in a
    /// transaction; LISTEN on the main URL.
    fn default() -> Self {
        Self {
            lock_timeout_ms: 5_000,
            statement_timeout_ms: 30_000,
            idle_in_transaction_timeout_ms: 10_000,
            listen_url: None,
            replica_urls: Vec::new(),
        }
    }
}

impl PgSettings {
    /// The `SET` batch run on every new pooled connection; `None` when every limit is left to the
    /// server.
    pub(super) fn session_sql(&self) -> Option<String> {
        let statements: Vec<String> = [
            ("lock_timeout", self.lock_timeout_ms),
            ("statement_timeout", self.statement_timeout_ms),
            (
                "idle_in_transaction_session_timeout",
                self.idle_in_transaction_timeout_ms,
            ),
        ]
        .into_iter()
        .filter(|(_, ms)| *ms > 0)
        .map(|(name, ms)| format!("SET {name} = {ms}"))
        .collect();
        (!statements.is_empty()).then(|| statements.join("; "))
    }
}

/// TCP keepalives for every connection the gateway opens (tokio-postgres reads them from the
/// URL): a server that vanishes (host down, network cut) is noticed within about a minute — on an
/// idle pooled connection and on a LISTEN connection that would otherwise wait for ever —
/// instead of after the kernel's two hours.
const KEEPALIVES: [(&str, &str); 3] = [
    ("keepalives_idle", "30"),
    ("keepalives_interval", "10"),
    ("keepalives_retries", "3"),
];

/// `url` with the keepalive parameters it does not set itself: the user's values win (and
/// `keepalives=0` turns them all off).
pub(super) fn with_keepalives(url: &str) -> String {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let present: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .map(|(key, _)| key.into_owned())
        .collect();
    let mut out = url.to_owned();
    for (key, value) in KEEPALIVES {
        if present.iter().any(|k| k == key) {
            continue;
        }
        if !out.contains('?') {
            out.push('?');
        } else if !out.ends_with('?') && !out.ends_with('&') {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalives_are_added_unless_the_url_sets_them() {
        assert_eq!(
            with_keepalives("postgres://u@h/db"),
            "postgres://u@h/db?keepalives_idle=30&keepalives_interval=10&keepalives_retries=3"
        );
        assert_eq!(
            with_keepalives("postgres://u@h/db?keepalives_idle=5&application_name=x"),
            "postgres://u@h/db?keepalives_idle=5&application_name=x&keepalives_interval=10&keepalives_retries=3"
        );
        assert_eq!(
            with_keepalives("postgres://u@h/db?"),
            "postgres://u@h/db?keepalives_idle=30&keepalives_interval=10&keepalives_retries=3"
        );
    }

    #[test]
    fn zero_leaves_a_limit_to_the_server() {
        let all = PgSettings::default().session_sql();
        assert_eq!(
            all.as_deref(),
            Some(
                "SET lock_timeout = 5000; SET statement_timeout = 30000; SET idle_in_transaction_session_timeout = 10000"
            )
        );
        let none = PgSettings {
            lock_timeout_ms: 0,
            statement_timeout_ms: 0,
            idle_in_transaction_timeout_ms: 0,
            ..PgSettings::default()
        };
        assert_eq!(none.session_sql(), None);
    }
}
