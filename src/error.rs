//! The one error type of the gateway and how it reaches clients as a GraphQL `extensions.code`.

use std::fmt;

use async_graphql::ErrorExtensions as _;

use crate::authz::diagnostics::Problem;

/// Every failure a caller can see. Internal detail is logged, never returned.
///
/// Deliberately not `Display`: async-graphql converts any `Display` type into an error without
/// extensions, so leaving it out makes the compiler route every error through `From` below,
/// which attaches `extensions.code`.
#[derive(Debug)]
pub enum Error {
    /// No valid credentials (or bad ones) for an operation that needs them.
    Unauthenticated(String),
    /// The caller is known but may not do this.
    Forbidden,
    /// A policy allows this only with a second factor, which the session has not proved lately:
    /// a step-up (`startStepUp` / `finishStepUp`) and the same request succeeds.
    MfaRequired,
    /// Input failed validation; `field` names the offending input field.
    BadUserInput { field: String, message: String },
    /// Cedar source (a policy or schema) in `field` has problems; each has a message and location.
    InvalidCedar { field: String, problems: Vec<Problem> },
    /// The object does not exist (or the caller may not know that it does).
    NotFound(&'static str),
    /// The change would break a uniqueness or state rule; `field` names the input at fault. A
    /// `reason` (`extensions.reason`) tells callers which rule, and `existing` the id of the
    /// object in the way, where that helps.
    Conflict {
        field: String,
        message: String,
        reason: Option<&'static str>,
        existing: Option<String>,
    },
    /// Too many attempts; try again after the given number of seconds.
    RateLimited { retry_after_secs: u64 },
    /// A live feed's subscriber fell too far behind and was cut off; it resumes after `cursor`.
    Lagged { cursor: String },
    /// The database gave up on the operation before it finished — a lock held elsewhere for too
    /// long, a statement over its time limit, a transaction cut off, the connection lost — and
    /// rolled it back, so retrying shortly may well succeed. `reason` (`extensions.reason`) says
    /// why; only a connection lost during the commit itself (`CONNECTION_LOST`) leaves a write's
    /// outcome unknown.
    Unavailable { reason: &'static str },
    /// Anything unexpected: the detail goes to the log, the caller sees a generic message.
    Internal(anyhow::Error),
}

/// The stable codes clients switch on (`extensions.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    MfaRequired,
    BadUserInput,
    NotFound,
    Conflict,
    RateLimited,
    Lagged,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::MfaRequired => "MFA_REQUIRED",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::RateLimited => "RATE_LIMITED",
            Self::Lagged => "LAGGED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::Unauthenticated(message.into())
    }

    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Conflict {
            field: field.into(),
            message: message.into(),
            reason: None,
            existing: None,
        }
    }

    /// A CONFLICT that names its rule (`extensions.reason`) and, optionally, the object in the way.
    pub fn conflict_because(
        field: impl Into<String>,
        message: impl Into<String>,
        reason: &'static str,
        existing: Option<String>,
    ) -> Self {
        Self::Conflict {
            field: field.into(),
            message: message.into(),
            reason: Some(reason),
            existing,
        }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::MfaRequired => ErrorCode::MfaRequired,
            Self::BadUserInput { .. } | Self::InvalidCedar { .. } => ErrorCode::BadUserInput,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict { .. } => ErrorCode::Conflict,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Lagged { .. } => ErrorCode::Lagged,
            Self::Unavailable { .. } => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The message shown to the caller.
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated(message) => message.clone(),
            Self::Forbidden => "you are not allowed to perform this operation".to_owned(),
            Self::MfaRequired => {
                "this operation needs a second factor: verify with a passkey (startStepUp, finishStepUp) and retry"
                    .to_owned()
            }
            Self::BadUserInput { field, message } | Self::Conflict { field, message, .. } => {
                format!("{field}: {message}")
            }
            Self::InvalidCedar { field, problems } => {
                let listed: Vec<String> = problems.iter().map(Problem::render).collect();
                format!("{field}: {}", listed.join("; "))
            }
            Self::NotFound(what) => format!("{what} not found"),
            Self::RateLimited { retry_after_secs } => {
                format!("too many attempts; retry in {retry_after_secs} s")
            }
            Self::Lagged { .. } => {
                "the subscriber fell too far behind; subscribe again with `after` set to extensions.resumeAfter"
                    .to_owned()
            }
            Self::Unavailable { .. } => {
                "the database could not complete the operation; retry shortly"
                    .to_owned()
            }
            Self::Internal(_) => "internal error".to_owned(),
        }
    }

    /// The input field at fault, for BAD_USER_INPUT and CONFLICT.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::BadUserInput { field, .. }
            | Self::Conflict { field, .. }
            | Self::InvalidCedar { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<Error> for async_graphql::Error {
    fn from(error: Error) -> Self {
        if let Error::Internal(source) = &error {
            tracing::error!(error = ?source, "internal error");
        }
        let code = error.code();
        let field = error.field().map(str::to_owned);
        let problems: Option<Vec<serde_json::Value>> = match &error {
            Error::InvalidCedar { problems, .. } => Some(
                problems
                    .iter()
                    .map(|p| serde_json::json!({ "message": p.message, "line": p.line, "column": p.column }))
                    .collect(),
            ),
            _ => None,
        };
        let retry_after = match &error {
            Error::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            Error::Unavailable { .. } => Some(1),
            _ => None,
        };
        let (reason, existing) = match &error {
            Error::Conflict { reason, existing, .. } => (*reason, existing.clone()),
            Error::Unavailable { reason } => (Some(*reason), None),
            _ => (None, None),
        };
        let resume_after = match &error {
            Error::Lagged { cursor } => Some(cursor.clone()),
            _ => None,
        };
        async_graphql::Error::new(error.message()).extend_with(|_, extensions| {
            extensions.set("code", code.as_str());
            if let Some(field) = field {
                extensions.set("field", field);
            }
            if let Some(problems) = &problems
                && let Ok(value) = async_graphql::Value::from_json(serde_json::Value::Array(problems.clone()))
            {
                extensions.set("problems", value);
            }
            if let Some(seconds) = retry_after {
                extensions.set("retryAfterSeconds", seconds);
            }
            if let Some(reason) = reason {
                extensions.set("reason", reason);
            }
            if let Some(existing) = &existing {
                extensions.set("existingId", existing.as_str());
            }
            if let Some(cursor) = &resume_after {
                extensions.set("resumeAfter", cursor.as_str());
            }
        })
    }
}
