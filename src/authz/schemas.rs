//! Integrators' Cedar schema fragments: one per namespace, validated with everything in force.

use super::Action;
use super::diagnostics::Problem;
use super::guard::{self, Resource};
use super::policies::recheck_all;
use super::schema::{GATEWAY_NAMESPACE, combine, parse_fragment};
use crate::app::App;
use crate::audit::{self, AuditAction, Event, Target};
use crate::db::models::CedarSchemaRow;
use crate::db::{cedar_schemas, policies};
use crate::error::{Error, Result};
use crate::identity::Actor;

/// Stores (or replaces) the fragment of `namespace`. It must declare exactly that namespace,
/// combine with the gateway schema and the other fragments, and keep every enabled policy valid.
pub async fn put(app: &App, actor: &Actor, namespace: &str, source: &str) -> Result<CedarSchemaRow> {
    guard::check(app, actor, Action::CedarSchemaWrite, Resource::Gateway).await?;
    let namespace = namespace.trim();
    if namespace.is_empty() || namespace == GATEWAY_NAMESPACE {
        return Err(Error::bad_input(
            "namespace",
            format!("must name your own namespace (not empty, not {GATEWAY_NAMESPACE})"),
        ));
    }
    let invalid = |problems: Vec<Problem>| Error::InvalidCedar {
        field: "source".to_owned(),
        problems,
    };
    let fragment = parse_fragment(source).map_err(invalid)?;
    let declared: Vec<String> = fragment
        .namespaces()
        .map(|ns| ns.map(|n| n.to_string()).unwrap_or_default())
        .collect();
    if declared != [namespace] {
        return Err(Error::bad_input(
            "source",
            format!("must declare exactly `namespace {namespace} {{ … }}` (found: {declared:?})"),
        ));
    }
    let mut conn = app.db.conn().await?;
    let others = cedar_schemas::all(&mut conn).await?;
    let sources = others
        .iter()
        .filter(|row| row.namespace != namespace)
        .map(|row| row.source.as_str())
        .chain([source]);
    let schema = combine(sources).map_err(invalid)?;
    let enabled = policies::all_enabled(&mut conn).await?;
    let broken = recheck_all(&schema, &enabled);
    if !broken.is_empty() {
        return Err(invalid(broken));
    }
    let row = CedarSchemaRow {
        namespace: namespace.to_owned(),
        source: source.to_owned(),
        updated_by: Some(actor.user_id()),
        updated_at: app.now(),
    };
    let event = Event::by(actor, AuditAction::CedarSchemaPut)
        .target(Target::new("cedar_schema", namespace, namespace.to_owned()))
        .with("source", source);
    conn.transaction(async |tx| {
        cedar_schemas::upsert(tx, &row).await?;
        cedar_schemas::bump_version(tx).await?;
        audit::record(tx, row.updated_at, event).await
    })
    .await?;
    app.engine.refresh(&app.db).await?;
    Ok(row)
}

/// Every registered fragment.
pub async fn list(app: &App, actor: &Actor) -> Result<Vec<CedarSchemaRow>> {
    guard::check(app, actor, Action::CedarSchemaRead, Resource::Gateway).await?;
    let mut conn = app.db.conn().await?;
    cedar_schemas::all(&mut conn).await
}
