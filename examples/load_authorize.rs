//! HTTP load generator for the "rbac-small" policy-engine workload: seeds a running gateway over
//! GraphQL, then measures `authorize` and `authorizeBatch` throughput and latency.
//!
//! Start a release gateway with a bootstrap administrator, then run the example in another shell:
//!
//! ```sh
//! PORTCULLIS_ADMIN_EMAIL=admin@example.com PORTCULLIS_ADMIN_PASSWORD=change-me-please \
//!     PORTCULLIS_LOG=warn cargo run --release -- serve
//! PORTCULLIS_ADMIN_EMAIL=admin@example.com PORTCULLIS_ADMIN_PASSWORD=change-me-please \
//!     cargo run --release --example load_authorize
//! ```
//!
//! Environment:
//!
//! | Variable                      | Default                 | Meaning                              |
//! |-------------------------------|-------------------------|--------------------------------------|
//! | `PORTCULLIS_URL`              | `http://127.0.0.1:8080` | Base URL of the gateway              |
//! | `PORTCULLIS_ADMIN_EMAIL`      | (required)              | The bootstrap administrator          |
//! | `PORTCULLIS_ADMIN_PASSWORD`   | (required)              | Its password                         |
//! | `PORTCULLIS_LOAD_CONNECTIONS` | `32`                    | Concurrent keep-alive connections    |
//! | `PORTCULLIS_LOAD_SECONDS`     | `10` (at most 60)       | Duration of each of the two phases   |
//! | `PORTCULLIS_LOAD_ENTITIES`    | `all`                   | `all` 66 entities, or `needed` (2)   |
//! | `PORTCULLIS_GATEWAY_PID`      | unset                   | Report the gateway's RSS (Linux)     |
//!
//! The workload: a `Docs` schema fragment, 3 roles (`docs-admin`, `docs-editor`, `docs-viewer`),
//! 20 policies (admins do everything; editors get/list/update/create and viewers get/list in the
//! folders; owners update and delete their documents; public documents are readable; forbid
//! `create` when `context.locked`, `delete` unless `context.mfa`, changes to locked documents and
//! to the archive folder except by admins, anything by inactive accounts), and 1,000 users without
//! passwords holding one role each, round-robin. Seeding is skipped when the roles already exist
//! (a rerun against the same database).
//!
//! Each request asks, as the administrator (who holds `authorize.any`), about a random user,
//! action and document, with all 60 documents and their 6 folders as entities. Phase 1 sends one
//! `authorize` per request; phase 2 sends `authorizeBatch` with 100 questions per request (the
//! entities go once, as a variable every question refers to: 100 copies would exceed the default
//! 1 MiB body limit). With `PORTCULLIS_LOAD_ENTITIES=needed` each question carries only its
//! document and that document's folder instead, which shows what entity parsing costs. The load
//! stays on the given URL; use a gateway on this machine.

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const USERS: usize = 1_000;
const FOLDERS: usize = 6;
const DOCUMENTS: usize = 60;
const BATCH: usize = 100;
const ACTIONS: [&str; 5] = ["get", "list", "update", "create", "delete"];
const ROLE_KEYS: [&str; 3] = ["docs-admin", "docs-editor", "docs-viewer"];

const DOCS_SCHEMA: &str = r#"namespace Docs {
  entity Folder;
  entity Document in [Folder] { owner: Portcullis::User, locked: Bool, public: Bool };
  action "get", "list", "update", "create", "delete" appliesTo {
    principal: Portcullis::User,
    resource: Document,
    context: { mfa: Bool, locked: Bool }
  };
}"#;

const LOGIN: &str = "mutation($email: String!, $password: String!) {
  login(input: { email: $email, password: $password }) { accessToken } }";
const PUT_SCHEMA: &str = "mutation($source: String!) {
  putCedarSchema(input: { namespace: \"Docs\", source: $source }) { cedarSchema { namespace } } }";
const ROLES: &str = "query { roles(first: 100) { nodes { id key } } }";
const CREATE_ROLE: &str = "mutation($key: String!) {
  createRole(input: { key: $key, name: $key, permissions: [] }) { role { id } } }";
const CREATE_USER: &str = "mutation($email: String!) {
  createUser(input: { email: $email, displayName: $email }) { user { id } } }";
const ASSIGN: &str = "mutation($user: ID!, $role: ID!) {
  assignRole(input: { userId: $user, roleId: $role }) { roleAssignment { id } } }";
const CREATE_POLICY: &str = "mutation($name: String!, $source: String!) {
  createPolicy(input: { name: $name, source: $source }) { policy { id } } }";
const USERS_PAGE: &str = "query($after: String) {
  users(first: 100, after: $after, filter: { search: \"@rbac-small.test\" }) {
    nodes { id email } pageInfo { hasNextPage endCursor } } }";
const AUTHORIZE: &str = "query($input: AuthorizeInput!) { authorize(input: $input) { allowed errors } }";

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// One GraphQL endpoint, one keep-alive connection, one bearer token.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    endpoint: String,
    token: Option<String>,
}

impl Client {
    fn new(endpoint: &str, token: Option<String>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            http,
            endpoint: endpoint.to_owned(),
            token,
        })
    }

    /// Runs one operation and returns its `data`, or an error naming the GraphQL errors.
    async fn execute(&self, query: &str, variables: &Value) -> Result<Value> {
        let mut request = self
            .http
            .post(&self.endpoint)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if let Some(errors) = body.get("errors").and_then(Value::as_array) {
            let messages: Vec<String> = errors
                .iter()
                .map(|e| e["message"].as_str().unwrap_or("(no message)").to_owned())
                .collect();
            return Err(format!("HTTP {status}: {}", messages.join("; ")).into());
        }
        match body.get("data") {
            Some(data) if !data.is_null() => Ok(data.clone()),
            _ => Err(format!("HTTP {status}: no data in the response").into()),
        }
    }
}

fn text(value: &Value, pointer: &str) -> Result<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("the response has no {pointer}").into())
}

/// xorshift64*: deterministic request mixes without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The 20 policies, given the role ids.
fn policies(admin: &str, editor: &str, viewer: &str) -> Vec<(String, String)> {
    let role = |id: &str| format!("Portcullis::Role::\"{id}\"");
    let actions = |names: &[&str]| {
        let list: Vec<String> = names.iter().map(|n| format!("Docs::Action::\"{n}\"")).collect();
        format!("[{}]", list.join(", "))
    };
    let all = actions(&ACTIONS);
    let (admin, editor, viewer) = (role(admin), role(editor), role(viewer));
    let mut policies = vec![(
        "admins do everything".to_owned(),
        format!("permit (principal in {admin}, action in {all}, resource);"),
    )];
    for f in 1..=FOLDERS {
        policies.push((
            format!("editors work in folder f{f}"),
            format!(
                "permit (principal in {editor}, action in {}, resource in Docs::Folder::\"f{f}\");",
                actions(&["get", "list", "update", "create"])
            ),
        ));
    }
    for f in 1..=FOLDERS {
        policies.push((
            format!("viewers read folder f{f}"),
            format!(
                "permit (principal in {viewer}, action in {}, resource in Docs::Folder::\"f{f}\");",
                actions(&["get", "list"])
            ),
        ));
    }
    let rest = [
        (
            "owners update and delete their documents",
            format!(
                "permit (principal, action in {}, resource) when {{ resource.owner == principal }};",
                actions(&["update", "delete"])
            ),
        ),
        (
            "public documents are readable",
            r#"permit (principal, action == Docs::Action::"get", resource) when { resource.public };"#
                .to_owned(),
        ),
        (
            "no creating while locked",
            r#"forbid (principal, action == Docs::Action::"create", resource) when { context.locked };"#
                .to_owned(),
        ),
        (
            "deleting needs MFA",
            r#"forbid (principal, action == Docs::Action::"delete", resource) unless { context.mfa };"#
                .to_owned(),
        ),
        (
            "locked documents are read-only",
            format!(
                "forbid (principal, action in {}, resource) when {{ resource.locked }} unless {{ principal in {admin} }};",
                actions(&["update", "delete"])
            ),
        ),
        (
            "the archive folder is read-only",
            format!(
                "forbid (principal, action in {}, resource in Docs::Folder::\"f{FOLDERS}\") unless {{ principal in {admin} }};",
                actions(&["update", "create", "delete"])
            ),
        ),
        (
            "inactive accounts get nothing",
            format!(
                "forbid (principal, action in {all}, resource) when {{ principal.status != \"active\" }};"
            ),
        ),
    ];
    policies.extend(rest.into_iter().map(|(name, source)| (name.to_owned(), source)));
    policies
}

/// Creates the schema fragment, roles, users, assignments and policies, unless the roles exist;
/// returns the user ids.
async fn seed(admin: &Client) -> Result<Vec<String>> {
    let data = admin.execute(ROLES, &json!({})).await?;
    let existing: Vec<(String, String)> = data
        .pointer("/roles/nodes")
        .and_then(Value::as_array)
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| Some((n["key"].as_str()?.to_owned(), n["id"].as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let found = ROLE_KEYS
        .iter()
        .filter(|key| existing.iter().any(|(k, _)| k == *key))
        .count();
    if found == ROLE_KEYS.len() {
        println!("roles exist: reusing the seeded workload");
        return existing_users(admin).await;
    }
    if found > 0 {
        return Err("the database holds part of the workload; start from an empty database".into());
    }

    let started = Instant::now();
    admin
        .execute(PUT_SCHEMA, &json!({ "source": DOCS_SCHEMA }))
        .await?;
    let mut roles = Vec::new();
    for key in ROLE_KEYS {
        let data = admin.execute(CREATE_ROLE, &json!({ "key": key })).await?;
        roles.push(text(&data, "/createRole/role/id")?);
    }
    let mut users = Vec::with_capacity(USERS);
    for u in 0..USERS {
        let email = format!("u{u:04}@rbac-small.test");
        let data = admin.execute(CREATE_USER, &json!({ "email": email })).await?;
        users.push(text(&data, "/createUser/user/id")?);
    }
    // Assignments before policies: each one rebuilds the engine, cheaper while it holds few.
    for (u, user) in users.iter().enumerate() {
        let role = &roles[u % roles.len()];
        admin
            .execute(ASSIGN, &json!({ "user": user, "role": role }))
            .await?;
    }
    let policies = policies(&roles[0], &roles[1], &roles[2]);
    for (name, source) in &policies {
        admin
            .execute(CREATE_POLICY, &json!({ "name": name, "source": source }))
            .await
            .map_err(|e| format!("policy \"{name}\": {e}"))?;
    }
    println!(
        "seeded 1 schema fragment, {} roles, {} users, {} policies in {:.1} s",
        roles.len(),
        users.len(),
        policies.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(users)
}

async fn existing_users(admin: &Client) -> Result<Vec<String>> {
    let mut users = Vec::with_capacity(USERS);
    let mut after = Value::Null;
    loop {
        let data = admin.execute(USERS_PAGE, &json!({ "after": after })).await?;
        if let Some(nodes) = data.pointer("/users/nodes").and_then(Value::as_array) {
            users.extend(nodes.iter().filter_map(|n| n["id"].as_str().map(str::to_owned)));
        }
        if data.pointer("/users/pageInfo/hasNextPage") != Some(&Value::Bool(true)) {
            break;
        }
        after = data
            .pointer("/users/pageInfo/endCursor")
            .cloned()
            .unwrap_or(Value::Null);
    }
    if users.len() != USERS {
        return Err(format!("expected {USERS} seeded users, found {}", users.len()).into());
    }
    Ok(users)
}

/// What every request is made from, shared by the connections.
struct Workload {
    users: Vec<String>,
    /// The 6 folders, then the 60 documents (10 per folder).
    entities: Vec<Value>,
    /// Send each question with only its document and that document's folder.
    needed_only: bool,
    batch_query: String,
}

impl Workload {
    fn new(users: Vec<String>, needed_only: bool) -> Self {
        let mut entities: Vec<Value> = (1..=FOLDERS)
            .map(|f| json!({ "uid": { "type": "Docs::Folder", "id": format!("f{f}") }, "attrs": {}, "parents": [] }))
            .collect();
        for d in 0..DOCUMENTS {
            entities.push(json!({
                "uid": { "type": "Docs::Document", "id": format!("d{d:02}") },
                "attrs": {
                    "owner": { "__entity": { "type": "Portcullis::User", "id": users[(d * 17) % users.len()] } },
                    "locked": d % 7 == 0,
                    "public": d % 5 == 0,
                },
                "parents": [{ "type": "Docs::Folder", "id": format!("f{}", Self::folder_of(d) + 1) }]
            }));
        }
        Self {
            users,
            entities,
            needed_only,
            batch_query: batch_query(needed_only),
        }
    }

    fn folder_of(document: usize) -> usize {
        document / (DOCUMENTS / FOLDERS)
    }

    /// The entities a question about `document` carries.
    fn entities_for(&self, document: usize) -> Value {
        if self.needed_only {
            let folder = &self.entities[Self::folder_of(document)];
            json!([folder, self.entities[FOLDERS + document]])
        } else {
            Value::Array(self.entities.clone())
        }
    }

    /// A random question (principal, action, document, context) and its document.
    fn question(&self, rng: &mut XorShift) -> (Value, usize) {
        let document = rng.below(DOCUMENTS);
        let question = json!({
            "principal": { "type": "Portcullis::User", "id": self.users[rng.below(self.users.len())] },
            "action": { "type": "Docs::Action", "id": ACTIONS[rng.below(ACTIONS.len())] },
            "resource": { "type": "Docs::Document", "id": format!("d{document:02}") },
            "context": { "mfa": rng.chance(50), "locked": rng.chance(10) },
        });
        (question, document)
    }

    fn single_variables(&self, rng: &mut XorShift) -> Value {
        let (mut input, document) = self.question(rng);
        input["entities"] = self.entities_for(document);
        json!({ "input": input })
    }

    /// Variables of [`batch_query`]: 100 random questions.
    fn batch_variables(&self, rng: &mut XorShift) -> Value {
        let mut variables = serde_json::Map::new();
        if !self.needed_only {
            variables.insert("entities".to_owned(), Value::Array(self.entities.clone()));
        }
        for i in 0..BATCH {
            let (q, document) = self.question(rng);
            variables.insert(format!("p{i}"), q["principal"]["id"].clone());
            variables.insert(format!("a{i}"), q["action"]["id"].clone());
            variables.insert(format!("r{i}"), q["resource"]["id"].clone());
            variables.insert(format!("c{i}"), q["context"].clone());
            if self.needed_only {
                variables.insert(format!("e{i}"), self.entities_for(document));
            }
        }
        Value::Object(variables)
    }
}

/// `authorizeBatch` of 100 questions `$p0, $a0, $r0, $c0 …`, with the entities as one shared
/// `$entities` (all of them) or one `$e0 …` per question (only those needed).
fn batch_query(needed_only: bool) -> String {
    let mut params = Vec::with_capacity(BATCH + 1);
    if !needed_only {
        params.push("$entities: JSON!".to_owned());
    }
    let mut inputs = Vec::with_capacity(BATCH);
    for i in 0..BATCH {
        let entities = if needed_only {
            params.push(format!("$e{i}: JSON!"));
            format!("$e{i}")
        } else {
            "$entities".to_owned()
        };
        params.push(format!(
            "$p{i}: String!, $a{i}: String!, $r{i}: String!, $c{i}: JSON!"
        ));
        inputs.push(format!(
            "{{principal: {{type: \"Portcullis::User\", id: $p{i}}}, action: {{type: \"Docs::Action\", id: $a{i}}}, \
             resource: {{type: \"Docs::Document\", id: $r{i}}}, context: $c{i}, entities: {entities}}}"
        ));
    }
    format!(
        "query({}) {{ authorizeBatch(inputs: [{}]) {{ allowed errors }} }}",
        params.join(", "),
        inputs.join(", ")
    )
}

/// Which request a phase sends.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Single,
    Batch,
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    decisions: u64,
    allowed: u64,
    evaluation_errors: u64,
    failures: u64,
    first_failure: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.decisions += other.decisions;
        self.allowed += other.allowed;
        self.evaluation_errors += other.evaluation_errors;
        self.failures += other.failures;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }

    fn record(&mut self, answers: &[Value]) {
        for answer in answers {
            self.decisions += 1;
            self.allowed += u64::from(answer["allowed"] == Value::Bool(true));
            self.evaluation_errors += answer["errors"].as_array().map_or(0, |e| e.len() as u64);
        }
    }
}

/// One connection: requests back to back until `deadline`.
async fn connection(client: Client, mode: Mode, seed: u64, work: Arc<Workload>, deadline: Instant) -> Tally {
    let mut rng = XorShift(seed);
    let mut tally = Tally::default();
    while Instant::now() < deadline {
        let (query, variables) = match mode {
            Mode::Single => (AUTHORIZE, work.single_variables(&mut rng)),
            Mode::Batch => (work.batch_query.as_str(), work.batch_variables(&mut rng)),
        };
        let started = Instant::now();
        let outcome = client.execute(query, &variables).await;
        let elapsed = started.elapsed();
        match outcome {
            Ok(data) => {
                tally
                    .latencies_us
                    .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
                match mode {
                    Mode::Single => tally.record(std::slice::from_ref(&data["authorize"])),
                    Mode::Batch => tally.record(data["authorizeBatch"].as_array().map_or(&[], Vec::as_slice)),
                }
            }
            Err(error) => {
                tally.failures += 1;
                if tally.first_failure.is_none() {
                    tally.first_failure = Some(error.to_string());
                }
            }
        }
    }
    tally
}

fn gateway_rss(pid: Option<&str>) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .map(|line| line.trim_start_matches(name).trim().to_owned())
    };
    Some(format!("RSS {}, peak {}", field("VmRSS:")?, field("VmHWM:")?))
}

/// How a phase is run.
struct Settings {
    endpoint: String,
    token: String,
    connections: usize,
    seconds: u64,
    gateway_pid: Option<String>,
}

async fn phase(name: &str, mode: Mode, settings: &Settings, work: &Arc<Workload>) -> Result<()> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(settings.seconds);
    let mut tasks = Vec::with_capacity(settings.connections);
    for c in 0..settings.connections {
        let client = Client::new(&settings.endpoint, Some(settings.token.clone()))?;
        let seed = 0x9E37_79B9_7F4A_7C15 ^ ((c as u64 + 1) << 32);
        tasks.push(tokio::spawn(connection(
            client,
            mode,
            seed,
            work.clone(),
            deadline,
        )));
    }
    let mut rss = None;
    if settings.gateway_pid.is_some() {
        tokio::time::sleep(Duration::from_secs(settings.seconds) / 2).await;
        rss = gateway_rss(settings.gateway_pid.as_deref());
    }
    let mut tally = Tally::default();
    for task in tasks {
        tally.merge(task.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = tally.latencies_us;
    latencies.sort_unstable();
    let at = |p: f64| {
        latencies
            .get(((latencies.len().saturating_sub(1)) as f64 * p).round() as usize)
            .map_or(0.0, |us| f64::from(*us) / 1000.0)
    };
    let requests = latencies.len();
    println!("\n{name}: {} connections, {elapsed:.1} s", settings.connections);
    println!(
        "  requests/s  {:>10.0}   ({requests} ok, {} failed)",
        requests as f64 / elapsed,
        tally.failures
    );
    println!(
        "  decisions/s {:>10.0}   ({:.1} % allowed, {} evaluation errors)",
        tally.decisions as f64 / elapsed,
        100.0 * tally.allowed as f64 / tally.decisions.max(1) as f64,
        tally.evaluation_errors
    );
    println!(
        "  latency ms  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0)
    );
    if let Some(rss) = rss {
        println!("  gateway     {rss} (mid-phase)");
    }
    if let Some(failure) = tally.first_failure {
        println!("  first failure: {failure}");
    }
    Ok(())
}

fn env_number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .map_err(|_| format!("{name} must be a whole number").into()),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let base = std::env::var("PORTCULLIS_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let endpoint = format!("{}/graphql", base.trim_end_matches('/'));
    let email = std::env::var("PORTCULLIS_ADMIN_EMAIL").map_err(|_| "set PORTCULLIS_ADMIN_EMAIL")?;
    let password = std::env::var("PORTCULLIS_ADMIN_PASSWORD").map_err(|_| "set PORTCULLIS_ADMIN_PASSWORD")?;
    let needed_only = match std::env::var("PORTCULLIS_LOAD_ENTITIES").as_deref() {
        Err(_) | Ok("all") => false,
        Ok("needed") => true,
        Ok(other) => {
            return Err(format!("PORTCULLIS_LOAD_ENTITIES must be all or needed, not {other}").into());
        }
    };

    let anonymous = Client::new(&endpoint, None)?;
    let data = anonymous
        .execute(LOGIN, &json!({ "email": email, "password": password }))
        .await?;
    let token = text(&data, "/login/accessToken")?;
    let admin = Client::new(&endpoint, Some(token.clone()))?;
    let users = seed(&admin).await?;
    let work = Arc::new(Workload::new(users, needed_only));
    let settings = Settings {
        endpoint,
        token,
        connections: env_number("PORTCULLIS_LOAD_CONNECTIONS", 32)?.clamp(1, 1024) as usize,
        seconds: env_number("PORTCULLIS_LOAD_SECONDS", 10)?.clamp(1, 60),
        gateway_pid: std::env::var("PORTCULLIS_GATEWAY_PID").ok(),
    };

    // Warm-up: every user once, so the gateway's role cache is as in steady state.
    let mut rng = XorShift(7);
    for chunk in work.users.chunks(BATCH) {
        let mut variables = work.batch_variables(&mut rng);
        for (i, user) in chunk.iter().enumerate() {
            variables[format!("p{i}")] = json!(user);
        }
        admin.execute(&work.batch_query, &variables).await?;
    }
    let pid = settings.gateway_pid.as_deref();
    if let Some(rss) = gateway_rss(pid) {
        println!("gateway before load: {rss}");
    }
    let what = if needed_only {
        "its document and folder"
    } else {
        "all 66 entities"
    };
    println!("each question carries {what}");

    phase("authorize", Mode::Single, &settings, &work).await?;
    phase("authorizeBatch (100 per request)", Mode::Batch, &settings, &work).await?;
    if let Some(rss) = gateway_rss(pid) {
        println!("\ngateway after load: {rss}");
    }
    Ok(())
}
