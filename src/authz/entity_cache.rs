//! Integrators' entity sets, parsed once and kept by content: a service sends the same resources
//! and parents with question after question, and parsing Cedar's JSON entity format costs far more
//! than a decision (about 10 µs per entity).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, Mutex};

use cedar_policy::Entities;
use serde_json::Value;

/// How much JSON (counted in values) the cache holds by default before it forgets the oldest sets.
const BUDGET: usize = 500_000;

/// Parsed entity sets by their JSON, oldest forgotten first, bounded in total size.
pub struct EntityCache {
    hasher: RandomState,
    /// Sets larger than an eighth of the budget are parsed every time rather than crowding out the rest.
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    sets: HashMap<u64, Vec<Cached>>,
    order: VecDeque<(u64, Arc<Value>)>,
    weight: usize,
}

struct Cached {
    json: Arc<Value>,
    parsed: Arc<Entities>,
    weight: usize,
}

impl Default for EntityCache {
    fn default() -> Self {
        Self::with_budget(BUDGET)
    }
}

impl EntityCache {
    /// A cache holding at most `budget` JSON values' worth of sets.
    pub fn with_budget(budget: usize) -> Self {
        Self {
            hasher: RandomState::new(),
            budget,
            inner: Mutex::default(),
        }
    }

    /// The parsed form of `json`: from the cache when an equal set was parsed before, else from
    /// `parse` (whose errors are not cached).
    pub fn get_or_parse<E>(
        &self,
        json: Value,
        parse: impl FnOnce(&Value) -> Result<Entities, E>,
    ) -> Result<Arc<Entities>, E> {
        let mut hasher = self.hasher.build_hasher();
        let weight = hash_json(&json, &mut hasher);
        let key = hasher.finish();
        if let Some(found) = self.lock().find(key, &json) {
            return Ok(found);
        }
        let parsed = Arc::new(parse(&json)?);
        if weight <= self.budget / 8 {
            self.lock()
                .insert(key, Arc::new(json), parsed.clone(), weight, self.budget);
        }
        Ok(parsed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Inner {
    fn find(&self, key: u64, json: &Value) -> Option<Arc<Entities>> {
        self.sets
            .get(&key)?
            .iter()
            .find(|cached| *cached.json == *json)
            .map(|cached| cached.parsed.clone())
    }

    fn insert(&mut self, key: u64, json: Arc<Value>, parsed: Arc<Entities>, weight: usize, budget: usize) {
        if self.find(key, &json).is_some() {
            return; // another request parsed the same set meanwhile
        }
        while self.weight + weight > budget {
            let Some((old_key, old_json)) = self.order.pop_front() else {
                break;
            };
            if let Some(bucket) = self.sets.get_mut(&old_key) {
                if let Some(at) = bucket.iter().position(|c| Arc::ptr_eq(&c.json, &old_json)) {
                    self.weight -= bucket.swap_remove(at).weight;
                }
                if bucket.is_empty() {
                    self.sets.remove(&old_key);
                }
            }
        }
        self.order.push_back((key, json.clone()));
        self.sets
            .entry(key)
            .or_default()
            .push(Cached { json, parsed, weight });
        self.weight += weight;
    }
}

/// Feeds `value` to `state` so that equal values (`Value`'s equality ignores key order) hash
/// equally; returns the number of JSON values in it.
fn hash_json(value: &Value, state: &mut impl Hasher) -> usize {
    match value {
        Value::Null => {
            0u8.hash(state);
            1
        }
        Value::Bool(b) => {
            1u8.hash(state);
            b.hash(state);
            1
        }
        Value::Number(n) => {
            2u8.hash(state);
            n.hash(state);
            1
        }
        Value::String(s) => {
            3u8.hash(state);
            s.hash(state);
            1
        }
        Value::Array(items) => {
            4u8.hash(state);
            items.len().hash(state);
            1 + items.iter().map(|item| hash_json(item, state)).sum::<usize>()
        }
        Value::Object(map) => {
            // Entries are combined without regard to order; each is hashed on its own.
            5u8.hash(state);
            map.len().hash(state);
            let mut combined = 0u64;
            let mut weight = 1;
            for (key, item) in map {
                let mut entry = std::hash::DefaultHasher::new();
                key.hash(&mut entry);
                weight += hash_json(item, &mut entry);
                combined = combined.wrapping_add(entry.finish());
            }
            combined.hash(state);
            weight
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(json: &Value) -> Result<Entities, String> {
        Entities::from_json_value(json.clone(), None).map_err(|e| e.to_string())
    }

    fn folder(id: &str) -> Value {
        json!([{ "uid": { "type": "Docs::Folder", "id": id }, "attrs": { "a": 1, "b": "x" }, "parents": [] }])
    }

    impl Inner {
        fn find_newest_is(&self, id: &str) -> bool {
            self.order.back().is_some_and(|(_, json)| **json == folder(id))
        }
    }

    #[test]
    fn an_equal_set_is_parsed_once() {
        let cache = EntityCache::default();
        let mut parses = 0;
        for _ in 0..3 {
            cache
                .get_or_parse(folder("f1"), |json| {
                    parses += 1;
                    parse(json)
                })
                .unwrap();
        }
        assert_eq!(parses, 1);
        let other = cache
            .get_or_parse(folder("f2"), |json| {
                parses += 1;
                parse(json)
            })
            .unwrap();
        assert_eq!(parses, 2);
        assert_eq!(other.iter().next().unwrap().uid().id().unescaped(), "f2");
    }

    #[test]
    fn key_order_does_not_matter_but_values_do() {
        let state = RandomState::new();
        let hash = |v: &Value| {
            let mut h = state.build_hasher();
            hash_json(v, &mut h);
            h.finish()
        };
        assert_eq!(
            hash(&json!({ "a": 1, "b": [true] })),
            hash(&json!({ "b": [true], "a": 1 }))
        );
        assert_ne!(hash(&json!({ "a": 1 })), hash(&json!({ "a": 2 })));
        assert_ne!(hash(&json!({ "a": 1 })), hash(&json!({ "b": 1 })));
        assert_ne!(hash(&json!(["1"])), hash(&json!([1])));
    }

    #[test]
    fn errors_are_not_cached_and_the_budget_holds() {
        let cache = EntityCache::with_budget(100);
        assert!(cache.get_or_parse(json!([{ "uid": 1 }]), parse).is_err());
        assert!(cache.lock().sets.is_empty());
        for i in 0..50 {
            cache.get_or_parse(folder(&format!("f{i}")), parse).unwrap();
        }
        let inner = cache.lock();
        assert!(inner.weight <= 100, "weight {} over budget", inner.weight);
        assert_eq!(
            inner.order.len(),
            100 / 9,
            "each set weighs 9; the oldest were forgotten"
        );
        assert!(inner.find_newest_is("f49"));
    }
}
