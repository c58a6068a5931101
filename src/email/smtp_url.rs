//! How `PORTCULLIS_SMTP_URL` is read (the table is in the [room's documentation](super)).
//!
//! lettre itself reads a bare `smtp://` as plain text; here that needs the explicit `tls=none`, so
//! a URL without a `tls` parameter never sends a password unencrypted. User and password are
//! percent-decoded; a path (`smtp://host/mail.example.com`) sets the name sent with `EHLO`
//! (default: this machine's host name). Certificates are checked against the Mozilla roots
//! (`webpki-roots`).

use std::time::Duration;

use lettre::{AsyncSmtpTransport, Tokio1Executor};

use crate::error::{Error, Result};

const FIELD: &str = "PORTCULLIS_SMTP_URL";

/// The SMTP transport `url` describes; `timeout` bounds connecting (sending is bounded by the caller).
pub(super) fn transport(url: &str, timeout: Duration) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    let url = lettre_url(url).map_err(|message| Error::bad_input(FIELD, message))?;
    // lettre's messages name the scheme or the parse problem, never the URL with its password.
    let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
        .map_err(|error| Error::bad_input(FIELD, error.to_string()))?;
    Ok(builder.timeout(Some(timeout)).build())
}

/// Our URL rules expressed in lettre's syntax.
fn lettre_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let scheme = base
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    let tls = form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "tls")
        .map(|(_, value)| value.into_owned());
    match (scheme.as_deref(), tls.as_deref()) {
        (Some("smtp"), None) => Ok(format!("{base}?tls=required")),
        (Some("smtp"), Some("none")) => Ok(base.to_owned()),
        (Some("smtp"), Some("required" | "opportunistic")) | (Some("smtps"), None) => Ok(url.to_owned()),
        (Some("smtps"), Some(_)) => Err("smtps:// is always encrypted; drop the tls parameter".to_owned()),
        (Some("smtp"), Some(other)) => Err(format!(
            "tls={other} is not one of required (the default), opportunistic, none"
        )),
        _ => Err("expected smtp://… or smtps://…".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_unless_told_otherwise() {
        assert_eq!(
            lettre_url("smtp://u:p@mail.example.com:587").unwrap(),
            "smtp://u:p@mail.example.com:587?tls=required"
        );
        assert_eq!(
            lettre_url("smtp://127.0.0.1:2525?tls=none").unwrap(),
            "smtp://127.0.0.1:2525"
        );
        assert_eq!(
            lettre_url("smtp://h?tls=opportunistic").unwrap(),
            "smtp://h?tls=opportunistic"
        );
        assert_eq!(lettre_url("smtps://u:p@h").unwrap(), "smtps://u:p@h");
        assert!(lettre_url("smtps://h?tls=none").is_err());
        assert!(lettre_url("smtp://h?tls=bogus").is_err());
        assert!(lettre_url("http://h").is_err());
        assert!(lettre_url("h:25").is_err());
    }
}
