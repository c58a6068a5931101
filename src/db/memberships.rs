//! Queries over `memberships`: who belongs to which organization.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::error::conflict_on;
use super::models::MembershipRow;
use super::page::paginate;
use super::schema::memberships;
use super::types::Id;
use super::{DbConn, Page, PageOf, with_conn};
use crate::error::Result;

/// Which memberships to list: those of an organization, or those of a user.
#[derive(Debug, Clone, Copy)]
pub enum MembershipScope {
    Organization(Id),
    User(Id),
}

pub async fn insert(conn: &mut DbConn, row: &MembershipRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(memberships::table)
        .values(row)
        .execute(c)
        .await
        .map_err(conflict_on(
            "userId",
            "the user is already a member of this organization"
        )))?;
    Ok(())
}

pub async fn find(conn: &mut DbConn, organization_id: Id, user_id: Id) -> Result<Option<MembershipRow>> {
    let row = with_conn!(conn, |c| memberships::table
        .filter(memberships::organization_id.eq(organization_id))
        .filter(memberships::user_id.eq(user_id))
        .select(MembershipRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// Deletes the membership; returns whether there was one.
pub async fn delete(conn: &mut DbConn, organization_id: Id, user_id: Id) -> Result<bool> {
    let deleted = with_conn!(conn, |c| diesel::delete(
        memberships::table
            .filter(memberships::organization_id.eq(organization_id))
            .filter(memberships::user_id.eq(user_id))
    )
    .execute(c)
    .await)?;
    Ok(deleted > 0)
}

pub async fn list(conn: &mut DbConn, scope: MembershipScope, page: &Page) -> Result<PageOf<MembershipRow>> {
    macro_rules! scoped {
        () => {{
            let query = memberships::table.into_boxed();
            match scope {
                MembershipScope::Organization(id) => query.filter(memberships::organization_id.eq(id)),
                MembershipScope::User(id) => query.filter(memberships::user_id.eq(id)),
            }
        }};
    }
    let (rows, total) = with_conn!(conn, |c| {
        let rows = paginate!(
            scoped!().select(MembershipRow::as_select()),
            memberships::id,
            page
        )
        .load(c)
        .await?;
        let total: i64 = scoped!().count().get_result(c).await?;
        Ok::<_, diesel::result::Error>((rows, total))
    })?;
    Ok(page.finish(rows, total))
}

/// The organizations a user belongs to (what the engine needs for implicit `org_member`).
pub async fn organization_ids_for_user(conn: &mut DbConn, user_id: Id) -> Result<Vec<Id>> {
    let ids = with_conn!(conn, |c| memberships::table
        .filter(memberships::user_id.eq(user_id))
        .select(memberships::organization_id)
        .load(c)
        .await)?;
    Ok(ids)
}
