//! The embedded email templates and the one minijinja environment that renders them.

use std::sync::LazyLock;

use minijinja::{Environment, UndefinedBehavior};
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
