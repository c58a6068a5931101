//! Queries over `organizations`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::error::conflict_on;
use super::models::OrganizationRow;
use super::page::paginate;
use super::schema::organizations;
use super::types::Id;
use super::users::{like_pattern, lower};
use super::{DbConn, Page, PageOf, with_conn};
use crate::error::Result;

/// Narrows an organization listing.
#[derive(Debug, Clone, Default)]
pub struct OrganizationFilter {
    /// Case-insensitive substring of the slug or name.
    pub search: Option<String>,
    /// Only organizations this user belongs to.
    pub member_id: Option<Id>,
}

const SLUG_TAKEN: &str = "an organization with this slug already exists";

pub async fn insert(conn: &mut DbConn, row: &OrganizationRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(organizations::table)
        .values(row)
        .execute(c)
        .await
        .map_err(conflict_on("slug", SLUG_TAKEN)))?;
    Ok(())
}

pub async fn update(conn: &mut DbConn, row: &OrganizationRow) -> Result<()> {
    with_conn!(conn, |c| diesel::update(organizations::table.find(row.id))
        .set((
            organizations::slug.eq(&row.slug),
            organizations::name.eq(&row.name),
            organizations::updated_at.eq(row.updated_at),
        ))
        .execute(c)
        .await
        .map_err(conflict_on("slug", SLUG_TAKEN)))?;
    Ok(())
}

pub async fn find(conn: &mut DbConn, id: Id) -> Result<Option<OrganizationRow>> {
    let row = with_conn!(conn, |c| organizations::table
        .find(id)
        .select(OrganizationRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

pub async fn find_by_slug(conn: &mut DbConn, slug: &str) -> Result<Option<OrganizationRow>> {
    let row = with_conn!(conn, |c| organizations::table
        .filter(organizations::slug.eq(slug))
        .select(OrganizationRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

pub async fn find_many(conn: &mut DbConn, ids: &[Id]) -> Result<Vec<OrganizationRow>> {
    let rows = with_conn!(conn, |c| organizations::table
        .filter(organizations::id.eq_any(ids))
        .select(OrganizationRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}

pub async fn list(
    conn: &mut DbConn,
    filter: &OrganizationFilter,
    page: &Page,
) -> Result<PageOf<OrganizationRow>> {
    use super::schema::memberships;
    let pattern = filter.search.as_deref().map(like_pattern);
    macro_rules! filtered {
        () => {{
            let mut query = organizations::table.into_boxed();
            if let Some(pattern) = &pattern {
                query = query.filter(
                    organizations::slug
                        .like(pattern)
                        .escape('\\')
                        .or(lower(organizations::name).like(pattern).escape('\\')),
                );
            }
            if let Some(member_id) = filter.member_id {
                query = query.filter(
                    organizations::id.eq_any(
                        memberships::table
                            .filter(memberships::user_id.eq(member_id))
                            .select(memberships::organization_id),
                    ),
                );
            }
            query
        }};
    }
    let (rows, total) = with_conn!(conn, |c| {
        let rows = paginate!(
            filtered!().select(OrganizationRow::as_select()),
            organizations::id,
            page
        )
        .load(c)
        .await?;
        let total: i64 = filtered!().count().get_result(c).await?;
        Ok::<_, diesel::result::Error>((rows, total))
    })?;
    Ok(page.finish(rows, total))
}
