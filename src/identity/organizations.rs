//! Organizations and their members.

use crate::app::App;
use crate::db::memberships::{self, MembershipScope};
use crate::db::models::{MembershipRow, OrganizationRow};
use crate::db::organizations::{self as rows, OrganizationFilter};
use crate::db::{Id, Page, PageOf, users};
use crate::error::{Error, Result};
use crate::identity::access::{self, Action, Resource};
use crate::identity::{Actor, validate};

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OrganizationChanges {
    pub slug: Option<String>,
    pub name: Option<String>,
}

pub async fn create(app: &App, actor: &Actor, slug: &str, name: &str) -> Result<OrganizationRow> {
    access::check(actor, Action::OrganizationCreate, Resource::Gateway)?;
    let now = app.now();
    let row = OrganizationRow {
        id: Id::new_v7(),
        slug: validate::slug("slug", slug)?,
        name: validate::name("name", name, 100)?,
        created_at: now,
        updated_at: now,
    };
    let mut conn = app.db.conn().await?;
    rows::insert(&mut conn, &row).await?;
    Ok(row)
}

pub async fn get(app: &App, actor: &Actor, id: Id) -> Result<Option<OrganizationRow>> {
    if !access::allows(actor, Action::OrganizationRead, Resource::Organization(id)) {
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
    Ok(access::allows(actor, Action::OrganizationRead, Resource::Organization(row.id)).then_some(row))
}

pub async fn list(
    app: &App,
    actor: &Actor,
    filter: &OrganizationFilter,
    page: &Page,
) -> Result<PageOf<OrganizationRow>> {
    access::check(actor, Action::OrganizationList, Resource::Gateway)?;
    let mut conn = app.db.conn().await?;
    rows::list(&mut conn, filter, page).await
}

pub async fn update(
    app: &App,
    actor: &Actor,
    id: Id,
    changes: OrganizationChanges,
) -> Result<OrganizationRow> {
    access::check(actor, Action::OrganizationUpdate, Resource::Organization(id))?;
    let mut conn = app.db.conn().await?;
    let mut row = rows::find(&mut conn, id)
        .await?
        .ok_or(Error::NotFound("organization"))?;
    if let Some(slug) = &changes.slug {
        row.slug = validate::slug("slug", slug)?;
    }
    if let Some(name) = &changes.name {
        row.name = validate::name("name", name, 100)?;
    }
    row.updated_at = app.now();
    rows::update(&mut conn, &row).await?;
    Ok(row)
}

pub async fn add_member(app: &App, actor: &Actor, organization_id: Id, user_id: Id) -> Result<MembershipRow> {
    access::check(actor, Action::MemberAdd, Resource::Organization(organization_id))?;
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        rows::find(tx, organization_id)
            .await?
            .ok_or(Error::NotFound("organization"))?;
        users::find(tx, user_id).await?.ok_or(Error::NotFound("user"))?;
        let row = MembershipRow {
            id: Id::new_v7(),
            organization_id,
            user_id,
            created_at: app.now(),
        };
        memberships::insert(tx, &row).await?;
        Ok(row)
    })
    .await
}

/// Removes the membership and returns it as it was.
pub async fn remove_member(
    app: &App,
    actor: &Actor,
    organization_id: Id,
    user_id: Id,
) -> Result<MembershipRow> {
    access::check(
        actor,
        Action::MemberRemove,
        Resource::Organization(organization_id),
    )?;
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        let row = memberships::find(tx, organization_id, user_id)
            .await?
            .ok_or(Error::NotFound("membership"))?;
        memberships::delete(tx, organization_id, user_id).await?;
        Ok(row)
    })
    .await
}

/// The members of an organization.
pub async fn members(
    app: &App,
    actor: &Actor,
    organization_id: Id,
    page: &Page,
) -> Result<PageOf<MembershipRow>> {
    access::check(actor, Action::MemberList, Resource::Organization(organization_id))?;
    let mut conn = app.db.conn().await?;
    memberships::list(&mut conn, MembershipScope::Organization(organization_id), page).await
}

/// The organizations a user belongs to.
pub async fn memberships_of(
    app: &App,
    actor: &Actor,
    user_id: Id,
    page: &Page,
) -> Result<PageOf<MembershipRow>> {
    access::check(actor, Action::MemberList, Resource::User(user_id))?;
    let mut conn = app.db.conn().await?;
    memberships::list(&mut conn, MembershipScope::User(user_id), page).await
}
