//! Exports: the events a reader may see, streamed in pages as RFC 4180 CSV or NDJSON so memory stays
//! flat however long the log is; and signed links for browsers that cannot send an `Authorization`
//! header.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::read;
use super::{ActorType, AuditAction, Event, Outcome, Target};
use crate::app::App;
use crate::db::audit::{self as rows, AuditFilter, Scope, SeqPage};
use crate::db::models::AuditEventRow;
use crate::db::{Id, Timestamp};
use crate::error::{Error, Result};
use crate::identity::authenticate::revalidate;
use crate::identity::{Actor, AuthMethod, ClientInfo, secrets};

/// Events read per page while streaming.
const PAGE: i64 = 1_000;
/// How long a signed export link works.
pub const LINK_LIFETIME: TimeDelta = TimeDelta::minutes(10);
const LINK_AUDIENCE: &str = "portcullis-audit-export";

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "ndjson" => Some(Self::Ndjson),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8; header=present",
            Self::Ndjson => "application/x-ndjson",
        }
    }
}

/// The CSV header row; NDJSON lines carry the same data nested as in GraphQL.
pub const CSV_COLUMNS: [&str; 16] = [
    "id",
    "occurred_at",
    "action",
    "outcome",
    "actor_type",
    "actor_id",
    "actor_display_name",
    "organization_id",
    "targets",
    "ip",
    "user_agent",
    "request_id",
    "metadata",
    "version",
    "hash",
    "previous_hash",
];

/// An export in progress: pages through a snapshot of the log (events committed before it began).
pub struct Export {
    app: App,
    scope: Scope,
    filter: AuditFilter,
    format: Format,
    newest_first: bool,
    sensitive: bool,
    /// The position to continue after, in reading order.
    cursor: Option<i64>,
    /// Events after this position (committed after the export began) are left out.
    snapshot: i64,
    started: bool,
    finished: bool,
}

impl Export {
    /// Authorizes `actor` for `filter` (as `auditEvents` would), records the export, and returns
    /// the stream's state.
    pub async fn begin(
        app: &App,
        actor: &Actor,
        filter: AuditFilter,
        format: Format,
        newest_first: bool,
    ) -> Result<Self> {
        let scope = read::scope_for(app, actor, &filter).await?;
        let sensitive = read::sees_sensitive(app, actor, scope).await?;
        let now = app.now();
        let event = Event::by(actor, AuditAction::AuditExported)
            .in_organization(filter.organization_id)
            .with("format", format.as_str())
            .with("filter", describe(&filter));
        let mut conn = app.db.conn().await?;
        conn.transaction(async |tx| super::record(tx, now, event).await)
            .await?;
        let snapshot = rows::last_seq(&mut conn).await?;
        Ok(Self {
            app: app.clone(),
            scope,
            filter,
            format,
            newest_first,
            sensitive,
            cursor: None,
            snapshot,
            started: false,
            finished: false,
        })
    }

    /// The next chunk of the file, or `None` at its end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        if self.finished {
            return Ok(None);
        }
        let page = if self.newest_first {
            SeqPage {
                after: Some(self.cursor.unwrap_or(self.snapshot + 1)),
                before: None,
                limit: PAGE,
                newest_first: true,
                from_end: false,
            }
        } else {
            SeqPage {
                after: self.cursor,
                before: Some(self.snapshot + 1),
                limit: PAGE,
                newest_first: false,
                from_end: false,
            }
        };
        let mut conn = self.app.db.conn().await?;
        let mut events = rows::list(&mut conn, self.scope, &self.filter, &page).await?;
        drop(conn);
        if (events.len() as i64) < PAGE {
            self.finished = true;
        }
        if let Some(last) = events.last() {
            self.cursor = Some(last.seq);
        }
        if !self.sensitive {
            events.iter_mut().for_each(read::mask);
        }
        let mut out = Vec::with_capacity(events.len() * 512);
        match self.format {
            Format::Csv => {
                let mut writer = csv::WriterBuilder::new()
                    .terminator(csv::Terminator::CRLF)
                    .from_writer(&mut out);
                if !self.started {
                    writer.write_record(CSV_COLUMNS).map_err(Error::internal)?;
                }
                for event in &events {
                    writer.write_record(csv_record(event)).map_err(Error::internal)?;
                }
                writer.flush().map_err(Error::internal)?;
            }
            Format::Ndjson => {
                for event in &events {
                    serde_json::to_writer(&mut out, &json_record(event)).map_err(Error::internal)?;
                    out.push(b'\n');
                }
            }
        }
        self.started = true;
        Ok(Some(out))
    }
}

/// The GraphQL names of stored values (`USER`, `SUCCESS`), shared by both formats.
fn actor_type_name(stored: &str) -> &'static str {
    match ActorType::parse(stored) {
        Some(ActorType::ApiKey) => "API_KEY",
        Some(ActorType::System) => "SYSTEM",
        Some(ActorType::Anonymous) => "ANONYMOUS",
        Some(ActorType::User) | None => "USER",
    }
}

fn outcome_name(stored: &str) -> &'static str {
    match Outcome::parse(stored) {
        Some(Outcome::Failure) => "FAILURE",
        Some(Outcome::Denied) => "DENIED",
        Some(Outcome::Success) | None => "SUCCESS",
    }
}

fn csv_record(event: &AuditEventRow) -> [String; 16] {
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    [
        event.id.to_string(),
        event.occurred_at.to_string(),
        event.action.clone(),
        outcome_name(&event.outcome).to_owned(),
        actor_type_name(&event.actor_type).to_owned(),
        event.actor_id.map(|id| id.to_string()).unwrap_or_default(),
        text(&event.actor_name),
        event.organization_id.map(|id| id.to_string()).unwrap_or_default(),
        event.targets.clone(),
        text(&event.ip),
        text(&event.user_agent),
        text(&event.request_id),
        event.metadata.clone(),
        event.version.to_string(),
        event.hash.clone(),
        event.prev_hash.clone(),
    ]
}

/// One NDJSON line: the event as `auditEvents` shows it.
pub fn json_record(event: &AuditEventRow) -> Value {
    let targets: Vec<Target> = serde_json::from_str(&event.targets).unwrap_or_default();
    json!({
        "id": event.id,
        "occurredAt": event.occurred_at.to_string(),
        "action": event.action,
        "outcome": outcome_name(&event.outcome),
        "actor": {
            "type": actor_type_name(&event.actor_type),
            "id": event.actor_id,
            "displayName": event.actor_name,
        },
        "organizationId": event.organization_id,
        "targets": targets,
        "context": { "ip": event.ip, "userAgent": event.user_agent, "requestId": event.request_id },
        "metadata": serde_json::from_str::<Value>(&event.metadata).unwrap_or(Value::Null),
        "version": event.version,
        "hash": event.hash,
        "previousHash": event.prev_hash,
    })
}

/// The filter as recorded in the `audit.exported` event.
fn describe(filter: &AuditFilter) -> Value {
    json!({
        "organizationId": filter.organization_id,
        "actions": filter.actions,
        "actionPrefixes": filter.action_prefixes,
        "actorIds": filter.actor_ids,
        "actorTypes": filter.actor_types,
        "targetTypes": filter.target_types,
        "targetIds": filter.target_ids,
        "outcomes": filter.outcomes,
        "since": filter.since,
        "until": filter.until,
        "search": filter.search,
    })
}

/// What a signed export link grants: one query string, to one user, for a few minutes.
#[derive(Debug, Serialize, Deserialize)]
struct LinkClaims {
    iss: String,
    aud: String,
    /// The user.
    sub: Id,
    /// The session or API key the link was made with; the link dies with it.
    session: Option<Id>,
    api_key: Option<Id>,
    /// SHA-256 of the query string the link was signed for (without `token`).
    query: String,
    exp: i64,
}

/// Signs a link for `query` (the export's parameters, without `token`) valid for [`LINK_LIFETIME`].
pub fn sign_link(app: &App, actor: &Actor, query: &str) -> Result<(String, Timestamp)> {
    let expires_at = app.now() + LINK_LIFETIME;
    let claims = LinkClaims {
        iss: app.keys.issuer().to_owned(),
        aud: LINK_AUDIENCE.to_owned(),
        sub: actor.user_id(),
        session: actor.session_id,
        api_key: actor.api_key_id,
        query: query_digest(query),
        exp: expires_at.unix_seconds(),
    };
    let token = app.keys.sign(&claims)?;
    let url = format!(
        "{}/audit/export?{query}&token={token}",
        app.config.public_url().trim_end_matches('/')
    );
    Ok((url, expires_at))
}

/// The actor a signed link speaks for, if its signature, expiry and query check out and the session
/// or API key it was made with is still live.
pub async fn link_actor(app: &App, token: &str, query: &str, client: &ClientInfo) -> Result<Actor> {
    let now = app.now();
    let claims: LinkClaims = app
        .keys
        .verify_signed(token, &app.db, now, Some(LINK_AUDIENCE))
        .await
        .map_err(|_| Error::unauthenticated("invalid export link"))?;
    if claims.exp <= now.unix_seconds() {
        return Err(Error::unauthenticated("the export link has expired"));
    }
    if !secrets::hashes_match(claims.query.as_bytes(), query_digest(query).as_bytes()) {
        return Err(Error::unauthenticated(
            "the export link was signed for other parameters",
        ));
    }
    let mut conn = app.db.conn().await?;
    let user = crate::db::users::find(&mut conn, claims.sub)
        .await?
        .ok_or_else(|| Error::unauthenticated("invalid export link"))?;
    drop(conn);
    let actor = Actor {
        user,
        method: if claims.api_key.is_some() {
            AuthMethod::ApiKey
        } else {
            AuthMethod::Password
        },
        session_id: claims.session,
        api_key_id: claims.api_key,
        mfa: false,
        client: client.clone(),
    };
    revalidate(app, &actor).await?;
    Ok(actor)
}

fn query_digest(query: &str) -> String {
    secrets::encode(&secrets::sha256(query.as_bytes()))
}

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
