//! gonogo's integration tests, in one binary: real Postgres, real Redis, the
//! real reference service, the real `gonogo` executable.

// A panic is how a test reports: it may unwrap. A test reads top to bottom
// as a script, so the 80-line limit on functions is for src/ only.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod artifacts;
mod attest;
mod ci;
mod cleanup;
mod conformance;
mod discriminate;
mod failfast;
mod fastapi;
mod faults;
mod parallel;
mod plan;
mod proof;
mod providers;
mod provision;
mod reliability;
mod scenario_errors;
mod secrets;
mod slo;
mod support;

/// Filters that make a report stable: times, ports, paths and hosts.
pub fn redactions() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[DATE]"),
        (
            r"(?s)Service log during this step \(\d+ lines\):\n```\n.*?\n```",
            "[SERVICE LOG]",
        ),
        (r#""error":"[^"]*""#, r#""error":"[ERROR]""#),
        (r"content-length: \d+", "content-length: [N]"),
        (r"\d+ of \d+ probes", "[N] of [N] probes"),
        (r"\d+ of \d+ answers", "[N] of [N] answers"),
        (r"\d+ answers", "[N] answers"),
        (r"\d+ sessions?\b", "[N] sessions"),
        (r"\d+ req/s", "[N] req/s"),
        (r"\d+% of the machine", "[N]% of the machine"),
        (r"date: [A-Za-z]{3}, .* GMT", "date: [HTTP-DATE]"),
        (r"127\.0\.0\.1:\d{2,5}", "127.0.0.1:[PORT]"),
        (r"PORT=\d+", "PORT=[PORT]"),
        (r"pid \d+, port \d+", "pid [PID], port [PORT]"),
        (r"\d+(\.\d+)? (ms|s)\b", "[DURATION]"),
        (r"(/tmp|/dev/shm)/gonogo-[A-Za-z0-9-]+", "[TMP]"),
        (r"sha256 `[0-9a-f]+`", "sha256 `[SHA]`"),
        (r"commit `[0-9a-f]+`", "commit [GIT]"),
        (r"\(from (template|initdb)\)", "(from [DATA])"),
        (r"(?m)^\S*gonogo run .*$", "[COMMAND]"),
        (r"- Environment: .*", "- Environment: [ENV]"),
        (r"os error \d+", "os error [N]"),
        (env!("CARGO_MANIFEST_DIR"), "[REPO]"),
    ]
}
