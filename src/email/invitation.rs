//! The invitation email: what the inviter's organization sends, rendered in the reader's language.

use serde::Serialize;

use super::templates;
use crate::branding::Branding;
use crate::db::Timestamp;
use crate::error::Result;
use crate::i18n;

/// Everything an invitation email says; built by the invitations room, rendered by [`render_invitation`].
#[derive(Debug, Clone)]
pub struct InvitationEmail {
    /// Recipient address.
    pub to: String,
    /// The invitation's locale, if the inviter chose one.
    pub locale: Option<String>,
    pub branding: Branding,
    pub organization_name: String,
    pub inviter_name: String,
    pub roles: Vec<String>,
    /// The inviter's personal note; shown as text, never as markup.
    pub message: Option<String>,
    /// The link that carries the invitation token (a secret: it only goes into the email).
    pub accept_url: String,
    pub expires_at: Timestamp,
    /// Stable per email (e.g. `"{job-id}@{public host}"`, without angle brackets), so a resend
    /// after an ambiguous failure is recognizable as the same message.
    pub message_id: String,
}

/// A rendered email, ready for [`Mailer::send`](super::Mailer::send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub to: String,
    /// Sender display name; the address is always the configured `PORTCULLIS_EMAIL_FROM`.
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: String,
    /// The catalog tag the email was rendered in.
    pub locale: String,
}

/// The catalog strings the templates show, already filled in.
#[derive(Serialize)]
struct Texts {
    heading: String,
    intro: String,
    roles: String,
    message: String,
    action: String,
    link_hint: String,
    expires: String,
    ignore: String,
    support: Option<String>,
}

#[derive(Serialize)]
struct Context<'a> {
    lang: &'static str,
    subject: &'a str,
    brand: &'a str,
    logo_url: Option<&'a str>,
    accent: &'a str,
    roles: &'a [String],
    message: Option<&'a str>,
    accept_url: &'a str,
    t: Texts,
}

/// Accent of emails without a (valid) brand color.
const DEFAULT_ACCENT: &str = "#2563eb";

/// Renders the invitation in the invitation's locale, else the organization's default, else English.
pub fn render_invitation(email: &InvitationEmail) -> Result<RenderedEmail> {
    let catalog = i18n::resolve(&[email.locale.as_deref(), email.branding.default_locale.as_deref()]);
    let organization = email.organization_name.as_str();
    let inviter = email.inviter_name.as_str();
    let names = [("inviter", inviter), ("organization", organization)];
    let date = catalog.date(email.expires_at);
    let support = email
        .branding
        .support_email
        .as_deref()
        .filter(|address| !address.is_empty());

    let subject = single_line(&catalog.format("email.invitation.subject", &names));
    let brand = email
        .branding
        .display_name
        .as_deref()
        .filter(|name| !name.is_empty())
        .unwrap_or(organization);
    let message = email
        .message
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty());
    let context = Context {
        lang: catalog.tag(),
        subject: &subject,
        brand,
        logo_url: email.branding.logo_url.as_deref().filter(|url| !url.is_empty()),
        accent: email.branding.primary_color_hex().unwrap_or(DEFAULT_ACCENT),
        roles: &email.roles,
        message,
        accept_url: &email.accept_url,
        t: Texts {
            heading: catalog.format("email.invitation.heading", &names),
            intro: catalog.format("email.invitation.intro", &names),
            roles: catalog.text("email.invitation.roles").to_owned(),
            message: catalog.format("email.invitation.message", &names),
            action: catalog.text("email.invitation.action").to_owned(),
            link_hint: catalog.text("email.invitation.link_hint").to_owned(),
            expires: catalog.format("email.invitation.expires", &[("date", &date)]),
            ignore: catalog.text("email.invitation.ignore").to_owned(),
            support: support.map(|address| catalog.format("email.support", &[("email", address)])),
        },
    };
    let text = templates::render("invitation.txt", &context)?;
    let html = templates::render("invitation.html", &context)?;

    let from_name = [&email.branding.email_from_name, &email.branding.display_name]
        .into_iter()
        .flatten()
        .map(|name| single_line(name))
        .find(|name| !name.is_empty());
    Ok(RenderedEmail {
        to: email.to.clone(),
        from_name,
        reply_to: support.map(str::to_owned),
        subject,
        text,
        html,
        message_id: email.message_id.clone(),
        locale: catalog.tag().to_owned(),
    })
}

/// Header text from user-chosen names: line breaks and other controls become spaces, so nothing
/// typed into a name can start a new header.
pub(super) fn single_line(text: &str) -> String {
    let replaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    replaced.split_whitespace().collect::<Vec<_>>().join(" ")
}
