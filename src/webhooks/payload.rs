//! What a webhook carries: `{type, timestamp, data}` as Standard Webhooks recommends, where `data`
//! is the audit event exactly as the GraphQL `AuditEvent` type shows it (same field names, same
//! enum spellings) plus the event's `cursor`, so a receiver can resume from the log itself.

use serde::Serialize;
use serde_json::{Value, json};

use crate::audit::{Target, cursor};
use crate::db::Timestamp;
use crate::db::models::AuditEventRow;

/// The type of the message `sendTestWebhook` sends.
pub const TEST_TYPE: &str = "webhook.test";

/// The body of one event's message (masked already, if the endpoint may not see IP and agent).
pub fn event_body(row: &AuditEventRow, replay: bool) -> Vec<u8> {
    let mut body = json!({
        "type": row.action,
        "timestamp": rfc3339(row.occurred_at),
        "data": data(row),
    });
    if replay {
        body["replay"] = Value::Bool(true);
    }
    body.to_string().into_bytes()
}

/// The body of a test message.
pub fn test_body(endpoint_id: &str, now: Timestamp) -> Vec<u8> {
    json!({
        "type": TEST_TYPE,
        "timestamp": rfc3339(now),
        "data": {
            "endpointId": endpoint_id,
            "message": "A test delivery from portcullis: this endpoint is reachable and verifies signatures.",
        },
    })
    .to_string()
    .into_bytes()
}

/// As the GraphQL `DateTime` scalar writes it.
fn rfc3339(at: Timestamp) -> String {
    at.0.to_rfc3339()
}

/// The GraphQL `AuditEvent` shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    id: String,
    cursor: String,
    occurred_at: String,
    action: &'a str,
    actor: ActorData<'a>,
    targets: Vec<TargetData>,
    organization_id: Option<String>,
    outcome: &'static str,
    context: ContextData<'a>,
    metadata: Value,
    version: i32,
    hash: &'a str,
    previous_hash: &'a str,
    erased_at: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActorData<'a> {
    #[serde(rename = "type")]
    actor_type: &'static str,
    id: Option<String>,
    display_name: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TargetData {
    #[serde(rename = "type")]
    target_type: String,
    id: String,
    display_name: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContextData<'a> {
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    request_id: Option<&'a str>,
}

fn data(row: &AuditEventRow) -> Value {
    let actor_type = row.actor_type.public_name();
    let outcome = row.outcome.public_name();
    let targets = serde_json::from_str::<Vec<Target>>(&row.targets)
        .unwrap_or_default()
        .into_iter()
        .map(|t| TargetData {
            target_type: t.target_type,
            id: t.id,
            display_name: t.display_name,
        })
        .collect();
    let data = Data {
        id: row.id.to_string(),
        cursor: cursor::encode(row.seq),
        occurred_at: rfc3339(row.occurred_at),
        action: &row.action,
        actor: ActorData {
            actor_type,
            id: row.actor_id.map(|id| id.to_string()),
            display_name: row.actor_name.as_deref(),
        },
        targets,
        organization_id: row.organization_id.map(|id| id.to_string()),
        outcome,
        context: ContextData {
            ip: row.ip.as_deref(),
            user_agent: row.user_agent.as_deref(),
            request_id: row.request_id.as_deref(),
        },
        metadata: serde_json::from_str(&row.metadata).unwrap_or(Value::Null),
        version: row.version,
        hash: &row.hash,
        previous_hash: &row.prev_hash,
        erased_at: row.erased_at.map(rfc3339),
    };
    serde_json::to_value(data).unwrap_or(Value::Null)
}
