//! Credential rate limits are counted in the database: instances on one database share each
//! budget, attempts racing on several instances never exceed it, expired counts are swept, and an
//! attempt that cannot be counted is not checked.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, header};
use chrono::{TimeDelta, TimeZone, Utc};
use diesel_async::SimpleAsyncConnection;
use portcullis::db::{Db, Timestamp, credential_attempts};
use portcullis::error::Error;
use portcullis::identity::rate_limit::{AttemptLimiter, Reservation};
use serde_json::{Value, json};

use crate::support::{ADMIN_PASSWORD, PASSWORD, TestApp};

const LOGIN: &str = "mutation($email: String!, $password: String!) {
    login(input: {email: $email, password: $password}) { accessToken } }";

fn at(minute: u32) -> Timestamp {
    Timestamp(Utc.with_ymd_and_hms(2026, 1, 1, 0, minute, 0).unwrap())
}

/// One login through `t`, from `ip` when given: the `extensions.code` of its error, or `"OK"`.
async fn login(t: &TestApp, ip: Option<&str>, email: &str, password: &str) -> String {
    let body = json!({ "query": LOGIN, "variables": { "email": email, "password": password } });
    let mut request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/graphql-response+json")
        .body(Body::from(body.to_string()))
        .unwrap();
    if let Some(ip) = ip {
        let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(addr));
    }
    let (_, _, body) = t.send(request).await;
    let body: Value = serde_json::from_slice(&body).expect("JSON response");
    if body["data"]["login"]["accessToken"].is_string() {
        return "OK".to_owned();
    }
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("neither a token nor an error: {body:#}"))
        .to_owned()
}

/// How many events of `action` the audit log holds (read as the administrator).
async fn events(t: &TestApp, admin: &str, action: &str) -> usize {
    let response = t
        .gql(
            Some(admin),
            "query($a: [String!]) { auditEvents(first: 100, filter: {actions: $a}) { edges { node { id } } } }",
            json!({ "a": [action] }),
        )
        .await;
    response.data()["auditEvents"]["edges"].as_array().unwrap().len()
}

async fn tracked(db: &Db) -> i64 {
    let mut conn = db.conn().await.unwrap();
    credential_attempts::tracked(&mut conn).await.unwrap()
}

/// The limiter's own rules, with each step taken by either of two instances' database handles.
async fn attempts_are_counted_before_their_outcome_is_known(t: TestApp) {
    let other = t.instance(|_| {}).await;
    let (a, b) = (&t.app.db, &other.app.db);
    let limiter = AttemptLimiter::new("test", 3, TimeDelta::minutes(15), TimeDelta::minutes(10));
    let held: Vec<Reservation> = vec![
        limiter.reserve(a, "k", at(0)).await.unwrap(),
        limiter.reserve(b, "k", at(0)).await.unwrap(),
        limiter.reserve(a, "k", at(0)).await.unwrap(),
    ];
    // The last attempts are still being checked: the refusal waits for the window's end.
    assert!(matches!(
        limiter.reserve(b, "k", at(0)).await,
        Err(Error::RateLimited {
            retry_after_secs: 900
        })
    ));
    let mut held = held.into_iter();
    limiter.refund(b, held.next().unwrap()).await;
    let again = limiter.reserve(b, "k", at(0)).await.unwrap();
    assert_eq!(
        limiter.failed(a, held.next().unwrap(), at(1)).await,
        None,
        "not the last attempt"
    );
    assert_eq!(limiter.failed(b, held.next().unwrap(), at(1)).await, Some(at(11)));
    assert_eq!(
        limiter.failed(a, again, at(1)).await,
        None,
        "locked once, whichever instance fails next"
    );
    assert!(matches!(
        limiter.reserve(a, "k", at(10)).await,
        Err(Error::RateLimited { retry_after_secs: 60 })
    ));
    // Other keys and other limiters are counted apart.
    let _kept = limiter.reserve(a, "other", at(10)).await.unwrap();
    let unrelated = AttemptLimiter::new("unrelated", 3, TimeDelta::minutes(15), TimeDelta::minutes(10));
    let _kept = unrelated.reserve(a, "k", at(10)).await.unwrap();
    // The lockout ends, and the key starts afresh with a whole budget.
    for _ in 0..3 {
        let _kept = limiter.reserve(b, "k", at(11)).await.unwrap();
    }
    assert!(limiter.reserve(a, "k", at(11)).await.is_err());
    // A reset forgets the key on every instance.
    let mut fresh = Vec::new();
    for _ in 0..3 {
        fresh.push(limiter.reserve(a, "r", at(12)).await.unwrap());
    }
    limiter.reset(b, fresh.pop().unwrap()).await;
    assert!(limiter.reserve(a, "r", at(12)).await.is_ok());
}

/// Wrong passwords sent to two instances in turn lock the (account, client) pair after the same
/// ten attempts as on one instance — per-process counts would have allowed twenty.
async fn two_instances_share_one_login_budget(t: TestApp) {
    let other = t.instance(|_| {}).await;
    let admin = t.admin_token().await;
    t.create_user(&admin, "victim@example.com").await;
    for attempt in 0..10 {
        let instance = if attempt % 2 == 0 { &t } else { &other };
        assert_eq!(
            login(instance, Some("192.0.2.9"), "victim@example.com", "wrong-guess").await,
            "UNAUTHENTICATED",
            "attempt {attempt}"
        );
    }
    for instance in [&t, &other] {
        assert_eq!(
            login(instance, Some("192.0.2.9"), "victim@example.com", "wrong-guess").await,
            "RATE_LIMITED"
        );
        assert_eq!(
            login(instance, Some("192.0.2.9"), "victim@example.com", PASSWORD).await,
            "RATE_LIMITED",
            "even the right password waits, on either instance"
        );
    }
    // Another client is not held back by this one's lock.
    assert_eq!(
        login(&other, Some("192.0.2.10"), "victim@example.com", PASSWORD).await,
        "OK"
    );
    // The lock set through one instance ends for both.
    t.clock.advance(TimeDelta::minutes(15));
    assert_eq!(
        login(&other, Some("192.0.2.9"), "victim@example.com", PASSWORD).await,
        "OK"
    );
}

/// Fifty wrong passwords from five addresses, spread over two instances, lock the account on
/// both; the lockout is audited once.
async fn two_instances_share_one_account_lockout(t: TestApp) {
    let other = t.instance(|_| {}).await;
    let admin = t.admin_token().await;
    t.create_user(&admin, "victim@example.com").await;
    for host in 1..=5 {
        let ip = format!("198.51.100.{host}");
        for attempt in 0..10 {
            let instance = if attempt % 2 == 0 { &t } else { &other };
            assert_eq!(
                login(instance, Some(&ip), "victim@example.com", "wrong-guess").await,
                "UNAUTHENTICATED",
                "{ip}, attempt {attempt}"
            );
        }
    }
    for instance in [&t, &other] {
        assert_eq!(
            login(instance, Some("203.0.113.7"), "victim@example.com", PASSWORD).await,
            "RATE_LIMITED"
        );
    }
    assert_eq!(events(&t, &admin, "session.login_locked").await, 1);
    assert_eq!(events(&t, &admin, "session.login_failed").await, 50);
    assert_eq!(
        login(&other, Some("203.0.113.7"), "admin@example.com", ADMIN_PASSWORD).await,
        "OK",
        "other accounts are untouched"
    );
}

/// Wrong passwords sent all at once to two instances: exactly the budget's ten are checked.
async fn concurrent_guesses_on_two_instances_never_exceed_the_budget(t: TestApp) {
    let other = t.instance(|_| {}).await;
    let admin = t.admin_token().await;
    t.create_user(&admin, "victim@example.com").await;
    let guesses: Vec<_> = (0..24)
        .map(|i| {
            let instance = if i % 2 == 0 { t.clone() } else { other.clone() };
            tokio::spawn(async move {
                login(&instance, Some("192.0.2.77"), "victim@example.com", "wrong-guess").await
            })
        })
        .collect();
    let mut seen = Vec::new();
    for guess in guesses {
        seen.push(guess.await.unwrap());
    }
    let count = |code: &str| seen.iter().filter(|c| *c == code).count();
    assert_eq!(count("UNAUTHENTICATED"), 10, "{seen:?}");
    assert_eq!(count("RATE_LIMITED"), 14, "{seen:?}");
    assert_eq!(events(&t, &admin, "session.login_failed").await, 10);
}

/// Reservations racing through two instances' pools on one key: no more succeed than the budget.
async fn racing_reservations_on_two_instances_never_exceed_the_budget(t: TestApp) {
    let other = t.instance(|_| {}).await;
    let limiter = std::sync::Arc::new(AttemptLimiter::new(
        "race",
        25,
        TimeDelta::minutes(5),
        TimeDelta::minutes(5),
    ));
    let now = t.app.now();
    let racers: Vec<_> = (0..60)
        .map(|i| {
            let db = if i % 2 == 0 {
                t.app.db.clone()
            } else {
                other.app.db.clone()
            };
            let limiter = limiter.clone();
            tokio::spawn(async move {
                match limiter.reserve(&db, "192.0.2.88", now).await {
                    Ok(held) => {
                        // Failed, and stays counted.
                        let _ = limiter.failed(&db, held, now).await;
                        "counted"
                    }
                    Err(Error::RateLimited { .. }) => "refused",
                    Err(other) => panic!("{other:?}"),
                }
            })
        })
        .collect();
    let mut counted = 0;
    for racer in racers {
        if racer.await.unwrap() == "counted" {
            counted += 1;
        }
    }
    assert_eq!(counted, 25);
}

/// One request with `key` as its bearer credential, from `ip`: the HTTP status and whether it was
/// authenticated by the key.
async fn with_api_key(t: &TestApp, ip: &str, key: &str) -> (u16, bool) {
    let mut request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/graphql-response+json")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::from(
            json!({ "query": "{ viewer { authMethod } }" }).to_string(),
        ))
        .unwrap();
    let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(addr));
    let (status, _, body) = t.send(request).await;
    let body: Value = serde_json::from_slice(&body).expect("JSON response");
    (status.as_u16(), body["data"]["viewer"]["authMethod"] == "API_KEY")
}

/// Wrong API keys sent at once to two instances: thirty are answered as wrong, the rest refused,
/// and then the client is refused even with the right key, on both. Right keys cost no write.
async fn api_key_guesses_on_two_instances_share_one_budget(t: TestApp) {
    let other = t.instance(|_| {}).await;
    let admin = t.admin_token().await;
    let created = t
        .gql(
            Some(&admin),
            "mutation { createApiKey(input: {name: \"bot\"}) { secret } }",
            json!({}),
        )
        .await;
    let secret = created.data()["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    // (The administrator's login left its account's count behind.)
    let before = tracked(&t.app.db).await;
    for _ in 0..5 {
        for instance in [&t, &other] {
            assert_eq!(with_api_key(instance, "192.0.2.40", &secret).await, (200, true));
        }
    }
    assert_eq!(tracked(&t.app.db).await, before, "right keys are not counted");

    let mut wrong: Vec<char> = secret.chars().collect();
    let at = wrong.len() - 10;
    wrong[at] = if wrong[at] == 'x' { 'y' } else { 'x' };
    let wrong: String = wrong.into_iter().collect();
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let instance = if i % 2 == 0 { t.clone() } else { other.clone() };
            let wrong = wrong.clone();
            tokio::spawn(async move { with_api_key(&instance, "192.0.2.41", &wrong).await })
        })
        .collect();
    let mut answered_wrong = 0;
    let mut refused = 0;
    for guess in guesses {
        match guess.await.unwrap() {
            (200, false) => answered_wrong += 1,
            (429, false) => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((answered_wrong, refused), (30, 10));
    for instance in [&t, &other] {
        assert_eq!(
            with_api_key(instance, "192.0.2.41", &secret).await,
            (429, false),
            "a locked client waits even with the right key"
        );
    }
    assert_eq!(with_api_key(&other, "192.0.2.42", &secret).await, (200, true));
    t.clock.advance(TimeDelta::minutes(5));
    assert_eq!(with_api_key(&t, "192.0.2.41", &secret).await, (200, true));
}

/// Counts whose window or lock has ended are deleted by the periodic sweep; live ones stay.
async fn expired_counts_are_swept(t: TestApp) {
    assert_eq!(tracked(&t.app.db).await, 0);
    assert_eq!(
        login(&t, Some("192.0.2.20"), "nobody@example.com", "wrong-guess").await,
        "UNAUTHENTICATED"
    );
    // Per account, and per account and client.
    assert_eq!(tracked(&t.app.db).await, 2);
    t.clock.advance(TimeDelta::minutes(16));
    assert_eq!(
        login(&t, Some("192.0.2.21"), "somebody@example.com", "wrong-guess").await,
        "UNAUTHENTICATED"
    );
    assert_eq!(tracked(&t.app.db).await, 4);
    portcullis::jobs::periodic::sweep(&t.app).await.unwrap();
    assert_eq!(tracked(&t.app.db).await, 2, "only the live counts stay");
}

/// When the attempt cannot be counted, the credential is not checked: the right password does
/// not sign in while the database refuses the count.
async fn an_attempt_that_cannot_be_counted_is_refused(t: TestApp) {
    let admin = t.admin_token().await;
    t.create_user(&admin, "victim@example.com").await;
    let mut conn = t.app.db.conn().await.unwrap();
    portcullis::with_conn!(&mut conn, |c| c
        .batch_execute("DROP TABLE credential_attempts")
        .await)
    .unwrap();
    drop(conn);
    assert_eq!(
        login(&t, Some("192.0.2.30"), "victim@example.com", PASSWORD).await,
        "INTERNAL"
    );
    assert_eq!(
        events(&t, &admin, "session.login_succeeded").await,
        1,
        "the administrator's only"
    );
}

crate::backend_tests!(
    attempts_are_counted_before_their_outcome_is_known,
    two_instances_share_one_login_budget,
    two_instances_share_one_account_lockout,
    concurrent_guesses_on_two_instances_never_exceed_the_budget,
    racing_reservations_on_two_instances_never_exceed_the_budget,
    api_key_guesses_on_two_instances_share_one_budget,
    expired_counts_are_swept,
    an_attempt_that_cannot_be_counted_is_refused,
);
