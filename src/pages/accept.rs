//! The invitation accept page in its states, and the one page for links that cannot be used.

use serde::Serialize;

use super::frame::Frame;
use super::{SCRIPT_PATH, STYLESHEET_PATH, templates};
use crate::branding::Branding;
use crate::db::Timestamp;
use crate::error::Result;
use crate::i18n::{self, Catalog};

/// What the accept page shows; built by the HTTP handler from the invitation.
#[derive(Debug, Clone)]
pub struct AcceptView {
    /// The invitation's locale; else `branding.default_locale`, else English.
    pub locale: Option<String>,
    pub branding: Branding,
    pub organization_name: String,
    pub inviter_name: String,
    pub roles: Vec<String>,
    /// The invitee's address, partly hidden (the page is reachable by anyone holding the link).
    pub masked_email: String,
    pub expires_at: Timestamp,
    /// The invitation token, posted back in a hidden field.
    pub token: String,
    pub csrf_token: String,
    /// The nonce of this response's `Content-Security-Policy: style-src 'nonce-…'`.
    pub style_nonce: String,
    pub state: AcceptState,
    pub error: Option<PageError>,
}

/// Which form the page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptState {
    /// Nobody has this address yet: display name, password and its confirmation
    /// (fields `display_name`, `password`, `password_confirm`; `intent=create`).
    NewAccount,
    /// The address belongs to an account: its password, then accept (`password`; `intent=sign_in`).
    ExistingAccount,
    /// Done: "you are now a member of …"; no form.
    Accepted,
}

/// Why the last submission did not go through, shown above the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    WrongPassword,
    PasswordTooShort,
    DisplayNameInvalid,
    RateLimited,
    /// Shown as given (escaped): pass text the reader may see, already in their language.
    Other(String),
}

impl AcceptState {
    fn name(self) -> &'static str {
        match self {
            Self::NewAccount => "new_account",
            Self::ExistingAccount => "existing_account",
            Self::Accepted => "accepted",
        }
    }
}

impl PageError {
    fn text(&self, catalog: &'static Catalog) -> String {
        let key = match self {
            Self::WrongPassword => "page.error.wrong_password",
            Self::PasswordTooShort => "page.error.password_too_short",
            Self::DisplayNameInvalid => "page.error.display_name_invalid",
            Self::RateLimited => "page.error.rate_limited",
            Self::Other(text) => return text.clone(),
        };
        catalog.text(key).to_owned()
    }
}

#[derive(Serialize)]
struct AcceptTexts {
    title: String,
    invited: String,
    roles: &'static str,
    expires: String,
    new_heading: &'static str,
    display_name: &'static str,
    new_password: &'static str,
    password_confirm: &'static str,
    new_submit: &'static str,
    passkey_or: &'static str,
    passkey_button: &'static str,
    passkey_failed: &'static str,
    name_needed: &'static str,
    existing_heading: &'static str,
    existing_intro: String,
    existing_password: &'static str,
    existing_submit: &'static str,
    done_heading: String,
    done_body: String,
}

#[derive(Serialize)]
struct AcceptContext<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
    state: &'static str,
    roles: &'a [String],
    token: &'a str,
    csrf_token: &'a str,
    error: Option<String>,
    t: AcceptTexts,
}

/// The accept page for `view.state`, in the invitation's language and the organization's branding.
pub fn render_accept(view: &AcceptView) -> Result<String> {
    let catalog = i18n::resolve(&[view.locale.as_deref(), view.branding.default_locale.as_deref()]);
    let organization = view.organization_name.as_str();
    let email = view.masked_email.as_str();
    let names = [
        ("organization", organization),
        ("inviter", view.inviter_name.as_str()),
        ("email", email),
    ];
    let date = catalog.date(view.expires_at);
    let t = AcceptTexts {
        title: catalog.format("page.accept.title", &names),
        invited: catalog.format("page.accept.invited", &names),
        roles: catalog.text("page.accept.roles"),
        expires: catalog.format("page.accept.expires", &[("date", &date)]),
        new_heading: catalog.text("page.accept.new.heading"),
        display_name: catalog.text("page.accept.new.display_name"),
        new_password: catalog.text("page.accept.new.password"),
        password_confirm: catalog.text("page.accept.new.password_confirm"),
        new_submit: catalog.text("page.accept.new.submit"),
        passkey_or: catalog.text("page.accept.passkey.or"),
        passkey_button: catalog.text("page.accept.passkey.button"),
        passkey_failed: catalog.text("page.accept.passkey.failed"),
        name_needed: catalog.text("page.error.display_name_invalid"),
        existing_heading: catalog.text("page.accept.existing.heading"),
        existing_intro: catalog.format("page.accept.existing.intro", &names),
        existing_password: catalog.text("page.accept.existing.password"),
        existing_submit: catalog.text("page.accept.existing.submit"),
        done_heading: catalog.format("page.accept.done.heading", &names),
        done_body: catalog.format("page.accept.done.body", &names),
    };
    let branding = &view.branding;
    let brand = branding
        .display_name
        .as_deref()
        .filter(|name| !name.is_empty())
        .unwrap_or(organization);
    let support = branding
        .support_email
        .as_deref()
        .filter(|address| !address.is_empty());
    let frame = Frame {
        lang: catalog.tag(),
        title: match view.state {
            AcceptState::Accepted => t.done_heading.clone(),
            AcceptState::NewAccount | AcceptState::ExistingAccount => t.title.clone(),
        },
        stylesheet: STYLESHEET_PATH,
        style_nonce: &view.style_nonce,
        accent: branding.primary_color_hex(),
        brand: Some(brand),
        logo_url: branding.logo_url.as_deref().filter(|url| !url.is_empty()),
        support: support.map(|address| catalog.format("page.support", &[("email", address)])),
        // Only a new account can choose a passkey, which needs the script; the other states have none.
        script: (view.state == AcceptState::NewAccount).then_some(SCRIPT_PATH),
    };
    templates::render(
        "accept.html",
        AcceptContext {
            frame,
            state: view.state.name(),
            roles: &view.roles,
            token: &view.token,
            csrf_token: &view.csrf_token,
            error: view.error.as_ref().map(|error| error.text(catalog)),
            t,
        },
    )
}

#[derive(Serialize)]
struct UnavailableTexts {
    title: &'static str,
    body: &'static str,
}

#[derive(Serialize)]
struct UnavailableContext<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
    t: UnavailableTexts,
}

/// The page for every link that cannot be used — unknown, expired, revoked or spent alike, and
/// without the organization's branding, so the page tells a link-guesser nothing.
pub fn render_unavailable(locale: Option<&str>, style_nonce: &str) -> Result<String> {
    let catalog = i18n::resolve(&[locale]);
    let t = UnavailableTexts {
        title: catalog.text("page.unavailable.title"),
        body: catalog.text("page.unavailable.body"),
    };
    let frame = Frame {
        lang: catalog.tag(),
        title: t.title.to_owned(),
        stylesheet: STYLESHEET_PATH,
        style_nonce,
        accent: None,
        brand: None,
        logo_url: None,
        support: None,
        script: None,
    };
    templates::render("unavailable.html", UnavailableContext { frame, t })
}
