//! What every resolver can reach: the app, the caller and the client, set once per request.

use async_graphql::Context;

use crate::app::App;
use crate::error::{Error, Result};
use crate::identity::{Actor, ClientInfo, Principal};

/// Per-request (or per-WebSocket-connection) data.
#[derive(Clone)]
pub struct RequestContext {
    pub app: App,
    pub principal: Principal,
    pub client: ClientInfo,
}

/// Typed access to [`RequestContext`] from an async-graphql [`Context`].
pub(crate) trait ContextExt {
    fn request(&self) -> Result<&RequestContext>;

    fn app(&self) -> Result<&App> {
        Ok(&self.request()?.app)
    }

    /// The authenticated caller, or UNAUTHENTICATED.
    fn actor(&self) -> Result<&Actor> {
        self.request()?.principal.actor()
    }
}

impl ContextExt for Context<'_> {
    fn request(&self) -> Result<&RequestContext> {
        self.data::<RequestContext>()
            .map_err(|_| Error::internal(anyhow::anyhow!("request context missing")))
    }
}
