//! A Python test server as a child process (the SMTP sink, the webhook receiver): started with a
//! directory and a port (0: any), it prints its port when it listens, stores what it receives as
//! `DIR/<n>.json`, reads its settings from files in `DIR`, and can be stopped and restarted on the
//! same port. Killed and its directory removed on drop.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct PythonServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// The script, relative to the crate.
    script: &'static str,
    /// What to install when it does not start.
    needs: &'static str,
}

impl PythonServer {
    /// Starts `script` on a free port with a fresh directory named after `name`.
    pub fn start(script: &'static str, name: &str, needs: &'static str) -> Self {
        let dir = std::env::temp_dir().join(format!("portcullis-{name}-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        let mut server = Self {
            child: None,
            port: 0,
            dir,
            script,
            needs,
        };
        server.spawn();
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Replaces the setting file `name` atomically (the server reads it on each request).
    pub fn publish(&self, name: &str, text: &str) {
        let temporary = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&temporary, text).expect("write a server setting");
        std::fs::rename(&temporary, self.dir.join(name)).expect("publish a server setting");
    }

    /// What the server stored, in order of arrival.
    pub fn stored(&self) -> Vec<Value> {
        let mut numbered: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .expect("read the server's directory")
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
                let text = std::fs::read_to_string(&path).expect("read a stored item");
                serde_json::from_str(&text).expect("a stored item is JSON")
            })
            .collect()
    }

    /// What was stored once there are at least `count` items, or whatever is there after `timeout`
    /// (a bound on waiting; the caller asserts on what it gets).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let stored = self.stored();
            if stored.len() >= count || Instant::now() >= deadline {
                return stored;
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

    /// Starts the server again on the same port and directory (what it stored and its settings stay).
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port;
        self.spawn();
        assert_eq!(self.port, port, "the server came back on another port");
    }

    fn spawn(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(self.script);
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&self.dir)
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start python3 {}: {e}", self.script));
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        match line.trim().parse() {
            Ok(port) => {
                self.port = port;
                self.child = Some(child);
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "{} did not start ({status:?}); it needs {}",
                    self.script, self.needs
                );
            }
        }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
