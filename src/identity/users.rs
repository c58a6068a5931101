//! User accounts: create, read, list, update, disable.

use crate::app::App;
use crate::audit::{self, AuditAction, Event, Target};
use crate::authz::{Action, Resource, guard};
use crate::db::models::UserRow;
use crate::db::users::{self as rows, UserFilter};
use crate::db::{Id, Page, PageOf, cedar_schemas, sessions};
use crate::error::{Error, Result};
use crate::identity::{Actor, passwords, validate};

pub const ACTIVE: &str = "active";
pub const DISABLED: &str = "disabled";

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
    /// Required when users change their own password.
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
        status: ACTIVE.to_owned(),
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
    if let Some(status) = &filter.status
        && status != ACTIVE
        && status != DISABLED
    {
        return Err(Error::bad_input("status", "must be ACTIVE or DISABLED"));
    }
    let mut conn = app.db.conn().await?;
    rows::list(&mut conn, filter, page).await
}

pub async fn update(app: &App, actor: &Actor, id: Id, changes: UserChanges) -> Result<UserRow> {
    guard::check(app, actor, Action::UserUpdate, Resource::User(id)).await?;
    let mut conn = app.db.conn().await?;
    let mut user = rows::find(&mut conn, id).await?.ok_or(Error::NotFound("user"))?;
    let before = user.clone();
    if let Some(email) = &changes.email {
        user.email = validate::email("email", email)?;
    }
    if let Some(name) = &changes.display_name {
        user.display_name = validate::name("displayName", name, 100)?;
    }
    let password_changed = changes.password.is_some();
    if let Some(password) = changes.password {
        validate::password("password", &password)?;
        if id == actor.user_id() {
            let current = changes
                .current_password
                .ok_or_else(|| Error::bad_input("currentPassword", "required to change your own password"))?;
            if !passwords::verify(current, user.password_hash.clone()).await? {
                return Err(Error::bad_input("currentPassword", "does not match"));
            }
        }
        user.password_hash = Some(passwords::hash(password).await?);
    }
    user.updated_at = app.now();
    let email_changed = user.email != before.email;
    let event = Event::by(actor, AuditAction::UserUpdated)
        .target(user_target(&user))
        .change("email", &before.email, &user.email)
        .change("displayName", &before.display_name, &user.display_name)
        .changed_secret("password", password_changed);
    conn.transaction(async |tx| {
        rows::update(tx, &user).await?;
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

/// Disables the account and ends its sessions; its API keys stop working with it.
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
            user.status = DISABLED.to_owned();
            user.updated_at = now;
            rows::update(tx, &user).await?;
            sessions::revoke_all_for_user(tx, id, now, "user_disabled").await?;
            cedar_schemas::bump_version(tx).await?;
            let event = Event::by(actor, AuditAction::UserDisabled).target(user_target(&user));
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
    user.status = ACTIVE.to_owned();
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
