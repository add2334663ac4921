//! Provision stage, Redis: starts a password-protected, non-persistent
//! `redis-server` on a free 127.0.0.1 port. Gives [`EmbeddedRedis`].
//!
//! The configuration, password included, goes in on stdin (`redis-server -`),
//! so the password is never in argv (visible in `ps`) nor on disk. The
//! working directory is `<root>/redis`; the log is captured from stdout.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::binaries::{BinarySearch, version_output};
use super::user::ServerUser;
use super::{Server, StartError, StartTimings};
use crate::deps::Secret;
use crate::deps::resp::{RespConnection, RespValue};
use crate::process::{ChildGuard, GuardOptions, OutputCapture, Signal, StopReport, free_port};

/// How often the readiness check retries.
const PROBE_RETRY: Duration = Duration::from_millis(10);
/// The limit for one readiness probe (connect, `AUTH`, `PING`).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Options for [`start`].
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Where to look for `redis-server`.
    pub binaries: BinarySearch,
    /// Who runs the server; `None` chooses with [`ServerUser::choose`].
    pub user: Option<ServerUser>,
    /// The readiness deadline.
    pub ready_timeout: Duration,
    /// How the server is stopped: by default `SIGTERM` with 5 s grace, and
    /// `SIGKILL` if the harness dies.
    pub guard: GuardOptions,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            binaries: BinarySearch::from_env(),
            user: None,
            ready_timeout: Duration::from_secs(10),
            guard: GuardOptions {
                death_signal: Some(Signal::Kill),
                stop_signal: Signal::Term,
                grace: Duration::from_secs(5),
            },
        }
    }
}

/// A running, ready Redis server. Dropping it stops the server. Its port,
/// password, version, pid and log are the [`Server`]'s.
#[derive(Debug)]
pub struct EmbeddedRedis {
    server: Server,
    timings: StartTimings,
}

impl std::ops::Deref for EmbeddedRedis {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

impl EmbeddedRedis {
    /// `redis://:<password>@127.0.0.1:<port>/0`.
    pub fn url(&self) -> Secret {
        Secret::new(format!(
            "redis://:{}@127.0.0.1:{}/0",
            self.password().expose(),
            self.port()
        ))
    }

    /// [`url`](EmbeddedRedis::url) with the password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}/0", self.password(), self.port())
    }

    /// From spawning the server to ready.
    pub fn ready_in(&self) -> Duration {
        self.timings.ready
    }

    /// All start timings.
    pub fn timings(&self) -> &StartTimings {
        &self.timings
    }

    /// Stops the server (`SIGTERM`, then `SIGKILL` after the grace period).
    pub async fn shutdown(self) -> std::io::Result<StopReport> {
        self.server.shutdown().await
    }

    /// Leaves the server running (for `--keep`).
    pub fn detach(self) {
        self.server.detach();
    }
}

/// Starts Redis with its working directory at `<root>/redis`.
pub async fn start(root: &Path, options: &RedisOptions) -> anyhow::Result<EmbeddedRedis> {
    start_on_ports(root, options, free_port).await
}

/// [`start`] with the port source injected, so tests can force a port clash.
async fn start_on_ports(
    root: &Path,
    options: &RedisOptions,
    mut next_port: impl FnMut() -> std::io::Result<u16>,
) -> anyhow::Result<EmbeddedRedis> {
    let begun = Instant::now();
    let binary = options.binaries.find("redis-server")?;
    let (user, password) = super::user_and_password(root, options.user.as_ref())?;
    let dir = root.join("redis");
    super::private_dir(&dir, 0o700, &user)?;
    let prepared = begun.elapsed();
    let version = short_version(&version_output(&binary).await?);

    let (server, attempts) =
        super::start_on_free_port(&mut next_port, password, version, async |port, password| {
            let config = config(port, password, &dir);
            let mut guard = spawn_server(&binary, &dir, &config, &user, options).await?;
            let log = OutputCapture::attach(&mut guard);
            wait_ready(&mut guard, &log, port, password, options.ready_timeout).await?;
            Ok((guard, log))
        })
        .await?;
    let ready = server.guard.started_at().elapsed();
    Ok(EmbeddedRedis {
        server,
        timings: StartTimings {
            prepare: prepared,
            ready,
            total: begun.elapsed(),
            attempts,
        },
    })
}

/// The configuration fed to `redis-server -` on stdin.
fn config(port: u16, password: &Secret, dir: &Path) -> Secret {
    Secret::new(format!(
        "port {port}\n\
         bind 127.0.0.1\n\
         requirepass {}\n\
         save \"\"\n\
         appendonly no\n\
         dir \"{}\"\n\
         daemonize no\n\
         protected-mode yes\n",
        password.expose(),
        dir.display()
    ))
}

/// Spawns `redis-server -` and writes `config` to its stdin.
async fn spawn_server(
    binary: &Path,
    dir: &Path,
    config: &Secret,
    user: &ServerUser,
    options: &RedisOptions,
) -> anyhow::Result<ChildGuard> {
    let mut command = Command::new(binary);
    command
        .arg("-")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    user.apply(&mut command);
    let mut guard =
        ChildGuard::spawn("redis-server", command, options.guard).context("spawn redis-server")?;
    if let Some(mut stdin) = guard.take_stdin() {
        // Redis reads the whole config before it starts; closing stdin ends it.
        // A write failure means it died early, which the readiness wait reports.
        let _ = stdin.write_all(config.expose().as_bytes()).await;
        let _ = stdin.shutdown().await;
    }
    Ok(guard)
}

/// Ready means: `AUTH <password>` answers `+OK` and `PING` answers `+PONG`.
async fn wait_ready(
    guard: &mut ChildGuard,
    log: &OutputCapture,
    port: u16,
    password: &Secret,
    timeout: Duration,
) -> Result<(), StartError> {
    let ready = async {
        loop {
            let probe = tokio::time::timeout(PROBE_TIMEOUT, auth_and_ping(port, password)).await;
            if matches!(probe, Ok(Ok(()))) {
                return;
            }
            tokio::time::sleep(PROBE_RETRY).await;
        }
    };
    super::await_ready("redis-server", guard, log, timeout, ready).await
}

/// Connects, authenticates and pings; an unexpected reply is an error
/// naming it (Redis's replies never echo the password).
pub async fn auth_and_ping(port: u16, password: &Secret) -> std::io::Result<()> {
    let mut connection = RespConnection::connect(port).await?;
    let auth = connection
        .command(&[b"AUTH", password.expose().as_bytes()])
        .await?;
    expect_simple(auth, "OK")?;
    let ping = connection.command(&[b"PING"]).await?;
    expect_simple(ping, "PONG")
}

fn expect_simple(reply: RespValue, expected: &str) -> std::io::Result<()> {
    match reply {
        RespValue::Simple(text) if text == expected => Ok(()),
        other => Err(std::io::Error::other(format!(
            "expected +{expected}, got {other:?}"
        ))),
    }
}

/// `Redis server v=7.0.15 sha=...` → `Redis 7.0.15`.
fn short_version(output: &str) -> String {
    output
        .split_whitespace()
        .find_map(|word| word.strip_prefix("v="))
        .map_or_else(|| output.to_owned(), |number| format!("Redis {number}"))
}

#[cfg(test)]
mod tests {
    use super::{RedisOptions, short_version, start_on_ports};
    use crate::deps::embedded::{TempRoot, clash};
    use crate::process::free_port;

    #[test]
    fn shortens_the_version() {
        assert_eq!(
            short_version("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64"),
            "Redis 7.0.15"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retries_when_the_port_is_taken() {
        let (redis, _root) = clash::starts_on_the_second_port(async |root, ports| {
            start_on_ports(root, &RedisOptions::default(), ports).await
        })
        .await;
        assert_eq!(redis.timings().attempts, 2);
        redis.shutdown().await.expect("stop redis");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gives_up_when_every_port_is_taken_and_quotes_the_log() {
        clash::gives_up_on_taken_ports("redis-server", async |root, ports| {
            start_on_ports(root, &RedisOptions::default(), ports).await
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reports_a_missed_deadline_with_the_log() {
        let root = TempRoot::create().expect("temp root");
        let options = RedisOptions {
            ready_timeout: std::time::Duration::from_millis(1),
            ..RedisOptions::default()
        };
        let error = start_on_ports(root.path(), &options, free_port)
            .await
            .expect_err("1 ms is too short");
        let message = format!("{error:#}");
        assert!(
            message.contains("redis-server was not ready within 1ms"),
            "{message}"
        );
    }
}
