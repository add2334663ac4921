//! Builds one step's [`StepOutcome`], masking everything on the way in.

use std::time::{Duration, Instant};

use crate::http::HttpExchange;
use crate::mask::Masker;
use crate::outcome::{Action, ActionKind, Check, Excerpt, Latency, StepOutcome, StepStatus};

/// Builds a [`StepOutcome`], masking everything on the way in.
pub struct StepRecorder<'m> {
    masker: &'m Masker,
    number: u32,
    id: String,
    title: String,
    started: Instant,
    ended: Option<Instant>,
    checks: Vec<Check>,
    actions: Vec<Action>,
    log: Option<Excerpt>,
    latency: Option<Latency>,
    not_run: Option<String>,
}

impl<'m> StepRecorder<'m> {
    pub fn new(
        masker: &'m Masker,
        number: u32,
        id: impl Into<String>,
        title: impl Into<String>,
    ) -> Self {
        StepRecorder {
            masker,
            number,
            id: id.into(),
            title: title.into(),
            started: Instant::now(),
            ended: None,
            checks: Vec::new(),
            actions: Vec::new(),
            log: None,
            latency: None,
            not_run: None,
        }
    }

    pub fn masker(&self) -> &Masker {
        self.masker
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

    /// Mark the step as impossible to run here, with the reason.
    pub fn not_run(&mut self, reason: impl Into<String>) {
        self.not_run = Some(reason.into());
    }

    pub fn finish(self) -> StepOutcome {
        let failed: Vec<&Check> = self.checks.iter().filter(|c| !c.passed).collect();
        let (status, summary) = if let Some(reason) = &self.not_run {
            (StepStatus::NotRun, self.masker.mask(reason))
        } else if self.checks.is_empty() {
            // A step that checked nothing proves nothing.
            (
                StepStatus::Fail,
                self.masker.mask("no expectation was checked"),
            )
        } else if let Some(first) = failed.first() {
            (
                StepStatus::Fail,
                self.masker.mask(&format!(
                    "expected {}, observed {}",
                    first.expected, first.observed
                )),
            )
        } else {
            (
                StepStatus::Pass,
                self.masker.mask(&format!(
                    "{} of {} checks passed",
                    self.checks.len(),
                    self.checks.len()
                )),
            )
        };
        StepOutcome {
            number: self.number,
            id: self.id,
            title: self.title,
            required: true,
            status,
            summary,
            duration_ms: self
                .ended
                .unwrap_or_else(Instant::now)
                .duration_since(self.started)
                .as_millis() as u64,
            checks: self.checks,
            actions: self.actions,
            log: self.log,
            latency: self.latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_without_checks_fails() {
        let m = Masker::new();
        let outcome = StepRecorder::new(&m, 1, "x", "X").finish();
        assert_eq!(outcome.status, StepStatus::Fail);
    }
}
