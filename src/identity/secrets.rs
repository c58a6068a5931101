//! High-entropy secrets: generation, hashing for storage, constant-time comparison, encoding.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac};
use subtle::ConstantTimeEq as _;

use crate::error::{Error, Result};

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::internal(anyhow::anyhow!("the system random generator failed")))?;
    Ok(bytes)
}

/// SHA-256: enough for secrets of 256 random bits (no dictionary to guess from).
pub fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

/// HMAC-SHA256 under `key` of `parts`, one after the other.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut context = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, key));
    for part in parts {
        context.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(context.sign().as_ref());
    out
}

/// Compares two hashes without leaking, through timing, where they first differ.
pub fn hashes_match(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// A fresh bearer token — `prefix` and 256 random bits — and the hash to store.
pub fn mint_token(prefix: &str) -> Result<(String, Vec<u8>)> {
    let token = format!("{prefix}{}", encode(&random_bytes::<32>()?));
    let hash = sha256(token.as_bytes());
    Ok((token, hash))
}

/// The stored hash of a presented token minted by [`mint_token`] with `prefix`, or `None` when it
/// cannot be one (a cheap refusal of junk before any lookup).
pub fn token_hash(prefix: &str, presented: &str) -> Option<Vec<u8>> {
    let body = presented.strip_prefix(prefix)?;
    if body.len() != 43
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    Some(sha256(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // Test case 2, with the data given in two parts.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
