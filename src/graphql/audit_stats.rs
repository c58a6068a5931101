//! `auditStats`: event counts per hour or day and per action, actor, outcome or organization, for
//! dashboard charts.

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::audit::AuditEventFilter;
use super::context::ContextExt;
use crate::audit::read;

/// What `auditStats` counts by.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AuditStatsGroupBy {
    /// `key` is the action name.
    Action,
    /// `key` is the actor's id (`system` or `anonymous` for those actors).
    Actor,
    /// `key` is `success`, `failure` or `denied`.
    Outcome,
    /// `key` is the organization's id (`gateway` for gateway-wide events).
    Organization,
}

/// The width of `auditStats` buckets (UTC).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AuditStatsInterval {
    Hour,
    Day,
}

/// Event counts for charts.
#[derive(SimpleObject)]
pub struct AuditStats {
    /// Oldest bucket first; within a bucket, by key.
    buckets: Vec<AuditStatsBucket>,
    /// Whether more than 10,000 buckets matched and the rest were left out (narrow `since`/`until`).
    truncated: bool,
}

#[derive(SimpleObject)]
pub struct AuditStatsBucket {
    /// Start of the hour or day.
    start: DateTime<Utc>,
    key: String,
    count: i64,
}

#[derive(Default)]
pub struct AuditStatsQuery;

#[Object]
impl AuditStatsQuery {
    /// Counts of events matching `filter` per hour or day and per action, actor, outcome or
    /// organization: what dashboards chart. Authorized like `auditEvents`.
    async fn audit_stats(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditEventFilter>,
        group_by: AuditStatsGroupBy,
        #[graphql(default_with = "AuditStatsInterval::Day")] interval: AuditStatsInterval,
    ) -> async_graphql::Result<AuditStats> {
        use crate::db::audit::{GroupBy, Interval};
        let filter = filter.unwrap_or_default().model()?;
        let group_by = match group_by {
            AuditStatsGroupBy::Action => GroupBy::Action,
            AuditStatsGroupBy::Actor => GroupBy::Actor,
            AuditStatsGroupBy::Outcome => GroupBy::Outcome,
            AuditStatsGroupBy::Organization => GroupBy::Organization,
        };
        let interval = match interval {
            AuditStatsInterval::Hour => Interval::Hour,
            AuditStatsInterval::Day => Interval::Day,
        };
        let (buckets, truncated) = read::stats(ctx.app()?, ctx.actor()?, &filter, group_by, interval).await?;
        Ok(AuditStats {
            buckets: buckets
                .into_iter()
                .map(|b| AuditStatsBucket {
                    start: b.start.0,
                    key: b.key,
                    count: b.count,
                })
                .collect(),
            truncated,
        })
    }
}
