//! Load generator for invitations: bulk-invites N people in one `createInvitations`-equivalent call
//! and times until a real SMTP server (`tests/smtp_sink.py`, aiosmtpd) holds every email; with
//! several instances on one PostgreSQL database, also how fast they claim jobs together and
//! whether any email went out twice.
//!
//! ```text
//! cargo run --release --example invite_load -- sqlite:///tmp/invite-load.db 1000 1
//! cargo run --release --example invite_load -- postgres://postgres@127.0.0.1/invite_load 1000 2
//! ```
//! Arguments: database URL (its database must exist and may be empty), invitations (1,000 at most
//! per call; more are sent as several calls), instances (each with its own job runner).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::app::App;
use portcullis::clock::SystemClock;
use portcullis::config::Config;
use portcullis::db::{Id, users};
use portcullis::identity::{Actor, AuthMethod, ClientInfo, organizations};
use portcullis::invitations::create::{self, NewInvitation};
use portcullis::jobs::Runner;

const ADMIN: &str = "load-admin@example.com";
/// The built-in `org_admin` role.
const ORG_ADMIN: &str = "00000000-0000-7000-8000-000000000003";

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "sqlite:///tmp/invite-load.db".to_owned());
    let count: usize = args.next().map_or(Ok(1000), |n| n.parse())?;
    let instances: usize = args.next().map_or(Ok(1), |n| n.parse())?;

    let dir = std::env::temp_dir().join(format!("portcullis-invite-load-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let (mut sink, port) = start_sink(&dir)?;

    let mut config = Config::for_database(url.clone());
    config.admin_email = Some(ADMIN.to_owned());
    config.admin_password = Some("load-admin-password".to_owned());
    config.smtp_url = Some(format!("smtp://127.0.0.1:{port}?tls=none"));
    config.job_poll_ms = 200;
    let mut apps = Vec::new();
    for _ in 0..instances.max(1) {
        apps.push(
            App::start(config.clone(), Arc::new(SystemClock))
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        );
    }
    let app = apps[0].clone();
    let mut conn = app.db.conn().await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let admin = users::find_by_email(&mut conn, ADMIN)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .ok_or_else(|| anyhow::anyhow!("no bootstrap administrator"))?;
    drop(conn);
    let actor = Actor {
        user: admin,
        method: AuthMethod::Password,
        session_id: None,
        api_key_id: None,
        mfa: portcullis::identity::Mfa::default(),
        client: ClientInfo::default(),
    };
    let slug = format!("load-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let org = organizations::create(&app, &actor, &slug, "Load test")
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let role: Id = ORG_ADMIN.parse()?;

    let runners: Vec<Runner> = apps.iter().map(Runner::start).collect();
    let started = Instant::now();
    let mut created = 0;
    for chunk in (0..count).collect::<Vec<_>>().chunks(create::MAX_ROWS) {
        let rows = chunk
            .iter()
            .map(|i| NewInvitation {
                email: format!("person{i}@{slug}.example.com"),
                role_ids: vec![role],
                message: Some("Welcome aboard".to_owned()),
                locale: None,
            })
            .collect();
        let outcome = create::create_many(&app, &actor, org.id, rows, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        created += outcome.results.len();
    }
    let invited = started.elapsed();
    let delivered = loop {
        let held = messages(&dir);
        if held >= count {
            break started.elapsed();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "only {held} of {count} emails after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (total, distinct) = message_ids(&dir)?;
    for runner in runners {
        runner.stop(Duration::from_secs(5)).await;
    }
    let _ = sink.kill();
    let _ = sink.wait();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "backend={:?} instances={} invitations={created} invite_call_ms={} all_delivered_ms={} emails_per_s={:.0} emails_received={total} distinct_message_ids={distinct} duplicates={}",
        app.db.backend(),
        apps.len(),
        invited.as_millis(),
        delivered.as_millis(),
        count as f64 / delivered.as_secs_f64(),
        total - distinct,
    );
    Ok(())
}

fn start_sink(dir: &Path) -> anyhow::Result<(Child, u16)> {
    use std::io::BufRead as _;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
    let mut child = Command::new("python3")
        .env("SMTP_SINK_HEADERS_ONLY", "1")
        .arg(script)
        .arg(dir)
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        std::io::BufReader::new(stdout).read_line(&mut line)?;
    }
    Ok((child, line.trim().parse()?))
}

fn messages(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "json"))
            .count()
    })
}

/// Emails received, and how many distinct Message-IDs among them.
fn message_ids(dir: &Path) -> anyhow::Result<(usize, usize)> {
    let mut ids = HashSet::new();
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "json") {
            let message: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
            total += 1;
            ids.insert(message["message_id"].as_str().unwrap_or_default().to_owned());
        }
    }
    Ok((total, ids.len()))
}
