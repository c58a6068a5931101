//! The audit filter: one domain type that GraphQL input and query strings parse into, that the
//! database reads through ([`AuditFilter::criteria`]) and that the live feed matches in memory
//! ([`AuditFilter::matches`]), so that a list, an export and a subscription select the same events.

mod query;

use super::{ActorType, AuditAction, Outcome, Target};
use crate::db::audit::{Criteria, Scope};
use crate::db::models::AuditEventRow;
use crate::db::{Id, Timestamp, fold_case};
use crate::error::{Error, Result};
use crate::identity::validate;

/// Narrows a read of the log. Fields combine with AND, entries of a list with OR; an empty list and
/// `None` do not narrow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// One organization's events.
    pub organization_id: Option<Id>,
    pub actions: Vec<ActionMatch>,
    /// The acting user or API key.
    pub actor_ids: Vec<Id>,
    pub actor_types: Vec<ActorType>,
    /// Events with a target of one of these types (and, with `target_ids`, one of those ids).
    pub target_types: Vec<String>,
    pub target_ids: Vec<String>,
    pub outcomes: Vec<Outcome>,
    /// Inclusive lower bound of the event's time.
    pub since: Option<Timestamp>,
    /// Exclusive upper bound of the event's time.
    pub until: Option<Timestamp>,
    /// Case-insensitive text in the actor's or a target's display name.
    pub search: Option<String>,
}

/// One entry of an action filter: an action, or every action under a dotted prefix (`policy.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionMatch {
    Exact(AuditAction),
    /// The prefix without its `*`: empty (every action) or ending in a dot, and some action has it.
    Prefix(String),
}

impl ActionMatch {
    /// Parses `policy.created` or `policy.*`; the error names `field` and the entry (when short and
    /// printable: an error must not amplify the input).
    pub fn parse(field: &str, entry: &str) -> Result<Self> {
        let entry = entry.trim();
        if let Some(prefix) = entry.strip_suffix('*') {
            let known = AuditAction::ALL
                .iter()
                .any(|action| action.name().starts_with(prefix));
            if (prefix.is_empty() || prefix.ends_with('.')) && known {
                return Ok(Self::Prefix(prefix.to_owned()));
            }
        } else if let Some(action) = AuditAction::parse(entry) {
            return Ok(Self::Exact(action));
        }
        let shown = if entry.chars().count() <= 64 && !entry.chars().any(char::is_control) {
            format!("`{entry}`")
        } else {
            "the entry".to_owned()
        };
        Err(Error::bad_input(
            field,
            format!("{shown} is neither an audit action nor a prefix such as `policy.*`"),
        ))
    }

    /// Whether the stored action name `action` is selected.
    pub fn matches(&self, action: &str) -> bool {
        match self {
            Self::Exact(exact) => exact.name() == action,
            Self::Prefix(prefix) => action.starts_with(prefix.as_str()),
        }
    }

    /// The entry as a client writes it: `policy.created` or `policy.*`.
    pub fn as_entry(&self) -> String {
        match self {
            Self::Exact(action) => action.name().to_owned(),
            Self::Prefix(prefix) => format!("{prefix}*"),
        }
    }
}

/// A filter as a client sent it, ids and texts not yet checked: GraphQL input maps onto it field
/// by field and query strings parse into it, so both go through the same checks.
#[derive(Debug, Clone, Default)]
pub struct FilterInput {
    pub organization_id: Option<String>,
    pub actions: Vec<String>,
    pub actor_ids: Vec<String>,
    pub actor_types: Vec<ActorType>,
    pub target_types: Vec<String>,
    pub target_ids: Vec<String>,
    pub outcomes: Vec<Outcome>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub search: Option<String>,
}

impl AuditFilter {
    /// Checks `input`; errors name the field as `{prefix}{camelCaseName}` (`filter.actorIds` for
    /// GraphQL, `actorIds` for a query string).
    pub fn from_input(input: FilterInput, prefix: &str) -> Result<Self> {
        let field = |name: &str| format!("{prefix}{name}");
        let id = |name: &str, text: &str| -> Result<Id> {
            text.trim()
                .parse()
                .map_err(|_| Error::bad_input(field(name), "not a valid ID"))
        };
        let filter = Self {
            organization_id: input
                .organization_id
                .map(|text| id("organizationId", &text))
                .transpose()?,
            actions: input
                .actions
                .iter()
                .map(|entry| ActionMatch::parse(&field("actions"), entry))
                .collect::<Result<_>>()?,
            actor_ids: input
                .actor_ids
                .iter()
                .map(|text| id("actorIds", text))
                .collect::<Result<_>>()?,
            actor_types: input.actor_types,
            target_types: terms(&field("targetTypes"), input.target_types)?,
            target_ids: terms(&field("targetIds"), input.target_ids)?,
            outcomes: input.outcomes,
            since: input.since.map(Timestamp::stored),
            until: input.until.map(Timestamp::stored),
            search: validate::search(&field("search"), input.search)?,
        };
        if let (Some(since), Some(until)) = (filter.since, filter.until)
            && since >= until
        {
            return Err(Error::bad_input(field("until"), "must be after `since`"));
        }
        Ok(filter)
    }

    /// What the database needs to select the same events (see [`Criteria`]).
    pub fn criteria(&self) -> Criteria {
        let (mut actions, mut action_prefixes) = (Vec::new(), Vec::new());
        for entry in &self.actions {
            match entry {
                ActionMatch::Exact(action) => actions.push(action.name().to_owned()),
                ActionMatch::Prefix(prefix) => action_prefixes.push(prefix.clone()),
            }
        }
        Criteria {
            organization_id: self.organization_id,
            actions,
            action_prefixes,
            actor_ids: self.actor_ids.clone(),
            actor_types: self.actor_types.clone(),
            target_types: self.target_types.clone(),
            target_ids: self.target_ids.clone(),
            outcomes: self.outcomes.clone(),
            since: self.since.map(Timestamp::stored),
            until: self.until.map(Timestamp::stored),
            search: self.search.clone(),
        }
    }

    /// Whether `event` is in `scope` and passes the filter: what [`criteria`](Self::criteria)
    /// selects in SQL, for events already in hand (the live feed).
    pub fn matches(&self, scope: Scope, event: &AuditEventRow) -> bool {
        let in_scope = match scope {
            Scope::All => true,
            Scope::Organization(org) => event.organization_id == Some(org),
            Scope::ActorUser(user) => event.actor_user_id == Some(user),
        };
        in_scope
            && self
                .organization_id
                .is_none_or(|org| event.organization_id == Some(org))
            && any_or_empty(&self.actions, |a| a.matches(&event.action))
            && any_or_empty(&self.actor_ids, |id| event.actor_id == Some(*id))
            && any_or_empty(&self.actor_types, |t| *t == event.actor_type)
            && any_or_empty(&self.outcomes, |o| *o == event.outcome)
            // Both backends store instants to the microsecond: compare at that precision.
            && self
                .since
                .is_none_or(|since| event.occurred_at >= since.stored())
            && self
                .until
                .is_none_or(|until| event.occurred_at < until.stored())
            && self.targets_and_names_match(event)
    }

    /// The target and search conditions, which need the event's targets (parsed only then).
    fn targets_and_names_match(&self, event: &AuditEventRow) -> bool {
        let by_target = !self.target_types.is_empty() || !self.target_ids.is_empty();
        if !by_target && self.search.is_none() {
            return true;
        }
        // The database matches its target rows, written with this JSON in one transaction; JSON
        // that does not parse has no targets to match.
        let targets: Vec<Target> = serde_json::from_str(&event.targets).unwrap_or_default();
        let target_hit = !by_target
            || targets.iter().any(|t| {
                any_or_empty(&self.target_types, |ty| *ty == t.target_type)
                    && any_or_empty(&self.target_ids, |id| *id == t.id)
            });
        let name_hit = self.search.as_deref().is_none_or(|search| {
            let needle = fold_case(search);
            let named =
                |name: &Option<String>| name.as_deref().is_some_and(|n| fold_case(n).contains(&needle));
            named(&event.actor_name) || targets.iter().any(|t| named(&t.display_name))
        });
        target_hit && name_hit
    }
}

/// True when `list` is empty (no condition) or some entry satisfies `hit`.
fn any_or_empty<T>(list: &[T], hit: impl Fn(&T) -> bool) -> bool {
    list.is_empty() || list.iter().any(hit)
}

/// Exact-match terms (target types and ids): trimmed, not empty, no commas (a query string lists
/// them comma-separated), and checked like a search term.
fn terms(field: &str, raw: Vec<String>) -> Result<Vec<String>> {
    raw.into_iter()
        .map(|term| {
            let term = validate::term_text(field, term.trim())?;
            if term.is_empty() {
                return Err(Error::bad_input(field, "must not contain empty entries"));
            }
            if term.contains(',') {
                return Err(Error::bad_input(field, "entries must not contain commas"));
            }
            Ok(term.to_owned())
        })
        .collect()
}
