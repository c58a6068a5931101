//! Queries over `sessions` and their `refresh_tokens`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::{RefreshTokenRow, SessionRow, UserRow};
use super::page::paginate;
use super::schema::{refresh_tokens, sessions, users};
use super::types::{Id, Timestamp};
use super::{DbConn, Page, PageOf, with_conn};
use crate::error::Result;

pub async fn insert(conn: &mut DbConn, row: &SessionRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(sessions::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(())
}

pub async fn find(conn: &mut DbConn, id: Id) -> Result<Option<SessionRow>> {
    let row = with_conn!(conn, |c| sessions::table
        .find(id)
        .select(SessionRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// The session and its user in one statement: what every authenticated request needs.
pub async fn find_with_user(conn: &mut DbConn, id: Id) -> Result<Option<(SessionRow, UserRow)>> {
    let row = with_conn!(conn, |c| sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(id))
        .select((SessionRow::as_select(), UserRow::as_select()))
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

pub async fn list_for_user(conn: &mut DbConn, user_id: Id, page: &Page) -> Result<PageOf<SessionRow>> {
    let (rows, total) = with_conn!(conn, |c| {
        let query = sessions::table
            .filter(sessions::user_id.eq(user_id))
            .select(SessionRow::as_select())
            .into_boxed();
        let rows = paginate!(query, sessions::id, page).load(c).await?;
        let total: i64 = sessions::table
            .filter(sessions::user_id.eq(user_id))
            .count()
            .get_result(c)
            .await?;
        Ok::<_, diesel::result::Error>((rows, total))
    })?;
    Ok(page.finish(rows, total))
}

/// Marks the session revoked unless it already is; returns whether this call revoked it.
pub async fn revoke(conn: &mut DbConn, id: Id, at: Timestamp, reason: &str) -> Result<bool> {
    let changed = with_conn!(conn, |c| diesel::update(
        sessions::table
            .filter(sessions::id.eq(id))
            .filter(sessions::revoked_at.is_null())
    )
    .set((sessions::revoked_at.eq(at), sessions::revoked_reason.eq(reason)))
    .execute(c)
    .await)?;
    Ok(changed > 0)
}

/// Revokes every live session of a user (on disable); returns how many were revoked.
pub async fn revoke_all_for_user(
    conn: &mut DbConn,
    user_id: Id,
    at: Timestamp,
    reason: &str,
) -> Result<usize> {
    let changed = with_conn!(conn, |c| diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null())
    )
    .set((sessions::revoked_at.eq(at), sessions::revoked_reason.eq(reason)))
    .execute(c)
    .await)?;
    Ok(changed)
}

/// Revokes every live session of a user but `keep` (after a password change); returns how many.
pub async fn revoke_others_for_user(
    conn: &mut DbConn,
    user_id: Id,
    keep: Option<Id>,
    at: Timestamp,
    reason: &str,
) -> Result<usize> {
    // The nil id is never a session's, so without one to keep every session goes.
    let keep = keep.unwrap_or(Id(uuid::Uuid::nil()));
    let changed = with_conn!(conn, |c| diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::id.ne(keep))
            .filter(sessions::revoked_at.is_null())
    )
    .set((sessions::revoked_at.eq(at), sessions::revoked_reason.eq(reason)))
    .execute(c)
    .await)?;
    Ok(changed)
}

pub async fn touch(conn: &mut DbConn, id: Id, at: Timestamp) -> Result<()> {
    with_conn!(conn, |c| diesel::update(sessions::table.find(id))
        .set(sessions::last_refreshed_at.eq(at))
        .execute(c)
        .await)?;
    Ok(())
}

pub async fn insert_refresh_token(conn: &mut DbConn, row: &RefreshTokenRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(refresh_tokens::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(())
}

pub async fn find_refresh_token(conn: &mut DbConn, id: Id) -> Result<Option<RefreshTokenRow>> {
    let row = with_conn!(conn, |c| refresh_tokens::table
        .find(id)
        .select(RefreshTokenRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// How a refresh token was spent: by whom, and what replaced it.
#[derive(Debug, Clone, Copy)]
pub struct Spend<'a> {
    pub at: Timestamp,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub replaced_by: Id,
    pub successor_salt: &'a [u8],
}

/// Consumes a refresh token. Only one caller can win: the update matches an unused token only,
/// so two concurrent refreshes with the same token cannot both succeed (on PostgreSQL the second
/// waits for the first to commit, then matches nothing; SQLite has one writer at a time).
pub async fn use_refresh_token(conn: &mut DbConn, id: Id, spend: Spend<'_>) -> Result<bool> {
    let changed = with_conn!(conn, |c| diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::id.eq(id))
            .filter(refresh_tokens::used_at.is_null())
    )
    .set((
        refresh_tokens::used_at.eq(spend.at),
        refresh_tokens::used_ip.eq(spend.ip),
        refresh_tokens::used_user_agent.eq(spend.user_agent),
        refresh_tokens::replaced_by.eq(spend.replaced_by),
        refresh_tokens::successor_salt.eq(spend.successor_salt),
    ))
    .execute(c)
    .await)?;
    Ok(changed == 1)
}

/// Erases what the successor `successor` of a token in `session_id` was derived from, once that
/// successor is spent: the token it replaced can no longer lead anywhere.
pub async fn forget_successor_salt(conn: &mut DbConn, session_id: Id, successor: Id) -> Result<()> {
    let none: Option<Vec<u8>> = None;
    with_conn!(conn, |c| diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::session_id.eq(session_id))
            .filter(refresh_tokens::replaced_by.eq(successor))
    )
    .set(refresh_tokens::successor_salt.eq(none))
    .execute(c)
    .await)?;
    Ok(())
}

/// Records a second factor proved now, counting for MFA until `until` (never shortening a longer
/// window the session already has).
pub async fn verify_mfa(conn: &mut DbConn, id: Id, at: Timestamp, until: Timestamp) -> Result<()> {
    with_conn!(conn, |c| diesel::update(sessions::table.find(id))
        .set(sessions::mfa_verified_at.eq(at))
        .execute(c)
        .await)?;
    with_conn!(conn, |c| diesel::update(
        sessions::table.filter(sessions::id.eq(id)).filter(
            sessions::mfa_expires_at
                .is_null()
                .or(sessions::mfa_expires_at.lt(until))
        )
    )
    .set(sessions::mfa_expires_at.eq(until))
    .execute(c)
    .await)?;
    Ok(())
}
