//! Provision stage, Postgres: a throwaway cluster under the temp root,
//! started on a free 127.0.0.1 port with a fresh password and an app
//! database. Takes [`PostgresOptions`]; gives [`EmbeddedPostgres`].
//!
//! Layout under `<root>/pg` (owned by the [`ServerUser`], mode 0700):
//! `data/` (the cluster) and `sock/` (its Unix socket). The server log is
//! captured from stderr.
//!
//! # Fast starts from a template
//!
//! `initdb` takes about half a second; copying its output takes a tenth of
//! that. So a cluster is made once per Postgres build and kept as a
//! [`Template`] in the cache (see [`template`](super::template)); each run
//! copies it. The recipe, the same whether or not a template is used, so
//! that both paths give identical clusters:
//!
//! 1. `initdb --auth=trust` with no password, then gonogo's own
//!    `pg_hba.conf` ([`PG_HBA`]), then the app database, created in
//!    single-user mode (`postgres --single`), so no run pays for
//!    `CREATE DATABASE`. This pristine directory is what the cache stores.
//! 2. Per run: start the server, connect over the Unix socket, set a fresh
//!    password for [`ROLE`] and, if the app database has another name,
//!    rename it.
//!
//! # Why the template holds no secret, and why the socket is trusted
//!
//! The role has no password in the template, so nothing in the cache can
//! log in, and no bootstrap password exists to leak or to forget to change.
//! TCP, the only way the service connects, always requires SCRAM; before
//! step 2 sets the password no TCP login can succeed at all. The Unix socket
//! is trusted so that step 2 needs no secret: the socket lives in
//! `<root>/pg/sock`, mode 0700 and owned by the server user, so only that
//! user and root can reach it, and both can already read and rewrite the
//! data directory. Trusting it grants nobody anything new.
//!
//! The password goes to the server in an `ALTER ROLE` statement on that
//! socket (stored as a SCRAM verifier), never in argv or a file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{AssertSqlSafe, Connection};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::process::Command;

use super::binaries::{BinarySearch, PostgresBinaries, version_output};
use super::template::{self, Stored, Template};
use super::user::ServerUser;
use super::{Server, StartError};
use crate::deps::Secret;
pub use crate::deps::{BOOTSTRAP_DATABASE, ROLE};
use crate::process::{
    ChildGuard, GuardOptions, LineWait, OutputCapture, Signal, StopReport, free_port, piped_output,
};

/// The client authentication of every cluster: the socket is trusted (see
/// the module docs), TCP needs the password.
pub const PG_HBA: &str = "\
# Written by gonogo (src/deps/embedded/postgres.rs). The socket directory is
# private to the server user; TCP always needs the password.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  scram-sha-256
";
/// `initdb`'s arguments after `-D <dir>`. 1 MB WAL segments keep the
/// template small: a cluster that lives for one run needs no 16 MB segment.
const INITDB_ARGS: [&str; 9] = [
    "-U",
    ROLE,
    "--auth=trust",
    "-E",
    "UTF8",
    "--locale=C",
    "--wal-segsize=1",
    "--no-sync",
    "--no-instructions",
];
/// Settings for every server start, single-user mode included: durability
/// is pointless for a throwaway cluster.
const SERVER_SETTINGS: [&str; 5] = [
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    // Nothing replicates from a throwaway cluster: minimal WAL.
    "wal_level=minimal",
    "max_wal_senders=0",
];
/// The log line Postgres prints once it accepts connections.
const READY_LINE: &str = "database system is ready to accept connections";
/// The longest path `bind` accepts for a Unix socket (`sun_path` less NUL).
const MAX_SOCKET_PATH: usize = 107;
/// How often the TCP readiness check retries.
const CONNECT_RETRY: Duration = Duration::from_millis(10);

/// Options for [`start`].
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Where to look for `initdb` and `postgres`.
    pub binaries: BinarySearch,
    /// Who runs the server; `None` chooses with [`ServerUser::choose`].
    pub user: Option<ServerUser>,
    /// The database created for the app: letters, digits and `_` only.
    pub database: String,
    /// The limit for each of `initdb`, the server start and the setup.
    pub ready_timeout: Duration,
    /// The template cache directory; `None` runs `initdb` every time. The
    /// default comes from the environment
    /// ([`cache_dir_from_env`](template::cache_dir_from_env)).
    pub template_cache: Option<PathBuf>,
    /// How the server is stopped: by default `SIGINT` (fast shutdown) with
    /// 5 s grace, and `SIGQUIT` (immediate shutdown) if the harness dies.
    pub guard: GuardOptions,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            binaries: BinarySearch::from_env(),
            user: None,
            database: BOOTSTRAP_DATABASE.to_owned(),
            ready_timeout: Duration::from_secs(30),
            template_cache: template::cache_dir_from_env(),
            guard: GuardOptions {
                death_signal: Some(Signal::Quit),
                stop_signal: Signal::Int,
                grace: Duration::from_secs(5),
            },
        }
    }
}

/// Where a run's cluster files came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterSource {
    /// Copied from the cached template.
    Template,
    /// Made by `initdb` for this run (no template yet, or the cache is off).
    Initdb,
}

impl ClusterSource {
    /// `template` or `initdb`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterSource::Template => "template",
            ClusterSource::Initdb => "initdb",
        }
    }
}

impl std::fmt::Display for ClusterSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Timings of one Postgres start, phase by phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostgresTimings {
    /// Where the cluster came from.
    pub source: ClusterSource,
    /// Making the data directory: copying the template, or `initdb` and the
    /// single-user database creation (and storing the template).
    pub prepare: Duration,
    /// The part of `prepare` spent storing a fresh cluster as the template;
    /// `None` when nothing was stored.
    pub store_template: Option<Duration>,
    /// From spawning the server to ready, on the attempt that succeeded.
    pub ready: Duration,
    /// Connecting over the socket and setting the per-run password.
    pub set_password: Duration,
    /// Renaming the app database (zero when it keeps the default name).
    pub database: Duration,
    /// The whole start, including the version check and port retries.
    pub total: Duration,
    /// How many ports were tried.
    pub attempts: u32,
}

/// A running, ready Postgres server. Dropping it stops the server. Its
/// port, password (of [`ROLE`]), version, pid and log (stderr) are the
/// [`Server`]'s.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    server: Server,
    database: String,
    timings: PostgresTimings,
    data_dir: PathBuf,
}

impl std::ops::Deref for EmbeddedPostgres {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

impl EmbeddedPostgres {
    /// `postgresql://gonogo:<password>@127.0.0.1:<port>/<database>`.
    pub fn url(&self) -> Secret {
        Secret::new(format!(
            "postgresql://{ROLE}:{}@127.0.0.1:{}/{}",
            self.password().expose(),
            self.port(),
            self.database
        ))
    }

    /// [`url`](EmbeddedPostgres::url) with the password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        format!(
            "postgresql://{ROLE}:{}@127.0.0.1:{}/{}",
            self.password(),
            self.port(),
            self.database
        )
    }

    /// The app's database.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// From spawning the server to ready (excluding `initdb` or the copy).
    pub fn ready_in(&self) -> Duration {
        self.timings.ready
    }

    /// All start timings, and where the cluster came from.
    pub fn timings(&self) -> &PostgresTimings {
        &self.timings
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the server (fast shutdown, then `SIGKILL` after the grace period).
    pub async fn shutdown(self) -> std::io::Result<StopReport> {
        self.server.shutdown().await
    }

    /// Leaves the server running (for `--keep`).
    pub fn detach(self) {
        self.server.detach();
    }
}

/// Makes a cluster under `<root>/pg` (from the template when there is one)
/// and starts it.
pub async fn start(root: &Path, options: &PostgresOptions) -> anyhow::Result<EmbeddedPostgres> {
    start_on_ports(root, options, free_port).await
}

/// The app database name goes into URLs unescaped.
fn check_database_name(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "use `{name}` as the app database name (only letters, digits and `_`, so the URL needs no escaping)",
    );
    Ok(())
}

/// Unix socket paths are short; the longest name Postgres uses is
/// `.s.PGSQL.65535.lock`.
fn check_socket_path(socket_dir: &Path) -> anyhow::Result<()> {
    let longest_socket = socket_dir.join(".s.PGSQL.65535.lock");
    anyhow::ensure!(
        longest_socket.as_os_str().len() <= MAX_SOCKET_PATH,
        "fit the socket path `{}` in {MAX_SOCKET_PATH} bytes (choose a shorter temp base)",
        longest_socket.display()
    );
    Ok(())
}

/// A run's cluster: where it lives, the binaries and the account that
/// make and serve it, and the options.
struct Cluster<'a> {
    binaries: &'a PostgresBinaries,
    /// `<root>/pg`.
    home: &'a Path,
    data_dir: &'a Path,
    socket_dir: &'a Path,
    /// `postgres --version`'s output.
    version_text: &'a str,
    user: &'a ServerUser,
    options: &'a PostgresOptions,
}

/// Make the data directory: a copy of the cached template when there is
/// one, else `initdb` (storing the result as the template when a cache is
/// given). Gives where the cluster came from and how long storing took.
async fn prepare_cluster(
    template: Option<&Template>,
    cluster: &Cluster<'_>,
) -> anyhow::Result<(ClusterSource, Option<Duration>)> {
    Ok(match template {
        Some(template) if template.exists() => {
            template.copy_to(cluster.data_dir, cluster.user).await?;
            (ClusterSource::Template, None)
        }
        _ => {
            make_cluster(cluster).await?;
            let storing = Instant::now();
            let stored = match template {
                Some(template) => {
                    let _: Stored = template.store(cluster.data_dir).await?;
                    Some(storing.elapsed())
                }
                None => None,
            };
            (ClusterSource::Initdb, stored)
        }
    })
}

/// [`start`] with the port source injected, so tests can force a port clash.
async fn start_on_ports(
    root: &Path,
    options: &PostgresOptions,
    mut next_port: impl FnMut() -> std::io::Result<u16>,
) -> anyhow::Result<EmbeddedPostgres> {
    let begun = Instant::now();
    check_database_name(&options.database)?;
    let binaries = PostgresBinaries::find(&options.binaries)?;
    let home = root.join("pg");
    let data_dir = home.join("data");
    let socket_dir = home.join("sock");
    check_socket_path(&socket_dir)?;
    let (user, password) = super::user_and_password(root, options.user.as_ref())?;
    super::private_dir(&home, 0o700, &user)?;
    super::private_dir(&socket_dir, 0o700, &user)?;

    let version_text = version_output(&binaries.postgres).await?;
    let cluster = Cluster {
        binaries: &binaries,
        home: &home,
        data_dir: &data_dir,
        socket_dir: &socket_dir,
        version_text: &version_text,
        user: &user,
        options,
    };
    let template = options
        .template_cache
        .as_deref()
        .map(|cache| Template::locate(cache, &version_text, &binaries.initdb, &recipe()));

    let preparing = Instant::now();
    let (source, store_template) = prepare_cluster(template.as_ref(), &cluster).await?;
    let prepare = preparing.elapsed();

    let version = short_version(&version_text);
    let (server, attempts) =
        super::start_on_free_port(&mut next_port, password, version, async |port, _| {
            let mut guard = spawn_server(&cluster, port)?;
            let log = OutputCapture::attach(&mut guard);
            wait_ready(&mut guard, &log, port, options.ready_timeout).await?;
            Ok((guard, log))
        })
        .await?;
    let ready = server.guard.started_at().elapsed();

    let setup = tokio::time::timeout(
        options.ready_timeout,
        set_up(
            &socket_dir,
            server.port,
            &server.password,
            &options.database,
        ),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "set up postgres within {:?} (password and database)",
            options.ready_timeout
        )
    })??;

    Ok(EmbeddedPostgres {
        server,
        database: options.database.clone(),
        timings: PostgresTimings {
            source,
            prepare,
            store_template,
            ready,
            set_password: setup.set_password,
            database: setup.database,
            total: begun.elapsed(),
            attempts,
        },
        data_dir,
    })
}

/// Everything that shapes a cluster, for the template's name.
fn recipe() -> String {
    format!(
        "initdb {}\nhba {PG_HBA}\ndatabase {BOOTSTRAP_DATABASE}\nlayout {}",
        INITDB_ARGS.join(" "),
        template::LAYOUT
    )
}

/// Step 1 of the recipe (module docs): `initdb`, `pg_hba.conf`, and the
/// app database, without ever starting a server.
async fn make_cluster(cluster: &Cluster<'_>) -> anyhow::Result<()> {
    let mut command = Command::new(&cluster.binaries.initdb);
    command
        .arg("-D")
        .arg(cluster.data_dir)
        .args(INITDB_ARGS)
        .current_dir(cluster.home);
    cluster.user.apply(&mut command);
    let finished = ChildGuard::run(
        "initdb",
        command,
        kill_guard(),
        cluster.options.ready_timeout,
    )
    .await
    .context("run initdb")?;
    anyhow::ensure!(
        finished.status.success(),
        "initdb exited with {}; its output:\n{}",
        finished.status,
        finished.output.last_lines(super::LOG_LINES_IN_ERRORS)
    );

    let hba = cluster.data_dir.join("pg_hba.conf");
    std::fs::write(&hba, PG_HBA).with_context(|| format!("write `{}`", hba.display()))?;
    cluster
        .user
        .chown(&hba)
        .with_context(|| format!("hand `{}` to {}", hba.display(), cluster.user.name))?;

    // `STRATEGY = FILE_COPY` (Postgres 15 and later) copies files instead of
    // logging every page, which keeps the template's WAL small.
    let major = version_number(cluster.version_text)
        .and_then(|number| number.split('.').next())
        .and_then(|major| major.parse::<u32>().ok())
        .unwrap_or(0);
    let strategy = if major >= 15 {
        " STRATEGY = FILE_COPY"
    } else {
        ""
    };
    single_user(
        &cluster.binaries.postgres,
        cluster.data_dir,
        &format!("CREATE DATABASE {BOOTSTRAP_DATABASE}{strategy}\n"),
        cluster.user,
        cluster.options.ready_timeout,
    )
    .await
    .context("create the app database in single-user mode")
}

/// Runs `sql` (one statement per line) with `postgres --single`.
async fn single_user(
    postgres: &Path,
    data_dir: &Path,
    sql: &str,
    user: &ServerUser,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut command = Command::new(postgres);
    command.args(["--single", "-D"]).arg(data_dir);
    for setting in SERVER_SETTINGS {
        command.args(["-c", setting]);
    }
    command.arg("postgres").current_dir(data_dir);
    piped_output(&mut command).stdin(std::process::Stdio::piped());
    user.apply(&mut command);
    let mut guard = ChildGuard::spawn("postgres --single", command, kill_guard())
        .context("spawn postgres --single")?;
    let output = OutputCapture::attach(&mut guard);
    let mut stdin = guard
        .take_stdin()
        .context("postgres --single has no stdin")?;
    stdin
        .write_all(sql.as_bytes())
        .await
        .context("write to postgres --single")?;
    // End of input ends the session.
    drop(stdin);
    let status = guard
        .wait_timeout(timeout)
        .await
        .context("wait for postgres --single")?
        .with_context(|| format!("postgres --single did not finish within {timeout:?}"))?;
    output
        .wait_closed(tokio::time::Instant::now() + Duration::from_secs(1))
        .await;
    let output = output.snapshot();
    // Single-user mode exits 0 even when a statement fails.
    let failed = output.lines().any(|line| {
        ["ERROR:", "FATAL:", "PANIC:"]
            .iter()
            .any(|level| line.text.contains(level))
    });
    anyhow::ensure!(
        status.success() && !failed,
        "postgres --single exited with {status}; its output:\n{}",
        output.last_lines(super::LOG_LINES_IN_ERRORS)
    );
    Ok(())
}

/// Spawns the postmaster on `port`, logging to its (captured) stderr.
fn spawn_server(cluster: &Cluster<'_>, port: u16) -> anyhow::Result<ChildGuard> {
    let mut command = Command::new(&cluster.binaries.postgres);
    command
        .arg("-D")
        .arg(cluster.data_dir)
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(cluster.socket_dir)
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "logging_collector=off"]);
    for setting in SERVER_SETTINGS {
        command.args(["-c", setting]);
    }
    command.current_dir(cluster.data_dir);
    piped_output(&mut command);
    cluster.user.apply(&mut command);
    ChildGuard::spawn("postgres", command, cluster.options.guard).context("spawn postgres")
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

/// How long each part of [`set_up`] took.
struct Setup {
    set_password: Duration,
    database: Duration,
}

/// Step 2 of the recipe (module docs), over the trusted Unix socket.
async fn set_up(
    socket_dir: &Path,
    port: u16,
    password: &Secret,
    database: &str,
) -> anyhow::Result<Setup> {
    // Spliced into SQL below: only letters and digits, by construction.
    anyhow::ensure!(
        password.expose().bytes().all(|b| b.is_ascii_alphanumeric()),
        "use a password of letters and digits only"
    );
    let begun = Instant::now();
    let connect = PgConnectOptions::new_without_pgpass()
        .socket(socket_dir)
        .port(port)
        .username(ROLE)
        .database("postgres")
        .ssl_mode(PgSslMode::Disable)
        .application_name("gonogo-setup");
    let mut connection = PgConnection::connect_with(&connect)
        .await
        .context("connect to postgres over its unix socket")?;
    // Older servers default to md5, which the SCRAM-only TCP line refuses.
    let set_password = format!(
        "SET password_encryption = 'scram-sha-256'; ALTER ROLE {ROLE} PASSWORD '{}'",
        password.expose()
    );
    sqlx::raw_sql(AssertSqlSafe(set_password))
        .execute(&mut connection)
        .await
        .with_context(|| format!("set the password of role {ROLE}"))?;
    let set_password = begun.elapsed();

    let renaming = Instant::now();
    if database != BOOTSTRAP_DATABASE {
        let rename = format!("ALTER DATABASE {BOOTSTRAP_DATABASE} RENAME TO {database}");
        sqlx::raw_sql(AssertSqlSafe(rename))
            .execute(&mut connection)
            .await
            .with_context(|| format!("rename the app database to {database}"))?;
    }
    let database = renaming.elapsed();
    connection
        .close()
        .await
        .context("close the setup connection")?;
    Ok(Setup {
        set_password,
        database,
    })
}

/// One-shot helpers die with the harness and get no grace.
fn kill_guard() -> GuardOptions {
    GuardOptions {
        death_signal: Some(Signal::Kill),
        stop_signal: Signal::Kill,
        grace: Duration::ZERO,
    }
}

/// `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → `15.18`.
pub fn version_number(output: &str) -> Option<&str> {
    output
        .split_once("(PostgreSQL) ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
}

/// `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → `PostgreSQL 15.18`.
fn short_version(output: &str) -> String {
    version_number(output).map_or_else(
        || output.to_owned(),
        |number| format!("PostgreSQL {number}"),
    )
}

#[cfg(test)]
mod tests {
    use super::{PostgresOptions, short_version, start_on_ports};
    use crate::deps::embedded::clash;

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
        let (postgres, _root) = clash::starts_on_the_second_port(async |root, ports| {
            start_on_ports(root, &PostgresOptions::default(), ports).await
        })
        .await;
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
        clash::gives_up_on_taken_ports("postgres", async |root, ports| {
            start_on_ports(root, &PostgresOptions::default(), ports).await
        })
        .await;
    }
}
