//! `junit.xml`: the [`Evidence`] as a JUnit report (through `quick-junit`),
//! for CI test views (GitHub test reporters, GitLab
//! `artifacts:reports:junit`, Jenkins).
//!
//! One `<testsuite>` per run, named after the scenario; one `<testcase>` per
//! step. A FAIL is a `<failure>` whose message is the step's summary and
//! whose text lists every failed check (expected, then observed, masked). A
//! NOT RUN or NOT APPLICABLE step is `<skipped>` with its reason (its type
//! says which). A WAIVED step is a passing test case: CI must not go red for
//! it, but the waiver is visible as `gonogo.waiver.*` properties and in its
//! `<system-out>`.
//!
//! Sample:
//!
//! ```text
//! <testsuites name="gonogo" tests="4" skipped="0" failures="1" errors="0" time="9.100">
//!     <testsuite name="reference" tests="4" skipped="0" errors="0" failures="1">
//!         <properties>
//!             <property name="gonogo.verdict" value="NO-GO"/>
//!         </properties>
//!         <testcase name="negative-proof: Negative proof (Redis broken, ready 503)"
//!                   classname="gonogo.reference" time="1.2">
//!             <failure message="expected HTTP 503, observed HTTP 500" type="FAIL">
//! expected: HTTP 503
//! observed: HTTP 500</failure>
//! ```

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::Evidence;
use crate::outcome::{CheckResult, NOT_DISCRIMINATING, StepOutcome, StepStatus};
use crate::waiver::{WaiverRecord, WaiverState};

/// Render `evidence` as JUnit XML.
pub fn render(evidence: &Evidence) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new("gonogo");
    let mut suite = TestSuite::new(evidence.scenario.name.as_str());
    let started = chrono::DateTime::parse_from_rfc3339(&evidence.metadata.date_utc).ok();
    if let Some(started) = started {
        report.set_timestamp(started);
        suite.set_timestamp(started);
    }
    let total = Duration::from_millis(evidence.metadata.duration_ms);
    report.set_time(total);
    suite.set_time(total);

    let mut properties = vec![
        Property::new("gonogo.verdict", evidence.verdict.label()),
        Property::new("gonogo.headline", evidence.headline.as_str()),
        Property::new("gonogo.version", evidence.gonogo_version.as_str()),
        Property::new("gonogo.scenario.sha256", evidence.scenario.sha256.as_str()),
        Property::new("gonogo.environment", evidence.metadata.environment.as_str()),
    ];
    if let Some(release) = &evidence.metadata.release {
        properties.push(Property::new("gonogo.release", release.as_str()));
    }
    if let Some(owner) = &evidence.metadata.owner {
        properties.push(Property::new("gonogo.owner", owner.as_str()));
    }
    suite.add_properties(properties);

    for step in &evidence.steps {
        let waiver = evidence
            .waivers
            .iter()
            .find(|w| w.step == step.id && w.state == WaiverState::Applied);
        suite.add_test_case(test_case(&evidence.scenario.name, step, waiver));
    }
    report.add_test_suite(suite);
    report.to_string()
}

fn test_case(scenario: &str, step: &StepOutcome, waiver: Option<&WaiverRecord>) -> TestCase {
    let status = match step.status {
        StepStatus::Pass | StepStatus::Waived => TestCaseStatus::success(),
        StepStatus::Fail => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(step.summary.as_str())
                .set_type("FAIL")
                .set_description(failed_checks(step));
            status
        }
        StepStatus::NotRun | StepStatus::NotApplicable => {
            let mut status = TestCaseStatus::skipped();
            status
                .set_message(step.summary.as_str())
                .set_type(step.status.label());
            status
        }
    };
    let mut case = TestCase::new(format!("{}: {}", step.id, step.title), status);
    case.set_classname(format!("gonogo.{scenario}"))
        .set_time(Duration::from_millis(step.duration_ms))
        .set_assertions(step.checks.len())
        .add_property(Property::new("gonogo.status", step.status.label()))
        .add_property(Property::new(
            "gonogo.required",
            if step.required { "true" } else { "false" },
        ));
    let mut out = format!("{}: {}\n", step.status.label(), step.summary);
    if let Some(waiver) = waiver {
        case.add_properties([
            Property::new(
                "gonogo.waiver.step_status",
                waiver.step_status.map_or("", StepStatus::label),
            ),
            Property::new("gonogo.waiver.justification", waiver.justification.as_str()),
            Property::new("gonogo.waiver.approver", waiver.approver.as_str()),
            Property::new("gonogo.waiver.expires", waiver.expires.as_str()),
        ]);
        out.push_str(&format!(
            "waived by {} until {}: {}\n",
            waiver.approver, waiver.expires, waiver.justification
        ));
    }
    for check in &step.checks {
        out.push_str(&match check.result() {
            CheckResult::DoesNotDiscriminate => format!(
                "[{NOT_DISCRIMINATING}; not counted as passed] expected {}; observed {}; {}\n",
                check.expected,
                check.observed,
                check.healthy.as_ref().map_or("", |h| h.as_str())
            ),
            result => format!(
                "[{}] expected {}; observed {}\n",
                if result == CheckResult::Pass {
                    "pass"
                } else {
                    "FAIL"
                },
                check.expected,
                check.observed
            ),
        });
    }
    case.set_system_out(out);
    case
}

/// Every failed check, expected then observed.
fn failed_checks(step: &StepOutcome) -> String {
    let failed: Vec<String> = step
        .checks
        .iter()
        .filter(|c| c.failed())
        .map(|c| format!("expected: {}\nobserved: {}", c.expected, c.observed))
        .collect();
    if failed.is_empty() {
        step.summary.to_string()
    } else {
        failed.join("\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::sample::evidence as sample;

    #[test]
    fn counts_follow_the_step_statuses() {
        let evidence = sample();
        let xml = render(&evidence).unwrap();
        assert!(
            xml.contains(r#"tests="4" skipped="1" errors="0" failures="1""#),
            "{xml}"
        );
        assert!(xml.contains("<skipped"), "{xml}");
        assert!(xml.contains("gonogo.waiver.justification"), "{xml}");
    }

    #[test]
    fn markup_in_observations_is_escaped() {
        let xml = render(&sample()).unwrap();
        assert!(!xml.contains("<script>"), "{xml}");
        assert!(xml.contains("&lt;script&gt;"), "{xml}");
    }
}
