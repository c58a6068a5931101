//! Configuration from command-line flags and `PORTCULLIS_*` environment variables.
//!
//! Every setting is a flag with a matching environment variable; nothing needs to be set for
//! `cargo run` to work. The variables:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PORTCULLIS_DATABASE_URL` (or `DATABASE_URL`) | `sqlite://portcullis.db` | `sqlite://<path>` or `postgres://…` |
//! | `PORTCULLIS_LISTEN` | `127.0.0.1:8080` | address the HTTP server binds |
//! | `PORTCULLIS_PUBLIC_URL` | `http://<listen>` | URL clients reach the gateway at; token issuer |
//! | `PORTCULLIS_LOG` | `info` | tracing filter, e.g. `portcullis=debug,info` |
//! | `PORTCULLIS_LOG_FORMAT` | `pretty` | `pretty` or `json` |
//! | `PORTCULLIS_ADMIN_EMAIL` / `PORTCULLIS_ADMIN_PASSWORD` | unset | bootstrap super-administrator |
//! | `PORTCULLIS_ACCESS_TOKEN_TTL_SECONDS` | `600` | lifetime of access tokens |
//! | `PORTCULLIS_SESSION_TTL_DAYS` | `30` | lifetime of a login session and its refresh tokens |
//! | `PORTCULLIS_REFRESH_REUSE_GRACE_SECONDS` | `5` | a spent refresh token presented again this soon, by the client that spent it, gets the same successor instead of revoking the session (a retry after a lost answer); `0`: never |
//! | `PORTCULLIS_DB_POOL_SIZE` | `16` | database connections per instance |
//! | `PORTCULLIS_DATABASE_LOCK_TIMEOUT_MS` | `5000` | PostgreSQL `lock_timeout` of every pooled connection (`0`: left to the server) |
//! | `PORTCULLIS_DATABASE_STATEMENT_TIMEOUT_MS` | `30000` | PostgreSQL `statement_timeout` of every pooled connection (`0`: left to the server) |
//! | `PORTCULLIS_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS` | `10000` | PostgreSQL `idle_in_transaction_session_timeout` of every pooled connection (`0`: left to the server) |
//! | `PORTCULLIS_DATABASE_LISTEN_URL` | the database URL | where PostgreSQL LISTEN connections go (direct, when the pool goes through PgBouncer in transaction mode) |
//! | `PORTCULLIS_DATABASE_REPLICA_URLS` | unset | comma-separated PostgreSQL streaming replicas that serve lists, stats and exports once they have replayed what the reader must see (else the primary does) |
//! | `PORTCULLIS_CORS_ORIGINS` | unset | comma-separated origins allowed to call the API from a browser |
//! | `PORTCULLIS_TRUSTED_PROXIES` | unset | comma-separated CIDRs (or addresses) of reverse proxies whose `Forwarded` / `X-Forwarded-For` name the client; unset: the socket peer is the client |
//! | `PORTCULLIS_MAX_BODY_BYTES` | `1048576` | largest accepted request body |
//! | `PORTCULLIS_MAX_BATCH_OPERATIONS` | `10` | most operations in one batched GraphQL request |
//! | `PORTCULLIS_MAX_RESPONSE_BYTES` | `8388608` | largest GraphQL response over HTTP; beyond it the rest of the batch is replaced by an error |
//! | `PORTCULLIS_AUTHZ_POLL_MS` | `500` | how often to pick up policy changes made by other instances |
//! | `PORTCULLIS_AUDIT_RETENTION_DAYS` | `365` | audit events older than this are deleted (hourly, in batches); `0` keeps them forever |
//! | `PORTCULLIS_WS_INIT_TIMEOUT_MS` | `3000` | a WebSocket that sends no `connection_init` within this is closed (4408) |
//! | `PORTCULLIS_WS_MAX_CONNECTIONS_PER_CLIENT` | `100` | open WebSockets per client address; more are refused (HTTP 429) |
//! | `PORTCULLIS_WS_MAX_OPERATIONS` | `100` | operations (subscriptions included) running at once on one WebSocket |
//! | `PORTCULLIS_WS_KEEPALIVE_SECONDS` | `15` | how often a WebSocket is pinged; one that does not answer by the next ping is dropped (`0`: never) |
//! | `PORTCULLIS_SMTP_URL` | unset | `smtps://user:pass@host`, `smtp://user:pass@host:587` (STARTTLS required), `…?tls=opportunistic`, `…?tls=none` (plain text, loopback only); unset: emails are logged with their links |
//! | `PORTCULLIS_EMAIL_FROM` | `portcullis@localhost` | sender address of emails (`Name <address>` also accepted); organizations' branding sets the name |
//! | `PORTCULLIS_SMTP_TIMEOUT_SECONDS` | `15` | longest one email may take to send; a server that takes longer counts as a temporary failure |
//! | `PORTCULLIS_INVITATION_TTL_DAYS` | `7` | how long an invitation link stays valid (1–30) |
//! | `PORTCULLIS_INVITATION_RETENTION_DAYS` | `90` | ended invitations (accepted, revoked, expired) are deleted after this |
//! | `PORTCULLIS_INVITATION_URL` | `<public URL>/invitations/accept` | the page invitation links point at (`?token=…` is appended), for teams that host their own |
//! | `PORTCULLIS_JOB_CONCURRENCY` | `16` | jobs (email deliveries) one instance runs at once |
//! | `PORTCULLIS_JOB_POLL_MS` | `2000` | how often an idle runner looks for due jobs besides being woken |
//! | `PORTCULLIS_JOB_LEASE_SECONDS` | `120` | how long a claimed job is its worker's; a job whose worker died is taken over after this |
//! | `PORTCULLIS_WEBAUTHN_RP_ID` | host of the public URL (`localhost` for a loopback address) | the WebAuthn relying party id passkeys are bound to: a domain, never an IP address |
//! | `PORTCULLIS_WEBAUTHN_ORIGINS` | origin of the public URL | comma-separated origins allowed to run passkey ceremonies (an SPA on another port, say); each must be the RP ID or under it |
//! | `PORTCULLIS_STEP_UP_MINUTES` | `10` | how long a passkey step-up keeps a session MFA-verified |
//! | `PORTCULLIS_PASSKEY_SETUP_LINK_HOURS` | `72` | how long a link to register a first passkey stays valid |

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use clap::{Args, ValueEnum};
use ipnet::IpNet;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Settings shared by every sub-command.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Database URL: `sqlite://<path>` (embedded default) or `postgres://user@host/db`.
    #[arg(long, global = true, env = "PORTCULLIS_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Address to listen on.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,

    /// Public URL of the gateway (issuer of tokens, links in output).
    #[arg(long, global = true, env = "PORTCULLIS_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Log filter in `tracing` syntax.
    #[arg(long, global = true, env = "PORTCULLIS_LOG", default_value = "info")]
    pub log: String,

    /// Log line format.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_LOG_FORMAT",
        value_enum,
        default_value = "pretty"
    )]
    pub log_format: LogFormat,

    /// Email of the bootstrap super-administrator, created at start if no such user exists.
    #[arg(long, global = true, env = "PORTCULLIS_ADMIN_EMAIL")]
    pub admin_email: Option<String>,

    /// Password of the bootstrap super-administrator (used only when creating it).
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_ADMIN_PASSWORD",
        hide_env_values = true
    )]
    pub admin_password: Option<String>,

    /// Lifetime of access tokens, in seconds.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_ACCESS_TOKEN_TTL_SECONDS",
        default_value_t = 600
    )]
    pub access_token_ttl_seconds: u32,

    /// How long, in seconds, a rotated-in signing key is published in the JWKS before any instance
    /// signs with it (the previous key signs until then). Verifiers that cache the JWKS for less
    /// than this never meet a token whose key they have not fetched. 0 switches at once.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_KEY_PUBLISH_SECONDS",
        default_value_t = 600
    )]
    pub key_publish_seconds: u32,

    /// Lifetime of a login session and its refresh tokens, in days.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_SESSION_TTL_DAYS",
        default_value_t = 30
    )]
    pub session_ttl_days: u32,

    /// Seconds after its first use during which the same client may present a refresh token again
    /// and get the same successor (a retry whose first answer was lost) instead of the session
    /// being revoked for reuse; 0 turns this off.
    #[arg(long, global = true, env = "PORTCULLIS_REFRESH_REUSE_GRACE_SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(0..=300))]
    pub refresh_reuse_grace_seconds: u32,

    /// Database connections per instance.
    #[arg(long, global = true, env = "PORTCULLIS_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// PostgreSQL `lock_timeout` of every pooled connection, in milliseconds (0: left to the server).
    #[arg(long, global = true, env = "PORTCULLIS_DATABASE_LOCK_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(i32::MAX)))]
    pub database_lock_timeout_ms: u32,

    /// PostgreSQL `statement_timeout` of every pooled connection, in milliseconds (0: left to the server).
    #[arg(long, global = true, env = "PORTCULLIS_DATABASE_STATEMENT_TIMEOUT_MS", default_value_t = 30000,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(i32::MAX)))]
    pub database_statement_timeout_ms: u32,

    /// PostgreSQL `idle_in_transaction_session_timeout` of every pooled connection, in
    /// milliseconds (0: left to the server).
    #[arg(long, global = true, env = "PORTCULLIS_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", default_value_t = 10000,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(i32::MAX)))]
    pub database_idle_in_transaction_timeout_ms: u32,

    /// Where PostgreSQL LISTEN connections go; defaults to the database URL.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_DATABASE_LISTEN_URL",
        hide_env_values = true
    )]
    pub database_listen_url: Option<String>,

    /// PostgreSQL streaming replicas (comma-separated URLs) that serve lists, stats and exports
    /// once they have replayed what the reader must see.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_DATABASE_REPLICA_URLS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub database_replica_urls: Vec<String>,

    /// Origins allowed to call the API from a browser (comma-separated).
    #[arg(long, global = true, env = "PORTCULLIS_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Reverse proxies trusted to say who the client is (comma-separated CIDRs or addresses): when
    /// the socket peer is one, the client is read from `PORTCULLIS_FORWARDED_HEADER`.
    #[arg(long, global = true, env = "PORTCULLIS_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: TrustedProxies,

    /// The one header trusted proxies name the client in. Only that one is read: a proxy that
    /// maintains one header passes a client's own copy of the other through unchanged.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_FORWARDED_HEADER",
        value_enum,
        default_value = "x-forwarded-for"
    )]
    pub forwarded_header: ForwardedHeader,

    /// How often, in milliseconds, to look for authorization changes made by other instances
    /// (0 turns the check off: a single instance sees its own changes at once).
    #[arg(long, global = true, env = "PORTCULLIS_AUTHZ_POLL_MS", default_value_t = 500)]
    pub authz_poll_ms: u64,

    /// Largest accepted request body, in bytes.
    #[arg(long, global = true, env = "PORTCULLIS_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Most operations in one batched GraphQL request (a JSON array); larger batches are refused.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_MAX_BATCH_OPERATIONS",
        default_value_t = 10
    )]
    pub max_batch_operations: usize,

    /// Largest GraphQL response over HTTP, in bytes; an operation whose result would exceed it is
    /// answered with an error instead.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_MAX_RESPONSE_BYTES",
        default_value_t = 8 * 1024 * 1024
    )]
    pub max_response_bytes: usize,

    /// Days audit events are kept; older ones are deleted by an hourly job (0 keeps them forever).
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_AUDIT_RETENTION_DAYS",
        default_value_t = 365
    )]
    pub audit_retention_days: u32,

    /// Milliseconds a WebSocket gets to send `connection_init` before it is closed with 4408.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_WS_INIT_TIMEOUT_MS",
        default_value_t = 3000
    )]
    pub ws_init_timeout_ms: u64,

    /// Open WebSockets allowed per client address; further upgrades are refused with HTTP 429.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_WS_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 100
    )]
    pub ws_max_connections_per_client: usize,

    /// Operations (subscriptions included) running at once on one WebSocket.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_WS_MAX_OPERATIONS",
        default_value_t = 100
    )]
    pub ws_max_operations: usize,

    /// Seconds between keep-alive pings on a WebSocket (0: none).
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_WS_KEEPALIVE_SECONDS",
        default_value_t = 15
    )]
    pub ws_keepalive_seconds: u64,

    /// Seconds between a shutdown signal and closing WebSockets and the listener: `/readyz` is
    /// 503 meanwhile, so load balancers take the instance out of rotation first.
    #[arg(long, global = true, env = "PORTCULLIS_DRAIN_SECONDS", default_value_t = 5)]
    pub drain_seconds: u64,

    /// SMTP server for outgoing email, e.g. `smtps://user:password@mail.example.com` or
    /// `smtp://user:password@mail.example.com:587` (STARTTLS required); unset: emails are logged.
    #[arg(long, global = true, env = "PORTCULLIS_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Sender address of outgoing email.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_EMAIL_FROM",
        default_value = "portcullis@localhost"
    )]
    pub email_from: String,

    /// Seconds one email may take to send before it counts as a temporary failure.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_SMTP_TIMEOUT_SECONDS",
        default_value_t = 15
    )]
    pub smtp_timeout_seconds: u64,

    /// Days an invitation link stays valid (1–30).
    #[arg(long, global = true, env = "PORTCULLIS_INVITATION_TTL_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(1..=30))]
    pub invitation_ttl_days: u32,

    /// Days ended invitations are kept before they are deleted.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_INVITATION_RETENTION_DAYS",
        default_value_t = 90
    )]
    pub invitation_retention_days: u32,

    /// The page invitation links point at (`?token=…` is appended); defaults to the gateway's own.
    #[arg(long, global = true, env = "PORTCULLIS_INVITATION_URL")]
    pub invitation_url: Option<String>,

    /// Jobs one instance runs at once.
    #[arg(long, global = true, env = "PORTCULLIS_JOB_CONCURRENCY", default_value_t = 16)]
    pub job_concurrency: usize,

    /// Milliseconds between looks for due jobs when nothing wakes the runner.
    #[arg(long, global = true, env = "PORTCULLIS_JOB_POLL_MS", default_value_t = 2000)]
    pub job_poll_ms: u64,

    /// Seconds a claimed job stays its worker's before another may take it over (at least the
    /// SMTP and webhook timeouts plus 15 s).
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_JOB_LEASE_SECONDS",
        default_value_t = 45
    )]
    pub job_lease_seconds: u64,

    /// WebAuthn relying party id (a domain); defaults to the public URL's host.
    #[arg(long, global = true, env = "PORTCULLIS_WEBAUTHN_RP_ID")]
    pub webauthn_rp_id: Option<String>,

    /// Origins allowed to run passkey ceremonies (comma-separated); defaults to the public URL's.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_WEBAUTHN_ORIGINS",
        value_delimiter = ','
    )]
    pub webauthn_origins: Vec<String>,

    /// Minutes a passkey step-up keeps a session MFA-verified.
    #[arg(long, global = true, env = "PORTCULLIS_STEP_UP_MINUTES", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub step_up_minutes: u32,

    /// Hours a link to register a first passkey stays valid.
    #[arg(long, global = true, env = "PORTCULLIS_PASSKEY_SETUP_LINK_HOURS", default_value_t = 72,
          value_parser = clap::value_parser!(u32).range(1..=720))]
    pub passkey_setup_link_hours: u32,

    /// Allow webhook URLs over plain HTTP (else https only).
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_WEBHOOK_ALLOW_HTTP",
        default_value_t = false
    )]
    pub webhook_allow_http: bool,

    /// Allow webhook destinations on loopback, private, link-local and metadata addresses.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_WEBHOOK_ALLOW_PRIVATE",
        default_value_t = false
    )]
    pub webhook_allow_private: bool,

    /// Seconds a webhook receiver has to answer.
    #[arg(long, global = true, env = "PORTCULLIS_WEBHOOK_TIMEOUT_SECONDS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=120))]
    pub webhook_timeout_seconds: u64,

    /// Hours an endpoint may fail without a single success before it is disabled.
    #[arg(long, global = true, env = "PORTCULLIS_WEBHOOK_DISABLE_AFTER_HOURS", default_value_t = 120,
          value_parser = clap::value_parser!(u32).range(1..=8760))]
    pub webhook_disable_after_hours: u32,

    /// Deliveries one endpoint receives at once when it is not ordered.
    #[arg(long, global = true, env = "PORTCULLIS_WEBHOOK_MAX_CONCURRENCY", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub webhook_max_concurrency: u32,
}

impl Config {
    /// The database URL, falling back to plain `DATABASE_URL`, then to the embedded SQLite file.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|url| !url.is_empty()))
            .unwrap_or_else(|| "sqlite://portcullis.db".to_owned())
    }

    /// How pooled PostgreSQL connections are bounded, and where LISTEN connections go.
    pub fn pg_settings(&self) -> crate::db::PgSettings {
        crate::db::PgSettings {
            lock_timeout_ms: self.database_lock_timeout_ms,
            statement_timeout_ms: self.database_statement_timeout_ms,
            idle_in_transaction_timeout_ms: self.database_idle_in_transaction_timeout_ms,
            listen_url: self.database_listen_url.clone(),
            replica_urls: self.database_replica_urls.clone(),
        }
    }

    /// The URL clients use to reach this gateway, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    /// A configuration for tests and embedding: defaults everywhere, the given database.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            database_url: Some(database_url.into()),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            log: "info".to_owned(),
            log_format: LogFormat::Pretty,
            admin_email: None,
            admin_password: None,
            access_token_ttl_seconds: 600,
            key_publish_seconds: 600,
            session_ttl_days: 30,
            refresh_reuse_grace_seconds: 5,
            db_pool_size: 8,
            database_lock_timeout_ms: 5000,
            database_statement_timeout_ms: 30000,
            database_idle_in_transaction_timeout_ms: 10000,
            database_listen_url: None,
            database_replica_urls: Vec::new(),
            cors_origins: Vec::new(),
            trusted_proxies: TrustedProxies::default(),
            forwarded_header: ForwardedHeader::XForwardedFor,
            max_body_bytes: 1024 * 1024,
            max_batch_operations: 10,
            max_response_bytes: 8 * 1024 * 1024,
            authz_poll_ms: 0,
            audit_retention_days: 365,
            ws_init_timeout_ms: 3000,
            ws_max_connections_per_client: 100,
            ws_max_operations: 100,
            ws_keepalive_seconds: 15,
            drain_seconds: 5,
            smtp_url: None,
            email_from: "portcullis@localhost".to_owned(),
            smtp_timeout_seconds: 15,
            invitation_ttl_days: 7,
            invitation_retention_days: 90,
            invitation_url: None,
            job_concurrency: 16,
            job_poll_ms: 2000,
            job_lease_seconds: 45,
            webauthn_rp_id: None,
            webauthn_origins: Vec::new(),
            step_up_minutes: 10,
            passkey_setup_link_hours: 72,
            webhook_allow_http: false,
            webhook_allow_private: false,
            webhook_timeout_seconds: 15,
            webhook_disable_after_hours: 120,
            webhook_max_concurrency: 4,
        }
    }
}

/// The networks of the reverse proxies whose forwarding headers are believed
/// (`PORTCULLIS_TRUSTED_PROXIES`): empty, nobody's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// The header a trusted proxy writes the client's address in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1` (nginx's `$proxy_add_x_forwarded_for`, HAProxy's
    /// `option forwardfor`).
    #[value(name = "x-forwarded-for")]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    #[value(name = "forwarded")]
    Forwarded,
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of them (an IPv4 address in IPv6 form counts as the IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// Comma-separated CIDRs (`10.0.0.0/8`, `2001:db8::/32`) or single addresses (`10.1.2.3`),
    /// blanks around them ignored. Anything else is refused, naming the setting.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut nets = Vec::new();
        for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip.to_canonical()),
                    Err(_) => {
                        return Err(format!(
                            "PORTCULLIS_TRUSTED_PROXIES: `{item}` is neither a CIDR (like 10.0.0.0/8) \
                             nor an IP address"
                        ));
                    }
                },
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nets: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&nets.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        let trusted: TrustedProxies = " 127.0.0.1/32, 10.0.0.0/8,,2001:db8::/32, 192.0.2.7 "
            .parse()
            .unwrap();
        assert_eq!(
            trusted.to_string(),
            "127.0.0.1/32,10.0.0.0/8,2001:db8::/32,192.0.2.7/32"
        );
        assert!(trusted.contains("10.200.0.1".parse().unwrap()));
        assert!(
            trusted.contains("::ffff:10.1.1.1".parse().unwrap()),
            "IPv4-mapped"
        );
        assert!(trusted.contains("2001:db8:1::5".parse().unwrap()));
        assert!(trusted.contains("192.0.2.7".parse().unwrap()));
        assert!(!trusted.contains("192.0.2.8".parse().unwrap()));
        assert!(!trusted.contains("127.0.0.2".parse().unwrap()));
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        assert_eq!(
            "10.0.0.1/8".parse::<TrustedProxies>().unwrap().to_string(),
            "10.0.0.0/8",
            "host bits are dropped"
        );
        for bad in ["10.0.0.0/33", "localhost", "10.0.0.0/8;", "*"] {
            let refused = bad.parse::<TrustedProxies>().unwrap_err();
            assert!(refused.contains("PORTCULLIS_TRUSTED_PROXIES"), "{refused}");
            assert!(refused.contains(bad), "{refused}");
        }
    }
}
