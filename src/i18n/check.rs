//! Consistency of the embedded catalogs, for the test suite (a broken catalog fails a test,
//! not a request).

use std::collections::BTreeSet;

use super::catalog::{Catalog, placeholders};
use super::{DEFAULT_TAG, EMBEDDED};

/// Everything wrong with the embedded catalogs; empty when they are fine.
///
/// Reports sources that do not parse as a flat string map, keys the English catalog has and
/// another lacks, keys only another catalog has (typos), and placeholders a translation uses
/// that its English message does not provide.
pub fn problems() -> Vec<String> {
    let mut problems = Vec::new();
    let mut parsed = Vec::new();
    for (tag, source) in EMBEDDED {
        match Catalog::parse(tag, source) {
            Ok(catalog) => parsed.push(catalog),
            Err(error) => problems.push(format!("locales/{tag}.json does not parse: {error}")),
        }
    }
    let Some(english) = parsed.iter().find(|catalog| catalog.tag() == DEFAULT_TAG) else {
        problems.push(format!("no {DEFAULT_TAG} catalog"));
        return problems;
    };
    for catalog in parsed.iter().filter(|catalog| catalog.tag() != DEFAULT_TAG) {
        let tag = catalog.tag();
        for key in english.keys() {
            let Some(message) = catalog.own(key) else {
                problems.push(format!("locales/{tag}.json lacks {key}"));
                continue;
            };
            let allowed: BTreeSet<&str> = placeholders(english.own(key).unwrap_or_default())
                .into_iter()
                .collect();
            for name in placeholders(message) {
                if !allowed.contains(name) {
                    problems.push(format!("locales/{tag}.json: {key} uses unknown {{{name}}}"));
                }
            }
        }
        for key in catalog.keys().filter(|key| english.own(key).is_none()) {
            problems.push(format!("locales/{tag}.json has {key}, which English lacks"));
        }
    }
    problems
}
