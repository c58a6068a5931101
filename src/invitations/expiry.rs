//! Expiry: pending invitations past `expiresAt` are marked expired (each with an
//! `invitation.expired` event), and ended invitations are forgotten after the retention period.

use chrono::TimeDelta;

use super::create::invitation_target;
use crate::app::App;
use crate::audit::{self, AuditAction, Event};
use crate::db::Timestamp;
use crate::db::invitations::{self as rows, EXPIRED};
use crate::db::models::InvitationRow;
use crate::error::Result;

/// Invitations expired per transaction.
const BATCH: i64 = 500;

/// Marks every lapsed pending invitation expired, then deletes invitations that ended more than
/// `PORTCULLIS_INVITATION_RETENTION_DAYS` ago and idempotency keys past their day. Returns how
/// many invitations it expired. `now` is the time it is (the database's, when run periodically).
pub async fn sweep(app: &App, now: Timestamp) -> Result<usize> {
    let mut expired = 0;
    let mut conn = app.db.conn().await?;
    loop {
        let marked = conn
            .transaction(async |tx| {
                let rows = rows::expire_due(tx, now, BATCH).await?;
                let events = rows.iter().map(expired_event).collect();
                audit::record_all(tx, now, events).await?;
                Ok(rows.len())
            })
            .await?;
        expired += marked;
        if marked < BATCH as usize {
            break;
        }
    }
    let retention = TimeDelta::days(i64::from(app.config.invitation_retention_days));
    let deleted = rows::delete_ended_before(&mut conn, now - retention).await?;
    if deleted > 0 {
        tracing::info!(deleted, "deleted ended invitations past their retention");
    }
    rows::delete_batches_before(&mut conn, now - TimeDelta::hours(24)).await?;
    Ok(expired)
}

/// Turns a lapsed pending invitation into an expired one (ended when it lapsed).
pub(super) fn mark_expired(row: &mut InvitationRow, now: Timestamp) {
    row.status = EXPIRED.to_owned();
    row.token_hash = None;
    row.ended_at = Some(row.expires_at.min(now));
    row.updated_at = now;
}

/// The event that says an invitation lapsed unanswered.
pub(super) fn expired_event(row: &InvitationRow) -> Event {
    Event::system(AuditAction::InvitationExpired)
        .in_organization(Some(row.organization_id))
        .target(invitation_target(row))
        .with("email", &row.email)
        .with("expiresAt", row.expires_at)
}
