//! Cedar names of the gateway's entities, parsed once.

use std::str::FromStr;

use cedar_policy::{EntityId, EntityTypeName, EntityUid};

use super::actions::Action;
use crate::db::Id;
use crate::error::{Error, Result};

/// The entity type names of the `Portcullis` namespace.
#[derive(Debug, Clone)]
pub struct Types {
    user: EntityTypeName,
    role: EntityTypeName,
    organization: EntityTypeName,
    gateway: EntityTypeName,
    action: EntityTypeName,
}

impl Types {
    pub fn new() -> Result<Self> {
        let parse = |name: &str| {
            EntityTypeName::from_str(name)
                .map_err(|e| Error::internal(anyhow::anyhow!("entity type {name}: {e}")))
        };
        Ok(Self {
            user: parse("Portcullis::User")?,
            role: parse("Portcullis::Role")?,
            organization: parse("Portcullis::Organization")?,
            gateway: parse("Portcullis::Gateway")?,
            action: parse("Portcullis::Action")?,
        })
    }

    pub fn user(&self, id: Id) -> EntityUid {
        uid(&self.user, &id.to_string())
    }

    pub fn role(&self, id: Id) -> EntityUid {
        uid(&self.role, &id.to_string())
    }

    pub fn organization(&self, id: Id) -> EntityUid {
        uid(&self.organization, &id.to_string())
    }

    /// The single `Portcullis::Gateway::"portcullis"` entity.
    pub fn gateway(&self) -> EntityUid {
        uid(&self.gateway, "portcullis")
    }

    pub fn action(&self, action: Action) -> EntityUid {
        uid(&self.action, action.name())
    }

    /// True for entity types of the gateway's namespace, which integrators may not supply.
    pub fn is_gateway_type(&self, name: &EntityTypeName) -> bool {
        name.namespace() == "Portcullis"
    }

    /// Why `uid` is not how the gateway spells its own entity, if it is not: users, roles and
    /// organizations by the canonical form of their ID (lowercase, hyphenated), the gateway as
    /// `"portcullis"`. Other types are not the gateway's to judge.
    pub fn non_canonical(&self, uid: &EntityUid) -> Option<String> {
        let type_name = uid.type_name();
        let id = uid.id().unescaped();
        if type_name == &self.gateway {
            return (id != "portcullis").then(|| format!("{type_name} has the one id \"portcullis\""));
        }
        if ![&self.user, &self.role, &self.organization].contains(&type_name) {
            return None;
        }
        match id.parse::<Id>() {
            Ok(parsed) if parsed.to_string() == id => None,
            Ok(parsed) => Some(format!(
                "a {type_name} id must be spelled canonically (lowercase, hyphenated): \"{parsed}\""
            )),
            Err(_) => Some(format!("a {type_name} id must be an ID (a UUID)")),
        }
    }

    /// True for `Portcullis::Role::"…"`.
    pub fn is_role(&self, uid: &EntityUid) -> bool {
        uid.type_name() == &self.role
    }

    pub fn user_type(&self) -> &EntityTypeName {
        &self.user
    }
}

fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
}
