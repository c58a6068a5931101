//! Grants bounded by the granter: a role's permissions are handed out (by assigning the role, or by
//! writing them into a role) only by someone the policy engine allows each of them at that scope.
//!
//! The bound is asked of the engine, action by action, with [`guard::allows`], so everything that
//! decides the granter's own operations counts here too: the roles they hold at that scope, and
//! administrators' forbids and conditions (a `forbid … unless { context.mfa }` on
//! `organization.update` also stops granting it without MFA).

use super::Action;
use super::guard;
use super::roles::{role_target, scope_of};
use crate::app::App;
use crate::audit::{self, AuditAction, Event, Outcome, Target};
use crate::db::models::RoleRow;
use crate::db::{Id, policies, roles};
use crate::error::{Error, Result};
use crate::identity::Actor;

/// The permission that stands for every gateway action.
pub const EVERY_ACTION: &str = "*";

/// The stored permission names of a role; a value that does not parse is an error, not "none".
pub fn stored_permissions(role: &RoleRow) -> Result<Vec<String>> {
    serde_json::from_str(&role.permissions).map_err(|e| {
        Error::internal(anyhow::anyhow!(
            "role {} has unreadable permissions: {e}",
            role.id
        ))
    })
}

/// The gateway actions that `permissions` grant: `*` is every one of them.
pub fn actions_of(permissions: &[String]) -> Vec<Action> {
    if is_gateway_wide(permissions) {
        return Action::ALL.to_vec();
    }
    let mut actions: Vec<Action> = Vec::with_capacity(permissions.len());
    for action in permissions.iter().filter_map(|p| Action::parse(p)) {
        if !actions.contains(&action) {
            actions.push(action);
        }
    }
    actions
}

/// A gateway-wide role (every action, like the built-in `super_admin`) is held globally or not at
/// all: held in one organization it would make its holder that organization's super-administrator.
pub fn is_gateway_wide(permissions: &[String]) -> bool {
    permissions.iter().any(|p| p == EVERY_ACTION)
}

/// The actions among `wanted` that the engine does not allow `actor` in `organization` (or, with
/// `None`, gateway-wide).
pub async fn beyond(
    app: &App,
    actor: &Actor,
    wanted: &[Action],
    organization: Option<Id>,
) -> Result<Vec<Action>> {
    let scope = organization.map_or(guard::Resource::Gateway, guard::Resource::Organization);
    let mut missing = Vec::new();
    for &action in wanted {
        if !guard::allows(app, actor, action, scope).await? {
            missing.push(action);
        }
    }
    Ok(missing)
}

/// Assigning `role` in `organization` (or globally): refused with FORBIDDEN, audited, unless the
/// actor holds every permission of the role there; then a gateway-wide role is refused anywhere
/// but globally (BAD_USER_INPUT on `organizationId`).
pub async fn check_assignment(
    app: &App,
    actor: &Actor,
    role: &RoleRow,
    organization: Option<Id>,
) -> Result<()> {
    let permissions = stored_permissions(role)?;
    let missing = beyond(app, actor, &actions_of(&permissions), organization).await?;
    if !missing.is_empty() {
        return refuse(
            app,
            actor,
            Action::RoleAssign,
            role_target(role),
            organization,
            &missing,
        )
        .await;
    }
    if organization.is_some() && is_gateway_wide(&permissions) {
        return Err(Error::bad_input(
            "organizationId",
            format!(
                "\"{}\" grants every gateway action and can only be assigned globally (organizationId null)",
                role.key
            ),
        ));
    }
    Ok(())
}

/// Writing `added` permissions into `role` (being created, or updated by `action`): refused with
/// FORBIDDEN, audited, unless the actor holds each of them at the role's scope. (`*` is not among
/// the names a role may be given: only the built-in `super_admin` carries it.)
pub async fn check_role_permissions(
    app: &App,
    actor: &Actor,
    action: Action,
    role: &RoleRow,
    added: &[String],
) -> Result<()> {
    let organization = match scope_of(role) {
        guard::Resource::Organization(id) => Some(id),
        guard::Resource::Gateway | guard::Resource::User(_) => None,
    };
    let missing = beyond(app, actor, &actions_of(added), organization).await?;
    if !missing.is_empty() {
        return refuse(app, actor, action, role_target(role), organization, &missing).await;
    }
    Ok(())
}

/// Taking `role_id` away from someone: a role may carry restrictions as well as permissions (a
/// `forbid` template attached to it), and lifting one is like writing a policy. So removing a role
/// with an enabled `forbid` attached needs `policy.attach` gateway-wide — what detaching it would
/// need — or an org admin on probation could unassign their own probation.
pub async fn check_removal(app: &App, actor: &Actor, role_id: Id) -> Result<()> {
    let restricts = {
        let mut conn = app.db.conn().await?;
        let linked = roles::linked_policy_ids(&mut conn, role_id).await?;
        policies::find_many(&mut conn, &linked)
            .await?
            .iter()
            .any(|policy| policy.enabled && policy.effect == "forbid")
    };
    if restricts {
        guard::check(app, actor, Action::PolicyAttach, guard::Resource::Gateway).await?;
    }
    Ok(())
}

/// Records the refusal like every other denial (`authorization.denied`, naming what was beyond
/// the actor) and answers FORBIDDEN.
async fn refuse(
    app: &App,
    actor: &Actor,
    action: Action,
    role: Target,
    organization: Option<Id>,
    missing: &[Action],
) -> Result<()> {
    tracing::debug!(actor = %actor.user_id(), action = action.name(), "grant beyond the granter refused");
    let beyond: Vec<&str> = missing.iter().map(|a| a.name()).collect();
    let event = Event::by(actor, AuditAction::AuthorizationDenied)
        .outcome(Outcome::Denied)
        .in_organization(organization)
        .target(role)
        .with("action", action.name())
        .with("reason", "grant beyond the granter's own permissions")
        .with("beyond", beyond);
    let now = app.now();
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| audit::record(tx, now, event).await)
        .await?;
    Err(Error::Forbidden)
}
