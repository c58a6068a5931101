//! Why a ceremony was refused — a stable code and words a person can act on — and the audit events
//! refusals leave.

use webauthn_rs::prelude::WebauthnError;

use crate::app::App;
use crate::audit::{self, AuditAction, Event, Outcome};
use crate::error::{Error, Result};
use crate::identity::{Actor, ClientInfo};

/// Why webauthn-rs refused a response: a stable code (the `reason` of audit events, as password
/// failures have theirs) and words a person can act on (the message of a refused registration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Why {
    pub code: &'static str,
    pub words: &'static str,
}

const fn why(code: &'static str, words: &'static str) -> Why {
    Why { code, words }
}

pub(crate) fn explain(error: &WebauthnError) -> Why {
    use WebauthnError as E;
    match error {
        E::InvalidRPOrigin | E::CredentialCrossOrigin => why(
            "wrong_origin",
            "the response came from an origin this gateway does not accept",
        ),
        E::InvalidRPIDHash => why(
            "wrong_rp_id",
            "the authenticator signed for another relying party (RP ID)",
        ),
        E::MismatchedChallenge => why(
            "other_challenge",
            "the response answers another ceremony's challenge",
        ),
        E::InvalidClientDataType => why(
            "wrong_ceremony_type",
            "the response is of the wrong kind (create vs get)",
        ),
        E::UserNotPresent => why(
            "user_not_present",
            "the authenticator did not confirm user presence",
        ),
        E::UserNotVerified => why(
            "user_not_verified",
            "the authenticator did not verify the user (PIN or biometrics)",
        ),
        E::AuthenticationFailure => why("bad_signature", "the signature does not verify"),
        E::CredentialPossibleCompromise => why(
            "counter_regressed",
            "the signature counter went backwards (a possible clone)",
        ),
        E::CredentialExcludedFromRequest | E::CredentialAlreadyExists => why(
            "already_registered",
            "this authenticator already holds a passkey for the account",
        ),
        E::CredentialAlteredAlgFromRequest | E::CredentialInsecureCryptography => why(
            "algorithm_not_offered",
            "the credential uses an algorithm that was not offered",
        ),
        E::AttestationNotSupported
        | E::AttestationStatementVerUnsupported
        | E::AttestationNotVerifiable
        | E::AttestationFormatMissingAaguid => why(
            "unsupported_attestation",
            "the attestation format is not supported",
        ),
        E::ParseCBORFailure(_)
        | E::ParseJSONFailure(_)
        | E::ParseNOMFailure
        | E::ParseInsufficientBytesAvailable
        | E::MissingAttestationCredentialData => why("malformed", "the response is malformed or truncated"),
        E::COSEKeyInvalidCBORValue
        | E::COSEKeyInvalidType
        | E::COSEKeyEDUnsupported
        | E::COSEKeyECDSAXYInvalid
        | E::COSEKeyRSANEInvalid
        | E::COSEKeyECDSAInvalidCurve
        | E::COSEKeyEDDSAXInvalid
        | E::COSEKeyEDDSAInvalidCurve
        | E::COSEKeyInvalidAlgorithm => why(
            "bad_public_key",
            "the credential's public key is malformed or unsupported",
        ),
        E::InvalidUserUniqueId => why("no_user_handle", "the response names no account (user handle)"),
        _ if error.to_string().contains("ttestation") => {
            why("bad_attestation", "the attestation statement does not verify")
        }
        _ => why("not_verified", "the response does not verify"),
    }
}

/// Records a refused registration (`passkey.registration_failed`), outside the failed change.
pub(crate) async fn registration_refused(
    app: &App,
    caller: Option<&Actor>,
    client: &ClientInfo,
    error: &Error,
) -> Result<()> {
    if matches!(error, Error::Internal(_) | Error::RateLimited { .. }) {
        return Ok(());
    }
    let event = match caller {
        Some(actor) => Event::by(actor, AuditAction::PasskeyRegistrationFailed),
        None => Event::anonymous(AuditAction::PasskeyRegistrationFailed, client),
    }
    .outcome(Outcome::Failure)
    .with("reason", error.message());
    record(app, vec![event]).await
}

/// [`registration_refused`] for a caller who is not signed in (an invitee creating an account).
pub(crate) async fn registration_refused_by_anyone(
    app: &App,
    client: &ClientInfo,
    error: &Error,
) -> Result<()> {
    registration_refused(app, None, client, error).await
}

pub(crate) async fn record(app: &App, events: Vec<Event>) -> Result<()> {
    let now = app.now();
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| audit::record_all(tx, now, events).await)
        .await?;
    Ok(())
}
