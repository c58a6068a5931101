//! The one way events enter the log: inside the caller's transaction, so that an event is recorded
//! exactly when its change commits.

use std::collections::HashMap;

use serde_json::Value;

use super::Event;
use super::chain::{FORM_VERSION, GENESIS, event_hash, personal_digest};
use crate::db::models::{AuditChainRow, AuditEventRow, AuditTargetRow};
use crate::db::{DbConn, Id, Timestamp, audit};
use crate::error::{Error, Result};
use crate::identity::secrets;

/// Appends `event` to the log within `tx` and returns its id.
///
/// Call it after the transaction's other writes: on PostgreSQL it locks the log's sequence until
/// commit (that is what keeps positions in commit order), and taking that lock last keeps the
/// time other writers wait for it short and the lock order the same everywhere.
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
    let last = audit::take_seqs(tx, events.len() as i64).await?;
    let mut seq = last - events.len() as i64;
    let mut chains: HashMap<String, AuditChainRow> = HashMap::new();
    let mut rows = Vec::with_capacity(events.len());
    let mut target_rows = Vec::new();
    for event in events {
        seq += 1;
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
        let row = event_row(event, seq, now, &chain.head_hash, &mut target_rows)?;
        chain.head_seq = seq;
        chain.head_hash = row.hash.clone();
        rows.push(row);
    }
    audit::insert(tx, &rows, &target_rows).await?;
    for chain in chains.values() {
        audit::save_chain(tx, chain).await?;
    }
    audit::announce(tx).await?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// The stored form of `event` at position `seq`, hashed onto `prev_hash`; its targets go to `targets`.
fn event_row(
    event: Event,
    seq: i64,
    now: Timestamp,
    prev_hash: &str,
    targets: &mut Vec<AuditTargetRow>,
) -> Result<AuditEventRow> {
    let id = Id::new_v7();
    let targets_json = serde_json::to_string(&event.targets).map_err(Error::internal)?;
    let metadata = serde_json::to_string(&Value::Object(event.metadata)).map_err(Error::internal)?;
    let mut row = AuditEventRow {
        id,
        seq,
        occurred_at: now,
        action: event.action.name().to_owned(),
        actor_type: event.actor_type.as_str().to_owned(),
        actor_id: event.actor_id,
        actor_user_id: event.actor_user_id,
        actor_name: event.actor_name,
        organization_id: event.organization_id,
        outcome: event.outcome.as_str().to_owned(),
        targets: targets_json,
        ip: event.client.ip,
        user_agent: event.client.user_agent,
        request_id: event.client.request_id,
        metadata,
        version: FORM_VERSION,
        salt: secrets::encode(&secrets::random_bytes::<16>()?),
        personal_digest: String::new(),
        prev_hash: prev_hash.to_owned(),
        hash: String::new(),
        erased_at: None,
    };
    row.personal_digest = personal_digest(&row);
    row.hash = event_hash(&row);
    targets.extend(
        event
            .targets
            .into_iter()
            .enumerate()
            .map(|(position, target)| AuditTargetRow {
                event_id: id,
                position: position as i32,
                target_type: target.target_type,
                target_id: target.id,
                display_name: target.display_name,
            }),
    );
    Ok(row)
}
