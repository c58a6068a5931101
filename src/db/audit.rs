//! Queries over the audit log: appending to a hash chain in commit order, filtered keyset reads,
//! and the ordered walks that verification needs.

use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_async::RunQueryDsl;

use super::enums::{ActorType, Outcome};
use super::models::{AuditChainRow, AuditEventRow, AuditTargetRow, PendingEventRow};
use super::page::paginate;
use super::schema::{audit_chains, audit_events, audit_inbox, audit_state, audit_targets};
use super::types::{Id, Timestamp};
use super::users::{like_pattern, lower};
use super::{DbConn, Page, Window, with_conn};
use crate::error::Result;

/// Whose events a reader may see: the whole log, one organization's, or those a user acted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Organization(Id),
    ActorUser(Id),
}

/// What the WHERE clause of a read needs to know: the SQL side of `crate::audit::AuditFilter`,
/// which builds it (`criteria()`) and matches the same events in memory. db/ is the bottom layer and
/// does not name the domain type. Empty lists and `None` do not filter.
#[derive(Debug, Clone, Default)]
pub struct Criteria {
    pub organization_id: Option<Id>,
    /// Exact action names.
    pub actions: Vec<String>,
    /// Action name prefixes (`policy.` for `policy.*`).
    pub action_prefixes: Vec<String>,
    pub actor_ids: Vec<Id>,
    pub actor_types: Vec<ActorType>,
    pub target_types: Vec<String>,
    pub target_ids: Vec<String>,
    pub outcomes: Vec<Outcome>,
    /// Inclusive lower bound of `occurred_at`.
    pub since: Option<Timestamp>,
    /// Exclusive upper bound of `occurred_at`.
    pub until: Option<Timestamp>,
    /// Case-insensitive substring of the actor's or a target's display name.
    pub search: Option<String>,
}

/// The gateway-wide chain's key; organizations' chains are keyed by their id.
pub const GATEWAY_CHAIN: &str = "gateway";

pub fn chain_key(organization_id: Option<Id>) -> String {
    organization_id.map_or_else(|| GATEWAY_CHAIN.to_owned(), |id| id.to_string())
}

/// Takes the next `count` positions in the log and returns the last. The row lock is held until
/// commit, so positions are handed out in commit order and a reader never sees a later event
/// before an earlier one. Only whoever positions events takes it: on SQLite the audited
/// transaction itself (there is one writer anyway), on PostgreSQL the sequencer.
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

/// Tells other instances that the log has grown (PostgreSQL; sent after the events committed, so
/// listeners that then read the log find them).
pub async fn announce(conn: &mut DbConn) -> Result<()> {
    super::notify::announce(conn, super::notify::AUDIT_CHANNEL).await
}

/// Rows per inbox INSERT statement (19 columns: well under PostgreSQL's 65,535 parameters).
const INBOX_CHUNK: usize = 1_000;

/// Appends events to the inbox, where the sequencer will position them once they commit.
pub async fn enqueue(conn: &mut DbConn, rows: &[PendingEventRow]) -> Result<()> {
    super::insert_many!(conn, audit_inbox::table, rows, INBOX_CHUNK)?;
    Ok(())
}

/// True when some committed event waits for its position.
pub async fn inbox_waiting(conn: &mut DbConn) -> Result<bool> {
    let waiting = with_conn!(conn, |c| diesel::select(diesel::dsl::exists(
        audit_inbox::table.select(audit_inbox::inbox_seq)
    ))
    .get_result(c)
    .await)?;
    Ok(waiting)
}

/// Up to `limit` committed inbox rows in the order they were written. A transaction records its
/// events after its other writes, so one that waited for another's lock, or read its result, wrote
/// them after that one committed: this order follows what depends on what (an order by
/// transaction id would not, since ids are handed out at a transaction's first write).
pub async fn inbox_batch(conn: &mut DbConn, limit: i64) -> Result<Vec<(i64, PendingEventRow)>> {
    let rows = with_conn!(conn, |c| audit_inbox::table
        .order(audit_inbox::inbox_seq.asc())
        .select((audit_inbox::inbox_seq, PendingEventRow::as_select()))
        .limit(limit)
        .load(c)
        .await)?;
    Ok(rows)
}

/// Removes positioned rows from the inbox (by their own keys: rows in between may belong to
/// transactions that have not committed yet).
pub async fn inbox_remove(conn: &mut DbConn, inbox_seqs: &[i64]) -> Result<()> {
    for chunk in inbox_seqs.chunks(INSERT_CHUNK) {
        with_conn!(conn, |c| diesel::delete(
            audit_inbox::table.filter(audit_inbox::inbox_seq.eq_any(chunk))
        )
        .execute(c)
        .await)?;
    }
    Ok(())
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
        let filter: &Criteria = $filter;
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

/// The events in `scope` matching `filter`, in the page's reading order. Keyed by `seq`, the
/// commit order: stable while events are appended.
pub async fn list(
    conn: &mut DbConn,
    scope: Scope,
    filter: &Criteria,
    page: &Page<i64>,
) -> Result<Window<AuditEventRow>> {
    let rows = with_conn!(conn, |c| paginate!(
        audit_events::table
            .filter(predicate!(scope, filter))
            .select(AuditEventRow::as_select())
            .into_boxed(),
        audit_events::seq,
        page
    )
    .load(c)
    .await)?;
    Ok(page.trim(rows))
}

/// How many events in `scope` match `filter`.
pub async fn count(conn: &mut DbConn, scope: Scope, filter: &Criteria) -> Result<i64> {
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

/// Holds the log's sequence row until commit: purges serialize with each other and with appends.
pub async fn lock_log(conn: &mut DbConn) -> Result<()> {
    with_conn!(conn, |c| diesel::update(audit_state::table.find(1))
        .set(audit_state::last_seq.eq(audit_state::last_seq))
        .execute(c)
        .await)?;
    Ok(())
}

/// The position of the first event at or after `at`, if any.
pub async fn first_seq_since(conn: &mut DbConn, at: Timestamp) -> Result<Option<i64>> {
    let seq = with_conn!(conn, |c| audit_events::table
        .filter(audit_events::occurred_at.ge(at))
        .select(diesel::dsl::min(audit_events::seq))
        .get_result(c)
        .await)?;
    Ok(seq)
}

/// Up to `limit` of the oldest events before position `bound`: (seq, organization, hash).
pub async fn oldest_before(
    conn: &mut DbConn,
    bound: i64,
    limit: i64,
) -> Result<Vec<(i64, Option<Id>, String)>> {
    let rows = with_conn!(conn, |c| audit_events::table
        .filter(audit_events::seq.lt(bound))
        .select((
            audit_events::seq,
            audit_events::organization_id,
            audit_events::hash
        ))
        .order(audit_events::seq.asc())
        .limit(limit)
        .load(c)
        .await)?;
    Ok(rows)
}

/// Deletes the events up to and including position `through`; their targets go with them (ON DELETE
/// CASCADE), so rows are locked events first, as an erasure locks them.
pub async fn delete_through(conn: &mut DbConn, through: i64) -> Result<usize> {
    let deleted = with_conn!(conn, |c| diesel::delete(
        audit_events::table.filter(audit_events::seq.le(through))
    )
    .execute(c)
    .await)?;
    Ok(deleted)
}

/// Moves a chain's verification anchor to the last purged event of that chain.
pub async fn set_anchor(conn: &mut DbConn, key: &str, seq: i64, hash: &str) -> Result<()> {
    with_conn!(conn, |c| diesel::update(audit_chains::table.find(key))
        .set((
            audit_chains::anchor_seq.eq(seq),
            audit_chains::anchor_hash.eq(hash)
        ))
        .execute(c)
        .await)?;
    Ok(())
}

/// The events a user acted in or is a target of, locked until the transaction ends (an erasure
/// rewrites them, and a concurrent erasure must see its result, not the rows it read before).
pub async fn involving_user(tx: &mut DbConn, user: Id) -> Result<Vec<AuditEventRow>> {
    let as_target = audit_targets::table
        .filter(audit_targets::target_type.eq("user"))
        .filter(audit_targets::target_id.eq(user.to_string()))
        .select(audit_targets::event_id);
    Ok(super::load_for_update!(
        tx,
        audit_events::table
            .filter(
                audit_events::actor_user_id
                    .assume_not_null()
                    .eq(user)
                    .or(audit_events::id.eq_any(as_target)),
            )
            .select(AuditEventRow::as_select())
            .order(audit_events::seq.asc())
    )?)
}

/// Events whose metadata mentions `text` (case-insensitive substring), e.g. an email address;
/// locked like [`involving_user`].
pub async fn mentioning(tx: &mut DbConn, text: &str) -> Result<Vec<AuditEventRow>> {
    let pattern = like_pattern(text);
    Ok(super::load_for_update!(
        tx,
        audit_events::table
            .filter(lower(audit_events::metadata).like(pattern).escape('\\'))
            .select(AuditEventRow::as_select())
            .order(audit_events::seq.asc())
    )?)
}

/// Writes the personal fields of an erased event (and its targets' display names).
pub async fn save_erasure(conn: &mut DbConn, row: &AuditEventRow, user: Id, pseudonym: &str) -> Result<()> {
    with_conn!(conn, |c| {
        diesel::update(audit_events::table.find(row.id))
            .set((
                audit_events::actor_name.eq(&row.actor_name),
                audit_events::targets.eq(&row.targets),
                audit_events::ip.eq(&row.ip),
                audit_events::user_agent.eq(&row.user_agent),
                audit_events::metadata.eq(&row.metadata),
                audit_events::salt.eq(&row.salt),
                audit_events::erased_at.eq(row.erased_at),
            ))
            .execute(c)
            .await?;
        diesel::update(
            audit_targets::table
                .filter(audit_targets::event_id.eq(row.id))
                .filter(audit_targets::target_type.eq("user"))
                .filter(audit_targets::target_id.eq(user.to_string())),
        )
        .set(audit_targets::display_name.eq(pseudonym))
        .execute(c)
        .await
    })?;
    Ok(())
}

/// What `stats` counts by, besides time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Action,
    Actor,
    Outcome,
    Organization,
}

/// The width of `stats`' time buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
}

/// Counts of matching events per (time bucket, key), oldest bucket first; at most `limit` rows.
/// Buckets come back as `YYYY-MM-DDTHH` (hours) or `YYYY-MM-DD` (days), in UTC.
pub async fn stats(
    conn: &mut DbConn,
    scope: Scope,
    filter: &Criteria,
    group_by: GroupBy,
    interval: Interval,
    limit: i64,
) -> Result<Vec<(String, String, i64)>> {
    use diesel::dsl::{count_star, sql};
    use diesel::sql_types::Text;
    // The same text on both backends, from each one's own date functions.
    let postgres = matches!(conn, DbConn::Postgres(..));
    let bucket = match (postgres, interval) {
        (true, Interval::Hour) => "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')",
        (true, Interval::Day) => "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        (false, Interval::Hour) => "substr(occurred_at, 1, 13)",
        (false, Interval::Day) => "substr(occurred_at, 1, 10)",
    };
    let key = match (postgres, group_by) {
        (_, GroupBy::Action) => "action",
        (_, GroupBy::Outcome) => "outcome",
        (true, GroupBy::Actor) => "COALESCE(actor_id::text, actor_type)",
        (false, GroupBy::Actor) => "COALESCE(actor_id, actor_type)",
        (true, GroupBy::Organization) => "COALESCE(organization_id::text, 'gateway')",
        (false, GroupBy::Organization) => "COALESCE(organization_id, 'gateway')",
    };
    let rows = with_conn!(conn, |c| audit_events::table
        .filter(predicate!(scope, filter))
        .group_by((sql::<Text>(bucket), sql::<Text>(key)))
        .select((sql::<Text>(bucket), sql::<Text>(key), count_star()))
        .order((sql::<Text>(bucket).asc(), sql::<Text>(key).asc()))
        .limit(limit)
        .load::<(String, String, i64)>(c)
        .await)?;
    Ok(rows)
}
