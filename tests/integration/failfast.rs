//! Fail-fast tells why, with real services: each case's own proxies show
//! what the service connected to before it exited, and an exit that came
//! from a failed connection is a pass that depends on the machine, said as
//! a fact, not a failure. (The correct service's "no connection" is checked
//! with the GO run in `proof`.)

use serde_json::Value;

use crate::proof::{run_reference_with, status_of};

const REFERENCE: &str = "scenarios/reference.toml";

fn failfast(json: &Value) -> &Value {
    json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "fail-fast")
        .unwrap()
}

/// The notes about one case.
fn notes<'a>(json: &'a Value, case: &str) -> Vec<&'a Value> {
    failfast(json)["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["about"] == case)
        .collect()
}

#[test]
fn a_service_that_connects_to_postgres_before_refusing_redis_shows_the_connection() {
    let (code, transcript, json, report) = run_reference_with(
        "failfast-connects-first",
        REFERENCE,
        &["--env", "REFERENCE_FLAW=strict-connects-first"],
    );
    assert_eq!(code, 0, "{transcript}");
    assert_eq!(status_of(&json, "fail-fast"), "PASS", "{transcript}");
    let redis = notes(&json, "REDIS_URL unset");
    assert_eq!(redis.len(), 1, "{redis:?}");
    assert_eq!(redis[0]["kind"], "observed");
    let text = redis[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("the service connected to Postgres (1 connection, ")
            && text.ends_with(" ms after start) before it exited")
            && !text.contains("Redis"),
        "{text}"
    );
    // Without a database URL it had nothing to connect to.
    let database = notes(&json, "DATABASE_URL unset");
    assert_eq!(
        database[0]["text"],
        "the service made no connection to any dependency before it exited"
    );
    // A fact, not a failure, and no flag: the exit was a configuration check.
    assert!(
        !failfast(&json)["summary"]
            .as_str()
            .unwrap()
            .contains("depends on the machine")
    );
    assert!(
        report.contains("- REDIS_URL unset: the service connected to Postgres (1 connection, "),
        "{report}"
    );
}

#[test]
fn an_exit_after_a_failed_connection_is_a_pass_that_depends_on_the_machine() {
    // REDIS_URL unset: the service falls back to a Redis that refuses (a
    // closed port here, localhost:6379 in the wild) and exits after the
    // failed connection, not after a configuration check.
    let (code, transcript, json, report) = run_reference_with(
        "failfast-fallback",
        REFERENCE,
        &[
            "--env",
            "REFERENCE_FLAW=strict-redis-fallback",
            "--env",
            "REDIS_FALLBACK_URL=redis://127.0.0.1:1",
        ],
    );
    // A flagged pass: the verdict stays GO.
    assert_eq!(code, 0, "{transcript}");
    assert_eq!(json["verdict"], "GO");
    assert_eq!(status_of(&json, "fail-fast"), "PASS", "{transcript}");
    let summary = failfast(&json)["summary"].as_str().unwrap();
    assert!(
        summary.ends_with(
            "; this pass depends on the machine (REDIS_URL unset: the service exited after a failed connection)"
        ),
        "{summary}"
    );
    let redis = notes(&json, "REDIS_URL unset");
    let flagged: Vec<&&Value> = redis
        .iter()
        .filter(|n| n["kind"] == "depends_on_machine")
        .collect();
    assert_eq!(flagged.len(), 1, "{redis:?}");
    let text = flagged[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("this pass depends on the machine: the service exited after a failed connection (the port refused the connection)")
            && text.contains("localhost:6379"),
        "{text}"
    );
    let quote = flagged[0]["quote"].as_str().unwrap();
    assert!(quote.contains("Connection refused"), "{quote}");
    // The other cases exited on a configuration check: not flagged.
    for case in ["DATABASE_URL unset", "sqlite DATABASE_URL"] {
        assert!(
            notes(&json, case).iter().all(|n| n["kind"] == "observed"),
            "{case}"
        );
    }
    let first_screen = &report[..report.find("\n## Appendix").expect("an appendix")];
    assert!(
        first_screen.contains("**Passes that depend on the machine**")
            && first_screen.contains("- Step 4, REDIS_URL unset: this pass depends on the machine"),
        "{first_screen}"
    );
    assert!(
        report.contains("its output: `error: could not connect to Redis"),
        "{report}"
    );
    assert!(
        transcript.contains("this pass depends on the machine"),
        "{transcript}"
    );
}
