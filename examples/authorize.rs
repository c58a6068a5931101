//! An integrator's service asking portcullis for decisions about its own resources.
//!
//! The service ("Docs") has folders and documents. It registers the Cedar schema of its namespace
//! once, an administrator writes policies for it, and from then on the service asks `authorize`
//! (or `authorizeBatch`) whenever a user acts, passing the documents involved with their parents
//! and attributes. The gateway adds the user and the roles they hold.
//!
//! ```sh
//! PORTCULLIS_ADMIN_EMAIL=admin@example.com PORTCULLIS_ADMIN_PASSWORD=change-me-please cargo run
//! PORTCULLIS_EMAIL=admin@example.com PORTCULLIS_PASSWORD=change-me-please cargo run --example authorize
//! ```
//!
//! | Variable              | Default                 | Meaning                                   |
//! |-----------------------|-------------------------|-------------------------------------------|
//! | `PORTCULLIS_URL`      | `http://127.0.0.1:8080` | Base URL of the gateway                   |
//! | `PORTCULLIS_EMAIL`    | (required)              | An administrator (sets up schema, policy) |
//! | `PORTCULLIS_PASSWORD` | (required)              | Its password                              |
//!
//! In production a service would authenticate with an API key (`Authorization: Bearer pck_…`) and
//! ask about other users with `principal: {type: "Portcullis::User", id: …}`, which needs the
//! `authorize.any` permission.

use std::error::Error;

use serde_json::{Value, json};

const DOCS_SCHEMA: &str = r#"namespace Docs {
  entity Folder in [Folder];
  entity Document in [Folder] { owner: Portcullis::User, locked: Bool };
  action "read", "edit" appliesTo {
    principal: Portcullis::User,
    resource: Document,
    context: { mfa: Bool }
  };
}"#;

/// Editors may read and edit in the "handbook" folder (and below), unless a document is locked.
const POLICIES: [(&str, &str); 2] = [
    (
        "docs: super-administrators edit the handbook",
        r#"permit (principal in Portcullis::Role::"00000000-0000-7000-8000-000000000001", action in [Docs::Action::"read", Docs::Action::"edit"], resource in Docs::Folder::"handbook");"#,
    ),
    (
        "docs: locked documents are read-only",
        r#"forbid (principal, action == Docs::Action::"edit", resource) when { resource.locked };"#,
    ),
];

const AUTHORIZE: &str = "query Authorize($input: AuthorizeInput!) {
  authorize(input: $input) { allowed decision determiningPolicies { name } errors policyVersion }
}";

const AUTHORIZE_BATCH: &str = "query AuthorizeBatch($inputs: [AuthorizeInput!]!, $entitiesJson: String) {
  authorizeBatch(inputs: $inputs, entitiesJson: $entitiesJson) { allowed determiningPolicies { name } }
}";

/// Posts one GraphQL operation; returns `data` or the GraphQL errors as one message.
async fn execute(
    http: &reqwest::Client,
    endpoint: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Result<Value, Box<dyn Error>> {
    let mut request = http
        .post(endpoint)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let body: Value = request.send().await?.json().await?;
    if let Some(errors) = body.get("errors").and_then(Value::as_array) {
        let messages: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e["extensions"]["code"], e["message"]))
            .collect();
        return Err(messages.join("; ").into());
    }
    Ok(body["data"].clone())
}

/// The documents this request is about, in Cedar's JSON entity format.
fn entities(owner: &str) -> Value {
    let document = |id: &str, folder: &str, locked: bool| {
        json!({
            "uid": { "type": "Docs::Document", "id": id },
            "attrs": { "owner": { "__entity": { "type": "Portcullis::User", "id": owner } }, "locked": locked },
            "parents": [{ "type": "Docs::Folder", "id": folder }]
        })
    };
    json!([
        { "uid": { "type": "Docs::Folder", "id": "handbook" }, "attrs": {}, "parents": [] },
        { "uid": { "type": "Docs::Folder", "id": "onboarding" }, "attrs": {}, "parents": [{ "type": "Docs::Folder", "id": "handbook" }] },
        { "uid": { "type": "Docs::Folder", "id": "finance" }, "attrs": {}, "parents": [] },
        document("welcome", "onboarding", false),
        document("holidays", "handbook", true),
        document("budget", "finance", false),
    ])
}

fn question(action: &str, document: &str, owner: &str) -> Value {
    let mut question = batch_question(action, document);
    question["entities"] = entities(owner);
    question
}

/// A question without entities: a batch passes them once for all its questions.
fn batch_question(action: &str, document: &str) -> Value {
    json!({
        "action": { "type": "Docs::Action", "id": action },
        "resource": { "type": "Docs::Document", "id": document },
        "context": { "mfa": false },
    })
}

fn required_env(name: &str) -> Result<String, Box<dyn Error>> {
    std::env::var(name).map_err(|_| format!("set {name}").into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let base = std::env::var("PORTCULLIS_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let endpoint = format!("{}/graphql", base.trim_end_matches('/'));
    let http = reqwest::Client::new();
    let (email, password) = (
        required_env("PORTCULLIS_EMAIL")?,
        required_env("PORTCULLIS_PASSWORD")?,
    );

    let login = execute(
        &http,
        &endpoint,
        None,
        "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken user { id } } }",
        json!({ "e": email, "p": password }),
    )
    .await?;
    let token = login["login"]["accessToken"].as_str().ok_or("no access token")?;
    let me = login["login"]["user"]["id"].as_str().ok_or("no user id")?;

    // One-time set-up: the schema of the Docs namespace, and two policies (skipped if present).
    execute(
        &http,
        &endpoint,
        Some(token),
        "mutation($s: String!) { putCedarSchema(input: {namespace: \"Docs\", source: $s}) { cedarSchema { namespace } } }",
        json!({ "s": DOCS_SCHEMA }),
    )
    .await?;
    let existing = execute(
        &http,
        &endpoint,
        Some(token),
        "{ policies(first: 100, filter: {search: \"docs:\"}) { nodes { name } } }",
        json!({}),
    )
    .await?;
    for (name, source) in POLICIES {
        let present = existing["policies"]["nodes"]
            .as_array()
            .is_some_and(|nodes| nodes.iter().any(|n| n["name"] == name));
        if !present {
            execute(
                &http,
                &endpoint,
                Some(token),
                "mutation($n: String!, $s: String!) { createPolicy(input: {name: $n, source: $s}) { policy { id } } }",
                json!({ "n": name, "s": source }),
            )
            .await?;
        }
    }

    // A single decision, with its explanation.
    let decision = execute(
        &http,
        &endpoint,
        Some(token),
        AUTHORIZE,
        json!({ "input": question("edit", "welcome", me) }),
    )
    .await?;
    println!("edit welcome: {:#}", decision["authorize"]);

    // Several at once, the entities passed once as JSON text for all of them (a service that
    // keeps its entities serialized sends the same text every time; the gateway reads it once).
    // Answers come back in order.
    let asked = [("read", "welcome"), ("edit", "holidays"), ("read", "budget")];
    let inputs: Vec<Value> = asked.iter().map(|(a, d)| batch_question(a, d)).collect();
    let batch = execute(
        &http,
        &endpoint,
        Some(token),
        AUTHORIZE_BATCH,
        json!({ "inputs": inputs, "entitiesJson": entities(me).to_string() }),
    )
    .await?;
    let answers = batch["authorizeBatch"].as_array().ok_or("no answers")?;
    for ((action, document), answer) in asked.iter().zip(answers) {
        let because: Vec<&str> = answer["determiningPolicies"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        let verdict = if answer["allowed"] == true {
            "ALLOW"
        } else {
            "DENY"
        };
        println!("{action} {document}: {verdict} (because: {because:?})");
    }
    Ok(())
}
