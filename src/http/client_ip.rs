//! The client's address behind reverse proxies.
//!
//! When the socket peer is a trusted proxy (`PORTCULLIS_TRUSTED_PROXIES`), the client is read from
//! the one header the proxies write (`PORTCULLIS_FORWARDED_HEADER`): `X-Forwarded-For`, or
//! `Forwarded` (RFC 7239, its `for=` parameters). The other is never read: a proxy that maintains
//! one passes a client's own copy of the other through unchanged.
//! Each proxy appends the address it received the request from, so the list is walked from the
//! right, past the trusted proxies: the first address not trusted is the client (everything left
//! of it is whatever that client chose to send). When every hop is trusted, the left-most is the
//! client. A hop that cannot be read on the way — malformed, `unknown`, obfuscated, or an element
//! without `for=` — makes the header worthless and the peer is taken instead; so is a header that
//! is not visible ASCII. From a peer that is not trusted (or none known) the headers are ignored
//! entirely: anyone can send them.

use std::net::{IpAddr, Ipv4Addr};

use axum::http::HeaderMap;
use axum::http::header::FORWARDED;

use crate::config::{ForwardedHeader, TrustedProxies};

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The address of the client whose request came from `peer` with `headers`.
pub(crate) fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
    header: ForwardedHeader,
) -> IpAddr {
    let peer = peer.to_canonical();
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    let found = match header {
        ForwardedHeader::Forwarded => match joined(headers, FORWARDED.as_str()) {
            Header::Value(value) => from_forwarded(&value, trusted),
            Header::Malformed | Header::Absent => None,
        },
        ForwardedHeader::XForwardedFor => match joined(headers, X_FORWARDED_FOR) {
            Header::Value(value) => from_x_forwarded_for(&value, trusted),
            Header::Malformed | Header::Absent => None,
        },
    };
    found.unwrap_or(peer)
}

enum Header {
    Absent,
    Malformed,
    /// Every line of the header, in order, joined with commas (one list, as HTTP defines).
    Value(String),
}

fn joined(headers: &HeaderMap, name: &str) -> Header {
    let mut lines = headers.get_all(name).iter().peekable();
    if lines.peek().is_none() {
        return Header::Absent;
    }
    let mut joined = String::new();
    for line in lines {
        let Ok(line) = line.to_str() else {
            return Header::Malformed;
        };
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(line);
    }
    Header::Value(joined)
}

/// The client named by an `X-Forwarded-For` list (`203.0.113.7, 10.0.0.2`).
fn from_x_forwarded_for(value: &str, trusted: &TrustedProxies) -> Option<IpAddr> {
    walk(value.split(',').map(|hop| node(hop.trim())), trusted)
}

/// The client named by a `Forwarded` list (`for=192.0.2.60;proto=https, for="[2001:db8::1]:80"`).
fn from_forwarded(value: &str, trusted: &TrustedProxies) -> Option<IpAddr> {
    let elements = split_outside_quotes(value, ',')?;
    walk(elements.into_iter().map(forwarded_for), trusted)
}

/// Walks the hops (left to right as sent) from the right, past trusted ones. Only the hops walked
/// are read: what a client put in front of its own address cannot spoil the answer.
fn walk(hops: impl DoubleEndedIterator<Item = Option<IpAddr>>, trusted: &TrustedProxies) -> Option<IpAddr> {
    let mut left_most = None;
    for hop in hops.rev() {
        let ip = hop?;
        if !trusted.contains(ip) {
            return Some(ip);
        }
        left_most = Some(ip);
    }
    left_most
}

/// The `for=` address of one `Forwarded` element; `None` when it has none that names an address,
/// or the element is malformed.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let mut found = None;
    for pair in split_outside_quotes(element, ';')? {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=')?;
        if !is_token(name) {
            return None;
        }
        let value = field_value(value)?;
        if name.eq_ignore_ascii_case("for") {
            if found.is_some() {
                return None; // a parameter appears at most once per element
            }
            found = Some(value);
        }
    }
    node(&found?)
}

/// A parameter value: a token, or a quoted string (unescaped).
fn field_value(value: &str) -> Option<String> {
    let Some(quoted) = value.strip_prefix('"') else {
        return is_token(value).then(|| value.to_owned());
    };
    let mut out = String::new();
    let mut chars = quoted.chars();
    loop {
        match chars.next()? {
            '"' => break,
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    chars.as_str().is_empty().then_some(out)
}

/// RFC 7230's `token`: one or more of these visible characters.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Splits at `separator` where it is not inside a quoted string; `None` if a quote is left open.
fn split_outside_quotes(text: &str, separator: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    if quoted || escaped {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

/// A node as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:4711`. `unknown`, obfuscated names (`_hidden`) and anything else: `None`.
fn node(text: &str) -> Option<IpAddr> {
    if let Some(bracketed) = text.strip_prefix('[') {
        let (ip, rest) = bracketed.split_once(']')?;
        if !(rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return ip
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (ip, port) = text.split_once(':')?;
    if !is_port(port) {
        return None;
    }
    ip.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// A port: digits, or an obfuscated one (`_` and token characters), as RFC 7239 allows.
fn is_port(text: &str) -> bool {
    let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    let obfuscated = text.len() > 1
        && text.starts_with('_')
        && text[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    digits || obfuscated
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn trusted(list: &str) -> TrustedProxies {
        list.parse().expect("a valid list")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    /// The client of a request from `peer` with `headers`, 10.0.0.0/8 trusted, reading
    /// `X-Forwarded-For`.
    fn client(peer: &str, headers: &[(&str, &[u8])]) -> String {
        client_reading(ForwardedHeader::XForwardedFor, peer, headers)
    }

    /// The same, reading `Forwarded`.
    fn client_forwarded(peer: &str, headers: &[(&str, &[u8])]) -> String {
        client_reading(ForwardedHeader::Forwarded, peer, headers)
    }

    fn client_reading(header: ForwardedHeader, peer: &str, headers: &[(&str, &[u8])]) -> String {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        client_ip(ip(peer), &map, &trusted("10.0.0.0/8"), header).to_string()
    }

    #[test]
    fn nothing_is_trusted_by_default() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.7"));
        let none = TrustedProxies::default();
        let header = ForwardedHeader::XForwardedFor;
        assert_eq!(client_ip(ip("10.0.0.1"), &headers, &none, header), ip("10.0.0.1"));
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let spoofed: &[(&str, &[u8])] = &[
            ("x-forwarded-for", b"203.0.113.7"),
            ("forwarded", b"for=203.0.113.7"),
        ];
        assert_eq!(client("192.0.2.1", spoofed), "192.0.2.1");
        assert_eq!(client_forwarded("192.0.2.1", spoofed), "192.0.2.1");
    }

    #[test]
    fn x_forwarded_for_is_walked_from_the_right_past_trusted_hops() {
        let xff = |value: &'static str| client("10.0.0.1", &[("x-forwarded-for", value.as_bytes())]);
        assert_eq!(xff("203.0.113.7"), "203.0.113.7");
        assert_eq!(xff("203.0.113.7, 10.1.1.1"), "203.0.113.7");
        assert_eq!(xff("203.0.113.7,10.1.1.1,10.2.2.2"), "203.0.113.7");
        // What the client put in front of its own address does not count, however it looks.
        assert_eq!(xff("198.51.100.1, 203.0.113.7, 10.1.1.1"), "203.0.113.7");
        assert_eq!(xff("not an address, 203.0.113.7"), "203.0.113.7");
        assert_eq!(xff("10.9.9.9, 203.0.113.7"), "203.0.113.7");
        // Every hop trusted: the left-most.
        assert_eq!(xff("10.3.3.3, 10.2.2.2"), "10.3.3.3");
        // Ports and IPv6 as proxies write them; IPv4 in IPv6 form is IPv4.
        assert_eq!(xff("203.0.113.7:4711"), "203.0.113.7");
        assert_eq!(xff("2001:db8::1"), "2001:db8::1");
        assert_eq!(xff("[2001:db8::1]:4711, 10.1.1.1"), "2001:db8::1");
        assert_eq!(xff("[2001:db8::1]"), "2001:db8::1");
        assert_eq!(xff("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(xff("::ffff:10.1.1.1, 203.0.113.7"), "203.0.113.7");
    }

    #[test]
    fn a_malformed_hop_on_the_way_leaves_the_peer() {
        let xff = |value: &'static str| client("10.0.0.1", &[("x-forwarded-for", value.as_bytes())]);
        for bad in [
            "",
            " ",
            "203.0.113.7,",
            "garbage",
            "203.0.113.7, garbage",
            "garbage, 10.1.1.1",
            "203.0.113.7:port",
            "203.0.113.7:123456",
            "[2001:db8::1",
            "[2001:db8::1]x",
            "[203.0.113.7]",
            "fe80::1%eth0",
            "unknown",
            "203.0.113.7 10.1.1.1",
        ] {
            assert_eq!(xff(bad), "10.0.0.1", "{bad:?}");
        }
        let not_ascii = client("10.0.0.1", &[("x-forwarded-for", b"203.0.113.7\xff")]);
        assert_eq!(not_ascii, "10.0.0.1");
    }

    #[test]
    fn forwarded_names_the_client_with_for() {
        let fwd = |value: &'static str| client_forwarded("10.0.0.1", &[("forwarded", value.as_bytes())]);
        assert_eq!(fwd("for=203.0.113.7"), "203.0.113.7");
        assert_eq!(fwd("For=203.0.113.7;proto=https;by=10.0.0.1"), "203.0.113.7");
        assert_eq!(fwd("proto=https; for=203.0.113.7"), "203.0.113.7");
        assert_eq!(fwd("for=\"203.0.113.7:4711\""), "203.0.113.7");
        assert_eq!(fwd("for=\"[2001:db8:cafe::17]:4711\""), "2001:db8:cafe::17");
        assert_eq!(fwd("for=\"[2001:db8:cafe::17]\""), "2001:db8:cafe::17");
        assert_eq!(
            fwd("for=192.0.2.43, for=\"[2001:db8::1]:80\";by=10.0.0.1"),
            "2001:db8::1"
        );
        assert_eq!(fwd("for=203.0.113.7, for=10.2.2.2, for=10.1.1.1"), "203.0.113.7");
        assert_eq!(
            fwd("for=10.3.3.3, for=10.2.2.2"),
            "10.3.3.3",
            "all trusted: the left-most"
        );
        // A quoted string may hold the separators.
        assert_eq!(
            fwd("for=203.0.113.7;ext=\"a,b;c\\\"d\", for=10.1.1.1"),
            "203.0.113.7"
        );
        // Before the client's own hop, anything.
        assert_eq!(fwd("for=unknown;;, garbage==, for=203.0.113.7"), "203.0.113.7");
        // Several lines are one list, in order.
        let lines = client_forwarded(
            "10.0.0.1",
            &[("forwarded", b"for=203.0.113.7"), ("forwarded", b"for=10.1.1.1")],
        );
        assert_eq!(lines, "203.0.113.7");
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let both: &[(&str, &[u8])] = &[
            ("x-forwarded-for", b"198.51.100.1"),
            ("forwarded", b"for=203.0.113.7"),
        ];
        assert_eq!(client("10.0.0.1", both), "198.51.100.1");
        assert_eq!(client_forwarded("10.0.0.1", both), "203.0.113.7");
        // A client's own copy of the other header changes nothing, and is no fallback.
        let only_forwarded: &[(&str, &[u8])] = &[("forwarded", b"for=203.0.113.7")];
        assert_eq!(client("10.0.0.1", only_forwarded), "10.0.0.1");
        let only_xff: &[(&str, &[u8])] = &[("x-forwarded-for", b"198.51.100.1")];
        assert_eq!(client_forwarded("10.0.0.1", only_xff), "10.0.0.1");
    }

    #[test]
    fn a_forwarded_hop_that_names_no_address_leaves_the_peer() {
        let fwd = |value: &'static str| client_forwarded("10.0.0.1", &[("forwarded", value.as_bytes())]);
        for bad in [
            "",
            "for=unknown",
            "for=_hidden",
            "for=\"_hidden:_port\"",
            "proto=https",
            "for=203.0.113.7;for=198.51.100.1",
            "for=\"203.0.113.7",
            "for=\"203.0.113.7\"x",
            "for=203.0.113.7;proto",
            "for=203.0.113.7;=x",
            "for=[2001:db8::1]x",
            "for=203.0.113.7 garbage",
            "for=203.0.113.7, for=unknown",
            "for=203.0.113.7, garbage",
            "for=203.0.113.7, ",
            "for=\"a\\",
        ] {
            assert_eq!(fwd(bad), "10.0.0.1", "{bad:?}");
        }
    }

    #[test]
    fn a_trusted_peer_without_headers_is_the_client() {
        assert_eq!(client("10.0.0.1", &[]), "10.0.0.1");
        assert_eq!(client("::ffff:10.0.0.1", &[]), "10.0.0.1", "IPv4 in IPv6 form");
        assert_eq!(
            client("::ffff:10.0.0.1", &[("x-forwarded-for", b"203.0.113.7")]),
            "203.0.113.7",
            "a dual-stack listener's IPv4 proxy is trusted as IPv4"
        );
    }
}
