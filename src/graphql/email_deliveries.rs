//! GraphQL types and resolvers for outbound email as operators see it: deliveries and retries.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::ContextExt;
use super::ids::{parse_id, to_id};
use super::organizations::{Organization, readable_organization};
use super::pagination::{PageArgs, Paged, connection};
use crate::db::jobs::{DEAD, PENDING, RUNNING, SUCCEEDED};
use crate::db::models::JobRow;
use crate::error::Error;
use crate::jobs::deliveries::{self, DeliveryFilter};

/// One email in the outbox: queued, being sent, sent, or given up on.
pub struct EmailDelivery(pub JobRow);

/// Where a delivery stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum EmailDeliveryStatus {
    /// Waiting for its (next) attempt.
    Queued,
    /// A worker is sending it.
    Sending,
    /// The SMTP server accepted it.
    Sent,
    /// Given up on: a permanent refusal or attempts exhausted. `retryEmailDelivery` requeues it.
    Dead,
}

impl EmailDeliveryStatus {
    fn stored(self) -> &'static str {
        match self {
            Self::Queued => PENDING,
            Self::Sending => RUNNING,
            Self::Sent => SUCCEEDED,
            Self::Dead => DEAD,
        }
    }
}

#[Object]
impl EmailDelivery {
    /// Stable identifier; also the left part of the email's Message-ID.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    /// What the email is, e.g. `invitation.email`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }

    /// The recipient.
    async fn to(&self) -> Option<&str> {
        self.0.recipient.as_deref()
    }

    async fn status(&self) -> async_graphql::Result<EmailDeliveryStatus> {
        Ok(match self.0.status.as_str() {
            PENDING => EmailDeliveryStatus::Queued,
            RUNNING => EmailDeliveryStatus::Sending,
            SUCCEEDED => EmailDeliveryStatus::Sent,
            DEAD => EmailDeliveryStatus::Dead,
            other => {
                return Err(Error::internal(anyhow::anyhow!("job with unknown status {other:?}")).into());
            }
        })
    }

    /// The organization it was sent for; null if none or you may not read it.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        match self.0.organization_id {
            Some(id) => readable_organization(ctx, id).await,
            None => Ok(None),
        }
    }

    /// Attempts made so far.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }

    /// Attempts allowed before it is given up on.
    async fn max_attempts(&self) -> i32 {
        self.0.max_attempts
    }

    /// When a queued delivery is (next) attempted.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.status == PENDING).then_some(self.0.run_at.0)
    }

    /// Why the last attempt failed (the SMTP server's answer, or the connection error).
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    /// When it was queued.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.0
    }

    /// When it was sent or given up on.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at.map(|at| at.0)
    }
}

/// Narrows `emailDeliveries`.
#[derive(InputObject, Default)]
pub struct EmailDeliveryFilter {
    /// This status (combined with `statuses` when both are given).
    status: Option<EmailDeliveryStatus>,
    /// Any of these statuses.
    statuses: Option<Vec<EmailDeliveryStatus>>,
    /// One organization's deliveries (`email.list` there); omitted: all (`email.list` gateway-wide).
    organization_id: Option<ID>,
    /// The recipient address.
    to: Option<String>,
}

/// A delivery id.
#[derive(InputObject)]
pub struct RetryEmailDeliveryInput {
    /// The dead delivery to requeue.
    id: ID,
}

/// The delivery requeued by `retryEmailDelivery`.
#[derive(SimpleObject)]
pub struct EmailDeliveryPayload {
    /// The delivery as it is now.
    delivery: EmailDelivery,
}

#[derive(Default)]
pub struct EmailDeliveryQuery;

#[Object]
impl EmailDeliveryQuery {
    /// Outbound emails, oldest first.
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn email_deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<EmailDeliveryFilter>,
    ) -> async_graphql::Result<Paged<EmailDelivery>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let filter = filter.unwrap_or_default();
        let filter = DeliveryFilter {
            statuses: filter
                .statuses
                .unwrap_or_default()
                .into_iter()
                .chain(filter.status)
                .map(|status| status.stored().to_owned())
                .collect(),
            organization_id: filter
                .organization_id
                .as_ref()
                .map(|id| parse_id("filter.organizationId", id))
                .transpose()?,
            to: filter.to,
        };
        let result = deliveries::list(ctx.app()?, ctx.actor()?, &filter, &page).await?;
        Ok(connection(&page, result, |row| row.id, EmailDelivery))
    }
}

#[derive(Default)]
pub struct EmailDeliveryMutation;

#[Object]
impl EmailDeliveryMutation {
    /// Puts a dead delivery back in the queue with a fresh set of attempts.
    async fn retry_email_delivery(
        &self,
        ctx: &Context<'_>,
        input: RetryEmailDeliveryInput,
    ) -> async_graphql::Result<EmailDeliveryPayload> {
        let id = parse_id("id", &input.id)?;
        let row = deliveries::retry(ctx.app()?, ctx.actor()?, id).await?;
        Ok(EmailDeliveryPayload {
            delivery: EmailDelivery(row),
        })
    }
}
