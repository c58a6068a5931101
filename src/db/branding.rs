//! Queries over `organization_branding`: one optional row of white-label settings per organization.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::BrandingRow;
use super::schema::organization_branding;
use super::types::Id;
use super::{DbConn, with_conn};
use crate::error::Result;

pub async fn find(conn: &mut DbConn, organization_id: Id) -> Result<Option<BrandingRow>> {
    let row = with_conn!(conn, |c| organization_branding::table
        .find(organization_id)
        .select(BrandingRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// The branding of several organizations at once (for DataLoaders).
pub async fn find_many(conn: &mut DbConn, organization_ids: &[Id]) -> Result<Vec<BrandingRow>> {
    let rows = with_conn!(conn, |c| organization_branding::table
        .filter(organization_branding::organization_id.eq_any(organization_ids))
        .select(BrandingRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}

/// Writes the whole row, creating it on first use.
pub async fn upsert(conn: &mut DbConn, row: &BrandingRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(organization_branding::table)
        .values(row)
        .on_conflict(organization_branding::organization_id)
        .do_update()
        .set(row)
        .execute(c)
        .await)?;
    Ok(())
}
