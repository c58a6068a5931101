//! An organization's white-label settings as emails and pages use them.

/// How an organization presents itself in invitation emails and on the accept page.
/// Every field is optional; unset ones fall back to neutral defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branding {
    /// Name shown in headers and as the sender name, instead of the organization's name.
    pub display_name: Option<String>,
    /// Absolute URL of a logo image.
    pub logo_url: Option<String>,
    /// Accent color as `#rrggbb`.
    pub primary_color: Option<String>,
    /// Sender name of emails; falls back to `display_name`.
    pub email_from_name: Option<String>,
    /// Address people may write to for help; also the emails' `Reply-To`.
    pub support_email: Option<String>,
    /// Locale of emails and pages when an invitation names none.
    pub default_locale: Option<String>,
}

impl Branding {
    /// The primary color if it is a CSS hex color (`#rgb` or `#rrggbb`); renderers ignore anything
    /// else, so a bad stored value cannot reach a style sheet or an inline style.
    pub fn primary_color_hex(&self) -> Option<&str> {
        let color = self.primary_color.as_deref()?;
        let digits = color.strip_prefix('#')?;
        let valid = matches!(digits.len(), 3 | 6) && digits.chars().all(|c| c.is_ascii_hexdigit());
        valid.then_some(color)
    }
}
