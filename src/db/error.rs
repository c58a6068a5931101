//! How database failures become gateway errors.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::error::Error;

impl From<DieselError> for Error {
    fn from(error: DieselError) -> Self {
        Error::internal(error)
    }
}

/// True when `error` is a unique-constraint violation, on either backend.
pub(crate) fn is_unique_violation(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Turns a unique violation into CONFLICT on `field`; anything else stays internal.
pub(crate) fn conflict_on(field: &'static str, message: &'static str) -> impl Fn(DieselError) -> Error {
    move |error| {
        if is_unique_violation(&error) {
            Error::conflict(field, message)
        } else {
            Error::from(error)
        }
    }
}
