//! Exports: the events a reader may see, streamed in pages as RFC 4180 CSV or NDJSON so memory stays
//! flat however long the log is.

mod link;
mod query;

pub use link::{LINK_LIFETIME, link_actor, sign_link};
pub use query::{ExportRequest, parse_query, query_string, unsigned_part};

use std::borrow::Cow;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{AuditAction, Event};
use super::{AuditFilter, read};
use crate::app::App;
use crate::db::audit::{self as rows, Scope};
use crate::db::models::AuditEventRow;
use crate::db::replicas::ReadAfter;
use crate::db::{DbConn, Id, Page};
use crate::error::{Error, Result};
use crate::identity::Actor;

/// Events read per page while streaming.
const PAGE: i64 = 1_000;

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
        // A running export holds a pooled connection in its snapshot for as long as the download
        // lasts: only so many at once, so that downloads cannot starve the requests.
        let slot = app
            .export_slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Unavailable {
                reason: "EXPORTS_BUSY",
            })?;
        {
            let mut conn = app.db.conn().await?;
            conn.transaction(async |tx| super::record(tx, now, event).await)
                .await?;
        }
        // The export holds what committed before it began, its own record included.
        app.audit_sequencer.settle_for_read().await;
        let conn = app.db.reader_after(ReadAfter::Latest).await?;
        let (sender, pages) = mpsc::channel(READ_AHEAD);
        tokio::spawn(async move {
            read_pages(conn, scope, filter, newest_first, sender).await;
            drop(slot);
        });
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

/// Reads the snapshot page by page into `pages` until it is done or the export is dropped, all in
/// one database snapshot: a purge or an erasure committed meanwhile changes nothing in the file.
async fn read_pages(
    mut conn: DbConn,
    scope: Scope,
    filter: AuditFilter,
    newest_first: bool,
    pages: mpsc::Sender<Result<Vec<AuditEventRow>>>,
) {
    let read = async {
        conn.snapshot(async |tx| {
            // The log's head as this snapshot sees it: what the export holds.
            let snapshot = rows::last_seq(tx).await?;
            let mut cursor: Option<i64> = None;
            let criteria = filter.criteria();
            loop {
                let page = if newest_first {
                    Page::after(Some(cursor.unwrap_or(snapshot + 1)), PAGE).newest_first()
                } else {
                    Page::after(cursor, PAGE).before(snapshot + 1)
                };
                let batch = rows::list(tx, scope, &criteria, &page).await?;
                let (events, last_page) = (batch.rows, !batch.has_more);
                cursor = events.last().map(|e| e.seq).or(cursor);
                // A dropped receiver means the download ended: stop reading.
                if events.is_empty() || pages.send(Ok(events)).await.is_err() || last_page {
                    return Ok(());
                }
            }
        })
        .await
    };
    if let Err(error) = read.await {
        let _ = pages.send(Err(error)).await;
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
        event.outcome.public_name().as_bytes().into(),
        event.actor_type.public_name().as_bytes().into(),
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
            outcome: event.outcome.public_name(),
            actor: JsonActor {
                actor_type: event.actor_type.public_name(),
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
    // The stored names, as the event has always recorded them.
    let criteria = filter.criteria();
    json!({
        "organizationId": criteria.organization_id,
        "actions": criteria.actions,
        "actionPrefixes": criteria.action_prefixes,
        "actorIds": criteria.actor_ids,
        "actorTypes": criteria.actor_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "targetTypes": criteria.target_types,
        "targetIds": criteria.target_ids,
        "outcomes": criteria.outcomes.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
        "since": criteria.since,
        "until": criteria.until,
        "search": criteria.search,
    })
}
