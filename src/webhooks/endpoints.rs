//! Webhook endpoints: created, changed, rotated and deleted under the policy engine, each change
//! audited. An endpoint belongs to an organization (and receives only its events) or to the
//! gateway (and receives every event); sending the log outward is reading it, so its creator needs
//! `audit.read` there too, and `audit.read_sensitive` to have IP and user agent sent unmasked.

use chrono::TimeDelta;

use super::destination;
use super::event_types;
use super::signature::Secret;
use crate::app::App;
use crate::audit::{self, AuditAction, Event, Target};
use crate::authz::{Action, Resource, guard};
use crate::db::models::WebhookEndpointRow;
use crate::db::webhooks::{self as rows, EndpointScope};
use crate::db::{Id, Page, PageOf, Timestamp, organizations};
use crate::error::{Error, Result};
use crate::identity::Actor;

/// Longest description accepted.
const MAX_DESCRIPTION_CHARS: usize = 500;
/// Longest overlap of a rotated secret.
const MAX_OVERLAP_SECONDS: i64 = 7 * 24 * 3600;

/// What `createWebhookEndpoint` asks for.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub organization_id: Option<Id>,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub ordered: bool,
    pub include_sensitive: bool,
}

/// What `updateWebhookEndpoint` changes (`None`: leave as is).
#[derive(Debug, Clone, Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub ordered: Option<bool>,
    pub include_sensitive: Option<bool>,
}

/// An endpoint with its secret, shown this once.
pub struct WithSecret {
    pub endpoint: WebhookEndpointRow,
    pub secret: String,
}

/// The resource an endpoint's operations are decided on.
pub fn resource_of(organization_id: Option<Id>) -> Resource {
    organization_id.map_or(Resource::Gateway, Resource::Organization)
}

pub async fn create(app: &App, actor: &Actor, new: NewEndpoint) -> Result<WithSecret> {
    let resource = resource_of(new.organization_id);
    guard::check(app, actor, Action::WebhookCreate, resource).await?;
    guard::check(app, actor, Action::AuditRead, resource).await?;
    if new.include_sensitive {
        guard::check(app, actor, Action::AuditReadSensitive, resource).await?;
    }
    let url = destination::check_url("input.url", &new.url, app.webhooks.rules)?;
    let description = description("input.description", new.description.as_deref())?;
    let event_types = event_types::parse("input.eventTypes", &new.event_types)?;
    let (_, secret) = Secret::mint()?;
    let now = app.now();
    // Its cursor starts at the log's head: events committed before, but not yet positioned, are
    // positioned first, so it receives hardly any from before it existed.
    app.audit_sequencer.settle_for_read().await;
    let mut conn = app.db.conn().await?;
    if let Some(org) = new.organization_id
        && organizations::find(&mut conn, org).await?.is_none()
    {
        return Err(Error::NotFound("organization"));
    }
    let event_types_json = serde_json::to_string(&event_types).map_err(Error::internal)?;
    let endpoint = conn
        .transaction(async |tx| {
            let row = WebhookEndpointRow {
                id: Id::new_v7(),
                organization_id: new.organization_id,
                url: url.to_string(),
                description,
                event_types: event_types_json,
                enabled: new.enabled,
                ordered: new.ordered,
                include_sensitive: new.include_sensitive,
                secret: secret.clone(),
                previous_secret: None,
                previous_secret_expires_at: None,
                // Events from now on: its own creation is the first it receives.
                cursor_seq: crate::db::audit::last_seq(tx).await?,
                next_position: 1,
                failing_since: None,
                disabled_reason: None,
                owner_user_id: Some(actor.user_id()),
                created_at: now,
                updated_at: now,
            };
            rows::insert_endpoint(tx, &row).await?;
            let event = Event::by(actor, AuditAction::WebhookEndpointCreated)
                .in_organization(row.organization_id)
                .target(target(&row))
                .with("urlOrigin", origin(&row.url))
                .with("eventTypes", &event_types)
                .with("enabled", row.enabled)
                .with("ordered", row.ordered)
                .with("includeSensitive", row.include_sensitive);
            audit::record(tx, now, event).await?;
            Ok(row)
        })
        .await?;
    Ok(WithSecret { endpoint, secret })
}

pub async fn update(
    app: &App,
    actor: &Actor,
    id: Id,
    changes: EndpointChanges,
) -> Result<WebhookEndpointRow> {
    let current = visible(app, actor, id).await?;
    let resource = resource_of(current.organization_id);
    guard::check(app, actor, Action::WebhookUpdate, resource).await?;
    // Whoever says where the log goes must be able to read it; whoever points unmasked data
    // somewhere new must be able to read that too, and becomes the one who vouches for it.
    guard::check(app, actor, Action::AuditRead, resource).await?;
    let sensitive_after = changes.include_sensitive.unwrap_or(current.include_sensitive);
    let vouches = sensitive_after
        && ((changes.include_sensitive == Some(true) && !current.include_sensitive)
            || changes.url.as_ref().is_some_and(|url| url.trim() != current.url));
    if vouches {
        guard::check(app, actor, Action::AuditReadSensitive, resource).await?;
    }
    let url = match &changes.url {
        Some(url) => Some(destination::check_url("input.url", url, app.webhooks.rules)?.to_string()),
        None => None,
    };
    let description = match &changes.description {
        Some(text) => Some(description("input.description", Some(text))?),
        None => None,
    };
    let event_types = match &changes.event_types {
        Some(entries) => Some(event_types::parse("input.eventTypes", entries)?),
        None => None,
    };
    let now = app.now();
    app.audit_sequencer.settle_for_read().await;
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        let before = rows::lock_endpoint(tx, id)
            .await?
            .ok_or(Error::NotFound("webhook endpoint"))?;
        let mut after = before.clone();
        if let Some(url) = &url {
            after.url.clone_from(url);
        }
        if let Some(description) = &description {
            after.description.clone_from(description);
        }
        if let Some(event_types) = &event_types {
            after.event_types = serde_json::to_string(event_types).map_err(Error::internal)?;
        }
        if let Some(ordered) = changes.ordered {
            after.ordered = ordered;
        }
        if let Some(include_sensitive) = changes.include_sensitive {
            after.include_sensitive = include_sensitive;
        }
        if vouches {
            after.owner_user_id = Some(actor.user_id());
        }
        if let Some(enabled) = changes.enabled {
            after.enabled = enabled;
            if enabled && !before.enabled {
                // Back from a pause: events from now on. What it missed is a replay away.
                after.cursor_seq = crate::db::audit::last_seq(tx).await?;
                after.disabled_reason = None;
                after.failing_since = None;
            }
        }
        after.updated_at = now;
        rows::update_endpoint(tx, &after).await?;
        let event = Event::by(actor, AuditAction::WebhookEndpointUpdated)
            .in_organization(after.organization_id)
            .target(target(&after))
            .change("urlOrigin", origin(&before.url), origin(&after.url))
            .changed_secret("url", before.url != after.url)
            .change("description", &before.description, &after.description)
            .change("eventTypes", patterns(&before), patterns(&after))
            .change("enabled", before.enabled, after.enabled)
            .change("ordered", before.ordered, after.ordered)
            .change(
                "includeSensitive",
                before.include_sensitive,
                after.include_sensitive,
            );
        audit::record(tx, now, event).await?;
        Ok(after)
    })
    .await
}

/// Deletes the endpoint and every message queued or kept for it.
pub async fn delete(app: &App, actor: &Actor, id: Id) -> Result<Id> {
    let endpoint = visible(app, actor, id).await?;
    guard::check(
        app,
        actor,
        Action::WebhookDelete,
        resource_of(endpoint.organization_id),
    )
    .await?;
    let now = app.now();
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        // Locked first, so no dispatch pass adds jobs between the jobs' deletion and its own.
        rows::lock_endpoint(tx, id)
            .await?
            .ok_or(Error::NotFound("webhook endpoint"))?;
        if !rows::delete_endpoint(tx, id).await? {
            return Err(Error::NotFound("webhook endpoint"));
        }
        let event = Event::by(actor, AuditAction::WebhookEndpointDeleted)
            .in_organization(endpoint.organization_id)
            .target(target(&endpoint))
            .with("urlOrigin", origin(&endpoint.url));
        audit::record(tx, now, event).await?;
        Ok(id)
    })
    .await
}

/// Replaces the secret; the old one keeps signing (a second `v1,` entry) for `overlap_seconds`.
pub async fn rotate_secret(app: &App, actor: &Actor, id: Id, overlap_seconds: i64) -> Result<WithSecret> {
    let endpoint = visible(app, actor, id).await?;
    guard::check(
        app,
        actor,
        Action::WebhookUpdate,
        resource_of(endpoint.organization_id),
    )
    .await?;
    if !(0..=MAX_OVERLAP_SECONDS).contains(&overlap_seconds) {
        return Err(Error::bad_input(
            "input.overlapSeconds",
            format!("must be between 0 and {MAX_OVERLAP_SECONDS} (7 days)"),
        ));
    }
    let (_, secret) = Secret::mint()?;
    let now = app.now();
    let mut conn = app.db.conn().await?;
    let endpoint = conn
        .transaction(async |tx| {
            let mut row = rows::lock_endpoint(tx, id)
                .await?
                .ok_or(Error::NotFound("webhook endpoint"))?;
            let old = std::mem::replace(&mut row.secret, secret.clone());
            (row.previous_secret, row.previous_secret_expires_at) = if overlap_seconds > 0 {
                (Some(old), Some(now + TimeDelta::seconds(overlap_seconds)))
            } else {
                (None, None)
            };
            row.updated_at = now;
            rows::update_endpoint(tx, &row).await?;
            let event = Event::by(actor, AuditAction::WebhookSecretRotated)
                .in_organization(row.organization_id)
                .target(target(&row))
                .with("overlapSeconds", overlap_seconds)
                .with("previousSecretExpiresAt", row.previous_secret_expires_at);
            audit::record(tx, now, event).await?;
            Ok(row)
        })
        .await?;
    Ok(WithSecret { endpoint, secret })
}

/// The gateway-wide endpoints (`organization_id` none) or one organization's.
pub async fn list(
    app: &App,
    actor: &Actor,
    organization_id: Option<Id>,
    page: &Page,
) -> Result<PageOf<WebhookEndpointRow>> {
    guard::check(app, actor, Action::WebhookList, resource_of(organization_id)).await?;
    let scope = organization_id.map_or(EndpointScope::Gateway, EndpointScope::Organization);
    let mut conn = app.db.reader().await?;
    rows::list_endpoints(&mut conn, scope, page).await
}

/// One endpoint, if the caller may list its scope's endpoints (else `None`, as if absent).
pub async fn get(app: &App, actor: &Actor, id: Id) -> Result<Option<WebhookEndpointRow>> {
    let mut conn = app.db.conn().await?;
    let Some(row) = rows::find_endpoint(&mut conn, id).await? else {
        return Ok(None);
    };
    drop(conn);
    let allowed = guard::allows(app, actor, Action::WebhookList, resource_of(row.organization_id)).await?;
    Ok(allowed.then_some(row))
}

/// The endpoint, or NOT_FOUND when it is absent or the caller may not see it.
pub async fn visible(app: &App, actor: &Actor, id: Id) -> Result<WebhookEndpointRow> {
    get(app, actor, id)
        .await?
        .ok_or(Error::NotFound("webhook endpoint"))
}

/// The endpoint's event type patterns (empty: every event).
pub fn patterns(row: &WebhookEndpointRow) -> Vec<String> {
    serde_json::from_str(&row.event_types).unwrap_or_default()
}

/// The keys that sign a message now: the current secret, and the previous one during its overlap.
pub fn signing_keys(row: &WebhookEndpointRow, now: Timestamp) -> Vec<Secret> {
    let previous = row
        .previous_secret
        .as_deref()
        .filter(|_| row.previous_secret_expires_at.is_some_and(|until| until > now));
    std::iter::once(row.secret.as_str())
        .chain(previous)
        .filter_map(Secret::parse)
        .collect()
}

/// The scheme, host and port of an endpoint URL: what the audit log records of it, since
/// receivers often carry a secret in the path or query (chat webhooks, `?token=`).
pub fn origin(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| "[invalid]".to_owned(),
        |url| url.origin().ascii_serialization(),
    )
}

pub fn target(row: &WebhookEndpointRow) -> Target {
    Target::new("webhook_endpoint", row.id, None)
}

fn description(field: &str, text: Option<&str>) -> Result<String> {
    let text = text.unwrap_or_default().trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::bad_input(
            field,
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::bad_input(field, "must not contain control characters"));
    }
    Ok(text.to_owned())
}
