//! Access tokens: short-lived Ed25519-signed JWTs, and the key ring that signs and publishes them.
//!
//! The signing key lives in the database so every instance signs with the same key. A rotation
//! adds a key and retires the old one, which stays in the JWKS until the tokens it signed expire.
//! An instance that meets an unknown `kid` newer than its keys reloads the ring, so it follows
//! another instance's rotation without restart — at most once per [`UNKNOWN_KID_RELOAD_INTERVAL`],
//! since anyone can send such tokens and each reload reads the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::TimeDelta;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::secrets;
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

struct KeySet {
    signing_kid: Id,
    signing: EncodingKey,
    verifying: HashMap<Id, DecodingKey>,
    jwks: serde_json::Value,
}

/// The least time between two reloads of the ring for tokens naming a key it does not know.
pub const UNKNOWN_KID_RELOAD_INTERVAL: TimeDelta = TimeDelta::seconds(5);

/// How many verified tokens to remember; past this, expired ones are dropped, then all.
const VERIFIED_CAPACITY: usize = 10_000;

/// The keys this instance signs and verifies with.
pub struct KeyRing {
    keys: RwLock<Arc<KeySet>>,
    /// Tokens whose signature checked out, with their claims: an Ed25519 verification costs more
    /// than the rest of a small request, and a client presents the same token until it expires.
    verified: Mutex<HashMap<String, Claims>>,
    /// When an unknown `kid` last made the ring reload.
    unknown_kid_reloaded_at: Mutex<Option<Timestamp>>,
    issuer: String,
    token_ttl: TimeDelta,
}

impl KeyRing {
    /// Loads the keys from the database, creating the first one if there is none.
    pub async fn load(db: &Db, now: Timestamp, issuer: String, token_ttl: TimeDelta) -> Result<Self> {
        let set = load_set(db, now, token_ttl).await?;
        let set = match set {
            Some(set) => set,
            None => {
                insert_new_key(db, now).await?;
                load_set(db, now, token_ttl)
                    .await?
                    .ok_or_else(|| Error::internal(anyhow::anyhow!("no signing key after creating one")))?
            }
        };
        Ok(Self {
            keys: RwLock::new(Arc::new(set)),
            verified: Mutex::default(),
            unknown_kid_reloaded_at: Mutex::default(),
            issuer,
            token_ttl,
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
        let keys = self.current();
        let expires_at = (now + self.token_ttl).min(session_ends);
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: user,
            sid: session,
            iat: now.unix_seconds(),
            exp: expires_at.unix_seconds(),
        };
        drop(keys);
        let token = self.sign(&claims)?;
        Ok(AccessToken { token, expires_at })
    }

    /// The `iss` of everything this ring signs: the gateway's public URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs any claims with the current key (access tokens, signed export links).
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String> {
        let keys = self.current();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(keys.signing_kid.to_string());
        jsonwebtoken::encode(&header, claims, &keys.signing).map_err(Error::internal)
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
        if self.may_reload_for(kid, now) {
            self.reload(db, now).await?;
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

    /// Whether a token naming `kid` should make the ring reload: only a key it does not know that
    /// is newer than all it knows (ids are UUIDv7, ordered by creation: a rotation elsewhere makes a
    /// newer one), and only if the last such reload is [`UNKNOWN_KID_RELOAD_INTERVAL`] old.
    fn may_reload_for(&self, kid: Id, now: Timestamp) -> bool {
        let keys = self.current();
        let newer = kid.0.get_version_num() == 7 && keys.verifying.keys().all(|known| kid > *known);
        if !newer {
            return false;
        }
        let mut last = self
            .unknown_kid_reloaded_at
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if last.is_some_and(|at| at <= now && now < at + UNKNOWN_KID_RELOAD_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// The JSON Web Key Set of every key whose tokens may still be live.
    pub fn jwks(&self) -> serde_json::Value {
        self.current().jwks.clone()
    }

    /// Makes a new key current and retires the others; returns the new key's id.
    pub async fn rotate(&self, db: &Db, now: Timestamp) -> Result<Id> {
        let kid = insert_new_key(db, now).await?;
        self.reload(db, now).await?;
        Ok(kid)
    }

    /// Re-reads the keys from the database (after a rotation elsewhere).
    pub async fn reload(&self, db: &Db, now: Timestamp) -> Result<()> {
        if let Some(set) = load_set(db, now, self.token_ttl).await? {
            *self.keys.write().unwrap_or_else(|poison| poison.into_inner()) = Arc::new(set);
        }
        Ok(())
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}

/// Generates a key, stores it as current and retires the previous ones, in one transaction.
async fn insert_new_key(db: &Db, now: Timestamp) -> Result<Id> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| Error::internal(anyhow::anyhow!("Ed25519 key generation failed")))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|e| Error::internal(anyhow::anyhow!("generated key unreadable: {e}")))?;
    let row = SigningKeyRow {
        id: Id::new_v7(),
        algorithm: ALGORITHM.to_owned(),
        private_key: pkcs8.as_ref().to_vec(),
        public_key: pair.public_key().as_ref().to_vec(),
        created_at: now,
        retired_at: None,
    };
    let event = Event::system(AuditAction::SigningKeyRotated)
        .target(Target::new("signing_key", row.id, None))
        .with("algorithm", ALGORITHM);
    let mut conn = db.conn().await?;
    conn.transaction(async |tx| {
        signing_keys::insert(tx, &row).await?;
        signing_keys::retire_all_except(tx, row.id, now).await?;
        audit::record(tx, now, event).await
    })
    .await?;
    Ok(row.id)
}

/// The current key and every key retired less than one token lifetime ago; `None` if no key is current.
async fn load_set(db: &Db, now: Timestamp, token_ttl: TimeDelta) -> Result<Option<KeySet>> {
    let mut conn = db.conn().await?;
    let rows = signing_keys::list_publishable(&mut conn, now - token_ttl).await?;
    let Some(current) = rows.iter().find(|row| row.retired_at.is_none()) else {
        return Ok(None);
    };
    let signing = EncodingKey::from_ed_der(&current.private_key);
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
        signing_kid: current.id,
        signing,
        verifying,
        jwks: json!({ "keys": keys }),
    }))
}
