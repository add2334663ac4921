//! Production conformance outside a proof: `gonogo doctor` reports
//! promtool (the alert-rule checks need it), and `gonogo validate` reads the
//! shipped manifests and rule files.

use std::time::Duration;

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

/// The shipped scenarios with their example deploy files: the manifests
/// name the right container and port, the rule files load, and the
/// readiness alert is found through the `[metrics]` gauge.
#[test]
fn the_example_deploy_files_load_with_the_shipped_scenarios() {
    for (scenario, deploy, container, port) in [
        (
            "scenarios/reference.toml",
            "../examples/reference/deploy",
            "reference-service",
            8080,
        ),
        (
            "scenarios/fastapi-backend.toml",
            "../examples/fastapi-backend/deploy",
            "api",
            8000,
        ),
    ] {
        let path = repo().join(scenario);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!(
            "\n[kubernetes]\nmanifest = \"{deploy}/deployment.yaml\"\n\n[alerts]\nrules = \"{deploy}/alerts.yml\"\n"
        ));
        let loaded =
            gonogo::scenario::load_str(&path, &text).unwrap_or_else(|e| panic!("{scenario}: {e}"));
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
