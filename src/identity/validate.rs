//! Input rules shared by the identity operations; each error names the offending field.

use email_address::EmailAddress;

use crate::error::{Error, Result};

/// Trims and lower-cases an email address, or says why it is not one.
pub fn email(field: &str, raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    if email.len() > 254 || !EmailAddress::is_valid(&email) || !email.contains('.') {
        return Err(Error::bad_input(field, "not a valid email address"));
    }
    Ok(email)
}

/// A human-readable name: trimmed, 1 to `max` characters, no control characters.
pub fn name(field: &str, raw: &str, max: usize) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Error::bad_input(field, "must not be empty"));
    }
    if name.chars().count() > max {
        return Err(Error::bad_input(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::bad_input(field, "must not contain control characters"));
    }
    Ok(name.to_owned())
}

/// An optional free-text description: trimmed, at most 1,000 characters, empty when absent.
pub fn description(raw: Option<String>) -> Result<String> {
    let text = raw.unwrap_or_default().trim().to_owned();
    if text.chars().count() > 1000 {
        return Err(Error::bad_input("description", "must be at most 1000 characters"));
    }
    Ok(text)
}

/// An organization slug: 2–63 of `a-z`, `0-9` and inner `-`.
pub fn slug(field: &str, raw: &str) -> Result<String> {
    let slug = raw.trim();
    let well_formed = (2..=63).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if !well_formed {
        return Err(Error::bad_input(
            field,
            "must be 2-63 lowercase letters, digits or inner hyphens",
        ));
    }
    Ok(slug.to_owned())
}

/// A new password: 8 to 256 characters (length is what makes passwords strong).
pub fn password(field: &str, raw: &str) -> Result<()> {
    let length = raw.chars().count();
    if length < 8 {
        return Err(Error::bad_input(field, "must be at least 8 characters"));
    }
    if length > 256 {
        return Err(Error::bad_input(field, "must be at most 256 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_or_rejected() {
        assert_eq!(
            email("email", "  Ada@Example.COM ").ok().as_deref(),
            Some("ada@example.com")
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
        ] {
            assert!(email("email", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn slugs_follow_the_rules() {
        assert!(slug("slug", "acme-corp").is_ok());
        for bad in ["a", "-acme", "acme-", "Acme", "acme corp", "acme_corp"] {
            assert!(slug("slug", bad).is_err(), "{bad:?} accepted");
        }
    }
}
