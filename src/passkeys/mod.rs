//! Passkeys (WebAuthn, through webauthn-rs): registration, sign-in with and without a username,
//! management, step-up to MFA, and setup links for accounts without a password.
//!
//! Ceremony state lives in the database ([`ceremony`]) and is taken once by the step that
//! finishes it, so any instance can finish what another started and no response is accepted
//! twice. Every passkey is discoverable and every ceremony requires user verification, so a
//! passkey sign-in is a second factor in itself: its session carries `context.mfa`.

pub mod ceremony;
pub mod credential;
mod failures;
pub mod manage;
pub mod register;
pub mod relying_party;
pub mod setup_links;
pub mod sign_in;
pub mod step_up;

pub use ceremony::Started;
pub(crate) use failures::registration_refused_by_anyone as registration_refused;
pub use register::{Attachment, NewPasskey};
pub use relying_party::RelyingParty;

use crate::audit::Target;
use crate::db::models::PasskeyRow;

/// A passkey as an audit target (its name is the owner's words).
pub(crate) fn passkey_target(row: &PasskeyRow) -> Target {
    Target::new("passkey", row.id, row.name.clone())
}
