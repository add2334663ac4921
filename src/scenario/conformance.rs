//! The production-conformance tables: `[kubernetes]` (the deployment's
//! manifest and the container under proof) and `[alerts]` (the Prometheus
//! rule file). Both files are read here, at load time, so a missing file, a
//! manifest without the container, or an alert name that is not in the rule
//! file is a scenario error (exit 2) before anything runs. Paths are
//! relative to the scenario file.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::duration::HumanDuration;
use super::{MetricsSpec, ScenarioError};
use crate::alerts::RuleFile;
use crate::kube::{Container, PortRef, Selection, ServingPort};

/// `[kubernetes]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesFile {
    /// One or more YAML documents (Helm users: `helm template … > file`).
    pub manifest: Spanned<String>,
    /// The container under proof; needed when the file has several.
    pub container: Option<Spanned<String>>,
    /// `Kind/name`; needed when the container is in several workloads.
    pub workload: Option<Spanned<String>>,
    /// The container port the service serves on (number or name); needed
    /// when the container declares several.
    pub port: Option<Spanned<toml::Value>>,
}

/// `[alerts]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsFile {
    /// A Prometheus rule file.
    pub rules: Spanned<String>,
    /// The alert to prove; default: every alert whose expression selects
    /// the `[metrics]` gauge.
    pub alert: Option<Spanned<String>>,
    /// Labels Prometheus attaches to the target at scrape time (`job`,
    /// `namespace`, …), added to the exported series.
    #[serde(default)]
    pub target_labels: BTreeMap<String, Spanned<String>>,
    pub scrape_interval: Option<Spanned<HumanDuration>>,
    pub evaluation_interval: Option<Spanned<HumanDuration>>,
}

/// The deployment's manifest, read.
#[derive(Debug, Clone)]
pub struct KubernetesSpec {
    pub manifest: PathBuf,
    pub container: Container,
    /// The container port the service serves on; gonogo maps it to the
    /// port it gives the service.
    pub serving: ServingPort,
}

/// The alert rule file, read.
#[derive(Debug, Clone)]
pub struct AlertsSpec {
    pub rules: RuleFile,
    pub alert: Option<String>,
    pub target_labels: BTreeMap<String, String>,
    /// Default 15 s.
    pub scrape_interval: Duration,
    /// Used when the rule's group sets no `interval`; default 1 m (the
    /// Prometheus default).
    pub evaluation_interval: Duration,
}

type ErrorAt<'a> = &'a dyn Fn(Range<usize>, String) -> ScenarioError;

/// Read the manifest and pick the container.
pub fn kubernetes(
    raw: &KubernetesFile,
    resolve: &dyn Fn(&str) -> PathBuf,
    error_at: ErrorAt<'_>,
) -> Result<KubernetesSpec, ScenarioError> {
    let manifest = resolve(raw.manifest.get_ref());
    for value in [&raw.container, &raw.workload].into_iter().flatten() {
        if value.get_ref().trim().is_empty() {
            return Err(error_at(value.span(), "must not be empty".into()));
        }
    }
    if let Some(w) = &raw.workload
        && !w.get_ref().contains('/')
    {
        return Err(error_at(
            w.span(),
            format!(
                "`{}` is not `Kind/name`, e.g. `Deployment/api`",
                w.get_ref()
            ),
        ));
    }
    let selection = Selection {
        container: raw.container.as_ref().map(|c| c.get_ref().as_str()),
        workload: raw.workload.as_ref().map(|w| w.get_ref().as_str()),
    };
    let container = crate::kube::manifest::read(&manifest, &selection).map_err(|e| {
        let span = match (&raw.container, e.location) {
            (Some(c), None) if e.message.contains("container") => c.span(),
            _ => raw.manifest.span(),
        };
        error_at(span, format!("manifest {e}"))
    })?;
    let wanted = raw.port.as_ref().map(|p| port(p, error_at)).transpose()?;
    let serving = container.serving_port(wanted.as_ref()).map_err(|e| {
        let span = raw.port.as_ref().map_or(raw.manifest.span(), |p| p.span());
        error_at(span, format!("manifest {}: {e}", manifest.display()))
    })?;
    Ok(KubernetesSpec {
        manifest,
        container,
        serving,
    })
}

fn port(value: &Spanned<toml::Value>, error_at: ErrorAt<'_>) -> Result<PortRef, ScenarioError> {
    match value.get_ref() {
        toml::Value::Integer(n) if (1..=65535).contains(n) => Ok(PortRef::Number(*n as u16)),
        toml::Value::String(s) if !s.trim().is_empty() => Ok(PortRef::Name(s.clone())),
        _ => Err(error_at(
            value.span(),
            "must be a port number (1 to 65535) or the name of a container port".into(),
        )),
    }
}

/// Read the rule file and check the alert it names.
pub fn alerts(
    raw: &Spanned<AlertsFile>,
    metrics: Option<&MetricsSpec>,
    resolve: &dyn Fn(&str) -> PathBuf,
    error_at: ErrorAt<'_>,
) -> Result<AlertsSpec, ScenarioError> {
    let a = raw.get_ref();
    let path = resolve(a.rules.get_ref());
    let rules = crate::alerts::rules::read(&path)
        .map_err(|e| error_at(a.rules.span(), format!("rule file {e}")))?;
    match &a.alert {
        Some(name) if rules.named(name.get_ref()).is_empty() => {
            return Err(error_at(
                name.span(),
                format!(
                    "no alert `{}` in {}; its alerts are: {}",
                    name.get_ref(),
                    path.display(),
                    rules.names()
                ),
            ));
        }
        None if metrics.is_none() => {
            return Err(error_at(
                raw.span(),
                "name the alert to prove with `alert = \"…\"`, or declare the readiness gauge in [metrics] so gonogo proves every alert that selects it".into(),
            ));
        }
        _ => {}
    }
    let mut target_labels = BTreeMap::new();
    for (key, value) in &a.target_labels {
        if !valid_label_name(key) {
            return Err(error_at(
                value.span(),
                format!(
                    "`{key}` is not a Prometheus label name (letters, digits and `_`, not starting with a digit or `__`)"
                ),
            ));
        }
        target_labels.insert(key.clone(), value.get_ref().clone());
    }
    Ok(AlertsSpec {
        rules,
        alert: a.alert.as_ref().map(|n| n.get_ref().clone()),
        target_labels,
        scrape_interval: interval(&a.scrape_interval, 15, 600, "scrape_interval", error_at)?,
        evaluation_interval: interval(
            &a.evaluation_interval,
            60,
            3600,
            "evaluation_interval",
            error_at,
        )?,
    })
}

fn valid_label_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

fn interval(
    raw: &Option<Spanned<HumanDuration>>,
    default_secs: u64,
    max_secs: u64,
    what: &str,
    error_at: ErrorAt<'_>,
) -> Result<Duration, ScenarioError> {
    let Some(value) = raw else {
        return Ok(Duration::from_secs(default_secs));
    };
    let d = value.get_ref().0;
    if d < Duration::from_secs(1) || d > Duration::from_secs(max_secs) || d.subsec_millis() != 0 {
        return Err(error_at(
            value.span(),
            format!("{what} must be whole seconds between 1s and {max_secs}s"),
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::scenario::{Scenario, ScenarioError, load_str};

    fn repo(path: &str) -> String {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(path)
            .display()
            .to_string()
    }

    const METRICS: &str = "[metrics]\npath = \"/metrics\"\ngauge = \"aether_readyz_success\"\n";

    /// Load a scenario with `tables` after a minimal service, from a temp
    /// dir (paths in `tables` are absolute or relative to it).
    fn load(tables: &str) -> Result<Scenario, ScenarioError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        let text = format!("[service]\ncommand = [\"./server\"]\n\n{tables}");
        load_str(&path, &text)
    }

    #[test]
    fn reads_both_tables_with_defaults() {
        let s = load(&format!(
            "{METRICS}\n[kubernetes]\nmanifest = \"{}\"\n\n[alerts]\nrules = \"{}\"\n",
            repo("examples/reference/deploy/deployment.yaml"),
            repo("examples/reference/deploy/alerts.yml")
        ))
        .unwrap();
        let k = s.kubernetes.unwrap();
        assert_eq!(k.container.name, "reference-service");
        assert_eq!(k.serving.number, 8080);
        let a = s.alerts.unwrap();
        assert_eq!(a.rules.alerts[0].name, "ReadyzDependencyFailure");
        assert_eq!(a.alert, None);
        assert_eq!(a.scrape_interval.as_secs(), 15);
        assert_eq!(a.evaluation_interval.as_secs(), 60);
    }

    #[test]
    fn a_missing_manifest_or_rule_file_is_a_scenario_error_at_its_line() {
        let err = load("[kubernetes]\nmanifest = \"deploy/missing.yaml\"\n").unwrap_err();
        assert_eq!(err.location.map(|l| l.0), Some(5));
        assert_eq!(err.field.as_deref(), Some("kubernetes.manifest"));
        assert!(
            err.message.contains("missing.yaml: cannot read file"),
            "{err}"
        );
        let err = load(&format!("{METRICS}[alerts]\nrules = \"nope.yml\"\n")).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("alerts.rules"));
        assert!(err.message.contains("nope.yml: cannot read file"), "{err}");
    }

    #[test]
    fn the_container_alert_and_port_must_exist() {
        let manifest = repo("examples/reference/deploy/deployment.yaml");
        let err = load(&format!(
            "[kubernetes]\nmanifest = \"{manifest}\"\ncontainer = \"web\"\n"
        ))
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("kubernetes.container"));
        assert!(err.message.contains("no container matches container `web`; the file has: `reference-service` in Deployment/reference-service (document 2)"), "{err}");
        let err = load(&format!(
            "[kubernetes]\nmanifest = \"{manifest}\"\nport = \"admin\"\n"
        ))
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("kubernetes.port"));
        assert!(err.message.contains("no port named `admin`"), "{err}");
        let err = load(&format!(
            "{METRICS}[alerts]\nrules = \"{}\"\nalert = \"Nope\"\n",
            repo("examples/reference/deploy/alerts.yml")
        ))
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("alerts.alert"));
        assert!(
            err.message
                .contains("its alerts are: ReadyzDependencyFailure"),
            "{err}"
        );
    }

    #[test]
    fn alerts_need_a_name_or_a_gauge_and_valid_settings() {
        let rules = repo("examples/reference/deploy/alerts.yml");
        let err = load(&format!("[alerts]\nrules = \"{rules}\"\n")).unwrap_err();
        assert!(
            err.message
                .contains("declare the readiness gauge in [metrics]"),
            "{err}"
        );
        let err = load(&format!(
            "{METRICS}[alerts]\nrules = \"{rules}\"\ntarget_labels = {{ \"__x\" = \"a\" }}\n"
        ))
        .unwrap_err();
        assert!(err.message.contains("not a Prometheus label name"), "{err}");
        let err = load(&format!(
            "{METRICS}[alerts]\nrules = \"{rules}\"\nscrape_interval = \"500ms\"\n"
        ))
        .unwrap_err();
        assert!(err.message.contains("whole seconds"), "{err}");
        let err = load(&format!(
            "{METRICS}[alerts]\nrules = \"{rules}\"\nrule = \"x\"\n"
        ))
        .unwrap_err();
        assert!(err.message.contains("unknown field `rule`"), "{err}");
    }

    #[test]
    fn a_broken_manifest_names_its_own_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(repo("examples/reference/deploy/deployment.yaml"))
            .unwrap()
            .replace("periodSeconds: 5", "periodSeconds: five");
        let manifest = dir.path().join("deploy.yaml");
        std::fs::write(&manifest, text).unwrap();
        let err = load(&format!(
            "[kubernetes]\nmanifest = \"{}\"\n",
            manifest.display()
        ))
        .unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("deploy.yaml:77:28: `spec.template.spec.containers[0].readinessProbe.periodSeconds`: expected an integer, found the string \"five\""),
            "{shown}"
        );
    }
}
