//! Failure-counting rate limits for credential checks (login, refresh), per client and account.
//!
//! Counts live in this process: with several instances each enforces its own budget, which still
//! caps guessing at a small multiple. Memory is bounded by pruning windows that have ended.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::TimeDelta;

use crate::db::Timestamp;
use crate::error::{Error, Result};

/// Entries kept before expired windows are pruned.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Timestamp,
    failures: u32,
}

/// At most `max_failures` failures per key within `window`; further attempts are refused until
/// the window ends.
#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    window: TimeDelta,
    windows: Mutex<HashMap<String, Window>>,
}

impl FailureLimiter {
    pub fn new(max_failures: u32, window: TimeDelta) -> Self {
        Self {
            max_failures,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// RATE_LIMITED if `key` has used up its failures in the current window.
    pub fn check(&self, key: &str, now: Timestamp) -> Result<()> {
        let windows = self.windows.lock().unwrap_or_else(|poison| poison.into_inner());
        match windows.get(key) {
            Some(w) if w.failures >= self.max_failures && w.started + self.window > now => {
                let retry_after = (w.started + self.window).0 - now.0;
                Err(Error::RateLimited {
                    retry_after_secs: retry_after.num_seconds().max(1).unsigned_abs(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts one failure for `key`.
    pub fn record_failure(&self, key: &str, now: Timestamp) {
        let mut windows = self.windows.lock().unwrap_or_else(|poison| poison.into_inner());
        if windows.len() > PRUNE_ABOVE {
            let window = self.window;
            windows.retain(|_, w| w.started + window > now);
        }
        let entry = windows.entry(key.to_owned()).or_insert(Window {
            started: now,
            failures: 0,
        });
        if entry.started + self.window <= now {
            *entry = Window {
                started: now,
                failures: 0,
            };
        }
        entry.failures += 1;
    }

    /// Forgets `key` (after a success).
    pub fn reset(&self, key: &str) {
        self.windows
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(key);
    }
}

/// The limits the gateway applies.
#[derive(Debug)]
pub struct RateLimits {
    /// Wrong passwords per client address and email: 10 per 15 minutes.
    pub login: FailureLimiter,
    /// Rejected refresh tokens per client address: 30 per 5 minutes.
    pub refresh: FailureLimiter,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login: FailureLimiter::new(10, TimeDelta::minutes(15)),
            refresh: FailureLimiter::new(30, TimeDelta::minutes(5)),
        }
    }
}
