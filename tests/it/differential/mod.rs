//! The differential test: the gateway's `authorize` and `authorizeBatch` against Cedar's own
//! evaluator over the whole, unsliced policy set, on a seeded random world — schemas with action
//! groups, entity hierarchies, policies and templates of every scope shape, global and
//! organization roles, principals canonical and not, users and non-users, contexts conforming and
//! not, shared and own entity sets that overlap — with role, membership, policy, link and schema
//! changes interleaved with the questions, so the engine's caches are tested too.
//!
//! Fixed seeds run with every `cargo test`; a longer run: `PORTCULLIS_DIFFERENTIAL_SEED=<n>
//! PORTCULLIS_DIFFERENTIAL_QUESTIONS=50000 cargo test --test it differential`.

mod reference;
mod world;

use serde_json::{Value, json};

use self::reference::{Answer, Model, Question, Reference};
use self::world::{ACTIONS, DOCUMENTS, FOLDERS, GROUPS, Names, Rng, SHOP_USERS};
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};

const SELECTION: &str = "allowed determiningPolicies { id } errors";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The gateway being tested, with what the test has made in it.
struct Gateway {
    t: TestApp,
    admin: String,
    admin_id: String,
    organizations: Vec<String>,
    users: Vec<String>,
    /// Global roles, then organization roles with their organization.
    roles: Vec<(String, Option<String>)>,
    templates: Vec<String>,
    /// Each user signed in, for asking the gateway's own guard.
    actors: Vec<(String, portcullis::identity::Actor)>,
    variants: [String; 2],
    variant: usize,
    model: Model,
}

impl Gateway {
    async fn call(&self, query: &str, variables: Value) -> Value {
        let response = self.t.gql(Some(&self.admin), query, variables).await;
        response.data().clone()
    }

    async fn put_schema(&mut self, variant: usize) -> bool {
        let response = self
            .t
            .gql(
                Some(&self.admin),
                "mutation($input: PutCedarSchemaInput!) { putCedarSchema(input: $input) { cedarSchema { namespace } } }",
                json!({ "input": { "namespace": "Shop", "source": self.variants[variant] } }),
            )
            .await;
        let accepted = response.0.get("errors").is_none();
        if !accepted && std::env::var("PORTCULLIS_DIFFERENTIAL_VERBOSE").is_ok() {
            eprintln!(
                "schema variant {variant} refused: {:#}\n{}",
                response.0, self.variants[variant]
            );
        }
        if accepted {
            self.variant = variant;
            self.model.fragment = self.variants[variant].clone();
        }
        accepted
    }

    fn reference(&self) -> Reference {
        let state = self.t.app.engine.state();
        Reference::new(&self.model, &state.compiled.policies)
    }

    /// One random change of roles, memberships, policies, links or the schema.
    async fn change(&mut self, rng: &mut Rng) {
        let user = rng.pick(&self.users).clone();
        match rng.below(7) {
            0 | 1 => {
                let (role, home) = rng.pick(&self.roles).clone();
                let organization =
                    home.or_else(|| rng.chance(50).then(|| rng.pick(&self.organizations).clone()));
                let holds = match &organization {
                    None => self.model.global_roles.get(&user),
                    Some(org) => self.model.scoped_roles.get(&(user.clone(), org.clone())),
                }
                .is_some_and(|held| held.contains(&role));
                let mutation = if holds { "unassignRole" } else { "assignRole" };
                let input = json!({ "userId": user, "roleId": role, "organizationId": organization });
                self.call(
                    &format!("mutation($input: RoleAssignmentInput!) {{ {mutation}(input: $input) {{ roleAssignment {{ id }} }} }}"),
                    json!({ "input": input }),
                )
                .await;
                let held = match organization {
                    None => self.model.global_roles.entry(user).or_default(),
                    Some(org) => self.model.scoped_roles.entry((user, org)).or_default(),
                };
                if !held.remove(&role) {
                    held.insert(role);
                }
            }
            2 => {
                let org = rng.pick(&self.organizations).clone();
                let key = (user.clone(), org.clone());
                let mutation = if self.model.members.contains(&key) {
                    "removeMember"
                } else {
                    "addMember"
                };
                self.call(
                    &format!("mutation($input: MemberInput!) {{ {mutation}(input: $input) {{ membership {{ organization {{ id }} }} }} }}"),
                    json!({ "input": { "organizationId": org, "userId": user } }),
                )
                .await;
                if !self.model.members.remove(&key) {
                    self.model.members.insert(key);
                }
            }
            3 => {
                let ids: Vec<String> = self.model.policies.keys().cloned().collect();
                let id = rng.pick(&ids).clone();
                let enabled = !self.model.policies[&id].2;
                self.call(
                    "mutation($input: UpdatePolicyInput!) { updatePolicy(input: $input) { policy { id } } }",
                    json!({ "input": { "id": id, "enabled": enabled } }),
                )
                .await;
                if let Some(policy) = self.model.policies.get_mut(&id) {
                    policy.2 = enabled;
                }
            }
            4 if !self.templates.is_empty() => {
                let template = rng.pick(&self.templates).clone();
                let role = rng.pick(&self.roles).0.clone();
                let link = (role.clone(), template.clone());
                let mutation = if self.model.links.contains(&link) {
                    "detachPolicy"
                } else {
                    "attachPolicy"
                };
                self.call(
                    &format!("mutation($input: RolePolicyInput!) {{ {mutation}(input: $input) {{ role {{ id }} }} }}"),
                    json!({ "input": { "roleId": role, "policyId": template } }),
                )
                .await;
                if !self.model.links.remove(&link) {
                    self.model.links.insert(link);
                }
            }
            5 => {
                // An account change: the last user (never asked about through the guard, whose
                // actors hold the status they signed in with) is disabled or enabled.
                let user = self.users[self.users.len() - 1].clone();
                let disabled = self.model.users[&user].1 == "disabled";
                let mutation = if disabled { "enableUser" } else { "disableUser" };
                self.call(
                    &format!(
                        "mutation($input: UserIdInput!) {{ {mutation}(input: $input) {{ user {{ id }} }} }}"
                    ),
                    json!({ "input": { "id": user } }),
                )
                .await;
                if let Some(account) = self.model.users.get_mut(&user) {
                    account.1 = if disabled { "active" } else { "disabled" }.to_owned();
                }
            }
            _ => {
                let other = 1 - self.variant;
                self.put_schema(other).await;
            }
        }
    }
}

async fn set_up(t: TestApp, rng: &mut Rng) -> Gateway {
    let login = t.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let admin = login["accessToken"].as_str().expect("token").to_owned();
    let admin_id = login["user"]["id"].as_str().expect("id").to_owned();
    let mut model = Model::default();
    model
        .users
        .insert(admin_id.clone(), (ADMIN_EMAIL.to_owned(), "active".to_owned()));
    model
        .global_roles
        .entry(admin_id.clone())
        .or_default()
        .insert("00000000-0000-7000-8000-000000000001".to_owned());
    let mut organizations = Vec::new();
    for slug in ["diff-a", "diff-b"] {
        organizations.push(t.create_organization(&admin, slug).await);
    }
    let mut users = Vec::new();
    for email in ["u0@diff.test", "u1@diff.test", "u2@diff.test", "u3@other.test"] {
        let id = t.create_user(&admin, email).await;
        model
            .users
            .insert(id.clone(), (email.to_owned(), "active".to_owned()));
        users.push(id);
    }
    let mut gateway = Gateway {
        t,
        admin,
        admin_id,
        organizations,
        users,
        roles: Vec::new(),
        templates: Vec::new(),
        actors: Vec::new(),
        variants: [
            world::schema(&world::hierarchy(rng)),
            world::schema(&world::hierarchy(rng)),
        ],
        variant: 0,
        model,
    };
    let homes = [None, None, None, Some(0), Some(1)];
    for (i, home) in homes.into_iter().enumerate() {
        let organization = home.map(|o: usize| gateway.organizations[o].clone());
        let data = gateway
            .call(
                "mutation($input: CreateRoleInput!) { createRole(input: $input) { role { id } } }",
                json!({ "input": { "key": format!("diff-{i}"), "name": format!("Diff {i}"), "organizationId": organization } }),
            )
            .await;
        let id = data["createRole"]["role"]["id"]
            .as_str()
            .expect("role id")
            .to_owned();
        gateway.roles.push((id, organization));
    }
    assert!(gateway.put_schema(0).await, "the Shop schema is accepted");

    let role_ids: Vec<String> = gateway.roles.iter().map(|(id, _)| id.clone()).collect();
    let names = Names {
        roles: &role_ids,
        users: &gateway.users,
    };
    let (mut tried, mut accepted) = (0, 0);
    while accepted < 70 && tried < 400 {
        tried += 1;
        let template = rng.chance(20) && accepted >= 10;
        let source = if accepted < 10 {
            world::gateway_policy(rng, &role_ids, &gateway.organizations)
        } else {
            world::policy(rng, &names, template)
        };
        let response = gateway
            .t
            .gql(
                Some(&gateway.admin),
                "mutation($input: CreatePolicyInput!) { createPolicy(input: $input) { policy { id kind } } }",
                json!({ "input": { "name": format!("p{tried}"), "source": source } }),
            )
            .await;
        if response.0.get("errors").is_some() {
            continue; // refused by validation: not in force, on either side
        }
        accepted += 1;
        let policy = &response.0["data"]["createPolicy"]["policy"];
        let id = policy["id"].as_str().expect("policy id").to_owned();
        let is_template = policy["kind"] == "TEMPLATE";
        assert_eq!(is_template, template, "{source}");
        gateway
            .model
            .policies
            .insert(id.clone(), (source, template, true));
        if template {
            gateway.templates.push(id);
        }
    }
    assert!(
        accepted >= 40,
        "only {accepted} of {tried} generated policies were valid"
    );
    let guarded = gateway.users.len() - 1;
    let signed_in: Vec<String> = gateway.users[..guarded].to_vec();
    for user in signed_in {
        let email = gateway.model.users[&user].0.clone();
        let token = gateway.t.login(&email, crate::support::PASSWORD).await["accessToken"]
            .as_str()
            .expect("token")
            .to_owned();
        let client = portcullis::identity::ClientInfo::default();
        let principal =
            portcullis::identity::authenticate::authenticate(&gateway.t.app, Some(&token), &client)
                .await
                .expect("authenticated");
        gateway
            .actors
            .push((user, principal.actor().expect("an actor").clone()));
    }
    for _ in 0..30 {
        gateway.change(rng).await;
    }
    gateway
}

/// A random question; its entities are chosen by the caller.
fn question(rng: &mut Rng, gateway: &Gateway) -> Question {
    let principal = match rng.below(20) {
        0..=8 => Some(("Portcullis::User".to_owned(), rng.pick(&gateway.users).clone())),
        9 => Some((
            "Portcullis::User".to_owned(),
            rng.pick(&gateway.users).to_uppercase(),
        )),
        10..=15 => Some(("Shop::User".to_owned(), rng.pick(&SHOP_USERS).to_string())),
        16 | 17 => Some(("Portcullis::Role".to_owned(), rng.pick(&gateway.roles).0.clone())),
        18 => Some((
            "Portcullis::Organization".to_owned(),
            rng.pick(&gateway.organizations).clone(),
        )),
        _ => None,
    };
    let action = match rng.below(20) {
        0..=14 => ("Shop::Action".to_owned(), rng.pick(&ACTIONS).to_string()),
        15..=17 => ("Shop::Action".to_owned(), rng.pick(&GROUPS).to_string()),
        18 => ("Shop::Action".to_owned(), "undeclared".to_owned()),
        _ => ("Portcullis::Action".to_owned(), "user.read".to_owned()),
    };
    let resource = match rng.below(10) {
        0..=6 => ("Shop::Document".to_owned(), rng.pick(&DOCUMENTS).to_string()),
        7 | 8 => ("Shop::Folder".to_owned(), rng.pick(&FOLDERS).to_string()),
        _ => ("Portcullis::User".to_owned(), rng.pick(&gateway.users).clone()),
    };
    let organization = match rng.below(3) {
        0 => None,
        _ => Some(rng.pick(&gateway.organizations).clone()),
    };
    Question {
        principal,
        action,
        resource,
        organization,
        context: world::context(rng),
        entities: None,
    }
}

/// Asks the gateway's own guard a few questions about gateway actions and compares each with
/// Cedar's; returns the mismatches.
async fn ask_the_guard(rng: &mut Rng, gateway: &Gateway, reference: &Reference) -> Vec<String> {
    use portcullis::authz::{Action, Resource, guard};
    let now = gateway
        .t
        .app
        .now()
        .0
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut mismatches = Vec::new();
    for _ in 0..5 {
        let (user, actor) = rng.pick(&gateway.actors);
        let name = if rng.chance(70) {
            *rng.pick(&world::GATEWAY_ACTIONS)
        } else {
            rng.pick(&Action::ALL).name()
        };
        let action = Action::parse(name).expect("a gateway action");
        let (resource, uid, organization) = match rng.below(3) {
            0 => (
                Resource::Gateway,
                reference::uid("Portcullis::Gateway", "portcullis"),
                None,
            ),
            1 => {
                let org = rng.pick(&gateway.organizations).clone();
                let id = org.parse().expect("an id");
                (
                    Resource::Organization(id),
                    reference::uid("Portcullis::Organization", &org),
                    Some(org),
                )
            }
            _ => {
                let other = rng.pick(&gateway.users);
                (
                    Resource::User(other.parse().expect("an id")),
                    reference::uid("Portcullis::User", other),
                    None,
                )
            }
        };
        let ours = guard::allows(&gateway.t.app, actor, action, resource)
            .await
            .expect("a decision");
        let cedar = reference.guard_answer(&gateway.model, user, name, &uid, organization.as_deref(), &now);
        if ours != cedar {
            mismatches.push(format!(
                "guard: {user} {name} on {uid}: gateway {ours}, Cedar {cedar}"
            ));
        }
    }
    mismatches
}

/// The GraphQL input of a question with its own entities, as a value or as text.
fn input(question: &Question, own: Option<&[Value]>, as_text: bool) -> Value {
    let reference = |(type_name, id): &(String, String)| json!({ "type": type_name, "id": id });
    let mut input = json!({
        "action": reference(&question.action),
        "resource": reference(&question.resource),
        "organizationId": question.organization,
        "context": question.context,
    });
    if let Some(principal) = &question.principal {
        input["principal"] = reference(principal);
    }
    match own {
        Some(own) if as_text => input["entitiesJson"] = json!(Value::Array(own.to_vec()).to_string()),
        Some(own) => input["entities"] = Value::Array(own.to_vec()),
        None => {}
    }
    input
}

/// The gateway's answer as the reference states it.
fn answer_of(decision: &Value, error: Option<&Value>) -> Answer {
    if let Some(error) = error.filter(|e| !e.is_null()) {
        return Answer::Refused(error["code"].as_str().unwrap_or("?").to_owned());
    }
    let mut determining: Vec<String> = decision["determiningPolicies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["id"].as_str().unwrap_or("builtin").to_owned())
        .collect();
    determining.sort();
    let mut errors: Vec<String> = decision["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e.as_str().unwrap_or_default().to_owned())
        .collect();
    errors.sort();
    Answer::Decided {
        allowed: decision["allowed"] == true,
        determining,
        errors,
    }
}

/// One mismatch, printed with what is needed to reproduce it.
fn describe(
    question: &Question,
    input: &Value,
    ours: &Answer,
    cedar: &Answer,
    reference: &Reference,
) -> String {
    let mut ids = Vec::new();
    for answer in [ours, cedar] {
        if let Answer::Decided { determining, .. } = answer {
            ids.extend(determining.iter().cloned());
        }
    }
    format!(
        "question: {input:#}\nentities (shared then own): {}\ngateway: {ours:?}\ncedar:   {cedar:?}\npolicies that decided either answer:\n  {}",
        serde_json::to_string(&question.entities).unwrap_or_default(),
        reference.sources(&ids).join("\n  ")
    )
}

async fn differential_against_unsliced_cedar(t: TestApp) {
    let seed = env_or("PORTCULLIS_DIFFERENTIAL_SEED", 20_261_129);
    let questions = env_or("PORTCULLIS_DIFFERENTIAL_QUESTIONS", 1_500) as usize;
    let mut rng = Rng::new(seed);
    let started = std::time::Instant::now();
    let mut gateway = set_up(t, &mut rng).await;
    let set_up_in = started.elapsed();
    let mut changing = std::time::Duration::ZERO;
    let mut referencing = std::time::Duration::ZERO;
    let world_entities = world::entities(&mut rng, &gateway.users);
    let mut reference = gateway.reference();
    let (mut asked, mut allowed, mut refused, mut guarded) = (0, 0, 0, 0);
    let mut mismatches = Vec::new();
    let batch_query = format!(
        "query($inputs: [AuthorizeInput!]!, $entities: JSON, $entitiesJson: String) {{
           authorizeBatch(inputs: $inputs, entities: $entities, entitiesJson: $entitiesJson) {{ {SELECTION} error {{ code }} }} }}"
    );
    let single_query =
        format!("query($input: AuthorizeInput!) {{ authorize(input: $input) {{ {SELECTION} }} }}");
    while asked < questions {
        if rng.chance(8) {
            let at = std::time::Instant::now();
            gateway.change(&mut rng).await;
            reference = gateway.reference();
            changing += at.elapsed();
        }
        if rng.chance(15) {
            mismatches.extend(ask_the_guard(&mut rng, &gateway, &reference).await);
            guarded += 5;
        }
        let mut results = Vec::new();
        if rng.chance(40) {
            let mut question = question(&mut rng, &gateway);
            let own = match rng.below(4) {
                0 => None,
                1 => Some(world::subset(&mut rng, &world_entities, 50)),
                _ => Some(world_entities.clone()),
            };
            question.entities = own.clone();
            let input = input(&question, own.as_deref(), rng.chance(50));
            let response = gateway
                .t
                .gql(Some(&gateway.admin), &single_query, json!({ "input": input }))
                .await;
            let ours = match response.0.get("errors") {
                Some(errors) => {
                    Answer::Refused(errors[0]["extensions"]["code"].as_str().unwrap_or("?").to_owned())
                }
                None => answer_of(&response.0["data"]["authorize"], None),
            };
            results.push((question, input, ours));
        } else {
            let shared = rng
                .chance(70)
                .then(|| world::subset(&mut rng, &world_entities, 60));
            let mut questions = Vec::new();
            let mut inputs = Vec::new();
            for _ in 0..1 + rng.below(10) {
                let mut question = question(&mut rng, &gateway);
                let mut own = rng
                    .chance(60)
                    .then(|| world::subset(&mut rng, &world_entities, 30));
                // Now and then a question redefines an entity of the shared set.
                if let (Some(own), Some(shared)) = (own.as_mut(), shared.as_ref())
                    && rng.chance(8)
                    && !shared.is_empty()
                {
                    let mut changed = rng.pick(shared).clone();
                    changed["attrs"]["extra"] = json!(1);
                    own.push(changed);
                }
                inputs.push(input(&question, own.as_deref(), rng.chance(50)));
                question.entities = match (&shared, own) {
                    (None, own) => own,
                    (Some(shared), own) => {
                        Some(shared.iter().cloned().chain(own.into_iter().flatten()).collect())
                    }
                };
                questions.push(question);
            }
            let mut variables = json!({ "inputs": inputs });
            if let Some(shared) = &shared {
                if rng.chance(50) {
                    variables["entitiesJson"] = json!(Value::Array(shared.clone()).to_string());
                } else {
                    variables["entities"] = Value::Array(shared.clone());
                }
            }
            let data = gateway.call(&batch_query, variables).await;
            let answers = data["authorizeBatch"].as_array().expect("answers").clone();
            assert_eq!(answers.len(), questions.len(), "one answer per question");
            for ((question, input), answer) in questions.into_iter().zip(inputs).zip(answers) {
                let ours = answer_of(&answer, answer.get("error"));
                results.push((question, input, ours));
            }
        }
        for (question, input, ours) in results {
            asked += 1;
            let at = std::time::Instant::now();
            let cedar = reference.answer(&gateway.model, &gateway.admin_id, &question);
            referencing += at.elapsed();
            match &cedar {
                Answer::Refused(_) => refused += 1,
                Answer::Decided { allowed: true, .. } => allowed += 1,
                Answer::Decided { .. } => {}
            }
            if ours != cedar && mismatches.len() < 5 {
                mismatches.push(describe(&question, &input, &ours, &cedar, &reference));
            } else if ours != cedar {
                mismatches.push(String::new());
            }
        }
    }
    eprintln!(
        "differential (seed {seed}): {asked} questions ({guarded} more to the guard), {allowed} allowed, {refused} refused; set-up {set_up_in:?}, changes {changing:?}, reference {referencing:?}, all {:?}",
        started.elapsed()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {asked} answers differ from Cedar's (seed {seed}); the first:\n\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .filter(|m| !m.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    assert!(
        allowed > asked / 20 && allowed + refused < asked * 19 / 20,
        "the questions mix allows, denies and refusals ({allowed} allowed, {refused} refused of {asked})"
    );
}

crate::backend_tests!(differential_against_unsliced_cedar);
