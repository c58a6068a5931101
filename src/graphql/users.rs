//! GraphQL types and resolvers for user accounts.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::ContextExt;
use super::ids::{parse_id, to_id};
use super::organizations::Membership;
use super::pagination::{PageArgs, Paged, connection};
use super::roles::RoleAssignment;
use crate::authz::assignments;
use crate::db::models::UserRow;
use crate::db::role_assignments::AssignmentFilter;
use crate::db::users::UserFilter as RowFilter;
use crate::identity::{organizations, users, validate};

/// A person who can sign in to the gateway.
pub struct User(pub UserRow);

/// Whether an account may sign in.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum UserStatus {
    /// The account works normally.
    Active,
    /// The account cannot sign in; its sessions were ended and its API keys revoked.
    Disabled,
}

impl From<users::UserStatus> for UserStatus {
    fn from(status: users::UserStatus) -> Self {
        match status {
            users::UserStatus::Active => Self::Active,
            users::UserStatus::Disabled => Self::Disabled,
        }
    }
}

impl From<UserStatus> for users::UserStatus {
    fn from(status: UserStatus) -> Self {
        match status {
            UserStatus::Active => Self::Active,
            UserStatus::Disabled => Self::Disabled,
        }
    }
}

/// A user account.
#[Object]
impl User {
    /// Stable identifier (a UUIDv7).
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    /// Sign-in email, lower-cased; unique across the gateway.
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// Name shown to people.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    /// Whether the account may sign in.
    async fn status(&self) -> UserStatus {
        self.0.status.into()
    }

    /// Whether the account has a password (accounts without one cannot use `login`).
    async fn has_password(&self) -> bool {
        self.0.password_hash.is_some()
    }

    /// When the account was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.0
    }

    /// When the account last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at.0
    }

    /// The roles this user holds, oldest first.
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn role_assignments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Paged<RoleAssignment>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let filter = AssignmentFilter {
            user_id: Some(self.0.id),
            ..AssignmentFilter::default()
        };
        let result = assignments::list(ctx.app()?, ctx.actor()?, &filter, &page).await?;
        Ok(connection(&page, result, |row| row.id, RoleAssignment))
    }

    /// The user's passkeys, oldest first (needs `passkey.list` on the account).
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn passkeys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Paged<super::passkeys::Passkey>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let result = crate::passkeys::manage::list(ctx.app()?, ctx.actor()?, self.0.id, &page).await?;
        Ok(connection(&page, result, |row| row.id, super::passkeys::Passkey))
    }

    /// The organizations this user belongs to, oldest membership first.
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn memberships(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Paged<Membership>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let result = organizations::memberships_of(ctx.app()?, ctx.actor()?, self.0.id, &page).await?;
        Ok(connection(&page, result, |row| row.id, Membership))
    }
}

/// Narrows `users`.
#[derive(InputObject, Default)]
pub struct UserFilter {
    /// Case-insensitive text found in the email or display name.
    search: Option<String>,
    /// Only users with this status.
    status: Option<UserStatus>,
}

/// A new user account.
#[derive(InputObject)]
pub struct CreateUserInput {
    /// Sign-in email; must be unique (case-insensitively).
    email: String,
    /// Name shown to people (1–100 characters).
    display_name: String,
    /// Initial password (8–256 characters). Without one the user cannot log in with a password.
    password: Option<String>,
}

/// Changes to a user; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// The user to change.
    id: ID,
    /// New email. Only administrators (who may create users) change their own, giving
    /// `currentPassword`; others get BAD_USER_INPUT on `email` and ask an administrator, until
    /// self-service changes are confirmed by a verification link.
    email: Option<String>,
    /// New display name.
    display_name: Option<String>,
    /// New password (8–256 characters). It ends the account's other sessions (yours goes on).
    password: Option<String>,
    /// Your current password: required when changing your own password or email.
    current_password: Option<String>,
}

/// Names a user.
#[derive(InputObject)]
pub struct UserIdInput {
    /// The user to act on.
    id: ID,
}

/// The user created or changed by a mutation.
#[derive(SimpleObject)]
pub struct UserPayload {
    /// The user as it is now.
    user: User,
}

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// A user by id; null if it does not exist or you may not see it.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<User>> {
        let id = parse_id("id", &id)?;
        Ok(users::get(ctx.app()?, ctx.actor()?, id).await?.map(User))
    }

    /// All users, oldest first.
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<UserFilter>,
    ) -> async_graphql::Result<Paged<User>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let filter = filter.unwrap_or_default();
        let filter = RowFilter {
            search: validate::search("filter.search", filter.search)?,
            status: filter.status.map(Into::into),
        };
        let result = users::list(ctx.app()?, ctx.actor()?, &filter, &page).await?;
        Ok(connection(&page, result, |row| row.id, User))
    }
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Creates a user account.
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        input: CreateUserInput,
    ) -> async_graphql::Result<UserPayload> {
        let new = users::NewUser {
            email: input.email,
            display_name: input.display_name,
            password: input.password,
        };
        let user = users::create(ctx.app()?, ctx.actor()?, new).await?;
        Ok(UserPayload { user: User(user) })
    }

    /// Changes a user's email, display name or password.
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        input: UpdateUserInput,
    ) -> async_graphql::Result<UserPayload> {
        let id = parse_id("id", &input.id)?;
        let changes = users::UserChanges {
            email: input.email,
            display_name: input.display_name,
            password: input.password,
            current_password: input.current_password,
        };
        let user = users::update(ctx.app()?, ctx.actor()?, id, changes).await?;
        Ok(UserPayload { user: User(user) })
    }

    /// Disables an account: it cannot sign in, its sessions end and its API keys are revoked
    /// (re-enabling gives back neither).
    async fn disable_user(
        &self,
        ctx: &Context<'_>,
        input: UserIdInput,
    ) -> async_graphql::Result<UserPayload> {
        let id = parse_id("id", &input.id)?;
        let user = users::disable(ctx.app()?, ctx.actor()?, id).await?;
        Ok(UserPayload { user: User(user) })
    }

    /// Re-enables a disabled account.
    async fn enable_user(&self, ctx: &Context<'_>, input: UserIdInput) -> async_graphql::Result<UserPayload> {
        let id = parse_id("id", &input.id)?;
        let user = users::enable(ctx.app()?, ctx.actor()?, id).await?;
        Ok(UserPayload { user: User(user) })
    }
}
