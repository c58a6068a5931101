//! Bounded faults on PostgreSQL: every pooled connection carries lock, statement and
//! idle-in-transaction limits, so a stuck or frozen holder of a lock fails others quickly with a
//! retryable UNAVAILABLE (or is ended by the server); LISTEN connections may go elsewhere.
//! PostgreSQL only but for the lock test: these are PostgreSQL's settings.

use std::time::Duration;

use diesel::sql_types::{BigInt, Integer, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use portcullis::app::App;
use portcullis::audit::feed;
use portcullis::config::Config;
use portcullis::db::{Db, DbConn, PgSettings, settings};
use portcullis::error::ErrorCode;
use portcullis::identity::authenticate::authenticate;
use portcullis::identity::{Actor, ClientInfo};
use serde_json::{Value, json};

use crate::support::{TestApp, test_config};

const RENAME: &str = "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { name } } }";

/// Declares each listed `async fn name(t: TestApp)` as the test `name::postgres`, on a fresh
/// PostgreSQL database (not run without PostgreSQL, outside CI).
macro_rules! postgres_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::support::run($crate::support::Backend::Postgres, super::$name).await;
            }
        }
    )*};
}

/// Another gateway instance on `t`'s database, with `configure` applied to its configuration.
async fn instance(t: &TestApp, configure: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config(t.app.db.url());
    configure(&mut config);
    let app = App::start(config, t.clock.clone())
        .await
        .expect("instance starts");
    let router = portcullis::http::router(app.clone());
    TestApp {
        app,
        router,
        clock: t.clock.clone(),
    }
}

/// A connection of the test's own, outside every gateway pool.
async fn raw(t: &TestApp) -> AsyncPgConnection {
    AsyncPgConnection::establish(t.app.db.url())
        .await
        .expect("raw connection")
}

async fn setting(conn: &mut DbConn, name: &str) -> String {
    settings::current(conn, name)
        .await
        .expect("the setting is readable")
        .expect("PostgreSQL has settings")
}

async fn rename(t: &TestApp, token: &str, org: &str, name: &str) -> Value {
    t.gql(
        Some(token),
        RENAME,
        json!({ "input": { "id": org, "name": name } }),
    )
    .await
    .0
}

async fn organization_name(t: &TestApp, token: &str, org: &str) -> String {
    let found = t
        .gql(
            Some(token),
            "query($id: ID!) { organization(id: $id) { name } }",
            json!({ "id": org }),
        )
        .await;
    found.data()["organization"]["name"].as_str().unwrap().to_owned()
}

async fn updated_events(t: &TestApp, token: &str, org: &str) -> usize {
    let page = t
        .gql(
            Some(token),
            "query($o: ID!) { auditEvents(first: 100, filter: {organizationId: $o, actions: [\"organization.updated\"]}) { edges { node { id } } } }",
            json!({ "o": org }),
        )
        .await;
    page.data()["auditEvents"]["edges"].as_array().unwrap().len()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

#[derive(QueryableByName)]
struct Query {
    #[diesel(sql_type = Text)]
    query: String,
}

async fn pooled_connections_carry_the_configured_limits(t: TestApp) {
    // The defaults, on the connections of a gateway started with nothing set.
    let mut conn = t.app.db.conn().await.unwrap();
    assert_eq!(setting(&mut conn, "lock_timeout").await, "5s");
    assert_eq!(setting(&mut conn, "statement_timeout").await, "30s");
    assert_eq!(
        setting(&mut conn, "idle_in_transaction_session_timeout").await,
        "10s"
    );
    drop(conn);

    // Configured values; 0 leaves the setting to the server, here to the URL's `options`.
    let url = format!("{}?options=-c%20statement_timeout%3D7s", t.app.db.url());
    let configured = instance(&t, |config| {
        config.database_url = Some(url);
        config.database_lock_timeout_ms = 1234;
        config.database_statement_timeout_ms = 0;
        config.database_idle_in_transaction_timeout_ms = 4321;
    })
    .await;
    // Every connection of the pool, not only the first: hold them all at once.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(configured.app.db.conn().await.unwrap());
    }
    for conn in &mut held {
        assert_eq!(setting(conn, "lock_timeout").await, "1234ms");
        assert_eq!(setting(conn, "statement_timeout").await, "7s");
        assert_eq!(
            setting(conn, "idle_in_transaction_session_timeout").await,
            "4321ms"
        );
    }
}

/// A lock held by another process, outside every gateway pool: the organization's row on
/// PostgreSQL; on SQLite, which has one writer at a time, the write lock.
enum Holder {
    Postgres(Box<AsyncPgConnection>),
    Sqlite(diesel::SqliteConnection),
}

impl Holder {
    async fn take(t: &TestApp, org: &str) -> Holder {
        let url = t.app.db.url();
        match url.strip_prefix("sqlite://") {
            Some(path) => {
                let mut conn = <diesel::SqliteConnection as diesel::Connection>::establish(path).unwrap();
                diesel::connection::SimpleConnection::batch_execute(&mut conn, "BEGIN IMMEDIATE").unwrap();
                Holder::Sqlite(conn)
            }
            None => {
                let mut conn = raw(t).await;
                conn.batch_execute(&format!(
                    "BEGIN; SELECT 1 FROM organizations WHERE id = '{org}' FOR UPDATE"
                ))
                .await
                .unwrap();
                Holder::Postgres(Box::new(conn))
            }
        }
    }

    async fn release(self) {
        match self {
            Holder::Postgres(mut conn) => conn.batch_execute("ROLLBACK").await.unwrap(),
            Holder::Sqlite(mut conn) => {
                diesel::connection::SimpleConnection::batch_execute(&mut conn, "ROLLBACK").unwrap()
            }
        }
    }
}

/// On SQLite the wait is the fixed 10 s busy timeout; on PostgreSQL the configured lock_timeout.
async fn a_held_lock_fails_a_mutation_with_a_retryable_error(t: TestApp) {
    let instance = instance(&t, |config| config.database_lock_timeout_ms = 300).await;
    let admin = instance.admin_token().await;
    let org = instance.create_organization(&admin, "locked").await;
    let before = organization_name(&instance, &admin, &org).await;

    // Another process holds what the rename needs and does not let go.
    let holder = Holder::take(&t, &org).await;
    let refused = tokio::time::timeout(
        Duration::from_secs(60),
        rename(&instance, &admin, &org, "Renamed while locked"),
    )
    .await
    .expect("the rename gives up rather than wait for ever");
    let error = &refused["errors"][0];
    assert_eq!(error["extensions"]["code"], "UNAVAILABLE", "{refused:#}");
    assert_eq!(error["extensions"]["reason"], "LOCK_TIMEOUT", "{refused:#}");
    assert_eq!(error["extensions"]["retryAfterSeconds"], 1, "{refused:#}");
    assert!(refused["data"]["updateOrganization"].is_null(), "{refused:#}");

    // Once the lock is gone: nothing of the failed attempt was written, and a retry succeeds.
    holder.release().await;
    assert_eq!(organization_name(&instance, &admin, &org).await, before);
    assert_eq!(updated_events(&instance, &admin, &org).await, 0);
    let retried = rename(&instance, &admin, &org, "Renamed after").await;
    assert_eq!(
        retried["data"]["updateOrganization"]["organization"]["name"], "Renamed after",
        "{retried:#}"
    );
    assert_eq!(updated_events(&instance, &admin, &org).await, 1);
}

async fn a_transaction_frozen_past_the_idle_limit_is_ended_by_the_server(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "frozen").await;

    // A process with a short idle limit takes the organization's row, then freezes.
    let frozen = Db::connect_with(
        t.app.db.url(),
        1,
        &PgSettings {
            idle_in_transaction_timeout_ms: 300,
            ..PgSettings::default()
        },
    )
    .unwrap();
    let mut conn = frozen.conn().await.unwrap();
    let DbConn::Postgres(c, _) = &mut conn else {
        unreachable!("a PostgreSQL URL")
    };
    let pid = sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Pid>(&mut **c)
        .await
        .unwrap()
        .pid;
    c.batch_execute(&format!(
        "BEGIN; SELECT 1 FROM organizations WHERE id = '{org}' FOR UPDATE"
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The server ended that session, so its lock is gone: another writer goes ahead (with the
    // default 5 s lock_timeout it would otherwise fail).
    let renamed = rename(&t, &admin, &org, "Renamed past the frozen one").await;
    assert_eq!(
        renamed["data"]["updateOrganization"]["organization"]["name"], "Renamed past the frozen one",
        "{renamed:#}"
    );
    let mut observer = raw(&t).await;
    let left = sql_query(format!(
        "SELECT count(*) AS count FROM pg_stat_activity WHERE pid = {pid}"
    ))
    .get_result::<Count>(&mut observer)
    .await
    .unwrap();
    assert_eq!(left.count, 0, "the frozen session is gone");

    // When the frozen process wakes, its next statement fails with the retryable error.
    let woke = settings::current(&mut conn, "lock_timeout").await;
    let error = woke.expect_err("the session was ended");
    assert_eq!(error.code(), ErrorCode::Unavailable, "{error:?}");
}

/// The application name the listen URL of `listen_connections_use_the_listen_url` carries.
const NAME: &str = "portcullis-listener";

async fn listen_connections_use_the_listen_url(t: TestApp) {
    let listen_url = format!("{}?application_name={NAME}", t.app.db.url());
    let b = instance(&t, |config| config.database_listen_url = Some(listen_url)).await;
    let admin_on_a = t.admin_token().await;
    let admin_on_b = b.admin_token().await;
    let org = t.create_organization(&admin_on_a, "listened").await;

    // B learns of A's commits only over LISTEN: its own pool does not see them by itself.
    let actor: Actor = authenticate(&b.app, Some(&admin_on_b), &ClientInfo::default())
        .await
        .unwrap()
        .actor()
        .unwrap()
        .clone();
    let filter = portcullis::audit::AuditFilter {
        organization_id: Some(org.parse().unwrap()),
        ..Default::default()
    };
    let mut on_b = feed::subscribe(&b.app, &actor, filter, None, false)
        .await
        .unwrap();
    let renamed = rename(&t, &admin_on_a, &org, "Heard on B").await;
    assert!(renamed.get("errors").is_none(), "{renamed:#}");
    let event = tokio::time::timeout(Duration::from_secs(10), on_b.recv())
        .await
        .expect("the event reaches B")
        .expect("the feed is open")
        .unwrap();
    assert_eq!(event.action, "organization.updated");

    // B's listeners (audit feed, authorization, job runner) connected with the listen URL:
    // the sessions named by it are LISTEN connections, one per channel.
    let jobs = portcullis::jobs::Runner::start(&b.app);
    let mut observer = raw(&t).await;
    let mut queries = Vec::new();
    for _ in 0..100 {
        queries = sql_query(format!(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name = '{NAME}' ORDER BY query"
        ))
        .load::<Query>(&mut observer)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.query)
        .collect::<Vec<_>>();
        if queries.len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        queries,
        [
            "LISTEN portcullis_audit",
            "LISTEN portcullis_authz",
            "LISTEN portcullis_jobs",
            "LISTEN portcullis_keys"
        ]
    );
    jobs.stop(Duration::from_secs(5)).await;
}

crate::backend_tests!(a_held_lock_fails_a_mutation_with_a_retryable_error);

postgres_tests!(
    pooled_connections_carry_the_configured_limits,
    a_transaction_frozen_past_the_idle_limit_is_ended_by_the_server,
    listen_connections_use_the_listen_url,
);
