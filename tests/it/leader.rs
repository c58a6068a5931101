//! Periodic work runs on one instance at a time, on the database's clock.

use std::time::Duration;

use portcullis::db::leader::{Periodic, exclusively};
use portcullis::db::{Backend, Timestamp};
use tokio::sync::oneshot;

use crate::support::TestApp;

crate::backend_tests!(
    periodic_work_has_one_leader_on_database_time,
    a_frozen_leader_loses_its_turn
);

async fn periodic_work_has_one_leader_on_database_time(t: TestApp) {
    let app = t.app.clone();
    let (started_tx, started) = oneshot::channel::<Timestamp>();
    let (finish, finished) = oneshot::channel::<()>();
    // The first pass holds its turn until told to finish.
    let first = tokio::spawn(async move {
        exclusively(&app.db, Periodic::Sweeps, app.now(), async |now| {
            let _ = started_tx.send(now);
            let _ = finished.await;
            Ok(())
        })
        .await
        .unwrap()
    });
    let now = tokio::time::timeout(Duration::from_secs(10), started)
        .await
        .expect("the first pass starts")
        .unwrap();
    match t.app.db.backend() {
        Backend::Postgres => {
            // The database's clock, not the instance's (fixed in 2026-11-26 by the tests).
            let skew = (now.0 - chrono::Utc::now()).num_seconds().abs();
            assert!(skew < 60, "database time, off by {skew} s: {now:?}");
            assert_ne!(now, t.app.now());
            let second = exclusively(&t.app.db, Periodic::Sweeps, t.app.now(), async |_| Ok(())).await;
            assert_eq!(second.unwrap(), None, "another instance holds the turn");
            let other = exclusively(&t.app.db, Periodic::Retention, t.app.now(), async |_| Ok(())).await;
            assert_eq!(other.unwrap(), Some(()), "other periodic work is not held up");
        }
        Backend::Sqlite => assert_eq!(now, t.app.now(), "one process: its own clock"),
    }
    finish.send(()).unwrap();
    assert_eq!(first.await.unwrap(), Some(()));
    let again = exclusively(&t.app.db, Periodic::Sweeps, t.app.now(), async |_| Ok(())).await;
    assert_eq!(again.unwrap(), Some(()), "free again once the first pass ended");
}

/// A leader that falls silent in the middle of a pass (a frozen process: its connection open, its
/// transaction idle) loses the turn after the idle-in-transaction limit; another instance takes it.
async fn a_frozen_leader_loses_its_turn(t: TestApp) {
    if t.app.db.backend() != Backend::Postgres {
        return; // one process: there is no other instance to take over
    }
    let frozen = t
        .instance(|config| config.database_idle_in_transaction_timeout_ms = 300)
        .await;
    let (started_tx, started) = oneshot::channel::<()>();
    let stalled = tokio::spawn(async move {
        exclusively(&frozen.app.db, Periodic::Sweeps, frozen.app.now(), async |_| {
            let _ = started_tx.send(());
            std::future::pending::<()>().await;
            Ok(())
        })
        .await
    });
    started.await.expect("the frozen pass starts");
    let taken = exclusively(&t.app.db, Periodic::Sweeps, t.app.now(), async |_| Ok(())).await;
    assert_eq!(
        taken.unwrap(),
        None,
        "the frozen instance holds the turn at first"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let taken = exclusively(&t.app.db, Periodic::Sweeps, t.app.now(), async |_| Ok(())).await;
        if taken.unwrap().is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the turn was never taken from the frozen instance"
        );
    }
    stalled.abort();
}
