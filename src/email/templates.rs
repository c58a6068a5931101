//! The embedded email templates and the one minijinja environment that renders them.

use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::{Error, Result};

/// `(name, source)`; the extension picks escaping: `.html` is HTML-escaped, `.txt` is not.
const TEMPLATES: &[(&str, &str)] = &[
    ("invitation.txt", include_str!("templates/invitation.txt")),
    ("invitation.html", include_str!("templates/invitation.html")),
];

/// Parsed once; a template that does not parse is reported on every render (and fails the tests)
/// rather than panicking at start-up.
static ENVIRONMENT: LazyLock<Result<Environment<'static>, String>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // A misspelled variable is an error, not silently empty text in someone's inbox.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_formatter(|out, state, value| match value.as_str() {
        Some(text) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
            out.write_str(&escape_html(text)).map_err(minijinja::Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .map_err(|error| format!("email template {name}: {error:#}"))?;
    }
    Ok(env)
});

/// Renders the named embedded template with `context`.
pub(super) fn render(name: &str, context: impl Serialize) -> Result<String> {
    let env = ENVIRONMENT
        .as_ref()
        .map_err(|error| Error::internal(anyhow::anyhow!("{error}")))?;
    let template = env.get_template(name).map_err(Error::internal)?;
    template.render(context).map_err(Error::internal)
}

/// HTML escaping without minijinja's extra `/` → `&#x2f;`: every value here sits in text or a
/// quoted attribute, where `/` is harmless, and mail filters distrust entity-encoded links.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            other => out.push(other),
        }
    }
    out
}
