//! The WebAuthn relying party: the RP ID passkeys are bound to and the origins that may speak for it.

use std::net::IpAddr;

use webauthn_rs::fake::{FakePasskeyDistribution, WebauthnFakeCredentialGenerator};
use webauthn_rs::prelude::Url;
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::config::Config;
use crate::error::{Error, Result};

const RP_ID_VAR: &str = "PORTCULLIS_WEBAUTHN_RP_ID";
const ORIGINS_VAR: &str = "PORTCULLIS_WEBAUTHN_ORIGINS";

/// webauthn-rs configured for this gateway.
pub struct RelyingParty {
    pub webauthn: Webauthn,
    pub rp_id: String,
    pub origins: Vec<Url>,
    /// Makes up credential ids for emails without passkeys, keyed by a secret every instance
    /// shares ([`RelyingParty::with_decoy_key`]), so the made-up answer for an email is the same
    /// wherever and whenever it is asked.
    decoys: WebauthnFakeCredentialGenerator<FakePasskeyDistribution>,
}

impl RelyingParty {
    /// From the public URL, or the explicit RP ID and origins. A configuration passkeys cannot
    /// work with — an IP address as RP ID, an origin outside the RP ID, plain HTTP off localhost —
    /// is refused here, at start, rather than at the first ceremony.
    pub fn from_config(config: &Config) -> Result<Self> {
        let public = Url::parse(&config.public_url())
            .map_err(|e| Error::bad_input("PORTCULLIS_PUBLIC_URL", format!("not a URL: {e}")))?;
        let public = browser_facing(public);
        let (rp_id, rp_var) = match &config.webauthn_rp_id {
            Some(id) => (id.trim().to_ascii_lowercase(), RP_ID_VAR),
            None => (
                public.host_str().unwrap_or_default().to_ascii_lowercase(),
                "PORTCULLIS_PUBLIC_URL",
            ),
        };
        if rp_id.is_empty() {
            return Err(Error::bad_input(rp_var, "no host to use as the WebAuthn RP ID"));
        }
        if rp_id.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
            return Err(Error::bad_input(
                rp_var,
                format!(
                    "`{rp_id}` is an IP address, which cannot be a WebAuthn RP ID: set {RP_ID_VAR} to a \
                     domain name (and serve the gateway under it)"
                ),
            ));
        }
        let origins = match config.webauthn_origins.as_slice() {
            [] => vec![public.clone()],
            listed => listed
                .iter()
                .map(|origin| {
                    Url::parse(origin.trim())
                        .map_err(|e| Error::bad_input(ORIGINS_VAR, format!("`{origin}` is not a URL: {e}")))
                })
                .collect::<Result<_>>()?,
        };
        for origin in &origins {
            check_origin(origin, &rp_id)?;
        }
        let Some((first, more)) = origins.split_first() else {
            return Err(Error::bad_input(ORIGINS_VAR, "at least one origin is needed"));
        };
        let mut builder = WebauthnBuilder::new(&rp_id, first)
            .map_err(|e| Error::bad_input(rp_var, format!("refused by webauthn-rs: {e}")))?
            .rp_name("portcullis");
        for origin in more {
            builder = builder.append_allowed_origin(origin);
        }
        let webauthn = builder
            .build()
            .map_err(|e| Error::bad_input(ORIGINS_VAR, format!("refused by webauthn-rs: {e}")))?;
        let key = crate::identity::secrets::random_bytes::<32>()?;
        let decoys = WebauthnFakeCredentialGenerator::new(&key).map_err(Error::internal)?;
        Ok(Self {
            webauthn,
            rp_id,
            origins,
            decoys,
        })
    }

    /// The same relying party, making up credential ids with `key` (the gateway's shared secret).
    pub fn with_decoy_key(mut self, key: &[u8]) -> Result<Self> {
        self.decoys = WebauthnFakeCredentialGenerator::new(key).map_err(Error::internal)?;
        Ok(self)
    }

    /// Believable credential ids for an email that has no passkey (the same every time). Never
    /// none: a real account's list is never empty here, since accounts without a passkey get
    /// decoys too — an empty list would give the unknown email away.
    pub fn decoys(&self, email: &str) -> Result<Vec<Vec<u8>>> {
        for salt in 0..16u8 {
            let seed = [email.as_bytes(), &[salt]].concat();
            let made_up = self.decoys.generate(&seed).map_err(Error::internal)?;
            if !made_up.is_empty() {
                return Ok(made_up);
            }
        }
        Ok(vec![crate::identity::secrets::sha256(email.as_bytes())])
    }
}

/// Browsers run WebAuthn on `localhost` but never on a loopback IP: a gateway reached at
/// `http://127.0.0.1:…` (the default) is offered to browsers as `http://localhost:…`.
fn browser_facing(mut public: Url) -> Url {
    let loopback = public
        .host_str()
        .and_then(|host| host.trim_matches(['[', ']']).parse::<IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback());
    if loopback {
        let _ = public.set_host(Some("localhost"));
    }
    public
}

fn check_origin(origin: &Url, rp_id: &str) -> Result<()> {
    let host = origin.host_str().unwrap_or_default().to_ascii_lowercase();
    let under = host == rp_id || host.ends_with(&format!(".{rp_id}"));
    if !under {
        return Err(Error::bad_input(
            ORIGINS_VAR,
            format!(
                "origin `{origin}` is not under the RP ID `{rp_id}`: browsers would refuse every ceremony"
            ),
        ));
    }
    if origin.scheme() != "https" && host != "localhost" {
        return Err(Error::bad_input(
            ORIGINS_VAR,
            format!("origin `{origin}` is plain HTTP: WebAuthn needs HTTPS (or localhost)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(public: &str, rp_id: Option<&str>, origins: &[&str]) -> Config {
        let mut config = Config::for_database("sqlite://unused.db");
        config.public_url = Some(public.to_owned());
        config.webauthn_rp_id = rp_id.map(str::to_owned);
        config.webauthn_origins = origins.iter().map(|o| (*o).to_owned()).collect();
        config
    }

    fn refusal(config: &Config) -> String {
        match RelyingParty::from_config(config) {
            Ok(_) => panic!("accepted"),
            Err(error) => error.message(),
        }
    }

    #[test]
    fn the_public_url_gives_the_rp_id_and_origin() {
        let rp = RelyingParty::from_config(&config("https://auth.example.com", None, &[])).unwrap();
        assert_eq!(rp.rp_id, "auth.example.com");
        assert_eq!(rp.origins[0].as_str(), "https://auth.example.com/");

        let local = RelyingParty::from_config(&config("http://127.0.0.1:8080", None, &[])).unwrap();
        assert_eq!(local.rp_id, "localhost");
        assert_eq!(local.origins[0].as_str(), "http://localhost:8080/");
    }

    #[test]
    fn several_origins_under_one_rp_id() {
        let rp = RelyingParty::from_config(&config(
            "https://auth.example.com",
            Some("example.com"),
            &["https://auth.example.com", "https://app.example.com:8443"],
        ))
        .unwrap();
        assert_eq!(rp.rp_id, "example.com");
        assert_eq!(rp.origins.len(), 2);
    }

    #[test]
    fn misconfigurations_are_refused_with_the_variable_named() {
        let ip = refusal(&config("https://10.0.0.5", None, &[]));
        assert!(
            ip.contains("IP address") && ip.starts_with("PORTCULLIS_PUBLIC_URL"),
            "{ip}"
        );
        let explicit_ip = refusal(&config("https://auth.example.com", Some("192.168.1.1"), &[]));
        assert!(explicit_ip.starts_with(RP_ID_VAR), "{explicit_ip}");
        let outside = refusal(&config(
            "https://auth.example.com",
            None,
            &["https://evil.example.net"],
        ));
        assert!(outside.contains("not under the RP ID"), "{outside}");
        let plain = refusal(&config("http://auth.example.com", None, &[]));
        assert!(plain.contains("HTTPS"), "{plain}");
    }
}
