//! Invitations: how organizations grow. An administrator invites an email address with roles; the
//! invitee follows the link in the email and joins, creating an account if they have none.
//!
//! - [`create`]: one or up to 1,000 invitations per call, one result per row, idempotent by key.
//! - [`manage`]: read, list, resend (rotating the token), revoke.
//! - [`accept`]: the invitee's side, by token, for the API and the accept page alike.
//! - [`delivery`]: the job that mints the token and sends the email.
//! - [`expiry`]: marks lapsed invitations and forgets ended ones.
//!
//! Tokens are minted only when an email is sent and stored only as hashes, so no token rests
//! anywhere in plain text — not in the invitations table and not in the job queue.

pub mod accept;
pub mod create;
pub mod delivery;
pub mod expiry;
pub mod manage;
mod status;
mod token;

pub use status::InvitationStatus;
