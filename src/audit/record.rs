//! The one way events enter the log: inside the caller's transaction, so that an event is recorded
//! exactly when its change commits.
//!
//! How an event gets its position differs by backend, behind this one interface. SQLite has one
//! writer at a time, so the transaction positions and hashes its own events. On PostgreSQL that
//! would make every audited transaction in the cluster queue on one row until it commits; there the
//! transaction only appends its events to the inbox, and the [`sequencer`](super::sequencer)
//! positions committed ones in batches afterwards.

use std::collections::HashMap;

use serde_json::Value;

use super::Event;
use super::chain::{FORM_VERSION, GENESIS, event_hash, personal_digest_of};
use crate::db::models::{AuditChainRow, AuditEventRow, AuditTargetRow, PendingEventRow};
use crate::db::{DbConn, Id, Timestamp, audit};
use crate::error::{Error, Result};
use crate::identity::secrets;

/// Appends `event` to the log within `tx` and returns its id.
///
/// Call it after the transaction's other writes: on SQLite it takes the log's sequence until
/// commit, and taking that lock last keeps the lock order the same everywhere.
pub async fn record(tx: &mut DbConn, now: Timestamp, event: Event) -> Result<Id> {
    let ids = record_all(tx, now, vec![event]).await?;
    ids.into_iter()
        .next()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("no id for a recorded event")))
}

/// Appends several events, in order, within `tx` (see [`record`]); one round of statements for all.
pub async fn record_all(tx: &mut DbConn, now: Timestamp, events: Vec<Event>) -> Result<Vec<Id>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let pending = events
        .into_iter()
        .map(|event| pending_row(event, now))
        .collect::<Result<Vec<_>>>()?;
    let ids = pending.iter().map(|row| row.id).collect();
    match tx {
        DbConn::Postgres(..) => audit::enqueue(tx, &pending).await?,
        DbConn::Sqlite(..) => {
            let last = audit::take_seqs(tx, pending.len() as i64).await?;
            append(tx, last - pending.len() as i64, pending).await?;
        }
    }
    Ok(ids)
}

/// Positions `pending` after `last_seq` (whose positions the caller holds), links each event to its
/// chain's head, and writes the events, their targets and the new heads.
pub(super) async fn append(tx: &mut DbConn, last_seq: i64, pending: Vec<PendingEventRow>) -> Result<()> {
    let mut chains: HashMap<String, AuditChainRow> = HashMap::new();
    let mut rows = Vec::with_capacity(pending.len());
    let mut targets = Vec::new();
    for (seq, event) in (last_seq + 1..).zip(pending) {
        let key = audit::chain_key(event.organization_id);
        if !chains.contains_key(&key) {
            let chain = audit::chain(tx, &key).await?.unwrap_or_else(|| AuditChainRow {
                chain: key.clone(),
                head_seq: 0,
                head_hash: GENESIS.to_owned(),
                anchor_seq: 0,
                anchor_hash: GENESIS.to_owned(),
            });
            chains.insert(key.clone(), chain);
        }
        let chain = chains
            .get_mut(&key)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("chain {key} vanished")))?;
        let mut row = event.positioned(seq, chain.head_hash.clone());
        row.hash = event_hash(&row);
        chain.head_seq = seq;
        chain.head_hash = row.hash.clone();
        targets.extend(target_rows(&row)?);
        rows.push(row);
    }
    audit::insert(tx, &rows, &targets).await?;
    for chain in chains.values() {
        audit::save_chain(tx, chain).await?;
    }
    Ok(())
}

/// The stored form of `event`, complete but for its position and the hashes that depend on it.
fn pending_row(event: Event, now: Timestamp) -> Result<PendingEventRow> {
    let targets = serde_json::to_string(&event.targets).map_err(Error::internal)?;
    let metadata = serde_json::to_string(&Value::Object(event.metadata)).map_err(Error::internal)?;
    let mut row = PendingEventRow {
        id: Id::new_v7(),
        occurred_at: now,
        action: event.action.name().to_owned(),
        actor_type: event.actor_type,
        actor_id: event.actor_id,
        actor_user_id: event.actor_user_id,
        actor_name: event.actor_name,
        organization_id: event.organization_id,
        outcome: event.outcome,
        targets,
        ip: event.client.ip,
        user_agent: event.client.user_agent,
        request_id: event.client.request_id,
        metadata,
        version: FORM_VERSION,
        salt: secrets::encode(&secrets::random_bytes::<16>()?),
        personal_digest: String::new(),
    };
    row.personal_digest = personal_digest_of(
        &row.salt,
        row.actor_name.as_deref(),
        &row.targets,
        row.ip.as_deref(),
        row.user_agent.as_deref(),
        &row.metadata,
    );
    Ok(row)
}

/// The rows that index `event`'s targets for filtering.
fn target_rows(event: &AuditEventRow) -> Result<Vec<AuditTargetRow>> {
    let targets: Vec<super::Target> = serde_json::from_str(&event.targets).map_err(Error::internal)?;
    Ok(targets
        .into_iter()
        .enumerate()
        .map(|(position, target)| AuditTargetRow {
            event_id: event.id,
            position: position as i32,
            target_type: target.target_type,
            target_id: target.id,
            display_name: target.display_name,
        })
        .collect())
}
