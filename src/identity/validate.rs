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
    if name.chars().any(is_direction_control) {
        return Err(Error::bad_input(
            field,
            "must not contain text-direction controls",
        ));
    }
    Ok(name.to_owned())
}

/// Bidirectional embeddings, overrides and isolates: they make a name display as other text
/// (in the audit log, say), e.g. `\u{202e}` turning `moc.evil` into `live.com`.
fn is_direction_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// An optional free-text description: trimmed, at most 1,000 characters, empty when absent.
pub fn description(raw: Option<String>) -> Result<String> {
    free_text("description", raw, 1000)
}

/// Optional free text in `field`: trimmed, at most `max` characters, empty when absent.
pub fn free_text(field: &str, raw: Option<String>, max: usize) -> Result<String> {
    let text = raw.unwrap_or_default().trim().to_owned();
    if text.chars().count() > max {
        return Err(Error::bad_input(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    // Lines and tabs are fine in free text; NUL and the other controls are not (PostgreSQL
    // refuses NUL in text).
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Error::bad_input(field, "must not contain control characters"));
    }
    if text.chars().any(is_direction_control) {
        return Err(Error::bad_input(
            field,
            "must not contain text-direction controls",
        ));
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

/// Longest text a filter searches for: past any stored name or email, and short enough that no
/// backend refuses the pattern (SQLite's LIKE stops at 50,000 bytes).
pub const MAX_SEARCH: usize = 256;

/// A search term, taken literally: trimmed, `None` when empty; refused when longer than
/// [`MAX_SEARCH`] characters or holding control characters (NUL ends a string in SQLite, which
/// would turn the term into a match-all, and PostgreSQL refuses it outright).
pub fn search(field: &str, raw: Option<String>) -> Result<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    let term = raw.trim();
    if term.is_empty() {
        return Ok(None);
    }
    Ok(Some(term_text(field, term)?.to_owned()))
}

/// A term matched exactly (an id or type in a filter): the same rules as [`search`], untrimmed.
pub fn term_text<'a>(field: &str, term: &'a str) -> Result<&'a str> {
    if term.chars().count() > MAX_SEARCH {
        return Err(Error::bad_input(
            field,
            format!("must be at most {MAX_SEARCH} characters"),
        ));
    }
    if term.chars().any(char::is_control) {
        return Err(Error::bad_input(field, "must not contain control characters"));
    }
    Ok(term)
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
    fn search_terms_are_bounded_and_printable() {
        assert_eq!(
            search("s", Some("  a%_\\ ".to_owned())).ok().flatten().as_deref(),
            Some("a%_\\")
        );
        assert!(matches!(search("s", Some("   ".to_owned())), Ok(None)));
        assert!(search("s", Some("x".repeat(MAX_SEARCH))).is_ok());
        for bad in [
            "a\0b".to_owned(),
            "\u{1b}[2J".to_owned(),
            "x".repeat(MAX_SEARCH + 1),
        ] {
            assert!(search("s", Some(bad.clone())).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_cannot_display_as_other_text() {
        assert!(name("name", "Zoë 🦀", 100).is_ok());
        for bad in ["evil\u{202e}moc", "\u{2066}x", "a\0b", "a\nb"] {
            assert!(name("name", bad, 100).is_err(), "{bad:?} accepted");
        }
        assert!(description(Some("two\nlines\tand tabs".to_owned())).is_ok());
        assert!(description(Some("a\0b".to_owned())).is_err());
        assert!(description(Some("\u{202e}x".to_owned())).is_err());
    }

    #[test]
    fn slugs_follow_the_rules() {
        assert!(slug("slug", "acme-corp").is_ok());
        for bad in [
            "a",
            "-acme",
            "acme-",
            "Acme",
            "acme corp",
            "acme_corp",
            "\u{0430}cme",
            "\u{ff41}\u{ff43}\u{ff4d}\u{ff45}",
            "ac\u{200d}me",
            "acme\u{200b}",
            "acm\u{0435}",
        ] {
            assert!(slug("slug", bad).is_err(), "{bad:?} accepted");
        }
    }
}
