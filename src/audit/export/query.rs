//! Exports as query strings: the parameters of `GET /audit/export`, parsed with errors naming the
//! parameter, and written back for signed links.

use super::Format;
use crate::audit::read;
use crate::audit::{ActorType, Outcome};
use crate::db::audit::AuditFilter;
use crate::db::{Id, Timestamp};
use crate::error::{Error, Result};

/// An export as asked for in a query string.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub filter: AuditFilter,
    pub format: Format,
    pub newest_first: bool,
}

/// The query string of an export (lists comma-separated, names as in GraphQL), as a signed link
/// carries it.
pub fn query_string(request: &ExportRequest) -> String {
    let filter = &request.filter;
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("format", request.format.as_str());
    if !request.newest_first {
        query.append_pair("order", "OLDEST_FIRST");
    }
    let mut list = |name: &str, values: Vec<String>| {
        if !values.is_empty() {
            query.append_pair(name, &values.join(","));
        }
    };
    list(
        "organizationId",
        filter.organization_id.iter().map(Id::to_string).collect(),
    );
    let actions = filter
        .actions
        .iter()
        .cloned()
        .chain(filter.action_prefixes.iter().map(|p| format!("{p}*")))
        .collect();
    list("actions", actions);
    list("actorIds", filter.actor_ids.iter().map(Id::to_string).collect());
    list(
        "actorTypes",
        filter
            .actor_types
            .iter()
            .map(|t| t.to_ascii_uppercase())
            .collect(),
    );
    list("targetTypes", filter.target_types.clone());
    list("targetIds", filter.target_ids.clone());
    list(
        "outcomes",
        filter.outcomes.iter().map(|o| o.to_ascii_uppercase()).collect(),
    );
    list("since", filter.since.iter().map(Timestamp::to_string).collect());
    list("until", filter.until.iter().map(Timestamp::to_string).collect());
    list("search", filter.search.iter().cloned().collect());
    query.finish()
}

/// Parses `GET /audit/export` parameters; errors name the parameter.
pub fn parse_query(query: &str) -> Result<ExportRequest> {
    let mut filter = AuditFilter::default();
    let mut format = None;
    let mut newest_first = true;
    let split = |value: &str| -> Vec<String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let id = |field: &str, value: &str| -> Result<Id> {
        value
            .parse()
            .map_err(|_| Error::bad_input(field, "not a valid ID"))
    };
    let instant = |field: &str, value: &str| -> Result<Timestamp> {
        chrono::DateTime::parse_from_rfc3339(value)
            .map(|at| Timestamp(at.with_timezone(&chrono::Utc)))
            .map_err(|_| Error::bad_input(field, "not an RFC 3339 date-time"))
    };
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "format" => {
                format = Some(
                    Format::parse(&value)
                        .ok_or_else(|| Error::bad_input("format", "must be csv or ndjson"))?,
                )
            }
            "order" => {
                newest_first = match value.as_ref() {
                    "NEWEST_FIRST" => true,
                    "OLDEST_FIRST" => false,
                    _ => return Err(Error::bad_input("order", "must be NEWEST_FIRST or OLDEST_FIRST")),
                }
            }
            "organizationId" => filter.organization_id = Some(id("organizationId", &value)?),
            "actions" => {
                for entry in split(&value) {
                    read::parse_action_filter(&entry, &mut filter).map_err(|_| {
                        Error::bad_input(
                            "actions",
                            format!("`{entry}` is neither an audit action nor a prefix such as `policy.*`"),
                        )
                    })?;
                }
            }
            "actorIds" => {
                for entry in split(&value) {
                    filter.actor_ids.push(id("actorIds", &entry)?);
                }
            }
            "actorTypes" => {
                for entry in split(&value) {
                    let parsed = ActorType::parse(&entry.to_ascii_lowercase()).ok_or_else(|| {
                        Error::bad_input("actorTypes", "must be USER, API_KEY, SYSTEM or ANONYMOUS")
                    })?;
                    filter.actor_types.push(parsed.as_str().to_owned());
                }
            }
            "targetTypes" => filter.target_types.extend(split(&value)),
            "targetIds" => filter.target_ids.extend(split(&value)),
            "outcomes" => {
                for entry in split(&value) {
                    let parsed = Outcome::parse(&entry.to_ascii_lowercase())
                        .ok_or_else(|| Error::bad_input("outcomes", "must be SUCCESS, FAILURE or DENIED"))?;
                    filter.outcomes.push(parsed.as_str().to_owned());
                }
            }
            "since" => filter.since = Some(instant("since", &value)?),
            "until" => filter.until = Some(instant("until", &value)?),
            "search" => filter.search = Some(value.into_owned()).filter(|s| !s.trim().is_empty()),
            "token" => {}
            other => return Err(Error::bad_input(other, "unknown parameter")),
        }
    }
    let format = format.ok_or_else(|| Error::bad_input("format", "required: csv or ndjson"))?;
    Ok(ExportRequest {
        filter,
        format,
        newest_first,
    })
}

/// The query string without its `token` parameter: what a signed link's signature covers.
pub fn unsigned_part(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| !pair.starts_with("token="))
        .collect::<Vec<_>>()
        .join("&")
}
