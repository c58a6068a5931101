//! A real SMTP server for tests: `tests/smtp_sink.py` (aiosmtpd) as a child process.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running sink on 127.0.0.1 that stores each message as JSON; killed and removed on drop.
pub struct SmtpSink {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl SmtpSink {
    /// Starts a sink on a free port with a fresh directory.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("portcullis-smtp-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("create the sink's directory");
        let (child, port) = spawn(&dir, 0);
        Self {
            child: Some(child),
            port,
            dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `PORTCULLIS_SMTP_URL` for this sink (plain text on loopback).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// What the sink does with the next messages: `accept`, `tempfail`, `permfail` or `hang`.
    pub fn set_mode(&self, mode: &str) {
        let temporary = self.dir.join(".mode.tmp");
        std::fs::write(&temporary, mode).expect("write the sink's mode");
        std::fs::rename(&temporary, self.dir.join("mode")).expect("publish the sink's mode");
    }

    /// The stored messages, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        let mut numbered: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .expect("read the sink's directory")
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
                let text = std::fs::read_to_string(&path).expect("read a stored message");
                serde_json::from_str(&text).expect("a stored message is JSON")
            })
            .collect()
    }

    /// The messages once there are at least `count`, or whatever is there after `timeout`
    /// (a bound on waiting; the caller asserts on what it gets).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count || Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server (SIGTERM, then waits); the port refuses connections until [`restart`](Self::restart).
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

    /// Starts the server again on the same port and directory (stored messages stay).
    pub fn restart(&mut self) {
        self.stop();
        let (child, port) = spawn(&self.dir, self.port);
        assert_eq!(port, self.port, "the sink came back on another port");
        self.child = Some(child);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn(dir: &Path, port: u16) -> (Child, u16) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(dir)
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python3 tests/smtp_sink.py");
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
                "the SMTP sink did not start ({status:?}); it needs aiosmtpd: \
                 python3 -m pip install aiosmtpd (Debian: apt-get install python3-aiosmtpd)"
            );
        }
    }
}
