//! GraphQL types and resolvers for organizations and memberships.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

pub use super::branding::Branding;
use super::context::ContextExt;
use super::ids::{parse_id, to_id};
use super::invitations::Invitation;
use super::loaders::Loaders;
use super::pagination::{PageArgs, Paged, connection};
use super::users::User;
use crate::db::models::{MembershipRow, OrganizationRow};
use crate::db::organizations::OrganizationFilter as RowFilter;
use crate::identity::organizations::{self, OrganizationChanges};
use crate::identity::{validate, visibility};

/// A tenant: users belong to organizations through memberships.
pub struct Organization(pub OrganizationRow);

/// A user's membership of an organization.
pub struct Membership(pub MembershipRow);

/// An organization (tenant).
#[Object]
impl Organization {
    /// Stable identifier (a UUIDv7).
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    /// Unique, URL-friendly handle: 2–63 lowercase letters, digits and inner hyphens.
    async fn slug(&self) -> &str {
        &self.0.slug
    }

    /// Name shown to people.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// When the organization was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.0
    }

    /// When the organization last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at.0
    }

    /// White-label settings for emails and pages (empty fields: the gateway's defaults).
    async fn branding(&self, ctx: &Context<'_>) -> async_graphql::Result<Branding> {
        let loaders = ctx.data::<Loaders>()?;
        let row = loaders.branding.load_one(self.0.id).await?;
        Ok(Branding(
            row.map(crate::identity::branding::view).unwrap_or_default(),
        ))
    }

    /// The organization's invitations, oldest first (needs `invitation.list` here).
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Paged<Invitation>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let filter = crate::db::invitations::InvitationFilter {
            organization_ids: Some(vec![self.0.id]),
            ..Default::default()
        };
        let result = crate::invitations::manage::list(ctx.app()?, ctx.actor()?, &filter, &page).await?;
        Ok(connection(&page, result, |row| row.id, Invitation))
    }

    /// The organization's members, oldest membership first.
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Paged<Membership>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let result = organizations::members(ctx.app()?, ctx.actor()?, self.0.id, &page).await?;
        Ok(connection(&page, result, |row| row.id, Membership))
    }
}

/// A user's membership of an organization.
#[Object]
impl Membership {
    /// Stable identifier of the membership.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    /// The member; null if you may neither read the account nor list the organization's members.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let (app, actor) = (ctx.app()?, ctx.actor()?);
        let loaders = ctx.data::<Loaders>()?;
        let Some(user) = loaders.users.load_one(self.0.user_id).await? else {
            return Ok(None);
        };
        let visible = visibility::member(app, actor, self.0.user_id, self.0.organization_id).await?;
        Ok(visible.then_some(User(user)))
    }

    /// The organization; null if you may not read it.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        readable_organization(ctx, self.0.organization_id).await
    }

    /// When the user joined.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.0
    }
}

/// The organization `id` reached through another object: null unless the caller may read it
/// (the rule of `organization(id:)`). The check is made for each caller once the batched load
/// is back (asking first would spread the loads of a list past the loader's batching window).
pub(crate) async fn readable_organization(
    ctx: &Context<'_>,
    id: crate::db::Id,
) -> async_graphql::Result<Option<Organization>> {
    let loaders = ctx.data::<Loaders>()?;
    let Some(row) = loaders.organizations.load_one(id).await? else {
        return Ok(None);
    };
    let visible = visibility::organization(ctx.app()?, ctx.actor()?, id).await?;
    Ok(visible.then_some(Organization(row)))
}

/// Narrows `organizations`.
#[derive(InputObject, Default)]
pub struct OrganizationFilter {
    /// Case-insensitive text found in the slug or name.
    search: Option<String>,
    /// Only organizations this user belongs to.
    member_id: Option<ID>,
}

/// A new organization.
#[derive(InputObject)]
pub struct CreateOrganizationInput {
    /// Unique handle: 2–63 lowercase letters, digits and inner hyphens.
    slug: String,
    /// Name shown to people (1–100 characters).
    name: String,
}

/// Changes to an organization; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateOrganizationInput {
    /// The organization to change.
    id: ID,
    /// New slug.
    slug: Option<String>,
    /// New name.
    name: Option<String>,
}

/// A user and an organization.
#[derive(InputObject)]
pub struct MemberInput {
    /// The organization.
    organization_id: ID,
    /// The user.
    user_id: ID,
}

/// The organization created or changed by a mutation.
#[derive(SimpleObject)]
pub struct OrganizationPayload {
    /// The organization as it is now.
    organization: Organization,
}

/// The membership created or removed by a mutation.
#[derive(SimpleObject)]
pub struct MembershipPayload {
    /// The membership.
    membership: Membership,
}

#[derive(Default)]
pub struct OrganizationQuery;

#[Object]
impl OrganizationQuery {
    /// An organization by id; null if it does not exist or you may not see it.
    async fn organization(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Organization>> {
        let id = parse_id("id", &id)?;
        Ok(organizations::get(ctx.app()?, ctx.actor()?, id)
            .await?
            .map(Organization))
    }

    /// An organization by slug; null if it does not exist or you may not see it.
    async fn organization_by_slug(
        &self,
        ctx: &Context<'_>,
        slug: String,
    ) -> async_graphql::Result<Option<Organization>> {
        // A slug that breaks the slug rules names no organization: no need to ask the database.
        let Ok(slug) = validate::slug("slug", &slug) else {
            return Ok(None);
        };
        let found = organizations::get_by_slug(ctx.app()?, ctx.actor()?, &slug).await?;
        Ok(found.map(Organization))
    }

    /// All organizations, oldest first.
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<OrganizationFilter>,
    ) -> async_graphql::Result<Paged<Organization>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let filter = filter.unwrap_or_default();
        let filter = RowFilter {
            search: validate::search("filter.search", filter.search)?,
            member_id: filter
                .member_id
                .as_ref()
                .map(|id| parse_id("memberId", id))
                .transpose()?,
        };
        let result = organizations::list(ctx.app()?, ctx.actor()?, &filter, &page).await?;
        Ok(connection(&page, result, |row| row.id, Organization))
    }
}

#[derive(Default)]
pub struct OrganizationMutation;

#[Object]
impl OrganizationMutation {
    /// Creates an organization.
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> async_graphql::Result<OrganizationPayload> {
        let row = organizations::create(ctx.app()?, ctx.actor()?, &input.slug, &input.name).await?;
        Ok(OrganizationPayload {
            organization: Organization(row),
        })
    }

    /// Changes an organization's slug or name.
    async fn update_organization(
        &self,
        ctx: &Context<'_>,
        input: UpdateOrganizationInput,
    ) -> async_graphql::Result<OrganizationPayload> {
        let id = parse_id("id", &input.id)?;
        let changes = OrganizationChanges {
            slug: input.slug,
            name: input.name,
        };
        let row = organizations::update(ctx.app()?, ctx.actor()?, id, changes).await?;
        Ok(OrganizationPayload {
            organization: Organization(row),
        })
    }

    /// Adds a user to an organization.
    async fn add_member(
        &self,
        ctx: &Context<'_>,
        input: MemberInput,
    ) -> async_graphql::Result<MembershipPayload> {
        let organization_id = parse_id("organizationId", &input.organization_id)?;
        let user_id = parse_id("userId", &input.user_id)?;
        let row = organizations::add_member(ctx.app()?, ctx.actor()?, organization_id, user_id).await?;
        Ok(MembershipPayload {
            membership: Membership(row),
        })
    }

    /// Removes a user from an organization; returns the membership as it was.
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        input: MemberInput,
    ) -> async_graphql::Result<MembershipPayload> {
        let organization_id = parse_id("organizationId", &input.organization_id)?;
        let user_id = parse_id("userId", &input.user_id)?;
        let row = organizations::remove_member(ctx.app()?, ctx.actor()?, organization_id, user_id).await?;
        Ok(MembershipPayload {
            membership: Membership(row),
        })
    }
}
