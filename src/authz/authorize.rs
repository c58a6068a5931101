//! The `authorize` API: integrators ask the engine about their own principals, actions and
//! resources, passing the entities (with parents and attributes) the decision needs.

use std::sync::Arc;

use cedar_policy::{Context, Decision, Entities, EntityId, EntityUid, Request};

use super::compile::Origin;
use super::engine::State;
use super::entity_cache::ReadSet;
use super::guard::{self, Resource, principal_entity};
use super::principal_sets::WithPrincipal;
pub use super::supplied::EntitiesJson;
use super::{Action, Engine, cedar_json, supplied};
use crate::app::App;
use crate::db::Id;
use crate::error::{Error, Result};
use crate::identity::Actor;

/// At most this many requests in one `authorizeBatch`.
pub const MAX_BATCH: usize = 100;

/// `Type::"id"`, as two strings.
#[derive(Debug, Clone)]
pub struct EntityRef {
    pub type_name: String,
    pub id: String,
}

/// One question for the engine.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// Defaults to the caller (`Portcullis::User::"<id>"`).
    pub principal: Option<EntityRef>,
    pub action: EntityRef,
    pub resource: EntityRef,
    /// The roles the principal holds in this organization count too (besides global ones).
    pub organization_id: Option<Id>,
    /// A JSON object, the request's `context`.
    pub context: Option<serde_json::Value>,
    /// The resource, its parents, other principals.
    pub entities: Option<EntitiesJson>,
}

/// The engine's answer, with what decided it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub allowed: bool,
    /// The policies that made the decision (for a deny, the forbids; none for default deny).
    pub determining: Vec<Origin>,
    /// Policies that failed to evaluate (they are skipped, not fatal).
    pub errors: Vec<String>,
    /// The authorization version the decision was made at.
    pub policy_version: i64,
}

pub async fn authorize(app: &App, actor: &Actor, request: AuthorizeRequest) -> Result<Outcome> {
    let mut permitted = Permitted::default();
    let state = app.engine.state();
    decide(app, &state, actor, request, None, "", &mut permitted).await
}

/// Up to [`MAX_BATCH`] requests (as read from input), answered in order, each on its own: a
/// question that could not be read or cannot be asked (a malformed context or entity set, a principal the caller may not ask about) gets its
/// error in its place while the others are answered. `shared` entities count for every request,
/// besides each request's own; an invalid shared set fails the whole call.
pub async fn authorize_batch(
    app: &App,
    actor: &Actor,
    requests: Vec<Result<AuthorizeRequest>>,
    shared: Option<EntitiesJson>,
) -> Result<Vec<Result<Outcome>>> {
    if requests.is_empty() || requests.len() > MAX_BATCH {
        return Err(Error::bad_input(
            "inputs",
            format!("must hold between 1 and {MAX_BATCH} requests"),
        ));
    }
    let state = app.engine.state();
    let shared = shared
        .map(|source| supplied::read(&app.engine, &state, &source, source.field()))
        .transpose()?;
    let mut permitted = Permitted::default();
    let mut outcomes = Vec::with_capacity(requests.len());
    for (index, request) in requests.into_iter().enumerate() {
        let prefix = format!("inputs.{index}.");
        let outcome = match request {
            Ok(request) => {
                decide(
                    app,
                    &state,
                    actor,
                    request,
                    shared.as_ref(),
                    &prefix,
                    &mut permitted,
                )
                .await
            }
            Err(unreadable) => Err(unreadable),
        };
        if let Err(Error::Internal(_)) = &outcome {
            return outcome.map(|_| Vec::new()); // the gateway failed, not the question
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Whether the caller may ask for itself / for anyone, learned once per call.
#[derive(Default)]
struct Permitted {
    own: Option<bool>,
    any: Option<bool>,
}

async fn decide(
    app: &App,
    state: &State,
    actor: &Actor,
    request: AuthorizeRequest,
    shared: Option<&Arc<ReadSet>>,
    prefix: &str,
    permitted: &mut Permitted,
) -> Result<Outcome> {
    let engine = &app.engine;
    let types = engine.types();
    let field = |name: &str| format!("{prefix}{name}");
    let caller = types.user(actor.user_id());
    let principal = match &request.principal {
        Some(reference) => parse_uid(engine, reference, &field("principal"))?,
        None => caller.clone(),
    };
    let allowed_to_ask = if principal == caller {
        cached(&mut permitted.own, || {
            guard::allows(app, actor, Action::AuthorizeSelf, Resource::Gateway)
        })
        .await?
    } else {
        cached(&mut permitted.any, || {
            guard::allows(app, actor, Action::AuthorizeAny, Resource::Gateway)
        })
        .await?
    };
    if !allowed_to_ask {
        return Err(Error::Forbidden);
    }
    let action = parse_uid(engine, &request.action, &field("action"))?;
    let resource = parse_uid(engine, &request.resource, &field("resource"))?;

    let own = match &request.entities {
        None | Some(EntitiesJson::Value(serde_json::Value::Null)) => None,
        Some(source) => Some(supplied::read(engine, state, source, &field(source.field()))?),
    };
    let entities_field = || field(request.entities.as_ref().map_or("entities", EntitiesJson::field));
    let supplied = supplied::combine(state, shared, own.as_ref(), entities_field)?;
    let seated = if principal.type_name() == types.user_type() {
        let user = if principal == caller {
            actor.user_id()
        } else {
            portcullis_user_id(&principal, &field("principal"))?
        };
        let seat = Seat {
            set: &supplied.entities,
            reusable: supplied.reusable,
            user,
            organization: request.organization_id,
        };
        Some(with_principal(app, state, seat, entities_field).await?)
    } else {
        None
    };
    let (entities, roles) = match &seated {
        Some(seated) => (&*seated.entities, &seated.roles),
        None => (&*supplied.entities, engine.no_roles()),
    };
    let context = match request.context {
        None | Some(serde_json::Value::Null) => Context::empty(),
        Some(json) => cedar_json::context(json, engine.type_names())
            .map_err(|e| Error::bad_input(field("context"), e))?,
    };
    let cedar_request = Request::new(principal.clone(), action.clone(), resource.clone(), context, None)
        .map_err(|e| Error::bad_input(field("action"), e.to_string()))?;

    let slice = state.index.slice(&principal, roles, &action, &resource, entities);
    let response = engine.decide(&slice, &cedar_request, entities);
    let mut determining: Vec<Origin> = response
        .diagnostics()
        .reason()
        .map(|id| {
            state.compiled.origins.get(id).cloned().unwrap_or_else(|| Origin {
                id: None,
                name: id.to_string(),
            })
        })
        .collect();
    determining.sort_by(|a, b| a.name.cmp(&b.name));
    let errors = response.diagnostics().errors().map(|e| e.to_string()).collect();
    Ok(Outcome {
        allowed: response.decision() == Decision::Allow,
        determining,
        errors,
        policy_version: state.version,
    })
}

/// Where a gateway user is seated as the principal: an entity set, and the request's organization.
struct Seat<'a> {
    set: &'a Arc<Entities>,
    /// Whether the set came whole from the entity cache (and so may be met again).
    reusable: bool,
    user: Id,
    organization: Option<Id>,
}

/// The set with the user's entity in it, parented by the roles that count in the organization;
/// kept for the next question about the same set, user and organization.
async fn with_principal(
    app: &App,
    state: &State,
    seat: Seat<'_>,
    field: impl FnOnce() -> String,
) -> Result<Arc<WithPrincipal>> {
    let engine = &app.engine;
    let sets = engine.principal_sets();
    let version = state.version;
    if seat.reusable
        && let Some(found) = sets.get(version, seat.set, seat.user, seat.organization)
    {
        return Ok(found);
    }
    let holdings = engine.holdings(&app.db, seat.user).await?;
    let roles = engine.parents(&holdings, seat.organization);
    let principal = principal_entity(engine.types().user(seat.user), &holdings.attrs, roles.clone())?;
    let entities = Entities::clone(seat.set)
        .add_entities([principal], None)
        .map_err(|e| Error::bad_input(field(), e.to_string()))?;
    let seated = Arc::new(WithPrincipal {
        entities: Arc::new(entities),
        roles,
    });
    if seat.reusable {
        sets.keep(version, seat.set, seat.user, seat.organization, seated.clone());
    }
    Ok(seated)
}

async fn cached<F, Fut>(slot: &mut Option<bool>, ask: F) -> Result<bool>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    if let Some(known) = *slot {
        return Ok(known);
    }
    let answer = ask().await?;
    *slot = Some(answer);
    Ok(answer)
}

/// The entity a reference names. Ids of the gateway's own users, roles and organizations must be
/// spelled canonically: the gateway seats a user by their id, and Cedar compares ids as text, so
/// another spelling of one user would be half that user.
fn parse_uid(engine: &Engine, reference: &EntityRef, field: &str) -> Result<EntityUid> {
    let type_name = engine
        .type_names()
        .parse(reference.type_name.trim())
        .map_err(|e| Error::bad_input(field, format!("type: {e}")))?;
    let uid = EntityUid::from_type_name_and_id(type_name, EntityId::new(&reference.id));
    if let Some(problem) = engine.types().non_canonical(&uid) {
        return Err(Error::bad_input(field, problem));
    }
    Ok(uid)
}

/// The id of a `Portcullis::User` principal other than the caller.
fn portcullis_user_id(uid: &EntityUid, field: &str) -> Result<Id> {
    uid.id()
        .unescaped()
        .parse()
        .map_err(|_| Error::bad_input(field, "a Portcullis::User id must be a user's ID"))
}
