//! Signing in to portcullis from a client: log in, call the API as yourself, refresh the session.
//!
//! Start a gateway with a bootstrap administrator, then run the example in another shell:
//!
//! ```sh
//! PORTCULLIS_ADMIN_EMAIL=admin@example.com PORTCULLIS_ADMIN_PASSWORD=change-me-please cargo run
//! PORTCULLIS_EMAIL=admin@example.com PORTCULLIS_PASSWORD=change-me-please cargo run --example login
//! ```
//!
//! Environment:
//!
//! | Variable              | Default                 | Meaning                     |
//! |-----------------------|-------------------------|-----------------------------|
//! | `PORTCULLIS_URL`      | `http://127.0.0.1:8080` | Base URL of the gateway     |
//! | `PORTCULLIS_EMAIL`    | (required)              | The account to sign in as   |
//! | `PORTCULLIS_PASSWORD` | (required)              | Its password                |
//!
//! The flow every integrator follows:
//!
//! 1. `login` returns a short-lived access token and a single-use refresh token.
//! 2. Send the access token as `Authorization: Bearer <token>` on every request.
//! 3. Before the access token expires, exchange the refresh token with `refreshSession` for a new
//!    pair; keep only the newest refresh token (reusing a spent one revokes the whole session).
//!
//! Access tokens are Ed25519-signed JWTs: services can verify them offline with the keys at
//! `/.well-known/jwks.json`.

use std::error::Error;

use serde_json::{Value, json};

const LOGIN: &str = "mutation Login($email: String!, $password: String!) {
  login(input: { email: $email, password: $password }) {
    accessToken
    accessTokenExpiresAt
    refreshToken
  }
}";

const VIEWER: &str = "query Viewer {
  viewer { user { id email displayName } authMethod }
}";

const REFRESH: &str = "mutation Refresh($refreshToken: String!) {
  refreshSession(input: { refreshToken: $refreshToken }) {
    accessToken
    accessTokenExpiresAt
    refreshToken
    session { id expiresAt }
  }
}";

/// A GraphQL endpoint and, once signed in, the access token to present.
struct Client {
    http: reqwest::Client,
    endpoint: String,
}

impl Client {
    /// Runs one operation and returns its `data`, or an error listing the GraphQL errors.
    async fn execute(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<Value, Box<dyn Error>> {
        let mut request = self
            .http
            .post(&self.endpoint)
            .header(
                reqwest::header::ACCEPT,
                "application/graphql-response+json, application/json",
            )
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("HTTP {status}: the response is not GraphQL JSON: {e}"))?;
        if let Some(errors) = body.get("errors").and_then(Value::as_array) {
            let messages: Vec<String> = errors
                .iter()
                .map(|error| {
                    let message = error["message"].as_str().unwrap_or("(no message)");
                    match error["extensions"]["code"].as_str() {
                        Some(code) => format!("{code}: {message}"),
                        None => message.to_owned(),
                    }
                })
                .collect();
            for message in &messages {
                eprintln!("GraphQL error: {message}");
            }
            return Err(format!("HTTP {status}: {}", messages.join("; ")).into());
        }
        match body.get("data") {
            Some(data) if !data.is_null() => Ok(data.clone()),
            _ => Err(format!("HTTP {status}: no data in the response").into()),
        }
    }
}

/// A string field of a response, or an error naming it.
fn text<'a>(value: &'a Value, pointer: &str) -> Result<&'a str, Box<dyn Error>> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the response has no {pointer}").into())
}

fn required_env(name: &str) -> Result<String, Box<dyn Error>> {
    std::env::var(name).map_err(|_| format!("set {name}").into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let base = std::env::var("PORTCULLIS_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let email = required_env("PORTCULLIS_EMAIL")?;
    let password = required_env("PORTCULLIS_PASSWORD")?;
    let client = Client {
        http: reqwest::Client::new(),
        endpoint: format!("{}/graphql", base.trim_end_matches('/')),
    };

    // 1. Log in.
    let data = client
        .execute(None, LOGIN, json!({ "email": email, "password": password }))
        .await?;
    let access_token = text(&data, "/login/accessToken")?;
    let refresh_token = text(&data, "/login/refreshToken")?;
    println!(
        "logged in; access token expires at {}",
        text(&data, "/login/accessTokenExpiresAt")?
    );

    // 2. Call the API as that user.
    let data = client.execute(Some(access_token), VIEWER, json!({})).await?;
    println!(
        "viewer: {} <{}> (id {}, authenticated by {})",
        text(&data, "/viewer/user/displayName")?,
        text(&data, "/viewer/user/email")?,
        text(&data, "/viewer/user/id")?,
        text(&data, "/viewer/authMethod")?,
    );

    // 3. Exchange the refresh token for new tokens; the old refresh token is now spent.
    let data = client
        .execute(None, REFRESH, json!({ "refreshToken": refresh_token }))
        .await?;
    println!(
        "refreshed session {}: new access token expires at {}, session expires at {}",
        text(&data, "/refreshSession/session/id")?,
        text(&data, "/refreshSession/accessTokenExpiresAt")?,
        text(&data, "/refreshSession/session/expiresAt")?,
    );
    Ok(())
}
