//! WebAuthn ceremony state: written to the database when a ceremony starts and taken — once — when
//! it finishes, so any instance can finish what another started and a replayed response finds
//! nothing. Ceremonies last five minutes; the periodic sweep deletes the ones never finished.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{DiscoverableAuthentication, PasskeyAuthentication, PasskeyRegistration};

use crate::app::App;
use crate::db::models::CeremonyRow;
use crate::db::{DbConn, Id, Timestamp, ceremonies};
use crate::error::{Error, Result};

/// How long a started ceremony can be finished.
pub const TTL: TimeDelta = TimeDelta::minutes(5);

/// What a ceremony was started for, and the library's state to verify its response against.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Ceremony {
    Registration(Registration),
    Authentication(Authentication),
    StepUp(StepUp),
}

/// A passkey being created for `user_id` (which may not exist yet: an invitee's new account).
#[derive(Serialize, Deserialize)]
pub(crate) struct Registration {
    pub user_id: Id,
    pub name: String,
    pub purpose: Purpose,
    pub state: PasskeyRegistration,
}

/// Whose registration it is, which decides who may finish it and what finishing does.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(tag = "via", rename_all = "snake_case")]
pub(crate) enum Purpose {
    /// The signed-in user adds a passkey.
    SignedIn,
    /// An account without a password registers its first passkey through a setup link.
    SetupLink { link_id: Id },
    /// An invitee creates an account with a passkey instead of a password.
    Invitation { invitation_id: Id },
}

/// A sign-in: for the account of an email (an allow-list), or usernameless.
#[derive(Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub(crate) enum Authentication {
    Account {
        user_id: Id,
        state: PasskeyAuthentication,
    },
    Discoverable {
        state: DiscoverableAuthentication,
    },
    /// For an email with no account (or no passkey): looks like the others from outside, and no
    /// response can finish it.
    Decoy,
}

/// A signed-in session proving a second factor.
#[derive(Serialize, Deserialize)]
pub(crate) struct StepUp {
    pub session_id: Id,
    pub user_id: Id,
    pub state: PasskeyAuthentication,
}

impl Ceremony {
    fn kind(&self) -> &'static str {
        match self {
            Self::Registration(_) => "registration",
            Self::Authentication(_) => "authentication",
            Self::StepUp(_) => "step_up",
        }
    }

    /// The existing account the ceremony belongs to (deleting the account ends its ceremonies).
    fn account(&self) -> Option<Id> {
        match self {
            Self::Registration(r) => match r.purpose {
                Purpose::Invitation { .. } => None,
                Purpose::SignedIn | Purpose::SetupLink { .. } => Some(r.user_id),
            },
            Self::Authentication(Authentication::Account { user_id, .. }) => Some(*user_id),
            Self::Authentication(Authentication::Discoverable { .. } | Authentication::Decoy) => None,
            Self::StepUp(s) => Some(s.user_id),
        }
    }
}

/// A ceremony as handed to the browser's side.
#[derive(Debug, Clone)]
pub struct Started {
    pub ceremony_id: Id,
    /// `PublicKeyCredentialCreationOptions` or `…RequestOptions` as JSON (base64url binary
    /// fields): what `navigator.credentials.create()/get()` take after `parse…OptionsFromJSON`.
    pub options: serde_json::Value,
    pub expires_at: Timestamp,
}

/// Stores a new ceremony; the caller hands `options` to the browser.
pub(crate) async fn begin(app: &App, ceremony: &Ceremony, mut options: serde_json::Value) -> Result<Started> {
    drop_nulls(&mut options);
    let now = app.now();
    let row = CeremonyRow {
        id: Id::new_v7(),
        kind: ceremony.kind().to_owned(),
        user_id: ceremony.account(),
        state: serde_json::to_string(ceremony).map_err(Error::internal)?,
        created_at: now,
        expires_at: now + TTL,
    };
    let mut conn = app.db.conn().await?;
    ceremonies::insert(&mut conn, &row).await?;
    Ok(Started {
        ceremony_id: row.id,
        options,
        expires_at: row.expires_at,
    })
}

/// webauthn-rs writes absent optional members as `null`; the WebAuthn JSON forms (and so
/// `PublicKeyCredential.parse…OptionsFromJSON`) refuse null where a sequence or dictionary may
/// only be absent. Options leave here in the standard shape.
fn drop_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(members) => {
            members.retain(|_, member| !member.is_null());
            members.values_mut().for_each(drop_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Takes the ceremony `id` out of the database: `None` when it never existed, expired or was
/// already finished (each looks the same to the caller).
pub(crate) async fn take(conn: &mut DbConn, id: Id, now: Timestamp) -> Result<Option<Ceremony>> {
    let Some(row) = ceremonies::take(conn, id, now).await? else {
        return Ok(None);
    };
    let ceremony = serde_json::from_str(&row.state).map_err(Error::internal)?;
    Ok(Some(ceremony))
}

/// Deletes ceremonies that can no longer be finished; returns how many.
pub async fn sweep(app: &App, now: Timestamp) -> Result<usize> {
    let mut conn = app.db.conn().await?;
    ceremonies::delete_expired(&mut conn, now).await
}
