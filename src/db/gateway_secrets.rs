//! Queries over `gateway_secrets`: secrets all instances share, made once by the first to need one.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::gateway_secrets;
use super::{DbConn, with_conn};
use crate::error::Result;

/// The secret called `name`: the stored one, or `candidate` when none was stored yet (of several
/// instances starting at once, every one gets the first that was stored).
pub async fn get_or_create(conn: &mut DbConn, name: &str, candidate: &[u8]) -> Result<Vec<u8>> {
    with_conn!(conn, |c| diesel::insert_into(gateway_secrets::table)
        .values((
            gateway_secrets::name.eq(name),
            gateway_secrets::secret.eq(candidate)
        ))
        .on_conflict(gateway_secrets::name)
        .do_nothing()
        .execute(c)
        .await)?;
    let secret = with_conn!(conn, |c| gateway_secrets::table
        .find(name)
        .select(gateway_secrets::secret)
        .get_result(c)
        .await)?;
    Ok(secret)
}
