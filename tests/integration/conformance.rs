//! Production conformance outside a proof: `gonogo doctor` reports
//! promtool (the alert-rule checks need it), and `gonogo validate` reads the
//! shipped manifests and rule files.

use std::time::Duration;

use crate::proof::step;
use crate::support::{gonogo, marker, repo, run_with_limit, stderr, stdout};

#[test]
fn doctor_reports_promtool_or_how_to_install_it() {
    let mut command = gonogo(&marker("doctor-promtool"));
    command.arg("doctor");
    let output = run_with_limit(command, Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("tools (alert-rule checks):"), "{text}");
    if which("promtool") {
        assert!(
            text.contains("ok       promtool      promtool, version"),
            "{text}"
        );
    }

    // A PATH with redis-server but no promtool (Postgres is found under
    // /usr/lib/postgresql): the embedded provider still works, and doctor
    // names the package that ships promtool.
    let Some(redis) = find("redis-server") else {
        println!("SKIPPED the missing-promtool half: no redis-server on PATH");
        return;
    };
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(redis, bin.path().join("redis-server")).unwrap();
    let mut command = gonogo(&marker("doctor-no-promtool"));
    command.arg("doctor").env("PATH", bin.path());
    let output = run_with_limit(command, Duration::from_secs(30));
    let text = stdout(&output);
    assert!(
        text.contains("missing  promtool      promtool is not on PATH: install the distribution's prometheus package, which ships promtool: `apt-get install --no-install-recommends prometheus`"),
        "{text}"
    );
}

fn find(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn which(program: &str) -> bool {
    find(program).is_some()
}

/// The shipped scenarios use their example deploy files: the manifests
/// name the right container and port, the rule files load, and the
/// readiness alert is found through the `[metrics]` gauge.
#[test]
fn the_example_deploy_files_load_with_the_shipped_scenarios() {
    for (scenario, deploy, container, port) in [
        (
            "scenarios/reference.toml",
            "examples/reference/deploy",
            "reference-service",
            8080,
        ),
        (
            "scenarios/fastapi-backend.toml",
            "examples/fastapi-backend/deploy",
            "api",
            8000,
        ),
    ] {
        let path = repo().join(scenario);
        let loaded = gonogo::scenario::load(&path).unwrap_or_else(|e| panic!("{scenario}: {e}"));
        let k = loaded.kubernetes.clone().expect("[kubernetes]");
        assert!(
            k.manifest.ends_with(format!("{deploy}/deployment.yaml")),
            "{}",
            k.manifest.display()
        );
        let k = loaded.kubernetes.expect("[kubernetes]");
        assert_eq!(k.container.name, container);
        assert_eq!(k.serving.number, port);
        for probe in [
            &k.container.readiness,
            &k.container.liveness,
            &k.container.startup,
        ] {
            assert!(probe.is_some(), "{scenario}: all three probes");
        }
        let gauge = loaded.metrics.expect("[metrics]").gauge;
        let alerts = loaded.alerts.expect("[alerts]");
        assert!(
            alerts.rules.alerts.iter().any(|a| a.expr.contains(&gauge)),
            "{scenario}: an alert on {gauge}"
        );
    }
}

/// The Kubernetes Job example: its scenario (from the ConfigMap) loads
/// with a Deployment where the init container writes it, and the Job runs
/// gonogo in target mode against the in-cluster Service.
#[test]
fn the_kubernetes_job_example_carries_a_valid_target_mode_scenario() {
    use gonogo::yaml::YamlFile;
    let path = repo().join("examples/kubernetes/gonogo-job.yaml");
    let file = YamlFile::read(&path).unwrap();
    let mut data = None;
    let mut args = None;
    for (_, doc) in file.documents() {
        match doc.require("kind").unwrap().str().unwrap() {
            "ConfigMap" => data = Some(doc.require("data").unwrap()),
            "Job" => {
                let pod = doc.require("spec").unwrap().require("template").unwrap();
                let spec = pod.require("spec").unwrap();
                let container = &spec.require("containers").unwrap().items().unwrap()[0];
                let list = container.require("args").unwrap().items().unwrap();
                args = Some(
                    list.iter()
                        .map(|a| a.str().unwrap().to_string())
                        .collect::<Vec<_>>(),
                );
            }
            _ => {}
        }
    }
    let args = args.expect("a Job");
    assert!(
        args.iter().any(|a| a.starts_with("--service-url=http://")),
        "{args:?}"
    );
    let data = data.expect("a ConfigMap");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::create_dir_all(dir.path().join("work")).unwrap();
    for name in ["scenario.toml", "alerts.yml"] {
        let text = data.require(name).unwrap().str().unwrap().to_string();
        std::fs::write(dir.path().join("config").join(name), text).unwrap();
    }
    std::fs::copy(
        repo().join("examples/reference/deploy/deployment.yaml"),
        dir.path().join("work/deployment.yaml"),
    )
    .unwrap();
    let scenario = gonogo::scenario::load(&dir.path().join("config/scenario.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        scenario.kubernetes.unwrap().container.name,
        "reference-service"
    );
    assert_eq!(
        scenario.alerts.unwrap().target_labels["namespace"],
        "platform"
    );
    assert_eq!(scenario.waivers.len(), 6);
}

/// The reference proof with `[kubernetes]` and `[alerts]` pointing at
/// the fixtures, trimmed to what the probe and alert judges need (Redis
/// faults only, no latency run: the probe timeouts are then judged on the
/// ready gate's slowest healthy answer), with `REFERENCE_FLAW=flaw`.
/// `path` replaces the PATH gonogo runs with.
fn fixture_proof(
    test: &str,
    manifest: &str,
    rules: &str,
    flaw: Option<&str>,
    path: Option<&std::path::Path>,
) -> (i32, String, serde_json::Value) {
    let repo = repo();
    let shipped = std::fs::read_to_string(repo.join("scenarios/reference.toml")).unwrap();
    let base = shipped
        .split("\n# Production conformance")
        .next()
        .unwrap()
        .replace("\"../", &format!("\"{}/", repo.display()))
        .replace("\"..\"", &format!("\"{}\"", repo.display()))
        .replace(
            "targets = [\"postgres\", \"redis\"]",
            "targets = [\"redis\"]",
        )
        .replace("[latency]\n", "[latency]\nenabled = false\n");
    let fixtures = repo.join("tests/fixtures/kube");
    let text = format!(
        "{base}\n[kubernetes]\nmanifest = \"{}\"\n\n[alerts]\nrules = \"{}\"\n",
        fixtures.join(manifest).display(),
        fixtures.join(rules).display()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{test}.toml"));
    std::fs::write(&file, text).unwrap();
    crate::support::reference_service();
    let out = tempfile::tempdir().unwrap();
    let marker = marker(test);
    let mut command = gonogo(&marker);
    command.arg("run").arg(&file).arg("--out").arg(out.path());
    if let Some(flaw) = flaw {
        command.arg("--env").arg(format!("REFERENCE_FLAW={flaw}"));
    }
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let output = run_with_limit(command, Duration::from_secs(150));
    let code = output.status.code().unwrap_or(-1);
    assert!(
        crate::support::leftovers(&marker).is_empty(),
        "processes left behind"
    );
    let evidence = crate::support::evidence_dir(out.path()).join("evidence.json");
    let json = serde_json::from_str(&std::fs::read_to_string(evidence).unwrap()).unwrap();
    (
        code,
        format!("{}{}", stdout(&output), stderr(&output)),
        json,
    )
}

/// The failed checks of a step whose expectation starts with `rule`, as
/// `expected => observed`.
fn failed(json: &serde_json::Value, id: &str, rule: &str) -> Vec<String> {
    step(json, id)["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false && c["expected"].as_str().unwrap().starts_with(rule))
        .map(|c| format!("{} => {}", c["expected"], c["observed"]))
        .collect()
}

/// NO-GO, with `kubernetes-probes` or `alert-rules` FAIL at `rule`.
fn assert_fails_at(
    (code, transcript, json): &(i32, String, serde_json::Value),
    id: &str,
    rule: &str,
) -> Vec<String> {
    assert_eq!(*code, 1, "{transcript}");
    assert_eq!(json["verdict"], "NO-GO", "{transcript}");
    assert_eq!(step(json, id)["status"], "FAIL", "{id}: {transcript}");
    let at = failed(json, id, rule);
    assert!(
        !at.is_empty(),
        "{id} did not fail at {rule}: {}",
        step(json, id)
    );
    at
}

#[test]
fn liveness_on_the_ready_path_and_a_wrong_alert_label_are_no_go_at_their_checks() {
    let run = fixture_proof(
        "kube-liveness-on-ready",
        "liveness-on-ready-path.yaml",
        "alerts-wrong-label.yml",
        None,
        None,
    );
    let liveness = assert_fails_at(&run, "kubernetes-probes", "liveness-during-fault");
    let text = liveness.join("\n");
    assert!(
        text.contains("the kubelet would restart the pod after 30 s of a Redis outage"),
        "{text}"
    );
    assert!(
        text.contains("the cause: the livenessProbe asks /ready"),
        "{text}"
    );
    // Everything else about the manifest holds: only liveness fails.
    for rule in ["readiness-during-fault", "startup-budget", "shutdown-grace"] {
        assert!(
            failed(&run.2, "kubernetes-probes", rule).is_empty(),
            "{rule}"
        );
    }
    let selector = assert_fails_at(&run, "alert-rules", "selectors match").join("\n");
    assert!(selector.contains(r#"service=\"reference\""#), "{selector}");
    assert!(
        selector.contains(r#"aether_readyz_success{service=\"reference-service\"}"#),
        "{selector}"
    );
}

#[test]
fn a_grace_period_shorter_than_shutdown_and_a_misspelled_metric_are_no_go_at_their_checks() {
    let run = fixture_proof(
        "kube-grace",
        "grace-shorter-than-shutdown.yaml",
        "alerts-misspelled-metric.yml",
        None,
        None,
    );
    let grace = assert_fails_at(&run, "kubernetes-probes", "shutdown-grace").join("\n");
    assert!(grace.contains("terminationGracePeriodSeconds 3"), "{grace}");
    assert!(grace.contains("would SIGKILL the container"), "{grace}");
    let selected = assert_fails_at(&run, "alert-rules", "alert selected").join("\n");
    assert!(
        selected.contains("no alert selects aether_readyz_success"),
        "{selected}"
    );
    assert!(selected.contains("aether_readyz_sucess"), "{selected}");
}

/// A PATH without promtool (the embedded servers are still found): the
/// alert step is NOT RUN with the install hint, never FAIL.
#[test]
fn a_startup_budget_shorter_than_the_cold_start_is_no_go_and_no_promtool_is_not_run() {
    let bin = tempfile::tempdir().unwrap();
    let redis = find("redis-server");
    if let Some(redis) = &redis {
        std::os::unix::fs::symlink(redis, bin.path().join("redis-server")).unwrap();
    }
    let run = fixture_proof(
        "kube-startup-budget",
        "startup-budget-2s.yaml",
        "alerts-wrong-label.yml",
        Some("slow-start"),
        redis.as_ref().map(|_| bin.path()),
    );
    let budget = assert_fails_at(&run, "kubernetes-probes", "startup-budget").join("\n");
    assert!(
        budget.contains("initialDelaySeconds 0 + failureThreshold 2 × periodSeconds 1 s = 2 s"),
        "{budget}"
    );
    assert!(budget.contains("longer than the 2 s budget"), "{budget}");
    if redis.is_some() {
        let alerts = step(&run.2, "alert-rules");
        assert_eq!(alerts["status"], "NOT RUN", "{alerts}");
        let summary = alerts["summary"].as_str().unwrap();
        assert!(summary.starts_with("needs promtool"), "{summary}");
        assert!(summary.contains("gonogo doctor --install"), "{summary}");
    }
}

#[test]
fn a_probe_timeout_shorter_than_a_healthy_ready_is_no_go_at_probe_timeout() {
    let run = fixture_proof(
        "kube-timeout",
        "timeout-1s-slow-ready.yaml",
        "alerts-wrong-label.yml",
        Some("very-slow-ready"),
        None,
    );
    let timeout =
        assert_fails_at(&run, "kubernetes-probes", "probe-timeout (readinessProbe)").join("\n");
    assert!(
        timeout.contains("longer than timeoutSeconds 1"),
        "{timeout}"
    );
    assert!(
        timeout.contains("would time out on a healthy pod"),
        "{timeout}"
    );
}
