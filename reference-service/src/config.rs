//! Configuration: reads the environment once, applies the strict-mode fail-fast
//! rules of the readiness contract, and parses the opt-in `REFERENCE_FLAW` list
//! and the `EXTRA_TCP_DEPS` list of further dependencies to probe.

use std::fmt;
use std::time::Duration;

const DEFAULT_PORT: u16 = 8080;
const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PROBE_TIMEOUT_MS: u64 = 2000;
/// The contract forbids probe deadlines above 5 s, so larger values are clamped.
const MAX_PROBE_TIMEOUT_MS: u64 = 5000;
/// Where the `strict-redis-fallback` flaw looks for Redis when `REDIS_URL`
/// is unset (`REDIS_FALLBACK_URL` overrides it), as many services do.
const DEFAULT_REDIS_FALLBACK: &str = "redis://127.0.0.1:6379";

/// A deliberate defect, switched on by name through `REFERENCE_FLAW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    ReadyIgnoresRedis,
    Ready500,
    StrictBootsWithoutRedis,
    StrictAcceptsSqlite,
    LeakSecrets,
    ReadyCachesSuccess,
    RedisProbeNoDeadline,
    PostgresProbeHangs,
    LiveChecksDeps,
    ReadyNeverRecovers,
    SlowReady,
    VerySlowReady,
    SlowStart,
    IgnoreSigterm,
    SigtermExits1,
    GaugeStuck,
    Ready503Anonymous,
    RedisAuthDropped,
    RevealsRedisUrl,
    EchoCredentials,
    HugeReadyBody,
    EndlessReadyBody,
    PostgresProbeReadsOnly,
    NeverAnswers,
    StrictRedisFallback,
    HealthyBodyNamesAll,
    LeakSecretsWhenIdle,
    ExitsWhenIdle,
}

impl Flaw {
    pub const ALL: [Flaw; 28] = [
        Flaw::ReadyIgnoresRedis,
        Flaw::Ready500,
        Flaw::StrictBootsWithoutRedis,
        Flaw::StrictAcceptsSqlite,
        Flaw::LeakSecrets,
        Flaw::ReadyCachesSuccess,
        Flaw::RedisProbeNoDeadline,
        Flaw::PostgresProbeHangs,
        Flaw::LiveChecksDeps,
        Flaw::ReadyNeverRecovers,
        Flaw::SlowReady,
        Flaw::VerySlowReady,
        Flaw::SlowStart,
        Flaw::IgnoreSigterm,
        Flaw::SigtermExits1,
        Flaw::GaugeStuck,
        Flaw::Ready503Anonymous,
        Flaw::RedisAuthDropped,
        Flaw::RevealsRedisUrl,
        Flaw::EchoCredentials,
        Flaw::HugeReadyBody,
        Flaw::EndlessReadyBody,
        Flaw::PostgresProbeReadsOnly,
        Flaw::NeverAnswers,
        Flaw::StrictRedisFallback,
        Flaw::HealthyBodyNamesAll,
        Flaw::LeakSecretsWhenIdle,
        Flaw::ExitsWhenIdle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Flaw::ReadyIgnoresRedis => "ready-ignores-redis",
            Flaw::Ready500 => "ready-500",
            Flaw::StrictBootsWithoutRedis => "strict-boots-without-redis",
            Flaw::StrictAcceptsSqlite => "strict-accepts-sqlite",
            Flaw::LeakSecrets => "leak-secrets",
            Flaw::ReadyCachesSuccess => "ready-caches-success",
            Flaw::RedisProbeNoDeadline => "redis-probe-no-deadline",
            Flaw::PostgresProbeHangs => "postgres-probe-hangs",
            Flaw::LiveChecksDeps => "live-checks-deps",
            Flaw::ReadyNeverRecovers => "ready-never-recovers",
            Flaw::SlowReady => "slow-ready",
            Flaw::VerySlowReady => "very-slow-ready",
            Flaw::SlowStart => "slow-start",
            Flaw::IgnoreSigterm => "ignore-sigterm",
            Flaw::SigtermExits1 => "sigterm-exits-1",
            Flaw::GaugeStuck => "gauge-stuck",
            Flaw::Ready503Anonymous => "ready-503-anonymous",
            Flaw::RedisAuthDropped => "redis-auth-dropped",
            Flaw::RevealsRedisUrl => "reveals-redis-url",
            Flaw::EchoCredentials => "echo-credentials",
            Flaw::HugeReadyBody => "huge-ready-body",
            Flaw::EndlessReadyBody => "endless-ready-body",
            Flaw::PostgresProbeReadsOnly => "postgres-probe-reads-only",
            Flaw::NeverAnswers => "never-answers",
            Flaw::StrictRedisFallback => "strict-redis-fallback",
            Flaw::HealthyBodyNamesAll => "healthy-body-names-all",
            Flaw::LeakSecretsWhenIdle => "leak-secrets-when-idle",
            Flaw::ExitsWhenIdle => "exits-when-idle",
        }
    }

    fn from_name(name: &str) -> Option<Flaw> {
        Flaw::ALL.into_iter().find(|flaw| flaw.name() == name)
    }

    /// Flaws handled before the configuration exists (see `main.rs`).
    pub const EARLY: [&'static str; 2] = ["strict-serves-before-failing", "strict-connects-first"];
}

/// The set of flaws switched on for this process; empty for the correct service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flaws(Vec<Flaw>);

impl Flaws {
    /// Parses a comma-separated list; blank entries are ignored.
    pub fn parse(list: &str) -> Result<Flaws, ConfigError> {
        let mut flaws = Vec::new();
        for name in list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty() && !Flaw::EARLY.contains(n))
        {
            let flaw =
                Flaw::from_name(name).ok_or_else(|| ConfigError::UnknownFlaw(name.into()))?;
            if !flaws.contains(&flaw) {
                flaws.push(flaw);
            }
        }
        Ok(Flaws(flaws))
    }

    pub fn has(&self, flaw: Flaw) -> bool {
        self.0.contains(&flaw)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|f| f.name()).collect()
    }
}

/// Why the process refuses to start. Each maps to an exit code in `main`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// `REFERENCE_FLAW` names a flaw that does not exist.
    UnknownFlaw(String),
    /// A strict-mode fail-fast rule was violated.
    Strict { reason: String, problem: String },
    /// A variable is present but malformed.
    Invalid { var: &'static str, problem: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownFlaw(name) => {
                let known: Vec<&str> = Flaw::ALL.iter().map(|f| f.name()).collect();
                write!(
                    f,
                    "unknown REFERENCE_FLAW {name:?} (known: {})",
                    known.join(", ")
                )
            }
            ConfigError::Strict { reason, problem } => {
                write!(f, "strict mode ({reason}): {problem}")
            }
            ConfigError::Invalid { var, problem } => write!(f, "invalid {var}: {problem}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub env: Option<String>,
    /// Why strict mode is on (`ENV=staging`, `CI_STRICT=1`), or `None` when it is off.
    pub strict: Option<String>,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    /// Set when `REDIS_URL` was unset in strict mode and the
    /// `strict-redis-fallback` flaw put this URL in its place.
    pub redis_fallback: Option<String>,
    pub probe_timeout: Duration,
    /// Set when `PROBE_TIMEOUT_MS` asked for more than the contract allows.
    pub probe_timeout_clamped_from: Option<u64>,
    pub flaws: Flaws,
    pub git_sha: Option<String>,
    /// Further TCP dependencies for `/ready`, in the order they were listed.
    pub extra_tcp_deps: Vec<ExtraTcpDep>,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|key| std::env::var(key).ok())
    }

    /// Builds the config from any variable source; an empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |key: &str| {
            lookup(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        // Flaws first: an unknown flaw is a harness bug and must not be masked by
        // any other configuration error.
        let flaws = Flaws::parse(&get("REFERENCE_FLAW").unwrap_or_default())?;

        let env = get("ENV");
        let strict = match (env.as_deref(), get("CI_STRICT").as_deref()) {
            (Some(e @ ("staging" | "prod")), _) => Some(format!("ENV={e}")),
            (_, Some("1")) => Some("CI_STRICT=1".to_owned()),
            _ => None,
        };

        let port = match get("PORT") {
            None => DEFAULT_PORT,
            Some(p) => p.parse().map_err(|_| ConfigError::Invalid {
                var: "PORT",
                problem: format!("{p:?} is not a port number"),
            })?,
        };

        let requested_ms =
            match get("PROBE_TIMEOUT_MS") {
                None => DEFAULT_PROBE_TIMEOUT_MS,
                Some(ms) => ms.parse::<u64>().ok().filter(|&ms| ms > 0).ok_or_else(|| {
                    ConfigError::Invalid {
                        var: "PROBE_TIMEOUT_MS",
                        problem: format!("{ms:?} is not a positive number of milliseconds"),
                    }
                })?,
            };
        let probe_ms = requested_ms.min(MAX_PROBE_TIMEOUT_MS);
        let extra_tcp_deps = ExtraTcpDep::parse_list(&get("EXTRA_TCP_DEPS").unwrap_or_default())
            .map_err(|problem| ConfigError::Invalid {
                var: "EXTRA_TCP_DEPS",
                problem,
            })?;

        // Flaw: a missing REDIS_URL is not refused; a default stands in.
        let mut redis_url = get("REDIS_URL");
        let mut redis_fallback = None;
        if redis_url.is_none() && strict.is_some() && flaws.has(Flaw::StrictRedisFallback) {
            let url = get("REDIS_FALLBACK_URL").unwrap_or_else(|| DEFAULT_REDIS_FALLBACK.into());
            redis_url = Some(url.clone());
            redis_fallback = Some(url);
        }

        let config = Config {
            host: get("HOST").unwrap_or_else(|| DEFAULT_HOST.to_owned()),
            port,
            env,
            strict,
            database_url: get("DATABASE_URL"),
            redis_url,
            redis_fallback,
            probe_timeout: Duration::from_millis(probe_ms),
            probe_timeout_clamped_from: (requested_ms != probe_ms).then_some(requested_ms),
            flaws,
            git_sha: get("GIT_SHA"),
            extra_tcp_deps,
        };
        config.check_strict()?;
        Ok(config)
    }

    /// The import-time fail-fast rules: presence and shape only, no connecting.
    fn check_strict(&self) -> Result<(), ConfigError> {
        let Some(reason) = &self.strict else {
            return Ok(());
        };
        let fail = |problem: &str| {
            Err(ConfigError::Strict {
                reason: reason.clone(),
                problem: problem.to_owned(),
            })
        };
        match self.database_url.as_deref().map(DatabaseScheme::of) {
            None => return fail("DATABASE_URL is not set"),
            Some(DatabaseScheme::Sqlite) if !self.flaws.has(Flaw::StrictAcceptsSqlite) => {
                return fail("DATABASE_URL uses a sqlite scheme; Postgres is required");
            }
            Some(DatabaseScheme::Other(scheme)) => {
                return fail(&format!(
                    "DATABASE_URL scheme {scheme:?} is not supported; Postgres is required"
                ));
            }
            Some(DatabaseScheme::Postgres | DatabaseScheme::Sqlite) => {}
        }
        if self.redis_url.is_none() && !self.flaws.has(Flaw::StrictBootsWithoutRedis) {
            return fail("REDIS_URL is not set");
        }
        Ok(())
    }
}

/// Names an extra dependency may not take: they are already keys of the ready
/// body (`dependencies`, `checks`) or values of its `dependency` field, and a
/// second meaning would make the answer ambiguous. Compared case-insensitively.
const RESERVED_DEP_NAMES: [&str; 6] = [
    "database",
    "db",
    "redis",
    "migrations",
    "postgres",
    "status",
];

/// A dependency gonogo can break at the TCP level without speaking its
/// protocol (Kafka, a feature store, a third-party API), from `EXTRA_TCP_DEPS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraTcpDep {
    /// Used verbatim as a JSON key and as the `dependency` of a 503.
    pub name: String,
    /// `host:port`, resolved on every probe so a moved host is picked up.
    pub addr: String,
}

impl ExtraTcpDep {
    /// Parses comma-separated `Name=host:port` entries; blank entries are ignored,
    /// like in `REFERENCE_FLAW`. The error is the problem, without the variable name.
    pub fn parse_list(list: &str) -> Result<Vec<ExtraTcpDep>, String> {
        let mut deps: Vec<ExtraTcpDep> = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let dep = ExtraTcpDep::parse(entry)?;
            if deps.iter().any(|d| d.name.eq_ignore_ascii_case(&dep.name)) {
                return Err(format!("dependency name {:?} is listed twice", dep.name));
            }
            deps.push(dep);
        }
        Ok(deps)
    }

    fn parse(entry: &str) -> Result<ExtraTcpDep, String> {
        let malformed = |why: &str| format!("entry {entry:?} is not Name=host:port ({why})");
        let (name, addr) = entry
            .split_once('=')
            .map(|(n, a)| (n.trim(), a.trim()))
            .ok_or_else(|| malformed("no '='"))?;
        // The name becomes a JSON key that gonogo addresses as
        // `dependencies.<name>`, so dots, spaces and quotes are kept out.
        if name.is_empty() {
            return Err(malformed("empty name"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(malformed(
                "the name may only use letters, digits, '_' and '-'",
            ));
        }
        if RESERVED_DEP_NAMES
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name))
        {
            return Err(format!(
                "dependency name {name:?} is reserved (reserved: {})",
                RESERVED_DEP_NAMES.join(", ")
            ));
        }
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| malformed("no ':port'"))?;
        if host.is_empty() {
            return Err(malformed("empty host"));
        }
        // An unbracketed IPv6 address cannot be split from its port reliably.
        if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
            return Err(malformed("an IPv6 host needs brackets, e.g. [::1]:6390"));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(malformed(&format!("{port:?} is not a port number"))),
        }
        Ok(ExtraTcpDep {
            name: name.to_owned(),
            addr: addr.to_owned(),
        })
    }
}

/// The database family a `DATABASE_URL` points at, judged by its scheme alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseScheme {
    Postgres,
    Sqlite,
    Other(String),
}

impl DatabaseScheme {
    pub fn of(url: &str) -> DatabaseScheme {
        let scheme = url
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        // `postgresql+asyncpg` and friends name a driver after the `+`.
        match scheme.split('+').next().unwrap_or_default() {
            "postgres" | "postgresql" => DatabaseScheme::Postgres,
            "sqlite" => DatabaseScheme::Sqlite,
            _ => DatabaseScheme::Other(scheme),
        }
    }
}

/// The URL sqlx understands: a `+driver` suffix on a Postgres scheme is dropped.
pub fn postgres_url_for_sqlx(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) if scheme.contains('+') => {
            let base = scheme.split('+').next().unwrap_or_default();
            format!("{base}://{rest}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const PG: (&str, &str) = ("DATABASE_URL", "postgresql://u:p@h:5432/db");
    const REDIS: (&str, &str) = ("REDIS_URL", "redis://:p@h:6379/0");

    #[test]
    fn non_strict_tolerates_missing_urls() {
        let config = load(&[]).unwrap();
        assert!(config.strict.is_none());
        assert_eq!(config.port, 8080);
        assert_eq!(config.probe_timeout, Duration::from_millis(2000));
    }

    #[test]
    fn strict_requires_database_and_redis() {
        for strict in [("ENV", "staging"), ("ENV", "prod"), ("CI_STRICT", "1")] {
            assert!(matches!(
                load(&[strict, REDIS]),
                Err(ConfigError::Strict { .. })
            ));
            assert!(matches!(
                load(&[strict, PG]),
                Err(ConfigError::Strict { .. })
            ));
            assert!(matches!(
                load(&[strict, REDIS, ("DATABASE_URL", "sqlite:///app.db")]),
                Err(ConfigError::Strict { .. })
            ));
            assert!(load(&[strict, PG, REDIS]).unwrap().strict.is_some());
        }
        assert!(
            load(&[("ENV", "dev"), ("CI_STRICT", "0")])
                .unwrap()
                .strict
                .is_none()
        );
    }

    #[test]
    fn strict_flaws_relax_the_rules() {
        let strict = ("CI_STRICT", "1");
        let no_redis = ("REFERENCE_FLAW", "strict-boots-without-redis");
        assert!(load(&[strict, PG, no_redis]).is_ok());
        let fallback = ("REFERENCE_FLAW", "strict-redis-fallback");
        let config = load(&[strict, PG, fallback]).unwrap();
        assert_eq!(
            config.redis_fallback.as_deref(),
            Some(DEFAULT_REDIS_FALLBACK)
        );
        assert_eq!(config.redis_url, config.redis_fallback);
        let elsewhere = ("REDIS_FALLBACK_URL", "redis://127.0.0.1:1");
        let config = load(&[strict, PG, fallback, elsewhere]).unwrap();
        assert_eq!(config.redis_url.as_deref(), Some("redis://127.0.0.1:1"));
        assert!(
            load(&[strict, PG, REDIS, fallback])
                .unwrap()
                .redis_fallback
                .is_none()
        );
        let sqlite = ("REFERENCE_FLAW", "strict-accepts-sqlite");
        assert!(
            load(&[
                strict,
                REDIS,
                sqlite,
                ("DATABASE_URL", "sqlite+aiosqlite:///x.db")
            ])
            .is_ok()
        );
    }

    #[test]
    fn unknown_flaw_wins_over_strict_errors() {
        let err = load(&[("CI_STRICT", "1"), ("REFERENCE_FLAW", "ready-500, nope")]).unwrap_err();
        assert_eq!(err, ConfigError::UnknownFlaw("nope".into()));
    }

    #[test]
    fn probe_timeout_is_clamped() {
        let config = load(&[("PROBE_TIMEOUT_MS", "9000")]).unwrap();
        assert_eq!(config.probe_timeout, Duration::from_millis(5000));
        assert_eq!(config.probe_timeout_clamped_from, Some(9000));
        assert!(load(&[("PROBE_TIMEOUT_MS", "soon")]).is_err());
    }

    #[test]
    fn extra_tcp_deps_are_parsed_in_order() {
        assert!(load(&[]).unwrap().extra_tcp_deps.is_empty());
        assert!(
            load(&[("EXTRA_TCP_DEPS", " , ")])
                .unwrap()
                .extra_tcp_deps
                .is_empty()
        );
        let config = load(&[(
            "EXTRA_TCP_DEPS",
            "FeatureStore=127.0.0.1:6390, kafka_1 = broker.local:9092,V6=[::1]:1,",
        )])
        .unwrap();
        let deps: Vec<(&str, &str)> = config
            .extra_tcp_deps
            .iter()
            .map(|d| (d.name.as_str(), d.addr.as_str()))
            .collect();
        assert_eq!(
            deps,
            [
                ("FeatureStore", "127.0.0.1:6390"),
                ("kafka_1", "broker.local:9092"),
                ("V6", "[::1]:1"),
            ]
        );
    }

    #[test]
    fn malformed_extra_tcp_deps_are_rejected() {
        for bad in [
            "FeatureStore",
            "FeatureStore=127.0.0.1",
            "=127.0.0.1:6390",
            "Feature.Store=127.0.0.1:6390",
            "FeatureStore=:6390",
            "FeatureStore=127.0.0.1:0",
            "FeatureStore=127.0.0.1:http",
            "FeatureStore=127.0.0.1:70000",
            "FeatureStore=::1:6390",
            "Redis=127.0.0.1:6390",
            "A=h:1,a=h:2",
        ] {
            let err = load(&[("EXTRA_TCP_DEPS", bad)]).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        var: "EXTRA_TCP_DEPS",
                        ..
                    }
                ),
                "{bad:?} gave {err:?}"
            );
        }
    }

    #[test]
    fn driver_suffix_is_dropped_for_sqlx() {
        assert_eq!(
            postgres_url_for_sqlx("postgresql+asyncpg://u:p@h/db"),
            "postgresql://u:p@h/db"
        );
        assert_eq!(
            DatabaseScheme::of("postgresql+asyncpg://h/db"),
            DatabaseScheme::Postgres
        );
    }
}
