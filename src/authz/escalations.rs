//! Finding role assignments made beyond the grant bound, for an operator to review: the bound is
//! enforced on every new grant, but assignments made before it stand until someone removes them.
//!
//! An assignment is listed when
//! - its role is gateway-wide (`*`, like `super_admin`) and it is held in an organization — a grant
//!   nobody can make now; or
//! - its assigner, as the audit log records it (`role.assigned`), did not hold — through their
//!   *other* assignments at that scope, and `org_member` where they are a member — every permission
//!   the role carries (the assignment under review is left out, so an org admin who made
//!   themselves owner does not vouch for it); or
//! - no assigner is on record (events purged or erased, rows written by hand) and it is held in an
//!   organization with permissions beyond the built-in `org_admin`'s.
//!
//! Assignments recorded as made by the system (bootstrap) are not listed. The judgement is by the
//! roles' permissions as they stand today; policies are not replayed.

use std::collections::{HashMap, HashSet};

use super::Action;
use super::engine::ORG_MEMBER_ROLE;
use super::grants::{actions_of, is_gateway_wide, stored_permissions};
use crate::audit::{ActionMatch, ActorType, AuditAction, AuditFilter};
use crate::db::audit::{self as log, Scope};
use crate::db::models::{RoleAssignmentRow, RoleRow};
use crate::db::{Db, DbConn, Id, Page, memberships, role_assignments, roles};
use crate::error::{Error, Result};

/// The fixed id of the built-in `org_admin` role.
const ORG_ADMIN_ROLE: &str = "00000000-0000-7000-8000-000000000003";

/// One assignment beyond the bound, and why.
#[derive(Debug, Clone)]
pub struct Escalation {
    pub assignment: RoleAssignmentRow,
    pub role_key: String,
    /// The user who made it, when the audit log says.
    pub assigned_by: Option<Id>,
    pub reason: String,
}

/// Every assignment beyond the bound (see the module's documentation), oldest first.
pub async fn find(db: &Db) -> Result<Vec<Escalation>> {
    let mut conn = db.conn().await?;
    let roles: HashMap<Id, RoleRow> = roles::all(&mut conn)
        .await?
        .into_iter()
        .map(|role| (role.id, role))
        .collect();
    let assignments = role_assignments::all(&mut conn).await?;
    let mut by_user: HashMap<Id, Vec<&RoleAssignmentRow>> = HashMap::new();
    for assignment in &assignments {
        by_user.entry(assignment.user_id).or_default().push(assignment);
    }
    let actions_of_role = |id: Id| -> Result<Vec<Action>> {
        match roles.get(&id) {
            Some(role) => Ok(actions_of(&stored_permissions(role)?)),
            None => Ok(Vec::new()),
        }
    };
    let org_admin = actions_of_role(fixed_id(ORG_ADMIN_ROLE)?)?;
    let org_member = actions_of_role(fixed_id(ORG_MEMBER_ROLE)?)?;

    let mut found = Vec::new();
    for assignment in &assignments {
        let Some(role) = roles.get(&assignment.role_id) else {
            continue;
        };
        let permissions = stored_permissions(role)?;
        let granted = actions_of(&permissions);
        let listed = |assigned_by: Option<Id>, reason: String| Escalation {
            assignment: assignment.clone(),
            role_key: role.key.clone(),
            assigned_by,
            reason,
        };
        if assignment.organization_id.is_some() && is_gateway_wide(&permissions) {
            let by = assigner(&mut conn, assignment.id).await?.and_then(|a| a.user);
            found.push(listed(
                by,
                "a gateway-wide role held in an organization".to_owned(),
            ));
            continue;
        }
        match assigner(&mut conn, assignment.id).await? {
            Some(Assigner { system: true, .. }) => {}
            Some(Assigner { user: Some(user), .. }) => {
                let mut power: HashSet<Action> = HashSet::new();
                for other in by_user.get(&user).into_iter().flatten() {
                    let counts = other.id != assignment.id
                        && (other.organization_id.is_none()
                            || other.organization_id == assignment.organization_id);
                    if counts {
                        power.extend(actions_of_role(other.role_id)?);
                    }
                }
                if let Some(org) = assignment.organization_id
                    && memberships::find(&mut conn, org, user).await?.is_some()
                {
                    power.extend(org_member.iter().copied());
                }
                let missing = names(granted.iter().filter(|a| !power.contains(a)));
                if !missing.is_empty() {
                    found.push(listed(
                        Some(user),
                        format!("beyond its assigner's own roles: {missing}"),
                    ));
                }
            }
            _ => {
                let missing = names(granted.iter().filter(|a| !org_admin.contains(a)));
                if assignment.organization_id.is_some() && !missing.is_empty() {
                    found.push(listed(
                        None,
                        format!("assigner not on record, and beyond org_admin: {missing}"),
                    ));
                }
            }
        }
    }
    Ok(found)
}

/// Who made an assignment, per its `role.assigned` event.
struct Assigner {
    system: bool,
    user: Option<Id>,
}

async fn assigner(conn: &mut DbConn, assignment: Id) -> Result<Option<Assigner>> {
    let filter = AuditFilter {
        actions: vec![ActionMatch::Exact(AuditAction::RoleAssigned)],
        target_ids: vec![assignment.to_string()],
        ..AuditFilter::default()
    };
    let page = Page::after(None, 1).newest_first();
    let events = log::list(conn, Scope::All, &filter.criteria(), &page).await?;
    Ok(events.rows.into_iter().next().map(|event| Assigner {
        system: event.actor_type == ActorType::System,
        user: event.actor_user_id,
    }))
}

fn names<'a>(actions: impl Iterator<Item = &'a Action>) -> String {
    actions.map(|a| a.name()).collect::<Vec<_>>().join(", ")
}

fn fixed_id(text: &str) -> Result<Id> {
    text.parse()
        .map_err(|e| Error::internal(anyhow::anyhow!("built-in role id {text}: {e}")))
}
