//! The few server-rendered pages (the invitation accept page, the sign-in page); pure rendering,
//! served by `http/`.
//!
//! Pages work under a strict Content-Security-Policy: no inline scripts, no inline event
//! handlers, no `style=` attributes. Styles come from [`STYLESHEET`] (served at
//! `/assets/pages.css`) plus one `<style nonce>` block carrying the brand color as a CSS variable.
//! The one script, [`SCRIPT`], is a file of the gateway's own (`script-src 'self'`): the sign-in
//! page needs it, and the accept page's forms work without it (it only adds the passkey option).
//! Every page sets `<meta name="referrer" content="no-referrer">`: the accept page's URL holds the
//! invitation token, and a logo from another host must not learn it.

mod accept;
mod frame;
mod login;
mod templates;

pub use accept::{AcceptState, AcceptView, PageError, render_accept, render_unavailable};
pub use login::{LoginView, render_login};

/// The pages' style sheet; `http/` serves it at `/assets/pages.css` (the pages link to that path).
pub const STYLESHEET: &str = include_str!("templates/pages.css");

/// Where the pages expect [`STYLESHEET`].
pub const STYLESHEET_PATH: &str = "/assets/pages.css";

/// The pages' script: passkeys and password sign-in against `/graphql`; `http/` serves it at
/// [`SCRIPT_PATH`].
pub const SCRIPT: &str = include_str!("templates/login.js");

/// Where the pages expect [`SCRIPT`].
pub const SCRIPT_PATH: &str = "/assets/login.js";
