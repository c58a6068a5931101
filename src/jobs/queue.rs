//! Putting work in the queue, inside the transaction that causes it.

use serde::Serialize;

use super::JobKind;
use crate::db::models::JobRow;
use crate::db::{DbConn, Id, Timestamp, jobs};
use crate::error::{Error, Result};

/// Attempts before a job is declared dead (eight span about a day; see `backoff`).
pub const MAX_ATTEMPTS: i32 = 8;

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: Id,
    pub kind: JobKind,
    pub payload: serde_json::Value,
    pub organization_id: Option<Id>,
    pub recipient: Option<String>,
    pub lane: Option<String>,
    pub lane_position: Option<i64>,
    pub max_attempts: i32,
}

impl NewJob {
    pub fn new(kind: JobKind, payload: &impl Serialize) -> Result<Self> {
        Ok(Self {
            id: Id::new_v7(),
            kind,
            payload: serde_json::to_value(payload).map_err(Error::internal)?,
            organization_id: None,
            recipient: None,
            lane: None,
            lane_position: None,
            max_attempts: MAX_ATTEMPTS,
        })
    }

    pub fn in_organization(mut self, id: Id) -> Self {
        self.organization_id = Some(id);
        self
    }

    /// Throttled with the other jobs of `lane`: one at a time in `position` order when given,
    /// else a few side by side.
    pub fn in_lane(mut self, lane: impl Into<String>, position: Option<i64>) -> Self {
        self.lane = Some(lane.into());
        self.lane_position = position;
        self
    }

    /// With its own number of attempts (its kind's schedule).
    pub fn attempts(mut self, max: i32) -> Self {
        self.max_attempts = max;
        self
    }

    pub fn to(mut self, recipient: impl Into<String>) -> Self {
        self.recipient = Some(recipient.into());
        self
    }
}

/// Enqueues `new` within `tx`, due at once; the runner wakes when `tx` commits.
pub async fn enqueue(tx: &mut DbConn, now: Timestamp, new: Vec<NewJob>) -> Result<()> {
    let rows: Vec<JobRow> = new
        .into_iter()
        .map(|job| JobRow {
            id: job.id,
            kind: job.kind.name().to_owned(),
            payload: job.payload.to_string(),
            organization_id: job.organization_id,
            recipient: job.recipient,
            status: jobs::PENDING.to_owned(),
            attempts: 0,
            max_attempts: job.max_attempts,
            run_at: now,
            locked_until: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
            lane: job.lane,
            lane_position: job.lane_position,
        })
        .collect();
    jobs::insert_all(tx, &rows).await
}
