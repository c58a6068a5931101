//! GraphQL types and resolvers for API keys.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::ContextExt;
use super::ids::{parse_id, to_id};
use crate::db::Timestamp;
use crate::db::models::ApiKeyRow;
use crate::identity::api_keys;

/// A long-lived credential for services: send it as `Authorization: Bearer pck_…`.
pub struct ApiKey(pub ApiKeyRow);

/// An API key (its secret is never shown after creation).
#[Object]
impl ApiKey {
    /// Stable identifier.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    /// What the key is for.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The public start of the key, to recognise it; the rest is secret.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }

    /// When the key was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at.0
    }

    /// After this instant the key is refused; null for keys that do not expire.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at.map(|at| at.0)
    }

    /// Last use, to the minute.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at.map(|at| at.0)
    }

    /// When the key was revoked; null while it works.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at.map(|at| at.0)
    }
}

/// A new API key for the caller.
#[derive(InputObject)]
pub struct CreateApiKeyInput {
    /// What the key is for (1–100 characters).
    name: String,
    /// When the key stops working; omit for a key that does not expire.
    expires_at: Option<DateTime<Utc>>,
}

/// The API key to revoke.
#[derive(InputObject)]
pub struct RevokeApiKeyInput {
    /// The key to revoke.
    id: ID,
}

/// A new API key. `secret` is shown only here, once.
#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    /// The new key's public details.
    api_key: ApiKey,
    /// The whole key. Store it now: only its hash is kept.
    secret: String,
}

/// The key revoked by `revokeApiKey`.
#[derive(SimpleObject)]
pub struct ApiKeyPayload {
    /// The key as it is now.
    api_key: ApiKey,
}

#[derive(Default)]
pub struct ApiKeyMutation;

#[Object]
impl ApiKeyMutation {
    /// Creates an API key for yourself.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> async_graphql::Result<CreateApiKeyPayload> {
        let expires_at = input.expires_at.map(Timestamp::from);
        let created = api_keys::create(ctx.app()?, ctx.actor()?, &input.name, expires_at).await?;
        Ok(CreateApiKeyPayload {
            api_key: ApiKey(created.key),
            secret: created.secret,
        })
    }

    /// Revokes an API key at once.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiKeyInput,
    ) -> async_graphql::Result<ApiKeyPayload> {
        let id = parse_id("id", &input.id)?;
        let key = api_keys::revoke(ctx.app()?, ctx.actor()?, id).await?;
        Ok(ApiKeyPayload { api_key: ApiKey(key) })
    }
}
