//! GraphQL types and resolvers of the `authorize` API for integrators.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};

use super::context::ContextExt;
use super::ids::{parse_id, to_id};
use crate::authz::authorize::{self, AuthorizeRequest, EntityRef, Outcome};
use crate::error::Error;

/// A Cedar entity reference: `Type::"id"`.
#[derive(InputObject, Clone)]
pub struct EntityRefInput {
    /// The entity type with its namespace, e.g. `Docs::Document` (actions: `Docs::Action`).
    #[graphql(name = "type")]
    type_name: String,
    /// The entity id, e.g. `d-42`.
    id: String,
}

/// One authorization question.
#[derive(InputObject, Clone)]
pub struct AuthorizeInput {
    /// Who acts; defaults to you (`Portcullis::User::"<your id>"`). Anyone else needs the
    /// `authorize.any` permission.
    principal: Option<EntityRefInput>,
    /// The action, e.g. `{type: "Docs::Action", id: "read"}`.
    action: EntityRefInput,
    /// What is acted on.
    resource: EntityRefInput,
    /// Roles the principal holds in this organization count too (besides global ones).
    organization_id: Option<ID>,
    /// The request context, a JSON object (Cedar JSON value syntax).
    context: Option<Json<serde_json::Value>>,
    /// Your entities in Cedar JSON format (an array of `{uid, attrs, parents}`): the resource, its
    /// parents, and other principals.
    entities: Option<Json<serde_json::Value>>,
}

/// Allow or deny.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DecisionKind {
    Allow,
    Deny,
}

/// A policy that determined a decision.
#[derive(SimpleObject)]
pub struct DeterminingPolicy {
    /// The stored policy (or, for a role's permissions, the role); null for built-in policies.
    id: Option<ID>,
    /// Its name, e.g. a policy's name or `role org_admin`.
    name: String,
}

/// The engine's answer, with its explanation.
#[derive(SimpleObject)]
pub struct Decision {
    /// True when the request is permitted.
    allowed: bool,
    decision: DecisionKind,
    /// The permits that allowed it, or the forbids that denied it; empty for a default deny.
    determining_policies: Vec<DeterminingPolicy>,
    /// Policies that failed to evaluate for this request (skipped).
    errors: Vec<String>,
    /// The authorization version the decision was made at.
    policy_version: i64,
}

impl From<Outcome> for Decision {
    fn from(outcome: Outcome) -> Self {
        Self {
            allowed: outcome.allowed,
            decision: if outcome.allowed {
                DecisionKind::Allow
            } else {
                DecisionKind::Deny
            },
            determining_policies: outcome
                .determining
                .into_iter()
                .map(|origin| DeterminingPolicy {
                    id: origin.id.map(to_id),
                    name: origin.name,
                })
                .collect(),
            errors: outcome.errors,
            policy_version: outcome.policy_version,
        }
    }
}

impl AuthorizeInput {
    fn into_request(self, prefix: &str) -> Result<AuthorizeRequest, Error> {
        let reference = |r: EntityRefInput| EntityRef {
            type_name: r.type_name,
            id: r.id,
        };
        Ok(AuthorizeRequest {
            principal: self.principal.map(reference),
            action: reference(self.action),
            resource: reference(self.resource),
            organization_id: self
                .organization_id
                .as_ref()
                .map(|id| parse_id(&format!("{prefix}organizationId"), id))
                .transpose()?,
            context: self.context.map(|json| json.0),
            entities: self.entities.map(|json| json.0),
        })
    }
}

#[derive(Default)]
pub struct AuthorizeQuery;

#[Object]
impl AuthorizeQuery {
    /// Asks the engine whether a principal may take an action on a resource, and why.
    async fn authorize(&self, ctx: &Context<'_>, input: AuthorizeInput) -> async_graphql::Result<Decision> {
        let request = input.into_request("")?;
        let outcome = authorize::authorize(ctx.app()?, ctx.actor()?, request).await?;
        Ok(outcome.into())
    }

    /// Up to 100 questions in one call; answers come in the same order.
    async fn authorize_batch(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<AuthorizeInput>,
    ) -> async_graphql::Result<Vec<Decision>> {
        let requests = inputs
            .into_iter()
            .enumerate()
            .map(|(i, input)| input.into_request(&format!("inputs.{i}.")))
            .collect::<Result<Vec<_>, _>>()?;
        let outcomes = authorize::authorize_batch(ctx.app()?, ctx.actor()?, requests).await?;
        Ok(outcomes.into_iter().map(Into::into).collect())
    }
}
