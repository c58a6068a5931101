//! Policy slicing: Cedar evaluates every policy it is handed, so each request gets only the
//! policies that can apply to it — by action, and by the principal's roles.
//!
//! A policy is left out only when its scope proves it cannot match: it names other actions (`==`
//! another action, `in` actions that are neither the request's action nor among its ancestors in
//! the entity set — the schema's action groups are there), or it is scoped to a gateway role
//! (`principal in Portcullis::Role::"…"`) the principal neither holds in this request nor is, or to
//! another principal (`principal == …`), or to resources this one is not (`resource == …`,
//! `resource in …` outside its ancestors, `resource is …` of another type). Everything else stays
//! in the slice, so a slice decides exactly as the whole set would.
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

impl Scope {
    /// Whether the slicer decides the policy's principal constraint exactly.
    fn is_proven(&self) -> bool {
        !matches!(self, Self::Anyone)
    }
}

/// One policy and what the slicer knows of its scope.
struct Entry {
    policy: Policy,
    scope: Scope,
    resource: ResourceConstraint,
    /// The action constraint is `==` or `in` a list of plain actions, which the index decides exactly
    /// (it always decides the resource constraint).
    action_proven: bool,
    /// The bare form, made when a slice first needs it.
    bare: OnceLock<Policy>,
}

impl Entry {
    fn bare(&self) -> &Policy {
        self.bare
            .get_or_init(|| bare(&self.policy, self.scope.is_proven(), self.action_proven))
    }
}

/// The policies, indexed for slicing.
pub struct Index {
    entries: Vec<Entry>,
    /// Policies with `action == a`, by `a`.
    action_is: HashMap<EntityUid, Vec<usize>>,
    /// Policies with `action in [… a …]`, by each `a`: they apply to `a` and to every action below it.
    action_in: HashMap<EntityUid, Vec<usize>>,
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
    /// slice can hold them.
    pub fn new(set: &PolicySet, is_role: impl Fn(&EntityUid) -> bool) -> Self {
        let mut index = Self {
            entries: Vec::new(),
            action_is: HashMap::new(),
            action_in: HashMap::new(),
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
            let position = index.entries.len();
            let scope = match policy.principal_constraint() {
                PrincipalConstraint::Eq(uid) => Scope::Principal(uid),
                PrincipalConstraint::In(uid) if is_role(&uid) => Scope::Role(uid),
                _ => Scope::Anyone,
            };
            let action_proven = match policy.action_constraint() {
                ActionConstraint::Eq(action) => {
                    index.action_is.entry(action).or_default().push(position);
                    true
                }
                ActionConstraint::In(actions) => {
                    for action in actions {
                        index.action_in.entry(action).or_default().push(position);
                    }
                    true
                }
                ActionConstraint::Any => {
                    index.any_action.push(position);
                    false
                }
            };
            index.entries.push(Entry {
                resource: policy.resource_constraint(),
                policy,
                scope,
                action_proven,
                bare: OnceLock::new(),
            });
        }
        index
    }

    /// The policies that can apply to `principal` (holding `roles`) taking `action` on `resource`
    /// (whose ancestors, and the action's, `entities` know).
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
        // Cedar's `action in [g]`: the action is g or below it in the entity set.
        let groups = std::iter::once(action).chain(entities.ancestors(action).into_iter().flatten());
        let mut chosen: Vec<usize> = groups
            .filter_map(|group| self.action_in.get(group))
            .chain(self.action_is.get(action))
            .flatten()
            .chain(self.any_action.iter())
            .copied()
            .filter(|&i| match &self.entries[i].scope {
                Scope::Anyone => true,
                Scope::Principal(uid) => uid == principal,
                // An entity is `in` itself: a role asked about as the principal is in that role.
                Scope::Role(role) => roles.contains(role) || role == principal,
            })
            .filter(|&i| match &self.entries[i].resource {
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
            if let Err(error) = policies.add(self.entries[i].bare().clone()) {
                tracing::error!(%error, "policy left out of a slice");
            }
        }
        let unconditional = chosen
            .iter()
            .all(|&i| !self.entries[i].policy.has_non_scope_constraint());
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
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `policy` with its proven scope constraints (and its resource constraint) replaced by "any"; the
/// policy itself if Cedar will not take the rewrite, which only costs speed.
fn bare(policy: &Policy, principal_proven: bool, action_proven: bool) -> Policy {
    let any = || serde_json::json!({ "op": "All" });
    let rewritten = policy.to_json().ok().and_then(|mut json| {
        if principal_proven {
            json["principal"] = any();
        }
        if action_proven {
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

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use cedar_policy::{Authorizer, Context, Entity, Request};

    use super::*;

    const POLICIES: &str = r#"
        permit (principal in Portcullis::Role::"editor", action in [Docs::Action::"get", Docs::Action::"update"], resource in Docs::Folder::"f1");
        permit (principal in Docs::Group::"readers", action == Docs::Action::"get", resource);
        forbid (principal == Docs::User::"mallory", action, resource is Docs::Document);
        permit (principal, action == Docs::Action::"get", resource == Docs::Document::"public");
        permit (principal in Portcullis::Role::"admin", action, resource) when { context.mfa };
        forbid (principal, action in [Docs::Action::"update"], resource) unless { context.mfa };
    "#;

    fn uid(text: &str) -> EntityUid {
        EntityUid::from_str(text).expect("an entity uid")
    }

    /// Every slice decides as the whole set does, for every principal, action, resource and context
    /// here — including principals in a group (not a role, so never proven by the slicer).
    #[test]
    fn slices_of_bare_policies_decide_as_the_whole_set() {
        let set = PolicySet::from_str(POLICIES).expect("policies parse");
        let is_role = |uid: &EntityUid| uid.type_name().to_string() == "Portcullis::Role";
        let index = Index::new(&set, is_role);
        let users = [
            ("alice", vec![r#"Portcullis::Role::"editor""#]),
            ("bob", vec![r#"Docs::Group::"readers""#]),
            ("carol", vec![r#"Portcullis::Role::"admin""#]),
            (
                "mallory",
                vec![r#"Portcullis::Role::"editor""#, r#"Docs::Group::"readers""#],
            ),
        ];
        let documents = [("d1", "f1"), ("d2", "f2"), ("public", "f2")];
        let mut entities = vec![
            Entity::new_no_attrs(uid(r#"Docs::Folder::"f1""#), HashSet::new()),
            Entity::new_no_attrs(uid(r#"Docs::Folder::"f2""#), HashSet::new()),
            Entity::new_no_attrs(uid(r#"Docs::Group::"readers""#), HashSet::new()),
        ];
        for (document, folder) in documents {
            let parents = HashSet::from([uid(&format!(r#"Docs::Folder::"{folder}""#))]);
            entities.push(Entity::new_no_attrs(
                uid(&format!(r#"Docs::Document::"{document}""#)),
                parents,
            ));
        }
        for (user, parents) in &users {
            let parents = parents.iter().map(|p| uid(p)).collect();
            entities.push(Entity::new_no_attrs(
                uid(&format!(r#"Docs::User::"{user}""#)),
                parents,
            ));
        }
        let entities = Entities::from_entities(entities, None).expect("entities");
        let authorizer = Authorizer::new();
        let mut allowed = 0;
        let mut questions = 0;
        for (user, parents) in &users {
            let principal = uid(&format!(r#"Docs::User::"{user}""#));
            let roles: HashSet<EntityUid> = parents.iter().map(|p| uid(p)).filter(is_role).collect();
            for action in ["get", "update", "delete"] {
                let action = uid(&format!(r#"Docs::Action::"{action}""#));
                for resource in [
                    "Docs::Document::\"d1\"",
                    "Docs::Document::\"d2\"",
                    "Docs::Document::\"public\"",
                    "Docs::Folder::\"f1\"",
                ] {
                    let resource = uid(resource);
                    for mfa in [false, true] {
                        let context = Context::from_json_value(serde_json::json!({ "mfa": mfa }), None)
                            .expect("context");
                        let request =
                            Request::new(principal.clone(), action.clone(), resource.clone(), context, None)
                                .expect("request");
                        let whole = authorizer.is_authorized(&request, &set, &entities);
                        let slice = index.slice(&principal, &roles, &action, &resource, &entities);
                        let sliced = authorizer.is_authorized(&request, &slice.policies, &entities);
                        assert_eq!(
                            (
                                sliced.decision(),
                                sliced.diagnostics().reason().collect::<HashSet<_>>()
                            ),
                            (
                                whole.decision(),
                                whole.diagnostics().reason().collect::<HashSet<_>>()
                            ),
                            "{principal} {action} {resource} mfa={mfa}"
                        );
                        questions += 1;
                        allowed += usize::from(whole.decision() == cedar_policy::Decision::Allow);
                    }
                }
            }
        }
        assert!(
            allowed > 0 && allowed < questions,
            "the table mixes allows and denies"
        );
    }
}
