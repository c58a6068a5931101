//! Opaque cursors over the log: an event's position, base64url-encoded.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn encode(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(seq.to_be_bytes())
}

pub fn decode(text: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    Some(i64::from_be_bytes(bytes.as_slice().try_into().ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_rejects_garbage() {
        for seq in [0, 1, 4_096, i64::MAX] {
            assert_eq!(super::decode(&super::encode(seq)), Some(seq));
        }
        assert_eq!(super::decode("not a cursor"), None);
        assert_eq!(super::decode("AAAA"), None, "too short");
    }
}
