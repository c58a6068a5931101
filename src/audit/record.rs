//! The one way events enter the log: inside the caller's transaction, so that an event is recorded
//! exactly when its change commits.

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
    let seq = audit::next_seq(tx).await?;
    let key = audit::chain_key(event.organization_id);
    let chain = audit::chain(tx, &key).await?.unwrap_or_else(|| AuditChainRow {
        chain: key.clone(),
        head_seq: 0,
        head_hash: GENESIS.to_owned(),
        anchor_seq: 0,
        anchor_hash: GENESIS.to_owned(),
    });
    let id = Id::new_v7();
    let targets = serde_json::to_string(&event.targets).map_err(Error::internal)?;
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
        targets,
        ip: event.client.ip,
        user_agent: event.client.user_agent,
        request_id: event.client.request_id,
        metadata,
        version: FORM_VERSION,
        salt: secrets::encode(&secrets::random_bytes::<16>()?),
        personal_digest: String::new(),
        prev_hash: chain.head_hash.clone(),
        hash: String::new(),
        erased_at: None,
    };
    row.personal_digest = personal_digest(&row);
    row.hash = event_hash(&row);
    let target_rows: Vec<AuditTargetRow> = event
        .targets
        .iter()
        .enumerate()
        .map(|(position, target)| AuditTargetRow {
            event_id: id,
            position: position as i32,
            target_type: target.target_type.clone(),
            target_id: target.id.clone(),
            display_name: target.display_name.clone(),
        })
        .collect();
    audit::insert(tx, &row, &target_rows).await?;
    audit::save_chain(
        tx,
        &AuditChainRow {
            head_seq: seq,
            head_hash: row.hash,
            ..chain
        },
    )
    .await?;
    Ok(id)
}
