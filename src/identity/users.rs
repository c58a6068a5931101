//! User accounts: create, read, list, update, disable.

use crate::app::App;
use crate::audit::{self, AuditAction, Event, Target};
use crate::authz::{Action, Resource, guard};
use crate::db::models::UserRow;
use crate::db::users::{self as rows, UserFilter};
use crate::db::{Id, Page, PageOf, api_keys, cedar_schemas, sessions};
use crate::error::{Error, Result};
use crate::identity::{Actor, passwords, validate};

pub use crate::db::enums::UserStatus;

pub const ACTIVE: UserStatus = UserStatus::Active;
pub const DISABLED: UserStatus = UserStatus::Disabled;

/// Fields of a new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    /// Without one, the account cannot log in with a password.
    pub password: Option<String>,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub password: Option<String>,
    /// Required when users change their own password or email.
    pub current_password: Option<String>,
}

pub async fn create(app: &App, actor: &Actor, new: NewUser) -> Result<UserRow> {
    guard::check(app, actor, Action::UserCreate, Resource::Gateway).await?;
    insert(app, new, Some(actor)).await
}

/// Creates an account without an authorization check: for bootstrap (`by` the system) and
/// [`create`].
pub(crate) async fn insert(app: &App, new: NewUser, by: Option<&Actor>) -> Result<UserRow> {
    let email = validate::email("email", &new.email)?;
    let display_name = validate::name("displayName", &new.display_name, 100)?;
    let password_hash = match new.password {
        Some(password) => {
            validate::password("password", &password)?;
            Some(passwords::hash(password).await?)
        }
        None => None,
    };
    let now = app.now();
    let row = UserRow {
        id: Id::new_v7(),
        email,
        display_name,
        password_hash,
        status: ACTIVE,
        created_at: now,
        updated_at: now,
    };
    let event = match by {
        Some(actor) => Event::by(actor, AuditAction::UserCreated),
        None => Event::system(AuditAction::UserCreated),
    }
    .target(user_target(&row))
    .with("passwordSet", row.password_hash.is_some());
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        rows::insert(tx, &row).await?;
        audit::record(tx, now, event).await
    })
    .await?;
    Ok(row)
}

/// A user as an audit target.
pub(crate) fn user_target(user: &UserRow) -> Target {
    Target::new("user", user.id, user.display_name.clone())
}

/// The user, if it exists and the actor may see it.
pub async fn get(app: &App, actor: &Actor, id: Id) -> Result<Option<UserRow>> {
    if !super::visibility::user(app, actor, id).await? {
        return Ok(None);
    }
    let mut conn = app.db.conn().await?;
    rows::find(&mut conn, id).await
}

pub async fn list(app: &App, actor: &Actor, filter: &UserFilter, page: &Page) -> Result<PageOf<UserRow>> {
    guard::check(app, actor, Action::UserList, Resource::Gateway).await?;
    let mut conn = app.db.reader().await?;
    rows::list(&mut conn, filter, page).await
}

/// Why users may not change their own email yet. A self-service change must prove the new address
/// (policies may test `principal.email`) with a verification link, and there is no outbox to send one
/// yet; until there is, an administrator makes the change. The refusal comes before any look-up, so
/// it says nothing about whether the address is taken.
pub const SELF_EMAIL_CHANGE_REFUSED: &str = "an administrator must change your email for now: changing your own needs a verification link, \
     which the gateway cannot send yet";

/// Changes an account. Users changing their own password (and administrators their own email) give
/// their current password. A new password ends the account's other sessions.
pub async fn update(app: &App, actor: &Actor, id: Id, changes: UserChanges) -> Result<UserRow> {
    guard::check(app, actor, Action::UserUpdate, Resource::User(id)).await?;
    let own = id == actor.user_id();
    let mut conn = app.db.conn().await?;
    let mut user = rows::find(&mut conn, id).await?.ok_or(Error::NotFound("user"))?;
    let before = user.clone();
    let mut needs_current_password = None;
    if let Some(email) = &changes.email {
        user.email = validate::email("email", email)?;
        if own && user.email != before.email {
            // Whoever may create accounts can already give any (unverified) address to one, and
            // learns from `createUser` whether an address is taken: only they change their own.
            if !guard::allows(app, actor, Action::UserCreate, Resource::Gateway).await? {
                return Err(Error::bad_input("email", SELF_EMAIL_CHANGE_REFUSED));
            }
            needs_current_password = Some("required to change your own email");
        }
    }
    if let Some(name) = &changes.display_name {
        user.display_name = validate::name("displayName", name, 100)?;
    }
    let password_changed = changes.password.is_some();
    if let Some(password) = &changes.password {
        validate::password("password", password)?;
        if own {
            needs_current_password = Some("required to change your own password");
        }
    }
    if let Some(required) = needs_current_password {
        let current = changes
            .current_password
            .ok_or_else(|| Error::bad_input("currentPassword", required))?;
        if !passwords::verify(current, user.password_hash.clone()).await? {
            return Err(Error::bad_input("currentPassword", "does not match"));
        }
    }
    if let Some(password) = changes.password {
        user.password_hash = Some(passwords::hash(password).await?);
    }
    user.updated_at = app.now();
    let email_changed = user.email != before.email;
    // A new password ends every other session of the account; the caller's own one goes on.
    let keep = if own { actor.session_id } else { None };
    let event = Event::by(actor, AuditAction::UserUpdated)
        .target(user_target(&user))
        .change("email", &before.email, &user.email)
        .change("displayName", &before.display_name, &user.display_name)
        .changed_secret("password", password_changed);
    conn.transaction(async |tx| {
        rows::update(tx, &user).await?;
        let event = if password_changed {
            let ended =
                sessions::revoke_others_for_user(tx, id, keep, user.updated_at, "password_changed").await?;
            event.with("sessionsEnded", ended)
        } else {
            event
        };
        if email_changed {
            // Policies see the email: cached principals must be reloaded.
            cedar_schemas::bump_version(tx).await?;
        }
        audit::record(tx, user.updated_at, event).await
    })
    .await?;
    app.credentials.forget_all();
    if email_changed {
        app.engine.refresh(&app.db).await?;
    }
    Ok(user)
}

/// Disables the account, ends its sessions and revokes its API keys: re-enabling the account gives
/// back neither (its owner logs in again and makes new keys), so a key that leaked while the
/// account was disabled stays dead.
pub async fn disable(app: &App, actor: &Actor, id: Id) -> Result<UserRow> {
    guard::check(app, actor, Action::UserDisable, Resource::User(id)).await?;
    if id == actor.user_id() {
        return Err(Error::conflict("id", "you cannot disable your own account"));
    }
    let now = app.now();
    let mut conn = app.db.conn().await?;
    let user = conn
        .transaction(async |tx| {
            let mut user = rows::find(tx, id).await?.ok_or(Error::NotFound("user"))?;
            user.status = DISABLED;
            user.updated_at = now;
            rows::update(tx, &user).await?;
            let sessions_ended = sessions::revoke_all_for_user(tx, id, now, "user_disabled").await?;
            let keys_revoked = api_keys::revoke_all_for_user(tx, id, now).await?;
            cedar_schemas::bump_version(tx).await?;
            let event = Event::by(actor, AuditAction::UserDisabled)
                .target(user_target(&user))
                .with("sessionsEnded", sessions_ended)
                .with("apiKeysRevoked", keys_revoked);
            audit::record(tx, now, event).await?;
            Ok(user)
        })
        .await?;
    app.credentials.forget_all();
    app.engine.refresh(&app.db).await?;
    Ok(user)
}

/// Re-enables a disabled account.
pub async fn enable(app: &App, actor: &Actor, id: Id) -> Result<UserRow> {
    guard::check(app, actor, Action::UserDisable, Resource::User(id)).await?;
    let mut conn = app.db.conn().await?;
    let mut user = rows::find(&mut conn, id).await?.ok_or(Error::NotFound("user"))?;
    user.status = ACTIVE;
    user.updated_at = app.now();
    let event = Event::by(actor, AuditAction::UserEnabled).target(user_target(&user));
    conn.transaction(async |tx| {
        rows::update(tx, &user).await?;
        cedar_schemas::bump_version(tx).await?;
        audit::record(tx, user.updated_at, event).await
    })
    .await?;
    app.credentials.forget_all();
    app.engine.refresh(&app.db).await?;
    Ok(user)
}
