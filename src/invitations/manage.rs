//! Reading, listing, resending and revoking invitations, and the public preview behind a token.

use chrono::TimeDelta;

use super::create::invitation_target;
use super::delivery::EmailJob;
use super::{InvitationStatus, token};
use crate::app::App;
use crate::audit::{self, AuditAction, Event};
use crate::authz::{Action, Resource, guard};
use crate::branding::Branding;
use crate::db::invitations::{self as rows, InvitationFilter, REVOKED};
use crate::db::models::{InvitationRow, OrganizationRow, RoleRow};
use crate::db::{Id, Page, PageOf, branding, organizations, users};
use crate::error::{Error, Result};
use crate::identity::{Actor, ClientInfo};
use crate::jobs;

/// Most sends of one invitation: the first and five resends.
pub const MAX_SENDS: i32 = 6;
/// Least time between two sends of one invitation.
const RESEND_INTERVAL: TimeDelta = TimeDelta::minutes(1);

/// The invitation, when it exists and the caller may read it (else `None`, whichever it is).
pub async fn get(app: &App, actor: &Actor, id: Id) -> Result<Option<InvitationRow>> {
    let mut conn = app.db.conn().await?;
    let Some(row) = rows::find(&mut conn, id).await? else {
        return Ok(None);
    };
    let readable = guard::allows(
        app,
        actor,
        Action::InvitationRead,
        Resource::Organization(row.organization_id),
    )
    .await?;
    Ok(readable.then_some(row))
}

/// Invitations of one organization (`invitation.list` there), or of all (`invitation.list`
/// gateway-wide) when the filter names none.
pub async fn list(
    app: &App,
    actor: &Actor,
    filter: &InvitationFilter,
    page: &Page,
) -> Result<PageOf<InvitationRow>> {
    match filter.organization_ids.as_deref() {
        Some(ids) => {
            for &id in ids {
                guard::check(app, actor, Action::InvitationList, Resource::Organization(id)).await?;
            }
        }
        None => guard::check(app, actor, Action::InvitationList, Resource::Gateway).await?,
    }
    let mut conn = app.db.reader().await?;
    rows::list(&mut conn, filter, app.now(), page).await
}

/// Sends a pending invitation again with a new token (the old link dies at once) and a new
/// expiry. At most once a minute and five times in all.
pub async fn resend(app: &App, actor: &Actor, id: Id) -> Result<InvitationRow> {
    let row = pending_for(app, actor, Action::InvitationResend, id).await?;
    let now = app.now();
    if row.send_count >= MAX_SENDS {
        return Err(Error::RateLimited {
            retry_after_secs: (row.expires_at.0 - now.0).num_seconds().max(1) as u64,
        });
    }
    if let Some(last) = row.last_sent_at
        && now < last + RESEND_INTERVAL
    {
        return Err(Error::RateLimited {
            retry_after_secs: (last + RESEND_INTERVAL)
                .0
                .signed_duration_since(now.0)
                .num_seconds()
                .max(1) as u64,
        });
    }
    let ttl = TimeDelta::days(i64::from(app.config.invitation_ttl_days.clamp(1, 30)));
    let mut resent = row.clone();
    resent.token_hash = None;
    resent.send_count += 1;
    resent.last_sent_at = Some(now);
    resent.expires_at = now + ttl;
    resent.updated_at = now;
    let event = Event::by(actor, AuditAction::InvitationResent)
        .in_organization(Some(row.organization_id))
        .target(invitation_target(&row))
        .with("email", &row.email)
        .with("sendCount", resent.send_count)
        .change("expiresAt", row.expires_at, resent.expires_at);
    let job = EmailJob::for_send(&resent)?;
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        if !rows::update_if_pending(tx, &resent, None).await? {
            return Err(not_pending());
        }
        audit::record(tx, now, event).await?;
        jobs::enqueue(tx, now, vec![job]).await
    })
    .await?;
    Ok(resent)
}

/// Withdraws a pending invitation: its link stops working.
pub async fn revoke(app: &App, actor: &Actor, id: Id) -> Result<InvitationRow> {
    let row = pending_for(app, actor, Action::InvitationRevoke, id).await?;
    let now = app.now();
    let mut revoked = row.clone();
    revoked.status = REVOKED.to_owned();
    revoked.token_hash = None;
    revoked.revoked_by_user_id = Some(actor.user_id());
    revoked.revoked_at = Some(now);
    revoked.ended_at = Some(now);
    revoked.updated_at = now;
    let event = Event::by(actor, AuditAction::InvitationRevoked)
        .in_organization(Some(row.organization_id))
        .target(invitation_target(&row))
        .with("email", &row.email);
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        if !rows::update_if_pending(tx, &revoked, None).await? {
            return Err(not_pending());
        }
        audit::record(tx, now, event).await.map(|_| ())
    })
    .await?;
    Ok(revoked)
}

/// The invitation `id` for `action` by `actor`, which must be pending.
async fn pending_for(app: &App, actor: &Actor, action: Action, id: Id) -> Result<InvitationRow> {
    let mut conn = app.db.conn().await?;
    let row = rows::find(&mut conn, id)
        .await?
        .ok_or(Error::NotFound("invitation"))?;
    if !guard::allows(
        app,
        actor,
        Action::InvitationRead,
        Resource::Organization(row.organization_id),
    )
    .await?
    {
        return Err(Error::NotFound("invitation"));
    }
    guard::check(app, actor, action, Resource::Organization(row.organization_id)).await?;
    if InvitationStatus::of(&row, app.now())? != InvitationStatus::Pending {
        return Err(not_pending());
    }
    Ok(row)
}

fn not_pending() -> Error {
    Error::conflict_because(
        "id",
        "only a pending invitation can be changed; this one was accepted, revoked or has expired",
        "NOT_PENDING",
        None,
    )
}

/// What the accept page shows to whoever holds the link.
#[derive(Debug, Clone)]
pub struct Preview {
    pub invitation: InvitationRow,
    pub organization: OrganizationRow,
    pub branding: Branding,
    pub inviter_name: Option<String>,
    pub roles: Vec<RoleRow>,
    /// The invited address, partly hidden (`j***@example.com`).
    pub masked_email: String,
    /// Whether an account with the invited address exists (the page then asks to sign in).
    pub account_exists: bool,
}

/// The pending invitation behind `token`, for anyone who holds it. Bad, spent, revoked and expired
/// tokens are all the same NOT_FOUND; failed lookups are rate limited per client.
pub async fn preview(app: &App, presented: &str, client: &ClientInfo) -> Result<Preview> {
    let invitation = by_token(app, presented, client).await?;
    let mut conn = app.db.conn().await?;
    let organization = organizations::find(&mut conn, invitation.organization_id)
        .await?
        .ok_or(Error::NotFound("invitation"))?;
    let branding = branding::find(&mut conn, organization.id)
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
        .map(|(_, role)| role)
        .collect();
    let account_exists = users::find_by_email(&mut conn, &invitation.email)
        .await?
        .is_some();
    Ok(Preview {
        account_exists,
        masked_email: mask(&invitation.email),
        invitation,
        organization,
        branding,
        inviter_name,
        roles,
    })
}

/// The pending invitation a token opens, counting failed guesses against the client.
pub(super) async fn by_token(app: &App, presented: &str, client: &ClientInfo) -> Result<InvitationRow> {
    let now = app.now();
    let attempt = app
        .limits
        .invitation_token
        .reserve(&app.db, client.ip.as_deref().unwrap_or("-"), now)
        .await?;
    let found = match token::hash_of(presented.trim()) {
        Some(hash) => {
            let mut conn = app.db.conn().await?;
            rows::find_by_token_hash(&mut conn, &hash).await?
        }
        None => None,
    };
    match found {
        Some(row) if InvitationStatus::of(&row, now)? == InvitationStatus::Pending => {
            app.limits.invitation_token.refund(&app.db, attempt).await;
            Ok(row)
        }
        _ => {
            let _ = app.limits.invitation_token.failed(&app.db, attempt, now).await;
            Err(Error::NotFound("invitation"))
        }
    }
}

/// `jane@example.com` → `j***@example.com`: enough to recognize, not enough to harvest.
pub fn mask(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}
