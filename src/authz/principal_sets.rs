//! Integrators' entity sets with a gateway user added as the principal, kept per (set, user,
//! organization) at one authorization version.
//!
//! Adding an entity makes Cedar recompute the transitive closure of the whole set, which for a
//! few dozen entities costs more than the decision itself; a service asking about the same
//! resources for the same users pays it once. The set is recognised by the address of its parsed
//! form (from [`super::entity_cache::EntityCache`]); each entry holds that form, so the address
//! cannot be reused while the entry lives.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use cedar_policy::{Entities, EntityUid};

use crate::db::Id;

/// Entities held across all entries before the cache starts over.
const ENTITY_BUDGET: usize = 131_072;

/// A set with the principal in it, and the roles that made the principal's parents.
pub struct WithPrincipal {
    pub entities: Arc<Entities>,
    pub roles: HashSet<EntityUid>,
}

/// Sets with principals added.
#[derive(Default)]
pub struct PrincipalSets {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    version: i64,
    entities: usize,
    entries: HashMap<Key, Entry>,
}

#[derive(Hash, PartialEq, Eq)]
struct Key {
    set: usize,
    user: Id,
    organization: Option<Id>,
}

struct Entry {
    /// Keeps the set's address from being reused while this entry is keyed by it.
    _set: Arc<Entities>,
    combined: Arc<WithPrincipal>,
}

impl PrincipalSets {
    /// `set` with `user` added for a request about `organization`, at authorization `version`.
    pub fn get(
        &self,
        version: i64,
        set: &Arc<Entities>,
        user: Id,
        organization: Option<Id>,
    ) -> Option<Arc<WithPrincipal>> {
        let inner = self.lock();
        if inner.version != version {
            return None;
        }
        let found = inner.entries.get(&key(set, user, organization))?;
        Some(found.combined.clone())
    }

    /// Keeps `combined`, made from `set` at `version`.
    pub fn keep(
        &self,
        version: i64,
        set: &Arc<Entities>,
        user: Id,
        organization: Option<Id>,
        combined: Arc<WithPrincipal>,
    ) {
        let size = combined.entities.len();
        if size > ENTITY_BUDGET / 8 {
            return;
        }
        let mut inner = self.lock();
        if inner.version != version {
            if inner.version > version {
                return; // made from a state that is already gone
            }
            inner.version = version;
            inner.entries.clear();
            inner.entities = 0;
        }
        if inner.entities + size > ENTITY_BUDGET {
            inner.entries.clear();
            inner.entities = 0;
        }
        let entry = Entry {
            _set: set.clone(),
            combined,
        };
        if let Some(replaced) = inner.entries.insert(key(set, user, organization), entry) {
            inner.entities -= replaced.combined.entities.len();
        }
        inner.entities += size;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

fn key(set: &Arc<Entities>, user: Id, organization: Option<Id>) -> Key {
    Key {
        set: Arc::as_ptr(set) as usize,
        user,
        organization,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seated(set: &Entities) -> Arc<WithPrincipal> {
        Arc::new(WithPrincipal {
            entities: Arc::new(set.clone()),
            roles: HashSet::new(),
        })
    }

    #[test]
    fn kept_per_set_user_and_organization_at_one_version() {
        let sets = PrincipalSets::default();
        let (set, other_set) = (Arc::new(Entities::empty()), Arc::new(Entities::empty()));
        let (user, org) = (Id::new_v7(), Some(Id::new_v7()));
        sets.keep(3, &set, user, org, seated(&set));

        assert!(sets.get(3, &set, user, org).is_some());
        assert!(
            sets.get(3, &other_set, user, org).is_none(),
            "an equal but other set"
        );
        assert!(sets.get(3, &set, Id::new_v7(), org).is_none(), "another user");
        assert!(sets.get(3, &set, user, None).is_none(), "another organization");
        assert!(sets.get(4, &set, user, org).is_none(), "roles may have changed");

        sets.keep(2, &set, user, None, seated(&set));
        assert!(
            sets.get(3, &set, user, None).is_none(),
            "made at a version already gone"
        );
        sets.keep(4, &set, user, None, seated(&set));
        assert!(sets.get(4, &set, user, None).is_some());
        assert!(
            sets.get(4, &set, user, org).is_none(),
            "the older version's entries are gone"
        );
    }
}
