//! The delivery job: one attempt at one message. Signs the body with every live key, posts it
//! through the guarded client, records the attempt, and says what the runner does next:
//!
//! - any 2xx: delivered;
//! - 410 Gone: the receiver wants no more: the endpoint is disabled, the message dead-lettered;
//! - 429 / 503 with `Retry-After` (seconds or an HTTP date): again no sooner than it asks (capped
//!   at a day);
//! - anything else (3xx, 4xx, 5xx, timeouts, resets, refused addresses): again on the Standard
//!   Webhooks schedule (see `jobs::backoff`), then the dead-letter queue;
//! - an endpoint failing without a single success for `webhook_disable_after_hours` is disabled.
//!
//! The body is built at delivery from the log itself, so an erasure between attempts is honoured,
//! and IP and user agent go out unmasked only if the endpoint asks for them *and* its owner may
//! read them at the time of sending.

use chrono::TimeDelta;

use super::client::Post;
use super::dispatch::TEST;
use super::endpoints::{self, signing_keys};
use super::{payload, signature};
use crate::app::App;
use crate::audit::{self, AuditAction, Event, Target};
use crate::authz::{Action, guard};
use crate::db::models::{JobRow, WebhookAttemptRow, WebhookEndpointRow, WebhookMessageRow};
use crate::db::webhooks as rows;
use crate::db::{DbConn, Id, Timestamp, audit as log, users};
use crate::error::{Error, Result};
use crate::identity::{Actor, AuthMethod, ClientInfo, Mfa};
use crate::jobs::Outcome;

/// Attempts per message: at once, then retries after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h.
pub const MAX_ATTEMPTS: i32 = 8;
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER_SECONDS: u64 = 24 * 3600;

/// Runs one `webhook.delivery` job.
pub async fn run(app: &App, job: &JobRow) -> Outcome {
    match attempt(app, job).await {
        Ok(outcome) => outcome,
        // The database failed: worth another try later. The details go to the log, not to the
        // message's `lastError`, which organization administrators read.
        Err(error) => {
            tracing::warn!(error = ?error, "webhook delivery failed inside the gateway");
            Outcome::retry(match &error {
                Error::Internal(_) => "the gateway failed before it could send (see its log)".to_owned(),
                other => other.message(),
            })
        }
    }
}

async fn attempt(app: &App, job: &JobRow) -> Result<Outcome> {
    let mut conn = app.db.conn().await?;
    let Some((message, _)) = rows::find_message(&mut conn, job.id).await? else {
        return Ok(Outcome::Fail("the message no longer exists".to_owned()));
    };
    let Some(endpoint) = rows::find_endpoint(&mut conn, message.endpoint_id).await? else {
        return Ok(Outcome::Fail("the endpoint was deleted".to_owned()));
    };
    if !endpoint.enabled {
        return Ok(Outcome::Fail(format!(
            "the endpoint is disabled{}",
            endpoint
                .disabled_reason
                .as_deref()
                .map(|why| format!(" ({why})"))
                .unwrap_or_default()
        )));
    }
    let unmasked = endpoint.include_sensitive && owner_may_read_sensitive(app, &mut conn, &endpoint).await?;
    let Some(body) = body(&mut conn, &endpoint, &message, unmasked, app.now()).await? else {
        return Ok(Outcome::Fail(
            "the event is no longer in the audit log (purged by retention)".to_owned(),
        ));
    };
    drop(conn);

    let started = app.now();
    let id = message.id.to_string();
    let timestamp = started.0.timestamp();
    let signatures = signature::header(&signing_keys(&endpoint, started), &id, timestamp, &body);
    let answer = app
        .webhooks
        .client
        .send(Post {
            url: &endpoint.url,
            headers: vec![
                ("webhook-id", id),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signatures),
            ],
            body,
        })
        .await;
    let succeeded = answer.status.is_some_and(|status| (200..300).contains(&status));
    let error = match (answer.status, &answer.error) {
        (_, Some(error)) => Some(error.clone()),
        (Some(status), None) if !succeeded => Some(format!("the receiver answered {status}")),
        _ => None,
    };
    let record = WebhookAttemptRow {
        id: Id::new_v7(),
        message_id: message.id,
        endpoint_id: endpoint.id,
        attempted_at: started,
        status_code: answer.status.map(i32::from),
        duration_ms: i32::try_from(answer.duration.as_millis()).unwrap_or(i32::MAX),
        response_body: answer.body.clone(),
        error: error.clone(),
    };
    if succeeded {
        // Delivered, whatever happens to the bookkeeping: sending it again would be a duplicate
        // the receiver never gave cause for.
        if let Err(error) = record_success(app, &endpoint, &record).await {
            tracing::warn!(error = ?error, "a delivered webhook's attempt could not be recorded");
        }
        app.webhooks.announce(record);
        return Ok(Outcome::Done);
    }
    let mut conn = app.db.conn().await?;
    rows::insert_attempt(&mut conn, &record).await?;
    app.webhooks.announce(record);
    let now = app.now();
    let failing_since = match endpoint.failing_since {
        Some(since) => Some(since),
        None => rows::mark_failing(&mut conn, endpoint.id, now).await?,
    };
    let error = error.unwrap_or_else(|| "failed".to_owned());
    if answer.status == Some(410) {
        disable(app, &endpoint, "the receiver answered 410 Gone").await?;
        return Ok(Outcome::Fail(format!("{error}; the endpoint was disabled")));
    }
    let limit = TimeDelta::hours(i64::from(app.config.webhook_disable_after_hours));
    if let Some(since) = failing_since
        && now.0 - since.0 >= limit
    {
        let hours = app.config.webhook_disable_after_hours;
        let reason = format!(
            "every delivery failed for {hours} hour{}",
            if hours == 1 { "" } else { "s" }
        );
        disable(app, &endpoint, &reason).await?;
        return Ok(Outcome::Fail(format!("{error}; the endpoint was disabled")));
    }
    let not_before = match answer.status {
        Some(429 | 503) => answer
            .retry_after
            .map(|after| after.seconds_after(now.0).min(MAX_RETRY_AFTER_SECONDS))
            .and_then(|seconds| i64::try_from(seconds).ok())
            .map(TimeDelta::seconds),
        _ => None,
    };
    Ok(Outcome::Retry { error, not_before })
}

async fn record_success(app: &App, endpoint: &WebhookEndpointRow, record: &WebhookAttemptRow) -> Result<()> {
    let mut conn = app.db.conn().await?;
    rows::insert_attempt(&mut conn, record).await?;
    // Writes are what SQLite serializes: skip the one that would change nothing.
    if endpoint.failing_since.is_some() {
        rows::mark_healthy(&mut conn, record.endpoint_id).await?;
    }
    Ok(())
}

/// The body of `message` as `endpoint` may see it; `None` when its event is gone from the log.
async fn body(
    conn: &mut crate::db::DbConn,
    endpoint: &WebhookEndpointRow,
    message: &WebhookMessageRow,
    unmasked: bool,
    now: Timestamp,
) -> Result<Option<Vec<u8>>> {
    if message.kind == TEST {
        return Ok(Some(payload::test_body(&endpoint.id.to_string(), now)));
    }
    let Some(event_id) = message.event_id else {
        return Ok(None);
    };
    let Some(mut event) = log::find(conn, event_id).await? else {
        return Ok(None);
    };
    if !unmasked {
        audit::read::mask(&mut event);
    }
    Ok(Some(payload::event_body(
        &event,
        message.kind == super::dispatch::REPLAY,
    )))
}

/// Whether the user who vouches for the endpoint's unmasked data (its owner) still may read it:
/// an active account allowed `audit.read_sensitive` on the endpoint's scope, decided now.
async fn owner_may_read_sensitive(
    app: &App,
    conn: &mut crate::db::DbConn,
    endpoint: &WebhookEndpointRow,
) -> Result<bool> {
    let Some(owner) = endpoint.owner_user_id else {
        return Ok(false);
    };
    let Some(user) = users::find(conn, owner).await? else {
        return Ok(false);
    };
    if user.status != crate::identity::users::ACTIVE {
        return Ok(false);
    }
    let actor = Actor {
        user,
        method: AuthMethod::Password,
        session_id: None,
        api_key_id: None,
        mfa: Mfa::default(),
        client: ClientInfo::default(),
    };
    guard::allows(
        app,
        &actor,
        Action::AuditReadSensitive,
        endpoints::resource_of(endpoint.organization_id),
    )
    .await
}

/// Disables the endpoint and records why (once, however many deliveries notice at the same time).
async fn disable(app: &App, endpoint: &WebhookEndpointRow, reason: &str) -> Result<()> {
    let now = app.now();
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        if rows::disable(tx, endpoint.id, reason, now).await? {
            let event = Event::system(AuditAction::WebhookEndpointDisabled)
                .in_organization(endpoint.organization_id)
                .target(endpoints::target(endpoint))
                .with("urlOrigin", endpoints::origin(&endpoint.url))
                .with("reason", reason);
            audit::record(tx, now, event).await?;
        }
        Ok(())
    })
    .await
}

/// Records, in the transaction that dead-letters a delivery job after its last attempt, that the
/// message is exhausted.
pub async fn exhausted(tx: &mut DbConn, job: &JobRow, error: &str, now: Timestamp) -> Result<()> {
    let Some((message, _)) = rows::find_message(tx, job.id).await? else {
        return Ok(());
    };
    let Some(endpoint) = rows::find_endpoint(tx, message.endpoint_id).await? else {
        return Ok(());
    };
    let event = Event::system(AuditAction::WebhookMessageExhausted)
        .in_organization(endpoint.organization_id)
        .target(endpoints::target(&endpoint))
        .target(Target::new("webhook_message", message.id, None))
        .with("eventType", &message.event_type)
        .with("attempts", job.attempts)
        .with("lastError", error);
    audit::record(tx, now, event).await.map(|_| ())
}
