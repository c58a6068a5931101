//! Exports: the events a reader may see, streamed in pages as RFC 4180 CSV or NDJSON so memory stays
//! flat however long the log is; and signed links for browsers that cannot send an `Authorization`
//! header.

use std::borrow::Cow;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::read;
use super::{ActorType, AuditAction, Event, Outcome};
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

/// An export in progress over a snapshot of the log (the events committed before it began). A task
/// reads the next pages from the database while the current one is written out.
pub struct Export {
    format: Format,
    sensitive: bool,
    pages: mpsc::Receiver<Result<Vec<AuditEventRow>>>,
    started: bool,
}

/// Pages read ahead of the one being written.
const READ_AHEAD: usize = 2;

impl Export {
    /// Authorizes `actor` for `filter` (as `auditEvents` would), records the export, and starts
    /// reading.
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
        drop(conn);
        let (sender, pages) = mpsc::channel(READ_AHEAD);
        tokio::spawn(read_pages(
            app.clone(),
            scope,
            filter,
            newest_first,
            snapshot,
            sender,
        ));
        Ok(Self {
            format,
            sensitive,
            pages,
            started: false,
        })
    }

    /// The next chunk of the file, or `None` at its end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        let mut events = match self.pages.recv().await {
            None if self.started => return Ok(None),
            None => Vec::new(), // an empty export still has its CSV header
            Some(page) => page?,
        };
        if !self.sensitive {
            events.iter_mut().for_each(read::mask);
        }
        let mut out = Vec::with_capacity(events.len() * 640);
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
                    serde_json::to_writer(&mut out, &JsonRecord::of(event)?).map_err(Error::internal)?;
                    out.push(b'\n');
                }
            }
        }
        self.started = true;
        Ok(Some(out))
    }
}

/// Reads the snapshot page by page into `pages` until it is done or the export is dropped.
async fn read_pages(
    app: App,
    scope: Scope,
    filter: AuditFilter,
    newest_first: bool,
    snapshot: i64,
    pages: mpsc::Sender<Result<Vec<AuditEventRow>>>,
) {
    let mut cursor: Option<i64> = None;
    loop {
        let page = SeqPage {
            after: if newest_first {
                Some(cursor.unwrap_or(snapshot + 1))
            } else {
                cursor
            },
            before: (!newest_first).then_some(snapshot + 1),
            limit: PAGE,
            newest_first,
            from_end: false,
        };
        let read = async {
            let mut conn = app.db.conn().await?;
            rows::list(&mut conn, scope, &filter, &page).await
        };
        match read.await {
            Ok(events) => {
                let last_page = (events.len() as i64) < PAGE;
                cursor = events.last().map(|e| e.seq).or(cursor);
                if events.is_empty() || pages.send(Ok(events)).await.is_err() || last_page {
                    return;
                }
            }
            Err(error) => {
                let _ = pages.send(Err(error)).await;
                return;
            }
        }
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

fn csv_record(event: &AuditEventRow) -> [Cow<'_, [u8]>; 16] {
    fn text(value: &Option<String>) -> Cow<'_, [u8]> {
        value.as_deref().unwrap_or_default().as_bytes().into()
    }
    fn id(value: Option<Id>) -> Cow<'static, [u8]> {
        value
            .map(|id| id.to_string())
            .unwrap_or_default()
            .into_bytes()
            .into()
    }
    fn owned(text: String) -> Cow<'static, [u8]> {
        text.into_bytes().into()
    }
    [
        owned(event.id.to_string()),
        owned(event.occurred_at.to_string()),
        event.action.as_bytes().into(),
        outcome_name(&event.outcome).as_bytes().into(),
        actor_type_name(&event.actor_type).as_bytes().into(),
        id(event.actor_id),
        text(&event.actor_name),
        id(event.organization_id),
        event.targets.as_bytes().into(),
        text(&event.ip),
        text(&event.user_agent),
        text(&event.request_id),
        event.metadata.as_bytes().into(),
        owned(event.version.to_string()),
        event.hash.as_bytes().into(),
        event.prev_hash.as_bytes().into(),
    ]
}

/// One NDJSON line, shaped as `auditEvents` shows an event; the stored JSON of targets and
/// metadata is passed through as it is, not parsed and rebuilt.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRecord<'a> {
    id: Id,
    occurred_at: String,
    action: &'a str,
    outcome: &'static str,
    actor: JsonActor<'a>,
    organization_id: Option<Id>,
    targets: &'a RawValue,
    context: JsonContext<'a>,
    metadata: &'a RawValue,
    version: i32,
    hash: &'a str,
    previous_hash: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonActor<'a> {
    #[serde(rename = "type")]
    actor_type: &'static str,
    id: Option<Id>,
    display_name: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonContext<'a> {
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    request_id: Option<&'a str>,
}

impl<'a> JsonRecord<'a> {
    fn of(event: &'a AuditEventRow) -> Result<Self> {
        let raw =
            |text: &'a str| -> Result<&'a RawValue> { serde_json::from_str(text).map_err(Error::internal) };
        Ok(Self {
            id: event.id,
            occurred_at: event.occurred_at.to_string(),
            action: &event.action,
            outcome: outcome_name(&event.outcome),
            actor: JsonActor {
                actor_type: actor_type_name(&event.actor_type),
                id: event.actor_id,
                display_name: event.actor_name.as_deref(),
            },
            organization_id: event.organization_id,
            targets: raw(&event.targets)?,
            context: JsonContext {
                ip: event.ip.as_deref(),
                user_agent: event.user_agent.as_deref(),
                request_id: event.request_id.as_deref(),
            },
            metadata: raw(&event.metadata)?,
            version: event.version,
            hash: &event.hash,
            previous_hash: &event.prev_hash,
        })
    }
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
