//! Measures how long a policy change made through one instance takes to be in force on another
//! instance sharing the same PostgreSQL database (the policy engine's "within 1 s" target).
//!
//! ```sh
//! createdb -h 127.0.0.1 -U postgres pc_invalidation
//! PORTCULLIS_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/pc_invalidation \
//!     cargo run --release --example invalidation_latency
//! dropdb -h 127.0.0.1 -U postgres pc_invalidation
//! ```
//!
//! Two gateway instances run in this process, each with its own pool, engine and LISTEN connection,
//! exactly as two processes would (they share nothing but the database). Instance A creates a policy
//! (`PORTCULLIS_CHANGES` times, default 200, one every 50 ms); the clock starts when A's mutation has
//! committed and returns, and stops when B's engine holds the new authorization version (checked
//! every 100 µs). B's version poll is set to `PORTCULLIS_AUTHZ_POLL_MS` (default 500, as shipped;
//! 0 leaves LISTEN/NOTIFY alone to do the work).

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::app::App;
use portcullis::authz::policies::{self, NewPolicy};
use portcullis::clock::SystemClock;
use portcullis::config::Config;
use portcullis::identity::authenticate::authenticate;
use portcullis::identity::{ClientInfo, sessions};

const ADMIN_EMAIL: &str = "bench-admin@invalidation.test";
const ADMIN_PASSWORD: &str = "bench-admin-password";

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

fn fail(error: portcullis::error::Error) -> Box<dyn Error + Send + Sync> {
    error.message().into()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let url = std::env::var("PORTCULLIS_BENCH_DATABASE_URL")
        .map_err(|_| "set PORTCULLIS_BENCH_DATABASE_URL to a PostgreSQL database")?;
    let changes: usize = std::env::var("PORTCULLIS_CHANGES")
        .ok()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(200);
    let poll_ms: u64 = std::env::var("PORTCULLIS_AUTHZ_POLL_MS")
        .ok()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(500);
    let mut config = Config::for_database(url);
    config.admin_email = Some(ADMIN_EMAIL.to_owned());
    config.admin_password = Some(ADMIN_PASSWORD.to_owned());
    config.authz_poll_ms = poll_ms;
    let a = App::start(config.clone(), Arc::new(SystemClock))
        .await
        .map_err(fail)?;
    let b = App::start(config, Arc::new(SystemClock)).await.map_err(fail)?;

    let client = ClientInfo::default();
    let grant = sessions::login(&a, ADMIN_EMAIL, ADMIN_PASSWORD.to_owned(), &client)
        .await
        .map_err(fail)?;
    let admin = authenticate(&a, Some(&grant.access_token), &client)
        .await
        .map_err(fail)?;
    let admin = admin.actor().map_err(fail)?.clone();

    let mut latencies = Vec::with_capacity(changes);
    for i in 0..changes {
        let new = NewPolicy {
            name: format!("invalidation probe {i}"),
            description: None,
            source: "permit (principal, action == Portcullis::Action::\"user.read\", resource);".to_owned(),
            enabled: i % 2 == 0,
        };
        policies::create(&a, &admin, new).await.map_err(fail)?;
        let committed = Instant::now();
        let target = a.engine.state().version;
        while b.engine.state().version < target {
            if committed.elapsed() > Duration::from_secs(10) {
                return Err(format!("instance B did not follow change {i} within 10 s").into());
            }
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        latencies.push(committed.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!("{changes} policy changes on A, in force on B (B's version poll: {poll_ms} ms):");
    println!(
        "  latency  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
    );
    Ok(())
}
