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
//! | `PORTCULLIS_LOAD_ENTITIES`    | `all`                   | `all`, `all-value` or `needed`       |
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
//! action and document, with all 60 documents and their 6 folders as entities (13.8 KB of JSON),
//! sent as `entitiesJson` text. Phase 1 sends one `authorize` per request; phase 2 sends
//! `authorizeBatch` with 100 questions per request and the entities once, as the batch's shared
//! `entitiesJson`. `PORTCULLIS_LOAD_ENTITIES=all-value` sends the same entities as the `entities`
//! JSON value instead (what GraphQL's value handling costs); `needed` sends each question with only
//! its document and that document's folder. The load stays on the given URL; use a gateway on
//! this machine.

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
const AUTHORIZE_BATCH: &str = "query($inputs: [AuthorizeInput!]!, $entities: JSON, $entitiesJson: String) {
  authorizeBatch(inputs: $inputs, entities: $entities, entitiesJson: $entitiesJson) { allowed errors } }";

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
        self.execute_body(json!({ "query": query, "variables": variables }).to_string())
            .await
    }

    /// Sends a ready JSON request body.
    async fn execute_body(&self, body: String) -> Result<Value> {
        let mut request = self
            .http
            .post(&self.endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
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

/// How the questions carry their entities.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    /// All 66 as `entitiesJson` text (the target workload).
    Text,
    /// All 66 as the `entities` JSON value.
    Value,
    /// Only the document and its folder, as the `entities` JSON value.
    Needed,
}

impl Form {
    fn from_env() -> Result<Self> {
        match std::env::var("PORTCULLIS_LOAD_ENTITIES").as_deref() {
            Err(_) | Ok("all") => Ok(Self::Text),
            Ok("all-value") => Ok(Self::Value),
            Ok("needed") => Ok(Self::Needed),
            Ok(other) => {
                Err(format!("PORTCULLIS_LOAD_ENTITIES must be all, all-value or needed, not {other}").into())
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Text => "all 66 entities, as `entitiesJson` text",
            Self::Value => "all 66 entities, as the `entities` JSON value",
            Self::Needed => "its document and folder, as the `entities` JSON value",
        }
    }
}

/// What every request is made from, shared by the connections. Request bodies are assembled from
/// pre-serialized pieces so the load generator spends little of the machine it shares.
struct Workload {
    users: Vec<String>,
    /// The 6 folders, then the 60 documents (10 per folder).
    entities: Vec<Value>,
    form: Form,
    /// `entities` as JSON text.
    entities_value: String,
    /// That text as a JSON string literal.
    entities_text: String,
}

impl Workload {
    fn new(users: Vec<String>, form: Form) -> Self {
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
        let entities_value = Value::Array(entities.clone()).to_string();
        let entities_text = Value::String(entities_value.clone()).to_string();
        Self {
            users,
            entities,
            form,
            entities_value,
            entities_text,
        }
    }

    fn folder_of(document: usize) -> usize {
        document / (DOCUMENTS / FOLDERS)
    }

    /// The document and its folder.
    fn needed(&self, document: usize) -> Value {
        json!([
            self.entities[Self::folder_of(document)],
            self.entities[FOLDERS + document]
        ])
    }

    /// A random question (principal, action, document, context), with its own entities in the
    /// `needed` form.
    fn question(&self, rng: &mut XorShift, principal: Option<&str>) -> Value {
        let document = rng.below(DOCUMENTS);
        let user = rng.below(self.users.len());
        let mut question = json!({
            "principal": { "type": "Portcullis::User", "id": principal.unwrap_or(&self.users[user]) },
            "action": { "type": "Docs::Action", "id": ACTIONS[rng.below(ACTIONS.len())] },
            "resource": { "type": "Docs::Document", "id": format!("d{document:02}") },
            "context": { "mfa": rng.chance(50), "locked": rng.chance(10) },
        });
        if self.form == Form::Needed {
            question["entities"] = self.needed(document);
        }
        question
    }

    /// `,"entities":…` or `,"entitiesJson":…` with all 66 entities; nothing in the `needed` form.
    fn all_entities(&self) -> String {
        match self.form {
            Form::Text => format!(r#","entitiesJson":{}"#, self.entities_text),
            Form::Value => format!(r#","entities":{}"#, self.entities_value),
            Form::Needed => String::new(),
        }
    }

    /// One `authorize` request body.
    fn single_body(&self, rng: &mut XorShift) -> String {
        let question = self.question(rng, None).to_string();
        let input = format!("{}{}}}", &question[..question.len() - 1], self.all_entities());
        format!(
            r#"{{"query":{},"variables":{{"input":{input}}}}}"#,
            json!(AUTHORIZE)
        )
    }

    /// One `authorizeBatch` request body: 100 questions (asked for `principals` if given), the
    /// entities once for all of them.
    fn batch_body(&self, rng: &mut XorShift, principals: Option<&[String]>) -> String {
        let inputs: Vec<Value> = (0..BATCH)
            .map(|i| self.question(rng, principals.and_then(|p| p.get(i)).map(String::as_str)))
            .collect();
        format!(
            r#"{{"query":{},"variables":{{"inputs":{}{}}}}}"#,
            json!(AUTHORIZE_BATCH),
            Value::Array(inputs),
            self.all_entities()
        )
    }
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
        let body = match mode {
            Mode::Single => work.single_body(&mut rng),
            Mode::Batch => work.batch_body(&mut rng, None),
        };
        let started = Instant::now();
        let outcome = client.execute_body(body).await;
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
    let form = Form::from_env()?;

    let anonymous = Client::new(&endpoint, None)?;
    let data = anonymous
        .execute(LOGIN, &json!({ "email": email, "password": password }))
        .await?;
    let token = text(&data, "/login/accessToken")?;
    let admin = Client::new(&endpoint, Some(token.clone()))?;
    let users = seed(&admin).await?;
    let work = Arc::new(Workload::new(users, form));
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
        admin.execute_body(work.batch_body(&mut rng, Some(chunk))).await?;
    }
    let pid = settings.gateway_pid.as_deref();
    if let Some(rss) = gateway_rss(pid) {
        println!("gateway before load: {rss}");
    }
    println!("each question carries {}", form.describe());

    phase("authorize", Mode::Single, &settings, &work).await?;
    phase("authorizeBatch (100 per request)", Mode::Batch, &settings, &work).await?;
    if let Some(rss) = gateway_rss(pid) {
        println!("\ngateway after load: {rss}");
    }
    Ok(())
}
