//! The GraphQL API: schema assembly and per-request data. Resolvers live one file per domain.

mod api_keys;
mod audit;
mod audit_lifecycle;
mod audit_stats;
mod authorize;
mod branding;
mod context;
mod email_deliveries;
mod ids;
mod invitations;
mod limits;
mod loaders;
mod organizations;
mod pagination;
mod passkeys;
mod policies;
mod roles;
mod sessions;
mod subscription;
mod users;
mod webhooks;

use async_graphql::{Data, MergedObject, Schema};

pub use context::RequestContext;
pub use limits::{Cost, MAX_ALIASES, MAX_COMPLEXITY, MAX_DEPTH, batch_cost};
pub use loaders::Loaders;
pub use pagination::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// Queries.
#[derive(MergedObject, Default)]
pub struct Query(
    users::UserQuery,
    organizations::OrganizationQuery,
    sessions::SessionQuery,
    policies::PolicyQuery,
    roles::RoleQuery,
    authorize::AuthorizeQuery,
    audit::AuditQuery,
    audit_stats::AuditStatsQuery,
    invitations::InvitationQuery,
    email_deliveries::EmailDeliveryQuery,
    webhooks::WebhookQuery,
);

/// Mutations.
#[derive(MergedObject, Default)]
pub struct Mutation(
    users::UserMutation,
    organizations::OrganizationMutation,
    sessions::SessionMutation,
    api_keys::ApiKeyMutation,
    policies::PolicyMutation,
    roles::RoleMutation,
    audit::AuditMutation,
    audit_lifecycle::AuditLifecycleMutation,
    invitations::InvitationMutation,
    branding::BrandingMutation,
    email_deliveries::EmailDeliveryMutation,
    webhooks::WebhookMutation,
    passkeys::PasskeyMutation,
);

pub type GatewaySchema = Schema<Query, Mutation, subscription::Subscription>;

/// Builds the schema. It holds no per-request state: callers attach [`request_data`].
pub fn schema() -> GatewaySchema {
    Schema::build(
        Query::default(),
        Mutation::default(),
        subscription::Subscription::default(),
    )
    // Depth, complexity and aliases are checked by the extension, which also counts them over
    // a whole batch and says what the limits are.
    .extension(limits::RequestLimits)
    .finish()
}

/// The SDL of the schema, as written to `schema.graphql`.
pub fn sdl() -> String {
    schema().sdl()
}

/// The data one request (or one WebSocket connection) runs with.
pub fn request_data(context: RequestContext) -> Data {
    let mut data = Data::default();
    data.insert(Loaders::new(&context.app));
    data.insert(context);
    data
}
