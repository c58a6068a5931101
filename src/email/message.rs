//! A rendered email as an RFC 5322 message: `multipart/alternative`, stable `Message-ID`.

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use super::RenderedEmail;
use super::invitation::single_line;
use super::mailer::SendFailure;

/// Builds the message; an address that does not parse is a permanent failure (retrying cannot fix it).
pub(super) fn build(email: &RenderedEmail, from: &Mailbox) -> Result<Message, SendFailure> {
    let to: lettre::Address = email
        .to
        .trim()
        .parse()
        .map_err(|_| SendFailure::Permanent("the recipient address is not valid".to_owned()))?;
    let from_name = email
        .from_name
        .as_deref()
        .map(single_line)
        .or_else(|| from.name.clone());
    let mut builder = Message::builder()
        .from(Mailbox::new(from_name, from.email.clone()))
        .to(Mailbox::new(None, to))
        .subject(single_line(&email.subject))
        .message_id(Some(format!("<{}>", single_line(&email.message_id))));
    if let Some(reply_to) = &email.reply_to {
        match reply_to.trim().parse::<lettre::Address>() {
            Ok(address) => builder = builder.reply_to(Mailbox::new(None, address)),
            // The support address is branding, not the point of the email: send without it.
            Err(_) => {
                tracing::warn!(message_id = %email.message_id, "support email is not a valid address; no Reply-To")
            }
        }
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|error| SendFailure::Permanent(format!("the message cannot be built: {error}")))
}
