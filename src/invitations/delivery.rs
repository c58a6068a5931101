//! The invitation email job: mints the token, renders the email in the invitee's language and
//! the organization's branding, and hands it to the mailer.
//!
//! The token is minted here, at send time, and only its hash is written: so no token rests in the
//! queue or the table. A retry mints a new one (the link in an email that failed ambiguously dies,
//! the one that arrives works), and a job superseded by a resend or an ended invitation sends
//! nothing.

use serde::{Deserialize, Serialize};

use super::{InvitationStatus, token};
use crate::app::App;
use crate::db::invitations as rows;
use crate::db::models::{InvitationRow, JobRow};
use crate::db::{branding, organizations, users};
use crate::email::{self, InvitationEmail, SendFailure};
use crate::error::{Error, Result};
use crate::jobs::{JobKind, NewJob, Outcome};

/// The payload of an `invitation.email` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailJob {
    pub invitation_id: crate::db::Id,
    /// Which send of the invitation this is; a later resend supersedes it.
    pub send: i32,
}

impl EmailJob {
    /// The job that sends `row`'s current email.
    pub fn for_send(row: &InvitationRow) -> Result<NewJob> {
        let payload = EmailJob {
            invitation_id: row.id,
            send: row.send_count,
        };
        Ok(NewJob::new(JobKind::InvitationEmail, &payload)?
            .in_organization(row.organization_id)
            .to(row.email.clone()))
    }
}

/// Runs one `invitation.email` job.
pub async fn run(app: &App, job: &JobRow) -> Outcome {
    match deliver(app, job).await {
        Ok(outcome) => outcome,
        // The database or a template failed: worth another try later.
        Err(error) => {
            let message = match &error {
                Error::Internal(source) => format!("{source:#}"),
                other => other.message(),
            };
            Outcome::retry(message)
        }
    }
}

async fn deliver(app: &App, job: &JobRow) -> Result<Outcome> {
    let Ok(payload) = serde_json::from_str::<EmailJob>(&job.payload) else {
        return Ok(Outcome::Fail("malformed job payload".to_owned()));
    };
    let now = app.now();
    let mut conn = app.db.conn().await?;
    let Some(invitation) = rows::find(&mut conn, payload.invitation_id).await? else {
        return Ok(Outcome::Done);
    };
    if InvitationStatus::of(&invitation, now)? != InvitationStatus::Pending
        || invitation.send_count != payload.send
    {
        tracing::info!(invitation = %invitation.id, "invitation email superseded; nothing sent");
        return Ok(Outcome::Done);
    }
    let organization = organizations::find(&mut conn, invitation.organization_id)
        .await?
        .ok_or(Error::NotFound("organization"))?;
    let branding = branding::find(&mut conn, invitation.organization_id)
        .await?
        .map(crate::identity::branding::view)
        .unwrap_or_default();
    let inviter_name = match invitation.invited_by_user_id {
        Some(id) => users::find(&mut conn, id).await?.map(|user| user.display_name),
        None => None,
    };
    let roles = rows::roles_of(&mut conn, &[invitation.id])
        .await?
        .into_iter()
        .map(|(_, role)| role.name)
        .collect();

    let (token, hash) = token::mint()?;
    let mut minted = invitation.clone();
    minted.token_hash = Some(hash);
    minted.updated_at = now;
    let current = conn
        .transaction(async |tx| rows::update_if_pending(tx, &minted, None).await)
        .await?;
    if !current {
        return Ok(Outcome::Done);
    }
    let organization_name = branding
        .display_name
        .clone()
        .unwrap_or_else(|| organization.name.clone());
    let email = email::render_invitation(&InvitationEmail {
        to: invitation.email.clone(),
        locale: invitation.locale.clone(),
        inviter_name: inviter_name.unwrap_or_else(|| organization_name.clone()),
        organization_name,
        branding,
        roles,
        message: invitation.message.clone(),
        accept_url: accept_url(app, &token),
        expires_at: invitation.expires_at,
        message_id: format!("{}@{}", job.id, host_of(&app.config.public_url())),
    })?;
    Ok(match app.mailer.send(&email).await {
        Ok(()) => {
            tracing::info!(invitation = %invitation.id, "invitation email sent");
            Outcome::Done
        }
        Err(SendFailure::Transient(error)) => Outcome::retry(error),
        Err(SendFailure::Permanent(error)) => Outcome::Fail(error),
    })
}

/// The link in the email: the gateway's own accept page, or the team's page when configured.
pub fn accept_url(app: &App, token: &str) -> String {
    let base = app
        .config
        .invitation_url
        .clone()
        .unwrap_or_else(|| format!("{}/invitations/accept", app.config.public_url()));
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}token={token}")
}

/// The host part of a URL, for Message-IDs.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}
