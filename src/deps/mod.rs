//! Dependencies stage: everything that supplies the service's
//! dependencies. Takes a [`DepsChoice`] (`--deps`) and the scenario; gives
//! [`Provisioned`], the Postgres and Redis endpoints the service under test
//! will reach (through gonogo's fault proxies), their versions, which
//! provider supplied them, and a guard that stops whatever gonogo started.
//!
//! - [`embedded`]: private servers from the local binaries
//!   ([`embedded::Embedded`]);
//! - [`docker`]: throwaway containers through testcontainers, only when a
//!   Docker daemon answers within [`docker::PING_TIMEOUT`];
//! - [`external`]: servers someone else runs (staging), from URLs in the
//!   environment or the scenario. gonogo only reads from them.
//!
//! `auto` takes embedded when the binaries are here, else docker when a
//! daemon answers, else fails saying what to install.

pub mod dependency;
pub mod docker;
pub mod embedded;
pub mod endpoint;
pub mod external;
pub mod read_only;
pub mod resp;
pub mod secret;
pub mod watch;

use std::path::PathBuf;

pub use self::dependency::{Dependencies, Dependency};
pub use self::endpoint::{BOOTSTRAP_DATABASE, PostgresEndpoint, ROLE, RedisEndpoint};
pub use self::secret::Secret;
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

/// Whether a provider can run on this machine, by its own check: what
/// `auto` picks by and what `gonogo doctor` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    pub works: bool,
    /// Why (not), and what to do about it.
    pub detail: String,
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
    Embedded(Box<embedded::Embedded>),
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

    /// What gonogo can ask the servers it owns about what they saw: the
    /// embedded Postgres server's log, and Redis (embedded or docker).
    pub fn watch(&self) -> watch::DependencyWatch {
        let postgres_log = match &self.guard {
            ProviderGuard::Embedded(embedded) => Some(embedded.postgres().log().clone()),
            _ => None,
        };
        let redis = self.kind.owns_servers().then(|| self.redis.clone());
        watch::DependencyWatch::new(postgres_log, redis)
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
            let embedded = embedded::availability();
            if embedded.works {
                return Ok(ProviderKind::Embedded);
            }
            let docker = docker::availability(&docker::ping().await);
            if docker.works {
                return Ok(ProviderKind::Docker);
            }
            anyhow::bail!(
                "find a dependency provider: embedded: {}; docker: {}; or pass --deps external with DATABASE_URL and REDIS_URL set",
                embedded.detail,
                docker.detail
            )
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
