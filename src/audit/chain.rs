//! Tamper evidence: every event's hash covers its canonical form and the previous event's hash in
//! the same chain (one chain per organization, one for gateway-wide events).
//!
//! The personal part of an event (actor and target display names, IP, user agent, metadata) enters
//! the hash only through a salted digest. Erasing personal data rewrites those fields and drops the
//! salt, so the digest can no longer be linked to the person, yet the chain still verifies.

use serde_json::json;

use crate::db::models::AuditEventRow;
use crate::db::{Db, DbConn, Id, audit};
use crate::error::Result;
use crate::identity::secrets;

/// The `prev_hash` of a chain's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The version of the canonical form below.
pub const FORM_VERSION: i32 = 1;

/// Lowercase hex of SHA-256.
fn sha256_hex(data: &[u8]) -> String {
    secrets::sha256(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// The salted digest of an event's personal fields, as stored.
pub fn personal_digest(row: &AuditEventRow) -> String {
    personal_digest_of(
        &row.salt,
        row.actor_name.as_deref(),
        &row.targets,
        row.ip.as_deref(),
        row.user_agent.as_deref(),
        &row.metadata,
    )
}

/// The salted digest of the personal fields themselves (before the event has a position).
pub fn personal_digest_of(
    salt: &str,
    actor_name: Option<&str>,
    targets: &str,
    ip: Option<&str>,
    user_agent: Option<&str>,
    metadata: &str,
) -> String {
    let personal = json!([actor_name, targets, ip, user_agent, metadata]);
    let mut data = salt.as_bytes().to_vec();
    data.extend_from_slice(personal.to_string().as_bytes());
    sha256_hex(&data)
}

/// The hash of an event: its canonical form (everything but the personal fields, which count
/// through `personal_digest`), linked to `prev_hash`.
pub fn event_hash(row: &AuditEventRow) -> String {
    let target_refs: Vec<(String, String)> = serde_json::from_str::<Vec<super::Target>>(&row.targets)
        .map(|targets| targets.into_iter().map(|t| (t.target_type, t.id)).collect())
        // Unparseable targets cannot match the hash they were recorded with.
        .unwrap_or_else(|_| vec![("unparseable".to_owned(), row.targets.clone())]);
    let canonical = json!([
        row.version,
        row.id,
        row.seq,
        row.occurred_at.to_string(),
        row.action,
        row.actor_type.as_str(),
        row.actor_id,
        row.actor_user_id,
        row.organization_id,
        row.outcome.as_str(),
        target_refs,
        row.request_id,
        row.personal_digest,
        row.prev_hash
    ]);
    sha256_hex(canonical.to_string().as_bytes())
}

/// What verifying a chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub organization_id: Option<Id>,
    /// Events checked.
    pub checked: i64,
    /// The first event that does not match, if any.
    pub mismatch: Option<Mismatch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// `None` when events are missing after the last one that matched.
    pub event_id: Option<Id>,
    pub seq: i64,
    pub reason: String,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.mismatch.is_none()
    }
}

const BATCH: i64 = 1_000;

/// Walks one chain from its anchor (the start, or the last purged event) to its head, all in one
/// snapshot: events positioned or purged meanwhile can neither look missing nor break the links.
pub async fn verify(db: &Db, organization_id: Option<Id>) -> Result<Verification> {
    let mut conn = db.conn().await?;
    conn.snapshot(async |tx| verify_in(tx, organization_id).await)
        .await
}

async fn verify_in(conn: &mut DbConn, organization_id: Option<Id>) -> Result<Verification> {
    let key = audit::chain_key(organization_id);
    let mut report = Verification {
        organization_id,
        checked: 0,
        mismatch: None,
    };
    let Some(chain) = audit::chain(conn, &key).await? else {
        return Ok(report); // nothing recorded yet
    };
    let (mut prev_hash, mut prev_seq) = (chain.anchor_hash.clone(), chain.anchor_seq);
    loop {
        let rows = audit::chain_events(conn, organization_id, prev_seq, BATCH).await?;
        let done = (rows.len() as i64) < BATCH;
        for row in rows {
            report.checked += 1;
            let reason = if row.prev_hash != prev_hash {
                Some("does not link to the event before it (an event was removed or altered)")
            } else if row.hash != event_hash(&row) {
                Some("its content does not match its hash")
            } else if row.erased_at.is_none() && row.personal_digest != personal_digest(&row) {
                Some("its personal fields do not match their digest")
            } else {
                None
            };
            if let Some(reason) = reason {
                report.mismatch = Some(Mismatch {
                    event_id: Some(row.id),
                    seq: row.seq,
                    reason: reason.to_owned(),
                });
                return Ok(report);
            }
            prev_hash = row.hash;
            prev_seq = row.seq;
        }
        if done {
            break;
        }
    }
    if prev_hash != chain.head_hash || prev_seq != chain.head_seq {
        report.mismatch = Some(Mismatch {
            event_id: None,
            seq: chain.head_seq,
            reason: format!(
                "the chain ends at event #{prev_seq}, but its head is event #{}: later events are missing",
                chain.head_seq
            ),
        });
    }
    Ok(report)
}

/// Verifies every chain in the log (the gateway's and each organization's).
pub async fn verify_all(db: &Db) -> Result<Vec<Verification>> {
    let keys = {
        let mut conn = db.conn().await?;
        audit::chain_keys(&mut conn).await?
    };
    let mut reports = Vec::with_capacity(keys.len());
    for key in keys {
        let organization_id = if key == audit::GATEWAY_CHAIN {
            None
        } else {
            match key.parse() {
                Ok(id) => Some(id),
                Err(_) => continue,
            }
        };
        reports.push(verify(db, organization_id).await?);
    }
    Ok(reports)
}
