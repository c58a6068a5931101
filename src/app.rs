//! The application: database, configuration, clock and keys, built once and passed down.

use std::sync::Arc;

use chrono::TimeDelta;

use crate::audit::feed::Feed;
use crate::audit::sequencer::Sequencer;
use crate::authz::engine::{self, Engine};
use crate::clock::Clock;
use crate::config::Config;
use crate::db::{self, Db, Timestamp};
use crate::email::Mailer;
use crate::error::Result;
use crate::identity::live_credentials::LiveCredentials;
use crate::identity::rate_limit::RateLimits;
use crate::identity::tokens::KeyRing;
use crate::identity::{bootstrap, key_sync};
use crate::passkeys::RelyingParty;

/// Everything a request, a job or a CLI command needs. Cheap to clone; never global.
#[derive(Clone)]
pub struct App {
    pub db: Db,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyRing>,
    /// The credential rate limits: their rules here, their counts in the database (shared by every
    /// instance on it).
    pub limits: Arc<RateLimits>,
    /// Sessions and API keys confirmed live in the last second.
    pub credentials: Arc<LiveCredentials>,
    pub engine: Arc<Engine>,
    /// The live audit feed of this process.
    pub audit_feed: Arc<Feed>,
    /// Positions committed audit events (PostgreSQL); readers settle it to read their own writes.
    pub audit_sequencer: Arc<Sequencer>,
    /// Audit exports running at once (each holds a pooled connection while it is downloaded).
    pub export_slots: Arc<tokio::sync::Semaphore>,
    /// Sends email: over SMTP when configured, else into the log.
    pub mailer: Arc<Mailer>,
    /// The WebAuthn relying party passkeys are bound to.
    pub passkeys: Arc<RelyingParty>,
    /// Delivers webhooks and tells live views about each attempt.
    pub webhooks: Arc<crate::webhooks::Webhooks>,
}

impl App {
    /// Connects, applies pending migrations, loads the signing keys and bootstraps the admin (on
    /// PostgreSQL under the start-up lock, one instance at a time).
    pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<Self> {
        // Checked before anything else: a relying party passkeys cannot work with stops the start.
        let passkeys = RelyingParty::from_config(&config)?;
        let db = Db::connect_with(&config.database_url(), config.db_pool_size, &config.pg_settings())?;
        // Instances started together on one database take turns: migrations, the first signing
        // key and the bootstrap administrator are made once.
        let starting = db::startup_lock(&db).await?;
        let applied = db::run_migrations(&db).await?;
        for name in &applied {
            tracing::info!(migration = %name, "applied migration");
        }
        let decoy_key = {
            let candidate = crate::identity::secrets::random_bytes::<32>()?;
            let mut conn = db.conn().await?;
            db::gateway_secrets::get_or_create(&mut conn, "passkey_decoys", &candidate).await?
        };
        let passkeys = Arc::new(passkeys.with_decoy_key(&decoy_key)?);
        let now = Timestamp(clock.now());
        let ttl = TimeDelta::seconds(i64::from(config.access_token_ttl_seconds));
        let publish_delay = TimeDelta::seconds(i64::from(config.key_publish_seconds));
        let keys = Arc::new(KeyRing::load(&db, now, config.public_url(), ttl, publish_delay).await?);
        key_sync::spawn(&keys, db.clone(), clock.clone());
        let engine = Arc::new(Engine::load(&db).await?);
        engine::spawn_listener(&engine, db.clone());
        if config.authz_poll_ms > 0 {
            let period = std::time::Duration::from_millis(config.authz_poll_ms);
            engine::spawn_refresher(&engine, db.clone(), period);
        }
        let audit_sequencer = Arc::new(Sequencer::new(db.clone()));
        let audit_feed = Feed::start(db.clone(), audit_sequencer.clone()).await?;
        let mailer = Arc::new(Mailer::configured(&config)?);
        let webhooks = Arc::new(crate::webhooks::Webhooks::configured(&config)?);
        let app = Self {
            webhooks,
            passkeys,
            mailer,
            audit_feed,
            audit_sequencer,
            export_slots: Arc::new(tokio::sync::Semaphore::new((config.db_pool_size / 4).max(2))),
            db,
            config: Arc::new(config),
            clock,
            keys,
            limits: Arc::new(RateLimits::default()),
            credentials: Arc::default(),
            engine,
        };
        bootstrap::run(&app).await?;
        starting.release().await?;
        Ok(app)
    }

    /// Now, by the application's clock.
    pub fn now(&self) -> Timestamp {
        Timestamp(self.clock.now())
    }

    pub fn session_ttl(&self) -> TimeDelta {
        TimeDelta::days(i64::from(self.config.session_ttl_days))
    }
}
