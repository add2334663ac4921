//! Provision stage, by provider: takes a [`DepsChoice`] (`--deps`) and the
//! scenario; gives [`Provisioned`], the Postgres and Redis endpoints the
//! service under test will reach (through gonogo's fault proxies), their
//! versions, which provider supplied them, and a guard that stops whatever
//! gonogo started.
//!
//! - [`embedded`]: private servers from the local binaries
//!   ([`crate::provision::Embedded`]);
//! - [`docker`]: throwaway containers through testcontainers, only when a
//!   Docker daemon answers within [`docker::PING_TIMEOUT`];
//! - [`external`]: servers someone else runs (staging), from URLs in the
//!   environment or the scenario. gonogo only reads from them.
//!
//! `auto` takes embedded when the binaries are here, else docker when a
//! daemon answers, else fails saying what to install.

pub mod docker;
pub mod embedded;
pub mod external;

use std::path::PathBuf;
use std::time::Duration;

use crate::provision::Secret;
use crate::scenario::Scenario;

/// Where the Postgres and Redis servers come from (`--deps`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DepsChoice {
    /// Embedded when the binaries are present, else docker when a daemon
    /// answers, else an error saying what to install.
    #[default]
    Auto,
    /// Private servers from the local `initdb`/`postgres`/`redis-server`.
    Embedded,
    /// Containers through a Docker daemon (testcontainers).
    Docker,
    /// Servers you already run, from `DATABASE_URL`/`REDIS_URL` or the
    /// scenario's `[external]` table; gonogo never writes to them.
    External,
}

/// The provider that actually supplied the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Embedded,
    Docker,
    External,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Embedded => "embedded",
            ProviderKind::Docker => "docker",
            ProviderKind::External => "external",
        }
    }

    /// Whether gonogo owns the servers (and so may migrate and write to them).
    pub fn owns_servers(self) -> bool {
        self != ProviderKind::External
    }
}

/// How to reach one Postgres database.
#[derive(Debug, Clone)]
pub struct PostgresEndpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Decoded; `{{database_password}}`.
    pub password: Secret,
    /// As written in a URL (percent-encoded where needed).
    pub password_in_url: Secret,
    pub database: String,
    /// The URL's query (`sslmode=require`), kept when the URL is rebuilt.
    pub query: Option<String>,
    /// e.g. `PostgreSQL 15.18`.
    pub version: String,
    pub ready: Duration,
    /// For embedded Postgres: `template` or `initdb`.
    pub provisioned_from: Option<String>,
}

impl PostgresEndpoint {
    /// The URL with its host and port replaced by `host:port` (a fault
    /// proxy); unmasked, callers mask it.
    pub fn url_via(&self, host: &str, port: u16) -> String {
        let mut url = format!(
            "postgresql://{}:{}@{host}:{port}/{}",
            self.user,
            self.password_in_url.expose(),
            self.database
        );
        if let Some(query) = &self.query {
            url.push('?');
            url.push_str(query);
        }
        url
    }
}

/// How to reach one Redis server.
#[derive(Debug, Clone)]
pub struct RedisEndpoint {
    /// `redis` or `rediss`.
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// An ACL user, when the URL names one.
    pub user: Option<String>,
    /// Decoded; empty when the server has none.
    pub password: Secret,
    pub password_in_url: Secret,
    /// The database number from the URL path (`0` by default).
    pub db: String,
    /// e.g. `Redis 7.0.15`.
    pub version: String,
    pub ready: Duration,
}

impl RedisEndpoint {
    /// The URL with its host and port replaced; unmasked, callers mask it.
    pub fn url_via(&self, host: &str, port: u16) -> String {
        let password = self.password_in_url.expose();
        let userinfo = match (&self.user, password.is_empty()) {
            (Some(user), true) => format!("{user}@"),
            (Some(user), false) => format!("{user}:{password}@"),
            (None, true) => String::new(),
            (None, false) => format!(":{password}@"),
        };
        format!("{}://{userinfo}{host}:{port}/{}", self.scheme, self.db)
    }
}

/// What the provision stage gives: both endpoints, who supplied them, and
/// the guard over anything gonogo started. Dropping it stops those servers.
pub struct Provisioned {
    pub kind: ProviderKind,
    pub postgres: PostgresEndpoint,
    pub redis: RedisEndpoint,
    guard: ProviderGuard,
}

/// What must be stopped when the run ends.
enum ProviderGuard {
    Embedded(Box<crate::provision::Embedded>),
    #[cfg_attr(
        not(feature = "docker"),
        expect(dead_code, reason = "built only with the docker feature")
    )]
    Docker(docker::DockerGuard),
    /// gonogo started nothing.
    External,
}

/// Options every provider understands.
#[derive(Debug, Clone, Default)]
pub struct ProvisionOptions {
    /// Leave the servers running (`--keep`).
    pub keep: bool,
}

impl Provisioned {
    /// The passwords the masker must hide, decoded and as in the URL.
    pub fn secrets(&self) -> Vec<&str> {
        [
            self.postgres.password.expose(),
            self.postgres.password_in_url.expose(),
            self.redis.password.expose(),
            self.redis.password_in_url.expose(),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect()
    }

    /// Stops what gonogo started, reporting failures.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        match self.guard {
            ProviderGuard::Embedded(embedded) => {
                embedded.shutdown().await?;
            }
            ProviderGuard::Docker(guard) => guard.shutdown().await?,
            ProviderGuard::External => {}
        }
        Ok(())
    }

    /// Leaves the servers running (`--keep`); says where they are, when
    /// there is something to say.
    pub fn detach(self) -> Option<String> {
        match self.guard {
            ProviderGuard::Embedded(embedded) => {
                let servers = [
                    crate::keep::KeptServer {
                        name: "postgres",
                        pid: embedded.postgres().pid(),
                        stop_signal: crate::process::Signal::Int,
                    },
                    crate::keep::KeptServer {
                        name: "redis",
                        pid: embedded.redis().pid(),
                        stop_signal: crate::process::Signal::Term,
                    },
                ];
                let (pg, redis) = (&self.postgres, &self.redis);
                let urls = [
                    ("DATABASE_URL", pg.url_via(&pg.host, pg.port)),
                    ("REDIS_URL", redis.url_via(&redis.host, redis.port)),
                ];
                let root: PathBuf = embedded.detach();
                Some(crate::keep::record(&root, &servers, &urls))
            }
            ProviderGuard::Docker(guard) => Some(guard.detach()),
            ProviderGuard::External => None,
        }
    }
}

/// What `auto` would pick here, or why none works.
pub async fn resolve(choice: DepsChoice) -> anyhow::Result<ProviderKind> {
    Ok(match choice {
        DepsChoice::Embedded => ProviderKind::Embedded,
        DepsChoice::Docker => ProviderKind::Docker,
        DepsChoice::External => ProviderKind::External,
        DepsChoice::Auto => {
            let missing = embedded::missing();
            if missing.is_empty() {
                return Ok(ProviderKind::Embedded);
            }
            match docker::ping().await {
                docker::DockerStatus::Answers { .. } if docker::BUILT_IN => ProviderKind::Docker,
                status => anyhow::bail!(
                    "find a dependency provider: embedded needs {} ({}), and docker {}; or pass --deps external with DATABASE_URL and REDIS_URL set",
                    missing
                        .iter()
                        .map(|m| format!("`{}`", m.binary))
                        .collect::<Vec<_>>()
                        .join(", "),
                    embedded::install_hint(&missing),
                    if docker::BUILT_IN {
                        status.describe()
                    } else {
                        docker::NOT_BUILT.to_string()
                    }
                ),
            }
        }
    })
}

/// Provision Postgres and Redis with `kind`.
pub async fn provision(
    kind: ProviderKind,
    scenario: &Scenario,
    options: &ProvisionOptions,
) -> anyhow::Result<Provisioned> {
    match kind {
        ProviderKind::Embedded => embedded::start(options).await,
        ProviderKind::Docker => docker::start(options).await,
        ProviderKind::External => external::connect(&scenario.external).await,
    }
}

/// `what` as the progress line names it.
pub fn describe(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Embedded => "embedded postgres and redis-server",
        ProviderKind::Docker => "postgres and redis containers (docker)",
        ProviderKind::External => "external postgres and redis (read-only)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis(user: Option<&str>, password: &str) -> RedisEndpoint {
        RedisEndpoint {
            scheme: "redis".into(),
            host: "cache.internal".into(),
            port: 6379,
            user: user.map(str::to_string),
            password: Secret::new(password),
            password_in_url: Secret::new(password),
            db: "2".into(),
            version: "Redis 7".into(),
            ready: Duration::ZERO,
        }
    }

    #[test]
    fn redis_urls_keep_user_and_database() {
        assert_eq!(
            redis(None, "pw").url_via("127.0.0.1", 1),
            "redis://:pw@127.0.0.1:1/2"
        );
        assert_eq!(
            redis(Some("app"), "pw").url_via("127.0.0.1", 1),
            "redis://app:pw@127.0.0.1:1/2"
        );
        assert_eq!(
            redis(None, "").url_via("127.0.0.1", 1),
            "redis://127.0.0.1:1/2"
        );
    }
}
