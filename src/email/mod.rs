//! Email: invitation templates (localized, per-organization branding) and the SMTP/log transports.
//!
//! Rendering is pure ([`render_invitation`]); sending ([`Mailer::send`]) reports whether a failure
//! is worth retrying ([`SendFailure`]). The durable job runner owns retries and idempotence keys.
//!
//! `PORTCULLIS_SMTP_URL` (unset: each email is logged at `info`, link included):
//!
//! | URL | connection |
//! |---|---|
//! | `smtps://user:pass@host[:465]` | TLS from the first byte (implicit TLS) |
//! | `smtp://user:pass@host[:587]` | STARTTLS, required: no upgrade, no mail (lettre's `?tls=required`) |
//! | `smtp://host:587?tls=opportunistic` | STARTTLS when the server offers it, else plain text |
//! | `smtp://host:25?tls=none` | plain text; for a relay on loopback or a test sink only |
//!
//! A bare `smtp://` means required STARTTLS here (lettre alone would read it as plain text), so a
//! password never travels unencrypted by accident.

mod invitation;
mod mailer;
mod message;
mod smtp_url;
mod templates;

pub use invitation::{InvitationEmail, RenderedEmail, render_invitation};
pub use mailer::{Mailer, SendFailure};
