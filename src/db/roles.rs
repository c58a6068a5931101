//! Queries over `roles` and their template links (`role_policies`).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::error::conflict_on;
use super::models::{RolePolicyRow, RoleRow};
use super::page::paginate;
use super::schema::{role_policies, roles};
use super::types::{Id, Timestamp};
use super::{DbConn, Page, PageOf, with_conn};
use crate::error::Result;

/// Narrows a role listing.
#[derive(Debug, Clone, Default)]
pub struct RoleFilter {
    /// Only roles of this organization (global roles are included with `include_global`).
    pub organization_id: Option<Id>,
    /// With `organization_id`: also the global roles. Without it: only global roles when false.
    pub include_global: bool,
}

const KEY_TAKEN: &str = "a role with this key already exists here";

pub async fn insert(conn: &mut DbConn, row: &RoleRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(roles::table)
        .values(row)
        .execute(c)
        .await
        .map_err(conflict_on("key", KEY_TAKEN)))?;
    Ok(())
}

pub async fn update(conn: &mut DbConn, row: &RoleRow) -> Result<()> {
    with_conn!(conn, |c| diesel::update(roles::table.find(row.id))
        .set((
            roles::key.eq(&row.key),
            roles::name.eq(&row.name),
            roles::description.eq(&row.description),
            roles::permissions.eq(&row.permissions),
            roles::updated_at.eq(row.updated_at),
        ))
        .execute(c)
        .await
        .map_err(conflict_on("key", KEY_TAKEN)))?;
    Ok(())
}

pub async fn delete(conn: &mut DbConn, id: Id) -> Result<bool> {
    let deleted = with_conn!(conn, |c| diesel::delete(roles::table.find(id)).execute(c).await)?;
    Ok(deleted > 0)
}

pub async fn find(conn: &mut DbConn, id: Id) -> Result<Option<RoleRow>> {
    let row = with_conn!(conn, |c| roles::table
        .find(id)
        .select(RoleRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

pub async fn find_many(conn: &mut DbConn, ids: &[Id]) -> Result<Vec<RoleRow>> {
    let rows = with_conn!(conn, |c| roles::table
        .filter(roles::id.eq_any(ids))
        .select(RoleRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}

/// Every role: the engine compiles them all.
pub async fn all(conn: &mut DbConn) -> Result<Vec<RoleRow>> {
    let rows = with_conn!(conn, |c| roles::table
        .order(roles::id.asc())
        .select(RoleRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}

pub async fn list(conn: &mut DbConn, filter: &RoleFilter, page: &Page) -> Result<PageOf<RoleRow>> {
    macro_rules! filtered {
        () => {{
            let query = roles::table.into_boxed();
            match (filter.organization_id, filter.include_global) {
                (Some(org), true) => query.filter(
                    roles::organization_id
                        .eq(org)
                        .or(roles::organization_id.is_null()),
                ),
                (Some(org), false) => query.filter(roles::organization_id.eq(org)),
                (None, false) => query.filter(roles::organization_id.is_null()),
                (None, true) => query,
            }
        }};
    }
    let (rows, total) = with_conn!(conn, |c| {
        let rows = paginate!(filtered!().select(RoleRow::as_select()), roles::id, page)
            .load(c)
            .await?;
        let total: i64 = filtered!().count().get_result(c).await?;
        Ok::<_, diesel::result::Error>((rows, total))
    })?;
    Ok(page.finish(rows, total))
}

pub async fn link_policy(conn: &mut DbConn, row: &RolePolicyRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(role_policies::table)
        .values(row)
        .execute(c)
        .await
        .map_err(conflict_on(
            "policyId",
            "the policy is already attached to this role"
        )))?;
    Ok(())
}

pub async fn unlink_policy(conn: &mut DbConn, role_id: Id, policy_id: Id) -> Result<bool> {
    let deleted = with_conn!(conn, |c| diesel::delete(
        role_policies::table
            .filter(role_policies::role_id.eq(role_id))
            .filter(role_policies::policy_id.eq(policy_id))
    )
    .execute(c)
    .await)?;
    Ok(deleted > 0)
}

/// Every template link: the engine compiles them all.
pub async fn all_links(conn: &mut DbConn) -> Result<Vec<RolePolicyRow>> {
    let rows = with_conn!(conn, |c| role_policies::table
        .select(RolePolicyRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}

/// The policy ids linked to a role.
pub async fn linked_policy_ids(conn: &mut DbConn, role_id: Id) -> Result<Vec<Id>> {
    let ids = with_conn!(conn, |c| role_policies::table
        .filter(role_policies::role_id.eq(role_id))
        .order(role_policies::policy_id.asc())
        .select(role_policies::policy_id)
        .load(c)
        .await)?;
    Ok(ids)
}

/// Stamps `updated_at` (used when links change).
pub async fn touch(conn: &mut DbConn, id: Id, at: Timestamp) -> Result<()> {
    with_conn!(conn, |c| diesel::update(roles::table.find(id))
        .set(roles::updated_at.eq(at))
        .execute(c)
        .await)?;
    Ok(())
}
