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
    let mut conn = app.db.conn().await?;
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
    let now = app.now();
    let mut conn = app.db.conn().await?;
    let owner = users::find(&mut conn, row.user_id)
        .await?
        .ok_or(Error::NotFound("passkey"))?;
    let event = Event::by(actor, AuditAction::PasskeyDeleted)
        .target(passkey_target(&row))
        .target(user_target(&owner));
    conn.transaction(async |tx| {
        if !passkeys::delete(tx, id).await? {
            return Err(Error::NotFound("passkey"));
        }
        // Counted after the delete, inside its transaction: of two deletes racing for an
        // account's last two passkeys, the later one sees what the earlier left.
        if owner.password_hash.is_none() && passkeys::count_for_user(tx, owner.id).await? == 0 {
            return Err(Error::conflict_because(
                "id",
                "this is the account's last way to sign in (it has no password): register another passkey first",
                "LAST_CREDENTIAL",
                None,
            ));
        }
        audit::record(tx, now, event).await
    })
    .await?;
    Ok(row)
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
