//! A real HTTP receiver for webhook tests: `tests/webhook_receiver.py` (stdlib `http.server`,
//! signatures checked with the Standard Webhooks reference library) as a child process.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running receiver on 127.0.0.1 that stores each request as JSON; killed and removed on drop.
///
/// Each stored request has `method`, `path`, `headers` (lower-cased names), `body` (text),
/// `status` (what it answered; null for `hang` and `reset`), `mode`, `received_at`,
/// `timestamp_header` and `verified` (`{secret: bool}` for each secret of
/// [`set_secrets`](Self::set_secrets), by the reference library).
pub struct WebhookReceiver {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl WebhookReceiver {
    /// Starts a receiver on a free port with a fresh directory.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("portcullis-webhooks-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("create the receiver's directory");
        let (child, port) = spawn(&dir, 0);
        Self {
            child: Some(child),
            port,
            dir,
        }
    }

    /// The endpoint URL to register (plain HTTP on loopback).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// What the receiver answers from the next request on: `accept`, `fail`, `fail:N`, `gone`,
    /// `redirect`, `ratelimit:S`, `unavailable:S`, `hang`, `reset` or `huge`.
    pub fn set_mode(&self, mode: &str) {
        self.publish("mode", mode);
    }

    /// The `whsec_…` secrets each request is verified with from now on.
    pub fn set_secrets(&self, secrets: &[&str]) {
        self.publish("secrets", &secrets.join("\n"));
    }

    fn publish(&self, name: &str, text: &str) {
        let temporary = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&temporary, text).expect("write a receiver setting");
        std::fs::rename(&temporary, self.dir.join(name)).expect("publish a receiver setting");
    }

    /// The stored requests, in order of arrival.
    pub fn requests(&self) -> Vec<Value> {
        let mut numbered: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .expect("read the receiver's directory")
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let number = path.file_name()?.to_str()?.strip_suffix(".json")?.parse().ok()?;
                Some((number, path))
            })
            .collect();
        numbered.sort();
        numbered
            .into_iter()
            .map(|(_, path)| {
                let text = std::fs::read_to_string(&path).expect("read a stored request");
                serde_json::from_str(&text).expect("a stored request is JSON")
            })
            .collect()
    }

    /// The requests once there are at least `count`, or whatever is there after `timeout`
    /// (a bound on waiting; the caller asserts on what it gets).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if requests.len() >= count || Instant::now() >= deadline {
                return requests;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server (SIGTERM, then waits); the port refuses connections until
    /// [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let terminated = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .is_ok_and(|status| status.success());
            if !terminated {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory (stored requests, mode and secrets
    /// stay).
    pub fn restart(&mut self) {
        self.stop();
        let (child, port) = spawn(&self.dir, self.port);
        assert_eq!(port, self.port, "the receiver came back on another port");
        self.child = Some(child);
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn(dir: &Path, port: u16) -> (Child, u16) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook_receiver.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(dir)
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python3 tests/webhook_receiver.py");
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    match line.trim().parse() {
        Ok(port) => (child, port),
        Err(_) => {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "the webhook receiver did not start ({status:?}); it needs the Standard Webhooks \
                 reference library: python3 -m pip install standardwebhooks"
            );
        }
    }
}
