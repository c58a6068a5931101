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
    let nodes = body["data"][list]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
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
    for (slug, name) in [
        ("acme", "Acme 100%"),
        ("under-score", "Under_score"),
        ("plain", "Plain"),
    ] {
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

/// Every counter a refused write could have moved, as the administrator sees them.
async fn counts(t: &TestApp, admin: &str) -> Value {
    t.gql(
        Some(admin),
        "{ users { totalCount } organizations { totalCount } roles(first: 50) { totalCount }
           policies { totalCount } auditEvents { totalCount } viewer { apiKeys { totalCount } } }",
        json!({}),
    )
    .await
    .data()
    .clone()
}

/// 100 KB (or NUL, or a text-direction override) in any text field of a create or update: a
/// BAD_USER_INPUT naming the field, and nothing stored or recorded.
async fn oversized_and_hostile_fields_are_refused_by_name(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "acme").await;
    let user = t.create_user(&admin, "pat@example.com").await;
    let role = t
        .gql(
            Some(&admin),
            "mutation { createRole(input: {key: \"helper\", name: \"Helper\"}) { role { id } } }",
            json!({}),
        )
        .await
        .data()["createRole"]["role"]["id"]
        .clone();
    let policy = t
        .gql(
            Some(&admin),
            "mutation { createPolicy(input: {name: \"p\", enabled: false, source: \"permit (principal, action == Portcullis::Action::\\\"user.list\\\", resource);\"}) { policy { id } } }",
            json!({}),
        )
        .await
        .data()["createPolicy"]["policy"]["id"]
        .clone();
    let big = "x".repeat(100_000);
    let big_email = format!("{}@example.com", "a".repeat(100_000));
    let source = "permit (principal, action == Portcullis::Action::\"user.list\", resource);";

    let create_user = "mutation($input: CreateUserInput!) { createUser(input: $input) { user { id } } }";
    let update_user = "mutation($input: UpdateUserInput!) { updateUser(input: $input) { user { id } } }";
    let create_org = "mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { organization { id } } }";
    let update_org = "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { id } } }";
    let create_role = "mutation($input: CreateRoleInput!) { createRole(input: $input) { role { id } } }";
    let update_role = "mutation($input: UpdateRoleInput!) { updateRole(input: $input) { role { id } } }";
    let create_policy =
        "mutation($input: CreatePolicyInput!) { createPolicy(input: $input) { policy { id } } }";
    let update_policy =
        "mutation($input: UpdatePolicyInput!) { updatePolicy(input: $input) { policy { id } } }";
    let create_key = "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } } }";
    let rows: Vec<(&str, &str, Value)> = vec![
        (
            create_user,
            "email",
            json!({ "email": big_email, "displayName": "Pat" }),
        ),
        (
            create_user,
            "displayName",
            json!({ "email": "new@example.com", "displayName": big }),
        ),
        (
            create_user,
            "displayName",
            json!({ "email": "new@example.com", "displayName": "Pat\u{202e}" }),
        ),
        (
            create_user,
            "email",
            json!({ "email": "new\0@example.com", "displayName": "Pat" }),
        ),
        (update_user, "email", json!({ "id": user, "email": big_email })),
        (
            update_user,
            "displayName",
            json!({ "id": user, "displayName": big }),
        ),
        (create_org, "slug", json!({ "slug": big, "name": "Big" })),
        (create_org, "name", json!({ "slug": "big", "name": big })),
        (create_org, "name", json!({ "slug": "big", "name": "a\0b" })),
        (update_org, "slug", json!({ "id": org, "slug": big })),
        (update_org, "name", json!({ "id": org, "name": big })),
        (create_role, "key", json!({ "key": big, "name": "Big" })),
        (create_role, "name", json!({ "key": "big", "name": big })),
        (
            create_role,
            "description",
            json!({ "key": "big", "name": "Big", "description": big }),
        ),
        (
            create_role,
            "description",
            json!({ "key": "big", "name": "Big", "description": "a\0b" }),
        ),
        (update_role, "name", json!({ "id": role, "name": big })),
        (
            update_role,
            "description",
            json!({ "id": role, "description": big }),
        ),
        (create_policy, "name", json!({ "name": big, "source": source })),
        (
            create_policy,
            "description",
            json!({ "name": "big", "description": big, "source": source }),
        ),
        (
            create_policy,
            "description",
            json!({ "name": "big", "description": "a\0b", "source": source }),
        ),
        (update_policy, "name", json!({ "id": policy, "name": big })),
        (
            update_policy,
            "description",
            json!({ "id": policy, "description": "\u{202e}x" }),
        ),
        (create_key, "name", json!({ "name": big })),
    ];

    let before = counts(&t, &admin).await;
    let mut failures = Vec::new();
    for (query, field, input) in rows {
        let op = query.split_whitespace().nth(2).unwrap_or(query).to_owned();
        let response = t.gql(Some(&admin), query, json!({ "input": input })).await;
        let body = &response.0;
        let code = &body["errors"][0]["extensions"]["code"];
        let named = &body["errors"][0]["extensions"]["field"];
        let message = body["errors"][0]["message"].as_str().unwrap_or("");
        if code != "BAD_USER_INPUT" || named != field || message.len() > 200 {
            failures.push(format!("{op} {field}: {}", shorten(body)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(counts(&t, &admin).await, before, "a refused write left a trace");

    let unchanged = t
        .gql(
            Some(&admin),
            "query($u: ID!, $o: ID!, $r: ID!, $p: ID!) { user(id: $u) { email displayName }
               organization(id: $o) { slug name } role(id: $r) { name description }
               policy(id: $p) { name description version } }",
            json!({ "u": user, "o": org, "r": role, "p": policy }),
        )
        .await;
    assert_eq!(
        unchanged.data(),
        &json!({
            "user": { "email": "pat@example.com", "displayName": "pat@example.com" },
            "organization": { "slug": "acme", "name": "acme" },
            "role": { "name": "Helper", "description": "" },
            "policy": { "name": "p", "description": "", "version": 1 },
        })
    );
}

/// No second organization can look like `acme`: look-alike slugs (Cyrillic letters, full-width
/// letters, invisible joiners, case, spaces) are refused, never stored, never found.
async fn look_alike_slugs_are_refused(t: TestApp) {
    let admin = t.admin_token().await;
    let acme = t.create_organization(&admin, "acme").await;
    let other = t.create_organization(&admin, "other").await;
    let create = "mutation($s: String!) { createOrganization(input: {slug: $s, name: \"Acme\"}) { organization { slug } } }";
    let update = "mutation($o: ID!, $s: String!) { updateOrganization(input: {id: $o, slug: $s}) { organization { slug } } }";
    let look_alikes = [
        "\u{0430}cme",                      // Cyrillic а
        "acm\u{0435}",                      // Cyrillic е
        "\u{ff41}\u{ff43}\u{ff4d}\u{ff45}", // full-width
        "ac\u{200d}me",                     // zero-width joiner
        "acme\u{200b}",                     // zero-width space
        "\u{feff}acme",                     // byte-order mark
        "a\u{0301}cme",                     // combining accent
        "ACME",
        "Acme",
        " acme ",
        "acme\u{00a0}",
        "\u{212a}cme", // Kelvin sign, lower-cases to k
    ];
    let mut failures = Vec::new();
    for slug in look_alikes {
        for (query, vars) in [
            (create, json!({ "s": slug })),
            (update, json!({ "o": other, "s": slug })),
        ] {
            let response = t.gql(Some(&admin), query, vars).await;
            let body = &response.0;
            let code = body["errors"][0]["extensions"]["code"].as_str().unwrap_or("none");
            let refused = (code == "BAD_USER_INPUT" && body["errors"][0]["extensions"]["field"] == "slug")
                || code == "CONFLICT";
            if !refused {
                failures.push(format!("{slug:?}: {}", shorten(body)));
            }
        }
        let found = t
            .gql(
                Some(&admin),
                "query($s: String!) { organizationBySlug(slug: $s) { id } }",
                json!({ "s": slug }),
            )
            .await;
        let found = &found.data()["organizationBySlug"];
        // Only the padded forms may name acme itself (the slug is trimmed).
        if !(found.is_null() || (found["id"] == acme.as_str() && slug.trim() == "acme")) {
            failures.push(format!("{slug:?} found {found}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} accepted:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let all = t
        .gql(Some(&admin), "{ organizations { nodes { slug } } }", json!({}))
        .await;
    assert_eq!(
        all.data()["organizations"]["nodes"],
        json!([{ "slug": "acme" }, { "slug": "other" }])
    );
}

crate::backend_tests!(
    oversized_and_hostile_fields_are_refused_by_name,
    look_alike_slugs_are_refused,
);
