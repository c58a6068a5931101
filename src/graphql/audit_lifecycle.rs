//! The audit log's lifecycle: purging old events and erasing a person's data.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::ContextExt;
use super::ids::parse_id;
use crate::db::Timestamp;

#[derive(InputObject)]
pub struct PurgeAuditEventsInput {
    /// Events that occurred before this instant are deleted (it may not be in the future).
    before: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct PurgeAuditEventsPayload {
    deleted_events: u64,
}

#[derive(InputObject)]
pub struct EraseAuditPersonalDataInput {
    /// The person whose name, email, IP addresses and user agents are pseudonymized.
    user_id: ID,
}

#[derive(SimpleObject)]
pub struct EraseAuditPersonalDataPayload {
    /// Events that changed.
    erased_events: u64,
}

#[derive(Default)]
pub struct AuditLifecycleMutation;

#[Object]
impl AuditLifecycleMutation {
    /// Deletes the events before `before` (in commit order); verification of the rest still works.
    /// Needs `audit.purge`; recorded as `audit.purged`.
    async fn purge_audit_events(
        &self,
        ctx: &Context<'_>,
        input: PurgeAuditEventsInput,
    ) -> async_graphql::Result<PurgeAuditEventsPayload> {
        let deleted =
            crate::audit::retention::purge(ctx.app()?, ctx.actor()?, Timestamp(input.before)).await?;
        Ok(PurgeAuditEventsPayload {
            deleted_events: deleted,
        })
    }

    /// Pseudonymizes a person's data in every event that names them (right to erasure); the hash
    /// chains still verify. Needs `audit.erase`; recorded as `audit.personal_data_erased`.
    async fn erase_audit_personal_data(
        &self,
        ctx: &Context<'_>,
        input: EraseAuditPersonalDataInput,
    ) -> async_graphql::Result<EraseAuditPersonalDataPayload> {
        let user = parse_id("userId", &input.user_id)?;
        let erased = crate::audit::erasure::erase(ctx.app()?, ctx.actor()?, user).await?;
        Ok(EraseAuditPersonalDataPayload {
            erased_events: erased,
        })
    }
}
