//! Cedar policies written by administrators: validated against the schema, versioned, toggled.

use cedar_policy::{Effect, Policy, PolicyId, PolicySet, SlotId, Template, ValidationMode, Validator};

use super::Action;
use super::diagnostics::{Problem, problems_of};
use super::engine::State;
use super::guard::{self, Resource};
use crate::app::App;
use crate::audit::{self, AuditAction, Event, Target};
use crate::db::models::PolicyRow;
use crate::db::policies::{self as rows, PolicyFilter};
use crate::db::{Id, Page, PageOf, cedar_schemas};
use crate::error::{Error, Result};
use crate::identity::{Actor, validate};

/// Largest accepted policy source.
const MAX_SOURCE_BYTES: usize = 64 * 1024;

/// What a piece of Cedar source turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// `static`, or `template` when it has a `?principal` slot.
    pub kind: &'static str,
    /// `permit` or `forbid`.
    pub effect: &'static str,
}

/// The result of checking source without saving it.
#[derive(Debug, Clone)]
pub struct Validation {
    pub checked: Option<Checked>,
    pub problems: Vec<Problem>,
}

/// A new policy.
#[derive(Debug, Clone)]
pub struct NewPolicy {
    pub name: String,
    pub description: Option<String>,
    pub source: String,
    pub enabled: bool,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PolicyChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub source: Option<String>,
    pub enabled: Option<bool>,
}

/// Parses one policy or template and validates it (strictly) against the schema in force.
pub fn check_source(state: &State, source: &str) -> std::result::Result<Checked, Vec<Problem>> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(vec![Problem {
            message: format!("source must be at most {MAX_SOURCE_BYTES} bytes"),
            line: None,
            column: None,
        }]);
    }
    let id = PolicyId::new("candidate");
    let mut set = PolicySet::new();
    // A static policy, or else a template; report the errors of whichever the author meant.
    let (kind, effect) = match Policy::parse(Some(id.clone()), source) {
        Ok(policy) => {
            let effect = policy.effect();
            set.add(policy).map_err(|e| problems_of(&e, source))?;
            ("static", effect)
        }
        Err(static_errors) => {
            let template = Template::parse(Some(id), source).map_err(|template_errors| {
                if source.contains('?') {
                    problems_of(&template_errors, source)
                } else {
                    problems_of(&static_errors, source)
                }
            })?;
            if template.slots().any(|slot| *slot != SlotId::principal()) {
                return Err(vec![Problem {
                    message: "only the ?principal slot is supported (it is linked to a role)".to_owned(),
                    line: None,
                    column: None,
                }]);
            }
            let effect = template.effect();
            set.add_template(template).map_err(|e| problems_of(&e, source))?;
            ("template", effect)
        }
    };
    let effect = match effect {
        Effect::Permit => "permit",
        Effect::Forbid => "forbid",
    };
    let validation = Validator::new(state.schema.clone()).validate(&set, ValidationMode::Strict);
    let problems: Vec<Problem> = validation
        .validation_errors()
        .flat_map(|error| problems_of(error, source))
        .collect();
    if problems.is_empty() {
        Ok(Checked { kind, effect })
    } else {
        Err(problems)
    }
}

/// Checks source without saving it.
pub async fn validate(app: &App, actor: &Actor, source: &str) -> Result<Validation> {
    guard::check(app, actor, Action::PolicyCreate, Resource::Gateway).await?;
    let state = app.engine.state();
    Ok(match check_source(&state, source) {
        Ok(checked) => Validation {
            checked: Some(checked),
            problems: Vec::new(),
        },
        Err(problems) => Validation {
            checked: None,
            problems,
        },
    })
}

pub async fn create(app: &App, actor: &Actor, new: NewPolicy) -> Result<PolicyRow> {
    guard::check(app, actor, Action::PolicyCreate, Resource::Gateway).await?;
    let name = validate::name("name", &new.name, 100)?;
    let description = validate::description(new.description)?;
    let checked = checked(app, &new.source)?;
    let now = app.now();
    let row = PolicyRow {
        id: Id::new_v7(),
        name,
        description,
        source: new.source,
        kind: checked.kind.to_owned(),
        effect: checked.effect.to_owned(),
        enabled: new.enabled,
        version: 1,
        created_by: Some(actor.user_id()),
        updated_by: Some(actor.user_id()),
        created_at: now,
        updated_at: now,
    };
    let event = Event::by(actor, AuditAction::PolicyCreated)
        .target(policy_target(&row))
        .with("source", &row.source)
        .with("enabled", row.enabled);
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        rows::insert(tx, &row).await?;
        cedar_schemas::bump_version(tx).await?;
        audit::record(tx, now, event).await
    })
    .await?;
    app.engine.refresh(&app.db).await?;
    Ok(row)
}

pub async fn update(app: &App, actor: &Actor, id: Id, changes: PolicyChanges) -> Result<PolicyRow> {
    guard::check(app, actor, Action::PolicyUpdate, Resource::Gateway).await?;
    let mut conn = app.db.conn().await?;
    let mut row = rows::find(&mut conn, id)
        .await?
        .ok_or(Error::NotFound("policy"))?;
    let before = row.clone();
    if let Some(name) = &changes.name {
        row.name = validate::name("name", name, 100)?;
    }
    if changes.description.is_some() {
        row.description = validate::description(changes.description)?;
    }
    if let Some(source) = changes.source {
        let checked = checked(app, &source)?;
        if row.kind == "template" && checked.kind == "static" {
            let linked = crate::db::roles::all_links(&mut conn).await?;
            if linked.iter().any(|link| link.policy_id == id) {
                return Err(Error::conflict(
                    "source",
                    "the policy is attached to roles as a template; keep its ?principal slot or detach it first",
                ));
            }
        }
        row.kind = checked.kind.to_owned();
        row.effect = checked.effect.to_owned();
        row.source = source;
    }
    if let Some(enabled) = changes.enabled {
        row.enabled = enabled;
    }
    row.version += 1;
    row.updated_by = Some(actor.user_id());
    row.updated_at = app.now();
    let event = Event::by(actor, AuditAction::PolicyUpdated)
        .target(policy_target(&row))
        .change("name", &before.name, &row.name)
        .change("description", &before.description, &row.description)
        .change("source", &before.source, &row.source)
        .change("enabled", before.enabled, row.enabled)
        .with("version", row.version);
    conn.transaction(async |tx| {
        rows::update(tx, &row).await?;
        cedar_schemas::bump_version(tx).await?;
        audit::record(tx, row.updated_at, event).await
    })
    .await?;
    app.engine.refresh(&app.db).await?;
    Ok(row)
}

/// Deletes the policy (and its links to roles); returns it as it was.
pub async fn delete(app: &App, actor: &Actor, id: Id) -> Result<PolicyRow> {
    guard::check(app, actor, Action::PolicyDelete, Resource::Gateway).await?;
    let mut conn = app.db.conn().await?;
    let row = conn
        .transaction(async |tx| {
            let row = rows::find(tx, id).await?.ok_or(Error::NotFound("policy"))?;
            rows::delete(tx, id).await?;
            cedar_schemas::bump_version(tx).await?;
            let event = Event::by(actor, AuditAction::PolicyDeleted)
                .target(policy_target(&row))
                .with("source", &row.source);
            audit::record(tx, app.now(), event).await?;
            Ok(row)
        })
        .await?;
    app.engine.refresh(&app.db).await?;
    Ok(row)
}

pub async fn get(app: &App, actor: &Actor, id: Id) -> Result<Option<PolicyRow>> {
    guard::check(app, actor, Action::PolicyRead, Resource::Gateway).await?;
    let mut conn = app.db.conn().await?;
    rows::find(&mut conn, id).await
}

pub async fn list(app: &App, actor: &Actor, filter: &PolicyFilter, page: &Page) -> Result<PageOf<PolicyRow>> {
    guard::check(app, actor, Action::PolicyRead, Resource::Gateway).await?;
    let mut conn = app.db.reader().await?;
    rows::list(&mut conn, filter, page).await
}

/// Checks source against the schema in force, as BAD_USER_INPUT on `source` listing every problem.
fn checked(app: &App, source: &str) -> Result<Checked> {
    let state = app.engine.state();
    check_source(&state, source).map_err(|problems| Error::InvalidCedar {
        field: "source".to_owned(),
        problems,
    })
}

/// Re-checks the stored enabled policies against a candidate schema (before it replaces the one in
/// force); problems name the policy.
pub(crate) fn recheck_all(schema: &cedar_policy::Schema, policies: &[PolicyRow]) -> Vec<Problem> {
    let validator = Validator::new(schema.clone());
    let mut problems = Vec::new();
    for policy in policies {
        let id = PolicyId::new(policy.id.to_string());
        let mut set = PolicySet::new();
        let added = if policy.kind == "template" {
            Template::parse(Some(id), &policy.source)
                .ok()
                .and_then(|t| set.add_template(t).ok())
        } else {
            Policy::parse(Some(id), &policy.source)
                .ok()
                .and_then(|p| set.add(p).ok())
        };
        if added.is_none() {
            continue;
        }
        let result = validator.validate(&set, ValidationMode::Strict);
        for error in result.validation_errors() {
            for mut problem in problems_of(error, &policy.source) {
                problem.message = format!("policy \"{}\": {}", policy.name, problem.message);
                problems.push(problem);
            }
        }
    }
    problems
}

/// A policy as an audit target.
pub(crate) fn policy_target(row: &PolicyRow) -> Target {
    Target::new("policy", row.id, row.name.clone())
}
