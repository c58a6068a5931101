//! GraphiQL, the in-browser IDE, wired for queries and subscriptions, with a link to the sign-in
//! page (where a token for the IDE's `Authorization` header comes from).

use async_graphql::http::GraphiQLSource;
use axum::response::{Html, IntoResponse, Redirect};

/// Put right after `<body>`: fixed in a corner so it does not shift GraphiQL's full-height layout.
const SIGN_IN_LINK: &str = "<body>\n    <a id=\"portcullis-sign-in\" href=\"/login\" \
    style=\"position: fixed; right: 16px; bottom: 12px; z-index: 1000; padding: 6px 12px; \
    background: #2563eb; color: #fff; border-radius: 6px; font: 600 14px sans-serif; \
    text-decoration: none;\">Sign in</a>";

pub(crate) async fn page() -> impl IntoResponse {
    let html = GraphiQLSource::build()
        .endpoint("/graphql")
        .subscription_endpoint("/graphql")
        .title("portcullis")
        .finish();
    Html(html.replacen("<body>", SIGN_IN_LINK, 1))
}

pub(crate) async fn redirect() -> impl IntoResponse {
    Redirect::temporary("/graphiql")
}
