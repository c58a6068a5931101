//! Who is calling: an authenticated actor, or anonymous (possibly with rejected credentials).

use crate::db::models::{SessionRow, UserRow};
use crate::db::{Id, Timestamp};
use crate::error::{Error, Result};

pub use crate::db::enums::SessionMethod;

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// An access token from a password login.
    Password,
    /// An access token from a passkey sign-in (user verification: a second factor in itself).
    Passkey,
    /// An API key.
    ApiKey,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Passkey => "passkey",
            Self::ApiKey => "api_key",
        }
    }

    /// How a stored session was opened (its `auth_method` column).
    pub fn of_session(stored: SessionMethod) -> Self {
        match stored {
            SessionMethod::Password => Self::Password,
            SessionMethod::Passkey => Self::Passkey,
        }
    }
}

/// Whether, and when, the caller's session proved a second factor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mfa {
    /// True while the session counts as MFA-verified (`context.mfa`).
    pub verified: bool,
    /// When it last proved one (`context.mfaAgeSeconds` counts from here).
    pub verified_at: Option<Timestamp>,
}

impl Mfa {
    /// The MFA state of a session at `now`.
    pub fn of_session(session: &SessionRow, now: Timestamp) -> Self {
        Self {
            verified: session.mfa_expires_at.is_some_and(|until| until > now),
            verified_at: session.mfa_verified_at,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: UserRow,
    pub method: AuthMethod,
    /// The login session behind an access token.
    pub session_id: Option<Id>,
    /// The API key used, when authenticated by one.
    pub api_key_id: Option<Id>,
    /// Whether the session proved a second factor (a passkey sign-in or a recent step-up).
    pub mfa: Mfa,
    /// The client's connection: its address is in policies' context, all of it in audit events.
    pub client: ClientInfo,
}

impl Actor {
    pub fn user_id(&self) -> Id {
        self.user.id
    }
}

/// The caller of one request.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per request or connection, never stored in bulk; boxing would cost an allocation per request"
)]
pub enum Principal {
    /// No credentials, or credentials that were rejected (with the reason, reported when an
    /// operation needs authentication, so that e.g. `refreshSession` still works with a stale
    /// access token in the header).
    Anonymous {
        rejected: Option<String>,
    },
    Authenticated(Actor),
}

impl Principal {
    pub const ANONYMOUS: Principal = Principal::Anonymous { rejected: None };

    /// The authenticated actor, or UNAUTHENTICATED saying why not.
    pub fn actor(&self) -> Result<&Actor> {
        match self {
            Self::Authenticated(actor) => Ok(actor),
            Self::Anonymous {
                rejected: Some(reason),
            } => Err(Error::unauthenticated(reason.clone())),
            Self::Anonymous { rejected: None } => Err(Error::unauthenticated("authentication required")),
        }
    }

    /// Like [`actor`](Self::actor), but `None` for a caller who presented no credentials.
    pub fn optional_actor(&self) -> Result<Option<&Actor>> {
        match self {
            Self::Anonymous { rejected: None } => Ok(None),
            other => other.actor().map(Some),
        }
    }
}

/// What the server knows of the client's connection, recorded on sessions and audit events.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The `x-request-id` of the HTTP request (or WebSocket upgrade).
    pub request_id: Option<String>,
}
