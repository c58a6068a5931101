//! Parsing GraphQL `ID`s and opaque cursors into database ids, with errors naming the field.

use std::fmt;

use async_graphql::ID;
use async_graphql::connection::CursorType;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::db::Id;
use crate::error::{Error, Result};

/// Parses an `ID` argument or input field called `field`.
pub fn parse_id(field: &str, id: &ID) -> Result<Id> {
    id.parse::<Id>()
        .map_err(|_| Error::bad_input(field, "not a valid ID"))
}

pub fn to_id(id: Id) -> ID {
    ID(id.to_string())
}

/// An opaque keyset cursor: the row id, base64url-encoded.
#[derive(Debug, Clone, Copy)]
pub struct Cursor(pub Id);

/// The cursor text did not decode.
#[derive(Debug)]
pub struct InvalidCursor;

impl fmt::Display for InvalidCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a valid cursor")
    }
}

impl CursorType for Cursor {
    type Error = InvalidCursor;

    fn decode_cursor(text: &str) -> std::result::Result<Self, InvalidCursor> {
        URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|bytes| Uuid::from_slice(&bytes).ok())
            .map(|uuid| Cursor(Id(uuid)))
            .ok_or(InvalidCursor)
    }

    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.0.as_bytes())
    }
}

/// Decodes a cursor argument called `field`.
pub fn parse_cursor(field: &str, text: &str) -> Result<Cursor> {
    Cursor::decode_cursor(text).map_err(|_| Error::bad_input(field, "not a valid cursor"))
}
