//! Invitations end to end: bulk invites delivered by the job runner to a real SMTP server
//! (aiosmtpd), accepted through the API and the accept page, resent, expired, raced, and kept
//! through an SMTP outage and a restart — on SQLite and PostgreSQL.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use portcullis::app::App;
use portcullis::jobs::Runner;
use serde_json::{Value, json};

use crate::smtp::SmtpSink;
use crate::support::{TestApp, test_config};

/// How long to wait for mail at most: a bound on waiting, not a speed claim.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// A second gateway on the test's database that sends mail to `sink` and runs the job runner.
pub(crate) async fn mailing_instance(t: &TestApp, sink: &SmtpSink) -> (App, Runner) {
    let mut config = test_config(t.app.db.url());
    config.smtp_url = Some(sink.url());
    config.smtp_timeout_seconds = 5;
    config.job_poll_ms = 50;
    let app = App::start(config, t.clock.clone())
        .await
        .expect("mailing instance starts");
    let runner = Runner::start(&app);
    (app, runner)
}

/// The token in an email's link.
pub(crate) fn token_in(message: &Value) -> String {
    let text = message["text"].as_str().expect("a text part");
    let start = text.find("token=").expect("a link with a token") + "token=".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

/// A form post to the accept page, carrying the page's CSRF cookie when given.
pub(crate) fn page_post(fields: &[(&str, &str)], cookie: Option<&str>) -> Request<Body> {
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let request = Request::post("/invitations/accept")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    let request = match cookie {
        Some(cookie) => request.header(header::COOKIE, cookie),
        None => request,
    };
    request.body(Body::from(form)).unwrap()
}

pub(crate) fn recipient(message: &Value) -> String {
    message["rcpt_tos"][0].as_str().unwrap_or_default().to_owned()
}

/// An organization with German branding, and the id of the built-in `org_admin` role.
pub(crate) async fn organization(t: &TestApp, admin: &str) -> (String, String) {
    let org = t.create_organization(admin, "acme").await;
    let branding = t
        .gql(
            Some(admin),
            "mutation($o: ID!) { updateOrganizationBranding(input: {organizationId: $o, displayName: \"Acme GmbH\", primaryColor: \"#123ABC\", supportEmail: \"help@acme.example\", defaultLocale: \"de\"}) { branding { primaryColor } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(
        branding.data()["updateOrganizationBranding"]["branding"]["primaryColor"],
        "#123abc"
    );
    let role = t.builtin_role(admin, "org_admin").await;
    (org, role)
}

const BULK: &str = "mutation($input: CreateInvitationsInput!) { createInvitations(input: $input) { createdCount replayed results { index status field message invitation { id email status } } } }";
pub(crate) const BY_TOKEN: &str = "query($t: String!) { invitationByToken(token: $t) { organizationName maskedEmail roles inviterName branding { primaryColor } } }";
const ACCEPT: &str = "mutation($t: String!) { acceptInvitation(input: {token: $t, displayName: \"Ada\", password: \"correct-horse-battery\"}) { invitation { status } membership { id } session { accessToken user { email } } } }";

async fn bulk_invites_arrive_once_and_a_new_person_joins(t: TestApp) {
    let admin = t.admin_token().await;
    let (org, role) = organization(&t, &admin).await;
    let sink = SmtpSink::start();
    let (_mailer, runner) = mailing_instance(&t, &sink).await;

    let rows = json!([
        { "email": "ada@example.com", "roleIds": [role], "locale": "fr", "message": "<script>alert(1)</script> bienvenue" },
        { "email": "Bob@Example.COM", "roleIds": [role] },
        { "email": "not-an-email", "roleIds": [role] },
        { "email": "cy@example.com", "roleIds": ["01900000-0000-7000-8000-000000000000"] },
        { "email": "ADA@example.com", "roleIds": [role] },
        { "email": "dee@example.com", "roleIds": [role], "locale": "xx" },
    ]);
    let input =
        json!({ "input": { "organizationId": org, "invitations": rows, "idempotencyKey": "import-1" } });
    let first = t.gql(Some(&admin), BULK, input.clone()).await;
    let payload = &first.data()["createInvitations"];
    let statuses: Vec<&str> = payload["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["CREATED", "CREATED", "INVALID", "INVALID", "INVALID", "INVALID"]
    );
    let fields: Vec<&str> = payload["results"].as_array().unwrap()[2..]
        .iter()
        .map(|r| r["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "roleIds", "email", "locale"]);
    assert_eq!(payload["createdCount"], 2);
    assert_eq!(payload["results"][1]["invitation"]["email"], "bob@example.com");

    // The same key and payload: the first answer, nothing new. Another payload: CONFLICT.
    let again = t.gql(Some(&admin), BULK, input).await;
    assert_eq!(again.data()["createInvitations"]["replayed"], true);
    assert_eq!(again.data()["createInvitations"]["results"], payload["results"]);
    let other = json!({ "input": { "organizationId": org, "invitations": [{ "email": "eve@example.com", "roleIds": [role] }], "idempotencyKey": "import-1" } });
    let conflict = t.gql(Some(&admin), BULK, other).await;
    assert_eq!(
        (conflict.code(), conflict.field()),
        ("CONFLICT", "idempotencyKey")
    );
    // Inviting a pending address again names the pending invitation.
    let single = "mutation($o: ID!, $r: ID!) { createInvitation(input: {organizationId: $o, email: \"bob@example.com\", roleIds: [$r]}) { invitation { id } } }";
    let duplicate = t.gql(Some(&admin), single, json!({ "o": org, "r": role })).await;
    assert_eq!(duplicate.code(), "CONFLICT");

    let mail = sink.wait_for(2, PATIENCE).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 2, "each invitation is mailed once");
    let ada = mail
        .iter()
        .find(|m| recipient(m) == "ada@example.com")
        .expect("ada's email");
    let bob = mail
        .iter()
        .find(|m| recipient(m) == "bob@example.com")
        .expect("bob's email");
    assert!(
        ada["content_type"]
            .as_str()
            .unwrap()
            .starts_with("multipart/alternative")
    );
    assert!(
        ada["html"].as_str().unwrap().contains("&lt;script&gt;"),
        "the message is escaped in HTML"
    );
    assert!(!ada["html"].as_str().unwrap().contains("<script>"));
    assert_eq!(ada["reply_to"], "help@acme.example");
    assert_ne!(
        ada["subject"], bob["subject"],
        "French for Ada, the organization's German for Bob"
    );
    assert!(bob["text"].as_str().unwrap().contains("Acme GmbH"));

    let token = token_in(ada);
    let preview = t.gql(None, BY_TOKEN, json!({ "t": token })).await;
    let shown = &preview.data()["invitationByToken"];
    assert_eq!(shown["maskedEmail"], "a***@example.com");
    assert_eq!(shown["organizationName"], "Acme GmbH");
    assert_eq!(shown["branding"]["primaryColor"], "#123abc");

    let accepted = t.gql(None, ACCEPT, json!({ "t": token })).await;
    let accepted = &accepted.data()["acceptInvitation"];
    assert_eq!(accepted["invitation"]["status"], "ACCEPTED");
    assert_eq!(accepted["session"]["user"]["email"], "ada@example.com");
    let ada_token = accepted["session"]["accessToken"].as_str().unwrap().to_owned();
    // She is an org_admin of Acme now: she may list its invitations.
    let listed = t
        .gql(
            Some(&ada_token),
            "query($o: ID!) { organization(id: $o) { invitations { totalCount } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(listed.data()["organization"]["invitations"]["totalCount"], 2);
    let spent = t.gql(None, ACCEPT, json!({ "t": token })).await;
    assert_eq!(spent.code(), "NOT_FOUND");

    let deliveries = t
        .gql(
            Some(&admin),
            "{ emailDeliveries(filter: {statuses: [SENT]}) { totalCount nodes { to attempts } } }",
            json!({}),
        )
        .await;
    assert_eq!(deliveries.data()["emailDeliveries"]["totalCount"], 2);
    let events = t
        .gql(
            Some(&admin),
            "{ auditEvents(filter: {actions: [\"invitation.*\"]}) { nodes: edges { node { action } } } }",
            json!({}),
        )
        .await;
    let actions: Vec<&str> = events.data()["auditEvents"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.iter().filter(|a| **a == "invitation.created").count(), 2);
    assert_eq!(actions.iter().filter(|a| **a == "invitation.accepted").count(), 1);
    runner.stop(Duration::from_secs(5)).await;
}

async fn resend_kills_the_old_link_and_expiry_ends_the_new(t: TestApp) {
    let admin = t.admin_token().await;
    let (org, role) = organization(&t, &admin).await;
    let sink = SmtpSink::start();
    let (mailer, runner) = mailing_instance(&t, &sink).await;
    let created = t
        .gql(
            Some(&admin),
            "mutation($o: ID!, $r: ID!) { createInvitation(input: {organizationId: $o, email: \"zoe@example.com\", roleIds: [$r]}) { invitation { id } } }",
            json!({ "o": org, "r": role }),
        )
        .await;
    let id = created.data()["createInvitation"]["invitation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = token_in(&sink.wait_for(1, PATIENCE).await[0]);

    let resend = "mutation($id: ID!) { resendInvitation(input: {id: $id}) { invitation { sendCount } } }";
    let too_soon = t.gql(Some(&admin), resend, json!({ "id": id })).await;
    assert_eq!(too_soon.code(), "RATE_LIMITED");
    t.clock.advance(chrono::TimeDelta::seconds(61));
    let resent = t.gql(Some(&admin), resend, json!({ "id": id })).await;
    assert_eq!(resent.data()["resendInvitation"]["invitation"]["sendCount"], 2);
    let mail = sink.wait_for(2, PATIENCE).await;
    let second = mail
        .iter()
        .map(token_in)
        .find(|token| *token != first)
        .expect("a new link");
    assert_eq!(
        t.gql(None, BY_TOKEN, json!({ "t": first })).await.code(),
        "NOT_FOUND",
        "the old link died"
    );
    assert!(
        t.gql(None, BY_TOKEN, json!({ "t": second }))
            .await
            .0
            .get("errors")
            .is_none()
    );

    t.clock.advance(chrono::TimeDelta::days(8));
    let admin = t.admin_token().await;
    assert_eq!(
        t.gql(None, BY_TOKEN, json!({ "t": second })).await.code(),
        "NOT_FOUND",
        "expired"
    );
    let status = "query($id: ID!) { invitation(id: $id) { status } }";
    assert_eq!(
        t.gql(Some(&admin), status, json!({ "id": id })).await.data()["invitation"]["status"],
        "EXPIRED"
    );
    portcullis::jobs::periodic::sweep(&mailer).await.expect("sweep");
    portcullis::jobs::periodic::sweep(&mailer)
        .await
        .expect("a second sweep records nothing twice");
    let expired = t
        .gql(
            Some(&admin),
            "{ auditEvents(filter: {actions: [\"invitation.expired\"]}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(expired.data()["auditEvents"]["totalCount"], 1);
    runner.stop(Duration::from_secs(5)).await;
}

async fn an_smtp_outage_and_a_restart_lose_no_email(t: TestApp) {
    let admin = t.admin_token().await;
    let (org, role) = organization(&t, &admin).await;
    let mut sink = SmtpSink::start();
    sink.stop();
    let (_first, runner) = mailing_instance(&t, &sink).await;
    let rows: Vec<Value> = (0..3)
        .map(|i| json!({ "email": format!("p{i}@example.com"), "roleIds": [role] }))
        .collect();
    let made = t
        .gql(
            Some(&admin),
            BULK,
            json!({ "input": { "organizationId": org, "invitations": rows } }),
        )
        .await;
    assert_eq!(made.data()["createInvitations"]["createdCount"], 3);
    let failing = "{ emailDeliveries(filter: {status: QUEUED}) { nodes { lastError attempts } } }";
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let queued = t.gql(Some(&admin), failing, json!({})).await;
        let nodes = queued.data()["emailDeliveries"]["nodes"]
            .as_array()
            .unwrap()
            .clone();
        if nodes.len() == 3 && nodes.iter().all(|n| !n["lastError"].is_null()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deliveries never failed: {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The gateway restarts and the server comes back; the retries are due 15 s (±20 %) later.
    runner.stop(Duration::from_secs(5)).await;
    sink.restart();
    let (_second, runner) = mailing_instance(&t, &sink).await;
    t.clock.advance(chrono::TimeDelta::seconds(20));
    let mail = sink.wait_for(3, PATIENCE).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut to: Vec<String> = sink.messages().iter().map(recipient).collect();
    to.sort();
    assert_eq!(
        to,
        ["p0@example.com", "p1@example.com", "p2@example.com"],
        "{mail:?}"
    );

    // A gateway that dies mid-delivery (the server hangs; the runner is cut off without grace):
    // the job stays claimed until its lease lapses, then another instance delivers it once.
    sink.set_mode("hang");
    t.gql(
        Some(&admin),
        "mutation($o: ID!, $r: ID!) { createInvitation(input: {organizationId: $o, email: \"cut@example.com\", roleIds: [$r]}) { invitation { id } } }",
        json!({ "o": org, "r": role }),
    )
    .await
    .data();
    let sending = "{ emailDeliveries(filter: {statuses: [SENDING]}) { totalCount } }";
    while t.gql(Some(&admin), sending, json!({})).await.data()["emailDeliveries"]["totalCount"] != 1 {
        assert!(std::time::Instant::now() < deadline + PATIENCE, "never claimed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    runner.stop(Duration::ZERO).await;
    sink.set_mode("accept");
    let (_third, runner) = mailing_instance(&t, &sink).await;
    t.clock.advance(chrono::TimeDelta::seconds(121));
    let mail = sink.wait_for(4, PATIENCE).await;
    assert_eq!(
        mail.iter().filter(|m| recipient(m) == "cut@example.com").count(),
        1,
        "delivered once after the takeover"
    );

    // A permanent refusal goes to the dead letters; an administrator sends it again.
    sink.set_mode("permfail");
    t.gql(
        Some(&admin),
        "mutation($o: ID!, $r: ID!) { createInvitation(input: {organizationId: $o, email: \"late@example.com\", roleIds: [$r]}) { invitation { id } } }",
        json!({ "o": org, "r": role }),
    )
    .await;
    let dead = "{ emailDeliveries(filter: {statuses: [DEAD]}) { nodes { id lastError } } }";
    let id = loop {
        let found = t.gql(Some(&admin), dead, json!({})).await;
        if let Some(node) = found.data()["emailDeliveries"]["nodes"]
            .as_array()
            .unwrap()
            .first()
        {
            assert!(node["lastError"].as_str().unwrap().contains("550"), "{node}");
            break node["id"].as_str().unwrap().to_owned();
        }
        assert!(std::time::Instant::now() < deadline + PATIENCE, "never dead");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    sink.set_mode("accept");
    let retry = "mutation($id: ID!) { retryEmailDelivery(input: {id: $id}) { delivery { status } } }";
    let retried = t.gql(Some(&admin), retry, json!({ "id": id })).await;
    assert!(retried.0.get("errors").is_none(), "{:?}", retried.0);
    sink.wait_for(4, PATIENCE).await;
    assert_eq!(
        t.gql(Some(&admin), retry, json!({ "id": id })).await.code(),
        "CONFLICT",
        "only dead ones"
    );
    runner.stop(Duration::from_secs(5)).await;
}

async fn two_accepts_race_and_the_page_accepts_with_csrf(t: TestApp) {
    let admin = t.admin_token().await;
    let (org, role) = organization(&t, &admin).await;
    let sink = SmtpSink::start();
    let (_mailer, runner) = mailing_instance(&t, &sink).await;
    let rows = json!([{ "email": "race@example.com", "roleIds": [role] }, { "email": "page@example.com", "roleIds": [role] }]);
    t.gql(
        Some(&admin),
        BULK,
        json!({ "input": { "organizationId": org, "invitations": rows } }),
    )
    .await;
    let mail = sink.wait_for(2, PATIENCE).await;
    let race = token_in(mail.iter().find(|m| recipient(m) == "race@example.com").unwrap());
    let page = token_in(mail.iter().find(|m| recipient(m) == "page@example.com").unwrap());

    let (a, b) = tokio::join!(
        t.gql(None, ACCEPT, json!({ "t": race })),
        t.gql(None, ACCEPT, json!({ "t": race }))
    );
    let won = [&a, &b].iter().filter(|r| r.0.get("errors").is_none()).count();
    assert_eq!(won, 1, "exactly one accept wins: {:?} / {:?}", a.0, b.0);

    let get = Request::get(format!("/invitations/accept?token={page}"))
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = t.send(get).await;
    assert_eq!(status, StatusCode::OK);
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("p***@example.com"));
    // One script, the gateway's own file (it adds the passkey option); nothing inline.
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(html.contains("<script src=\"&#x2f;assets&#x2f;login.js\" defer></script>"));
    let cookie = headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = cookie.split_once('=').unwrap().1.to_owned();
    let fields = [
        ("token", page.as_str()),
        ("csrf_token", csrf.as_str()),
        ("intent", "create"),
        ("display_name", "Paige"),
        ("password", "correct-horse-battery"),
        ("password_confirm", "correct-horse-battery"),
    ];
    // Without the cookie the form is shown again and nothing is accepted.
    let (status, _, _) = t.send(page_post(&fields, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        t.gql(None, BY_TOKEN, json!({ "t": page }))
            .await
            .0
            .get("errors")
            .is_none(),
        "still pending"
    );
    let post = page_post(&fields, Some(&cookie));
    let (status, _, body) = t.send(post).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("Acme GmbH"));
    assert_eq!(
        t.gql(None, BY_TOKEN, json!({ "t": page })).await.code(),
        "NOT_FOUND",
        "spent"
    );
    let login = t.login("page@example.com", "correct-horse-battery").await;
    assert!(
        login["accessToken"].is_string(),
        "the new account signs in: {login}"
    );
    let (status, _, _) = t
        .send(
            Request::get(format!("/invitations/accept?token={page}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a spent link shows the unavailable page"
    );
    runner.stop(Duration::from_secs(5)).await;
}

crate::backend_tests!(
    bulk_invites_arrive_once_and_a_new_person_joins,
    resend_kills_the_old_link_and_expiry_ends_the_new,
    an_smtp_outage_and_a_restart_lose_no_email,
    two_accepts_race_and_the_page_accepts_with_csrf,
);
