//! Queries over `cedar_schemas` (integrators' schema fragments) and `authz_state` (the version).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::CedarSchemaRow;
use super::schema::{authz_state, cedar_schemas};
use super::{DbConn, notify, with_conn};
use crate::error::Result;

/// Inserts or replaces the fragment of `row.namespace`.
pub async fn upsert(conn: &mut DbConn, row: &CedarSchemaRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(cedar_schemas::table)
        .values(row)
        .on_conflict(cedar_schemas::namespace)
        .do_update()
        .set((
            cedar_schemas::source.eq(&row.source),
            cedar_schemas::updated_by.eq(row.updated_by),
            cedar_schemas::updated_at.eq(row.updated_at),
        ))
        .execute(c)
        .await)?;
    Ok(())
}

pub async fn delete(conn: &mut DbConn, namespace: &str) -> Result<bool> {
    let deleted = with_conn!(conn, |c| diesel::delete(
        cedar_schemas::table.filter(cedar_schemas::namespace.eq(namespace))
    )
    .execute(c)
    .await)?;
    Ok(deleted > 0)
}

pub async fn all(conn: &mut DbConn) -> Result<Vec<CedarSchemaRow>> {
    let rows = with_conn!(conn, |c| cedar_schemas::table
        .order(cedar_schemas::namespace.asc())
        .select(CedarSchemaRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}

/// The authorization version: bumped by every change to policies, roles, assignments,
/// memberships or schemas, so every instance knows when its compiled state is stale.
pub async fn version(conn: &mut DbConn) -> Result<i64> {
    let version = with_conn!(conn, |c| authz_state::table
        .find(1)
        .select(authz_state::version)
        .get_result(c)
        .await)?;
    Ok(version)
}

/// Bumps the version (inside the caller's transaction) and returns the new one; on PostgreSQL the
/// other instances are told at commit.
pub async fn bump_version(conn: &mut DbConn) -> Result<i64> {
    with_conn!(conn, |c| diesel::update(authz_state::table.find(1))
        .set(authz_state::version.eq(authz_state::version + 1))
        .execute(c)
        .await)?;
    notify::announce(conn, notify::AUTHZ_CHANNEL).await?;
    version(conn).await
}
