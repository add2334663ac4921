//! Dependency probes: owns the Postgres pool, the Redis connection and the list
//! of extra TCP dependencies, and runs each readiness probe under the probe
//! deadline (unless a flaw removes it).

use std::future::Future;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::{Config, DatabaseScheme, ExtraTcpDep, Flaw, postgres_url_for_sqlx};
use crate::migrations::{self, MigrationStatus};
use crate::redact::Scrubber;
use crate::tcp_probe;

/// What `postgres-probe-hangs` uses instead of a real acquire deadline.
const HANGING_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3600);
/// Upper bound on waiting for pooled connections to close at shutdown.
const POOL_CLOSE_DEADLINE: Duration = Duration::from_millis(250);
/// Driver errors can be long and multi-line; responses and log lines carry a short form.
const MAX_ERROR_LEN: usize = 200;

/// The result of probing one dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    Connected,
    NotConfigured(String),
    Unreachable(String),
    /// The server answers reads but refuses the write sentinel.
    ReadOnly(String),
}

impl ProbeOutcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, ProbeOutcome::Connected)
    }

    /// The contract's vocabulary: `connected|unreachable|not_configured`.
    pub fn detail(&self) -> &'static str {
        match self {
            ProbeOutcome::Connected => "connected",
            ProbeOutcome::NotConfigured(_) => "not_configured",
            ProbeOutcome::Unreachable(_) => "unreachable",
            ProbeOutcome::ReadOnly(_) => "read_only",
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            ProbeOutcome::Connected => None,
            ProbeOutcome::NotConfigured(e)
            | ProbeOutcome::Unreachable(e)
            | ProbeOutcome::ReadOnly(e) => Some(e),
        }
    }
}

/// The result of comparing the embedded migrations with the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationsOutcome {
    Head,
    Pending(usize),
    Unknown(String),
}

impl MigrationsOutcome {
    /// The contract's vocabulary: `head|pending|unknown`.
    pub fn label(&self) -> &'static str {
        match self {
            MigrationsOutcome::Head => "head",
            MigrationsOutcome::Pending(_) => "pending",
            MigrationsOutcome::Unknown(_) => "unknown",
        }
    }

    pub fn error(&self) -> Option<String> {
        match self {
            MigrationsOutcome::Head => None,
            MigrationsOutcome::Pending(1) => Some("1 migration pending".to_owned()),
            MigrationsOutcome::Pending(n) => Some(format!("{n} migrations pending")),
            MigrationsOutcome::Unknown(e) => Some(format!("migration status unknown: {e}")),
        }
    }
}

enum Postgres {
    NotConfigured,
    /// A URL the service cannot use; reported as unreachable, never retried.
    Unusable(String),
    Pool(PgPool),
}

enum Redis {
    NotConfigured,
    Unusable(String),
    Client(Box<RedisClient>),
}

/// A Redis client that reuses one multiplexed connection and drops it on any
/// failure, so a restarted Redis is picked up by the next probe.
struct RedisClient {
    client: redis::Client,
    config: AsyncConnectionConfig,
    cached: Mutex<Option<MultiplexedConnection>>,
}

impl RedisClient {
    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        if let Some(conn) = self.slot().clone() {
            return Ok(conn);
        }
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        *self.slot() = Some(conn.clone());
        Ok(conn)
    }

    fn forget(&self) {
        self.slot().take();
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        // The slot only ever holds a cloneable handle, so a panic elsewhere cannot
        // leave it inconsistent.
        self.cached.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The service's dependencies and the deadlines its probes run under.
pub struct Deps {
    postgres: Postgres,
    redis: Redis,
    extras: Vec<ExtraTcpDep>,
    deadline: Duration,
    postgres_deadline: Option<Duration>,
    /// Whether the Postgres probe also writes (seed 000: read and write
    /// sentinels); `postgres-probe-reads-only` switches it off.
    postgres_writes: bool,
    redis_deadline: Option<Duration>,
    scrubber: Scrubber,
}

/// `url` without the password of its userinfo (the user, if any, stays):
/// what a client that forgot the password would connect with.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let at = if user.is_empty() { "" } else { "@" };
            format!("{scheme}://{user}{at}{host}{}", &rest[authority_end..])
        }
        None => url.to_owned(),
    }
}

impl Deps {
    /// Builds the pool and client without connecting: connectivity is the
    /// probes' business, and a dependency that is down must not stop boot.
    pub fn new(config: &Config) -> Deps {
        let scrubber =
            Scrubber::new(&[config.database_url.as_deref(), config.redis_url.as_deref()]);
        let deadline = config.probe_timeout;
        let pg_hangs = config.flaws.has(Flaw::PostgresProbeHangs);
        let redis_hangs = config.flaws.has(Flaw::RedisProbeNoDeadline);

        let postgres = match config.database_url.as_deref() {
            None => Postgres::NotConfigured,
            Some(url) => match DatabaseScheme::of(url) {
                DatabaseScheme::Postgres => {
                    match PgConnectOptions::from_str(&postgres_url_for_sqlx(url)) {
                        Ok(options) => {
                            // Leave the outer deadline a margin, so a slow connect is
                            // reported as a connect timeout rather than a query timeout.
                            let acquire = if pg_hangs {
                                HANGING_ACQUIRE_TIMEOUT
                            } else {
                                deadline * 9 / 10
                            };
                            let pool = PgPoolOptions::new()
                                .max_connections(5)
                                .acquire_timeout(acquire)
                                // A pooled connection may have died with the server.
                                .test_before_acquire(true)
                                .connect_lazy_with(options.application_name("reference-service"));
                            Postgres::Pool(pool)
                        }
                        Err(e) => Postgres::Unusable(short_error(&scrubber, &e)),
                    }
                }
                DatabaseScheme::Sqlite => {
                    Postgres::Unusable("sqlite is not supported; Postgres is required".to_owned())
                }
                DatabaseScheme::Other(scheme) => {
                    Postgres::Unusable(format!("unsupported DATABASE_URL scheme {scheme:?}"))
                }
            },
        };

        let redis_url = match config.redis_url.as_deref() {
            Some(url) if config.flaws.has(Flaw::RedisAuthDropped) => Some(without_password(url)),
            other => other.map(str::to_owned),
        };
        let redis = match redis_url.as_deref() {
            None => Redis::NotConfigured,
            Some(url) => match redis::Client::open(url) {
                Ok(client) => {
                    let limit = (!redis_hangs).then_some(deadline);
                    let config = AsyncConnectionConfig::new()
                        .set_connection_timeout(limit)
                        .set_response_timeout(limit);
                    Redis::Client(Box::new(RedisClient {
                        client,
                        config,
                        cached: Mutex::new(None),
                    }))
                }
                Err(e) => Redis::Unusable(short_error(&scrubber, &e)),
            },
        };

        Deps {
            postgres,
            redis,
            extras: config.extra_tcp_deps.clone(),
            deadline,
            postgres_deadline: (!pg_hangs).then_some(deadline),
            postgres_writes: !config.flaws.has(Flaw::PostgresProbeReadsOnly),
            redis_deadline: (!redis_hangs).then_some(deadline),
            scrubber,
        }
    }

    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The read sentinel (`SELECT 1`), then the write sentinel: a row into
    /// a temporary table, in a transaction that is rolled back, so a
    /// database that answers reads but refuses writes (read-only after a
    /// failover, a full disk) is not reported connected.
    pub async fn probe_postgres(&self) -> ProbeOutcome {
        let pool = match &self.postgres {
            Postgres::NotConfigured => {
                return ProbeOutcome::NotConfigured("DATABASE_URL is not set".to_owned());
            }
            Postgres::Unusable(e) => return ProbeOutcome::Unreachable(e.clone()),
            Postgres::Pool(pool) => pool,
        };
        let sentinels = async {
            sqlx::query_scalar::<_, i32>("SELECT 1")
                .fetch_one(pool)
                .await
                .map_err(Sentinel::Read)?;
            if self.postgres_writes {
                write_sentinel(pool).await.map_err(Sentinel::Write)?;
            }
            Ok::<(), Sentinel>(())
        };
        match within(self.postgres_deadline, sentinels).await {
            None => ProbeOutcome::Unreachable("sentinel timeout".to_owned()),
            Some(Ok(())) => ProbeOutcome::Connected,
            Some(Err(Sentinel::Read(sqlx::Error::PoolTimedOut))) => {
                ProbeOutcome::Unreachable("connect timeout".to_owned())
            }
            Some(Err(Sentinel::Read(e))) => {
                ProbeOutcome::Unreachable(short_error(&self.scrubber, &e))
            }
            Some(Err(Sentinel::Write(e))) if is_read_only(&e) => ProbeOutcome::ReadOnly(format!(
                "write sentinel refused: {}",
                short_error(&self.scrubber, &e)
            )),
            Some(Err(Sentinel::Write(e))) => ProbeOutcome::Unreachable(format!(
                "write sentinel failed: {}",
                short_error(&self.scrubber, &e)
            )),
        }
    }

    /// `PING`, on the cached connection or a fresh one.
    pub async fn probe_redis(&self) -> ProbeOutcome {
        let client = match &self.redis {
            Redis::NotConfigured => {
                return ProbeOutcome::NotConfigured("REDIS_URL is not set".to_owned());
            }
            Redis::Unusable(e) => return ProbeOutcome::Unreachable(e.clone()),
            Redis::Client(client) => client,
        };
        let ping = async {
            let mut conn = client.connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        let outcome = match within(self.redis_deadline, ping).await {
            None => ProbeOutcome::Unreachable("PING timeout".to_owned()),
            Some(Ok(reply)) if reply == "PONG" => ProbeOutcome::Connected,
            Some(Ok(reply)) => ProbeOutcome::Unreachable(format!("PING replied {reply:?}")),
            Some(Err(e)) if e.is_timeout() => ProbeOutcome::Unreachable("PING timeout".to_owned()),
            Some(Err(e)) => ProbeOutcome::Unreachable(format!(
                "PING failed: {}",
                short_error(&self.scrubber, &e)
            )),
        };
        if !outcome.is_ok() {
            // A connection that failed once is not trusted again: reconnect next time.
            client.forget();
        }
        outcome
    }

    /// The extra TCP dependencies, in the order `EXTRA_TCP_DEPS` listed them.
    pub fn extras(&self) -> &[ExtraTcpDep] {
        &self.extras
    }

    /// Every extra TCP dependency, concurrently, each under the deadline; the
    /// outcomes are in [`Deps::extras`] order. No flaw removes this deadline.
    pub async fn probe_extras(&self) -> Vec<ProbeOutcome> {
        tcp_probe::probe_all(&self.extras, self.deadline).await
    }

    /// Embedded migrations against `_sqlx_migrations`; always under the deadline.
    pub async fn check_migrations(&self) -> MigrationsOutcome {
        let Postgres::Pool(pool) = &self.postgres else {
            return MigrationsOutcome::Unknown("database not usable".to_owned());
        };
        match within(
            Some(self.deadline),
            migrations::status(&migrations::EMBEDDED, pool),
        )
        .await
        {
            None => MigrationsOutcome::Unknown("timeout".to_owned()),
            Some(Ok(MigrationStatus { pending: 0, .. })) => MigrationsOutcome::Head,
            Some(Ok(status)) => MigrationsOutcome::Pending(status.pending),
            Some(Err(e)) => MigrationsOutcome::Unknown(short_error(&self.scrubber, &e)),
        }
    }

    /// Closes pooled connections, waiting at most briefly for borrowed ones.
    pub async fn close(&self) {
        if let Redis::Client(client) = &self.redis {
            client.forget();
        }
        if let Postgres::Pool(pool) = &self.postgres {
            let _ = tokio::time::timeout(POOL_CLOSE_DEADLINE, pool.close()).await;
        }
    }
}

/// Which sentinel failed.
enum Sentinel {
    Read(sqlx::Error),
    Write(sqlx::Error),
}

/// Write one row and roll it back: nothing stays, but the server had to
/// accept a write.
async fn write_sentinel(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::raw_sql(
        "CREATE TEMPORARY TABLE readiness_write_sentinel (checked_at timestamptz) ON COMMIT DROP; \
         INSERT INTO readiness_write_sentinel VALUES (now())",
    )
    .execute(&mut *tx)
    .await?;
    tx.rollback().await
}

/// SQLSTATE 25006, `read_only_sql_transaction`.
fn is_read_only(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "25006")
}

/// Runs `fut` under `deadline`; `None` means the deadline passed. Without a
/// deadline the future may run forever, which is exactly what the no-deadline
/// flaws are for.
pub async fn within<T>(deadline: Option<Duration>, fut: impl Future<Output = T>) -> Option<T> {
    match deadline {
        Some(deadline) => tokio::time::timeout(deadline, fut).await.ok(),
        None => Some(fut.await),
    }
}

fn short_error(scrubber: &Scrubber, error: &dyn std::fmt::Display) -> String {
    let text = scrubber.scrub(&error.to_string());
    let line = text.lines().next().unwrap_or_default().trim();
    match line.char_indices().nth(MAX_ERROR_LEN) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn the_password_is_dropped_and_the_rest_kept() {
        assert_eq!(
            without_password("redis://:s3cret@127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            without_password("redis://app:s3cret@cache:6380/2"),
            "redis://app@cache:6380/2"
        );
        assert_eq!(without_password("redis://cache:6379"), "redis://cache:6379");
    }
}
