//! Sending: SMTP through lettre, or with no SMTP configured a log line per email.

use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};

use super::{RenderedEmail, message, smtp_url};
use crate::config::Config;
use crate::error::{Error, Result};

/// Why an email was not sent, and whether trying again later can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// Connection refused or lost, TLS handshake failed, no answer in time, SMTP 4xx: retry later.
    /// After a timeout the server may still have taken the message; the stable `Message-ID`
    /// lets a duplicate be recognized.
    Transient(String),
    /// SMTP 5xx or an email that cannot be expressed (bad address): retrying cannot help.
    Permanent(String),
}

impl SendFailure {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }

    /// The reason, for the job's last-error column and logs (never contains the email's body).
    pub fn reason(&self) -> &str {
        match self {
            Self::Transient(reason) | Self::Permanent(reason) => reason,
        }
    }
}

impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transient(reason) => write!(f, "temporary email failure: {reason}"),
            Self::Permanent(reason) => write!(f, "permanent email failure: {reason}"),
        }
    }
}

impl std::error::Error for SendFailure {}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// The no-configuration default: each email becomes one `info` log line, link included, so
    /// `cargo run` works without a mail server.
    Log,
}

/// Sends rendered emails from the configured address. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    timeout: Duration,
}

// By hand: the SMTP transport holds the credentials from the URL.
impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Log => "log",
        };
        f.debug_struct("Mailer")
            .field("transport", &transport)
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Mailer {
    /// SMTP when `smtp_url` is set (syntax: see the [module](super) documentation), else the log
    /// transport.
    ///
    /// `from` is an address, optionally with a name (`Acme <noreply@acme.test>`); an email's
    /// branding name replaces the name. `timeout` bounds one whole send, so a server that hangs
    /// is a transient failure rather than a stuck job.
    pub fn from_config(smtp_url: Option<&str>, from: &str, timeout: Duration) -> Result<Self> {
        let from: Mailbox = from.trim().parse().map_err(|error| {
            Error::bad_input("PORTCULLIS_EMAIL_FROM", format!("not an email address: {error}"))
        })?;
        let transport = match smtp_url.map(str::trim).filter(|url| !url.is_empty()) {
            Some(url) => Transport::Smtp(smtp_url::transport(url, timeout)?),
            None => Transport::Log,
        };
        Ok(Self {
            transport,
            from,
            timeout,
        })
    }

    /// The mailer `PORTCULLIS_SMTP_URL`, `PORTCULLIS_EMAIL_FROM` and `PORTCULLIS_SMTP_TIMEOUT_SECONDS` describe.
    pub fn configured(config: &Config) -> Result<Self> {
        let timeout = Duration::from_secs(config.smtp_timeout_seconds.max(1));
        Self::from_config(config.smtp_url.as_deref(), &config.email_from, timeout)
    }

    /// Whether emails really leave the process (false: they are logged).
    pub fn is_smtp(&self) -> bool {
        matches!(self.transport, Transport::Smtp(_))
    }

    /// Sends one email. SMTP connections are pooled (lettre's pool, which checks a connection is
    /// alive before reusing it): a bulk invitation sends a thousand emails, and a new connection
    /// per email — TCP, banner, EHLO, TLS — would cost more than the emails.
    pub async fn send(&self, email: &RenderedEmail) -> Result<(), SendFailure> {
        let smtp = match &self.transport {
            Transport::Smtp(smtp) => smtp,
            Transport::Log => {
                // The documented no-SMTP default: the only place an email's link is logged.
                tracing::info!(
                    to = %email.to,
                    subject = %email.subject,
                    message_id = %email.message_id,
                    text = %email.text,
                    "email not sent (no PORTCULLIS_SMTP_URL); its text follows"
                );
                return Ok(());
            }
        };
        let message = message::build(email, &self.from)?;
        match tokio::time::timeout(self.timeout, smtp.send(message)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(error)) => Err(classify(&error)),
            Err(_elapsed) => Err(SendFailure::Transient(format!(
                "the SMTP server did not finish within {} s",
                self.timeout.as_secs_f32()
            ))),
        }
    }
}

/// SMTP 5xx and errors in our own request are permanent; everything else (4xx, network, TLS,
/// timeouts, garbled replies) may pass.
fn classify(error: &lettre::transport::smtp::Error) -> SendFailure {
    if error.is_permanent() || error.is_client() {
        SendFailure::Permanent(error.to_string())
    } else {
        SendFailure::Transient(error.to_string())
    }
}
