//! GraphQL types and resolvers for webhooks: endpoints, their messages and attempts, and the
//! operations that deliver on demand. Thin: the rules live in `crate::webhooks`.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt as _};

use super::context::ContextExt;
use super::ids::{parse_id, to_id};
use super::loaders::Loaders;
use super::organizations::{Organization, readable_organization};
use super::pagination::{PageArgs, Paged, connection};
use crate::audit::cursor;
use crate::db::Timestamp;
use crate::db::models::{JobRow, WebhookAttemptRow, WebhookEndpointRow, WebhookMessageRow};
use crate::db::webhooks::{MessageFilter, MessageStatus};
use crate::webhooks::endpoints::{self, EndpointChanges, NewEndpoint, patterns};
use crate::webhooks::messages::{self, ReplayRange};

/// Where an integrator receives the audit log: signed POSTs (Standard Webhooks 1.0) of the events
/// it asked for, an organization's or (gateway-wide) all.
pub struct WebhookEndpoint(pub WebhookEndpointRow);

#[Object]
impl WebhookEndpoint {
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    /// The organization whose events it receives; null for a gateway-wide endpoint.
    async fn organization_id(&self) -> Option<ID> {
        self.0.organization_id.map(to_id)
    }

    /// The organization whose events it receives, if you may read it.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        match self.0.organization_id {
            Some(id) => readable_organization(ctx, id).await,
            None => Ok(None),
        }
    }

    /// Where messages are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    /// Audit action names and prefixes such as `policy.*`; empty: every event.
    async fn event_types(&self) -> Vec<String> {
        patterns(&self.0)
    }

    /// Whether new events are sent. A receiver answering 410, or failing for too long, turns it off.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// One message at a time in commit order (true), or several at once in any order.
    async fn ordered(&self) -> bool {
        self.0.ordered
    }

    /// Whether IP addresses and user agents are sent unmasked.
    async fn include_sensitive(&self) -> bool {
        self.0.include_sensitive
    }

    /// Why the gateway disabled it, if it did.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    /// Since when every attempt has failed; null while deliveries succeed.
    async fn failing_since(&self) -> Option<DateTime<Utc>> {
        self.0.failing_since.map(|at| at.0)
    }

    /// Until when the secret before the last rotation also signs.
    async fn previous_secret_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.previous_secret_expires_at.map(|at| at.0)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.0
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at.0
    }
}

/// Where a message stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum WebhookMessageStatus {
    /// Not attempted yet (an ordered endpoint's message waits for the earlier ones), or being sent.
    Pending,
    /// A receiver accepted it (2xx).
    Delivered,
    /// Failed at least once; `nextAttemptAt` says when it is tried again.
    Failed,
    /// Failed every attempt, or the endpoint was disabled: the dead-letter queue.
    /// `retryWebhookMessage` or `recoverWebhookEndpoint` sends it again.
    Dead,
}

impl WebhookMessageStatus {
    fn of(status: MessageStatus) -> Self {
        match status {
            MessageStatus::Pending => Self::Pending,
            MessageStatus::Delivered => Self::Delivered,
            MessageStatus::Failed => Self::Failed,
            MessageStatus::Dead => Self::Dead,
        }
    }

    fn model(self) -> MessageStatus {
        match self {
            Self::Pending => MessageStatus::Pending,
            Self::Delivered => MessageStatus::Delivered,
            Self::Failed => MessageStatus::Failed,
            Self::Dead => MessageStatus::Dead,
        }
    }
}

/// One payload for one endpoint, with its delivery state.
pub struct WebhookMessage(pub WebhookMessageRow, pub JobRow);

#[Object]
impl WebhookMessage {
    /// Also the `webhook-id` header, the same on every attempt: receivers deduplicate by it.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    async fn endpoint_id(&self) -> ID {
        to_id(self.0.endpoint_id)
    }

    /// The audit action it carries (`webhook.test` for a test).
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }

    /// The audit event it carries; null for a test.
    async fn event_id(&self) -> Option<ID> {
        self.0.event_id.map(to_id)
    }

    /// The event's position in the audit log (as `auditEvents` cursors).
    async fn event_cursor(&self) -> Option<String> {
        self.0.event_seq.map(cursor::encode)
    }

    async fn status(&self) -> WebhookMessageStatus {
        WebhookMessageStatus::of(MessageStatus::of(&self.1))
    }

    /// Sent again by `replayWebhookEvents` (its body says `"replay": true`).
    async fn replay(&self) -> bool {
        self.0.kind == crate::webhooks::dispatch::REPLAY
    }

    /// Sent by `sendTestWebhook`.
    async fn test(&self) -> bool {
        self.0.kind == crate::webhooks::dispatch::TEST
    }

    /// Attempts made in the current round (a retry starts a new one).
    async fn attempt_count(&self) -> i32 {
        self.1.attempts
    }

    /// When a pending or failed message is (next) attempted.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.1.status == crate::db::jobs::PENDING).then_some(self.1.run_at.0)
    }

    /// Why the last attempt failed.
    async fn last_error(&self) -> Option<&str> {
        self.1.last_error.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.0
    }

    /// When a receiver accepted it.
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        (self.1.status == crate::db::jobs::SUCCEEDED)
            .then_some(self.1.finished_at)
            .flatten()
            .map(|at| at.0)
    }

    /// Every attempt, oldest first.
    async fn attempts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WebhookAttempt>> {
        let attempts = ctx
            .data::<Loaders>()?
            .webhook_attempts
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        Ok(attempts.into_iter().map(WebhookAttempt::from).collect())
    }
}

/// One try at delivering a message.
#[derive(SimpleObject, Clone)]
pub struct WebhookAttempt {
    id: ID,
    message_id: ID,
    endpoint_id: ID,
    /// When the request started.
    attempted_at: DateTime<Utc>,
    /// The receiver's status code; null when no answer came (timeout, reset, refused address).
    status_code: Option<i32>,
    /// How long the attempt took, in milliseconds.
    duration_ms: i32,
    /// The first KiB of the response body.
    response_body: Option<String>,
    /// Why it failed, if it did.
    error: Option<String>,
    /// Whether the receiver accepted the message (2xx).
    succeeded: bool,
}

impl From<WebhookAttemptRow> for WebhookAttempt {
    fn from(row: WebhookAttemptRow) -> Self {
        Self {
            id: to_id(row.id),
            message_id: to_id(row.message_id),
            endpoint_id: to_id(row.endpoint_id),
            attempted_at: row.attempted_at.0,
            succeeded: row.status_code.is_some_and(|code| (200..300).contains(&code)),
            status_code: row.status_code,
            duration_ms: row.duration_ms,
            response_body: row.response_body,
            error: row.error,
        }
    }
}

/// Creates an endpoint.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// The organization whose events it receives (`webhook.create` there); omitted: every event
    /// of the gateway (`webhook.create` gateway-wide).
    organization_id: Option<ID>,
    /// `https://…` (plain http only when the operator allows it); not a loopback, private or
    /// link-local address.
    url: String,
    description: Option<String>,
    /// Audit action names and prefixes such as `policy.*`; omitted or empty: every event.
    event_types: Option<Vec<String>>,
    #[graphql(default = true)]
    enabled: bool,
    /// Deliver one message at a time in commit order (default), or several at once.
    #[graphql(default = true)]
    ordered: bool,
    /// Send IP addresses and user agents unmasked (needs `audit.read_sensitive` there).
    #[graphql(default = false)]
    include_sensitive: bool,
}

/// A new endpoint and its signing secret.
#[derive(SimpleObject)]
pub struct CreateWebhookEndpointPayload {
    endpoint: WebhookEndpoint,
    /// `whsec_…`: verify deliveries with it. Shown only here.
    secret: String,
}

/// Changes an endpoint; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    id: ID,
    url: Option<String>,
    description: Option<String>,
    event_types: Option<Vec<String>>,
    /// Turning an endpoint back on sends events from then on; `replayWebhookEvents` sends what it missed.
    enabled: Option<bool>,
    ordered: Option<bool>,
    include_sensitive: Option<bool>,
}

/// The endpoint as it is now.
#[derive(SimpleObject)]
pub struct WebhookEndpointPayload {
    endpoint: WebhookEndpoint,
}

/// An endpoint id.
#[derive(InputObject)]
pub struct DeleteWebhookEndpointInput {
    id: ID,
}

/// What was deleted.
#[derive(SimpleObject)]
pub struct DeleteWebhookEndpointPayload {
    deleted_id: ID,
}

/// Replaces an endpoint's secret.
#[derive(InputObject)]
pub struct RotateWebhookSecretInput {
    id: ID,
    /// Seconds (0 to 7 days) the old secret keeps signing beside the new one, so receivers can
    /// switch without losing a message.
    #[graphql(default = 86400)]
    overlap_seconds: i32,
}

/// The rotated endpoint and its new secret, shown only here.
#[derive(SimpleObject)]
pub struct RotateWebhookSecretPayload {
    endpoint: WebhookEndpoint,
    secret: String,
}

/// Narrows `webhookMessages`.
#[derive(InputObject)]
pub struct WebhookMessageFilter {
    endpoint_id: ID,
    status: Option<WebhookMessageStatus>,
    /// One audit action, exactly.
    event_type: Option<String>,
    /// Created at or after.
    since: Option<DateTime<Utc>>,
    /// Created at or before.
    until: Option<DateTime<Utc>>,
}

/// A message id.
#[derive(InputObject)]
pub struct RetryWebhookMessageInput {
    id: ID,
}

/// The message as it is now.
#[derive(SimpleObject)]
pub struct WebhookMessagePayload {
    message: WebhookMessage,
}

/// A range of the audit log to send to an endpoint again.
#[derive(InputObject)]
pub struct ReplayWebhookEventsInput {
    endpoint_id: ID,
    /// Events that occurred at or after.
    since: Option<DateTime<Utc>>,
    /// Events that occurred before (exclusive).
    until: Option<DateTime<Utc>>,
    /// Events after this audit cursor (from `auditEvents`, a delivery's `data.cursor`, or `lastCursor`).
    after_cursor: Option<String>,
}

/// What a replay queued.
#[derive(SimpleObject)]
pub struct ReplayWebhookEventsPayload {
    /// Messages queued (new ids, marked as replays), at most 10,000 per call.
    queued: i64,
    /// The cursor of the last event queued: pass it as `afterCursor` to continue.
    last_cursor: Option<String>,
    /// False when the range held more than one call queues.
    complete: bool,
}

/// Failed messages of an endpoint to send again.
#[derive(InputObject)]
pub struct RecoverWebhookEndpointInput {
    endpoint_id: ID,
    /// Messages created at or after.
    since: DateTime<Utc>,
}

/// How many messages were queued again.
#[derive(SimpleObject)]
pub struct RecoverWebhookEndpointPayload {
    queued: i64,
}

/// An endpoint id.
#[derive(InputObject)]
pub struct SendTestWebhookInput {
    endpoint_id: ID,
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// Gateway-wide endpoints, or (with `organizationId`) an organization's, oldest first.
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
        organization_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Paged<WebhookEndpoint>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let org = organization_id
            .as_ref()
            .map(|id| parse_id("organizationId", id))
            .transpose()?;
        let result = endpoints::list(ctx.app()?, ctx.actor()?, org, &page).await?;
        Ok(connection(&page, result, |row| row.id, WebhookEndpoint))
    }

    /// One endpoint; null if it does not exist or you may not see it.
    async fn webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<WebhookEndpoint>> {
        let id = parse_id("id", &id)?;
        Ok(endpoints::get(ctx.app()?, ctx.actor()?, id)
            .await?
            .map(WebhookEndpoint))
    }

    /// An endpoint's messages, oldest first, with their attempts.
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn webhook_messages(
        &self,
        ctx: &Context<'_>,
        filter: WebhookMessageFilter,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Paged<WebhookMessage>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let filter = MessageFilter {
            endpoint_id: parse_id("filter.endpointId", &filter.endpoint_id)?,
            status: filter.status.map(WebhookMessageStatus::model),
            event_type: filter.event_type,
            since: filter.since.map(Timestamp),
            until: filter.until.map(Timestamp),
        };
        let result = messages::list(ctx.app()?, ctx.actor()?, &filter, &page).await?;
        Ok(connection(
            &page,
            result,
            |(row, _)| row.id,
            |(row, job)| WebhookMessage(row, job),
        ))
    }

    /// One message; null if it does not exist or you may not see its endpoint.
    async fn webhook_message(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<WebhookMessage>> {
        let id = parse_id("id", &id)?;
        Ok(messages::get(ctx.app()?, ctx.actor()?, id)
            .await?
            .map(|(row, job)| WebhookMessage(row, job)))
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Creates an endpoint; the answer holds its secret, shown only this once.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> async_graphql::Result<CreateWebhookEndpointPayload> {
        let new = NewEndpoint {
            organization_id: input
                .organization_id
                .as_ref()
                .map(|id| parse_id("input.organizationId", id))
                .transpose()?,
            url: input.url,
            description: input.description,
            event_types: input.event_types.unwrap_or_default(),
            enabled: input.enabled,
            ordered: input.ordered,
            include_sensitive: input.include_sensitive,
        };
        let created = endpoints::create(ctx.app()?, ctx.actor()?, new).await?;
        Ok(CreateWebhookEndpointPayload {
            endpoint: WebhookEndpoint(created.endpoint),
            secret: created.secret,
        })
    }

    /// Changes an endpoint's URL, description, event types, state or options.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpointPayload> {
        let id = parse_id("input.id", &input.id)?;
        let changes = EndpointChanges {
            url: input.url,
            description: input.description,
            event_types: input.event_types,
            enabled: input.enabled,
            ordered: input.ordered,
            include_sensitive: input.include_sensitive,
        };
        let row = endpoints::update(ctx.app()?, ctx.actor()?, id, changes).await?;
        Ok(WebhookEndpointPayload {
            endpoint: WebhookEndpoint(row),
        })
    }

    /// Deletes an endpoint with every message queued or kept for it.
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: DeleteWebhookEndpointInput,
    ) -> async_graphql::Result<DeleteWebhookEndpointPayload> {
        let id = parse_id("input.id", &input.id)?;
        let deleted = endpoints::delete(ctx.app()?, ctx.actor()?, id).await?;
        Ok(DeleteWebhookEndpointPayload {
            deleted_id: to_id(deleted),
        })
    }

    /// Gives an endpoint a new secret; the old one keeps signing for `overlapSeconds`.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        input: RotateWebhookSecretInput,
    ) -> async_graphql::Result<RotateWebhookSecretPayload> {
        let id = parse_id("input.id", &input.id)?;
        let rotated =
            endpoints::rotate_secret(ctx.app()?, ctx.actor()?, id, i64::from(input.overlap_seconds)).await?;
        Ok(RotateWebhookSecretPayload {
            endpoint: WebhookEndpoint(rotated.endpoint),
            secret: rotated.secret,
        })
    }

    /// Sends a failed or dead message again now, with a fresh set of attempts (same `webhook-id`).
    async fn retry_webhook_message(
        &self,
        ctx: &Context<'_>,
        input: RetryWebhookMessageInput,
    ) -> async_graphql::Result<WebhookMessagePayload> {
        let id = parse_id("input.id", &input.id)?;
        let (row, job) = messages::retry(ctx.app()?, ctx.actor()?, id).await?;
        Ok(WebhookMessagePayload {
            message: WebhookMessage(row, job),
        })
    }

    /// Sends a range of the audit log to an endpoint again, as new messages marked as replays,
    /// in commit order. Give `since` or `afterCursor`.
    async fn replay_webhook_events(
        &self,
        ctx: &Context<'_>,
        input: ReplayWebhookEventsInput,
    ) -> async_graphql::Result<ReplayWebhookEventsPayload> {
        let endpoint_id = parse_id("input.endpointId", &input.endpoint_id)?;
        let after = input
            .after_cursor
            .as_deref()
            .map(|text| super::audit::parse_cursor("input.afterCursor", text))
            .transpose()?;
        let range = ReplayRange {
            since: input.since.map(Timestamp),
            until: input.until.map(Timestamp),
            after,
        };
        let replayed = messages::replay(ctx.app()?, ctx.actor()?, endpoint_id, range).await?;
        Ok(ReplayWebhookEventsPayload {
            queued: replayed.queued,
            last_cursor: replayed.last_cursor,
            complete: replayed.complete,
        })
    }

    /// Sends again every failed or dead message of an endpoint created since a time (after an
    /// outage of the receiver), with their original `webhook-id`s.
    async fn recover_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: RecoverWebhookEndpointInput,
    ) -> async_graphql::Result<RecoverWebhookEndpointPayload> {
        let endpoint_id = parse_id("input.endpointId", &input.endpoint_id)?;
        let queued = messages::recover(ctx.app()?, ctx.actor()?, endpoint_id, Timestamp(input.since)).await?;
        Ok(RecoverWebhookEndpointPayload { queued })
    }

    /// Queues a `webhook.test` message to an endpoint.
    async fn send_test_webhook(
        &self,
        ctx: &Context<'_>,
        input: SendTestWebhookInput,
    ) -> async_graphql::Result<WebhookMessagePayload> {
        let endpoint_id = parse_id("input.endpointId", &input.endpoint_id)?;
        let (row, job) = messages::send_test(ctx.app()?, ctx.actor()?, endpoint_id).await?;
        Ok(WebhookMessagePayload {
            message: WebhookMessage(row, job),
        })
    }
}

#[derive(Default)]
pub struct WebhookSubscription;

#[Subscription]
impl WebhookSubscription {
    /// Attempts at delivering to an endpoint as they happen, on any instance (for dashboards).
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<WebhookAttempt>> + use<>> {
        let request = ctx.request()?;
        let actor = request.principal.actor()?;
        let endpoint_id = parse_id("endpointId", &endpoint_id)?;
        let stream = messages::watch(&request.app, actor, endpoint_id).await?;
        Ok(stream.map(|item| item.map(WebhookAttempt::from).map_err(async_graphql::Error::from)))
    }
}
