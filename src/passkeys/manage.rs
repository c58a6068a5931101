//! A user's passkeys: listing, renaming, deleting — by their owner, or by administrators whose
//! policies allow `passkey.*` on the account.

use super::passkey_target;
use crate::app::App;
use crate::audit::{self, AuditAction, Event};
use crate::authz::{Action, Resource, guard};
use crate::db::models::PasskeyRow;
use crate::db::{Id, Page, PageOf, passkeys, users};
use crate::error::{Error, Result};
use crate::identity::users::user_target;
use crate::identity::{Actor, validate};

pub async fn list(app: &App, actor: &Actor, user_id: Id, page: &Page) -> Result<PageOf<PasskeyRow>> {
    guard::check(app, actor, Action::PasskeyList, Resource::User(user_id)).await?;
    let mut conn = app.db.reader().await?;
    passkeys::list_for_user(&mut conn, user_id, page).await
}

pub async fn rename(app: &App, actor: &Actor, id: Id, name: &str) -> Result<PasskeyRow> {
    let name = validate::name("name", name, 100)?;
    let mut row = find_for(app, actor, id, Action::PasskeyUpdate).await?;
    let now = app.now();
    let event = Event::by(actor, AuditAction::PasskeyRenamed)
        .target(passkey_target(&row))
        .with("userId", row.user_id)
        .with("from", &row.name)
        .with("to", &name);
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        passkeys::rename(tx, id, &name).await?;
        audit::record(tx, now, event).await
    })
    .await?;
    row.name = name;
    Ok(row)
}

/// Deletes a passkey, unless it is the last way into its account (no password, no other passkey):
/// then CONFLICT with reason `LAST_CREDENTIAL`.
pub async fn delete(app: &App, actor: &Actor, id: Id) -> Result<PasskeyRow> {
    let row = find_for(app, actor, id, Action::PasskeyDelete).await?;
    require_fresh_factor(actor, row.user_id)?;
    let now = app.now();
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        // The account row is locked first: of two deletes racing for an account's last two
        // passkeys, the second waits, then counts what the first left.
        let owner = users::find_for_update(tx, row.user_id)
            .await?
            .ok_or(Error::NotFound("passkey"))?;
        if !passkeys::delete(tx, id).await? {
            return Err(Error::NotFound("passkey"));
        }
        if owner.password_hash.is_none() && passkeys::count_for_user(tx, owner.id).await? == 0 {
            return Err(Error::conflict_because(
                "id",
                "this is the account's last way to sign in (it has no password): register another passkey first",
                "LAST_CREDENTIAL",
                None,
            ));
        }
        let event = Event::by(actor, AuditAction::PasskeyDeleted)
            .target(passkey_target(&row))
            .target(user_target(&owner));
        audit::record(tx, now, event).await
    })
    .await?;
    Ok(row)
}

/// Changing your own passkeys once you have one takes a second factor (a passkey session or a
/// recent step-up), as changing your password takes the current one: a stolen password (or API
/// key) alone must not add an attacker's passkey — which would then sign in with MFA — nor delete
/// the owner's. Administrators acting on other accounts are judged by their policies.
pub(crate) fn require_fresh_factor(actor: &Actor, account: crate::db::Id) -> Result<()> {
    if actor.user_id() == account && !actor.mfa.verified {
        return Err(Error::MfaRequired);
    }
    Ok(())
}

/// The passkey, if the caller may see its account's passkeys (else NOT_FOUND, so ids of other
/// accounts reveal nothing) and take `action` on it (else FORBIDDEN or MFA_REQUIRED).
async fn find_for(app: &App, actor: &Actor, id: Id, action: Action) -> Result<PasskeyRow> {
    let mut conn = app.db.conn().await?;
    let row = passkeys::find(&mut conn, id).await?;
    drop(conn);
    let row = match row {
        Some(row) if guard::allows(app, actor, Action::PasskeyList, Resource::User(row.user_id)).await? => {
            row
        }
        _ => return Err(Error::NotFound("passkey")),
    };
    guard::check(app, actor, action, Resource::User(row.user_id)).await?;
    Ok(row)
}
