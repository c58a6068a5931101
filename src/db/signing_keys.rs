//! Queries over `signing_keys`: the Ed25519 keys that sign access tokens.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::SigningKeyRow;
use super::schema::signing_keys;
use super::types::Timestamp;
use super::{DbConn, notify, with_conn};
use crate::error::Result;

/// Stores `row` as the first key, unless a key exists already; true if it was stored. Run inside a
/// transaction (on SQLite an IMMEDIATE one: the check and the insert then happen under one lock).
pub async fn insert_if_none(conn: &mut DbConn, row: &SigningKeyRow) -> Result<bool> {
    let existing: i64 = with_conn!(conn, |c| signing_keys::table.count().get_result(c).await)?;
    if existing > 0 {
        return Ok(false);
    }
    with_conn!(conn, |c| diesel::insert_into(signing_keys::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(true)
}

/// Stores `row` as the key that signs from its `activates_at` on: every other key stops signing
/// then (`retired_at`), unless it stops sooner already. Announces the rotation to every instance
/// (at commit, when run inside a transaction).
pub async fn rotate_to(conn: &mut DbConn, row: &SigningKeyRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(signing_keys::table)
        .values(row)
        .execute(c)
        .await)?;
    with_conn!(conn, |c| diesel::update(
        signing_keys::table.filter(signing_keys::id.ne(row.id)).filter(
            signing_keys::retired_at
                .is_null()
                .or(signing_keys::retired_at.gt(row.activates_at)),
        )
    )
    .set(signing_keys::retired_at.eq(row.activates_at))
    .execute(c)
    .await)?;
    notify::announce(conn, notify::KEYS_CHANNEL).await
}

/// Keys that sign now or later, or stopped signing after `retired_after` (their tokens may still
/// be live), newest first.
pub async fn list_publishable(conn: &mut DbConn, retired_after: Timestamp) -> Result<Vec<SigningKeyRow>> {
    let rows = with_conn!(conn, |c| signing_keys::table
        .filter(
            signing_keys::retired_at
                .is_null()
                .or(signing_keys::retired_at.gt(retired_after)),
        )
        .order(signing_keys::id.desc())
        .select(SigningKeyRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}
