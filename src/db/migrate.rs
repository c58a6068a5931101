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

use super::{Backend, Db, sqlite_path};
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

/// The version of the newest embedded migration, and whether the database has it applied.
pub async fn latest_migration(db: &Db) -> Result<(String, bool)> {
    with_harness(db, |harness, source| {
        let pending = harness.has_pending_migration(source)?;
        Ok(pending)
    })
    .await
    .and_then(|pending| {
        let names = migration_names(db.backend())?;
        let latest = names.last().cloned().unwrap_or_default();
        Ok((latest, !pending))
    })
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
    fn has_pending_migration(&mut self, source: EmbeddedMigrations) -> HarnessResult<bool>;
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

            fn has_pending_migration(&mut self, source: EmbeddedMigrations) -> HarnessResult<bool> {
                MigrationHarness::<$backend>::has_pending_migration(self, source)
            }
        }
    };
}

any_harness!(BlockingPg, diesel::pg::Pg);
any_harness!(SqliteConnection, diesel::sqlite::Sqlite);
