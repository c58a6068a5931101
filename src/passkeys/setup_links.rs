//! Setup links: how an account created without a password registers its first passkey. An
//! administrator mints one (`passkey.register` on the account); the person opens it, registers a
//! passkey and is signed in. Single use; only the token's hash is stored.

use chrono::TimeDelta;

use super::ceremony::{Purpose, Started};
use super::register::{self, Holder, NewPasskey};
use crate::app::App;
use crate::audit::{self, AuditAction, Event};
use crate::authz::{Action, Resource, guard};
use crate::db::models::PasskeySetupLinkRow;
use crate::db::{Id, Timestamp, passkeys, users};
use crate::error::{Error, Result};
use crate::identity::users::{ACTIVE, user_target};
use crate::identity::{Actor, secrets};

/// What every setup token starts with (recognizable to secret scanners).
pub const PREFIX: &str = "pcs_";

/// A link just minted: shown once.
#[derive(Debug, Clone)]
pub struct SetupLink {
    pub url: String,
    pub token: String,
    pub expires_at: Timestamp,
}

pub async fn create(app: &App, actor: &Actor, user_id: Id) -> Result<SetupLink> {
    let mut conn = app.db.conn().await?;
    let user = match users::find(&mut conn, user_id).await? {
        Some(user) if guard::allows(app, actor, Action::UserRead, Resource::User(user_id)).await? => user,
        _ => return Err(Error::NotFound("user")),
    };
    guard::check(app, actor, Action::PasskeyRegister, Resource::User(user_id)).await?;
    if user_id == actor.user_id() {
        // A link outlives the credential that minted it: from a stolen password or API key it
        // would be a lasting way in. Your own passkeys are added with startPasskeyRegistration.
        return Err(Error::bad_input(
            "userId",
            "setup links are for other people's accounts; register your own passkey with startPasskeyRegistration",
        ));
    }
    if user.status != ACTIVE {
        return Err(Error::conflict_because(
            "userId",
            "the account is disabled",
            "ACCOUNT_DISABLED",
            None,
        ));
    }
    let (token, token_hash) = secrets::mint_token(PREFIX)?;
    let now = app.now();
    let row = PasskeySetupLinkRow {
        id: Id::new_v7(),
        user_id,
        token_hash,
        created_by_user_id: Some(actor.user_id()),
        created_at: now,
        expires_at: now + TimeDelta::hours(i64::from(app.config.passkey_setup_link_hours)),
        used_at: None,
    };
    let event = Event::by(actor, AuditAction::PasskeySetupLinkCreated)
        .target(user_target(&user))
        .with("expiresAt", row.expires_at.0);
    conn.transaction(async |tx| {
        // One live link per account: a new one retires the ones before it.
        passkeys::retire_setup_links(tx, user_id, now).await?;
        passkeys::insert_setup_link(tx, &row).await?;
        audit::record(tx, now, event).await
    })
    .await?;
    Ok(SetupLink {
        url: format!("{}/login?setup={token}", app.config.public_url()),
        token,
        expires_at: row.expires_at,
    })
}

/// Starts the registration a setup link allows (no sign-in: the link is the credential).
pub async fn start(app: &App, token: &str, new: NewPasskey) -> Result<Started> {
    let invalid = || Error::bad_input("token", "this setup link is invalid, used or expired");
    let hash = secrets::token_hash(PREFIX, token).ok_or_else(invalid)?;
    let mut conn = app.db.conn().await?;
    let (link, user) = passkeys::find_live_setup_link(&mut conn, &hash, app.now())
        .await?
        .filter(|(_, user)| user.status == ACTIVE)
        .ok_or_else(invalid)?;
    drop(conn);
    register::begin(
        app,
        Holder::from(&user),
        new,
        Purpose::SetupLink { link_id: link.id },
    )
    .await
}

/// Deletes links that expired a day ago or more (kept a little for support questions).
pub async fn sweep(app: &App, now: Timestamp) -> Result<usize> {
    let mut conn = app.db.conn().await?;
    passkeys::delete_setup_links_expired_before(&mut conn, now - TimeDelta::days(1)).await
}
