//! Verdict stage: step outcomes in, one [`Verdict`] out.
//!
//! GO only when every required step passed or was waived (a valid waiver
//! has turned it into WAIVED; see `waiver`). A required step that failed
//! makes NO-GO; one that could not run (and did not fail) makes
//! INCONCLUSIVE, because an unproven contract is not a proven one.

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
        let required = || steps.iter().filter(|s| s.required);
        if steps.is_empty() {
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
