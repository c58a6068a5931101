//! Test-only software WebAuthn authenticator ("soft passkey"): ES256, `none` attestation, JSON in/out.
//!
//! Consumes the browser-style `PublicKeyCredential{Creation,Request}OptionsJSON` objects and
//! produces `RegistrationResponseJSON` / `AuthenticationResponseJSON` (binary fields are
//! base64url without padding). Never use outside tests: keys live in memory, unprotected.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_cbor_2::Value as Cbor;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// AAGUID reported in registration authenticator data (fixed, non-zero, test-only).
pub const SOFT_AAGUID: [u8; 16] = *b"portcullis-soft!";

const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_BE: u8 = 0x08;
const FLAG_BS: u8 = 0x10;
const FLAG_AT: u8 = 0x40;
const COSE_ALG_ES256: i64 = -7;

/// One credential held by the authenticator.
#[derive(Clone, Debug)]
pub struct SoftCredential {
    pub id: Vec<u8>,
    pub rp_id: String,
    pub user_handle: Vec<u8>,
    key_pkcs8: Vec<u8>,
    /// Signature counter; incremented before each assertion is signed.
    pub counter: u32,
}

/// Software authenticator plus the client (browser) half. The public fields are test knobs and
/// apply to every subsequent `register` / `authenticate` call.
pub struct SoftAuthenticator {
    /// Origin written into clientDataJSON.
    pub origin: String,
    /// If set, hashed into authData instead of the RP ID taken from the options.
    pub rp_id_override: Option<String>,
    /// UP flag (0x01), default true.
    pub user_present: bool,
    /// UV flag (0x04), default true.
    pub user_verified: bool,
    /// BE flag (0x08), default false.
    pub backup_eligible: bool,
    /// BS flag (0x10), default false.
    pub backup_state: bool,
    /// Flip a bit of the assertion signature.
    pub corrupt_signature: bool,
    /// The attestation statement format claimed at registration (default `none`, with an empty
    /// statement).
    pub attestation_format: String,
    credentials: Vec<SoftCredential>,
    rng: SystemRandom,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(field: &str, s: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|e| format!("{field}: bad base64url: {e}"))
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// Decoded ids of `excludeCredentials` / `allowCredentials` (absent → empty).
fn cred_ids(options: &Value, key: &str) -> Result<Vec<Vec<u8>>, String> {
    let Some(list) = options.get(key).and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|d| match str_at(d, "/id") {
            Some(id) => unb64(key, id),
            None => Err(format!("{key}[].id missing")),
        })
        .collect()
}

impl SoftAuthenticator {
    pub fn new(origin: &str) -> Self {
        Self {
            origin: origin.to_string(),
            rp_id_override: None,
            user_present: true,
            user_verified: true,
            backup_eligible: false,
            backup_state: false,
            corrupt_signature: false,
            attestation_format: "none".to_owned(),
            credentials: Vec::new(),
            rng: SystemRandom::new(),
        }
    }

    pub fn credentials_mut(&mut self) -> &mut [SoftCredential] {
        &mut self.credentials
    }

    /// Browser default when the options carry no RP ID: the origin's host.
    fn default_rp_id(&self) -> String {
        let rest = self.origin.rsplit("://").next().unwrap_or_default();
        rest.split(['/', ':']).next().unwrap_or_default().to_string()
    }

    fn flags(&self, extra: u8) -> u8 {
        [
            (self.user_present, FLAG_UP),
            (self.user_verified, FLAG_UV),
            (self.backup_eligible, FLAG_BE),
            (self.backup_state, FLAG_BS),
        ]
        .into_iter()
        .fold(extra, |f, (on, bit)| if on { f | bit } else { f })
    }

    /// rpIdHash ‖ flags ‖ signCount (big-endian).
    fn auth_data_head(&self, rp_id: &str, flags: u8, counter: u32) -> Vec<u8> {
        let hashed = self.rp_id_override.as_deref().unwrap_or(rp_id);
        let mut out = digest(&SHA256, hashed.as_bytes()).as_ref().to_vec();
        out.push(flags);
        out.extend_from_slice(&counter.to_be_bytes());
        out
    }

    /// Browser member order (`type`, `challenge`, `origin`, `crossOrigin`); serde_json would sort keys.
    fn client_data(&self, ty: &str, challenge: &str) -> Vec<u8> {
        let [ty, challenge, origin] = [ty, challenge, &self.origin].map(|s| Value::from(s).to_string());
        format!(r#"{{"type":{ty},"challenge":{challenge},"origin":{origin},"crossOrigin":false}}"#)
            .into_bytes()
    }

    /// `navigator.credentials.create()`: options are `PublicKeyCredentialCreationOptionsJSON`.
    pub fn register(&mut self, options: &Value) -> Result<Value, String> {
        let challenge = str_at(options, "/challenge").ok_or("challenge missing")?;
        let rp_id = str_at(options, "/rp/id").map_or_else(|| self.default_rp_id(), str::to_string);
        let user_id = str_at(options, "/user/id").ok_or("user.id missing")?;
        let user_handle = unb64("user.id", user_id)?;
        let es256 = |p: &Value| p.get("alg").and_then(Value::as_i64) == Some(COSE_ALG_ES256);
        if let Some(params) = options.get("pubKeyCredParams").and_then(Value::as_array)
            && !params.iter().any(es256)
        {
            return Err("NotSupportedError: ES256 not offered in pubKeyCredParams".into());
        }
        let excluded = cred_ids(options, "excludeCredentials")?;
        let held = |c: &SoftCredential| c.rp_id == rp_id && excluded.contains(&c.id);
        if self.credentials.iter().any(held) {
            return Err("InvalidStateError: an excluded credential is already held".into());
        }

        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &self.rng)
            .map_err(|_| "key generation failed")?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &self.rng)
            .map_err(|_| "key parse failed")?;
        let point = key.public_key().as_ref(); // 0x04 ‖ x ‖ y
        let mut cred_id = vec![0u8; 32];
        self.rng.fill(&mut cred_id).map_err(|_| "rng failed")?;

        let cose_key = Cbor::Map(BTreeMap::from([
            (Cbor::Integer(1), Cbor::Integer(2)),
            (Cbor::Integer(3), Cbor::Integer(COSE_ALG_ES256.into())),
            (Cbor::Integer(-1), Cbor::Integer(1)),
            (Cbor::Integer(-2), Cbor::Bytes(point[1..33].to_vec())),
            (Cbor::Integer(-3), Cbor::Bytes(point[33..65].to_vec())),
        ]));
        let mut auth_data = self.auth_data_head(&rp_id, self.flags(FLAG_AT), 0);
        auth_data.extend_from_slice(&SOFT_AAGUID);
        auth_data.extend_from_slice(&(cred_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&cred_id);
        auth_data.extend(serde_cbor_2::to_vec(&cose_key).map_err(|e| e.to_string())?);
        let att_obj = Cbor::Map(BTreeMap::from([
            (
                Cbor::Text("fmt".into()),
                Cbor::Text(self.attestation_format.clone()),
            ),
            (Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]));
        let att_obj = serde_cbor_2::to_vec(&att_obj).map_err(|e| e.to_string())?;

        let client_data = self.client_data("webauthn.create", challenge);
        self.credentials.push(SoftCredential {
            id: cred_id.clone(),
            rp_id,
            user_handle,
            key_pkcs8: pkcs8.as_ref().to_vec(),
            counter: 0,
        });
        Ok(json!({
            "id": b64(&cred_id),
            "rawId": b64(&cred_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&att_obj),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }))
    }

    /// `navigator.credentials.get()`: options are `PublicKeyCredentialRequestOptionsJSON`.
    pub fn authenticate(&mut self, options: &Value) -> Result<Value, String> {
        let challenge = str_at(options, "/challenge").ok_or("challenge missing")?;
        let rp_id = str_at(options, "/rpId").map_or_else(|| self.default_rp_id(), str::to_string);
        let allowed = cred_ids(options, "allowCredentials")?;
        let idx = self
            .credentials
            .iter()
            .position(|c| c.rp_id == rp_id && (allowed.is_empty() || allowed.contains(&c.id)))
            .ok_or_else(|| format!("NotAllowedError: no credential for rpId {rp_id}"))?;
        let flags = self.flags(0);
        let cred = &mut self.credentials[idx];
        cred.counter = cred.counter.wrapping_add(1);
        let cred = cred.clone();

        let auth_data = self.auth_data_head(&rp_id, flags, cred.counter);
        let client_data = self.client_data("webauthn.get", challenge);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(digest(&SHA256, &client_data).as_ref());
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &cred.key_pkcs8, &self.rng)
            .map_err(|_| "stored key unreadable")?;
        let sig = key.sign(&self.rng, &signed).map_err(|_| "signing failed")?;
        let mut sig = sig.as_ref().to_vec();
        // The last byte belongs to the DER integer `s`: the encoding stays valid, the value doesn't.
        if let (true, Some(b)) = (self.corrupt_signature, sig.last_mut()) {
            *b ^= 0x01;
        }
        Ok(json!({
            "id": b64(&cred.id),
            "rawId": b64(&cred.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(&sig),
                "userHandle": b64(&cred.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }))
    }
}
