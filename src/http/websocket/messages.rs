//! The messages and close codes of `graphql-transport-ws`, and of the legacy `graphql-ws`, as this
//! gateway speaks them.

use axum::extract::ws::{CloseFrame, Message};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::identity::authenticate::bearer_credential;

/// The subprotocols offered, in the order of preference.
pub(super) const PROTOCOLS: [&str; 2] = ["graphql-transport-ws", "graphql-ws"];

/// Which protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    /// `graphql-transport-ws`, the protocol of the `graphql-ws` library.
    TransportWs,
    /// `graphql-ws`, the legacy protocol of `subscriptions-transport-ws`.
    Legacy,
}

impl Protocol {
    pub(super) fn from_name(name: &[u8]) -> Option<Self> {
        match name {
            b"graphql-transport-ws" => Some(Self::TransportWs),
            b"graphql-ws" => Some(Self::Legacy),
            _ => None,
        }
    }
}

/// Close codes of `graphql-transport-ws` (used for the legacy protocol too, which names none).
pub(super) mod code {
    pub const NORMAL: u16 = 1000;
    pub const INTERNAL: u16 = 1011;
    /// A message the protocol does not define, or malformed.
    pub const BAD_REQUEST: u16 = 4400;
    /// `subscribe` before the connection was acknowledged.
    pub const UNAUTHORIZED: u16 = 4401;
    /// Credentials refused at `connection_init`, or no longer live.
    pub const FORBIDDEN: u16 = 4403;
    /// No `connection_init` in time.
    pub const INIT_TIMEOUT: u16 = 4408;
    /// `subscribe` with the id of an operation still running.
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    /// A second `connection_init`.
    pub const TOO_MANY_INIT: u16 = 4429;
}

/// What a client sends. Both protocols' names are accepted for the same message.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    #[serde(alias = "start")]
    Subscribe {
        id: String,
        payload: Value,
    },
    #[serde(alias = "stop")]
    Complete {
        id: String,
    },
    ConnectionTerminate {},
    Ping {
        #[serde(default)]
        payload: Option<Value>,
    },
    Pong {},
}

impl ClientMessage {
    /// Parses one text (or binary) frame; `None` for anything the protocol does not define.
    pub(super) fn parse(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// The credential named in a `connection_init` or `ping` payload (`authorization`, or
/// `Authorization`), as `Bearer <credential>` or bare. `Ok(None)` when there is none; `Err` when
/// the entry is there but not a string.
pub(super) fn payload_credential(payload: Option<&Value>) -> Result<Option<String>, ()> {
    let Some(entry) = payload.and_then(Value::as_object).and_then(|payload| {
        payload
            .get("authorization")
            .or_else(|| payload.get("Authorization"))
    }) else {
        return Ok(None);
    };
    match entry {
        Value::String(text) => Ok(credential_from(text)),
        Value::Null => Ok(None),
        _ => Err(()),
    }
}

/// The credential in an `Authorization` value, with or without the `Bearer` scheme.
pub(super) fn credential_from(text: &str) -> Option<String> {
    let credential = bearer_credential(text).unwrap_or(text).trim();
    (!credential.is_empty()).then(|| credential.to_owned())
}

/// One server message as a text frame.
pub(super) fn text(kind: &str, id: Option<&str>, payload: Option<impl Serialize>) -> Message {
    #[derive(Serialize)]
    struct Envelope<'a, P> {
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        payload: Option<P>,
    }
    let envelope = Envelope { kind, id, payload };
    let text = serde_json::to_string(&envelope).unwrap_or_else(|_| {
        json!({ "type": "error", "id": id, "payload": [{ "message": "internal error" }] }).to_string()
    });
    Message::text(text)
}

/// `error` for one operation: it did not run, and no `complete` follows.
pub(super) fn operation_error(id: &str, message: &str, code: &str) -> Message {
    text(
        "error",
        Some(id),
        Some(json!([{ "message": message, "extensions": { "code": code } }])),
    )
}

/// A close frame; the reason is cut to the 123 bytes a frame can carry, at a character boundary.
pub(super) fn close(code: u16, reason: &str) -> Message {
    const MAX_REASON_BYTES: usize = 123;
    let reason: String = reason
        .char_indices()
        .take_while(|(at, c)| at + c.len_utf8() <= MAX_REASON_BYTES)
        .map(|(_, c)| c)
        .collect();
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_payloads() {
        let found = |payload: Value| payload_credential(Some(&payload));
        assert_eq!(
            found(json!({ "authorization": "Bearer abc" })),
            Ok(Some("abc".to_owned()))
        );
        assert_eq!(
            found(json!({ "Authorization": "abc" })),
            Ok(Some("abc".to_owned()))
        );
        assert_eq!(found(json!({ "authorization": "  " })), Ok(None));
        assert_eq!(found(json!({ "authorization": null })), Ok(None));
        assert_eq!(found(json!({})), Ok(None));
        assert_eq!(found(json!("Bearer abc")), Ok(None));
        assert_eq!(found(json!({ "authorization": 7 })), Err(()));
        assert_eq!(
            found(json!({ "authorization": "Bearer pck_\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}" })),
            Ok(Some("pck_\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}".to_owned()))
        );
        assert_eq!(payload_credential(None), Ok(None));
    }

    #[test]
    fn close_reasons_fit_a_frame() {
        let long = "\u{e9}".repeat(100);
        let Message::Close(Some(frame)) = close(code::FORBIDDEN, &long) else {
            panic!("a close frame");
        };
        assert_eq!(frame.code, 4403);
        assert_eq!(frame.reason.as_str(), "\u{e9}".repeat(61));
    }

    #[test]
    fn unknown_or_malformed_messages_are_not_parsed() {
        for bad in [
            &b"not json"[..],
            br#"{"type":"nope"}"#,
            br#"{"type":"subscribe","payload":{}}"#,
            br#"{"id":"1"}"#,
            b"\xff\xfe",
        ] {
            assert!(ClientMessage::parse(bad).is_none(), "{bad:?}");
        }
        assert!(matches!(
            ClientMessage::parse(br#"{"type":"connection_terminate","payload":1}"#),
            Some(ClientMessage::ConnectionTerminate {})
        ));
    }
}
