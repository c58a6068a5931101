//! A private PostgreSQL server for one test — a primary made with `initdb`, or a streaming replica
//! of one made with `pg_basebackup` — on a free loopback port, stopped and removed when dropped.
//!
//! Tests that pause replication or restart the server cannot do it to the shared server other
//! tests use, so they start their own from the machine's PostgreSQL binaries. PostgreSQL refuses
//! to run as root; as root, the server runs as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A bound on waiting for a server, not a speed claim.
const PATIENCE: Duration = Duration::from_secs(60);

pub struct PgCluster {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
}

impl PgCluster {
    /// A fresh primary that streams to replicas; `None` (the test skips) when PostgreSQL is not
    /// configured for tests, as outside CI.
    pub fn primary() -> Option<Self> {
        if std::env::var("PORTCULLIS_TEST_POSTGRES_URL").map_or(true, |url| url.is_empty()) {
            eprintln!("PORTCULLIS_TEST_POSTGRES_URL not set: private PostgreSQL servers not started");
            return None;
        }
        let cluster = Self::new();
        let data = cluster.data();
        cluster.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "--auth=trust", "--no-sync"],
        );
        std::fs::write(
            cluster.dir.join("data/pg_hba.conf"),
            "local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n",
        )
        .expect("pg_hba.conf");
        cluster.start();
        Some(cluster)
    }

    /// A streaming replica of this primary, caught up and accepting reads.
    pub fn replica(&self) -> Self {
        let replica = Self::new();
        let data = replica.data();
        let port = self.port.to_string();
        replica.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                &data,
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
            ],
        );
        replica.start();
        replica
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs one SQL statement (or several) through `psql` and returns what it printed, unaligned.
    pub fn sql(&self, database: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let output = self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                database,
                "-XAtq",
                "-c",
                sql,
            ],
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn new() -> Self {
        let bin = binaries().expect("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("portcullis-pg-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir(&dir).expect("data directory");
        if as_root() {
            let status = Command::new("chown")
                .args(["postgres:postgres", &dir.display().to_string()])
                .status()
                .expect("chown");
            assert!(status.success(), "chown of {}", dir.display());
        }
        Self { bin, dir, port }
    }

    /// The data directory, inside the cluster's own directory (which also holds the socket and
    /// the log, so that a base backup copies neither).
    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        let started = self
            .command(
                "pg_ctl",
                &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"],
            )
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            started,
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let deadline = Instant::now() + PATIENCE;
        let port = self.port.to_string();
        while !self
            .command("pg_isready", &["-h", "127.0.0.1", "-p", &port])
            .status()
            .is_ok_and(|status| status.success())
        {
            assert!(Instant::now() < deadline, "PostgreSQL on {port} did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let path = self.bin.join(program);
        let mut command = if as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        command.args(args).current_dir(std::env::temp_dir());
        command
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let output = self.command(program, args).output().expect(program);
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest installed PostgreSQL's binaries.
fn binaries() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
        .filter(|bin| Path::new(bin).join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}
