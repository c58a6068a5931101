//! Audit filters as query strings (`GET /audit/export`, signed links): names as in GraphQL, lists
//! comma-separated (a parameter may also repeat), enum values in GraphQL's SCREAMING_CASE.

use super::{AuditFilter, FilterInput};
use crate::audit::{ActorType, Outcome};
use crate::db::Timestamp;
use crate::error::{Error, Result};

impl AuditFilter {
    /// Parses a query string holding only filter parameters; errors name the parameter.
    pub fn from_query_string(query: &str) -> Result<Self> {
        Self::from_query_pairs(query, |name, _| Err(Error::bad_input(name, "unknown parameter")))
    }

    /// Parses the filter parameters of `query`, handing every other parameter to `other` (which
    /// errors on those it does not know either).
    pub fn from_query_pairs(query: &str, mut other: impl FnMut(&str, &str) -> Result<()>) -> Result<Self> {
        let mut input = FilterInput::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let (name, value) = (name.as_ref(), value.as_ref());
            match name {
                "organizationId" => input.organization_id = Some(value.to_owned()),
                "actions" => input.actions.extend(split(value)),
                "actorIds" => input.actor_ids.extend(split(value)),
                "actorTypes" => {
                    for entry in split(value) {
                        input.actor_types.push(actor_type(&entry)?);
                    }
                }
                "targetTypes" => input.target_types.extend(split(value)),
                "targetIds" => input.target_ids.extend(split(value)),
                "outcomes" => {
                    for entry in split(value) {
                        input.outcomes.push(outcome(&entry)?);
                    }
                }
                "since" => input.since = Some(instant("since", value)?),
                "until" => input.until = Some(instant("until", value)?),
                "search" => input.search = Some(value.to_owned()),
                _ => other(name, value)?,
            }
        }
        Self::from_input(input, "")
    }

    /// The filter as query parameters, which [`from_query_string`](Self::from_query_string) reads
    /// back to an equal filter.
    pub fn to_query_string(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        self.append_to(&mut query);
        query.finish()
    }

    /// Appends the filter's parameters (only those that narrow) to `query`.
    pub fn append_to(&self, query: &mut form_urlencoded::Serializer<'_, String>) {
        let mut list = |name: &str, values: Vec<String>| {
            if !values.is_empty() {
                query.append_pair(name, &values.join(","));
            }
        };
        list(
            "organizationId",
            self.organization_id.iter().map(ToString::to_string).collect(),
        );
        list(
            "actions",
            self.actions.iter().map(super::ActionMatch::as_entry).collect(),
        );
        list(
            "actorIds",
            self.actor_ids.iter().map(ToString::to_string).collect(),
        );
        list(
            "actorTypes",
            self.actor_types
                .iter()
                .map(|t| t.as_str().to_ascii_uppercase())
                .collect(),
        );
        list("targetTypes", self.target_types.clone());
        list("targetIds", self.target_ids.clone());
        list(
            "outcomes",
            self.outcomes
                .iter()
                .map(|o| o.as_str().to_ascii_uppercase())
                .collect(),
        );
        list("since", self.since.iter().map(ToString::to_string).collect());
        list("until", self.until.iter().map(ToString::to_string).collect());
        list("search", self.search.iter().cloned().collect());
    }
}

/// The entries of a comma-separated list, trimmed, empty ones dropped.
fn split(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
}

fn actor_type(entry: &str) -> Result<ActorType> {
    ActorType::parse(&entry.to_ascii_lowercase())
        .ok_or_else(|| Error::bad_input("actorTypes", "must be USER, API_KEY, SYSTEM or ANONYMOUS"))
}

fn outcome(entry: &str) -> Result<Outcome> {
    Outcome::parse(&entry.to_ascii_lowercase())
        .ok_or_else(|| Error::bad_input("outcomes", "must be SUCCESS, FAILURE or DENIED"))
}

fn instant(field: &str, value: &str) -> Result<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|at| Timestamp(at.with_timezone(&chrono::Utc)))
        .map_err(|_| Error::bad_input(field, "not an RFC 3339 date-time"))
}
