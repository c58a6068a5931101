//! Role assignments: a user holds a role globally or in one organization.

use super::Action;
use super::grants;
use super::guard::{self, Resource};
use super::roles::role_target;
use crate::app::App;
use crate::audit::{self, AuditAction, Event, Target};
use crate::db::models::RoleAssignmentRow;
use crate::db::role_assignments::{self as rows, AssignmentFilter};
use crate::db::{Id, Page, PageOf, cedar_schemas, organizations, roles, users};
use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::identity::users::user_target;

fn scope(organization_id: Option<Id>) -> Resource {
    organization_id.map_or(Resource::Gateway, Resource::Organization)
}

/// Gives `user_id` the role, in `organization_id` or (with `None`) everywhere — only if the actor
/// holds every permission the role carries there (see [`grants`]).
pub async fn assign(
    app: &App,
    actor: &Actor,
    user_id: Id,
    role_id: Id,
    organization_id: Option<Id>,
) -> Result<RoleAssignmentRow> {
    guard::check(app, actor, Action::RoleAssign, scope(organization_id)).await?;
    let checked = {
        let mut conn = app.db.conn().await?;
        roles::find(&mut conn, role_id)
            .await?
            .ok_or(Error::NotFound("role"))?
    };
    if let Some(home) = checked.organization_id
        && organization_id != Some(home)
    {
        // Another organization's role: as absent as that organization, unless the actor reads its roles.
        if !guard::allows(app, actor, Action::RoleRead, Resource::Organization(home)).await? {
            return Err(Error::NotFound("role"));
        }
        return Err(Error::bad_input(
            "organizationId",
            "this role belongs to one organization and can only be assigned there",
        ));
    }
    grants::check_assignment(app, actor, &checked, organization_id).await?;
    let row = RoleAssignmentRow {
        id: Id::new_v7(),
        user_id,
        role_id,
        organization_id,
        created_at: app.now(),
    };
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        let role = roles::find(tx, role_id).await?.ok_or(Error::NotFound("role"))?;
        if role.permissions != checked.permissions {
            // The bound was checked against permissions that are no longer the role's.
            return Err(Error::conflict(
                "roleId",
                "the role's permissions changed while it was being assigned; try again",
            ));
        }
        let user = users::find(tx, user_id).await?.ok_or(Error::NotFound("user"))?;
        if let Some(org) = organization_id {
            organizations::find(tx, org)
                .await?
                .ok_or(Error::NotFound("organization"))?;
        }
        rows::insert(tx, &row).await?;
        cedar_schemas::bump_version(tx).await?;
        let event = Event::by(actor, AuditAction::RoleAssigned)
            .in_organization(organization_id)
            .target(user_target(&user))
            .target(role_target(&role))
            .target(Target::new("role_assignment", row.id, None));
        audit::record(tx, row.created_at, event).await
    })
    .await?;
    app.engine.refresh(&app.db).await?;
    Ok(row)
}

/// Takes the role away; returns the assignment as it was. A role that restricts its holder (an
/// attached `forbid`) is lifted only by those who could detach the restriction.
pub async fn unassign(
    app: &App,
    actor: &Actor,
    user_id: Id,
    role_id: Id,
    organization_id: Option<Id>,
) -> Result<RoleAssignmentRow> {
    guard::check(app, actor, Action::RoleAssign, scope(organization_id)).await?;
    grants::check_removal(app, actor, role_id).await?;
    let mut conn = app.db.conn().await?;
    let row = conn
        .transaction(async |tx| {
            let row = rows::find(tx, user_id, role_id, organization_id)
                .await?
                .ok_or(Error::NotFound("role assignment"))?;
            rows::delete(tx, row.id).await?;
            cedar_schemas::bump_version(tx).await?;
            let user = users::find(tx, user_id).await?;
            let role = roles::find(tx, role_id).await?;
            let event = Event::by(actor, AuditAction::RoleUnassigned)
                .in_organization(organization_id)
                .target(
                    user.as_ref()
                        .map_or_else(|| Target::new("user", user_id, None), user_target),
                )
                .target(
                    role.as_ref()
                        .map_or_else(|| Target::new("role", role_id, None), role_target),
                )
                .target(Target::new("role_assignment", row.id, None));
            audit::record(tx, app.now(), event).await?;
            Ok(row)
        })
        .await?;
    app.engine.refresh(&app.db).await?;
    Ok(row)
}

/// Assignments matching `filter`. Readers of roles in the organization (or gateway-wide) see them;
/// every user sees their own.
pub async fn list(
    app: &App,
    actor: &Actor,
    filter: &AssignmentFilter,
    page: &Page,
) -> Result<PageOf<RoleAssignmentRow>> {
    let own = filter.user_id == Some(actor.user_id())
        && guard::allows(app, actor, Action::UserRead, Resource::User(actor.user_id())).await?;
    if !own {
        guard::check(app, actor, Action::RoleRead, scope(filter.organization_id)).await?;
    }
    let mut conn = app.db.reader().await?;
    rows::list(&mut conn, filter, page).await
}
