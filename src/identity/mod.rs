//! Identity: users, organizations, memberships, passwords, sessions, API keys and signing keys.
//!
//! Every function here that acts for a caller takes the caller's [`Actor`] and asks the policy
//! engine ([`crate::authz::guard`]) first; the GraphQL layer only parses input and maps results.

pub mod api_keys;
pub mod authenticate;
pub mod bootstrap;
pub mod branding;
pub mod key_sync;
pub mod live_credentials;
pub mod organizations;
pub(crate) mod passwords;
pub mod principal;
pub mod rate_limit;
pub(crate) mod secrets;
pub mod sessions;
pub mod tokens;
mod unknown_kids;
pub mod users;
pub(crate) mod validate;
pub mod visibility;

pub use principal::{Actor, AuthMethod, ClientInfo, Mfa, Principal, SessionMethod};
