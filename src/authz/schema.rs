//! The Cedar schema in force: the gateway's own namespace plus integrators' fragments.

use cedar_policy::{Schema, SchemaFragment};

use super::diagnostics::{Problem, problems_of};
use crate::db::models::CedarSchemaRow;

/// The gateway's own namespace, shipped in the repository (`cedar/portcullis.cedarschema`).
pub const GATEWAY_SCHEMA: &str = include_str!("../../cedar/portcullis.cedarschema");

/// The namespace integrators may not register fragments for.
pub const GATEWAY_NAMESPACE: &str = "Portcullis";

/// Parses one fragment, reporting problems with their location.
pub fn parse_fragment(source: &str) -> Result<SchemaFragment, Vec<Problem>> {
    SchemaFragment::from_cedarschema_str(source)
        .map(|(fragment, _warnings)| fragment)
        .map_err(|error| problems_of(&error, source))
}

/// The schema made of the gateway fragment and `extra` fragments (stored ones, or a candidate).
pub fn combine<'a>(extra: impl IntoIterator<Item = &'a str>) -> Result<Schema, Vec<Problem>> {
    let mut fragments = vec![parse_fragment(GATEWAY_SCHEMA)?];
    for source in extra {
        fragments.push(parse_fragment(source)?);
    }
    Schema::from_schema_fragments(fragments).map_err(|error| problems_of(&error, ""))
}

/// The schema of the stored fragments; on a stored fragment that no longer parses, the gateway
/// schema alone (and the problem logged), so a bad row cannot stop authorization.
pub fn from_rows(rows: &[CedarSchemaRow]) -> Result<Schema, Vec<Problem>> {
    match combine(rows.iter().map(|row| row.source.as_str())) {
        Ok(schema) => Ok(schema),
        Err(problems) => {
            tracing::error!(
                ?problems,
                "stored Cedar schema fragments do not combine; using the gateway schema only"
            );
            combine([])
        }
    }
}
