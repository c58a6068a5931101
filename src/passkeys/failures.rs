//! Why a ceremony was refused, in words a person can act on, and the audit events refusals leave.

use webauthn_rs::prelude::WebauthnError;

use crate::app::App;
use crate::audit::{self, AuditAction, Event, Outcome};
use crate::error::{Error, Result};
use crate::identity::{Actor, ClientInfo};

/// A short reason for a webauthn-rs refusal: what the client (or its authenticator) got wrong.
pub(crate) fn describe(error: &WebauthnError) -> &'static str {
    use WebauthnError as E;
    match error {
        E::InvalidRPOrigin | E::CredentialCrossOrigin => {
            "the response came from an origin this gateway does not accept"
        }
        E::InvalidRPIDHash => "the authenticator signed for another relying party (RP ID)",
        E::MismatchedChallenge => "the response answers another ceremony's challenge",
        E::InvalidClientDataType => "the response is of the wrong kind (create vs get)",
        E::UserNotPresent => "the authenticator did not confirm user presence",
        E::UserNotVerified => "the authenticator did not verify the user (PIN or biometrics)",
        E::AuthenticationFailure => "the signature does not verify",
        E::CredentialPossibleCompromise => "the signature counter went backwards (a possible clone)",
        E::CredentialExcludedFromRequest | E::CredentialAlreadyExists => {
            "this authenticator already holds a passkey for the account"
        }
        E::CredentialAlteredAlgFromRequest | E::CredentialInsecureCryptography => {
            "the credential uses an algorithm that was not offered"
        }
        E::AttestationNotSupported
        | E::AttestationStatementVerUnsupported
        | E::AttestationNotVerifiable
        | E::AttestationFormatMissingAaguid => "the attestation format is not supported",
        E::ParseCBORFailure(_)
        | E::ParseJSONFailure(_)
        | E::ParseNOMFailure
        | E::ParseInsufficientBytesAvailable
        | E::MissingAttestationCredentialData => "the response is malformed or truncated",
        E::COSEKeyInvalidCBORValue
        | E::COSEKeyInvalidType
        | E::COSEKeyEDUnsupported
        | E::COSEKeyECDSAXYInvalid
        | E::COSEKeyRSANEInvalid
        | E::COSEKeyECDSAInvalidCurve
        | E::COSEKeyEDDSAXInvalid
        | E::COSEKeyEDDSAInvalidCurve
        | E::COSEKeyInvalidAlgorithm => "the credential's public key is malformed or unsupported",
        E::InvalidUserUniqueId => "the response names no account (user handle)",
        _ if error.to_string().contains("ttestation") => "the attestation statement does not verify",
        _ => "the response does not verify",
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
