//! Step-up: a signed-in session proves a second factor with one of its user's passkeys, and counts
//! as MFA-verified (`context.mfa`) for `PORTCULLIS_STEP_UP_MINUTES`.

use chrono::TimeDelta;

use super::ceremony::{self, Ceremony, Started, StepUp};
use super::sign_in::{self, Refused};
use super::{credential, failures, passkey_target};
use crate::app::App;
use crate::audit::{self, AuditAction, Event, Outcome, Target};
use crate::db::models::SessionRow;
use crate::db::{Id, passkeys, sessions};
use crate::error::{Error, Result};
use crate::identity::Actor;

/// Starts a step-up for the caller's session: an assertion by one of the caller's passkeys.
pub async fn start(app: &App, actor: &Actor) -> Result<Started> {
    let session_id = session_of(actor)?;
    let mut conn = app.db.conn().await?;
    let keys = passkeys::all_for_user(&mut conn, actor.user_id())
        .await?
        .iter()
        .map(credential::stored)
        .collect::<Result<Vec<_>>>()?;
    drop(conn);
    if keys.is_empty() {
        return Err(Error::conflict_because(
            "passkey",
            "you have no passkey to step up with: register one first",
            "NO_PASSKEY",
            None,
        ));
    }
    let (options, state) = app
        .passkeys
        .webauthn
        .start_passkey_authentication(&keys)
        .map_err(Error::internal)?;
    let options = serde_json::to_value(&options.public_key).map_err(Error::internal)?;
    let ceremony = Ceremony::StepUp(StepUp {
        session_id,
        user_id: actor.user_id(),
        state,
    });
    ceremony::begin(app, &ceremony, options).await
}

/// Verifies the assertion and marks the session MFA-verified; returns the session as it is now.
pub async fn finish(
    app: &App,
    actor: &Actor,
    ceremony_id: Id,
    response: &serde_json::Value,
) -> Result<SessionRow> {
    let session_id = session_of(actor)?;
    let response = credential::assertion(response)?;
    let now = app.now();
    let limit_key = actor.client.ip.clone().unwrap_or_default();
    let attempt = app.limits.passkey.reserve(&app.db, &limit_key, now).await?;
    let mut conn = app.db.conn().await?;
    let verified = async {
        let Some(Ceremony::StepUp(step_up)) = ceremony::take(&mut conn, ceremony_id, now).await? else {
            return Err(Refused::plain("unknown_or_spent_ceremony"));
        };
        if step_up.session_id != session_id || step_up.user_id != actor.user_id() {
            return Err(Refused::plain("ceremony_of_another_session"));
        }
        let named = credential::id_text(response.get_credential_id());
        let row = match passkeys::find_by_credential_id(&mut conn, &named).await? {
            Some((row, _)) if row.user_id == actor.user_id() => row,
            _ => return Err(Refused::plain("unknown_credential")),
        };
        let verdict = app
            .passkeys
            .webauthn
            .finish_passkey_authentication(&response, &step_up.state);
        let result = sign_in::judge(verdict, &actor.user, &row)?;
        Ok::<_, Refused>((row, result))
    }
    .await;
    // Settling the attempt takes a connection of its own: this one is not held meanwhile.
    drop(conn);
    let (row, result) = match verified {
        Ok(verified) => verified,
        Err(Refused::Internal(error)) => {
            app.limits.passkey.refund(&app.db, attempt).await;
            return Err(error);
        }
        Err(Refused::Rejected {
            reason,
            passkey,
            counter_regressed,
            ..
        }) => {
            let _ = app.limits.passkey.failed(&app.db, attempt, now).await;
            let mut events = vec![
                Event::by(actor, AuditAction::StepUpFailed)
                    .outcome(Outcome::Failure)
                    .with("reason", reason),
            ];
            if counter_regressed && let Some(passkey) = passkey {
                events.push(
                    Event::by(actor, AuditAction::PasskeyCounterRegressed)
                        .outcome(Outcome::Failure)
                        .target(passkey_target(&passkey)),
                );
            }
            failures::record(app, events).await?;
            return Err(Error::unauthenticated("the step-up failed"));
        }
    };
    app.limits.passkey.refund(&app.db, attempt).await;
    let until = now + TimeDelta::minutes(i64::from(app.config.step_up_minutes));
    let event = Event::by(actor, AuditAction::SessionSteppedUp)
        .target(Target::new("session", session_id, None))
        .target(passkey_target(&row))
        .with("mfaExpiresAt", until.0);
    let mut conn = app.db.conn().await?;
    let session = conn
        .transaction(async |tx| {
            sign_in::record_use(tx, &row, &result, now).await?;
            sessions::verify_mfa(tx, session_id, now, until).await?;
            audit::record(tx, now, event).await?;
            sessions::find(tx, session_id)
                .await?
                .ok_or(Error::NotFound("session"))
        })
        .await?;
    // Requests on this instance must see the new MFA state at once, not after the cache lapses.
    app.credentials.forget_all();
    Ok(session)
}

fn session_of(actor: &Actor) -> Result<Id> {
    actor
        .session_id
        .ok_or_else(|| Error::bad_input("session", "a step-up needs a signed-in session (not an API key)"))
}
