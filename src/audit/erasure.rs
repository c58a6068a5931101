//! The right to erasure: a person's name, email, address and user agent are replaced by a
//! pseudonym in every event that names them. Who did what stays (ids, actions, times), and the hash
//! chains still verify: personal fields count only through their salted digest, and the salt is
//! dropped, so the digest no longer links to the person.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{AuditAction, Event, Target};
use crate::app::App;
use crate::authz::{Action, Resource, guard};
use crate::db::models::AuditEventRow;
use crate::db::{Id, audit, users};
use crate::error::{Error, Result};
use crate::identity::{Actor, secrets};

/// `eraseAuditPersonalData`: pseudonymizes `user`'s personal data in the log (needs `audit.erase`);
/// returns how many events changed. The erasure is itself recorded, without the erased data.
pub async fn erase(app: &App, actor: &Actor, user: Id) -> Result<u64> {
    guard::check(app, actor, Action::AuditErase, Resource::Gateway).await?;
    let now = app.now();
    let pseudonym = format!("erased-{}", &secrets::encode(&secrets::random_bytes::<9>()?));
    let mut conn = app.db.conn().await?;
    let erased = conn
        .transaction(async |tx| {
            // The log's sequence row first, as positioning and purging take it: erasures take turns
            // with them and with each other, so none restores what another erased, and no lock
            // cycle forms. Events still waiting to be positioned are positioned first, so the
            // erasure sees them too. The rows it reads are locked as well (for SQLite's sake the
            // IMMEDIATE transaction does it all).
            audit::lock_log(tx).await?;
            super::sequencer::position_waiting(tx).await?;
            let account = users::find(tx, user).await?;
            let mut events = audit::involving_user(tx, user).await?;
            if account.is_none() && events.is_empty() {
                return Err(Error::NotFound("user"));
            }
            // What names the person: the account's email and name, and any earlier ones the log
            // recorded.
            let mut identifiers: BTreeSet<String> = BTreeSet::new();
            if let Some(account) = &account {
                identifiers.insert(account.email.clone());
                identifiers.insert(account.display_name.clone());
            }
            for row in &events {
                collect_identifiers(row, user, &mut identifiers);
            }
            identifiers.retain(|text| text.trim().len() >= 3);
            // Events that mention an email of theirs without naming them (e.g. a failed login).
            for email in identifiers.iter().filter(|text| text.contains('@')) {
                for row in audit::mentioning(tx, email).await? {
                    if !events.iter().any(|known| known.id == row.id) {
                        events.push(row);
                    }
                }
            }
            let mut changed = 0u64;
            for row in &mut events {
                if pseudonymize(row, user, &identifiers, &pseudonym, now) {
                    audit::save_erasure(tx, row, user, &pseudonym).await?;
                    changed += 1;
                }
            }
            let event = Event::by(actor, AuditAction::AuditPersonalDataErased)
                .target(Target::new("user", user, None))
                .with("events", changed);
            super::record(tx, now, event).await?;
            Ok(changed)
        })
        .await?;
    Ok(erased)
}

/// Earlier emails and names of `user` that updates recorded (`changes.email`, `changes.displayName`).
fn collect_identifiers(row: &AuditEventRow, user: Id, into: &mut BTreeSet<String>) {
    let targets: Vec<Target> = serde_json::from_str(&row.targets).unwrap_or_default();
    let mut targets_user = false;
    for target in targets
        .into_iter()
        .filter(|t| t.target_type == "user" && t.id == user.to_string())
    {
        targets_user = true;
        into.extend(target.display_name);
    }
    if row.actor_user_id == Some(user)
        && let Some(name) = &row.actor_name
    {
        into.insert(name.clone());
    }
    let Ok(metadata) = serde_json::from_str::<Value>(&row.metadata) else {
        return;
    };
    if targets_user || row.actor_user_id == Some(user) {
        for field in ["email", "displayName"] {
            for side in ["before", "after"] {
                if let Some(text) = metadata["changes"][field][side].as_str() {
                    into.insert(text.to_owned());
                }
            }
        }
        if let Some(email) = metadata["email"].as_str() {
            into.insert(email.to_owned());
        }
    }
}

/// Rewrites the personal fields of `row` that concern `user`; whether anything changed.
fn pseudonymize(
    row: &mut AuditEventRow,
    user: Id,
    identifiers: &BTreeSet<String>,
    pseudonym: &str,
    now: crate::db::Timestamp,
) -> bool {
    let before = (
        row.actor_name.clone(),
        row.targets.clone(),
        row.ip.clone(),
        row.user_agent.clone(),
        row.metadata.clone(),
    );
    if row.actor_user_id == Some(user) {
        row.actor_name = Some(pseudonym.to_owned());
        row.ip = None;
        row.user_agent = None;
    }
    let mut targets: Vec<Target> = serde_json::from_str(&row.targets).unwrap_or_default();
    for target in &mut targets {
        if target.target_type == "user" && target.id == user.to_string() {
            target.display_name = Some(pseudonym.to_owned());
        }
    }
    if let Ok(text) = serde_json::to_string(&targets) {
        row.targets = text;
    }
    if let Ok(mut metadata) = serde_json::from_str::<Value>(&row.metadata) {
        replace_strings(&mut metadata, identifiers, pseudonym);
        row.metadata = metadata.to_string();
    }
    let changed = before
        != (
            row.actor_name.clone(),
            row.targets.clone(),
            row.ip.clone(),
            row.user_agent.clone(),
            row.metadata.clone(),
        );
    if changed {
        // Without its salt the stored digest can no longer be tested against a guessed name.
        row.salt = String::new();
        row.erased_at = Some(row.erased_at.unwrap_or(now));
    }
    changed
}

/// Replaces, in every string of `value`, a name that is the whole string and an email wherever it
/// appears: inside a policy's source (`principal.email == "…"`), an export's search term, a note.
/// A name only counts whole, lest a short one eat into unrelated words.
fn replace_strings(value: &mut Value, identifiers: &BTreeSet<String>, pseudonym: &str) {
    match value {
        Value::String(text) if identifiers.iter().any(|id| id.eq_ignore_ascii_case(text)) => {
            *text = pseudonym.to_owned();
        }
        Value::String(text) => {
            for email in identifiers.iter().filter(|id| id.contains('@')) {
                if let Some(replaced) = replace_ignoring_ascii_case(text, email, pseudonym) {
                    *text = replaced;
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| replace_strings(item, identifiers, pseudonym)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|item| replace_strings(item, identifiers, pseudonym)),
        _ => {}
    }
}

/// `text` with every ASCII-case-insensitive occurrence of `needle` replaced by `with`; `None` if
/// there is none. ASCII lower-casing keeps byte offsets, so offsets found in the lowered text hold
/// in the original.
fn replace_ignoring_ascii_case(text: &str, needle: &str, with: &str) -> Option<String> {
    let needle = needle.to_ascii_lowercase();
    if needle.is_empty() {
        return None;
    }
    let lowered = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut found = false;
    for (at, _) in lowered.match_indices(needle.as_str()) {
        out.push_str(text.get(last..at)?);
        out.push_str(with);
        last = at + needle.len();
        found = true;
    }
    out.push_str(text.get(last..)?);
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::replace_ignoring_ascii_case;

    #[test]
    fn emails_are_replaced_inside_text_whatever_their_case() {
        assert_eq!(
            replace_ignoring_ascii_case(
                r#"permit(principal, action, resource) when { principal.email == "Pat@Example.com" };"#,
                "pat@example.com",
                "erased-x"
            )
            .as_deref(),
            Some(r#"permit(principal, action, resource) when { principal.email == "erased-x" };"#)
        );
        assert_eq!(
            replace_ignoring_ascii_case("ünï pat@example.com, PAT@EXAMPLE.COM", "pat@example.com", "e")
                .as_deref(),
            Some("ünï e, e")
        );
        assert_eq!(
            replace_ignoring_ascii_case("nobody here", "pat@example.com", "e"),
            None
        );
    }
}
