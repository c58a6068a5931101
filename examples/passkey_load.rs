//! Load generator for passkey sign-ins: registers a software passkey for each of N users, starts
//! and answers M sign-in ceremonies, then times the *finish* step — `finishPasskeyAuthentication`
//! through the gateway's own router (GraphQL parsing, the ceremony taken from the database, the
//! signature check, the counter update, a new session and its tokens) with C requests in flight.
//!
//! ```text
//! cargo run --release --example passkey_load -- sqlite:///tmp/passkey-load.db 200 4000 8
//! cargo run --release --example passkey_load -- postgres://postgres@127.0.0.1/passkey_load 200 4000 8
//! ```
//! Arguments: database URL (its database must exist and may be empty), users, sign-ins, in flight.

#[path = "../tests/it/soft_authenticator.rs"]
#[expect(
    dead_code,
    reason = "the tests' software authenticator; this generator uses only part of it"
)]
mod soft_authenticator;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use futures_util::StreamExt as _;
use portcullis::app::App;
use portcullis::clock::SystemClock;
use portcullis::config::Config;
use portcullis::db::users;
use portcullis::identity::users::NewUser;
use portcullis::identity::{Actor, AuthMethod, ClientInfo, Mfa};
use portcullis::passkeys::{Attachment, NewPasskey, register, setup_links, sign_in};
use serde_json::{Value, json};
use soft_authenticator::SoftAuthenticator;
use tower::ServiceExt as _;

const ADMIN: &str = "load-admin@example.com";
const ORIGIN: &str = "http://localhost:8080";
const FINISH: &str = "mutation($id: ID!, $c: JSON!) { finishPasskeyAuthentication(input: {ceremonyId: $id, credential: $c}) { accessToken } }";

fn fail(error: portcullis::error::Error) -> anyhow::Error {
    anyhow::anyhow!("{error:?}")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "sqlite:///tmp/passkey-load.db".to_owned());
    let user_count: usize = args.next().map_or(Ok(200), |n| n.parse())?;
    let sign_ins: usize = args.next().map_or(Ok(4000), |n| n.parse())?;
    let in_flight: usize = args.next().map_or(Ok(8), |n| n.parse())?;

    let mut config = Config::for_database(url);
    config.admin_email = Some(ADMIN.to_owned());
    config.admin_password = Some("load-admin-password".to_owned());
    config.webauthn_rp_id = Some("localhost".to_owned());
    config.webauthn_origins = vec![ORIGIN.to_owned()];
    let app = App::start(config, Arc::new(SystemClock)).await.map_err(fail)?;
    let run = uuid::Uuid::now_v7().simple().to_string();

    // Setup (not timed): passwordless users, each registering one passkey through a setup link,
    // and every sign-in ceremony started and answered.
    let admin = admin_actor(&app).await?;
    let mut people = Vec::new();
    for i in 0..user_count {
        let email = format!("p{i}-{}@load.example.com", &run[20..]);
        let new = NewUser {
            email: email.clone(),
            display_name: format!("Person {i}"),
            password: None,
        };
        let user = portcullis::identity::users::create(&app, &admin, new)
            .await
            .map_err(fail)?;
        let link = setup_links::create(&app, &admin, user.id).await.map_err(fail)?;
        let mut soft = SoftAuthenticator::new(ORIGIN);
        let wanted = NewPasskey {
            name: "load".to_owned(),
            attachment: Attachment::Platform,
        };
        let started = setup_links::start(&app, &link.token, wanted)
            .await
            .map_err(fail)?;
        let response = soft.register(&started.options).map_err(anyhow::Error::msg)?;
        register::finish(&app, None, started.ceremony_id, &response, &ClientInfo::default())
            .await
            .map_err(fail)?;
        people.push((email, soft));
    }
    let mut answers = Vec::with_capacity(sign_ins);
    for i in 0..sign_ins {
        let (email, soft) = &mut people[i % user_count.max(1)];
        // Half with an email, half usernameless: both ceremony kinds are finished.
        let started = sign_in::start(&app, (i % 2 == 0).then_some(email.as_str()))
            .await
            .map_err(fail)?;
        let response = soft.authenticate(&started.options).map_err(anyhow::Error::msg)?;
        answers.push(json!({ "id": started.ceremony_id.to_string(), "c": response }));
    }

    // Timed: the finish step, `in_flight` requests at once.
    let router = portcullis::http::router(app.clone());
    let started = Instant::now();
    let latencies: Vec<Result<Duration, String>> = futures_util::stream::iter(answers)
        .map(|variables| {
            let router = router.clone();
            async move {
                let body = json!({ "query": FINISH, "variables": variables }).to_string();
                let request = Request::post("/graphql")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body))
                    .map_err(|e| e.to_string())?;
                let sent = Instant::now();
                let response = router.oneshot(request).await.map_err(|e| e.to_string())?;
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .map_err(|e| e.to_string())?;
                let answer: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                if answer["data"]["finishPasskeyAuthentication"]["accessToken"].is_string() {
                    Ok(sent.elapsed())
                } else {
                    Err(answer.to_string())
                }
            }
        })
        // In order: one authenticator never answers two sign-ins at once, and a sign-in that
        // overtook an earlier one of the same passkey would (rightly) look like a clone.
        .buffered(in_flight.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed();
    let failures: Vec<&String> = latencies.iter().filter_map(|r| r.as_ref().err()).collect();
    anyhow::ensure!(
        failures.is_empty(),
        "{} sign-ins failed, first: {}",
        failures.len(),
        failures[0]
    );
    let mut times: Vec<Duration> = latencies.into_iter().filter_map(Result::ok).collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "backend={:?} users={user_count} sign_ins={} in_flight={in_flight} elapsed_ms={} sign_ins_per_s={:.0} p50_ms={:.2} p99_ms={:.2}",
        app.db.backend(),
        times.len(),
        elapsed.as_millis(),
        times.len() as f64 / elapsed.as_secs_f64(),
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
    );
    Ok(())
}

async fn admin_actor(app: &App) -> anyhow::Result<Actor> {
    let mut conn = app.db.conn().await.map_err(fail)?;
    let admin = users::find_by_email(&mut conn, ADMIN)
        .await
        .map_err(fail)?
        .ok_or_else(|| anyhow::anyhow!("no bootstrap administrator"))?;
    Ok(Actor {
        user: admin,
        method: AuthMethod::Password,
        session_id: None,
        api_key_id: None,
        mfa: Mfa::default(),
        client: ClientInfo::default(),
    })
}
