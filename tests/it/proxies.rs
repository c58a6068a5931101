//! Behind a real reverse proxy (Debian's nginx, appending to `X-Forwarded-For`) the gateway sees
//! the client the proxy saw — in the audit log and in rate limits — when the proxy is trusted
//! (`PORTCULLIS_TRUSTED_PROXIES`), and nobody can claim an address by sending the header themselves.
//!
//! Every party is on loopback, each with its own address (all of 127.0.0.0/8 is local on Linux):
//! nginx reaches the gateway from 127.0.0.3 (`proxy_bind`) and is the trusted proxy; 127.0.0.4 plays
//! a trusted edge in front of nginx (a CDN, say), whose `X-Forwarded-For` names the real client;
//! 127.0.0.1 is an ordinary, untrusted client.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};

const NGINX_ADDRESS: &str = "127.0.0.3";
const EDGE: &str = "127.0.0.4";
const CLIENT: &str = "127.0.0.1";
/// Where the edge says the request came from.
const ORIGIN: &str = "203.0.113.7";

/// nginx in the foreground (one process, `master_process off`), proxying 127.0.0.1:<port> to
/// `upstream`; killed on drop. Its configuration, pid file, logs and temp files live in a
/// directory of its own, removed on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Nginx {
    fn start(upstream: SocketAddr) -> Nginx {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .unwrap_or_else(|| {
                panic!(
                    "nginx is missing; install Debian's: apt-get update && apt-get install -y \
                     nginx-light (.ci/run does this)"
                )
            });
        let dir = std::env::temp_dir().join(format!("portcullis-nginx-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("nginx's directory");
        let port = free_port();
        let d = dir.display();
        let config = format!(
            "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://{upstream};
            proxy_bind {NGINX_ADDRESS};
            proxy_http_version 1.1;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"
        );
        let config_path = dir.join("nginx.conf");
        std::fs::write(&config_path, config).expect("nginx.conf");
        let child = Command::new(binary)
            .arg("-c")
            .arg(&config_path)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = nginx.child.try_wait().expect("nginx's status") {
                let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
                panic!("nginx exited before it listened ({status}): {log}");
            }
            assert!(Instant::now() < deadline, "nginx does not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/graphql", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The gateway `t` (another instance on its database) served on a real port, trusting `trusted`.
struct Served {
    api: TestApp,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<portcullis::error::Result<()>>,
}

impl Served {
    async fn start(t: &TestApp, trusted: &str) -> Served {
        let trusted = trusted.parse().expect("trusted proxies");
        let api = t.instance(|c| c.trusted_proxies = trusted).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(portcullis::http::serve(api.app.clone(), listener, shutdown));
        Served {
            api,
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// A request as sent from `from` (the socket's local address) to `url`.
struct Post<'a> {
    url: String,
    from: &'a str,
    agent: &'a str,
    headers: Vec<(&'a str, &'a str)>,
}

impl<'a> Post<'a> {
    fn to(url: String, from: &'a str, agent: &'a str) -> Self {
        Self {
            url,
            from,
            agent,
            headers: Vec::new(),
        }
    }

    fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Logs in as the administrator with `password`; returns the GraphQL response.
    async fn login(self, password: &str) -> Value {
        let http = reqwest::Client::builder()
            .no_proxy()
            .local_address(self.from.parse::<IpAddr>().expect("an address"))
            .build()
            .expect("an HTTP client");
        let mut request = http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .header("user-agent", self.agent);
        for (name, value) in &self.headers {
            request = request.header(*name, *value);
        }
        let body = json!({
            "query": "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }",
            "variables": { "e": ADMIN_EMAIL, "p": password },
        });
        let response = request.body(body.to_string()).send().await.expect("an answer");
        response.json().await.expect("a JSON answer")
    }
}

/// The address the audit log recorded for the login sent with user agent `agent` (read by the
/// super-administrator with `auditEvents`).
async fn audited_ip(t: &TestApp, agent: &str) -> String {
    let admin = t.admin_token().await;
    let response = t
        .gql(
            Some(&admin),
            "{ auditEvents(first: 100, filter: {actions: [\"session.login_succeeded\"]}) {
               edges { node { context { ip userAgent } } } } }",
            json!({}),
        )
        .await;
    let found: Vec<&Value> = response.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"]["context"])
        .filter(|context| context["userAgent"] == agent)
        .collect();
    assert_eq!(found.len(), 1, "one login as {agent}: {found:?}");
    found[0]["ip"].as_str().expect("an address").to_owned()
}

fn assert_logged_in(response: &Value) {
    assert!(
        response["data"]["login"]["accessToken"].is_string(),
        "{response:#}"
    );
}

async fn the_audit_log_records_the_client_the_trusted_proxy_saw(t: TestApp) {
    let gateway = Served::start(&t, &format!("{NGINX_ADDRESS}/32, {EDGE}/32")).await;
    let nginx = Nginx::start(gateway.addr);

    // Through the edge and nginx: the chain is `203.0.113.7, 127.0.0.4` from nginx, both trusted
    // but the first: the client is 203.0.113.7.
    let via_edge = Post::to(nginx.url(), EDGE, "via-edge")
        .header("x-forwarded-for", ORIGIN)
        .login(ADMIN_PASSWORD)
        .await;
    assert_logged_in(&via_edge);
    assert_eq!(audited_ip(&gateway.api, "via-edge").await, ORIGIN);

    // An ordinary client claiming the same: the chain is `203.0.113.7, 127.0.0.1`, and 127.0.0.1
    // is not trusted to say anything. The client is what nginx saw.
    let spoofed = Post::to(nginx.url(), CLIENT, "spoofed-xff")
        .header("x-forwarded-for", ORIGIN)
        .login(ADMIN_PASSWORD)
        .await;
    assert_logged_in(&spoofed);
    assert_eq!(audited_ip(&gateway.api, "spoofed-xff").await, CLIENT);

    // Nor with a Forwarded header of its own: nginx passes it through untouched, and the gateway
    // reads only the header its proxies write (X-Forwarded-For by default).
    let spoofed = Post::to(nginx.url(), CLIENT, "spoofed-forwarded")
        .header("forwarded", "for=203.0.113.7")
        .login(ADMIN_PASSWORD)
        .await;
    assert_logged_in(&spoofed);
    assert_eq!(audited_ip(&gateway.api, "spoofed-forwarded").await, CLIENT);

    // Straight to the gateway, not through a trusted proxy: the header is ignored altogether.
    let direct = Post::to(gateway.url(), CLIENT, "direct")
        .header("x-forwarded-for", ORIGIN)
        .header("forwarded", "for=203.0.113.7")
        .login(ADMIN_PASSWORD)
        .await;
    assert_logged_in(&direct);
    assert_eq!(audited_ip(&gateway.api, "direct").await, CLIENT);

    // A gateway that trusts no one (the default) sees nginx, whatever nginx forwards.
    let untrusting = Served::start(&t, "").await;
    let nginx_in_front = Nginx::start(untrusting.addr);
    let ignored = Post::to(nginx_in_front.url(), EDGE, "untrusting")
        .header("x-forwarded-for", ORIGIN)
        .login(ADMIN_PASSWORD)
        .await;
    assert_logged_in(&ignored);
    assert_eq!(audited_ip(&untrusting.api, "untrusting").await, NGINX_ADDRESS);
}

async fn rate_limits_count_the_forwarded_client(t: TestApp) {
    let gateway = Served::start(&t, &format!("{NGINX_ADDRESS}/32, {EDGE}/32")).await;
    let nginx = Nginx::start(gateway.addr);
    let from = |origin: &'static str| Post::to(nginx.url(), EDGE, "limits").header("x-forwarded-for", origin);

    // Ten wrong passwords from one client spend that client's budget for this account...
    for _ in 0..10 {
        let wrong = from(ORIGIN).login("wrong-password").await;
        assert_eq!(
            wrong["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{wrong:#}"
        );
    }
    let limited = from(ORIGIN).login(ADMIN_PASSWORD).await;
    assert_eq!(
        limited["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{limited:#}"
    );

    // ...and only that client's: another one behind the same proxies still gets in, and so does
    // an ordinary client of nginx.
    assert_logged_in(&from("203.0.113.8").login(ADMIN_PASSWORD).await);
    let ordinary = Post::to(nginx.url(), CLIENT, "limits")
        .header("x-forwarded-for", ORIGIN)
        .login(ADMIN_PASSWORD)
        .await;
    assert_logged_in(&ordinary);

    // The lockout was recorded against the forwarded client.
    let admin = gateway.api.admin_token().await;
    let failures = gateway
        .api
        .gql(
            Some(&admin),
            "{ auditEvents(first: 100, filter: {actions: [\"session.login_failed\"]}) {
               edges { node { context { ip } } } } }",
            json!({}),
        )
        .await;
    let ips: Vec<&Value> = failures.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"]["context"]["ip"])
        .collect();
    assert_eq!(ips.len(), 10, "{ips:?}");
    assert!(ips.iter().all(|ip| *ip == ORIGIN), "{ips:?}");
}

crate::backend_tests!(
    the_audit_log_records_the_client_the_trusted_proxy_saw,
    rate_limits_count_the_forwarded_client,
);

/// A trusted-proxy list that is not one stops the gateway at start, naming the setting.
#[test]
fn an_invalid_trusted_proxy_is_a_startup_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .env("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8, 10.0.0.0/33")
        .env("PORTCULLIS_DATABASE_URL", "sqlite:///nonexistent/never-opened.db")
        .stdin(Stdio::null())
        .output()
        .expect("run portcullis");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PORTCULLIS_TRUSTED_PROXIES"), "{stderr}");
    assert!(stderr.contains("10.0.0.0/33"), "{stderr}");
}
