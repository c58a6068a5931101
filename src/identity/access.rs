//! The single place where the gateway decides whether an actor may perform an action.
//!
//! Interim rule until the policy engine lands: a super-administrator may do everything; any other
//! user may read and update only themselves (their profile, memberships, sessions and API keys).
//! Every domain function calls [`check`], so the engine can replace this one function.

use crate::db::Id;
use crate::error::{Error, Result};
use crate::identity::Actor;

/// A gateway operation, named as the policy engine will name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    UserRead,
    UserList,
    UserCreate,
    UserUpdate,
    UserDisable,
    OrganizationRead,
    OrganizationList,
    OrganizationCreate,
    OrganizationUpdate,
    MemberList,
    MemberAdd,
    MemberRemove,
    SessionList,
    SessionRevoke,
    ApiKeyList,
    ApiKeyCreate,
    ApiKeyRevoke,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserRead => "user.read",
            Self::UserList => "user.list",
            Self::UserCreate => "user.create",
            Self::UserUpdate => "user.update",
            Self::UserDisable => "user.disable",
            Self::OrganizationRead => "organization.read",
            Self::OrganizationList => "organization.list",
            Self::OrganizationCreate => "organization.create",
            Self::OrganizationUpdate => "organization.update",
            Self::MemberList => "member.list",
            Self::MemberAdd => "member.add",
            Self::MemberRemove => "member.remove",
            Self::SessionList => "session.list",
            Self::SessionRevoke => "session.revoke",
            Self::ApiKeyList => "api_key.list",
            Self::ApiKeyCreate => "api_key.create",
            Self::ApiKeyRevoke => "api_key.revoke",
        }
    }

    /// Actions a user may always take on their own account.
    fn is_self_service(self) -> bool {
        matches!(
            self,
            Self::UserRead
                | Self::UserUpdate
                | Self::MemberList
                | Self::SessionList
                | Self::SessionRevoke
                | Self::ApiKeyList
                | Self::ApiKeyCreate
                | Self::ApiKeyRevoke
        )
    }
}

/// What an action is performed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// The gateway as a whole (listing, creating).
    Gateway,
    /// A user account and what hangs off it (memberships, sessions, API keys).
    User(Id),
    Organization(Id),
}

/// Allows or refuses `action` on `resource` for `actor`.
pub fn check(actor: &Actor, action: Action, resource: Resource) -> Result<()> {
    if allows(actor, action, resource) {
        Ok(())
    } else {
        tracing::debug!(actor = %actor.user_id(), action = action.as_str(), ?resource, "denied");
        Err(Error::Forbidden)
    }
}

/// The decision itself, without the error.
pub fn allows(actor: &Actor, action: Action, resource: Resource) -> bool {
    if actor.user.super_admin {
        return true;
    }
    matches!(resource, Resource::User(id) if id == actor.user_id()) && action.is_self_service()
}
