//! The scenario file's raw shape, as serde sees it.
//!
//! Every table denies unknown fields so a typo is reported with its line.
//! Values that need a second look (argv, env, paths, and every number and
//! duration, for `ranges`) keep their byte span via [`Spanned`] so `load`
//! can point at them.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::duration::HumanDuration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: Option<Spanned<String>>,
    pub description: Option<String>,
    pub environment: Option<String>,
    pub service: ServiceFile,
    pub migrations: Option<Spanned<MigrationsFile>>,
    #[serde(default)]
    pub ready: ReadyFile,
    #[serde(default)]
    pub negative: NegativeFile,
    #[serde(default)]
    pub failfast: FailFastFile,
    pub faults: Option<Spanned<FaultsFile>>,
    #[serde(default)]
    pub latency: LatencyFile,
    #[serde(default)]
    pub shutdown: ShutdownFile,
    pub metrics: Option<MetricsFile>,
    /// Other TCP dependencies (Kafka, a feature store, an API).
    #[serde(default, rename = "dependency")]
    pub dependencies: Vec<DependencyFile>,
    pub release: Option<super::release::ReleaseFile>,
    #[serde(default, rename = "waiver")]
    pub waivers: Vec<super::release::WaiverFile>,
    #[serde(default)]
    pub not_applicable: Vec<super::release::NotApplicableFile>,
    /// Where `--deps external` finds the server URLs.
    pub external: Option<ExternalFile>,
    /// The deployment's manifest, whose probes are judged.
    pub kubernetes: Option<super::conformance::KubernetesFile>,
    /// The alert rule file, proven with promtool.
    pub alerts: Option<Spanned<super::conformance::AlertsFile>>,
    /// Secrets gonogo cannot recognise by name, and names that only look secret.
    pub masking: Option<MaskingFile>,
}

/// `[masking]`: variables whose values are secret although their names do
/// not say so, and secret-looking names whose values are not.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingFile {
    #[serde(default)]
    pub extra_env: Vec<Spanned<String>>,
    #[serde(default)]
    pub not_secret: Vec<Spanned<String>>,
}

/// `[external]`: the variables (or literal URLs) naming servers gonogo
/// does not own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalFile {
    pub database_url_env: Option<Spanned<String>>,
    pub redis_url_env: Option<Spanned<String>>,
    pub database_url: Option<Spanned<String>>,
    pub redis_url: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsFile {
    pub enabled: Option<bool>,
    pub detection_window: Option<Spanned<HumanDuration>>,
    pub probe_deadline: Option<Spanned<HumanDuration>>,
    pub recovery_window: Option<Spanned<HumanDuration>>,
    /// How long live keeps being probed after ready turned 503.
    pub live_watch: Option<Spanned<HumanDuration>>,
    /// Which dependencies to fault: `postgres`, `redis`, or a
    /// `[[dependency]]` name. Default: all of them.
    pub targets: Option<Vec<Spanned<String>>>,
    /// Words the 503 body may use to name Postgres.
    pub postgres_names: Option<Vec<String>>,
    /// Words the 503 body may use to name Redis.
    pub redis_names: Option<Vec<String>>,
    /// What the 503 body shows of each dependency's failure, by dependency
    /// key: `{ redis = [{ pointer = "/redis", equals = "down" }] }`.
    #[serde(default)]
    pub expect: BTreeMap<Spanned<String>, Vec<ExpectFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencyFile {
    pub name: Spanned<String>,
    pub host: String,
    pub port: Spanned<u16>,
    /// Words the 503 body may use to name it (default: its name).
    pub names: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    pub command: Spanned<Vec<Spanned<String>>>,
    pub workdir: Option<Spanned<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    /// Variables passed through from gonogo's own environment, by name.
    #[serde(default)]
    pub inherit: Vec<Spanned<String>>,
    pub ready_path: Option<Spanned<String>>,
    pub live_path: Option<Spanned<String>>,
    pub version_path: Option<Spanned<String>>,
    pub startup_timeout: Option<Spanned<HumanDuration>>,
    pub request_timeout: Option<Spanned<HumanDuration>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationsFile {
    /// A directory of sqlx migrations, applied by gonogo.
    pub dir: Option<Spanned<String>>,
    /// Or a command that migrates (e.g. `["alembic", "upgrade", "head"]`).
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    pub workdir: Option<Spanned<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    /// A command that prints the current revision (e.g. `alembic current`).
    pub current: Option<Spanned<Vec<Spanned<String>>>>,
    /// Text the `current` output must contain, e.g. `(head)`.
    pub current_expect: Option<String>,
    pub timeout: Option<Spanned<HumanDuration>>,
    /// Also apply them to external servers (`--deps external`); otherwise
    /// only the read-only "current" check runs there.
    #[serde(default)]
    pub external: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectFile {
    pub pointer: Spanned<String>,
    pub equals: toml::Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyFile {
    pub status: Option<Spanned<u16>>,
    #[serde(default)]
    pub expect: Vec<ExpectFile>,
    pub settle: Option<Spanned<HumanDuration>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NegativeFile {
    pub status: Option<Spanned<u16>>,
    #[serde(default)]
    pub expect: Vec<ExpectFile>,
    pub body_names: Option<String>,
    /// Ask ready again after this long; it must still be 503.
    pub observe: Option<Spanned<HumanDuration>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailFastFile {
    pub deadline: Option<Spanned<HumanDuration>>,
    pub case: Option<Vec<CaseFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    pub name: String,
    #[serde(default)]
    pub unset: Vec<String>,
    #[serde(default)]
    pub set: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyFile {
    pub enabled: Option<bool>,
    pub requests: Option<Spanned<usize>>,
    pub concurrency: Option<Spanned<usize>>,
    pub p95_ms: Option<Spanned<f64>>,
    pub path: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownFile {
    pub enabled: Option<bool>,
    pub timeout: Option<Spanned<HumanDuration>>,
    pub exit_codes: Option<Spanned<Vec<Spanned<i64>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    pub path: Spanned<String>,
    pub gauge: Spanned<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Which dependency to break while watching the gauge (default redis).
    pub fault: Option<Spanned<String>>,
}
