//! Where a webhook may be sent. HTTPS only (plain HTTP when `allow_http`), and never to a
//! loopback, private, link-local (cloud metadata), carrier-grade NAT, multicast or unspecified
//! address (unless `allow_private`) — judged on the URL when an endpoint is saved, and again on
//! every address its host resolves to when connecting, since DNS can change in between (rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

use crate::error::{Error, Result};

/// Longest endpoint URL accepted.
const MAX_URL_CHARS: usize = 2048;

/// What the operator allows beyond public HTTPS destinations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    pub allow_http: bool,
    pub allow_private: bool,
}

/// The URL, if an endpoint may have it; else BAD_USER_INPUT on `field`, saying why.
pub fn check_url(field: &str, text: &str, rules: Rules) -> Result<Url> {
    let refuse = |why: &str| Error::bad_input(field, why.to_owned());
    if text.chars().nth(MAX_URL_CHARS).is_some() {
        return Err(refuse("longer than 2048 characters"));
    }
    let url = Url::parse(text.trim()).map_err(|e| refuse(&format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if rules.allow_http => {}
        "http" => {
            return Err(refuse(
                "must be https (plain http is off: PORTCULLIS_WEBHOOK_ALLOW_HTTP)",
            ));
        }
        _ => return Err(refuse("must be an https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(
            "must not carry credentials; the signature authenticates the gateway",
        ));
    }
    if url.fragment().is_some() {
        return Err(refuse("must not have a #fragment"));
    }
    let literal = match url.host() {
        None => return Err(refuse("has no host")),
        Some(Host::Domain(domain)) if is_local_name(domain) => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
    };
    if let Some(ip) = literal
        && !rules.allow_private
        && is_forbidden(ip)
    {
        return Err(refuse(
            "points at a loopback, private or link-local address (PORTCULLIS_WEBHOOK_ALLOW_PRIVATE is off)",
        ));
    }
    Ok(url)
}

/// At connect time: the addresses the gateway may connect to among those the host resolved to
/// (empty when every one is forbidden: the name was rebound to an internal address).
pub fn allowed_addresses(resolved: &[SocketAddr], rules: Rules) -> Vec<SocketAddr> {
    resolved
        .iter()
        .copied()
        .filter(|addr| rules.allow_private || !is_forbidden(addr.ip()))
        .collect()
}

fn is_local_name(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    domain == "localhost" || domain.ends_with(".localhost")
}

/// Addresses no webhook may reach unless private destinations are allowed.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, where cloud metadata services answer
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, 100.64/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments, 192.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, 198.18/15
        || a >= 240 // reserved
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local() // fc00::/7
        || ip.is_unicast_link_local() // fe80::/10
        || first == 0x0064 && ip.segments()[1] == 0xff9b // NAT64 64:ff9b::/96 reaches IPv4 inside
        || first == 0x2002 // 6to4 embeds an IPv4 address
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Rules = Rules {
        allow_http: false,
        allow_private: false,
    };

    #[test]
    fn public_https_urls_are_taken() {
        for url in [
            "https://hooks.example.com/portcullis",
            "https://hooks.example.com:8443/in?team=a",
            "https://93.184.216.34/hook",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
        ] {
            assert!(check_url("url", url, STRICT).is_ok(), "{url}");
        }
    }

    #[test]
    fn private_plain_and_odd_urls_are_refused_naming_the_field() {
        for url in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://user:pass@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "https://localhost/",
            "https://api.localhost./",
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "not a url",
        ] {
            let refused = check_url("url", url, STRICT).expect_err(url);
            assert_eq!(refused.field(), Some("url"), "{url}");
        }
    }

    #[test]
    fn operators_may_allow_http_and_private_destinations() {
        let open = Rules {
            allow_http: true,
            allow_private: true,
        };
        assert!(check_url("url", "http://127.0.0.1:9000/hook", open).is_ok());
        let private: SocketAddr = "10.0.0.7:443".parse().unwrap();
        let public: SocketAddr = "93.184.216.34:443".parse().unwrap();
        assert_eq!(allowed_addresses(&[private, public], STRICT), [public]);
        assert!(
            allowed_addresses(&[private], STRICT).is_empty(),
            "rebinding to a private address"
        );
        assert_eq!(allowed_addresses(&[private], open), [private]);
    }
}
