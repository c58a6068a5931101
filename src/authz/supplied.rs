//! The entities an integrator supplies with a question: read (through the entity cache), checked
//! against the gateway's namespace, and closed together with the schema's action entities — as
//! Cedar would close the one array made of the batch's shared entities, the question's own and
//! the actions.

use std::sync::Arc;

use cedar_policy::Entities;

use super::engine::State;
use super::entity_cache::ReadSet;
use super::{Engine, cedar_json};
use crate::error::{Error, Result};

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
    pub fn field(&self) -> &'static str {
        match self {
            Self::Value(_) => "entities",
            Self::Text(_) => "entitiesJson",
        }
    }
}

/// The entity set a question is decided with, and whether it came whole from the entity cache
/// (and so may be met again, which lets the principal's seat in it be kept).
pub struct Supplied {
    pub entities: Arc<Entities>,
    pub reusable: bool,
}

/// The batch's `shared` set and the question's `own` combined (either may be absent), with the
/// schema's actions. Errors name `field`.
pub fn combine(
    state: &State,
    shared: Option<&Arc<ReadSet>>,
    own: Option<&Arc<ReadSet>>,
    field: impl FnOnce() -> String,
) -> Result<Supplied> {
    Ok(match (shared, own) {
        (None, None) => Supplied {
            entities: state.actions.clone(),
            reusable: true,
        },
        (Some(one), None) | (None, Some(one)) => Supplied {
            entities: one.closed.clone(),
            reusable: true,
        },
        (Some(shared), Some(own)) => {
            let given = shared.given.iter().chain(&own.given);
            let entities = cedar_json::close(given, state.actions.iter())
                .map_err(|message| Error::bad_input(field(), message))?;
            Supplied {
                entities: Arc::new(entities),
                reusable: false,
            }
        }
    })
}

/// An integrator's entity set, from the engine's cache when the same JSON was read before with
/// the schema in force.
pub fn read(engine: &Engine, state: &State, source: &EntitiesJson, field: &str) -> Result<Arc<ReadSet>> {
    let sets = engine.entity_sets();
    let generation = state.schema_generation;
    match source {
        EntitiesJson::Value(json) => sets.get_or_parse(generation, &json.to_string(), || {
            parse(json, engine, state, field)
        }),
        EntitiesJson::Text(text) => sets.get_or_parse(generation, text, || {
            let json = serde_json::from_str(text)
                .map_err(|e| Error::bad_input(field, format!("not valid JSON: {e}")))?;
            parse(&json, engine, state, field)
        }),
    }
}

/// Reads an integrator's entities, refusing any that define gateway entities or name them as
/// parents (the gateway's own entities, such as roles, come only from the gateway).
fn parse(json: &serde_json::Value, engine: &Engine, state: &State, field: &str) -> Result<ReadSet> {
    let types = engine.types();
    let given = cedar_json::entities(json, engine.type_names()).map_err(|e| Error::bad_input(field, e))?;
    if given.iter().any(|e| types.is_gateway_type(e.uid().type_name())) {
        return Err(Error::bad_input(
            field,
            "Portcullis:: entities are supplied by the gateway; pass only your own",
        ));
    }
    let closed = cedar_json::close(&given, state.actions.iter()).map_err(|e| Error::bad_input(field, e))?;
    let claims_gateway_parent = given.iter().any(|e| {
        closed
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
    Ok(ReadSet {
        given,
        closed: Arc::new(closed),
    })
}
