//! A seeded random world for the differential test: an integrator schema with action groups,
//! entity hierarchies, policies and templates of every scope shape, and questions about them.

use serde_json::{Value, json};

/// A small, fast, seeded generator (xorshift64*): the same seed gives the same world.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Actions the schema declares with `appliesTo`, and the groups above them.
pub const ACTIONS: [&str; 6] = ["view", "list", "edit", "delete", "share", "export"];
pub const GROUPS: [&str; 4] = ["read", "write", "admin", "all"];
pub const SHOP_USERS: [&str; 4] = ["s0", "s1", "s2", "s3"];
pub const SHOP_GROUPS: [&str; 3] = ["g0", "g1", "g2"];
pub const FOLDERS: [&str; 3] = ["f0", "f1", "f2"];
pub const DOCUMENTS: [&str; 6] = ["d0", "d1", "d2", "d3", "d4", "d5"];

/// The `Shop` schema fragment; `edges` gives each action's groups and each group's parents, so two
/// variants declare the same actions with different hierarchies.
pub fn schema(edges: &[(usize, Vec<usize>)]) -> String {
    let mut source = String::from(
        "namespace Shop {\n  entity Group in [Group];\n  \
         entity User in [Group] { dept: String, level: Long, tags: Set<String> };\n  \
         entity Folder in [Folder];\n  \
         entity Document in [Folder] { owner: Portcullis::User, public: Bool, level: Long, label?: String };\n  \
         type Ctx = { mfa: Bool, level: Long };\n",
    );
    let names: Vec<&str> = ACTIONS.iter().chain(GROUPS.iter()).copied().collect();
    for (action, parents) in edges {
        let name = names[*action];
        let parents: Vec<String> = parents.iter().map(|p| format!("\"{}\"", names[*p])).collect();
        let within = if parents.is_empty() {
            String::new()
        } else {
            format!(" in [{}]", parents.join(", "))
        };
        let applies = if *action < ACTIONS.len() {
            " appliesTo { principal: [Portcullis::User, User], resource: [Document, Folder], context: Ctx }"
        } else {
            ""
        };
        source.push_str(&format!("  action \"{name}\"{within}{applies};\n"));
    }
    source.push_str("}\n");
    source
}

/// A random action hierarchy: concrete actions under groups, groups under later groups (no cycles).
pub fn hierarchy(rng: &mut Rng) -> Vec<(usize, Vec<usize>)> {
    let mut edges = Vec::new();
    for action in 0..ACTIONS.len() {
        let parents = (0..GROUPS.len())
            .filter(|_| rng.chance(35))
            .map(|g| ACTIONS.len() + g)
            .collect();
        edges.push((action, parents));
    }
    for group in 0..GROUPS.len() {
        let parents = (group + 1..GROUPS.len())
            .filter(|_| rng.chance(40))
            .map(|g| ACTIONS.len() + g)
            .collect();
        edges.push((ACTIONS.len() + group, parents));
    }
    edges
}

/// `Shop::Type::"id"`.
pub fn shop(type_name: &str, id: impl std::fmt::Display) -> String {
    format!("Shop::{type_name}::\"{id}\"")
}

fn reference(type_name: &str, id: &str) -> Value {
    json!({ "type": type_name, "id": id })
}

/// The integrator's entities: groups, users, folders and documents (owned by gateway users).
pub fn entities(rng: &mut Rng, gateway_users: &[String]) -> Vec<Value> {
    let mut all = Vec::new();
    for (i, group) in SHOP_GROUPS.iter().enumerate() {
        let parents: Vec<Value> = if i == 1 {
            vec![reference("Shop::Group", "g0")]
        } else {
            Vec::new()
        };
        all.push(json!({ "uid": reference("Shop::Group", group), "attrs": {}, "parents": parents }));
    }
    for user in SHOP_USERS {
        let parents: Vec<Value> = SHOP_GROUPS
            .iter()
            .filter(|_| rng.chance(40))
            .map(|g| reference("Shop::Group", g))
            .collect();
        let tags: Vec<&str> = ["a", "b"].into_iter().filter(|_| rng.chance(50)).collect();
        all.push(json!({ "uid": reference("Shop::User", user),
            "attrs": { "dept": *rng.pick(&["eng", "ops"]), "level": rng.below(6), "tags": tags },
            "parents": parents }));
    }
    all.push(json!({ "uid": reference("Shop::Folder", "f0"), "attrs": {}, "parents": [] }));
    all.push(json!({ "uid": reference("Shop::Folder", "f1"), "attrs": {}, "parents": [reference("Shop::Folder", "f0")] }));
    all.push(json!({ "uid": reference("Shop::Folder", "f2"), "attrs": {}, "parents": [] }));
    for document in DOCUMENTS {
        let mut attrs = json!({ "public": rng.chance(40), "level": rng.below(6) });
        // Sometimes the owner is missing: policies reading it then fail to evaluate.
        if rng.chance(85) {
            let owner = rng.pick(gateway_users);
            attrs["owner"] = json!({ "__entity": reference("Portcullis::User", owner) });
        }
        if rng.chance(40) {
            attrs["label"] = json!(*rng.pick(&["x", "y"]));
        }
        let folder = rng.pick(&FOLDERS);
        all.push(
            json!({ "uid": reference("Shop::Document", document), "attrs": attrs,
            "parents": [reference("Shop::Folder", folder)] }),
        );
    }
    all
}

/// What a generated policy may name: gateway roles and users by their ids.
pub struct Names<'a> {
    pub roles: &'a [String],
    pub users: &'a [String],
}

/// A static policy, or (with `template`) one with a `?principal` slot, of a random shape.
pub fn policy(rng: &mut Rng, names: &Names<'_>, template: bool) -> String {
    let effect = if rng.chance(65) { "permit" } else { "forbid" };
    let principal = if template {
        rng.pick(&[
            "principal == ?principal".to_owned(),
            "principal in ?principal".to_owned(),
            "principal is Portcullis::User in ?principal".to_owned(),
        ])
        .clone()
    } else {
        let role = rng.pick(names.roles);
        let user = rng.pick(names.users);
        match rng.below(9) {
            0 => "principal".to_owned(),
            1 => format!("principal == Portcullis::User::\"{user}\""),
            2 => format!("principal == {}", shop("User", rng.pick(&SHOP_USERS))),
            3 | 4 => format!("principal in Portcullis::Role::\"{role}\""),
            5 => format!("principal in {}", shop("Group", rng.pick(&SHOP_GROUPS))),
            6 => "principal is Shop::User".to_owned(),
            7 => format!("principal is Portcullis::User in Portcullis::Role::\"{role}\""),
            _ => format!(
                "principal is Shop::User in {}",
                shop("Group", rng.pick(&SHOP_GROUPS))
            ),
        }
    };
    let any_action = |rng: &mut Rng| {
        if rng.chance(60) {
            shop("Action", rng.pick(&ACTIONS))
        } else {
            shop("Action", rng.pick(&GROUPS))
        }
    };
    let action = match rng.below(5) {
        0 => "action".to_owned(),
        1 => format!("action == {}", shop("Action", rng.pick(&ACTIONS))),
        2 => format!("action in {}", shop("Action", rng.pick(&GROUPS))),
        _ => {
            let list: Vec<String> = (0..1 + rng.below(3)).map(|_| any_action(rng)).collect();
            format!("action in [{}]", list.join(", "))
        }
    };
    let resource = match rng.below(6) {
        0 | 1 => "resource".to_owned(),
        2 => format!("resource == {}", shop("Document", rng.pick(&DOCUMENTS))),
        3 => format!("resource in {}", shop("Folder", rng.pick(&FOLDERS))),
        4 => "resource is Shop::Document".to_owned(),
        _ => format!(
            "resource is Shop::Document in {}",
            shop("Folder", rng.pick(&FOLDERS))
        ),
    };
    let mut source = format!("{effect} ({principal}, {action}, {resource})");
    for _ in 0..rng.below(3) {
        let keyword = if rng.chance(70) { "when" } else { "unless" };
        source.push_str(&format!(" {keyword} {{ {} }}", condition(rng, names)));
    }
    source.push(';');
    source
}

fn condition(rng: &mut Rng, names: &Names<'_>) -> String {
    let n = rng.below(5);
    match rng.below(14) {
        0 => "context.mfa".to_owned(),
        1 => format!("context.level > {n}"),
        2 => "resource is Shop::Document && resource.public".to_owned(),
        3 => format!(
            "resource has label && resource.label == \"{}\"",
            rng.pick(&["x", "y"])
        ),
        4 => format!("principal is Shop::User && principal.level >= {n}"),
        5 => format!(
            "principal is Shop::User && principal.tags.contains(\"{}\")",
            rng.pick(&["a", "b"])
        ),
        6 => "principal is Portcullis::User && principal.email like \"*@diff.test\"".to_owned(),
        7 => "resource is Shop::Document && resource.owner == principal".to_owned(),
        8 => format!("principal in {}", shop("Group", rng.pick(&SHOP_GROUPS))),
        9 => format!("action in {}", shop("Action", rng.pick(&GROUPS))),
        10 => format!("resource in {}", shop("Folder", rng.pick(&FOLDERS))),
        // Overflows (an evaluation error) whenever the level is positive.
        11 => "context.level + 9223372036854775807 > 0".to_owned(),
        12 => format!("principal in Portcullis::Role::\"{}\"", rng.pick(names.roles)),
        _ => format!("resource is Shop::Document && resource.level < {n}"),
    }
}

/// A request context: mostly conforming, sometimes not a record, sometimes not what policies read.
pub fn context(rng: &mut Rng) -> Value {
    match rng.below(20) {
        0..=11 => json!({ "mfa": rng.chance(50), "level": rng.below(5) }),
        12 => json!({}),
        13 => json!({ "mfa": "yes", "level": 1 }),
        14 => json!({ "__extn": { "fn": "ip", "arg": "10.0.0.1" } }),
        15 => json!({ "__entity": { "type": "Shop::User", "id": "s0" } }),
        16 => json!({ "mfa": true, "level": 3, "from": { "__extn": { "fn": "ip", "arg": "10.1.2.3" } } }),
        17 => json!([1]),
        _ => Value::Null,
    }
}

/// A random part of `all`: each entity kept with the given chance.
pub fn subset(rng: &mut Rng, all: &[Value], percent: u64) -> Vec<Value> {
    all.iter().filter(|_| rng.chance(percent)).cloned().collect()
}

/// Gateway actions that generated policies about the gateway itself name.
pub const GATEWAY_ACTIONS: [&str; 8] = [
    "organization.read",
    "organization.update",
    "member.list",
    "member.add",
    "role.read",
    "user.read",
    "audit.read",
    "policy.read",
];

/// A policy over gateway actions, for principals in one of `roles` (never everyone: the test's
/// administrator must keep its powers).
pub fn gateway_policy(rng: &mut Rng, roles: &[String], organizations: &[String]) -> String {
    let effect = if rng.chance(60) { "permit" } else { "forbid" };
    let role = rng.pick(roles);
    let gateway_action = |rng: &mut Rng| format!("Portcullis::Action::\"{}\"", rng.pick(&GATEWAY_ACTIONS));
    let action = if rng.chance(30) {
        format!("action == {}", gateway_action(rng))
    } else {
        let list: Vec<String> = (0..1 + rng.below(3)).map(|_| gateway_action(rng)).collect();
        format!("action in [{}]", list.join(", "))
    };
    let resource = match rng.below(3) {
        0 => "resource".to_owned(),
        1 => "resource is Portcullis::Organization".to_owned(),
        _ => format!(
            "resource == Portcullis::Organization::\"{}\"",
            rng.pick(organizations)
        ),
    };
    let condition = match rng.below(5) {
        0 => " when { context.mfa }",
        1 => " unless { context.authMethod == \"password\" }",
        2 => " when { principal.email like \"*@diff.test\" }",
        _ => "",
    };
    format!("{effect} (principal in Portcullis::Role::\"{role}\", {action}, {resource}){condition};")
}
