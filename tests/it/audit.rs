//! The audit log: what changes record, reading it page by page and by filter, privacy across
//! organizations, transactional recording, and tamper detection.

use axum::body::Body;
use axum::http::{Request, header};
use diesel_async::RunQueryDsl;
use portcullis::audit::{self, AuditAction, Event};
use portcullis::error::Error;
use serde_json::{Value, json};

use crate::support::{Gql, TestApp};

const EVENTS: &str = "query($first: Int, $after: String, $last: Int, $before: String, $filter: AuditEventFilter, $order: AuditOrder) {
  auditEvents(first: $first, after: $after, last: $last, before: $before, filter: $filter, order: $order) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor startCursor }
    edges { cursor node { id action outcome organizationId
      actor { type id displayName user { id } }
      targets { type id displayName }
      context { ip userAgent requestId }
      metadata hash previousHash } }
  } }";

const VERIFY: &str = "query($org: ID) { verifyAuditLog(organizationId: $org) {
  ok checkedEvents firstMismatch { eventId reason } } }";

fn actions(response: &Gql) -> Vec<String> {
    response.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap().to_owned())
        .collect()
}

/// Renames `org` (one `organization.updated` event).
async fn rename(t: &TestApp, token: &str, org: &str, name: &str) {
    t.gql(
        Some(token),
        "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { id } } }",
        json!({ "input": { "id": org, "name": name } }),
    )
    .await
    .data();
}

async fn events(t: &TestApp, token: &str, variables: Value) -> Gql {
    t.gql(Some(token), EVENTS, variables).await
}

/// A GraphQL request with a `User-Agent` (and an `x-request-id`), as a browser would send it.
async fn gql_as_browser(t: &TestApp, token: &str, query: &str, variables: Value) -> Gql {
    let request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::USER_AGENT, "AuditBrowser/1.0")
        .header("x-request-id", "req-audit-1")
        .body(Body::from(
            json!({ "query": query, "variables": variables }).to_string(),
        ))
        .unwrap();
    let (_, _, body) = t.send(request).await;
    Gql(serde_json::from_slice(&body).unwrap())
}

async fn changes_are_recorded_and_paged_newest_first(t: TestApp) {
    let admin = t.admin_token().await;
    let user = t.create_user(&admin, "dana@example.com").await;
    let org = t.create_organization(&admin, "acme").await;
    let policy = t
        .gql(
            Some(&admin),
            "mutation($input: CreatePolicyInput!) { createPolicy(input: $input) { policy { id } } }",
            json!({ "input": { "name": "nobody deletes", "source": "forbid (principal, action == Portcullis::Action::\"policy.delete\", resource);" } }),
        )
        .await;
    let policy_id = policy.data()["createPolicy"]["policy"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.gql(
        Some(&admin),
        "mutation($input: UpdateUserInput!) { updateUser(input: $input) { user { id } } }",
        json!({ "input": { "id": user, "displayName": "Dana S.", "password": "another-password-1" } }),
    )
    .await
    .data();

    let all = events(&t, &admin, json!({})).await;
    let names = actions(&all);
    assert_eq!(
        &names[..4],
        [
            "user.updated",
            "policy.created",
            "organization.created",
            "user.created"
        ],
        "newest first: {names:?}"
    );
    assert!(names.contains(&"session.login_succeeded".to_owned()));
    let updated = &all.data()["auditEvents"]["edges"][0]["node"];
    assert_eq!(updated["actor"]["type"], "USER");
    assert_eq!(updated["actor"]["displayName"], "Administrator");
    assert_eq!(
        updated["targets"][0],
        json!({ "type": "user", "id": user, "displayName": "Dana S." })
    );
    assert_eq!(
        updated["metadata"]["changes"],
        json!({
            "displayName": { "before": "dana@example.com", "after": "Dana S." },
            "password": { "before": "[redacted]", "after": "[changed]" }
        }),
        "changed fields before and after; secrets never"
    );
    assert!(!updated.to_string().contains("another-password-1"));
    let created = &all.data()["auditEvents"]["edges"][2]["node"];
    assert_eq!(
        created["organizationId"],
        org.as_str(),
        "an organization's events are in its log"
    );

    // Filters: prefixes, exact names, targets, search, outcomes.
    let policies = events(&t, &admin, json!({ "filter": { "actions": ["policy.*"] } })).await;
    assert_eq!(actions(&policies), ["policy.created"]);
    let by_target = events(
        &t,
        &admin,
        json!({ "filter": { "targetIds": [policy_id], "targetTypes": ["policy"] } }),
    )
    .await;
    assert_eq!(by_target.data()["auditEvents"]["totalCount"], 1);
    let search = events(&t, &admin, json!({ "filter": { "search": "dana s" } })).await;
    assert_eq!(actions(&search), ["user.updated"]);
    let exact = events(
        &t,
        &admin,
        json!({ "filter": { "actions": ["user.created", "organization.created"] } }),
    )
    .await;
    assert_eq!(
        actions(&exact),
        ["organization.created", "user.created", "user.created"],
        "the bootstrap admin too"
    );
    let failures = events(
        &t,
        &admin,
        json!({ "filter": { "outcomes": ["FAILURE", "DENIED"] } }),
    )
    .await;
    assert_eq!(failures.data()["auditEvents"]["totalCount"], 0);
    for unknown in ["policy.made_up", "nope.*", "polic*"] {
        let bad = events(&t, &admin, json!({ "filter": { "actions": [unknown] } })).await;
        assert_eq!(
            (bad.code(), bad.field()),
            ("BAD_USER_INPUT", "filter.actions"),
            "{unknown}"
        );
    }

    // Keyset pages: two at a time, newest first, then back again with last/before.
    let total = all.data()["auditEvents"]["totalCount"].as_i64().unwrap();
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = events(&t, &admin, json!({ "first": 2, "after": after })).await;
        let connection = &page.data()["auditEvents"];
        for edge in connection["edges"].as_array().unwrap() {
            seen.push(edge["node"]["id"].as_str().unwrap().to_owned());
        }
        if connection["pageInfo"]["hasNextPage"] != true {
            break;
        }
        // An event recorded while paging does not disturb the pages still to come.
        t.create_user(&admin, &format!("late{}@example.com", seen.len()))
            .await;
        after = connection["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen.len() as i64, total, "every event exactly once");
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());
    let oldest = events(&t, &admin, json!({ "first": 1, "order": "OLDEST_FIRST" })).await;
    assert_eq!(
        actions(&oldest),
        ["signing_key.rotated"],
        "the first thing a new gateway does"
    );

    let verified = t.gql(Some(&admin), VERIFY, json!({ "org": null })).await;
    assert_eq!(verified.data()["verifyAuditLog"]["ok"], true, "{verified:?}");
    let verified = t.gql(Some(&admin), VERIFY, json!({ "org": org })).await;
    assert_eq!(verified.data()["verifyAuditLog"]["checkedEvents"], 1);
}

async fn a_rolled_back_change_leaves_no_event(t: TestApp) {
    let admin = t.admin_token().await;
    t.create_user(&admin, "erin@example.com").await;
    let duplicate = t
        .gql(
            Some(&admin),
            "mutation($input: CreateUserInput!) { createUser(input: $input) { user { id } } }",
            json!({ "input": { "email": "ERIN@example.com", "displayName": "Erin 2" } }),
        )
        .await;
    assert_eq!(duplicate.code(), "CONFLICT");
    let created = events(
        &t,
        &admin,
        json!({ "filter": { "actions": ["user.created"], "search": "erin" } }),
    )
    .await;
    assert_eq!(
        created.data()["auditEvents"]["totalCount"],
        1,
        "only the user that exists"
    );

    // An event recorded in a transaction that then fails is gone with it.
    let before = events(&t, &admin, json!({})).await.data()["auditEvents"]["totalCount"].clone();
    let mut conn = t.app.db.conn().await.unwrap();
    let now = t.app.now();
    let outcome: Result<(), Error> = conn
        .transaction(async |tx| {
            audit::record(tx, now, Event::system(AuditAction::AuditPurged)).await?;
            Err(Error::conflict("before", "changed my mind"))
        })
        .await;
    assert!(outcome.is_err());
    drop(conn);
    let after = events(&t, &admin, json!({})).await.data()["auditEvents"]["totalCount"].clone();
    assert_eq!(before, after);
    let verified = t.gql(Some(&admin), VERIFY, json!({})).await;
    assert_eq!(
        verified.data()["verifyAuditLog"]["ok"],
        true,
        "the chain is whole"
    );
}

async fn readers_see_only_what_they_may(t: TestApp) {
    let admin = t.admin_token().await;
    let org_a = t.create_organization(&admin, "org-a").await;
    let org_b = t.create_organization(&admin, "org-b").await;
    let (ann, ann_token) = t.user_with_token(&admin, "ann@example.com").await;
    let (_, bob_token) = t.user_with_token(&admin, "bob@example.com").await;
    let org_admin = t
        .gql(
            Some(&admin),
            "{ roles(first: 100) { nodes { id key } } }",
            json!({}),
        )
        .await
        .data()["roles"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "org_admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.gql(
        Some(&admin),
        "mutation($u: ID!, $r: ID!, $o: ID) { assignRole(input: {userId: $u, roleId: $r, organizationId: $o}) { roleAssignment { id } } }",
        json!({ "u": ann, "r": org_admin, "o": org_a }),
    )
    .await
    .data();
    // A change in B made from a browser, so that its event has a user agent.
    gql_as_browser(
        &t,
        &admin,
        "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { id } } }",
        json!({ "input": { "id": org_b, "name": "Org B" } }),
    )
    .await
    .data();
    gql_as_browser(
        &t,
        &admin,
        "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { id } } }",
        json!({ "input": { "id": org_a, "name": "Org A" } }),
    )
    .await
    .data();

    // Ann administers A: she reads A's log, with the user agent masked (no audit.read_sensitive).
    let a_log = events(&t, &ann_token, json!({ "filter": { "organizationId": org_a } })).await;
    assert_eq!(
        actions(&a_log),
        ["organization.updated", "role.assigned", "organization.created"]
    );
    let context = &a_log.data()["auditEvents"]["edges"][0]["node"]["context"];
    assert_eq!(context["userAgent"], "[masked]");
    assert_eq!(context["requestId"], "req-audit-1");
    // The super-administrator sees it unmasked.
    let unmasked = events(&t, &admin, json!({ "filter": { "organizationId": org_a } })).await;
    assert_eq!(
        unmasked.data()["auditEvents"]["edges"][0]["node"]["context"]["userAgent"],
        "AuditBrowser/1.0"
    );
    // Nobody reaches another organization's events: not by filter, not by id, not gateway-wide.
    let b_log = events(&t, &ann_token, json!({ "filter": { "organizationId": org_b } })).await;
    assert_eq!(b_log.code(), "FORBIDDEN");
    assert_eq!(events(&t, &ann_token, json!({})).await.code(), "FORBIDDEN");
    let b_event = events(
        &t,
        &admin,
        json!({ "filter": { "organizationId": org_b, "actions": ["organization.updated"] } }),
    )
    .await;
    let b_event_id = b_event.data()["auditEvents"]["edges"][0]["node"]["id"].clone();
    let hidden = t
        .gql(
            Some(&ann_token),
            "query($id: ID!) { auditEvent(id: $id) { id } }",
            json!({ "id": b_event_id }),
        )
        .await;
    assert_eq!(hidden.data()["auditEvent"], Value::Null);
    // Her refused attempts, though, are her own events (and in B's log for B's auditors).
    let attempts = events(
        &t,
        &admin,
        json!({ "filter": { "organizationId": org_b, "outcomes": ["DENIED"] } }),
    )
    .await;
    assert_eq!(attempts.data()["auditEvents"]["totalCount"], 1);
    let verify_b = t.gql(Some(&ann_token), VERIFY, json!({ "org": org_b })).await;
    assert_eq!(verify_b.code(), "FORBIDDEN");

    // Everyone reads their own events; Bob's refusal above is one of them.
    let own = t
        .gql(
            Some(&bob_token),
            "{ viewer { auditEvents { totalCount edges { node { action outcome actor { displayName } } } } } }",
            json!({}),
        )
        .await;
    let own_actions: Vec<&str> = own.data()["viewer"]["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(own_actions, ["session.login_succeeded"]);
    let denied = t
        .gql(Some(&bob_token), "{ users { totalCount } }", json!({}))
        .await;
    assert_eq!(denied.code(), "FORBIDDEN");
    let own = t
        .gql(
            Some(&bob_token),
            "{ viewer { auditEvents(first: 1) { edges { node { action outcome metadata } } } } }",
            json!({}),
        )
        .await;
    let newest = &own.data()["viewer"]["auditEvents"]["edges"][0]["node"];
    assert_eq!(newest["action"], "authorization.denied");
    assert_eq!(newest["outcome"], "DENIED");
    assert_eq!(newest["metadata"]["action"], "user.list");
}

async fn tampering_is_caught_at_the_edited_event(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "ledger").await;
    for name in ["one", "two", "three"] {
        rename(&t, &admin, &org, name).await;
    }
    let ok = t.gql(Some(&admin), VERIFY, json!({ "org": org })).await;
    assert_eq!(
        ok.data()["verifyAuditLog"],
        json!({ "ok": true, "checkedEvents": 4, "firstMismatch": null })
    );

    let log = events(
        &t,
        &admin,
        json!({ "filter": { "organizationId": org }, "order": "OLDEST_FIRST" }),
    )
    .await;
    let second = log.data()["auditEvents"]["edges"][1]["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let seq_of_second = {
        let cursor = log.data()["auditEvents"]["edges"][1]["cursor"].as_str().unwrap();
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .unwrap();
        i64::from_be_bytes(bytes.try_into().unwrap())
    };
    // Someone with database access rewrites history.
    let mut conn = t.app.db.conn().await.unwrap();
    let edited = portcullis::with_conn!(&mut conn, |c| diesel::sql_query(format!(
        "UPDATE audit_events SET metadata = '{{\"changes\":{{\"name\":{{\"before\":\"x\",\"after\":\"y\"}}}}}}' WHERE seq = {seq_of_second}"
    ))
    .execute(c)
    .await)
    .unwrap();
    assert_eq!(edited, 1);
    drop(conn);
    let caught = t.gql(Some(&admin), VERIFY, json!({ "org": org })).await;
    let report = &caught.data()["verifyAuditLog"];
    assert_eq!(report["ok"], false);
    assert_eq!(report["firstMismatch"]["eventId"], second.as_str(), "{report}");
    assert_eq!(report["checkedEvents"], 2);

    let others = t.gql(Some(&admin), VERIFY, json!({ "org": null })).await;
    assert_eq!(
        others.data()["verifyAuditLog"]["ok"],
        true,
        "other chains are unaffected"
    );
}

crate::backend_tests!(
    changes_are_recorded_and_paged_newest_first,
    a_rolled_back_change_leaves_no_event,
    readers_see_only_what_they_may,
    tampering_is_caught_at_the_edited_event,
);

async fn stats_count_per_bucket_and_key(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "charts").await;
    for name in ["a", "b"] {
        rename(&t, &admin, &org, name).await;
    }
    t.clock.advance(chrono::Duration::hours(2));
    let admin = t.admin_token().await;
    let stats = "query($f: AuditEventFilter, $g: AuditStatsGroupBy!, $i: AuditStatsInterval) {
        auditStats(filter: $f, groupBy: $g, interval: $i) { truncated buckets { start key count } } }";
    let by_action = t
        .gql(
            Some(&admin),
            stats,
            json!({ "f": { "organizationId": org }, "g": "ACTION", "i": "HOUR" }),
        )
        .await;
    assert_eq!(
        by_action.data()["auditStats"],
        json!({ "truncated": false, "buckets": [
            { "start": "2026-11-26T09:00:00+00:00", "key": "organization.created", "count": 1 },
            { "start": "2026-11-26T09:00:00+00:00", "key": "organization.updated", "count": 2 },
        ] })
    );
    let logins = t
        .gql(
            Some(&admin),
            stats,
            json!({ "f": { "actions": ["session.login_succeeded"] }, "g": "OUTCOME", "i": "HOUR" }),
        )
        .await;
    let buckets = &logins.data()["auditStats"]["buckets"];
    assert_eq!(buckets[0]["start"], "2026-11-26T09:00:00+00:00");
    assert_eq!(
        buckets[1],
        json!({ "start": "2026-11-26T11:00:00+00:00", "key": "success", "count": 1 })
    );
    let by_org = t
        .gql(Some(&admin), stats, json!({ "g": "ORGANIZATION", "i": "DAY" }))
        .await;
    let keys: Vec<&str> = by_org.data()["auditStats"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"gateway") && keys.contains(&org.as_str()),
        "{keys:?}"
    );
    let by_day = t
        .gql(
            Some(&admin),
            "{ auditStats(groupBy: ACTOR) { buckets { start key count } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        by_day.data()["auditStats"]["buckets"][0]["start"],
        "2026-11-26T00:00:00+00:00"
    );
}

async fn purging_keeps_the_rest_verifiable(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "old").await;
    for name in ["a", "b", "c"] {
        rename(&t, &admin, &org, name).await;
    }
    let day_one = events(&t, &admin, json!({})).await.data()["auditEvents"]["totalCount"]
        .as_i64()
        .unwrap();
    t.clock.advance(chrono::Duration::days(2));
    let admin = t.admin_token().await;
    rename(&t, &admin, &org, "d").await;

    let purge =
        "mutation($before: DateTime!) { purgeAuditEvents(input: {before: $before}) { deletedEvents } }";
    let future = t
        .gql(Some(&admin), purge, json!({ "before": "2030-01-01T00:00:00Z" }))
        .await;
    assert_eq!((future.code(), future.field()), ("BAD_USER_INPUT", "before"));
    let purged = t
        .gql(Some(&admin), purge, json!({ "before": "2026-11-27T00:00:00Z" }))
        .await;
    assert_eq!(purged.data()["purgeAuditEvents"]["deletedEvents"], day_one);

    let left = events(&t, &admin, json!({ "order": "OLDEST_FIRST" })).await;
    assert_eq!(
        actions(&left),
        ["session.login_succeeded", "organization.updated", "audit.purged"],
        "only what happened after the cut, and the purge itself"
    );
    let purge_event = &left.data()["auditEvents"]["edges"][2]["node"];
    assert_eq!(purge_event["metadata"]["deleted"], day_one);
    for org_id in [Value::Null, json!(org)] {
        let verified = t.gql(Some(&admin), VERIFY, json!({ "org": org_id })).await;
        assert_eq!(verified.data()["verifyAuditLog"]["ok"], true, "{verified:?}");
    }
    let verified = t.gql(Some(&admin), VERIFY, json!({ "org": org })).await;
    assert_eq!(verified.data()["verifyAuditLog"]["checkedEvents"], 1);

    // The retention job's work: everything older than a day, again verifiable.
    t.clock.advance(chrono::Duration::days(2));
    let deleted =
        portcullis::audit::retention::delete_before(&t.app, t.app.now() - chrono::Duration::days(1))
            .await
            .unwrap();
    assert_eq!(deleted, 3);
    let admin = t.admin_token().await;
    let verified = t.gql(Some(&admin), VERIFY, json!({ "org": null })).await;
    assert_eq!(verified.data()["verifyAuditLog"]["ok"], true, "{verified:?}");
}

async fn erasure_pseudonymizes_a_person_and_keeps_integrity(t: TestApp) {
    let admin = t.admin_token().await;
    let pat = t
        .gql(
            Some(&admin),
            "mutation { createUser(input: {email: \"pat@example.com\", displayName: \"Pat Doe\", password: \"pat-password-1\"}) { user { id } } }",
            json!({}),
        )
        .await
        .data()["createUser"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pat_token = t.login("pat@example.com", "pat-password-1").await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    gql_as_browser(&t, &pat_token, "{ viewer { user { id } } }", json!({}))
        .await
        .data();
    let wrong = t
        .gql(
            None,
            "mutation { login(input: {email: \"pat@example.com\", password: \"not-it-at-all\"}) { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(wrong.code(), "UNAUTHENTICATED");
    t.gql(
        Some(&admin),
        "mutation($input: UpdateUserInput!) { updateUser(input: $input) { user { id } } }",
        json!({ "input": { "id": pat, "email": "pat.doe@example.com" } }),
    )
    .await
    .data();
    let (_, _, before) = t
        .send(
            Request::get("/audit/export?format=ndjson")
                .header(header::AUTHORIZATION, format!("Bearer {admin}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let before = String::from_utf8(before).unwrap();
    assert!(before.contains("pat@example.com") && before.contains("Pat Doe"));

    let erase = "mutation($u: ID!) { eraseAuditPersonalData(input: {userId: $u}) { erasedEvents } }";
    let erased = t.gql(Some(&admin), erase, json!({ "u": pat })).await;
    let count = erased.data()["eraseAuditPersonalData"]["erasedEvents"]
        .as_i64()
        .unwrap();
    assert!(
        count >= 4,
        "created, logged in, failed to log in, updated: {count}"
    );

    let (_, _, after) = t
        .send(
            Request::get("/audit/export?format=ndjson")
                .header(header::AUTHORIZATION, format!("Bearer {admin}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let after = String::from_utf8(after).unwrap();
    for personal in [
        "pat@example.com",
        "pat.doe@example.com",
        "Pat Doe",
        "AuditBrowser",
    ] {
        assert!(!after.contains(personal), "{personal} is gone from the log");
    }
    // Who did what remains: Pat's login is still Pat's, under a pseudonym.
    let logins = events(
        &t,
        &admin,
        json!({ "filter": { "actorIds": [pat], "actions": ["session.login_succeeded"] } }),
    )
    .await;
    let login = &logins.data()["auditEvents"]["edges"][0]["node"];
    assert!(
        login["actor"]["displayName"]
            .as_str()
            .unwrap()
            .starts_with("erased-")
    );
    assert_eq!(
        events(&t, &admin, json!({ "filter": { "search": "Pat Doe" } }))
            .await
            .data()["auditEvents"]["totalCount"],
        0
    );
    let verified = t.gql(Some(&admin), VERIFY, json!({})).await;
    assert_eq!(verified.data()["verifyAuditLog"]["ok"], true, "{verified:?}");
    let recorded = events(
        &t,
        &admin,
        json!({ "filter": { "actions": ["audit.personal_data_erased"] } }),
    )
    .await;
    assert_eq!(
        recorded.data()["auditEvents"]["edges"][0]["node"]["metadata"]["events"],
        count
    );

    let nobody = t
        .gql(
            Some(&admin),
            erase,
            json!({ "u": "01900000-0000-7000-8000-000000000000" }),
        )
        .await;
    assert_eq!(nobody.code(), "NOT_FOUND");
}

/// `portcullis audit verify` reads the same chains: OK lines and status 0, then a MISMATCH line naming
/// the edited event and status 1.
async fn the_cli_verifies_the_log(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "cli").await;
    let url = t.app.db.url().to_owned();
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["audit", "verify"])
            .env("PORTCULLIS_DATABASE_URL", &url)
            .env("PORTCULLIS_LOG", "error")
            .output()
            .expect("the CLI runs")
    };
    let good = verify();
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{stdout}");
    assert!(
        stdout.contains("gateway: OK (") && stdout.contains(&format!("organization {org}: OK (1 events)")),
        "{stdout}"
    );

    let created = events(&t, &admin, json!({ "filter": { "organizationId": org } })).await;
    let id = created.data()["auditEvents"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut conn = t.app.db.conn().await.unwrap();
    portcullis::with_conn!(&mut conn, |c| diesel::sql_query(
        "UPDATE audit_events SET action = 'organization.updated' WHERE action = 'organization.created'"
    )
    .execute(c)
    .await)
    .unwrap();
    drop(conn);
    let bad = verify();
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("organization {org}: MISMATCH at event {id}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("gateway: OK"),
        "the other chains still verify: {stdout}"
    );
}

crate::backend_tests!(
    the_cli_verifies_the_log,
    stats_count_per_bucket_and_key,
    purging_keeps_the_rest_verifiable,
    erasure_pseudonymizes_a_person_and_keeps_integrity,
);
