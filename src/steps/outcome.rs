//! What one proof step produced: typed, masked data that the verdict and
//! the evidence renderers consume.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::http::HttpExchange;
use crate::mask::{Masked, Masker};

/// Lines kept from each end of a long output.
pub const EXCERPT_LINES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepStatus {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "FAIL")]
    Fail,
    /// The step could not run here (see `reason`).
    #[serde(rename = "NOT RUN")]
    NotRun,
}

impl StepStatus {
    pub fn label(self) -> &'static str {
        match self {
            StepStatus::Pass => "PASS",
            StepStatus::Fail => "FAIL",
            StepStatus::NotRun => "NOT RUN",
        }
    }
}

/// Output shown in full, or as its first and last lines when long.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Excerpt {
    /// The whole text, or its first [`EXCERPT_LINES`] lines.
    pub head: Masked,
    /// The last [`EXCERPT_LINES`] lines, when the text was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<Masked>,
    pub total_lines: usize,
    pub omitted_lines: usize,
}

impl Excerpt {
    pub fn of(masker: &Masker, text: &str) -> Excerpt {
        let text = text.trim_end_matches('\n');
        let lines: Vec<&str> = if text.is_empty() {
            Vec::new()
        } else {
            text.lines().collect()
        };
        let total = lines.len();
        if total <= 2 * EXCERPT_LINES {
            return Excerpt {
                head: masker.mask(text),
                tail: None,
                total_lines: total,
                omitted_lines: 0,
            };
        }
        Excerpt {
            head: masker.mask(&lines[..EXCERPT_LINES].join("\n")),
            tail: Some(masker.mask(&lines[total - EXCERPT_LINES..].join("\n"))),
            total_lines: total,
            omitted_lines: total - 2 * EXCERPT_LINES,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.tail.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Command,
    Request,
    Process,
}

/// One thing a step did: a command it ran or a request it sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub kind: ActionKind,
    /// Short name, e.g. `GET /ready` or `alembic upgrade head`.
    pub label: Masked,
    /// What a human would type to repeat it (masked).
    pub invocation: Masked,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    pub output: Excerpt,
    pub duration_ms: u64,
}

/// One expectation and what was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub expected: Masked,
    pub observed: Masked,
    pub passed: bool,
}

/// The evidence for one step of the proof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    pub number: u32,
    /// Stable identifier, e.g. `ready-gate`.
    pub id: String,
    pub title: String,
    pub required: bool,
    pub status: StepStatus,
    /// One line saying why it passed or failed.
    pub summary: Masked,
    pub duration_ms: u64,
    pub checks: Vec<Check>,
    pub actions: Vec<Action>,
    /// Service log lines captured during the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<Excerpt>,
}

/// Builds a [`StepOutcome`], masking everything on the way in.
pub struct StepRecorder<'m> {
    masker: &'m Masker,
    number: u32,
    id: &'static str,
    title: &'static str,
    started: Instant,
    checks: Vec<Check>,
    actions: Vec<Action>,
    log: Option<Excerpt>,
    not_run: Option<String>,
}

impl<'m> StepRecorder<'m> {
    pub fn new(masker: &'m Masker, number: u32, id: &'static str, title: &'static str) -> Self {
        StepRecorder {
            masker,
            number,
            id,
            title,
            started: Instant::now(),
            checks: Vec::new(),
            actions: Vec::new(),
            log: None,
            not_run: None,
        }
    }

    pub fn masker(&self) -> &Masker {
        self.masker
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

    pub fn command(
        &mut self,
        label: &str,
        invocation: &str,
        exit_code: Option<i32>,
        output: &str,
        duration: Duration,
    ) {
        self.actions.push(Action {
            kind: ActionKind::Command,
            label: self.masker.mask(label),
            invocation: self.masker.mask(invocation),
            exit_code,
            http_status: None,
            output: Excerpt::of(self.masker, output),
            duration_ms: duration.as_millis() as u64,
        });
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

    pub fn process(
        &mut self,
        label: &str,
        invocation: &str,
        exit_code: Option<i32>,
        output: &str,
        duration: Duration,
    ) {
        self.actions.push(Action {
            kind: ActionKind::Process,
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
            id: self.id.to_string(),
            title: self.title.to_string(),
            required: true,
            status,
            summary,
            duration_ms: self.started.elapsed().as_millis() as u64,
            checks: self.checks,
            actions: self.actions,
            log: self.log,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_output_keeps_first_and_last_ten_lines() {
        let text: String = (1..=25).map(|i| format!("line {i}\n")).collect();
        let e = Excerpt::of(&Masker::new(), &text);
        assert_eq!(e.total_lines, 25);
        assert_eq!(e.omitted_lines, 5);
        assert!(e.head.as_str().starts_with("line 1\n"));
        assert!(e.head.as_str().ends_with("line 10"));
        assert_eq!(
            e.tail.as_ref().unwrap().as_str().lines().next(),
            Some("line 16")
        );
    }

    #[test]
    fn a_step_without_checks_fails() {
        let m = Masker::new();
        let outcome = StepRecorder::new(&m, 1, "x", "X").finish();
        assert_eq!(outcome.status, StepStatus::Fail);
    }
}
