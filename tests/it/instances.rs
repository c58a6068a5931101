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

/// A policy created through instance A is in force on instance B, which learns of it only through
/// LISTEN/NOTIFY (its polling is off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_changes_reach_other_instances() {
    let Some((db, url)) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let outcome = tokio::spawn(async move {
        let clock = Arc::new(FixedClock::new(Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap()));
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

        let mut waited = Duration::ZERO;
        while b.app.engine.state().version != version_on_a {
            assert!(waited < Duration::from_secs(10), "instance B never heard of the change");
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += Duration::from_millis(10);
        }
        let allowed = b.gql(Some(&user_on_b), AUTHORIZE, json!({})).await;
        assert_eq!(allowed.data()["authorize"]["allowed"], true, "B decides with A's new policy");
        assert_eq!(allowed.data()["authorize"]["policyVersion"], version_on_a);
        let listed = b.gql(Some(&user_on_b), "{ users { totalCount } }", json!({})).await;
        assert_eq!(listed.data()["users"]["totalCount"], 2, "and guards its own API with it");
        drop(admin_on_b);
    })
    .await;
    db.drop_database().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}
