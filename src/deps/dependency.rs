//! One [`Dependency`] per dependency of the service under test: Postgres,
//! Redis and each `[[dependency]]` of the scenario. Takes the
//! [`Provisioned`] servers and the scenario; gives [`Dependencies`], built
//! once per run, which drive the fault proxies, the placeholder bindings the
//! service is started with, the fault steps and the report.
//!
//! What differs between kinds of dependency (the placeholders it fills in,
//! its secrets, what the report says about it) is decided in one `match`
//! per question on [`Kind`]; adding a kind means adding a variant there.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

use super::watch::DependencyWatch;
use super::{PostgresEndpoint, Provisioned, RedisEndpoint};
use crate::evidence::DependencyInfo;
use crate::mask::Masker;
use crate::proxy::FaultProxy;
use crate::scenario::Scenario;
use crate::scenario::placeholders::Bindings;

/// Where the service reaches every dependency: gonogo's fault proxies
/// listen here.
pub const PROXY_HOST: &str = "127.0.0.1";

/// How long resolving a dependency's host may take.
const RESOLVE_DEADLINE: Duration = Duration::from_secs(5);

/// What kind of dependency it is, with what gonogo knows about reaching it.
#[derive(Clone)]
enum Kind {
    /// The database, from the provider.
    Postgres(PostgresEndpoint),
    /// The cache, from the provider.
    Redis(RedisEndpoint),
    /// Any other TCP dependency (`[[dependency]]`): gonogo only proxies it.
    Tcp,
}

/// One dependency, reached by the service through its own fault proxy.
pub struct Dependency {
    /// `postgres`, `redis` or the `[[dependency]]` name: fault targets and
    /// step ids use it (`redis-runtime-outage`).
    pub key: String,
    /// The name titles and messages use: `Postgres`, `Redis`, `featurestore`.
    pub display: String,
    /// Words a failure body may use to name it (case-insensitive).
    pub names: Vec<String>,
    /// The server's own address, as the provider or scenario gave it.
    pub upstream: (String, u16),
    /// The proxy in front of it; the service only ever sees this address.
    pub proxy: FaultProxy,
    /// Which provider supplied it (`embedded`, `docker`, `external`);
    /// `None` for a `[[dependency]]`, which the scenario names.
    provider: Option<&'static str>,
    kind: Kind,
}

impl Dependency {
    /// Fill in this dependency's placeholders as if it listened at
    /// `host:port` (its proxy, or a closed port for the negative proof).
    pub fn bind(&self, bindings: &mut Bindings, host: &str, port: u16) {
        let mut set = |name: String, value: String| {
            bindings.insert(name, value);
        };
        match &self.kind {
            Kind::Postgres(pg) => {
                set("database_url".into(), pg.url_via(host, port));
                set("database_host".into(), host.into());
                set("database_port".into(), port.to_string());
                set("database_user".into(), pg.user.clone());
                set("database_password".into(), pg.password.expose().into());
                set("database_name".into(), pg.database.clone());
            }
            Kind::Redis(redis) => {
                set("redis_url".into(), redis.url_via(host, port));
                set("redis_host".into(), host.into());
                set("redis_port".into(), port.to_string());
                set("redis_password".into(), redis.password.expose().into());
            }
            Kind::Tcp => {
                set(format!("{}_host", self.key), host.into());
                set(format!("{}_port", self.key), port.to_string());
                set(format!("{}_addr", self.key), format!("{host}:{port}"));
            }
        }
    }

    /// How to reach the server itself, when this dependency is the
    /// database (server-wide faults connect here, not through the proxy).
    pub fn postgres(&self) -> Option<&PostgresEndpoint> {
        match &self.kind {
            Kind::Postgres(pg) => Some(pg),
            _ => None,
        }
    }

    /// The secrets the masker must hide, each with the name the evidence
    /// gives it (`Postgres password`): passwords, decoded and as in the URL.
    pub fn secrets(&self) -> Vec<(String, &str)> {
        let all = match &self.kind {
            Kind::Postgres(pg) => vec![pg.password.expose(), pg.password_in_url.expose()],
            Kind::Redis(redis) => vec![redis.password.expose(), redis.password_in_url.expose()],
            Kind::Tcp => Vec::new(),
        };
        let label = format!("{} password", self.display);
        all.into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| (label.clone(), s))
            .collect()
    }

    /// What the report says about the server (URL masked); `None` for a
    /// dependency gonogo does not speak to.
    pub fn info(&self, masker: &Masker) -> Option<DependencyInfo> {
        let (host, port) = (&self.upstream.0, self.upstream.1);
        let provider = self.provider?.to_string();
        let proxy = masker.mask(&self.proxy.local_addr().to_string());
        match &self.kind {
            Kind::Postgres(pg) => Some(DependencyInfo {
                name: self.key.clone(),
                provider,
                version: pg.version.clone(),
                endpoint: masker.mask(&pg.url_via(host, port)),
                ready_ms: pg.ready.as_millis() as u64,
                provisioned_from: pg.provisioned_from.clone(),
                service_connects_to: Some(proxy),
            }),
            Kind::Redis(redis) => Some(DependencyInfo {
                name: self.key.clone(),
                provider,
                version: redis.version.clone(),
                endpoint: masker.mask(&redis.url_via(host, port)),
                ready_ms: redis.ready.as_millis() as u64,
                provisioned_from: None,
                service_connects_to: Some(proxy),
            }),
            Kind::Tcp => None,
        }
    }
}

/// Every dependency of one run, in a fixed order: Postgres, Redis, then the
/// scenario's `[[dependency]]` entries. Empty in target mode, where gonogo
/// is not between the service and anything.
#[derive(Default)]
pub struct Dependencies {
    all: Vec<Dependency>,
    watch: DependencyWatch,
}

impl Dependencies {
    /// Resolve each dependency and start its fault proxy.
    pub async fn start(
        provisioned: Option<&Provisioned>,
        scenario: &Scenario,
    ) -> anyhow::Result<Dependencies> {
        let Some(provisioned) = provisioned else {
            return Ok(Dependencies::default());
        };
        let mut all = Vec::new();
        for declared in declare(provisioned, scenario) {
            let Declared {
                key,
                display,
                names,
                upstream,
                provider,
                kind,
            } = declared;
            let addr = resolve(&key, &upstream.0, upstream.1).await?;
            let proxy = FaultProxy::start(&key, addr)
                .await
                .with_context(|| format!("start the {key} fault proxy"))?;
            all.push(Dependency {
                key,
                display,
                names,
                upstream,
                proxy,
                provider,
                kind,
            });
        }
        Ok(Dependencies {
            all,
            watch: provisioned.watch(),
        })
    }

    /// What the servers gonogo owns can say about a step's window.
    pub fn watch(&self) -> &DependencyWatch {
        &self.watch
    }

    /// The same dependencies, each behind a new fault proxy of its own to
    /// the same server: for one unit of the plan that switches faults, so
    /// they reach no other unit's service instance.
    pub async fn with_own_proxies(&self) -> anyhow::Result<Dependencies> {
        let mut all = Vec::with_capacity(self.all.len());
        for dep in &self.all {
            let proxy = FaultProxy::start(&dep.key, dep.proxy.upstream())
                .await
                .with_context(|| format!("start a fault proxy of its own to {}", dep.key))?;
            all.push(Dependency {
                key: dep.key.clone(),
                display: dep.display.clone(),
                names: dep.names.clone(),
                upstream: dep.upstream.clone(),
                proxy,
                provider: dep.provider,
                kind: dep.kind.clone(),
            });
        }
        // The servers' own watch stays with the run's dependencies.
        Ok(Dependencies {
            all,
            watch: DependencyWatch::default(),
        })
    }

    /// Point every dependency's placeholders in `bindings` at its proxy.
    pub fn rebind(&self, bindings: &mut Bindings) {
        for dep in &self.all {
            dep.bind(bindings, PROXY_HOST, dep.proxy.local_addr().port());
        }
    }

    /// The dependency with this key (`postgres`, `redis`, a `[[dependency]]`).
    pub fn get(&self, key: &str) -> Option<&Dependency> {
        self.all.iter().find(|d| d.key == key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Dependency> {
        self.all.iter()
    }

    /// Placeholder values for the healthy dependencies, each reached
    /// through its fault proxy (in target mode only `{{host}}`: the other
    /// placeholders render empty).
    pub fn bindings(&self) -> Bindings {
        let mut bindings = Bindings::new();
        bindings.insert("host".into(), PROXY_HOST.into());
        self.rebind(&mut bindings);
        bindings
    }

    /// Every secret of every dependency, named.
    pub fn secrets(&self) -> Vec<(String, &str)> {
        self.all.iter().flat_map(Dependency::secrets).collect()
    }

    /// What the report says about each server gonogo speaks to.
    pub fn infos(&self, masker: &Masker) -> Vec<DependencyInfo> {
        self.all.iter().filter_map(|d| d.info(masker)).collect()
    }

    /// Stop every proxy and wait until its sockets are closed.
    pub async fn shutdown(self) {
        for dep in self.all {
            dep.proxy.shutdown().await;
        }
    }
}

/// The keys of every dependency a run of `scenario` has (in launch mode),
/// in order: `postgres`, `redis`, then each `[[dependency]]`.
pub fn keys(scenario: &Scenario) -> Vec<String> {
    let mut keys = vec!["postgres".to_string(), "redis".to_string()];
    keys.extend(scenario.dependencies.iter().map(|d| d.name.clone()));
    keys
}

/// The name titles and messages use for the dependency `key`.
pub fn display(key: &str) -> String {
    match key {
        "postgres" => "Postgres".into(),
        "redis" => "Redis".into(),
        other => other.into(),
    }
}

/// A dependency before its proxy starts.
struct Declared {
    key: String,
    display: String,
    names: Vec<String>,
    upstream: (String, u16),
    provider: Option<&'static str>,
    kind: Kind,
}

/// Every dependency the run has, in order.
fn declare(provisioned: &Provisioned, scenario: &Scenario) -> Vec<Declared> {
    let provider = Some(provisioned.kind.as_str());
    let (pg, redis) = (&provisioned.postgres, &provisioned.redis);
    let mut all = vec![
        Declared {
            key: "postgres".into(),
            display: display("postgres"),
            names: scenario.faults.postgres_names.clone(),
            upstream: (pg.host.clone(), pg.port),
            provider,
            kind: Kind::Postgres(pg.clone()),
        },
        Declared {
            key: "redis".into(),
            display: display("redis"),
            names: scenario.faults.redis_names.clone(),
            upstream: (redis.host.clone(), redis.port),
            provider,
            kind: Kind::Redis(redis.clone()),
        },
    ];
    all.extend(scenario.dependencies.iter().map(|dep| Declared {
        key: dep.name.clone(),
        display: display(&dep.name),
        names: dep.names.clone(),
        upstream: (dep.host.clone(), dep.port),
        provider: None,
        kind: Kind::Tcp,
    }));
    all
}

/// The first address of `host:port`, for a proxy's upstream.
async fn resolve(name: &str, host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    // A resolver that never answers must not hang the run.
    let lookup = tokio::time::timeout(RESOLVE_DEADLINE, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "resolve dependency {name} at {host}:{port}: no answer within {} s",
                RESOLVE_DEADLINE.as_secs()
            )
        })?;
    lookup
        .with_context(|| format!("resolve dependency {name} at {host}:{port}"))?
        .next()
        .with_context(|| format!("resolve dependency {name}: no address"))
}
