//! Signing in with a passkey: for the account of an email (an allow-list of its passkeys) or
//! usernameless (a discoverable credential names its account).
//!
//! Every failure — unknown credential, a credential of another account, a disabled account, a
//! response that does not verify, a replayed or expired ceremony — is the same UNAUTHENTICATED,
//! audited like a failed password login (with the reason) and counted against the client's
//! budget of failed attempts. A counter that went backwards is also recorded as
//! `passkey.counter_regressed`.

use webauthn_rs::prelude::{AuthenticationResult, Passkey, PublicKeyCredential, WebauthnError};

use super::ceremony::{self, Authentication, Ceremony, Started};
use super::{credential, failures, passkey_target};
use crate::app::App;
use crate::audit::{AuditAction, Event, Outcome};
use crate::db::models::{PasskeyRow, UserRow};
use crate::db::{DbConn, Id, Timestamp, passkeys, users};
use crate::error::{Error, Result};
use crate::identity::sessions::{self, Grant};
use crate::identity::users::{ACTIVE, user_target};
use crate::identity::{AuthMethod, ClientInfo, SessionMethod, validate};

/// Longest email read at all (as for password logins).
const MAX_EMAIL_BYTES: usize = 320;

/// Starts a sign-in. With an email, the options list that account's passkeys — or, for an email
/// with no account or no passkey, believable made-up ones, so the answer does not tell which
/// emails have accounts. Without, any discoverable passkey of this gateway may answer
/// (conditional UI: `navigator.credentials.get({mediation: "conditional", publicKey})`).
pub async fn start(app: &App, email: Option<&str>) -> Result<Started> {
    let Some(email) = email else {
        let (options, state) = app
            .passkeys
            .webauthn
            .start_discoverable_authentication()
            .map_err(Error::internal)?;
        let options = serde_json::to_value(&options.public_key).map_err(Error::internal)?;
        let ceremony = Ceremony::Authentication(Authentication::Discoverable { state });
        return ceremony::begin(app, &ceremony, options).await;
    };
    if email.len() > MAX_EMAIL_BYTES {
        return Err(Error::bad_input("email", "not a valid email address"));
    }
    let email = validate::email("email", email)?;
    let mut conn = app.db.conn().await?;
    let account = users::find_by_email(&mut conn, &email)
        .await?
        .filter(|user| user.status == ACTIVE);
    let keys = match &account {
        Some(user) => stored_passkeys(&mut conn, user.id).await?,
        None => Vec::new(),
    };
    drop(conn);
    if keys.is_empty() {
        return decoy(app, &email).await;
    }
    let (options, state) = app
        .passkeys
        .webauthn
        .start_passkey_authentication(&keys)
        .map_err(Error::internal)?;
    let options = serde_json::to_value(&options.public_key).map_err(Error::internal)?;
    let Some(user) = account else {
        return Err(Error::internal(anyhow::anyhow!("passkeys without an account")));
    };
    let ceremony = Ceremony::Authentication(Authentication::Account {
        user_id: user.id,
        state,
    });
    ceremony::begin(app, &ceremony, options).await
}

/// Options shaped like a real account's, with credential ids made up (deterministically) from
/// the email; no response can finish the ceremony.
async fn decoy(app: &App, email: &str) -> Result<Started> {
    let (options, _) = app
        .passkeys
        .webauthn
        .start_discoverable_authentication()
        .map_err(Error::internal)?;
    let mut options = serde_json::to_value(&options.public_key).map_err(Error::internal)?;
    let made_up: Vec<serde_json::Value> = app
        .passkeys
        .decoys(email)?
        .iter()
        .map(|id| serde_json::json!({ "type": "public-key", "id": credential::id_text(id) }))
        .collect();
    options["allowCredentials"] = serde_json::Value::Array(made_up);
    if let Some(fields) = options.as_object_mut() {
        fields.remove("extensions");
    }
    ceremony::begin(app, &Ceremony::Authentication(Authentication::Decoy), options).await
}

async fn stored_passkeys(conn: &mut DbConn, user_id: Id) -> Result<Vec<Passkey>> {
    passkeys::all_for_user(conn, user_id)
        .await?
        .iter()
        .map(credential::stored)
        .collect()
}

/// Verifies the browser's assertion for ceremony `ceremony_id` and opens a passkey session.
pub async fn finish(
    app: &App,
    ceremony_id: Id,
    response: &serde_json::Value,
    client: &ClientInfo,
) -> Result<Grant> {
    let response = credential::assertion(response)?;
    let now = app.now();
    let limit_key = client.ip.clone().unwrap_or_default();
    let attempt = app.limits.passkey.reserve(&app.db, &limit_key, now).await?;
    match verify_sign_in(app, ceremony_id, &response, now).await {
        Ok(Verified {
            user,
            passkey,
            result,
        }) => {
            // Handed back, not reset: a success of its own must not wipe a client's earlier failures.
            app.limits.passkey.refund(&app.db, attempt).await;
            let mut conn = app.db.conn().await?;
            let opened = conn
                .transaction(async |tx| {
                    record_use(tx, &passkey, &result, now).await?;
                    sessions::open_in(tx, app, &user, SessionMethod::Passkey, client).await
                })
                .await;
            match opened {
                Ok((session, refresh_token)) => sessions::issue(app, session, user, refresh_token),
                Err(lost @ Error::Unauthenticated(_)) => {
                    // Another sign-in with this passkey advanced its counter first.
                    let refused = Refused::Rejected {
                        reason: "concurrent_use",
                        account: Some(Box::new(user)),
                        passkey: Some(Box::new(passkey)),
                        counter_regressed: false,
                    };
                    failures::record(app, refused.events(client)).await?;
                    Err(lost)
                }
                Err(other) => Err(other),
            }
        }
        Err(Refused::Internal(error)) => {
            app.limits.passkey.refund(&app.db, attempt).await;
            Err(error)
        }
        Err(refused) => {
            let mut events = refused.events(client);
            if let Some(until) = app.limits.passkey.failed(&app.db, attempt, now).await {
                // This failure spent the client's budget: its passkey sign-ins wait until then.
                events.push(
                    Event::anonymous(AuditAction::LoginLocked, client)
                        .outcome(Outcome::Failure)
                        .with("authMethod", AuthMethod::Passkey.as_str())
                        .with("lockedUntil", until.0),
                );
            }
            failures::record(app, events).await?;
            Err(Error::unauthenticated("the passkey sign-in failed"))
        }
    }
}

/// A verified assertion: whose, with which passkey, and what the authenticator reported.
pub(crate) struct Verified {
    pub user: UserRow,
    pub passkey: PasskeyRow,
    pub result: AuthenticationResult,
}

/// Why an assertion was refused (all look the same to the caller).
pub(crate) enum Refused {
    /// Audited as `reason`, attributed to the account when one was named.
    Rejected {
        reason: &'static str,
        account: Option<Box<UserRow>>,
        passkey: Option<Box<PasskeyRow>>,
        counter_regressed: bool,
    },
    Internal(Error),
}

impl From<Error> for Refused {
    fn from(error: Error) -> Self {
        Self::Internal(error)
    }
}

impl Refused {
    /// A refusal that names no account.
    pub(crate) fn plain(reason: &'static str) -> Self {
        Self::Rejected {
            reason,
            account: None,
            passkey: None,
            counter_regressed: false,
        }
    }

    /// The audit events of a refused sign-in.
    fn events(self, client: &ClientInfo) -> Vec<Event> {
        let Self::Rejected {
            reason,
            account,
            passkey,
            counter_regressed,
        } = self
        else {
            return Vec::new();
        };
        let attributed = |event: Event| match &account {
            Some(user) => event
                .as_user(user.id, &user.display_name)
                .target(user_target(user)),
            None => event,
        };
        let mut events = vec![attributed(
            Event::anonymous(AuditAction::LoginFailed, client)
                .outcome(Outcome::Failure)
                .with("authMethod", AuthMethod::Passkey.as_str())
                .with("reason", reason),
        )];
        if counter_regressed && let Some(passkey) = &passkey {
            events.push(attributed(
                Event::anonymous(AuditAction::PasskeyCounterRegressed, client)
                    .outcome(Outcome::Failure)
                    .target(passkey_target(passkey)),
            ));
        }
        events
    }
}

async fn verify_sign_in(
    app: &App,
    ceremony_id: Id,
    response: &PublicKeyCredential,
    now: Timestamp,
) -> Result<Verified, Refused> {
    let mut conn = app.db.conn().await?;
    let Some(Ceremony::Authentication(ceremony)) = ceremony::take(&mut conn, ceremony_id, now).await? else {
        return Err(Refused::plain("unknown_or_spent_ceremony"));
    };
    if matches!(ceremony, Authentication::Decoy) {
        return Err(Refused::plain("no_passkey_for_email"));
    }
    let named = credential::id_text(response.get_credential_id());
    let Some((row, user)) = passkeys::find_by_credential_id(&mut conn, &named).await? else {
        return Err(Refused::plain("unknown_credential"));
    };
    drop(conn);
    let rejected = |reason| Refused::Rejected {
        reason,
        account: Some(Box::new(user.clone())),
        passkey: Some(Box::new(row.clone())),
        counter_regressed: false,
    };
    let passkey = credential::stored(&row)?;
    let verdict = match ceremony {
        Authentication::Account { user_id, state } => {
            if user_id != user.id {
                return Err(rejected("credential_of_another_account"));
            }
            app.passkeys
                .webauthn
                .finish_passkey_authentication(response, &state)
        }
        Authentication::Discoverable { state } => {
            let named_account = app
                .passkeys
                .webauthn
                .identify_discoverable_authentication(response)
                .map(|(handle, _)| handle);
            if named_account.ok() != Some(user.id.0) {
                return Err(rejected("user_handle_mismatch"));
            }
            app.passkeys
                .webauthn
                .finish_discoverable_authentication_v2(response, state, &passkey)
        }
        Authentication::Decoy => return Err(Refused::plain("no_passkey_for_email")),
    };
    let result = judge(verdict, &user, &row)?;
    if user.status != ACTIVE {
        return Err(rejected("account_disabled"));
    }
    Ok(Verified {
        user,
        passkey: row,
        result,
    })
}

/// webauthn-rs's verdict as a refusal reason (user verification is required by every ceremony
/// here, so a verified assertion is a second factor).
pub(crate) fn judge(
    verdict: Result<AuthenticationResult, WebauthnError>,
    user: &UserRow,
    row: &PasskeyRow,
) -> Result<AuthenticationResult, Refused> {
    verdict.map_err(|error| Refused::Rejected {
        reason: failures::explain(&error).code,
        account: Some(Box::new(user.clone())),
        passkey: Some(Box::new(row.clone())),
        counter_regressed: matches!(error, WebauthnError::CredentialPossibleCompromise),
    })
}

/// Stores the passkey's new counter and backup state, and when it was used.
pub(crate) async fn record_use(
    tx: &mut DbConn,
    row: &PasskeyRow,
    result: &AuthenticationResult,
    now: Timestamp,
) -> Result<()> {
    let mut passkey = credential::stored(row)?;
    passkey.update_credential(result);
    let updated = serde_json::to_string(&passkey).map_err(Error::internal)?;
    // Two sign-ins racing with one counter value: only the first may advance it.
    if !passkeys::record_use(tx, row.id, &row.credential, &updated, result.backup_state(), now).await? {
        return Err(Error::unauthenticated("the passkey sign-in failed"));
    }
    Ok(())
}
