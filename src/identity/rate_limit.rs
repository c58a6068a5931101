//! Attempt-counting rate limits for credential checks: logins (per account and client, and per
//! account from anywhere), token refreshes and API keys (per client), invitation tokens and
//! passkey assertions (per client).
//!
//! An attempt is counted *before* the credential is checked and handed back only once it proved
//! right, so concurrent attempts — the operations of one batch, or the aliases of one — cannot all
//! pass the check before the first failure is counted. When a key's budget is spent it is locked
//! for a while; the caller learns when the lock was set, to audit it.
//!
//! API keys, which a service presents on every request, take a cheaper path to the same bound
//! ([`AttemptLimiter::admit`]): a read refuses a locked client before anything is looked up, and
//! only wrong keys are counted — a wrong key is answered as such only once its failure was counted
//! within the budget. Counting and handing back every right key would be two writes on one row for
//! each request a service makes.
//!
//! **Shared across instances.** The counts live in the database (`db::credential_attempts`), not
//! in this process: every instance on one database spends the same budget, so N instances behind
//! a load balancer allow no more guesses than one, and nothing is cached here that could let them
//! exceed it. Each step is one statement on a pooled connection of its own, never inside the
//! caller's transaction: a request that rolls back must not un-count its attempt. Keys are stored
//! as SHA-256 hashes. Expired rows are deleted by the periodic sweeps (`jobs::periodic`).
//!
//! **Fail closed.** When an attempt cannot be counted (the database is unreachable or gives up),
//! the error is returned and the credential is not checked. Handing an attempt back is best
//! effort: if that fails the attempt stays counted, the safe side, and the failure is logged.
//!
//! **Time** is the application's clock, passed in as `now`, like every other expiry the gateway
//! stores (sessions, tokens, invitations, ceremonies), so that tests move it. Instances are
//! expected to keep their clocks in step (NTP) as they already must for token expiry; an instance
//! whose clock is off by a few seconds starts or ends a window that much early or late, but as the
//! count itself is shared, it cannot multiply the budget.

use chrono::TimeDelta;

use super::secrets;
use crate::db::credential_attempts::{self, Counted};
use crate::db::{Db, Timestamp};
use crate::error::{Error, Result};

/// One counted attempt; hand it back with [`AttemptLimiter::refund`], [`AttemptLimiter::reset`]
/// or [`AttemptLimiter::failed`]. Dropped, it stays counted (a cancelled check is no free guess).
#[derive(Debug)]
#[must_use = "an attempt stays counted unless handed back"]
pub struct Reservation {
    key_hash: Vec<u8>,
    /// The window the attempt was counted in: a refund goes back to it, not to a later one.
    window_started: Timestamp,
    /// This attempt took the last of the budget: failing, it locks the key.
    last: bool,
}

/// At most `max` counted attempts per key within `window`; the attempt that spends the budget
/// and fails locks the key for `lockout`.
#[derive(Debug)]
pub struct AttemptLimiter {
    /// The limiter's name in the database (`credential_attempts.limiter`).
    name: &'static str,
    max: i32,
    window: TimeDelta,
    lockout: TimeDelta,
}

impl AttemptLimiter {
    pub fn new(name: &'static str, max: u32, window: TimeDelta, lockout: TimeDelta) -> Self {
        Self {
            name,
            max: i32::try_from(max.max(1)).unwrap_or(i32::MAX),
            window,
            lockout,
        }
    }

    /// Counts one attempt for `key`, or RATE_LIMITED when its budget is spent or it is locked.
    /// A database failure is returned as it is: nothing may be checked that was not counted.
    pub async fn reserve(&self, db: &Db, key: &str, now: Timestamp) -> Result<Reservation> {
        let key_hash = secrets::sha256(key.as_bytes());
        let mut conn = db.conn().await?;
        let counted =
            credential_attempts::count(&mut conn, self.name, &key_hash, self.max, self.window, now).await?;
        match counted {
            Counted::Yes {
                window_started,
                attempts,
            } => Ok(Reservation {
                key_hash,
                window_started,
                last: attempts == self.max,
            }),
            // Refused because of the lock, or because the last attempts are still being checked.
            Counted::Refused { until } => Err(rate_limited(until.unwrap_or(now), now)),
        }
    }

    /// The attempt proved right: it is not counted.
    pub async fn refund(&self, db: &Db, reservation: Reservation) {
        let handed_back = async {
            let mut conn = db.conn().await?;
            credential_attempts::hand_back(
                &mut conn,
                self.name,
                &reservation.key_hash,
                reservation.window_started,
            )
            .await
        };
        self.log_failure(handed_back.await, "refunding an attempt");
    }

    /// The attempt proved right and the key starts afresh (earlier failures forgotten).
    pub async fn reset(&self, db: &Db, reservation: Reservation) {
        let forgotten = async {
            let mut conn = db.conn().await?;
            credential_attempts::forget(&mut conn, self.name, &reservation.key_hash).await
        };
        self.log_failure(forgotten.await, "resetting a key");
    }

    /// The attempt failed and stays counted. When it spent the budget, the key is locked: the
    /// instant the lock ends is returned, once per lock (across all instances).
    ///
    /// Should the lock not be written, the budget is still spent: no attempt is counted for this
    /// key until its window ends.
    pub async fn failed(&self, db: &Db, reservation: Reservation, now: Timestamp) -> Option<Timestamp> {
        if !reservation.last {
            return None;
        }
        let until = now + self.lockout;
        let locked = async {
            let mut conn = db.conn().await?;
            credential_attempts::lock(&mut conn, self.name, &reservation.key_hash, until, now).await
        };
        match locked.await {
            Ok(true) => Some(until),
            Ok(false) => None,
            Err(error) => {
                self.log_failure(Err(error), "locking a key");
                None
            }
        }
    }

    /// For credentials presented on every request a service makes (API keys), where counting
    /// each right one would cost two writes on one row per request: refuses a locked or spent key
    /// with one read, before the credential is looked up. Only wrong credentials are counted, after
    /// the check, by [`Self::count_failure`] — whose refusal the caller answers instead of the
    /// verdict, so that no more wrong answers reach a client than its budget allows, however many
    /// arrive at once.
    pub async fn admit(&self, db: &Db, key: &str, now: Timestamp) -> Result<()> {
        let key_hash = secrets::sha256(key.as_bytes());
        let mut conn = db.conn().await?;
        match credential_attempts::refused_until(&mut conn, self.name, &key_hash, self.max, now).await? {
            Some(until) => Err(rate_limited(until, now)),
            None => Ok(()),
        }
    }

    /// Counts an attempt found wrong (see [`Self::admit`]): RATE_LIMITED when the budget was
    /// already spent — the caller answers that, not that the credential was wrong — else the end of
    /// the lock this failure began, if it did.
    pub async fn count_failure(&self, db: &Db, key: &str, now: Timestamp) -> Result<Option<Timestamp>> {
        let reservation = self.reserve(db, key, now).await?;
        Ok(self.failed(db, reservation, now).await)
    }

    fn log_failure(&self, outcome: Result<()>, what: &'static str) {
        if let Err(error) = outcome {
            tracing::warn!(limiter = self.name, error = ?error, "{what} failed; the attempt stays counted");
        }
    }
}

fn rate_limited(until: Timestamp, now: Timestamp) -> Error {
    Error::RateLimited {
        retry_after_secs: (until.0 - now.0).num_seconds().max(1).unsigned_abs(),
    }
}

/// The limits the gateway applies.
#[derive(Debug)]
pub struct RateLimits {
    /// Login attempts per account and client address: 10 failures, then 15 minutes' pause.
    pub login: AttemptLimiter,
    /// Login attempts per account from any address: 50 failures within 15 minutes lock the
    /// account's logins for 15 minutes (audited as `session.login_locked`).
    pub login_account: AttemptLimiter,
    /// Rejected refresh tokens per client address: 30 per 5 minutes.
    pub refresh: AttemptLimiter,
    /// Wrong API keys per client address: 30 per 5 minutes.
    pub api_key: AttemptLimiter,
    /// Invitation tokens that open nothing, per client: guessing links is throttled.
    pub invitation_token: AttemptLimiter,
    /// Failed passkey assertions (sign-in and step-up), per client.
    pub passkey: AttemptLimiter,
}

impl Default for RateLimits {
    fn default() -> Self {
        let minutes = TimeDelta::minutes;
        Self {
            login: AttemptLimiter::new("login", 10, minutes(15), minutes(15)),
            login_account: AttemptLimiter::new("login_account", 50, minutes(15), minutes(15)),
            refresh: AttemptLimiter::new("refresh", 30, minutes(5), minutes(5)),
            api_key: AttemptLimiter::new("api_key", 30, minutes(5), minutes(5)),
            invitation_token: AttemptLimiter::new("invitation_token", 20, minutes(15), minutes(15)),
            passkey: AttemptLimiter::new("passkey", 10, minutes(15), minutes(15)),
        }
    }
}

/// A login attempt, counted against the account and the (account, client) pair.
#[must_use = "an attempt stays counted unless handed back"]
pub struct LoginAttempt<'a> {
    limits: &'a RateLimits,
    db: &'a Db,
    client: Reservation,
    account: Reservation,
}

impl RateLimits {
    /// Counts a login attempt for `email` (already validated) from `ip`, or RATE_LIMITED.
    pub async fn login_attempt<'a>(
        &'a self,
        db: &'a Db,
        email: &str,
        ip: Option<&str>,
        now: Timestamp,
    ) -> Result<LoginAttempt<'a>> {
        let account = self.login_account.reserve(db, email, now).await?;
        let client_key = format!("{}|{email}", ip.unwrap_or("-"));
        let client = match self.login.reserve(db, &client_key, now).await {
            Ok(client) => client,
            Err(refused) => {
                self.login_account.refund(db, account).await;
                return Err(refused);
            }
        };
        Ok(LoginAttempt {
            limits: self,
            db,
            client,
            account,
        })
    }
}

impl LoginAttempt<'_> {
    /// The password was right: this client starts afresh; the account's count is left as it is
    /// (a success elsewhere must not reset the budget of someone guessing from many addresses).
    pub async fn succeeded(self) {
        self.limits.login.reset(self.db, self.client).await;
        self.limits.login_account.refund(self.db, self.account).await;
    }

    /// The attempt failed. Returns the end of the account's lockout when this failure began it.
    pub async fn failed(self, now: Timestamp) -> Option<Timestamp> {
        let _ = self.limits.login.failed(self.db, self.client, now).await;
        self.limits.login_account.failed(self.db, self.account, now).await
    }
}
