//! Queries over `invitations`, their roles, and the remembered answers of bulk calls.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::{InvitationBatchRow, InvitationRow, RoleRow};
use super::page::paginate;
use super::schema::{invitation_batches, invitation_roles, invitations, memberships, roles, users};
use super::types::{Id, Timestamp};
use super::users::like_pattern;
use super::{DbConn, Page, PageOf, with_conn};
use crate::error::{Error, Result};

pub const PENDING: &str = "pending";
pub const ACCEPTED: &str = "accepted";
pub const REVOKED: &str = "revoked";
pub const EXPIRED: &str = "expired";

/// Inserts invitations and their roles within the caller's transaction. A second pending
/// invitation for the same (organization, email) is a CONFLICT.
pub async fn insert_all(tx: &mut DbConn, rows: &[InvitationRow], role_links: &[(Id, Id)]) -> Result<()> {
    let links: Vec<_> = role_links
        .iter()
        .map(|&(invitation, role)| {
            (
                invitation_roles::invitation_id.eq(invitation),
                invitation_roles::role_id.eq(role),
            )
        })
        .collect();
    super::insert_many!(tx, invitations::table, rows, INSERT_CHUNK).map_err(super::error::conflict_on(
        "email",
        "a pending invitation for this email already exists",
    ))?;
    super::insert_many!(tx, invitation_roles::table, links, INSERT_CHUNK)?;
    Ok(())
}

/// Rows per INSERT statement: well under both backends' limits on bound parameters.
const INSERT_CHUNK: usize = 400;

pub async fn find(conn: &mut DbConn, id: Id) -> Result<Option<InvitationRow>> {
    let row = with_conn!(conn, |c| invitations::table
        .find(id)
        .select(InvitationRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

pub async fn find_many(conn: &mut DbConn, ids: &[Id]) -> Result<Vec<InvitationRow>> {
    let rows = with_conn!(conn, |c| invitations::table
        .filter(invitations::id.eq_any(ids))
        .select(InvitationRow::as_select())
        .load(c)
        .await)?;
    Ok(rows)
}

pub async fn find_by_token_hash(conn: &mut DbConn, hash: &[u8]) -> Result<Option<InvitationRow>> {
    let row = with_conn!(conn, |c| invitations::table
        .filter(invitations::token_hash.eq(hash))
        .select(InvitationRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// The invitations still marked pending (expired or not) for any of `emails` in an organization.
pub async fn pending_for(
    conn: &mut DbConn,
    organization_id: Id,
    emails: &[String],
) -> Result<Vec<InvitationRow>> {
    let mut found = Vec::new();
    for chunk in emails.chunks(INSERT_CHUNK) {
        let rows: Vec<InvitationRow> = with_conn!(conn, |c| invitations::table
            .filter(invitations::organization_id.eq(organization_id))
            .filter(invitations::status.eq(PENDING))
            .filter(invitations::email.eq_any(chunk))
            .select(InvitationRow::as_select())
            .load(c)
            .await)?;
        found.extend(rows);
    }
    Ok(found)
}

/// Which of `emails` belong to members of the organization already.
pub async fn members_among(conn: &mut DbConn, organization_id: Id, emails: &[String]) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for chunk in emails.chunks(INSERT_CHUNK) {
        let rows: Vec<String> = with_conn!(conn, |c| memberships::table
            .inner_join(users::table)
            .filter(memberships::organization_id.eq(organization_id))
            .filter(users::email.eq_any(chunk))
            .select(users::email)
            .load(c)
            .await)?;
        found.extend(rows);
    }
    Ok(found)
}

/// Writes `row` over the stored invitation if that is still pending (and, when given, still holds
/// `token_hash`). False when another change got there first: of two racing accepts, one wins.
pub async fn update_if_pending(
    tx: &mut DbConn,
    row: &InvitationRow,
    token_hash: Option<&[u8]>,
) -> Result<bool> {
    let pending = invitations::table
        .filter(invitations::id.eq(row.id))
        .filter(invitations::status.eq(PENDING));
    let updated = with_conn!(tx, |c| match token_hash {
        Some(hash) => {
            diesel::update(pending.filter(invitations::token_hash.eq(hash)))
                .set(row)
                .execute(c)
                .await
        }
        None => diesel::update(pending).set(row).execute(c).await,
    })?;
    Ok(updated > 0)
}

/// Records who accepted (once their account exists, in the accepting transaction).
pub async fn set_accepted_by(tx: &mut DbConn, id: Id, user_id: Id) -> Result<()> {
    with_conn!(tx, |c| diesel::update(invitations::table.find(id))
        .set(invitations::accepted_by_user_id.eq(user_id))
        .execute(c)
        .await)?;
    Ok(())
}

/// The roles each of `invitation_ids` offers.
pub async fn roles_of(conn: &mut DbConn, invitation_ids: &[Id]) -> Result<Vec<(Id, RoleRow)>> {
    let rows = with_conn!(conn, |c| invitation_roles::table
        .inner_join(roles::table)
        .filter(invitation_roles::invitation_id.eq_any(invitation_ids))
        .order(roles::key.asc())
        .select((invitation_roles::invitation_id, RoleRow::as_select()))
        .load(c)
        .await)?;
    Ok(rows)
}

/// A status as the API shows it: a pending invitation past its expiry reads as expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShownStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

/// Which invitations to list.
#[derive(Debug, Clone, Default)]
pub struct InvitationFilter {
    /// Only these organizations' (`None`: every organization).
    pub organization_ids: Option<Vec<Id>>,
    /// Any of these statuses, as shown (empty: all).
    pub statuses: Vec<ShownStatus>,
    /// Case-insensitive substring of the email.
    pub email: Option<String>,
    pub invited_by: Option<Id>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    pub expiring_before: Option<Timestamp>,
}

pub async fn list(
    conn: &mut DbConn,
    filter: &InvitationFilter,
    now: Timestamp,
    page: &Page,
) -> Result<PageOf<InvitationRow>> {
    let pattern = filter.email.as_deref().map(like_pattern);
    let stored: Vec<&str> = filter
        .statuses
        .iter()
        .filter_map(|status| match status {
            ShownStatus::Accepted => Some(ACCEPTED),
            ShownStatus::Revoked => Some(REVOKED),
            ShownStatus::Expired => Some(EXPIRED),
            ShownStatus::Pending => None,
        })
        .collect();
    let live = filter.statuses.contains(&ShownStatus::Pending);
    let lapsed = filter.statuses.contains(&ShownStatus::Expired);
    macro_rules! filtered {
        () => {{
            let mut query = invitations::table.into_boxed();
            if let Some(ids) = &filter.organization_ids {
                query = query.filter(invitations::organization_id.eq_any(ids));
            }
            let pending = invitations::status.eq(PENDING);
            query = match (filter.statuses.is_empty(), live, lapsed) {
                (true, _, _) => query,
                (false, true, true) => query.filter(invitations::status.eq_any(&stored).or(pending)),
                (false, true, false) => query.filter(
                    invitations::status
                        .eq_any(&stored)
                        .or(pending.and(invitations::expires_at.gt(now))),
                ),
                (false, false, true) => query.filter(
                    invitations::status
                        .eq_any(&stored)
                        .or(pending.and(invitations::expires_at.le(now))),
                ),
                (false, false, false) => query.filter(invitations::status.eq_any(&stored)),
            };
            if let Some(pattern) = &pattern {
                query = query.filter(invitations::email.like(pattern).escape('\\'));
            }
            if let Some(user) = filter.invited_by {
                query = query.filter(invitations::invited_by_user_id.eq(user));
            }
            if let Some(after) = filter.created_after {
                query = query.filter(invitations::created_at.gt(after));
            }
            if let Some(before) = filter.created_before {
                query = query.filter(invitations::created_at.lt(before));
            }
            if let Some(before) = filter.expiring_before {
                query = query.filter(invitations::expires_at.lt(before));
            }
            query
        }};
    }
    let (rows, total) = with_conn!(conn, |c| {
        let rows = paginate!(
            filtered!().select(InvitationRow::as_select()),
            invitations::id,
            page
        )
        .load(c)
        .await?;
        let total: i64 = filtered!().count().get_result(c).await?;
        Ok::<_, diesel::result::Error>((rows, total))
    })?;
    Ok(page.finish(rows, total))
}

/// Marks up to `limit` pending invitations past their expiry as expired, within the caller's
/// transaction, and returns them. On PostgreSQL rows another instance is sweeping are skipped, so
/// each expiry is recorded once.
pub async fn expire_due(tx: &mut DbConn, now: Timestamp, limit: i64) -> Result<Vec<InvitationRow>> {
    macro_rules! due {
        () => {
            invitations::table
                .filter(invitations::status.eq(PENDING))
                .filter(invitations::expires_at.le(now))
                .order(invitations::expires_at.asc())
                .limit(limit)
                .select(invitations::id)
        };
    }
    let ids: Vec<Id> = super::load_skip_locked!(tx, due!())?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = with_conn!(tx, |c| {
        diesel::update(invitations::table.filter(invitations::id.eq_any(&ids)))
            .set((
                invitations::status.eq(EXPIRED),
                invitations::token_hash.eq(None::<Vec<u8>>),
                invitations::ended_at.eq(invitations::expires_at.nullable()),
                invitations::updated_at.eq(now),
            ))
            .execute(c)
            .await?;
        invitations::table
            .filter(invitations::id.eq_any(&ids))
            .select(InvitationRow::as_select())
            .load(c)
            .await
    })?;
    Ok(rows)
}

/// Deletes invitations that ended (accepted, revoked, expired) before `cutoff`; returns how many.
pub async fn delete_ended_before(conn: &mut DbConn, cutoff: Timestamp) -> Result<usize> {
    let deleted = with_conn!(conn, |c| diesel::delete(
        invitations::table
            .filter(invitations::status.ne(PENDING))
            .filter(invitations::ended_at.lt(cutoff))
    )
    .execute(c)
    .await)?;
    Ok(deleted)
}

pub async fn find_batch(
    conn: &mut DbConn,
    organization_id: Id,
    key: &str,
) -> Result<Option<InvitationBatchRow>> {
    let row = with_conn!(conn, |c| invitation_batches::table
        .find((organization_id, key))
        .select(InvitationBatchRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// Remembers a bulk call's answer. A concurrent call with the same key already did: CONFLICT.
pub async fn insert_batch(tx: &mut DbConn, row: &InvitationBatchRow) -> Result<()> {
    with_conn!(tx, |c| diesel::insert_into(invitation_batches::table)
        .values(row)
        .execute(c)
        .await
        .map_err(super::error::conflict_on(
            "idempotencyKey",
            "a call with this idempotency key is already being processed"
        )))?;
    Ok(())
}

/// Forgets one idempotency key (one older than the window, about to be used again).
pub async fn delete_batch(tx: &mut DbConn, organization_id: Id, key: &str) -> Result<()> {
    with_conn!(tx, |c| diesel::delete(
        invitation_batches::table.find((organization_id, key))
    )
    .execute(c)
    .await)?;
    Ok(())
}

/// Forgets idempotency keys older than `cutoff`.
pub async fn delete_batches_before(conn: &mut DbConn, cutoff: Timestamp) -> Result<usize> {
    let deleted = with_conn!(conn, |c| diesel::delete(
        invitation_batches::table.filter(invitation_batches::created_at.lt(cutoff))
    )
    .execute(c)
    .await)?;
    Ok(deleted)
}

/// An internal error for a stored status the code does not know.
pub fn unknown_status(status: &str) -> Error {
    Error::internal(anyhow::anyhow!(
        "invitation with unknown stored status {status:?}"
    ))
}
