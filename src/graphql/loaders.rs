//! Per-request DataLoaders: relations resolve in one batched statement per type, not one per row.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader, NoCache};

use crate::app::App;
use crate::db::models::{BrandingRow, OrganizationRow, RoleRow, UserRow, WebhookAttemptRow};
use crate::db::{Id, branding, invitations, organizations, roles, users};

/// Loads users by id.
pub struct UserLoader(App);

/// Loads organizations by id.
pub struct OrganizationLoader(App);

impl Loader<Id> for UserLoader {
    type Value = UserRow;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Id]) -> Result<HashMap<Id, UserRow>, Self::Error> {
        let mut conn = self.0.db.conn().await?;
        let rows = users::find_many(&mut conn, keys).await?;
        Ok(rows.into_iter().map(|row| (row.id, row)).collect())
    }
}

impl Loader<Id> for OrganizationLoader {
    type Value = OrganizationRow;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Id]) -> Result<HashMap<Id, OrganizationRow>, Self::Error> {
        let mut conn = self.0.db.conn().await?;
        let rows = organizations::find_many(&mut conn, keys).await?;
        Ok(rows.into_iter().map(|row| (row.id, row)).collect())
    }
}

/// Loads roles by id.
pub struct RoleLoader(App);

impl Loader<Id> for RoleLoader {
    type Value = RoleRow;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Id]) -> Result<HashMap<Id, RoleRow>, Self::Error> {
        let mut conn = self.0.db.conn().await?;
        let rows = roles::find_many(&mut conn, keys).await?;
        Ok(rows.into_iter().map(|row| (row.id, row)).collect())
    }
}

/// Loads the roles each invitation offers.
pub struct InvitationRolesLoader(App);

impl Loader<Id> for InvitationRolesLoader {
    type Value = Vec<RoleRow>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Id]) -> Result<HashMap<Id, Vec<RoleRow>>, Self::Error> {
        let mut conn = self.0.db.conn().await?;
        let mut offered: HashMap<Id, Vec<RoleRow>> = HashMap::new();
        for (invitation, role) in invitations::roles_of(&mut conn, keys).await? {
            offered.entry(invitation).or_default().push(role);
        }
        Ok(offered)
    }
}

/// Loads organizations' branding by organization id.
pub struct BrandingLoader(App);

impl Loader<Id> for BrandingLoader {
    type Value = BrandingRow;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Id]) -> Result<HashMap<Id, BrandingRow>, Self::Error> {
        let mut conn = self.0.db.conn().await?;
        let rows = branding::find_many(&mut conn, keys).await?;
        Ok(rows.into_iter().map(|row| (row.organization_id, row)).collect())
    }
}

/// Loads the delivery attempts of webhook messages, oldest first.
pub struct WebhookAttemptsLoader(App);

impl Loader<Id> for WebhookAttemptsLoader {
    type Value = Vec<WebhookAttemptRow>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Id]) -> Result<HashMap<Id, Vec<WebhookAttemptRow>>, Self::Error> {
        let mut by_message: HashMap<Id, Vec<WebhookAttemptRow>> = HashMap::new();
        for attempt in crate::webhooks::messages::attempts_of(&self.0, keys).await? {
            by_message.entry(attempt.message_id).or_default().push(attempt);
        }
        Ok(by_message)
    }
}

/// The loaders of one request or WebSocket connection. They batch but do not cache: a batch
/// already loads each key once, and a long-lived connection must not serve stale rows.
pub struct Loaders {
    pub users: DataLoader<UserLoader, NoCache>,
    pub organizations: DataLoader<OrganizationLoader, NoCache>,
    pub roles: DataLoader<RoleLoader, NoCache>,
    pub invitation_roles: DataLoader<InvitationRolesLoader, NoCache>,
    pub branding: DataLoader<BrandingLoader, NoCache>,
    pub webhook_attempts: DataLoader<WebhookAttemptsLoader, NoCache>,
}

impl Loaders {
    pub fn new(app: &App) -> Self {
        Self {
            users: DataLoader::new(UserLoader(app.clone()), tokio::spawn),
            organizations: DataLoader::new(OrganizationLoader(app.clone()), tokio::spawn),
            roles: DataLoader::new(RoleLoader(app.clone()), tokio::spawn),
            invitation_roles: DataLoader::new(InvitationRolesLoader(app.clone()), tokio::spawn),
            branding: DataLoader::new(BrandingLoader(app.clone()), tokio::spawn),
            webhook_attempts: DataLoader::new(WebhookAttemptsLoader(app.clone()), tokio::spawn),
        }
    }
}
