//! Login sessions: password login, rotating single-use refresh tokens with reuse detection, logout.
//!
//! A refresh token is `prt_` + base64url(16-byte token id ‖ 32-byte secret); only SHA-256 of the
//! secret is stored. Each refresh consumes its token and issues the next one in the same session.
//! Presenting a consumed token means it leaked: the whole session, and so every token descended
//! from that login, is revoked.
//!
//! With one exception, for a client that never got the answer to its refresh (the connection
//! dropped while the refresh committed) and tries again: the same token presented again within
//! `PORTCULLIS_REFRESH_REUSE_GRACE_SECONDS` of its first use, by the same client (address and user
//! agent), while its successor is still unspent, gets that same successor again (and a fresh access
//! token). Only hashes are stored, so the successor's secret is derived from the presented secret:
//! HMAC-SHA256 keyed by it over the successor's id and a random salt kept on the spent token until
//! the successor is spent. Whoever holds the old token can therefore get its successor — exactly
//! the power a retry has anyway, since a client that lost the answer holds nothing else — but only
//! from the same client, within the window and while the successor is unspent; computing it
//! offline also takes the salt, which only the database holds. Two refreshes of one token racing each
//! other end the same way: one spends it, the other finds it spent and — same client, within the
//! window — returns the successor the first created; there is never a second successor.

use chrono::TimeDelta;
use uuid::Uuid;

use super::secrets;
use crate::app::App;
use crate::audit::{self, AuditAction, Event, Outcome, Target};
use crate::authz::{Action, Resource, guard};
use crate::db::models::{RefreshTokenRow, SessionRow, UserRow};
use crate::db::{DbConn, Id, Page, PageOf, Timestamp, sessions, users};
use crate::error::{Error, Result};
use crate::identity::users::{ACTIVE, user_target};
use crate::identity::{Actor, ClientInfo, SessionMethod, passwords, validate};

const REFRESH_PREFIX: &str = "prt_";

/// What a successful login or refresh hands the client.
#[derive(Debug, Clone)]
pub struct Grant {
    pub access_token: String,
    pub access_token_expires_at: Timestamp,
    pub refresh_token: String,
    pub session: SessionRow,
    pub user: UserRow,
}

/// Longest login email read at all (the longest valid address is 254): longer input is refused
/// before it reaches the limiter or the audit log.
const MAX_LOGIN_EMAIL_BYTES: usize = 320;
/// Longest login password read at all (new passwords are at most 256 characters).
const MAX_LOGIN_PASSWORD_CHARS: usize = 1024;

/// Checks email and password and opens a session. Every failure is the same UNAUTHENTICATED error,
/// and an unknown email costs as much time as a wrong password, so accounts cannot be enumerated.
///
/// Malformed input is refused (BAD_USER_INPUT) before anything else sees it. Each attempt is
/// counted before the password is checked — per account and client, and per account from any
/// client — so that no batch or concurrent burst gets more guesses than the limits allow; the
/// failure that spends an account's budget locks its logins for a while and is audited.
pub async fn login(app: &App, email: &str, password: String, client: &ClientInfo) -> Result<Grant> {
    let user = check_password(app, email, password, client).await?;
    open(app, user, SessionMethod::Password, client).await
}

/// Checks an email and password as [`login`] does — validated, rate limited, failures audited —
/// without opening a session: for flows that prove who someone is on the way to something else
/// (accepting an invitation on the accept page).
pub async fn check_password(
    app: &App,
    email: &str,
    password: String,
    client: &ClientInfo,
) -> Result<UserRow> {
    let failed = || Error::unauthenticated("invalid email or password");
    if email.len() > MAX_LOGIN_EMAIL_BYTES {
        return Err(Error::bad_input("email", "not a valid email address"));
    }
    let email = validate::email("email", email)?;
    if password.is_empty() || password.chars().nth(MAX_LOGIN_PASSWORD_CHARS).is_some() {
        return Err(Error::bad_input(
            "password",
            format!("must be 1 to {MAX_LOGIN_PASSWORD_CHARS} characters"),
        ));
    }
    let attempt = app
        .limits
        .login_attempt(&app.db, &email, client.ip.as_deref(), app.now())
        .await?;
    // Not held while the password is hashed, nor while the attempt is settled (which takes a
    // connection of its own): one request never waits for a second connection while holding one.
    let user = {
        let mut conn = app.db.conn().await?;
        users::find_by_email(&mut conn, &email).await?
    };
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let password_ok = passwords::verify(password, stored).await?;
    let refusal = match &user {
        None => Some("unknown_email"),
        Some(_) if !password_ok => Some("wrong_password"),
        Some(user) if user.status != ACTIVE => Some("account_disabled"),
        Some(_) => None,
    };
    let user = match (user, refusal) {
        (Some(user), None) => user,
        (user, refusal) => {
            let now = app.now();
            let locked_until = attempt.failed(now).await;
            let attributed = |event: Event| match &user {
                Some(user) => event
                    .as_user(user.id, &user.display_name)
                    .target(user_target(user)),
                None => event,
            };
            let mut events = vec![attributed(
                Event::anonymous(AuditAction::LoginFailed, client)
                    .outcome(Outcome::Failure)
                    .with("email", &email)
                    .with("reason", refusal),
            )];
            if let Some(until) = locked_until {
                events.push(attributed(
                    Event::anonymous(AuditAction::LoginLocked, client)
                        .outcome(Outcome::Failure)
                        .with("email", &email)
                        .with("lockedUntil", until.0),
                ));
            }
            let mut conn = app.db.conn().await?;
            conn.transaction(async |tx| audit::record_all(tx, now, events).await)
                .await?;
            return Err(failed());
        }
    };
    attempt.succeeded().await;
    Ok(user)
}

/// Opens a session for `user`, already authenticated by `method`, and issues its tokens.
pub(crate) async fn open(
    app: &App,
    user: UserRow,
    method: SessionMethod,
    client: &ClientInfo,
) -> Result<Grant> {
    let mut conn = app.db.conn().await?;
    let session = new_session(app, &user, method, client);
    let now = session.created_at;
    let (refresh_token, token_row) = new_refresh_token(&session, now)?;
    let event = login_event(&session, &user, client);
    conn.transaction(async |tx| {
        sessions::insert(tx, &session).await?;
        sessions::insert_refresh_token(tx, &token_row).await?;
        audit::record(tx, now, event).await
    })
    .await?;
    issue(app, session, user, refresh_token)
}

/// Opens a session inside the caller's transaction (a passkey sign-in or an accepted invitation
/// writes it with what proved the user); [`issue`] the tokens after it commits.
pub(crate) async fn open_in(
    tx: &mut DbConn,
    app: &App,
    user: &UserRow,
    method: SessionMethod,
    client: &ClientInfo,
) -> Result<(SessionRow, String)> {
    let session = new_session(app, user, method, client);
    let now = session.created_at;
    let (refresh_token, token_row) = new_refresh_token(&session, now)?;
    sessions::insert(tx, &session).await?;
    sessions::insert_refresh_token(tx, &token_row).await?;
    audit::record(tx, now, login_event(&session, user, client)).await?;
    Ok((session, refresh_token))
}

/// The access token for a session just opened.
pub(crate) fn issue(app: &App, session: SessionRow, user: UserRow, refresh_token: String) -> Result<Grant> {
    let access = app
        .keys
        .issue(user.id, session.id, session.expires_at, session.created_at)?;
    Ok(Grant {
        access_token: access.token,
        access_token_expires_at: access.expires_at,
        refresh_token,
        session,
        user,
    })
}

/// A passkey proves user verification, so its session counts as MFA-verified for its lifetime.
fn new_session(app: &App, user: &UserRow, method: SessionMethod, client: &ClientInfo) -> SessionRow {
    let now = app.now();
    let expires_at = now + app.session_ttl();
    let mfa = method == SessionMethod::Passkey;
    SessionRow {
        id: Id::new_v7(),
        user_id: user.id,
        auth_method: method,
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
        created_at: now,
        last_refreshed_at: now,
        expires_at,
        revoked_at: None,
        revoked_reason: None,
        mfa_verified_at: mfa.then_some(now),
        mfa_expires_at: mfa.then_some(expires_at),
    }
}

fn login_event(session: &SessionRow, user: &UserRow, client: &ClientInfo) -> Event {
    Event::anonymous(AuditAction::LoginSucceeded, client)
        .as_user(user.id, &user.display_name)
        .target(session_target(session))
        .with("authMethod", session.auth_method.as_str())
}

/// What a refresh attempt found, decided inside the transaction and acted on after it commits.
enum Refresh {
    Granted(Box<(SessionRow, UserRow)>, String),
    Rejected(&'static str),
    /// The token was already used: the session has been revoked, and that must persist.
    Reused,
}

/// Exchanges a refresh token for a new access token and the next refresh token.
pub async fn refresh(app: &App, presented: &str, client: &ClientInfo) -> Result<Grant> {
    let now = app.now();
    let limit_key = client.ip.clone().unwrap_or_default();
    // Counted before the token is looked at, handed back when it is accepted.
    let attempt = app.limits.refresh.reserve(&app.db, &limit_key, now).await?;
    let result = refresh_checked(app, presented, client, now).await;
    match &result {
        Err(Error::Unauthenticated(_)) => {
            let _ = app.limits.refresh.failed(&app.db, attempt, now).await;
        }
        _ => app.limits.refresh.refund(&app.db, attempt).await,
    }
    result
}

async fn refresh_checked(app: &App, presented: &str, client: &ClientInfo, now: Timestamp) -> Result<Grant> {
    let (token_id, secret) =
        parse_refresh_token(presented).ok_or_else(|| Error::unauthenticated("invalid refresh token"))?;
    let grace = TimeDelta::seconds(i64::from(app.config.refresh_reuse_grace_seconds));
    let mut conn = app.db.conn().await?;
    let outcome = conn
        .transaction(async |tx| {
            let Some(mut token) = sessions::find_refresh_token(tx, token_id).await? else {
                return Ok(Refresh::Rejected("invalid refresh token"));
            };
            if !secrets::hashes_match(&secrets::sha256(&secret), &token.secret_hash) {
                return Ok(Refresh::Rejected("invalid refresh token"));
            }
            let Some((session, user)) = sessions::find_with_user(tx, token.session_id).await? else {
                return Ok(Refresh::Rejected("invalid refresh token"));
            };
            if session.revoked_at.is_some() {
                return Ok(Refresh::Rejected("session revoked"));
            }
            if token.used_at.is_none() {
                let successor = Id::new_v7();
                let salt = secrets::random_bytes::<32>()?;
                let spend = sessions::Spend {
                    at: now,
                    ip: client.ip.as_deref(),
                    user_agent: client.user_agent.as_deref(),
                    replaced_by: successor,
                    successor_salt: &salt,
                };
                if sessions::use_refresh_token(tx, token.id, spend).await? {
                    if let Some(refusal) = refusal(&session, &user, &token, now) {
                        return Ok(Refresh::Rejected(refusal));
                    }
                    // The token just spent was itself a successor: the one it replaced is done.
                    sessions::forget_successor_salt(tx, session.id, token.id).await?;
                    let (next, next_row) = successor_token(&session, &secret, successor, &salt, now);
                    sessions::insert_refresh_token(tx, &next_row).await?;
                    sessions::touch(tx, session.id, now).await?;
                    let event = Event::anonymous(AuditAction::SessionRefreshed, client)
                        .as_user(user.id, &user.display_name)
                        .target(session_target(&session));
                    audit::record(tx, now, event).await?;
                    let mut session = session;
                    session.last_refreshed_at = now;
                    return Ok(Refresh::Granted(Box::new((session, user)), next));
                }
                // A concurrent refresh spent it first (and has committed): read what it recorded.
                match sessions::find_refresh_token(tx, token_id).await? {
                    Some(spent) => token = spent,
                    None => return Ok(Refresh::Rejected("invalid refresh token")),
                }
            }
            if let Some(next) = retried_successor(tx, &token, &secret, client, grace, now).await? {
                if let Some(refusal) = refusal(&session, &user, &token, now) {
                    return Ok(Refresh::Rejected(refusal));
                }
                let event = Event::anonymous(AuditAction::SessionRefreshed, client)
                    .as_user(user.id, &user.display_name)
                    .target(session_target(&session))
                    .with("retried", true);
                audit::record(tx, now, event).await?;
                return Ok(Refresh::Granted(Box::new((session, user)), next));
            }
            sessions::revoke(tx, session.id, now, "refresh_token_reused").await?;
            let event = Event::anonymous(AuditAction::RefreshReused, client)
                .as_user(user.id, &user.display_name)
                .outcome(Outcome::Failure)
                .target(session_target(&session))
                .with("refreshTokenId", token.id);
            audit::record(tx, now, event).await?;
            Ok(Refresh::Reused)
        })
        .await?;
    match outcome {
        Refresh::Granted(found, refresh_token) => {
            let (session, user) = *found;
            let access = app.keys.issue(user.id, session.id, session.expires_at, now)?;
            Ok(Grant {
                access_token: access.token,
                access_token_expires_at: access.expires_at,
                refresh_token,
                session,
                user,
            })
        }
        Refresh::Rejected(reason) => Err(Error::unauthenticated(reason)),
        Refresh::Reused => {
            app.credentials.forget_all();
            tracing::warn!(token = %token_id, "refresh token reused; session revoked");
            Err(Error::unauthenticated(
                "refresh token already used; the session has been revoked",
            ))
        }
    }
}

/// Why a session may not be refreshed now, if it may not.
fn refusal(
    session: &SessionRow,
    user: &UserRow,
    token: &RefreshTokenRow,
    now: Timestamp,
) -> Option<&'static str> {
    if token.expires_at <= now || session.expires_at <= now {
        Some("session expired")
    } else if user.status != ACTIVE {
        Some("account disabled")
    } else {
        None
    }
}

/// The successor of the spent `token` once more, when presenting it again is a retry rather than
/// reuse: within `grace` of its first use, from the client that used it, and while the successor
/// is unspent. `None`: it is reuse.
async fn retried_successor(
    tx: &mut DbConn,
    token: &RefreshTokenRow,
    secret: &[u8],
    client: &ClientInfo,
    grace: TimeDelta,
    now: Timestamp,
) -> Result<Option<String>> {
    let Some(used_at) = token.used_at else {
        return Ok(None);
    };
    let same_client = token.used_ip == client.ip && token.used_user_agent == client.user_agent;
    if grace <= TimeDelta::zero() || now.0 - used_at.0 > grace || !same_client {
        return Ok(None);
    }
    let (Some(successor), Some(salt)) = (token.replaced_by, token.successor_salt.as_deref()) else {
        return Ok(None);
    };
    let Some(row) = sessions::find_refresh_token(tx, successor).await? else {
        return Ok(None);
    };
    let next_secret = successor_secret(secret, successor, salt);
    let ours = row.session_id == token.session_id
        && secrets::hashes_match(&secrets::sha256(&next_secret), &row.secret_hash);
    if !ours || row.used_at.is_some() {
        return Ok(None);
    }
    Ok(Some(encode_refresh_token(successor, &next_secret)))
}

/// Ends the caller's own session (access tokens of a revoked session stop working at once).
pub async fn logout(app: &App, actor: &Actor) -> Result<SessionRow> {
    let session_id = actor.session_id.ok_or_else(|| {
        Error::bad_input(
            "authorization",
            "logout needs a session access token, not an API key",
        )
    })?;
    revoke(app, actor, session_id).await
}

pub async fn revoke(app: &App, actor: &Actor, id: Id) -> Result<SessionRow> {
    let mut conn = app.db.conn().await?;
    let session = sessions::find(&mut conn, id).await?;
    // Someone else's session is "not found" for those who may not revoke it: no existence leak.
    let mut session = match session {
        Some(s) if guard::allows(app, actor, Action::SessionRevoke, Resource::User(s.user_id)).await? => s,
        _ => return Err(Error::NotFound("session")),
    };
    let now = app.now();
    let event = Event::by(actor, AuditAction::SessionRevoked)
        .target(session_target(&session))
        .with("userId", session.user_id)
        .with("own", actor.session_id == Some(id));
    let revoked = conn
        .transaction(async |tx| {
            let revoked = sessions::revoke(tx, id, now, "revoked").await?;
            if revoked {
                audit::record(tx, now, event).await?;
            }
            Ok(revoked)
        })
        .await?;
    if revoked {
        app.credentials.forget_all();
        session.revoked_at = Some(now);
        session.revoked_reason = Some("revoked".to_owned());
    }
    Ok(session)
}

pub async fn list(app: &App, actor: &Actor, user_id: Id, page: &Page) -> Result<PageOf<SessionRow>> {
    guard::check(app, actor, Action::SessionList, Resource::User(user_id)).await?;
    let mut conn = app.db.reader().await?;
    sessions::list_for_user(&mut conn, user_id, page).await
}

/// A session as an audit target.
fn session_target(session: &SessionRow) -> Target {
    Target::new("session", session.id, None)
}

/// The first refresh token of a session: a random secret.
fn new_refresh_token(session: &SessionRow, now: Timestamp) -> Result<(String, RefreshTokenRow)> {
    let secret = secrets::random_bytes::<32>()?;
    Ok(refresh_token(session, Id::new_v7(), &secret, now))
}

/// The token that replaces the one whose secret is `presented`: its secret is derived, so that a
/// retry of the same refresh can hand it out again (see the module's documentation).
fn successor_token(
    session: &SessionRow,
    presented: &[u8],
    id: Id,
    salt: &[u8],
    now: Timestamp,
) -> (String, RefreshTokenRow) {
    refresh_token(session, id, &successor_secret(presented, id, salt), now)
}

/// HMAC-SHA256 keyed by the spent token's secret over the successor's id and the salt. Whoever
/// holds the spent token gets the successor by retrying within the window: exactly the power a
/// retry has anyway (a client that lost the answer holds nothing else). Beyond the window
/// presenting it is reuse, and computing the successor offline also takes the salt, which only the
/// database holds and which is erased as soon as the successor is spent.
fn successor_secret(presented: &[u8], successor: Id, salt: &[u8]) -> [u8; 32] {
    secrets::hmac_sha256(
        presented,
        &[b"portcullis refresh successor v1", successor.0.as_bytes(), salt],
    )
}

fn refresh_token(session: &SessionRow, id: Id, secret: &[u8], now: Timestamp) -> (String, RefreshTokenRow) {
    let row = RefreshTokenRow {
        id,
        session_id: session.id,
        secret_hash: secrets::sha256(secret),
        created_at: now,
        expires_at: session.expires_at,
        used_at: None,
        used_ip: None,
        used_user_agent: None,
        replaced_by: None,
        successor_salt: None,
    };
    (encode_refresh_token(id, secret), row)
}

fn encode_refresh_token(id: Id, secret: &[u8]) -> String {
    let mut raw = Vec::with_capacity(48);
    raw.extend_from_slice(id.0.as_bytes());
    raw.extend_from_slice(secret);
    format!("{REFRESH_PREFIX}{}", secrets::encode(&raw))
}

fn parse_refresh_token(token: &str) -> Option<(Id, Vec<u8>)> {
    let raw = secrets::decode(token.trim().strip_prefix(REFRESH_PREFIX)?)?;
    if raw.len() != 48 {
        return None;
    }
    let id = Uuid::from_slice(&raw[..16]).ok()?;
    Some((Id(id), raw[16..].to_vec()))
}
