//! Waivers stage: the scenario's signed-off exceptions ([`Waiver`]) and the
//! step outcomes in, the outcomes with waived steps marked
//! [`StepStatus::Waived`] and one [`WaiverRecord`] per waiver out.
//!
//! A waiver is an attestation (as in InSpec): a step id, a justification,
//! an approver and an expiry date. It turns a FAIL or NOT RUN step into
//! WAIVED, which does not block GO. It is valid up to and including its
//! expiry date (UTC); after that it counts as no waiver at all, and the
//! evidence says so. A waiver for a step that passed is recorded as unused;
//! one that names no step of the run is recorded as unmatched, because step
//! ids come from whichever steps the run has and are not fixed here.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::mask::{Masked, Masker};
use crate::outcome::{StepOutcome, StepStatus};
use crate::scenario::{Scenario, Waiver};

/// What became of a waiver in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaiverState {
    /// The step failed or did not run, and the waiver turned it into WAIVED.
    Applied,
    /// The step failed or did not run, but the waiver had expired, so the
    /// step keeps its status.
    Expired,
    /// The step passed; the waiver was not needed.
    Unused,
    /// No step of this run has the waiver's id.
    Unmatched,
}

impl WaiverState {
    pub fn label(self) -> &'static str {
        match self {
            WaiverState::Applied => "applied",
            WaiverState::Expired => "expired",
            WaiverState::Unused => "unused",
            WaiverState::Unmatched => "unmatched",
        }
    }
}

/// A waiver as the evidence records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaiverRecord {
    pub step: String,
    pub justification: Masked,
    pub approver: Masked,
    /// `YYYY-MM-DD`.
    pub expires: String,
    pub state: WaiverState,
    /// The status the step had before the waiver was considered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_status: Option<StepStatus>,
}

/// What `waiver` does to a step that ended with `status`, as of `today`.
fn decide(status: StepStatus, waiver: &Waiver, today: NaiveDate) -> WaiverState {
    match status {
        StepStatus::Pass | StepStatus::Waived | StepStatus::NotApplicable => WaiverState::Unused,
        StepStatus::Fail | StepStatus::NotRun if today > waiver.expires => WaiverState::Expired,
        StepStatus::Fail | StepStatus::NotRun => WaiverState::Applied,
    }
}

/// The status `step` will have once `waivers` are applied as of `today`:
/// what the live progress shows as each step finishes.
pub fn shown_status(step: &StepOutcome, waivers: &[Waiver], today: NaiveDate) -> StepStatus {
    match waivers.iter().find(|w| w.step == step.id) {
        Some(w) if decide(step.status, w, today) == WaiverState::Applied => StepStatus::Waived,
        _ => step.status,
    }
}

/// Apply `waivers` to `steps` as of `today` (UTC), returning one record per
/// waiver in scenario order.
pub fn apply(
    steps: &mut [StepOutcome],
    waivers: &[Waiver],
    today: NaiveDate,
    masker: &Masker,
) -> Vec<WaiverRecord> {
    waivers
        .iter()
        .map(|waiver| {
            let step = steps.iter_mut().find(|s| s.id == waiver.step);
            let step_status = step.as_ref().map(|s| s.status);
            let state = match step {
                None => WaiverState::Unmatched,
                Some(step) => {
                    let state = decide(step.status, waiver, today);
                    if state == WaiverState::Applied {
                        step.status = StepStatus::Waived;
                    }
                    state
                }
            };
            WaiverRecord {
                step: waiver.step.clone(),
                justification: masker.mask(&waiver.justification),
                approver: masker.mask(&waiver.approver),
                expires: waiver.expires.format("%Y-%m-%d").to_string(),
                state,
                step_status,
            }
        })
        .collect()
}

/// One warning per waiver of `scenario` that has expired by `today` (UTC),
/// with its file and line: what `gonogo validate` prints.
pub fn expired(scenario: &Scenario, today: NaiveDate) -> Vec<String> {
    scenario
        .waivers
        .iter()
        .filter(|w| today > w.expires)
        .map(|w| {
            format!(
                "{}:{}: the waiver for `{}` expired on {}; it counts as no waiver, so the step blocks GO if it fails or does not run",
                scenario.path.display(),
                w.line,
                w.step,
                w.expires.format("%Y-%m-%d")
            )
        })
        .collect()
}

/// One line for each waiver the operator should look at after the run:
/// unmatched ones (no step of this run has the id). Expired ones are
/// warned about before the run, by [`expired`].
pub fn warnings(records: &[WaiverRecord]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match r.state {
            WaiverState::Unmatched => Some(format!(
                "the waiver for `{}` matches no step of this run; check the step id",
                r.step
            )),
            WaiverState::Applied | WaiverState::Unused | WaiverState::Expired => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::StepRecorder;

    fn step(id: &'static str, passed: bool) -> StepOutcome {
        let masker = Masker::new();
        let planned = crate::plan::PlannedStep::new(id, "A step", "it holds", "nothing");
        let mut recorder = StepRecorder::new(&masker, &planned);
        recorder.check("200", if passed { "200" } else { "500" }, passed);
        recorder.finish()
    }

    fn waiver(step: &str, expires: &str) -> Waiver {
        Waiver {
            step: step.into(),
            justification: "known issue, fix in 1.2".into(),
            approver: "alice".into(),
            expires: NaiveDate::parse_from_str(expires, "%Y-%m-%d").unwrap(),
            line: 1,
            span: 0..0,
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
    }

    #[test]
    fn a_valid_waiver_turns_a_failure_into_waived() {
        let mut steps = vec![step("a", false)];
        let records = apply(
            &mut steps,
            &[waiver("a", "2026-03-01")],
            today(),
            &Masker::new(),
        );
        assert_eq!(steps[0].status, StepStatus::Waived);
        assert_eq!(records[0].state, WaiverState::Applied);
        assert_eq!(records[0].step_status, Some(StepStatus::Fail));
        assert_eq!(
            crate::verdict::Verdict::decide(&steps),
            crate::verdict::Verdict::Go
        );
        assert!(warnings(&records).is_empty());
    }

    #[test]
    fn an_expired_waiver_counts_as_none() {
        let mut steps = vec![step("a", false)];
        let records = apply(
            &mut steps,
            &[waiver("a", "2026-02-28")],
            today(),
            &Masker::new(),
        );
        assert_eq!(steps[0].status, StepStatus::Fail);
        assert_eq!(records[0].state, WaiverState::Expired);
        assert_eq!(
            crate::verdict::Verdict::decide(&steps),
            crate::verdict::Verdict::NoGo
        );
        assert!(warnings(&records).is_empty(), "warned before the run");
    }

    #[test]
    fn passing_and_unknown_steps_are_recorded_not_changed() {
        let mut steps = vec![step("a", true)];
        let records = apply(
            &mut steps,
            &[waiver("a", "2030-01-01"), waiver("nope", "2030-01-01")],
            today(),
            &Masker::new(),
        );
        assert_eq!(steps[0].status, StepStatus::Pass);
        assert_eq!(records[0].state, WaiverState::Unused);
        assert_eq!(records[1].state, WaiverState::Unmatched);
        assert_eq!(records[1].step_status, None);
    }

    #[test]
    fn waiver_text_is_masked() {
        let mut masker = Masker::new();
        masker.add_secret("hunter22");
        let mut steps = vec![step("a", false)];
        let mut w = waiver("a", "2030-01-01");
        w.justification = "password hunter22 rotated".into();
        let records = apply(&mut steps, &[w], today(), &masker);
        assert!(!records[0].justification.as_str().contains("hunter22"));
    }
}
