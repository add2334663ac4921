//! Provision stage, Postgres: initializes a throwaway cluster under the temp
//! root and starts it on a free 127.0.0.1 port, with a generated password
//! and an app database. Gives [`EmbeddedPostgres`].
//!
//! Layout under `<root>/pg` (owned by the [`ServerUser`], mode 0700):
//! `data/` (the cluster), `sock/` (its Unix socket) and, for the instant
//! `initdb` runs, `pwfile`. The server log is captured from stderr.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpStream;
use tokio::process::Command;

use super::binaries::{BinarySearch, PostgresBinaries, version_output};
use super::secret::Secret;
use super::user::ServerUser;
use super::{PORT_ATTEMPTS, StartError, StartTimings};
use crate::process::{
    ChildGuard, GuardOptions, LineWait, OutputCapture, Signal, StopReport, free_port, piped_output,
};

/// The role `initdb` creates, which owns every database.
pub const ROLE: &str = "gonogo";
/// The log line Postgres prints once it accepts connections.
const READY_LINE: &str = "database system is ready to accept connections";
/// The longest path `bind` accepts for a Unix socket (`sun_path` less NUL).
const MAX_SOCKET_PATH: usize = 107;
/// How often the TCP readiness check retries.
const CONNECT_RETRY: Duration = Duration::from_millis(10);

/// Options for [`start`].
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Where to look for `initdb`, `postgres` and `createdb`.
    pub binaries: BinarySearch,
    /// Who runs the server; `None` chooses with [`ServerUser::choose`].
    pub user: Option<ServerUser>,
    /// The database created for the app (when `createdb` is installed;
    /// otherwise the app gets `postgres`): letters, digits and `_` only.
    pub database: String,
    /// The limit for each of `initdb`, the server start and `createdb`.
    pub ready_timeout: Duration,
    /// How the server is stopped: by default `SIGINT` (fast shutdown) with
    /// 5 s grace, and `SIGQUIT` (immediate shutdown) if the harness dies.
    pub guard: GuardOptions,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            binaries: BinarySearch::from_env(),
            user: None,
            database: "gonogo_app".to_owned(),
            ready_timeout: Duration::from_secs(30),
            guard: GuardOptions {
                death_signal: Some(Signal::Quit),
                stop_signal: Signal::Int,
                grace: Duration::from_secs(5),
            },
        }
    }
}

/// A running, ready Postgres server. Dropping it stops the server.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    guard: ChildGuard,
    log: OutputCapture,
    port: u16,
    password: Secret,
    database: String,
    version: String,
    timings: StartTimings,
    data_dir: PathBuf,
}

impl EmbeddedPostgres {
    /// `postgresql://gonogo:<password>@127.0.0.1:<port>/<database>`.
    pub fn url(&self) -> Secret {
        Secret::new(format!(
            "postgresql://{ROLE}:{}@127.0.0.1:{}/{}",
            self.password.expose(),
            self.port,
            self.database
        ))
    }

    /// [`url`](EmbeddedPostgres::url) with the password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        format!(
            "postgresql://{ROLE}:{}@127.0.0.1:{}/{}",
            self.password, self.port, self.database
        )
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The password of [`ROLE`].
    pub fn password(&self) -> &Secret {
        &self.password
    }

    /// The app's database.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The server version, e.g. `PostgreSQL 15.18`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// From spawning the server to ready (excluding `initdb`).
    pub fn ready_in(&self) -> Duration {
        self.timings.ready
    }

    /// All start timings.
    pub fn timings(&self) -> &StartTimings {
        &self.timings
    }

    /// The postmaster's pid.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server log so far (stderr, unmasked).
    pub fn log(&self) -> &OutputCapture {
        &self.log
    }

    /// Stops the server (fast shutdown, then `SIGKILL` after the grace period).
    pub async fn shutdown(self) -> std::io::Result<StopReport> {
        self.guard.stop().await
    }

    /// Leaves the server running (for `--keep`).
    pub fn detach(self) {
        self.guard.detach();
    }
}

/// Initializes a cluster under `<root>/pg` and starts it.
pub async fn start(root: &Path, options: &PostgresOptions) -> anyhow::Result<EmbeddedPostgres> {
    start_on_ports(root, options, free_port).await
}

/// [`start`] with the port source injected, so tests can force a port clash.
async fn start_on_ports(
    root: &Path,
    options: &PostgresOptions,
    mut next_port: impl FnMut() -> std::io::Result<u16>,
) -> anyhow::Result<EmbeddedPostgres> {
    let begun = Instant::now();
    let plain_name = |name: &str| {
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    anyhow::ensure!(
        plain_name(&options.database),
        "use `{}` as the app database name (only letters, digits and `_`, so the URL needs no escaping)",
        options.database
    );
    let binaries = PostgresBinaries::find(&options.binaries)?;
    let user = match &options.user {
        Some(user) => user.clone(),
        None => ServerUser::choose()?,
    };
    let password = Secret::generate().context("generate a password")?;
    let home = root.join("pg");
    let data_dir = home.join("data");
    let socket_dir = home.join("sock");
    // The longest socket name Postgres uses is `.s.PGSQL.65535.lock`.
    let longest_socket = socket_dir.join(".s.PGSQL.65535.lock");
    anyhow::ensure!(
        longest_socket.as_os_str().len() <= MAX_SOCKET_PATH,
        "fit the socket path `{}` in {MAX_SOCKET_PATH} bytes (choose a shorter temp base)",
        longest_socket.display()
    );
    super::ensure_traversable(root, &user)?;
    super::private_dir(&home, 0o700, &user)?;
    super::private_dir(&socket_dir, 0o700, &user)?;

    let (initialized, version) = tokio::join!(
        initdb(
            &binaries.initdb,
            &home,
            &data_dir,
            &user,
            &password,
            options
        ),
        version_output(&binaries.postgres),
    );
    initialized?;
    let version = short_version(&version?);
    let prepared = begun.elapsed();

    let mut attempt = 0;
    let (guard, log, port, ready) = loop {
        attempt += 1;
        let port = next_port().context("find a free port")?;
        let mut guard = spawn_server(
            &binaries.postgres,
            &data_dir,
            &socket_dir,
            port,
            &user,
            options,
        )?;
        let log = OutputCapture::attach(&mut guard);
        let ready = wait_ready(&mut guard, &log, port, options.ready_timeout).await;
        match ready {
            Ok(()) => {
                let ready = guard.started_at().elapsed();
                break (guard, log, port, ready);
            }
            // Another process took the port first: try the next one.
            Err(error) if error.port_in_use() && attempt < PORT_ATTEMPTS => {}
            Err(error) => return Err(error.into()),
        }
    };

    let database = match &binaries.createdb {
        Some(createdb) => {
            create_database(createdb, port, &password, &options.database, options).await?;
            options.database.clone()
        }
        None => "postgres".to_owned(),
    };

    Ok(EmbeddedPostgres {
        guard,
        log,
        port,
        password,
        database,
        version,
        timings: StartTimings {
            prepare: prepared,
            ready,
            total: begun.elapsed(),
            attempts: attempt,
        },
        data_dir,
    })
}

/// Runs `initdb` as `user`, with the password in a short-lived 0600 file.
async fn initdb(
    initdb: &Path,
    home: &Path,
    data_dir: &Path,
    user: &ServerUser,
    password: &Secret,
    options: &PostgresOptions,
) -> anyhow::Result<()> {
    let pwfile = home.join("pwfile");
    write_private_file(&pwfile, password.expose(), user)?;
    let mut command = Command::new(initdb);
    command
        .arg("-D")
        .arg(data_dir)
        .args([
            "-U",
            ROLE,
            "-A",
            "scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .args(["--no-sync", "--no-instructions"])
        .current_dir(home);
    user.apply(&mut command);
    let ran = ChildGuard::run("initdb", command, kill_guard(), options.ready_timeout).await;
    let removed = std::fs::remove_file(&pwfile);
    let finished = ran.context("run initdb")?;
    removed.with_context(|| format!("remove `{}`", pwfile.display()))?;
    anyhow::ensure!(
        finished.status.success(),
        "initdb exited with {}; its output:\n{}",
        finished.status,
        finished.output.last_lines(super::LOG_LINES_IN_ERRORS)
    );
    Ok(())
}

/// Spawns the postmaster on `port`, logging to its (captured) stderr.
fn spawn_server(
    postgres: &Path,
    data_dir: &Path,
    socket_dir: &Path,
    port: u16,
    user: &ServerUser,
    options: &PostgresOptions,
) -> anyhow::Result<ChildGuard> {
    let mut command = Command::new(postgres);
    command
        .arg("-D")
        .arg(data_dir)
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(socket_dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            // Nothing replicates from a throwaway cluster: minimal WAL.
            "-c",
            "wal_level=minimal",
            "-c",
            "max_wal_senders=0",
            "-c",
            "logging_collector=off",
        ])
        .current_dir(data_dir);
    piped_output(&mut command);
    user.apply(&mut command);
    ChildGuard::spawn("postgres", command, options.guard).context("spawn postgres")
}

/// Ready means: the log says so, and the TCP port accepts connections.
async fn wait_ready(
    guard: &mut ChildGuard,
    log: &OutputCapture,
    port: u16,
    timeout: Duration,
) -> Result<(), StartError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let ready = async {
        let said_ready = log
            .wait_for_line(|line| line.text.contains(READY_LINE), deadline)
            .await;
        if !matches!(said_ready, LineWait::Found(_)) {
            // Exit or deadline: `await_ready` reports which.
            std::future::pending::<()>().await;
        }
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            tokio::time::sleep(CONNECT_RETRY).await;
        }
    };
    super::await_ready("postgres", guard, log, timeout, ready).await
}

/// Creates the app database with `createdb`, passing the password through
/// the environment rather than argv.
async fn create_database(
    createdb: &Path,
    port: u16,
    password: &Secret,
    database: &str,
    options: &PostgresOptions,
) -> anyhow::Result<()> {
    let mut command = Command::new(createdb);
    command
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", ROLE, "-w"])
        .arg(database)
        .env("PGPASSWORD", password.expose())
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS");
    let finished = ChildGuard::run("createdb", command, kill_guard(), options.ready_timeout)
        .await
        .context("run createdb")?;
    anyhow::ensure!(
        finished.status.success(),
        "createdb {database} exited with {}; its output:\n{}",
        finished.status,
        finished.output.last_lines(super::LOG_LINES_IN_ERRORS)
    );
    Ok(())
}

/// One-shot helpers die with the harness and get no grace.
fn kill_guard() -> GuardOptions {
    GuardOptions {
        death_signal: Some(Signal::Kill),
        stop_signal: Signal::Kill,
        grace: Duration::ZERO,
    }
}

/// Writes `contents` to a new 0600 file owned by `user`.
fn write_private_file(path: &Path, contents: &str, user: &ServerUser) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create `{}`", path.display()))?;
    writeln!(file, "{contents}").with_context(|| format!("write `{}`", path.display()))?;
    user.chown(path)
        .with_context(|| format!("hand `{}` to {}", path.display(), user.name))
}

/// `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → `PostgreSQL 15.18`.
fn short_version(output: &str) -> String {
    output
        .split_once("(PostgreSQL) ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .map_or_else(
            || output.to_owned(),
            |number| format!("PostgreSQL {number}"),
        )
}

#[cfg(test)]
mod tests {
    use super::{PostgresOptions, short_version, start_on_ports};
    use crate::process::free_port;
    use crate::provision::TempRoot;

    #[test]
    fn shortens_the_version() {
        assert_eq!(
            short_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            "PostgreSQL 15.18"
        );
        assert_eq!(short_version("something else"), "something else");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retries_when_the_port_is_taken() {
        let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a port");
        let taken_port = taken.local_addr().expect("local addr").port();
        let mut ports = vec![taken_port];
        let root = TempRoot::create().expect("temp root");
        let postgres = start_on_ports(root.path(), &PostgresOptions::default(), || {
            ports.pop().map_or_else(free_port, Ok)
        })
        .await
        .expect("postgres starts on the second port");
        assert_ne!(postgres.port(), taken_port);
        assert_eq!(postgres.timings().attempts, 2);
        let log = postgres.log().snapshot();
        assert!(
            !log.lines()
                .any(|line| line.text.contains("Address already in use")),
            "the kept log is the successful attempt's"
        );
        postgres.shutdown().await.expect("stop postgres");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gives_up_when_every_port_is_taken_and_quotes_the_log() {
        let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a port");
        let taken_port = taken.local_addr().expect("local addr").port();
        let root = TempRoot::create().expect("temp root");
        let mut tried = 0;
        let error = start_on_ports(root.path(), &PostgresOptions::default(), || {
            tried += 1;
            Ok(taken_port)
        })
        .await
        .expect_err("every port is taken");
        let message = format!("{error:#}");
        assert_eq!(tried, crate::provision::PORT_ATTEMPTS);
        assert!(
            message.contains("postgres exited before it was ready"),
            "{message}"
        );
        assert!(message.contains("Address already in use"), "{message}");
    }
}
