//! One locale's messages: lookup with English fallback, placeholder filling, localized dates.

use std::collections::BTreeMap;

use chrono::Datelike as _;

use crate::db::Timestamp;

/// The messages of one locale.
#[derive(Debug)]
pub struct Catalog {
    tag: &'static str,
    messages: BTreeMap<String, String>,
}

impl Catalog {
    pub(super) fn parse(tag: &'static str, source: &str) -> Result<Self, serde_json::Error> {
        let messages = serde_json::from_str(source)?;
        Ok(Self { tag, messages })
    }

    pub(super) fn empty(tag: &'static str) -> Self {
        Self {
            tag,
            messages: BTreeMap::new(),
        }
    }

    /// The locale tag, e.g. `de`; also what `<html lang>` gets.
    pub fn tag(&self) -> &'static str {
        self.tag
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &str> {
        self.messages.keys().map(String::as_str)
    }

    pub(super) fn own(&self, key: &str) -> Option<&str> {
        self.messages.get(key).map(String::as_str)
    }

    /// The message for `key`, else the English one, else the key itself (visible, never a panic).
    pub fn text<'a>(&'a self, key: &'a str) -> &'a str {
        self.own(key).or_else(|| super::english().own(key)).unwrap_or(key)
    }

    /// The message for `key` with each `{name}` replaced by its value.
    ///
    /// One pass over the message: values are inserted verbatim and never scanned for
    /// placeholders themselves, so user text such as an organization named `{inviter}` stays as
    /// typed. Unknown placeholders are left in place. The result is plain text; templates escape it.
    pub fn format(&self, key: &str, values: &[(&str, &str)]) -> String {
        let message = self.text(key);
        let mut out = String::with_capacity(message.len());
        let mut rest = message;
        while let Some(open) = rest.find('{') {
            let (before, from_brace) = rest.split_at(open);
            out.push_str(before);
            let name_and_more = from_brace.get(1..).unwrap_or_default();
            let replaced = name_and_more.find('}').and_then(|close| {
                let name = name_and_more.get(..close)?;
                let value = values.iter().find(|(key, _)| *key == name)?.1;
                Some((value, name_and_more.get(close + 1..).unwrap_or_default()))
            });
            match replaced {
                Some((value, after)) => {
                    out.push_str(value);
                    rest = after;
                }
                None => {
                    out.push('{');
                    rest = name_and_more;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The calendar date of `at` (in UTC) in this locale's words, e.g. "4. März 2027".
    pub fn date(&self, at: Timestamp) -> String {
        let date = at.0.date_naive();
        let month_key = format!("date.month.{}", date.month());
        let day = date.day().to_string();
        let year = date.year().to_string();
        self.format(
            "date.format",
            &[("day", &day), ("month", self.text(&month_key)), ("year", &year)],
        )
    }
}

/// The `{name}` placeholders in a message, in order of appearance.
pub(super) fn placeholders(message: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = message;
    while let Some(open) = rest.find('{') {
        let after = rest.get(open + 1..).unwrap_or_default();
        match after.find('}') {
            Some(close) => {
                names.extend(after.get(..close));
                rest = after.get(close + 1..).unwrap_or_default();
            }
            None => break,
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Utc};

    use super::*;

    fn catalog(message: &str) -> Catalog {
        let mut messages = BTreeMap::new();
        messages.insert("k".to_owned(), message.to_owned());
        Catalog { tag: "xx", messages }
    }

    #[test]
    fn format_fills_once_and_keeps_unknown() {
        let c = catalog("{a} and {b} and {missing} and {");
        assert_eq!(
            c.format("k", &[("a", "{b}"), ("b", "B")]),
            "{b} and B and {missing} and {"
        );
    }

    #[test]
    fn dates_in_three_languages() {
        let at = Timestamp(Utc.with_ymd_and_hms(2027, 3, 4, 23, 59, 0).single().unwrap());
        assert_eq!(super::super::resolve(&[Some("en")]).date(at), "March 4, 2027");
        assert_eq!(super::super::resolve(&[Some("de")]).date(at), "4. März 2027");
        assert_eq!(super::super::resolve(&[Some("fr")]).date(at), "4 mars 2027");
    }

    #[test]
    fn placeholders_are_found() {
        assert_eq!(placeholders("{a} x {b}{c"), vec!["a", "b"]);
    }
}
