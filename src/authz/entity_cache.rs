//! Integrators' entity sets, parsed once and kept by their JSON text: a service sends the same
//! resources and parents with question after question, and reading Cedar's JSON entity format
//! costs more than a decision.
//!
//! A set is kept closed together with the action entities of the schema in force, so it belongs
//! to one schema generation: when the schema changes, every set is read again.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use cedar_policy::{Entities, Entity};

/// An integrator's entity set as read.
pub struct ReadSet {
    /// The entities as given (parents as listed, not closed), for combining with another set.
    pub given: Vec<Entity>,
    /// The given entities with the schema's action entities, closed: what Cedar decides with.
    pub closed: Arc<Entities>,
}

/// Bytes of JSON text the cache holds by default before it forgets the oldest sets.
const BUDGET_BYTES: usize = 16 * 1024 * 1024;

/// Parsed entity sets by their JSON text, oldest forgotten first, bounded in total size.
pub struct EntityCache {
    hasher: foldhash::quality::RandomState,
    /// Sets larger than an eighth of the budget are parsed every time rather than crowding out the rest.
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The schema generation the kept sets were closed with.
    generation: u64,
    sets: HashMap<u64, Vec<Cached>>,
    order: VecDeque<(u64, Arc<str>)>,
    bytes: usize,
}

struct Cached {
    text: Arc<str>,
    parsed: Arc<ReadSet>,
}

impl Default for EntityCache {
    fn default() -> Self {
        Self::with_budget(BUDGET_BYTES)
    }
}

impl EntityCache {
    /// A cache holding at most `budget` bytes of JSON text.
    pub fn with_budget(budget: usize) -> Self {
        Self {
            hasher: foldhash::quality::RandomState::default(),
            budget,
            inner: Mutex::default(),
        }
    }

    /// The set read from `text` at schema `generation`: from the cache when the same text was read
    /// at that generation before, else from `parse` (whose errors are not cached). Texts that
    /// differ only in spacing or key order are kept apart: recognising them would cost what the
    /// cache saves.
    pub fn get_or_parse<E>(
        &self,
        generation: u64,
        text: &str,
        parse: impl FnOnce() -> Result<ReadSet, E>,
    ) -> Result<Arc<ReadSet>, E> {
        let key = self.hasher.hash_one(text);
        {
            let inner = self.lock();
            if inner.generation == generation
                && let Some(found) = inner.find(key, text)
            {
                return Ok(found);
            }
        }
        let parsed = Arc::new(parse()?);
        if text.len() <= self.budget / 8 {
            let mut inner = self.lock();
            if inner.generation < generation {
                *inner = Inner {
                    generation,
                    ..Inner::default()
                };
            }
            if inner.generation == generation {
                inner.insert(key, Arc::from(text), parsed.clone(), self.budget);
            }
        }
        Ok(parsed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Inner {
    fn find(&self, key: u64, text: &str) -> Option<Arc<ReadSet>> {
        self.sets
            .get(&key)?
            .iter()
            .find(|cached| &*cached.text == text)
            .map(|cached| cached.parsed.clone())
    }

    fn insert(&mut self, key: u64, text: Arc<str>, parsed: Arc<ReadSet>, budget: usize) {
        if self.find(key, &text).is_some() {
            return; // another request parsed the same set meanwhile
        }
        while self.bytes + text.len() > budget {
            let Some((old_key, old_text)) = self.order.pop_front() else {
                break;
            };
            if let Some(bucket) = self.sets.get_mut(&old_key) {
                if let Some(at) = bucket.iter().position(|c| Arc::ptr_eq(&c.text, &old_text)) {
                    self.bytes -= bucket.swap_remove(at).text.len();
                }
                if bucket.is_empty() {
                    self.sets.remove(&old_key);
                }
            }
        }
        self.bytes += text.len();
        self.order.push_back((key, text.clone()));
        self.sets.entry(key).or_default().push(Cached { text, parsed });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(id: &str) -> String {
        format!(r#"[{{"uid":{{"type":"Docs::Folder","id":"{id}"}},"attrs":{{}},"parents":[]}}]"#)
    }

    fn parse(text: &str) -> Result<ReadSet, String> {
        let closed = Entities::from_json_str(text, None).map_err(|e| e.to_string())?;
        Ok(ReadSet {
            given: closed.iter().cloned().collect(),
            closed: Arc::new(closed),
        })
    }

    #[test]
    fn the_same_text_is_parsed_once() {
        let cache = EntityCache::default();
        let mut parses = 0;
        for _ in 0..3 {
            cache
                .get_or_parse(1, &folder("f1"), || {
                    parses += 1;
                    parse(&folder("f1"))
                })
                .unwrap();
        }
        assert_eq!(parses, 1);
        let other = cache
            .get_or_parse(1, &folder("f2"), || {
                parses += 1;
                parse(&folder("f2"))
            })
            .unwrap();
        assert_eq!(parses, 2);
        assert_eq!(other.given[0].uid().id().unescaped(), "f2");
        cache
            .get_or_parse(2, &folder("f1"), || {
                parses += 1;
                parse(&folder("f1"))
            })
            .unwrap();
        assert_eq!(parses, 3, "a set is read again for a new schema generation");
        cache
            .get_or_parse(1, &folder("f2"), || {
                parses += 1;
                parse(&folder("f2"))
            })
            .unwrap();
        assert_eq!(parses, 4, "sets of the older generation are gone");
    }

    #[test]
    fn errors_are_not_cached_and_the_budget_holds() {
        let size = folder("f00").len();
        let cache = EntityCache::with_budget(10 * size);
        assert!(
            cache
                .get_or_parse(1, r#"[{"uid":1}]"#, || parse(r#"[{"uid":1}]"#))
                .is_err()
        );
        assert!(cache.lock().sets.is_empty());
        for i in 0..50 {
            let text = folder(&format!("f{i:02}"));
            cache.get_or_parse(1, &text, || parse(&text)).unwrap();
        }
        let inner = cache.lock();
        assert!(inner.bytes <= 10 * size, "{} bytes over budget", inner.bytes);
        assert_eq!(inner.order.len(), 10, "the oldest were forgotten");
        assert_eq!(
            inner.order.back().map(|(_, t)| t.to_string()),
            Some(folder("f49"))
        );
    }
}
