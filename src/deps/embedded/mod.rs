//! The embedded provider: private, password-protected Postgres and Redis
//! servers from the local binaries, for one run. Takes [`EmbeddedOptions`];
//! gives [`Embedded`], and through [`start`] the [`Provisioned`] endpoints
//! whose URLs the service under test receives and whose passwords the
//! masker hides. Also answers whether the binaries are here ([`missing`]),
//! for `--deps auto` and `gonogo doctor`.
//!
//! Everything lives under one [`TempRoot`] (`/tmp/gonogo-<pid>-XXXXXXXX`,
//! short enough for Unix socket paths; roots of killed harnesses are swept
//! by the next one). Each server process belongs to a
//! [`ChildGuard`](crate::process::ChildGuard); dropping [`Embedded`] stops
//! both servers and then removes the directory.

pub mod binaries;
pub mod postgres;
pub mod redis;
pub mod temp_root;
pub mod template;
pub mod user;

use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::Context;

pub use self::binaries::{BinarySearch, MissingBinary};
pub use self::postgres::{ClusterSource, EmbeddedPostgres, PostgresOptions, PostgresTimings};
pub use self::redis::{EmbeddedRedis, RedisOptions};
pub use self::temp_root::{TempRoot, default_temp_base};
pub use self::template::Template;
pub use self::user::ServerUser;
use super::{
    PostgresEndpoint, ProviderGuard, ProviderKind, ProvisionOptions, Provisioned, ROLE,
    RedisEndpoint, Secret,
};
use crate::process::{ChildGuard, OutputCapture, StopReport};

/// How many log lines a startup error quotes.
const LOG_LINES_IN_ERRORS: usize = 20;
/// How many ports a server start tries: the first plus three retries, in
/// case another process takes the free port before the server binds it.
const PORT_ATTEMPTS: u32 = 4;

/// Options for [`Embedded::start`].
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// Options for Postgres.
    pub postgres: PostgresOptions,
    /// Options for Redis.
    pub redis: RedisOptions,
    /// Who runs both servers (overriding the per-server options); `None`
    /// chooses with [`ServerUser::choose`].
    pub user: Option<ServerUser>,
    /// The directory the temp root is created in.
    pub temp_base: PathBuf,
    /// Whether the servers may outlive the harness (`--keep`): they are
    /// spawned without a death signal, so [`Embedded::detach`] can leave
    /// them running.
    pub keep: bool,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            postgres: PostgresOptions::default(),
            redis: RedisOptions::default(),
            user: None,
            temp_base: default_temp_base(),
            keep: false,
        }
    }
}

/// Timings of one Redis start. (Postgres has more phases:
/// [`PostgresTimings`].)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartTimings {
    /// Preparing before the server process starts (creating its directory).
    pub prepare: Duration,
    /// From spawning the server process to ready, on the attempt that
    /// succeeded.
    pub ready: Duration,
    /// The whole start, including port retries and creating the app database.
    pub total: Duration,
    /// How many ports were tried.
    pub attempts: u32,
}

/// Why a server did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The server process exited during startup.
    #[error("{server} exited before it was ready ({status}); last log lines:\n{log}")]
    Exited {
        /// Which server.
        server: &'static str,
        /// How it exited.
        status: ExitStatus,
        /// Its last log lines, indented.
        log: String,
    },
    /// The deadline passed.
    #[error("{server} was not ready within {timeout:?}; last log lines:\n{log}")]
    NotReady {
        /// Which server.
        server: &'static str,
        /// The readiness deadline.
        timeout: Duration,
        /// Its last log lines, indented.
        log: String,
    },
    /// Waiting for the process failed.
    #[error("wait for {server}")]
    Wait {
        /// Which server.
        server: &'static str,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
}

impl StartError {
    /// Whether the server died because its port was taken, so a retry on
    /// another port may succeed.
    fn port_in_use(&self) -> bool {
        matches!(self, StartError::Exited { log, .. } if log.contains("Address already in use"))
    }
}

/// Both servers, ready, under one temp root.
///
/// Dropping it stops both servers (fields drop in order: the servers, then
/// the root) and removes the temp root.
#[derive(Debug)]
pub struct Embedded {
    postgres: EmbeddedPostgres,
    redis: EmbeddedRedis,
    root: TempRoot,
}

/// How [`Embedded::shutdown`] went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// How Postgres stopped.
    pub postgres: StopReport,
    /// How Redis stopped.
    pub redis: StopReport,
}

impl Embedded {
    /// Creates a temp root and starts Postgres and Redis in it concurrently.
    /// If either fails, the other is stopped and the root removed.
    pub async fn start(options: &EmbeddedOptions) -> anyhow::Result<Embedded> {
        let root = TempRoot::create_in(&options.temp_base).context("create temp root")?;
        let user = match &options.user {
            Some(user) => user.clone(),
            None => ServerUser::choose()?,
        };
        let mut postgres = options.postgres.clone();
        let mut redis = options.redis.clone();
        postgres.user = Some(user.clone());
        redis.user = Some(user);
        if options.keep {
            postgres.guard.death_signal = None;
            redis.guard.death_signal = None;
        }
        let (postgres, redis) = tokio::try_join!(
            async {
                postgres::start(root.path(), &postgres)
                    .await
                    .context("start embedded postgres")
            },
            async {
                redis::start(root.path(), &redis)
                    .await
                    .context("start embedded redis")
            },
        )?;
        Ok(Embedded {
            postgres,
            redis,
            root,
        })
    }

    /// The Postgres server.
    pub fn postgres(&self) -> &EmbeddedPostgres {
        &self.postgres
    }

    /// The Redis server.
    pub fn redis(&self) -> &EmbeddedRedis {
        &self.redis
    }

    /// The temp root holding both servers' files.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Stops both servers concurrently, then removes the temp root.
    pub async fn shutdown(self) -> anyhow::Result<ShutdownReport> {
        let Embedded {
            postgres,
            redis,
            root,
        } = self;
        let (postgres, redis) = tokio::join!(postgres.shutdown(), redis.shutdown());
        let postgres = postgres.context("stop embedded postgres");
        let redis = redis.context("stop embedded redis");
        let removed = root.remove().context("remove temp root");
        let report = ShutdownReport {
            postgres: postgres?,
            redis: redis?,
        };
        removed?;
        Ok(report)
    }

    /// Leaves both servers running and the temp root in place (for
    /// `--keep`); returns the root. The servers survive the harness only if
    /// they were started with [`EmbeddedOptions::keep`].
    pub fn detach(self) -> PathBuf {
        let Embedded {
            postgres,
            redis,
            root,
        } = self;
        postgres.detach();
        redis.detach();
        root.keep()
    }
}

/// A ready server's process, log, port, password and version: what
/// [`EmbeddedPostgres`] and [`EmbeddedRedis`] share (both deref to it).
#[derive(Debug)]
pub struct Server {
    guard: ChildGuard,
    log: OutputCapture,
    port: u16,
    password: Secret,
    version: String,
}

impl Server {
    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The password its clients log in with.
    pub fn password(&self) -> &Secret {
        &self.password
    }

    /// The server version, e.g. `PostgreSQL 15.18` or `Redis 7.0.15`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// The server log so far (unmasked).
    pub fn log(&self) -> &OutputCapture {
        &self.log
    }

    /// Stops the server (its stop signal, then `SIGKILL` after the grace
    /// period).
    pub async fn shutdown(self) -> std::io::Result<StopReport> {
        self.guard.stop().await
    }

    /// Leaves the server running (for `--keep`).
    pub fn detach(self) {
        self.guard.detach();
    }
}

/// The account that runs a server (`given`, else [`ServerUser::choose`])
/// and a fresh password for it, once `root` is checked reachable for it.
fn user_and_password(
    root: &Path,
    given: Option<&ServerUser>,
) -> anyhow::Result<(ServerUser, Secret)> {
    let user = match given {
        Some(user) => user.clone(),
        None => ServerUser::choose()?,
    };
    let password = Secret::generate().context("generate a password")?;
    ensure_traversable(root, &user)?;
    Ok((user, password))
}

/// Starts a server with `start` (given the port and the password) on a
/// port from `next_port`, trying the
/// next port when another process took it first (up to
/// [`PORT_ATTEMPTS`]). Gives the ready server and the number of attempts.
async fn start_on_free_port(
    next_port: &mut impl FnMut() -> io::Result<u16>,
    password: Secret,
    version: String,
    mut start: impl AsyncFnMut(u16, &Secret) -> anyhow::Result<(ChildGuard, OutputCapture)>,
) -> anyhow::Result<(Server, u32)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = next_port().context("find a free port")?;
        match start(port, &password).await {
            Ok((guard, log)) => {
                let server = Server {
                    guard,
                    log,
                    port,
                    password,
                    version,
                };
                return Ok((server, attempt));
            }
            // Another process took the port first: try the next one.
            Err(error)
                if attempt < PORT_ATTEMPTS
                    && error
                        .downcast_ref::<StartError>()
                        .is_some_and(StartError::port_in_use) => {}
            Err(error) => return Err(error),
        }
    }
}

/// Creates `path` with `mode` (exactly, whatever the umask) and hands it to
/// `user`.
fn private_dir(path: &Path, mode: u32, user: &ServerUser) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .with_context(|| format!("create `{}`", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("set the mode of `{}`", path.display()))?;
    user.chown(path)
        .with_context(|| format!("hand `{}` to {}", path.display(), user.name))
}

/// Checks that `user` can traverse every ancestor of `path`, since the
/// servers run as `user`.
fn ensure_traversable(path: &Path, user: &ServerUser) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if user.uid == 0 || user.is_current() {
        return Ok(());
    }
    for dir in path.ancestors() {
        let meta =
            std::fs::metadata(dir).with_context(|| format!("inspect `{}`", dir.display()))?;
        let mode = meta.mode();
        let allowed = if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        anyhow::ensure!(
            allowed,
            "reach `{}` as {}: `{}` is not traversable (chmod o+x, or choose another temp base)",
            path.display(),
            user.name,
            dir.display()
        );
    }
    Ok(())
}

/// Waits until `ready` completes, while watching for the server process to
/// exit or the deadline to pass. `ready` should never complete unless the
/// server is ready (pend forever rather than give up).
async fn await_ready(
    server: &'static str,
    guard: &mut ChildGuard,
    log: &OutputCapture,
    timeout: Duration,
    ready: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let exited = tokio::select! {
        () = ready => return Ok(()),
        exited = guard.wait_timeout(timeout) => exited,
    };
    match exited {
        Ok(Some(status)) => {
            // Let the last lines land before quoting them.
            log.wait_closed(tokio::time::Instant::now() + Duration::from_secs(1))
                .await;
            Err(StartError::Exited {
                server,
                status,
                log: last_log_lines(log),
            })
        }
        Ok(None) => Err(StartError::NotReady {
            server,
            timeout,
            log: last_log_lines(log),
        }),
        Err(source) => Err(StartError::Wait { server, source }),
    }
}

/// The last log lines, indented for an error message.
fn last_log_lines(log: &OutputCapture) -> String {
    let lines = log.snapshot().last_lines(LOG_LINES_IN_ERRORS);
    if lines.is_empty() {
        return "  (none)".to_owned();
    }
    lines
        .lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The binaries the embedded provider runs.
pub const BINARIES: [&str; 3] = ["initdb", "postgres", "redis-server"];

/// The binaries that are missing here (empty: embedded can run).
pub fn missing() -> Vec<MissingBinary> {
    let search = BinarySearch::from_env();
    BINARIES
        .iter()
        .filter_map(|binary| search.find(binary).err())
        .collect()
}

/// What to install for `missing`, e.g. `apt-get install postgresql redis-server`.
pub fn install_hint(missing: &[MissingBinary]) -> String {
    let mut packages: Vec<&str> = missing.iter().map(|m| m.package).collect();
    packages.dedup();
    format!("apt-get install {}", packages.join(" "))
}

/// Whether the embedded provider can run here: its binaries, and an
/// account for the servers.
pub fn availability() -> super::Availability {
    let missing = missing();
    let (works, detail) = if !missing.is_empty() {
        (
            false,
            format!(
                "missing {}: install with `{}` (or `gonogo doctor --install`)",
                missing
                    .iter()
                    .map(|m| format!("`{}`", m.binary))
                    .collect::<Vec<_>>()
                    .join(", "),
                install_hint(&missing)
            ),
        )
    } else if let Err(e) = ServerUser::choose() {
        (false, format!("binaries found, but: {e}"))
    } else {
        (true, "binaries found; `--deps auto` picks this".into())
    };
    super::Availability { works, detail }
}

/// Start private Postgres and Redis servers.
pub async fn start(options: &ProvisionOptions) -> anyhow::Result<Provisioned> {
    let embedded = Embedded::start(&EmbeddedOptions {
        keep: options.keep,
        ..EmbeddedOptions::default()
    })
    .await?;
    let pg = embedded.postgres();
    let redis = embedded.redis();
    let postgres = PostgresEndpoint {
        host: "127.0.0.1".into(),
        port: pg.port(),
        user: ROLE.into(),
        password: pg.password().clone(),
        password_in_url: pg.password().clone(),
        database: pg.database().into(),
        query: None,
        version: pg.version().into(),
        ready: pg.timings().total,
        provisioned_from: Some(pg.timings().source.to_string()),
    };
    let redis = RedisEndpoint {
        scheme: "redis".into(),
        host: "127.0.0.1".into(),
        port: redis.port(),
        user: None,
        password: redis.password().clone(),
        password_in_url: redis.password().clone(),
        db: "0".into(),
        version: redis.version().into(),
        ready: redis.timings().total,
    };
    Ok(Provisioned {
        kind: ProviderKind::Embedded,
        postgres,
        redis,
        guard: ProviderGuard::Embedded(Box::new(embedded)),
    })
}

/// The port-clash tests both servers share.
#[cfg(test)]
mod clash {
    use std::io;
    use std::path::Path;

    use super::{PORT_ATTEMPTS, Server, TempRoot};

    /// Starts a server whose first port is taken by another socket; it
    /// must start on the second. Gives it, and the root it lives in.
    pub async fn starts_on_the_second_port<S: std::ops::Deref<Target = Server>>(
        start: impl AsyncFnOnce(&Path, &mut dyn FnMut() -> io::Result<u16>) -> anyhow::Result<S>,
    ) -> (S, TempRoot) {
        let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a port");
        let taken_port = taken.local_addr().expect("local addr").port();
        let mut ports = vec![taken_port];
        let root = TempRoot::create().expect("temp root");
        let mut next = || ports.pop().map_or_else(crate::process::free_port, Ok);
        let server = start(root.path(), &mut next)
            .await
            .expect("the server starts on the second port");
        assert_ne!(server.port(), taken_port);
        (server, root)
    }

    /// Starts a server whose every port is taken: it gives up after
    /// [`PORT_ATTEMPTS`] ports, saying `server` exited and quoting its log.
    pub async fn gives_up_on_taken_ports<S: std::fmt::Debug>(
        server: &str,
        start: impl AsyncFnOnce(&Path, &mut dyn FnMut() -> io::Result<u16>) -> anyhow::Result<S>,
    ) {
        let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a port");
        let taken_port = taken.local_addr().expect("local addr").port();
        let root = TempRoot::create().expect("temp root");
        let mut tried = 0;
        let mut next = || {
            tried += 1;
            Ok(taken_port)
        };
        let error = start(root.path(), &mut next)
            .await
            .expect_err("every port is taken");
        let message = format!("{error:#}");
        assert_eq!(tried, PORT_ATTEMPTS);
        assert!(
            message.contains(&format!("{server} exited before it was ready")),
            "{message}"
        );
        assert!(message.contains("Address already in use"), "{message}");
    }
}
