//! The embedded page templates and the one minijinja environment that renders them.

use std::sync::LazyLock;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::{Error, Result};

/// `(name, source)`; all are `.html`, so every value is HTML-escaped unless a template says otherwise
/// (none does).
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("accept.html", include_str!("templates/accept.html")),
    ("login.html", include_str!("templates/login.html")),
    ("unavailable.html", include_str!("templates/unavailable.html")),
];

/// Parsed once; a template that does not parse is reported on every render (and fails the tests)
/// rather than panicking at start-up.
static ENVIRONMENT: LazyLock<Result<Environment<'static>, String>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // A misspelled variable is an error in the tests, not a blank on someone's screen.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .map_err(|error| format!("page template {name}: {error:#}"))?;
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
