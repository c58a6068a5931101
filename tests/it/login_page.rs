//! The sign-in page over HTTP: its language (`?lang=`, `Accept-Language`), the setup-link variant,
//! its headers (a CSP that allows only the gateway's own script) and the script itself.
//! What the page does in a browser is `browser_passkeys.rs`.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use crate::email::assert_csp_clean;
use crate::support::TestApp;

async fn get(t: &TestApp, uri: &str, language: Option<&str>) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut request = Request::get(uri);
    if let Some(language) = language {
        request = request.header(header::ACCEPT_LANGUAGE, language);
    }
    let (status, headers, body) = t.send(request.body(Body::empty()).unwrap()).await;
    (status, headers, String::from_utf8(body).unwrap())
}

async fn the_login_page_is_localized_and_strict(t: TestApp) {
    let (status, headers, html) = get(&t, "/login", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_csp_clean(&html);
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    assert!(html.contains("Sign in with a passkey"), "{html}");
    assert!(
        html.contains("autocomplete=\"username webauthn\""),
        "conditional UI field: {html}"
    );
    assert!(html.contains("role=\"alert\""));
    assert!(
        !html.contains("Create your passkey"),
        "no setup without a link: {html}"
    );
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(policy.contains("connect-src 'self';"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");

    // Accept-Language by quality; ?lang= wins over it; unknown languages fall through.
    let (_, _, german) = get(&t, "/login", Some("fr;q=0.5, de-CH;q=0.9, en;q=0.1")).await;
    assert!(german.contains("<html lang=\"de\">"), "{german}");
    assert!(german.contains("Mit einem Passkey anmelden"), "{german}");
    let (_, _, french) = get(&t, "/login?lang=fr", Some("de")).await;
    assert!(french.contains("<html lang=\"fr\">"), "{french}");
    let (_, _, fallback) = get(&t, "/login?lang=xx", Some("yy, de;q=0.2")).await;
    assert!(fallback.contains("<html lang=\"de\">"), "{fallback}");

    // A setup link offers the passkey; a token that cannot be one is not put into the page.
    let (_, _, setup) = get(&t, "/login?setup=pcs_abc-DEF_123", None).await;
    assert!(setup.contains("Create your passkey"), "{setup}");
    assert!(setup.contains("data-setup-token=\"pcs_abc-DEF_123\""), "{setup}");
    let (status, _, junk) = get(&t, "/login?setup=%22%3E%3Cscript%3E", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!junk.contains("Create your passkey"), "{junk}");
    assert_csp_clean(&junk);
}

async fn the_script_and_the_graphiql_link_are_served(t: TestApp) {
    let (status, headers, script) = get(&t, "/assets/login.js", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(script.contains("startPasskeyAuthentication"), "the page script");
    assert!(!script.contains("localStorage"), "tokens stay in memory");

    let (status, _, graphiql) = get(&t, "/graphiql", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        graphiql.contains("href=\"/login\""),
        "GraphiQL links to the sign-in page"
    );
}

crate::backend_tests!(
    the_login_page_is_localized_and_strict,
    the_script_and_the_graphiql_link_are_served,
);
