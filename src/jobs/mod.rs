//! The durable job runner: an outbox table written in the same transaction as the change that
//! causes the work, and workers that claim due jobs, run them, and retry with backoff.
//!
//! - **Enqueue** ([`enqueue`]) inside the caller's transaction: a job exists exactly when its cause
//!   committed, and survives any restart.
//! - **Claim**: PostgreSQL workers take rows with `FOR UPDATE SKIP LOCKED`, so any number of
//!   instances share the queue and none takes a job another holds; on SQLite the one writer is the
//!   lock. A claim is a lease: a job whose worker died is taken over when the lease lapses.
//! - **Wake**: on the local commit signal, on PostgreSQL's `NOTIFY` from other instances, and on a
//!   poll backstop.
//! - **Settle**: done; retry later (transient failures, exponential backoff with jitter); or dead
//!   (permanent failures, or attempts exhausted) — dead jobs stay listed and can be retried.
//! - **Periodic work** (expiry, retention) runs on every instance; each sweep is written so that
//!   instances running it at once do it once.

mod backoff;
pub mod deliveries;
pub mod kinds;
pub mod periodic;
pub mod queue;
pub mod runner;

pub use kinds::JobKind;
pub use queue::{NewJob, enqueue};
pub use runner::{Outcome, Runner};
