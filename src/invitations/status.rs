//! An invitation's status as callers see it.

use crate::db::Timestamp;
use crate::db::invitations::{ACCEPTED, EXPIRED, PENDING, REVOKED, unknown_status};
use crate::db::models::InvitationRow;
use crate::error::Result;

/// Where an invitation stands. A pending invitation past its expiry is `Expired` at once, before
/// the sweep marks it so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

impl InvitationStatus {
    pub fn of(row: &InvitationRow, now: Timestamp) -> Result<Self> {
        Ok(match row.status.as_str() {
            PENDING if row.expires_at <= now => Self::Expired,
            PENDING => Self::Pending,
            ACCEPTED => Self::Accepted,
            REVOKED => Self::Revoked,
            EXPIRED => Self::Expired,
            other => return Err(unknown_status(other)),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}
