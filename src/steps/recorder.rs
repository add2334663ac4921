//! Builds one planned step's [`StepOutcome`], masking everything on the way
//! in.

use std::time::{Duration, Instant};

use crate::http::HttpExchange;
use crate::mask::Masker;
use crate::outcome::{Action, ActionKind, Check, Excerpt, Latency, StepOutcome, StepStatus};
use crate::plan::{PlannedStep, Unmet};

/// Builds a [`StepOutcome`], masking everything on the way in.
pub struct StepRecorder<'m> {
    masker: &'m Masker,
    step: PlannedStep,
    started: Instant,
    ended: Option<Instant>,
    checks: Vec<Check>,
    actions: Vec<Action>,
    log: Option<Excerpt>,
    latency: Option<Latency>,
    skipped: Option<Skipped>,
}

/// Why a step was not run.
enum Skipped {
    /// A precondition did not hold.
    Unmet(Unmet),
    /// The scenario declares the step not applicable, for this reason.
    NotApplicable(String),
}

impl<'m> StepRecorder<'m> {
    /// Start recording `step` now.
    pub fn new(masker: &'m Masker, step: &PlannedStep) -> Self {
        StepRecorder {
            masker,
            step: step.clone(),
            started: Instant::now(),
            ended: None,
            checks: Vec::new(),
            actions: Vec::new(),
            log: None,
            latency: None,
            skipped: None,
        }
    }

    /// Start timing now (for steps recorded side by side).
    pub fn start_clock(&mut self) {
        self.started = Instant::now();
        self.ended = None;
    }

    /// Stop timing now; `finish` keeps this duration.
    pub fn stop_clock(&mut self) {
        self.ended = Some(Instant::now());
    }

    pub fn check(
        &mut self,
        expected: impl AsRef<str>,
        observed: impl AsRef<str>,
        passed: bool,
    ) -> bool {
        self.checks.push(Check {
            expected: self.masker.mask(expected.as_ref()),
            observed: self.masker.mask(observed.as_ref()),
            passed,
        });
        passed
    }

    /// A command run to completion (a migration, `current`).
    pub fn command(
        &mut self,
        label: &str,
        invocation: &str,
        exit_code: Option<i32>,
        output: &str,
        duration: Duration,
    ) {
        self.run(
            ActionKind::Command,
            label,
            invocation,
            exit_code,
            output,
            duration,
        );
    }

    pub fn request(&mut self, label: &str, exchange: &HttpExchange) {
        self.actions.push(Action {
            kind: ActionKind::Request,
            label: self.masker.mask(label),
            invocation: self.masker.mask(&exchange.curl()),
            exit_code: None,
            http_status: exchange.status,
            output: Excerpt::of(self.masker, &exchange.transcript()),
            duration_ms: exchange.elapsed.as_millis() as u64,
        });
    }

    /// A process gonogo started and watched (a service instance, a case).
    pub fn process(
        &mut self,
        label: &str,
        invocation: &str,
        exit_code: Option<i32>,
        output: &str,
        duration: Duration,
    ) {
        self.run(
            ActionKind::Process,
            label,
            invocation,
            exit_code,
            output,
            duration,
        );
    }

    fn run(
        &mut self,
        kind: ActionKind,
        label: &str,
        invocation: &str,
        exit_code: Option<i32>,
        output: &str,
        duration: Duration,
    ) {
        self.actions.push(Action {
            kind,
            label: self.masker.mask(label),
            invocation: self.masker.mask(invocation),
            exit_code,
            http_status: None,
            output: Excerpt::of(self.masker, output),
            duration_ms: duration.as_millis() as u64,
        });
    }

    pub fn log(&mut self, text: &str) {
        if !text.trim().is_empty() {
            self.log = Some(Excerpt::of(self.masker, text));
        }
    }

    /// Record the response times the step measured.
    pub fn latency(&mut self, latency: Latency) {
        self.latency = Some(latency);
    }

    /// A precondition of the step did not hold: it is NOT RUN, with the
    /// precondition and what was observed, whatever it recorded so far.
    pub fn unmet(&mut self, unmet: Unmet) {
        self.skipped = Some(Skipped::Unmet(unmet));
    }

    /// The scenario declares the step not applicable (`[[not_applicable]]`)
    /// for `reason`: it is NOT APPLICABLE, whatever it recorded so far.
    pub fn not_applicable(&mut self, reason: &str) {
        self.skipped = Some(Skipped::NotApplicable(reason.to_string()));
    }

    pub fn finish(self) -> StepOutcome {
        let (status, summary) = self.verdict();
        // A step that did not run took no time of its own.
        let ended = match status {
            StepStatus::NotRun | StepStatus::NotApplicable => self.started,
            _ => self.ended.unwrap_or_else(Instant::now),
        };
        StepOutcome {
            number: self.step.number,
            id: self.step.id,
            title: self.step.title,
            claim: self.step.claim,
            required: true,
            status,
            summary: self.masker.mask(&summary),
            duration_ms: ended.duration_since(self.started).as_millis() as u64,
            checks: self.checks,
            actions: self.actions,
            log: self.log,
            latency: self.latency,
        }
    }

    /// The status and the one line that says why.
    fn verdict(&self) -> (StepStatus, String) {
        match &self.skipped {
            Some(Skipped::Unmet(unmet)) => return (StepStatus::NotRun, unmet.to_string()),
            Some(Skipped::NotApplicable(reason)) => {
                return (
                    StepStatus::NotApplicable,
                    format!("declared not applicable: {reason}"),
                );
            }
            None => {}
        }
        if self.checks.is_empty() {
            // A step that checked nothing proves nothing.
            return (StepStatus::Fail, "no expectation was checked".into());
        }
        match self.checks.iter().find(|c| !c.passed) {
            Some(first) => (
                StepStatus::Fail,
                format!("expected {}, observed {}", first.expected, first.observed),
            ),
            None => (
                StepStatus::Pass,
                format!(
                    "{} of {} checks passed",
                    self.checks.len(),
                    self.checks.len()
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_without_checks_fails() {
        let m = Masker::new();
        let step = PlannedStep::new("x", "X", "x holds", "nothing");
        let outcome = StepRecorder::new(&m, &step).finish();
        assert_eq!(outcome.status, StepStatus::Fail);
    }
}
