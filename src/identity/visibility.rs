//! Read checks for objects reached through another object (a relation field): each answers whether
//! the caller may see the related object, by the same rule as the root query that reads it.
//!
//! A relation never shows more than its root query would: what the caller may not read comes back
//! as null, exactly like a row that does not exist, so nothing leaks across organizations. The
//! decisions are the engine's (`guard::allows`, remembered per caller and authorization version),
//! never cached with the rows, which the GraphQL loaders batch for every caller alike.

use crate::app::App;
use crate::authz::roles::scope_of;
use crate::authz::{Action, Resource, guard};
use crate::db::Id;
use crate::db::models::{RoleAssignmentRow, RoleRow};
use crate::error::Result;
use crate::identity::Actor;

/// The rule of `organization(id:)`: `organization.read` there.
pub async fn organization(app: &App, actor: &Actor, id: Id) -> Result<bool> {
    guard::allows(app, actor, Action::OrganizationRead, Resource::Organization(id)).await
}

/// The rule of `user(id:)`: `user.read` on the account (every user may read their own).
pub async fn user(app: &App, actor: &Actor, id: Id) -> Result<bool> {
    guard::allows(app, actor, Action::UserRead, Resource::User(id)).await
}

/// The member of a membership of `organization_id`: readable as a user, or by whoever may list
/// that organization's members (a member list names its members).
pub async fn member(app: &App, actor: &Actor, user_id: Id, organization_id: Id) -> Result<bool> {
    Ok(user(app, actor, user_id).await?
        || guard::allows(
            app,
            actor,
            Action::MemberList,
            Resource::Organization(organization_id),
        )
        .await?)
}

/// The holder of a role assignment: readable as a user, or, for an assignment in an organization,
/// by whoever may list that organization's members. Reading roles alone does not reveal people.
pub async fn holder(app: &App, actor: &Actor, assignment: &RoleAssignmentRow) -> Result<bool> {
    if user(app, actor, assignment.user_id).await? {
        return Ok(true);
    }
    match assignment.organization_id {
        Some(organization_id) => {
            guard::allows(
                app,
                actor,
                Action::MemberList,
                Resource::Organization(organization_id),
            )
            .await
        }
        None => Ok(false),
    }
}

/// The role of an assignment: its holder knows it; others need `role.read` where the role is
/// managed (the rule of `role(id:)`) or where the assignment applies, among the roles usable
/// there (the rule of `roles(organizationId:)`).
pub async fn assigned_role(
    app: &App,
    actor: &Actor,
    assignment: &RoleAssignmentRow,
    role: &RoleRow,
) -> Result<bool> {
    if assignment.user_id == actor.user_id() {
        return Ok(true);
    }
    if guard::allows(app, actor, Action::RoleRead, scope_of(role)).await? {
        return Ok(true);
    }
    match assignment.organization_id {
        Some(organization_id) if role.organization_id.is_none() => {
            guard::allows(
                app,
                actor,
                Action::RoleRead,
                Resource::Organization(organization_id),
            )
            .await
        }
        _ => Ok(false),
    }
}
