//! Queries over `policies`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::PolicyRow;
use super::page::paginate;
use super::schema::{policies, role_policies};
use super::types::Id;
use super::users::{like_pattern, lower};
use super::{DbConn, Page, PageOf, with_conn};
use crate::error::Result;

/// Narrows a policy listing.
#[derive(Debug, Clone, Default)]
pub struct PolicyFilter {
    /// Case-insensitive text in the name, description or source.
    pub search: Option<String>,
    pub enabled: Option<bool>,
    /// `permit` or `forbid`.
    pub effect: Option<String>,
    /// Only templates attached to this role.
    pub role_id: Option<Id>,
}

pub async fn insert(conn: &mut DbConn, row: &PolicyRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(policies::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(())
}

pub async fn update(conn: &mut DbConn, row: &PolicyRow) -> Result<()> {
    with_conn!(conn, |c| diesel::update(policies::table.find(row.id))
        .set((
            policies::name.eq(&row.name),
            policies::description.eq(&row.description),
            policies::source.eq(&row.source),
            policies::kind.eq(&row.kind),
            policies::effect.eq(&row.effect),
            policies::enabled.eq(row.enabled),
            policies::version.eq(row.version),
            policies::updated_by.eq(row.updated_by),
            policies::updated_at.eq(row.updated_at),
        ))
        .execute(c)
        .await)?;
    Ok(())
}

pub async fn delete(conn: &mut DbConn, id: Id) -> Result<bool> {
    let deleted = with_conn!(conn, |c| diesel::delete(policies::table.find(id))
        .execute(c)
        .await)?;
    Ok(deleted > 0)
}

pub async fn find(conn: &mut DbConn, id: Id) -> Result<Option<PolicyRow>> {
    let row = with_conn!(conn, |c| policies::table
        .find(id)
        .select(PolicyRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

pub async fn find_many(conn: &mut DbConn, ids: &[Id]) -> Result<Vec<PolicyRow>> {
    let rows = with_conn!(conn, |c| policies::table
        .filter(policies::id.eq_any(ids))
        .select(PolicyRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}

/// Every enabled policy: what the engine compiles.
pub async fn all_enabled(conn: &mut DbConn) -> Result<Vec<PolicyRow>> {
    let rows = with_conn!(conn, |c| policies::table
        .filter(policies::enabled.eq(true))
        .order(policies::id.asc())
        .select(PolicyRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}

pub async fn list(conn: &mut DbConn, filter: &PolicyFilter, page: &Page) -> Result<PageOf<PolicyRow>> {
    let pattern = filter.search.as_deref().map(like_pattern);
    macro_rules! filtered {
        () => {{
            let mut query = policies::table.into_boxed();
            if let Some(pattern) = &pattern {
                query = query.filter(
                    lower(policies::name)
                        .like(pattern)
                        .escape('\\')
                        .or(lower(policies::description).like(pattern).escape('\\'))
                        .or(lower(policies::source).like(pattern).escape('\\')),
                );
            }
            if let Some(enabled) = filter.enabled {
                query = query.filter(policies::enabled.eq(enabled));
            }
            if let Some(effect) = &filter.effect {
                query = query.filter(policies::effect.eq(effect));
            }
            if let Some(role_id) = filter.role_id {
                query = query.filter(
                    policies::id.eq_any(
                        role_policies::table
                            .filter(role_policies::role_id.eq(role_id))
                            .select(role_policies::policy_id),
                    ),
                );
            }
            query
        }};
    }
    let (rows, total) = with_conn!(conn, |c| {
        let rows = paginate!(filtered!().select(PolicyRow::as_select()), policies::id, page)
            .load(c)
            .await?;
        let total: i64 = filtered!().count().get_result(c).await?;
        Ok::<_, diesel::result::Error>((rows, total))
    })?;
    Ok(page.finish(rows, total))
}
