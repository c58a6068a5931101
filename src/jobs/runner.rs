//! The worker loop: claim due jobs up to the concurrency limit, run each, settle it.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::{backoff, kinds, periodic};
use crate::app::App;
use crate::db::models::JobRow;
use crate::db::{Backend, jobs, notify};
use crate::identity::secrets;

/// What running a job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done: never run again.
    Done,
    /// Failed for now (a connection error, an SMTP 4xx): run again later, no sooner than
    /// `not_before` when the other side asked for a pause.
    Retry {
        error: String,
        not_before: Option<TimeDelta>,
    },
    /// Failed for good (an SMTP 5xx, a malformed job): straight to the dead letters.
    Fail(String),
}

impl Outcome {
    pub fn retry(error: impl Into<String>) -> Self {
        Self::Retry {
            error: error.into(),
            not_before: None,
        }
    }
}

/// The running workers of this process. Dropping it leaves them running; [`Runner::stop`] ends them.
pub struct Runner {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Runner {
    /// Starts the worker loop, the periodic sweeps and (on PostgreSQL) the listener that hears
    /// other instances enqueue.
    pub fn start(app: &App) -> Runner {
        let (stop, stopped) = watch::channel(false);
        let wake = app.db.jobs_enqueued().clone();
        let mut tasks = vec![
            tokio::spawn(work(app.clone(), wake.clone(), stopped.clone())),
            tokio::spawn(periodic::run(app.clone(), stopped.clone())),
        ];
        tasks.push(tokio::spawn(crate::webhooks::dispatch::run(
            app.clone(),
            stopped.clone(),
        )));
        if app.db.backend() == Backend::Postgres {
            tasks.push(tokio::spawn(listen(
                app.db.listen_url().to_owned(),
                wake,
                stopped,
            )));
        }
        Runner { stop, tasks }
    }

    /// Stops claiming, lets jobs in flight finish (up to `grace`), then ends every task. A job cut
    /// off here is taken over by a worker when its lease lapses.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(grace, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

async fn work(app: App, wake: Arc<Notify>, mut stopped: watch::Receiver<bool>) {
    let concurrency = app.config.job_concurrency.max(1);
    let permits = Arc::new(Semaphore::new(concurrency));
    let poll = Duration::from_millis(app.config.job_poll_ms.max(10));
    let lease = TimeDelta::seconds(i64::try_from(lease_seconds(&app.config)).unwrap_or(120));
    let lane_width = i64::from(app.config.webhook_max_concurrency.max(1));
    let mut in_flight = tokio::task::JoinSet::new();
    while !*stopped.borrow() {
        let Ok(first) = permits.clone().acquire_owned().await else {
            break;
        };
        let limit = 1 + permits.available_permits() as i64;
        let claimed = match app.db.conn().await {
            Ok(mut conn) => jobs::claim(&mut conn, app.now(), lease, limit, lane_width).await,
            Err(error) => Err(error),
        };
        let claimed = match claimed {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(error = ?error, "could not claim jobs");
                drop(first);
                idle(&wake, poll, &mut stopped).await;
                continue;
            }
        };
        if claimed.is_empty() {
            drop(first);
            let wait = until_next_due(&app, poll).await;
            idle(&wake, wait, &mut stopped).await;
            continue;
        }
        let mut first = Some(first);
        for job in claimed {
            let permit = match first.take() {
                Some(permit) => permit,
                // Only finishing jobs touch the semaphore meanwhile, and they only release.
                None => match permits.clone().try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let app = app.clone();
            in_flight.spawn(async move {
                execute(&app, job).await;
                drop(permit);
            });
        }
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

/// How long a claim lasts: the configured lease, but never shorter than the longest a job may
/// legitimately take (an SMTP or webhook timeout, plus a margin to settle), so a slow job is not
/// taken over while it still runs.
fn lease_seconds(config: &crate::config::Config) -> u64 {
    const MARGIN: u64 = 15;
    config
        .job_lease_seconds
        .max(config.smtp_timeout_seconds + MARGIN)
        .max(config.webhook_timeout_seconds + MARGIN)
}

/// Waits for an enqueue, the stop signal, or `wait`, whichever comes first.
async fn idle(wake: &Notify, wait: Duration, stopped: &mut watch::Receiver<bool>) {
    tokio::select! {
        () = wake.notified() => {}
        () = tokio::time::sleep(wait) => {}
        _ = stopped.changed() => {}
    }
}

/// How long to sleep when nothing is due: until the next retry, at most `poll`.
async fn until_next_due(app: &App, poll: Duration) -> Duration {
    let next = match app.db.conn().await {
        Ok(mut conn) => jobs::next_due(&mut conn, app.now()).await.ok().flatten(),
        Err(_) => None,
    };
    next.map_or(poll, |at| {
        (at.0 - app.now().0)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_millis(10), poll)
    })
}

/// Runs `job` and records how it went.
async fn execute(app: &App, job: JobRow) {
    let span = tracing::info_span!("job", id = %job.id, kind = %job.kind, attempt = job.attempts);
    settle(app, job).instrument(span).await;
}

async fn settle(app: &App, job: JobRow) {
    let outcome = kinds::run(app, &job).await;
    let now = app.now();
    let settled = match app.db.conn().await {
        Ok(mut conn) => match &outcome {
            Outcome::Done => jobs::succeed(&mut conn, job.id, job.attempts, now).await,
            Outcome::Retry { error, not_before } if job.attempts < job.max_attempts => {
                let random = secrets::random_bytes::<4>()
                    .map(u32::from_le_bytes)
                    .unwrap_or(u32::MAX / 2);
                let schedule =
                    kinds::JobKind::parse(&job.kind).map_or(backoff::EMAIL, |kind| kind.retry_schedule());
                let delay =
                    backoff::delay_after(schedule, job.attempts, random).max(not_before.unwrap_or_default());
                tracing::info!(%error, retry_in_s = delay.num_seconds(), "job failed; will retry");
                jobs::retry_at(&mut conn, job.id, job.attempts, error, now + delay, now).await
            }
            Outcome::Retry { error, .. } => {
                let error = format!("gave up after {} attempts: {error}", job.attempts);
                tracing::warn!(%error, "job dead");
                // The kind's record of it (an audit event) commits with the death, or neither does.
                conn.transaction(async |tx| {
                    let killed = jobs::kill(tx, job.id, job.attempts, &error, now).await?;
                    if killed {
                        kinds::exhausted(tx, &job, &error, now).await?;
                    }
                    Ok(killed)
                })
                .await
            }
            Outcome::Fail(error) => {
                tracing::warn!(%error, "job failed permanently");
                jobs::kill(&mut conn, job.id, job.attempts, error, now).await
            }
        },
        Err(error) => Err(error),
    };
    if job.lane.is_some() {
        // The next job of its lane may now run.
        app.db.jobs_enqueued().notify_one();
    }
    match settled {
        Ok(true) => tracing::debug!(?outcome, "job settled"),
        Ok(false) => tracing::warn!("job was taken over before it settled (its lease lapsed)"),
        // The lease lapses and another attempt runs: at-least-once, never lost.
        Err(error) => tracing::warn!(error = ?error, "could not settle job"),
    }
}

/// Hears other instances enqueue (PostgreSQL), reconnecting with a pause when the connection drops.
async fn listen(url: String, wake: Arc<Notify>, mut stopped: watch::Receiver<bool>) {
    while !*stopped.borrow() {
        tokio::select! {
            result = notify::listen(&url, notify::JOBS_CHANNEL, &wake) => {
                if let Err(error) = result {
                    tracing::warn!(error = ?error, "job listener lost its connection; reconnecting");
                }
            }
            _ = stopped.changed() => return,
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
