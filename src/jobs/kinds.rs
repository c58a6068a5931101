//! The kinds of job, and which domain function runs each.

use super::Outcome;
use crate::app::App;
use crate::db::models::JobRow;
use crate::invitations;

/// What a job does. The name is stored; renaming one strands its queued jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Send (or resend) an invitation's email, minting its token.
    InvitationEmail,
}

impl JobKind {
    pub const ALL: [JobKind; 1] = [Self::InvitationEmail];

    /// Kinds that send email: what `emailDeliveries` lists.
    pub const EMAIL: [JobKind; 1] = [Self::InvitationEmail];

    pub fn name(self) -> &'static str {
        match self {
            Self::InvitationEmail => "invitation.email",
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
        None => Outcome::Fail(format!("unknown job kind {:?}", job.kind)),
    }
}
