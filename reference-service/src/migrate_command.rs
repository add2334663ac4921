//! The `migrate` subcommand: applies pending migrations (`migrate`) or reports
//! how far the database is from head (`migrate --current`), like
//! `alembic upgrade head` / `alembic current`. Results go to stdout, errors to stderr.

use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::config::{Config, DatabaseScheme, postgres_url_for_sqlx};
use crate::migrations::{self, MigrationStatus};
use crate::redact::Scrubber;

/// Connecting is bounded; applying migrations is not, since DDL may be slow.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Apply,
    /// Report the current version and whether it is head.
    Current,
}

/// Runs `action` against `DATABASE_URL`, with the embedded migrations or, when
/// `source` is given, the migrations in that directory.
pub async fn run(config: &Config, action: MigrateAction, source: Option<&Path>) -> ExitCode {
    let scrubber = Scrubber::new(&[config.database_url.as_deref()]);
    match run_inner(config, action, source).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("migrate: {}", scrubber.scrub(&message));
            ExitCode::FAILURE
        }
    }
}

async fn run_inner(
    config: &Config,
    action: MigrateAction,
    source: Option<&Path>,
) -> Result<(), String> {
    let url = config
        .database_url
        .as_deref()
        .ok_or("DATABASE_URL is not set")?;
    if DatabaseScheme::of(url) != DatabaseScheme::Postgres {
        return Err("DATABASE_URL must be a postgres:// or postgresql:// URL".to_owned());
    }
    let options = PgConnectOptions::from_str(&postgres_url_for_sqlx(url))
        .map_err(|e| format!("invalid DATABASE_URL: {e}"))?;

    let loaded;
    let migrator: &Migrator = match source {
        None => &migrations::EMBEDDED,
        Some(dir) => {
            loaded = Migrator::new(dir)
                .await
                .map_err(|e| format!("failed to load migrations from {}: {e}", dir.display()))?;
            &loaded
        }
    };

    let mut conn = tokio::time::timeout(CONNECT_DEADLINE, PgConnection::connect_with(&options))
        .await
        .map_err(|_| {
            format!(
                "failed to connect: timeout after {}s",
                CONNECT_DEADLINE.as_secs()
            )
        })?
        .map_err(|e| format!("failed to connect: {e}"))?;

    let result = match action {
        MigrateAction::Apply => migrations::apply_pending(migrator, &mut conn, |applied| {
            println!(
                "applied {} ({}ms)",
                applied.name,
                applied.elapsed.as_millis()
            );
        })
        .await
        .map(|status| println!("migrations: head (version {})", version(&status)))
        .map_err(|e| e.to_string()),
        MigrateAction::Current => migrations::status(migrator, &mut conn)
            .await
            .map(|status| match status.pending {
                0 => println!("current: {} (head)", version(&status)),
                n => println!("current: {} (pending: {n})", version(&status)),
            })
            .map_err(|e| format!("failed to read migration status: {e}")),
    };
    let _ = conn.close().await;
    result
}

fn version(status: &MigrationStatus) -> String {
    status
        .current
        .map_or_else(|| "none".to_owned(), |v| v.to_string())
}
