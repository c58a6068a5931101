//! Embedded migrations for both backends, applied at start-up and by `portcullis migrate`.
//!
//! diesel's migration harness is synchronous, so it runs on tokio's blocking pool: SQLite through
//! its own driver, PostgreSQL through diesel-async's blocking wrapper (no libpq needed).

use diesel::Connection;
use diesel::SqliteConnection;
use diesel::connection::SimpleConnection;
use diesel::migration::{Migration, MigrationSource};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use diesel_async::RunQueryDsl;

use super::{Backend, Db, sqlite_path, with_conn};
use crate::error::{Error, Result};

const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

type BlockingPg = AsyncConnectionWrapper<AsyncPgConnection>;

/// Applies every pending migration; returns the names of those applied now.
pub async fn run_migrations(db: &Db) -> Result<Vec<String>> {
    with_harness(db, |harness, source| {
        let applied = harness.run_pending_migrations(source)?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await
}

/// Reverts every applied migration, newest first (used by the up/down/up test).
pub async fn revert_all_migrations(db: &Db) -> Result<Vec<String>> {
    with_harness(db, |harness, source| {
        let reverted = harness.revert_all_migrations(source)?;
        Ok(reverted.iter().map(ToString::to_string).collect())
    })
    .await
}

/// The names of the embedded migrations of a backend, in order.
pub fn migration_names(backend: Backend) -> Result<Vec<String>> {
    let source = source_for(backend);
    let migrations: Vec<Box<dyn Migration<diesel::sqlite::Sqlite>>> =
        MigrationSource::<diesel::sqlite::Sqlite>::migrations(&source)
            .map_err(|error| Error::internal(anyhow::anyhow!(error)))?;
    Ok(migrations.iter().map(|m| m.name().to_string()).collect())
}

/// The newest embedded migration, and whether the database has it applied. Uses the pool (no new
/// connection), so readiness probes stay cheap.
pub async fn latest_migration(db: &Db) -> Result<(String, bool)> {
    let (name, version) = {
        // Migrations are not `Send`: take what is needed before the first await.
        let source = source_for(db.backend());
        let migrations: Vec<Box<dyn Migration<diesel::sqlite::Sqlite>>> =
            MigrationSource::<diesel::sqlite::Sqlite>::migrations(&source)
                .map_err(|error| Error::internal(anyhow::anyhow!(error)))?;
        match migrations.last() {
            Some(latest) => (latest.name().to_string(), latest.name().version().to_string()),
            None => return Ok((String::new(), true)),
        }
    };
    let mut conn = db.conn().await?;
    let applied: i64 = with_conn!(&mut conn, |c| {
        diesel::sql_query("SELECT COUNT(*) AS applied FROM __diesel_schema_migrations WHERE version = $1")
            .bind::<diesel::sql_types::Text, _>(&version)
            .get_result::<AppliedCount>(c)
            .await
            .map(|row| row.applied)
    })?;
    Ok((name, applied > 0))
}

#[derive(diesel::QueryableByName)]
struct AppliedCount {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    applied: i64,
}

type HarnessResult<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn source_for(backend: Backend) -> EmbeddedMigrations {
    match backend {
        Backend::Postgres => POSTGRES,
        Backend::Sqlite => SQLITE,
    }
}

/// Opens a dedicated blocking connection and hands its migration harness to `work`.
async fn with_harness<T, F>(db: &Db, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn AnyHarness, EmbeddedMigrations) -> HarnessResult<T> + Send + 'static,
{
    let url = db.url().to_owned();
    let backend = db.backend();
    tokio::task::spawn_blocking(move || -> HarnessResult<T> {
        match backend {
            Backend::Postgres => {
                let mut conn = BlockingPg::establish(&url)?;
                work(&mut conn, POSTGRES)
            }
            Backend::Sqlite => {
                let path = sqlite_path(&url).ok_or("invalid sqlite URL")?;
                let mut conn = SqliteConnection::establish(path)?;
                conn.batch_execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;")?;
                work(&mut conn, SQLITE)
            }
        }
    })
    .await
    .map_err(Error::internal)?
    .map_err(|error| Error::internal(anyhow::anyhow!(error)))
}

/// The migration operations we use, object-safe over both backends' harnesses.
trait AnyHarness {
    fn run_pending_migrations(&mut self, source: EmbeddedMigrations) -> HarnessResult<Vec<String>>;
    fn revert_all_migrations(&mut self, source: EmbeddedMigrations) -> HarnessResult<Vec<String>>;
}

macro_rules! any_harness {
    ($conn:ty, $backend:ty) => {
        impl AnyHarness for $conn {
            fn run_pending_migrations(&mut self, source: EmbeddedMigrations) -> HarnessResult<Vec<String>> {
                let applied = MigrationHarness::<$backend>::run_pending_migrations(self, source)?;
                Ok(applied.iter().map(ToString::to_string).collect())
            }

            fn revert_all_migrations(&mut self, source: EmbeddedMigrations) -> HarnessResult<Vec<String>> {
                let reverted = MigrationHarness::<$backend>::revert_all_migrations(self, source)?;
                Ok(reverted.iter().map(ToString::to_string).collect())
            }
        }
    };
}

any_harness!(BlockingPg, diesel::pg::Pg);
any_harness!(SqliteConnection, diesel::sqlite::Sqlite);
