//! Exports as query strings: the parameters of `GET /audit/export` (a format, an order and the
//! filter's own parameters), parsed with errors naming the parameter, and written back for signed
//! links.

use super::Format;
use crate::audit::AuditFilter;
use crate::error::{Error, Result};

/// An export as asked for in a query string.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub filter: AuditFilter,
    pub format: Format,
    pub newest_first: bool,
}

/// The query string of an export, as a signed link carries it.
pub fn query_string(request: &ExportRequest) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("format", request.format.as_str());
    if !request.newest_first {
        query.append_pair("order", "OLDEST_FIRST");
    }
    request.filter.append_to(&mut query);
    query.finish()
}

/// Parses `GET /audit/export` parameters; errors name the parameter.
pub fn parse_query(query: &str) -> Result<ExportRequest> {
    let mut format = None;
    let mut newest_first = true;
    let filter = AuditFilter::from_query_pairs(query, |name, value| {
        match name {
            "format" => {
                format = Some(
                    Format::parse(value)
                        .ok_or_else(|| Error::bad_input("format", "must be csv or ndjson"))?,
                )
            }
            "order" => {
                newest_first = match value {
                    "NEWEST_FIRST" => true,
                    "OLDEST_FIRST" => false,
                    _ => return Err(Error::bad_input("order", "must be NEWEST_FIRST or OLDEST_FIRST")),
                }
            }
            "token" => {}
            other => return Err(Error::bad_input(other, "unknown parameter")),
        }
        Ok(())
    })?;
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
