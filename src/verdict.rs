//! Verdict stage: step outcomes in, one [`Verdict`] out.
//!
//! GO only when every required step passed or was waived (a valid waiver
//! has turned it into WAIVED; see `waiver`), leaving aside the steps the
//! scenario declares not applicable. A required step that failed makes
//! NO-GO; one that could not run (and did not fail) makes INCONCLUSIVE,
//! because an unproven contract is not a proven one; so does a run in which
//! every step was declared not applicable.

use serde::{Deserialize, Serialize};

use crate::exit_codes;
use crate::outcome::{StepOutcome, StepStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    #[serde(rename = "GO")]
    Go,
    #[serde(rename = "NO-GO")]
    NoGo,
    #[serde(rename = "INCONCLUSIVE")]
    Inconclusive,
}

impl Verdict {
    pub fn decide(steps: &[StepOutcome]) -> Verdict {
        let required = || {
            steps
                .iter()
                .filter(|s| s.required && s.status != StepStatus::NotApplicable)
        };
        if required().next().is_none() {
            Verdict::Inconclusive
        } else if required().any(|s| s.status == StepStatus::Fail) {
            Verdict::NoGo
        } else if required().any(|s| s.status == StepStatus::NotRun) {
            Verdict::Inconclusive
        } else {
            Verdict::Go
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Go => "GO",
            Verdict::NoGo => "NO-GO",
            Verdict::Inconclusive => "INCONCLUSIVE",
        }
    }

    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Go => exit_codes::GO,
            Verdict::NoGo => exit_codes::NO_GO,
            Verdict::Inconclusive => exit_codes::INCONCLUSIVE,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::Masker;
    use crate::plan::PlannedStep;
    use crate::steps::StepRecorder;

    fn step(number: u32, status: StepStatus) -> StepOutcome {
        let masker = Masker::new();
        let mut planned = PlannedStep::new(format!("s{number}"), "A step", "it holds", "nothing");
        planned.number = number;
        let mut recorder = StepRecorder::new(&masker, &planned);
        match status {
            StepStatus::NotApplicable => recorder.not_applicable("no strict mode"),
            other => {
                recorder.check("x", "x", other == StepStatus::Pass);
            }
        }
        recorder.finish()
    }

    #[test]
    fn not_applicable_steps_neither_pass_nor_block() {
        let steps = [
            step(1, StepStatus::Pass),
            step(2, StepStatus::NotApplicable),
        ];
        assert_eq!(Verdict::decide(&steps), Verdict::Go);
        assert_eq!(
            crate::evidence::Evidence::headline(&steps),
            "1 of 1 required steps passed; 1 not applicable: Step 2 (A step)"
        );
        let only = [step(1, StepStatus::NotApplicable)];
        assert_eq!(
            Verdict::decide(&only),
            Verdict::Inconclusive,
            "nothing was proved"
        );
        let failed = [
            step(1, StepStatus::Fail),
            step(2, StepStatus::NotApplicable),
        ];
        assert_eq!(Verdict::decide(&failed), Verdict::NoGo);
    }
}
