//! Test harness: a fresh gateway per test on SQLite (temp file) or PostgreSQL (fresh database).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{TimeZone, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use portcullis::app::App;
use portcullis::clock::FixedClock;
use portcullis::config::Config;
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const PASSWORD: &str = "user-password-1";
/// The origin passkey ceremonies of the tests come from.
pub const PASSKEY_ORIGIN: &str = "http://localhost:8080";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares each listed `async fn name(t: TestApp)` as two tests, `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::support::run($crate::support::Backend::Sqlite, super::$name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::support::run($crate::support::Backend::Postgres, super::$name).await;
            }
        }
    )*};
}

/// A running gateway (in-process router) with a settable clock.
#[derive(Clone)]
pub struct TestApp {
    pub app: App,
    pub router: Router,
    pub clock: Arc<FixedClock>,
}

/// The database behind one test, removed afterwards.
pub enum TestDb {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// A fresh, empty database; `None` when PostgreSQL is not configured (outside CI).
    pub async fn create(backend: Backend) -> Option<(TestDb, String)> {
        let unique = uuid::Uuid::now_v7().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("portcullis-test-{unique}.db"));
                let url = format!("sqlite://{}", path.display());
                Some((TestDb::Sqlite(path), url))
            }
            Backend::Postgres => {
                let admin_url = match std::env::var("PORTCULLIS_TEST_POSTGRES_URL") {
                    Ok(url) if !url.is_empty() => url,
                    _ => {
                        assert!(
                            std::env::var("CI").as_deref() != Ok("true"),
                            "CI=true but PORTCULLIS_TEST_POSTGRES_URL is not set"
                        );
                        eprintln!("PORTCULLIS_TEST_POSTGRES_URL not set: PostgreSQL variant not run");
                        return None;
                    }
                };
                let name = format!("portcullis_test_{unique}");
                let mut admin = AsyncPgConnection::establish(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} unreachable: {e}"));
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(base, _)| base)
                    .expect("URL has a path");
                let url = format!("{base}/{name}");
                Some((TestDb::Postgres { admin_url, name }, url))
            }
        }
    }

    pub async fn drop_database(self) {
        match self {
            TestDb::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            TestDb::Postgres { admin_url, name } => {
                if let Ok(mut admin) = AsyncPgConnection::establish(&admin_url).await {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            }
        }
    }
}

/// A configuration for tests: the bootstrap administrator set, small pool.
pub fn test_config(url: &str) -> Config {
    let mut config = Config::for_database(url);
    config.admin_email = Some(ADMIN_EMAIL.to_owned());
    config.admin_password = Some(ADMIN_PASSWORD.to_owned());
    config.public_url = Some("http://portcullis.test".to_owned());
    // Browsers (and the soft authenticator of the passkey tests) speak WebAuthn on localhost only.
    config.webauthn_rp_id = Some("localhost".to_owned());
    config.webauthn_origins = vec![PASSKEY_ORIGIN.to_owned()];
    config.db_pool_size = 4;
    // A rotation signs with its new key at once, unless a test is about the publication delay.
    config.key_publish_seconds = 0;
    // Test receivers listen on loopback over plain HTTP.
    config.webhook_allow_http = true;
    config.webhook_allow_private = true;
    // Servers stopped by tests have no load balancer to wait for.
    config.drain_seconds = 0;
    config
}

/// Runs `test` against a fresh gateway on `backend`, then drops the database even if it panicked.
pub async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(TestApp) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some((db, url)) = TestDb::create(backend).await else {
        return;
    };
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap(),
    ));
    let outcome = tokio::spawn(async move {
        let app = App::start(test_config(&url), clock.clone())
            .await
            .expect("app starts");
        let router = portcullis::http::router(app.clone());
        test(TestApp { app, router, clock }).await;
    })
    .await;
    db.drop_database().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// A GraphQL response, with helpers that fail the test with the whole body on surprise.
#[derive(Debug, Clone)]
pub struct Gql(pub Value);

impl Gql {
    /// `data`, asserting there were no errors.
    pub fn data(&self) -> &Value {
        assert!(self.0.get("errors").is_none(), "unexpected errors: {:#}", self.0);
        &self.0["data"]
    }

    /// `extensions.code` of the first error.
    pub fn code(&self) -> &str {
        self.0["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error, got {:#}", self.0))
    }

    /// `extensions.field` of the first error.
    pub fn field(&self) -> &str {
        self.0["errors"][0]["extensions"]["field"].as_str().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.0["errors"][0]["message"].as_str().unwrap_or("")
    }
}

impl TestApp {
    /// Another gateway instance on this test's database and clock, its configuration changed by
    /// `tweak` (from [`test_config`]).
    pub async fn instance(&self, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = test_config(self.app.db.url());
        tweak(&mut config);
        let app = App::start(config, self.clock.clone())
            .await
            .expect("the other instance starts");
        TestApp {
            router: portcullis::http::router(app.clone()),
            app,
            clock: self.clock.clone(),
        }
    }

    /// Sends a raw HTTP request through the full router.
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, headers, body.to_vec())
    }

    /// POSTs a GraphQL operation, optionally as `Bearer token`.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Gql {
        let mut request = Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/graphql-response+json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = json!({ "query": query, "variables": variables }).to_string();
        let (_, _, body) = self.send(request.body(Body::from(body)).expect("request")).await;
        Gql(serde_json::from_slice(&body).expect("JSON response"))
    }

    /// Logs in and returns the whole `login` payload.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let response = self
            .gql(
                None,
                "mutation($email: String!, $password: String!) {
                   login(input: {email: $email, password: $password}) {
                     accessToken refreshToken accessTokenExpiresAt user { id email } session { id }
                   }
                 }",
                json!({ "email": email, "password": password }),
            )
            .await;
        response.data()["login"].clone()
    }

    /// An access token of the bootstrap super-administrator.
    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await["accessToken"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// Creates a user (as `admin`) with [`PASSWORD`] and returns its id.
    pub async fn create_user(&self, admin: &str, email: &str) -> String {
        let response = self
            .gql(
                Some(admin),
                "mutation($input: CreateUserInput!) { createUser(input: $input) { user { id } } }",
                json!({ "input": { "email": email, "displayName": email, "password": PASSWORD } }),
            )
            .await;
        response.data()["createUser"]["user"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// Creates a user and logs in as them; returns (user id, access token).
    pub async fn user_with_token(&self, admin: &str, email: &str) -> (String, String) {
        let id = self.create_user(admin, email).await;
        let token = self.login(email, PASSWORD).await["accessToken"]
            .as_str()
            .expect("token")
            .to_owned();
        (id, token)
    }

    /// Every role `admin` can list, as (key, id).
    pub async fn roles_by_key(&self, admin: &str) -> Vec<(String, String)> {
        let roles = self
            .gql(
                Some(admin),
                "{ roles(first: 50) { nodes { id key } } }",
                json!({}),
            )
            .await;
        roles.data()["roles"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|r| {
                let field = |name: &str| r[name].as_str().expect("a string").to_owned();
                (field("key"), field("id"))
            })
            .collect()
    }

    /// The id of the built-in role `key`.
    pub async fn builtin_role(&self, admin: &str, key: &str) -> String {
        self.roles_by_key(admin)
            .await
            .into_iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("built-in role {key}"))
            .1
    }

    pub async fn create_organization(&self, admin: &str, slug: &str) -> String {
        let response = self
            .gql(
                Some(admin),
                "mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { organization { id } } }",
                json!({ "input": { "slug": slug, "name": slug } }),
            )
            .await;
        response.data()["createOrganization"]["organization"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }
}
