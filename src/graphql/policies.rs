//! GraphQL types and resolvers for Cedar policies and schema fragments.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::ContextExt;
use super::ids::{parse_id, to_id};
use super::loaders::Loaders;
use super::pagination::{PageArgs, Paged, connection};
use super::users::User;
use crate::authz::diagnostics::Problem as CedarProblem;
use crate::authz::{policies, schemas};
use crate::db::models::{CedarSchemaRow, PolicyRow};
use crate::db::policies::PolicyFilter as RowFilter;
use crate::identity::{validate, visibility};

/// A Cedar policy, or a template with a `?principal` slot that roles link to.
pub struct Policy(pub PolicyRow);

/// Whether a policy allows or denies. A forbid always overrides a permit.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PolicyEffect {
    Permit,
    Forbid,
}

/// A static policy, or a template to link to roles.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PolicyKind {
    /// In force by itself.
    Static,
    /// Has a `?principal` slot; in force through the roles it is attached to.
    Template,
}

fn effect(text: &str) -> PolicyEffect {
    if text == "forbid" {
        PolicyEffect::Forbid
    } else {
        PolicyEffect::Permit
    }
}

fn kind(text: &str) -> PolicyKind {
    if text == "template" {
        PolicyKind::Template
    } else {
        PolicyKind::Static
    }
}

/// A stored Cedar policy.
#[Object]
impl Policy {
    /// Stable identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    /// Short name, shown in decisions' explanations.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What the policy is for.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// The Cedar source.
    async fn source(&self) -> &str {
        &self.0.source
    }

    async fn kind(&self) -> PolicyKind {
        kind(&self.0.kind)
    }

    async fn effect(&self) -> PolicyEffect {
        effect(&self.0.effect)
    }

    /// Disabled policies are kept but not in force.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// 1 when created, +1 on every change.
    async fn version(&self) -> i64 {
        self.0.version
    }

    /// Who created it (null if that user was deleted, or if you may not read the account).
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, self.0.created_by).await
    }

    /// Who changed it last (null if you may not read the account).
    async fn updated_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, self.0.updated_by).await
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.0
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at.0
    }
}

/// The user `id`, if the caller may read the account (the rule of `user(id:)`).
async fn load_user(ctx: &Context<'_>, id: Option<crate::db::Id>) -> async_graphql::Result<Option<User>> {
    let Some(id) = id else { return Ok(None) };
    let loaders = ctx.data::<Loaders>()?;
    let Some(user) = loaders.users.load_one(id).await? else {
        return Ok(None);
    };
    let visible = visibility::user(ctx.app()?, ctx.actor()?, id).await?;
    Ok(visible.then_some(User(user)))
}

/// A problem in Cedar source, with its position.
#[derive(SimpleObject, Clone)]
#[graphql(name = "CedarProblem")]
pub struct CedarProblemInfo {
    /// What is wrong.
    pub message: String,
    /// 1-based line, when known.
    pub line: Option<i32>,
    /// 1-based column, when known.
    pub column: Option<i32>,
}

impl From<CedarProblem> for CedarProblemInfo {
    fn from(problem: CedarProblem) -> Self {
        Self {
            message: problem.message,
            line: problem.line.and_then(|l| i32::try_from(l).ok()),
            column: problem.column.and_then(|c| i32::try_from(c).ok()),
        }
    }
}

/// The outcome of `validatePolicy`.
#[derive(SimpleObject)]
pub struct PolicyValidation {
    /// True when the source parses and validates against the schema in force.
    valid: bool,
    /// What the source is, when it parses.
    kind: Option<PolicyKind>,
    effect: Option<PolicyEffect>,
    /// Every problem found, with line and column.
    problems: Vec<CedarProblemInfo>,
}

/// A Cedar schema fragment registered for an integrator's namespace.
#[derive(SimpleObject)]
pub struct CedarSchema {
    /// The namespace it declares.
    namespace: String,
    /// Its source, in Cedar schema syntax.
    source: String,
    /// When it last changed.
    updated_at: DateTime<Utc>,
}

impl From<CedarSchemaRow> for CedarSchema {
    fn from(row: CedarSchemaRow) -> Self {
        Self {
            namespace: row.namespace,
            source: row.source,
            updated_at: row.updated_at.0,
        }
    }
}

/// Narrows `policies`.
#[derive(InputObject, Default)]
pub struct PolicyFilter {
    /// Case-insensitive text in the name, description or source.
    search: Option<String>,
    enabled: Option<bool>,
    effect: Option<PolicyEffect>,
    /// Only templates attached to this role.
    role_id: Option<ID>,
}

/// A new policy.
#[derive(InputObject)]
pub struct CreatePolicyInput {
    /// Short name (1–100 characters).
    name: String,
    description: Option<String>,
    /// One Cedar policy, or a template with a `?principal` slot.
    source: String,
    /// In force at once unless false.
    #[graphql(default = true)]
    enabled: bool,
}

/// Changes to a policy; omitted fields stay as they are. Every change increments its version.
#[derive(InputObject)]
pub struct UpdatePolicyInput {
    id: ID,
    name: Option<String>,
    description: Option<String>,
    source: Option<String>,
    enabled: Option<bool>,
}

/// Names a policy.
#[derive(InputObject)]
pub struct PolicyIdInput {
    id: ID,
}

/// A schema fragment for an integrator's namespace.
#[derive(InputObject)]
pub struct PutCedarSchemaInput {
    /// The namespace, e.g. `Docs`; the source must declare exactly this one.
    namespace: String,
    /// Cedar schema syntax: `namespace Docs { entity Document in [Folder]; … }`.
    source: String,
}

/// The policy created, changed or deleted by a mutation.
#[derive(SimpleObject)]
pub struct PolicyPayload {
    policy: Policy,
}

/// The fragment stored by `putCedarSchema`.
#[derive(SimpleObject)]
pub struct CedarSchemaPayload {
    cedar_schema: CedarSchema,
}

#[derive(Default)]
pub struct PolicyQuery;

#[Object]
impl PolicyQuery {
    /// A policy by id.
    async fn policy(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Policy>> {
        let id = parse_id("id", &id)?;
        Ok(policies::get(ctx.app()?, ctx.actor()?, id).await?.map(Policy))
    }

    /// Stored policies, oldest first.
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn policies(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<PolicyFilter>,
    ) -> async_graphql::Result<Paged<Policy>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let filter = filter.unwrap_or_default();
        let filter = RowFilter {
            search: validate::search("filter.search", filter.search)?,
            enabled: filter.enabled,
            effect: filter.effect.map(|e| match e {
                PolicyEffect::Permit => "permit".to_owned(),
                PolicyEffect::Forbid => "forbid".to_owned(),
            }),
            role_id: filter
                .role_id
                .as_ref()
                .map(|id| parse_id("roleId", id))
                .transpose()?,
        };
        let result = policies::list(ctx.app()?, ctx.actor()?, &filter, &page).await?;
        Ok(connection(&page, result, |row| row.id, Policy))
    }

    /// Checks Cedar source against the schema in force without saving it.
    async fn validate_policy(
        &self,
        ctx: &Context<'_>,
        source: String,
    ) -> async_graphql::Result<PolicyValidation> {
        let validation = policies::validate(ctx.app()?, ctx.actor()?, &source).await?;
        Ok(PolicyValidation {
            valid: validation.problems.is_empty(),
            kind: validation.checked.as_ref().map(|c| kind(c.kind)),
            effect: validation.checked.as_ref().map(|c| effect(c.effect)),
            problems: validation.problems.into_iter().map(Into::into).collect(),
        })
    }

    /// The Cedar schema of the gateway's own namespace (`Portcullis`).
    async fn gateway_cedar_schema(&self) -> &'static str {
        crate::authz::schema::GATEWAY_SCHEMA
    }

    /// Schema fragments registered by integrators.
    async fn cedar_schemas(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CedarSchema>> {
        let rows = schemas::list(ctx.app()?, ctx.actor()?).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct PolicyMutation;

#[Object]
impl PolicyMutation {
    /// Stores a policy. Invalid Cedar is refused with BAD_USER_INPUT listing every problem
    /// (`extensions.problems`, each with line and column).
    async fn create_policy(
        &self,
        ctx: &Context<'_>,
        input: CreatePolicyInput,
    ) -> async_graphql::Result<PolicyPayload> {
        let new = policies::NewPolicy {
            name: input.name,
            description: input.description,
            source: input.source,
            enabled: input.enabled,
        };
        let row = policies::create(ctx.app()?, ctx.actor()?, new).await?;
        Ok(PolicyPayload { policy: Policy(row) })
    }

    /// Changes a policy; in force on every instance within a second.
    async fn update_policy(
        &self,
        ctx: &Context<'_>,
        input: UpdatePolicyInput,
    ) -> async_graphql::Result<PolicyPayload> {
        let id = parse_id("id", &input.id)?;
        let changes = policies::PolicyChanges {
            name: input.name,
            description: input.description,
            source: input.source,
            enabled: input.enabled,
        };
        let row = policies::update(ctx.app()?, ctx.actor()?, id, changes).await?;
        Ok(PolicyPayload { policy: Policy(row) })
    }

    /// Deletes a policy (and detaches it from roles); returns it as it was.
    async fn delete_policy(
        &self,
        ctx: &Context<'_>,
        input: PolicyIdInput,
    ) -> async_graphql::Result<PolicyPayload> {
        let id = parse_id("id", &input.id)?;
        let row = policies::delete(ctx.app()?, ctx.actor()?, id).await?;
        Ok(PolicyPayload { policy: Policy(row) })
    }

    /// Registers (or replaces) the schema of your namespace; policies using it are validated
    /// against it, and it must keep every enabled policy valid.
    async fn put_cedar_schema(
        &self,
        ctx: &Context<'_>,
        input: PutCedarSchemaInput,
    ) -> async_graphql::Result<CedarSchemaPayload> {
        let row = schemas::put(ctx.app()?, ctx.actor()?, &input.namespace, &input.source).await?;
        Ok(CedarSchemaPayload {
            cedar_schema: row.into(),
        })
    }
}
