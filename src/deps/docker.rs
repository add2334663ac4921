//! The docker provider: takes [`ProvisionOptions`]; gives [`Provisioned`]
//! with Postgres and Redis in throwaway containers (testcontainers'
//! Postgres and Redis modules), each with a fresh password, removed when the
//! guard drops.
//!
//! Before anything else it asks the daemon `GET /_ping` with a
//! [`PING_TIMEOUT`] deadline of its own, so a daemon that accepts the
//! socket but never answers fails fast instead of hanging gonogo. Built only
//! with the `docker` cargo feature; without it the provider says so.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{ProvisionOptions, Provisioned};

/// How long the daemon gets to answer `GET /_ping`, connection included.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether this gonogo was built with docker support.
pub const BUILT_IN: bool = cfg!(feature = "docker");

/// Why docker cannot be used by a gonogo built without it.
pub const NOT_BUILT: &str = "is not available: this gonogo was built without docker support (rebuild with `cargo build --features docker`)";

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonAddress {
    Unix(PathBuf),
    Tcp(String),
}

impl std::fmt::Display for DaemonAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonAddress::Unix(path) => write!(f, "unix://{}", path.display()),
            DaemonAddress::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// `DOCKER_HOST`, else `/var/run/docker.sock`.
pub fn daemon_address() -> Result<DaemonAddress, String> {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    if host.is_empty() {
        return Ok(DaemonAddress::Unix("/var/run/docker.sock".into()));
    }
    if let Some(path) = host.strip_prefix("unix://") {
        return Ok(DaemonAddress::Unix(path.into()));
    }
    if let Some(addr) = host.strip_prefix("tcp://") {
        return Ok(DaemonAddress::Tcp(addr.trim_end_matches('/').to_string()));
    }
    Err(format!(
        "DOCKER_HOST `{host}` is neither unix:// nor tcp:// (ssh:// and npipe:// are not supported)"
    ))
}

/// What the daemon said to `GET /_ping`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerStatus {
    /// It answered `OK`; the `Api-Version` header when given.
    Answers {
        address: String,
        api_version: Option<String>,
    },
    /// Nothing listens there (or `DOCKER_HOST` is unusable).
    Unreachable { address: String, reason: String },
    /// It accepted the connection but gave no answer within the deadline,
    /// or a wrong one.
    NoAnswer { address: String, reason: String },
}

impl DockerStatus {
    pub fn answers(&self) -> bool {
        matches!(self, DockerStatus::Answers { .. })
    }

    /// One lower-case fragment for messages, e.g. `has no daemon at …`.
    pub fn describe(&self) -> String {
        match self {
            DockerStatus::Answers {
                address,
                api_version,
            } => format!(
                "answers at {address}{}",
                api_version
                    .as_ref()
                    .map(|v| format!(" (API {v})"))
                    .unwrap_or_default()
            ),
            DockerStatus::Unreachable { address, reason } => {
                format!("has no daemon at {address} ({reason}); start Docker or set DOCKER_HOST")
            }
            DockerStatus::NoAnswer { address, reason } => format!(
                "does not answer at {address}: {reason}; check that the Docker daemon is healthy"
            ),
        }
    }
}

/// Whether the docker provider can run, given what the daemon said: it
/// must be built in, and a daemon must answer.
pub fn availability(status: &DockerStatus) -> super::Availability {
    let works = BUILT_IN && status.answers();
    let detail = match (BUILT_IN, status.answers()) {
        (false, _) => format!("docker {NOT_BUILT}; daemon: {}", status.describe()),
        (true, true) => format!("the daemon {}", status.describe()),
        (true, false) => format!(
            "the daemon {} (install Docker Engine, or point DOCKER_HOST at a daemon)",
            status.describe()
        ),
    };
    super::Availability { works, detail }
}

/// Ask the daemon `GET /_ping`, giving up after [`PING_TIMEOUT`].
pub async fn ping() -> DockerStatus {
    let address = match daemon_address() {
        Ok(a) => a,
        Err(reason) => {
            return DockerStatus::Unreachable {
                address: std::env::var("DOCKER_HOST").unwrap_or_default(),
                reason,
            };
        }
    };
    ping_at(&address, PING_TIMEOUT).await
}

/// [`ping`] at `address` with `deadline`.
pub async fn ping_at(address: &DaemonAddress, deadline: Duration) -> DockerStatus {
    let shown = address.to_string();
    let exchange = async {
        match address {
            DaemonAddress::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| (false, e.to_string()))?;
                exchange_ping(stream).await.map_err(|e| (true, e))
            }
            DaemonAddress::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| (false, e.to_string()))?;
                exchange_ping(stream).await.map_err(|e| (true, e))
            }
        }
    };
    match tokio::time::timeout(deadline, exchange).await {
        Ok(Ok(api_version)) => DockerStatus::Answers {
            address: shown,
            api_version,
        },
        Ok(Err((false, reason))) => DockerStatus::Unreachable {
            address: shown,
            reason,
        },
        Ok(Err((true, reason))) => DockerStatus::NoAnswer {
            address: shown,
            reason,
        },
        Err(_) => DockerStatus::NoAnswer {
            address: shown,
            reason: format!(
                "no answer to GET /_ping within {} s",
                deadline.as_secs_f64()
            ),
        },
    }
}

/// Send the ping and read the answer; gives the `Api-Version` header.
async fn exchange_ping(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
) -> Result<Option<String>, String> {
    stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .await
        .map_err(|e| format!("send GET /_ping: {e}"))?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .await
        .map_err(|e| format!("read the answer to GET /_ping: {e}"))?;
    let text = String::from_utf8_lossy(&reply);
    let status_ok = text
        .lines()
        .next()
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("200"));
    if !status_ok {
        let first = text.lines().next().unwrap_or("(nothing)");
        return Err(format!("GET /_ping answered `{first}`, not 200"));
    }
    Ok(text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("api-version")
            .then(|| value.trim().to_string())
    }))
}

/// The running containers; dropping them removes them.
pub struct DockerGuard {
    #[cfg(feature = "docker")]
    containers: Option<Box<containers::Containers>>,
}

impl DockerGuard {
    /// Remove both containers.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        #[cfg(feature = "docker")]
        if let Some(c) = self.containers {
            c.remove().await?;
        }
        Ok(())
    }

    /// Leave both containers running (`--keep`); names them.
    pub fn detach(self) -> String {
        #[cfg(feature = "docker")]
        if let Some(c) = self.containers {
            return c.detach();
        }
        "nothing to keep".into()
    }
}

/// Start both containers, after checking that the daemon answers.
pub async fn start(options: &ProvisionOptions) -> anyhow::Result<Provisioned> {
    let status = ping().await;
    if !status.answers() {
        anyhow::bail!(
            "use --deps docker: docker {}{}",
            status.describe(),
            if BUILT_IN {
                String::new()
            } else {
                format!("; also, docker {NOT_BUILT}")
            }
        );
    }
    if !BUILT_IN {
        anyhow::bail!("use --deps docker: docker {NOT_BUILT}");
    }
    #[cfg(feature = "docker")]
    {
        containers::start(options).await
    }
    #[cfg(not(feature = "docker"))]
    {
        let _ = options;
        unreachable!("BUILT_IN is false without the docker feature")
    }
}

#[cfg(feature = "docker")]
mod containers {
    use std::time::{Duration, Instant};

    use anyhow::Context;
    use testcontainers::runners::AsyncRunner;
    use testcontainers::{ContainerAsync, ImageExt};
    use testcontainers_modules::postgres::Postgres;
    use testcontainers_modules::redis::Redis;

    use super::super::external;
    use super::super::{
        PostgresEndpoint, ProviderGuard, ProviderKind, ProvisionOptions, Provisioned, RedisEndpoint,
    };
    use super::DockerGuard;
    use crate::deps::Secret;
    use crate::deps::{BOOTSTRAP_DATABASE, ROLE};

    /// The images, pinned to the majors the embedded provider usually runs.
    const POSTGRES_TAG: &str = "16-alpine";
    const REDIS_TAG: &str = "7-alpine";
    /// Pulling an image can take a while; starting one should not.
    const STARTUP: Duration = Duration::from_secs(120);

    pub struct Containers {
        postgres: ContainerAsync<Postgres>,
        redis: ContainerAsync<Redis>,
    }

    impl Containers {
        pub async fn remove(self) -> anyhow::Result<()> {
            let (pg, redis) = tokio::join!(self.postgres.rm(), self.redis.rm());
            pg.context("remove the postgres container")?;
            redis.context("remove the redis container")?;
            Ok(())
        }

        pub fn detach(self) -> String {
            let text = format!(
                "containers still running: {} (postgres), {} (redis); remove them with `docker rm -f`",
                self.postgres.id(),
                self.redis.id()
            );
            // Forgetting them skips the drop that would remove them.
            std::mem::forget(self);
            text
        }
    }

    pub async fn start(options: &ProvisionOptions) -> anyhow::Result<Provisioned> {
        let _ = options.keep;
        let pg_password = Secret::generate()?;
        let redis_password = Secret::generate()?;
        let started = Instant::now();
        let (postgres, redis) = tokio::try_join!(
            async {
                Postgres::default()
                    .with_user(ROLE)
                    .with_password(pg_password.expose())
                    .with_db_name(BOOTSTRAP_DATABASE)
                    .with_tag(POSTGRES_TAG)
                    .with_startup_timeout(STARTUP)
                    .start()
                    .await
                    .context("start the postgres container")
            },
            async {
                Redis::default()
                    .with_tag(REDIS_TAG)
                    .with_cmd(["redis-server", "--requirepass", redis_password.expose()])
                    .with_startup_timeout(STARTUP)
                    .start()
                    .await
                    .context("start the redis container")
            },
        )?;
        let ready = started.elapsed();
        let pg_host = postgres.get_host().await?.to_string();
        let pg_port = postgres.get_host_port_ipv4(5432).await?;
        let redis_host = redis.get_host().await?.to_string();
        let redis_port = redis.get_host_port_ipv4(6379).await?;
        let mut pg = PostgresEndpoint {
            host: pg_host,
            port: pg_port,
            user: ROLE.into(),
            password: pg_password.clone(),
            password_in_url: pg_password,
            database: BOOTSTRAP_DATABASE.into(),
            query: None,
            version: String::new(),
            ready,
            provisioned_from: Some(format!("postgres:{POSTGRES_TAG}")),
        };
        let mut rd = RedisEndpoint {
            scheme: "redis".into(),
            host: redis_host,
            port: redis_port,
            user: None,
            password: redis_password.clone(),
            password_in_url: redis_password,
            db: "0".into(),
            version: String::new(),
            ready,
        };
        pg.version = external::postgres_version(&pg.url_via(&pg.host, pg.port)).await;
        rd.version = external::redis_version(&rd).await;
        Ok(Provisioned {
            kind: ProviderKind::Docker,
            postgres: pg,
            redis: rd,
            guard: ProviderGuard::Docker(DockerGuard {
                containers: Some(Box::new(Containers { postgres, redis })),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_silent_daemon_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let holder = tokio::spawn(async move {
            let (_stream, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let started = std::time::Instant::now();
        let status = ping_at(
            &DaemonAddress::Unix(path.clone()),
            Duration::from_millis(300),
        )
        .await;
        assert!(
            matches!(status, DockerStatus::NoAnswer { .. }),
            "{status:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        holder.abort();
        drop(std::fs::remove_file(&path));
        let status = ping_at(&DaemonAddress::Unix(path), Duration::from_millis(300)).await;
        assert!(
            matches!(status, DockerStatus::Unreachable { .. }),
            "{status:?}"
        );
    }
}
