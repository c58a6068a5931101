//! The only room that knows there are two database backends: pools, connections, transactions.
//!
//! One `table!` schema serves PostgreSQL and SQLite through portable SQL types (`types`). A
//! connection is an enum over the two backends, and [`with_conn!`] expands the same query body
//! once per backend, so every query in this room is written once and compiled twice.
//!
//! Single-row lookups use `get_result`, not `first`: `first` binds `LIMIT ?`, and SQLite marks a
//! statement with a bound LIMIT for re-preparation on every execution, defeating the statement cache.

mod error;
mod migrate;
pub mod models;
mod page;
pub mod schema;
pub mod settings;
pub mod types;

pub mod api_keys;
pub mod audit;
pub mod branding;
pub mod cedar_schemas;
pub mod ceremonies;
pub mod credential_attempts;
pub mod enums;
pub mod gateway_secrets;
pub mod invitations;
pub mod jobs;
pub mod leader;
pub mod memberships;
pub mod notify;
pub mod organizations;
pub mod passkeys;
pub mod policies;
pub mod replicas;
pub mod role_assignments;
pub mod roles;
pub mod sessions;
pub mod signing_keys;
mod startup_lock;
pub mod users;
pub mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;
use tokio::sync::Notify;

use anyhow::Context as _;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::{ConnectionError, SqliteConnection};
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection, TransactionManager};
use futures_util::FutureExt as _;

pub use enums::{ActorType, Outcome};
pub use migrate::{latest_migration, migration_names, revert_all_migrations, run_migrations};
pub use page::{Direction, Page, PageOf, Window};
use replicas::{ReadAfter, Replicas, WalPosition};
pub use settings::PgSettings;
pub use startup_lock::{STARTUP_LOCK_KEY, StartupLock, startup_lock};
pub use types::{Id, Timestamp};
pub use users::fold_case;

use crate::error::{Error, Result};

/// SQLite behind diesel's synchronous driver, run on tokio's blocking pool.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// Expands `$body` once per backend with `$c` bound to the concrete connection.
///
/// ```text
/// with_conn!(conn, |c| users::table.find(id).first::<UserRow>(c).await)
/// ```
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Postgres($c, ..) => {
                let $c: &mut ::diesel_async::AsyncPgConnection = &mut *$c;
                $body
            }
            $crate::db::DbConn::Sqlite($c, ..) => {
                let $c: &mut $crate::db::SqliteConn = &mut *$c;
                $body
            }
        }
    };
}
pub use with_conn;

/// Inserts the rows of a slice into a table, `$chunk` rows per statement, on either backend; on
/// SQLite through diesel's synchronous batch insert, which diesel-async does not offer there.
/// Evaluates to `Result<(), diesel::result::Error>`.
macro_rules! insert_many {
    ($conn:expr, $table:expr, $rows:expr, $chunk:expr) => {{
        match $conn {
            $crate::db::DbConn::Postgres(c, _) => {
                let c: &mut ::diesel_async::AsyncPgConnection = &mut *c;
                let mut outcome = Ok(());
                for chunk in $rows.chunks($chunk) {
                    let insert = ::diesel::insert_into($table).values(chunk);
                    if let Err(error) = ::diesel_async::RunQueryDsl::execute(insert, c).await {
                        outcome = Err(error);
                        break;
                    }
                }
                outcome
            }
            $crate::db::DbConn::Sqlite(c, _) => {
                let rows = $rows.to_vec();
                c.spawn_blocking(move |inner| {
                    for chunk in rows.chunks($chunk) {
                        ::diesel::RunQueryDsl::execute(::diesel::insert_into($table).values(chunk), inner)?;
                    }
                    Ok(())
                })
                .await
            }
        }
    }};
}
pub(crate) use insert_many;

/// Loads what `$query` (a select of ids) names, locking the rows for the transaction; on PostgreSQL
/// rows another transaction holds are skipped (`FOR UPDATE SKIP LOCKED`), so concurrent workers
/// take disjoint sets. SQLite has one writer at a time: its IMMEDIATE transaction is the lock.
/// Evaluates to `Result<Vec<_>, diesel::result::Error>`.
macro_rules! load_skip_locked {
    ($tx:expr, $query:expr) => {
        match $tx {
            $crate::db::DbConn::Postgres(c, _) => {
                let c: &mut ::diesel_async::AsyncPgConnection = &mut *c;
                ::diesel_async::RunQueryDsl::load($query.for_update().skip_locked(), c).await
            }
            $crate::db::DbConn::Sqlite(c, _) => {
                let c: &mut $crate::db::SqliteConn = &mut *c;
                ::diesel_async::RunQueryDsl::load($query, c).await
            }
        }
    };
}
pub(crate) use load_skip_locked;

/// Loads what `$query` selects and locks the rows until the transaction ends (`FOR UPDATE` on
/// PostgreSQL, waiting for rows another transaction holds; SQLite's IMMEDIATE transaction already
/// holds the only write lock). Evaluates to `Result<Vec<_>, diesel::result::Error>`.
macro_rules! load_for_update {
    ($tx:expr, $query:expr) => {
        match $tx {
            $crate::db::DbConn::Postgres(c, _) => {
                let c: &mut ::diesel_async::AsyncPgConnection = &mut *c;
                ::diesel_async::RunQueryDsl::load($query.for_update(), c).await
            }
            $crate::db::DbConn::Sqlite(c, _) => {
                let c: &mut $crate::db::SqliteConn = &mut *c;
                ::diesel_async::RunQueryDsl::load($query, c).await
            }
        }
    };
}
pub(crate) use load_for_update;

/// Which database product a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Clone)]
enum Pools {
    Postgres(Pool<AsyncPgConnection>),
    Sqlite(Pool<SqliteConn>),
}

/// A handle on the database: cheap to clone, shared by everything in one process.
#[derive(Clone)]
pub struct Db {
    pools: Pools,
    url: Arc<str>,
    /// Where LISTEN connections go (keepalives included).
    listen_url: Arc<str>,
    statements: Arc<AtomicU64>,
    signals: Arc<Signals>,
    /// Streaming replicas for reads that allow them (`replicas::scope`); PostgreSQL only.
    replicas: Option<Arc<Replicas>>,
    /// `idle_in_transaction_session_timeout` of pooled connections (0: the server's), also how long
    /// a periodic leader may fall silent before it loses its turn (`leader`).
    idle_in_transaction_timeout_ms: u32,
}

/// What a process learns when it commits: in-process listeners wake without polling.
#[derive(Default)]
struct Signals {
    /// Every commit (`notify_waiters`): the live audit feed.
    commits: Arc<Notify>,
    /// Commits that enqueued jobs (`notify_one`, so a busy runner finds the permit when it looks).
    jobs: Arc<Notify>,
}

/// The after-commit effects one checked-out connection has been asked to announce.
pub struct Effects {
    signals: Arc<Signals>,
    jobs_enqueued: bool,
}

/// One pooled connection to either backend.
#[expect(
    clippy::large_enum_variant,
    reason = "a connection is checked out once per operation and never stored in bulk; boxing would cost an allocation per checkout"
)]
pub enum DbConn {
    Postgres(Object<AsyncPgConnection>, Effects),
    Sqlite(Object<SqliteConn>, Effects),
}

impl Db {
    /// Opens a pool for `url` (`postgres://…` or `sqlite://<path>`) with the default PostgreSQL
    /// session limits. Connections are made lazily.
    pub fn connect(url: &str, pool_size: usize) -> Result<Self> {
        Self::connect_with(url, pool_size, &PgSettings::default())
    }

    /// Opens a pool for `url` whose PostgreSQL connections are bounded by `settings`.
    pub fn connect_with(url: &str, pool_size: usize, settings: &PgSettings) -> Result<Self> {
        let statements = Arc::new(AtomicU64::new(0));
        let pools = if is_postgres(url) {
            Pools::Postgres(pg_pool(url, pool_size, settings, &statements, PRIMARY_PATIENCE)?)
        } else if let Some(path) = sqlite_path(url) {
            let counter = statements.clone();
            let mut config = ManagerConfig::<SqliteConn>::default();
            config.recycling_method = RecyclingMethod::Fast;
            config.custom_setup = Box::new(move |path| {
                let counter = counter.clone();
                let path = path.to_owned();
                async move {
                    let mut conn = SqliteConn::establish(&path).await?;
                    conn.batch_execute(SQLITE_PRAGMAS)
                        .await
                        .map_err(ConnectionError::CouldntSetupConfiguration)?;
                    conn.spawn_blocking(users::register_lower)
                        .await
                        .map_err(ConnectionError::CouldntSetupConfiguration)?;
                    conn.set_instrumentation(StatementCounter(counter));
                    Ok(conn)
                }
                .boxed()
            });
            let manager = AsyncDieselConnectionManager::new_with_config(path, config);
            Pools::Sqlite(build_pool(manager, pool_size, PRIMARY_PATIENCE)?)
        } else {
            return Err(Error::bad_input(
                "databaseUrl",
                "expected a URL starting with postgres:// or sqlite://",
            ));
        };
        let listen_url = match (&pools, settings.listen_url.as_deref()) {
            (Pools::Sqlite(_), _) => url.to_owned(),
            (Pools::Postgres(_), None) => settings::with_keepalives(url),
            (Pools::Postgres(_), Some(listen)) if is_postgres(listen) => settings::with_keepalives(listen),
            (Pools::Postgres(_), Some(_)) => {
                return Err(Error::bad_input(
                    "databaseListenUrl",
                    "expected a URL starting with postgres://",
                ));
            }
        };
        let replicas = match (&pools, settings.replica_urls.as_slice()) {
            (_, []) => None,
            (Pools::Sqlite(_), _) => {
                return Err(Error::bad_input(
                    "databaseReplicaUrls",
                    "read replicas need a PostgreSQL primary",
                ));
            }
            (Pools::Postgres(_), urls) => {
                let pools = urls
                    .iter()
                    .map(|replica| match is_postgres(replica) {
                        true => pg_pool(replica, pool_size, settings, &statements, REPLICA_PATIENCE),
                        false => Err(Error::bad_input(
                            "databaseReplicaUrls",
                            "expected URLs starting with postgres://",
                        )),
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some(Arc::new(Replicas::new(pools)))
            }
        };
        Ok(Self {
            pools,
            url: url.into(),
            listen_url: listen_url.into(),
            statements,
            signals: Arc::default(),
            replicas,
            idle_in_transaction_timeout_ms: settings.idle_in_transaction_timeout_ms,
        })
    }

    /// Signalled (`notify_waiters`) after every transaction this process commits: in-process
    /// listeners, such as the live audit feed, learn of new rows without polling.
    pub fn commits(&self) -> &Arc<Notify> {
        &self.signals.commits
    }

    /// Signalled (`notify_one`) after this process commits a transaction that enqueued jobs.
    pub fn jobs_enqueued(&self) -> &Arc<Notify> {
        &self.signals.jobs
    }

    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Postgres(_) => Backend::Postgres,
            Pools::Sqlite(_) => Backend::Sqlite,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL LISTEN connections open (PostgreSQL): `PORTCULLIS_DATABASE_LISTEN_URL` when set —
    /// a pooler in transaction mode cannot LISTEN — else the main URL; keepalives included.
    pub fn listen_url(&self) -> &str {
        &self.listen_url
    }

    /// A connection from the pool.
    pub async fn conn(&self) -> Result<DbConn> {
        let effects = self.effects();
        let conn = match &self.pools {
            Pools::Postgres(pool) => DbConn::Postgres(pool.get().await.map_err(Error::internal)?, effects),
            Pools::Sqlite(pool) => DbConn::Sqlite(pool.get().await.map_err(Error::internal)?, effects),
        };
        Ok(conn)
    }

    /// A connection for a read that may be served by a replica: inside a [`replicas::scope`], a
    /// replica that has replayed what the scope asks for, else (and outside any scope) the
    /// primary. Only for reads whose result the caller shows as it is — never for a check that
    /// decides access, which must see the latest grant and revocation.
    pub async fn reader(&self) -> Result<DbConn> {
        let (Some(replicas), Some(reads)) = (&self.replicas, replicas::current()) else {
            return self.conn().await;
        };
        let target = reads.target(|| self.primary_position()).await?;
        self.replica_or_primary(replicas, target).await
    }

    /// [`reader`](Self::reader) for reads that must see everything committed before the call
    /// whatever position the client handed over: inside a [`replicas::scope`], a replica only if it
    /// has caught up with the primary (reads of the audit log, whose events are positioned after
    /// their writers commit and the client's position announced).
    pub async fn reader_up_to_date(&self) -> Result<DbConn> {
        match replicas::current() {
            Some(_) => self.reader_after(ReadAfter::Latest).await,
            None => self.conn().await,
        }
    }

    /// A connection to a replica that has replayed what `after` asks for, else to the primary:
    /// for a read that is never a check and states its own freshness (an export sees what was
    /// committed before it began).
    pub async fn reader_after(&self, after: ReadAfter) -> Result<DbConn> {
        let Some(replicas) = &self.replicas else {
            return self.conn().await;
        };
        let target = match after {
            ReadAfter::Position(position) => position,
            ReadAfter::Latest => self.primary_position().await?,
        };
        self.replica_or_primary(replicas, target).await
    }

    async fn replica_or_primary(&self, replicas: &Replicas, target: WalPosition) -> Result<DbConn> {
        match replicas.caught_up(target).await {
            Some(conn) => Ok(DbConn::Postgres(conn, self.effects())),
            None => self.conn().await,
        }
    }

    async fn primary_position(&self) -> Result<WalPosition> {
        Ok(self.written_position().await?.unwrap_or_default())
    }

    /// How long a session may sit idle inside a transaction before the server ends it (0: the
    /// server's setting).
    pub fn idle_in_transaction_timeout_ms(&self) -> u32 {
        self.idle_in_transaction_timeout_ms
    }

    /// True when reads may be served by replicas, so responses to writes carry their position.
    pub fn has_replicas(&self) -> bool {
        self.replicas.is_some()
    }

    /// The primary's current WAL position, which covers every transaction committed before the
    /// call; `None` on SQLite.
    pub async fn written_position(&self) -> Result<Option<WalPosition>> {
        match self.conn().await? {
            DbConn::Postgres(mut conn, _) => Ok(Some(replicas::written(&mut conn).await?)),
            DbConn::Sqlite(..) => Ok(None),
        }
    }

    fn effects(&self) -> Effects {
        Effects {
            signals: self.signals.clone(),
            jobs_enqueued: false,
        }
    }

    /// SQL statements sent to the database by this handle since it was opened.
    pub fn statements_executed(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, |c| c.batch_execute("SELECT 1").await)?;
        Ok(())
    }
}

impl DbConn {
    /// Runs `work` inside one transaction: committed if it returns `Ok`, rolled back otherwise.
    ///
    /// On SQLite the transaction begins `IMMEDIATE`, taking the write lock up front: a deferred
    /// transaction that later writes can fail with SQLITE_BUSY instead of waiting its turn.
    pub async fn transaction<T, F>(&mut self, work: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut DbConn) -> Result<T>,
    {
        self.begin().await?;
        match work(self).await {
            Ok(value) => {
                let committed = self.commit().await.map_err(|error| match error {
                    // The COMMIT went out and no answer came back: it may have been made. A client
                    // told "retry" would make it twice.
                    Error::Unavailable {
                        reason: "CONNECTION_LOST",
                    } => Error::internal(anyhow::anyhow!(
                        "the connection was lost during COMMIT: the outcome is unknown"
                    )),
                    other => other,
                });
                let effects = self.effects();
                let jobs_enqueued = std::mem::take(&mut effects.jobs_enqueued);
                committed?;
                effects.signals.commits.notify_waiters();
                if jobs_enqueued {
                    effects.signals.jobs.notify_one();
                }
                Ok(value)
            }
            Err(error) => {
                self.effects().jobs_enqueued = false;
                if let Err(rollback) = self.rollback().await {
                    tracing::warn!(error = ?rollback, "rollback failed");
                }
                Err(error)
            }
        }
    }

    /// Runs `work` inside one read-only transaction that sees a single snapshot of the database
    /// (REPEATABLE READ on PostgreSQL; any SQLite read transaction in WAL mode): long reads made
    /// of many queries, such as verifying a chain, are not torn by writes committed meanwhile.
    pub async fn snapshot<T, F>(&mut self, work: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut DbConn) -> Result<T>,
    {
        match self {
            DbConn::Postgres(c, _) => {
                diesel_async::AnsiTransactionManager::begin_transaction_sql(
                    &mut **c,
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                )
                .await?
            }
            DbConn::Sqlite(c, _) => {
                c.spawn_blocking(|inner| {
                    diesel::connection::AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN")
                })
                .await?
            }
        }
        // A read-only snapshot holds no lock anyone waits for, and its reader may go at a client's
        // pace (an export downloaded slowly): the idle limit that frees a frozen writer's locks
        // must not end it.
        let outcome = match self {
            DbConn::Postgres(c, _) => c
                .batch_execute("SET LOCAL idle_in_transaction_session_timeout = 0")
                .await
                .map_err(Error::from),
            DbConn::Sqlite(..) => Ok(()),
        };
        let outcome = match outcome {
            Ok(()) => work(self).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(value) => {
                self.commit().await?;
                Ok(value)
            }
            Err(error) => {
                if let Err(rollback) = self.rollback().await {
                    tracing::warn!(error = ?rollback, "ending a read snapshot failed");
                }
                Err(error)
            }
        }
    }

    /// Marks that this transaction enqueued jobs: the local runner is woken once it commits.
    pub(crate) fn jobs_enqueued(&mut self) {
        self.effects().jobs_enqueued = true;
    }

    fn effects(&mut self) -> &mut Effects {
        let (DbConn::Postgres(_, effects) | DbConn::Sqlite(_, effects)) = self;
        effects
    }

    async fn begin(&mut self) -> Result<()> {
        match self {
            DbConn::Postgres(c, _) => {
                <AsyncPgConnection as AsyncConnection>::TransactionManager::begin_transaction(&mut **c)
                    .await?
            }
            DbConn::Sqlite(c, _) => {
                c.spawn_blocking(|inner| {
                    diesel::connection::AnsiTransactionManager::begin_transaction_sql(
                        inner,
                        "BEGIN IMMEDIATE",
                    )
                })
                .await?
            }
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        with_conn!(self, |c| {
            TransactionManagerOf::commit(c).await?;
        });
        Ok(())
    }

    async fn rollback(&mut self) -> Result<()> {
        with_conn!(self, |c| {
            TransactionManagerOf::rollback(c).await?;
        });
        Ok(())
    }
}

/// Names the transaction manager of whichever connection type it is called with.
struct TransactionManagerOf;

impl TransactionManagerOf {
    async fn commit<C: AsyncConnection>(conn: &mut C) -> diesel::QueryResult<()> {
        C::TransactionManager::commit_transaction(conn).await
    }

    async fn rollback<C: AsyncConnection>(conn: &mut C) -> diesel::QueryResult<()> {
        C::TransactionManager::rollback_transaction(conn).await
    }
}

/// WAL for concurrent readers, enforced foreign keys, and waiting (not failing) on a busy writer.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;";

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `sqlite://path`, `sqlite:path` or `sqlite::memory:` → the path diesel opens.
fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|path| !path.is_empty())
}

/// A pool of PostgreSQL connections to `url`, each bounded by `settings` and counting statements.
fn pg_pool(
    url: &str,
    pool_size: usize,
    settings: &PgSettings,
    statements: &Arc<AtomicU64>,
    patience: Duration,
) -> Result<Pool<AsyncPgConnection>> {
    let counter = statements.clone();
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    // Closed connections are detected on return to the pool; a ping per checkout would
    // double the round trips of every short request.
    config.recycling_method = RecyclingMethod::Fast;
    let session: Option<Arc<str>> = settings.session_sql().map(Into::into);
    config.custom_setup = Box::new(move |url| {
        let (counter, session) = (counter.clone(), session.clone());
        async move {
            let mut conn = AsyncPgConnection::establish(url).await?;
            if let Some(session) = session {
                conn.batch_execute(&session)
                    .await
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
            }
            conn.set_instrumentation(StatementCounter(counter));
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::new_with_config(settings::with_keepalives(url), config);
    build_pool(manager, pool_size, patience)
}

/// How long a request waits for a connection to the primary: there is nowhere else to go.
const PRIMARY_PATIENCE: Duration = Duration::from_secs(10);
/// How long a read waits for a replica's connection before it reads the primary instead.
const REPLICA_PATIENCE: Duration = Duration::from_secs(2);

fn build_pool<C>(manager: AsyncDieselConnectionManager<C>, size: usize, patience: Duration) -> Result<Pool<C>>
where
    AsyncDieselConnectionManager<C>: deadpool::managed::Manager<Type = C>,
{
    Pool::builder(manager)
        .max_size(size.max(1))
        .wait_timeout(Some(patience))
        .create_timeout(Some(patience))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .context("building the database pool")
        .map_err(Error::internal)
}

/// Counts statements as diesel starts them, so tests can prove that relations are batched.
struct StatementCounter(Arc<AtomicU64>);

impl Instrumentation for StatementCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { .. } = event {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}
