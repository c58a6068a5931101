//! Queries over `api_keys`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::{ApiKeyRow, UserRow};
use super::page::paginate;
use super::schema::{api_keys, users};
use super::types::{Id, Timestamp};
use super::{DbConn, Page, PageOf, with_conn};
use crate::error::Result;

pub async fn insert(conn: &mut DbConn, row: &ApiKeyRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(api_keys::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(())
}

pub async fn find(conn: &mut DbConn, id: Id) -> Result<Option<ApiKeyRow>> {
    let row = with_conn!(conn, |c| api_keys::table
        .find(id)
        .select(ApiKeyRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// The key with this public prefix and its owner, in one statement.
pub async fn find_by_prefix_with_user(
    conn: &mut DbConn,
    prefix: &str,
) -> Result<Option<(ApiKeyRow, UserRow)>> {
    let row = with_conn!(conn, |c| api_keys::table
        .inner_join(users::table)
        .filter(api_keys::prefix.eq(prefix))
        .select((ApiKeyRow::as_select(), UserRow::as_select()))
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

pub async fn list_for_user(conn: &mut DbConn, user_id: Id, page: &Page) -> Result<PageOf<ApiKeyRow>> {
    let (rows, total) = with_conn!(conn, |c| {
        let query = api_keys::table
            .filter(api_keys::user_id.eq(user_id))
            .select(ApiKeyRow::as_select())
            .into_boxed();
        let rows = paginate!(query, api_keys::id, page).load(c).await?;
        let total: i64 = api_keys::table
            .filter(api_keys::user_id.eq(user_id))
            .count()
            .get_result(c)
            .await?;
        Ok::<_, diesel::result::Error>((rows, total))
    })?;
    Ok(page.finish(rows, total))
}

/// Marks the key revoked unless it already is; returns whether this call revoked it.
pub async fn revoke(conn: &mut DbConn, id: Id, at: Timestamp) -> Result<bool> {
    let changed = with_conn!(conn, |c| diesel::update(
        api_keys::table
            .filter(api_keys::id.eq(id))
            .filter(api_keys::revoked_at.is_null())
    )
    .set(api_keys::revoked_at.eq(at))
    .execute(c)
    .await)?;
    Ok(changed > 0)
}

/// Revokes every live key of a user (on disable); returns how many.
pub async fn revoke_all_for_user(conn: &mut DbConn, user_id: Id, at: Timestamp) -> Result<usize> {
    let changed = with_conn!(conn, |c| diesel::update(
        api_keys::table
            .filter(api_keys::user_id.eq(user_id))
            .filter(api_keys::revoked_at.is_null())
    )
    .set(api_keys::revoked_at.eq(at))
    .execute(c)
    .await)?;
    Ok(changed)
}

pub async fn touch(conn: &mut DbConn, id: Id, at: Timestamp) -> Result<()> {
    with_conn!(conn, |c| diesel::update(api_keys::table.find(id))
        .set(api_keys::last_used_at.eq(at))
        .execute(c)
        .await)?;
    Ok(())
}
