//! GraphQL types and resolvers for roles, their attached templates and role assignments.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::ContextExt;
use super::ids::{parse_id, to_id};
use super::loaders::Loaders;
use super::organizations::{Organization, readable_organization};
use super::pagination::{PageArgs, Paged, connection};
use super::policies::Policy;
use super::users::User;
use crate::authz::{assignments, roles};
use crate::db::models::{RoleAssignmentRow, RoleRow};
use crate::db::role_assignments::AssignmentFilter as RowFilter;
use crate::error::Error;
use crate::identity::visibility;

/// A role: a named set of gateway permissions (compiled to a Cedar policy), plus attached templates.
pub struct Role(pub RoleRow);

/// A user holding a role, globally or in one organization.
pub struct RoleAssignment(pub RoleAssignmentRow);

/// A role.
#[Object]
impl Role {
    /// Stable identifier; in Cedar the role is `Portcullis::Role::"<id>"`.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    /// Machine name, unique among global roles or within its organization.
    async fn key(&self) -> &str {
        &self.0.key
    }

    /// Name shown to people.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What the role is for.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// The organization that defined it; null for roles usable in every organization, and if you
    /// may not read the organization.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        let Some(id) = self.0.organization_id else {
            return Ok(None);
        };
        readable_organization(ctx, id).await
    }

    /// Gateway actions the role grants (`*`: all of them).
    async fn permissions(&self) -> Vec<String> {
        roles::permission_names(&self.0)
    }

    /// Built-in roles can be read and assigned, not changed or deleted.
    async fn built_in(&self) -> bool {
        self.0.built_in
    }

    /// Policy templates attached to the role (their `?principal` is this role).
    async fn policies(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Policy>> {
        let rows = roles::policies_of(ctx.app()?, ctx.actor()?, &self.0).await?;
        Ok(rows.into_iter().map(Policy).collect())
    }

    /// When the role was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.0
    }

    /// When the role last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at.0
    }
}

/// A role held by a user.
#[Object]
impl RoleAssignment {
    /// Stable identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    /// Who holds the role; null unless you may read the account, or list the members of the
    /// organization where the assignment applies.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let loaders = ctx.data::<Loaders>()?;
        let Some(user) = loaders.users.load_one(self.0.user_id).await? else {
            return Ok(None);
        };
        let visible = visibility::holder(ctx.app()?, ctx.actor()?, &self.0).await?;
        Ok(visible.then_some(User(user)))
    }

    /// The role held; null unless it is yours, or you may read roles where it is managed or
    /// where the assignment applies.
    async fn role(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Role>> {
        let loaders = ctx.data::<Loaders>()?;
        let Some(role) = loaders.roles.load_one(self.0.role_id).await? else {
            return Ok(None);
        };
        let visible = visibility::assigned_role(ctx.app()?, ctx.actor()?, &self.0, &role).await?;
        Ok(visible.then_some(Role(role)))
    }

    /// Where it applies; null for a global assignment (every organization, and the gateway), and
    /// if you may not read the organization.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        let Some(id) = self.0.organization_id else {
            return Ok(None);
        };
        readable_organization(ctx, id).await
    }

    /// When the role was given.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.0
    }
}

/// A new role.
#[derive(InputObject)]
pub struct CreateRoleInput {
    /// 2–63 lowercase letters, digits, `_` or `-`, starting with a letter.
    key: String,
    /// Name shown to people.
    name: String,
    description: Option<String>,
    /// Define the role for one organization only; omit for a role every organization can use.
    organization_id: Option<ID>,
    /// Gateway action names, e.g. `member.list` (see the README or `portcullis cedar-schema`).
    #[graphql(default)]
    permissions: Vec<String>,
}

/// Changes to a role; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateRoleInput {
    id: ID,
    key: Option<String>,
    name: Option<String>,
    description: Option<String>,
    /// Replaces the whole list.
    permissions: Option<Vec<String>>,
}

/// Names a role.
#[derive(InputObject)]
pub struct RoleIdInput {
    id: ID,
}

/// A role and a policy template.
#[derive(InputObject)]
pub struct RolePolicyInput {
    role_id: ID,
    /// A template (a policy with a `?principal` slot).
    policy_id: ID,
}

/// A user, a role, and where the role applies.
#[derive(InputObject)]
pub struct RoleAssignmentInput {
    user_id: ID,
    role_id: ID,
    /// The organization the role applies in; omit for a global assignment.
    organization_id: Option<ID>,
}

/// Narrows `roleAssignments`.
#[derive(InputObject, Default)]
pub struct RoleAssignmentFilter {
    user_id: Option<ID>,
    role_id: Option<ID>,
    organization_id: Option<ID>,
}

/// The role created, changed or deleted by a mutation.
#[derive(SimpleObject)]
pub struct RolePayload {
    role: Role,
}

/// The assignment made or removed by a mutation.
#[derive(SimpleObject)]
pub struct RoleAssignmentPayload {
    role_assignment: RoleAssignment,
}

fn optional_id(field: &str, id: Option<&ID>) -> Result<Option<crate::db::Id>, Error> {
    id.map(|id| parse_id(field, id)).transpose()
}

#[derive(Default)]
pub struct RoleQuery;

#[Object]
impl RoleQuery {
    /// A role by id; null if it does not exist or you may not see it.
    async fn role(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Role>> {
        let id = parse_id("id", &id)?;
        Ok(roles::get(ctx.app()?, ctx.actor()?, id).await?.map(Role))
    }

    /// Global roles; with `organizationId`, the roles usable there (its own and the global ones).
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn roles(
        &self,
        ctx: &Context<'_>,
        organization_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Paged<Role>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let organization_id = optional_id("organizationId", organization_id.as_ref())?;
        let result = roles::list(ctx.app()?, ctx.actor()?, organization_id, &page).await?;
        Ok(connection(&page, result, |row| row.id, Role))
    }

    /// Role assignments, oldest first.
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn role_assignments(
        &self,
        ctx: &Context<'_>,
        filter: Option<RoleAssignmentFilter>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Paged<RoleAssignment>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let filter = filter.unwrap_or_default();
        let filter = RowFilter {
            user_id: optional_id("userId", filter.user_id.as_ref())?,
            role_id: optional_id("roleId", filter.role_id.as_ref())?,
            organization_id: optional_id("organizationId", filter.organization_id.as_ref())?,
        };
        let result = assignments::list(ctx.app()?, ctx.actor()?, &filter, &page).await?;
        Ok(connection(&page, result, |row| row.id, RoleAssignment))
    }
}

#[derive(Default)]
pub struct RoleMutation;

#[Object]
impl RoleMutation {
    /// Creates a role.
    async fn create_role(
        &self,
        ctx: &Context<'_>,
        input: CreateRoleInput,
    ) -> async_graphql::Result<RolePayload> {
        let new = roles::NewRole {
            key: input.key,
            name: input.name,
            description: input.description,
            organization_id: optional_id("organizationId", input.organization_id.as_ref())?,
            permissions: input.permissions,
        };
        let row = roles::create(ctx.app()?, ctx.actor()?, new).await?;
        Ok(RolePayload { role: Role(row) })
    }

    /// Changes a role (not a built-in one).
    async fn update_role(
        &self,
        ctx: &Context<'_>,
        input: UpdateRoleInput,
    ) -> async_graphql::Result<RolePayload> {
        let id = parse_id("id", &input.id)?;
        let changes = roles::RoleChanges {
            key: input.key,
            name: input.name,
            description: input.description,
            permissions: input.permissions,
        };
        let row = roles::update(ctx.app()?, ctx.actor()?, id, changes).await?;
        Ok(RolePayload { role: Role(row) })
    }

    /// Deletes a role with its assignments (not a built-in one); returns it as it was.
    async fn delete_role(&self, ctx: &Context<'_>, input: RoleIdInput) -> async_graphql::Result<RolePayload> {
        let id = parse_id("id", &input.id)?;
        let row = roles::delete(ctx.app()?, ctx.actor()?, id).await?;
        Ok(RolePayload { role: Role(row) })
    }

    /// Attaches a policy template to a role: the template's `?principal` becomes the role.
    async fn attach_policy(
        &self,
        ctx: &Context<'_>,
        input: RolePolicyInput,
    ) -> async_graphql::Result<RolePayload> {
        let role_id = parse_id("roleId", &input.role_id)?;
        let policy_id = parse_id("policyId", &input.policy_id)?;
        let row = roles::attach_policy(ctx.app()?, ctx.actor()?, role_id, policy_id).await?;
        Ok(RolePayload { role: Role(row) })
    }

    /// Detaches a policy template from a role.
    async fn detach_policy(
        &self,
        ctx: &Context<'_>,
        input: RolePolicyInput,
    ) -> async_graphql::Result<RolePayload> {
        let role_id = parse_id("roleId", &input.role_id)?;
        let policy_id = parse_id("policyId", &input.policy_id)?;
        let row = roles::detach_policy(ctx.app()?, ctx.actor()?, role_id, policy_id).await?;
        Ok(RolePayload { role: Role(row) })
    }

    /// Gives a user a role, in one organization or globally.
    async fn assign_role(
        &self,
        ctx: &Context<'_>,
        input: RoleAssignmentInput,
    ) -> async_graphql::Result<RoleAssignmentPayload> {
        let user_id = parse_id("userId", &input.user_id)?;
        let role_id = parse_id("roleId", &input.role_id)?;
        let organization_id = optional_id("organizationId", input.organization_id.as_ref())?;
        let row = assignments::assign(ctx.app()?, ctx.actor()?, user_id, role_id, organization_id).await?;
        Ok(RoleAssignmentPayload {
            role_assignment: RoleAssignment(row),
        })
    }

    /// Takes a role away; returns the assignment as it was.
    async fn unassign_role(
        &self,
        ctx: &Context<'_>,
        input: RoleAssignmentInput,
    ) -> async_graphql::Result<RoleAssignmentPayload> {
        let user_id = parse_id("userId", &input.user_id)?;
        let role_id = parse_id("roleId", &input.role_id)?;
        let organization_id = optional_id("organizationId", input.organization_id.as_ref())?;
        let row = assignments::unassign(ctx.app()?, ctx.actor()?, user_id, role_id, organization_id).await?;
        Ok(RoleAssignmentPayload {
            role_assignment: RoleAssignment(row),
        })
    }
}
