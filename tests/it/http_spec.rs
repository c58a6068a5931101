//! The HTTP surface as a client sees it: GraphQL-over-HTTP negotiation and errors, probes, JWKS.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis::clock::Clock as _;
use serde_json::{Value, json};

use crate::support::TestApp;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// What came back: status, headers and the body parsed as JSON.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    /// The media type of the response, without parameters.
    fn media_type(&self) -> &str {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no Content-Type in {:?}", self.headers));
        content_type.split(';').next().unwrap_or("").trim()
    }

    /// Asserts the shape of a request error: an `errors` list and no `data` entry at all.
    fn assert_request_error(&self) {
        let errors = self.body["errors"].as_array();
        assert!(
            errors.is_some_and(|e| !e.is_empty()),
            "expected errors, got {:#}",
            self.body
        );
        assert!(
            self.body.get("data").is_none(),
            "a request error has no data: {:#}",
            self.body
        );
    }
}

async fn send(t: &TestApp, request: Request<Body>) -> Reply {
    let (status, headers, body) = t.send(request).await;
    let body = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "{status}: body is not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    });
    Reply {
        status,
        headers,
        body,
    }
}

/// A POST to `/graphql` with the given `Accept` (none when `None`) and a JSON body.
async fn post(t: &TestApp, accept: Option<&str>, body: Value) -> Reply {
    post_raw(t, accept, JSON, body.to_string()).await
}

async fn post_raw(t: &TestApp, accept: Option<&str>, content_type: &str, body: String) -> Reply {
    let mut request = Request::post("/graphql").header(header::CONTENT_TYPE, content_type);
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    send(t, request.body(Body::from(body)).expect("request")).await
}

/// A GET to `/graphql` with `query` URL-encoded.
async fn get_query(t: &TestApp, accept: Option<&str>, query: &str) -> Reply {
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", query)
        .finish();
    let mut request = Request::get(format!("/graphql?{encoded}"));
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    send(t, request.body(Body::empty()).expect("request")).await
}

async fn response_media_type_follows_accept(t: TestApp) {
    let query = json!({ "query": "{ __typename }" });

    let reply = post(&t, Some(GRAPHQL_RESPONSE_JSON), query.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.media_type(), GRAPHQL_RESPONSE_JSON);
    assert_eq!(reply.body["data"]["__typename"], "Query");

    let reply = post(&t, Some(JSON), query.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.media_type(), JSON);
    assert_eq!(reply.body["data"]["__typename"], "Query");

    let reply = post(&t, None, query.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.media_type(), JSON);
    assert_eq!(reply.body["data"]["__typename"], "Query");

    // Both acceptable, with parameters and in any order: the specification's type wins.
    let reply = post(
        &t,
        Some("application/json;q=0.9, application/graphql-response+json;q=1"),
        query.clone(),
    )
    .await;
    assert_eq!(reply.media_type(), GRAPHQL_RESPONSE_JSON);

    let reply = post(&t, Some("*/*"), query.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.media_type(), JSON);

    let reply = post(&t, Some("text/html"), query).await;
    assert_eq!(reply.status, StatusCode::NOT_ACCEPTABLE);
    reply.assert_request_error();

    let reply = get_query(&t, Some("text/html"), "{ __typename }").await;
    assert_eq!(reply.status, StatusCode::NOT_ACCEPTABLE);
}

async fn malformed_requests_are_rejected(t: TestApp) {
    let accept = Some(GRAPHQL_RESPONSE_JSON);

    let reply = post_raw(
        &t,
        accept,
        "text/plain",
        json!({ "query": "{ __typename }" }).to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.media_type(), GRAPHQL_RESPONSE_JSON);
    reply.assert_request_error();

    // A charset parameter on the request's content type is fine.
    let reply = post_raw(
        &t,
        accept,
        "application/json; charset=utf-8",
        json!({ "query": "{ __typename }" }).to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["data"]["__typename"], "Query");

    let reply = post_raw(&t, accept, JSON, "{ this is not json".to_owned()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    reply.assert_request_error();

    // Legacy clients get the same status for requests that cannot even be parsed.
    let reply = post_raw(&t, Some(JSON), JSON, "not json".to_owned()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.media_type(), JSON);
    reply.assert_request_error();

    let reply = post(&t, accept, json!({ "operationName": "x" })).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    reply.assert_request_error();

    let reply = post(&t, accept, json!({ "query": 42 })).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    reply.assert_request_error();

    let reply = post(
        &t,
        accept,
        json!({ "query": "{ __typename }", "variables": [1, 2] }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    reply.assert_request_error();

    let reply = post(
        &t,
        accept,
        json!({ "query": "{ __typename }", "variables": "{}" }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    reply.assert_request_error();

    // Explicit nulls are the same as absent entries.
    let reply = post(
        &t,
        accept,
        json!({ "query": "{ __typename }", "variables": null, "operationName": null, "extensions": null }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["data"]["__typename"], "Query");

    let reply = post(
        &t,
        accept,
        json!({ "query": "{ __typename }", "operationName": 7 }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    reply.assert_request_error();

    let reply = post(&t, accept, json!({ "query": "{ __typename }", "extensions": [] })).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    reply.assert_request_error();

    let reply = post(&t, accept, json!([])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    reply.assert_request_error();

    // Bodies beyond the configured limit are refused before parsing.
    let padding = " ".repeat(t.app.config.max_body_bytes + 1);
    let reply = post_raw(
        &t,
        accept,
        JSON,
        format!(r#"{{"query": "{{ __typename }}"}}{padding}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.media_type(), GRAPHQL_RESPONSE_JSON);
    reply.assert_request_error();
}

async fn invalid_operations_depend_on_media_type(t: TestApp) {
    for query in ["{ nope }", "{ __typename", "query($n: Int!) { __typename }"] {
        let reply = post(&t, Some(GRAPHQL_RESPONSE_JSON), json!({ "query": query })).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}: {:#}", reply.body);
        assert_eq!(reply.media_type(), GRAPHQL_RESPONSE_JSON);
        reply.assert_request_error();

        let reply = post(&t, Some(JSON), json!({ "query": query })).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {:#}", reply.body);
        assert_eq!(reply.media_type(), JSON);
        reply.assert_request_error();
    }

    // Over GET too.
    let reply = get_query(&t, Some(GRAPHQL_RESPONSE_JSON), "{ nope }").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    reply.assert_request_error();
}

async fn variables_and_operation_name_are_honoured(t: TestApp) {
    let reply = post(
        &t,
        Some(GRAPHQL_RESPONSE_JSON),
        json!({
            "query": "query A { a: __typename } query B($skip: Boolean!) { viewer @skip(if: $skip) { authMethod } c: __typename }",
            "operationName": "B",
            "variables": { "skip": true },
        }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.body["data"], json!({ "c": "Query" }));
}

async fn batches_answer_in_order(t: TestApp) {
    let reply = post(
        &t,
        Some(GRAPHQL_RESPONSE_JSON),
        json!([{ "query": "{ first: __typename }" }, { "query": "{ second: __typename }" }]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body[0]["data"]["first"], "Query");
    assert_eq!(reply.body[1]["data"]["second"], "Query");
}

async fn get_runs_queries_but_not_mutations(t: TestApp) {
    let reply = get_query(&t, None, "{__typename}").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.media_type(), JSON);
    assert_eq!(reply.body["data"]["__typename"], "Query");

    let reply = get_query(&t, Some(GRAPHQL_RESPONSE_JSON), "{__typename}").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.media_type(), GRAPHQL_RESPONSE_JSON);
    assert_eq!(reply.body["data"]["__typename"], "Query");

    // Variables travel as JSON in the URL.
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "query",
            "query($s: Boolean!) { viewer @include(if: $s) { authMethod } t: __typename }",
        )
        .append_pair("variables", r#"{"s": false}"#)
        .finish();
    let reply = send(
        &t,
        Request::get(format!("/graphql?{encoded}"))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.body["data"], json!({ "t": "Query" }));

    let reply = send(
        &t,
        Request::get("/graphql?query=%7B__typename%7D&variables=nope")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    reply.assert_request_error();

    let reply = send(&t, Request::get("/graphql").body(Body::empty()).expect("request")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    reply.assert_request_error();

    for accept in [None, Some(GRAPHQL_RESPONSE_JSON)] {
        let reply = get_query(&t, accept, "mutation{logout{session{id}}}").await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            reply.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()),
            Some("POST")
        );
        reply.assert_request_error();
    }

    // The operation that would run decides, also among several.
    let reply = get_query(
        &t,
        Some(GRAPHQL_RESPONSE_JSON),
        "query Q { __typename } mutation M { logout { session { id } } }",
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "no operation chosen: {:#}",
        reply.body
    );
    reply.assert_request_error();
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "query",
            "query Q { __typename } mutation M { logout { session { id } } }",
        )
        .append_pair("operationName", "M")
        .finish();
    let reply = send(
        &t,
        Request::get(format!("/graphql?{encoded}"))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "query",
            "query Q { __typename } mutation M { logout { session { id } } }",
        )
        .append_pair("operationName", "Q")
        .finish();
    let reply = send(
        &t,
        Request::get(format!("/graphql?{encoded}"))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["data"]["__typename"], "Query");

    // Subscriptions belong on the WebSocket.
    let reply = get_query(&t, None, "subscription { heartbeat { at } }").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}

async fn field_errors_keep_data(t: TestApp) {
    for accept in [GRAPHQL_RESPONSE_JSON, JSON] {
        let reply = post(
            &t,
            Some(accept),
            json!({ "query": "{ users(first: 1) { totalCount } }" }),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
        assert_eq!(reply.media_type(), accept);
        assert!(
            reply.body.get("data").is_some(),
            "a field error keeps data: {:#}",
            reply.body
        );
        assert_eq!(reply.body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        assert_eq!(reply.body["errors"][0]["path"], json!(["users"]));
    }

    // A rejected credential is not a request error either: the reason is reported per field.
    let request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, JSON)
        .header(header::ACCEPT, GRAPHQL_RESPONSE_JSON)
        .header(header::AUTHORIZATION, "Bearer not-a-token")
        .body(Body::from(
            json!({ "query": "{ __typename users(first: 1) { totalCount } }" }).to_string(),
        ))
        .expect("request");
    let reply = send(&t, request).await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    // And with a good token the same query succeeds.
    let token = t.admin_token().await;
    let response = t
        .gql(Some(&token), "{ users(first: 1) { totalCount } }", json!({}))
        .await;
    assert!(
        response.data()["users"]["totalCount"]
            .as_i64()
            .is_some_and(|n| n >= 1)
    );
}

async fn probes_and_pages(t: TestApp) {
    let reply = send(&t, Request::get("/healthz").body(Body::empty()).expect("request")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["status"], "ok");

    let reply = send(&t, Request::get("/readyz").body(Body::empty()).expect("request")).await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.media_type(), JSON);
    assert_eq!(reply.body["status"], "ready");
    assert_eq!(reply.body["database"], "ok");

    let (status, headers, _) = t
        .send(Request::get("/").body(Body::empty()).expect("request"))
        .await;
    assert!(status.is_redirection(), "{status}");
    assert_eq!(
        headers.get(header::LOCATION).and_then(|v| v.to_str().ok()),
        Some("/graphiql")
    );

    let (status, headers, body) = t
        .send(Request::get("/graphiql").body(Body::empty()).expect("request"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = String::from_utf8_lossy(&body);
    assert!(html.to_ascii_lowercase().contains("<html"), "{html}");
    assert!(html.contains("/graphql"), "GraphiQL points at the endpoint");

    let (status, _, _) = t
        .send(
            Request::get("/no-such-page")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _, _) = t
        .send(Request::delete("/graphql").body(Body::empty()).expect("request"))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

async fn jwks_publishes_ed25519_keys(t: TestApp) {
    let reply = send(
        &t,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.media_type(), JSON);
    let cache = reply
        .headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok());
    assert_eq!(cache, Some("public, max-age=60"));
    let keys = reply.body["keys"].as_array().expect("a keys array");
    assert!(!keys.is_empty(), "{:#}", reply.body);
    for key in keys {
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert!(key["kid"].as_str().is_some_and(|kid| !kid.is_empty()), "{key:#}");
        assert!(key["x"].as_str().is_some_and(|x| !x.is_empty()), "{key:#}");
        // No private material is published.
        assert!(key.get("d").is_none(), "{key:#}");
    }
}

async fn every_response_has_a_request_id(t: TestApp) {
    let requests = [
        Request::get("/healthz").body(Body::empty()),
        Request::get("/readyz").body(Body::empty()),
        Request::get("/nowhere").body(Body::empty()),
        Request::get("/graphql?query=%7B__typename%7D").body(Body::empty()),
        Request::post("/graphql")
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("{}")),
        Request::post("/graphql")
            .header(header::CONTENT_TYPE, JSON)
            .body(Body::from(json!({ "query": "{ __typename }" }).to_string())),
    ];
    let mut seen = Vec::new();
    for request in requests {
        let (status, headers, _) = t.send(request.expect("request")).await;
        let id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{status}: no x-request-id in {headers:?}"))
            .to_owned();
        assert!(!id.is_empty());
        assert!(!seen.contains(&id), "request ids are unique: {id}");
        seen.push(id);
    }

    // A caller's own request id is kept, so logs can be correlated across hops.
    let request = Request::get("/healthz")
        .header("x-request-id", "trace-me-123")
        .body(Body::empty())
        .expect("request");
    let (_, headers, _) = t.send(request).await;
    assert_eq!(
        headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("trace-me-123")
    );
}

async fn access_tokens_verify_against_jwks(t: TestApp) {
    let token = t.admin_token().await;
    let user_id = t
        .gql(Some(&token), "{ viewer { user { id } } }", json!({}))
        .await
        .data()["viewer"]["user"]["id"]
        .as_str()
        .expect("viewer id")
        .to_owned();

    let jwks = send(
        &t,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    let header = jsonwebtoken::decode_header(&token).expect("a JWT header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    let kid = header.kid.expect("the token names its key");
    let key = jwks.body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} not in {:#}", jwks.body));
    let decoding = DecodingKey::from_ed_components(key["x"].as_str().expect("x")).expect("an Ed25519 key");

    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.validate_exp = false; // the test clock is fixed in 2026
    validation.set_issuer(&["http://portcullis.test"]);
    let claims = jsonwebtoken::decode::<Value>(&token, &decoding, &validation)
        .expect("the token verifies with the published key")
        .claims;
    assert_eq!(claims["iss"], "http://portcullis.test");
    assert_eq!(claims["sub"], user_id.as_str());
    assert!(
        claims["sid"].as_str().is_some_and(|sid| !sid.is_empty()),
        "{claims:#}"
    );
    let (iat, exp) = (
        claims["iat"].as_i64().expect("iat"),
        claims["exp"].as_i64().expect("exp"),
    );
    assert_eq!(iat, t.clock.now().timestamp(), "issued at the gateway's clock");
    assert!(exp > iat, "{claims:#}");

    // A token whose signature was tampered with does not verify.
    let (unsigned, signature) = token.rsplit_once('.').expect("three parts");
    let mut bytes = signature.as_bytes().to_vec();
    bytes[0] = if bytes[0] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{unsigned}.{}", String::from_utf8(bytes).expect("ascii"));
    assert!(jsonwebtoken::decode::<Value>(&tampered, &decoding, &validation).is_err());

    // Nor does it verify for another issuer.
    let mut other = Validation::new(Algorithm::EdDSA);
    other.validate_exp = false;
    other.set_issuer(&["http://elsewhere.test"]);
    assert!(jsonwebtoken::decode::<Value>(&token, &decoding, &other).is_err());
}

crate::backend_tests!(
    response_media_type_follows_accept,
    malformed_requests_are_rejected,
    invalid_operations_depend_on_media_type,
    variables_and_operation_name_are_honoured,
    batches_answer_in_order,
    get_runs_queries_but_not_mutations,
    field_errors_keep_data,
    probes_and_pages,
    jwks_publishes_ed25519_keys,
    every_response_has_a_request_id,
    access_tokens_verify_against_jwks,
);
