//! Registering passkeys: the signed-in user adds one, or an account without a password registers
//! its first through a setup link. (An invitee's new account registers its passkey while
//! accepting: `invitations::accept` finishes that ceremony with [`verify`].)

use webauthn_rs::prelude::{AuthenticatorAttachment, Passkey, RegisterPublicKeyCredential};
use webauthn_rs_core::proto::{
    AuthenticatorSelectionCriteria, ResidentKeyRequirement, UserVerificationPolicy,
};

use super::ceremony::{self, Ceremony, Purpose, Registration, Started};
use super::{credential, failures, passkey_target};
use crate::app::App;
use crate::audit::{self, AuditAction, Event};
use crate::authz::{Action, Resource, guard};
use crate::db::models::{PasskeyRow, UserRow};
use crate::db::{Id, passkeys};
use crate::error::{Error, Result};
use crate::identity::sessions::{self, Grant};
use crate::identity::users::user_target;
use crate::identity::{Actor, ClientInfo, SessionMethod, validate};

/// Which kind of authenticator the browser should offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    /// Built into the device (Touch ID, Windows Hello, Android).
    Platform,
    /// A security key or a phone over hybrid transport.
    CrossPlatform,
    /// Whatever the user picks.
    Any,
}

/// The passkey a registration asks for.
#[derive(Debug, Clone)]
pub struct NewPasskey {
    /// What the user calls it ("MacBook Touch ID").
    pub name: String,
    pub attachment: Attachment,
}

/// The account a passkey is being made for (which may not exist yet).
pub(crate) struct Holder<'a> {
    pub id: Id,
    pub email: &'a str,
    pub display_name: &'a str,
}

impl<'a> From<&'a UserRow> for Holder<'a> {
    fn from(user: &'a UserRow) -> Self {
        Self {
            id: user.id,
            email: &user.email,
            display_name: &user.display_name,
        }
    }
}

/// Starts registering a passkey for the signed-in user. The first passkey of an account can be
/// added with its password session; once it has one, adding more takes a second factor
/// (MFA_REQUIRED: sign in with a passkey or step up), so a stolen password cannot add its own.
/// API keys cannot register passkeys: a passkey is a person's.
pub async fn start(app: &App, actor: &Actor, new: NewPasskey) -> Result<Started> {
    guard::check(
        app,
        actor,
        Action::PasskeyRegister,
        Resource::User(actor.user_id()),
    )
    .await?;
    if actor.session_id.is_none() {
        return Err(Error::bad_input(
            "authorization",
            "passkeys are registered from a signed-in session, not with an API key",
        ));
    }
    let mut conn = app.db.conn().await?;
    if passkeys::count_for_user(&mut conn, actor.user_id()).await? > 0 {
        super::manage::require_fresh_factor(actor, actor.user_id())?;
    }
    drop(conn);
    begin(app, Holder::from(&actor.user), new, Purpose::SignedIn).await
}

/// Creation options for `holder` — a discoverable credential with user verification, none of
/// the holder's existing passkeys — and the stored ceremony.
pub(crate) async fn begin(
    app: &App,
    holder: Holder<'_>,
    new: NewPasskey,
    purpose: Purpose,
) -> Result<Started> {
    let name = validate::name("name", &new.name, 100)?;
    let exclude = {
        let mut conn = app.db.conn().await?;
        passkeys::all_for_user(&mut conn, holder.id)
            .await?
            .iter()
            .map(|row| credential::stored(row).map(|passkey| passkey.cred_id().clone()))
            .collect::<Result<Vec<_>>>()?
    };
    let (mut options, state) = app
        .passkeys
        .webauthn
        .start_passkey_registration(holder.id.0, holder.email, holder.display_name, Some(exclude))
        .map_err(Error::internal)?;
    // webauthn-rs asks only for what every authenticator can do; this gateway signs people in
    // without a username, so the credential must be discoverable. (A request to the browser:
    // the response's `credProps` says whether it was honoured, checked in `verify`.)
    options.public_key.authenticator_selection = Some(AuthenticatorSelectionCriteria {
        authenticator_attachment: match new.attachment {
            Attachment::Platform => Some(AuthenticatorAttachment::Platform),
            Attachment::CrossPlatform => Some(AuthenticatorAttachment::CrossPlatform),
            Attachment::Any => None,
        },
        resident_key: Some(ResidentKeyRequirement::Required),
        require_resident_key: true,
        user_verification: UserVerificationPolicy::Required,
    });
    let options = serde_json::to_value(&options.public_key).map_err(Error::internal)?;
    let ceremony = Ceremony::Registration(Registration {
        user_id: holder.id,
        name,
        purpose,
        state,
    });
    ceremony::begin(app, &ceremony, options).await
}

/// What finishing a registration produced.
#[derive(Debug)]
pub struct Finished {
    pub passkey: PasskeyRow,
    /// A session, when the registration came through a setup link (the person has no other way
    /// in yet).
    pub grant: Option<Grant>,
}

/// Verifies the browser's response to ceremony `ceremony_id` and stores the passkey. Every
/// refusal is audited (`passkey.registration_failed`) and leaves nothing stored.
pub async fn finish(
    app: &App,
    caller: Option<&Actor>,
    ceremony_id: Id,
    response: &serde_json::Value,
    client: &ClientInfo,
) -> Result<Finished> {
    let result = finish_checked(app, caller, ceremony_id, response, client).await;
    if let Err(error) = &result {
        failures::registration_refused(app, caller, client, error).await?;
    }
    result
}

async fn finish_checked(
    app: &App,
    caller: Option<&Actor>,
    ceremony_id: Id,
    json: &serde_json::Value,
    client: &ClientInfo,
) -> Result<Finished> {
    let response = credential::registration(json)?;
    let now = app.now();
    let mut conn = app.db.conn().await?;
    let Some(Ceremony::Registration(registration)) = ceremony::take(&mut conn, ceremony_id, now).await?
    else {
        return Err(unknown_ceremony());
    };
    let account = {
        let user = crate::db::users::find(&mut conn, registration.user_id).await?;
        user.ok_or_else(unknown_ceremony)?
    };
    if account.status != crate::identity::users::ACTIVE {
        return Err(unknown_ceremony());
    }
    let link = match registration.purpose {
        Purpose::SignedIn if caller.is_some_and(|actor| actor.user_id() == account.id) => None,
        Purpose::SetupLink { link_id } => Some(link_id),
        Purpose::SignedIn => return Err(unknown_ceremony()),
        Purpose::Invitation { .. } => {
            return Err(Error::bad_input(
                "ceremonyId",
                "this ceremony creates an invited account: finish it with acceptInvitation",
            ));
        }
    };
    let passkey = verify(app, &registration, &response)?;
    let row = credential::new_row(account.id, &registration.name, &passkey, &response, json, now)?;
    // Through a setup link it is the account's holder who registers, whoever else may be signed
    // in in that browser.
    let event = match caller.filter(|_| link.is_none()) {
        Some(actor) => Event::by(actor, AuditAction::PasskeyRegistered),
        None => Event::anonymous(AuditAction::PasskeyRegistered, client)
            .as_user(account.id, &account.display_name),
    }
    .target(user_target(&account))
    .target(passkey_target(&row))
    .with("via", if link.is_some() { "setup_link" } else { "signed_in" });
    let opened = conn
        .transaction(async |tx| {
            passkeys::insert(tx, &row).await?;
            audit::record(tx, now, event).await?;
            let Some(link_id) = link else { return Ok(None) };
            if !passkeys::use_setup_link(tx, link_id, now).await? {
                return Err(Error::bad_input("ceremonyId", "this setup link was already used"));
            }
            sessions::open_in(tx, app, &account, SessionMethod::Passkey, client)
                .await
                .map(Some)
        })
        .await?;
    let grant = match opened {
        Some((session, refresh_token)) => Some(sessions::issue(app, session, account, refresh_token)?),
        None => None,
    };
    Ok(Finished { passkey: row, grant })
}

/// webauthn-rs's verdict on a registration response: origin, RP ID, challenge, user presence and
/// verification, algorithm, attestation format; then the discoverability the browser reported.
pub(crate) fn verify(
    app: &App,
    registration: &Registration,
    response: &RegisterPublicKeyCredential,
) -> Result<Passkey> {
    let passkey = app
        .passkeys
        .webauthn
        .finish_passkey_registration(response, &registration.state)
        .map_err(|e| {
            Error::bad_input(
                credential::FIELD,
                format!(
                    "the registration could not be verified: {}",
                    failures::explain(&e).words
                ),
            )
        })?;
    if credential::reported_not_discoverable(response) {
        return Err(Error::bad_input(
            credential::FIELD,
            "the authenticator made a credential it cannot find by itself (credProps.rk = false); \
             passkeys here must be discoverable",
        ));
    }
    Ok(passkey)
}

/// Unknown, expired, finished and other people's ceremonies all look alike.
pub(crate) fn unknown_ceremony() -> Error {
    Error::bad_input(
        "ceremonyId",
        "no such ceremony: it expired (they last 5 minutes), was already finished, or is not yours",
    )
}
