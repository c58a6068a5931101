//! Several gateway instances on one PostgreSQL database stay in step without restarts.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use portcullis::app::App;
use portcullis::clock::FixedClock;
use serde_json::json;

use crate::support::{Backend, TestApp, TestDb, test_config};

const AUTHORIZE: &str = "query { authorize(input: {
    action: {type: \"Portcullis::Action\", id: \"user.list\"},
    resource: {type: \"Portcullis::Gateway\", id: \"portcullis\"}
  }) { allowed policyVersion } }";

/// Runs `test` with two instances (A, then B) on one fresh PostgreSQL database and one clock;
/// nothing without PostgreSQL.
async fn on_two_instances<F, Fut>(test: F)
where
    F: FnOnce(TestApp, TestApp) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let Some((db, url)) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let outcome = tokio::spawn(async move {
        let clock = Arc::new(FixedClock::new(
            Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap(),
        ));
        let config = test_config(&url);
        let start = |config| {
            let clock = clock.clone();
            async move {
                let app = App::start(config, clock.clone()).await.expect("instance starts");
                let router = portcullis::http::router(app.clone());
                TestApp { app, router, clock }
            }
        };
        let a = start(config.clone()).await;
        let b = start(config).await;
        test(a, b).await;
    })
    .await;
    db.drop_database().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// A policy created through instance A is in force on instance B, which learns of it only through
/// LISTEN/NOTIFY (its polling is off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_changes_reach_other_instances() {
    on_two_instances(|a, b| async move {
        let admin_on_a = a.admin_token().await;
        let admin_on_b = b.admin_token().await;
        let (user, _) = a.user_with_token(&admin_on_a, "follower@example.com").await;
        let user_on_b = b.login("follower@example.com", crate::support::PASSWORD).await["accessToken"]
            .as_str()
            .unwrap()
            .to_owned();
        let denied = b.gql(Some(&user_on_b), AUTHORIZE, json!({})).await;
        assert_eq!(denied.data()["authorize"]["allowed"], false);

        let created = a
            .gql(
                Some(&admin_on_a),
                "mutation($s: String!) { createPolicy(input: {name: \"followers list users\", source: $s}) { policy { id } } }",
                json!({ "s": format!("permit (principal == Portcullis::User::\"{user}\", action == Portcullis::Action::\"user.list\", resource);") }),
            )
            .await;
        created.data();
        let version_on_a = a.app.engine.state().version;

        wait_for_version(&b, version_on_a).await;
        let allowed = b.gql(Some(&user_on_b), AUTHORIZE, json!({})).await;
        assert_eq!(allowed.data()["authorize"]["allowed"], true, "B decides with A's new policy");
        assert_eq!(allowed.data()["authorize"]["policyVersion"], version_on_a);
        let listed = b.gql(Some(&user_on_b), "{ users { totalCount } }", json!({})).await;
        assert_eq!(listed.data()["users"]["totalCount"], 2, "and guards its own API with it");
        drop(admin_on_b);
    })
    .await;
}

/// A session ended on instance A stops working there at once and on instance B within a second
/// (B trusts a session it has just read for that long rather than reading it on every request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_ended_on_one_instance_end_on_the_others_within_a_second() {
    on_two_instances(|a, b| async move {
        const VIEWER: &str = "{ viewer { user { email } } }";
        let admin = a.admin_token().await;
        let (_, token) = a.user_with_token(&admin, "leaver@example.com").await;
        // A change of authorization version would make B read the session again anyway.
        wait_for_version(&b, a.app.engine.version()).await;
        let seen = b.gql(Some(&token), VIEWER, json!({})).await;
        assert_eq!(seen.data()["viewer"]["user"]["email"], "leaver@example.com");

        a.gql(Some(&token), "mutation { logout { session { id } } }", json!({}))
            .await
            .data();
        let on_a = a.gql(Some(&token), VIEWER, json!({})).await;
        assert_eq!(on_a.code(), "UNAUTHENTICATED", "at once where it was ended");
        assert_eq!(on_a.message(), "session revoked");

        let on_b = b.gql(Some(&token), VIEWER, json!({})).await;
        assert_eq!(
            on_b.data()["viewer"]["user"]["email"],
            "leaver@example.com",
            "B still trusts what it read under a second ago"
        );
        b.clock.advance(chrono::Duration::seconds(1));
        let on_b = b.gql(Some(&token), VIEWER, json!({})).await;
        assert_eq!(
            on_b.code(),
            "UNAUTHENTICATED",
            "a second later B reads the session again"
        );
        assert_eq!(on_b.message(), "session revoked");
    })
    .await;
}

/// Waits (up to ten seconds) until `instance` has learned of authorization `version`.
async fn wait_for_version(instance: &TestApp, version: i64) {
    let mut waited = Duration::ZERO;
    while instance.app.engine.version() != version {
        assert!(
            waited < Duration::from_secs(10),
            "the instance never heard of the change"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
}
