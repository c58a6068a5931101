//! Organizations and their members.

use crate::app::App;
use crate::audit::{self, AuditAction, Event, Target};
use crate::authz::{Action, Resource, guard};
use crate::db::memberships::{self, MembershipScope};
use crate::db::models::{MembershipRow, OrganizationRow};
use crate::db::organizations::{self as rows, OrganizationFilter};
use crate::db::{Id, Page, PageOf, cedar_schemas, users};
use crate::error::{Error, Result};
use crate::identity::users::user_target;
use crate::identity::{Actor, validate, visibility};

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OrganizationChanges {
    pub slug: Option<String>,
    pub name: Option<String>,
}

pub async fn create(app: &App, actor: &Actor, slug: &str, name: &str) -> Result<OrganizationRow> {
    guard::check(app, actor, Action::OrganizationCreate, Resource::Gateway).await?;
    let now = app.now();
    let row = OrganizationRow {
        id: Id::new_v7(),
        slug: validate::slug("slug", slug)?,
        name: validate::name("name", name, 100)?,
        created_at: now,
        updated_at: now,
    };
    let event = Event::by(actor, AuditAction::OrganizationCreated)
        .in_organization(Some(row.id))
        .target(organization_target(&row))
        .with("slug", &row.slug);
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        rows::insert(tx, &row).await?;
        audit::record(tx, now, event).await
    })
    .await?;
    Ok(row)
}

/// An organization as an audit target.
pub(crate) fn organization_target(row: &OrganizationRow) -> Target {
    Target::new("organization", row.id, row.name.clone())
}

pub async fn get(app: &App, actor: &Actor, id: Id) -> Result<Option<OrganizationRow>> {
    if !visibility::organization(app, actor, id).await? {
        return Ok(None);
    }
    let mut conn = app.db.conn().await?;
    rows::find(&mut conn, id).await
}

pub async fn get_by_slug(app: &App, actor: &Actor, slug: &str) -> Result<Option<OrganizationRow>> {
    let mut conn = app.db.conn().await?;
    let Some(row) = rows::find_by_slug(&mut conn, slug).await? else {
        return Ok(None);
    };
    Ok(visibility::organization(app, actor, row.id).await?.then_some(row))
}

pub async fn list(
    app: &App,
    actor: &Actor,
    filter: &OrganizationFilter,
    page: &Page,
) -> Result<PageOf<OrganizationRow>> {
    guard::check(app, actor, Action::OrganizationList, Resource::Gateway).await?;
    let mut conn = app.db.reader().await?;
    rows::list(&mut conn, filter, page).await
}

pub async fn update(
    app: &App,
    actor: &Actor,
    id: Id,
    changes: OrganizationChanges,
) -> Result<OrganizationRow> {
    guard::check(app, actor, Action::OrganizationUpdate, Resource::Organization(id)).await?;
    let mut conn = app.db.conn().await?;
    let mut row = rows::find(&mut conn, id)
        .await?
        .ok_or(Error::NotFound("organization"))?;
    let before = row.clone();
    if let Some(slug) = &changes.slug {
        row.slug = validate::slug("slug", slug)?;
    }
    if let Some(name) = &changes.name {
        row.name = validate::name("name", name, 100)?;
    }
    row.updated_at = app.now();
    let event = Event::by(actor, AuditAction::OrganizationUpdated)
        .in_organization(Some(id))
        .target(organization_target(&row))
        .change("slug", &before.slug, &row.slug)
        .change("name", &before.name, &row.name);
    conn.transaction(async |tx| {
        rows::update(tx, &row).await?;
        audit::record(tx, row.updated_at, event).await
    })
    .await?;
    Ok(row)
}

pub async fn add_member(app: &App, actor: &Actor, organization_id: Id, user_id: Id) -> Result<MembershipRow> {
    guard::check(
        app,
        actor,
        Action::MemberAdd,
        Resource::Organization(organization_id),
    )
    .await?;
    let mut conn = app.db.conn().await?;
    let row = conn
        .transaction(async |tx| {
            let organization = rows::find(tx, organization_id)
                .await?
                .ok_or(Error::NotFound("organization"))?;
            let user = users::find(tx, user_id).await?.ok_or(Error::NotFound("user"))?;
            let row = MembershipRow {
                id: Id::new_v7(),
                organization_id,
                user_id,
                created_at: app.now(),
            };
            memberships::insert(tx, &row).await?;
            // Membership grants `org_member`: decisions must see it.
            cedar_schemas::bump_version(tx).await?;
            let event = Event::by(actor, AuditAction::MemberAdded)
                .in_organization(Some(organization_id))
                .target(user_target(&user))
                .target(organization_target(&organization));
            audit::record(tx, row.created_at, event).await?;
            Ok(row)
        })
        .await?;
    app.engine.refresh(&app.db).await?;
    Ok(row)
}

/// Removes the membership and returns it as it was.
pub async fn remove_member(
    app: &App,
    actor: &Actor,
    organization_id: Id,
    user_id: Id,
) -> Result<MembershipRow> {
    guard::check(
        app,
        actor,
        Action::MemberRemove,
        Resource::Organization(organization_id),
    )
    .await?;
    let mut conn = app.db.conn().await?;
    let row = conn
        .transaction(async |tx| {
            let row = memberships::find(tx, organization_id, user_id)
                .await?
                .ok_or(Error::NotFound("membership"))?;
            memberships::delete(tx, organization_id, user_id).await?;
            cedar_schemas::bump_version(tx).await?;
            let user = users::find(tx, user_id).await?;
            let event = Event::by(actor, AuditAction::MemberRemoved)
                .in_organization(Some(organization_id))
                .target(match &user {
                    Some(user) => user_target(user),
                    None => Target::new("user", user_id, None),
                })
                .target(Target::new("organization", organization_id, None));
            audit::record(tx, app.now(), event).await?;
            Ok(row)
        })
        .await?;
    app.engine.refresh(&app.db).await?;
    Ok(row)
}

/// The members of an organization.
pub async fn members(
    app: &App,
    actor: &Actor,
    organization_id: Id,
    page: &Page,
) -> Result<PageOf<MembershipRow>> {
    guard::check(
        app,
        actor,
        Action::MemberList,
        Resource::Organization(organization_id),
    )
    .await?;
    let mut conn = app.db.reader().await?;
    memberships::list(&mut conn, MembershipScope::Organization(organization_id), page).await
}

/// The organizations a user belongs to.
pub async fn memberships_of(
    app: &App,
    actor: &Actor,
    user_id: Id,
    page: &Page,
) -> Result<PageOf<MembershipRow>> {
    guard::check(app, actor, Action::UserRead, Resource::User(user_id)).await?;
    let mut conn = app.db.reader().await?;
    memberships::list(&mut conn, MembershipScope::User(user_id), page).await
}
