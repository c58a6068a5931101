//! The gateway guarding itself: every operation is a Cedar request decided by the engine.

use std::collections::{HashMap, HashSet};

use cedar_policy::{Context, Decision, Entities, Entity, EntityUid, Request, RestrictedExpression};
use chrono::SecondsFormat;

use super::actions::Action;
use super::engine::{Engine, PrincipalAttrs};
use crate::app::App;
use crate::audit::{self, Target};
use crate::db::Id;
use crate::error::{Error, Result};
use crate::identity::{Actor, Mfa};

/// What a gateway operation acts on. Its organization decides which of the caller's roles count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The gateway as a whole (listing, creating, policies, global roles).
    Gateway,
    /// A user account and what hangs off it (sessions, API keys).
    User(Id),
    Organization(Id),
}

impl Resource {
    fn organization(self) -> Option<Id> {
        match self {
            Self::Organization(id) => Some(id),
            Self::Gateway | Self::User(_) => None,
        }
    }
}

/// FORBIDDEN unless the engine allows `actor` to take `action` on `resource` — or MFA_REQUIRED
/// when a session caller would be allowed with a second factor just proved (a step-up).
pub async fn check(app: &App, actor: &Actor, action: Action, resource: Resource) -> Result<()> {
    if allows(app, actor, action, resource).await? {
        return Ok(());
    }
    let refusal = if could_step_up(app, actor, action, resource).await? {
        Error::MfaRequired
    } else {
        Error::Forbidden
    };
    tracing::debug!(actor = %actor.user_id(), action = action.name(), ?resource, "denied");
    let (target_type, target_id) = match resource {
        Resource::Gateway => ("gateway", "gateway".to_owned()),
        Resource::User(id) => ("user", id.to_string()),
        Resource::Organization(id) => ("organization", id.to_string()),
    };
    let target = Target::new(target_type, target_id, None);
    audit::denials::deny(app, actor, action.name(), resource.organization(), target).await?;
    Err(refusal)
}

/// Whether a signed-in caller would be allowed right after a step-up (a second factor proved
/// now: `context.mfa`, and `context.mfaAgeSeconds` 0): the refusal then says MFA_REQUIRED, so the
/// client knows a passkey gesture fixes it. API keys cannot step up.
async fn could_step_up(app: &App, actor: &Actor, action: Action, resource: Resource) -> Result<bool> {
    if actor.session_id.is_none() {
        return Ok(false);
    }
    let stepped_up = Actor {
        mfa: Mfa {
            verified: true,
            verified_at: Some(app.now()),
        },
        ..actor.clone()
    };
    allows(app, &stepped_up, action, resource).await
}

/// The engine's decision, without the error.
///
/// Most gateway decisions are made by role permissions alone, which have no conditions; such a
/// decision is remembered until the authorization version moves, since nothing else can change
/// it. Decisions that involve a condition (an administrator's `forbid … unless { context.mfa }`,
/// say) are made afresh every time, with the request's context.
pub async fn allows(app: &App, actor: &Actor, action: Action, resource: Resource) -> Result<bool> {
    let engine: &Engine = &app.engine;
    let state = engine.state();
    let question = (actor.user_id(), action, resource);
    if let Some(known) = engine.remembered(state.version, question) {
        return Ok(known);
    }
    let types = engine.types();
    let holdings = engine.holdings(&app.db, actor.user_id()).await?;
    let parents = engine.parents(&holdings, resource.organization());

    let principal = types.user(actor.user_id());
    let resource_uid = match resource {
        Resource::Gateway => types.gateway(),
        Resource::User(id) => types.user(id),
        Resource::Organization(id) => types.organization(id),
    };
    let action_uid = types.action(action);
    let attrs = PrincipalAttrs {
        email: actor.user.email.clone(),
        status: actor.user.status.as_str().to_owned(),
    };
    let mut entities = vec![principal_entity(principal.clone(), &attrs, parents.clone())?];
    if resource_uid != principal {
        entities.push(Entity::new_no_attrs(resource_uid.clone(), HashSet::new()));
    }
    let entities = Entities::from_entities(entities, None).map_err(Error::internal)?;
    let slice = state
        .index
        .slice(&principal, &parents, &action_uid, &resource_uid, &entities);
    let context = if slice.unconditional {
        Context::empty()
    } else {
        request_context(app, actor)?
    };
    let request =
        Request::new(principal, action_uid, resource_uid, context, None).map_err(Error::internal)?;
    let response = engine.decide(&slice, &request, &entities);
    for error in response.diagnostics().errors() {
        tracing::warn!(%error, action = action.name(), "policy evaluation error");
    }
    let allowed = response.decision() == Decision::Allow;
    if slice.unconditional {
        engine.remember(state.version, question, allowed);
    }
    Ok(allowed)
}

/// The principal: a `Portcullis::User` with its email and status, in the roles that count.
pub(crate) fn principal_entity(
    uid: EntityUid,
    attrs: &PrincipalAttrs,
    parents: HashSet<EntityUid>,
) -> Result<Entity> {
    let attrs = HashMap::from([
        (
            "email".to_owned(),
            RestrictedExpression::new_string(attrs.email.clone()),
        ),
        (
            "status".to_owned(),
            RestrictedExpression::new_string(attrs.status.clone()),
        ),
    ]);
    Entity::new(uid, attrs, parents).map_err(Error::internal)
}

/// `{authMethod, mfa, mfaAgeSeconds?, ip?, now}` for a request by `actor`.
pub(crate) fn request_context(app: &App, actor: &Actor) -> Result<Context> {
    let mut pairs = vec![
        (
            "authMethod".to_owned(),
            RestrictedExpression::new_string(actor.method.as_str().to_owned()),
        ),
        (
            "mfa".to_owned(),
            RestrictedExpression::new_bool(actor.mfa.verified),
        ),
        (
            "now".to_owned(),
            RestrictedExpression::new_datetime(app.now().0.to_rfc3339_opts(SecondsFormat::Millis, true)),
        ),
    ];
    if let Some(verified_at) = actor.mfa.verified_at {
        let age = (app.now().0 - verified_at.0).num_seconds().max(0);
        pairs.push(("mfaAgeSeconds".to_owned(), RestrictedExpression::new_long(age)));
    }
    if let Some(ip) = actor
        .client
        .ip
        .as_deref()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
    {
        pairs.push(("ip".to_owned(), RestrictedExpression::new_ip(ip)));
    }
    Context::from_pairs(pairs).map_err(Error::internal)
}
