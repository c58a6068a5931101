//! Signing keys across instances: one first key and one administrator however many instances start
//! at once, rotations published before they sign and honoured by every instance, and tokens naming
//! unknown keys costing the database a bounded number of reads.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeDelta, TimeZone, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use portcullis::app::App;
use portcullis::clock::FixedClock;
use portcullis::identity::tokens::{KeyRing, UNKNOWN_KID_LOOKUPS_PER_INTERVAL, UNKNOWN_KID_RELOAD_INTERVAL};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::gateway_process::GatewayProcess;
use crate::security::credentials::{VIEWER, assert_refused, signed_by_a_stranger};
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, TestApp, TestDb, test_config};

/// The `kid` in a JWT's header.
fn kid_of(token: &str) -> String {
    let header = token.split('.').next().expect("a JWT");
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64")).expect("JSON");
    header["kid"].as_str().expect("a kid").to_owned()
}

/// The claims of a JWT.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("JSON")
}

/// The kids of a JWKS document.
fn kids_of(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| key["kid"].as_str().expect("kid").to_owned())
        .collect()
}

async fn assert_accepted(t: &TestApp, token: &str, why: &str) {
    let accepted = t.gql(Some(token), VIEWER, json!({})).await;
    assert_eq!(accepted.data()["viewer"]["user"]["email"], ADMIN_EMAIL, "{why}");
}

/// Anyone can send tokens naming keys the gateway does not know. Old kids and non-UUIDv7 kids are
/// never looked up; one unknown kid is looked up once per interval however often it comes; random
/// kids together are looked up a bounded number of times per interval; and a real new key made by
/// another instance is still found by the first token that names it.
async fn unknown_kids_cause_a_bounded_number_of_key_reloads(t: TestApp) {
    let claims = claims_of(&t.admin_token().await);
    let keys = &t.app.keys;

    let older = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001).to_string();
    for kid in [older.as_str(), "not-a-uuid", &Uuid::new_v4().to_string()] {
        assert_refused(&t, &signed_by_a_stranger(&claims, kid), "old or non-v7 kid").await;
    }
    assert_eq!(
        keys.unknown_kid_lookups(),
        0,
        "old and non-v7 kids are never looked up"
    );

    let statements = t.app.db.statements_executed();
    let repeated = Uuid::now_v7().to_string();
    for _ in 0..50 {
        assert_refused(&t, &signed_by_a_stranger(&claims, &repeated), "unknown kid").await;
    }
    assert_eq!(keys.unknown_kid_lookups(), 1, "one kid, one lookup per interval");

    for _ in 0..200 {
        let random = Uuid::now_v7().to_string();
        assert_refused(&t, &signed_by_a_stranger(&claims, &random), "random kid").await;
    }
    assert_eq!(
        keys.unknown_kid_lookups(),
        u64::from(UNKNOWN_KID_LOOKUPS_PER_INTERVAL),
        "250 requests with unknown kids, a bounded number of lookups"
    );
    // Few statements for 250 requests: a read per request would be 250 or more. The lookups are
    // counted exactly above; the rest is what runs in the background whatever the requests do
    // (listeners' first reads, the audit feed's passes after each commit and once a second).
    let read = t.app.db.statements_executed() - statements;
    assert!(read < 100, "250 refused requests sent {read} statements");

    // Another instance rotates (signing at once) and signs: the first token naming the new key is
    // accepted (on PostgreSQL the announcement may have brought it already).
    t.clock.advance(UNKNOWN_KID_RELOAD_INTERVAL);
    let other = KeyRing::load(
        &t.app.db,
        t.app.now(),
        keys.issuer().to_owned(),
        TimeDelta::minutes(10),
        TimeDelta::zero(),
    )
    .await
    .unwrap();
    let rotated = other.rotate(&t.app.db, t.app.now()).await.unwrap();
    let user = claims["sub"].as_str().unwrap().parse().unwrap();
    let session = claims["sid"].as_str().unwrap().parse().unwrap();
    let token = other
        .issue(user, session, t.app.now() + TimeDelta::days(1), t.app.now())
        .unwrap()
        .token;
    assert_eq!(kid_of(&token), rotated.kid.to_string());
    assert_accepted(&t, &token, "a real new key on its first lookup").await;
}

/// Runs `test` on a fresh gateway whose rotations publish a key `publish_seconds` before it signs;
/// hands over the database URL so that the test can start another instance on it.
async fn with_publish_delay<F, Fut>(backend: Backend, publish_seconds: u32, test: F)
where
    F: FnOnce(TestApp, String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let Some((db, url)) = TestDb::create(backend).await else {
        return;
    };
    let outcome = tokio::spawn(async move {
        let clock = Arc::new(FixedClock::new(
            Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap(),
        ));
        let mut config = test_config(&url);
        config.key_publish_seconds = publish_seconds;
        let app = App::start(config, clock.clone()).await.expect("app starts");
        let router = portcullis::http::router(app.clone());
        test(TestApp { app, router, clock }, url).await;
    })
    .await;
    db.drop_database().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

async fn published_kids(t: &TestApp) -> Vec<String> {
    let (status, _, body) = t
        .send(
            axum::http::Request::get("/.well-known/jwks.json")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, axum::http::StatusCode::OK);
    kids_of(&serde_json::from_slice(&body).expect("JSON"))
}

/// A rotated-in key is published at once, signs only after the publication delay, and the key it
/// replaces verifies (on this instance and on one started later) until its last tokens expire.
async fn rotated_keys_are_published_before_they_sign(backend: Backend) {
    with_publish_delay(backend, 600, |t, url| async move {
        let old_kid = kid_of(&t.admin_token().await);
        let rotated = t.app.keys.rotate(&t.app.db, t.app.now()).await.unwrap();
        let new_kid = rotated.kid.to_string();
        assert_eq!(rotated.activates_at, t.app.now() + TimeDelta::seconds(600));
        assert_eq!(published_kids(&t).await, [new_kid.clone(), old_kid.clone()]);
        assert_eq!(
            kid_of(&t.admin_token().await),
            old_kid,
            "published, not yet signing"
        );

        t.clock.advance(TimeDelta::seconds(599));
        let last_of_old = t.admin_token().await;
        assert_eq!(kid_of(&last_of_old), old_kid, "a second before activation");
        t.clock.advance(TimeDelta::seconds(1));
        let first_of_new = t.admin_token().await;
        assert_eq!(kid_of(&first_of_new), new_kid, "signing from its activation");
        assert_accepted(&t, &last_of_old, "the old key verifies its last tokens").await;

        // An instance started later knows the retired key from the database, not from its start.
        t.clock.advance(TimeDelta::seconds(300));
        let mut config = test_config(&url);
        config.key_publish_seconds = 600;
        let later = App::start(config, t.clock.clone())
            .await
            .expect("a later instance starts");
        let later = TestApp {
            router: portcullis::http::router(later.clone()),
            app: later,
            clock: t.clock.clone(),
        };
        assert_eq!(published_kids(&later).await, [new_kid.clone(), old_kid.clone()]);
        assert_accepted(&later, &last_of_old, "a later instance verifies the retired key").await;
        assert_accepted(&later, &first_of_new, "and the new one").await;

        // Once the old key's last tokens have expired, it leaves the set.
        t.clock.advance(TimeDelta::seconds(300));
        t.app.keys.reload(&t.app.db, t.app.now()).await.unwrap();
        assert_eq!(published_kids(&t).await, [new_kid]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_keys_are_published_before_they_sign_sqlite() {
    rotated_keys_are_published_before_they_sign(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_keys_are_published_before_they_sign_postgres() {
    rotated_keys_are_published_before_they_sign(Backend::Postgres).await;
}

crate::backend_tests!(unknown_kids_cause_a_bounded_number_of_key_reloads);

// Real processes on one PostgreSQL database.

/// A bound on waiting, not a speed claim.
const PATIENCE: Duration = Duration::from_secs(60);

/// One `portcullis` process (see `gateway_process`), with what these tests ask of it.
struct Gateway {
    process: GatewayProcess,
    url: String,
}

impl Gateway {
    /// Starts the binary on `database_url` (not waiting for it to be ready).
    fn spawn(database_url: &str, publish_seconds: u32) -> Self {
        let publish_seconds = publish_seconds.to_string();
        let process = GatewayProcess::spawn(
            database_url,
            &[
                ("PORTCULLIS_KEY_PUBLISH_SECONDS", &publish_seconds),
                ("PORTCULLIS_DB_POOL_SIZE", "4"),
            ],
        );
        let url = process.url.clone();
        Self { process, url }
    }

    /// Waits until `/readyz` answers 200.
    async fn ready(&mut self, http: &reqwest::Client) {
        self.process.ready(http).await;
    }

    async fn gql(&self, http: &reqwest::Client, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = http
            .post(format!("{}/graphql", self.url))
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .body(json!({ "query": query, "variables": variables }).to_string());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let text = request
            .send()
            .await
            .expect("the gateway answers")
            .text()
            .await
            .expect("a body");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    async fn admin_token(&self, http: &reqwest::Client) -> String {
        let response = self
            .gql(
                http,
                None,
                "mutation($email: String!, $password: String!) {
                   login(input: {email: $email, password: $password}) { accessToken }
                 }",
                json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }),
            )
            .await;
        response["data"]["login"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {response:#}"))
            .to_owned()
    }

    /// Whether this instance accepts `token` as the administrator's.
    async fn accepts(&self, http: &reqwest::Client, token: &str) -> bool {
        let response = self.gql(http, Some(token), VIEWER, json!({})).await;
        response["data"]["viewer"]["user"]["email"] == ADMIN_EMAIL
    }

    async fn published_kids(&self, http: &reqwest::Client) -> Vec<String> {
        let jwks: Value = http
            .get(format!("{}/.well-known/jwks.json", self.url))
            .send()
            .await
            .expect("the gateway answers")
            .json()
            .await
            .expect("JSON");
        kids_of(&jwks)
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

async fn count(url: &str, sql: &str) -> i64 {
    let mut conn = AsyncPgConnection::establish(url).await.expect("connect");
    diesel::sql_query(sql)
        .get_result::<Count>(&mut conn)
        .await
        .expect("count")
        .count
}

/// Runs `test` on a fresh, empty PostgreSQL database; nothing without PostgreSQL.
async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some((db, url)) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let outcome = tokio::spawn(test(url)).await;
    db.drop_database().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Starts three gateways at the same moment and waits until all serve.
async fn three_at_once(http: &reqwest::Client, url: &str, publish_seconds: u32) -> Vec<Gateway> {
    let mut gateways: Vec<Gateway> = (0..3).map(|_| Gateway::spawn(url, publish_seconds)).collect();
    for gateway in &mut gateways {
        gateway.ready(http).await;
    }
    gateways
}

/// Three processes started at once on an empty database: one migrates while the others wait, and
/// afterwards there is exactly one signing key and one administrator, and all three serve with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_started_at_once_make_one_key_and_one_administrator() {
    on_postgres(|url| async move {
        let http = reqwest::Client::new();
        let gateways = three_at_once(&http, &url, 0).await;

        assert_eq!(count(&url, "SELECT count(*) AS count FROM signing_keys").await, 1);
        assert_eq!(count(&url, "SELECT count(*) AS count FROM users").await, 1);
        let super_admins = format!(
            "SELECT count(*) AS count FROM role_assignments WHERE organization_id IS NULL AND role_id = '{}'",
            portcullis::authz::engine::SUPER_ADMIN_ROLE
        );
        assert_eq!(count(&url, &super_admins).await, 1);

        let kids = gateways[0].published_kids(&http).await;
        assert_eq!(kids.len(), 1);
        for (i, gateway) in gateways.iter().enumerate() {
            assert_eq!(gateway.published_kids(&http).await, kids, "instance {i}'s JWKS");
            let token = gateway.admin_token(&http).await;
            assert_eq!(kid_of(&token), kids[0]);
            for other in &gateways {
                assert!(
                    other.accepts(&http, &token).await,
                    "a token of instance {i} is good everywhere"
                );
            }
            let users = gateway
                .gql(&http, Some(&token), "{ users { totalCount } }", json!({}))
                .await;
            assert_eq!(users["data"]["users"]["totalCount"], 1, "instance {i}: {users:#}");
        }
    })
    .await;
}

/// A rotation from the command line reaches every running instance: each publishes the new key
/// while all still sign with the old one (the announcement, well before the 30 s poll), all switch
/// after the publication delay, each accepts the others' new tokens, the old tokens stay good, and
/// an instance started after the rotation knows both keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_from_the_command_line_reaches_every_instance() {
    const PUBLISH_SECONDS: u32 = 5;
    on_postgres(|url| async move {
        let http = reqwest::Client::new();
        let gateways = three_at_once(&http, &url, PUBLISH_SECONDS).await;
        let old_token = gateways[0].admin_token(&http).await;
        let old_kid = kid_of(&old_token);

        let rotated = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("rotate-signing-key")
            .env("PORTCULLIS_DATABASE_URL", &url)
            .env("PORTCULLIS_KEY_PUBLISH_SECONDS", PUBLISH_SECONDS.to_string())
            .env("PORTCULLIS_LOG", "warn")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("run rotate-signing-key");
        assert!(rotated.status.success(), "rotate-signing-key failed");
        let printed = String::from_utf8(rotated.stdout).expect("UTF-8");
        let new_kid = printed.split_whitespace().next().expect("the new kid").to_owned();
        assert_ne!(new_kid, old_kid);

        // Until every instance signs with the new key: no token carries it before every JWKS lists
        // it, and there is a moment when every JWKS lists it while all still sign with the old.
        let mut published_while_old_signed = false;
        let deadline = Instant::now() + PATIENCE;
        let new_tokens = loop {
            let mut all_published = true;
            for gateway in &gateways {
                all_published &= gateway.published_kids(&http).await.contains(&new_kid);
            }
            let mut tokens = Vec::new();
            for gateway in &gateways {
                tokens.push(gateway.admin_token(&http).await);
            }
            let signed_new = tokens.iter().filter(|token| kid_of(token) == new_kid).count();
            assert!(
                signed_new == 0 || all_published,
                "a token signed with the new key before every instance published it"
            );
            published_while_old_signed |= all_published && signed_new == 0;
            if signed_new == tokens.len() {
                break tokens;
            }
            assert!(
                Instant::now() < deadline,
                "the instances never all switched to the new key"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            published_while_old_signed,
            "every instance published the new key before the publication delay ran out"
        );

        for (i, token) in new_tokens.iter().enumerate() {
            for (j, gateway) in gateways.iter().enumerate() {
                assert!(
                    gateway.accepts(&http, token).await,
                    "instance {j} accepts instance {i}'s new token"
                );
            }
        }
        for gateway in &gateways {
            assert!(
                gateway.accepts(&http, &old_token).await,
                "the old key's tokens stay good"
            );
        }

        let mut later = Gateway::spawn(&url, PUBLISH_SECONDS);
        later.ready(&http).await;
        assert_eq!(later.published_kids(&http).await, [new_kid.clone(), old_kid]);
        assert!(
            later.accepts(&http, &old_token).await,
            "a later instance accepts the old key's tokens"
        );
        assert!(later.accepts(&http, &new_tokens[0]).await);
        assert_eq!(kid_of(&later.admin_token(&http).await), new_kid);
    })
    .await;
}
