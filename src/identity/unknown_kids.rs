//! Limits on the database reads that tokens naming an unknown signing key can cause.
//!
//! Anyone can send a token with any `kid`. A key this instance does not know may be a real one,
//! made by a rotation elsewhere and not yet announced here, so the ring looks it up; but each look
//! is a database read. So a `kid` looked up in vain is not looked up again for
//! [`UNKNOWN_KID_RELOAD_INTERVAL`], and all unknown kids together get
//! [`UNKNOWN_KID_LOOKUPS_PER_INTERVAL`] looks per interval: a flood of random kids costs the
//! database a few reads every few seconds. A real new key is found by the first token that names
//! it, unless a flood has spent the budget; it then arrives with the rotation's announcement (or
//! the poll), which the publication delay of rotations lets come before any instance signs with it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use chrono::TimeDelta;

use crate::db::{Id, Timestamp};

/// How long a `kid` looked up in vain is not looked up again; also the length of one budget.
pub const UNKNOWN_KID_RELOAD_INTERVAL: TimeDelta = TimeDelta::seconds(5);

/// Most lookups of unknown kids per [`UNKNOWN_KID_RELOAD_INTERVAL`], all kids together.
pub const UNKNOWN_KID_LOOKUPS_PER_INTERVAL: u32 = 5;

/// Most kids remembered as looked up in vain: past this, the expired are dropped, then all (the
/// budget still bounds the reads).
const MISSED_CAPACITY: usize = 1024;

/// What this instance remembers of its lookups of unknown kids.
#[derive(Default)]
pub(super) struct UnknownKids {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Kids looked up in vain, with when.
    missed: HashMap<Id, Timestamp>,
    /// When the current budget interval began, and how many lookups it has had.
    interval_start: Option<Timestamp>,
    used: u32,
}

/// Whether `at` lies in the interval beginning at `start` (a clock set back ends it).
fn within_interval(start: Timestamp, at: Timestamp) -> bool {
    start <= at && at < start + UNKNOWN_KID_RELOAD_INTERVAL
}

impl UnknownKids {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Whether `kid` was looked up in vain within the last interval.
    pub(super) fn recently_missed(&self, kid: Id, now: Timestamp) -> bool {
        self.state()
            .missed
            .get(&kid)
            .is_some_and(|&at| within_interval(at, now))
    }

    /// Takes one lookup for `kid` from the budget: false if `kid` was looked up in vain within the
    /// interval, or the interval's lookups are spent.
    pub(super) fn take_lookup(&self, kid: Id, now: Timestamp) -> bool {
        let mut state = self.state();
        if state.missed.get(&kid).is_some_and(|&at| within_interval(at, now)) {
            return false;
        }
        if !state
            .interval_start
            .is_some_and(|start| within_interval(start, now))
        {
            state.interval_start = Some(now);
            state.used = 0;
        }
        if state.used >= UNKNOWN_KID_LOOKUPS_PER_INTERVAL {
            return false;
        }
        state.used += 1;
        true
    }

    /// Remembers that a lookup did not find `kid`.
    pub(super) fn missed(&self, kid: Id, now: Timestamp) {
        let mut state = self.state();
        if state.missed.len() >= MISSED_CAPACITY {
            state.missed.retain(|_, &mut at| within_interval(at, now));
            if state.missed.len() >= MISSED_CAPACITY {
                state.missed.clear();
            }
        }
        state.missed.insert(kid, now);
    }
}
