//! Runtime faults through the proxy: each flaw that only a live fault can
//! expose is NO-GO at the named step, and any TCP dependency gets the same
//! steps.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::proof::{assert_no_go_at, status_of};
use crate::support::{
    evidence_dir, gonogo, leftovers, marker, reference_service, run_with_limit, stderr, stdout,
};

const REFERENCE: &str = "scenarios/reference.toml";

#[test]
fn ready_that_caches_its_first_success_fails_the_runtime_outage() {
    // A restart would not catch this: the cache is per process.
    assert_no_go_at(
        Some("ready-caches-success"),
        REFERENCE,
        "redis-runtime-outage",
    );
}

#[test]
fn a_503_that_names_no_dependency_fails_the_runtime_outage() {
    assert_no_go_at(
        Some("ready-503-anonymous"),
        REFERENCE,
        "redis-runtime-outage",
    );
}

#[test]
fn redis_probe_without_deadline_fails_timeout_discipline() {
    assert_no_go_at(
        Some("redis-probe-no-deadline"),
        REFERENCE,
        "redis-timeout-discipline",
    );
}

#[test]
fn live_that_checks_dependencies_fails_liveness_isolation() {
    assert_no_go_at(
        Some("live-checks-deps"),
        REFERENCE,
        "redis-liveness-isolation",
    );
}

#[test]
fn ready_that_never_recovers_fails_recovery() {
    assert_no_go_at(Some("ready-never-recovers"), REFERENCE, "redis-recovery");
}

#[test]
fn hanging_postgres_probe_fails_postgres_timeout_discipline() {
    assert_no_go_at(
        Some("postgres-probe-hangs"),
        REFERENCE,
        "postgres-timeout-discipline",
    );
}

/// A second redis-server without a password stands in for any TCP
/// dependency (Kafka, a feature store): gonogo only proxies its bytes.
struct StandIn {
    child: std::process::Child,
    port: u16,
}

impl StandIn {
    fn start() -> StandIn {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        StandIn { child, port }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn any_tcp_dependency_gets_the_fault_steps() {
    reference_service();
    let stand_in = StandIn::start();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("extra.toml");
    let repo = env!("CARGO_MANIFEST_DIR");
    std::fs::write(
        &scenario,
        format!(
            r#"
name = "extra-dependency"

[service]
command = ["target/debug/reference-service"]
workdir = "{repo}"

[service.env]
PORT = "{{{{port}}}}"
DATABASE_URL = "{{{{database_url}}}}"
REDIS_URL = "{{{{redis_url}}}}"
EXTRA_TCP_DEPS = "FeatureStore={{{{featurestore_addr}}}}"
CI_STRICT = "1"

[migrations]
dir = "{repo}/reference-service/migrations"

[faults]
targets = ["featurestore"]

[[dependency]]
name = "featurestore"
host = "127.0.0.1"
port = {port}
names = ["FeatureStore"]
"#,
            port = stand_in.port
        ),
    )
    .unwrap();
    let out = dir.path().join("evidence");
    let marker = marker("extra-dep");
    let mut command = gonogo(&marker);
    command.arg("run").arg(&scenario).arg("--out").arg(&out);
    let output = run_with_limit(command, Duration::from_secs(120));
    let transcript = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(0), "{transcript}");
    assert!(leftovers(&marker).is_empty());
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(evidence_dir(&out).join("evidence.json")).unwrap(),
    )
    .unwrap();
    for kind in [
        "runtime-outage",
        "liveness-isolation",
        "timeout-discipline",
        "recovery",
    ] {
        assert_eq!(
            status_of(&json, &format!("featurestore-{kind}")),
            "PASS",
            "{transcript}"
        );
    }
    assert_eq!(json["timelines"][0]["dependency"], "featurestore");
}

#[test]
fn a_postgres_probe_that_only_reads_fails_the_read_only_step() {
    // Seed 000 asks for read AND write sentinels: a ready that only reads
    // stays 200 while Postgres refuses every write. Every other step still
    // passes, so only the read-only fault can expose it.
    let (code, transcript, json, report) =
        crate::proof::run_reference("reads-only", REFERENCE, Some("postgres-probe-reads-only"));
    assert_eq!(code, 1, "{transcript}");
    assert_eq!(json["verdict"], "NO-GO");
    let steps = json["steps"].as_array().unwrap();
    for step in steps {
        let expected = if step["id"] == "postgres-read-only" {
            "FAIL"
        } else {
            "PASS"
        };
        assert_eq!(step["status"], expected, "{}: {transcript}", step["id"]);
    }
    let step = steps
        .iter()
        .find(|s| s["id"] == "postgres-read-only")
        .unwrap();
    let summary = step["summary"].as_str().unwrap();
    assert!(
        summary.contains("ready answers 503 within") && summary.contains("no 503 within"),
        "{summary}"
    );
    let refused = step["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["label"] == "refuse writes server-wide")
        .expect("the fault is an action in the evidence");
    let output = refused["output"]["head"].as_str().unwrap();
    assert!(
        output.contains("default_transaction_read_only = on"),
        "{output}"
    );
    // Writes were allowed again, so the later steps of another run (and the
    // recovery of this one) see a writable server.
    assert!(
        step["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["label"] == "allow writes again"),
        "{step}"
    );
    assert!(report.contains("Postgres refuses writes"), "{report}");
}
