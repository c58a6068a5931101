//! GraphQL types and resolvers of the `authorize` API for integrators.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};

use super::context::ContextExt;
use super::ids::{parse_id, to_id};
use crate::authz::authorize::{self, AuthorizeRequest, EntitiesJson, EntityRef, Outcome};
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
    /// The same as `entities`, as JSON text (like `cedarJson` in Verified Permissions); give one
    /// or the other. The cheaper form for large sets: the gateway reads the text once and
    /// recognises a set it has already read by its bytes.
    entities_json: Option<String>,
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

/// Why one question of a batch was not answered.
#[derive(SimpleObject)]
pub struct QuestionError {
    /// What went wrong, as in `extensions.code`: `BAD_USER_INPUT`, `FORBIDDEN`, `NOT_FOUND`, …
    code: String,
    /// The input at fault, e.g. `inputs.3.context`, when there is one.
    field: Option<String>,
    message: String,
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
    /// In `authorizeBatch`: set when this question could not be asked (say, its context is not a
    /// record, or you may not ask about its principal). It is then answered DENY, by no policy;
    /// the other questions are answered as usual.
    error: Option<QuestionError>,
}

impl Decision {
    /// The place of a question of a batch that could not be asked.
    fn refused(error: &Error, policy_version: i64) -> Self {
        Self {
            allowed: false,
            decision: DecisionKind::Deny,
            determining_policies: Vec::new(),
            errors: Vec::new(),
            policy_version,
            error: Some(QuestionError {
                code: error.code().as_str().to_owned(),
                field: error.field().map(str::to_owned),
                message: error.message(),
            }),
        }
    }
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
            error: None,
        }
    }
}

/// `entities` or `entitiesJson`, refusing both at once.
fn entities_source(
    prefix: &str,
    value: Option<Json<serde_json::Value>>,
    text: Option<String>,
) -> Result<Option<EntitiesJson>, Error> {
    match (value, text) {
        (Some(_), Some(_)) => Err(Error::bad_input(
            format!("{prefix}entitiesJson"),
            "give `entities` or `entitiesJson`, not both",
        )),
        (Some(value), None) => Ok(Some(EntitiesJson::Value(value.0))),
        (None, Some(text)) => Ok(Some(EntitiesJson::Text(text))),
        (None, None) => Ok(None),
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
            entities: entities_source(prefix, self.entities, self.entities_json)?,
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

    /// Up to 100 questions in one call; answers come in the same order. `entities` (or
    /// `entitiesJson`) here count for every question, besides each question's own. A question that
    /// cannot be asked gets its `error` in its place; the others are answered.
    async fn authorize_batch(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<AuthorizeInput>,
        entities: Option<Json<serde_json::Value>>,
        entities_json: Option<String>,
    ) -> async_graphql::Result<Vec<Decision>> {
        let shared = entities_source("", entities, entities_json)?;
        let requests = inputs
            .into_iter()
            .enumerate()
            .map(|(i, input)| input.into_request(&format!("inputs.{i}.")))
            .collect();
        let app = ctx.app()?;
        let outcomes = authorize::authorize_batch(app, ctx.actor()?, requests, shared).await?;
        let version = app.engine.version();
        Ok(outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Ok(outcome) => outcome.into(),
                Err(error) => Decision::refused(&error, version),
            })
            .collect())
    }
}
