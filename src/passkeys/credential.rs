//! Reading what browsers send (`PublicKeyCredential.toJSON()`), and what a stored passkey is.

use serde::de::DeserializeOwned;
use webauthn_rs::prelude::{Credential, Passkey, PublicKeyCredential, RegisterPublicKeyCredential};
use webauthn_rs_core::internals::AuthenticatorData;
use webauthn_rs_core::proto::Registration;

use crate::db::models::PasskeyRow;
use crate::db::{Id, Timestamp};
use crate::error::{Error, Result};
use crate::identity::secrets;

/// The input field that carries the browser's credential.
pub const FIELD: &str = "credential";

/// A registration response, or BAD_USER_INPUT naming what is wrong with it.
pub fn registration(json: &serde_json::Value) -> Result<RegisterPublicKeyCredential> {
    parse(
        json,
        "a registration response (PublicKeyCredential.toJSON() of navigator.credentials.create())",
    )
}

/// An assertion, or BAD_USER_INPUT naming what is wrong with it.
pub fn assertion(json: &serde_json::Value) -> Result<PublicKeyCredential> {
    parse(
        json,
        "an assertion (PublicKeyCredential.toJSON() of navigator.credentials.get())",
    )
}

fn parse<T: DeserializeOwned>(json: &serde_json::Value, what: &str) -> Result<T> {
    T::deserialize(json).map_err(|e| Error::bad_input(FIELD, format!("not {what}: {e}")))
}

/// How a credential id is stored and looked up.
pub fn id_text(raw: &[u8]) -> String {
    secrets::encode(raw)
}

/// The row for a passkey just verified by webauthn-rs. Attachment and transports are what the
/// browser reported (hints, shown to the user); the AAGUID and backup flags come from the signed
/// authenticator data.
pub fn new_row(
    user_id: Id,
    name: &str,
    passkey: &Passkey,
    response: &RegisterPublicKeyCredential,
    reported: &serde_json::Value,
    now: Timestamp,
) -> Result<PasskeyRow> {
    let internals: Credential = passkey.clone().into();
    let attachment = reported
        .get("authenticatorAttachment")
        .and_then(serde_json::Value::as_str)
        .filter(|a| matches!(*a, "platform" | "cross-platform"))
        .map(str::to_owned);
    let transports: Vec<String> = reported
        .pointer("/response/transports")
        .and_then(serde_json::Value::as_array)
        .map(|listed| {
            listed
                .iter()
                .filter_map(serde_json::Value::as_str)
                .take(8)
                .map(|t| t.chars().take(32).collect())
                .collect()
        })
        .unwrap_or_default();
    let aaguid = aaguid(&response.response.attestation_object);
    Ok(PasskeyRow {
        id: Id::new_v7(),
        user_id,
        credential_id: id_text(passkey.cred_id().as_slice()),
        name: name.to_owned(),
        credential: serde_json::to_string(passkey).map_err(Error::internal)?,
        authenticator_attachment: attachment,
        transports: serde_json::to_string(&transports).map_err(Error::internal)?,
        aaguid,
        backup_eligible: internals.backup_eligible,
        backed_up: internals.backup_state,
        created_at: now,
        last_used_at: None,
    })
}

/// The webauthn-rs passkey stored in a row.
pub fn stored(row: &PasskeyRow) -> Result<Passkey> {
    serde_json::from_str(&row.credential).map_err(Error::internal)
}

/// Whether the browser said the authenticator made no discoverable credential (`credProps.rk`
/// false). Usernameless sign-in could never find such a passkey, so it is refused.
pub fn reported_not_discoverable(response: &RegisterPublicKeyCredential) -> bool {
    response
        .extensions
        .cred_props
        .as_ref()
        .is_some_and(|props| props.rk == Some(false))
}

/// The authenticator model (AAGUID) in an attestation object; `None` when the authenticator hides
/// it (all zeros) or the object cannot be read.
fn aaguid(attestation_object: &[u8]) -> Option<String> {
    let object: serde_cbor_2::Value = serde_cbor_2::from_slice(attestation_object).ok()?;
    let serde_cbor_2::Value::Map(fields) = object else {
        return None;
    };
    let serde_cbor_2::Value::Bytes(auth_data) =
        fields.get(&serde_cbor_2::Value::Text("authData".to_owned()))?
    else {
        return None;
    };
    let data = AuthenticatorData::<Registration>::try_from(auth_data.as_slice()).ok()?;
    let aaguid = data.acd?.aaguid;
    (aaguid != [0; 16]).then(|| uuid::Uuid::from_bytes(aaguid).to_string())
}
