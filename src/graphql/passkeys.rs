//! GraphQL types and resolvers for passkeys: ceremonies (register, sign in, step up), management,
//! setup links.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::ContextExt;
use super::ids::{parse_id, to_id};
use super::sessions::{AuthPayload, Session};
use crate::db::models::PasskeyRow;
use crate::passkeys::{self, Attachment, NewPasskey, manage, register, setup_links, sign_in, step_up};

/// A passkey: a WebAuthn credential that signs its user in without a password.
pub struct Passkey(pub PasskeyRow);

/// A passkey registered to an account (its public key stays on the server, its private key on
/// the authenticator).
#[Object]
impl Passkey {
    /// Stable identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    /// What the user calls it.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The WebAuthn credential id (base64url).
    async fn credential_id(&self) -> &str {
        &self.0.credential_id
    }

    /// When it was registered.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.0
    }

    /// When it last signed in or stepped up; null if never.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at.map(|at| at.0)
    }

    /// Built into a device or roaming (a security key, a phone), as the browser reported it.
    async fn authenticator_attachment(&self) -> Option<AuthenticatorAttachment> {
        match self.0.authenticator_attachment.as_deref() {
            Some("platform") => Some(AuthenticatorAttachment::Platform),
            Some("cross-platform") => Some(AuthenticatorAttachment::CrossPlatform),
            _ => None,
        }
    }

    /// How the browser can reach the authenticator (`internal`, `usb`, `hybrid`, `nfc`, `ble`).
    async fn transports(&self) -> Vec<String> {
        serde_json::from_str(&self.0.transports).unwrap_or_default()
    }

    /// The authenticator model's AAGUID; null when the authenticator does not say.
    async fn aaguid(&self) -> Option<&str> {
        self.0.aaguid.as_deref()
    }

    /// Whether the passkey may be synced to other devices (a password manager, iCloud Keychain).
    async fn backup_eligible(&self) -> bool {
        self.0.backup_eligible
    }

    /// Whether it is synced (backed up) now.
    async fn backed_up(&self) -> bool {
        self.0.backed_up
    }
}

/// Which authenticators to offer.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AuthenticatorAttachment {
    /// Built into this device (Touch ID, Windows Hello, Android screen lock).
    Platform,
    /// A security key, or a phone over hybrid transport.
    CrossPlatform,
    /// Whatever the user picks.
    Any,
}

impl From<AuthenticatorAttachment> for Attachment {
    fn from(value: AuthenticatorAttachment) -> Self {
        match value {
            AuthenticatorAttachment::Platform => Attachment::Platform,
            AuthenticatorAttachment::CrossPlatform => Attachment::CrossPlatform,
            AuthenticatorAttachment::Any => Attachment::Any,
        }
    }
}

/// A WebAuthn ceremony started: hand `options` to the browser, send its answer back with
/// `ceremonyId` within five minutes.
#[derive(SimpleObject)]
pub struct PasskeyCeremony {
    /// Names the ceremony when finishing it. Each can be finished once.
    ceremony_id: ID,
    /// `PublicKeyCredentialCreationOptionsJSON` (registration) or `…RequestOptionsJSON` (sign-in,
    /// step-up), binary fields base64url: pass it to `PublicKeyCredential.parseCreationOptionsFromJSON`
    /// / `parseRequestOptionsFromJSON`, or to `@simplewebauthn/browser`'s `startRegistration` /
    /// `startAuthentication` as `optionsJSON`.
    options: Json<serde_json::Value>,
    /// After this instant the ceremony can no longer be finished.
    expires_at: DateTime<Utc>,
}

impl From<passkeys::Started> for PasskeyCeremony {
    fn from(started: passkeys::Started) -> Self {
        Self {
            ceremony_id: to_id(started.ceremony_id),
            options: Json(started.options),
            expires_at: started.expires_at.0,
        }
    }
}

/// A new passkey for the signed-in user.
#[derive(InputObject)]
pub struct StartPasskeyRegistrationInput {
    /// What to call it (1–100 characters), e.g. "MacBook Touch ID".
    name: String,
    /// Which authenticators the browser should offer (default ANY).
    #[graphql(default_with = "AuthenticatorAttachment::Any")]
    authenticator_attachment: AuthenticatorAttachment,
}

/// The browser's answer to a ceremony.
#[derive(InputObject)]
pub struct FinishPasskeyCeremonyInput {
    /// From the start of the ceremony.
    ceremony_id: ID,
    /// The `PublicKeyCredential` as its `toJSON()` gives it (or `@simplewebauthn/browser`'s
    /// result).
    credential: Json<serde_json::Value>,
}

impl FinishPasskeyCeremonyInput {
    /// The answer as the invitation flow takes it.
    pub fn into_answer(self) -> crate::error::Result<crate::invitations::accept::PasskeyAnswer> {
        Ok(crate::invitations::accept::PasskeyAnswer {
            ceremony_id: parse_id("passkey.ceremonyId", &self.ceremony_id)?,
            credential: self.credential.0,
        })
    }
}

/// A passkey for the account an invitation creates.
#[derive(InputObject)]
pub struct StartInvitationPasskeyInput {
    /// The token from the invitation email's link.
    pub token: String,
    /// The name others will see (as `acceptInvitation` takes it).
    pub display_name: String,
    /// What to call the passkey (default "Passkey").
    #[graphql(default = "Passkey")]
    pub name: String,
    /// Which authenticators the browser should offer (default ANY).
    #[graphql(default_with = "AuthenticatorAttachment::Any")]
    pub authenticator_attachment: AuthenticatorAttachment,
}

/// A passkey sign-in.
#[derive(InputObject, Default)]
pub struct StartPasskeyAuthenticationInput {
    /// The account's email: the browser is offered that account's passkeys. Omit for a
    /// usernameless sign-in (any passkey of this gateway; conditional UI).
    email: Option<String>,
}

/// A passkey through a setup link.
#[derive(InputObject)]
pub struct StartPasskeySetupInput {
    /// The token of the setup link (`pcs_…`).
    token: String,
    /// What to call the passkey (1–100 characters).
    name: String,
    /// Which authenticators the browser should offer (default ANY).
    #[graphql(default_with = "AuthenticatorAttachment::Any")]
    authenticator_attachment: AuthenticatorAttachment,
}

/// A passkey to rename.
#[derive(InputObject)]
pub struct RenamePasskeyInput {
    id: ID,
    /// The new name (1–100 characters).
    name: String,
}

/// A passkey to delete.
#[derive(InputObject)]
pub struct DeletePasskeyInput {
    id: ID,
}

/// The account a setup link is for.
#[derive(InputObject)]
pub struct CreatePasskeySetupLinkInput {
    /// An account (typically one created without a password).
    user_id: ID,
}

/// The passkey a mutation touched.
#[derive(SimpleObject)]
pub struct PasskeyPayload {
    /// The passkey as it is now (as it was, for a deletion).
    passkey: Passkey,
}

/// A registered passkey, and a session when the registration came through a setup link.
#[derive(SimpleObject)]
pub struct FinishPasskeyRegistrationPayload {
    /// The new passkey.
    passkey: Passkey,
    /// Tokens for the account (setup links only: the person had no other way in); null for a
    /// signed-in registration.
    session: Option<AuthPayload>,
}

/// A setup link: give it to the person (it is shown once).
#[derive(SimpleObject)]
pub struct PasskeySetupLink {
    /// Opens the sign-in page, which registers a passkey and signs the person in.
    url: String,
    /// The token in the URL, for your own pages (`startPasskeySetup`).
    token: String,
    /// After this instant the link no longer works.
    expires_at: DateTime<Utc>,
}

/// The session after a step-up.
#[derive(SimpleObject)]
pub struct StepUpPayload {
    /// The caller's session: `mfaVerifiedAt` is now, `mfaExpiresAt` when the step-up lapses.
    session: Session,
}

#[derive(Default)]
pub struct PasskeyMutation;

#[Object]
impl PasskeyMutation {
    /// Starts registering a passkey for the signed-in user: a discoverable credential with user
    /// verification, none of your existing passkeys.
    async fn start_passkey_registration(
        &self,
        ctx: &Context<'_>,
        input: StartPasskeyRegistrationInput,
    ) -> async_graphql::Result<PasskeyCeremony> {
        let new = NewPasskey {
            name: input.name,
            attachment: input.authenticator_attachment.into(),
        };
        let started = register::start(ctx.app()?, ctx.actor()?, new).await?;
        Ok(started.into())
    }

    /// Starts registering the first passkey of an account through a setup link (no sign-in).
    async fn start_passkey_setup(
        &self,
        ctx: &Context<'_>,
        input: StartPasskeySetupInput,
    ) -> async_graphql::Result<PasskeyCeremony> {
        let new = NewPasskey {
            name: input.name,
            attachment: input.authenticator_attachment.into(),
        };
        let started = setup_links::start(ctx.app()?, &input.token, new).await?;
        Ok(started.into())
    }

    /// Verifies the browser's answer to a registration and stores the passkey. Refusals are
    /// BAD_USER_INPUT naming `credential` or `ceremonyId`, and audited.
    async fn finish_passkey_registration(
        &self,
        ctx: &Context<'_>,
        input: FinishPasskeyCeremonyInput,
    ) -> async_graphql::Result<FinishPasskeyRegistrationPayload> {
        let request = ctx.request()?;
        let ceremony_id = parse_id("ceremonyId", &input.ceremony_id)?;
        let caller = request.principal.optional_actor()?;
        let finished = register::finish(
            &request.app,
            caller,
            ceremony_id,
            &input.credential.0,
            &request.client,
        )
        .await?;
        Ok(FinishPasskeyRegistrationPayload {
            passkey: Passkey(finished.passkey),
            session: finished.grant.map(AuthPayload::from),
        })
    }

    /// Starts a passkey sign-in, for an email's account or usernameless.
    async fn start_passkey_authentication(
        &self,
        ctx: &Context<'_>,
        input: Option<StartPasskeyAuthenticationInput>,
    ) -> async_graphql::Result<PasskeyCeremony> {
        let input = input.unwrap_or_default();
        let started = sign_in::start(ctx.app()?, input.email.as_deref()).await?;
        Ok(started.into())
    }

    /// Verifies a passkey assertion and signs in (tokens as `login` returns; the session's
    /// `authMethod` is `passkey` and it counts as MFA-verified). Any failure is the same
    /// UNAUTHENTICATED error, audited and rate limited like failed password logins.
    async fn finish_passkey_authentication(
        &self,
        ctx: &Context<'_>,
        input: FinishPasskeyCeremonyInput,
    ) -> async_graphql::Result<AuthPayload> {
        let request = ctx.request()?;
        let ceremony_id = parse_id("ceremonyId", &input.ceremony_id)?;
        let grant = sign_in::finish(&request.app, ceremony_id, &input.credential.0, &request.client).await?;
        Ok(grant.into())
    }

    /// Starts a step-up: an assertion by one of your passkeys for the current session.
    async fn start_step_up(&self, ctx: &Context<'_>) -> async_graphql::Result<PasskeyCeremony> {
        let started = step_up::start(ctx.app()?, ctx.actor()?).await?;
        Ok(started.into())
    }

    /// Verifies the step-up assertion: the session counts as MFA-verified (`context.mfa`) for
    /// `PORTCULLIS_STEP_UP_MINUTES`, so operations refused with MFA_REQUIRED now succeed.
    async fn finish_step_up(
        &self,
        ctx: &Context<'_>,
        input: FinishPasskeyCeremonyInput,
    ) -> async_graphql::Result<StepUpPayload> {
        let actor = ctx.actor()?;
        let ceremony_id = parse_id("ceremonyId", &input.ceremony_id)?;
        let row = step_up::finish(ctx.app()?, actor, ceremony_id, &input.credential.0).await?;
        Ok(StepUpPayload {
            session: Session::of(row, actor.session_id),
        })
    }

    /// Renames one of your passkeys (administrators: anyone's, as policies allow).
    async fn rename_passkey(
        &self,
        ctx: &Context<'_>,
        input: RenamePasskeyInput,
    ) -> async_graphql::Result<PasskeyPayload> {
        let id = parse_id("id", &input.id)?;
        let row = manage::rename(ctx.app()?, ctx.actor()?, id, &input.name).await?;
        Ok(PasskeyPayload {
            passkey: Passkey(row),
        })
    }

    /// Deletes a passkey. The last way into an account without a password is refused (CONFLICT,
    /// reason LAST_CREDENTIAL).
    async fn delete_passkey(
        &self,
        ctx: &Context<'_>,
        input: DeletePasskeyInput,
    ) -> async_graphql::Result<PasskeyPayload> {
        let id = parse_id("id", &input.id)?;
        let row = manage::delete(ctx.app()?, ctx.actor()?, id).await?;
        Ok(PasskeyPayload {
            passkey: Passkey(row),
        })
    }

    /// Issues a single-use link with which the account registers a passkey and signs in — for
    /// accounts created without a password (or that lost every passkey).
    async fn create_passkey_setup_link(
        &self,
        ctx: &Context<'_>,
        input: CreatePasskeySetupLinkInput,
    ) -> async_graphql::Result<PasskeySetupLink> {
        let user_id = parse_id("userId", &input.user_id)?;
        let link = setup_links::create(ctx.app()?, ctx.actor()?, user_id).await?;
        Ok(PasskeySetupLink {
            url: link.url,
            token: link.token,
            expires_at: link.expires_at.0,
        })
    }
}
