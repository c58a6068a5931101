//! Migrations: both backends ship the same names, and up/down/up works.

use portcullis::db::{self, Backend as DbBackend};

use crate::support::TestApp;

#[test]
fn both_backends_ship_the_same_migrations() {
    let postgres = db::migration_names(DbBackend::Postgres).expect("postgres migrations");
    let sqlite = db::migration_names(DbBackend::Sqlite).expect("sqlite migrations");
    assert!(!postgres.is_empty());
    assert_eq!(
        postgres, sqlite,
        "migrations/postgres and migrations/sqlite must hold the same names"
    );
}

async fn up_down_up(t: TestApp) {
    let db = &t.app.db;
    let (_, applied) = db::latest_migration(db).await.expect("status");
    assert!(applied, "start-up applies every migration");

    let reverted = db::revert_all_migrations(db).await.expect("down");
    assert_eq!(
        reverted.len(),
        db::migration_names(db.backend()).expect("names").len()
    );
    let (_, applied) = db::latest_migration(db).await.expect("status");
    assert!(!applied, "after reverting, migrations are pending");

    let reapplied = db::run_migrations(db).await.expect("up again");
    assert_eq!(reapplied.len(), reverted.len());
    let (_, applied) = db::latest_migration(db).await.expect("status");
    assert!(applied);
}

crate::backend_tests!(up_down_up);
