//! Standard Webhooks 1.0 signatures: secrets are `whsec_` + base64 of the key; a message is signed
//! as `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), several signatures separated by
//! spaces (during a secret rotation both the old and the new key sign).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

use crate::error::Result;
use crate::identity::secrets;

/// What every webhook secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a new key (the spec asks for 24 to 64).
const KEY_BYTES: usize = 32;

/// A signing key.
#[derive(Clone)]
pub struct Secret(hmac::Key);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A new key and its `whsec_…` form, to show once.
    pub fn mint() -> Result<(Self, String)> {
        let key = secrets::random_bytes::<KEY_BYTES>()?;
        let text = format!("{SECRET_PREFIX}{}", STANDARD.encode(key));
        Ok((Self::from_key(&key), text))
    }

    /// The key of a `whsec_…` secret; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let key = STANDARD.decode(text.strip_prefix(SECRET_PREFIX)?).ok()?;
        (!key.is_empty()).then(|| Self::from_key(&key))
    }

    fn from_key(key: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    /// `v1,<signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
    }

    /// Whether any `v1,` signature in a `webhook-signature` header is this key's for the message
    /// (compared in constant time). What a receiver does; the gateway's tests use it.
    pub fn verifies(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let expected = self.sign(id, timestamp, body);
        header
            .split(' ')
            .any(|candidate| secrets::hashes_match(candidate.as_bytes(), expected.as_bytes()))
    }
}

/// The `webhook-signature` header for a message signed by every key in `keys` (the current one,
/// and during a rotation's overlap the previous one too).
pub fn header(keys: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| key.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification, as its reference library
    /// (`standardwebhooks` on PyPI) signs it.
    #[test]
    fn signs_the_specifications_example() {
        let key = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn during_a_rotation_both_keys_sign_and_either_verifies() {
        let (old, _) = Secret::mint().unwrap();
        let (new, text) = Secret::mint().unwrap();
        assert!(text.starts_with(SECRET_PREFIX) && Secret::parse(&text).is_some());
        let signed = header(&[new.clone(), old.clone()], "msg_1", 1_700_000_000, b"{}");
        assert_eq!(signed.split(' ').count(), 2);
        assert!(new.verifies("msg_1", 1_700_000_000, b"{}", &signed));
        assert!(old.verifies("msg_1", 1_700_000_000, b"{}", &signed));
        assert!(
            !new.verifies("msg_1", 1_700_000_001, b"{}", &signed),
            "timestamp is signed"
        );
        assert!(
            !new.verifies("msg_2", 1_700_000_000, b"{}", &signed),
            "id is signed"
        );
        assert!(
            !new.verifies("msg_1", 1_700_000_000, b"{ }", &signed),
            "body is signed"
        );
    }

    #[test]
    fn junk_is_no_secret() {
        for junk in [
            "",
            "whsec_",
            "whsec_***",
            "sk_abc",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ] {
            assert!(Secret::parse(junk).is_none(), "{junk}");
        }
    }
}
