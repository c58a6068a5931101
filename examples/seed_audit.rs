//! Fills a gateway's database with synthetic audit events, for export and feed benchmarks: creating a
//! million events through GraphQL mutations would take far longer than the benchmark itself.
//!
//! ```sh
//! PORTCULLIS_DATABASE_URL=sqlite:///tmp/pc-bench.db cargo run --release --example seed_audit -- 1000000
//! ```
//!
//! The events (`policy.updated` by the system, spread over 10 organizations and the gateway-wide
//! log, each with a target and a small `changes` metadata) go through `audit::record_all`, 10,000 per
//! transaction, so they are chained and verifiable like any others. Run it against a stopped gateway
//! or a running one; a running gateway's live feed will publish them.

use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use portcullis::app::App;
use portcullis::audit::{self, AuditAction, Event, Target};
use portcullis::clock::SystemClock;
use portcullis::config::Config;
use portcullis::db::Id;

const PER_TRANSACTION: usize = 10_000;
const ORGANIZATIONS: usize = 10;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|n| n.replace('_', "").parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let url =
        std::env::var("PORTCULLIS_DATABASE_URL").unwrap_or_else(|_| "sqlite://portcullis.db".to_owned());
    let app = App::start(Config::for_database(url), Arc::new(SystemClock))
        .await
        .map_err(|e| format!("cannot start: {}", e.message()))?;
    let organizations: Vec<Option<Id>> = (0..ORGANIZATIONS)
        .map(|_| Some(Id::new_v7()))
        .chain([None])
        .collect();
    let started = Instant::now();
    let mut conn = app.db.conn().await.map_err(|e| e.message())?;
    let mut written = 0;
    while written < count {
        let now = app.now();
        let batch: Vec<Event> = (written..(written + PER_TRANSACTION).min(count))
            .map(|i| {
                Event::system(AuditAction::PolicyUpdated)
                    .in_organization(organizations[i % organizations.len()])
                    .target(Target::new(
                        "policy",
                        format!("seed-{i}"),
                        format!("Seeded policy {i}"),
                    ))
                    .change("enabled", i % 2 == 0, i % 2 == 1)
            })
            .collect();
        let n = batch.len();
        conn.transaction(async |tx| audit::record_all(tx, now, batch).await)
            .await
            .map_err(|e| e.message())?;
        // On PostgreSQL the events wait in the inbox: position them as a running gateway would.
        app.audit_sequencer.settle().await.map_err(|e| e.message())?;
        written += n;
        if written % 100_000 == 0 || written == count {
            eprintln!(
                "{written} events, {:.0} events/s",
                written as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "seeded {written} audit events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
