//! The `portcullis` command: serve the gateway (default), migrate, print schemas, rotate keys.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use portcullis::app::App;
use portcullis::clock::SystemClock;
use portcullis::config::Config;
use portcullis::db::{self, Db};
use portcullis::error::Error;
use portcullis::{audit, graphql, http, telemetry};

/// A GraphQL-first authorization gateway.
#[derive(Parser)]
#[command(name = "portcullis", version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the gateway (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Print the Cedar schema of the gateway's own namespace (its actions and entity types).
    CedarSchema,
    /// Publish a new access-token signing key; every instance signs with it after
    /// PORTCULLIS_KEY_PUBLISH_SECONDS, and the old one stays published until its tokens expire.
    RotateSigningKey,
    /// Audit log maintenance.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the hash chains: every organization's and the gateway-wide one (or only `--organization`).
    /// Prints one line per chain and exits with status 1 if any event does not match.
    Verify {
        /// An organization id: verify its chain only.
        #[arg(long)]
        organization: Option<String>,
    },
    /// List role assignments made beyond the grant bound (a gateway-wide role held in an
    /// organization; a role carrying permissions its assigner did not hold there). Prints one line
    /// per assignment and exits with status 1 if there is any.
    Escalations,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    match command {
        Command::Schema => {
            print!("{}", graphql::sdl());
            return ExitCode::SUCCESS;
        }
        Command::CedarSchema => {
            print!("{}", portcullis::authz::schema::GATEWAY_SCHEMA);
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    telemetry::init(&cli.config.log, cli.config.log_format);
    let outcome = match command {
        Command::Serve => serve(cli.config).await,
        Command::Migrate => migrate(cli.config).await,
        Command::RotateSigningKey => rotate_signing_key(cli.config).await,
        Command::Audit {
            command: AuditCommand::Verify { organization },
        } => match verify_audit_log(cli.config, organization).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(error) => Err(error),
        },
        Command::Audit {
            command: AuditCommand::Escalations,
        } => match list_escalations(cli.config).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(error) => Err(error),
        },
        Command::Schema | Command::CedarSchema => Ok(()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            match &error {
                Error::Internal(source) => tracing::error!(error = ?source, "portcullis failed"),
                other => tracing::error!(error = %other.message(), "portcullis failed"),
            }
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), Error> {
    let listen = config.listen;
    let public_url = config.public_url();
    let app = App::start(config, Arc::new(SystemClock)).await?;
    audit::retention::spawn_job(&app);
    let jobs = portcullis::jobs::Runner::start(&app);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("cannot listen on {listen}: {e}")))?;
    tracing::info!(
        database = ?app.db.backend(),
        "portcullis listening on http://{listen} — GraphiQL at {public_url}/graphiql"
    );
    let served = http::serve(app, listener, shutdown_signal()).await;
    // Emails being sent finish (or are taken over by another instance when their lease lapses).
    jobs.stop(std::time::Duration::from_secs(10)).await;
    served
}

async fn migrate(config: Config) -> Result<(), Error> {
    let db = Db::connect_with(&config.database_url(), 1, &config.pg_settings())?;
    let starting = db::startup_lock(&db).await?;
    let applied = db::run_migrations(&db).await?;
    starting.release().await?;
    if applied.is_empty() {
        tracing::info!("database is up to date");
    }
    for name in applied {
        tracing::info!(migration = %name, "applied migration");
    }
    Ok(())
}

async fn rotate_signing_key(config: Config) -> Result<(), Error> {
    let app = App::start(config, Arc::new(SystemClock)).await?;
    let rotated = app.keys.rotate(&app.db, app.now()).await?;
    tracing::info!(
        kid = %rotated.kid,
        activates_at = %rotated.activates_at,
        "new signing key published; every instance signs with it from its activation"
    );
    // For scripts: the new key's id and when instances start signing with it.
    println!("{} {}", rotated.kid, rotated.activates_at);
    Ok(())
}

/// Prints one line per chain; `Ok(false)` if any does not verify.
async fn verify_audit_log(config: Config, organization: Option<String>) -> Result<bool, Error> {
    let app = App::start(config, Arc::new(SystemClock)).await?;
    app.audit_sequencer.settle().await?;
    let reports = match organization {
        Some(id) => {
            let id = id
                .parse()
                .map_err(|_| Error::bad_input("organization", "not an organization id"))?;
            vec![audit::chain::verify(&app.db, Some(id)).await?]
        }
        None => audit::chain::verify_all(&app.db).await?,
    };
    let mut all_ok = true;
    for report in &reports {
        let chain = report
            .organization_id
            .map_or_else(|| "gateway".to_owned(), |id| format!("organization {id}"));
        match &report.mismatch {
            None => println!("{chain}: OK ({} events)", report.checked),
            Some(mismatch) => {
                all_ok = false;
                let event = mismatch.event_id.map_or_else(
                    || format!("#{}", mismatch.seq),
                    |id| format!("{id} (#{})", mismatch.seq),
                );
                println!("{chain}: MISMATCH at event {event}: {}", mismatch.reason);
            }
        }
    }
    if reports.is_empty() {
        println!("the audit log is empty");
    }
    Ok(all_ok)
}

/// Prints one line per escalated assignment; `Ok(false)` if there is any.
async fn list_escalations(config: Config) -> Result<bool, Error> {
    let app = App::start(config, Arc::new(SystemClock)).await?;
    // Who made each assignment comes from the log: events still waiting to be positioned count.
    app.audit_sequencer.settle().await?;
    let found = portcullis::authz::escalations::find(&app.db).await?;
    for escalation in &found {
        let assignment = &escalation.assignment;
        let scope = assignment
            .organization_id
            .map_or_else(|| "globally".to_owned(), |id| format!("in organization {id}"));
        let by = escalation
            .assigned_by
            .map_or_else(|| "unknown".to_owned(), |id| id.to_string());
        println!(
            "assignment {}: user {} holds {} {scope}, assigned by {by}: {}",
            assignment.id, assignment.user_id, escalation.role_key, escalation.reason
        );
    }
    if found.is_empty() {
        println!("no escalated role assignments");
    }
    Ok(found.is_empty())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown signal received");
}
