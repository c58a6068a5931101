//! Cedar's JSON formats for entities and contexts, read directly for the shapes integrators send.
//!
//! Cedar's own reader goes through serde's untagged enums, which buffer every value and build an
//! error for each shape a value turns out not to be: about 10 µs per entity, more than a
//! decision. This reader handles the common shapes directly — `{uid, attrs, parents}` with plain
//! `{type, id}` references, booleans, integers, strings, sets, records and `__entity`
//! references — and hands anything else (extension values, tags, omitted fields, malformed input)
//! to Cedar's reader, so results and error messages stay Cedar's.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::RwLock;

use cedar_policy::{Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use serde_json::{Map, Value};

/// Reads a JSON array of entities as given: parents as listed, not yet closed transitively, so
/// that two sets can be combined and closed together as Cedar closes one set. Errors are Cedar's
/// messages.
pub fn entities(json: &Value, names: &TypeNames) -> Result<Vec<Entity>, String> {
    if let Some(entities) = read_common(json, names) {
        return Ok(entities);
    }
    let one_by_one = json.as_array().and_then(|items| {
        items
            .iter()
            .map(|item| Entity::from_json_value(item.clone(), None).ok())
            .collect::<Option<Vec<_>>>()
    });
    match one_by_one {
        Some(entities) => Ok(entities),
        // Cedar's reader of the whole array, for its error message.
        None => match Entities::from_json_value(json.clone(), None) {
            Ok(entities) => Ok(entities.iter().cloned().collect()),
            Err(error) => Err(error.to_string()),
        },
    }
}

/// The entity set Cedar makes of `given` and `extra` together: parents closed transitively,
/// identical duplicates merged, differing ones refused. Errors are Cedar's messages.
pub fn close<'a>(
    given: impl IntoIterator<Item = &'a Entity>,
    extra: impl IntoIterator<Item = &'a Entity>,
) -> Result<Entities, String> {
    Entities::from_entities(given.into_iter().chain(extra).cloned(), None).map_err(|e| e.to_string())
}

/// Reads a request context: a JSON object of attribute values. Errors are Cedar's messages.
///
/// An object that is itself an escape (`{"__extn": …}`, `{"__entity": …}`) is not a record: Cedar's
/// reader refuses it, so it goes there.
pub fn context(json: serde_json::Value, names: &TypeNames) -> Result<Context, String> {
    let record = json
        .as_object()
        .filter(|fields| !fields.keys().any(|key| key.starts_with("__")));
    let common = record.and_then(|fields| {
        let mut reader = Reader { names };
        let pairs = fields
            .iter()
            .map(|(name, value)| Some((name.clone(), reader.value(value)?)))
            .collect::<Option<Vec<_>>>()?;
        Context::from_pairs(pairs).ok()
    });
    match common {
        Some(context) => Ok(context),
        None => Context::from_json_value(json, None).map_err(|e| e.to_string()),
    }
}

/// The entities, or `None` when the input is not of a shape this reader handles.
fn read_common(json: &Value, names: &TypeNames) -> Option<Vec<Entity>> {
    let mut reader = Reader { names };
    json.as_array()?
        .iter()
        .map(|item| reader.entity(item))
        .collect::<Option<Vec<_>>>()
}

/// Entity type names by their text, parsed once: Cedar's parser costs microseconds a name, and
/// integrators name the same few types in every question. Bounded: it starts over when full.
#[derive(Default)]
pub struct TypeNames {
    /// Each name with whether it was in normalized form (no spaces or comments), which is all
    /// Cedar's JSON reader accepts.
    parsed: RwLock<HashMap<String, (EntityTypeName, bool)>>,
}

/// Type names kept before the cache starts over.
const TYPE_NAMES_KEPT: usize = 1_024;

impl TypeNames {
    /// `Ns::Type` as Cedar's parser reads it, or its error message.
    pub fn parse(&self, name: &str) -> Result<EntityTypeName, String> {
        self.lookup(name).map(|(parsed, _)| parsed)
    }

    /// The name only in the normalized form the JSON formats use.
    fn normalized(&self, name: &str) -> Option<EntityTypeName> {
        self.lookup(name)
            .ok()
            .and_then(|(parsed, normalized)| normalized.then_some(parsed))
    }

    fn lookup(&self, name: &str) -> Result<(EntityTypeName, bool), String> {
        if let Some(known) = self.parsed.read().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Ok(known.clone());
        }
        let parsed = EntityTypeName::from_str(name).map_err(|e| e.to_string())?;
        let entry = (parsed.clone(), parsed.to_string() == name);
        let mut names = self.parsed.write().unwrap_or_else(|p| p.into_inner());
        if names.len() >= TYPE_NAMES_KEPT {
            names.clear();
        }
        names.insert(name.to_owned(), entry.clone());
        Ok(entry)
    }
}

struct Reader<'n> {
    names: &'n TypeNames,
}

impl Reader<'_> {
    fn entity(&mut self, json: &Value) -> Option<Entity> {
        let object = json.as_object()?;
        if object.len() != 3 {
            return None; // tags, omitted or unknown fields: Cedar decides
        }
        let uid = self.uid(object.get("uid")?)?;
        let attrs = object
            .get("attrs")?
            .as_object()?
            .iter()
            .map(|(name, value)| Some((name.clone(), self.value(value)?)))
            .collect::<Option<HashMap<_, _>>>()?;
        let parents = object
            .get("parents")?
            .as_array()?
            .iter()
            .map(|parent| self.uid(parent))
            .collect::<Option<HashSet<_>>>()?;
        Entity::new(uid, attrs, parents).ok()
    }

    /// `{"type": "Ns::Type", "id": "…"}`.
    fn uid(&mut self, json: &Value) -> Option<EntityUid> {
        let object = json.as_object()?;
        if object.len() != 2 {
            return None;
        }
        let type_name = self.names.normalized(object.get("type")?.as_str()?)?;
        let id = object.get("id")?.as_str()?;
        Some(EntityUid::from_type_name_and_id(type_name, EntityId::new(id)))
    }

    fn value(&mut self, json: &Value) -> Option<RestrictedExpression> {
        Some(match json {
            Value::Bool(b) => RestrictedExpression::new_bool(*b),
            Value::Number(n) => RestrictedExpression::new_long(n.as_i64()?),
            Value::String(s) => RestrictedExpression::new_string(s.clone()),
            Value::Array(items) => RestrictedExpression::new_set(
                items
                    .iter()
                    .map(|item| self.value(item))
                    .collect::<Option<Vec<_>>>()?,
            ),
            Value::Object(fields) => self.object(fields)?,
            Value::Null => return None,
        })
    }

    /// A record, or an `{"__entity": {type, id}}` reference; other escapes go to Cedar.
    fn object(&mut self, fields: &Map<String, Value>) -> Option<RestrictedExpression> {
        if fields.keys().any(|key| key.starts_with("__")) {
            return match (fields.len(), fields.get("__entity")) {
                (1, Some(reference)) => Some(RestrictedExpression::new_entity_uid(self.uid(reference)?)),
                _ => None,
            };
        }
        let fields = fields
            .iter()
            .map(|(name, value)| Some((name.clone(), self.value(value)?)))
            .collect::<Option<Vec<_>>>()?;
        RestrictedExpression::new_record(fields).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cedar(json: &Value) -> Entities {
        Entities::from_json_value(json.clone(), None).unwrap()
    }

    #[test]
    fn common_shapes_read_exactly_as_cedar_reads_them() {
        let json = json!([
            { "uid": { "type": "Docs::Folder", "id": "root" }, "attrs": {}, "parents": [] },
            { "uid": { "type": "Docs::Folder", "id": "f1" }, "attrs": { "name": "One" },
              "parents": [{ "type": "Docs::Folder", "id": "root" }] },
            { "uid": { "type": "Docs::Document", "id": "d1" },
              "attrs": {
                  "owner": { "__entity": { "type": "Portcullis::User", "id": "u1" } },
                  "locked": false, "size": -42, "tags": ["a", "b"],
                  "meta": { "level": 3, "nested": { "ok": true }, "type": "x", "id": "y" },
                  "empty": {}, "sets": [[1, 2], []]
              },
              "parents": [{ "type": "Docs::Folder", "id": "f1" }] }
        ]);
        let read = read_common(&json, &TypeNames::default()).expect("the common reader handles these shapes");
        let read = close(&read, []).unwrap();
        assert!(read.deep_eq(&cedar(&json)));
        let d1: EntityUid = r#"Docs::Document::"d1""#.parse().unwrap();
        let root: EntityUid = r#"Docs::Folder::"root""#.parse().unwrap();
        assert!(read.is_ancestor_of(&root, &d1), "parents are closed transitively");
    }

    #[test]
    fn other_shapes_go_to_cedar_and_keep_its_errors() {
        let extension = json!([{ "uid": { "type": "Net::Host", "id": "h" },
            "attrs": { "ip": { "__extn": { "fn": "ip", "arg": "10.0.0.1" } } }, "parents": [] }]);
        assert!(read_common(&extension, &TypeNames::default()).is_none());
        assert!(
            close(&entities(&extension, &TypeNames::default()).unwrap(), [])
                .unwrap()
                .deep_eq(&cedar(&extension))
        );

        let tags =
            json!([{ "uid": { "type": "A::B", "id": "c" }, "attrs": {}, "parents": [], "tags": { "t": 1 } }]);
        assert!(read_common(&tags, &TypeNames::default()).is_none());
        assert!(
            close(&entities(&tags, &TypeNames::default()).unwrap(), [])
                .unwrap()
                .deep_eq(&cedar(&tags))
        );

        let spaced = json!([{ "uid": { "type": "Docs :: Folder", "id": "f" }, "attrs": {}, "parents": [] }]);
        assert!(read_common(&spaced, &TypeNames::default()).is_none());

        for invalid in [
            json!({ "uid": 1 }),
            json!([{ "uid": { "type": "A::B", "id": "c" }, "attrs": { "n": null }, "parents": [] }]),
            json!([{ "uid": { "type": "A::B", "id": "c" }, "attrs": { "f": 1.5 }, "parents": [] }]),
            json!([{ "uid": { "type": "not a type", "id": "c" }, "attrs": {}, "parents": [] }]),
        ] {
            let ours = entities(&invalid, &TypeNames::default()).map(|_| ());
            let theirs = Entities::from_json_value(invalid.clone(), None)
                .map(|_| ())
                .map_err(|e| e.to_string());
            assert!(ours.is_err(), "{invalid} must be refused");
            assert_eq!(ours, theirs, "the error is Cedar's");
        }
    }

    #[test]
    fn contexts_read_as_cedar_reads_them() {
        let json = json!({ "mfa": true, "hour": 9, "tags": ["a"], "device": { "trusted": false },
                           "ip": { "__extn": { "fn": "ip", "arg": "10.0.0.1" } } });
        let ours = context(json.clone(), &TypeNames::default()).unwrap();
        let theirs = Context::from_json_value(json, None).unwrap();
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
        let common = json!({ "mfa": true, "hour": 9, "who": { "__entity": { "type": "A::U", "id": "u" } } });
        assert_eq!(
            format!("{:?}", context(common.clone(), &TypeNames::default()).unwrap()),
            format!("{:?}", Context::from_json_value(common, None).unwrap())
        );
        for invalid in [json!([1]), json!({ "n": null })] {
            assert_eq!(
                context(invalid.clone(), &TypeNames::default()).map(|_| ()),
                Context::from_json_value(invalid, None)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            );
        }
    }

    #[test]
    fn a_cycle_or_duplicate_is_refused_like_cedar_refuses_it() {
        let duplicate = json!([
            { "uid": { "type": "A::B", "id": "c" }, "attrs": { "n": 1 }, "parents": [] },
            { "uid": { "type": "A::B", "id": "c" }, "attrs": { "n": 2 }, "parents": [] }
        ]);
        let given = entities(&duplicate, &TypeNames::default()).unwrap();
        assert_eq!(
            close(&given, []).map(|_| ()),
            Entities::from_json_value(duplicate.clone(), None)
                .map(|_| ())
                .map_err(|e| e.to_string())
        );
    }

    #[test]
    fn sets_closed_apart_then_together_keep_an_entity_given_in_both() {
        let names = TypeNames::default();
        let shared = entities(
            &json!([
                { "uid": { "type": "A::Doc", "id": "d" }, "attrs": {}, "parents": [{ "type": "A::Folder", "id": "f" }] },
                { "uid": { "type": "A::Folder", "id": "f" }, "attrs": {}, "parents": [{ "type": "A::Folder", "id": "root" }] }
            ]),
            &names,
        )
        .unwrap();
        let own = entities(
            &json!([{ "uid": { "type": "A::Doc", "id": "d" }, "attrs": {}, "parents": [{ "type": "A::Folder", "id": "f" }] }]),
            &names,
        )
        .unwrap();
        let together = close(&shared, &own).expect("an identical entity given twice is one entity");
        let (doc, root): (EntityUid, EntityUid) = (
            r#"A::Doc::"d""#.parse().unwrap(),
            r#"A::Folder::"root""#.parse().unwrap(),
        );
        assert!(together.is_ancestor_of(&root, &doc));
    }

    #[test]
    fn a_context_that_is_an_escape_is_refused_as_cedar_refuses_it() {
        for escape in [
            json!({ "__extn": { "fn": "ip", "arg": "10.0.0.1" } }),
            json!({ "__entity": { "type": "A::U", "id": "u" } }),
        ] {
            let ours = context(escape.clone(), &TypeNames::default()).map(|_| ());
            let theirs = Context::from_json_value(escape.clone(), None)
                .map(|_| ())
                .map_err(|e| e.to_string());
            assert!(theirs.is_err(), "Cedar refuses {escape}");
            assert_eq!(ours, theirs);
        }
    }
}
