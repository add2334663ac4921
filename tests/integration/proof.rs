//! The four-step proof against the real reference service: GO when it is
//! correct, NO-GO at the right step for each deliberate flaw.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    all_files, evidence_dir, gonogo, leftovers, marker, processes_with_marker, reference_service,
    run_with_limit, scenario, stderr, stdout, wait_with_limit,
};

const LIMIT: Duration = Duration::from_secs(120);

/// Run the reference scenario with `REFERENCE_FLAW=flaw` (or none).
pub fn run_reference(
    test: &str,
    scenario_file: &str,
    flaw: Option<&str>,
) -> (i32, String, Value, String) {
    let flaw = flaw.map(|f| format!("REFERENCE_FLAW={f}"));
    match &flaw {
        Some(flaw) => run_reference_with(test, scenario_file, &["--env", flaw]),
        None => run_reference_with(test, scenario_file, &[]),
    }
}

/// Run the reference scenario with extra `args`.
pub fn run_reference_with(
    test: &str,
    scenario_file: &str,
    args: &[&str],
) -> (i32, String, Value, String) {
    run_reference_within(test, scenario_file, args, LIMIT)
}

/// [`run_reference_with`], killed after `limit` rather than the usual
/// bound.
pub fn run_reference_within(
    test: &str,
    scenario_file: &str,
    args: &[&str],
    limit: Duration,
) -> (i32, String, Value, String) {
    reference_service();
    let out = tempfile::tempdir().unwrap();
    let marker = marker(test);
    let mut command = gonogo(&marker);
    command
        .arg("run")
        .arg(scenario(scenario_file))
        .arg("--out")
        .arg(out.path())
        .args(args);
    let output = run_with_limit(command, limit);
    let code = output.status.code().unwrap_or(-1);
    assert!(
        leftovers(&marker).is_empty(),
        "processes left behind: {:?}",
        leftovers(&marker)
    );
    let dir = evidence_dir(out.path());
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("evidence.json")).unwrap()).unwrap();
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let transcript = format!("{}{}", stdout(&output), stderr(&output));
    (code, transcript, json, report)
}

/// The step `id` of the evidence.
pub fn step<'j>(json: &'j Value, id: &str) -> &'j Value {
    json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

pub fn status_of(json: &Value, id: &str) -> String {
    step(json, id)["status"].as_str().unwrap().to_string()
}

pub fn assert_no_go_at(flaw: Option<&str>, scenario_file: &str, failing: &str) {
    let test = flaw.unwrap_or(failing);
    let (code, transcript, json, report) = run_reference(test, scenario_file, flaw);
    assert_eq!(code, 1, "expected NO-GO exit 1 for {test}\n{transcript}");
    assert_eq!(json["verdict"], "NO-GO");
    assert_eq!(status_of(&json, failing), "FAIL", "{transcript}");
    assert!(transcript.contains("NO-GO"), "{transcript}");
    let title = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == failing)
        .unwrap()["title"]
        .as_str()
        .unwrap()
        .to_string();
    let verdict_line = transcript.lines().find(|l| l.starts_with("NO-GO")).unwrap();
    assert!(
        verdict_line.contains(&title),
        "verdict line should name the failed step `{title}`: {verdict_line}"
    );
    assert!(report.contains("**Verdict: NO-GO**"), "{report}");
}

#[test]
fn reference_service_is_go_with_every_step_passing() {
    let (code, transcript, json, report) = run_reference("go", "scenarios/reference.toml", None);
    assert_eq!(code, 0, "{transcript}");
    assert!(transcript.contains("GO reference"), "{transcript}");
    assert_eq!(json["verdict"], "GO");
    for id in [
        "migration-gate",
        "ready-gate",
        "negative-proof",
        "fail-fast",
        "postgres-read-only",
    ] {
        assert_eq!(status_of(&json, id), "PASS", "{id}: {transcript}");
    }
    assert!(
        json["metadata"]["service_version"]
            .as_str()
            .unwrap()
            .contains("reference-service")
    );
    // Each fail-fast case says, as a fact, that the correct service
    // reached no dependency before it exited; none is flagged.
    let failfast = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "fail-fast")
        .unwrap();
    let notes = failfast["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 3, "{notes:?}");
    for note in notes {
        assert_eq!(note["kind"], "observed", "{note}");
        assert_eq!(
            note["text"],
            "the service made no connection to any dependency before it exited"
        );
    }
    assert!(
        !failfast["summary"]
            .as_str()
            .unwrap()
            .contains("depends on the machine")
    );
    assert!(!report.contains("depend on the machine"), "{report}");
    let first_screen = &report[..report.find("\n## Appendix").expect("an appendix")];
    assert!(
        first_screen.lines().count() <= 60,
        "the first screen has {} lines:\n{first_screen}",
        first_screen.lines().count()
    );
    insta::with_settings!({filters => crate::redactions()}, {
        insta::assert_snapshot!("reference_report_first_screen", first_screen);
        insta::assert_snapshot!("reference_report", report);
    });
}

#[test]
fn ready_that_ignores_redis_fails_the_negative_proof() {
    assert_no_go_at(
        Some("ready-ignores-redis"),
        "scenarios/reference.toml",
        "negative-proof",
    );
}

#[test]
fn ready_500_instead_of_503_fails_the_negative_proof() {
    assert_no_go_at(
        Some("ready-500"),
        "scenarios/reference.toml",
        "negative-proof",
    );
}

#[test]
fn a_500_during_an_outage_is_a_timeline_event() {
    // The same flaw, looked at during the fault sequences: each 500 (not the
    // 503 the contract asks for) is a fact the timeline keeps.
    let (code, transcript, json, report) = run_reference(
        "ready-500-timeline",
        "scenarios/reference.toml",
        Some("ready-500"),
    );
    assert_eq!(code, 1, "{transcript}");
    let timelines = json["timelines"].as_array().unwrap();
    assert!(!timelines.is_empty(), "{transcript}");
    for timeline in timelines {
        let events = timeline["events"].as_array().unwrap();
        let fault_sequence = ["Postgres", "Redis", "Postgres (read-only)"]
            .contains(&timeline["dependency"].as_str().unwrap());
        // A fault sequence records the odd answer as its own event; the
        // gauge step says what ready answered instead of its 503.
        assert!(
            events
                .iter()
                .any(|e| (e["event"] == "ready answer" || !fault_sequence)
                    && e["detail"].as_str().unwrap().contains("HTTP 500")),
            "{timeline}"
        );
    }
    assert!(report.contains("| ready answer | "), "{report}");
}

#[test]
fn the_evidence_says_how_long_the_service_took_to_start_and_where_it_connects() {
    let (code, transcript, json, report) =
        run_reference("start-duration", "scenarios/reference.toml", None);
    assert_eq!(code, 0, "{transcript}");
    // The start's duration is the time to the first HTTP answer, as its
    // output says, not the 0 ms of a spawn.
    let ready = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "ready-gate")
        .unwrap();
    let start = ready["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["label"] == "start service")
        .unwrap();
    let took = start["duration_ms"].as_u64().unwrap();
    assert!(took > 0, "{start}");
    let output = start["output"]["head"].as_str().unwrap();
    assert_eq!(output, format!("answered HTTP after {took} ms"), "{start}");
    // The dependency table tells the server's port from the proxy's.
    for dep in json["dependencies"].as_array().unwrap() {
        let proxy = dep["service_connects_to"].as_str().unwrap();
        let server = dep["endpoint"].as_str().unwrap();
        assert!(proxy.starts_with("127.0.0.1:"), "{dep}");
        assert!(!server.contains(proxy), "{dep}");
    }
    assert!(
        report.contains("(gonogo's fault proxy)")
            && report.contains("A port in the service's own log is therefore the proxy's."),
        "{report}"
    );
}

#[test]
fn strict_mode_booting_without_redis_fails_fail_fast() {
    assert_no_go_at(
        Some("strict-boots-without-redis"),
        "scenarios/reference.toml",
        "fail-fast",
    );
}

#[test]
fn strict_mode_accepting_sqlite_fails_fail_fast() {
    assert_no_go_at(
        Some("strict-accepts-sqlite"),
        "scenarios/reference.toml",
        "fail-fast",
    );
}

#[test]
fn strict_mode_that_answers_before_failing_fails_fail_fast() {
    // It does exit non-zero, but only after answering HTTP: traffic could
    // already have been routed to it.
    let (code, transcript, json, _) = run_reference(
        "serves-before-failing",
        "scenarios/reference.toml",
        Some("strict-serves-before-failing"),
    );
    assert_eq!(code, 1, "{transcript}");
    assert_eq!(status_of(&json, "fail-fast"), "FAIL", "{transcript}");
    let step = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "fail-fast")
        .unwrap();
    let checks = step["checks"].as_array().unwrap();
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["expected"].as_str().unwrap())
        .collect();
    assert!(
        !failed.is_empty() && failed.iter().all(|e| e.contains("never answers HTTP")),
        "{failed:?}"
    );
}

#[test]
fn a_failing_migration_fails_the_migration_gate() {
    assert_no_go_at(
        None,
        "tests/fixtures/broken-migration.toml",
        "migration-gate",
    );
}

#[test]
fn ready_reporting_pending_migrations_fails_the_ready_gate() {
    // With a migration missing, the reference service's ready answers 503
    // naming Migrations: the ready gate must not pass it.
    let (code, transcript, json, _) = run_reference(
        "pending-migrations",
        "tests/fixtures/broken-migration.toml",
        None,
    );
    assert_eq!(code, 1, "{transcript}");
    assert_eq!(status_of(&json, "ready-gate"), "FAIL", "{transcript}");
}

#[test]
fn leaked_urls_never_reach_the_evidence() {
    // The leak-secrets flaw prints both URLs, passwords included, to its log
    // and into its 503 body. The passwords are generated per run, so read
    // them from the live service's environment while gonogo runs.
    reference_service();
    let out = tempfile::tempdir().unwrap();
    let marker = marker("leak");
    let mut command = gonogo(&marker);
    command
        .args([
            "run",
            "scenarios/reference.toml",
            "--env",
            "REFERENCE_FLAW=leak-secrets",
            "--out",
        ])
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut passwords = BTreeSet::new();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < LIMIT, "gonogo did not finish");
        for (pid, _) in processes_with_marker(&marker) {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            for var in environ.split(|b| *b == 0) {
                let var = String::from_utf8_lossy(var);
                for prefix in ["DATABASE_URL=", "REDIS_URL="] {
                    if let Some(url) = var.strip_prefix(prefix)
                        && let Some(password) = password_in(url)
                    {
                        passwords.insert(password);
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = wait_with_limit(child, LIMIT);
    let transcript = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(passwords.len(), 2, "expected both passwords: {passwords:?}");
    // Masked is not enough: a service that prints its passwords is NO-GO,
    // at the credential-hygiene check.
    assert_eq!(output.status.code(), Some(1), "{transcript}");
    assert!(
        transcript.contains("expected the service revealed no credential"),
        "{transcript}"
    );
    let dir = evidence_dir(out.path());
    let files = all_files(dir.parent().unwrap());
    assert!(files.len() >= 2, "{files:?}");
    let mut saw_masked_leak = false;
    for (name, text) in &files {
        for password in &passwords {
            assert!(!text.contains(password.as_str()), "{name} holds a password");
        }
        saw_masked_leak |= text.contains("redis://:***@");
    }
    assert!(saw_masked_leak, "the leaked URL should appear, masked");
    for password in &passwords {
        assert!(
            !transcript.contains(password.as_str()),
            "terminal output holds a password"
        );
    }
}

fn password_in(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then(|| password.to_string())
}
