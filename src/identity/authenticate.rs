//! Turns the bearer credential of a request into a [`Principal`].

use chrono::TimeDelta;

use super::{api_keys, live_credentials};
use crate::app::App;
use crate::db::models::{ApiKeyRow, SessionRow, UserRow};
use crate::db::{self, Id, Timestamp, sessions};
use crate::error::{Error, Result};
use crate::identity::users::ACTIVE;
use crate::identity::{Actor, AuthMethod, ClientInfo, Mfa, Principal};

/// How stale `last_used_at` of an API key may get before a request refreshes it; bounds the writes
/// that busy keys cause.
const KEY_TOUCH_INTERVAL: TimeDelta = TimeDelta::seconds(60);

/// Resolves `Authorization: Bearer …` (an access token or an API key). Rejected credentials give an
/// anonymous principal that remembers why, so that operations needing a caller can say so.
pub async fn authenticate(app: &App, bearer: Option<&str>, client: &ClientInfo) -> Result<Principal> {
    let Some(credential) = bearer.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(Principal::ANONYMOUS);
    };
    let outcome = if credential.starts_with(api_keys::KEY_PREFIX) {
        by_api_key(app, credential, client).await
    } else {
        by_access_token(app, credential, client).await
    };
    match outcome {
        Ok(actor) => Ok(Principal::Authenticated(actor)),
        Err(Error::Unauthenticated(reason)) => Ok(Principal::Anonymous {
            rejected: Some(reason),
        }),
        Err(other) => Err(other),
    }
}

/// Extracts the credential from an `Authorization` header value (`Bearer <credential>`).
///
/// ```
/// use portcullis::identity::authenticate::bearer_credential;
///
/// assert_eq!(bearer_credential("Bearer pck_abc"), Some("pck_abc"));
/// assert_eq!(bearer_credential("bearer  eyJhbGciOi"), Some("eyJhbGciOi"));
/// assert_eq!(bearer_credential("Basic dXNlcjpwYXNz"), None);
/// ```
pub fn bearer_credential(header: &str) -> Option<&str> {
    let (scheme, credential) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(credential.trim())
}

async fn by_access_token(app: &App, token: &str, client: &ClientInfo) -> Result<Actor> {
    let now = app.now();
    let claims = app.keys.verify(token, &app.db, now).await?;
    let (session, user) = live_session(app, claims.sid, now).await?;
    if user.id != claims.sub {
        return Err(Error::unauthenticated("invalid access token"));
    }
    Ok(Actor {
        user,
        method: AuthMethod::of_session(session.auth_method),
        session_id: Some(claims.sid),
        api_key_id: None,
        mfa: Mfa::of_session(&session, now),
        client: client.clone(),
    })
}

/// A live session and its active account, from the database or confirmed within the last second.
async fn live_session(app: &App, session_id: Id, now: Timestamp) -> Result<(SessionRow, UserRow)> {
    let version = app.engine.version();
    if let Some(found) = app.credentials.session(session_id, version, now) {
        return Ok(found);
    }
    let stamp = app.credentials.stamp(version, now);
    let mut conn = app.db.conn().await?;
    let (session, user) = sessions::find_with_user(&mut conn, session_id)
        .await?
        .ok_or_else(|| Error::unauthenticated("invalid access token"))?;
    if session.revoked_at.is_some() {
        return Err(Error::unauthenticated("session revoked"));
    }
    if session.expires_at <= now {
        return Err(Error::unauthenticated("session expired"));
    }
    if user.status != ACTIVE {
        return Err(Error::unauthenticated("account disabled"));
    }
    // Trusted entries are not re-checked for expiry: keep none that could outlive the session.
    if now + live_credentials::TRUSTED_FOR < session.expires_at {
        app.credentials.keep_session(stamp, &session, &user);
    }
    Ok((session, user))
}

async fn by_api_key(app: &App, presented: &str, client: &ClientInfo) -> Result<Actor> {
    let invalid = || Error::unauthenticated("invalid API key");
    let prefix = api_keys::prefix_of(presented).ok_or_else(invalid)?;
    let now = app.now();
    // A service presents its key on every request: a locked client is refused with one read before
    // anything is looked up, and only wrong keys are counted (see `AttemptLimiter::admit`). A wrong
    // key is answered as such only once counted, so guesses are limited per client even when many
    // arrive at once, on any number of instances.
    let limit_key = client.ip.clone().unwrap_or_default();
    app.limits.api_key.admit(&app.db, &limit_key, now).await?;
    let found = find_api_key(app, prefix, now).await?;
    let Some((key, user)) = found.filter(|(key, _)| api_keys::matches(key, presented)) else {
        let _ = app.limits.api_key.count_failure(&app.db, &limit_key, now).await?;
        return Err(invalid());
    };
    if key.revoked_at.is_some() {
        return Err(Error::unauthenticated("API key revoked"));
    }
    if key.expires_at.is_some_and(|at| at <= now) {
        return Err(Error::unauthenticated("API key expired"));
    }
    if user.status != ACTIVE {
        return Err(Error::unauthenticated("account disabled"));
    }
    if needs_touch(&key, now) {
        let mut conn = app.db.conn().await?;
        db::api_keys::touch(&mut conn, key.id, now).await?;
    }
    Ok(Actor {
        user,
        method: AuthMethod::ApiKey,
        session_id: None,
        api_key_id: Some(key.id),
        mfa: Mfa::default(),
        client: client.clone(),
    })
}

/// The key with `prefix` and its account: confirmed live within the last second, or read.
async fn find_api_key(app: &App, prefix: &str, now: Timestamp) -> Result<Option<(ApiKeyRow, UserRow)>> {
    let version = app.engine.version();
    if let Some(found) = app.credentials.api_key(prefix, version, now) {
        return Ok(Some(found));
    }
    let stamp = app.credentials.stamp(version, now);
    let mut conn = app.db.conn().await?;
    let found = db::api_keys::find_by_prefix_with_user(&mut conn, prefix).await?;
    if let Some((key, user)) = &found
        && key.revoked_at.is_none()
        && user.status == ACTIVE
        // A key due for its `last_used_at` write is read again next time, after the write.
        && !needs_touch(key, now)
    {
        app.credentials.keep_api_key(stamp, key, user);
    }
    Ok(found)
}

fn needs_touch(key: &ApiKeyRow, now: Timestamp) -> bool {
    key.last_used_at.is_none_or(|at| at + KEY_TOUCH_INTERVAL <= now)
}

/// Checks that an actor authenticated earlier (e.g. at WebSocket `connection_init`) still may act:
/// its session or API key is live and its account active. Long-lived connections call this so that
/// a logout, a revocation or a disabled account ends them. Returns the session's MFA state as it
/// is now (a step-up lapses while a connection stays open).
pub async fn revalidate(app: &App, actor: &Actor) -> Result<Mfa> {
    let now = app.now();
    let mut conn = app.db.conn().await?;
    let (user, mfa) = if let Some(session_id) = actor.session_id {
        let (session, user) = sessions::find_with_user(&mut conn, session_id)
            .await?
            .ok_or_else(|| Error::unauthenticated("session revoked"))?;
        if session.revoked_at.is_some() {
            return Err(Error::unauthenticated("session revoked"));
        }
        if session.expires_at <= now {
            return Err(Error::unauthenticated("session expired"));
        }
        (user, Mfa::of_session(&session, now))
    } else if let Some(key_id) = actor.api_key_id {
        let key = db::api_keys::find(&mut conn, key_id)
            .await?
            .ok_or_else(|| Error::unauthenticated("API key revoked"))?;
        if key.revoked_at.is_some() {
            return Err(Error::unauthenticated("API key revoked"));
        }
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(Error::unauthenticated("API key expired"));
        }
        let user = db::users::find(&mut conn, actor.user_id())
            .await?
            .ok_or_else(|| Error::unauthenticated("account disabled"))?;
        (user, Mfa::default())
    } else {
        return Err(Error::unauthenticated("authentication required"));
    };
    if user.status != ACTIVE {
        return Err(Error::unauthenticated("account disabled"));
    }
    Ok(mfa)
}
