//! Step 1, migration gate: migrations apply with exit 0 on the real
//! Postgres, and "current" shows head.

use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::migrate::Migrator;

use super::{
    CommandRun, Exercise, Mode, Ran, StepContext, StepFuture, StepRecorder, Unit,
    run_service_command,
};
use crate::outcome::StepOutcome;
use crate::plan::{Hold, PlannedStep, Precondition, Resource};
use crate::scenario::{CurrentCheck, MigrationSpec, Scenario, Template};

pub const ID: &str = "migration-gate";
pub const TITLE: &str = "Migration gate (Postgres)";

/// The migration gate: it needs a database connection (launch mode), a
/// `[migrations]` table, and on servers gonogo does not own a read-only way
/// to check the schema.
pub fn unit(scenario: &Scenario, mode: &Mode) -> Unit {
    let step = PlannedStep::new(
        ID,
        TITLE,
        "The migrations apply on a real Postgres and leave the schema at head.",
        "the scenario's migrations (a command, or SQL files gonogo applies) against the run's Postgres",
    );
    let mut preconditions = vec![
        Precondition::Database,
        Precondition::Configured {
            needs: "[migrations] in the scenario, saying how migrations are applied".into(),
            unmet: scenario
                .migrations
                .is_none()
                .then(|| "the scenario has none, so nothing proves the schema is at head".into()),
        },
    ];
    let external = mode.provider().is_some_and(|p| !p.owns_servers());
    if external && !scenario.migrate_external {
        let no_current = matches!(
            scenario.migrations,
            Some(MigrationSpec::Command { current: None, .. })
        );
        preconditions.push(Precondition::Configured {
            needs: "a read-only schema check on servers gonogo does not own (a `current` command, or [migrations] external = true)".into(),
            unmet: no_current.then(|| "external servers (--deps external), and the scenario's migration command has no `current` check".into()),
        });
    }
    // It writes the schema until the migrations are applied (then it
    // releases its holds: the `current` check only reads), on a server
    // other clients may use meanwhile.
    let holds = vec![
        Hold::holds(Resource::Schema("postgres".into())),
        Hold::uses(Resource::Server("postgres".into())),
    ];
    Unit::one(step, preconditions, holds, Migrate)
}

struct Migrate;

impl Exercise for Migrate {
    fn run<'a>(&'a self, ctx: &'a mut StepContext<'_>, steps: &'a [PlannedStep]) -> StepFuture<'a> {
        Box::pin(async move { Ok(Ran::one(migrate(ctx, &steps[0]).await)) })
    }
}

async fn migrate(ctx: &mut StepContext<'_>, planned: &PlannedStep) -> StepOutcome {
    let mut step = StepRecorder::new(ctx.masker, planned);
    let check_only = read_only(ctx);
    match &ctx.scenario.migrations {
        // Ruled out by the unit's preconditions.
        None => {}
        Some(MigrationSpec::SqlDir { dir }) => sql_dir(ctx, &mut step, dir, check_only).await,
        Some(MigrationSpec::Command {
            command,
            workdir,
            env,
            current,
            timeout,
        }) => {
            let vars = command_env(ctx, env);
            let argv = render(command, ctx);
            if check_only {
                ctx.detail(&format!(
                    "external servers: not running `{}`, only the read-only current check",
                    argv.join(" ")
                ));
            } else {
                run_expecting_exit_0(ctx, &mut step, &argv, workdir, &vars, *timeout).await;
            }
            // The migrations are applied (or failed): `current` only reads,
            // so the units that need the migrated schema may start beside it.
            ctx.link.release();
            if let Some(current) = current {
                check_current(ctx, &mut step, current, workdir, &vars, *timeout).await;
            }
        }
    }
    step.finish()
}

/// The service's environment plus the migration's own, rendered.
fn command_env(ctx: &StepContext<'_>, env: &[(String, Template)]) -> Vec<(String, String)> {
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
    vars
}

/// Run the `current` command: it must exit 0 and show the expected text.
async fn check_current(
    ctx: &mut StepContext<'_>,
    step: &mut StepRecorder<'_>,
    current: &CurrentCheck,
    workdir: &Path,
    vars: &[(String, String)],
    timeout: Duration,
) {
    let argv = render(&current.command, ctx);
    let label = argv.join(" ");
    let run = run_expecting_exit_0(ctx, step, &argv, workdir, vars, timeout).await;
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

/// Run one migration command, recording it and the check that it exits 0.
async fn run_expecting_exit_0(
    ctx: &mut StepContext<'_>,
    step: &mut StepRecorder<'_>,
    argv: &[String],
    workdir: &Path,
    vars: &[(String, String)],
    timeout: Duration,
) -> CommandRun {
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

/// Apply a directory of SQL migrations with sqlx's migrator (or, on
/// servers gonogo does not own, only read its head), then read
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
    let head = if check_only {
        read_head(ctx, step, dir).await
    } else {
        apply_dir(ctx, step, dir, &url).await
    };
    // Applied (or not): the rest only reads.
    ctx.link.release();
    check_sql_current(step, &url, head).await;
}

/// The head version of `dir`, without applying anything.
async fn read_head(
    ctx: &mut StepContext<'_>,
    step: &mut StepRecorder<'_>,
    dir: &Path,
) -> Option<i64> {
    ctx.detail(&format!(
        "external servers: reading the head of {} without applying it",
        dir.display()
    ));
    let files = files_head(dir).await;
    step.check(
        "the migration directory names a head version",
        match &files {
            Ok(Some(v)) => format!(
                "head is version {v}; not applied (external servers, [migrations] external is not set)"
            ),
            Ok(None) => "no migrations in the directory".into(),
            Err(e) => e.clone(),
        },
        matches!(files, Ok(Some(_))),
    );
    files.ok().flatten()
}

/// Apply `dir` to the database at `url`; gives its head version.
async fn apply_dir(
    ctx: &mut StepContext<'_>,
    step: &mut StepRecorder<'_>,
    dir: &Path,
    url: &str,
) -> Option<i64> {
    ctx.detail(&format!("apply SQL migrations from {}", dir.display()));
    let started = Instant::now();
    let applied = apply(dir, url).await;
    let (exit_code, output, head) = match &applied {
        Ok((lines, head)) => (0, lines.join("\n"), *head),
        Err(error) => (1, format!("error: {error}"), None),
    };
    step.command(
        "sqlx migrate run",
        &format!(
            "sqlx migrate run --source {} --database-url {url}",
            dir.display()
        ),
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
}

/// Read `_sqlx_migrations`: every migration succeeded and the latest is
/// `head`.
async fn check_sql_current(step: &mut StepRecorder<'_>, url: &str, head: Option<i64>) {
    let started = Instant::now();
    let current = current(url).await;
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
