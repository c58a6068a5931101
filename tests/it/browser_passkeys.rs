//! Passkeys in a real browser: headless Chromium with a virtual authenticator (CDP), driven by
//! playwright-core (`tests/browser/passkeys.mjs`), on the gateway served at `http://localhost:<port>`
//! — a setup link's first passkey, usernameless sign-in, a bad signature refused, the password
//! form, and an invitation accepted with a passkey only. What the page showed is judged here; the
//! accounts are then checked through the API.

use serde_json::{Value, json};

use crate::browser::{Served, assert_clean, drive};
use crate::invitations::{PATIENCE, token_in};
use crate::smtp::SmtpSink;
use crate::support::{PASSWORD, TestApp};

const SIGNED_IN_AS_PIA: &str = "Signed in as pia@example.com.";

/// Asserts the step's page: loaded cleanly, shows `shown`, raised no alert (or the given one),
/// and put nothing into web storage or cookies.
fn assert_step(step: &Value, what: &str, shown: &str, alert: Option<&str>) {
    assert_clean(step, 200, what);
    let text = step["bodyText"].as_str().expect("bodyText");
    assert!(
        text.contains(shown),
        "{what}: the page shows {shown:?}:\n{step:#}"
    );
    assert_eq!(step["alert"].as_str(), alert, "{what}: the alert:\n{step:#}");
    assert_eq!(
        step["storage"],
        json!({ "local": 0, "session": 0, "cookie": "" }),
        "{what}: nothing stored"
    );
}

fn sent(step: &Value, operation: &str) -> bool {
    step["operations"]
        .as_array()
        .is_some_and(|sent| sent.iter().any(|name| name == operation))
}

async fn passkeys_in_chromium(t: TestApp) {
    let sink = SmtpSink::start();
    let served = Served::start_on_localhost(&t, &sink).await;
    // Through the served instance: its answers (the setup link's URL) name its public URL.
    let api = &served.api;
    let admin = api.admin_token().await;

    // a. An account without a password, and a setup link for it.
    let (_, link) = crate::passkeys::passwordless_with_link(api, &admin, "pia@example.com", "Pia").await;
    let setup_url = link["url"].as_str().expect("a url").to_owned();
    assert!(
        setup_url.starts_with(&format!("{}/login?setup=pcs_", served.base)),
        "{setup_url}"
    );

    // The password form's account.
    api.create_user(&admin, "pat@example.com").await;

    // d. An invitation, its token from the email.
    let org = api.create_organization(&admin, "keys").await;
    let role = api.builtin_role(&admin, "org_admin").await;
    api.gql(
        Some(&admin),
        "mutation($o: ID!, $r: ID!) { createInvitation(input: {organizationId: $o, email: \"ines@example.com\", roleIds: [$r]}) { invitation { id } } }",
        json!({ "o": org, "r": role }),
    )
    .await
    .data();
    let mail = sink.wait_for(1, PATIENCE).await;
    assert_eq!(mail.len(), 1, "the invitation was mailed");
    let accept_url = format!("{}/invitations/accept?token={}", served.base, token_in(&mail[0]));

    let seen = drive(
        "passkeys.mjs",
        json!({
            "base": served.base,
            "setupUrl": setup_url,
            "acceptUrl": accept_url,
            "displayName": "Ines",
            "passwordEmail": "pat@example.com",
            "password": PASSWORD,
        }),
    )
    .await;
    assert_eq!(
        seen["error"],
        Value::Null,
        "the browser got through every step: {seen:#}"
    );

    // a. The setup link: the button, a passkey in the authenticator, signed in.
    assert_step(
        &seen["setupOpened"],
        "the setup page",
        "Create your passkey",
        None,
    );
    let setup = &seen["setup"];
    assert_step(setup, "after the setup", SIGNED_IN_AS_PIA, None);
    assert!(sent(setup, "finishPasskeyRegistration"), "{setup:#}");
    assert!(
        !setup["url"].as_str().unwrap_or_default().contains("setup="),
        "the spent link leaves the address bar: {setup:#}"
    );
    let held = seen["credentialsAfterSetup"].as_array().expect("credentials");
    assert_eq!(held.len(), 1, "one passkey in the authenticator: {held:?}");
    assert_eq!(held[0]["rpId"], "localhost");
    assert_eq!(held[0]["isResidentCredential"], true, "discoverable");

    // b. Usernameless: no email typed, the passkey names the account — by the button, and by the
    // browser's autofill where it has one.
    let sign_in = &seen["signIn"];
    assert_step(sign_in, "the passkey sign-in", SIGNED_IN_AS_PIA, None);
    assert!(sent(sign_in, "finishPasskeyAuthentication"), "{sign_in:#}");
    assert_eq!(seen["conditionalMediation"], true, "Chromium offers autofill");
    let autofill = &seen["autofill"];
    assert_step(autofill, "the autofill sign-in", SIGNED_IN_AS_PIA, None);
    assert!(sent(autofill, "finishPasskeyAuthentication"), "{autofill:#}");

    // c. A bad signature: refused, and the page says so (and stays signed out).
    let bogus = &seen["bogus"];
    assert_step(
        bogus,
        "the bogus signature",
        "Sign in with a passkey",
        Some("The passkey sign-in failed."),
    );
    assert!(
        sent(bogus, "finishPasskeyAuthentication"),
        "the gateway judged it: {bogus:#}"
    );
    assert!(
        !bogus["bodyText"]
            .as_str()
            .unwrap_or_default()
            .contains("Signed in")
    );

    // The password form: a wrong password is told apart from a right one.
    assert_step(
        &seen["wrongPassword"],
        "a wrong password",
        "Sign in with a password",
        Some("That email and password do not match."),
    );
    assert_step(
        &seen["password"],
        "the password",
        "Signed in as pat@example.com.",
        None,
    );

    // d. The invitation: the passkey option, then the accepted state without a reload.
    let opened = &seen["invitationOpened"];
    assert_step(
        opened,
        "the accept page",
        "Create a passkey instead of a password",
        None,
    );
    let accepted = &seen["invitation"];
    assert_step(
        accepted,
        "the accepted invitation",
        "You are now a member of keys.",
        None,
    );
    assert!(sent(accepted, "acceptInvitation"), "{accepted:#}");
    assert!(
        !accepted["bodyText"]
            .as_str()
            .unwrap_or_default()
            .contains("Create your account"),
        "the forms are gone: {accepted:#}"
    );
    assert_eq!(
        seen["credentialsAfterInvitation"].as_array().map(Vec::len),
        Some(2)
    );

    // Seen from the API: both accounts have no password and one passkey; Ines is a member.
    let users = "query($o: ID!) {
        users(first: 50) { nodes { email hasPassword passkeys { totalCount } } }
        organization(id: $o) { members { nodes { user { email } } } } }";
    let answer = api.gql(Some(&admin), users, json!({ "o": org })).await;
    let listed = answer.data()["users"]["nodes"].as_array().expect("users");
    for email in ["pia@example.com", "ines@example.com"] {
        let user = listed
            .iter()
            .find(|user| user["email"] == email)
            .unwrap_or_else(|| panic!("{email} exists: {listed:#?}"));
        assert_eq!(user["hasPassword"], false, "{email}");
        assert_eq!(user["passkeys"]["totalCount"], 1, "{email}");
    }
    let members = &answer.data()["organization"]["members"]["nodes"];
    assert!(
        members
            .as_array()
            .expect("members")
            .iter()
            .any(|member| member["user"]["email"] == "ines@example.com"),
        "Ines is a member: {members:#}"
    );

    served.stop().await;
}

crate::backend_tests!(passkeys_in_chromium);
