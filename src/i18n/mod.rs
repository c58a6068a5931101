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

/// The language tags of an `Accept-Language` header, most preferred first (by `q`, then order);
/// `*` and tags refused with `q=0` are left out, and at most a handful are read.
pub fn accept_language(header: &str) -> Vec<String> {
    let mut ranked: Vec<(u16, String)> = header
        .split(',')
        .take(16)
        .filter_map(|item| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim();
            let quality = parts
                .filter_map(|param| param.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            // Thousandths as an integer: a total order for the sort, and q=0 drops out.
            let rank = (quality.clamp(0.0, 1.0) * 1000.0).round() as u16;
            (rank > 0 && !tag.is_empty() && tag != "*").then(|| (rank, tag.to_owned()))
        })
        .collect();
    // Stable: equal ranks keep the header's order.
    ranked.sort_by_key(|(rank, _)| std::cmp::Reverse(*rank));
    ranked.into_iter().map(|(_, tag)| tag).collect()
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

    #[test]
    fn accept_language_ranks_by_quality_then_order() {
        assert_eq!(
            accept_language("en;q=0.5, fr-CH, de;q=0.9, *;q=0.1, it;q=0"),
            ["fr-CH", "de", "en"]
        );
        assert_eq!(accept_language(""), Vec::<String>::new());
        assert_eq!(resolve(&[Some("xx"), Some("de-DE")]).tag(), "de");
    }
}
