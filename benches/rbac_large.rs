//! The "rbac-large" policy-engine workload, in process: 1,000 policies over 50 roles, 10,000 users,
//! 100 organizations; one `authorize` decision per iteration for a random principal, action and
//! resource (fixed seed).
//!
//! ```sh
//! cargo bench --bench rbac_large                      # SQLite, a fresh file under /tmp
//! dropdb -h 127.0.0.1 -U postgres --if-exists pc_bench_large
//! createdb -h 127.0.0.1 -U postgres pc_bench_large
//! PORTCULLIS_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/pc_bench_large \
//!     cargo bench --bench rbac_large                  # PostgreSQL (needs an empty database)
//! ```
//!
//! The world is built through the crate's public API only (`App::start`, then the domain
//! functions in `portcullis::authz` and `portcullis::identity`, acting as the bootstrap
//! administrator), so the benchmark measures whatever the engine does, index or not. Building it
//! takes about a minute: every role assignment and policy bumps the authorization version and
//! rebuilds the engine, so assignments go in before the policies.
//!
//! Before criterion runs, the benchmark times 20,000 single decisions one by one and prints their
//! percentiles; criterion then reports the mean time per decision of `authorize` and of
//! `authorize_batch` (100 per call).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use portcullis::app::App;
use portcullis::authz::authorize::{AuthorizeRequest, EntitiesJson, EntityRef, authorize, authorize_batch};
use portcullis::authz::{assignments, policies, roles, schemas};
use portcullis::clock::SystemClock;
use portcullis::config::Config;
use portcullis::db::{Id, Page};
use portcullis::identity::authenticate::authenticate;
use portcullis::identity::{Actor, ClientInfo, organizations, sessions, users};
use serde_json::json;

const USERS: usize = 10_000;
const ROLES: usize = 50;
const ORGANIZATIONS: usize = 100;
const POLICIES_PER_ROLE: usize = 20; // 50 × 20 = 1,000 policies
const PROJECTS_PER_TENANT: usize = 5;
/// Distinct pre-generated requests the benchmark cycles through.
const REQUEST_POOL: usize = 16_384;
/// Decisions timed one by one for the percentile printout.
const TIMED_ONE_BY_ONE: usize = 20_000;

const ADMIN_EMAIL: &str = "bench-admin@rbac-large.test";
const ADMIN_PASSWORD: &str = "bench-admin-password";

const KINDS: [&str; 4] = ["Record", "Report", "Invoice", "Ticket"];
const VERBS: [&str; 9] = [
    "read", "list", "create", "update", "delete", "share", "export", "approve", "archive",
];

/// The integrator's namespace: tenants (mirroring organizations), projects, and four kinds of
/// items, 36 actions.
fn schema_source() -> String {
    let mut source = String::from(
        "namespace Acme {\n  entity Tenant;\n  entity Project in [Tenant] { archived: Bool };\n  \
         type Ctx = { mfa: Bool, locked: Bool, hour: Long };\n",
    );
    for kind in KINDS {
        source.push_str(&format!(
            "  entity {kind} in [Project] {{ owner: Portcullis::User, sensitivity: Long, archived: Bool }};\n"
        ));
        let actions: Vec<String> = VERBS
            .iter()
            .map(|verb| format!("\"{}\"", action_id(kind, verb)))
            .collect();
        source.push_str(&format!(
            "  action {} appliesTo {{ principal: Portcullis::User, resource: {kind}, context: Ctx }};\n",
            actions.join(", ")
        ));
    }
    source.push_str("}\n");
    source
}

fn action_id(kind: &str, verb: &str) -> String {
    format!("{}.{verb}", kind.to_lowercase())
}

/// Every action as `(kind index, action id)`.
fn all_actions() -> Vec<(usize, String)> {
    KINDS
        .iter()
        .enumerate()
        .flat_map(|(k, kind)| VERBS.iter().map(move |verb| (k, action_id(kind, verb))))
        .collect()
}

/// xorshift64*: small, fast and deterministic; good enough to pick benchmark inputs.
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

/// What the benchmark needs to know about the seeded world.
struct World {
    app: App,
    admin: Actor,
    users: Vec<Id>,
    organizations: Vec<Id>,
}

impl World {
    fn home_org(&self, user: usize) -> usize {
        user % ORGANIZATIONS
    }
}

async fn build_world(url: &str) -> World {
    let mut config = Config::for_database(url);
    config.admin_email = Some(ADMIN_EMAIL.to_owned());
    config.admin_password = Some(ADMIN_PASSWORD.to_owned());
    let app = App::start(config, Arc::new(SystemClock))
        .await
        .expect("start the app");
    let client = ClientInfo::default();
    let grant = sessions::login(&app, ADMIN_EMAIL, ADMIN_PASSWORD.to_owned(), &client)
        .await
        .expect("log in as the bootstrap administrator");
    let principal = authenticate(&app, Some(&grant.access_token), &client)
        .await
        .expect("authenticate the administrator");
    let admin = principal.actor().expect("an authenticated administrator").clone();

    let existing = users::list(&app, &admin, &Default::default(), &page_of_one())
        .await
        .expect("count users")
        .total_count;
    assert!(
        existing <= 1,
        "the benchmark needs an empty database ({existing} users found): drop and recreate it"
    );

    let started = Instant::now();
    let step = |what: &str, since: Instant| eprintln!("  {what}: {:.1} s", since.elapsed().as_secs_f64());

    let t = Instant::now();
    schemas::put(&app, &admin, "Acme", &schema_source())
        .await
        .expect("register the Acme schema fragment");
    let mut organizations_made = Vec::with_capacity(ORGANIZATIONS);
    for o in 0..ORGANIZATIONS {
        let row = organizations::create(&app, &admin, &format!("org-{o:03}"), &format!("Org {o}"))
            .await
            .expect("create an organization");
        organizations_made.push(row.id);
    }
    let mut roles_made = Vec::with_capacity(ROLES);
    for r in 0..ROLES {
        let role = roles::create(
            &app,
            &admin,
            roles::NewRole {
                key: format!("acme-role-{r:02}"),
                name: format!("Acme role {r}"),
                description: None,
                organization_id: None,
                permissions: Vec::new(),
            },
        )
        .await
        .expect("create a role");
        roles_made.push(role.id);
    }
    step("schema, organizations, roles", t);

    let t = Instant::now();
    let mut users_made = Vec::with_capacity(USERS);
    for u in 0..USERS {
        let user = users::create(
            &app,
            &admin,
            users::NewUser {
                email: format!("u{u:05}@rbac-large.test"),
                display_name: format!("User {u}"),
                password: None,
            },
        )
        .await
        .expect("create a user");
        users_made.push(user.id);
    }
    step("10,000 users", t);

    // One role each: user u holds role u % 50, in their home organization (one in five globally).
    let t = Instant::now();
    for (u, user) in users_made.iter().enumerate() {
        let organization = (u % 5 != 0).then(|| organizations_made[u % ORGANIZATIONS]);
        assignments::assign(&app, &admin, *user, roles_made[u % ROLES], organization)
            .await
            .expect("assign a role");
    }
    step("10,000 role assignments", t);

    let t = Instant::now();
    let mut rng = XorShift(0x5EED_0F7A_B1E5);
    let actions = all_actions();
    for (r, role) in roles_made.iter().enumerate() {
        for p in 0..POLICIES_PER_ROLE {
            let source = policy_source(&mut rng, &actions, *role, p);
            policies::create(
                &app,
                &admin,
                policies::NewPolicy {
                    name: format!("role {r} policy {p}"),
                    description: None,
                    source,
                    enabled: true,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("create policy {r}/{p}: {e:?}"));
        }
    }
    step("1,000 policies", t);
    eprintln!("world built in {:.1} s", started.elapsed().as_secs_f64());

    World {
        app,
        admin,
        users: users_made,
        organizations: organizations_made,
    }
}

fn page_of_one() -> Page {
    Page::after(None, 1)
}

/// `n` distinct actions of one kind, as a Cedar list.
fn action_list(rng: &mut XorShift, actions: &[(usize, String)], n: usize) -> String {
    let kind = rng.below(KINDS.len());
    let mut verbs: Vec<usize> = Vec::new();
    while verbs.len() < n {
        let v = rng.below(VERBS.len());
        if !verbs.contains(&v) {
            verbs.push(v);
        }
    }
    let names: Vec<String> = verbs
        .iter()
        .map(|v| format!("Acme::Action::\"{}\"", actions[kind * VERBS.len() + v].1))
        .collect();
    format!("[{}]", names.join(", "))
}

/// Policy `p` of 20 for a role: mostly permits scoped to the role and a few actions, with
/// attribute conditions, tenant and project scopes, owner rules, and forbids on context.
fn policy_source(rng: &mut XorShift, actions: &[(usize, String)], role: Id, p: usize) -> String {
    let principal = format!("principal in Portcullis::Role::\"{role}\"");
    match p {
        0..=9 => format!(
            "permit ({principal}, action in {}, resource) when {{ resource.sensitivity <= {} }};",
            action_list(rng, actions, 3),
            1 + rng.below(5)
        ),
        10..=13 => format!(
            "permit ({principal}, action in {}, resource in Acme::Tenant::\"t{}\");",
            action_list(rng, actions, 2),
            rng.below(ORGANIZATIONS)
        ),
        14 | 15 => format!(
            "permit ({principal}, action in {}, resource) when {{ resource.owner == principal }};",
            action_list(rng, actions, 1)
        ),
        16 | 17 => format!(
            "forbid ({principal}, action in {}, resource) when {{ resource.archived }} unless {{ context.mfa }};",
            action_list(rng, actions, 2)
        ),
        18 => format!(
            "forbid ({principal}, action in {}, resource) when {{ context.locked }};",
            action_list(rng, actions, 2)
        ),
        _ => format!(
            "permit ({principal}, action in {}, resource in Acme::Project::\"t{}-p{}\") when {{ context.hour >= 8 && context.hour < 20 }};",
            action_list(rng, actions, 4),
            rng.below(ORGANIZATIONS),
            rng.below(PROJECTS_PER_TENANT)
        ),
    }
}

/// A random request: any user, any action, an item of that action's kind in a project of (mostly)
/// the principal's own tenant, with the item, its project and tenant as entities.
fn random_request(rng: &mut XorShift, world: &World, actions: &[(usize, String)]) -> AuthorizeRequest {
    let u = rng.below(world.users.len());
    let principal = world.users[u];
    let (kind, action) = &actions[rng.below(actions.len())];
    let kind = KINDS[*kind];
    let tenant = if rng.chance(80) {
        world.home_org(u)
    } else {
        rng.below(ORGANIZATIONS)
    };
    let organization = if rng.chance(90) {
        world.home_org(u)
    } else {
        rng.below(ORGANIZATIONS)
    };
    let project = format!("t{tenant}-p{}", rng.below(PROJECTS_PER_TENANT));
    let item = format!("{project}-{}{}", kind.to_lowercase(), rng.below(1000));
    let owner = if rng.chance(25) {
        principal
    } else {
        world.users[rng.below(world.users.len())]
    };
    let entities = json!([
        { "uid": { "type": "Acme::Tenant", "id": format!("t{tenant}") }, "attrs": {}, "parents": [] },
        {
            "uid": { "type": "Acme::Project", "id": project },
            "attrs": { "archived": false },
            "parents": [{ "type": "Acme::Tenant", "id": format!("t{tenant}") }]
        },
        {
            "uid": { "type": format!("Acme::{kind}"), "id": item },
            "attrs": {
                "owner": { "__entity": { "type": "Portcullis::User", "id": owner.to_string() } },
                "sensitivity": 1 + rng.below(5),
                "archived": rng.chance(10),
            },
            "parents": [{ "type": "Acme::Project", "id": project }]
        },
    ]);
    AuthorizeRequest {
        principal: Some(EntityRef {
            type_name: "Portcullis::User".to_owned(),
            id: principal.to_string(),
        }),
        action: EntityRef {
            type_name: "Acme::Action".to_owned(),
            id: action.clone(),
        },
        resource: EntityRef {
            type_name: format!("Acme::{kind}"),
            id: item,
        },
        organization_id: Some(world.organizations[organization]),
        context: Some(json!({
            "mfa": rng.chance(50),
            "locked": rng.chance(10),
            "hour": rng.below(24),
        })),
        entities: Some(EntitiesJson::Value(entities)),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn rbac_large(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let sqlite_file = format!("/tmp/portcullis-rbac-large-{}.db", std::process::id());
    let url =
        std::env::var("PORTCULLIS_BENCH_DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{sqlite_file}"));
    eprintln!("rbac-large: building the world on {url}");
    let world = runtime.block_on(build_world(&url));

    let mut rng = XorShift(0xD1CE_5EED_2026);
    let actions = all_actions();
    let pool: Vec<AuthorizeRequest> = (0..REQUEST_POOL)
        .map(|_| random_request(&mut rng, &world, &actions))
        .collect();
    let (app, admin) = (&world.app, &world.admin);

    // Warm the engine's role-holdings cache as a running gateway would be, and count outcomes.
    let (allowed, errors) = runtime.block_on(async {
        let (mut allowed, mut errors) = (0, 0);
        for request in &pool {
            let outcome = authorize(app, admin, request.clone()).await.expect("a decision");
            allowed += usize::from(outcome.allowed);
            errors += outcome.errors.len();
        }
        (allowed, errors)
    });
    eprintln!(
        "request pool: {REQUEST_POOL} requests, {allowed} allowed ({:.1} %), {errors} policy evaluation errors",
        100.0 * allowed as f64 / REQUEST_POOL as f64
    );
    assert_eq!(
        errors, 0,
        "the generated policies and entities should evaluate cleanly"
    );

    // One by one, for percentiles (criterion reports means of samples).
    let mut timings = runtime.block_on(async {
        let mut timings = Vec::with_capacity(TIMED_ONE_BY_ONE);
        for i in 0..TIMED_ONE_BY_ONE {
            let request = pool[i % pool.len()].clone();
            let start = Instant::now();
            black_box(authorize(app, admin, request).await.expect("a decision"));
            timings.push(start.elapsed());
        }
        timings
    });
    timings.sort();
    eprintln!(
        "authorize, {TIMED_ONE_BY_ONE} single decisions: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        percentile(&timings, 0.50),
        percentile(&timings, 0.90),
        percentile(&timings, 0.99),
        percentile(&timings, 1.0),
    );

    let mut group = c.benchmark_group("rbac_large");
    group.throughput(Throughput::Elements(1));
    let mut next = 0;
    group.bench_function("authorize", |b| {
        b.iter_batched(
            || {
                next = (next + 1) % pool.len();
                pool[next].clone()
            },
            |request| {
                runtime
                    .block_on(authorize(app, admin, request))
                    .expect("a decision")
            },
            BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Elements(100));
    let mut next = 0;
    group.bench_function("authorize_batch_100", |b| {
        b.iter_batched(
            || {
                next = (next + 100) % (pool.len() - 100);
                pool[next..next + 100].iter().cloned().map(Ok).collect()
            },
            |requests| {
                runtime
                    .block_on(authorize_batch(app, admin, requests, None))
                    .expect("decisions")
            },
            BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Elements(1));
    // The same questions with entity sets the gateway has never seen (a fresh attribute on each
    // item), so every decision reads its entities instead of finding them in the cache.
    let mut next = 0;
    let mut fresh = 0u64;
    group.bench_function("authorize_unseen_entities", |b| {
        b.iter_batched(
            || {
                next = (next + 1) % pool.len();
                fresh += 1;
                let mut request = pool[next].clone();
                if let Some(EntitiesJson::Value(entities)) = &mut request.entities {
                    entities[2]["attrs"]["fresh"] = json!(fresh);
                }
                request
            },
            |request| {
                runtime
                    .block_on(authorize(app, admin, request))
                    .expect("a decision")
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();

    drop(world);
    if !url.starts_with("postgres") {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{sqlite_file}{suffix}"));
        }
    }
}

criterion_group!(benches, rbac_large);
criterion_main!(benches);
