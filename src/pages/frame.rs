//! What every page's layout (`layout.html`) needs: language, title, styles and the brand header.

use serde::Serialize;

/// The layout's variables; flattened into each page's own context.
#[derive(Serialize)]
pub(super) struct Frame<'a> {
    pub lang: &'static str,
    pub title: String,
    pub stylesheet: &'static str,
    pub style_nonce: &'a str,
    pub accent: Option<&'a str>,
    pub brand: Option<&'a str>,
    pub logo_url: Option<&'a str>,
    pub support: Option<String>,
    /// A script of the gateway's own (`script-src 'self'`), or none: most pages work without.
    pub script: Option<&'static str>,
}
