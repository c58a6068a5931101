//! The invitation accept page (`/invitations/accept`): server-rendered forms for the link in the
//! email, in the invitation's language and the organization's branding.
//!
//! The forms need no script; for a new account, `/assets/login.js` adds the choice of a passkey
//! instead of a password (`startInvitationPasskey`, then `acceptInvitation` over `/graphql`).
//! Styles come from one stylesheet plus a nonce'd block for the brand color, so a strict
//! Content-Security-Policy holds. Forms are CSRF-safe by a double-submit token: a random
//! value in a `SameSite=Strict` cookie that the form must echo. The token in the URL never leaves
//! the page (`Referrer-Policy: no-referrer`) and the page is never cached.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::HttpState;
use super::page_response::{html_response, random};
use super::principal::client_info;
use crate::app::App;
use crate::error::Error;
use crate::identity::secrets;
use crate::identity::sessions::check_password;
use crate::identity::{Actor, AuthMethod, ClientInfo, Mfa};
use crate::invitations::accept::{Acceptance, accept};
use crate::invitations::manage::{Preview, preview};
use crate::pages::{self, AcceptState, AcceptView, PageError};

const CSRF_COOKIE: &str = "portcullis_csrf";

#[derive(Deserialize)]
pub(crate) struct Link {
    #[serde(default)]
    token: String,
}

/// What the page's forms post.
#[derive(Deserialize)]
pub(crate) struct Submission {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    intent: String,
    display_name: Option<String>,
    #[serde(default)]
    password: String,
    password_confirm: Option<String>,
}

/// `GET /invitations/accept?token=…`
pub(crate) async fn show(State(state): State<HttpState>, parts: Parts, Query(link): Query<Link>) -> Response {
    let app = state.app;
    let client = client_info(&parts, &app.config);
    match preview(&app, &link.token, &client).await {
        Ok(found) => {
            let state = if found.account_exists {
                AcceptState::ExistingAccount
            } else {
                AcceptState::NewAccount
            };
            page(&app, &found, &link.token, state, None)
        }
        Err(_) => unavailable(None),
    }
}

/// `POST /invitations/accept`
pub(crate) async fn submit(
    State(state): State<HttpState>,
    parts: Parts,
    Form(form): Form<Submission>,
) -> Response {
    let app = state.app;
    let client = client_info(&parts, &app.config);
    let Ok(found) = preview(&app, &form.token, &client).await else {
        return unavailable(None);
    };
    let fresh_state = if found.account_exists {
        AcceptState::ExistingAccount
    } else {
        AcceptState::NewAccount
    };
    if !csrf_matches(&parts.headers, &form.csrf_token) {
        let expired = PageError::Other("The form expired. Please submit it again.".to_owned());
        return page(&app, &found, &form.token, fresh_state, Some(expired));
    }
    let outcome = match form.intent.as_str() {
        "sign_in" => sign_in_and_accept(&app, &found, &form, &client).await,
        _ => {
            if form
                .password_confirm
                .as_ref()
                .is_some_and(|confirm| *confirm != form.password)
            {
                let mismatch = PageError::Other("The passwords do not match.".to_owned());
                return page(&app, &found, &form.token, AcceptState::NewAccount, Some(mismatch));
            }
            let acceptance = Acceptance {
                token: form.token.clone(),
                password: Some(form.password.clone()),
                display_name: form.display_name.clone(),
                passkey: None,
            };
            accept(&app, None, acceptance, &client).await.map(|_| ())
        }
    };
    match outcome {
        Ok(()) => page(&app, &found, "", AcceptState::Accepted, None),
        Err(Error::NotFound(_)) => unavailable(found.invitation.locale.as_deref()),
        Err(Error::Unauthenticated(_)) if form.intent == "sign_in" => page(
            &app,
            &found,
            &form.token,
            AcceptState::ExistingAccount,
            Some(PageError::WrongPassword),
        ),
        Err(Error::Unauthenticated(_)) => page(&app, &found, &form.token, AcceptState::ExistingAccount, None),
        Err(Error::RateLimited { .. }) => page(
            &app,
            &found,
            &form.token,
            fresh_state,
            Some(PageError::RateLimited),
        ),
        Err(Error::BadUserInput { field, message }) => {
            let error = match field.as_str() {
                "password" => PageError::PasswordTooShort,
                "displayName" => PageError::DisplayNameInvalid,
                _ => PageError::Other(message),
            };
            page(&app, &found, &form.token, fresh_state, Some(error))
        }
        Err(other) => {
            if let Error::Internal(source) = &other {
                tracing::error!(error = ?source, "accepting an invitation failed");
            }
            page(
                &app,
                &found,
                &form.token,
                fresh_state,
                Some(PageError::Other(other.message())),
            )
        }
    }
}

/// The existing account's password proves who accepts (rate limited and audited like a login).
async fn sign_in_and_accept(
    app: &App,
    found: &Preview,
    form: &Submission,
    client: &ClientInfo,
) -> crate::error::Result<()> {
    let user = check_password(app, &found.invitation.email, form.password.clone(), client).await?;
    let actor = Actor {
        user,
        method: AuthMethod::Password,
        session_id: None,
        api_key_id: None,
        mfa: Mfa::default(),
        client: client.clone(),
    };
    let acceptance = Acceptance {
        token: form.token.clone(),
        password: None,
        display_name: None,
        passkey: None,
    };
    accept(app, Some(&actor), acceptance, client).await.map(|_| ())
}

fn page(app: &App, found: &Preview, token: &str, state: AcceptState, error: Option<PageError>) -> Response {
    let (Ok(csrf), Ok(nonce)) = (random(), random()) else {
        return unavailable(None);
    };
    let view = AcceptView {
        locale: found.invitation.locale.clone(),
        branding: found.branding.clone(),
        organization_name: found
            .branding
            .display_name
            .clone()
            .unwrap_or_else(|| found.organization.name.clone()),
        inviter_name: found
            .inviter_name
            .clone()
            .unwrap_or_else(|| found.organization.name.clone()),
        roles: found.roles.iter().map(|role| role.name.clone()).collect(),
        masked_email: found.masked_email.clone(),
        expires_at: found.invitation.expires_at,
        token: token.to_owned(),
        csrf_token: csrf.clone(),
        style_nonce: nonce.clone(),
        state,
        error,
    };
    match pages::render_accept(&view) {
        Ok(html) => {
            let secure = if app.config.public_url().starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            let cookie =
                format!("{CSRF_COOKIE}={csrf}; Path=/invitations; HttpOnly; SameSite=Strict{secure}");
            let mut response = html_response(StatusCode::OK, html, &nonce);
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(SET_COOKIE, value);
            }
            response
        }
        Err(error) => {
            tracing::error!(error = ?error, "rendering the accept page failed");
            unavailable(None)
        }
    }
}

fn unavailable(locale: Option<&str>) -> Response {
    let nonce = random().unwrap_or_default();
    match pages::render_unavailable(locale, &nonce) {
        Ok(html) => html_response(StatusCode::NOT_FOUND, html, &nonce),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// True when the form echoes the CSRF cookie this page set.
fn csrf_matches(headers: &HeaderMap, submitted: &str) -> bool {
    let cookie = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(name, value)| (name == CSRF_COOKIE).then_some(value));
    match cookie {
        Some(cookie) if !submitted.is_empty() => {
            secrets::hashes_match(cookie.as_bytes(), submitted.as_bytes())
        }
        _ => false,
    }
}
