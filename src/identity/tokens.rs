//! Access tokens: short-lived Ed25519-signed JWTs, and the key ring that signs and publishes them.
//!
//! The signing keys live in the database so every instance signs with the same key. A rotation
//! adds a key that is published in the JWKS at once but signs only from its `activates_at`, a
//! publication delay later, so that verifiers caching the JWKS know it before they meet it; the
//! previous key signs until then and stays published until the tokens it signed expire. Instances
//! learn of a rotation from its announcement, or else from a poll ([`super::key_sync`]); a token
//! naming a key an instance does not know yet makes it look, within limits ([`super::unknown_kids`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::TimeDelta;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::secrets;
use super::unknown_kids::UnknownKids;
pub use super::unknown_kids::{UNKNOWN_KID_LOOKUPS_PER_INTERVAL, UNKNOWN_KID_RELOAD_INTERVAL};
use crate::audit::{self, AuditAction, Event, Target};
use crate::db::models::SigningKeyRow;
use crate::db::{Db, Id, Timestamp, signing_keys};
use crate::error::{Error, Result};

const ALGORITHM: &str = "EdDSA";

/// What an access token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the gateway's public URL.
    pub iss: String,
    /// The user.
    pub sub: Id,
    /// The login session the token belongs to.
    pub sid: Id,
    pub iat: i64,
    pub exp: i64,
}

/// A freshly issued access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_at: Timestamp,
}

/// A key that signs from `activates_at` until `retired_at`.
struct Signer {
    kid: Id,
    activates_at: Timestamp,
    retired_at: Option<Timestamp>,
    key: EncodingKey,
}

struct KeySet {
    /// Never empty.
    signers: Vec<Signer>,
    verifying: HashMap<Id, DecodingKey>,
    jwks: serde_json::Value,
}

impl KeySet {
    /// The key to sign with at `now`: of the keys signing then, the one activated last; should the
    /// instances' clocks disagree so that none is, the newest.
    fn signer(&self, now: Timestamp) -> Result<&Signer> {
        self.signers
            .iter()
            .filter(|s| s.activates_at <= now && s.retired_at.is_none_or(|retired| now < retired))
            .max_by_key(|s| (s.activates_at, s.kid))
            .or_else(|| self.signers.iter().max_by_key(|s| s.kid))
            .ok_or_else(|| Error::internal(anyhow::anyhow!("no signing key loaded")))
    }
}

/// How many verified tokens to remember; past this, expired ones are dropped, then all.
const VERIFIED_CAPACITY: usize = 10_000;

/// What a rotation made.
#[derive(Debug, Clone, Copy)]
pub struct Rotated {
    /// The new key's id (the `kid` of what it signs).
    pub kid: Id,
    /// When instances start signing with it; it is published from now on.
    pub activates_at: Timestamp,
}

/// The keys this instance signs and verifies with.
pub struct KeyRing {
    keys: RwLock<Arc<KeySet>>,
    /// Tokens whose signature checked out, with their claims: an Ed25519 verification costs more
    /// than the rest of a small request, and a client presents the same token until it expires.
    verified: Mutex<HashMap<String, Claims>>,
    unknown_kids: UnknownKids,
    /// Lookups of unknown kids wait for each other: a burst of tokens naming one new key causes
    /// one read, and the others find the key loaded.
    lookup: tokio::sync::Mutex<()>,
    /// Reads of the keys from the database since start.
    reloads: AtomicU64,
    /// Of those, the reads made for tokens naming an unknown key.
    lookups: AtomicU64,
    issuer: String,
    token_ttl: TimeDelta,
    /// How long a rotated-in key is published before it signs.
    publish_delay: TimeDelta,
}

impl KeyRing {
    /// Loads the keys from the database, creating the first one if there is none.
    pub async fn load(
        db: &Db,
        now: Timestamp,
        issuer: String,
        token_ttl: TimeDelta,
        publish_delay: TimeDelta,
    ) -> Result<Self> {
        let set = match load_set(db, now, token_ttl).await? {
            Some(set) => set,
            None => {
                insert_first_key(db, now).await?;
                load_set(db, now, token_ttl)
                    .await?
                    .ok_or_else(|| Error::internal(anyhow::anyhow!("no signing key after creating one")))?
            }
        };
        Ok(Self {
            keys: RwLock::new(Arc::new(set)),
            verified: Mutex::default(),
            unknown_kids: UnknownKids::default(),
            lookup: tokio::sync::Mutex::new(()),
            reloads: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
            issuer,
            token_ttl,
            publish_delay,
        })
    }

    /// Signs an access token for `user` in `session`, expiring with the session at the latest.
    pub fn issue(
        &self,
        user: Id,
        session: Id,
        session_ends: Timestamp,
        now: Timestamp,
    ) -> Result<AccessToken> {
        let expires_at = (now + self.token_ttl).min(session_ends);
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: user,
            sid: session,
            iat: now.unix_seconds(),
            exp: expires_at.unix_seconds(),
        };
        let token = self.sign(&claims, now)?;
        Ok(AccessToken { token, expires_at })
    }

    /// The `iss` of everything this ring signs: the gateway's public URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs any claims with the key that signs at `now` (access tokens, signed export links).
    pub fn sign<T: Serialize>(&self, claims: &T, now: Timestamp) -> Result<String> {
        let keys = self.current();
        let signer = keys.signer(now)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(signer.kid.to_string());
        jsonwebtoken::encode(&header, claims, &signer.key).map_err(Error::internal)
    }

    /// Checks signature, issuer and expiry (against the gateway's clock), returning the claims.
    pub async fn verify(&self, token: &str, db: &Db, now: Timestamp) -> Result<Claims> {
        let known = self.verified().get(token).cloned();
        let claims = match known {
            Some(claims) => claims,
            None => {
                let claims = self.verify_signature(token, db, now).await?;
                self.remember(token, &claims, now);
                claims
            }
        };
        if claims.exp <= now.unix_seconds() {
            return Err(Error::unauthenticated("access token expired"));
        }
        Ok(claims)
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<String, Claims>> {
        self.verified.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    fn remember(&self, token: &str, claims: &Claims, now: Timestamp) {
        let mut verified = self.verified();
        if verified.len() >= VERIFIED_CAPACITY {
            verified.retain(|_, claims| claims.exp > now.unix_seconds());
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(token.to_owned(), claims.clone());
    }

    /// Checks the signature and issuer; expiry is the caller's to check, with the gateway's clock.
    async fn verify_signature(&self, token: &str, db: &Db, now: Timestamp) -> Result<Claims> {
        self.verify_signed(token, db, now, None).await
    }

    /// Checks signature, issuer and (when given) audience of `token` and returns its claims, which
    /// must carry `exp`, `iss` and `sub`; expiry is the caller's to check, with the gateway's clock.
    pub async fn verify_signed<T: DeserializeOwned>(
        &self,
        token: &str,
        db: &Db,
        now: Timestamp,
        audience: Option<&str>,
    ) -> Result<T> {
        let invalid = || Error::unauthenticated("invalid access token");
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        let kid: Id = header
            .kid
            .as_deref()
            .and_then(|kid| kid.parse().ok())
            .ok_or_else(invalid)?;
        if !self.knows(kid) {
            self.look_up(kid, db, now).await?;
        }
        let keys = self.current();
        let key = keys.verifying.get(&kid).ok_or_else(invalid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        // Expiry is checked below with the gateway's clock, not the system time.
        validation.validate_exp = false;
        match audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
            }
            None => validation.set_required_spec_claims(&["exp", "iss", "sub"]),
        }
        let data = jsonwebtoken::decode::<T>(token, key, &validation).map_err(|_| invalid())?;
        Ok(data.claims)
    }

    fn knows(&self, kid: Id) -> bool {
        self.current().verifying.contains_key(&kid)
    }

    /// Reloads the ring for a token naming `kid`, a key it does not know, if that key may be new:
    /// ids are UUIDv7, ordered by creation, so a rotation elsewhere makes a kid newer than all this
    /// ring knows; older or other kids are never looked up. Within the limits of [`UnknownKids`].
    async fn look_up(&self, kid: Id, db: &Db, now: Timestamp) -> Result<()> {
        let newer = kid.0.get_version_num() == 7 && self.current().verifying.keys().all(|known| kid > *known);
        if !newer || self.unknown_kids.recently_missed(kid, now) {
            return Ok(());
        }
        let _one_at_a_time = self.lookup.lock().await;
        // The lookup this one waited for may have found it.
        if self.knows(kid) || !self.unknown_kids.take_lookup(kid, now) {
            return Ok(());
        }
        self.lookups.fetch_add(1, Ordering::Relaxed);
        self.reload(db, now).await?;
        if !self.knows(kid) {
            self.unknown_kids.missed(kid, now);
        }
        Ok(())
    }

    /// The JSON Web Key Set of every key whose tokens may still be live, and of a key about to sign.
    pub fn jwks(&self) -> serde_json::Value {
        self.current().jwks.clone()
    }

    /// Adds a key that is published at once and signs after the publication delay, when every
    /// other key stops signing; announces it to every instance. This ring reloads at once.
    pub async fn rotate(&self, db: &Db, now: Timestamp) -> Result<Rotated> {
        let rotated = insert_rotated_key(db, now, now + self.publish_delay).await?;
        self.reload(db, now).await?;
        Ok(rotated)
    }

    /// Re-reads the keys from the database (after a rotation elsewhere, and to drop expired ones).
    pub async fn reload(&self, db: &Db, now: Timestamp) -> Result<()> {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        if let Some(set) = load_set(db, now, self.token_ttl).await? {
            *self.keys.write().unwrap_or_else(|poison| poison.into_inner()) = Arc::new(set);
        }
        Ok(())
    }

    /// How many times this ring has read its keys from the database since start (metrics, tests).
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Of [`Self::reloads`], those made for tokens naming a key the ring did not know.
    pub fn unknown_kid_lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}

/// A fresh Ed25519 key as a row: signing from `activates_at`, not retired.
fn new_key(now: Timestamp, activates_at: Timestamp) -> Result<SigningKeyRow> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| Error::internal(anyhow::anyhow!("Ed25519 key generation failed")))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|e| Error::internal(anyhow::anyhow!("generated key unreadable: {e}")))?;
    Ok(SigningKeyRow {
        id: Id::new_v7(),
        algorithm: ALGORITHM.to_owned(),
        private_key: pkcs8.as_ref().to_vec(),
        public_key: pair.public_key().as_ref().to_vec(),
        created_at: now,
        retired_at: None,
        activates_at,
    })
}

fn rotation_event(kid: Id, activates_at: Timestamp) -> Event {
    Event::system(AuditAction::SigningKeyRotated)
        .target(Target::new("signing_key", kid, None))
        .with("algorithm", ALGORITHM)
        .with("activates_at", activates_at.to_string())
}

/// Creates the first key, signing at once (nobody can have cached a JWKS yet), unless another
/// instance or process did first.
async fn insert_first_key(db: &Db, now: Timestamp) -> Result<()> {
    let row = new_key(now, now)?;
    let mut conn = db.conn().await?;
    conn.transaction(async |tx| {
        if signing_keys::insert_if_none(tx, &row).await? {
            audit::record(tx, now, rotation_event(row.id, row.activates_at)).await?;
        }
        Ok(())
    })
    .await
}

/// Stores a new key signing from `activates_at` and retires the others then, in one transaction.
async fn insert_rotated_key(db: &Db, now: Timestamp, activates_at: Timestamp) -> Result<Rotated> {
    let row = new_key(now, activates_at)?;
    let event = rotation_event(row.id, activates_at);
    let mut conn = db.conn().await?;
    conn.transaction(async |tx| {
        signing_keys::rotate_to(tx, &row).await?;
        audit::record(tx, now, event).await
    })
    .await?;
    Ok(Rotated {
        kid: row.id,
        activates_at,
    })
}

/// Every key that signs now or later, or stopped signing less than one token lifetime ago (by the
/// stopping time recorded in the database, so an instance started later knows them too); `None`
/// if there is no key at all.
async fn load_set(db: &Db, now: Timestamp, token_ttl: TimeDelta) -> Result<Option<KeySet>> {
    let mut conn = db.conn().await?;
    let rows = signing_keys::list_publishable(&mut conn, now - token_ttl).await?;
    drop(conn);
    if rows.is_empty() {
        return Ok(None);
    }
    let signers = rows
        .iter()
        .map(|row| Signer {
            kid: row.id,
            activates_at: row.activates_at,
            retired_at: row.retired_at,
            key: EncodingKey::from_ed_der(&row.private_key),
        })
        .collect();
    let verifying = rows
        .iter()
        .map(|row| (row.id, DecodingKey::from_ed_der(&row.public_key)))
        .collect();
    let keys: Vec<_> = rows
        .iter()
        .map(|row| {
            json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": ALGORITHM,
                "use": "sig",
                "kid": row.id.to_string(),
                "x": secrets::encode(&row.public_key),
            })
        })
        .collect();
    Ok(Some(KeySet {
        signers,
        verifying,
        jwks: json!({ "keys": keys }),
    }))
}
