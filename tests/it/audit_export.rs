//! Audit exports: 100,000 events out as CSV and NDJSON and parsed back identically, signed links,
//! and refusals.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use portcullis::audit::{self, AuditAction, Event, Target};
use serde_json::{Value, json};

use crate::support::TestApp;

/// Appends `count` events in a few transactions, alternating organizations and actors' names.
async fn bulk_events(t: &TestApp, count: usize, organization: Option<&str>) {
    let organization = organization.map(|id| id.parse().unwrap());
    let mut conn = t.app.db.conn().await.unwrap();
    let now = t.app.now();
    for chunk in 0..count.div_ceil(10_000) {
        let events: Vec<Event> = (chunk * 10_000..((chunk + 1) * 10_000).min(count))
            .map(|i| {
                Event::system(AuditAction::PolicyUpdated)
                    .in_organization(organization)
                    .target(Target::new(
                        "policy",
                        format!("p{i}"),
                        format!("Policy \"{i}\", with, commas\nand lines"),
                    ))
                    .change("enabled", i % 2 == 0, i % 2 == 1)
                    .with("note", format!("ünïcode {i}"))
            })
            .collect();
        conn.transaction(async |tx| audit::record_all(tx, now, events).await)
            .await
            .unwrap();
    }
}

async fn download(
    t: &TestApp,
    token: Option<&str>,
    query: &str,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut request = Request::get(format!("/audit/export?{query}"));
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    t.send(request.body(Body::empty()).unwrap()).await
}

async fn a_hundred_thousand_events_round_trip(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "bulk").await;
    bulk_events(&t, 100_000, Some(&org)).await;
    let query = format!("organizationId={org}&actions=policy.updated&order=OLDEST_FIRST");

    let (status, headers, ndjson) = download(&t, Some(&admin), &format!("format=ndjson&{query}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/x-ndjson");
    let lines: Vec<Value> = std::str::from_utf8(&ndjson)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 100_000);

    let (status, headers, csv_bytes) = download(&t, Some(&admin), &format!("format=csv&{query}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .ends_with(".csv\"")
    );
    let mut reader = csv::Reader::from_reader(csv_bytes.as_slice());
    let columns: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(columns, audit::export::CSV_COLUMNS);
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 100_000);

    for (i, (line, record)) in lines.iter().zip(&records).enumerate() {
        let field = |name: &str| &record[columns.iter().position(|c| c == name).unwrap()];
        assert_eq!(line["id"].as_str().unwrap(), field("id"));
        assert_eq!(line["action"], "policy.updated");
        assert_eq!(field("action"), "policy.updated");
        assert_eq!(line["organizationId"].as_str().unwrap(), org);
        let targets: Value = serde_json::from_str(field("targets")).unwrap();
        assert_eq!(targets, line["targets"]);
        assert_eq!(
            line["targets"][0]["displayName"],
            format!("Policy \"{i}\", with, commas\nand lines"),
            "oldest first, quotes, commas and newlines intact"
        );
        let metadata: Value = serde_json::from_str(field("metadata")).unwrap();
        assert_eq!(metadata, line["metadata"]);
        assert_eq!(line["metadata"]["note"], format!("ünïcode {i}"));
        assert_eq!(line["hash"].as_str().unwrap(), field("hash"));
        assert_eq!(line["previousHash"].as_str().unwrap(), field("previous_hash"));
        if i > 0 {
            assert_eq!(line["previousHash"], lines[i - 1]["hash"], "one chain, in order");
        }
    }
    // The export is itself audited.
    let exported = t
        .gql(
            Some(&admin),
            "{ auditEvents(filter: {actions: [\"audit.exported\"]}) { totalCount nodes: edges { node { metadata } } } }",
            json!({}),
        )
        .await;
    assert_eq!(exported.data()["auditEvents"]["totalCount"], 2);
}

async fn signed_links_work_once_for_their_parameters(t: TestApp) {
    let admin = t.admin_token().await;
    t.create_user(&admin, "lee@example.com").await;
    let link = t
        .gql(
            Some(&admin),
            "mutation { createAuditExport(input: {format: CSV, filter: {actions: [\"user.*\"]}}) { url expiresAt } }",
            json!({}),
        )
        .await;
    let url = link.data()["createAuditExport"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        url.starts_with("http://portcullis.test/audit/export?format=csv&actions=user.*"),
        "{url}"
    );
    let path = url.trim_start_matches("http://portcullis.test");
    let get = |path: String| {
        let t = &t;
        async move { t.send(Request::get(path).body(Body::empty()).unwrap()).await }
    };

    let (status, _, body) = get(path.to_owned()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let mut reader = csv::Reader::from_reader(body.as_slice());
    let actions: Vec<String> = reader.records().map(|r| r.unwrap()[2].to_owned()).collect();
    assert_eq!(
        actions,
        ["user.created", "user.created"],
        "newest first: lee, then the administrator"
    );

    // Other parameters under the same signature are refused.
    let tampered = path.replace("actions=user.*", "actions=session.*");
    let (status, _, body) = get(tampered).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    // After ten minutes the link is dead.
    t.clock.advance(chrono::Duration::minutes(11));
    let (status, _, _) = get(path.to_owned()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Refusals: no credentials, no right, bad parameters.
    let (status, _, _) = download(&t, None, "format=csv").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // (Access tokens have expired with the clock's jump: log in again.)
    let user_token = t.login("lee@example.com", crate::support::PASSWORD).await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, body) = download(&t, Some(&user_token), "format=ndjson").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let admin = t.admin_token().await;
    let (status, _, body) = download(&t, Some(&admin), "format=xml").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["errors"][0]["extensions"]["field"], "format");
}

crate::backend_tests!(
    a_hundred_thousand_events_round_trip,
    signed_links_work_once_for_their_parameters,
);
