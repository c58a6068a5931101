//! The audit filter's halves agree: for every case of one table, the events the database selects
//! (on each backend) are exactly those `AuditFilter::matches` accepts out of the whole log, and the
//! seeded events among them are the ones the case names. Query strings read back to the filter
//! they were written from, and bad ones are refused naming the parameter.

use chrono::{TimeDelta, TimeZone, Utc};
use portcullis::audit::{
    self, ActionMatch, ActorType, AuditAction, AuditFilter, Event, FilterInput, Outcome, Target,
};
use portcullis::db::Page;
use portcullis::db::audit::Scope;
use portcullis::db::models::AuditEventRow;
use portcullis::db::{Id, Timestamp};
use portcullis::error::Error;
use portcullis::identity::ClientInfo;
use serde_json::Map;

use crate::support::TestApp;

/// The people, organizations and instants the seeded events refer to.
struct World {
    org_a: Id,
    org_b: Id,
    alice: Id,
    alice_key: Id,
    bob: Id,
    elodie: Id,
    role: Id,
    policy: Id,
    t0: Timestamp,
}

fn at(t0: Timestamp, seconds: i64, micros: i64) -> Timestamp {
    t0 + TimeDelta::seconds(seconds) + TimeDelta::microseconds(micros)
}

/// One seeded event: a label for the table, when it happened, and the event.
fn seeds(w: &World) -> Vec<(&'static str, Timestamp, Event)> {
    let event = |action, actor_type, actor: Option<(Id, Id, &str)>, org, outcome, targets| Event {
        action,
        actor_type,
        actor_id: actor.map(|(id, _, _)| id),
        actor_user_id: actor.map(|(_, user, _)| user),
        actor_name: actor.map(|(_, _, name)| name.to_owned()),
        organization_id: org,
        outcome,
        targets,
        client: ClientInfo::default(),
        metadata: Map::new(),
    };
    let alice = Some((w.alice, w.alice, "Alice"));
    let alice_key = Some((w.alice_key, w.alice, "Alice"));
    let bob = Some((w.bob, w.bob, "Bob"));
    let elodie = Some((w.elodie, w.elodie, "Élodie"));
    let policy = || Target::new("policy", w.policy, "Deny Éclair".to_owned());
    let (a, b) = (Some(w.org_a), Some(w.org_b));
    let mut system = event(
        AuditAction::SigningKeyRotated,
        ActorType::System,
        None,
        None,
        Outcome::Success,
        vec![],
    );
    system.actor_name = Some("portcullis".to_owned());
    vec![
        (
            "policy-created",
            at(w.t0, 0, 0),
            event(
                AuditAction::PolicyCreated,
                ActorType::User,
                alice,
                a,
                Outcome::Success,
                vec![policy()],
            ),
        ),
        (
            "policy-updated",
            at(w.t0, 1, 0),
            event(
                AuditAction::PolicyUpdated,
                ActorType::ApiKey,
                alice_key,
                a,
                Outcome::Failure,
                vec![policy()],
            ),
        ),
        (
            "role-assigned",
            at(w.t0, 2, 0),
            event(
                AuditAction::RoleAssigned,
                ActorType::User,
                bob,
                b,
                Outcome::Success,
                vec![
                    Target::new("role", w.role, "Auditor".to_owned()),
                    Target::new("user", w.alice, "Alice Ångström".to_owned()),
                ],
            ),
        ),
        ("key-rotated", at(w.t0, 3, 0), system),
        (
            "login-failed",
            at(w.t0, 3, 0),
            event(
                AuditAction::LoginFailed,
                ActorType::Anonymous,
                None,
                None,
                Outcome::Failure,
                vec![Target::new("user", "ghost", None)],
            ),
        ),
        (
            "denied",
            at(w.t0, 4, 500),
            event(
                AuditAction::AuthorizationDenied,
                ActorType::User,
                bob,
                a,
                Outcome::Denied,
                vec![Target::new("organization", w.org_a, "100% sure_thing".to_owned())],
            ),
        ),
        (
            "member-added",
            at(w.t0, 5, 0),
            event(
                AuditAction::MemberAdded,
                ActorType::User,
                alice,
                b,
                Outcome::Success,
                vec![Target::new("user", w.bob, "BOB".to_owned())],
            ),
        ),
        (
            "key-created",
            at(w.t0, 6, 0),
            event(
                AuditAction::ApiKeyCreated,
                ActorType::User,
                alice,
                None,
                Outcome::Success,
                vec![Target::new("api_key", w.alice_key, None)],
            ),
        ),
        (
            "user-updated",
            at(w.t0, 7, 0),
            event(
                AuditAction::UserUpdated,
                ActorType::User,
                elodie,
                a,
                Outcome::Success,
                vec![Target::new("user", w.elodie, "Élodie".to_owned())],
            ),
        ),
    ]
}

/// One row of the table: a name, the reader's scope, the filter, and the seeded events it selects.
struct Case {
    name: &'static str,
    scope: Scope,
    filter: AuditFilter,
    seeded: &'static [&'static str],
}

fn cases(w: &World) -> Vec<Case> {
    let f = AuditFilter::default;
    let exact = ActionMatch::Exact;
    let prefix = |p: &str| ActionMatch::Prefix(p.to_owned());
    let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let all_seeded: &'static [&'static str] = &[
        "policy-created",
        "policy-updated",
        "role-assigned",
        "key-rotated",
        "login-failed",
        "denied",
        "member-added",
        "key-created",
        "user-updated",
    ];
    let case = |name, scope, filter, seeded| Case {
        name,
        scope,
        filter,
        seeded,
    };
    let all = Scope::All;
    vec![
        case("nothing narrows", all, f(), all_seeded),
        case(
            "organization",
            all,
            AuditFilter {
                organization_id: Some(w.org_a),
                ..f()
            },
            &["policy-created", "policy-updated", "denied", "user-updated"],
        ),
        case(
            "organization outside the scope",
            Scope::Organization(w.org_b),
            AuditFilter {
                organization_id: Some(w.org_a),
                ..f()
            },
            &[],
        ),
        case(
            "one exact action",
            all,
            AuditFilter {
                actions: vec![exact(AuditAction::PolicyCreated)],
                ..f()
            },
            &["policy-created"],
        ),
        case(
            "two exact actions",
            all,
            AuditFilter {
                actions: vec![exact(AuditAction::PolicyCreated), exact(AuditAction::MemberAdded)],
                ..f()
            },
            &["policy-created", "member-added"],
        ),
        case(
            "a prefix",
            all,
            AuditFilter {
                actions: vec![prefix("policy.")],
                ..f()
            },
            &["policy-created", "policy-updated"],
        ),
        case(
            "the empty prefix (every action)",
            all,
            AuditFilter {
                actions: vec![prefix("")],
                ..f()
            },
            all_seeded,
        ),
        case(
            "an exact action or a prefix",
            all,
            AuditFilter {
                actions: vec![exact(AuditAction::RoleAssigned), prefix("session.")],
                ..f()
            },
            &["role-assigned", "login-failed"],
        ),
        case(
            "a prefix whose _ LIKE takes literally",
            all,
            AuditFilter {
                actions: vec![prefix("api_key.")],
                ..f()
            },
            &["key-created"],
        ),
        case(
            "an actor",
            all,
            AuditFilter {
                actor_ids: vec![w.alice],
                ..f()
            },
            &["policy-created", "member-added", "key-created"],
        ),
        case(
            "an actor through an API key",
            all,
            AuditFilter {
                actor_ids: vec![w.alice_key],
                ..f()
            },
            &["policy-updated"],
        ),
        case(
            "an unknown actor",
            all,
            AuditFilter {
                actor_ids: vec![Id::new_v7()],
                ..f()
            },
            &[],
        ),
        case(
            "actor types",
            all,
            AuditFilter {
                actor_types: vec![ActorType::ApiKey, ActorType::Anonymous],
                ..f()
            },
            &["policy-updated", "login-failed"],
        ),
        case(
            "the system",
            all,
            AuditFilter {
                actor_types: vec![ActorType::System],
                ..f()
            },
            &["key-rotated"],
        ),
        case(
            "an outcome",
            all,
            AuditFilter {
                outcomes: vec![Outcome::Denied],
                ..f()
            },
            &["denied"],
        ),
        case(
            "two outcomes",
            all,
            AuditFilter {
                outcomes: vec![Outcome::Failure, Outcome::Denied],
                ..f()
            },
            &["policy-updated", "login-failed", "denied"],
        ),
        case(
            "a target type",
            all,
            AuditFilter {
                target_types: owned(&["role"]),
                ..f()
            },
            &["role-assigned"],
        ),
        case(
            "a target id",
            all,
            AuditFilter {
                target_ids: vec![w.alice.to_string()],
                ..f()
            },
            &["role-assigned"],
        ),
        case(
            "a target id that is not an id",
            all,
            AuditFilter {
                target_ids: owned(&["ghost"]),
                ..f()
            },
            &["login-failed"],
        ),
        case(
            "target type and id on the same target",
            all,
            AuditFilter {
                target_types: owned(&["user"]),
                target_ids: vec![w.alice.to_string()],
                ..f()
            },
            &["role-assigned"],
        ),
        case(
            "target type and id on different targets",
            all,
            AuditFilter {
                target_types: owned(&["user"]),
                target_ids: vec![w.role.to_string()],
                ..f()
            },
            &[],
        ),
        case(
            "since is inclusive",
            all,
            AuditFilter {
                since: Some(at(w.t0, 4, 500)),
                ..f()
            },
            &["denied", "member-added", "key-created", "user-updated"],
        ),
        case(
            "since one microsecond later",
            all,
            AuditFilter {
                since: Some(at(w.t0, 4, 501)),
                ..f()
            },
            &["member-added", "key-created", "user-updated"],
        ),
        case(
            "since below a microsecond counts as stored",
            all,
            AuditFilter {
                since: Some(at(w.t0, 4, 500) + TimeDelta::nanoseconds(999)),
                ..f()
            },
            &["denied", "member-added", "key-created", "user-updated"],
        ),
        case(
            "until is exclusive",
            all,
            AuditFilter {
                since: Some(w.t0),
                until: Some(at(w.t0, 4, 500)),
                ..f()
            },
            &[
                "policy-created",
                "policy-updated",
                "role-assigned",
                "key-rotated",
                "login-failed",
            ],
        ),
        case(
            "until one microsecond later",
            all,
            AuditFilter {
                since: Some(w.t0),
                until: Some(at(w.t0, 4, 501)),
                ..f()
            },
            &[
                "policy-created",
                "policy-updated",
                "role-assigned",
                "key-rotated",
                "login-failed",
                "denied",
            ],
        ),
        case(
            "one microsecond wide, two events at that instant",
            all,
            AuditFilter {
                since: Some(at(w.t0, 3, 0)),
                until: Some(at(w.t0, 3, 1)),
                ..f()
            },
            &["key-rotated", "login-failed"],
        ),
        case(
            "search ignores ASCII case",
            all,
            AuditFilter {
                search: Some("aLiCe".to_owned()),
                ..f()
            },
            &[
                "policy-created",
                "policy-updated",
                "role-assigned",
                "member-added",
                "key-created",
            ],
        ),
        case(
            "search in a target's name",
            all,
            AuditFilter {
                search: Some("bob".to_owned()),
                ..f()
            },
            &["role-assigned", "denied", "member-added"],
        ),
        case(
            "search ignores case beyond ASCII",
            all,
            AuditFilter {
                search: Some("éLODIE".to_owned()),
                ..f()
            },
            &["user-updated"],
        ),
        case(
            "search ignores case beyond ASCII, in a target",
            all,
            AuditFilter {
                search: Some("ÅNGSTRÖM".to_owned()),
                ..f()
            },
            &["role-assigned"],
        ),
        case(
            "search takes % literally",
            all,
            AuditFilter {
                search: Some("0% s".to_owned()),
                ..f()
            },
            &["denied"],
        ),
        case(
            "search takes _ literally",
            all,
            AuditFilter {
                search: Some("e_t".to_owned()),
                ..f()
            },
            &["denied"],
        ),
        case(
            "search takes _ literally, not as any character",
            all,
            AuditFilter {
                search: Some("l_c".to_owned()),
                ..f()
            },
            &[],
        ),
        case(
            "search takes % literally, not as any text",
            all,
            AuditFilter {
                search: Some("e%c".to_owned()),
                ..f()
            },
            &[],
        ),
        case(
            "search for the system's name",
            all,
            AuditFilter {
                search: Some("PORTCULLIS".to_owned()),
                ..f()
            },
            &["key-rotated"],
        ),
        case(
            "organization, outcome and actor type together",
            all,
            AuditFilter {
                organization_id: Some(w.org_a),
                outcomes: vec![Outcome::Failure],
                actor_types: vec![ActorType::ApiKey],
                ..f()
            },
            &["policy-updated"],
        ),
        case(
            "prefix and time together",
            all,
            AuditFilter {
                actions: vec![prefix("policy.")],
                since: Some(at(w.t0, 1, 0)),
                ..f()
            },
            &["policy-updated"],
        ),
        case(
            "search and target type together",
            all,
            AuditFilter {
                search: Some("alice".to_owned()),
                target_types: owned(&["policy"]),
                ..f()
            },
            &["policy-created", "policy-updated"],
        ),
        case(
            "an organization's scope",
            Scope::Organization(w.org_b),
            f(),
            &["role-assigned", "member-added"],
        ),
        case(
            "another organization's scope",
            Scope::Organization(w.org_a),
            AuditFilter {
                outcomes: vec![Outcome::Success],
                ..f()
            },
            &["policy-created", "user-updated"],
        ),
        case(
            "a user's own events",
            Scope::ActorUser(w.alice),
            f(),
            &["policy-created", "policy-updated", "member-added", "key-created"],
        ),
        case(
            "a user's own events in one organization",
            Scope::ActorUser(w.alice),
            AuditFilter {
                organization_id: Some(w.org_b),
                ..f()
            },
            &["member-added"],
        ),
        case(
            "a scope and a filter that selects nothing in it",
            Scope::Organization(w.org_a),
            AuditFilter {
                actions: vec![exact(AuditAction::RoleAssigned)],
                ..f()
            },
            &[],
        ),
        case(
            "a user's own events, by someone who did nothing",
            Scope::ActorUser(Id::new_v7()),
            f(),
            &[],
        ),
    ]
}

async fn sql_and_memory_select_the_same_events(t: TestApp) {
    let t0 = Timestamp(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
    let w = World {
        org_a: Id::new_v7(),
        org_b: Id::new_v7(),
        alice: Id::new_v7(),
        alice_key: Id::new_v7(),
        bob: Id::new_v7(),
        elodie: Id::new_v7(),
        role: Id::new_v7(),
        policy: Id::new_v7(),
        t0,
    };
    let mut conn = t.app.db.conn().await.unwrap();
    let mut labels = std::collections::HashMap::new();
    for (label, now, event) in seeds(&w) {
        let ids = conn
            .transaction(async |tx| audit::record_all(tx, now, vec![event]).await)
            .await
            .unwrap();
        labels.insert(ids[0], label);
    }
    t.app.audit_sequencer.settle().await.unwrap();
    let everything = |scope, criteria| (scope, criteria, Page::after(None, 10_000));
    let (scope, criteria, page) = everything(Scope::All, AuditFilter::default().criteria());
    let log: Vec<AuditEventRow> = portcullis::db::audit::list(&mut conn, scope, &criteria, &page)
        .await
        .unwrap()
        .rows;
    assert!(
        labels.keys().all(|id| log.iter().any(|row| row.id == *id)),
        "every seeded event is in the log"
    );
    let ids = |rows: &[AuditEventRow]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    for case in cases(&w) {
        let (scope, criteria, page) = everything(case.scope, case.filter.criteria());
        let selected = portcullis::db::audit::list(&mut conn, scope, &criteria, &page)
            .await
            .unwrap()
            .rows;
        let accepted: Vec<AuditEventRow> = log
            .iter()
            .filter(|row| case.filter.matches(case.scope, row))
            .cloned()
            .collect();
        assert_eq!(
            ids(&selected),
            ids(&accepted),
            "{}: SQL and memory disagree",
            case.name
        );
        let counted = portcullis::db::audit::count(&mut conn, scope, &criteria)
            .await
            .unwrap();
        assert_eq!(counted, selected.len() as i64, "{}: count", case.name);
        let seeded: Vec<&str> = selected
            .iter()
            .filter_map(|r| labels.get(&r.id).copied())
            .collect();
        assert_eq!(seeded, case.seeded, "{}: the seeded events selected", case.name);
    }
}

crate::backend_tests!(sql_and_memory_select_the_same_events);

fn full_filter() -> AuditFilter {
    let at = |text: &str| {
        Timestamp(
            chrono::DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc),
        )
    };
    AuditFilter {
        organization_id: Some(Id::new_v7()),
        actions: vec![
            ActionMatch::Exact(AuditAction::PolicyCreated),
            ActionMatch::Prefix("role.".to_owned()),
            ActionMatch::Prefix(String::new()),
        ],
        actor_ids: vec![Id::new_v7(), Id::new_v7()],
        actor_types: vec![ActorType::ApiKey, ActorType::Anonymous],
        target_types: vec!["user".to_owned(), "api_key".to_owned()],
        target_ids: vec!["ghost".to_owned(), "Ünïcode & = + %20".to_owned()],
        outcomes: vec![Outcome::Success, Outcome::Denied],
        since: Some(at("2026-03-01T12:00:00.000001Z")),
        until: Some(at("2026-03-02T00:00:00Z")),
        search: Some("a, b & c = 50% ÅNGSTRÖM".to_owned()),
    }
}

#[test]
fn query_strings_read_back_to_the_same_filter() {
    let full = full_filter();
    let mut filters = vec![AuditFilter::default(), full.clone()];
    // Each field alone.
    filters.push(AuditFilter {
        organization_id: full.organization_id,
        ..AuditFilter::default()
    });
    filters.push(AuditFilter {
        actions: full.actions.clone(),
        ..AuditFilter::default()
    });
    filters.push(AuditFilter {
        actor_ids: full.actor_ids.clone(),
        ..AuditFilter::default()
    });
    filters.push(AuditFilter {
        actor_types: full.actor_types.clone(),
        ..AuditFilter::default()
    });
    filters.push(AuditFilter {
        target_types: full.target_types.clone(),
        ..AuditFilter::default()
    });
    filters.push(AuditFilter {
        target_ids: full.target_ids.clone(),
        ..AuditFilter::default()
    });
    filters.push(AuditFilter {
        outcomes: full.outcomes.clone(),
        ..AuditFilter::default()
    });
    filters.push(AuditFilter {
        since: full.since,
        ..AuditFilter::default()
    });
    filters.push(AuditFilter {
        until: full.until,
        ..AuditFilter::default()
    });
    filters.push(AuditFilter {
        search: full.search.clone(),
        ..AuditFilter::default()
    });
    for filter in filters {
        let query = filter.to_query_string();
        let parsed = AuditFilter::from_query_string(&query).unwrap_or_else(|e| panic!("{query}: {e:?}"));
        assert_eq!(parsed, filter, "{query}");
    }
    assert_eq!(AuditFilter::default().to_query_string(), "");
    // Hand-written lists: comma-separated, repeated, spaced; SCREAMING_CASE enums in any case.
    let parsed = AuditFilter::from_query_string(
        "actions=policy.created,%20role.*&actions=session.login_failed&actorTypes=api_key,USER&outcomes=Denied&targetIds=a,,b",
    )
    .unwrap();
    assert_eq!(
        parsed,
        AuditFilter {
            actions: vec![
                ActionMatch::Exact(AuditAction::PolicyCreated),
                ActionMatch::Prefix("role.".to_owned()),
                ActionMatch::Exact(AuditAction::LoginFailed),
            ],
            actor_types: vec![ActorType::ApiKey, ActorType::User],
            outcomes: vec![Outcome::Denied],
            target_ids: vec!["a".to_owned(), "b".to_owned()],
            ..AuditFilter::default()
        }
    );
}

#[test]
fn bad_query_strings_name_the_parameter() {
    let long = "x".repeat(500);
    let cases: Vec<(String, &str)> = vec![
        ("organizationId=nope".into(), "organizationId"),
        ("actions=policy".into(), "actions"),
        ("actions=nothing.*".into(), "actions"),
        ("actorIds=1,2".into(), "actorIds"),
        ("actorTypes=ROBOT".into(), "actorTypes"),
        ("outcomes=MAYBE".into(), "outcomes"),
        ("targetTypes=a%0Ab".into(), "targetTypes"),
        (format!("targetIds={long}"), "targetIds"),
        ("since=yesterday".into(), "since"),
        ("until=2026-13-01T00:00:00Z".into(), "until"),
        (
            "since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z".into(),
            "until",
        ),
        (
            "since=2026-03-01T00:00:00Z&until=2026-03-01T00:00:00Z".into(),
            "until",
        ),
        (format!("search={long}"), "search"),
        ("colour=red".into(), "colour"),
    ];
    for (query, parameter) in cases {
        match AuditFilter::from_query_string(&query) {
            Err(Error::BadUserInput { field, message }) => {
                assert_eq!(field, parameter, "{query}: {message}");
                assert!(!message.is_empty(), "{query}");
            }
            other => panic!("{query}: expected BAD_USER_INPUT on {parameter}, got {other:?}"),
        }
    }
    // From GraphQL input the same checks name the input field.
    let input = FilterInput {
        actor_ids: vec!["nope".to_owned()],
        ..FilterInput::default()
    };
    match AuditFilter::from_input(input, "filter.") {
        Err(Error::BadUserInput { field, .. }) => assert_eq!(field, "filter.actorIds"),
        other => panic!("expected BAD_USER_INPUT, got {other:?}"),
    }
    let input = FilterInput {
        target_ids: vec!["a,b".to_owned()],
        ..FilterInput::default()
    };
    match AuditFilter::from_input(input, "filter.") {
        Err(Error::BadUserInput { field, .. }) => assert_eq!(field, "filter.targetIds"),
        other => panic!("expected BAD_USER_INPUT, got {other:?}"),
    }
}
