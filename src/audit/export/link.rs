//! Signed export links: a browser cannot put an `Authorization` header on a download link, so
//! `createAuditExport` signs the query string for the caller, for a few minutes.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::db::{Id, Timestamp};
use crate::error::{Error, Result};
use crate::identity::authenticate::revalidate;
use crate::identity::{Actor, AuthMethod, ClientInfo, Mfa, secrets};

/// How long a signed export link works.
pub const LINK_LIFETIME: TimeDelta = TimeDelta::minutes(10);
const LINK_AUDIENCE: &str = "portcullis-audit-export";

/// What a signed export link grants: one query string, to one user, for a few minutes.
#[derive(Debug, Serialize, Deserialize)]
struct LinkClaims {
    iss: String,
    aud: String,
    /// The user.
    sub: Id,
    /// The session or API key the link was made with; the link dies with it.
    session: Option<Id>,
    api_key: Option<Id>,
    /// SHA-256 of the query string the link was signed for (without `token`).
    query: String,
    exp: i64,
}

/// Signs a link for `query` (the export's parameters, without `token`) valid for [`LINK_LIFETIME`].
pub fn sign_link(app: &App, actor: &Actor, query: &str) -> Result<(String, Timestamp)> {
    let expires_at = app.now() + LINK_LIFETIME;
    let claims = LinkClaims {
        iss: app.keys.issuer().to_owned(),
        aud: LINK_AUDIENCE.to_owned(),
        sub: actor.user_id(),
        session: actor.session_id,
        api_key: actor.api_key_id,
        query: query_digest(query),
        exp: expires_at.unix_seconds(),
    };
    let token = app.keys.sign(&claims, app.now())?;
    let url = format!(
        "{}/audit/export?{query}&token={token}",
        app.config.public_url().trim_end_matches('/')
    );
    Ok((url, expires_at))
}

/// The actor a signed link speaks for, if its signature, expiry and query check out and the session
/// or API key it was made with is still live.
pub async fn link_actor(app: &App, token: &str, query: &str, client: &ClientInfo) -> Result<Actor> {
    let now = app.now();
    let claims: LinkClaims = app
        .keys
        .verify_signed(token, &app.db, now, Some(LINK_AUDIENCE))
        .await
        .map_err(|_| Error::unauthenticated("invalid export link"))?;
    if claims.exp <= now.unix_seconds() {
        return Err(Error::unauthenticated("the export link has expired"));
    }
    if !secrets::hashes_match(claims.query.as_bytes(), query_digest(query).as_bytes()) {
        return Err(Error::unauthenticated(
            "the export link was signed for other parameters",
        ));
    }
    let mut conn = app.db.conn().await?;
    let user = crate::db::users::find(&mut conn, claims.sub)
        .await?
        .ok_or_else(|| Error::unauthenticated("invalid export link"))?;
    drop(conn);
    let actor = Actor {
        user,
        method: if claims.api_key.is_some() {
            AuthMethod::ApiKey
        } else {
            AuthMethod::Password
        },
        session_id: claims.session,
        api_key_id: claims.api_key,
        mfa: Mfa::default(),
        client: client.clone(),
    };
    revalidate(app, &actor).await?;
    Ok(actor)
}

fn query_digest(query: &str) -> String {
    secrets::encode(&secrets::sha256(query.as_bytes()))
}
