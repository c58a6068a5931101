//! The reference: Cedar's own `Authorizer` over the whole policy set — templates linked by Cedar,
//! nothing sliced, no bare copies — with the entities the gateway is documented to construct: the
//! integrator's (shared and own as one array), the schema's action entities, and a gateway user
//! as principal with its email, status and the roles that count in the request's organization.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityUid, Policy, PolicyId, PolicySet, RestrictedExpression,
    Schema, SchemaFragment, SlotId, Template,
};
use serde_json::Value;

/// The fixed id of the built-in `org_member` role, held by every member of an organization.
const ORG_MEMBER_ROLE: &str = "00000000-0000-7000-8000-000000000004";

/// What the gateway should answer one question with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The question is refused, with this error code.
    Refused(String),
    Decided {
        allowed: bool,
        /// The determining policies' ids (stored policy, or role), or `builtin`; sorted.
        determining: Vec<String>,
        /// Evaluation errors, sorted.
        errors: Vec<String>,
    },
}

/// Everything the test has done to the gateway, as it expects the gateway to see it.
#[derive(Default)]
pub struct Model {
    /// Users by id: (email, status).
    pub users: BTreeMap<String, (String, String)>,
    pub global_roles: BTreeMap<String, BTreeSet<String>>,
    /// (user, organization) → roles held there.
    pub scoped_roles: BTreeMap<(String, String), BTreeSet<String>>,
    pub members: BTreeSet<(String, String)>,
    /// Stored policies by id: (source, template, enabled).
    pub policies: BTreeMap<String, (String, bool, bool)>,
    /// (role, template policy) links.
    pub links: BTreeSet<(String, String)>,
    /// The `Shop` fragment in force.
    pub fragment: String,
}

/// One question, as asked.
pub struct Question {
    pub principal: Option<(String, String)>,
    pub action: (String, String),
    pub resource: (String, String),
    pub organization: Option<String>,
    pub context: Value,
    /// The entities as one array (the batch's shared ones first), or `None`.
    pub entities: Option<Vec<Value>>,
}

/// The compiled reference: the whole policy set and the schema's action entities.
pub struct Reference {
    policies: PolicySet,
    actions: Entities,
}

impl Reference {
    /// From the model, with the gateway's built-in and role policies (`builtins`, over gateway
    /// actions only) added as they are.
    pub fn new(model: &Model, builtins: &PolicySet) -> Self {
        let mut policies = PolicySet::new();
        for policy in builtins.policies() {
            let id = policy.id().to_string();
            if !id.starts_with("policy:") && !id.starts_with("link:") {
                policies.add(policy.clone()).expect("a built-in policy");
            }
        }
        for (id, (source, template, enabled)) in &model.policies {
            if !enabled {
                continue;
            }
            let policy_id = PolicyId::new(format!("policy:{id}"));
            if *template {
                let template = Template::parse(Some(policy_id.clone()), source).expect("a stored template");
                policies.add_template(template).expect("a new template");
                for (role, _) in model.links.iter().filter(|(_, policy)| policy == id) {
                    let role = uid("Portcullis::Role", role);
                    policies
                        .link(
                            policy_id.clone(),
                            PolicyId::new(format!("link:{}:{id}", role.id().unescaped())),
                            HashMap::from([(SlotId::principal(), role)]),
                        )
                        .expect("a template links to a role");
                }
            } else {
                policies
                    .add(Policy::parse(Some(policy_id), source).expect("a stored policy"))
                    .expect("a new policy");
            }
        }
        let fragments = [portcullis::authz::schema::GATEWAY_SCHEMA, model.fragment.as_str()].map(|source| {
            SchemaFragment::from_cedarschema_str(source)
                .expect("a fragment")
                .0
        });
        let schema = Schema::from_schema_fragments(fragments).expect("the schema");
        Self {
            policies,
            actions: schema.action_entities().expect("action entities"),
        }
    }

    /// Cedar's answer to `question` asked by `caller`.
    pub fn answer(&self, model: &Model, caller: &str, question: &Question) -> Answer {
        let refused = || Answer::Refused("BAD_USER_INPUT".to_owned());
        let principal = match &question.principal {
            Some((type_name, id)) => uid(type_name, id),
            None => uid("Portcullis::User", caller),
        };
        for named in [&principal, &uid(&question.resource.0, &question.resource.1)] {
            let gateway_type = ["Portcullis::User", "Portcullis::Role", "Portcullis::Organization"]
                .contains(&named.type_name().to_string().as_str());
            let id = named.id().unescaped().to_owned();
            if gateway_type && uuid::Uuid::parse_str(&id).map(|u| u.to_string()) != Ok(id) {
                return refused();
            }
        }
        let given = match &question.entities {
            None => Entities::empty(),
            Some(list) => match Entities::from_json_value(Value::Array(list.clone()), None) {
                Ok(given) => given,
                Err(_) => return refused(),
            },
        };
        let mut all: Vec<Entity> = given.iter().chain(self.actions.iter()).cloned().collect();
        if principal.type_name().to_string() == "Portcullis::User" {
            let id = principal.id().unescaped().to_owned();
            let (email, status) = model.users.get(&id).expect("a known user");
            let attrs = HashMap::from([
                (
                    "email".to_owned(),
                    RestrictedExpression::new_string(email.clone()),
                ),
                (
                    "status".to_owned(),
                    RestrictedExpression::new_string(status.clone()),
                ),
            ]);
            all.push(
                Entity::new(
                    principal.clone(),
                    attrs,
                    roles(model, &id, question.organization.as_deref()),
                )
                .expect("principal"),
            );
        }
        let entities = match Entities::from_entities(all, None) {
            Ok(entities) => entities,
            Err(_) => return refused(),
        };
        let context = match &question.context {
            Value::Null => Context::empty(),
            json => match Context::from_json_value(json.clone(), None) {
                Ok(context) => context,
                Err(_) => return refused(),
            },
        };
        let request = cedar_policy::Request::new(
            principal,
            uid(&question.action.0, &question.action.1),
            uid(&question.resource.0, &question.resource.1),
            context,
            None,
        )
        .expect("a request without a schema");
        let response = Authorizer::new().is_authorized(&request, &self.policies, &entities);
        let mut determining: Vec<String> = response.diagnostics().reason().map(origin).collect();
        determining.sort();
        let mut errors: Vec<String> = response.diagnostics().errors().map(|e| e.to_string()).collect();
        errors.sort();
        Answer::Decided {
            allowed: response.decision() == cedar_policy::Decision::Allow,
            determining,
            errors,
        }
    }

    /// Cedar's answer to the gateway's own question: may `user` take the gateway `action` on
    /// `resource` (in `organization`)? As the guard constructs it: the user with the roles that
    /// count there, the resource as an entity of its own, and the request context of a password
    /// session without a second factor.
    pub fn guard_answer(
        &self,
        model: &Model,
        user: &str,
        action: &str,
        resource: &EntityUid,
        organization: Option<&str>,
        now: &str,
    ) -> bool {
        let principal = uid("Portcullis::User", user);
        let (email, status) = model.users.get(user).expect("a known user");
        let attrs = HashMap::from([
            (
                "email".to_owned(),
                RestrictedExpression::new_string(email.clone()),
            ),
            (
                "status".to_owned(),
                RestrictedExpression::new_string(status.clone()),
            ),
        ]);
        let mut all: Vec<Entity> = self.actions.iter().cloned().collect();
        all.push(Entity::new(principal.clone(), attrs, roles(model, user, organization)).expect("principal"));
        if resource != &principal {
            all.push(Entity::new_no_attrs(resource.clone(), HashSet::new()));
        }
        let entities = Entities::from_entities(all, None).expect("the guard's entities");
        let context = Context::from_pairs([
            (
                "authMethod".to_owned(),
                RestrictedExpression::new_string("password".to_owned()),
            ),
            ("mfa".to_owned(), RestrictedExpression::new_bool(false)),
            ("now".to_owned(), RestrictedExpression::new_datetime(now)),
        ])
        .expect("context");
        let request = cedar_policy::Request::new(
            principal,
            uid("Portcullis::Action", action),
            resource.clone(),
            context,
            None,
        )
        .expect("a request");
        Authorizer::new()
            .is_authorized(&request, &self.policies, &entities)
            .decision()
            == cedar_policy::Decision::Allow
    }

    /// The sources of the policies named, for printing a failing case.
    pub fn sources(&self, ids: &[String]) -> Vec<String> {
        self.policies
            .policies()
            .filter(|p| ids.contains(&origin(p.id())))
            .map(|p| format!("{}: {p}", p.id()))
            .collect()
    }
}

/// What the gateway reports as the determining policy's id: the stored policy (for a link, its
/// template), the role, or `builtin`.
fn origin(id: &PolicyId) -> String {
    let id = id.to_string();
    if let Some(policy) = id.strip_prefix("policy:") {
        policy.to_owned()
    } else if let Some(link) = id.strip_prefix("link:") {
        link.split(':').nth(1).unwrap_or_default().to_owned()
    } else if let Some(role) = id.strip_prefix("role:") {
        role.to_owned()
    } else {
        "builtin".to_owned()
    }
}

/// The roles of `user` that count for a request about `organization`.
fn roles(model: &Model, user: &str, organization: Option<&str>) -> HashSet<EntityUid> {
    let mut held: BTreeSet<String> = model.global_roles.get(user).cloned().unwrap_or_default();
    if let Some(org) = organization {
        let key = (user.to_owned(), org.to_owned());
        held.extend(model.scoped_roles.get(&key).cloned().unwrap_or_default());
        if model.members.contains(&key) {
            held.insert(ORG_MEMBER_ROLE.to_owned());
        }
    }
    held.iter().map(|role| uid("Portcullis::Role", role)).collect()
}

pub fn uid(type_name: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        cedar_policy::EntityTypeName::from_str(type_name).expect("a type name"),
        cedar_policy::EntityId::new(id),
    )
}
