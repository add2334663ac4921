//! A server-wide fault on a Postgres server gonogo owns (embedded, docker):
//! make it refuse writes, as a replica promoted wrongly or a full disk
//! would, and allow them again. Takes the [`PostgresEndpoint`], whose role
//! is the superuser gonogo made the server with; gives what it did, as
//! facts for the step to record. Never used on an external server: the
//! plan's `Writable` precondition keeps gonogo off someone else's.
//!
//! Refusing writes is `ALTER SYSTEM SET default_transaction_read_only = on`
//! and a reload, then ending the sessions of the service's role, so its
//! pooled connections reopen under the new default. Every wait has a
//! deadline ([`DEADLINE`]).

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use super::PostgresEndpoint;

/// The limit for connecting, for each statement, and for a reload to reach
/// new sessions.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// How often a fresh session asks whether the reload took effect.
const POLL: Duration = Duration::from_millis(50);

/// The statements that make the server refuse writes, as the evidence
/// quotes them.
pub const REFUSE_SQL: &str = "ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf(); SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = current_user AND backend_type = 'client backend' AND pid <> pg_backend_pid()";
/// The statements that allow writes again.
pub const ALLOW_SQL: &str =
    "ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf()";

/// What refusing writes did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Sessions of the service's role that were ended.
    pub sessions_ended: i64,
    /// From the reload until a new session saw `default_transaction_read_only = on`.
    pub took: Duration,
}

/// An administrative session on a server gonogo owns.
pub struct ServerSession {
    conn: PgConnection,
    url: String,
}

impl ServerSession {
    /// Connect straight to the server (not through the fault proxy) as the
    /// endpoint's role.
    pub async fn connect(endpoint: &PostgresEndpoint) -> anyhow::Result<ServerSession> {
        let url = endpoint.url_via(&endpoint.host, endpoint.port);
        let conn = connect(&url).await?;
        Ok(ServerSession { conn, url })
    }

    /// Make the server refuse writes for every new transaction, and end the
    /// sessions of the service's role.
    pub async fn refuse_writes(&mut self) -> anyhow::Result<Refused> {
        self.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            .await?;
        let took = self.reload_until("on").await?;
        let ended = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE usename = current_user AND backend_type = 'client backend' \
             AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut self.conn);
        let sessions_ended = within("end the service's sessions", ended).await?;
        Ok(Refused {
            sessions_ended,
            took,
        })
    }

    /// Allow writes again; gives how long until a new session saw it.
    pub async fn allow_writes(&mut self) -> anyhow::Result<Duration> {
        self.execute("ALTER SYSTEM RESET default_transaction_read_only")
            .await?;
        self.reload_until("off").await
    }

    /// Close the session.
    pub async fn close(self) {
        let _ = tokio::time::timeout(DEADLINE, self.conn.close()).await;
    }

    async fn execute(&mut self, sql: &'static str) -> anyhow::Result<()> {
        within(sql, sqlx::raw_sql(sql).execute(&mut self.conn)).await?;
        Ok(())
    }

    /// Reload the configuration and wait until a new session sees
    /// `default_transaction_read_only` = `value`: the postmaster rereads
    /// it asynchronously, and a session opened before that would still
    /// write.
    async fn reload_until(&mut self, value: &str) -> anyhow::Result<Duration> {
        self.execute("SELECT pg_reload_conf()").await?;
        let started = Instant::now();
        loop {
            let mut fresh = connect(&self.url).await?;
            let seen = within(
                "SHOW default_transaction_read_only",
                sqlx::query_scalar::<_, String>("SHOW default_transaction_read_only")
                    .fetch_one(&mut fresh),
            )
            .await;
            let _ = tokio::time::timeout(DEADLINE, fresh.close()).await;
            if seen? == value {
                return Ok(started.elapsed());
            }
            anyhow::ensure!(
                started.elapsed() < DEADLINE,
                "see default_transaction_read_only = {value} in a new session within {} s of the reload",
                DEADLINE.as_secs()
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    within("connect to the postgres server", PgConnection::connect(url)).await
}

/// `fut` under [`DEADLINE`], with `what` in its error.
async fn within<T>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(DEADLINE, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(anyhow::anyhow!("{what}: {e}")),
        Err(_) => Err(anyhow::anyhow!(
            "{what}: no answer within {} s",
            DEADLINE.as_secs()
        )),
    }
}
