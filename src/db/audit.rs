//! Queries over the audit log: appending to a hash chain in commit order, filtered keyset reads,
//! and the ordered walks that verification needs.

use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_async::RunQueryDsl;

use super::models::{AuditChainRow, AuditEventRow, AuditTargetRow};
use super::schema::{audit_chains, audit_events, audit_state, audit_targets};
use super::types::{Id, Timestamp};
use super::users::{like_pattern, lower};
use super::{DbConn, with_conn};
use crate::error::Result;

/// Whose events a reader may see: the whole log, one organization's, or those a user acted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Organization(Id),
    ActorUser(Id),
}

/// Narrows a read; empty lists and `None` do not filter.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub organization_id: Option<Id>,
    /// Exact action names.
    pub actions: Vec<String>,
    /// Action name prefixes (`policy.` for `policy.*`).
    pub action_prefixes: Vec<String>,
    pub actor_ids: Vec<Id>,
    pub actor_types: Vec<String>,
    pub target_types: Vec<String>,
    pub target_ids: Vec<String>,
    pub outcomes: Vec<String>,
    /// Inclusive lower bound of `occurred_at`.
    pub since: Option<Timestamp>,
    /// Exclusive upper bound of `occurred_at`.
    pub until: Option<Timestamp>,
    /// Case-insensitive substring of the actor's or a target's display name.
    pub search: Option<String>,
}

/// A window of the log in `seq` order (commit order): stable while events are appended.
#[derive(Debug, Clone, Copy)]
pub struct SeqPage {
    /// Only events after this one in reading order.
    pub after: Option<i64>,
    /// Only events before this one in reading order.
    pub before: Option<i64>,
    /// Rows to fetch (callers ask for one more than they show, to learn whether more exist).
    pub limit: i64,
    /// Reading order: newest first (descending `seq`) or oldest first.
    pub newest_first: bool,
    /// Take the rows from the far end of the window (`last`), still returned in reading order.
    pub from_end: bool,
}

/// The gateway-wide chain's key; organizations' chains are keyed by their id.
pub const GATEWAY_CHAIN: &str = "gateway";

pub fn chain_key(organization_id: Option<Id>) -> String {
    organization_id.map_or_else(|| GATEWAY_CHAIN.to_owned(), |id| id.to_string())
}

/// Takes the next `count` positions in the log and returns the last. On PostgreSQL the row lock is
/// held until commit, so positions are handed out in commit order and a reader never sees a later
/// event before an earlier one.
pub async fn take_seqs(conn: &mut DbConn, count: i64) -> Result<i64> {
    let seq = with_conn!(conn, |c| {
        diesel::update(audit_state::table.find(1))
            .set(audit_state::last_seq.eq(audit_state::last_seq + count))
            .execute(c)
            .await?;
        audit_state::table
            .find(1)
            .select(audit_state::last_seq)
            .get_result(c)
            .await
    })?;
    Ok(seq)
}

/// The position of the newest committed event (0 for an empty log).
pub async fn last_seq(conn: &mut DbConn) -> Result<i64> {
    let seq = with_conn!(conn, |c| audit_state::table
        .find(1)
        .select(audit_state::last_seq)
        .get_result(c)
        .await)?;
    Ok(seq)
}

/// Tells other instances that the log has grown (PostgreSQL; delivered at commit, so listeners
/// that then read the log find the new events).
pub async fn announce(conn: &mut DbConn) -> Result<()> {
    super::notify::announce(conn, super::notify::AUDIT_CHANNEL).await
}

pub async fn chain(conn: &mut DbConn, key: &str) -> Result<Option<AuditChainRow>> {
    let row = with_conn!(conn, |c| audit_chains::table
        .find(key)
        .select(AuditChainRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

pub async fn save_chain(conn: &mut DbConn, row: &AuditChainRow) -> Result<()> {
    with_conn!(conn, |c| diesel::insert_into(audit_chains::table)
        .values(row)
        .on_conflict(audit_chains::chain)
        .do_update()
        .set((
            audit_chains::head_seq.eq(row.head_seq),
            audit_chains::head_hash.eq(&row.head_hash),
            audit_chains::anchor_seq.eq(row.anchor_seq),
            audit_chains::anchor_hash.eq(&row.anchor_hash),
        ))
        .execute(c)
        .await)?;
    Ok(())
}

/// Rows per INSERT statement: well under both backends' limits on bound parameters.
const INSERT_CHUNK: usize = 500;

/// Inserts events and their targets, many rows per statement (on SQLite in one hop to the blocking
/// pool, through diesel's synchronous batch insert, which diesel-async does not offer there).
pub async fn insert(conn: &mut DbConn, events: &[AuditEventRow], targets: &[AuditTargetRow]) -> Result<()> {
    match conn {
        DbConn::Postgres(c, _) => {
            let c: &mut diesel_async::AsyncPgConnection = &mut *c;
            for chunk in events.chunks(INSERT_CHUNK) {
                diesel::insert_into(audit_events::table)
                    .values(chunk)
                    .execute(c)
                    .await?;
            }
            for chunk in targets.chunks(INSERT_CHUNK) {
                diesel::insert_into(audit_targets::table)
                    .values(chunk)
                    .execute(c)
                    .await?;
            }
        }
        DbConn::Sqlite(c, _) => {
            let (events, targets) = (events.to_vec(), targets.to_vec());
            c.spawn_blocking(move |inner| {
                for chunk in events.chunks(INSERT_CHUNK) {
                    diesel::RunQueryDsl::execute(
                        diesel::insert_into(audit_events::table).values(chunk),
                        inner,
                    )?;
                }
                for chunk in targets.chunks(INSERT_CHUNK) {
                    diesel::RunQueryDsl::execute(
                        diesel::insert_into(audit_targets::table).values(chunk),
                        inner,
                    )?;
                }
                Ok(())
            })
            .await?;
        }
    }
    Ok(())
}

pub async fn find(conn: &mut DbConn, id: Id) -> Result<Option<AuditEventRow>> {
    let row = with_conn!(conn, |c| audit_events::table
        .find(id)
        .select(AuditEventRow::as_select())
        .get_result(c)
        .await
        .optional())?;
    Ok(row)
}

/// Builds the WHERE clause of a read as one boxed predicate, for either backend.
macro_rules! predicate {
    ($scope:expr, $filter:expr) => {{
        let scope: Scope = $scope;
        let filter: &AuditFilter = $filter;
        let mut all: Vec<Box<dyn BoxableExpression<audit_events::table, _, SqlType = Bool>>> = Vec::new();
        match scope {
            Scope::All => {}
            Scope::Organization(id) => {
                all.push(Box::new(audit_events::organization_id.assume_not_null().eq(id)))
            }
            Scope::ActorUser(id) => all.push(Box::new(audit_events::actor_user_id.assume_not_null().eq(id))),
        }
        if let Some(id) = filter.organization_id {
            all.push(Box::new(audit_events::organization_id.assume_not_null().eq(id)));
        }
        if !filter.actions.is_empty() || !filter.action_prefixes.is_empty() {
            let mut any: Box<dyn BoxableExpression<audit_events::table, _, SqlType = Bool>> =
                Box::new(audit_events::action.eq_any(filter.actions.clone()));
            for prefix in &filter.action_prefixes {
                any = Box::new(any.or(audit_events::action.like(prefix_pattern(prefix)).escape('\\')));
            }
            all.push(any);
        }
        if !filter.actor_ids.is_empty() {
            all.push(Box::new(
                audit_events::actor_id
                    .assume_not_null()
                    .eq_any(filter.actor_ids.clone()),
            ));
        }
        if !filter.actor_types.is_empty() {
            all.push(Box::new(
                audit_events::actor_type.eq_any(filter.actor_types.clone()),
            ));
        }
        if !filter.outcomes.is_empty() {
            all.push(Box::new(audit_events::outcome.eq_any(filter.outcomes.clone())));
        }
        if let Some(since) = filter.since {
            all.push(Box::new(audit_events::occurred_at.ge(since)));
        }
        if let Some(until) = filter.until {
            all.push(Box::new(audit_events::occurred_at.lt(until)));
        }
        if !filter.target_types.is_empty() || !filter.target_ids.is_empty() {
            let mut targets = audit_targets::table.select(audit_targets::event_id).into_boxed();
            if !filter.target_types.is_empty() {
                targets = targets.filter(audit_targets::target_type.eq_any(filter.target_types.clone()));
            }
            if !filter.target_ids.is_empty() {
                targets = targets.filter(audit_targets::target_id.eq_any(filter.target_ids.clone()));
            }
            all.push(Box::new(audit_events::id.eq_any(targets)));
        }
        if let Some(search) = &filter.search {
            let pattern = like_pattern(search);
            let named = audit_targets::table.select(audit_targets::event_id).filter(
                lower(audit_targets::display_name.assume_not_null())
                    .like(pattern.clone())
                    .escape('\\'),
            );
            all.push(Box::new(
                lower(audit_events::actor_name.assume_not_null())
                    .like(pattern)
                    .escape('\\')
                    .or(audit_events::id.eq_any(named)),
            ));
        }
        let mut predicate: Box<dyn BoxableExpression<audit_events::table, _, SqlType = Bool>> =
            Box::new(diesel::dsl::sql::<Bool>("1 = 1"));
        for part in all {
            predicate = Box::new(predicate.and(part));
        }
        predicate
    }};
}

/// `policy.%` for the prefix `policy.`, with LIKE's wildcards escaped.
fn prefix_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for ch in prefix.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

/// The events in `scope` matching `filter`, in the page's reading order.
pub async fn list(
    conn: &mut DbConn,
    scope: Scope,
    filter: &AuditFilter,
    page: &SeqPage,
) -> Result<Vec<AuditEventRow>> {
    // Reading newest first, "after" a cursor means older; taking from the end flips the scan.
    let descending = page.newest_first != page.from_end;
    let mut rows = with_conn!(conn, |c| {
        let mut query = audit_events::table
            .filter(predicate!(scope, filter))
            .select(AuditEventRow::as_select())
            .into_boxed();
        let (lower_bound, upper_bound) = if page.newest_first {
            (page.before, page.after)
        } else {
            (page.after, page.before)
        };
        if let Some(seq) = lower_bound {
            query = query.filter(audit_events::seq.gt(seq));
        }
        if let Some(seq) = upper_bound {
            query = query.filter(audit_events::seq.lt(seq));
        }
        let query = if descending {
            query.order(audit_events::seq.desc())
        } else {
            query.order(audit_events::seq.asc())
        };
        query.limit(page.limit).load(c).await
    })?;
    if page.from_end {
        rows.reverse();
    }
    Ok(rows)
}

/// How many events in `scope` match `filter`.
pub async fn count(conn: &mut DbConn, scope: Scope, filter: &AuditFilter) -> Result<i64> {
    let count = with_conn!(conn, |c| audit_events::table
        .filter(predicate!(scope, filter))
        .count()
        .get_result(c)
        .await)?;
    Ok(count)
}

/// Up to `limit` events of one chain after position `after_seq`, oldest first.
pub async fn chain_events(
    conn: &mut DbConn,
    organization_id: Option<Id>,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<AuditEventRow>> {
    let rows = with_conn!(conn, |c| {
        let query = audit_events::table
            .filter(audit_events::seq.gt(after_seq))
            .select(AuditEventRow::as_select())
            .order(audit_events::seq.asc())
            .limit(limit)
            .into_boxed();
        match organization_id {
            Some(id) => query.filter(audit_events::organization_id.eq(id)),
            None => query.filter(audit_events::organization_id.is_null()),
        }
        .load(c)
        .await
    })?;
    Ok(rows)
}

/// Every chain's key, for verifying the whole log.
pub async fn chain_keys(conn: &mut DbConn) -> Result<Vec<String>> {
    let keys = with_conn!(conn, |c| audit_chains::table
        .select(audit_chains::chain)
        .order(audit_chains::chain.asc())
        .load(c)
        .await)?;
    Ok(keys)
}
