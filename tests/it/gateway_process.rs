//! A real `portcullis` process on a free loopback port, for tests that need several instances,
//! kills or signals: started with the bootstrap administrator and the settings a test adds, killed
//! (SIGKILL) when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD};

/// A bound on waiting for a process to come up, not a speed claim.
const PATIENCE: Duration = Duration::from_secs(60);

pub struct GatewayProcess {
    child: Child,
    pub url: String,
}

impl GatewayProcess {
    /// Starts the binary on `database_url` with `settings` (environment variables) on top of the
    /// common ones, without waiting for it to be ready.
    pub fn spawn(database_url: &str, settings: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        command
            .arg("serve")
            .env("PORTCULLIS_DATABASE_URL", database_url)
            .env("PORTCULLIS_LISTEN", format!("127.0.0.1:{port}"))
            // One issuer for all, as behind a load balancer.
            .env("PORTCULLIS_PUBLIC_URL", "http://localhost:8080")
            .env("PORTCULLIS_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("PORTCULLIS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("PORTCULLIS_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        for (name, value) in settings {
            command.env(name, value);
        }
        let child = command.spawn().expect("start the portcullis binary");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Starts it and waits until it is ready.
    pub async fn start(http: &reqwest::Client, database_url: &str, settings: &[(&str, &str)]) -> Self {
        let mut gateway = Self::spawn(database_url, settings);
        gateway.ready(http).await;
        gateway
    }

    /// Waits until `/readyz` answers 200; fails the test if the process exits first.
    pub async fn ready(&mut self, http: &reqwest::Client) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("the process's status") {
                panic!("portcullis at {} exited before it was ready: {status}", self.url);
            }
            let ready = http
                .get(format!("{}/readyz", self.url))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "portcullis at {} never ready",
                self.url
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL (`kill -9`): no shutdown, nothing handed back.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
