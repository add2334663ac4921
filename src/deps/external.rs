//! The external provider: takes the scenario's [`ExternalSpec`] (which
//! environment variables, or which literal URLs, name the servers); gives
//! [`Provisioned`] pointing at Postgres and Redis servers someone else runs.
//!
//! gonogo only reads from them: it checks they accept TCP connections and
//! asks their versions (`SHOW server_version`, `INFO server`). The service
//! reaches them through gonogo's fault proxies, the negative proof swaps the
//! URL for a closed port, and migrations run only when the scenario opts in
//! with `[migrations] external = true`.

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::Connection;

use super::Secret;
use super::resp::{RespConnection, RespValue};
use crate::scenario::{ExternalSpec, ExternalUrl};

use super::{PostgresEndpoint, ProviderGuard, ProviderKind, Provisioned, RedisEndpoint};

/// How long each server gets to accept a connection or answer a query.
const DEADLINE: Duration = Duration::from_secs(5);

/// Read both URLs, check the servers answer, and ask their versions.
pub async fn connect(spec: &ExternalSpec) -> anyhow::Result<Provisioned> {
    let pg_url = read(&spec.database_url)?;
    let redis_url = read(&spec.redis_url)?;
    let mut postgres = postgres_endpoint(&pg_url)
        .with_context(|| format!("use the external database URL ({})", spec.database_url))?;
    let mut redis = redis_endpoint(&redis_url)
        .with_context(|| format!("use the external redis URL ({})", spec.redis_url))?;
    let (pg_ready, redis_ready) = tokio::join!(
        reachable("postgres", &postgres.host, postgres.port),
        reachable("redis", &redis.host, redis.port),
    );
    postgres.ready = pg_ready?;
    redis.ready = redis_ready?;
    prove_credentials(&pg_url, &postgres, &redis).await?;
    let (pg_version, redis_version) =
        tokio::join!(postgres_version(&pg_url), redis_version(&redis),);
    postgres.version = pg_version;
    redis.version = redis_version;
    Ok(Provisioned {
        kind: ProviderKind::External,
        postgres,
        redis,
        guard: ProviderGuard::External,
    })
}

/// What `gonogo doctor` says about the servers `spec` names: for each, the
/// place it reached, or why it did not (unset, unparsable, unreachable
/// within [`DEADLINE`]). The same reading and reachability check as
/// [`connect`], without the version queries.
pub async fn diagnose(spec: &ExternalSpec) -> Vec<Result<String, String>> {
    let postgres = async {
        let url = read(&spec.database_url)?;
        let e = postgres_endpoint(&url).context("parse the database URL")?;
        reachable("postgres", &e.host, e.port).await?;
        Ok::<_, anyhow::Error>(format!(
            "postgres {} reaches {}:{}",
            spec.database_url, e.host, e.port
        ))
    };
    let redis = async {
        let url = read(&spec.redis_url)?;
        let e = redis_endpoint(&url).context("parse the redis URL")?;
        reachable("redis", &e.host, e.port).await?;
        Ok::<_, anyhow::Error>(format!(
            "redis {} reaches {}:{}",
            spec.redis_url, e.host, e.port
        ))
    };
    let (postgres, redis) = tokio::join!(postgres, redis);
    [postgres, redis]
        .into_iter()
        .map(|r| r.map_err(|e| format!("{e:#}")))
        .collect()
}

/// The URL an [`ExternalUrl`] names; the error never quotes the value.
fn read(source: &ExternalUrl) -> anyhow::Result<String> {
    match source {
        ExternalUrl::Literal(url) => Ok(url.clone()),
        ExternalUrl::Env(var) => match std::env::var(var) {
            Ok(url) if !url.trim().is_empty() => Ok(url.trim().to_string()),
            Ok(_) => anyhow::bail!("read `{var}`: it is empty; set it to the server's URL"),
            Err(_) => anyhow::bail!(
                "read `{var}`: it is not set; --deps external takes the server URLs from the environment (rename the variables in the scenario's [external] table)"
            ),
        },
    }
}

fn parse(text: &str) -> anyhow::Result<url::Url> {
    // The parser's messages never quote the input.
    url::Url::parse(text).map_err(|e| anyhow::anyhow!("parse it as a URL: {e}"))
}

fn decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_string())
}

/// The URL's host, without the brackets of an IPv6 literal.
fn host_of(url: &url::Url) -> anyhow::Result<String> {
    let host = url.host_str().context("find the host in the URL")?;
    Ok(host.trim_matches(|c| c == '[' || c == ']').to_string())
}

/// The URL once its scheme is one of `schemes` (else the error says it
/// expected `what`), its host, and its password as written (encoded).
fn split_url(
    text: &str,
    schemes: &[&str],
    what: &str,
) -> anyhow::Result<(url::Url, String, String)> {
    let url = parse(text)?;
    anyhow::ensure!(
        schemes.contains(&url.scheme()),
        "expect {what}, found scheme `{}`",
        url.scheme()
    );
    let host = host_of(&url)?;
    let password = url.password().unwrap_or_default().to_string();
    Ok((url, host, password))
}

/// `postgres[ql]://user:password@host:port/database?query`.
pub fn postgres_endpoint(text: &str) -> anyhow::Result<PostgresEndpoint> {
    let (url, host, password) =
        split_url(text, &["postgres", "postgresql"], "a postgresql:// URL")?;
    let database = url.path().trim_start_matches('/').to_string();
    anyhow::ensure!(
        !database.is_empty(),
        "find the database name in the URL path"
    );
    Ok(PostgresEndpoint {
        host,
        port: url.port().unwrap_or(5432),
        user: url.username().to_string(),
        password: Secret::new(decode(&password)),
        password_in_url: Secret::new(password),
        database,
        query: url.query().map(str::to_string),
        version: String::new(),
        ready: Duration::ZERO,
        provisioned_from: None,
    })
}

/// `redis[s]://[user][:password]@host:port[/db]`.
pub fn redis_endpoint(text: &str) -> anyhow::Result<RedisEndpoint> {
    let (url, host, password) =
        split_url(text, &["redis", "rediss"], "a redis:// or rediss:// URL")?;
    let db = url.path().trim_start_matches('/');
    Ok(RedisEndpoint {
        scheme: url.scheme().to_string(),
        host,
        port: url.port().unwrap_or(6379),
        user: Some(url.username().to_string()).filter(|u| !u.is_empty()),
        password: Secret::new(decode(&password)),
        password_in_url: Secret::new(password),
        db: if db.is_empty() { "0".into() } else { db.into() },
        version: String::new(),
        ready: Duration::ZERO,
    })
}

/// Time to a TCP connection, or why there is none.
async fn reachable(what: &str, host: &str, port: u16) -> anyhow::Result<Duration> {
    let started = Instant::now();
    match tokio::time::timeout(DEADLINE, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(started.elapsed()),
        Ok(Err(e)) => anyhow::bail!("reach the external {what} at {host}:{port}: {e}"),
        Err(_) => anyhow::bail!(
            "reach the external {what} at {host}:{port}: no connection within {} s",
            DEADLINE.as_secs()
        ),
    }
}

/// Proves both URLs' credentials work before any step, so a wrong password
/// is gonogo's harness error (exit 3) quoting the server, never the
/// service's NO-GO: Postgres `SELECT 1`, Redis `AUTH` (when the URL has a
/// password) and `PING`, each within [`DEADLINE`]. Messages are masked.
///
/// gonogo's clients have no TLS: with `sslmode=require`/`verify-*` or
/// `rediss://` the check is skipped (the service's own connection is
/// still what the steps test).
async fn prove_credentials(
    pg_url: &str,
    postgres: &PostgresEndpoint,
    redis: &RedisEndpoint,
) -> anyhow::Result<()> {
    let mut masker = crate::mask::Masker::new();
    for secret in [
        &postgres.password,
        &postgres.password_in_url,
        &redis.password,
        &redis.password_in_url,
    ] {
        masker.add_secret(secret.expose());
    }
    let masked = |e: anyhow::Error| anyhow::anyhow!("{}", masker.mask(&format!("{e:#}")));
    let (pg, rd) = tokio::join!(postgres_login(pg_url, postgres), redis_login(redis));
    pg.map_err(masked)?;
    rd.map_err(masked)?;
    Ok(())
}

/// Connects and runs `SELECT 1`; the error quotes the server's message.
async fn postgres_login(url: &str, postgres: &PostgresEndpoint) -> anyhow::Result<()> {
    let tls = postgres.query.as_deref().is_some_and(|q| {
        q.split('&').any(|kv| {
            matches!(
                kv,
                "sslmode=require" | "sslmode=verify-ca" | "sslmode=verify-full"
            )
        })
    });
    if tls {
        return Ok(());
    }
    let whom = format!(
        "log in to the external postgres at {}:{} as `{}`",
        postgres.host, postgres.port, postgres.user
    );
    let login = async {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let _: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await?;
        let _ = conn.close().await;
        Ok::<_, sqlx::Error>(())
    };
    // The server's own message, without sqlx's prefix.
    let login = async {
        login.await.map_err(|e| match e {
            sqlx::Error::Database(db) => db.message().to_string(),
            e => e.to_string(),
        })
    };
    within_deadline(&whom, login).await
}

/// `AUTH` (when there is a password) and `PING`; the error quotes Redis's
/// reply, e.g. `WRONGPASS invalid username-password pair`.
async fn redis_login(redis: &RedisEndpoint) -> anyhow::Result<()> {
    if redis.scheme == "rediss" {
        return Ok(());
    }
    let whom = format!(
        "log in to the external redis at {}:{}",
        redis.host, redis.port
    );
    let login = async {
        let mut conn = RespConnection::connect_to(&redis.host, redis.port).await?;
        if let Some(auth) = redis.auth_command() {
            expect_reply(conn.command(&auth).await?, "OK")?;
        }
        expect_reply(conn.command(&[b"PING"]).await?, "PONG")
    };
    within_deadline(&whom, login).await
}

/// `work` within [`DEADLINE`]; its error, or the silence, names `whom`.
async fn within_deadline<E: std::fmt::Display>(
    whom: &str,
    work: impl Future<Output = Result<(), E>>,
) -> anyhow::Result<()> {
    match tokio::time::timeout(DEADLINE, work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => anyhow::bail!("{whom}: {e}"),
        Err(_) => anyhow::bail!("{whom}: no answer within {} s", DEADLINE.as_secs()),
    }
}

/// Checks that `reply` is the status `expected`; else the error quotes it
/// (`WRONGPASS invalid username-password pair`).
fn expect_reply(reply: RespValue, expected: &str) -> std::io::Result<()> {
    match reply {
        RespValue::Simple(text) if text == expected => Ok(()),
        RespValue::Error(text) => Err(std::io::Error::other(text)),
        other => Err(std::io::Error::other(format!(
            "expected {expected}, the server answered {other:?}"
        ))),
    }
}

/// `PostgreSQL 15.18`, or why it is unknown (a read-only query).
pub(super) async fn postgres_version(url: &str) -> String {
    let asked = tokio::time::timeout(DEADLINE, async {
        let mut conn = sqlx::PgConnection::connect(url).await.ok()?;
        let version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut conn)
            .await
            .ok()?;
        let _ = conn.close().await;
        Some(version)
    })
    .await;
    match asked {
        Ok(Some(v)) => format!(
            "PostgreSQL {}",
            v.split_whitespace().next().unwrap_or_default()
        ),
        _ => "unknown (version query failed)".into(),
    }
}

/// `Redis 7.0.15`, or why it is unknown (`AUTH` and `INFO server` only).
pub(super) async fn redis_version(redis: &RedisEndpoint) -> String {
    if redis.scheme == "rediss" {
        return "unknown (TLS; not queried)".into();
    }
    let asked = tokio::time::timeout(DEADLINE, async {
        let mut conn = RespConnection::connect_to(&redis.host, redis.port)
            .await
            .ok()?;
        let password = redis.password.expose();
        if !password.is_empty() {
            let mut auth: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &redis.user {
                auth.push(user.as_bytes());
            }
            auth.push(password.as_bytes());
            if !matches!(conn.command(&auth).await.ok()?, RespValue::Simple(_)) {
                return None;
            }
        }
        let RespValue::Bulk(Some(info)) = conn.command(&[b"INFO", b"server"]).await.ok()? else {
            return None;
        };
        String::from_utf8_lossy(&info)
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .map(|v| v.trim().to_string())
    })
    .await;
    match asked {
        Ok(Some(v)) => format!("Redis {v}"),
        _ => "unknown (version query failed)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_postgres_urls_with_encoded_passwords() {
        let pg =
            postgres_endpoint("postgresql://app:p%40ss@db.internal:6432/orders?sslmode=require")
                .unwrap();
        assert_eq!(
            (pg.host.as_str(), pg.port, pg.user.as_str()),
            ("db.internal", 6432, "app")
        );
        assert_eq!(pg.password.expose(), "p@ss");
        assert_eq!(pg.password_in_url.expose(), "p%40ss");
        assert_eq!(
            pg.url_via("127.0.0.1", 1),
            "postgresql://app:p%40ss@127.0.0.1:1/orders?sslmode=require"
        );
        assert!(postgres_endpoint("mysql://a@b/c").is_err());
    }

    #[test]
    fn parses_redis_urls() {
        let r = redis_endpoint("redis://:secret@cache:6380/3").unwrap();
        assert_eq!(
            (r.host.as_str(), r.port, r.db.as_str()),
            ("cache", 6380, "3")
        );
        assert_eq!(r.user, None);
        assert_eq!(r.password.expose(), "secret");
        let r = redis_endpoint("redis://cache").unwrap();
        assert_eq!(
            (r.port, r.db.as_str(), r.password.expose()),
            (6379, "0", "")
        );
    }

    #[test]
    fn a_missing_variable_is_named_not_quoted() {
        let e = read(&ExternalUrl::Env("GONOGO_TEST_UNSET_URL".into())).unwrap_err();
        assert!(e.to_string().contains("`GONOGO_TEST_UNSET_URL`"), "{e}");
    }
}
