//! Scenario stage: a TOML file in, a validated [`Scenario`] out.
//!
//! The raw serde shapes live in `file`; `load` turns them into the typed
//! [`Scenario`] the runner uses, reporting any problem with file, line and
//! field (exit code 2, nothing run, no evidence written).

mod conformance;
mod duration;
mod file;
mod load;
pub mod placeholders;
pub mod ranges;
mod release;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use conformance::{AlertsSpec, KubernetesSpec};
pub use duration::{human as human_duration, parse as parse_duration};
pub use load::{ScenarioError, load, load_str};
pub use placeholders::Template;
pub use release::{NotApplicable, ReleaseSpec, Waiver};

/// A validated proof description.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name, used in the evidence directory name.
    pub name: String,
    pub description: Option<String>,
    /// Where the scenario was read from (for messages and the manifest).
    pub path: PathBuf,
    /// The raw file bytes, kept for hashing into the evidence.
    pub source: String,
    /// Label for the report's metadata (`staging`, `prod`, `ci`).
    pub environment: Option<String>,
    pub service: ServiceSpec,
    pub migrations: Option<MigrationSpec>,
    pub ready: ReadySpec,
    pub negative: NegativeSpec,
    pub failfast: FailFastSpec,
    /// Runtime fault steps (issue: fault proxy).
    pub faults: FaultsSpec,
    /// Other TCP dependencies declared with `[[dependency]]`.
    pub dependencies: Vec<TcpDependency>,
    /// `[release]`: the release this proof gates, for the scorecard.
    pub release: ReleaseSpec,
    /// `[[waiver]]`: signed-off exceptions, applied after the steps ran.
    pub waivers: Vec<Waiver>,
    /// `[[not_applicable]]`: steps that do not apply to this service.
    pub not_applicable: Vec<NotApplicable>,
    /// `[external]`: where `--deps external` finds the server URLs.
    pub external: ExternalSpec,
    /// `[migrations] external = true`: apply migrations to external
    /// servers too (otherwise only the read-only "current" check runs).
    pub migrate_external: bool,
    pub latency: LatencySpec,
    pub shutdown: ShutdownSpec,
    /// Present only when the scenario names a metrics path and gauge.
    pub metrics: Option<MetricsSpec>,
    /// `[kubernetes]`: the manifest whose probes are judged.
    pub kubernetes: Option<KubernetesSpec>,
    /// `[alerts]`: the rule file proven with promtool.
    pub alerts: Option<AlertsSpec>,
    /// `[masking]`: secrets declared by name, and names declared not secret.
    pub masking: MaskingSpec,
}

/// `[masking]`: what the name rule cannot know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaskingSpec {
    /// Variables whose values are secrets although their names do not look
    /// it; learned from gonogo's environment and from the service's.
    pub extra_env: Vec<String>,
    /// Secret-looking names whose values are not secrets (never masked,
    /// listed in the evidence).
    pub not_secret: Vec<String>,
}

impl Scenario {
    /// The `[[not_applicable]]` entry for the step `id`, if any.
    pub fn not_applicable(&self, id: &str) -> Option<&NotApplicable> {
        self.not_applicable.iter().find(|n| n.step == id)
    }

    /// An error pointing at `span` of this scenario's file.
    pub fn error_at(&self, span: std::ops::Range<usize>, message: String) -> ScenarioError {
        load::error_at(&self.path, &self.source, span, message)
    }
}

/// Latency SLO on healthy dependencies (seeds 001, 002: P95 < 200 ms).
#[derive(Debug, Clone)]
pub struct LatencySpec {
    pub enabled: bool,
    pub requests: usize,
    pub concurrency: usize,
    pub p95_ms: f64,
    pub path: String,
}

/// Graceful shutdown on SIGTERM (seed 002: bounded termination).
#[derive(Debug, Clone)]
pub struct ShutdownSpec {
    pub enabled: bool,
    pub timeout: Duration,
    pub exit_codes: Vec<i32>,
}

/// The readiness gauge must follow ready (seed 000).
#[derive(Debug, Clone)]
pub struct MetricsSpec {
    pub path: String,
    pub gauge: String,
    pub labels: BTreeMap<String, String>,
    /// Dependency key to break: `postgres`, `redis` or a `[[dependency]]`.
    pub fault: String,
}

/// Runtime fault steps: outage, liveness isolation, timeout discipline and
/// recovery, per dependency, through gonogo's fault proxy.
#[derive(Debug, Clone)]
pub struct FaultsSpec {
    pub enabled: bool,
    /// Ready must turn 503 within this long after an outage starts.
    pub detection_window: Duration,
    /// Ready must answer within this long with a dependency blackholed
    /// (readiness contract: at most 5 s).
    pub probe_deadline: Duration,
    /// Ready must return to 200 within this long after a fault clears.
    pub recovery_window: Duration,
    /// How long live keeps being probed after ready turned 503 (default 1 s).
    pub live_watch: Duration,
    /// Dependency keys to fault: `postgres`, `redis`, extra names.
    pub targets: Vec<String>,
    pub postgres_names: Vec<String>,
    pub redis_names: Vec<String>,
    /// What the 503 body must show of each dependency's outage, by
    /// dependency key (`[faults] expect`); each is judged on the healthy
    /// answer too.
    pub expect: BTreeMap<String, Vec<BodyExpectation>>,
}

/// A TCP dependency gonogo does not speak, reached through the proxy.
#[derive(Debug, Clone)]
pub struct TcpDependency {
    /// Also the placeholder prefix: `{{NAME_host}}`, `{{NAME_port}}`,
    /// `{{NAME_addr}}`.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub names: Vec<String>,
}

/// How to start the service under test.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// argv; each element may hold placeholders.
    pub command: Vec<Template>,
    /// Absolute working directory.
    pub workdir: PathBuf,
    /// Environment, in file order; values may hold placeholders.
    pub env: Vec<(String, Template)>,
    /// Variables passed through from gonogo's own environment (`inherit`),
    /// besides the ones every service gets (see `service::BASE_ENV`).
    pub inherit: Vec<String>,
    pub ready_path: String,
    pub live_path: String,
    pub version_path: Option<String>,
    /// How long the service may take to answer HTTP after spawn.
    pub startup_timeout: Duration,
    /// Deadline for each HTTP request gonogo makes to the service.
    pub request_timeout: Duration,
}

/// How migrations are applied (Step 1).
#[derive(Debug, Clone)]
pub enum MigrationSpec {
    /// A directory of sqlx-style SQL migrations that gonogo applies itself.
    SqlDir { dir: PathBuf },
    /// Any command (for example `alembic upgrade head`).
    Command {
        command: Vec<Template>,
        workdir: PathBuf,
        env: Vec<(String, Template)>,
        current: Option<CurrentCheck>,
        timeout: Duration,
    },
}

/// A command whose output proves the schema is at head.
#[derive(Debug, Clone)]
pub struct CurrentCheck {
    pub command: Vec<Template>,
    pub expect: String,
}

/// One expectation on a JSON response body.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyExpectation {
    /// RFC 6901 JSON pointer, e.g. `/dependencies/redis`.
    pub pointer: String,
    pub equals: serde_json::Value,
}

/// Step 2: ready with real dependencies.
#[derive(Debug, Clone)]
pub struct ReadySpec {
    pub status: u16,
    pub expect: Vec<BodyExpectation>,
    /// How long ready may take to turn healthy after the service answers.
    pub settle: Duration,
}

/// Step 3: ready with Redis pointed at a closed port.
#[derive(Debug, Clone)]
pub struct NegativeSpec {
    pub status: u16,
    pub expect: Vec<BodyExpectation>,
    /// Text the body must contain (case-insensitive) to name the dependency.
    pub body_names: String,
    /// Ask ready again after this long (default 1 s): a 503 that turns
    /// into a 200 with Redis still broken is a failure.
    pub observe: Duration,
}

/// Step 4: strict-mode fail-fast cases.
#[derive(Debug, Clone)]
pub struct FailFastSpec {
    pub deadline: Duration,
    pub cases: Vec<FailFastCase>,
    /// The cases come from the scenario's `[[failfast.case]]` list (`case =
    /// []` included), not from the defaults.
    pub explicit: bool,
}

/// One way of provoking a strict-mode startup failure.
#[derive(Debug, Clone)]
pub struct FailFastCase {
    pub name: String,
    pub unset: Vec<String>,
    pub set: BTreeMap<String, Template>,
}

/// Where the URLs of servers gonogo does not own come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalSpec {
    pub database_url: ExternalUrl,
    pub redis_url: ExternalUrl,
}

impl Default for ExternalSpec {
    fn default() -> Self {
        ExternalSpec {
            database_url: ExternalUrl::Env("DATABASE_URL".into()),
            redis_url: ExternalUrl::Env("REDIS_URL".into()),
        }
    }
}

/// One external URL: read from a variable, or written in the scenario.
#[derive(Clone, PartialEq, Eq)]
pub enum ExternalUrl {
    Env(String),
    Literal(String),
}

impl std::fmt::Display for ExternalUrl {
    /// Names the source, never the value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExternalUrl::Env(var) => write!(f, "from `{var}`"),
            ExternalUrl::Literal(_) => f.write_str("from the scenario's [external] table"),
        }
    }
}

impl std::fmt::Debug for ExternalUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
