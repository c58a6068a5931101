//! Email deliveries as operators see them: the email jobs in the queue, their state and errors,
//! and putting a dead one back.

use crate::app::App;
use crate::audit::{self, AuditAction, Event, Target};
use crate::authz::{Action, Resource, guard};
use crate::db::jobs::{self as rows, JobFilter};
use crate::db::models::JobRow;
use crate::db::{Id, Page, PageOf};
use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::jobs::JobKind;

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// `pending`, `running`, `succeeded`, `dead` (empty: all).
    pub statuses: Vec<String>,
    /// One organization's deliveries (`email.list` there); `None`: all (`email.list` gateway-wide).
    pub organization_id: Option<Id>,
    /// The recipient address, exactly (lower case).
    pub to: Option<String>,
}

pub async fn list(app: &App, actor: &Actor, filter: &DeliveryFilter, page: &Page) -> Result<PageOf<JobRow>> {
    let scope = filter
        .organization_id
        .map_or(Resource::Gateway, Resource::Organization);
    guard::check(app, actor, Action::EmailList, scope).await?;
    let rows_filter = JobFilter {
        kinds: JobKind::EMAIL.iter().map(|kind| kind.name().to_owned()).collect(),
        statuses: filter.statuses.clone(),
        organization_ids: filter.organization_id.map(|id| vec![id]),
        recipient: filter.to.as_deref().map(|to| to.trim().to_lowercase()),
    };
    let mut conn = app.db.reader().await?;
    rows::list(&mut conn, &rows_filter, page).await
}

/// One delivery, when the caller may see it.
pub async fn get(app: &App, actor: &Actor, id: Id) -> Result<Option<JobRow>> {
    let mut conn = app.db.conn().await?;
    let Some(row) = rows::find(&mut conn, id).await?.filter(is_email) else {
        return Ok(None);
    };
    let scope = row
        .organization_id
        .map_or(Resource::Gateway, Resource::Organization);
    Ok(guard::allows(app, actor, Action::EmailList, scope)
        .await?
        .then_some(row))
}

/// Puts a dead delivery back in the queue, due now, with a fresh set of attempts.
pub async fn retry(app: &App, actor: &Actor, id: Id) -> Result<JobRow> {
    let row = get(app, actor, id)
        .await?
        .ok_or(Error::NotFound("email delivery"))?;
    let scope = row
        .organization_id
        .map_or(Resource::Gateway, Resource::Organization);
    guard::check(app, actor, Action::EmailRetry, scope).await?;
    let now = app.now();
    let event = Event::by(actor, AuditAction::EmailDeliveryRetried)
        .in_organization(row.organization_id)
        .target(Target::new("email_delivery", row.id, None))
        .with("to", &row.recipient)
        .with("lastError", &row.last_error);
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| {
        if !rows::revive(tx, id, now).await? {
            return Err(Error::conflict_because(
                "id",
                "only a dead delivery can be retried; this one is queued, being sent or delivered",
                "NOT_DEAD",
                None,
            ));
        }
        tx.jobs_enqueued();
        audit::record(tx, now, event).await.map(|_| ())
    })
    .await?;
    rows::find(&mut conn, id)
        .await?
        .ok_or(Error::NotFound("email delivery"))
}

fn is_email(row: &JobRow) -> bool {
    JobKind::parse(&row.kind).is_some_and(|kind| JobKind::EMAIL.contains(&kind))
}
