//! The audit log over GraphQL: events with keyset cursors (newest first by default), one event,
//! and verification of the hash chains.

use async_graphql::connection::{Connection, CursorType, EmptyFields};
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::ContextExt;
use super::ids::{parse_id, to_id};
use super::loaders::Loaders;
use super::organizations::{Organization, readable_organization};
use super::pagination;
use super::users::User;
use crate::audit::chain::Verification;
use crate::audit::read;
use crate::audit::{ActorType, AuditFilter, FilterInput, Outcome, Target};
use crate::audit::{cursor, export};
use crate::db::audit::Scope;
use crate::db::models::AuditEventRow;
use crate::db::{Id, Timestamp, Window};
use crate::error::{Error, Result};
use crate::identity::{Actor, visibility};

/// An opaque cursor: the event's position in the log.
#[derive(Debug, Clone, Copy)]
pub struct AuditCursor(pub i64);

impl CursorType for AuditCursor {
    type Error = super::ids::InvalidCursor;

    fn decode_cursor(text: &str) -> std::result::Result<Self, Self::Error> {
        cursor::decode(text)
            .map(AuditCursor)
            .ok_or(super::ids::InvalidCursor)
    }

    fn encode_cursor(&self) -> String {
        cursor::encode(self.0)
    }
}

pub(crate) fn parse_cursor(field: &str, text: &str) -> Result<i64> {
    cursor::decode(text).ok_or_else(|| Error::bad_input(field, "not a valid cursor"))
}

/// Who did it.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "AuditActorType")]
pub enum ActorTypeGql {
    User,
    ApiKey,
    System,
    Anonymous,
}

impl ActorTypeGql {
    fn model(self) -> ActorType {
        match self {
            Self::User => ActorType::User,
            Self::ApiKey => ActorType::ApiKey,
            Self::System => ActorType::System,
            Self::Anonymous => ActorType::Anonymous,
        }
    }
}

/// How it ended.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "AuditOutcome")]
pub enum OutcomeGql {
    Success,
    Failure,
    /// Refused by the policy engine.
    Denied,
}

impl OutcomeGql {
    fn model(self) -> Outcome {
        match self {
            Self::Success => Outcome::Success,
            Self::Failure => Outcome::Failure,
            Self::Denied => Outcome::Denied,
        }
    }
}

/// Reading order of `auditEvents`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum AuditOrder {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// Narrows `auditEvents`; every field is optional and they combine with AND (lists with OR).
#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    /// One organization's events (needs `audit.read` there); without it, the whole log.
    organization_id: Option<ID>,
    /// Action names (`policy.created`) or prefixes (`policy.*`).
    actions: Option<Vec<String>>,
    /// Actor ids (users or API keys).
    actor_ids: Option<Vec<ID>>,
    actor_types: Option<Vec<ActorTypeGql>>,
    /// Target types, e.g. `user`, `policy`, `role`.
    target_types: Option<Vec<String>>,
    target_ids: Option<Vec<String>>,
    outcomes: Option<Vec<OutcomeGql>>,
    /// Events at or after this instant.
    since: Option<DateTime<Utc>>,
    /// Events before this instant.
    until: Option<DateTime<Utc>>,
    /// Case-insensitive text in the actor's or a target's display name.
    search: Option<String>,
}

impl AuditEventFilter {
    /// The domain filter; errors name the field as `filter.actorIds`.
    pub(crate) fn model(self) -> Result<AuditFilter> {
        let input = FilterInput {
            organization_id: self.organization_id.map(|id| id.0),
            actions: self.actions.unwrap_or_default(),
            actor_ids: self
                .actor_ids
                .unwrap_or_default()
                .into_iter()
                .map(|id| id.0)
                .collect(),
            actor_types: self
                .actor_types
                .unwrap_or_default()
                .into_iter()
                .map(ActorTypeGql::model)
                .collect(),
            target_types: self.target_types.unwrap_or_default(),
            target_ids: self.target_ids.unwrap_or_default(),
            outcomes: self
                .outcomes
                .unwrap_or_default()
                .into_iter()
                .map(OutcomeGql::model)
                .collect(),
            since: self.since.map(Timestamp),
            until: self.until.map(Timestamp),
            search: self.search,
        };
        AuditFilter::from_input(input, "filter.")
    }
}

/// The extra field of an audit connection, counted only when asked for.
pub struct AuditConnectionFields {
    scope: Scope,
    filter: AuditFilter,
}

#[Object]
impl AuditConnectionFields {
    /// How many events match, across all pages.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(read::count(ctx.app()?, self.scope, &self.filter).await?)
    }
}

pub type AuditConnection = Connection<AuditCursor, AuditEvent, AuditConnectionFields, EmptyFields>;

/// Runs a page of `auditEvents` within an authorized scope.
pub(crate) async fn events_page(
    ctx: &Context<'_>,
    actor: &Actor,
    scope: Scope,
    filter: AuditFilter,
    args: PageArgs,
) -> Result<AuditConnection> {
    let newest_first = args.order.unwrap_or_default() == AuditOrder::NewestFirst;
    let page = pagination::PageArgs::new(args.first, args.after, args.last, args.before)
        .page_by(parse_cursor, newest_first)?;
    let visible = read::list(ctx.app()?, actor, scope, &filter, &page).await?;
    let window = Window {
        rows: visible.rows,
        has_more: visible.has_more,
    };
    Ok(pagination::connection_with(
        &page,
        window,
        |row| AuditCursor(row.seq),
        AuditEvent,
        AuditConnectionFields { scope, filter },
    ))
}

/// Relay arguments plus the reading order.
pub(crate) struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
    pub order: Option<AuditOrder>,
}

/// One recorded event.
pub struct AuditEvent(pub AuditEventRow);

/// Who acted.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AuditActor {
    #[graphql(name = "type")]
    actor_type: ActorTypeGql,
    /// The user's or API key's id; none for the system and anonymous callers.
    id: Option<ID>,
    display_name: Option<String>,
    #[graphql(skip)]
    user_id: Option<Id>,
}

#[async_graphql::ComplexObject]
impl AuditActor {
    /// The user behind the actor (for an API key, its owner), if you may read that account.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.user_id else { return Ok(None) };
        let Some(user) = ctx.data::<Loaders>()?.users.load_one(id).await? else {
            return Ok(None);
        };
        let visible = visibility::user(ctx.app()?, ctx.actor()?, id).await?;
        Ok(visible.then_some(User(user)))
    }
}

/// What was acted on.
#[derive(SimpleObject)]
pub struct AuditTarget {
    #[graphql(name = "type")]
    target_type: String,
    id: String,
    display_name: Option<String>,
}

/// Where the request came from. `ip` and `userAgent` read `[masked]` without `audit.read_sensitive`.
#[derive(SimpleObject)]
pub struct AuditContext {
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
}

#[Object]
impl AuditEvent {
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at.0
    }

    /// Dotted action name, e.g. `policy.created` (the README lists them all).
    async fn action(&self) -> &str {
        &self.0.action
    }

    async fn actor(&self) -> AuditActor {
        let actor_type = match self.0.actor_type {
            ActorType::User => ActorTypeGql::User,
            ActorType::ApiKey => ActorTypeGql::ApiKey,
            ActorType::System => ActorTypeGql::System,
            ActorType::Anonymous => ActorTypeGql::Anonymous,
        };
        AuditActor {
            actor_type,
            id: self.0.actor_id.map(to_id),
            display_name: self.0.actor_name.clone(),
            user_id: self.0.actor_user_id,
        }
    }

    async fn targets(&self) -> Vec<AuditTarget> {
        serde_json::from_str::<Vec<Target>>(&self.0.targets)
            .unwrap_or_default()
            .into_iter()
            .map(|t| AuditTarget {
                target_type: t.target_type,
                id: t.id,
                display_name: t.display_name,
            })
            .collect()
    }

    /// The organization whose log holds the event; none for gateway-wide events.
    async fn organization_id(&self) -> Option<ID> {
        self.0.organization_id.map(to_id)
    }

    /// The organization whose log holds the event; null for gateway-wide events, and if you may
    /// not read the organization (your own refused attempt on it, say).
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        let Some(id) = self.0.organization_id else {
            return Ok(None);
        };
        readable_organization(ctx, id).await
    }

    async fn outcome(&self) -> OutcomeGql {
        match self.0.outcome {
            Outcome::Success => OutcomeGql::Success,
            Outcome::Failure => OutcomeGql::Failure,
            Outcome::Denied => OutcomeGql::Denied,
        }
    }

    async fn context(&self) -> AuditContext {
        AuditContext {
            ip: self.0.ip.clone(),
            user_agent: self.0.user_agent.clone(),
            request_id: self.0.request_id.clone(),
        }
    }

    /// Details; for updates `{"changes": {"field": {"before", "after"}}}`. Never secrets.
    async fn metadata(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.metadata).unwrap_or(serde_json::Value::Null))
    }

    /// Version of the event's canonical form.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// SHA-256 of the event's canonical form, chained to `previousHash`.
    async fn hash(&self) -> &str {
        &self.0.hash
    }

    async fn previous_hash(&self) -> &str {
        &self.0.prev_hash
    }

    /// When the personal data of the event was pseudonymized, if it was.
    async fn erased_at(&self) -> Option<DateTime<Utc>> {
        self.0.erased_at.map(|at| at.0)
    }
}

/// The result of verifying a hash chain.
pub struct AuditVerification(Verification);

#[Object]
impl AuditVerification {
    /// Whether every event matches its hash and links to the one before it.
    async fn ok(&self) -> bool {
        self.0.ok()
    }

    /// The organization whose chain was verified; none for the gateway-wide chain.
    async fn organization_id(&self) -> Option<ID> {
        self.0.organization_id.map(to_id)
    }

    async fn checked_events(&self) -> i64 {
        self.0.checked
    }

    /// The first event that does not match, if any.
    async fn first_mismatch(&self) -> Option<AuditMismatch> {
        self.0.mismatch.as_ref().map(|m| AuditMismatch {
            event_id: m.event_id.map(to_id),
            reason: m.reason.clone(),
        })
    }
}

/// Where verification failed.
#[derive(SimpleObject)]
pub struct AuditMismatch {
    /// The event that does not match (none when events after the last good one are missing).
    event_id: Option<ID>,
    reason: String,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Audit events, newest first unless `order` says otherwise. Without `filter.organizationId`
    /// this reads the whole log (needs gateway-wide `audit.read`).
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<AuditEventFilter>,
        order: Option<AuditOrder>,
    ) -> async_graphql::Result<AuditConnection> {
        let (app, actor) = (ctx.app()?, ctx.actor()?);
        let filter = filter.unwrap_or_default().model()?;
        let scope = read::scope_for(app, actor, &filter).await?;
        let args = PageArgs {
            first,
            after,
            last,
            before,
            order,
        };
        Ok(events_page(ctx, actor, scope, filter, args).await?)
    }

    /// One event, if you may read it.
    async fn audit_event(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<AuditEvent>> {
        let id = parse_id("id", &id)?;
        Ok(read::get(ctx.app()?, ctx.actor()?, id).await?.map(AuditEvent))
    }

    /// Verifies an organization's hash chain (or, without `organizationId`, the gateway-wide one).
    async fn verify_audit_log(
        &self,
        ctx: &Context<'_>,
        organization_id: Option<ID>,
    ) -> async_graphql::Result<AuditVerification> {
        let organization_id = organization_id
            .map(|id| parse_id("organizationId", &id))
            .transpose()?;
        let report = read::verify(ctx.app()?, ctx.actor()?, organization_id).await?;
        Ok(AuditVerification(report))
    }
}

/// The file format of an export.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AuditExportFormat {
    /// RFC 4180 CSV with a header row; `targets` and `metadata` as JSON text.
    Csv,
    /// One JSON event per line, shaped as in `auditEvents`.
    Ndjson,
}

#[derive(InputObject)]
pub struct CreateAuditExportInput {
    format: AuditExportFormat,
    filter: Option<AuditEventFilter>,
    order: Option<AuditOrder>,
}

/// A download link for browsers, which cannot send an `Authorization` header with a plain link.
#[derive(SimpleObject)]
pub struct AuditExportLink {
    /// `GET` it within `expiresAt` to download the export; it works for you only, for these
    /// parameters only, and stops working if your session or API key is revoked.
    url: String,
    expires_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct AuditMutation;

#[Object]
impl AuditMutation {
    /// A signed link to `GET /audit/export` with these parameters, valid for 10 minutes.
    async fn create_audit_export(
        &self,
        ctx: &Context<'_>,
        input: CreateAuditExportInput,
    ) -> async_graphql::Result<AuditExportLink> {
        let (app, actor) = (ctx.app()?, ctx.actor()?);
        let request = export::ExportRequest {
            filter: input.filter.unwrap_or_default().model()?,
            format: match input.format {
                AuditExportFormat::Csv => export::Format::Csv,
                AuditExportFormat::Ndjson => export::Format::Ndjson,
            },
            newest_first: input.order.unwrap_or_default() == AuditOrder::NewestFirst,
        };
        read::scope_for(app, actor, &request.filter).await?;
        let (url, expires_at) = export::sign_link(app, actor, &export::query_string(&request))?;
        Ok(AuditExportLink {
            url,
            expires_at: expires_at.0,
        })
    }
}
