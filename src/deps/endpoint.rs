//! Where a Postgres or Redis server is and how to reach it: what every
//! provider gives (see [`Provisioned`](super::Provisioned)), and the role and
//! database gonogo creates on the servers it owns.

use std::time::Duration;

use super::secret::Secret;

/// The role gonogo's own Postgres servers (embedded, docker) are made
/// with; it owns every database.
pub const ROLE: &str = "gonogo";
/// The app database of gonogo's own Postgres servers; an embedded cluster
/// renames it per run when its options ask for another name.
pub const BOOTSTRAP_DATABASE: &str = "gonogo_app";

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

    /// `AUTH [user] password`, or `None` when the URL has no password.
    pub fn auth_command(&self) -> Option<Vec<&[u8]>> {
        let password = self.password.expose();
        if password.is_empty() {
            return None;
        }
        let mut auth: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(user) = &self.user {
            auth.push(user.as_bytes());
        }
        auth.push(password.as_bytes());
        Some(auth)
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
