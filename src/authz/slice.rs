//! Policy slicing: Cedar evaluates every policy it is handed, so each request gets only the
//! policies that can apply to it — by action, and by the principal's roles.
//!
//! A policy is left out only when its scope proves it cannot match: it names other actions, or it
//! is scoped to a gateway role (`principal in Portcullis::Role::"…"`) the principal does not hold
//! in this request, or to another principal (`principal == …`), or to resources this one is not
//! (`resource == …`, `resource in …` outside its ancestors, `resource is …` of another type).
//! Everything else stays in the slice, so a slice decides exactly as the whole set would.
//!
//! What the slicer has proven, Cedar need not check again: a policy enters a slice as its *bare*
//! form, with every scope constraint the slicer decides exactly (action `==`/`in` a list, principal
//! `==` or in a gateway role, any resource constraint) replaced by "any". Every request whose slice
//! holds the policy satisfies those constraints, so the bare form decides the same — without Cedar
//! building the action list as a set and walking the hierarchy on every evaluation.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use cedar_policy::{
    ActionConstraint, Entities, EntityUid, Policy, PolicySet, PrincipalConstraint, ResourceConstraint,
};

/// Slices kept before the cache starts over (a cheap bound on memory).
const CACHE_LIMIT: usize = 16_384;

/// Who a policy can apply to, as far as slicing is concerned.
#[derive(Debug, Clone)]
enum Scope {
    /// Might apply to anyone: always in the slice.
    Anyone,
    /// `principal == u`.
    Principal(EntityUid),
    /// `principal in Portcullis::Role::"…"`.
    Role(EntityUid),
}

/// The policies, indexed for slicing.
pub struct Index {
    policies: Vec<Policy>,
    scopes: Vec<Scope>,
    resources: Vec<ResourceConstraint>,
    /// Whether the slicer decides the principal and the action constraint exactly (it always
    /// decides the resource constraint).
    proven: Vec<Proven>,
    /// The bare forms, made when a slice first needs them.
    bare: Vec<OnceLock<Policy>>,
    by_action: HashMap<EntityUid, Vec<usize>>,
    any_action: Vec<usize>,
    cache: Mutex<HashMap<Vec<usize>, Arc<Slice>>>,
}

/// The policies that can apply to one request.
pub struct Slice {
    pub policies: PolicySet,
    /// No policy in it has a `when` or `unless` condition: the decision depends only on the
    /// principal's place in the hierarchy, the action and the resource — not on attributes or
    /// context.
    pub unconditional: bool,
}

impl Index {
    /// Indexes `set`. Template-linked policies are re-parsed in their linked (static) form so a
    /// slice can hold them; `groups` are the action groups of the schema (a policy naming a group
    /// applies to its members, which this index does not track, so it goes in every slice).
    pub fn new(set: &PolicySet, groups: &HashSet<EntityUid>, is_role: impl Fn(&EntityUid) -> bool) -> Self {
        let mut index = Self {
            policies: Vec::new(),
            scopes: Vec::new(),
            resources: Vec::new(),
            proven: Vec::new(),
            bare: Vec::new(),
            by_action: HashMap::new(),
            any_action: Vec::new(),
            cache: Mutex::new(HashMap::new()),
        };
        for policy in set.policies() {
            let static_form = if policy.is_static() {
                Some(policy.clone())
            } else {
                Policy::parse(Some(policy.id().clone()), policy.to_string()).ok()
            };
            let Some(policy) = static_form else {
                tracing::error!(policy = %policy.id(), "linked policy could not be sliced; it is left out");
                continue;
            };
            let position = index.policies.len();
            let scope = match policy.principal_constraint() {
                PrincipalConstraint::Eq(uid) => Scope::Principal(uid),
                PrincipalConstraint::In(uid) if is_role(&uid) => Scope::Role(uid),
                _ => Scope::Anyone,
            };
            let action_proven = match policy.action_constraint() {
                ActionConstraint::Eq(action) => {
                    index.by_action.entry(action).or_default().push(position);
                    true
                }
                ActionConstraint::In(actions) if !actions.iter().any(|a| groups.contains(a)) => {
                    for action in actions {
                        index.by_action.entry(action).or_default().push(position);
                    }
                    true
                }
                _ => {
                    index.any_action.push(position);
                    false
                }
            };
            index.proven.push(Proven {
                principal: !matches!(scope, Scope::Anyone),
                action: action_proven,
            });
            index.bare.push(OnceLock::new());
            index.resources.push(policy.resource_constraint());
            index.policies.push(policy);
            index.scopes.push(scope);
        }
        index
    }

    /// The policies that can apply to `principal` (holding `roles`) taking `action` on `resource`
    /// (whose ancestors `entities` know).
    pub fn slice(
        &self,
        principal: &EntityUid,
        roles: &HashSet<EntityUid>,
        action: &EntityUid,
        resource: &EntityUid,
        entities: &Entities,
    ) -> Arc<Slice> {
        // Cedar's `resource in X`: the resource is X or one of X's descendants.
        let within = |x: &EntityUid| x == resource || entities.is_ancestor_of(x, resource);
        let mut chosen: Vec<usize> = self
            .by_action
            .get(action)
            .into_iter()
            .flatten()
            .chain(self.any_action.iter())
            .copied()
            .filter(|&i| match &self.scopes[i] {
                Scope::Anyone => true,
                Scope::Principal(uid) => uid == principal,
                Scope::Role(role) => roles.contains(role),
            })
            .filter(|&i| match &self.resources[i] {
                ResourceConstraint::Any => true,
                ResourceConstraint::Eq(uid) => uid == resource,
                ResourceConstraint::In(uid) => within(uid),
                ResourceConstraint::Is(type_name) => type_name == resource.type_name(),
                ResourceConstraint::IsIn(type_name, uid) => type_name == resource.type_name() && within(uid),
            })
            .collect();
        chosen.sort_unstable();
        chosen.dedup();
        if let Some(found) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&chosen) {
            return found.clone();
        }
        let mut policies = PolicySet::new();
        for &i in &chosen {
            let bare = self.bare[i].get_or_init(|| bare(&self.policies[i], self.proven[i]));
            if let Err(error) = policies.add(bare.clone()) {
                tracing::error!(%error, "policy left out of a slice");
            }
        }
        let unconditional = chosen
            .iter()
            .all(|&i| !self.policies[i].has_non_scope_constraint());
        let set = Arc::new(Slice {
            policies,
            unconditional,
        });
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(chosen, set.clone());
        set
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

/// Which scope constraints of a policy the slicer decides exactly.
#[derive(Debug, Clone, Copy)]
struct Proven {
    principal: bool,
    action: bool,
}

/// `policy` with its proven scope constraints (and its resource constraint) replaced by "any"; the
/// policy itself if Cedar will not take the rewrite, which only costs speed.
fn bare(policy: &Policy, proven: Proven) -> Policy {
    let any = || serde_json::json!({ "op": "All" });
    let rewritten = policy.to_json().ok().and_then(|mut json| {
        if proven.principal {
            json["principal"] = any();
        }
        if proven.action {
            json["action"] = any();
        }
        json["resource"] = any();
        Policy::from_json(Some(policy.id().clone()), json).ok()
    });
    rewritten.unwrap_or_else(|| {
        tracing::warn!(policy = %policy.id(), "policy kept with its full scope in slices");
        policy.clone()
    })
}
