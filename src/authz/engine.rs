//! The decision engine: the compiled policy set and per-user role holdings, cached in memory and
//! rebuilt when the authorization version in the database moves.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use cedar_policy::{Authorizer, Entities, EntityUid, Request, Response, Schema};

use super::Action;
use super::cedar_json::TypeNames;
use super::compile::{Compiled, compile};
use super::entities::Types;
use super::entity_cache::EntityCache;
use super::guard::Resource;
use super::principal_sets::PrincipalSets;
use super::schema;
use super::slice::{Index, Slice};
use crate::db::{Db, Id, cedar_schemas, memberships, notify, policies, role_assignments, roles, users};
use crate::error::{Error, Result};

/// The fixed id of the built-in `org_member` role, held implicitly by every member.
pub const ORG_MEMBER_ROLE: &str = "00000000-0000-7000-8000-000000000004";
/// The fixed id of the built-in `super_admin` role.
pub const SUPER_ADMIN_ROLE: &str = "00000000-0000-7000-8000-000000000001";

/// Everything decisions are made with, at one authorization version.
pub struct State {
    pub version: i64,
    pub schema: Schema,
    /// The action entities of every schema fragment (the gateway's own too) that take part in an
    /// action hierarchy, closed: part of every entity set decisions are made with, so action groups
    /// mean what the schema says.
    pub actions: Arc<Entities>,
    /// Moves only when the schema changes (sets closed with `actions` are good until it moves).
    pub schema_generation: u64,
    /// The fragments the schema was made of, to recognise an unchanged schema.
    fragments: Vec<(String, String)>,
    pub compiled: Compiled,
    /// The compiled policies indexed by action and role, for slicing.
    pub index: Index,
}

/// The roles a user holds: globally, per organization, and the organizations they belong to; and
/// the account attributes policies see. Changes to any of these bump the authorization version.
#[derive(Debug, Default)]
pub struct Holdings {
    global: Vec<Id>,
    scoped: HashMap<Id, Vec<Id>>,
    member_of: HashSet<Id>,
    pub attrs: PrincipalAttrs,
}

/// The attributes of a `Portcullis::User` entity.
#[derive(Debug, Default, Clone)]
pub struct PrincipalAttrs {
    pub email: String,
    pub status: String,
}

struct HoldingsCache {
    version: i64,
    users: HashMap<Id, Arc<Holdings>>,
}

/// The engine. One per process, shared through `App`.
pub struct Engine {
    types: Types,
    authorizer: Authorizer,
    org_member: Id,
    state: RwLock<Arc<State>>,
    holdings: Mutex<HoldingsCache>,
    entity_sets: EntityCache,
    principal_sets: PrincipalSets,
    /// The empty role set of principals that are not gateway users.
    no_roles: HashSet<EntityUid>,
    decisions: Mutex<Decisions>,
    type_names: TypeNames,
    rebuild: tokio::sync::Mutex<()>,
}

impl Engine {
    /// Compiles the stored policies and roles.
    pub async fn load(db: &Db) -> Result<Self> {
        let types = Types::new()?;
        let state = build(db, &types, None).await?;
        let org_member = ORG_MEMBER_ROLE
            .parse()
            .map_err(|e| Error::internal(anyhow::anyhow!("org_member id: {e}")))?;
        Ok(Self {
            types,
            authorizer: Authorizer::new(),
            org_member,
            holdings: Mutex::new(HoldingsCache {
                version: state.version,
                users: HashMap::new(),
            }),
            state: RwLock::new(Arc::new(state)),
            entity_sets: EntityCache::default(),
            principal_sets: PrincipalSets::default(),
            no_roles: HashSet::new(),
            decisions: Mutex::default(),
            type_names: TypeNames::default(),
            rebuild: tokio::sync::Mutex::new(()),
        })
    }

    pub fn types(&self) -> &Types {
        &self.types
    }

    /// Integrators' entity sets, parsed (they do not depend on the authorization version).
    pub fn entity_sets(&self) -> &EntityCache {
        &self.entity_sets
    }

    /// Integrators' entity sets with gateway users added as principals.
    pub fn principal_sets(&self) -> &PrincipalSets {
        &self.principal_sets
    }

    /// The roles of a principal that is not a gateway user.
    pub fn no_roles(&self) -> &HashSet<EntityUid> {
        &self.no_roles
    }

    /// The state decisions are made with right now.
    pub fn state(&self) -> Arc<State> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The authorization version in force.
    pub fn version(&self) -> i64 {
        self.state.read().unwrap_or_else(|p| p.into_inner()).version
    }

    /// Rebuilds if the database holds a newer authorization version; returns the version in force.
    pub async fn refresh(&self, db: &Db) -> Result<i64> {
        let stored = {
            let mut conn = db.conn().await?;
            cedar_schemas::version(&mut conn).await?
        };
        if stored == self.state().version {
            return Ok(stored);
        }
        let _one_at_a_time = self.rebuild.lock().await;
        if stored == self.state().version {
            return Ok(stored);
        }
        let state = build(db, &self.types, Some(&self.state())).await?;
        let version = state.version;
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(state);
        let mut cache = self.holdings.lock().unwrap_or_else(|p| p.into_inner());
        cache.version = version;
        cache.users.clear();
        tracing::debug!(version, "authorization state rebuilt");
        Ok(version)
    }

    /// The roles `user` holds and their attributes, from the cache or the database; NOT_FOUND if
    /// there is no such user.
    pub async fn holdings(&self, db: &Db, user: Id) -> Result<Arc<Holdings>> {
        let version = self.state().version;
        {
            let cache = self.holdings.lock().unwrap_or_else(|p| p.into_inner());
            if cache.version == version
                && let Some(found) = cache.users.get(&user)
            {
                return Ok(found.clone());
            }
        }
        let mut conn = db.conn().await?;
        let account = users::find(&mut conn, user)
            .await?
            .ok_or(Error::NotFound("user"))?;
        let assignments = role_assignments::for_user(&mut conn, user).await?;
        let member_of = memberships::organization_ids_for_user(&mut conn, user).await?;
        let mut holdings = Holdings {
            member_of: member_of.into_iter().collect(),
            attrs: PrincipalAttrs {
                email: account.email,
                status: account.status.as_str().to_owned(),
            },
            ..Holdings::default()
        };
        for assignment in assignments {
            match assignment.organization_id {
                None => holdings.global.push(assignment.role_id),
                Some(org) => holdings.scoped.entry(org).or_default().push(assignment.role_id),
            }
        }
        let holdings = Arc::new(holdings);
        let mut cache = self.holdings.lock().unwrap_or_else(|p| p.into_inner());
        if cache.version == version {
            cache.users.insert(user, holdings.clone());
        }
        Ok(holdings)
    }

    /// The roles that count for a request about `organization` (or a gateway-wide one): global
    /// roles, plus those held in that organization and `org_member` if the user belongs to it.
    /// This is what keeps a role held in organization A from reaching organization B.
    pub fn parents(&self, holdings: &Holdings, organization: Option<Id>) -> HashSet<EntityUid> {
        let mut roles: HashSet<Id> = holdings.global.iter().copied().collect();
        if let Some(org) = organization {
            if let Some(scoped) = holdings.scoped.get(&org) {
                roles.extend(scoped.iter().copied());
            }
            if holdings.member_of.contains(&org) {
                roles.insert(self.org_member);
            }
        }
        roles.into_iter().map(|role| self.types.role(role)).collect()
    }

    /// Decides `request` with `slice`, the policies in force that can apply to it (see
    /// [`Index::slice`]).
    pub fn decide(&self, slice: &Slice, request: &Request, entities: &Entities) -> Response {
        self.authorizer.is_authorized(request, &slice.policies, entities)
    }

    /// A gateway decision remembered at `version` (see [`Self::remember`]).
    pub fn remembered(&self, version: i64, question: GatewayQuestion) -> Option<bool> {
        let memo = self.decisions.lock().unwrap_or_else(|p| p.into_inner());
        (memo.version == version).then(|| memo.answers.get(&question).copied())?
    }

    /// Remembers a gateway decision made at `version` by policies without conditions: it holds
    /// until the version moves, whatever the request's context.
    pub fn remember(&self, version: i64, question: GatewayQuestion, allowed: bool) {
        let mut memo = self.decisions.lock().unwrap_or_else(|p| p.into_inner());
        if memo.version != version {
            if memo.version > version {
                return; // decided on a state that is already gone
            }
            memo.version = version;
            memo.answers.clear();
        }
        if memo.answers.len() >= DECISIONS_KEPT {
            memo.answers.clear();
        }
        memo.answers.insert(question, allowed);
    }

    /// Entity type names, parsed once.
    pub fn type_names(&self) -> &TypeNames {
        &self.type_names
    }
}

/// Gateway decisions remembered before the memo starts over (a cheap bound on memory).
const DECISIONS_KEPT: usize = 100_000;

/// A gateway question whose answer can be remembered: who asks, for what, on what.
pub type GatewayQuestion = (Id, Action, Resource);

#[derive(Default)]
struct Decisions {
    version: i64,
    answers: HashMap<GatewayQuestion, bool>,
}

/// Reads everything authorization depends on and compiles it; the schema (and its action
/// entities) of `previous` are kept when the fragments have not changed.
async fn build(db: &Db, types: &Types, previous: Option<&State>) -> Result<State> {
    let mut conn = db.conn().await?;
    let version = cedar_schemas::version(&mut conn).await?;
    let rows = cedar_schemas::all(&mut conn).await?;
    let roles = roles::all(&mut conn).await?;
    let policies = policies::all_enabled(&mut conn).await?;
    let links = roles::all_links(&mut conn).await?;
    drop(conn);
    let fragments: Vec<(String, String)> = rows
        .iter()
        .map(|row| (row.namespace.clone(), row.source.clone()))
        .collect();
    let (schema, actions, schema_generation) = match previous {
        Some(previous) if previous.fragments == fragments => (
            previous.schema.clone(),
            previous.actions.clone(),
            previous.schema_generation,
        ),
        _ => {
            let schema = schema::from_rows(&rows).map_err(|problems| {
                Error::internal(anyhow::anyhow!(
                    "the gateway's Cedar schema does not parse: {problems:?}"
                ))
            })?;
            let actions = in_hierarchy(&schema.action_entities().map_err(Error::internal)?)?;
            let generation = previous.map_or(1, |p| p.schema_generation + 1);
            (schema, Arc::new(actions), generation)
        }
    };
    let compiled = compile(types, &roles, &policies, &links)?;
    let index = Index::new(&compiled.policies, |uid| types.is_role(uid));
    Ok(State {
        version,
        schema,
        actions,
        schema_generation,
        fragments,
        compiled,
        index,
    })
}

/// The action entities that take part in an action hierarchy (a group, or an action in one). An
/// action with neither parents nor children is observable to Cedar only as itself — `action in A`
/// is `action == A` whether or not its entity is present — so leaving it out decides the same while
/// keeping integrators' entity sets small (most schemas declare flat actions).
fn in_hierarchy(actions: &Entities) -> Result<Entities> {
    let groups: HashSet<EntityUid> = actions
        .iter()
        .flat_map(|action| {
            actions
                .ancestors(&action.uid())
                .into_iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    let kept = actions.iter().filter(|action| {
        let uid = action.uid();
        groups.contains(&uid)
            || actions
                .ancestors(&uid)
                .is_some_and(|mut above| above.next().is_some())
    });
    Entities::from_entities(kept.cloned(), None).map_err(Error::internal)
}

/// On PostgreSQL, applies other instances' changes as soon as they commit: LISTENs on a dedicated
/// connection, reconnects with backoff, and refreshes after every (re)connection to catch up with
/// anything announced while it was away. Stops when the engine is dropped.
pub fn spawn_listener(engine: &Arc<Engine>, db: Db) {
    if db.backend() != crate::db::Backend::Postgres {
        return;
    }
    let wake = Arc::new(tokio::sync::Notify::new());
    // Refreshes when woken; notifications that arrive during a refresh coalesce into one more.
    let refresher = {
        let (engine, db, wake) = (Arc::downgrade(engine), db.clone(), wake.clone());
        async move {
            loop {
                wake.notified().await;
                let Some(engine) = engine.upgrade() else { return };
                if let Err(error) = engine.refresh(&db).await {
                    tracing::warn!(error = ?error, "authorization refresh failed");
                }
            }
        }
    };
    let listener = {
        let engine = Arc::downgrade(engine);
        async move {
            let mut backoff = std::time::Duration::from_millis(100);
            while engine.strong_count() > 0 {
                if let Err(error) = notify::listen(db.listen_url(), notify::AUTHZ_CHANNEL, &wake).await {
                    tracing::warn!(error = ?error, retry_in = ?backoff, "authorization listener disconnected");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
            }
            wake.notify_one(); // lets the refresher see that the engine is gone
        }
    };
    tokio::spawn(refresher);
    tokio::spawn(listener);
}

/// Keeps `engine` in step with the database: checks the version every `period` (changes made by
/// other instances), until the engine is dropped.
pub fn spawn_refresher(engine: &Arc<Engine>, db: Db, period: std::time::Duration) {
    let engine = Arc::downgrade(engine);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(engine) = engine.upgrade() else {
                return;
            };
            if let Err(error) = engine.refresh(&db).await {
                tracing::warn!(error = ?error, "authorization refresh failed");
            }
        }
    });
}
