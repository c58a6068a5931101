//! Queries over `role_assignments`: which user holds which role, where.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::error::conflict_on;
use super::models::RoleAssignmentRow;
use super::page::paginate;
use super::schema::role_assignments;
use super::types::Id;
use super::{DbConn, Page, PageOf, with_conn};
use crate::error::Result;

/// Narrows an assignment listing; every field is optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct AssignmentFilter {
    pub user_id: Option<Id>,
    pub role_id: Option<Id>,
    pub organization_id: Option<Id>,
}

pub async fn insert(conn: &mut DbConn, row: &RoleAssignmentRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(role_assignments::table)
        .values(row)
        .execute(c)
        .await
        .map_err(conflict_on("roleId", "the user already holds this role here")))?;
    Ok(())
}

/// The assignment of `role_id` to `user_id` in `organization_id` (or globally, with `None`).
pub async fn find(
    conn: &mut DbConn,
    user_id: Id,
    role_id: Id,
    organization_id: Option<Id>,
) -> Result<Option<RoleAssignmentRow>> {
    let row = with_conn!(conn, |c| {
        let query = role_assignments::table
            .filter(role_assignments::user_id.eq(user_id))
            .filter(role_assignments::role_id.eq(role_id))
            .select(RoleAssignmentRow::as_select())
            .into_boxed();
        let query = match organization_id {
            Some(org) => query.filter(role_assignments::organization_id.eq(org)),
            None => query.filter(role_assignments::organization_id.is_null()),
        };
        query.get_result(c).await.optional()
    })?;
    Ok(row)
}

pub async fn delete(conn: &mut DbConn, id: Id) -> Result<bool> {
    let deleted = with_conn!(conn, |c| diesel::delete(role_assignments::table.find(id))
        .execute(c)
        .await)?;
    Ok(deleted > 0)
}

/// Whether anyone holds `role_id` gateway-wide (not within an organization).
pub async fn any_global(conn: &mut DbConn, role_id: Id) -> Result<bool> {
    let found = with_conn!(conn, |c| role_assignments::table
        .filter(role_assignments::role_id.eq(role_id))
        .filter(role_assignments::organization_id.is_null())
        .select(role_assignments::id)
        .first::<Id>(c)
        .await
        .optional())?;
    Ok(found.is_some())
}

/// Every assignment of one user (what the engine needs to build the user's parents).
pub async fn for_user(conn: &mut DbConn, user_id: Id) -> Result<Vec<RoleAssignmentRow>> {
    let rows = with_conn!(conn, |c| role_assignments::table
        .filter(role_assignments::user_id.eq(user_id))
        .select(RoleAssignmentRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}

pub async fn list(
    conn: &mut DbConn,
    filter: &AssignmentFilter,
    page: &Page,
) -> Result<PageOf<RoleAssignmentRow>> {
    macro_rules! filtered {
        () => {{
            let mut query = role_assignments::table.into_boxed();
            if let Some(user_id) = filter.user_id {
                query = query.filter(role_assignments::user_id.eq(user_id));
            }
            if let Some(role_id) = filter.role_id {
                query = query.filter(role_assignments::role_id.eq(role_id));
            }
            if let Some(org) = filter.organization_id {
                query = query.filter(role_assignments::organization_id.eq(org));
            }
            query
        }};
    }
    let (rows, total) = with_conn!(conn, |c| {
        let rows = paginate!(
            filtered!().select(RoleAssignmentRow::as_select()),
            role_assignments::id,
            page
        )
        .load(c)
        .await?;
        let total: i64 = filtered!().count().get_result(c).await?;
        Ok::<_, diesel::result::Error>((rows, total))
    })?;
    Ok(page.finish(rows, total))
}

/// Every assignment, oldest first (for operators' reviews, not for requests).
pub async fn all(conn: &mut DbConn) -> Result<Vec<RoleAssignmentRow>> {
    let rows = with_conn!(conn, |c| role_assignments::table
        .order(role_assignments::id.asc())
        .select(RoleAssignmentRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}
