//! The live audit feed: replay then live with no gap or duplicate, slow subscribers cut off with a
//! cursor they resume from, and events committed on one instance reaching subscribers on another.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use portcullis::app::App;
use portcullis::audit::feed::{self, Item};
use portcullis::audit::{self, AuditAction, Event, cursor};
use portcullis::audit::{ActionMatch, AuditFilter};
use portcullis::clock::FixedClock;
use portcullis::error::Error;
use portcullis::identity::authenticate::authenticate;
use portcullis::identity::{Actor, ClientInfo};
use serde_json::json;
use tokio::sync::mpsc::Receiver;

use crate::support::{Backend, TestApp, TestDb, test_config};

const WAIT: Duration = Duration::from_secs(10);

async fn actor(t: &TestApp, token: &str) -> Actor {
    authenticate(&t.app, Some(token), &ClientInfo::default())
        .await
        .unwrap()
        .actor()
        .unwrap()
        .clone()
}

async fn next(receiver: &mut Receiver<Item>) -> Item {
    tokio::time::timeout(WAIT, receiver.recv())
        .await
        .expect("an event in time")
        .expect("the feed is open")
}

async fn rename(t: &TestApp, token: &str, org: &str, name: &str) {
    t.gql(
        Some(token),
        "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { id } } }",
        json!({ "input": { "id": org, "name": name } }),
    )
    .await
    .data();
}

/// The ids of an organization's `organization.updated` events, oldest first, as the query shows them.
async fn stored(t: &TestApp, token: &str, org: &str) -> Vec<(String, String)> {
    let page = t
        .gql(
            Some(token),
            "query($o: ID!) { auditEvents(first: 100, order: OLDEST_FIRST, filter: {organizationId: $o, actions: [\"organization.updated\"]}) { edges { cursor node { id } } } }",
            json!({ "o": org }),
        )
        .await;
    page.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["cursor"].as_str().unwrap().to_owned(),
                e["node"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn replay_then_live_without_gaps(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "feed").await;
    for i in 0..5 {
        rename(&t, &admin, &org, &format!("before {i}")).await;
    }
    let before = stored(&t, &admin, &org).await;
    let after = cursor::decode(&before[1].0).unwrap();
    let filter = AuditFilter {
        organization_id: Some(org.parse().unwrap()),
        actions: vec![ActionMatch::Exact(AuditAction::OrganizationUpdated)],
        ..AuditFilter::default()
    };
    let mut receiver = feed::subscribe(&t.app, &actor(&t, &admin).await, filter, Some(after), false)
        .await
        .unwrap();
    // Events keep coming while the replay runs.
    let producer = {
        let (t, admin, org) = (t.clone(), admin.clone(), org.clone());
        tokio::spawn(async move {
            for i in 0..20 {
                rename(&t, &admin, &org, &format!("during {i}")).await;
            }
        })
    };
    let mut received = Vec::new();
    while received.len() < 3 + 20 {
        let row = next(&mut receiver).await.unwrap();
        received.push(row.id.to_string());
    }
    producer.await.unwrap();
    let all: Vec<String> = stored(&t, &admin, &org)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(all.len(), 25);
    assert_eq!(received, all[2..], "everything after the cursor, in order, once");
    let quiet = tokio::time::timeout(Duration::from_millis(300), receiver.recv()).await;
    assert!(quiet.is_err(), "nothing more: {quiet:?}");

    // Another organization's feed is refused to a reader without rights there.
    let (_, user) = t.user_with_token(&admin, "nosy@example.com").await;
    let refused = feed::subscribe(
        &t.app,
        &actor(&t, &user).await,
        AuditFilter {
            organization_id: Some(org.parse().unwrap()),
            ..AuditFilter::default()
        },
        None,
        false,
    )
    .await;
    assert!(matches!(refused, Err(Error::Forbidden)));
    // Its own events it may follow.
    let mut own = feed::subscribe(
        &t.app,
        &actor(&t, &user).await,
        AuditFilter::default(),
        None,
        true,
    )
    .await
    .unwrap();
    let denied = t.gql(Some(&user), "{ users { totalCount } }", json!({})).await;
    assert_eq!(denied.code(), "FORBIDDEN");
    let event = next(&mut own).await.unwrap();
    assert_eq!(event.action, "authorization.denied");
}

async fn a_slow_subscriber_is_cut_off_and_resumes(t: TestApp) {
    let admin = t.admin_token().await;
    let admin_actor = actor(&t, &admin).await;
    let mut receiver = feed::subscribe(&t.app, &admin_actor, AuditFilter::default(), None, false)
        .await
        .unwrap();
    // Far more events than the feed holds for one subscriber, while it reads nothing.
    let mut conn = t.app.db.conn().await.unwrap();
    let now = t.app.now();
    let events: Vec<Event> = (0..6_000)
        .map(|i| Event::system(AuditAction::PolicyUpdated).with("i", i))
        .collect();
    let ids = conn
        .transaction(async |tx| audit::record_all(tx, now, events).await)
        .await
        .unwrap();
    // On PostgreSQL they wait in the inbox until a sequencer pass positions them.
    t.app.audit_sequencer.settle().await.unwrap();
    let last = {
        let mut conn = conn;
        portcullis::db::audit::last_seq(&mut conn).await.unwrap()
    };
    // Only once the hub has broadcast them all does the subscriber start reading.
    let started = std::time::Instant::now();
    while t.app.audit_feed.head() < last {
        assert!(started.elapsed() < WAIT, "the hub publishes the events");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut received = Vec::new();
    let resume = loop {
        match next(&mut receiver).await {
            Ok(row) => received.push(row.id),
            Err(Error::Lagged { cursor }) => break cursor,
            Err(other) => panic!("unexpected {other:?}"),
        }
    };
    assert!(received.len() < ids.len(), "cut off before the end");
    assert_eq!(received, ids[..received.len()], "in order up to the cut");
    // Subscribing again from the cursor picks up exactly where it ended.
    let after = cursor::decode(&resume).expect("a cursor");
    let mut again = feed::subscribe(&t.app, &admin_actor, AuditFilter::default(), Some(after), false)
        .await
        .unwrap();
    while received.len() < ids.len() {
        received.push(next(&mut again).await.unwrap().id);
    }
    assert_eq!(received, ids, "no gap, no duplicate across the cut");
}

/// An event committed through instance A reaches a subscriber on instance B, also after B's
/// listening connection is killed (it reconnects and catches up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_subscribers_on_other_instances() {
    let Some((db, url)) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let outcome = tokio::spawn(async move {
        let clock = Arc::new(FixedClock::new(
            Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap(),
        ));
        let start = |config| {
            let clock = clock.clone();
            async move {
                let app = App::start(config, clock.clone()).await.expect("instance starts");
                let router = portcullis::http::router(app.clone());
                TestApp { app, router, clock }
            }
        };
        let a = start(test_config(&url)).await;
        let b = start(test_config(&url)).await;
        let admin_on_a = a.admin_token().await;
        let admin_on_b = b.admin_token().await;
        let org = a.create_organization(&admin_on_a, "fanout").await;
        let filter = AuditFilter {
            organization_id: Some(org.parse().unwrap()),
            ..AuditFilter::default()
        };
        let mut on_b = feed::subscribe(&b.app, &actor(&b, &admin_on_b).await, filter, None, false)
            .await
            .unwrap();
        rename(&a, &admin_on_a, &org, "first").await;
        let first = next(&mut on_b).await.unwrap();
        assert_eq!(first.action, "organization.updated");

        // Cut B's LISTEN connections; what A commits meanwhile still arrives, in order.
        let mut conn = b.app.db.conn().await.unwrap();
        portcullis::with_conn!(&mut conn, |c| diesel_async::RunQueryDsl::execute(
            diesel::sql_query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND query ILIKE 'LISTEN%'"
            ),
            c
        )
        .await)
        .unwrap();
        drop(conn);
        for name in ["second", "third"] {
            rename(&a, &admin_on_a, &org, name).await;
        }
        let second = next(&mut on_b).await.unwrap();
        let third = next(&mut on_b).await.unwrap();
        assert!(first.seq < second.seq && second.seq < third.seq);
        assert!(second.metadata.contains("second") && third.metadata.contains("third"));
    })
    .await;
    db.drop_database().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

crate::backend_tests!(
    replay_then_live_without_gaps,
    a_slow_subscriber_is_cut_off_and_resumes
);

crate::backend_tests!(positions_follow_what_depends_on_what);

/// A transaction that began first but recorded its event after another one committed (it waited
/// for it, say) comes after it in the log: positions follow the order events were written, not the
/// order transactions began (PostgreSQL hands out transaction ids at the first write).
async fn positions_follow_what_depends_on_what(t: TestApp) {
    if t.app.db.backend() == portcullis::db::Backend::Sqlite {
        return; // one writer at a time: the first transaction would block the second outright
    }
    let (began_tx, began) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go) = tokio::sync::oneshot::channel::<()>();
    let app = t.app.clone();
    let first = tokio::spawn(async move {
        let mut conn = app.db.conn().await.unwrap();
        let now = app.now();
        conn.transaction(async |tx| {
            // A write first: this transaction now has the lower transaction id.
            portcullis::db::gateway_secrets::get_or_create(tx, "order-probe", &[7; 32]).await?;
            let _ = began_tx.send(());
            let _ = go.await;
            audit::record(
                tx,
                now,
                Event::system(AuditAction::PolicyUpdated).with("which", "began first"),
            )
            .await
        })
        .await
        .unwrap()
    });
    began.await.unwrap();
    let mut conn = t.app.db.conn().await.unwrap();
    let now = t.app.now();
    let second = conn
        .transaction(async |tx| {
            audit::record(
                tx,
                now,
                Event::system(AuditAction::PolicyUpdated).with("which", "committed first"),
            )
            .await
        })
        .await
        .unwrap();
    go_tx.send(()).unwrap();
    let first = first.await.unwrap();
    t.app.audit_sequencer.settle().await.unwrap();
    let seq = async |conn: &mut portcullis::db::DbConn, id| {
        portcullis::db::audit::find(conn, id)
            .await
            .unwrap()
            .expect("positioned")
            .seq
    };
    let (committed_first, began_first) = (seq(&mut conn, second).await, seq(&mut conn, first).await);
    assert!(
        committed_first < began_first,
        "the event written first comes first: {committed_first} vs {began_first}"
    );
}
