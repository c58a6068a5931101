//! The `authorize` API: integrators ask the engine about their own principals, actions and
//! resources, passing the entities (with parents and attributes) the decision needs.

use std::sync::Arc;

use cedar_policy::{Context, Decision, Entities, EntityId, EntityUid, Request};

use super::compile::Origin;
use super::guard::{self, Resource, principal_entity};
use super::principal_sets::WithPrincipal;
use super::{Action, Engine, cedar_json};
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

/// Integrators' entities in Cedar's JSON entity format: an array of `{uid, attrs, parents}`.
#[derive(Debug, Clone)]
pub enum EntitiesJson {
    /// As a JSON value (the GraphQL `entities` field).
    Value(serde_json::Value),
    /// As JSON text (the GraphQL `entitiesJson` field): read once and recognised by its bytes
    /// afterwards, the cheaper form for large sets.
    Text(String),
}

impl EntitiesJson {
    /// The GraphQL field this form arrives in, for errors.
    fn field(&self) -> &'static str {
        match self {
            Self::Value(_) => "entities",
            Self::Text(_) => "entitiesJson",
        }
    }
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
    decide(app, actor, request, None, "", &mut permitted).await
}

/// Up to [`MAX_BATCH`] requests, answered in order. `shared` entities count for every request,
/// besides each request's own.
pub async fn authorize_batch(
    app: &App,
    actor: &Actor,
    requests: Vec<AuthorizeRequest>,
    shared: Option<EntitiesJson>,
) -> Result<Vec<Outcome>> {
    if requests.is_empty() || requests.len() > MAX_BATCH {
        return Err(Error::bad_input(
            "inputs",
            format!("must hold between 1 and {MAX_BATCH} requests"),
        ));
    }
    let shared = shared
        .map(|source| read_entities(&app.engine, &source, source.field()))
        .transpose()?;
    let mut permitted = Permitted::default();
    let mut outcomes = Vec::with_capacity(requests.len());
    for (index, request) in requests.into_iter().enumerate() {
        let prefix = format!("inputs.{index}.");
        outcomes.push(decide(app, actor, request, shared.as_ref(), &prefix, &mut permitted).await?);
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
    actor: &Actor,
    request: AuthorizeRequest,
    shared: Option<&Arc<Entities>>,
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
        Some(source) => Some(read_entities(engine, source, &field(source.field()))?),
    };
    let entities_field = || field(request.entities.as_ref().map_or("entities", EntitiesJson::field));
    // Sets read through the entity cache are recognised again; a merge of shared and own is not.
    let (supplied, reusable) = match (shared, own) {
        (None, None) => (engine.no_entities(), true),
        (Some(shared), None) => (shared.clone(), true),
        (None, Some(own)) => (own, true),
        (Some(shared), Some(own)) => {
            let merged = Entities::clone(shared)
                .add_entities(own.iter().cloned(), None)
                .map_err(|e| Error::bad_input(entities_field(), e.to_string()))?;
            (Arc::new(merged), false)
        }
    };
    let seated = if principal.type_name() == types.user_type() {
        let user = if principal == caller {
            actor.user_id()
        } else {
            portcullis_user_id(&principal, &field("principal"))?
        };
        let seat = Seat {
            set: &supplied,
            reusable,
            user,
            organization: request.organization_id,
        };
        Some(with_principal(app, seat, entities_field).await?)
    } else {
        None
    };
    let (entities, roles) = match &seated {
        Some(seated) => (&*seated.entities, &seated.roles),
        None => (&*supplied, engine.no_roles()),
    };
    let context = match request.context {
        None | Some(serde_json::Value::Null) => Context::empty(),
        Some(json) => cedar_json::context(json, engine.type_names())
            .map_err(|e| Error::bad_input(field("context"), e))?,
    };
    let cedar_request = Request::new(principal.clone(), action.clone(), resource.clone(), context, None)
        .map_err(|e| Error::bad_input(field("action"), e.to_string()))?;

    let state = engine.state();
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
    seat: Seat<'_>,
    field: impl FnOnce() -> String,
) -> Result<Arc<WithPrincipal>> {
    let engine = &app.engine;
    let sets = engine.principal_sets();
    let version = engine.version();
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

/// An integrator's entity set, from the engine's cache when the same JSON was read before.
fn read_entities(engine: &Engine, source: &EntitiesJson, field: &str) -> Result<Arc<Entities>> {
    let sets = engine.entity_sets();
    match source {
        EntitiesJson::Value(json) => {
            sets.get_or_parse(&json.to_string(), || parse_entities(json, engine, field))
        }
        EntitiesJson::Text(text) => sets.get_or_parse(text, || {
            let json = serde_json::from_str(text)
                .map_err(|e| Error::bad_input(field, format!("not valid JSON: {e}")))?;
            parse_entities(&json, engine, field)
        }),
    }
}

/// Parses an integrator's entities, refusing any that define gateway entities or claim them as parents.
fn parse_entities(json: &serde_json::Value, engine: &Engine, field: &str) -> Result<Entities> {
    let types = engine.types();
    let supplied = cedar_json::entities(json, engine.type_names()).map_err(|e| Error::bad_input(field, e))?;
    if supplied
        .iter()
        .any(|e| types.is_gateway_type(e.uid().type_name()))
    {
        return Err(Error::bad_input(
            field,
            "Portcullis:: entities are supplied by the gateway; pass only your own",
        ));
    }
    let claims_gateway_parent = supplied.iter().any(|e| {
        supplied
            .ancestors(&e.uid())
            .into_iter()
            .flatten()
            .any(|ancestor| types.is_gateway_type(ancestor.type_name()))
    });
    if claims_gateway_parent {
        return Err(Error::bad_input(
            field,
            "your entities may not have Portcullis:: entities (such as roles) as parents",
        ));
    }
    Ok(supplied)
}

fn parse_uid(engine: &Engine, reference: &EntityRef, field: &str) -> Result<EntityUid> {
    let type_name = engine
        .type_names()
        .parse(reference.type_name.trim())
        .map_err(|e| Error::bad_input(field, format!("type: {e}")))?;
    Ok(EntityUid::from_type_name_and_id(
        type_name,
        EntityId::new(&reference.id),
    ))
}

/// The id of a `Portcullis::User` principal other than the caller.
fn portcullis_user_id(uid: &EntityUid, field: &str) -> Result<Id> {
    uid.id()
        .unescaped()
        .parse()
        .map_err(|_| Error::bad_input(field, "a Portcullis::User id must be a user's ID"))
}
