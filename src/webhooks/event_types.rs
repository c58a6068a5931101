//! Which events an endpoint wants: exact audit action names and prefixes such as `policy.*`,
//! checked against the actions the gateway records; an empty list means every event.

use crate::audit::AuditAction;
use crate::error::{Error, Result};

/// Most entries one endpoint may list.
const MAX_ENTRIES: usize = 100;

/// The entries, trimmed, deduplicated and checked; BAD_USER_INPUT on `field` naming a bad one.
pub fn parse(field: &str, entries: &[String]) -> Result<Vec<String>> {
    if entries.len() > MAX_ENTRIES {
        return Err(Error::bad_input(
            field,
            format!("at most {MAX_ENTRIES} event types"),
        ));
    }
    let mut parsed: Vec<String> = Vec::with_capacity(entries.len());
    for entry in entries {
        let entry = entry.trim();
        if !known(entry) {
            let shown = if entry.chars().count() <= 64 && !entry.chars().any(char::is_control) {
                format!("`{entry}`")
            } else {
                "an entry".to_owned()
            };
            return Err(Error::bad_input(
                field,
                format!("{shown} is neither an audit action nor a prefix such as `policy.*`"),
            ));
        }
        if !parsed.iter().any(|seen| seen == entry) {
            parsed.push(entry.to_owned());
        }
    }
    Ok(parsed)
}

fn known(entry: &str) -> bool {
    match entry.strip_suffix('*') {
        Some(prefix) => {
            prefix.ends_with('.')
                && AuditAction::ALL
                    .iter()
                    .any(|action| action.name().starts_with(prefix))
        }
        None => AuditAction::parse(entry).is_some(),
    }
}

/// Whether `action` is among the `patterns` (all of them when empty).
pub fn matches(patterns: &[String], action: &str) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => action.starts_with(prefix),
            None => pattern == action,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|e| (*e).to_owned()).collect()
    }

    #[test]
    fn accepts_actions_and_prefixes_and_refuses_the_rest() {
        let parsed = parse(
            "input.eventTypes",
            &owned(&[" policy.* ", "member.added", "member.added"]),
        )
        .unwrap();
        assert_eq!(parsed, ["policy.*", "member.added"]);
        for bad in ["policy", "polic*", "*", "nothing.*", "member.added.x", ""] {
            let error = parse("input.eventTypes", &owned(&[bad])).unwrap_err();
            assert!(
                matches!(&error, Error::BadUserInput { field, .. } if field == "input.eventTypes"),
                "{bad}: {error:?}"
            );
        }
    }

    #[test]
    fn matches_exact_names_prefixes_and_everything_when_empty() {
        assert!(matches(&[], "member.added"));
        assert!(matches(&owned(&["member.*"]), "member.removed"));
        assert!(!matches(&owned(&["member.*"]), "membership.x"));
        assert!(matches(&owned(&["policy.created"]), "policy.created"));
        assert!(!matches(&owned(&["policy.created"]), "policy.updated"));
    }
}
