//! Read replicas: lists read from a streaming replica once it has replayed what the client last
//! wrote, else from the primary; authorization always reads the primary. Against a real primary
//! and a real replica made with `pg_basebackup`, whose replay the test pauses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Request, header};
use chrono::{TimeZone as _, Utc};
use portcullis::app::App;
use portcullis::clock::FixedClock;
use serde_json::{Value, json};

use crate::pg_cluster::PgCluster;
use crate::support::{TestApp, test_config};

const ORGANIZATIONS: &str = "{ organizations(first: 50) { nodes { slug } } }";

/// Posts `query` as `token`, sending `Portcullis-Read-After` when given.
async fn post(
    t: &TestApp,
    token: &str,
    query: &str,
    variables: Value,
    read_after: Option<&str>,
) -> (HeaderMap, Value) {
    let mut request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(position) = read_after {
        request = request.header("portcullis-read-after", position);
    }
    let body = json!({ "query": query, "variables": variables }).to_string();
    let (_, headers, body) = t.send(request.body(Body::from(body)).unwrap()).await;
    (headers, serde_json::from_slice(&body).unwrap())
}

async fn slugs(t: &TestApp, token: &str, read_after: Option<&str>) -> Vec<String> {
    let (_, body) = post(t, token, ORGANIZATIONS, json!({}), read_after).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    body["data"]["organizations"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| node["slug"].as_str().unwrap().to_owned())
        .collect()
}

/// Creates an organization; returns its id and the position the response announced.
async fn create_organization(t: &TestApp, token: &str, slug: &str) -> (String, String) {
    let (headers, body) = post(
        t,
        token,
        "mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { organization { id } } }",
        json!({ "input": { "slug": slug, "name": slug } }),
        None,
    )
    .await;
    let id = body["data"]["createOrganization"]["organization"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body:#}"))
        .to_owned();
    let header = headers
        .get("portcullis-written-at")
        .expect("a write announces its position")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        body["extensions"]["writtenAt"],
        header.as_str(),
        "the body says it too"
    );
    (id, header)
}

fn replay(replica: &PgCluster, run: bool) {
    let call = if run {
        "pg_wal_replay_resume()"
    } else {
        "pg_wal_replay_pause()"
    };
    replica.sql("portcullis", &format!("SELECT {call}"));
}

/// Waits until the replica has replayed everything the primary has written so far.
fn caught_up(primary: &PgCluster, replica: &PgCluster) {
    let target = primary.sql("portcullis", "SELECT pg_current_wal_lsn()");
    let deadline = Instant::now() + Duration::from_secs(30);
    while replica.sql(
        "portcullis",
        &format!("SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"),
    ) != "t"
    {
        assert!(Instant::now() < deadline, "the replica did not catch up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_read_a_replica_that_has_what_the_client_wrote() {
    let Some(primary) = PgCluster::primary() else {
        return;
    };
    primary.sql("postgres", "CREATE DATABASE portcullis");
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap(),
    ));
    let start = |config| {
        let clock = clock.clone();
        async move {
            let app = App::start(config, clock.clone()).await.expect("app starts");
            TestApp {
                router: portcullis::http::router(app.clone()),
                app,
                clock,
            }
        }
    };
    // Migrated and bootstrapped before the copy, so the replica starts with the schema.
    let plain = start(test_config(&primary.url("portcullis"))).await;
    let admin = plain.admin_token().await;
    let (member, member_token) = plain.user_with_token(&admin, "member@example.com").await;
    let replica = primary.replica();
    let mut config = test_config(&primary.url("portcullis"));
    config.database_replica_urls = vec![replica.url("portcullis")];
    let t = start(config).await;
    let (alpha, _) = create_organization(&t, &admin, "alpha").await;
    caught_up(&primary, &replica);

    // The replica stops replaying; what is written now exists on the primary only.
    replay(&replica, false);
    let (_, beta_written) = create_organization(&t, &admin, "beta").await;
    assert_eq!(
        slugs(&t, &admin, Some(&beta_written)).await,
        ["alpha", "beta"],
        "a client that hands back its write's position sees the write: the primary serves it"
    );
    assert_eq!(
        slugs(&t, &admin, None).await,
        ["alpha", "beta"],
        "a client that says nothing sees everything committed before it asked"
    );
    assert_eq!(
        slugs(&t, &admin, Some("0/0")).await,
        ["alpha"],
        "a client that asks for an older position is served by the replica, as it stands"
    );
    let (_, bad) = post(&t, &admin, ORGANIZATIONS, json!({}), Some("yesterday")).await;
    assert_eq!(
        bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{bad:#}"
    );
    assert_eq!(
        bad["errors"][0]["extensions"]["field"], "Portcullis-Read-After",
        "{bad:#}"
    );

    // Authorization reads the primary: a grant the replica has not replayed is honoured at once.
    let members =
        "query($id: ID!) { organization(id: $id) { members(first: 10) { nodes { user { email } } } } }";
    let (_, hidden) = post(&t, &member_token, members, json!({ "id": alpha }), Some("0/0")).await;
    assert_eq!(
        hidden["data"]["organization"],
        Value::Null,
        "not a member yet: {hidden:#}"
    );
    let role = t.builtin_role(&admin, "org_admin").await;
    let granted = t
        .gql(
            Some(&admin),
            "mutation($u: ID!, $r: ID!, $o: ID) { assignRole(input: {userId: $u, roleId: $r, organizationId: $o}) { roleAssignment { id } } }",
            json!({ "u": member, "r": role, "o": alpha }),
        )
        .await;
    granted.data();
    let (_, allowed) = post(&t, &member_token, members, json!({ "id": alpha }), Some("0/0")).await;
    assert!(
        allowed.get("errors").is_none(),
        "the grant counts at once: {allowed:#}"
    );
    assert!(
        allowed["data"]["organization"]["members"]["nodes"].is_array(),
        "{allowed:#}"
    );

    // Replayed up to the client's write, the replica serves it, and nothing newer.
    replay(&replica, true);
    caught_up(&primary, &replica);
    replay(&replica, false);
    create_organization(&t, &admin, "gamma").await;
    assert_eq!(
        slugs(&t, &admin, Some(&beta_written)).await,
        ["alpha", "beta"],
        "the replica has beta, the client's last write: it serves the list"
    );
    assert_eq!(slugs(&t, &admin, None).await, ["alpha", "beta", "gamma"]);
    replay(&replica, true);
}
