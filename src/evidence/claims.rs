//! What each step proves, in plain words, for the report's first screen.
//!
//! A step's title names the check ("Negative proof (Redis broken, ready
//! 503)"); its claim says what a PASS means for the service ("When Redis is
//! unreachable at boot, the service reports not-ready (503) and names
//! Redis"). Claims are chosen by step id at render time, so an old
//! `evidence.json` gets them too; a step gonogo has no claim for shows the
//! claim its run recorded (the plan's, with the scenario's numbers), or
//! else its title.

use crate::outcome::{NOT_DISCRIMINATING, StepOutcome};

/// The claim `step` proves when it passes, and what of it this run did not
/// prove: a check that does not discriminate proved nothing.
pub fn claim(step: &StepOutcome) -> String {
    let claim = planned_claim(step);
    let idle: Vec<&str> = step
        .checks
        .iter()
        .filter(|c| !c.discriminates)
        .map(|c| c.expected.as_str())
        .collect();
    if idle.is_empty() {
        return claim;
    }
    format!(
        "{claim} Not proven by this run: {} ({NOT_DISCRIMINATING}).",
        idle.join("; ")
    )
}

/// The claim of the step's id.
fn planned_claim(step: &StepOutcome) -> String {
    let fixed = match step.id.as_str() {
        "migration-gate" => Some(
            "The migrations apply cleanly (exit 0) and leave the database at the newest version."
                .to_string(),
        ),
        "ready-gate" => Some(
            "With its dependencies healthy, the service starts and reports ready (200).".into(),
        ),
        "negative-proof" => Some(
            "When Redis is unreachable at boot, the service reports not-ready (503) and names Redis."
                .into(),
        ),
        "fail-fast" => Some(
            "In strict mode, a missing or unsafe dependency setting stops the service at boot: it exits non-zero and never answers HTTP."
                .into(),
        ),
        "latency-slo" => Some(format!(
            "With healthy dependencies, readiness answers fast under concurrent load ({}) and always 200.",
            slo(step).unwrap_or_else(|| "p95 within the SLO".into())
        )),
        "graceful-shutdown" => Some(
            "On SIGTERM the service shuts down on its own, in time and with a clean exit code."
                .into(),
        ),
        "metrics-gauge" => Some(
            "The readiness gauge follows readiness: 1 when healthy, 0 during an outage, 1 after recovery."
                .into(),
        ),
        "runtime-faults" => {
            Some("The service handles outages of its dependencies while it runs.".into())
        }
        "postgres-read-only" => Some(
            "When Postgres refuses writes while the service runs, readiness turns 503 within the window and names Postgres, then returns to 200 once writes are allowed, without a restart."
                .into(),
        ),
        _ => None,
    };
    fixed
        .or_else(|| fault_claim(&step.id))
        .or_else(|| (!step.claim.trim().is_empty()).then(|| step.claim.clone()))
        .unwrap_or_else(|| step.title.clone())
}

/// "p95 ≤ 200 ms", from the step's own expectation.
fn slo(step: &StepOutcome) -> Option<String> {
    step.checks
        .iter()
        .map(|c| c.expected.as_str())
        .find(|e| e.starts_with("p95 ≤"))
        .map(str::to_string)
}

/// The four runtime fault steps of one dependency (`redis-recovery`, …).
fn fault_claim(id: &str) -> Option<String> {
    const KINDS: [&str; 4] = [
        "-runtime-outage",
        "-liveness-isolation",
        "-timeout-discipline",
        "-recovery",
    ];
    let (key, kind) = KINDS
        .iter()
        .find_map(|kind| id.strip_suffix(kind).map(|key| (key, *kind)))?;
    if key.is_empty() {
        return None;
    }
    let dep = match key {
        "postgres" => "Postgres",
        "redis" => "Redis",
        other => other,
    };
    Some(match kind {
        "-runtime-outage" => format!(
            "When {dep} goes down while the service runs, readiness turns 503 within the window and names {dep}."
        ),
        "-liveness-isolation" => format!(
            "While {dep} is down or hanging, liveness stays 200, so the orchestrator does not restart a working process."
        ),
        "-timeout-discipline" => format!(
            "When {dep} hangs (connections open, no answers), readiness still answers 503 within the probe deadline."
        ),
        _ => format!("When {dep} comes back, readiness returns to 200 without a restart."),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, title: &str) -> StepOutcome {
        serde_json::from_value(serde_json::json!({
            "number": 1, "id": id, "title": title, "required": true, "status": "PASS",
            "summary": "", "duration_ms": 1,
            "checks": [{"expected": "p95 ≤ 250 ms", "observed": "p95 3 ms", "passed": true}],
            "actions": [],
        }))
        .unwrap()
    }

    #[test]
    fn every_built_in_step_has_a_claim() {
        for id in [
            crate::steps::migrate::ID,
            crate::steps::ready::ID,
            crate::steps::negative::ID,
            crate::steps::failfast::ID,
            crate::steps::latency::ID,
            crate::steps::shutdown::ID,
            crate::steps::metrics::ID,
            crate::steps::faults::FOLDED_ID,
            crate::steps::read_only::ID,
        ]
        .into_iter()
        .map(String::from)
        .chain(crate::steps::faults::step_ids("postgres"))
        .chain(crate::steps::faults::step_ids("payments-api"))
        {
            let said = claim(&step(&id, "TITLE"));
            assert_ne!(said, "TITLE", "{id} has no claim");
            assert!(said.ends_with('.'), "{id}: {said}");
        }
    }

    #[test]
    fn claims_name_the_dependency_and_the_slo() {
        assert_eq!(
            claim(&step("redis-runtime-outage", "t")),
            "When Redis goes down while the service runs, readiness turns 503 within the window and names Redis."
        );
        assert!(
            claim(&step("payments-api-recovery", "t")).starts_with("When payments-api comes back")
        );
        assert!(claim(&step("latency-slo", "t")).contains("(p95 ≤ 250 ms)"));
    }

    #[test]
    fn a_check_that_does_not_discriminate_is_not_claimed() {
        let mut outage = step("redis-runtime-outage", "t");
        outage.checks[0].expected = crate::mask::Masker::new().mask("503 body names Redis");
        outage.checks[0].passed = false;
        outage.checks[0].discriminates = false;
        let said = claim(&outage);
        assert!(
            said.ends_with(
                "Not proven by this run: 503 body names Redis (does not discriminate: the healthy answer satisfies it too)."
            ),
            "{said}"
        );
    }

    #[test]
    fn an_unknown_step_keeps_its_title() {
        assert_eq!(claim(&step("custom-check", "My check")), "My check");
        assert_eq!(claim(&step("-recovery", "Odd")), "Odd");
    }

    #[test]
    fn an_unknown_step_shows_the_claim_its_run_recorded() {
        let mut custom = step("custom-check", "My check");
        custom.claim = "The custom check holds.".into();
        assert_eq!(claim(&custom), "The custom check holds.");
    }

    /// Every step the plans of the shipped scenarios can hold (launch and
    /// target mode) has a claim of its own, not its title.
    #[test]
    fn every_step_of_the_shipped_plans_has_a_claim() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for name in ["reference", "fastapi-backend"] {
            let path = root.join(format!("scenarios/{name}.toml"));
            let scenario = crate::scenario::load(&path).expect("a shipped scenario loads");
            let planned = crate::steps::planned_steps(&scenario);
            assert!(planned.len() > 10, "{name}: {planned:?}");
            for planned in planned {
                // As at run time: the step carries the claim its plan made.
                let id = planned.id;
                let mut outcome = step(&id, "TITLE");
                outcome.claim = planned.claim;
                let said = claim(&outcome);
                assert_ne!(said, "TITLE", "{name}: {id} has no claim");
                assert!(said.ends_with('.'), "{id}: {said}");
            }
        }
    }
}
