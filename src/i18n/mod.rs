//! Message catalogs for emails and pages, and the choice of one by locale.
//!
//! Each catalog is a flat JSON object (`key → text`, placeholders like `{organization}`) in
//! `locales/<tag>.json` at the repository root, embedded in the binary. **Adding a locale is
//! adding its file and one line in [`EMBEDDED`]**; the catalog test then checks that it has every
//! key of the English catalog and no placeholder the English text lacks. A missing key falls back
//! to English, so a half-translated catalog degrades to mixed language, never to an error.

mod catalog;
mod check;

use std::sync::LazyLock;

pub use catalog::Catalog;
pub use check::problems;

/// The locale every lookup falls back to.
pub const DEFAULT_TAG: &str = "en";

/// Every embedded catalog: `(tag, JSON source)`. English first; it is the fallback.
const EMBEDDED: &[(&str, &str)] = &[
    ("en", include_str!("../../locales/en.json")),
    ("de", include_str!("../../locales/de.json")),
    ("fr", include_str!("../../locales/fr.json")),
];

/// The parsed catalogs, English at index 0 even when its source is broken (then empty), so
/// lookups never fail at run time; [`problems`] reports broken sources and the tests fail on them.
static CATALOGS: LazyLock<Vec<Catalog>> = LazyLock::new(|| {
    let mut catalogs = Vec::with_capacity(EMBEDDED.len());
    for (tag, source) in EMBEDDED {
        match Catalog::parse(tag, source) {
            Ok(catalog) => catalogs.push(catalog),
            Err(error) => {
                tracing::error!(locale = tag, %error, "message catalog does not parse; skipped");
                if *tag == DEFAULT_TAG {
                    catalogs.push(Catalog::empty(DEFAULT_TAG));
                }
            }
        }
    }
    if catalogs.first().map(Catalog::tag) != Some(DEFAULT_TAG) {
        catalogs.insert(0, Catalog::empty(DEFAULT_TAG));
    }
    catalogs
});

fn all() -> &'static [Catalog] {
    &CATALOGS
}

/// The English catalog, the fallback of every lookup.
pub fn english() -> &'static Catalog {
    // The initializer guarantees an English catalog at index 0; the fallback is unreachable but
    // keeps this free of indexing that could panic.
    static EMPTY: LazyLock<Catalog> = LazyLock::new(|| Catalog::empty(DEFAULT_TAG));
    all().first().unwrap_or(&EMPTY)
}

/// The tags of the embedded catalogs, English first.
pub fn supported() -> impl Iterator<Item = &'static str> {
    all().iter().map(Catalog::tag)
}

/// Whether `tag` (e.g. `de`, `de-CH`, `fr_CA`) resolves to a catalog of its own language.
pub fn is_supported(tag: &str) -> bool {
    find(tag).is_some()
}

/// The catalog for the first candidate with a supported language, else English.
///
/// Candidates are in order of preference, e.g. `[invitation.locale, branding.default_locale]`.
/// A regional tag uses its language's catalog (`de-CH` → `de`) unless the region has its own.
pub fn resolve(candidates: &[Option<&str>]) -> &'static Catalog {
    candidates
        .iter()
        .flatten()
        .find_map(|tag| find(tag))
        .unwrap_or_else(english)
}

fn find(tag: &str) -> Option<&'static Catalog> {
    let normalized = tag.trim().replace('_', "-").to_ascii_lowercase();
    if normalized.is_empty() {
        return None;
    }
    let language = normalized.split('-').next().unwrap_or_default();
    let exact = all()
        .iter()
        .find(|catalog| catalog.tag().eq_ignore_ascii_case(&normalized));
    exact.or_else(|| {
        all()
            .iter()
            .find(|catalog| catalog.tag().eq_ignore_ascii_case(language))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_and_unknown_tags() {
        assert_eq!(resolve(&[Some("de-CH")]).tag(), "de");
        assert_eq!(resolve(&[Some("FR_ca")]).tag(), "fr");
        assert_eq!(resolve(&[Some("xx"), Some("fr")]).tag(), "fr");
        assert_eq!(resolve(&[None, Some(""), Some("xx")]).tag(), "en");
        assert!(!is_supported("xx"));
        assert!(is_supported("de-AT"));
    }
}
