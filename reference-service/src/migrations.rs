//! Migrations: the embedded migrator, the status that `/ready` and
//! `migrate --current` report, and the per-migration apply loop behind `migrate`.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::PgConnection;
use sqlx::migrate::{Migrate, MigrateError, Migration, Migrator};
use sqlx::postgres::PgExecutor;

/// The service's own schema, compiled into the binary.
pub static EMBEDDED: Migrator = sqlx::migrate!("./migrations");

/// sqlx's default bookkeeping table; `migrate!` always uses it.
const TABLE: &str = "_sqlx_migrations";
/// Postgres `undefined_table`: the bookkeeping table does not exist yet.
const UNDEFINED_TABLE: &str = "42P01";

/// How far a database is from the migrator's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Highest successfully applied version, if any.
    pub current: Option<i64>,
    /// Migrations of the migrator not yet applied successfully.
    pub pending: usize,
}

/// One migration applied by [`apply_pending`].
#[derive(Debug, Clone)]
pub struct Applied {
    /// `version/name`, e.g. `1/create_widgets`.
    pub name: String,
    pub elapsed: Duration,
}

fn up_migrations(migrator: &Migrator) -> impl Iterator<Item = &Migration> {
    migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
}

/// Why `migrate` stopped: the migration it was applying, if it got that far.
#[derive(Debug)]
pub struct MigrateFailure {
    pub migration: Option<String>,
    pub error: MigrateError,
}

impl std::fmt::Display for MigrateFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.migration {
            Some(name) => write!(f, "failed to apply {name}: {}", self.error),
            None => write!(f, "failed to migrate: {}", self.error),
        }
    }
}

impl From<MigrateError> for MigrateFailure {
    fn from(error: MigrateError) -> Self {
        MigrateFailure {
            migration: None,
            error,
        }
    }
}

/// `0001_create_widgets.sql` has the description "create widgets"; print it as
/// it appears in the file name.
fn display_name(migration: &Migration) -> String {
    migration.description.replace(' ', "_")
}

/// Compares `migrator` with the bookkeeping table; a missing table means every
/// migration is pending.
pub async fn status<'e>(
    migrator: &Migrator,
    executor: impl PgExecutor<'e>,
) -> Result<MigrationStatus, sqlx::Error> {
    let rows: Vec<(i64, bool)> =
        match sqlx::query_as("SELECT version, success FROM _sqlx_migrations")
            .fetch_all(executor)
            .await
        {
            Ok(rows) => rows,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(UNDEFINED_TABLE) => {
                Vec::new()
            }
            Err(e) => return Err(e),
        };
    let applied: HashSet<i64> = rows
        .into_iter()
        .filter_map(|(version, success)| success.then_some(version))
        .collect();
    Ok(MigrationStatus {
        current: applied.iter().copied().max(),
        pending: up_migrations(migrator)
            .filter(|m| !applied.contains(&m.version))
            .count(),
    })
}

/// Applies every pending migration in order, reporting each as it lands, the
/// way `Migrator::run` does but with per-migration output for the evidence log.
pub async fn apply_pending(
    migrator: &Migrator,
    conn: &mut PgConnection,
    mut on_applied: impl FnMut(&Applied),
) -> Result<MigrationStatus, MigrateFailure> {
    conn.lock().await?;
    let result = apply_locked(migrator, conn, &mut on_applied).await;
    // Unlock even after a failure, so a retry does not wait on our advisory lock.
    let unlocked = conn.unlock().await;
    let status = result?;
    unlocked?;
    Ok(status)
}

async fn apply_locked(
    migrator: &Migrator,
    conn: &mut PgConnection,
    on_applied: &mut impl FnMut(&Applied),
) -> Result<MigrationStatus, MigrateFailure> {
    conn.ensure_migrations_table(TABLE).await?;
    if let Some(version) = conn.dirty_version(TABLE).await? {
        return Err(MigrateError::Dirty(version).into());
    }
    let applied = conn.list_applied_migrations(TABLE).await?;
    for migration in up_migrations(migrator) {
        match applied.iter().find(|a| a.version == migration.version) {
            Some(done) if done.checksum != migration.checksum => {
                return Err(MigrateError::VersionMismatch(migration.version).into());
            }
            Some(_) => {}
            None => {
                let name = format!("{}/{}", migration.version, display_name(migration));
                let elapsed =
                    conn.apply(TABLE, migration)
                        .await
                        .map_err(|error| MigrateFailure {
                            migration: Some(name.clone()),
                            error,
                        })?;
                on_applied(&Applied { name, elapsed });
            }
        }
    }
    Ok(status(migrator, &mut *conn)
        .await
        .map_err(MigrateError::from)?)
}
