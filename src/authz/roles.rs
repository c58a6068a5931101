//! Roles: named sets of gateway permissions, global or per organization, compiled to Cedar; and
//! policy templates attached to them.

use super::Action;
use super::grants;
use super::guard::{self, Resource};
use super::policies::policy_target;
use crate::app::App;
use crate::audit::{self, AuditAction, Event, Target};
use crate::db::models::{PolicyRow, RolePolicyRow, RoleRow};
use crate::db::roles::{self as rows, RoleFilter};
use crate::db::{Id, Page, PageOf, cedar_schemas, organizations, policies};
use crate::error::{Error, Result};
use crate::identity::{Actor, validate};

/// A new role.
#[derive(Debug, Clone)]
pub struct NewRole {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    /// `None` for a role every organization can use.
    pub organization_id: Option<Id>,
    /// Gateway action names.
    pub permissions: Vec<String>,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct RoleChanges {
    pub key: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub permissions: Option<Vec<String>>,
}

/// Where a role's management is decided: its organization, or the gateway for global roles.
pub fn scope_of(role: &RoleRow) -> Resource {
    role.organization_id
        .map_or(Resource::Gateway, Resource::Organization)
}

pub async fn create(app: &App, actor: &Actor, new: NewRole) -> Result<RoleRow> {
    let scope = new
        .organization_id
        .map_or(Resource::Gateway, Resource::Organization);
    guard::check(app, actor, Action::RoleCreate, scope).await?;
    let now = app.now();
    let row = RoleRow {
        id: Id::new_v7(),
        key: key(&new.key)?,
        name: validate::name("name", &new.name, 100)?,
        description: validate::description(new.description)?,
        organization_id: new.organization_id,
        permissions: permissions(&new.permissions)?,
        built_in: false,
        created_at: now,
        updated_at: now,
    };
    let granted = grants::stored_permissions(&row)?;
    grants::check_role_permissions(app, actor, Action::RoleCreate, &row, &granted).await?;
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        if let Some(org) = row.organization_id {
            organizations::find(tx, org)
                .await?
                .ok_or(Error::NotFound("organization"))?;
        }
        rows::insert(tx, &row).await?;
        cedar_schemas::bump_version(tx).await?;
        let event = Event::by(actor, AuditAction::RoleCreated)
            .in_organization(row.organization_id)
            .target(role_target(&row))
            .with("key", &row.key)
            .with("permissions", permission_list(&row));
        audit::record(tx, now, event).await
    })
    .await?;
    app.engine.refresh(&app.db).await?;
    Ok(row)
}

pub async fn update(app: &App, actor: &Actor, id: Id, changes: RoleChanges) -> Result<RoleRow> {
    let mut conn = app.db.conn().await?;
    let mut row = visible(app, actor, &mut conn, id).await?;
    guard::check(app, actor, Action::RoleUpdate, scope_of(&row)).await?;
    let before = row.clone();
    if row.built_in {
        return Err(Error::conflict("id", "built-in roles cannot be changed"));
    }
    if let Some(k) = &changes.key {
        row.key = key(k)?;
    }
    if let Some(name) = &changes.name {
        row.name = validate::name("name", name, 100)?;
    }
    if changes.description.is_some() {
        row.description = validate::description(changes.description)?;
    }
    if let Some(list) = &changes.permissions {
        row.permissions = permissions(list)?;
        // Taking permissions away grants nothing; each one added must be the actor's to give.
        let had = grants::stored_permissions(&before)?;
        let added: Vec<String> = grants::stored_permissions(&row)?
            .into_iter()
            .filter(|p| !had.contains(p))
            .collect();
        grants::check_role_permissions(app, actor, Action::RoleUpdate, &row, &added).await?;
    }
    row.updated_at = app.now();
    let event = Event::by(actor, AuditAction::RoleUpdated)
        .in_organization(row.organization_id)
        .target(role_target(&row))
        .change("key", &before.key, &row.key)
        .change("name", &before.name, &row.name)
        .change("description", &before.description, &row.description)
        .change("permissions", permission_list(&before), permission_list(&row));
    conn.transaction(async |tx| {
        rows::update(tx, &row).await?;
        cedar_schemas::bump_version(tx).await?;
        audit::record(tx, row.updated_at, event).await
    })
    .await?;
    app.engine.refresh(&app.db).await?;
    Ok(row)
}

/// Deletes a role with its assignments and links; returns it as it was.
pub async fn delete(app: &App, actor: &Actor, id: Id) -> Result<RoleRow> {
    let mut conn = app.db.conn().await?;
    let row = visible(app, actor, &mut conn, id).await?;
    guard::check(app, actor, Action::RoleDelete, scope_of(&row)).await?;
    if row.built_in {
        return Err(Error::conflict("id", "built-in roles cannot be deleted"));
    }
    let event = Event::by(actor, AuditAction::RoleDeleted)
        .in_organization(row.organization_id)
        .target(role_target(&row))
        .with("key", &row.key);
    let now = app.now();
    conn.transaction(async |tx| {
        rows::delete(tx, id).await?;
        cedar_schemas::bump_version(tx).await?;
        audit::record(tx, now, event).await
    })
    .await?;
    app.engine.refresh(&app.db).await?;
    Ok(row)
}

/// The role, if it exists and the actor may read it.
pub async fn get(app: &App, actor: &Actor, id: Id) -> Result<Option<RoleRow>> {
    let mut conn = app.db.conn().await?;
    let Some(row) = rows::find(&mut conn, id).await? else {
        return Ok(None);
    };
    Ok(guard::allows(app, actor, Action::RoleRead, scope_of(&row))
        .await?
        .then_some(row))
}

/// Global roles, or those usable in one organization (its own plus the global ones).
pub async fn list(
    app: &App,
    actor: &Actor,
    organization_id: Option<Id>,
    page: &Page,
) -> Result<PageOf<RoleRow>> {
    let scope = organization_id.map_or(Resource::Gateway, Resource::Organization);
    guard::check(app, actor, Action::RoleRead, scope).await?;
    let filter = RoleFilter {
        organization_id,
        include_global: organization_id.is_some(),
    };
    let mut conn = app.db.reader().await?;
    rows::list(&mut conn, &filter, page).await
}

/// Links a policy template to a role: the template's `?principal` becomes the role.
pub async fn attach_policy(app: &App, actor: &Actor, role_id: Id, policy_id: Id) -> Result<RoleRow> {
    guard::check(app, actor, Action::PolicyAttach, Resource::Gateway).await?;
    let mut conn = app.db.conn().await?;
    let role = rows::find(&mut conn, role_id)
        .await?
        .ok_or(Error::NotFound("role"))?;
    let policy = policies::find(&mut conn, policy_id)
        .await?
        .ok_or(Error::NotFound("policy"))?;
    if policy.kind != "template" {
        return Err(Error::bad_input(
            "policyId",
            "only templates (policies with a ?principal slot) can be attached to a role",
        ));
    }
    let link = RolePolicyRow {
        role_id,
        policy_id,
        created_at: app.now(),
    };
    let event = Event::by(actor, AuditAction::PolicyAttached)
        .in_organization(role.organization_id)
        .target(role_target(&role))
        .target(policy_target(&policy));
    conn.transaction(async |tx| {
        rows::link_policy(tx, &link).await?;
        rows::touch(tx, role_id, link.created_at).await?;
        cedar_schemas::bump_version(tx).await?;
        audit::record(tx, link.created_at, event).await
    })
    .await?;
    app.engine.refresh(&app.db).await?;
    Ok(role)
}

pub async fn detach_policy(app: &App, actor: &Actor, role_id: Id, policy_id: Id) -> Result<RoleRow> {
    guard::check(app, actor, Action::PolicyAttach, Resource::Gateway).await?;
    let mut conn = app.db.conn().await?;
    let role = rows::find(&mut conn, role_id)
        .await?
        .ok_or(Error::NotFound("role"))?;
    let now = app.now();
    conn.transaction(async |tx| {
        if !rows::unlink_policy(tx, role_id, policy_id).await? {
            return Err(Error::NotFound("attached policy"));
        }
        cedar_schemas::bump_version(tx).await?;
        let policy = policies::find(tx, policy_id).await?;
        let event = Event::by(actor, AuditAction::PolicyDetached)
            .in_organization(role.organization_id)
            .target(role_target(&role))
            .target(match &policy {
                Some(policy) => policy_target(policy),
                None => Target::new("policy", policy_id, None),
            });
        audit::record(tx, now, event).await
    })
    .await?;
    app.engine.refresh(&app.db).await?;
    Ok(role)
}

/// The templates attached to a role.
pub async fn policies_of(app: &App, actor: &Actor, role: &RoleRow) -> Result<Vec<PolicyRow>> {
    guard::check(app, actor, Action::PolicyRead, Resource::Gateway).await?;
    let mut conn = app.db.conn().await?;
    let ids = rows::linked_policy_ids(&mut conn, role.id).await?;
    policies::find_many(&mut conn, &ids).await
}

/// The decoded permissions of a role.
pub fn permission_names(role: &RoleRow) -> Vec<String> {
    serde_json::from_str(&role.permissions).unwrap_or_default()
}

/// The role, or NOT_FOUND when it does not exist or the actor may not read it.
async fn visible(app: &App, actor: &Actor, conn: &mut crate::db::DbConn, id: Id) -> Result<RoleRow> {
    match rows::find(conn, id).await? {
        Some(row) if guard::allows(app, actor, Action::RoleRead, scope_of(&row)).await? => Ok(row),
        _ => Err(Error::NotFound("role")),
    }
}

/// A role key: 2–63 of `a-z`, `0-9`, `_` and `-`, starting with a letter.
fn key(raw: &str) -> Result<String> {
    let key = raw.trim();
    let well_formed = (2..=63).contains(&key.len())
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !well_formed {
        return Err(Error::bad_input(
            "key",
            "must be 2-63 lowercase letters, digits, '_' or '-', starting with a letter",
        ));
    }
    Ok(key.to_owned())
}

/// Validates action names and stores them as a sorted JSON array.
fn permissions(names: &[String]) -> Result<String> {
    let mut valid = Vec::with_capacity(names.len());
    for name in names {
        let name = name.trim();
        if Action::parse(name).is_none() {
            return Err(Error::bad_input(
                "permissions",
                format!("unknown action \"{name}\"; see `portcullis cedar-schema` for the list"),
            ));
        }
        valid.push(name.to_owned());
    }
    valid.sort();
    valid.dedup();
    serde_json::to_string(&valid).map_err(Error::internal)
}

/// A role as an audit target.
pub(crate) fn role_target(row: &RoleRow) -> Target {
    Target::new("role", row.id, row.name.clone())
}

/// The stored permissions as a list, for audit metadata.
fn permission_list(row: &RoleRow) -> Vec<String> {
    serde_json::from_str(&row.permissions).unwrap_or_default()
}
