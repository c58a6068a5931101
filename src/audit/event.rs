//! An audit event as domain code describes it, before the log gives it a place in a chain.

use serde::Serialize;
use serde_json::{Map, Value};

use super::AuditAction;
use crate::db::Id;
pub use crate::db::{ActorType, Outcome};
use crate::identity::{Actor, AuthMethod, ClientInfo};

/// What it was done to: `{type, id, displayName}` (the display name is personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Target {
    #[serde(rename = "type")]
    pub target_type: String,
    pub id: String,
    #[serde(rename = "displayName")]
    pub display_name: Option<String>,
}

impl Target {
    pub fn new(target_type: &str, id: impl ToString, display_name: impl Into<Option<String>>) -> Self {
        Self {
            target_type: target_type.to_owned(),
            id: id.to_string(),
            display_name: display_name.into(),
        }
    }
}

/// One thing that happened, ready for [`record`](super::record).
#[derive(Debug, Clone)]
pub struct Event {
    pub action: AuditAction,
    pub actor_type: ActorType,
    pub actor_id: Option<Id>,
    pub actor_user_id: Option<Id>,
    pub actor_name: Option<String>,
    pub organization_id: Option<Id>,
    pub outcome: Outcome,
    pub targets: Vec<Target>,
    pub client: ClientInfo,
    /// Details; for updates `{"changes": {field: {"before", "after"}}}`. Never secrets.
    pub metadata: Map<String, Value>,
}

impl Event {
    /// `actor` did `action` (successfully, until said otherwise).
    pub fn by(actor: &Actor, action: AuditAction) -> Self {
        let (actor_type, actor_id) = match (actor.method, actor.api_key_id) {
            (AuthMethod::ApiKey, Some(key)) => (ActorType::ApiKey, key),
            _ => (ActorType::User, actor.user_id()),
        };
        Self {
            actor_type,
            actor_id: Some(actor_id),
            actor_user_id: Some(actor.user_id()),
            actor_name: Some(actor.user.display_name.clone()),
            client: actor.client.clone(),
            ..Self::bare(action, ActorType::User)
        }
    }

    /// Someone not (yet) authenticated, e.g. a failed login.
    pub fn anonymous(action: AuditAction, client: &ClientInfo) -> Self {
        Self {
            client: client.clone(),
            ..Self::bare(action, ActorType::Anonymous)
        }
    }

    /// The gateway itself: bootstrap, retention, key rotation from the command line.
    pub fn system(action: AuditAction) -> Self {
        Self {
            actor_name: Some("portcullis".to_owned()),
            ..Self::bare(action, ActorType::System)
        }
    }

    fn bare(action: AuditAction, actor_type: ActorType) -> Self {
        Self {
            action,
            actor_type,
            actor_id: None,
            actor_user_id: None,
            actor_name: None,
            organization_id: None,
            outcome: Outcome::Success,
            targets: Vec::new(),
            client: ClientInfo::default(),
            metadata: Map::new(),
        }
    }

    /// Attributes the event to a user who is not (yet) an authenticated actor, e.g. a login.
    pub fn as_user(mut self, id: Id, display_name: &str) -> Self {
        self.actor_type = ActorType::User;
        self.actor_id = Some(id);
        self.actor_user_id = Some(id);
        self.actor_name = Some(display_name.to_owned());
        self
    }

    pub fn target(mut self, target: Target) -> Self {
        self.targets.push(target);
        self
    }

    /// The organization whose log (and hash chain) the event belongs to.
    pub fn in_organization(mut self, organization_id: Option<Id>) -> Self {
        self.organization_id = organization_id;
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.metadata
            .insert(key.to_owned(), serde_json::to_value(value).unwrap_or(Value::Null));
        self
    }

    /// Records `field` under `changes` with its value before and after, if it changed.
    pub fn change(mut self, field: &str, before: impl Serialize, after: impl Serialize) -> Self {
        let (before, after) = (
            serde_json::to_value(before).unwrap_or(Value::Null),
            serde_json::to_value(after).unwrap_or(Value::Null),
        );
        if before != after {
            let changes = self
                .metadata
                .entry("changes")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(changes) = changes {
                changes.insert(
                    field.to_owned(),
                    serde_json::json!({ "before": before, "after": after }),
                );
            }
        }
        self
    }

    /// Records that `field` changed without saying to what (for secrets such as passwords).
    pub fn changed_secret(self, field: &str, changed: bool) -> Self {
        if changed {
            self.change(field, "[redacted]", "[changed]")
        } else {
            self
        }
    }
}
