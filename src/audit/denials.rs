//! Refusals recorded once per request: a request refused 300 times writes one
//! `authorization.denied` event (per organization whose log it belongs in) with the count and the
//! distinct actions, not 300 events into the log and its hash chains.
//!
//! The transport runs each request inside [`collecting`]; [`deny`] outside of one (a job, a test
//! calling the domain directly, a spawned task) records at once, as before.

use std::future::Future;
use std::sync::{Arc, Mutex};

use super::{AuditAction, Event, Outcome, Target, record_all};
use crate::app::App;
use crate::db::Id;
use crate::error::Result;
use crate::identity::Actor;

/// Distinct targets kept per event; the count says how many refusals there were in all.
const MAX_TARGETS: usize = 20;

tokio::task_local! {
    static COLLECTOR: Arc<Denials>;
}

/// The refusals of one request so far.
#[derive(Default)]
struct Denials {
    groups: Mutex<Vec<Group>>,
}

/// Refusals of one caller in one organization's log (or the gateway's).
struct Group {
    actor: Actor,
    organization: Option<Id>,
    count: u64,
    actions: Vec<&'static str>,
    targets: Vec<Target>,
}

impl Group {
    fn event(self) -> Event {
        let first = self.actions.first().copied().unwrap_or_default();
        let mut event = Event::by(&self.actor, AuditAction::AuthorizationDenied)
            .outcome(Outcome::Denied)
            .in_organization(self.organization)
            .with("action", first)
            .with("actions", &self.actions)
            .with("count", self.count);
        for target in self.targets {
            event = event.target(target);
        }
        event
    }
}

/// Runs `future` (one request) collecting its refusals, then records them.
pub async fn collecting<F: Future>(app: &App, future: F) -> F::Output {
    let denials = Arc::new(Denials::default());
    let output = COLLECTOR.scope(denials.clone(), future).await;
    let groups = std::mem::take(&mut *denials.groups.lock().unwrap_or_else(|poison| poison.into_inner()));
    if !groups.is_empty() {
        let events = groups.into_iter().map(Group::event).collect();
        if let Err(error) = write(app, events).await {
            tracing::error!(?error, "recording the request's refusals failed");
        }
    }
    output
}

/// Records that `actor` was refused `action` on `target`: with the request's other refusals when
/// it runs inside [`collecting`], else at once.
pub async fn deny(
    app: &App,
    actor: &Actor,
    action: &'static str,
    organization: Option<Id>,
    target: Target,
) -> Result<()> {
    let collected = COLLECTOR.try_with(|denials| {
        let mut groups = denials.groups.lock().unwrap_or_else(|poison| poison.into_inner());
        let same = |group: &&mut Group| {
            group.organization == organization
                && group.actor.user_id() == actor.user_id()
                && group.actor.api_key_id == actor.api_key_id
        };
        match groups.iter_mut().find(same) {
            Some(group) => {
                group.count += 1;
                if !group.actions.contains(&action) {
                    group.actions.push(action);
                }
                if group.targets.len() < MAX_TARGETS && !group.targets.contains(&target) {
                    group.targets.push(target.clone());
                }
            }
            None => groups.push(Group {
                actor: actor.clone(),
                organization,
                count: 1,
                actions: vec![action],
                targets: vec![target.clone()],
            }),
        }
    });
    if collected.is_ok() {
        return Ok(());
    }
    let group = Group {
        actor: actor.clone(),
        organization,
        count: 1,
        actions: vec![action],
        targets: vec![target],
    };
    write(app, vec![group.event()]).await
}

async fn write(app: &App, events: Vec<Event>) -> Result<()> {
    let now = app.now();
    let mut conn = app.db.conn().await?;
    conn.transaction(async |tx| record_all(tx, now, events).await.map(|_| ()))
        .await
}
