//! Parsed GraphQL documents, kept by their text: clients send the same few operations again and
//! again, and parsing one costs more than executing a small one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::parse_query;
use async_graphql::parser::types::ExecutableDocument;

/// Documents kept before the cache starts over (a cheap bound; real clients send few).
const CAPACITY: usize = 256;
/// Longer queries are parsed every time rather than kept.
const MAX_QUERY_BYTES: usize = 8 * 1024;

#[derive(Default)]
pub(crate) struct Documents {
    parsed: Mutex<HashMap<Arc<str>, Arc<ExecutableDocument>>>,
}

impl Documents {
    /// The parsed `query`, or `None` when it does not parse (execution then reports why).
    pub fn parse(&self, query: &str) -> Option<ExecutableDocument> {
        if let Some(found) = self.lock().get(query) {
            return Some(ExecutableDocument::clone(found));
        }
        let document = parse_query(query).ok()?;
        if query.len() <= MAX_QUERY_BYTES {
            let mut parsed = self.lock();
            if parsed.len() >= CAPACITY {
                parsed.clear();
            }
            parsed.insert(Arc::from(query), Arc::new(document.clone()));
        }
        Some(document)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Arc<ExecutableDocument>>> {
        self.parsed.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_parsed_once_and_bad_ones_are_not_kept() {
        let documents = Documents::default();
        let first = documents.parse("{ viewer { id } }").unwrap();
        assert_eq!(documents.lock().len(), 1);
        let again = documents.parse("{ viewer { id } }").unwrap();
        assert_eq!(format!("{first:?}"), format!("{again:?}"));
        assert_eq!(documents.lock().len(), 1);
        assert!(documents.parse("{ viewer { ").is_none());
        assert_eq!(documents.lock().len(), 1);
    }
}
