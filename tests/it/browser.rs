//! The invitation accept page in a real browser: headless Chromium, driven by playwright-core
//! (`tests/browser/accept.mjs`), follows the link from a real email to the gateway served on a real
//! port — so the CSP, the CSRF cookie and the form are judged by a browser, not by our reading of them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use portcullis::app::App;
use portcullis::jobs::Runner;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::smtp::SmtpSink;
use crate::support::{TestApp, test_config};

/// How long to wait for mail at most: a bound on waiting, not a speed claim.
const PATIENCE: Duration = Duration::from_secs(30);

const CHROMIUM: &str = "/usr/bin/chromium";
/// The organization's brand color, `#123ABC`, as the browser reports a computed color.
const BRAND_RGB: &str = "rgb(18, 58, 188)";
const PASSWORD_TYPED: &str = "typed-in-chromium-42";
const UNAVAILABLE: &str = "This invitation link cannot be used";

/// The gateway on a real port on 127.0.0.1, mailing through `sink` with links to that port.
/// The server task is aborted on drop, so a failing test does not leave it serving.
pub(crate) struct Served {
    runner: Option<Runner>,
    /// `http://<host>:<port>`, the public URL the served instance puts into links.
    pub base: String,
    /// The served instance in process, for GraphQL calls whose answers hold its public URL.
    pub api: TestApp,
    server: JoinHandle<()>,
}

impl Served {
    /// Served as `http://127.0.0.1:<port>`.
    async fn start(t: &TestApp, sink: &SmtpSink) -> Self {
        Self::start_as(t, sink, "127.0.0.1").await
    }

    /// Served as `http://localhost:<port>`, the relying party of its passkeys: browsers speak
    /// WebAuthn on `localhost` (a secure context over plain HTTP) but never on an IP address.
    pub(crate) async fn start_on_localhost(t: &TestApp, sink: &SmtpSink) -> Self {
        Self::start_as(t, sink, "localhost").await
    }

    async fn start_as(t: &TestApp, sink: &SmtpSink, host: &str) -> Self {
        // Bound first: the port goes into the configuration, and so into the emailed link.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port on 127.0.0.1");
        let port = listener.local_addr().expect("the bound address").port();
        let base = format!("http://{host}:{port}");
        let mut config = test_config(t.app.db.url());
        config.public_url = Some(base.clone());
        if host == "localhost" {
            config.webauthn_rp_id = Some("localhost".to_owned());
            config.webauthn_origins = vec![base.clone()];
        }
        config.smtp_url = Some(sink.url());
        config.smtp_timeout_seconds = 5;
        config.job_poll_ms = 50;
        let app = App::start(config, t.clock.clone())
            .await
            .expect("the served instance starts");
        let runner = Runner::start(&app);
        let router = portcullis::http::router(app.clone());
        let api = TestApp {
            app,
            router: router.clone(),
            clock: t.clock.clone(),
        };
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .expect("the gateway serves");
        });
        Self {
            runner: Some(runner),
            base,
            api,
            server,
        }
    }

    pub(crate) async fn stop(mut self) {
        if let Some(runner) = self.runner.take() {
            runner.stop(Duration::from_secs(5)).await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Fails (never skips) when the browser or the driver is missing, saying how to install them.
fn browser_script(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing; install Debian's Chromium: \
         apt-get update && apt-get install -y chromium (.ci/run does this)"
    );
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing; install the driver: \
         npm ci --prefix tests/browser (.ci/run does this)"
    );
    dir.join(name)
}

/// Runs `tests/browser/<name>` with `input` and returns the JSON it prints. The script bounds its
/// own run.
pub(crate) async fn drive(name: &str, input: Value) -> Value {
    let script = browser_script(name);
    let output =
        tokio::task::spawn_blocking(move || Command::new("node").arg(script).arg(input.to_string()).output())
            .await
            .expect("the browser task")
            .expect("run node (apt-get install -y nodejs)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} failed ({}):\n{stderr}\n{stdout}",
        output.status
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{name} printed no JSON ({e}):\n{stdout}\n{stderr}"))
}

/// The console errors of one page that are the page's doing. Headless Chromium fetches
/// `/favicon.ico` on its own (the gateway has none; the 404 is logged as an error), and a page
/// served as a 404 by design gets "Failed to load resource … 404" for its own URL.
pub(crate) fn page_errors(page: &Value, expected_status: u16) -> Vec<Value> {
    let url = page["url"].as_str().unwrap_or_default();
    page["consoleErrors"]
        .as_array()
        .expect("consoleErrors")
        .iter()
        .filter(|error| {
            let at = error["url"].as_str().unwrap_or_default();
            let text = error["text"].as_str().unwrap_or_default();
            let favicon = at.ends_with("/favicon.ico") && text.contains("status of 404");
            let own_404 = expected_status == 404 && at == url && text.contains("status of 404");
            !(favicon || own_404)
        })
        .cloned()
        .collect()
}

/// Asserts what every page read should satisfy: its status, no errors, no failed sub-resources.
pub(crate) fn assert_clean(page: &Value, status: u16, what: &str) {
    assert_eq!(page["status"], status, "{what}: {page:#}");
    assert_eq!(
        page_errors(page, status),
        Vec::<Value>::new(),
        "{what}: console errors"
    );
    assert_eq!(page["failedRequests"], json!([]), "{what}: failed requests");
}

/// The link in the email's text part.
fn link_in(message: &Value, base: &str) -> String {
    let text = message["text"].as_str().expect("a text part");
    let start = text
        .find(&format!("{base}/invitations/accept?token="))
        .unwrap_or_else(|| panic!("a link to {base} in the email:\n{text}"));
    text[start..]
        .split_whitespace()
        .next()
        .expect("the link")
        .to_owned()
}

async fn a_new_person_accepts_in_chromium(t: TestApp) {
    let admin = t.admin_token().await;
    let org = t.create_organization(&admin, "rockets").await;
    let branding = t
        .gql(
            Some(&admin),
            "mutation($o: ID!) { updateOrganizationBranding(input: {organizationId: $o, displayName: \"Acme Rockets\", primaryColor: \"#123ABC\", supportEmail: \"help@rockets.example\", defaultLocale: \"en\"}) { branding { primaryColor } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(
        branding.data()["updateOrganizationBranding"]["branding"]["primaryColor"],
        "#123abc"
    );
    let roles = [
        t.builtin_role(&admin, "org_admin").await,
        t.builtin_role(&admin, "org_owner").await,
    ];
    let sink = SmtpSink::start();
    let served = Served::start(&t, &sink).await;

    let created = t
        .gql(
            Some(&admin),
            "mutation($o: ID!, $r: [ID!]!) { createInvitation(input: {organizationId: $o, email: \"grace@example.com\", roleIds: $r}) { invitation { id } } }",
            json!({ "o": org, "r": roles }),
        )
        .await;
    let id = created.data()["createInvitation"]["invitation"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let mail = sink.wait_for(1, PATIENCE).await;
    assert_eq!(mail.len(), 1, "the invitation was mailed");
    let link = link_in(&mail[0], &served.base);

    let seen = drive(
        "accept.mjs",
        json!({
        "mode": "accept",
        "url": link,
        "displayName": "Grace Hopper",
        "password": PASSWORD_TYPED,
        "screenshotDir": std::env::temp_dir(),
        }),
    )
    .await;
    for screenshot in seen["screenshots"].as_array().expect("screenshots") {
        let path = screenshot.as_str().expect("a path");
        let png = std::fs::read(path).unwrap_or_else(|e| panic!("screenshot {path}: {e}"));
        assert!(png.starts_with(b"\x89PNG"), "{path} is a PNG");
        println!("screenshot: {path}");
    }

    let opened = &seen["opened"];
    assert_clean(opened, 200, "the accept page");
    assert_eq!(opened["heading"], "Join Acme Rockets");
    let text = opened["bodyText"].as_str().expect("bodyText");
    for shown in [
        "Acme Rockets",
        "g***@example.com",
        "Organization administrator",
        "Organization owner",
        "help@rockets.example",
    ] {
        assert!(text.contains(shown), "the page shows {shown:?}:\n{text}");
    }
    assert!(
        !text.contains("grace@example.com"),
        "the address is masked:\n{text}"
    );
    // The brand color reaches the page only through the nonce'd <style>: CSP let it through.
    assert_eq!(opened["buttonBackground"], BRAND_RGB);
    assert_eq!(opened["cardBorder"], BRAND_RGB);

    let done = &seen["submitted"];
    assert_clean(done, 200, "the done page");
    assert_eq!(done["heading"], "Welcome to Acme Rockets");
    let text = done["bodyText"].as_str().expect("bodyText");
    assert!(text.contains("You are now a member of Acme Rockets."), "{text}");
    assert!(text.contains("Organization owner"), "{text}");
    assert!(!text.contains("Create your account"), "no form any more:\n{text}");
    assert_eq!(
        page_errors(&seen["late"], 200),
        Vec::<Value>::new(),
        "late console errors"
    );
    // The listener does see CSP violations: a nonce-less <style> injected afterwards was reported.
    assert!(
        seen["cspCanary"]
            .as_str()
            .is_some_and(|text| text.contains("Content Security Policy")),
        "a CSP violation is reported as a console error: {:#}",
        seen["cspCanary"]
    );

    // What the browser did, seen from the API: accepted, by an account with the typed name and
    // password.
    let invitation = t
        .gql(
            Some(&admin),
            "query($id: ID!) { invitation(id: $id) { status acceptedBy { id email displayName } } }",
            json!({ "id": id }),
        )
        .await;
    let invitation = &invitation.data()["invitation"];
    assert_eq!(invitation["status"], "ACCEPTED");
    assert_eq!(invitation["acceptedBy"]["email"], "grace@example.com");
    assert_eq!(invitation["acceptedBy"]["displayName"], "Grace Hopper");
    let login = t.login("grace@example.com", PASSWORD_TYPED).await;
    assert_eq!(login["user"]["id"], invitation["acceptedBy"]["id"], "{login}");
    assert!(login["accessToken"].is_string(), "{login}");

    // The spent link and a made-up one: the same unavailable page, a 404, no hint of the
    // organization.
    let garbage = format!("{}/invitations/accept?token=not-a-real-token", served.base);
    let seen = drive("accept.mjs", json!({ "mode": "visit", "urls": [link, garbage] })).await;
    let pages = seen["pages"].as_array().expect("pages");
    assert_eq!(pages.len(), 2);
    for (page, what) in pages.iter().zip(["the spent link", "a garbage token"]) {
        assert_clean(page, 404, what);
        assert_eq!(page["heading"], UNAVAILABLE, "{what}");
        let text = page["bodyText"].as_str().expect("bodyText");
        assert!(!text.contains("Acme"), "{what} names no organization:\n{text}");
        assert!(
            !text.contains("Create your account"),
            "{what} has no form:\n{text}"
        );
    }
    assert_eq!(pages[0]["bodyText"], pages[1]["bodyText"], "the same wording");
    assert_eq!(pages[0]["title"], pages[1]["title"]);

    served.stop().await;
}

crate::backend_tests!(a_new_person_accepts_in_chromium);
