//! The kinds of job, and which domain function runs each.

use super::{Outcome, backoff};
use crate::app::App;
use crate::db::models::JobRow;
use crate::db::{DbConn, Timestamp};
use crate::{invitations, webhooks};

/// What a job does. The name is stored; renaming one strands its queued jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Send (or resend) an invitation's email, minting its token.
    InvitationEmail,
    /// One attempt at delivering a webhook message.
    WebhookDelivery,
}

impl JobKind {
    pub const ALL: [JobKind; 2] = [Self::InvitationEmail, Self::WebhookDelivery];

    /// Kinds that send email: what `emailDeliveries` lists.
    pub const EMAIL: [JobKind; 1] = [Self::InvitationEmail];

    pub fn name(self) -> &'static str {
        match self {
            Self::InvitationEmail => "invitation.email",
            Self::WebhookDelivery => "webhook.delivery",
        }
    }

    /// Seconds to wait after each failed attempt (the last entry repeats).
    pub fn retry_schedule(self) -> &'static [i64] {
        match self {
            Self::InvitationEmail => backoff::EMAIL,
            Self::WebhookDelivery => backoff::WEBHOOK,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// Runs one claimed job.
pub async fn run(app: &App, job: &JobRow) -> Outcome {
    match JobKind::parse(&job.kind) {
        Some(JobKind::InvitationEmail) => invitations::delivery::run(app, job).await,
        Some(JobKind::WebhookDelivery) => webhooks::deliver::run(app, job).await,
        None => Outcome::Fail(format!("unknown job kind {:?}", job.kind)),
    }
}

/// Runs in the transaction that sends a job to the dead letters because its attempts ran out.
pub async fn exhausted(
    tx: &mut DbConn,
    job: &JobRow,
    error: &str,
    now: Timestamp,
) -> crate::error::Result<()> {
    match JobKind::parse(&job.kind) {
        Some(JobKind::WebhookDelivery) => webhooks::deliver::exhausted(tx, job, error, now).await,
        Some(JobKind::InvitationEmail) | None => Ok(()),
    }
}
