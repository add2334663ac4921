//! A fixed [`Evidence`] for the renderers' unit tests: one step of each
//! status (PASS, FAIL, NOT RUN, WAIVED) and one waiver of each state that
//! matters to them. Built from JSON so it does not depend on struct layout.

use super::Evidence;

/// A NO-GO run of the `sample` scenario.
pub fn evidence() -> Evidence {
    let check = |expected: &str, observed: &str, passed: bool| serde_json::json!({"expected": expected, "observed": observed, "passed": passed});
    let step = |number: u32, id: &str, status: &str, summary: &str, checks| {
        serde_json::json!({
            "number": number,
            "id": id,
            "title": format!("Title of {id}"),
            "required": true,
            "status": status,
            "summary": summary,
            "duration_ms": 1200 + number as u64,
            "checks": checks,
            "actions": [],
        })
    };
    let json = serde_json::json!({
        "schema_version": 1,
        "gonogo_version": "0.1.0",
        "verdict": "NO-GO",
        "headline": "1 of 4 required steps passed; failed: Step 2 (Title of b-step)",
        "scenario": {"name": "sample", "path": "scenarios/sample.toml", "sha256": "ab".repeat(32)},
        "metadata": {
            "date_utc": "2026-03-01T10:00:00Z",
            "finished_utc": "2026-03-01T10:00:09Z",
            "duration_ms": 9100,
            "environment": "ci",
            "git_sha": "0123456789abcdef0123456789abcdef01234567",
            "runner_host": "ci-***",
            "command_line": "gonogo run scenarios/sample.toml",
            "release": "2026.03.01",
            "owner": "platform-readiness",
        },
        "dependencies": [],
        "steps": [
            step(1, "a-step", "PASS", "1 of 1 checks passed", serde_json::json!([check("HTTP 200", "HTTP 200", true)])),
            step(2, "b-step", "FAIL", "expected HTTP 503, observed <script>", serde_json::json!([
                check("HTTP 503", "<script>", false),
                check("body names Redis", "body names Redis", true),
            ])),
            step(3, "c-step", "NOT RUN", "the scenario has no [migrations]", serde_json::json!([])),
            step(4, "d-step", "WAIVED", "expected exit 1, observed exit 0", serde_json::json!([check("exit 1", "exit 0", false)])),
        ],
        "waivers": [
            {"step": "d-step", "justification": "known issue, fix in 1.2", "approver": "alice",
             "expires": "2026-04-01", "state": "applied", "step_status": "FAIL"},
            {"step": "b-step", "justification": "old exception", "approver": "bob",
             "expires": "2026-01-01", "state": "expired", "step_status": "FAIL"},
        ],
    });
    serde_json::from_value(json).expect("the sample is valid evidence")
}
