//! Step 1, migration gate: migrations apply with exit 0 on the real
//! Postgres, and "current" shows head.

use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::migrate::Migrator;

use super::{StepContext, StepOutcome, StepRecorder, run_service_command};
use crate::scenario::{MigrationSpec, Template};

pub const ID: &str = "migration-gate";
pub const TITLE: &str = "Migration gate (Postgres)";

pub async fn migrate(ctx: &mut StepContext<'_>, number: u32) -> StepOutcome {
    let mut step = StepRecorder::new(ctx.masker, number, ID, TITLE);
    let check_only = read_only(ctx);
    match &ctx.scenario.migrations {
        None => step.not_run(
            "the scenario has no [migrations] section, so nothing proves the schema is at head",
        ),
        Some(MigrationSpec::SqlDir { dir }) => sql_dir(ctx, &mut step, dir, check_only).await,
        Some(MigrationSpec::Command { current: None, .. }) if check_only => {
            step.not_run(EXTERNAL_NO_CURRENT)
        }
        Some(MigrationSpec::Command {
            command,
            workdir,
            env,
            current,
            timeout,
        }) => {
            let mut vars = crate::service::inherited_env(&ctx.scenario.service.inherit);
            vars.extend(
                ctx.scenario
                    .service
                    .env
                    .iter()
                    .chain(env.iter())
                    .map(|(k, t)| (k.clone(), t.render(&ctx.bindings))),
            );
            vars.extend(ctx.extra_env.iter().cloned());
            let argv = render(command, ctx);
            if check_only {
                ctx.detail(&format!(
                    "external servers: not running `{}`, only the read-only current check",
                    argv.join(" ")
                ));
            } else {
                run_expecting_exit_0(ctx, &mut step, &argv, workdir, &vars, *timeout).await;
            }
            if let Some(current) = current {
                let argv = render(&current.command, ctx);
                let label = argv.join(" ");
                let run =
                    run_expecting_exit_0(ctx, &mut step, &argv, workdir, &vars, *timeout).await;
                let shows = run.output.contains(&current.expect);
                step.check(
                    format!("`{label}` output shows `{}`", current.expect),
                    if shows {
                        format!("output contains `{}`", current.expect)
                    } else {
                        format!("`{}` not found in the output", current.expect)
                    },
                    shows,
                );
            }
        }
    }
    step.finish()
}

/// Run one migration command, recording it and the check that it exits 0.
async fn run_expecting_exit_0(
    ctx: &mut StepContext<'_>,
    step: &mut StepRecorder<'_>,
    argv: &[String],
    workdir: &Path,
    vars: &[(String, String)],
    timeout: Duration,
) -> super::CommandRun {
    let label = argv.join(" ");
    ctx.detail(&format!("run {label}"));
    let run = run_service_command(argv, workdir, vars, timeout).await;
    step.service_command(
        &label,
        &run.invocation,
        run.exit_code,
        &run.output,
        run.duration,
    );
    step.check(
        format!("`{label}` exits 0"),
        observed_exit(&run.exit_code, run.timed_out, &run.spawn_error),
        run.exit_code == Some(0),
    );
    run
}

/// Why a command migration without `current` proves nothing on external
/// servers.
const EXTERNAL_NO_CURRENT: &str = "external servers (--deps external): gonogo does not apply migrations to servers it does not own unless [migrations] external = true, and the scenario has no `current` command to check the schema read-only";

/// Whether the servers are external and the scenario did not opt in to
/// migrating them: then only the read-only "current" check runs.
fn read_only(ctx: &StepContext<'_>) -> bool {
    ctx.mode.provider().is_some_and(|p| !p.owns_servers()) && !ctx.scenario.migrate_external
}

fn render(argv: &[Template], ctx: &StepContext<'_>) -> Vec<String> {
    argv.iter().map(|t| t.render(&ctx.bindings)).collect()
}

fn observed_exit(code: &Option<i32>, timed_out: bool, spawn_error: &Option<String>) -> String {
    if let Some(e) = spawn_error {
        return format!("could not start: {e}");
    }
    if timed_out {
        return "still running at the deadline; killed".into();
    }
    match code {
        Some(c) => format!("exit {c}"),
        None => "killed by a signal".into(),
    }
}

/// Apply a directory of SQL migrations with sqlx's migrator, then read
/// `_sqlx_migrations` back as the "current" proof.
async fn sql_dir(
    ctx: &mut StepContext<'_>,
    step: &mut StepRecorder<'_>,
    dir: &Path,
    check_only: bool,
) {
    let url = ctx
        .bindings
        .get("database_url")
        .cloned()
        .unwrap_or_default();
    let invocation = format!(
        "sqlx migrate run --source {} --database-url {url}",
        dir.display()
    );
    let head = if check_only {
        ctx.detail(&format!(
            "external servers: reading the head of {} without applying it",
            dir.display()
        ));
        let files = files_head(dir).await;
        step.check(
            "the migration directory names a head version",
            match &files {
                Ok(Some(v)) => format!("head is version {v}; not applied (external servers, [migrations] external is not set)"),
                Ok(None) => "no migrations in the directory".into(),
                Err(e) => e.clone(),
            },
            matches!(files, Ok(Some(_))),
        );
        files.ok().flatten()
    } else {
        ctx.detail(&format!("apply SQL migrations from {}", dir.display()));
        let started = Instant::now();
        let applied = apply(dir, &url).await;
        let (exit_code, output, head) = match &applied {
            Ok((lines, head)) => (0, lines.join("\n"), *head),
            Err(error) => (1, format!("error: {error}"), None),
        };
        step.command(
            "sqlx migrate run",
            &invocation,
            Some(exit_code),
            &output,
            started.elapsed(),
        );
        step.check(
            "migrations apply with exit 0",
            match &applied {
                Ok((lines, _)) => format!("exit 0; {} migrations in the directory", lines.len()),
                Err(e) => format!("exit 1: {}", first_line(e)),
            },
            applied.is_ok(),
        );
        head
    };

    let started = Instant::now();
    let current = current(&url).await;
    let query = "SELECT version, description, success FROM _sqlx_migrations ORDER BY version";
    let (code, text) = match &current {
        Ok(rows) => (
            0,
            rows.iter()
                .map(|(v, d, ok)| format!("{v} {d}{}", if *ok { "" } else { " (FAILED)" }))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Err(e) => (1, format!("error: {e}")),
    };
    let latest = current
        .as_ref()
        .ok()
        .and_then(|rows| rows.iter().filter(|r| r.2).map(|r| r.0).max());
    let all_ok = current
        .as_ref()
        .is_ok_and(|rows| !rows.is_empty() && rows.iter().all(|r| r.2));
    let at_head = all_ok && head.is_some() && latest == head;
    let shown = format!(
        "{text}\ncurrent: {} {}",
        latest.map_or("none".into(), |v| v.to_string()),
        if at_head { "(head)" } else { "(not head)" }
    );
    step.command(
        "current",
        &format!("psql {url} -c '{query}'"),
        Some(code),
        &shown,
        started.elapsed(),
    );
    step.check(
        format!(
            "current shows head (version {})",
            head.map_or("?".into(), |h| h.to_string())
        ),
        match latest {
            Some(v) if at_head => format!("version {v} (head), every migration succeeded"),
            Some(v) => format!("version {v}, not head"),
            None => "no migration recorded".into(),
        },
        at_head,
    );
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The highest version in the migration directory, read without a
/// database.
async fn files_head(dir: &Path) -> Result<Option<i64>, String> {
    let migrator = Migrator::new(dir.to_path_buf())
        .await
        .map_err(|e| format!("cannot read migrations in {}: {e}", dir.display()))?;
    Ok(migrator.iter().map(|m| m.version).max())
}

/// Run the migrator; gives one line per migration and the head version.
async fn apply(dir: &Path, url: &str) -> Result<(Vec<String>, Option<i64>), String> {
    let migrator = Migrator::new(dir.to_path_buf())
        .await
        .map_err(|e| format!("cannot read migrations in {}: {e}", dir.display()))?;
    let mut conn = connect(url).await?;
    // A migration that waits on a lock must not hang the run.
    let limit = crate::scenario::ranges::MIGRATION_TIMEOUT.default;
    let result = match tokio::time::timeout(limit, migrator.run(&mut conn)).await {
        Ok(result) => result,
        Err(_) => {
            return Err(format!(
                "the migrations did not finish within {} s",
                limit.as_secs()
            ));
        }
    };
    let lines: Vec<String> = migrator
        .iter()
        .map(|m| {
            format!(
                "{}/{} {}",
                m.version,
                m.migration_type.label(),
                m.description
            )
        })
        .collect();
    let head = migrator.iter().map(|m| m.version).max();
    let _ = conn.close().await;
    result.map_err(|e| e.to_string())?;
    Ok((lines, head))
}

async fn current(url: &str) -> Result<Vec<(i64, String, bool)>, String> {
    let mut conn = connect(url).await?;
    let query = sqlx::query_as(
        "SELECT version, description, success FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(&mut conn);
    let rows: Vec<(i64, String, bool)> = tokio::time::timeout(Duration::from_secs(30), query)
        .await
        .map_err(|_| "reading _sqlx_migrations took more than 30 s".to_string())?
        .map_err(|e| e.to_string())?;
    let _ = conn.close().await;
    Ok(rows)
}

async fn connect(url: &str) -> Result<sqlx::PgConnection, String> {
    match tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("cannot connect to Postgres: {e}")),
        Err(_) => Err("cannot connect to Postgres: timed out after 10 s".into()),
    }
}
