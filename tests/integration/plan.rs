//! The step plan's rule, with real services: a step whose precondition did
//! not hold is NOT RUN with the precondition and what was observed, never
//! FAIL; the step that broke the precondition carries the FAIL.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::proof::{run_reference, run_reference_with, run_reference_within, status_of, step};

const REFERENCE: &str = "scenarios/reference.toml";

fn summary(json: &Value, id: &str) -> String {
    step(json, id)["summary"].as_str().unwrap().to_string()
}

#[test]
fn a_service_whose_ready_never_reaches_200_runs_nothing_that_needs_it() {
    // The Redis client drops the password: every PING is refused and ready
    // answers 503 from the start. Only the ready gate may fail for it.
    let started = Instant::now();
    let (code, transcript, json, report) =
        run_reference("never-ready", REFERENCE, Some("redis-auth-dropped"));
    let took = started.elapsed();
    assert_eq!(code, 1, "{transcript}");
    assert_eq!(json["verdict"], "NO-GO");
    assert_eq!(status_of(&json, "ready-gate"), "FAIL", "{transcript}");
    let mut needs_healthy = vec![
        "negative-proof".to_string(),
        "latency-slo".to_string(),
        "metrics-gauge".to_string(),
        "postgres-read-only".to_string(),
    ];
    for dep in ["postgres", "redis"] {
        for kind in [
            "runtime-outage",
            "liveness-isolation",
            "timeout-discipline",
            "recovery",
        ] {
            needs_healthy.push(format!("{dep}-{kind}"));
        }
    }
    for id in &needs_healthy {
        assert_eq!(status_of(&json, id), "NOT RUN", "{id}: {transcript}");
        let why = summary(&json, id);
        assert!(
            why.starts_with(
                "needs a healthy service; the ready gate never saw one: ready answered HTTP 503"
            ),
            "{id}: {why}"
        );
    }
    // The latency step did not send its requests.
    assert_eq!(step(&json, "latency-slo")["actions"], Value::Array(vec![]));
    // Steps that do not need a healthy service still ran.
    for id in ["migration-gate", "fail-fast", "graceful-shutdown"] {
        assert_eq!(status_of(&json, id), "PASS", "{id}: {transcript}");
    }
    let verdict = transcript.lines().find(|l| l.starts_with("NO-GO")).unwrap();
    assert!(
        verdict.contains("failed: Step 2 (Runtime ready gate"),
        "{verdict}"
    );
    assert!(report.contains("**NOT RUN**"), "{report}");
    // What Redis saw says why: it refused the service's unauthenticated
    // commands. The evidence carries it on the step that failed.
    let views = step(&json, "ready-gate")["dependency_views"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let redis_errors = views
        .iter()
        .find(|v| v["dependency"] == "Redis" && v["source"] == "error replies")
        .unwrap_or_else(|| panic!("no Redis view on the ready gate: {views:?}"));
    let text = redis_errors["text"]["head"].as_str().unwrap();
    assert!(
        text.contains("NOAUTH") && text.contains("had not authenticated"),
        "{text}"
    );
    assert!(
        views
            .iter()
            .any(|v| v["dependency"] == "Redis" && v["source"] == "INFO clients"),
        "{views:?}"
    );
    assert!(
        views
            .iter()
            .any(|v| v["dependency"] == "Postgres" && v["source"] == "server log"),
        "{views:?}"
    );
    // Inside the step's own appendix block.
    let ready_block = report
        .split("<summary>Step 2 — ")
        .nth(1)
        .and_then(|rest| rest.split("</details>").next())
        .expect("a step 2 block");
    assert!(
        ready_block.contains("What Redis saw during this step (error replies"),
        "{report}"
    );
    // A step that passed carries no view.
    assert!(step(&json, "migration-gate")["dependency_views"].is_null());
    assert!(
        took < Duration::from_secs(120),
        "the proof took {took:?}: steps that cannot prove anything must not wait"
    );
}

#[test]
fn a_service_that_never_answers_http_ends_in_bounded_time() {
    // It accepts TCP and never replies: the ready gate waits out the
    // startup timeout once and fails; nothing else waits for it again.
    let started = Instant::now();
    let (code, transcript, json, _) = run_reference_within(
        "never-answers",
        REFERENCE,
        &["--env", "REFERENCE_FLAW=never-answers"],
        Duration::from_secs(180),
    );
    let took = started.elapsed();
    assert_eq!(code, 1, "{transcript}");
    assert_eq!(json["verdict"], "NO-GO");
    assert_eq!(status_of(&json, "ready-gate"), "FAIL", "{transcript}");
    assert!(
        summary(&json, "ready-gate").contains("did not answer HTTP within"),
        "{transcript}"
    );
    for dep in ["postgres", "redis"] {
        for kind in [
            "runtime-outage",
            "liveness-isolation",
            "timeout-discipline",
            "recovery",
        ] {
            let id = format!("{dep}-{kind}");
            assert_eq!(status_of(&json, &id), "NOT RUN", "{id}: {transcript}");
            let why = summary(&json, &id);
            assert!(
                why.starts_with("needs a healthy service; the ready gate never saw one: the service did not answer HTTP within"),
                "{id}: {why}"
            );
        }
    }
    // A second instance would only wait out the startup timeout again.
    assert_eq!(status_of(&json, "graceful-shutdown"), "NOT RUN");
    assert!(
        summary(&json, "graceful-shutdown").starts_with(
            "needs a service instance that answers HTTP; the ready gate's instance never did: the service did not answer HTTP within"
        ),
        "{transcript}"
    );
    assert_eq!(step(&json, "latency-slo")["actions"], Value::Array(vec![]));
    // Strict mode still refuses to start, before the listener exists.
    assert_eq!(status_of(&json, "fail-fast"), "PASS", "{transcript}");
    assert!(
        took < Duration::from_secs(150),
        "the proof took {took:?}: only the ready gate may wait for a silent service"
    );
}

/// The negative proof starts beside the gate and waits for its verdict;
/// when the gate has already finished (one unit after another), a gate
/// that saw no healthy service leaves it NOT RUN before it starts an
/// instance that would only wait out the startup timeout again.
#[test]
fn one_after_another_a_silent_gate_starts_no_negative_instance() {
    let (code, transcript, json, _) = run_reference_within(
        "never-answers-serial",
        REFERENCE,
        &["--env", "REFERENCE_FLAW=never-answers", "--serial"],
        Duration::from_secs(180),
    );
    assert_eq!(code, 1, "{transcript}");
    assert_eq!(
        status_of(&json, "negative-proof"),
        "NOT RUN",
        "{transcript}"
    );
    assert!(
        summary(&json, "negative-proof").starts_with(
            "needs a healthy service; the ready gate never saw one: the service did not answer HTTP within"
        ),
        "{transcript}"
    );
    assert!(
        !transcript.contains("restart service with REDIS pointed at a closed port"),
        "{transcript}"
    );
    assert_eq!(
        step(&json, "negative-proof")["actions"],
        Value::Array(vec![])
    );
}

#[test]
fn ready_that_never_recovers_leaves_the_blackhole_untried() {
    // After the outage ready replays its 503 forever: recovery fails, and a
    // 503 while blackholed would prove nothing, so timeout discipline is
    // NOT RUN; liveness, observed during the outage, still passes.
    let (code, transcript, json, _) = run_reference(
        "never-recovers-plan",
        REFERENCE,
        Some("ready-never-recovers"),
    );
    assert_eq!(code, 1, "{transcript}");
    for dep in ["postgres", "redis"] {
        assert_eq!(status_of(&json, &format!("{dep}-runtime-outage")), "PASS");
        assert_eq!(status_of(&json, &format!("{dep}-recovery")), "FAIL");
        assert_eq!(
            status_of(&json, &format!("{dep}-liveness-isolation")),
            "PASS",
            "{transcript}"
        );
        let id = format!("{dep}-timeout-discipline");
        assert_eq!(status_of(&json, &id), "NOT RUN", "{transcript}");
        let why = summary(&json, &id);
        assert!(
            why.starts_with("needs ready answering 200 before the blackhole; ready did not return to 200 after the outage"),
            "{why}"
        );
    }
}

#[test]
fn a_step_declared_not_applicable_inside_a_fault_sequence_is_not_judged() {
    // The Redis sequence still runs for its other three steps, on one
    // instance; the declared step is NOT APPLICABLE, and the verdict is GO.
    crate::support::reference_service();
    let dir = tempfile::tempdir().unwrap();
    let scenario = crate::parallel::twin(dir.path(), "not-applicable", None);
    let mut text = std::fs::read_to_string(&scenario).unwrap();
    text.push_str(
        "\n[[not_applicable]]\nstep = \"redis-timeout-discipline\"\nreason = \"Redis sits on the same host; a blackhole cannot happen\"\n",
    );
    std::fs::write(&scenario, text).unwrap();
    let out = dir.path().join("evidence");
    let marker = crate::support::marker("not-applicable-faults");
    let mut command = crate::support::gonogo(&marker);
    command.arg("run").arg(&scenario).arg("--out").arg(&out);
    let output = crate::support::run_with_limit(command, Duration::from_secs(120));
    let transcript = format!(
        "{}{}",
        crate::support::stdout(&output),
        crate::support::stderr(&output)
    );
    assert_eq!(output.status.code(), Some(0), "{transcript}");
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::support::evidence_dir(&out).join("evidence.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        status_of(&json, "redis-timeout-discipline"),
        "NOT APPLICABLE"
    );
    for id in [
        "redis-runtime-outage",
        "redis-liveness-isolation",
        "redis-recovery",
    ] {
        assert_eq!(status_of(&json, id), "PASS", "{id}: {transcript}");
    }
    let headline = json["headline"].as_str().unwrap();
    assert!(
        headline.starts_with("17 of 17 required steps passed; 1 not applicable"),
        "{headline}"
    );
}

/// The `n` of every finished step's `[n/total] … PASS|FAIL|…` line, in the
/// order the progress printed them.
fn finished_numbers(transcript: &str) -> Vec<u32> {
    transcript
        .lines()
        .filter(|l| !l.trim_end().ends_with('…'))
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix('[')?;
            rest.split_once('/')?.0.parse().ok()
        })
        .collect()
}

#[test]
fn side_by_side_and_serial_runs_give_the_same_steps_in_plan_order() {
    let (code, transcript, json, _) = run_reference_with("order-concurrent", REFERENCE, &[]);
    assert_eq!(code, 0, "{transcript}");
    let (serial_code, serial_transcript, serial_json, _) =
        run_reference_with("order-serial", REFERENCE, &["--serial"]);
    assert_eq!(serial_code, 0, "{serial_transcript}");
    let steps = |json: &Value| -> Vec<(u64, String, String)> {
        json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["number"].as_u64().unwrap(),
                    s["id"].as_str().unwrap().to_string(),
                    s["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(steps(&json), steps(&serial_json));
    let total = steps(&json).len() as u32;
    let in_order: Vec<u32> = (1..=total).collect();
    assert_eq!(finished_numbers(&transcript), in_order, "{transcript}");
    assert_eq!(
        finished_numbers(&serial_transcript),
        in_order,
        "{serial_transcript}"
    );
    let timelines = |json: &Value| -> Vec<String> {
        json["timelines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["dependency"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(timelines(&json), timelines(&serial_json));
    // Each step keeps its own start and end: side by side, the two fault
    // sequences overlap; with --serial they do not.
    let window = |json: &Value, id: &str| -> (String, String) {
        let step = step(json, id);
        let at = |k: &str| {
            step[k]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: {k}"))
                .to_string()
        };
        (at("started_at"), at("ended_at"))
    };
    let overlap = |json: &Value| {
        let (a0, a1) = window(json, "postgres-runtime-outage");
        let (b0, b1) = window(json, "redis-runtime-outage");
        a0 < b1 && b0 < a1
    };
    assert!(
        overlap(&json),
        "the fault sequences ran one after the other"
    );
    assert!(
        !overlap(&serial_json),
        "--serial ran fault sequences side by side"
    );
    // Fail-fast needs no schema: it starts with the migrations. The
    // negative proof starts beside the ready gate (it judges once the
    // gate has finished). Neither with --serial.
    let starts_before_end = |json: &Value, a: &str, b: &str| window(json, a).0 < window(json, b).1;
    assert!(starts_before_end(&json, "fail-fast", "migration-gate"));
    assert!(starts_before_end(&json, "negative-proof", "ready-gate"));
    assert!(!starts_before_end(
        &serial_json,
        "fail-fast",
        "migration-gate"
    ));
    assert!(!starts_before_end(
        &serial_json,
        "negative-proof",
        "ready-gate"
    ));
    // The ready gate's healthy instance serves the latency measurement,
    // then the graceful shutdown, either way; each says so.
    for json in [&json, &serial_json] {
        let first_action = |id: &str| step(json, id)["actions"][0].clone();
        let pid = |id: &str| {
            let action = first_action(id);
            assert_eq!(
                action["label"], "use the instance the ready gate started",
                "{id}: {action}"
            );
            action["invocation"].as_str().unwrap().to_string()
        };
        assert_eq!(pid("latency-slo"), pid("graceful-shutdown"));
        let history = first_action("graceful-shutdown")["output"]["head"].to_string();
        assert!(
            history.contains("started by the ready gate, then used by the latency measurement"),
            "{history}"
        );
    }
}

/// A failed step's dependency view covers its whole window: side by side,
/// the server also served the units running beside it, and the evidence
/// says which; one after another, nothing ran beside it.
#[test]
fn a_dependency_view_names_the_units_that_ran_beside_the_step() {
    let flaw = ["--env", "REFERENCE_FLAW=ready-ignores-redis"];
    let (code, transcript, json, report) =
        run_reference_with("views-side-by-side", REFERENCE, &flaw);
    assert_eq!(code, 1, "{transcript}");
    let views = |json: &Value| -> Vec<Value> {
        let step = step(json, "redis-runtime-outage");
        assert_eq!(step["status"], "FAIL", "{step}");
        step["dependency_views"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let side_by_side = views(&json);
    assert!(!side_by_side.is_empty(), "{json}");
    for view in &side_by_side {
        let alongside: Vec<&str> = view["alongside"]
            .as_array()
            .unwrap_or_else(|| panic!("no alongside in {view}"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            alongside.contains(&"Postgres runtime faults (steps 8-11)"),
            "{alongside:?}"
        );
        assert!(
            !alongside
                .iter()
                .any(|a| a.starts_with("Redis runtime faults"))
        );
    }
    assert!(report.contains("so some of this may be theirs"), "{report}");
    let mut serial = flaw.to_vec();
    serial.push("--serial");
    let (code, transcript, json, _) = run_reference_with("views-serial", REFERENCE, &serial);
    assert_eq!(code, 1, "{transcript}");
    let one_after_another = views(&json);
    assert!(!one_after_another.is_empty(), "{json}");
    for view in &one_after_another {
        assert!(view.get("alongside").is_none(), "{view}");
    }
}

/// What a handed-on instance prints while no step holds it (after the
/// ready gate recorded its log, before the latency measurement takes it
/// over) reaches the step that takes it: a credential logged then is
/// caught there, not lost between the two.
#[test]
fn what_a_handed_on_instance_prints_while_idle_reaches_the_next_step() {
    let flaw = ["--env", "REFERENCE_FLAW=leak-secrets-when-idle"];
    let (code, transcript, json, _) = run_reference_with("idle-leak", REFERENCE, &flaw);
    assert_eq!(code, 1, "{transcript}");
    let hygiene = |id: &str| -> bool {
        let checks = step(&json, id)["checks"].as_array().unwrap().clone();
        let check = checks
            .iter()
            .find(|c| c["expected"] == "the service revealed no credential")
            .unwrap_or_else(|| panic!("{id} has no credential check"));
        check["passed"].as_bool().unwrap()
    };
    assert_eq!(
        step(&json, "latency-slo")["actions"][0]["label"],
        "use the instance the ready gate started"
    );
    // The flaw logs 600 ms after its first healthy answer: after the gate
    // recorded its share, while the negative proof's 1 s look went on.
    assert!(hygiene("ready-gate"), "{transcript}");
    assert!(!hygiene("latency-slo"), "{transcript}");
}

/// A handed-on instance that exits by itself before the next step takes
/// it is a fact the evidence keeps (a note, with its last lines), and the
/// step starts an instance of its own instead.
#[test]
fn a_handed_on_instance_that_exits_while_idle_is_noted_and_replaced() {
    let flaw = ["--env", "REFERENCE_FLAW=exits-when-idle"];
    let (code, transcript, json, report) = run_reference_with("idle-exit", REFERENCE, &flaw);
    assert_eq!(code, 1, "{transcript}");
    let latency = step(&json, "latency-slo");
    let notes = latency["notes"].to_string();
    assert!(
        notes.contains("exited by itself (exit code 3) before this step took it"),
        "{notes}"
    );
    assert!(notes.contains("pool keeper lost its connection"), "{notes}");
    assert_eq!(latency["actions"][0]["label"], "start service", "{latency}");
    assert!(report.contains("exited by itself (exit code 3)"));
}
