//! Limits that count work: batches, aliases, depth, complexity, response size, attempts.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

use crate::support::{ADMIN_PASSWORD, Gql, PASSWORD, TestApp};

/// POSTs `body` (a request object or a batch array) from `ip` (none: no socket address known).
async fn post(t: &TestApp, ip: Option<&str>, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/graphql-response+json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let mut request = request.body(Body::from(body.to_string())).unwrap();
    if let Some(ip) = ip {
        let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(addr));
    }
    let (status, _, body) = t.send(request).await;
    (status, serde_json::from_slice(&body).expect("JSON response"))
}

/// One operation of `count` aliased logins, all for `email` with `password`.
fn logins(email: &str, password: &str, count: usize) -> Value {
    let fields: String = (0..count)
        .map(|i| {
            format!("l{i}: login(input: {{email: {email:?}, password: {password:?}}}) {{ accessToken }} ")
        })
        .collect();
    json!({ "query": format!("mutation {{ {fields} }}") })
}

/// The `extensions.code` of every error in a response or a batch of them, in order.
fn codes(body: &Value) -> Vec<String> {
    let responses = match body {
        Value::Array(many) => many.clone(),
        one => vec![one.clone()],
    };
    responses
        .iter()
        .flat_map(|r| r["errors"].as_array().cloned().unwrap_or_default())
        .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn count(codes: &[String], code: &str) -> usize {
    codes.iter().filter(|c| *c == code).count()
}

/// The events of `action` in the whole log, newest first (read as the administrator).
async fn events(t: &TestApp, admin: &str, action: &str) -> Vec<Value> {
    let response = t
        .gql(
            Some(admin),
            "query($a: [String!]) { auditEvents(first: 100, filter: {actions: $a}) {
               edges { node { action outcome metadata } } } }",
            json!({ "a": [action] }),
        )
        .await;
    response.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

async fn batch_over_the_cap_is_refused(t: TestApp) {
    let admin = t.admin_token().await;
    let eleven: Vec<Value> = (0..11).map(|_| json!({ "query": "{ __typename }" })).collect();
    let (status, body) = post(&t, None, None, &Value::Array(eleven)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("at most 10 operations"), "{message}");

    // The review's batch of 40 logins: refused whole, not one password checked.
    let forty: Vec<Value> = (0..40)
        .map(|_| logins("admin@example.com", "guess-guess", 1))
        .collect();
    let (status, _) = post(&t, None, None, &Value::Array(forty)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(events(&t, &admin, "session.login_failed").await.is_empty());

    // Ten is fine.
    let ten: Vec<Value> = (0..10).map(|_| json!({ "query": "{ __typename }" })).collect();
    let (status, body) = post(&t, None, None, &Value::Array(ten)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 10);
}

async fn alias_bombs_are_refused_before_anything_runs(t: TestApp) {
    let admin = t.admin_token().await;
    let aliases = |n: usize, field: &str| -> String { (0..n).map(|i| format!("a{i}: {field} ")).collect() };

    // One operation of 1,999 aliases: cheap fields, but too many of them.
    let bomb = json!({ "query": format!("{{ {} }}", aliases(1999, "__typename")) });
    let (status, body) = post(&t, None, None, &bomb).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
    assert!(body.get("data").is_none());
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too many aliases")
    );

    // Heavier aliases: too complex.
    let heavy = json!({ "query": format!("{{ {} }}", aliases(1999, "viewer { user { id email } }")) });
    let (status, body) = post(&t, None, None, &heavy).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too complex")
    );

    // A batch whose operations each pass but together do not: refused whole, and its login (first
    // in the batch) never ran.
    let mut batch = vec![logins("admin@example.com", "wrong-password", 1)];
    batch.extend((0..9).map(|_| json!({ "query": format!("{{ {} }}", aliases(300, "__typename")) })));
    let (status, body) = post(&t, None, None, &Value::Array(batch)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("all operations of a batch together"),
        "{message}"
    );
    assert!(events(&t, &admin, "session.login_failed").await.is_empty());

    // The review's anonymous 19 × 1,999: refused before execution too.
    let batch: Vec<Value> = (0..19).map(|_| bomb.clone()).collect();
    let (status, _) = post(&t, None, None, &Value::Array(batch)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn deep_nesting_is_refused(t: TestApp) {
    let mut selection = "name".to_owned();
    for _ in 0..10 {
        selection = format!("type {{ fields {{ {selection} }} }}");
    }
    let query = format!("{{ __schema {{ queryType {{ fields {{ {selection} }} }} }} }}");
    let (status, body) = post(&t, None, None, &json!({ "query": query })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too deep")
    );
}

async fn nested_connections_cost_their_page_sizes(t: TestApp) {
    let admin = t.admin_token().await;
    let nested = "{ organizations(first: 100) { edges { node { members(first: 100) { edges { node {
                    user { memberships(first: 100) { edges { node { id } } } } } } } } } } }";
    let (status, body) = post(&t, None, Some(&admin), &json!({ "query": nested })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too complex")
    );

    // The same shape with small pages, and a big flat page, are fine.
    let small = nested.replace("first: 100", "first: 5");
    let (status, body) = post(&t, None, Some(&admin), &json!({ "query": small })).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let flat = "{ users(first: 100) { totalCount edges { cursor node { id email displayName } } } }";
    let (status, body) = post(&t, None, Some(&admin), &json!({ "query": flat })).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
}

async fn an_oversized_response_is_refused(t: TestApp) {
    // The same gateway and database, with a response limit a page of users exceeds.
    let mut app = t.app.clone();
    let mut config = (*app.config).clone();
    config.max_response_bytes = 2_000;
    app.config = Arc::new(config);
    let small = TestApp {
        router: portcullis::http::router(app.clone()),
        app,
        clock: t.clock.clone(),
    };
    let admin = t.admin_token().await;
    for i in 0..20 {
        t.create_user(&admin, &format!("user{i}@example.com")).await;
    }
    let query = "{ users(first: 50) { edges { node { id email displayName createdAt } } } }";
    let (status, body) = post(&small, None, Some(&admin), &json!({ "query": query })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], Value::Null, "{body:#}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("larger than the limit")
    );

    // In a batch, what fits is kept and the rest is replaced.
    let batch = json!([{ "query": "{ __typename }" }, { "query": query }]);
    let (_, body) = post(&small, None, Some(&admin), &batch).await;
    assert_eq!(body[0]["data"]["__typename"], "Query");
    assert!(
        body[1]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("larger than the limit")
    );

    // The default limit lets it through.
    let (_, body) = post(&t, None, Some(&admin), &json!({ "query": query })).await;
    assert_eq!(body["data"]["users"]["edges"].as_array().unwrap().len(), 21);
}

async fn forty_logins_in_one_batch_check_at_most_ten_passwords(t: TestApp) {
    let admin = t.admin_token().await;
    t.create_user(&admin, "victim@example.com").await;
    // Five wrong guesses first; then ten concurrent operations of four aliased logins each, whose
    // first attempts all start before any of them is known to fail.
    let (_, body) = post(
        &t,
        Some("192.0.2.1"),
        None,
        &logins("victim@example.com", "wrong-guess", 5),
    )
    .await;
    assert_eq!(count(&codes(&body), "UNAUTHENTICATED"), 5, "{body:#}");
    let batch: Vec<Value> = (0..10)
        .map(|_| logins("victim@example.com", "wrong-guess", 4))
        .collect();
    let (status, body) = post(&t, Some("192.0.2.1"), None, &Value::Array(batch)).await;
    assert_eq!(status, StatusCode::OK);
    let seen = codes(&body);
    assert_eq!(seen.len(), 40, "{body:#}");
    assert_eq!(count(&seen, "UNAUTHENTICATED"), 5, "{seen:?}");
    assert_eq!(count(&seen, "RATE_LIMITED"), 35, "{seen:?}");
    assert_eq!(events(&t, &admin, "session.login_failed").await.len(), 10);
    let limited = body[9]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["extensions"]["code"] == "RATE_LIMITED")
        .unwrap()
        .clone();
    assert!(limited["extensions"]["retryAfterSeconds"].as_u64().unwrap() > 0);
}

async fn the_right_password_after_29_wrong_ones_does_not_sign_in(t: TestApp) {
    let admin = t.admin_token().await;
    t.create_user(&admin, "victim@example.com").await;
    // Serial, in one operation: 29 wrong guesses then the right one.
    let mut query = logins("victim@example.com", "wrong-guess", 29)["query"]
        .as_str()
        .unwrap()
        .trim_end_matches('}')
        .to_owned();
    query.push_str(&format!(
        "right: login(input: {{email: \"victim@example.com\", password: {PASSWORD:?}}}) {{ accessToken }} }}"
    ));
    let (_, body) = post(&t, Some("192.0.2.2"), None, &json!({ "query": query })).await;
    assert!(body["data"]["right"].is_null(), "signed in: {body:#}");
    let seen = codes(&body);
    assert_eq!(count(&seen, "UNAUTHENTICATED"), 10, "{seen:?}");
    assert_eq!(count(&seen, "RATE_LIMITED"), 20, "{seen:?}");

    // Concurrent, from another address: five wrong, then a batch of nine wrong and the right one.
    let (_, body) = post(
        &t,
        Some("192.0.2.3"),
        None,
        &logins("victim@example.com", "wrong-guess", 5),
    )
    .await;
    assert_eq!(count(&codes(&body), "UNAUTHENTICATED"), 5, "{body:#}");
    let mut batch: Vec<Value> = (0..9)
        .map(|_| logins("victim@example.com", "wrong-guess", 1))
        .collect();
    batch.push(logins("victim@example.com", PASSWORD, 1));
    let (_, body) = post(&t, Some("192.0.2.3"), None, &Value::Array(batch)).await;
    assert!(body[9]["data"]["l0"].is_null(), "signed in: {body:#}");
    assert_eq!(count(&codes(&body), "UNAUTHENTICATED"), 5, "{body:#}");
    assert_eq!(body[9]["errors"][0]["extensions"]["code"], "RATE_LIMITED");
}

async fn guesses_from_many_addresses_lock_the_account_for_a_while(t: TestApp) {
    let admin = t.admin_token().await;
    t.create_user(&admin, "victim@example.com").await;
    // Fifty wrong guesses, ten from each of five addresses (each within its per-client budget).
    for host in 1..=5 {
        let batch: Vec<Value> = (0..10)
            .map(|_| logins("victim@example.com", "wrong-guess", 1))
            .collect();
        let ip = format!("198.51.100.{host}");
        let (_, body) = post(&t, Some(&ip), None, &Value::Array(batch)).await;
        assert_eq!(count(&codes(&body), "UNAUTHENTICATED"), 10, "{body:#}");
    }
    // Now even the right password, from an address never seen, is refused.
    let right = logins("victim@example.com", PASSWORD, 1);
    let (_, body) = post(&t, Some("203.0.113.7"), None, &right).await;
    assert_eq!(codes(&body), ["RATE_LIMITED"], "{body:#}");
    // The lockout was audited once, when it began.
    let locked = events(&t, &admin, "session.login_locked").await;
    assert_eq!(locked.len(), 1, "{locked:#?}");
    assert_eq!(locked[0]["metadata"]["email"], "victim@example.com");
    assert!(locked[0]["metadata"]["lockedUntil"].is_string());
    assert_eq!(events(&t, &admin, "session.login_failed").await.len(), 50);
    // Other accounts are untouched.
    let (_, body) = post(
        &t,
        Some("203.0.113.7"),
        None,
        &logins("admin@example.com", ADMIN_PASSWORD, 1),
    )
    .await;
    assert!(body["data"]["l0"]["accessToken"].is_string(), "{body:#}");

    // It is temporary.
    t.clock.advance(chrono::Duration::minutes(16));
    let (_, body) = post(&t, Some("203.0.113.7"), None, &right).await;
    assert!(body["data"]["l0"]["accessToken"].is_string(), "{body:#}");
}

async fn a_huge_login_email_is_bad_input_and_never_stored(t: TestApp) {
    let admin = t.admin_token().await;
    let huge = format!("{}@example.com", "a".repeat(100 * 1024));
    let response: Gql = t
        .gql(
            None,
            "mutation($e: String!) { login(input: {email: $e, password: \"whatever-1\"}) { accessToken } }",
            json!({ "e": huge }),
        )
        .await;
    assert_eq!(response.code(), "BAD_USER_INPUT");
    assert_eq!(response.field(), "email");
    assert!(response.message().len() < 200, "the input is not echoed");
    assert!(events(&t, &admin, "session.login_failed").await.is_empty());
    for bad in ["not-an-email", "a@b", ""] {
        let response = t
            .gql(
                None,
                "mutation($e: String!) { login(input: {email: $e, password: \"whatever-1\"}) { accessToken } }",
                json!({ "e": bad }),
            )
            .await;
        assert_eq!(
            (response.code(), response.field()),
            ("BAD_USER_INPUT", "email"),
            "{bad:?}"
        );
    }
    assert!(events(&t, &admin, "session.login_failed").await.is_empty());
}

async fn three_hundred_denied_aliases_are_one_audit_event(t: TestApp) {
    let admin = t.admin_token().await;
    let (_, user) = t.user_with_token(&admin, "nosy@example.com").await;
    let fields: String = (0..300)
        .map(|i| format!("a{i}: cedarSchemas {{ namespace }} "))
        .collect();
    let (_, body) = post(
        &t,
        None,
        Some(&user),
        &json!({ "query": format!("{{ {fields} }}") }),
    )
    .await;
    let seen = codes(&body);
    assert_eq!(count(&seen, "FORBIDDEN"), 300, "{body:#}");
    let denied = events(&t, &admin, "authorization.denied").await;
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert_eq!(denied[0]["outcome"], "DENIED");
    assert_eq!(denied[0]["metadata"]["count"], 300);
    assert_eq!(denied[0]["metadata"]["action"], "cedar_schema.read");
    assert_eq!(denied[0]["metadata"]["actions"], json!(["cedar_schema.read"]));

    // A batch is one request too; each action is listed once.
    let batch = json!([
        { "query": "{ cedarSchemas { namespace } }" },
        { "query": "{ users { totalCount } }" },
        { "query": "{ x: users { totalCount } y: cedarSchemas { namespace } }" },
    ]);
    let (_, body) = post(&t, None, Some(&user), &batch).await;
    assert_eq!(count(&codes(&body), "FORBIDDEN"), 4);
    let denied = events(&t, &admin, "authorization.denied").await;
    assert_eq!(denied.len(), 2);
    assert_eq!(denied[0]["metadata"]["count"], 4);
    let mut actions: Vec<String> = serde_json::from_value(denied[0]["metadata"]["actions"].clone()).unwrap();
    actions.sort();
    assert_eq!(actions, ["cedar_schema.read", "user.list"]);
}

async fn api_key_guesses_are_counted_per_client(t: TestApp) {
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
    let mut wrong: Vec<char> = secret.chars().collect();
    let at = wrong.len() - 10;
    wrong[at] = if wrong[at] == 'x' { 'y' } else { 'x' };
    let wrong: String = wrong.into_iter().collect();
    let viewer = json!({ "query": "{ viewer { authMethod } }" });
    for _ in 0..30 {
        let (status, body) = post(&t, Some("192.0.2.50"), Some(&wrong), &viewer).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert_eq!(body["data"]["viewer"], Value::Null);
    }
    let (status, body) = post(&t, Some("192.0.2.50"), Some(&wrong), &viewer).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body:#}");
    assert_eq!(codes(&body), ["RATE_LIMITED"]);
    // The key itself still works from elsewhere.
    let (_, body) = post(&t, Some("192.0.2.51"), Some(&secret), &viewer).await;
    assert_eq!(body["data"]["viewer"]["authMethod"], "API_KEY", "{body:#}");
}

async fn refresh_attempts_are_counted_inside_one_request(t: TestApp) {
    // Well-formed tokens that are looked up (and not found), so that concurrent checks overlap.
    let forged = format!("prt_{}", "A".repeat(64));
    let refreshes = |n: usize| {
        let fields: String = (0..n)
            .map(|i| format!("r{i}: refreshSession(input: {{refreshToken: {forged:?}}}) {{ accessToken }} "))
            .collect();
        json!({ "query": format!("mutation {{ {fields} }}") })
    };
    let (_, body) = post(&t, Some("192.0.2.60"), None, &refreshes(25)).await;
    assert_eq!(count(&codes(&body), "UNAUTHENTICATED"), 25, "{body:#}");
    let batch: Vec<Value> = (0..10).map(|_| refreshes(1)).collect();
    let (_, body) = post(&t, Some("192.0.2.60"), None, &Value::Array(batch)).await;
    let seen = codes(&body);
    assert_eq!(count(&seen, "UNAUTHENTICATED"), 5, "{seen:?}");
    assert_eq!(count(&seen, "RATE_LIMITED"), 5, "{seen:?}");
}

crate::backend_tests!(
    batch_over_the_cap_is_refused,
    alias_bombs_are_refused_before_anything_runs,
    deep_nesting_is_refused,
    nested_connections_cost_their_page_sizes,
    an_oversized_response_is_refused,
    forty_logins_in_one_batch_check_at_most_ten_passwords,
    the_right_password_after_29_wrong_ones_does_not_sign_in,
    guesses_from_many_addresses_lock_the_account_for_a_while,
    a_huge_login_email_is_bad_input_and_never_stored,
    three_hundred_denied_aliases_are_one_audit_event,
    api_key_guesses_are_counted_per_client,
    refresh_attempts_are_counted_inside_one_request,
);
