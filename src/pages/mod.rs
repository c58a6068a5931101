//! The few server-rendered pages (the invitation accept page); pure rendering, served by `http/`.
//!
//! Pages work without JavaScript and under a strict Content-Security-Policy: no scripts, no
//! inline event handlers, no `style=` attributes. Styles come from [`STYLESHEET`] (served at
//! `/assets/pages.css`) plus one `<style nonce>` block carrying the brand color as a CSS variable.
//! Every page sets `<meta name="referrer" content="no-referrer">`: the accept page's URL holds the
//! invitation token, and a logo from another host must not learn it.

mod accept;
mod templates;

pub use accept::{AcceptState, AcceptView, PageError, render_accept, render_unavailable};

/// The pages' style sheet; `http/` serves it at `/assets/pages.css` (the pages link to that path).
pub const STYLESHEET: &str = include_str!("templates/pages.css");

/// Where the pages expect [`STYLESHEET`].
pub const STYLESHEET_PATH: &str = "/assets/pages.css";
