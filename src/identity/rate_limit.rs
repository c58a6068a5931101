//! Attempt-counting rate limits for credential checks: logins (per account and client, and per
//! account from anywhere), token refreshes and API keys (per client).
//!
//! An attempt is counted *before* the credential is checked and handed back only once it proved
//! right, so concurrent attempts — the operations of one batch, or the aliases of one — cannot all
//! pass the check before the first failure is counted. When a key's budget is spent it is locked
//! for a while; the caller learns when the lock was set, to audit it.
//!
//! Counts live in this process: with several instances each enforces its own budget, which still
//! caps guessing at a small multiple. Memory is bounded: expired windows are pruned, and past the
//! capacity the oldest unlocked windows make room.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::TimeDelta;

use crate::db::Timestamp;
use crate::error::{Error, Result};

/// Keys each limiter keeps at most.
const CAPACITY: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Timestamp,
    /// Attempts counted in this window: failed ones and those still being checked.
    attempts: u32,
    locked_until: Option<Timestamp>,
}

impl Window {
    fn fresh(now: Timestamp) -> Self {
        Self {
            started: now,
            attempts: 0,
            locked_until: None,
        }
    }
}

/// One counted attempt; hand it back with [`AttemptLimiter::refund`], [`AttemptLimiter::reset`]
/// or [`AttemptLimiter::failed`]. Dropped, it stays counted (a cancelled check is no free guess).
#[derive(Debug)]
#[must_use = "an attempt stays counted unless handed back"]
pub struct Reservation {
    key: String,
    /// This attempt took the last of the budget: failing, it locks the key.
    last: bool,
}

/// At most `max` counted attempts per key within `window`; the attempt that spends the budget
/// and fails locks the key for `lockout`.
#[derive(Debug)]
pub struct AttemptLimiter {
    max: u32,
    window: TimeDelta,
    lockout: TimeDelta,
    capacity: usize,
    windows: Mutex<HashMap<String, Window>>,
}

impl AttemptLimiter {
    pub fn new(max: u32, window: TimeDelta, lockout: TimeDelta) -> Self {
        Self::with_capacity(max, window, lockout, CAPACITY)
    }

    fn with_capacity(max: u32, window: TimeDelta, lockout: TimeDelta, capacity: usize) -> Self {
        Self {
            max: max.max(1),
            window,
            lockout,
            capacity: capacity.max(10),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one attempt for `key`, or RATE_LIMITED when its budget is spent or it is locked.
    pub fn reserve(&self, key: &str, now: Timestamp) -> Result<Reservation> {
        let mut windows = self.lock();
        if !windows.contains_key(key) && windows.len() >= self.capacity {
            self.make_room(&mut windows, now);
        }
        let window = windows
            .entry(key.to_owned())
            .or_insert_with(|| Window::fresh(now));
        match window.locked_until {
            Some(until) if until > now => return Err(rate_limited(until, now)),
            Some(_) => *window = Window::fresh(now),
            None if window.started + self.window <= now => *window = Window::fresh(now),
            None => {}
        }
        if window.attempts >= self.max {
            // The last attempts are still being checked.
            return Err(rate_limited(window.started + self.window, now));
        }
        window.attempts += 1;
        Ok(Reservation {
            key: key.to_owned(),
            last: window.attempts == self.max,
        })
    }

    /// The attempt proved right: it is not counted.
    pub fn refund(&self, reservation: Reservation) {
        if let Some(window) = self.lock().get_mut(&reservation.key) {
            window.attempts = window.attempts.saturating_sub(1);
        }
    }

    /// The attempt proved right and the key starts afresh (earlier failures forgotten).
    pub fn reset(&self, reservation: Reservation) {
        self.lock().remove(&reservation.key);
    }

    /// The attempt failed and stays counted. When it spent the budget, the key is locked: the
    /// instant the lock ends is returned, once per lock.
    pub fn failed(&self, reservation: Reservation, now: Timestamp) -> Option<Timestamp> {
        if !reservation.last {
            return None;
        }
        let mut windows = self.lock();
        let window = windows.get_mut(&reservation.key)?;
        if window.locked_until.is_some_and(|until| until > now) {
            return None;
        }
        let until = now + self.lockout;
        window.locked_until = Some(until);
        Some(until)
    }

    /// Drops ended windows; if that is not enough, the oldest tenth (unlocked ones first).
    fn make_room(&self, windows: &mut HashMap<String, Window>, now: Timestamp) {
        let span = self.window;
        windows.retain(|_, w| match w.locked_until {
            Some(until) => until > now,
            None => w.started + span > now,
        });
        if windows.len() < self.capacity {
            return;
        }
        let mut oldest: Vec<(bool, Timestamp, String)> = windows
            .iter()
            .map(|(key, w)| (w.locked_until.is_some(), w.started, key.clone()))
            .collect();
        let evict = (self.capacity / 10).max(1).min(oldest.len());
        oldest.select_nth_unstable_by(evict - 1, |a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (_, _, key) in oldest.into_iter().take(evict) {
            windows.remove(&key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        self.windows.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
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
        Self {
            login: AttemptLimiter::new(10, TimeDelta::minutes(15), TimeDelta::minutes(15)),
            login_account: AttemptLimiter::new(50, TimeDelta::minutes(15), TimeDelta::minutes(15)),
            refresh: AttemptLimiter::new(30, TimeDelta::minutes(5), TimeDelta::minutes(5)),
            api_key: AttemptLimiter::new(30, TimeDelta::minutes(5), TimeDelta::minutes(5)),
            invitation_token: AttemptLimiter::new(20, TimeDelta::minutes(15), TimeDelta::minutes(15)),
            passkey: AttemptLimiter::new(10, TimeDelta::minutes(15), TimeDelta::minutes(15)),
        }
    }
}

/// A login attempt, counted against the account and the (account, client) pair.
#[derive(Debug)]
#[must_use = "an attempt stays counted unless handed back"]
pub struct LoginAttempt<'a> {
    limits: &'a RateLimits,
    client: Reservation,
    account: Reservation,
}

impl RateLimits {
    /// Counts a login attempt for `email` (already validated) from `ip`, or RATE_LIMITED.
    pub fn login_attempt(&self, email: &str, ip: Option<&str>, now: Timestamp) -> Result<LoginAttempt<'_>> {
        let account = self.login_account.reserve(email, now)?;
        let client = match self.login.reserve(&format!("{}|{email}", ip.unwrap_or("-")), now) {
            Ok(client) => client,
            Err(refused) => {
                self.login_account.refund(account);
                return Err(refused);
            }
        };
        Ok(LoginAttempt {
            limits: self,
            client,
            account,
        })
    }
}

impl LoginAttempt<'_> {
    /// The password was right: this client starts afresh; the account's count is left as it is
    /// (a success elsewhere must not reset the budget of someone guessing from many addresses).
    pub fn succeeded(self) {
        self.limits.login.reset(self.client);
        self.limits.login_account.refund(self.account);
    }

    /// The attempt failed. Returns the end of the account's lockout when this failure began it.
    pub fn failed(self, now: Timestamp) -> Option<Timestamp> {
        let _ = self.limits.login.failed(self.client, now);
        self.limits.login_account.failed(self.account, now)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn at(minute: u32) -> Timestamp {
        Timestamp(Utc.with_ymd_and_hms(2026, 1, 1, 0, minute, 0).unwrap())
    }

    #[test]
    fn attempts_are_counted_before_their_outcome_is_known() {
        let limiter = AttemptLimiter::new(3, TimeDelta::minutes(15), TimeDelta::minutes(10));
        let held: Vec<Reservation> = (0..3).map(|_| limiter.reserve("k", at(0)).unwrap()).collect();
        assert!(matches!(
            limiter.reserve("k", at(0)),
            Err(Error::RateLimited { .. })
        ));
        let mut held = held.into_iter();
        limiter.refund(held.next().unwrap());
        let again = limiter.reserve("k", at(0)).unwrap();
        assert_eq!(
            limiter.failed(held.next().unwrap(), at(1)),
            None,
            "not the last attempt"
        );
        assert_eq!(limiter.failed(held.next().unwrap(), at(1)), Some(at(11)));
        assert_eq!(limiter.failed(again, at(1)), None, "locked once");
        assert!(matches!(
            limiter.reserve("k", at(10)),
            Err(Error::RateLimited { retry_after_secs: 60 })
        ));
        assert!(limiter.reserve("k", at(11)).is_ok(), "the lockout ends");
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = AttemptLimiter::with_capacity(5, TimeDelta::minutes(15), TimeDelta::minutes(15), 100);
        for i in 0..1_000 {
            let reservation = limiter.reserve(&format!("junk-{i}"), at(0)).unwrap();
            let _ = limiter.failed(reservation, at(0));
        }
        assert!(limiter.len() <= 100, "{} keys kept", limiter.len());
    }
}
