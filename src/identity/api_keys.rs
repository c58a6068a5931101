//! API keys for integrators: shown once, stored as a hash, found by their public prefix.
//!
//! A key is `pck_` + 12 characters of public lookup prefix + 43 characters of secret (256 bits).
//! The prefix identifies the key in listings; the SHA-256 of the whole key is what is stored.

use super::secrets;
use crate::app::App;
use crate::audit::{self, AuditAction, Event, Target};
use crate::authz::{Action, Resource, guard};
use crate::db::models::ApiKeyRow;
use crate::db::{Id, Page, PageOf, Timestamp, api_keys};
use crate::error::{Error, Result};
use crate::identity::{Actor, validate};

pub const KEY_PREFIX: &str = "pck_";
const LOOKUP_CHARS: usize = 12;

/// A new key: its row and the secret, which is never shown again.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub key: ApiKeyRow,
    pub secret: String,
}

pub async fn create(
    app: &App,
    actor: &Actor,
    name: &str,
    expires_at: Option<Timestamp>,
) -> Result<CreatedKey> {
    guard::check(app, actor, Action::ApiKeyCreate, Resource::User(actor.user_id())).await?;
    let name = validate::name("name", name, 100)?;
    let now = app.now();
    if let Some(at) = expires_at
        && at <= now
    {
        return Err(Error::bad_input("expiresAt", "must be in the future"));
    }
    let lookup = secrets::encode(&secrets::random_bytes::<9>()?);
    let secret = format!(
        "{KEY_PREFIX}{lookup}{}",
        secrets::encode(&secrets::random_bytes::<32>()?)
    );
    let key = ApiKeyRow {
        id: Id::new_v7(),
        user_id: actor.user_id(),
        name,
        prefix: format!("{KEY_PREFIX}{lookup}"),
        secret_hash: secrets::sha256(secret.as_bytes()),
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    let event = Event::by(actor, AuditAction::ApiKeyCreated)
        .target(key_target(&key))
        .with("prefix", &key.prefix)
        .with("expiresAt", key.expires_at);
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        api_keys::insert(tx, &key).await?;
        audit::record(tx, now, event).await
    })
    .await?;
    Ok(CreatedKey { key, secret })
}

pub async fn revoke(app: &App, actor: &Actor, id: Id) -> Result<ApiKeyRow> {
    let mut conn = app.db.conn().await?;
    let mut key = match api_keys::find(&mut conn, id).await? {
        Some(k) if guard::allows(app, actor, Action::ApiKeyRevoke, Resource::User(k.user_id)).await? => k,
        _ => return Err(Error::NotFound("API key")),
    };
    let now = app.now();
    let event = Event::by(actor, AuditAction::ApiKeyRevoked)
        .target(key_target(&key))
        .with("userId", key.user_id);
    let revoked = conn
        .transaction(async |tx| {
            let revoked = api_keys::revoke(tx, id, now).await?;
            if revoked {
                audit::record(tx, now, event).await?;
            }
            Ok(revoked)
        })
        .await?;
    if revoked {
        app.credentials.forget_all();
        key.revoked_at = Some(now);
    }
    Ok(key)
}

/// An API key as an audit target (its name is the owner's words, not personal data of itself).
fn key_target(key: &ApiKeyRow) -> Target {
    Target::new("api_key", key.id, key.name.clone())
}

pub async fn list(app: &App, actor: &Actor, user_id: Id, page: &Page) -> Result<PageOf<ApiKeyRow>> {
    guard::check(app, actor, Action::ApiKeyList, Resource::User(user_id)).await?;
    let mut conn = app.db.reader().await?;
    api_keys::list_for_user(&mut conn, user_id, page).await
}

/// The public prefix of a presented key, if it has the shape of one: `pck_`, then the lookup
/// characters and the secret, all in the URL-safe base64 alphabet. Anything else (non-ASCII text
/// included) is no key, so nothing here can slice inside a character.
pub(crate) fn prefix_of(presented: &str) -> Option<&str> {
    let end = KEY_PREFIX.len() + LOOKUP_CHARS;
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let well_formed = rest.len() > LOOKUP_CHARS
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| presented.get(..end)).flatten()
}

/// Whether `presented` is the key stored as `row`.
pub(crate) fn matches(row: &ApiKeyRow, presented: &str) -> bool {
    secrets::hashes_match(&secrets::sha256(presented.as_bytes()), &row.secret_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_of_a_well_formed_key() {
        let key = format!("{KEY_PREFIX}abcdefghijkl{}", "s".repeat(43));
        assert_eq!(prefix_of(&key), Some("pck_abcdefghijkl"));
    }

    #[test]
    fn prefix_of_refuses_what_is_not_a_key_without_panicking() {
        let cases = [
            "pck_".to_owned(),
            "pck_abcdefghijkl".to_owned(), // the prefix alone, no secret
            "pck_abcdefghijk\u{e9}secret".to_owned(), // a two-byte character across the prefix's end
            "pck_\u{1f511}\u{1f511}\u{1f511}\u{1f511}secret".to_owned(),
            format!("pck_abcdefghijkl{}\u{fffd}", "s".repeat(43)),
            "pck_abcdefghijkl secret".to_owned(),
            "pck_abc/efghijklsecret".to_owned(),
            "\u{e9}pck_abcdefghijklsecret".to_owned(),
        ];
        for presented in &cases {
            assert_eq!(prefix_of(presented), None, "{presented:?}");
        }
    }
}
