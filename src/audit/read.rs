//! Reading the log under its privacy rules: everyone reads the events they acted in; readers of an
//! organization's log (its administrators and auditors) read that organization's; the gateway-wide
//! log needs `audit.read` on the gateway. IP and user agent are masked without `audit.read_sensitive`.

use super::AuditFilter;
use crate::app::App;
use crate::authz::{Action, Resource, guard};
use crate::db::audit::{self as rows, Scope};
use crate::db::models::AuditEventRow;
use crate::db::{Id, Page, audit};
use crate::error::{Error, Result};
use crate::identity::Actor;

use super::chain::{self, Verification};

/// What a reader sees in place of a masked field.
pub const MASKED: &str = "[masked]";

/// Events the reader may see, with what they may see of them.
pub struct Visible {
    pub rows: Vec<AuditEventRow>,
    /// Whether more lie beyond the page in its direction.
    pub has_more: bool,
    pub scope: Scope,
}

/// The scope `filter` asks for, once the reader is known to be allowed it: an organization's log,
/// or (without `organizationId`) the whole log.
pub async fn scope_for(app: &App, actor: &Actor, filter: &AuditFilter) -> Result<Scope> {
    match filter.organization_id {
        Some(org) => {
            guard::check(app, actor, Action::AuditRead, Resource::Organization(org)).await?;
            Ok(Scope::Organization(org))
        }
        None => {
            guard::check(app, actor, Action::AuditRead, Resource::Gateway).await?;
            Ok(Scope::All)
        }
    }
}

/// The reader's own events (as actor, directly or through an API key).
pub async fn own_scope(app: &App, actor: &Actor) -> Result<Scope> {
    guard::check(app, actor, Action::AuditRead, Resource::User(actor.user_id())).await?;
    Ok(Scope::ActorUser(actor.user_id()))
}

/// A page of events within `scope` (already authorized), masked for the reader.
pub async fn list(
    app: &App,
    actor: &Actor,
    scope: Scope,
    filter: &AuditFilter,
    page: &Page<i64>,
) -> Result<Visible> {
    app.audit_sequencer.settle_for_read().await;
    let mut conn = app.db.reader_up_to_date().await?;
    let mut window = rows::list(&mut conn, scope, &filter.criteria(), page).await?;
    drop(conn);
    if !sees_sensitive(app, actor, scope).await? {
        window.rows.iter_mut().for_each(mask);
    }
    Ok(Visible {
        rows: window.rows,
        has_more: window.has_more,
        scope,
    })
}

pub async fn count(app: &App, scope: Scope, filter: &AuditFilter) -> Result<i64> {
    app.audit_sequencer.settle_for_read().await;
    let mut conn = app.db.reader_up_to_date().await?;
    rows::count(&mut conn, scope, &filter.criteria()).await
}

/// One event, if the reader may see it (else `None`, as if it did not exist).
pub async fn get(app: &App, actor: &Actor, id: Id) -> Result<Option<AuditEventRow>> {
    app.audit_sequencer.settle_for_read().await;
    let mut conn = app.db.conn().await?;
    let Some(mut row) = audit::find(&mut conn, id).await? else {
        return Ok(None);
    };
    drop(conn);
    let resource = row
        .organization_id
        .map_or(Resource::Gateway, Resource::Organization);
    let scope = if guard::allows(app, actor, Action::AuditRead, resource).await? {
        row.organization_id.map_or(Scope::All, Scope::Organization)
    } else if row.actor_user_id == Some(actor.user_id())
        && guard::allows(app, actor, Action::AuditRead, Resource::User(actor.user_id())).await?
    {
        Scope::ActorUser(actor.user_id())
    } else {
        return Ok(None);
    };
    if !sees_sensitive(app, actor, scope).await? {
        mask(&mut row);
    }
    Ok(Some(row))
}

/// Verifies the chain of `organization_id` (or the gateway-wide chain).
pub async fn verify(app: &App, actor: &Actor, organization_id: Option<Id>) -> Result<Verification> {
    let resource = organization_id.map_or(Resource::Gateway, Resource::Organization);
    guard::check(app, actor, Action::AuditVerify, resource).await?;
    app.audit_sequencer.settle_for_read().await;
    chain::verify(&app.db, organization_id).await
}

pub(crate) async fn sees_sensitive(app: &App, actor: &Actor, scope: Scope) -> Result<bool> {
    let resource = match scope {
        Scope::All => Resource::Gateway,
        Scope::Organization(org) => Resource::Organization(org),
        // One's own events: only a gateway-wide grant unmasks them.
        Scope::ActorUser(_) => Resource::Gateway,
    };
    guard::allows(app, actor, Action::AuditReadSensitive, resource).await
}

pub(crate) fn mask(row: &mut AuditEventRow) {
    if row.ip.is_some() {
        row.ip = Some(MASKED.to_owned());
    }
    if row.user_agent.is_some() {
        row.user_agent = Some(MASKED.to_owned());
    }
}

/// One bar of a dashboard chart: events in `[start, start + interval)` with one key.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub start: crate::db::Timestamp,
    pub key: String,
    pub count: i64,
}

/// Most buckets one `auditStats` call returns.
pub const MAX_BUCKETS: i64 = 10_000;

/// Counts per time bucket and key, authorized like `auditEvents`; `true` when cut at [`MAX_BUCKETS`].
pub async fn stats(
    app: &App,
    actor: &Actor,
    filter: &AuditFilter,
    group_by: rows::GroupBy,
    interval: rows::Interval,
) -> Result<(Vec<Bucket>, bool)> {
    let scope = scope_for(app, actor, filter).await?;
    app.audit_sequencer.settle_for_read().await;
    let mut conn = app.db.reader_up_to_date().await?;
    let mut found = rows::stats(
        &mut conn,
        scope,
        &filter.criteria(),
        group_by,
        interval,
        MAX_BUCKETS + 1,
    )
    .await?;
    let truncated = found.len() as i64 > MAX_BUCKETS;
    found.truncate(MAX_BUCKETS as usize);
    let suffix = match interval {
        rows::Interval::Hour => ":00:00Z",
        rows::Interval::Day => "T00:00:00Z",
    };
    let buckets = found
        .into_iter()
        .map(|(bucket, key, count)| {
            let start = chrono::DateTime::parse_from_rfc3339(&format!("{bucket}{suffix}"))
                .map(|at| crate::db::Timestamp(at.with_timezone(&chrono::Utc)))
                .map_err(|e| Error::internal(anyhow::anyhow!("bucket {bucket}: {e}")))?;
            Ok(Bucket { start, key, count })
        })
        .collect::<Result<_>>()?;
    Ok((buckets, truncated))
}
