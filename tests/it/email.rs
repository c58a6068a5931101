//! Invitation email and accept page: rendering in three languages, and sending through a real SMTP
//! server (the aiosmtpd sink) with each way a server can fail.

use std::time::Duration;

use chrono::{TimeZone as _, Utc};
use portcullis::branding::Branding;
use portcullis::config::Config;
use portcullis::db::Timestamp;
use portcullis::email::{InvitationEmail, Mailer, SendFailure, render_invitation};
use portcullis::i18n;
use portcullis::pages::{self, AcceptState, AcceptView, PageError};

use crate::smtp::SmtpSink;

const ACCEPT_URL: &str = "https://gw.example.test/invitations/accept?token=tok_abc123&lang=de";
const MESSAGE: &str = "<script>alert(1)</script> & \"x\"";
const WAIT: Duration = Duration::from_secs(10);

fn expires() -> Timestamp {
    Timestamp(Utc.with_ymd_and_hms(2027, 3, 4, 12, 0, 0).single().unwrap())
}

fn branding() -> Branding {
    Branding {
        display_name: Some("Acme Portal".to_owned()),
        logo_url: Some("https://acme.test/logo.png".to_owned()),
        primary_color: Some("#c0ffee".to_owned()),
        email_from_name: Some("Acme Einladungen".to_owned()),
        support_email: Some("help@acme.test".to_owned()),
        default_locale: Some("fr".to_owned()),
    }
}

fn invitation(locale: Option<&str>, branding: Branding) -> InvitationEmail {
    InvitationEmail {
        to: "new.person@example.test".to_owned(),
        locale: locale.map(str::to_owned),
        branding,
        organization_name: "Acme GmbH".to_owned(),
        inviter_name: "Erika Muster".to_owned(),
        roles: vec!["Administrator".to_owned(), "Leser".to_owned()],
        message: Some(MESSAGE.to_owned()),
        accept_url: ACCEPT_URL.to_owned(),
        expires_at: expires(),
        message_id: "job-42@gw.example.test".to_owned(),
    }
}

fn mailer(sink: &SmtpSink, timeout: Duration) -> Mailer {
    Mailer::from_config(Some(&sink.url()), "portcullis@example.test", timeout).unwrap()
}

/// Undoes the escaping minijinja applies, to find a URL inside an attribute.
fn unescape(html: &str) -> String {
    html.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

fn field<'a>(message: &'a serde_json::Value, name: &str) -> &'a str {
    message[name]
        .as_str()
        .unwrap_or_else(|| panic!("message has no {name}: {message}"))
}

#[tokio::test]
async fn german_invitation_arrives_as_multipart_with_branding_and_escaped_message() {
    let sink = SmtpSink::start();
    let rendered = render_invitation(&invitation(Some("de"), branding())).unwrap();
    assert_eq!(rendered.locale, "de");
    mailer(&sink, WAIT).send(&rendered).await.unwrap();

    let messages = sink.wait_for(1, WAIT).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert_eq!(field(message, "content_type"), "multipart/alternative");
    assert_eq!(field(message, "message_id"), "<job-42@gw.example.test>");
    assert_eq!(
        field(message, "subject"),
        "Erika Muster lädt Sie zu Acme GmbH ein"
    );
    assert_eq!(
        field(message, "from"),
        "Acme Einladungen <portcullis@example.test>"
    );
    assert_eq!(field(message, "reply_to"), "help@acme.test");
    assert_eq!(
        message["rcpt_tos"],
        serde_json::json!(["new.person@example.test"])
    );

    let text = field(message, "text");
    let html = field(message, "html");
    for part in [text, html] {
        assert!(part.contains("4. März 2027"), "no German date in {part}");
        assert!(part.contains("Ihre Rollen"), "no German roles label in {part}");
        assert!(part.contains("Leser"));
    }
    assert!(text.contains(ACCEPT_URL), "no link in the text part: {text}");
    assert!(
        text.contains(MESSAGE),
        "the text part changes the message: {text}"
    );
    // Written plainly (only `&` escaped), not entity-obfuscated: mail filters distrust that.
    let href = format!("href=\"{}\"", ACCEPT_URL.replace('&', "&amp;"));
    assert!(html.contains(&href), "no plain link in the HTML part: {html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;"));
    assert!(
        !html.contains("<script"),
        "markup from the message reached the HTML: {html}"
    );
    assert!(html.contains("<html lang=\"de\">"));
    assert!(html.contains("#c0ffee"), "brand color missing");
    assert!(
        html.contains("src=\"https://acme.test/logo.png\""),
        "logo missing"
    );
    assert!(html.contains("help@acme.test"));
}

#[tokio::test]
async fn locale_is_the_invitations_then_the_organizations_then_english() {
    let with_default = |tag: Option<&str>| Branding {
        default_locale: tag.map(str::to_owned),
        ..Branding::default()
    };
    let cases = [
        (Some("de"), Some("fr"), "de"),
        (None, Some("fr"), "fr"),
        (Some("xx"), Some("de"), "de"),
        (Some("xx"), None, "en"),
        (None, None, "en"),
        (Some("fr-CA"), None, "fr"),
        (Some("de_CH"), Some("fr"), "de"),
    ];
    for (locale, default, expected) in cases {
        let rendered = render_invitation(&invitation(locale, with_default(default))).unwrap();
        assert_eq!(
            rendered.locale, expected,
            "locale {locale:?}, default {default:?}"
        );
    }
    let english = render_invitation(&invitation(None, Branding::default())).unwrap();
    assert_eq!(english.subject, "Erika Muster invited you to join Acme GmbH");
    assert!(english.text.contains("March 4, 2027"));
    let french = render_invitation(&invitation(Some("fr"), Branding::default())).unwrap();
    assert!(french.text.contains("4 mars 2027"));
    assert_eq!(i18n::resolve(&[Some("xx")]).tag(), "en");
    assert_eq!(i18n::resolve(&[Some("fr-CA")]).tag(), "fr");
}

#[test]
fn every_catalog_has_every_english_key_and_no_unknown_placeholder() {
    let problems = i18n::problems();
    assert!(problems.is_empty(), "catalog problems:\n{}", problems.join("\n"));
    let supported: Vec<_> = i18n::supported().collect();
    for tag in ["en", "de", "fr"] {
        assert!(supported.contains(&tag), "{tag} missing from {supported:?}");
        assert!(i18n::is_supported(tag));
    }
}

#[test]
fn without_branding_the_sender_name_is_the_configured_one() {
    let rendered = render_invitation(&invitation(None, Branding::default())).unwrap();
    assert_eq!(rendered.from_name, None);
    assert_eq!(rendered.reply_to, None);
    assert!(!rendered.text.contains("help@"));
}

#[tokio::test]
async fn each_kind_of_smtp_failure_has_its_class() {
    let mut sink = SmtpSink::start();
    let mailer = mailer(&sink, Duration::from_secs(1));
    let rendered = render_invitation(&invitation(Some("en"), branding())).unwrap();

    sink.set_mode("tempfail");
    let failure = mailer.send(&rendered).await.unwrap_err();
    assert!(matches!(failure, SendFailure::Transient(_)), "451: {failure:?}");

    sink.set_mode("permfail");
    let failure = mailer.send(&rendered).await.unwrap_err();
    assert!(matches!(failure, SendFailure::Permanent(_)), "550: {failure:?}");

    sink.set_mode("hang");
    let failure = mailer.send(&rendered).await.unwrap_err();
    assert!(matches!(failure, SendFailure::Transient(_)), "hang: {failure:?}");

    sink.set_mode("accept");
    sink.stop();
    let failure = mailer.send(&rendered).await.unwrap_err();
    assert!(
        matches!(failure, SendFailure::Transient(_)),
        "refused: {failure:?}"
    );
    assert!(sink.messages().is_empty(), "a failed send was stored");
    let port = sink.port();

    // The same mailer recovers once the server is back: nothing sticky after failures.
    sink.restart();
    assert_eq!(sink.port(), port);
    mailer.send(&rendered).await.unwrap();
    let messages = sink.wait_for(1, WAIT).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(field(&messages[0], "message_id"), "<job-42@gw.example.test>");
}

#[tokio::test]
async fn bad_recipient_is_permanent_without_contacting_anyone() {
    let sink = SmtpSink::start();
    let mut email = render_invitation(&invitation(None, branding())).unwrap();
    email.to = "not an address".to_owned();
    let failure = mailer(&sink, WAIT).send(&email).await.unwrap_err();
    assert!(matches!(failure, SendFailure::Permanent(_)), "{failure:?}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn with_no_smtp_configured_emails_are_logged_and_sending_succeeds() {
    let mailer = Mailer::configured(&Config::for_database("sqlite://unused.db")).unwrap();
    assert!(!mailer.is_smtp());
    let rendered = render_invitation(&invitation(None, branding())).unwrap();
    mailer.send(&rendered).await.unwrap();
}

// Async: lettre's connection pool starts a task on the runtime when the transport is built.
#[tokio::test]
async fn bad_mail_settings_are_refused_naming_the_variable() {
    let refused = |url: Option<&str>, from: &str| {
        Mailer::from_config(url, from, WAIT)
            .map(|_| ())
            .unwrap_err()
            .message()
    };
    assert!(refused(Some("http://mail.test"), "a@b.test").contains("PORTCULLIS_SMTP_URL"));
    assert!(refused(Some("smtp://mail.test?tls=maybe"), "a@b.test").contains("PORTCULLIS_SMTP_URL"));
    assert!(refused(None, "not an address").contains("PORTCULLIS_EMAIL_FROM"));
    let ok = Mailer::from_config(Some("smtps://u:p%40ss@mail.test"), "Acme <a@b.test>", WAIT).unwrap();
    assert!(ok.is_smtp());
    assert!(
        !format!("{ok:?}").contains("p%40ss"),
        "credentials in Debug output"
    );
}

fn view(locale: &str, state: AcceptState) -> AcceptView {
    AcceptView {
        locale: Some(locale.to_owned()),
        branding: branding(),
        organization_name: "Acme GmbH".to_owned(),
        inviter_name: "Erika Muster".to_owned(),
        roles: vec!["Administrator".to_owned(), "Leser".to_owned()],
        masked_email: "n***n@example.test".to_owned(),
        expires_at: expires(),
        token: "tok_abc123".to_owned(),
        csrf_token: "csrf_xyz789".to_owned(),
        style_nonce: "n0nce".to_owned(),
        state,
        error: None,
    }
}

/// Anything a strict Content-Security-Policy (no inline script, no inline style) would block.
/// The one script allowed is the gateway's own file, with nothing inline.
pub(crate) fn assert_csp_clean(html: &str) {
    let lower = html.to_ascii_lowercase();
    for script in lower.match_indices("<script") {
        assert!(
            lower[script.0..]
                .replacen("&#x2f;", "/", 2)
                .starts_with("<script src=\"/assets/login.js\" defer></script>"),
            "inline or foreign script in {html}"
        );
    }
    assert!(!lower.contains("style="), "style attribute in {html}");
    assert!(!lower.contains("javascript:"), "javascript: URL in {html}");
    // Attribute names only: escaped text and quoted values may read "onfocus=" harmlessly, but
    // text never contains `<` and values never contain `"`.
    let tags = lower
        .split('<')
        .skip(1)
        .map(|tag| tag.split('>').next().unwrap_or_default());
    for tag in tags {
        let names: String = tag.split('"').step_by(2).collect::<Vec<_>>().join("\"\"");
        let event_attribute = names.match_indices(" on").any(|(at, _)| {
            let rest = &names[at + 3..];
            let name_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
            name_len > 0 && rest[name_len..].trim_start().starts_with('=')
        });
        assert!(!event_attribute, "event handler attribute in <{tag}>");
    }
    for style in lower.match_indices("<style") {
        assert!(
            lower[style.0..].starts_with("<style nonce=\"n0nce\">"),
            "style block without nonce"
        );
    }
}

#[test]
fn accept_page_renders_each_state_in_three_languages() {
    let expected = [
        (
            "en",
            "Create your account",
            "Sign in to accept",
            "You are now a member of Acme GmbH.",
            "Create a passkey instead of a password",
        ),
        (
            "de",
            "Konto anlegen",
            "Anmelden und annehmen",
            "Sie sind jetzt Mitglied von Acme GmbH.",
            "Passkey statt Passwort erstellen",
        ),
        (
            "fr",
            "Créer votre compte",
            "Connectez-vous pour accepter",
            "Vous êtes maintenant membre de Acme GmbH.",
            "Créer une clé d’accès au lieu d’un mot de passe",
        ),
    ];
    let dates = [
        ("en", "March 4, 2027"),
        ("de", "4. März 2027"),
        ("fr", "4 mars 2027"),
    ];
    for ((tag, new_heading, existing_heading, done, passkey), (_, date)) in expected.into_iter().zip(dates) {
        for state in [AcceptState::NewAccount, AcceptState::ExistingAccount] {
            let html = pages::render_accept(&view(tag, state)).unwrap();
            assert_csp_clean(&html);
            assert!(html.contains(&format!("<html lang=\"{tag}\">")), "{tag}: {html}");
            assert!(html.contains("n***n@example.test"), "{tag}: masked email missing");
            assert!(html.contains("<li>Administrator</li>") && html.contains("<li>Leser</li>"));
            assert!(html.contains(date), "{tag}: date missing");
            assert!(unescape(&html).contains("<form method=\"post\" action=\"/invitations/accept\">"));
            assert!(html.contains("name=\"token\" value=\"tok_abc123\""));
            assert!(html.contains("name=\"csrf_token\" value=\"csrf_xyz789\""));
            assert!(html.contains("<style nonce=\"n0nce\">:root { --accent: #c0ffee; }</style>"));
            assert!(unescape(&html).contains("href=\"/assets/pages.css\""));
            match state {
                AcceptState::NewAccount => {
                    assert!(html.contains(new_heading), "{tag}: {html}");
                    assert!(html.contains("name=\"intent\" value=\"create\""));
                    assert!(html.contains("name=\"display_name\""));
                    assert!(html.contains("name=\"password_confirm\""));
                    assert!(html.contains("autocomplete=\"new-password\""));
                    // The passkey option: hidden until the script finds the browser able.
                    assert!(html.contains("<div id=\"invitation-passkey\" hidden data-token=\"tok_abc123\""));
                    assert!(html.contains("id=\"accept-with-passkey\""), "{tag}: {html}");
                    assert!(html.contains(passkey), "{tag}: {passkey:?} in {html}");
                    assert!(html.contains("&#x2f;assets&#x2f;login.js"), "{tag}: the script");
                }
                AcceptState::ExistingAccount => {
                    assert!(html.contains(existing_heading), "{tag}: {html}");
                    assert!(html.contains("name=\"intent\" value=\"sign_in\""));
                    assert!(html.contains("autocomplete=\"current-password\""));
                    assert!(!html.contains("name=\"display_name\""));
                    assert!(!html.contains("<script"), "no passkey option, no script");
                }
                AcceptState::Accepted => unreachable!(),
            }
        }
        let html = pages::render_accept(&view(tag, AcceptState::Accepted)).unwrap();
        assert_csp_clean(&html);
        assert!(html.contains(done), "{tag}: {html}");
        assert!(!html.contains("<form"), "the done page has a form");
        assert!(!html.contains("<script"), "the done page has a script");
        assert!(!html.contains("tok_abc123"), "the done page repeats the token");
    }
}

#[test]
fn accept_page_errors_are_localized() {
    let cases = [
        (PageError::WrongPassword, "de", "Das Passwort ist nicht korrekt."),
        (
            PageError::PasswordTooShort,
            "fr",
            "Ce mot de passe est trop court.",
        ),
        (PageError::DisplayNameInvalid, "en", "Please enter a name."),
        (PageError::RateLimited, "de", "Zu viele Versuche."),
        (
            PageError::Other("<b>Nope</b>".to_owned()),
            "en",
            "&lt;b&gt;Nope&lt;&#x2f;b&gt;",
        ),
    ];
    for (error, tag, text) in cases {
        let mut view = view(tag, AcceptState::ExistingAccount);
        view.error = Some(error);
        let html = pages::render_accept(&view).unwrap();
        assert!(html.contains(text), "{tag}: {text} missing in {html}");
        assert!(html.contains("role=\"alert\""));
    }
}

#[test]
fn accept_page_escapes_names_and_ignores_a_bad_color() {
    let mut view = view("en", AcceptState::NewAccount);
    view.organization_name = "<img src=x onerror=alert(1)>".to_owned();
    view.inviter_name = "Mallory\" autofocus onfocus=\"alert(3)".to_owned();
    view.roles = vec!["\"><script>alert(2)</script>".to_owned()];
    view.branding.display_name = None;
    view.branding.logo_url = Some("\"><script>alert(4)</script>".to_owned());
    view.branding.primary_color = Some("red;}</style><script>alert(5)</script>".to_owned());
    view.branding.support_email = Some("<a href=x>@evil.test".to_owned());
    view.token = "\"><script>alert(6)</script>".to_owned();
    let html = pages::render_accept(&view).unwrap();
    assert_csp_clean(&html);
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(
        !html.contains("<style"),
        "a color that is not #rrggbb reached the page: {html}"
    );
    assert!(!html.contains("<a href=x>"));
}

#[test]
fn unavailable_page_is_the_same_for_every_reason_and_unbranded() {
    for (tag, title) in [
        (Some("en"), "This invitation link cannot be used"),
        (Some("de"), "Dieser Einladungslink kann nicht verwendet werden"),
        (Some("fr-BE"), "Ce lien d’invitation ne peut pas être utilisé"),
        (None, "This invitation link cannot be used"),
    ] {
        let html = pages::render_unavailable(tag, "n0nce").unwrap();
        assert_csp_clean(&html);
        assert!(html.contains(title), "{tag:?}: {html}");
        assert!(!html.contains("<form"));
        assert!(!html.contains("Acme"));
    }
    assert!(pages::STYLESHEET.contains("--accent"));
}
