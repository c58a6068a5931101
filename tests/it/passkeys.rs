//! Passkeys end to end through the GraphQL API, with a software authenticator standing in for the
//! browser: registration, sign-in with and without an email, replayed and expired ceremonies, the
//! wrong origin, bogus signatures, missing flags, counter regression, step-up to MFA, setup links,
//! the last-credential rule and joining from an invitation with a passkey — on both backends.

use std::time::Duration;

use chrono::TimeDelta;
use serde_json::{Value, json};

use crate::invitations::{PATIENCE, mailing_instance, token_in};
use crate::smtp::SmtpSink;
use crate::soft_authenticator::{SOFT_AAGUID, SoftAuthenticator};
use crate::support::{ADMIN_EMAIL, PASSKEY_ORIGIN, PASSWORD, TestApp};

pub(crate) const START_REGISTRATION: &str = "mutation($name: String!) { startPasskeyRegistration(input: {name: $name, authenticatorAttachment: PLATFORM}) { ceremonyId options expiresAt } }";
pub(crate) const FINISH_REGISTRATION: &str = "mutation($id: ID!, $c: JSON!) { finishPasskeyRegistration(input: {ceremonyId: $id, credential: $c}) { passkey { id name } session { accessToken user { email } session { authMethod } } } }";
const START_SIGN_IN: &str =
    "mutation($email: String) { startPasskeyAuthentication(input: {email: $email}) { ceremonyId options } }";
const FINISH_SIGN_IN: &str = "mutation($id: ID!, $c: JSON!) { finishPasskeyAuthentication(input: {ceremonyId: $id, credential: $c}) { accessToken refreshToken user { email } session { authMethod mfaVerifiedAt mfaExpiresAt } } }";
const PASSKEYS: &str = "{ viewer { authMethod mfa passkeys { totalCount nodes { id name authenticatorAttachment transports aaguid backupEligible backedUp createdAt lastUsedAt credentialId } } } }";
const START_STEP_UP: &str = "mutation { startStepUp { ceremonyId options } }";
const FINISH_STEP_UP: &str = "mutation($id: ID!, $c: JSON!) { finishStepUp(input: {ceremonyId: $id, credential: $c}) { session { mfaVerifiedAt mfaExpiresAt current } } }";

/// A fresh software authenticator at the origin the tests' gateway accepts.
pub(crate) fn authenticator() -> SoftAuthenticator {
    SoftAuthenticator::new(PASSKEY_ORIGIN)
}

/// Starts a registration for the holder of `token`, answers it with `soft` and finishes it.
pub(crate) async fn try_register(
    t: &TestApp,
    token: &str,
    soft: &mut SoftAuthenticator,
    name: &str,
) -> crate::support::Gql {
    let started = t
        .gql(Some(token), START_REGISTRATION, json!({ "name": name }))
        .await;
    let started = &started.data()["startPasskeyRegistration"];
    let response = soft
        .register(&started["options"])
        .expect("the authenticator registers");
    t.gql(
        Some(token),
        FINISH_REGISTRATION,
        json!({ "id": started["ceremonyId"], "c": response }),
    )
    .await
}

/// Registers a passkey for the holder of `token` with `soft`; returns the passkey's id.
pub(crate) async fn register_passkey(
    t: &TestApp,
    token: &str,
    soft: &mut SoftAuthenticator,
    name: &str,
) -> String {
    let finished = try_register(t, token, soft, name).await;
    finished.data()["finishPasskeyRegistration"]["passkey"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An account without a password (as `admin` creates it) and a setup link for it: the account's
/// id and the link's `{url token expiresAt}`.
pub(crate) async fn passwordless_with_link(
    t: &TestApp,
    admin: &str,
    email: &str,
    name: &str,
) -> (String, Value) {
    let created = t
        .gql(
            Some(admin),
            "mutation($e: String!, $n: String!) { createUser(input: {email: $e, displayName: $n}) { user { id hasPassword } } }",
            json!({ "e": email, "n": name }),
        )
        .await;
    let user = &created.data()["createUser"]["user"];
    assert_eq!(user["hasPassword"], false);
    let id = user["id"].as_str().unwrap().to_owned();
    let link = t
        .gql(
            Some(admin),
            "mutation($u: ID!) { createPasskeySetupLink(input: {userId: $u}) { url token expiresAt } }",
            json!({ "u": id }),
        )
        .await;
    let link = link.data()["createPasskeySetupLink"].clone();
    (id, link)
}

/// Starts a sign-in (for `email`, or usernameless) and answers it with `soft`.
async fn sign_in(t: &TestApp, email: Option<&str>, soft: &mut SoftAuthenticator) -> crate::support::Gql {
    let (ceremony, response) = answer_sign_in(t, email, soft).await;
    t.gql(None, FINISH_SIGN_IN, json!({ "id": ceremony, "c": response }))
        .await
}

async fn answer_sign_in(t: &TestApp, email: Option<&str>, soft: &mut SoftAuthenticator) -> (Value, Value) {
    let started = t.gql(None, START_SIGN_IN, json!({ "email": email })).await;
    let started = &started.data()["startPasskeyAuthentication"];
    let response = soft
        .authenticate(&started["options"])
        .expect("the authenticator signs");
    (started["ceremonyId"].clone(), response)
}

/// The newest audit events of `action`, as the administrator sees them.
async fn events(t: &TestApp, admin: &str, action: &str) -> Vec<Value> {
    let found = t
        .gql(
            Some(admin),
            "query($a: [String!]) { auditEvents(filter: {actions: $a}) { nodes { action outcome metadata actor { id } targets { type id } } } }",
            json!({ "a": [action] }),
        )
        .await;
    found.data()["auditEvents"]["nodes"].as_array().unwrap().clone()
}

async fn register_then_sign_in_with_and_without_an_email(t: TestApp) {
    let admin = t.admin_token().await;
    let (user_id, token) = t.user_with_token(&admin, "pat@example.com").await;
    let mut soft = authenticator();

    let started = t
        .gql(Some(&token), START_REGISTRATION, json!({ "name": "Laptop" }))
        .await;
    let options = &started.data()["startPasskeyRegistration"]["options"];
    assert_eq!(options["rp"]["id"], "localhost");
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(options["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(
        options["authenticatorSelection"]["authenticatorAttachment"],
        "platform"
    );
    assert_eq!(options["user"]["name"], "pat@example.com");
    assert!(
        !options.to_string().contains("null"),
        "standard JSON for parseCreationOptionsFromJSON: {options}"
    );
    let ceremony = started.data()["startPasskeyRegistration"]["ceremonyId"].clone();
    let response = soft.register(options).unwrap();
    let finished = t
        .gql(
            Some(&token),
            FINISH_REGISTRATION,
            json!({ "id": ceremony, "c": response }),
        )
        .await;
    assert_eq!(
        finished.data()["finishPasskeyRegistration"]["passkey"]["name"],
        "Laptop"
    );
    assert!(finished.data()["finishPasskeyRegistration"]["session"].is_null());

    let listed = t.gql(Some(&token), PASSKEYS, json!({})).await;
    let viewer = &listed.data()["viewer"];
    assert_eq!(viewer["authMethod"], "PASSWORD");
    assert_eq!(viewer["mfa"], false);
    let passkey = &viewer["passkeys"]["nodes"][0];
    assert_eq!(viewer["passkeys"]["totalCount"], 1);
    assert_eq!(passkey["authenticatorAttachment"], "PLATFORM");
    assert_eq!(passkey["transports"], json!(["internal"]));
    assert_eq!(passkey["aaguid"], uuid::Uuid::from_bytes(SOFT_AAGUID).to_string());
    assert_eq!(passkey["backupEligible"], false);
    assert!(passkey["lastUsedAt"].is_null());

    // A second passkey takes a second factor: the password session alone may not add one.
    let again = t
        .gql(Some(&token), START_REGISTRATION, json!({ "name": "Again" }))
        .await;
    assert_eq!(again.code(), "MFA_REQUIRED");

    // With an email: the account's passkeys are offered.
    let (ceremony, response) = answer_sign_in(&t, Some("PAT@example.com"), &mut soft).await;
    let signed_in = t
        .gql(None, FINISH_SIGN_IN, json!({ "id": ceremony, "c": response }))
        .await;
    let signed_in = &signed_in.data()["finishPasskeyAuthentication"];
    assert_eq!(signed_in["user"]["email"], "pat@example.com");
    assert_eq!(signed_in["session"]["authMethod"], "passkey");
    assert!(signed_in["session"]["mfaVerifiedAt"].is_string());
    let passkey_token = signed_in["accessToken"].as_str().unwrap().to_owned();
    let me = t.gql(Some(&passkey_token), PASSKEYS, json!({})).await;
    assert_eq!(me.data()["viewer"]["authMethod"], "PASSKEY");
    assert_eq!(me.data()["viewer"]["mfa"], true);
    assert!(me.data()["viewer"]["passkeys"]["nodes"][0]["lastUsedAt"].is_string());

    // Registering the same authenticator again: the browser is told to exclude it.
    let again = t
        .gql(
            Some(&passkey_token),
            START_REGISTRATION,
            json!({ "name": "Again" }),
        )
        .await;
    let excluded = &again.data()["startPasskeyRegistration"]["options"]["excludeCredentials"];
    assert_eq!(excluded[0]["id"], passkey["credentialId"]);
    assert!(
        soft.register(&again.data()["startPasskeyRegistration"]["options"])
            .is_err()
    );

    // Usernameless: the discoverable credential names its account.
    let started = t.gql(None, START_SIGN_IN, json!({})).await;
    assert_eq!(
        started.data()["startPasskeyAuthentication"]["options"]["allowCredentials"],
        json!([])
    );
    let options = started.data()["startPasskeyAuthentication"]["options"].to_string();
    assert!(!options.contains("null"), "{options}");
    let usernameless = sign_in(&t, None, &mut soft).await;
    assert_eq!(
        usernameless.data()["finishPasskeyAuthentication"]["user"]["email"],
        "pat@example.com"
    );
    // The refresh token of a passkey session works like any other.
    let refresh = usernameless.data()["finishPasskeyAuthentication"]["refreshToken"].clone();
    let refreshed = t
        .gql(
            None,
            "mutation($r: String!) { refreshSession(input: {refreshToken: $r}) { session { authMethod } } }",
            json!({ "r": refresh }),
        )
        .await;
    assert_eq!(
        refreshed.data()["refreshSession"]["session"]["authMethod"],
        "passkey"
    );

    let logins = events(&t, &admin, "session.login_succeeded").await;
    let by_passkey = logins
        .iter()
        .filter(|e| e["metadata"]["authMethod"] == "passkey" && e["actor"]["id"] == user_id.as_str())
        .count();
    assert_eq!(by_passkey, 2, "{logins:?}");
    let registered = events(&t, &admin, "passkey.registered").await;
    assert_eq!(registered.len(), 1);
}

async fn replayed_expired_and_foreign_ceremonies_are_refused(t: TestApp) {
    let admin = t.admin_token().await;
    let (_, token) = t.user_with_token(&admin, "rita@example.com").await;
    let (_, other_token) = t.user_with_token(&admin, "otto@example.com").await;
    let mut soft = authenticator();
    register_passkey(&t, &token, &mut soft, "Key").await;

    // A replayed sign-in response: the ceremony was taken by the first.
    let (ceremony, response) = answer_sign_in(&t, Some("rita@example.com"), &mut soft).await;
    let first = t
        .gql(None, FINISH_SIGN_IN, json!({ "id": ceremony, "c": response }))
        .await;
    assert!(first.data()["finishPasskeyAuthentication"]["accessToken"].is_string());
    let passkey_token = first.data()["finishPasskeyAuthentication"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let replay = t
        .gql(None, FINISH_SIGN_IN, json!({ "id": ceremony, "c": response }))
        .await;
    assert_eq!(replay.code(), "UNAUTHENTICATED");

    // An answer to another ceremony's challenge.
    let (_, stale) = answer_sign_in(&t, Some("rita@example.com"), &mut soft).await;
    let (fresh, _) = answer_sign_in(&t, Some("rita@example.com"), &mut soft).await;
    let crossed = t
        .gql(None, FINISH_SIGN_IN, json!({ "id": fresh, "c": stale }))
        .await;
    assert_eq!(crossed.code(), "UNAUTHENTICATED");

    // An expired ceremony (five minutes).
    let (ceremony, response) = answer_sign_in(&t, None, &mut soft).await;
    t.clock.advance(TimeDelta::minutes(6));
    let late = t
        .gql(None, FINISH_SIGN_IN, json!({ "id": ceremony, "c": response }))
        .await;
    assert_eq!(late.code(), "UNAUTHENTICATED");

    // A registration replayed, and one finished by someone else.
    let started = t
        .gql(
            Some(&passkey_token),
            START_REGISTRATION,
            json!({ "name": "Second" }),
        )
        .await;
    let started = &started.data()["startPasskeyRegistration"];
    let mut second = authenticator();
    let response = second.register(&started["options"]).unwrap();
    let by_other = t
        .gql(
            Some(&other_token),
            FINISH_REGISTRATION,
            json!({ "id": started["ceremonyId"], "c": response }),
        )
        .await;
    assert_eq!(by_other.code(), "BAD_USER_INPUT");
    assert_eq!(by_other.field(), "ceremonyId");
    let replayed = t
        .gql(
            Some(&passkey_token),
            FINISH_REGISTRATION,
            json!({ "id": started["ceremonyId"], "c": response }),
        )
        .await;
    assert_eq!(replayed.code(), "BAD_USER_INPUT", "the ceremony was spent");
    let listed = t.gql(Some(&passkey_token), PASSKEYS, json!({})).await;
    assert_eq!(
        listed.data()["viewer"]["passkeys"]["totalCount"],
        1,
        "nothing stored"
    );

    // Malformed and truncated credential JSON.
    let started = t
        .gql(
            Some(&passkey_token),
            START_REGISTRATION,
            json!({ "name": "Third" }),
        )
        .await;
    let ceremony = started.data()["startPasskeyRegistration"]["ceremonyId"].clone();
    let malformed = t
        .gql(
            Some(&passkey_token),
            FINISH_REGISTRATION,
            json!({ "id": ceremony, "c": { "id": "x", "type": "public-key" } }),
        )
        .await;
    assert_eq!(malformed.code(), "BAD_USER_INPUT");
    assert_eq!(malformed.field(), "credential");
    let failures = events(&t, &admin, "passkey.registration_failed").await;
    assert!(failures.len() >= 3, "{failures:?}");
}

async fn bad_responses_are_refused_and_audited(t: TestApp) {
    let admin = t.admin_token().await;
    let (_, token) = t.user_with_token(&admin, "sam@example.com").await;

    // Wrong origin, no user verification, an attestation format this gateway does not know, and
    // one whose statement is missing: each refused, naming the credential, with the reason.
    let mut evil = authenticator();
    evil.origin = "https://evil.example".to_owned();
    let mut lazy = authenticator();
    lazy.user_verified = false;
    let mut unknown_format = authenticator();
    unknown_format.attestation_format = "android-bogus".to_owned();
    let mut empty_statement = authenticator();
    empty_statement.attestation_format = "packed".to_owned();
    for (mut soft, says) in [
        (evil, "origin"),
        (lazy, "verify the user"),
        (unknown_format, "attestation"),
        (empty_statement, ""),
    ] {
        let refused = try_register(&t, &token, &mut soft, "Refused").await;
        assert_eq!(refused.code(), "BAD_USER_INPUT", "{says}");
        assert_eq!(refused.field(), "credential", "{says}");
        assert!(refused.message().contains(says), "{}", refused.message());
    }
    let listed = t.gql(Some(&token), PASSKEYS, json!({})).await;
    assert_eq!(
        listed.data()["viewer"]["passkeys"]["totalCount"],
        0,
        "nothing stored"
    );

    let mut soft = authenticator();
    register_passkey(&t, &token, &mut soft, "Good").await;
    for (knob, reason) in [
        ("signature", "bad_signature"),
        ("uv", "user_not_verified"),
        ("up", "user_not_present"),
        ("origin", "wrong_origin"),
        ("rp", "wrong_rp_id"),
    ] {
        let mut bent = authenticator();
        std::mem::swap(&mut bent, &mut soft);
        match knob {
            "signature" => bent.corrupt_signature = true,
            "uv" => bent.user_verified = false,
            "up" => bent.user_present = false,
            "origin" => bent.origin = "http://localhost:9999".to_owned(),
            _ => bent.rp_id_override = Some("example.org".to_owned()),
        }
        let refused = sign_in(&t, Some("sam@example.com"), &mut bent).await;
        assert_eq!(refused.code(), "UNAUTHENTICATED", "{knob}");
        assert_eq!(refused.message(), "the passkey sign-in failed");
        bent.corrupt_signature = false;
        bent.user_verified = true;
        bent.user_present = true;
        bent.origin = PASSKEY_ORIGIN.to_owned();
        bent.rp_id_override = None;
        std::mem::swap(&mut bent, &mut soft);
        let failed = events(&t, &admin, "session.login_failed").await;
        assert_eq!(failed[0]["metadata"]["reason"], reason, "{knob}");
        assert_eq!(failed[0]["metadata"]["authMethod"], "passkey");
    }
    let fine = sign_in(&t, Some("sam@example.com"), &mut soft).await;
    assert!(fine.data()["finishPasskeyAuthentication"]["accessToken"].is_string());

    // An email without an account gets options shaped like a real one, and no way through.
    let started = t
        .gql(None, START_SIGN_IN, json!({ "email": "nobody@example.com" }))
        .await;
    let offered = &started.data()["startPasskeyAuthentication"]["options"]["allowCredentials"];
    assert!(!offered.as_array().unwrap().is_empty(), "{offered}");
    let again = t
        .gql(None, START_SIGN_IN, json!({ "email": "nobody@example.com" }))
        .await;
    assert_eq!(
        &again.data()["startPasskeyAuthentication"]["options"]["allowCredentials"],
        offered,
        "the same made-up credentials every time"
    );
}

async fn a_counter_that_goes_backwards_is_refused_and_recorded(t: TestApp) {
    let admin = t.admin_token().await;
    let (_, token) = t.user_with_token(&admin, "cleo@example.com").await;
    let mut soft = authenticator();
    let passkey = register_passkey(&t, &token, &mut soft, "Cloned").await;
    for _ in 0..3 {
        let ok = sign_in(&t, Some("cleo@example.com"), &mut soft).await;
        assert!(ok.data()["finishPasskeyAuthentication"]["accessToken"].is_string());
    }
    soft.credentials_mut()[0].counter = 1; // a clone that last signed long ago
    let cloned = sign_in(&t, None, &mut soft).await;
    assert_eq!(cloned.code(), "UNAUTHENTICATED");
    let regressed = events(&t, &admin, "passkey.counter_regressed").await;
    assert_eq!(regressed.len(), 1);
    assert_eq!(regressed[0]["outcome"], "FAILURE");
    assert!(
        regressed[0]["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|target| target["id"] == passkey.as_str())
    );
}

async fn step_up_turns_mfa_required_into_success(t: TestApp) {
    let admin = t.admin_token().await;
    t.create_user(&admin, "mia@example.com").await;
    let login = t.login("mia@example.com", PASSWORD).await;
    let token = login["accessToken"].as_str().unwrap().to_owned();
    let policy = t
        .gql(
            Some(&admin),
            "mutation($s: String!) { createPolicy(input: {name: \"keys need mfa\", source: $s}) { policy { id } } }",
            json!({ "s": "forbid (principal, action == Portcullis::Action::\"api_key.create\", resource) unless { context.mfa };" }),
        )
        .await;
    policy.data();
    let create_key = "mutation { createApiKey(input: {name: \"ci\"}) { apiKey { id } } }";

    // Without a passkey there is nothing to step up with.
    let refused = t.gql(Some(&token), create_key, json!({})).await;
    assert_eq!(refused.code(), "MFA_REQUIRED");
    let nothing = t.gql(Some(&token), START_STEP_UP, json!({})).await;
    assert_eq!(nothing.code(), "CONFLICT");

    let mut soft = authenticator();
    register_passkey(&t, &token, &mut soft, "Phone").await;
    let started = t.gql(Some(&token), START_STEP_UP, json!({})).await;
    let started = &started.data()["startStepUp"];
    let response = soft.authenticate(&started["options"]).unwrap();
    let stepped = t
        .gql(
            Some(&token),
            FINISH_STEP_UP,
            json!({ "id": started["ceremonyId"], "c": response }),
        )
        .await;
    let session = &stepped.data()["finishStepUp"]["session"];
    assert_eq!(session["current"], true);
    assert!(session["mfaExpiresAt"].as_str().unwrap() > session["mfaVerifiedAt"].as_str().unwrap());
    let created = t.gql(Some(&token), create_key, json!({})).await;
    assert!(created.data()["createApiKey"]["apiKey"]["id"].is_string());

    // Ten minutes later the step-up has lapsed (the session goes on, with a refreshed token).
    t.clock.advance(TimeDelta::minutes(11));
    let refreshed = t
        .gql(
            None,
            "mutation($r: String!) { refreshSession(input: {refreshToken: $r}) { accessToken } }",
            json!({ "r": login["refreshToken"] }),
        )
        .await;
    let token = refreshed.data()["refreshSession"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let lapsed = t.gql(Some(&token), create_key, json!({})).await;
    assert_eq!(lapsed.code(), "MFA_REQUIRED");

    // `context.mfaAgeSeconds` counts from the last verification.
    let admin = t.admin_token().await;
    let fresh_only = "forbid (principal, action == Portcullis::Action::\"api_key.list\", resource) unless { context has mfaAgeSeconds && context.mfaAgeSeconds < 300 };";
    t.gql(
        Some(&admin),
        "mutation($s: String!) { createPolicy(input: {name: \"fresh\", source: $s}) { policy { id } } }",
        json!({ "s": fresh_only }),
    )
    .await
    .data();
    let list_keys = "{ viewer { apiKeys { totalCount } } }";
    let stale = t.gql(Some(&token), list_keys, json!({})).await;
    assert_eq!(stale.code(), "MFA_REQUIRED");

    // A passkey sign-in is MFA in itself.
    let signed_in = sign_in(&t, Some("mia@example.com"), &mut soft).await;
    let passkey_token = signed_in.data()["finishPasskeyAuthentication"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let allowed = t.gql(Some(&passkey_token), create_key, json!({})).await;
    assert!(allowed.data()["createApiKey"]["apiKey"]["id"].is_string());
    let listed = t.gql(Some(&passkey_token), list_keys, json!({})).await;
    assert_eq!(listed.data()["viewer"]["apiKeys"]["totalCount"], 2);

    let stepped = events(&t, &admin, "session.stepped_up").await;
    assert_eq!(stepped.len(), 1);
}

async fn passkey_only_accounts_through_setup_links(t: TestApp) {
    let admin = t.admin_token().await;
    let (user, link) = passwordless_with_link(&t, &admin, "pia@example.com", "Pia").await;
    let setup_token = link["token"].as_str().unwrap().to_owned();
    assert!(
        link["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/login?setup={setup_token}"))
    );

    let start_setup = "mutation($t: String!) { startPasskeySetup(input: {token: $t, name: \"Phone\"}) { ceremonyId options } }";
    let started = t.gql(None, start_setup, json!({ "t": setup_token })).await;
    let started = &started.data()["startPasskeySetup"];
    assert_eq!(started["options"]["user"]["name"], "pia@example.com");
    let mut soft = authenticator();
    let response = soft.register(&started["options"]).unwrap();
    let finished = t
        .gql(
            None,
            FINISH_REGISTRATION,
            json!({ "id": started["ceremonyId"], "c": response }),
        )
        .await;
    let finished = &finished.data()["finishPasskeyRegistration"];
    assert_eq!(finished["session"]["user"]["email"], "pia@example.com");
    assert_eq!(finished["session"]["session"]["authMethod"], "passkey");
    let pia = finished["session"]["accessToken"].as_str().unwrap().to_owned();
    let passkey = finished["passkey"]["id"].as_str().unwrap().to_owned();

    // The link works once.
    let reused = t.gql(None, start_setup, json!({ "t": setup_token })).await;
    assert_eq!(reused.code(), "BAD_USER_INPUT");
    assert_eq!(reused.field(), "token");

    // Her only way in cannot be deleted — by her or by an administrator.
    let delete = "mutation($id: ID!) { deletePasskey(input: {id: $id}) { passkey { id } } }";
    let last = t.gql(Some(&pia), delete, json!({ "id": passkey })).await;
    assert_eq!(last.code(), "CONFLICT");
    assert_eq!(last.0["errors"][0]["extensions"]["reason"], "LAST_CREDENTIAL");
    let by_admin = t.gql(Some(&admin), delete, json!({ "id": passkey })).await;
    assert_eq!(by_admin.code(), "CONFLICT");

    // With a second passkey, one can go; renaming is audited.
    let mut spare = authenticator();
    let second = register_passkey(&t, &pia, &mut spare, "Spare").await;
    let renamed = t
        .gql(
            Some(&pia),
            "mutation($id: ID!) { renamePasskey(input: {id: $id, name: \"Old phone\"}) { passkey { name } } }",
            json!({ "id": passkey }),
        )
        .await;
    assert_eq!(renamed.data()["renamePasskey"]["passkey"]["name"], "Old phone");
    let listed = t
        .gql(
            Some(&admin),
            "query($u: ID!) { user(id: $u) { passkeys { totalCount nodes { name } } } }",
            json!({ "u": user }),
        )
        .await;
    assert_eq!(listed.data()["user"]["passkeys"]["totalCount"], 2);
    let deleted = t.gql(Some(&admin), delete, json!({ "id": passkey })).await;
    assert_eq!(deleted.data()["deletePasskey"]["passkey"]["id"], passkey.as_str());
    let gone = sign_in(&t, None, &mut soft).await;
    assert_eq!(
        gone.code(),
        "UNAUTHENTICATED",
        "the deleted passkey signs in no more"
    );
    let kept = sign_in(&t, Some("pia@example.com"), &mut spare).await;
    assert!(kept.data()["finishPasskeyAuthentication"]["accessToken"].is_string());
    assert_eq!(second.len(), passkey.len());
    let renames = events(&t, &admin, "passkey.renamed").await;
    assert_eq!(renames.len(), 1);
    let deletions = events(&t, &admin, "passkey.deleted").await;
    assert_eq!(deletions.len(), 1);

    // Passwords do not work for her: she has none.
    let password = t
        .gql(
            None,
            "mutation { login(input: {email: \"pia@example.com\", password: \"anything-at-all\"}) { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(password.code(), "UNAUTHENTICATED");
}

async fn an_invitee_joins_with_a_passkey_only(t: TestApp) {
    let sink = SmtpSink::start();
    let (mailer, runner) = mailing_instance(&t, &sink).await;
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "keys").await;
    let role = t.builtin_role(&admin, "org_admin").await;
    t.gql(
        Some(&admin),
        "mutation($o: ID!, $r: ID!) { createInvitation(input: {organizationId: $o, email: \"ines@example.com\", roleIds: [$r]}) { invitation { id } } }",
        json!({ "o": org, "r": role }),
    )
    .await
    .data();
    let mail = sink.wait_for(1, PATIENCE).await;
    let token = token_in(&mail[0]);

    let start = "mutation($t: String!) { startInvitationPasskey(input: {token: $t, displayName: \"Ines\", name: \"Laptop\", authenticatorAttachment: CROSS_PLATFORM}) { ceremonyId options } }";
    let started = t.gql(None, start, json!({ "t": token })).await;
    let started = &started.data()["startInvitationPasskey"];
    assert_eq!(started["options"]["user"]["name"], "ines@example.com");
    assert_eq!(
        started["options"]["authenticatorSelection"]["authenticatorAttachment"],
        "cross-platform"
    );
    let mut soft = authenticator();
    let response = soft.register(&started["options"]).unwrap();

    // The ceremony cannot be finished outside the invitation.
    let elsewhere = t
        .gql(
            None,
            FINISH_REGISTRATION,
            json!({ "id": started["ceremonyId"], "c": response }),
        )
        .await;
    assert_eq!(elsewhere.code(), "BAD_USER_INPUT");
    let started = t.gql(None, start, json!({ "t": token })).await;
    let started = &started.data()["startInvitationPasskey"];
    let mut soft = authenticator();
    let response = soft.register(&started["options"]).unwrap();

    let accept = "mutation($t: String!, $id: ID!, $c: JSON!) { acceptInvitation(input: {token: $t, displayName: \"Ines\", passkey: {ceremonyId: $id, credential: $c}}) { invitation { status } membership { id } session { accessToken user { email hasPassword } session { authMethod } } } }";
    let accepted = t
        .gql(
            None,
            accept,
            json!({ "t": token, "id": started["ceremonyId"], "c": response }),
        )
        .await;
    let accepted = &accepted.data()["acceptInvitation"];
    assert_eq!(accepted["invitation"]["status"], "ACCEPTED");
    assert_eq!(accepted["session"]["user"]["hasPassword"], false);
    assert_eq!(accepted["session"]["session"]["authMethod"], "passkey");
    let ines = accepted["session"]["accessToken"].as_str().unwrap().to_owned();
    let listed = t.gql(Some(&ines), PASSKEYS, json!({})).await;
    assert_eq!(listed.data()["viewer"]["passkeys"]["nodes"][0]["name"], "Laptop");

    // Her passkey signs her in, without an email.
    let again = sign_in(&t, None, &mut soft).await;
    assert_eq!(
        again.data()["finishPasskeyAuthentication"]["user"]["email"],
        "ines@example.com"
    );
    runner.stop(Duration::from_secs(5)).await;
    drop(mailer);
    assert_ne!(ADMIN_EMAIL, "ines@example.com");
}

async fn failed_sign_ins_are_rate_limited_and_stale_ceremonies_swept(t: TestApp) {
    let admin = t.admin_token().await;
    let (_, token) = t.user_with_token(&admin, "lee@example.com").await;
    let mut soft = authenticator();
    register_passkey(&t, &token, &mut soft, "Key").await;
    soft.corrupt_signature = true;
    for attempt in 0..10 {
        let refused = sign_in(&t, Some("lee@example.com"), &mut soft).await;
        assert_eq!(refused.code(), "UNAUTHENTICATED", "attempt {attempt}");
    }
    soft.corrupt_signature = false;
    let limited = sign_in(&t, Some("lee@example.com"), &mut soft).await;
    assert_eq!(
        limited.code(),
        "RATE_LIMITED",
        "even a good answer waits out the lock"
    );
    assert!(
        limited.0["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            > 0
    );
    let locked = events(&t, &admin, "session.login_locked").await;
    assert_eq!(locked.len(), 1, "the lock is recorded once");
    assert_eq!(locked[0]["metadata"]["authMethod"], "passkey");
    t.clock.advance(TimeDelta::minutes(16));
    let later = sign_in(&t, Some("lee@example.com"), &mut soft).await;
    assert!(later.data()["finishPasskeyAuthentication"]["accessToken"].is_string());

    // Ceremonies never finished are deleted by the periodic sweep once expired.
    portcullis::passkeys::ceremony::sweep(&t.app, t.app.now())
        .await
        .unwrap(); // the rate-limited one
    for _ in 0..3 {
        t.gql(None, START_SIGN_IN, json!({})).await.data();
    }
    assert_eq!(
        portcullis::passkeys::ceremony::sweep(&t.app, t.app.now())
            .await
            .unwrap(),
        0,
        "not expired yet"
    );
    t.clock.advance(TimeDelta::minutes(6));
    assert_eq!(
        portcullis::passkeys::ceremony::sweep(&t.app, t.app.now())
            .await
            .unwrap(),
        3
    );
    for _ in 0..2 {
        t.gql(None, START_SIGN_IN, json!({})).await.data();
    }
    t.clock.advance(TimeDelta::minutes(6));
    portcullis::jobs::periodic::sweep(&t.app).await.unwrap();
    assert_eq!(
        portcullis::passkeys::ceremony::sweep(&t.app, t.app.now())
            .await
            .unwrap(),
        0,
        "the periodic sweep removed them"
    );
}

async fn changing_your_passkeys_takes_a_second_factor(t: TestApp) {
    let admin = t.admin_token().await;
    let (user, token) = t.user_with_token(&admin, "vera@example.com").await;
    let mut soft = authenticator();
    let first = register_passkey(&t, &token, &mut soft, "First").await;

    // A stolen password alone can neither add a passkey nor remove the owner's.
    let add = t
        .gql(Some(&token), START_REGISTRATION, json!({ "name": "Thief" }))
        .await;
    assert_eq!(add.code(), "MFA_REQUIRED");
    let delete = "mutation($id: ID!) { deletePasskey(input: {id: $id}) { passkey { id } } }";
    let removed = t.gql(Some(&token), delete, json!({ "id": first })).await;
    assert_eq!(removed.code(), "MFA_REQUIRED");

    // Nor can an API key, nor a setup link minted for oneself (it would outlive the password).
    let key = t
        .gql(
            Some(&token),
            "mutation { createApiKey(input: {name: \"k\"}) { secret } }",
            json!({}),
        )
        .await;
    let key = key.data()["createApiKey"]["secret"].as_str().unwrap().to_owned();
    let by_key = t
        .gql(Some(&key), START_REGISTRATION, json!({ "name": "Bot" }))
        .await;
    assert_eq!(by_key.code(), "BAD_USER_INPUT");
    let own_link = t
        .gql(
            Some(&token),
            "mutation($u: ID!) { createPasskeySetupLink(input: {userId: $u}) { url } }",
            json!({ "u": user }),
        )
        .await;
    assert_eq!(own_link.code(), "BAD_USER_INPUT");
    assert_eq!(own_link.field(), "userId");

    // After a step-up, both work.
    let started = t.gql(Some(&token), START_STEP_UP, json!({})).await;
    let started = &started.data()["startStepUp"];
    let response = soft.authenticate(&started["options"]).unwrap();
    t.gql(
        Some(&token),
        FINISH_STEP_UP,
        json!({ "id": started["ceremonyId"], "c": response }),
    )
    .await
    .data();
    let mut spare = authenticator();
    register_passkey(&t, &token, &mut spare, "Spare").await;
    let removed = t.gql(Some(&token), delete, json!({ "id": first })).await;
    assert_eq!(removed.data()["deletePasskey"]["passkey"]["id"], first.as_str());

    // An administrator's newer setup link retires the older one.
    let mint = "mutation($u: ID!) { createPasskeySetupLink(input: {userId: $u}) { token } }";
    let older = t.gql(Some(&admin), mint, json!({ "u": user })).await;
    let older = older.data()["createPasskeySetupLink"]["token"].clone();
    let newer = t.gql(Some(&admin), mint, json!({ "u": user })).await;
    let newer = newer.data()["createPasskeySetupLink"]["token"].clone();
    let start_setup =
        "mutation($t: String!) { startPasskeySetup(input: {token: $t, name: \"Phone\"}) { ceremonyId } }";
    assert_eq!(
        t.gql(None, start_setup, json!({ "t": older })).await.code(),
        "BAD_USER_INPUT"
    );
    assert!(
        t.gql(None, start_setup, json!({ "t": newer })).await.data()["startPasskeySetup"]["ceremonyId"]
            .is_string()
    );
}

/// A relying party passkeys cannot work with stops the gateway at start, naming the variable.
async fn a_misconfigured_relying_party_stops_the_start(t: TestApp) {
    let url = t.app.db.url().to_owned();
    let start = |variable: &str, value: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["audit", "verify"])
            .env("PORTCULLIS_DATABASE_URL", &url)
            .env("PORTCULLIS_LOG", "error")
            .env(variable, value)
            .output()
            .expect("the CLI runs")
    };
    for (variable, value, says) in [
        ("PORTCULLIS_WEBAUTHN_RP_ID", "192.168.1.10", "is an IP address"),
        (
            "PORTCULLIS_WEBAUTHN_ORIGINS",
            "https://evil.example.net",
            "is not under the RP ID",
        ),
    ] {
        let refused = start(variable, value);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&refused.stdout),
            String::from_utf8_lossy(&refused.stderr)
        );
        assert!(!refused.status.success(), "{variable}={value} was accepted");
        assert!(said.contains(variable) && said.contains(says), "{said}");
    }
    assert!(
        start("PORTCULLIS_WEBAUTHN_ORIGINS", "http://localhost:8080")
            .status
            .success()
    );
}

async fn disabled_accounts_and_strangers_get_the_same_refusal(t: TestApp) {
    let admin = t.admin_token().await;
    let (user, token) = t.user_with_token(&admin, "dana@example.com").await;
    let mut soft = authenticator();
    register_passkey(&t, &token, &mut soft, "Key").await;
    t.gql(
        Some(&admin),
        "mutation($id: ID!) { disableUser(input: {id: $id}) { user { status } } }",
        json!({ "id": user }),
    )
    .await
    .data();
    // Usernameless: the credential names a disabled account.
    let disabled = sign_in(&t, None, &mut soft).await;
    assert_eq!(disabled.code(), "UNAUTHENTICATED");
    assert_eq!(disabled.message(), "the passkey sign-in failed");
    let failed = events(&t, &admin, "session.login_failed").await;
    assert_eq!(failed[0]["metadata"]["reason"], "account_disabled");
    assert_eq!(failed[0]["actor"]["id"], user.as_str());
    // With the email: the disabled account gets made-up credentials, like an unknown email.
    let started = t
        .gql(None, START_SIGN_IN, json!({ "email": "dana@example.com" }))
        .await;
    let offered = &started.data()["startPasskeyAuthentication"]["options"]["allowCredentials"];
    assert!(!offered.as_array().unwrap().is_empty());
    assert!(
        soft.authenticate(&started.data()["startPasskeyAuthentication"]["options"])
            .is_err()
    );

    // A credential this gateway never registered.
    let mut stranger = authenticator();
    let options = json!({ "rp": { "id": "localhost", "name": "x" }, "user": { "id": "AAAAAAAAAAAAAAAAAAAAAA", "name": "s", "displayName": "s" }, "challenge": "AAAA", "pubKeyCredParams": [{ "type": "public-key", "alg": -7 }] });
    stranger.register(&options).unwrap();
    let unknown = sign_in(&t, None, &mut stranger).await;
    assert_eq!(unknown.code(), "UNAUTHENTICATED");
    assert_eq!(unknown.message(), disabled.message());
    let failed = events(&t, &admin, "session.login_failed").await;
    assert_eq!(failed[0]["metadata"]["reason"], "unknown_credential");
}

crate::backend_tests!(
    register_then_sign_in_with_and_without_an_email,
    replayed_expired_and_foreign_ceremonies_are_refused,
    bad_responses_are_refused_and_audited,
    a_counter_that_goes_backwards_is_refused_and_recorded,
    step_up_turns_mfa_required_into_success,
    passkey_only_accounts_through_setup_links,
    an_invitee_joins_with_a_passkey_only,
    failed_sign_ins_are_rate_limited_and_stale_ceremonies_swept,
    changing_your_passkeys_takes_a_second_factor,
    a_misconfigured_relying_party_stops_the_start,
    disabled_accounts_and_strangers_get_the_same_refusal,
);
