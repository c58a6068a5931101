//! Queries over `signing_keys`: the Ed25519 keys that sign access tokens.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::SigningKeyRow;
use super::schema::signing_keys;
use super::types::{Id, Timestamp};
use super::{DbConn, with_conn};
use crate::error::Result;

pub async fn insert(conn: &mut DbConn, row: &SigningKeyRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(signing_keys::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(())
}

/// Keys that are current or were retired after `retired_after` (their tokens may still be live).
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

/// Retires every current key except `keep`.
pub async fn retire_all_except(conn: &mut DbConn, keep: Id, at: Timestamp) -> Result<usize> {
    let changed = with_conn!(conn, |c| diesel::update(
        signing_keys::table
            .filter(signing_keys::id.ne(keep))
            .filter(signing_keys::retired_at.is_null())
    )
    .set(signing_keys::retired_at.eq(at))
    .execute(c)
    .await)?;
    Ok(changed)
}
