//! GraphiQL, the in-browser IDE, wired for queries and subscriptions.

use async_graphql::http::GraphiQLSource;
use axum::response::{Html, IntoResponse, Redirect};

pub(crate) async fn page() -> impl IntoResponse {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql")
            .title("portcullis")
            .finish(),
    )
}

pub(crate) async fn redirect() -> impl IntoResponse {
    Redirect::temporary("/graphiql")
}
