//! The Python example (examples/fastapi-backend: FastAPI, SQLAlchemy with
//! asyncpg, alembic, redis-py) proved through gonogo with embedded Postgres
//! and Redis: GO, every step PASS (the four proof steps and whatever runtime
//! fault steps gonogo adds), uvicorn gone afterwards.

use std::time::Duration;

use serde_json::Value;

use crate::support::{
    evidence_dir, gonogo, leftovers, marker, repo, run_with_limit, scenario, stderr, stdout,
};

const LIMIT: Duration = Duration::from_secs(180);

#[test]
fn fastapi_example_is_go_with_every_step_passing() {
    let uvicorn = repo().join("examples/fastapi-backend/.venv/bin/uvicorn");
    if !uvicorn.is_file() {
        println!(
            "SKIPPED fastapi_example_is_go_with_every_step_passing: {} is missing; \
             run examples/fastapi-backend/setup to create the virtualenv",
            uvicorn.display()
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let marker = marker("fastapi");
    let mut command = gonogo(&marker);
    command
        .arg("run")
        .arg(scenario("scenarios/fastapi-backend.toml"))
        .arg("--out")
        .arg(out.path());
    let output = run_with_limit(command, LIMIT);
    let transcript = format!("{}{}", stdout(&output), stderr(&output));
    let left = leftovers(&marker);
    assert!(left.is_empty(), "processes left behind: {left:?}");

    assert_eq!(output.status.code(), Some(0), "{transcript}");
    assert!(transcript.contains("GO fastapi-backend"), "{transcript}");
    let dir = evidence_dir(out.path());
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("evidence.json")).unwrap()).unwrap();
    assert_eq!(json["verdict"], "GO", "{transcript}");
    let steps = json["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    for id in [
        "migration-gate",
        "ready-gate",
        "negative-proof",
        "fail-fast",
    ] {
        assert!(ids.contains(&id), "no step {id} in {ids:?}\n{transcript}");
    }
    for step in steps {
        assert_eq!(step["status"], "PASS", "{}: {transcript}", step["id"]);
    }
    assert!(
        json["metadata"]["service_version"]
            .as_str()
            .unwrap()
            .contains("fastapi-backend"),
        "{transcript}"
    );
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("**Verdict: GO**"), "{report}");
    assert!(
        report.contains("(head)"),
        "alembic current output: {report}"
    );
}
