//! The sign-in page (`/login`): passkeys (a button and the browser's autofill), email and
//! password, and the first passkey of an account through a setup link (`/login?setup=…`).
//!
//! The page is a shell: `/assets/login.js` does the work against `/graphql` and keeps the tokens
//! in memory. Every text the script shows is rendered here, in the reader's language.

use serde::Serialize;

use super::frame::Frame;
use super::{SCRIPT_PATH, STYLESHEET_PATH, templates};
use crate::error::Result;
use crate::i18n::{self, Catalog};

/// What the sign-in page shows; built by the HTTP handler from the query and the headers.
#[derive(Debug, Clone, Default)]
pub struct LoginView {
    /// Language tags in order of preference (`?lang=`, then `Accept-Language`); else English.
    pub locales: Vec<String>,
    /// The token of a setup link: the page offers to create the account's first passkey.
    pub setup_token: Option<String>,
    /// The nonce of this response's `Content-Security-Policy: style-src 'nonce-…'`.
    pub style_nonce: String,
}

#[derive(Serialize)]
struct LoginTexts {
    title: &'static str,
    needs_script: &'static str,
    passkey_button: &'static str,
    or: &'static str,
    email: &'static str,
    password: &'static str,
    password_button: &'static str,
    setup_heading: &'static str,
    setup_intro: &'static str,
    setup_button: &'static str,
    passkey_name: &'static str,
    /// Keeps its `{email}` placeholder: the script fills it in.
    signed_in: &'static str,
    passkey_failed: &'static str,
    password_failed: &'static str,
    setup_failed: &'static str,
    cancelled: &'static str,
    unsupported: &'static str,
}

impl LoginTexts {
    fn of(catalog: &'static Catalog) -> Self {
        Self {
            title: catalog.text("page.login.title"),
            needs_script: catalog.text("page.login.needs_script"),
            passkey_button: catalog.text("page.login.passkey.button"),
            or: catalog.text("page.login.or"),
            email: catalog.text("page.login.email"),
            password: catalog.text("page.login.password"),
            password_button: catalog.text("page.login.password.button"),
            setup_heading: catalog.text("page.login.setup.heading"),
            setup_intro: catalog.text("page.login.setup.intro"),
            setup_button: catalog.text("page.login.setup.button"),
            passkey_name: catalog.text("page.login.setup.passkey_name"),
            signed_in: catalog.text("page.login.signed_in"),
            passkey_failed: catalog.text("page.login.error.passkey"),
            password_failed: catalog.text("page.login.error.password"),
            setup_failed: catalog.text("page.login.error.setup"),
            cancelled: catalog.text("page.login.error.cancelled"),
            unsupported: catalog.text("page.login.error.unsupported"),
        }
    }
}

#[derive(Serialize)]
struct LoginContext<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
    setup_token: Option<&'a str>,
    t: LoginTexts,
}

/// The sign-in page, unbranded (it belongs to the gateway, not to an organization).
pub fn render_login(view: &LoginView) -> Result<String> {
    let candidates: Vec<Option<&str>> = view.locales.iter().map(|tag| Some(tag.as_str())).collect();
    let catalog = i18n::resolve(&candidates);
    let t = LoginTexts::of(catalog);
    let frame = Frame {
        lang: catalog.tag(),
        title: t.title.to_owned(),
        stylesheet: STYLESHEET_PATH,
        style_nonce: &view.style_nonce,
        accent: None,
        brand: None,
        logo_url: None,
        support: None,
        script: Some(SCRIPT_PATH),
    };
    let setup_token = view.setup_token.as_deref().filter(|token| !token.is_empty());
    templates::render(
        "login.html",
        LoginContext {
            frame,
            setup_token,
            t,
        },
    )
}
