//! Queries over `passkeys` (WebAuthn credentials) and `passkey_setup_links`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::{PasskeyRow, PasskeySetupLinkRow, UserRow};
use super::page::paginate;
use super::schema::{passkey_setup_links, passkeys, users};
use super::types::{Id, Timestamp};
use super::{DbConn, Page, PageOf, with_conn};
use crate::error::Result;

pub async fn insert(conn: &mut DbConn, row: &PasskeyRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(passkeys::table)
        .values(row)
        .execute(c)
        .await
        .map_err(super::error::conflict_on(
            "credential",
            "this passkey is already registered"
        )))?;
    Ok(())
}

pub async fn find(conn: &mut DbConn, id: Id) -> Result<Option<PasskeyRow>> {
    let row = with_conn!(conn, |c| passkeys::table
        .find(id)
        .select(PasskeyRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// The passkey an assertion names, with its account.
pub async fn find_by_credential_id(
    conn: &mut DbConn,
    credential_id: &str,
) -> Result<Option<(PasskeyRow, UserRow)>> {
    let row = with_conn!(conn, |c| passkeys::table
        .inner_join(users::table)
        .filter(passkeys::credential_id.eq(credential_id))
        .select((PasskeyRow::as_select(), UserRow::as_select()))
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// Every passkey of a user (for allow and exclude lists: a handful per account).
pub async fn all_for_user(conn: &mut DbConn, user_id: Id) -> Result<Vec<PasskeyRow>> {
    let rows = with_conn!(conn, |c| passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .order(passkeys::id)
        .select(PasskeyRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}

pub async fn list_for_user(conn: &mut DbConn, user_id: Id, page: &Page) -> Result<PageOf<PasskeyRow>> {
    let (rows, total) = with_conn!(conn, |c| {
        let query = passkeys::table
            .filter(passkeys::user_id.eq(user_id))
            .select(PasskeyRow::as_select())
            .into_boxed();
        let rows = paginate!(query, passkeys::id, page).load(c).await?;
        let total: i64 = passkeys::table
            .filter(passkeys::user_id.eq(user_id))
            .count()
            .get_result(c)
            .await?;
        Ok::<_, diesel::result::Error>((rows, total))
    })?;
    Ok(page.finish(rows, total))
}

pub async fn count_for_user(conn: &mut DbConn, user_id: Id) -> Result<i64> {
    let count = with_conn!(conn, |c| passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .count()
        .get_result(c)
        .await)?;
    Ok(count)
}

pub async fn rename(conn: &mut DbConn, id: Id, name: &str) -> Result<()> {
    with_conn!(conn, |c| diesel::update(passkeys::table.find(id))
        .set(passkeys::name.eq(name))
        .execute(c)
        .await)?;
    Ok(())
}

/// Records a verified use: the credential (its new signature counter and backup flags) and when.
/// Guarded by the credential as it was read, so of two racing sign-ins with one counter value
/// only one advances it; returns whether this call did.
pub async fn record_use(
    conn: &mut DbConn,
    id: Id,
    read_as: &str,
    credential: &str,
    backed_up: bool,
    at: Timestamp,
) -> Result<bool> {
    let changed = with_conn!(conn, |c| diesel::update(
        passkeys::table
            .filter(passkeys::id.eq(id))
            .filter(passkeys::credential.eq(read_as))
    )
    .set((
        passkeys::credential.eq(credential),
        passkeys::backed_up.eq(backed_up),
        passkeys::last_used_at.eq(at),
    ))
    .execute(c)
    .await)?;
    Ok(changed > 0)
}

pub async fn delete(conn: &mut DbConn, id: Id) -> Result<bool> {
    let deleted = with_conn!(conn, |c| diesel::delete(passkeys::table.find(id))
        .execute(c)
        .await)?;
    Ok(deleted > 0)
}

pub async fn insert_setup_link(conn: &mut DbConn, row: &PasskeySetupLinkRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(passkey_setup_links::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(())
}

/// Marks every unused link of the account as used (a newer link replaces them).
pub async fn retire_setup_links(conn: &mut DbConn, user_id: Id, at: Timestamp) -> Result<()> {
    with_conn!(conn, |c| diesel::update(
        passkey_setup_links::table
            .filter(passkey_setup_links::user_id.eq(user_id))
            .filter(passkey_setup_links::used_at.is_null())
    )
    .set(passkey_setup_links::used_at.eq(at))
    .execute(c)
    .await)?;
    Ok(())
}

/// The unused, unexpired link with this token hash, with its account.
pub async fn find_live_setup_link(
    conn: &mut DbConn,
    token_hash: &[u8],
    now: Timestamp,
) -> Result<Option<(PasskeySetupLinkRow, UserRow)>> {
    let row = with_conn!(conn, |c| passkey_setup_links::table
        .inner_join(users::table.on(users::id.eq(passkey_setup_links::user_id)))
        .filter(passkey_setup_links::token_hash.eq(token_hash))
        .filter(passkey_setup_links::used_at.is_null())
        .filter(passkey_setup_links::expires_at.gt(now))
        .select((PasskeySetupLinkRow::as_select(), UserRow::as_select()))
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// Spends a link; false when it was already spent (a racing registration won).
pub async fn use_setup_link(conn: &mut DbConn, id: Id, at: Timestamp) -> Result<bool> {
    let changed = with_conn!(conn, |c| diesel::update(
        passkey_setup_links::table
            .filter(passkey_setup_links::id.eq(id))
            .filter(passkey_setup_links::used_at.is_null())
    )
    .set(passkey_setup_links::used_at.eq(at))
    .execute(c)
    .await)?;
    Ok(changed > 0)
}

/// Deletes links that expired before `before`; returns how many.
pub async fn delete_setup_links_expired_before(conn: &mut DbConn, before: Timestamp) -> Result<usize> {
    let deleted = with_conn!(conn, |c| diesel::delete(
        passkey_setup_links::table.filter(passkey_setup_links::expires_at.lt(before))
    )
    .execute(c)
    .await)?;
    Ok(deleted)
}
