//! The alert judge with the real promtool, on the shipped rule files and
//! the failing fixtures, with scrapes shaped like the reference service's.
//! Each check is shown failing on a rule (or an observed gauge) made to
//! fail it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::prometheus::Sample;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// promtool, or `None` with a line saying why the test skips. Under CI
/// (where scripts/install-deps installs it) a missing promtool fails.
fn promtool(test: &str) -> Option<Promtool> {
    match Promtool::find() {
        Ok(p) => Some(p),
        Err(e) if std::env::var_os("CI").is_some() => panic!("{test}: {e}"),
        Err(e) => {
            println!("SKIPPED {test}: {e}");
            None
        }
    }
}

fn gauge(value: f64) -> Vec<Sample> {
    vec![
        Sample {
            name: "aether_readyz_success".into(),
            labels: BTreeMap::from([("service".into(), "reference-service".into())]),
            value,
        },
        Sample {
            name: "reference_ready_requests_total".into(),
            labels: BTreeMap::new(),
            value: 42.0,
        },
    ]
}

fn observed() -> ScrapedPhases {
    ScrapedPhases {
        dependency: "Redis".into(),
        healthy: gauge(1.0),
        outage: gauge(0.0),
        recovered: gauge(1.0),
    }
}

async fn run(
    rules: &Path,
    alert: Option<&str>,
    phases: &ScrapedPhases,
    promtool: Promtool,
) -> AlertsReport {
    let file = rules::read(rules).expect("a readable rule file");
    let dir = tempfile::tempdir().unwrap();
    let target = BTreeMap::new();
    let input = AlertsInput {
        rules: &file,
        alert,
        gauge: Some("aether_readyz_success"),
        target_labels: &target,
        scrape_interval: Duration::from_secs(15),
        evaluation_interval: Duration::from_secs(60),
        phases,
        workdir: dir.path(),
    };
    judge(&input, Ok(promtool)).await.expect("no harness error")
}

fn observed_of(report: &AlertsReport, kind: CheckKind) -> String {
    report
        .checks
        .iter()
        .filter(|c| c.kind == kind)
        .map(|c| c.observed.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_seed_rule_fires_in_the_outage_and_resolves() {
    let Some(promtool) = promtool("the_seed_rule_fires_in_the_outage_and_resolves") else {
        return;
    };
    let report = run(
        &repo("examples/reference/deploy/alerts.yml"),
        None,
        &observed(),
        promtool,
    )
    .await;
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "{report:#?}");
    let kinds: Vec<CheckKind> = report.checks.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            CheckKind::RulesValid,
            CheckKind::AlertSelected,
            CheckKind::SelectorMatches,
            CheckKind::QuietWhileHealthy,
            CheckKind::FiresDuringOutage,
            CheckKind::ResolvesAfterRecovery,
        ]
    );
    assert!(
        observed_of(&report, CheckKind::SelectorMatches)
            .contains(r#"matches aether_readyz_success{service="reference-service"}"#),
        "{report:#?}"
    );
    let fires = report
        .checks
        .iter()
        .find(|c| c.kind == CheckKind::FiresDuringOutage)
        .unwrap();
    assert!(
        fires
            .expected
            .contains("not before its for: 5m and by 12m into it, with severity=page, team=sre"),
        "{}",
        fires.expected
    );
    assert_eq!(report.stretched.len(), 1);
    assert!(
        report.stretched[0].contains("healthy 0–14m, Redis outage 14m–28m, recovery 28m–42m"),
        "{}",
        report.stretched[0]
    );
    assert_eq!(report.files.len(), 3);
    assert!(
        report.files[1].text.contains("1x55 0x55 1x55"),
        "{}",
        report.files[1].text
    );
    assert_eq!(report.commands.len(), 4, "check rules plus three tests");
}

#[tokio::test]
async fn a_wrong_label_selector_fails_quoting_selector_and_real_labels() {
    let Some(promtool) = promtool("a_wrong_label_selector_fails") else {
        return;
    };
    let report = run(
        &repo("tests/fixtures/kube/alerts-wrong-label.yml"),
        None,
        &observed(),
        promtool,
    )
    .await;
    let text = observed_of(&report, CheckKind::SelectorMatches);
    assert!(report.failed(CheckKind::SelectorMatches), "{report:#?}");
    assert!(
        text.contains(r#"`aether_readyz_success{service="reference"}` matches no series the service exports; the service exports aether_readyz_success{service="reference-service"}"#),
        "{text}"
    );
    // And promtool agrees: on the real series the alert never fires. Its
    // "resolution" would then prove nothing, so it is not claimed.
    assert!(report.failed(CheckKind::FiresDuringOutage), "{report:#?}");
    assert!(!report.failed(CheckKind::QuietWhileHealthy));
    assert!(
        !report
            .checks
            .iter()
            .any(|c| c.kind == CheckKind::ResolvesAfterRecovery),
        "{report:#?}"
    );
    assert!(
        report.unjudged.iter().any(|u| u.contains("never fired")),
        "{report:#?}"
    );
}

#[tokio::test]
async fn a_misspelled_metric_selects_no_alert_or_matches_nothing() {
    let Some(promtool) = promtool("a_misspelled_metric") else {
        return;
    };
    let rules = repo("tests/fixtures/kube/alerts-misspelled-metric.yml");
    let report = run(&rules, None, &observed(), promtool.clone()).await;
    assert!(report.failed(CheckKind::AlertSelected), "{report:#?}");
    let text = observed_of(&report, CheckKind::AlertSelected);
    assert!(
        text.contains(r#"no alert selects aether_readyz_success, so a readiness failure pages nobody; the file's alerts select: ReadyzDependencyFailure: `aether_readyz_sucess{service!="self-healer"}`"#),
        "{text}"
    );
    // Named explicitly, the selector check says what is exported instead.
    let report = run(
        &rules,
        Some("ReadyzDependencyFailure"),
        &observed(),
        promtool,
    )
    .await;
    let text = observed_of(&report, CheckKind::SelectorMatches);
    assert!(
        text.contains("the service exports no series named aether_readyz_sucess; its metrics are: aether_readyz_success, reference_ready_requests_total"),
        "{text}"
    );
    assert!(report.failed(CheckKind::FiresDuringOutage));
}

#[tokio::test]
async fn a_gauge_that_never_drops_or_never_recovers_fails_the_timeline() {
    let Some(promtool) = promtool("a_gauge_that_never_drops") else {
        return;
    };
    let rules = repo("examples/reference/deploy/alerts.yml");
    let stuck = ScrapedPhases {
        outage: gauge(1.0),
        ..observed()
    };
    let report = run(&rules, None, &stuck, promtool.clone()).await;
    assert!(report.failed(CheckKind::FiresDuringOutage), "{report:#?}");
    assert!(
        observed_of(&report, CheckKind::FiresDuringOutage).contains("got: nil"),
        "{report:#?}"
    );
    let latched = ScrapedPhases {
        recovered: gauge(0.0),
        ..observed()
    };
    let report = run(&rules, None, &latched, promtool).await;
    assert!(
        report.failed(CheckKind::ResolvesAfterRecovery),
        "{report:#?}"
    );
    assert!(!report.failed(CheckKind::FiresDuringOutage));
}

#[tokio::test]
async fn a_rule_that_fires_while_healthy_or_does_not_load_fails() {
    let Some(promtool) = promtool("a_rule_that_fires_while_healthy") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let seed = std::fs::read_to_string(repo("examples/reference/deploy/alerts.yml")).unwrap();
    let noisy = dir.path().join("noisy.yml");
    std::fs::write(&noisy, seed.replace("== 0", "== 1")).unwrap();
    let report = run(&noisy, None, &observed(), promtool.clone()).await;
    assert!(report.failed(CheckKind::QuietWhileHealthy), "{report:#?}");

    let broken = dir.path().join("broken.yml");
    std::fs::write(&broken, seed.replace("[5m]) == 0", "[5m) == 0")).unwrap();
    let report = run(&broken, None, &observed(), promtool).await;
    assert!(report.failed(CheckKind::RulesValid), "{report:#?}");
    assert_eq!(
        report.checks.len(),
        1,
        "nothing else is claimed: {report:#?}"
    );
    assert!(!report.unjudged.is_empty());
}

#[tokio::test]
async fn target_labels_join_the_series_as_prometheus_stores_them() {
    let Some(promtool) = promtool("target_labels_join_the_series") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let seed = std::fs::read_to_string(repo("examples/reference/deploy/alerts.yml")).unwrap();
    let by_job = dir.path().join("by-job.yml");
    std::fs::write(
        &by_job,
        seed.replace(r#"{service!="self-healer"}"#, r#"{job="reference"}"#),
    )
    .unwrap();
    let file = rules::read(&by_job).unwrap();
    let target = BTreeMap::from([("job".to_string(), "reference".to_string())]);
    let phases = observed();
    let input = AlertsInput {
        rules: &file,
        alert: None,
        gauge: Some("aether_readyz_success"),
        target_labels: &target,
        scrape_interval: Duration::from_secs(30),
        evaluation_interval: Duration::from_secs(60),
        phases: &phases,
        workdir: dir.path(),
    };
    let report = judge(&input, Ok(promtool)).await.unwrap();
    assert!(report.checks.iter().all(|c| c.passed), "{report:#?}");
}

#[tokio::test]
async fn without_promtool_nothing_is_judged_and_the_hint_is_given() {
    let file = rules::read(&repo("examples/reference/deploy/alerts.yml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let phases = observed();
    let target = BTreeMap::new();
    let input = AlertsInput {
        rules: &file,
        alert: None,
        gauge: Some("aether_readyz_success"),
        target_labels: &target,
        scrape_interval: Duration::from_secs(15),
        evaluation_interval: Duration::from_secs(60),
        phases: &phases,
        workdir: dir.path(),
    };
    let missing = Promtool::find_in(std::ffi::OsStr::new("/nonexistent-gonogo-bin"));
    let report = judge(&input, missing).await.unwrap();
    assert!(report.checks.is_empty());
    let reason = report.not_run.unwrap();
    assert!(
        reason.contains("--no-install-recommends prometheus"),
        "{reason}"
    );
}
