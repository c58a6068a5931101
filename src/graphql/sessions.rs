//! GraphQL types and resolvers for signing in: login, refresh, logout, sessions and the viewer.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::api_keys::ApiKey;
use super::audit::{AuditConnection, AuditEventFilter, AuditOrder, PageArgs as AuditPageArgs, events_page};
use super::context::ContextExt;
use super::ids::{parse_id, to_id};
use super::pagination::{PageArgs, Paged, connection};
use super::passkeys::Passkey;
use super::users::User;
use crate::db::models::SessionRow;
use crate::identity::{Actor, AuthMethod as Method, api_keys, sessions};
use crate::passkeys;

/// A login: refreshed by rotating refresh tokens until it expires or is revoked.
pub struct Session {
    row: SessionRow,
    /// The session the viewer is using right now, if any.
    current: Option<crate::db::Id>,
}

/// A login session.
#[Object]
impl Session {
    /// Stable identifier.
    async fn id(&self) -> ID {
        to_id(self.row.id)
    }

    /// How the session was opened, e.g. `password`.
    async fn auth_method(&self) -> &str {
        self.row.auth_method.as_str()
    }

    /// Client address at login.
    async fn ip(&self) -> Option<&str> {
        self.row.ip.as_deref()
    }

    /// Client software at login.
    async fn user_agent(&self) -> Option<&str> {
        self.row.user_agent.as_deref()
    }

    /// When the user logged in.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at.0
    }

    /// Last time a refresh token of this session was exchanged.
    async fn last_refreshed_at(&self) -> DateTime<Utc> {
        self.row.last_refreshed_at.0
    }

    /// After this instant the session cannot be refreshed.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.row.expires_at.0
    }

    /// When the session was ended; null while it is live.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.row.revoked_at.map(|at| at.0)
    }

    /// Why it was revoked: `revoked`, `refresh_token_reused` or `user_disabled`.
    async fn revoked_reason(&self) -> Option<&str> {
        self.row.revoked_reason.as_deref()
    }

    /// True for the session making this request.
    async fn current(&self) -> bool {
        self.current == Some(self.row.id)
    }

    /// When the session last proved a second factor (a passkey sign-in or step-up); null if never.
    async fn mfa_verified_at(&self) -> Option<DateTime<Utc>> {
        self.row.mfa_verified_at.map(|at| at.0)
    }

    /// Until when the session counts as MFA-verified (`context.mfa` in policies); null if never.
    async fn mfa_expires_at(&self) -> Option<DateTime<Utc>> {
        self.row.mfa_expires_at.map(|at| at.0)
    }
}

impl Session {
    /// A session as seen by the request using session `current`.
    pub fn of(row: SessionRow, current: Option<crate::db::Id>) -> Self {
        Self { row, current }
    }
}

/// How the caller authenticated.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AuthMethod {
    /// An access token obtained by `login`.
    Password,
    /// An access token obtained by a passkey sign-in.
    Passkey,
    /// An API key.
    ApiKey,
}

/// The authenticated caller and what belongs to them.
pub struct Viewer(Actor);

/// The authenticated caller.
#[Object]
impl Viewer {
    /// The caller's account.
    async fn user(&self) -> User {
        User(self.0.user.clone())
    }

    /// How this request was authenticated.
    async fn auth_method(&self) -> AuthMethod {
        match self.0.method {
            Method::Password => AuthMethod::Password,
            Method::Passkey => AuthMethod::Passkey,
            Method::ApiKey => AuthMethod::ApiKey,
        }
    }

    /// The events you acted in (directly or through your API keys), newest first by default.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<AuditEventFilter>,
        order: Option<AuditOrder>,
    ) -> async_graphql::Result<AuditConnection> {
        let filter = filter.unwrap_or_default().model()?;
        let scope = crate::audit::read::own_scope(ctx.app()?, &self.0).await?;
        let args = AuditPageArgs {
            first,
            after,
            last,
            before,
            order,
        };
        Ok(events_page(ctx, &self.0, scope, filter, args).await?)
    }

    /// The caller's login sessions, oldest first.
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Paged<Session>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let result = sessions::list(ctx.app()?, &self.0, self.0.user_id(), &page).await?;
        let current = self.0.session_id;
        Ok(connection(
            &page,
            result,
            |row| row.id,
            |row| Session { row, current },
        ))
    }

    /// Whether this request's session counts as MFA-verified now (`context.mfa`).
    async fn mfa(&self) -> bool {
        self.0.mfa.verified
    }

    /// The caller's passkeys, oldest first.
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn passkeys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Paged<Passkey>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let result = passkeys::manage::list(ctx.app()?, &self.0, self.0.user_id(), &page).await?;
        Ok(connection(&page, result, |row| row.id, Passkey))
    }

    /// The caller's API keys, oldest first (secrets are never shown again).
    #[graphql(complexity = "super::pagination::connection_complexity(first, last, child_complexity)")]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Paged<ApiKey>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let result = api_keys::list(ctx.app()?, &self.0, self.0.user_id(), &page).await?;
        Ok(connection(&page, result, |row| row.id, ApiKey))
    }
}

/// Credentials for `login`.
#[derive(InputObject)]
pub struct LoginInput {
    /// The account's email (any case).
    email: String,
    /// The account's password.
    password: String,
}

/// A refresh token to exchange.
#[derive(InputObject)]
pub struct RefreshSessionInput {
    /// The refresh token from `login` or the previous refresh; it can be used once.
    refresh_token: String,
}

/// The session to end.
#[derive(InputObject)]
pub struct RevokeSessionInput {
    /// The session to end.
    id: ID,
}

/// Tokens for a session: send the access token as `Authorization: Bearer …`; exchange the refresh
/// token with `refreshSession` before the access token expires.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Ed25519-signed JWT; verify it with the keys at `/.well-known/jwks.json`.
    access_token: String,
    /// When the access token stops being accepted.
    access_token_expires_at: DateTime<Utc>,
    /// Single-use token for `refreshSession`. Store it safely: it is not shown again.
    refresh_token: String,
    /// The signed-in user.
    user: User,
    /// The session these tokens belong to.
    session: Session,
}

impl From<sessions::Grant> for AuthPayload {
    fn from(grant: sessions::Grant) -> Self {
        let current = Some(grant.session.id);
        Self {
            access_token: grant.access_token,
            access_token_expires_at: grant.access_token_expires_at.0,
            refresh_token: grant.refresh_token,
            user: User(grant.user),
            session: Session {
                row: grant.session,
                current,
            },
        }
    }
}

/// The session ended by a mutation.
#[derive(SimpleObject)]
pub struct SessionPayload {
    /// The session as it is now.
    session: Session,
}

#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// The caller; null when the request carries no credentials.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Viewer>> {
        let actor = ctx.request()?.principal.optional_actor()?;
        Ok(actor.cloned().map(Viewer))
    }
}

#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Signs in with email and password. Any failure is the same UNAUTHENTICATED error.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> async_graphql::Result<AuthPayload> {
        let request = ctx.request()?;
        let grant = sessions::login(&request.app, &input.email, input.password, &request.client).await?;
        Ok(grant.into())
    }

    /// Exchanges a refresh token for new tokens. Reusing a spent refresh token revokes the session.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        input: RefreshSessionInput,
    ) -> async_graphql::Result<AuthPayload> {
        let request = ctx.request()?;
        let grant = sessions::refresh(&request.app, &input.refresh_token, &request.client).await?;
        Ok(grant.into())
    }

    /// Ends the session of the access token used for this request.
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<SessionPayload> {
        let actor = ctx.actor()?;
        let row = sessions::logout(ctx.app()?, actor).await?;
        Ok(SessionPayload {
            session: Session {
                row,
                current: actor.session_id,
            },
        })
    }

    /// Ends one of your sessions (administrators: anyone's).
    async fn revoke_session(
        &self,
        ctx: &Context<'_>,
        input: RevokeSessionInput,
    ) -> async_graphql::Result<SessionPayload> {
        let id = parse_id("id", &input.id)?;
        let actor = ctx.actor()?;
        let row = sessions::revoke(ctx.app()?, actor, id).await?;
        Ok(SessionPayload {
            session: Session {
                row,
                current: actor.session_id,
            },
        })
    }
}
