//! Each judge both ways, on hand-built observations: a healthy service
//! with a sound manifest passes every rule, and one change to either side
//! fails exactly the rule that exists for it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::judge::{Conformance, Rule, judge};
use super::manifest::{Container, Selection, from_file};
use super::observe::{Answer, ColdStart, FaultWindow, Observations, Reply, Shutdown};
use crate::yaml::YamlFile;

const SOUND: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: reference}
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 30
      containers:
        - name: reference
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /ready, port: http}
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 2
          livenessProbe:
            httpGet: {path: /live, port: http}
            timeoutSeconds: 2
          startupProbe:
            httpGet: {path: /live, port: http}
            periodSeconds: 2
            failureThreshold: 15
          lifecycle:
            preStop: {sleep: {seconds: 5}}
"#;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn answer(at: u64, status: u16, latency: u64) -> Answer {
    Answer {
        at: ms(at),
        reply: Reply::Status(status),
        latency: ms(latency),
    }
}

fn container(text: &str) -> Container {
    let file = YamlFile::parse(Path::new("deploy.yaml"), text).expect("valid YAML");
    from_file(&file, &Selection::default()).expect("one container")
}

/// A Redis outage of 1.5 s: ready 503 from 200 ms, 200 again after the
/// clear; live 200 throughout.
fn redis_down() -> FaultWindow {
    let mut ready = vec![answer(0, 200, 3), answer(100, 200, 3)];
    ready.extend((2..15).map(|i| answer(i * 100, 503, 4)));
    ready.push(answer(1_600, 200, 3));
    let live = (0..15).map(|i| answer(i * 100, 200, 1)).collect();
    FaultWindow {
        dependency: "Redis".into(),
        fault: "down".into(),
        cleared_at: ms(1_500),
        answers: BTreeMap::from([("/ready".into(), ready), ("/live".into(), live)]),
    }
}

fn healthy() -> Observations {
    Observations {
        ready_path: "/ready".into(),
        live_path: "/live".into(),
        healthy: BTreeMap::from([
            ("/ready".into(), vec![answer(0, 200, 3)]),
            ("/live".into(), vec![answer(0, 200, 1)]),
        ]),
        healthy_p99: BTreeMap::from([("/ready".into(), ms(5))]),
        cold_start: Some(ColdStart {
            first_success: BTreeMap::from([
                ("/ready".into(), Some(ms(400))),
                ("/live".into(), Some(ms(300))),
            ]),
            first_answer: Some(ms(300)),
            watched: Duration::from_secs(10),
        }),
        shutdown: Some(Shutdown::Exited { after: ms(120) }),
        faults: vec![redis_down()],
    }
}

fn run(manifest: &str, obs: &Observations) -> Conformance {
    let c = container(manifest);
    let serving = c.serving_port(None).expect("one port");
    judge(&c, &serving, obs)
}

/// The failed checks' observed text for `rule` (panics when it passed).
fn failure(result: &Conformance, rule: Rule) -> String {
    let failed: Vec<&str> = result
        .failures()
        .filter(|c| c.rule == rule)
        .map(|c| c.observed.as_str())
        .collect();
    assert!(!failed.is_empty(), "{rule:?} did not fail: {result:#?}");
    failed.join("\n")
}

#[test]
fn a_sound_manifest_passes_every_rule() {
    let result = run(SOUND, &healthy());
    let failures: Vec<_> = result.failures().collect();
    assert!(failures.is_empty(), "{failures:#?}");
    for rule in [
        Rule::ProbePort,
        Rule::ProbeAnswers,
        Rule::ReadinessPath,
        Rule::ReadinessDuringFault,
        Rule::ReadinessRecovery,
        Rule::LivenessDuringFault,
        Rule::StartupBudget,
        Rule::ShutdownGrace,
        Rule::ProbeTimeout,
    ] {
        assert!(
            result.checks.iter().any(|c| c.rule == rule),
            "{rule:?} was not checked"
        );
    }
    let during = result
        .checks
        .iter()
        .find(|c| c.rule == Rule::ReadinessDuringFault)
        .unwrap();
    // First 503 asked at 200 ms, 2 × 5 s, answer within 4 ms.
    assert!(
        during.observed.contains("NotReady within 10.2 s"),
        "{}",
        during.observed
    );
    assert_eq!(result.tables.len(), 4);
    let readiness = &result.tables[0];
    assert!(readiness.title.starts_with("readinessProbe"));
    assert!(
        readiness.rows[4].observed.contains("Redis down: NotReady"),
        "{readiness:#?}"
    );
}

#[test]
fn readiness_must_exist_and_ask_the_ready_path() {
    let result = run(&SOUND.replace("path: /ready", "path: /live"), &healthy());
    assert!(failure(&result, Rule::ReadinessPath).contains("asks GET /live, not /ready"));
    let without = SOUND.replace("readinessProbe:", "unusedProbe:");
    let result = run(&without, &healthy());
    assert!(failure(&result, Rule::ReadinessPath).contains("has no readinessProbe"));
}

#[test]
fn readiness_that_stays_ready_or_flaps_during_a_fault_fails() {
    let mut obs = healthy();
    for a in obs.faults[0].answers.get_mut("/ready").unwrap() {
        a.reply = Reply::Status(200);
    }
    let text = failure(&run(SOUND, &obs), Rule::ReadinessDuringFault);
    assert!(text.contains("keep the pod Ready"), "{text}");

    let mut obs = healthy();
    obs.faults[0].answers.get_mut("/ready").unwrap()[8].reply = Reply::Status(200);
    let text = failure(&run(SOUND, &obs), Rule::ReadinessDuringFault);
    assert!(text.contains("failure count would start over"), "{text}");
}

#[test]
fn a_ready_slower_than_timeout_seconds_counts_as_failing() {
    // A ready that answers 200, but after 2.5 s (timeoutSeconds 2), would
    // make the pod NotReady; that proves the kubelet view, not the status.
    let mut obs = healthy();
    let ready = obs.faults[0].answers.get_mut("/ready").unwrap();
    for a in ready.iter_mut().take(15) {
        a.reply = Reply::Status(200);
        a.latency = ms(2_500);
    }
    let result = run(SOUND, &obs);
    let during = result
        .checks
        .iter()
        .find(|c| c.rule == Rule::ReadinessDuringFault)
        .unwrap();
    assert!(during.passed, "{during:#?}");
    assert!(
        during.observed.contains("past timeoutSeconds 2"),
        "{}",
        during.observed
    );
}

#[test]
fn readiness_recovery_must_come_within_the_margin() {
    let mut obs = healthy();
    let ready = obs.faults[0].answers.get_mut("/ready").unwrap();
    ready.last_mut().unwrap().reply = Reply::Status(503);
    let text = failure(&run(SOUND, &obs), Rule::ReadinessRecovery);
    assert!(text.contains("never succeeded"), "{text}");

    let mut obs = healthy();
    let ready = obs.faults[0].answers.get_mut("/ready").unwrap();
    // 200 again only 7 s after the clear; periodSeconds 5 allows 5 s.
    ready.last_mut().unwrap().at = ms(8_500);
    let text = failure(&run(SOUND, &obs), Rule::ReadinessRecovery);
    assert!(text.contains("7 s after the fault cleared"), "{text}");
}

#[test]
fn liveness_on_the_ready_path_restarts_pods_during_an_outage() {
    let manifest = SOUND.replace(
        "livenessProbe:\n            httpGet: {path: /live",
        "livenessProbe:\n            httpGet: {path: /ready",
    );
    let text = failure(&run(&manifest, &healthy()), Rule::LivenessDuringFault);
    assert!(
        text.contains("the kubelet would restart the pod after 30 s of a Redis outage"),
        "{text}"
    );
    assert!(
        text.contains("the cause: the livenessProbe asks /ready, the readiness path"),
        "{text}"
    );
}

#[test]
fn liveness_that_hangs_past_its_timeout_during_a_fault_fails() {
    let mut obs = healthy();
    let live = obs.faults[0].answers.get_mut("/live").unwrap();
    live[5] = Answer {
        at: ms(500),
        reply: Reply::TimedOut,
        latency: ms(5_000),
    };
    let text = failure(&run(SOUND, &obs), Rule::LivenessDuringFault);
    assert!(text.contains("no answer within 5 s"), "{text}");
    assert!(!text.contains("the cause"), "{text}");
}

#[test]
fn a_startup_budget_shorter_than_the_cold_start_fails_naming_both() {
    let manifest = SOUND.replace(
        "periodSeconds: 2\n            failureThreshold: 15",
        "periodSeconds: 1\n            failureThreshold: 2",
    );
    let mut obs = healthy();
    let cold = obs.cold_start.as_mut().unwrap();
    cold.first_success.insert("/live".into(), Some(ms(3_200)));
    let result = run(&manifest, &obs);
    let text = failure(&result, Rule::StartupBudget);
    assert!(text.contains("3.2 s, longer than the 2 s budget"), "{text}");
    let check = result
        .failures()
        .find(|c| c.rule == Rule::StartupBudget)
        .unwrap();
    assert!(check.expected.contains("= 2 s"), "{}", check.expected);

    // Without a startup probe, liveness's budget applies (0 + 3 × 10 s).
    let without = SOUND.replace("startupProbe:", "unusedProbe:");
    let result = run(&without, &obs);
    assert!(!result.failed(Rule::StartupBudget), "{result:#?}");
}

#[test]
fn a_cold_start_never_seen_within_a_longer_watch_fails() {
    let manifest = SOUND.replace(
        "periodSeconds: 2\n            failureThreshold: 15",
        "periodSeconds: 1\n            failureThreshold: 2",
    );
    let mut obs = healthy();
    obs.cold_start
        .as_mut()
        .unwrap()
        .first_success
        .insert("/live".into(), None);
    let text = failure(&run(&manifest, &obs), Rule::StartupBudget);
    assert!(
        text.contains("not within the 10 s gonogo watched"),
        "{text}"
    );
}

#[test]
fn a_grace_period_shorter_than_shutdown_fails() {
    let manifest = SOUND.replace(
        "terminationGracePeriodSeconds: 30",
        "terminationGracePeriodSeconds: 1",
    );
    let mut obs = healthy();
    obs.shutdown = Some(Shutdown::Exited { after: ms(1_500) });
    let text = failure(&run(&manifest, &obs), Rule::ShutdownGrace);
    assert!(
        text.contains("SIGTERM to exit 1.5 s + preStop sleep action, 5 s = 6.5 s"),
        "{text}"
    );

    // The preStop sleep alone can push a fast shutdown past the period.
    let manifest = SOUND.replace(
        "terminationGracePeriodSeconds: 30",
        "terminationGracePeriodSeconds: 5",
    );
    let text = failure(&run(&manifest, &healthy()), Rule::ShutdownGrace);
    assert!(text.contains("would SIGKILL"), "{text}");

    // A service still running past the grace period fails too.
    let mut obs = healthy();
    obs.shutdown = Some(Shutdown::StillRunning {
        waited: Duration::from_secs(30),
    });
    assert!(run(SOUND, &obs).failed(Rule::ShutdownGrace));
}

#[test]
fn a_timeout_shorter_than_the_healthy_p99_fails() {
    let manifest = SOUND.replace(
        "timeoutSeconds: 2\n            failureThreshold: 2",
        "timeoutSeconds: 1\n            failureThreshold: 2",
    );
    let mut obs = healthy();
    obs.healthy_p99.insert("/ready".into(), ms(1_300));
    let text = failure(&run(&manifest, &obs), Rule::ProbeTimeout);
    assert!(
        text.contains("1.3 s, longer than timeoutSeconds 1"),
        "{text}"
    );
}

#[test]
fn a_port_or_path_the_service_never_answers_fails() {
    let result = run(
        &SOUND.replace(
            "path: /live, port: http}\n            timeoutSeconds",
            "path: /live, port: admin}\n            timeoutSeconds",
        ),
        &healthy(),
    );
    assert!(failure(&result, Rule::ProbePort).contains("no port named `admin`"));
    let result = run(
        &SOUND.replace("path: /ready, port: http", "path: /ready, port: 9090"),
        &healthy(),
    );
    assert!(failure(&result, Rule::ProbePort).contains("port 9090, not containerPort 8080"));
    // A probe on a port that does not map is not judged further (no PASS
    // for a probe the kubelet could never run).
    assert!(
        !result
            .checks
            .iter()
            .any(|c| c.rule == Rule::ReadinessDuringFault)
    );

    let mut obs = healthy();
    obs.healthy.insert("/live".into(), vec![answer(0, 404, 1)]);
    let text = failure(&run(SOUND, &obs), Rule::ProbeAnswers);
    assert!(text.contains("GET /live answered 404"), "{text}");
}

#[test]
fn probes_gonogo_cannot_run_are_not_judged_rather_than_passed() {
    let manifest = SOUND.replace(
        "livenessProbe:\n            httpGet: {path: /live, port: http}",
        "livenessProbe:\n            exec: {command: [cat, /tmp/healthy]}",
    );
    let result = run(&manifest, &healthy());
    assert!(
        !result
            .checks
            .iter()
            .any(|c| c.rule == Rule::LivenessDuringFault)
    );
    assert!(
        result
            .unjudged
            .iter()
            .any(|u| u.reason.contains("cannot judge an exec probe")),
        "{result:#?}"
    );
    let manifest = SOUND.replace(
        "readinessProbe:\n            httpGet: {path: /ready, port: http}",
        "readinessProbe:\n            tcpSocket: {port: http}",
    );
    let result = run(&manifest, &healthy());
    assert!(failure(&result, Rule::ReadinessPath).contains("tcpSocket"));
}

#[test]
fn the_serving_port_is_the_only_port_or_named() {
    let c = container(SOUND);
    assert_eq!(
        c.serving_port(None).unwrap().to_string(),
        "containerPort 8080 `http`"
    );
    let two = SOUND.replace(
        "ports: [{name: http, containerPort: 8080}]",
        "ports: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9090}]",
    );
    let c = container(&two);
    let err = c.serving_port(None).unwrap_err();
    assert!(
        err.contains("several ports (http=8080, metrics=9090)"),
        "{err}"
    );
    let port = super::PortRef::Name("metrics".into());
    assert_eq!(c.serving_port(Some(&port)).unwrap().number, 9090);
    let none = SOUND
        .replace("ports: [{name: http, containerPort: 8080}]", "image: x")
        .replace("port: http", "port: 8080");
    assert_eq!(container(&none).serving_port(None).unwrap().number, 8080);
}

/// The shipped reference Deployment passes with the reference service's
/// observations, and each failing fixture fails at its own check.
#[test]
fn the_reference_deployment_passes_and_each_fixture_fails_at_its_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let judge_file = |relative: &str, obs: &Observations| {
        let c = super::manifest::read(&root.join(relative), &Selection::default())
            .unwrap_or_else(|e| panic!("{relative}: {e}"));
        let serving = c.serving_port(None).expect("one port");
        judge(&c, &serving, obs)
    };
    let obs = healthy();
    let shipped = judge_file("examples/reference/deploy/deployment.yaml", &obs);
    assert_eq!(shipped.failures().count(), 0, "{shipped:#?}");

    // A cold start of 3.2 s and a healthy ready p99 of 1.3 s: what the
    // budget and timeout fixtures are meant to catch.
    let mut slow = healthy();
    let cold = slow.cold_start.as_mut().unwrap();
    cold.first_success.insert("/live".into(), Some(ms(3_200)));
    slow.healthy_p99.insert("/ready".into(), ms(1_300));
    let shipped = judge_file("examples/reference/deploy/deployment.yaml", &slow);
    assert_eq!(shipped.failures().count(), 0, "{shipped:#?}");

    for (fixture, obs, rule) in [
        (
            "liveness-on-ready-path.yaml",
            &obs,
            Rule::LivenessDuringFault,
        ),
        ("startup-budget-2s.yaml", &slow, Rule::StartupBudget),
        (
            "grace-shorter-than-shutdown.yaml",
            &obs,
            Rule::ShutdownGrace,
        ),
        ("timeout-1s-slow-ready.yaml", &slow, Rule::ProbeTimeout),
    ] {
        let result = judge_file(&format!("tests/fixtures/kube/{fixture}"), obs);
        let failed: Vec<Rule> = result.failures().map(|c| c.rule).collect();
        assert_eq!(failed, [rule], "{fixture}: {result:#?}");
    }
}
