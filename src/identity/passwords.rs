//! Argon2id password hashing, always off the async runtime (it is deliberately slow).

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{Error, Result};

/// Hashes a password into a PHC string (argon2id, the crate's OWASP-recommended defaults).
pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(Error::internal)?
}

/// Checks a password against a stored PHC string. With no stored hash, a dummy one is checked so
/// that an unknown account takes as long to reject as a wrong password.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let dummy;
        let phc = match &stored {
            Some(phc) => phc.as_str(),
            None => {
                dummy = dummy_hash()?;
                dummy.as_str()
            }
        };
        let parsed = PasswordHash::new(phc).map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(matches && stored.is_some())
    })
    .await
    .map_err(Error::internal)?
}

fn hash_blocking(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|phc| phc.to_string())
        .map_err(|e| Error::internal(anyhow::anyhow!(e)))
}

fn dummy_hash() -> Result<&'static String> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash);
    }
    let hash = hash_blocking("portcullis timing equalizer")?;
    Ok(DUMMY.get_or_init(|| hash))
}
