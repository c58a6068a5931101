//! Credentials recently found live in the database, so that a busy client's requests do not each
//! read its session (or API key) and account.
//!
//! An entry is trusted for at most [`TRUSTED_FOR`], and only while nothing that could end it has
//! happened: this process forgets every entry after committing a revocation, a logout or an account
//! change ([`LiveCredentials::forget_all`]), and entries also lapse when the authorization version
//! moves (disabling an account bumps it, so other instances learn of it by NOTIFY or poll). What
//! remains is a session revoked on *another* instance, which that instance's clients may still use
//! for up to [`TRUSTED_FOR`] — the same bound as for policy changes.
//!
//! Open WebSockets hear of every local revocation through [`LiveCredentials::revocations`] and
//! check their credential again at once; they also check it every [`TRUSTED_FOR`], so that one
//! revoked on another instance ends them within twice that (a second).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::TimeDelta;
use tokio::sync::watch;

use crate::db::models::{ApiKeyRow, SessionRow, UserRow};
use crate::db::{Id, Timestamp};

/// How long a confirmation is trusted without reading the database again. Half a second, so that
/// a WebSocket re-checking this often acts on what was true at most a second ago.
pub const TRUSTED_FOR: TimeDelta = TimeDelta::milliseconds(500);

/// Entries kept per kind of credential; beyond it the oldest generation of entries is dropped.
const CAPACITY: usize = 65_536;

/// When a credential was confirmed: taken *before* reading the database, so that a revocation
/// committed during the read makes the entry stale rather than trusted.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    generation: u64,
    version: i64,
    at: Timestamp,
}

/// Live sessions (by id) and API keys (by public prefix), with the account behind each.
pub struct LiveCredentials {
    generation: AtomicU64,
    sessions: Recent<Id, (SessionRow, UserRow)>,
    api_keys: Recent<String, (ApiKeyRow, UserRow)>,
    /// Bumped with `generation`: wakes whoever holds a credential for long (WebSockets).
    revoked: watch::Sender<u64>,
}

impl Default for LiveCredentials {
    fn default() -> Self {
        Self {
            generation: AtomicU64::default(),
            sessions: Recent::default(),
            api_keys: Recent::default(),
            revoked: watch::Sender::new(0),
        }
    }
}

impl LiveCredentials {
    /// Changes whenever this process may have ended a credential or changed an account: a
    /// connection holding a credential checks it again when woken.
    pub fn revocations(&self) -> watch::Receiver<u64> {
        self.revoked.subscribe()
    }

    /// Stamps a confirmation about to be read at authorization `version`.
    pub fn stamp(&self, version: i64, at: Timestamp) -> Stamp {
        Stamp {
            generation: self.generation.load(Ordering::Acquire),
            version,
            at,
        }
    }

    /// A session confirmed live recently, with its account.
    pub fn session(&self, id: Id, version: i64, now: Timestamp) -> Option<(SessionRow, UserRow)> {
        self.sessions.get(&id, self.current(version, now))
    }

    pub fn keep_session(&self, stamp: Stamp, session: &SessionRow, user: &UserRow) {
        self.sessions
            .insert(stamp, session.id, (session.clone(), user.clone()));
    }

    /// The key and account behind an API key prefix confirmed live recently (the presented secret
    /// still has to be checked against the key's hash).
    pub fn api_key(&self, prefix: &str, version: i64, now: Timestamp) -> Option<(ApiKeyRow, UserRow)> {
        self.api_keys.get(prefix, self.current(version, now))
    }

    pub fn keep_api_key(&self, stamp: Stamp, key: &ApiKeyRow, user: &UserRow) {
        self.api_keys
            .insert(stamp, key.prefix.clone(), (key.clone(), user.clone()));
    }

    /// Called after committing anything that may end a credential or change an account.
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.sessions.clear();
        self.api_keys.clear();
        self.revoked.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// The test an entry's stamp must pass to be trusted now.
    fn current(&self, version: i64, now: Timestamp) -> impl Fn(&Stamp) -> bool {
        let generation = self.generation.load(Ordering::Acquire);
        move |stamp: &Stamp| {
            stamp.generation == generation
                && stamp.version == version
                && stamp.at <= now
                && now < stamp.at + TRUSTED_FOR
        }
    }
}

/// A bounded map of stamped values.
struct Recent<K, V> {
    entries: Mutex<HashMap<K, (Stamp, V)>>,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq, V: Clone> Recent<K, V> {
    fn get<Q>(&self, key: &Q, trusted: impl Fn(&Stamp) -> bool) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.lock();
        let (stamp, value) = entries.get(key)?;
        trusted(stamp).then(|| value.clone())
    }

    fn insert(&self, stamp: Stamp, key: K, value: V) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            // Entries live a second: whatever fills the map is mostly stale already.
            entries.retain(|_, (kept, _)| kept.at >= stamp.at);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (stamp, value));
    }

    fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Stamp, V)>> {
        self.entries.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn user() -> UserRow {
        let now = Timestamp(Utc::now());
        UserRow {
            id: Id::new_v7(),
            email: "a@example.com".to_owned(),
            display_name: "A".to_owned(),
            password_hash: None,
            status: crate::identity::users::ACTIVE,
            created_at: now,
            updated_at: now,
        }
    }

    fn session_of(user: &UserRow) -> SessionRow {
        let now = Timestamp(Utc::now());
        SessionRow {
            id: Id::new_v7(),
            user_id: user.id,
            auth_method: crate::identity::SessionMethod::Password,
            ip: None,
            user_agent: None,
            created_at: now,
            last_refreshed_at: now,
            expires_at: now + TimeDelta::days(1),
            revoked_at: None,
            revoked_reason: None,
            mfa_verified_at: None,
            mfa_expires_at: None,
        }
    }

    #[test]
    fn trusted_for_a_second_at_one_version_until_forgotten() {
        let live = LiveCredentials::default();
        let user = user();
        let row = session_of(&user);
        let session = row.id;
        let at = Timestamp(Utc::now());
        live.keep_session(live.stamp(7, at), &row, &user);

        assert_eq!(live.session(session, 7, at).map(|(_, u)| u.id), Some(user.id));
        let later = at + TRUSTED_FOR - TimeDelta::milliseconds(1);
        assert!(live.session(session, 7, later).is_some());
        assert!(live.session(session, 7, at + TRUSTED_FOR).is_none(), "lapsed");
        assert!(
            live.session(session, 8, at).is_none(),
            "authorization version moved"
        );

        live.forget_all();
        assert!(live.session(session, 7, at).is_none(), "forgotten");
    }

    #[test]
    fn forgetting_wakes_the_watchers() {
        let live = LiveCredentials::default();
        let woken = live.revocations();
        assert!(!woken.has_changed().unwrap_or(true));
        live.forget_all();
        assert!(woken.has_changed().unwrap_or(false));
    }

    #[test]
    fn a_read_that_raced_a_revocation_is_not_trusted() {
        let live = LiveCredentials::default();
        let user = user();
        let row = session_of(&user);
        let session = row.id;
        let at = Timestamp(Utc::now());
        let stamp = live.stamp(1, at);
        live.forget_all(); // a revocation committed while the row was being read
        live.keep_session(stamp, &row, &user);
        assert!(live.session(session, 1, at).is_none());
    }
}
