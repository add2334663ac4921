//! Every check must discriminate (issue 11 item 2): a check about failure
//! semantics is judged on the healthy answer too, and one that holds there
//! is reported as not discriminating in every artifact and never counted
//! as passed. The Redis fault steps of the real reference service, with
//! the other long steps declared not applicable to keep each run short.

use std::time::Duration;

use serde_json::Value;

use crate::proof::{status_of, step};
use crate::support::{
    evidence_dir, gonogo, leftovers, marker, reference_service, run_with_limit, stderr, stdout,
};

const NOT_DISCRIMINATING: &str = "does not discriminate: the healthy answer satisfies it too";

/// One run: the reference service (with `flaw`, if any), Redis faults
/// only, and `expect` as the `[faults] expect` of Redis. Gives the exit
/// code, the transcript, evidence.json, report.md and the JUnit XML.
fn run(test: &str, flaw: Option<&str>, expect: &str) -> (i32, String, Value, String, String) {
    reference_service();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("discriminate.toml");
    let repo = env!("CARGO_MANIFEST_DIR");
    let flaw = flaw.unwrap_or("");
    std::fs::write(
        &scenario,
        format!(
            r#"
name = "discriminate"

[service]
command = ["target/debug/reference-service"]
workdir = "{repo}"

[service.env]
PORT = "{{{{port}}}}"
DATABASE_URL = "{{{{database_url}}}}"
REDIS_URL = "{{{{redis_url}}}}"
CI_STRICT = "1"
REFERENCE_FLAW = "{flaw}"

[migrations]
dir = "{repo}/reference-service/migrations"

[faults]
targets = ["redis"]
expect = {{ redis = [{expect}] }}

[[not_applicable]]
step = "fail-fast"
reason = "not what this test proves"

[[not_applicable]]
step = "latency-slo"
reason = "not what this test proves"

[[not_applicable]]
step = "graceful-shutdown"
reason = "not what this test proves"
"#
        ),
    )
    .unwrap();
    let out = dir.path().join("evidence");
    let marker = marker(test);
    let mut command = gonogo(&marker);
    command.arg("run").arg(&scenario).arg("--out").arg(&out);
    let output = run_with_limit(command, Duration::from_secs(180));
    let transcript = format!("{}{}", stdout(&output), stderr(&output));
    assert!(leftovers(&marker).is_empty(), "{:?}", leftovers(&marker));
    assert!(out.exists(), "no evidence: {transcript}");
    let dir = evidence_dir(&out);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let json: Value = serde_json::from_str(&read("evidence.json")).unwrap();
    (
        output.status.code().unwrap_or(-1),
        transcript,
        json,
        read("report.md"),
        read("junit.xml"),
    )
}

/// The check of `step` whose expectation is `expected`.
fn check<'a>(step: &'a Value, expected: &str) -> &'a Value {
    step["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["expected"] == expected)
        .unwrap_or_else(|| panic!("no check {expected:?} in {step:#}"))
}

/// `expected` is reported as not discriminating in every artifact, and
/// not as passed: the step stands on the status change, and says so.
fn assert_not_discriminating(json: &Value, report: &str, junit: &str, expected: &str, quote: &str) {
    for id in ["redis-runtime-outage", "redis-timeout-discipline"] {
        let step = step(json, id);
        let c = check(step, expected);
        assert_eq!(c["passed"], false, "{c:#}");
        assert_eq!(c["discriminates"], false, "{c:#}");
        let healthy = c["healthy"].as_str().unwrap();
        assert!(healthy.contains(quote), "{healthy}");
        // The status change 200 → 503 is the step's discriminating check.
        assert_eq!(step["status"], "PASS", "{step:#}");
        let summary = step["summary"].as_str().unwrap();
        assert!(summary.contains(NOT_DISCRIMINATING), "{summary}");
        assert!(
            summary.contains("stands on the status change 200 → 503 alone"),
            "{summary}"
        );
    }
    let row = report
        .lines()
        .find(|l| l.starts_with(&format!("| {expected} |")))
        .unwrap_or_else(|| panic!("no row for {expected:?} in {report}"));
    assert!(row.contains("**DOES NOT DISCRIMINATE**"), "{row}");
    assert!(!row.contains("| PASS |"), "{row}");
    assert!(
        report.lines().any(|l| l
            .split_once("Not proven by this run: ")
            .is_some_and(|(_, rest)| rest.contains(expected))),
        "{report}"
    );
    // The XML writer may escape the quotes of a pointer expectation.
    let in_xml = [expected.to_string(), expected.replace('"', "&quot;")];
    assert!(
        in_xml.iter().any(|e| junit.contains(&format!(
            "[{NOT_DISCRIMINATING}; not counted as passed] expected {e}"
        ))),
        "{junit}"
    );
    assert!(
        in_xml
            .iter()
            .all(|e| !junit.contains(&format!("[pass] expected {e};"))),
        "{junit}"
    );
}

#[test]
fn a_healthy_body_that_names_every_dependency_does_not_discriminate() {
    let (code, transcript, json, report, junit) =
        run("names-all", Some("healthy-body-names-all"), "");
    // The 503 names every dependency, so "names Redis" holds; but so does
    // the healthy 200, so it proves nothing.
    assert_eq!(code, 0, "{transcript}");
    assert_not_discriminating(
        &json,
        &report,
        &junit,
        "503 body names Redis",
        r#"/checked/1 = "Redis""#,
    );
    // The negative proof's "body names Redis" is judged on the ready
    // gate's healthy answer.
    let negative = step(&json, "negative-proof");
    assert_eq!(check(negative, "body names Redis")["discriminates"], false);
    assert!(transcript.contains(NOT_DISCRIMINATING), "{transcript}");
}

#[test]
fn pointer_expectations_that_hold_on_the_healthy_body_do_not_discriminate() {
    let (code, transcript, json, report, junit) = run(
        "pointer-idle",
        Some("healthy-body-names-all"),
        r#"{ pointer = "/checked/1", equals = "Redis" }"#,
    );
    assert_eq!(code, 0, "{transcript}");
    assert_not_discriminating(
        &json,
        &report,
        &junit,
        r#"/checked/1 = "Redis""#,
        r#"/checked/1 = "Redis""#,
    );
}

#[test]
fn a_discriminating_pointer_expectation_passes_on_the_healthy_reference() {
    let (code, transcript, json, report, _) = run(
        "pointer-pass",
        None,
        r#"{ pointer = "/dependency", equals = "Redis" }, { pointer = "/dependencies/redis", equals = "unreachable" }"#,
    );
    assert_eq!(code, 0, "{transcript}");
    for id in ["redis-runtime-outage", "redis-timeout-discipline"] {
        let step = step(&json, id);
        assert_eq!(step["status"], "PASS", "{step:#}");
        for expected in [
            r#"/dependency = "Redis""#,
            r#"/dependencies/redis = "unreachable""#,
            "503 body names Redis",
        ] {
            let c = check(step, expected);
            assert_eq!(c["passed"], true, "{c:#}");
            assert!(c.get("discriminates").is_none(), "{c:#}");
        }
    }
    assert!(!report.contains("DOES NOT DISCRIMINATE"), "{report}");
}

#[test]
fn a_discriminating_pointer_expectation_fails_a_503_that_does_not_say_which() {
    let (code, transcript, json, _, _) = run(
        "pointer-fail",
        Some("healthy-body-names-all"),
        r#"{ pointer = "/dependency", equals = "Redis" }"#,
    );
    assert_eq!(code, 1, "{transcript}");
    assert_eq!(json["verdict"], "NO-GO");
    assert_eq!(status_of(&json, "redis-runtime-outage"), "FAIL");
    let outage = step(&json, "redis-runtime-outage");
    let c = check(outage, r#"/dependency = "Redis""#);
    assert_eq!(c["passed"], false, "{c:#}");
    assert_eq!(c["observed"], "/dependency is missing", "{c:#}");
    let summary = outage["summary"].as_str().unwrap();
    assert!(summary.contains(r#"/dependency = "Redis""#), "{summary}");
}
