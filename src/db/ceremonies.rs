//! Queries over `webauthn_ceremonies`: WebAuthn ceremony state, stored by the step that starts a
//! ceremony and taken — once — by the step that finishes it.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::CeremonyRow;
use super::schema::webauthn_ceremonies;
use super::types::{Id, Timestamp};
use super::{DbConn, with_conn};
use crate::error::Result;

pub async fn insert(conn: &mut DbConn, row: &CeremonyRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(webauthn_ceremonies::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(())
}

/// Takes the ceremony out of the table: of any number of callers presenting the same id, exactly
/// one gets it (the one whose delete removed the row), so a replayed response finds nothing.
/// An expired ceremony is removed too, but not handed out.
pub async fn take(conn: &mut DbConn, id: Id, now: Timestamp) -> Result<Option<CeremonyRow>> {
    let row = with_conn!(conn, |c| webauthn_ceremonies::table
        .find(id)
        .select(CeremonyRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    let Some(row) = row else { return Ok(None) };
    let deleted = with_conn!(conn, |c| diesel::delete(webauthn_ceremonies::table.find(id))
        .execute(c)
        .await)?;
    Ok((deleted == 1 && row.expires_at > now).then_some(row))
}

/// Deletes ceremonies that expired before `before`; returns how many.
pub async fn delete_expired(conn: &mut DbConn, before: Timestamp) -> Result<usize> {
    let deleted = with_conn!(conn, |c| diesel::delete(
        webauthn_ceremonies::table.filter(webauthn_ceremonies::expires_at.lt(before))
    )
    .execute(c)
    .await)?;
    Ok(deleted)
}
