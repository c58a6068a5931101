//! Creating invitations: one, or up to 1,000 in a call with one result per row, in input order.
//!
//! Rows are judged one by one (a malformed email, an unknown role, a role the caller may not grant,
//! an existing member, a pending invitation) and every acceptable row is created in one transaction
//! with its audit event and its email job. A call with an idempotency key is remembered for 24
//! hours: the same payload gets the first answer again, another payload a CONFLICT.

use std::collections::{HashMap, HashSet};

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use super::delivery::EmailJob;
use crate::app::App;
use crate::audit::{self, AuditAction, Event, Target};
use crate::authz::{Action, Resource, grants, guard};
use crate::db::invitations::{self as rows, PENDING};
use crate::db::models::{InvitationBatchRow, InvitationRow, RoleRow};
use crate::db::{DbConn, Id, Timestamp, organizations, roles};
use crate::error::{Error, Result};
use crate::identity::{Actor, secrets, validate};
use crate::jobs;

/// Most rows in one call.
pub const MAX_ROWS: usize = 1000;
/// Most roles one invitation may offer.
pub const MAX_ROLES_PER_ROW: usize = 20;
/// Longest personal message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1000;
/// How long an idempotency key is remembered.
const IDEMPOTENCY_WINDOW: TimeDelta = TimeDelta::hours(24);

/// One invitation as asked for.
#[derive(Debug, Clone, Serialize)]
pub struct NewInvitation {
    pub email: String,
    pub role_ids: Vec<Id>,
    pub message: Option<String>,
    pub locale: Option<String>,
}

/// What became of one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RowResult {
    Created {
        invitation_id: Id,
    },
    /// The address belongs to a member already.
    AlreadyMember,
    /// A pending invitation for the address exists: this one.
    DuplicatePending {
        invitation_id: Id,
    },
    /// The row is malformed; `field` names the row's field at fault.
    Invalid {
        field: String,
        message: String,
    },
    /// The caller may not offer one of the row's roles here.
    Forbidden {
        message: String,
    },
}

/// The answer to a bulk call.
#[derive(Debug, Clone)]
pub struct BulkOutcome {
    pub results: Vec<RowResult>,
    /// True when an earlier call with the same idempotency key gave these results.
    pub replayed: bool,
    /// The invitations the results name (created, or pending in the way), as they are now.
    pub invitations: Vec<InvitationRow>,
}

impl BulkOutcome {
    /// The outcome of `results`, with the invitations they name read as they are now.
    async fn of(app: &App, results: Vec<RowResult>, replayed: bool) -> Result<Self> {
        let ids: Vec<Id> = results
            .iter()
            .filter_map(|result| match result {
                RowResult::Created { invitation_id } | RowResult::DuplicatePending { invitation_id } => {
                    Some(*invitation_id)
                }
                _ => None,
            })
            .collect();
        let mut conn = app.db.conn().await?;
        let invitations = rows::find_many(&mut conn, &ids).await?;
        Ok(Self {
            results,
            replayed,
            invitations,
        })
    }
}

/// Creates one invitation; every refusal is an error naming its field.
pub async fn create_one(
    app: &App,
    actor: &Actor,
    organization_id: Id,
    new: NewInvitation,
) -> Result<InvitationRow> {
    guard::check(
        app,
        actor,
        Action::InvitationCreate,
        Resource::Organization(organization_id),
    )
    .await?;
    let (mut results, mut created) = create(app, actor, organization_id, vec![new]).await?;
    match (results.pop(), created.pop()) {
        (Some(RowResult::Created { .. }), Some(row)) => Ok(row),
        (Some(RowResult::AlreadyMember), _) => Err(Error::conflict_because(
            "email",
            "this address belongs to a member of the organization already",
            "ALREADY_MEMBER",
            None,
        )),
        (Some(RowResult::DuplicatePending { invitation_id }), _) => Err(Error::conflict_because(
            "email",
            "a pending invitation for this address exists; resend or revoke it",
            "DUPLICATE_PENDING",
            Some(invitation_id.to_string()),
        )),
        (Some(RowResult::Invalid { field, message }), _) => Err(Error::bad_input(field, message)),
        (Some(RowResult::Forbidden { .. }), _) => Err(Error::Forbidden),
        _ => Err(Error::internal(anyhow::anyhow!(
            "no result for a single invitation"
        ))),
    }
}

/// Creates up to [`MAX_ROWS`] invitations, one result per row in input order.
pub async fn create_many(
    app: &App,
    actor: &Actor,
    organization_id: Id,
    new: Vec<NewInvitation>,
    idempotency_key: Option<String>,
) -> Result<BulkOutcome> {
    guard::check(
        app,
        actor,
        Action::InvitationCreate,
        Resource::Organization(organization_id),
    )
    .await?;
    let Some(key) = idempotency_key else {
        let (results, _) = create(app, actor, organization_id, new).await?;
        return BulkOutcome::of(app, results, false).await;
    };
    let key = validate::name("idempotencyKey", &key, 200)?;
    let digest = secrets::encode(&secrets::sha256(
        serde_json::to_string(&new).map_err(Error::internal)?.as_bytes(),
    ));
    let now = app.now();
    let mut conn = app.db.conn().await?;
    let earlier = rows::find_batch(&mut conn, organization_id, &key).await?;
    if let Some(earlier) = earlier
        .as_ref()
        .filter(|batch| batch.created_at > now - IDEMPOTENCY_WINDOW)
    {
        if earlier.payload_digest != digest {
            return Err(Error::conflict(
                "idempotencyKey",
                "this key was used in the last 24 hours with a different payload",
            ));
        }
        let results = serde_json::from_str(&earlier.results).map_err(Error::internal)?;
        return BulkOutcome::of(app, results, true).await;
    }
    let batch = InvitationBatchRow {
        organization_id,
        idempotency_key: key,
        payload_digest: digest,
        results: String::new(),
        created_at: now,
    };
    let (results, _) = create_remembered(app, actor, organization_id, new, batch, earlier.is_some()).await?;
    BulkOutcome::of(app, results, false).await
}

async fn create(
    app: &App,
    actor: &Actor,
    organization_id: Id,
    new: Vec<NewInvitation>,
) -> Result<(Vec<RowResult>, Vec<InvitationRow>)> {
    let plan = plan(app, actor, organization_id, new).await?;
    let mut conn = app.db.conn().await?;
    let created = conn.transaction(async |tx| commit(tx, &plan).await).await?;
    Ok((plan.results, created))
}

async fn create_remembered(
    app: &App,
    actor: &Actor,
    organization_id: Id,
    new: Vec<NewInvitation>,
    mut batch: InvitationBatchRow,
    replaces_stale: bool,
) -> Result<(Vec<RowResult>, Vec<InvitationRow>)> {
    let plan = plan(app, actor, organization_id, new).await?;
    batch.results = serde_json::to_string(&plan.results).map_err(Error::internal)?;
    let mut conn = app.db.conn().await?;
    let created = conn
        .transaction(async |tx| {
            if replaces_stale {
                rows::delete_batch(tx, organization_id, &batch.idempotency_key).await?;
            }
            // First, so that a concurrent call with the same key waits here and then conflicts.
            rows::insert_batch(tx, &batch).await?;
            commit(tx, &plan).await
        })
        .await?;
    Ok((plan.results, created))
}

/// What a call will do: each row's result, and the rows to write.
struct Plan {
    results: Vec<RowResult>,
    create: Vec<(InvitationRow, Vec<RoleRow>)>,
    /// Pending invitations past their expiry, for addresses invited again: marked expired first.
    lapsed: Vec<InvitationRow>,
    organization_name: String,
    actor: Actor,
    now: Timestamp,
}

/// A row that passed its own checks.
struct Checked {
    index: usize,
    email: String,
    role_ids: Vec<Id>,
    message: Option<String>,
    locale: Option<String>,
}

/// Judges every row; the caller has checked `invitation.create` already.
async fn plan(app: &App, actor: &Actor, organization_id: Id, new: Vec<NewInvitation>) -> Result<Plan> {
    if new.is_empty() {
        return Err(Error::bad_input("invitations", "give at least one invitation"));
    }
    if new.len() > MAX_ROWS {
        return Err(Error::bad_input(
            "invitations",
            format!("at most {MAX_ROWS} invitations per call, got {}", new.len()),
        ));
    }
    let now = app.now();
    let mut conn = app.db.conn().await?;
    let organization = organizations::find(&mut conn, organization_id)
        .await?
        .ok_or(Error::NotFound("organization"))?;
    let mut results: Vec<Option<RowResult>> = vec![None; new.len()];
    let mut checked = Vec::new();
    let mut seen = HashSet::new();
    for (index, row) in new.into_iter().enumerate() {
        match check_row(row) {
            Ok(row) if !seen.insert(row.email.clone()) => {
                results[index] = Some(invalid("email", "appears more than once in this call"));
            }
            Ok(row) => checked.push(Checked { index, ..row }),
            Err(refusal) => results[index] = Some(refusal),
        }
    }

    let offered = offerable_roles(app, actor, &mut conn, organization_id, &checked).await?;
    let emails: Vec<String> = checked.iter().map(|row| row.email.clone()).collect();
    let members: HashSet<String> = rows::members_among(&mut conn, organization_id, &emails)
        .await?
        .into_iter()
        .collect();
    let pending: HashMap<String, InvitationRow> = rows::pending_for(&mut conn, organization_id, &emails)
        .await?
        .into_iter()
        .map(|row| (row.email.clone(), row))
        .collect();
    let ttl = TimeDelta::days(i64::from(app.config.invitation_ttl_days.clamp(1, 30)));
    let mut create = Vec::new();
    let mut lapsed = Vec::new();
    for row in checked {
        let refusal = row.role_ids.iter().find_map(|id| match offered.get(id) {
            Some(Ok(_)) => None,
            Some(Err(refusal)) => Some(refusal.clone()),
            None => Some(invalid(
                "roleIds",
                format!("{id}: no such role in this organization"),
            )),
        });
        if let Some(refusal) = refusal {
            results[row.index] = Some(refusal);
            continue;
        }
        if members.contains(&row.email) {
            results[row.index] = Some(RowResult::AlreadyMember);
            continue;
        }
        if let Some(existing) = pending.get(&row.email) {
            if existing.expires_at > now {
                results[row.index] = Some(RowResult::DuplicatePending {
                    invitation_id: existing.id,
                });
                continue;
            }
            lapsed.push(existing.clone());
        }
        let invitation = InvitationRow {
            id: Id::new_v7(),
            organization_id,
            email: row.email,
            message: row.message,
            locale: row.locale,
            status: PENDING.to_owned(),
            token_hash: None,
            invited_by_user_id: Some(actor.user_id()),
            invited_by_api_key_id: actor.api_key_id,
            expires_at: now + ttl,
            send_count: 1,
            last_sent_at: Some(now),
            accepted_by_user_id: None,
            accepted_at: None,
            revoked_by_user_id: None,
            revoked_at: None,
            ended_at: None,
            created_at: now,
            updated_at: now,
        };
        let roles = row
            .role_ids
            .iter()
            .filter_map(|id| offered.get(id).and_then(|role| role.as_ref().ok()).cloned())
            .collect();
        results[row.index] = Some(RowResult::Created {
            invitation_id: invitation.id,
        });
        create.push((invitation, roles));
    }
    let results = results
        .into_iter()
        .map(|result| result.ok_or_else(|| Error::internal(anyhow::anyhow!("a row without a result"))))
        .collect::<Result<_>>()?;
    Ok(Plan {
        results,
        create,
        lapsed,
        organization_name: organization.name,
        actor: actor.clone(),
        now,
    })
}

/// Writes the plan within `tx`: lapsed invitations expired, new ones inserted with their roles,
/// audit events, and one email job each.
async fn commit(tx: &mut DbConn, plan: &Plan) -> Result<Vec<InvitationRow>> {
    let now = plan.now;
    let mut events = Vec::new();
    for lapsed in &plan.lapsed {
        let mut expired = lapsed.clone();
        super::expiry::mark_expired(&mut expired, now);
        if rows::update_if_pending(tx, &expired, None).await? {
            events.push(super::expiry::expired_event(&expired));
        }
    }
    let invitations: Vec<InvitationRow> = plan.create.iter().map(|(row, _)| row.clone()).collect();
    let links: Vec<(Id, Id)> = plan
        .create
        .iter()
        .flat_map(|(row, roles)| roles.iter().map(|role| (row.id, role.id)))
        .collect();
    rows::insert_all(tx, &invitations, &links).await?;
    let mut jobs_to_send = Vec::with_capacity(plan.create.len());
    for (row, roles) in &plan.create {
        let role_keys: Vec<&str> = roles.iter().map(|role| role.key.as_str()).collect();
        events.push(
            Event::by(&plan.actor, AuditAction::InvitationCreated)
                .in_organization(Some(row.organization_id))
                .target(invitation_target(row))
                .target(Target::new(
                    "organization",
                    row.organization_id,
                    plan.organization_name.clone(),
                ))
                .with("email", &row.email)
                .with("roles", role_keys)
                .with("expiresAt", row.expires_at),
        );
        jobs_to_send.push(EmailJob::for_send(row)?);
    }
    audit::record_all(tx, now, events).await?;
    jobs::enqueue(tx, now, jobs_to_send).await?;
    Ok(invitations)
}

/// An invitation as an audit target.
pub(crate) fn invitation_target(row: &InvitationRow) -> Target {
    Target::new("invitation", row.id, None)
}

/// A row's own checks: its email, message and locale, and that it offers at least one role.
fn check_row(row: NewInvitation) -> Result<Checked, RowResult> {
    let refuse = |error: Error| match error {
        Error::BadUserInput { field, message } => invalid(field, message),
        other => invalid("invitation", other.message()),
    };
    let email = validate::email("email", &row.email).map_err(refuse)?;
    let message = validate::free_text("message", row.message, MAX_MESSAGE_CHARS).map_err(refuse)?;
    let locale = match row.locale.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(tag) if crate::i18n::is_supported(tag) => Some(tag.to_owned()),
        Some(tag) => {
            let known: Vec<&str> = crate::i18n::supported().collect();
            return Err(invalid(
                "locale",
                format!("{tag:?} is not a supported locale (one of {})", known.join(", ")),
            ));
        }
    };
    if row.role_ids.is_empty() {
        return Err(invalid("roleIds", "offer at least one role"));
    }
    let mut role_ids = row.role_ids;
    role_ids.sort();
    role_ids.dedup();
    if role_ids.len() > MAX_ROLES_PER_ROW {
        return Err(invalid(
            "roleIds",
            format!("offer at most {MAX_ROLES_PER_ROW} roles"),
        ));
    }
    Ok(Checked {
        index: 0,
        email,
        role_ids,
        message: Some(message).filter(|text| !text.is_empty()),
        locale,
    })
}

/// For each role the rows offer: the role, or why this caller cannot offer it here. Each role is
/// judged once per call, so a refused role is audited once, not once per row.
async fn offerable_roles(
    app: &App,
    actor: &Actor,
    conn: &mut DbConn,
    organization_id: Id,
    rows: &[Checked],
) -> Result<HashMap<Id, Result<RoleRow, RowResult>>> {
    let mut wanted: Vec<Id> = rows.iter().flat_map(|row| row.role_ids.iter().copied()).collect();
    wanted.sort();
    wanted.dedup();
    let mut offered = HashMap::new();
    if wanted.is_empty() {
        return Ok(offered);
    }
    let may_assign = match guard::check(
        app,
        actor,
        Action::RoleAssign,
        Resource::Organization(organization_id),
    )
    .await
    {
        Ok(()) => true,
        Err(Error::Forbidden) => false,
        Err(other) => return Err(other),
    };
    for role in roles::find_many(conn, &wanted).await? {
        let verdict = if role.organization_id.is_some_and(|id| id != organization_id) {
            // Said exactly as for an unknown id: another organization's roles are not disclosed.
            Err(invalid(
                "roleIds",
                format!("{}: no such role in this organization", role.id),
            ))
        } else if !may_assign {
            Err(RowResult::Forbidden {
                message: "inviting with roles needs role.assign in this organization".to_owned(),
            })
        } else {
            match grants::check_assignment(app, actor, &role, Some(organization_id)).await {
                Ok(()) => Ok(role.clone()),
                Err(Error::Forbidden) => Err(RowResult::Forbidden {
                    message: format!("you may not grant role {:?} in this organization", role.key),
                }),
                Err(Error::BadUserInput { message, .. }) => Err(invalid("roleIds", message)),
                Err(other) => return Err(other),
            }
        };
        offered.insert(role.id, verdict);
    }
    Ok(offered)
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> RowResult {
    RowResult::Invalid {
        field: field.into(),
        message: message.into(),
    }
}
