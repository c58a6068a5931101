//! Hostile input: injection strings in every filter, oversized fields, look-alike slugs.
//!
//! Filters take text literally: whatever the string (SQL, LIKE wildcards, a backslash, NUL, 100 KB,
//! any script), a list answers without an internal error and with no row the text does not name:
//! each answer is compared with the same filter applied here to the whole list. A refusal is
//! allowed only as BAD_USER_INPUT naming the argument.

use serde_json::{Value, json};

use crate::support::TestApp;

/// The strings every filter is tried with.
fn hostile() -> Vec<String> {
    vec![
        "' OR 1=1 --".to_owned(),
        "\" OR \"\"=\"".to_owned(),
        "'; DROP TABLE users; --".to_owned(),
        "%".to_owned(),
        "_".to_owned(),
        "\\".to_owned(),
        "\\%".to_owned(),
        "%_%".to_owned(),
        "a\0b".to_owned(),
        "\0".to_owned(),
        "x".repeat(100_000),
        "%".repeat(10_000),
        "ÄCME".to_owned(),
        "İ".to_owned(),
        "аcme".to_owned(), // Cyrillic а
        "ａｃｍｅ".to_owned(),
        "ac\u{200d}me".to_owned(),
        "\u{202e}emca".to_owned(),
        "🦀".to_owned(),
        "\u{fffd}".to_owned(),
    ]
}

/// Case-insensitive "contains", as the filters document it.
fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// Whether the list answer is acceptable: BAD_USER_INPUT naming `field`, or no error and only
/// rows whose key `allowed` admits (each row the key of `pointer` in `nodes`).
fn literal(body: &Value, list: &str, field: &str, allowed: &dyn Fn(&Value) -> bool) -> Result<usize, String> {
    if let Some(errors) = body.get("errors") {
        let code = &errors[0]["extensions"]["code"];
        let named = errors[0]["extensions"]["field"].as_str().unwrap_or("");
        return if code == "BAD_USER_INPUT" && named.contains(field) {
            Ok(0)
        } else {
            Err(format!("{list}: {}", shorten(body)))
        };
    }
    let nodes = body["data"][list]["nodes"].as_array().cloned().unwrap_or_default();
    let extra: Vec<&Value> = nodes.iter().filter(|n| !allowed(n)).collect();
    if extra.is_empty() {
        Ok(nodes.len())
    } else {
        Err(format!("{list}: rows the text does not name: {extra:?}"))
    }
}

fn shorten(body: &Value) -> String {
    let text = body.to_string();
    text.chars().take(600).collect()
}

/// Every text filter of every list, with every hostile string, as the administrator (who sees
/// everything, so any extra row would show).
async fn filters_take_text_literally(t: TestApp) {
    let admin = t.admin_token().await;
    // Data the wildcards would match if they were not escaped.
    for (email, name) in [
        ("under_score@example.com", "Percent 100% Sure"),
        ("back.slash@example.com", "Back\\slash"),
        ("plain@example.com", "Plain Person"),
    ] {
        t.gql(
            Some(&admin),
            "mutation($input: CreateUserInput!) { createUser(input: $input) { user { id } } }",
            json!({ "input": { "email": email, "displayName": name } }),
        )
        .await
        .data();
    }
    for (slug, name) in [("acme", "Acme 100%"), ("under-score", "Under_score"), ("plain", "Plain")] {
        t.gql(
            Some(&admin),
            "mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { organization { id } } }",
            json!({ "input": { "slug": slug, "name": name } }),
        )
        .await
        .data();
    }
    t.gql(
        Some(&admin),
        "mutation { createPolicy(input: {name: \"p_1\", description: \"50% off\", enabled: false, source: \"permit (principal, action == Portcullis::Action::\\\"user.list\\\", resource);\"}) { policy { id } } }",
        json!({}),
    )
    .await
    .data();

    let mut failures = Vec::new();
    let mut matched = 0;
    for text in hostile() {
        let label: String = text.chars().take(12).collect();
        let users = t
            .gql(
                Some(&admin),
                "query($s: String) { users(first: 100, filter: {search: $s}) { nodes { email displayName } } }",
                json!({ "s": text }),
            )
            .await;
        let hit = |n: &Value| {
            contains(n["email"].as_str().unwrap_or(""), text.trim())
                || contains(n["displayName"].as_str().unwrap_or(""), text.trim())
        };
        match literal(&users.0, "users", "search", &hit) {
            Ok(n) => matched += n,
            Err(why) => failures.push(format!("{label:?} {why}")),
        }

        let organizations = t
            .gql(
                Some(&admin),
                "query($s: String) { organizations(first: 100, filter: {search: $s}) { nodes { slug name } } }",
                json!({ "s": text }),
            )
            .await;
        let hit = |n: &Value| {
            contains(n["slug"].as_str().unwrap_or(""), text.trim())
                || contains(n["name"].as_str().unwrap_or(""), text.trim())
        };
        match literal(&organizations.0, "organizations", "search", &hit) {
            Ok(n) => matched += n,
            Err(why) => failures.push(format!("{label:?} {why}")),
        }

        let policies = t
            .gql(
                Some(&admin),
                "query($s: String) { policies(first: 100, filter: {search: $s}) { nodes { name description source } } }",
                json!({ "s": text }),
            )
            .await;
        let hit = |n: &Value| {
            ["name", "description", "source"]
                .iter()
                .any(|f| contains(n[*f].as_str().unwrap_or(""), text.trim()))
        };
        match literal(&policies.0, "policies", "search", &hit) {
            Ok(n) => matched += n,
            Err(why) => failures.push(format!("{label:?} {why}")),
        }

        let by_search = t
            .gql(
                Some(&admin),
                "query($s: String) { auditEvents(first: 100, filter: {search: $s}) { nodes { actor { displayName } targets { displayName } } } }",
                json!({ "s": text }),
            )
            .await;
        let hit = |n: &Value| {
            contains(n["actor"]["displayName"].as_str().unwrap_or(""), text.trim())
                || n["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| contains(t["displayName"].as_str().unwrap_or(""), text.trim()))
        };
        match literal(&by_search.0, "auditEvents", "search", &hit) {
            Ok(n) => matched += n,
            Err(why) => failures.push(format!("{label:?} {why}")),
        }

        let by_target = t
            .gql(
                Some(&admin),
                "query($s: String!) { auditEvents(first: 100, filter: {targetTypes: [$s]}) { nodes { id } } a: auditEvents(first: 100, filter: {targetIds: [$s]}) { nodes { id } } }",
                json!({ "s": text }),
            )
            .await;
        if let Err(why) = literal(&by_target.0, "auditEvents", "target", &|_| false)
            .and_then(|_| literal(&by_target.0, "a", "target", &|_| false))
        {
            failures.push(format!("{label:?} targetTypes/targetIds {why}"));
        }

        for (query, list, field) in [
            (
                "query($s: String!) { auditEvents(first: 100, filter: {actions: [$s]}) { nodes { id } } }",
                "auditEvents",
                "actions",
            ),
            (
                "query($s: String!) { auditStats(groupBy: ACTION, filter: {search: $s}) { buckets { key } } }",
                "auditStats",
                "search",
            ),
            (
                "mutation($s: String!) { createAuditExport(input: {format: CSV, filter: {search: $s}}) { url } }",
                "createAuditExport",
                "search",
            ),
            (
                "query($s: String!) { viewer { auditEvents(first: 100, filter: {search: $s}) { totalCount } } }",
                "viewer",
                "search",
            ),
            (
                "query($s: String!) { organizationBySlug(slug: $s) { id } }",
                "organizationBySlug",
                "slug",
            ),
        ] {
            let body = t.gql(Some(&admin), query, json!({ "s": text })).await.0;
            let fine = match body.get("errors") {
                None => true,
                Some(errors) => {
                    errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
                        && errors[0]["extensions"]["field"]
                            .as_str()
                            .is_some_and(|f| f.contains(field))
                }
            };
            let none_found = list != "organizationBySlug" || body["data"][list].is_null();
            if !fine || !none_found {
                failures.push(format!("{label:?} {list}: {}", shorten(&body)));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} filter answer(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // `%`, `_` and `\` found what they name literally (the oracle would pass on empty answers).
    assert!(matched >= 6, "only {matched} literal matches");
}

crate::backend_tests!(filters_take_text_literally);
