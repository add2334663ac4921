//! Builds one planned step's [`StepOutcome`], masking everything on the way
//! in.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::http::HttpExchange;
use crate::mask::Masker;
use crate::mask::encodings::ENCODINGS;
use crate::outcome::{
    Action, ActionKind, Check, Excerpt, Latency, NOT_DISCRIMINATING, Note, NoteKind, StepOutcome,
    StepStatus,
};
use crate::plan::{PlannedStep, Unmet};

/// The credential-hygiene check every step that captured the service's
/// responses or output gets (see [`StepRecorder`]).
pub const HYGIENE_EXPECTED: &str = "the service revealed no credential";

/// Builds a [`StepOutcome`], masking everything on the way in.
pub struct StepRecorder<'m> {
    masker: &'m Masker,
    step: PlannedStep,
    started: Instant,
    /// The wall clock at `started`, for the evidence's timestamps.
    started_wall: DateTime<Utc>,
    ended: Option<Instant>,
    checks: Vec<Check>,
    actions: Vec<Action>,
    log: Option<Excerpt>,
    latency: Option<Latency>,
    notes: Vec<Note>,
    skipped: Option<Skipped>,
    /// Whether the step captured anything the service produced.
    inspected: bool,
    /// Where the service revealed which credential in which encodings:
    /// (place, secret, encodings), names only, never values.
    revealed: Vec<(String, String, Vec<&'static str>)>,
    /// What the step stands on when some of its checks did not
    /// discriminate (e.g. the status change 200 → 503).
    basis: Option<String>,
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
            started_wall: Utc::now(),
            ended: None,
            checks: Vec::new(),
            actions: Vec::new(),
            log: None,
            latency: None,
            notes: Vec::new(),
            skipped: None,
            inspected: false,
            revealed: Vec::new(),
            basis: None,
        }
    }

    /// Look for every known secret, in every encoding, in `raw` text the
    /// service produced (before masking); `place` says where it was seen.
    fn inspect(&mut self, place: &str, raw: &str) {
        if raw.is_empty() {
            return;
        }
        self.inspected = true;
        for hit in self.masker.revealed_in(raw) {
            match self
                .revealed
                .iter_mut()
                .find(|(p, secret, _)| p == place && *secret == hit.secret)
            {
                Some((_, _, encodings)) if !encodings.contains(&hit.encoding) => {
                    encodings.push(hit.encoding);
                }
                Some(_) => {}
                None => self
                    .revealed
                    .push((place.to_string(), hit.secret, vec![hit.encoding])),
            }
        }
    }

    /// Start timing now (for steps recorded side by side).
    pub fn start_clock(&mut self) {
        self.started = Instant::now();
        self.started_wall = Utc::now();
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
            discriminates: true,
            healthy: None,
        });
        passed
    }

    /// A check about failure semantics, judged on the healthy answer too:
    /// `healthy` says what in the healthy answer satisfies it, or `None`
    /// when it does not hold there. One that held on both does not
    /// discriminate: it is recorded as such and does not count as passed.
    /// Gives whether it counts as passed.
    pub fn discriminating_check(
        &mut self,
        expected: impl AsRef<str>,
        observed: impl AsRef<str>,
        passed: bool,
        healthy: Option<String>,
    ) -> bool {
        let counted = self.check(expected, observed, passed);
        if let (true, Some(healthy), Some(check)) = (passed, healthy, self.checks.last_mut()) {
            check.passed = false;
            check.discriminates = false;
            check.healthy = Some(self.masker.mask(&healthy));
            return false;
        }
        counted
    }

    /// What the step stands on, said in its summary when some of its
    /// checks did not discriminate.
    pub fn basis(&mut self, basis: impl Into<String>) {
        self.basis = Some(basis.into());
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
        if exchange.status.is_some() {
            let headers: String = exchange
                .headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}\n"))
                .collect();
            self.inspect(&format!("`{label}` headers"), &headers);
            self.inspect(&format!("`{label}` body"), &exchange.body);
        }
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

    /// A command of the service's own tooling (a migration): its output is
    /// the service's, and is inspected for credentials.
    pub fn service_command(
        &mut self,
        label: &str,
        invocation: &str,
        exit_code: Option<i32>,
        output: &str,
        duration: Duration,
    ) {
        self.inspect(&format!("`{label}` output"), output);
        self.command(label, invocation, exit_code, output, duration);
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
        self.inspect(&format!("`{label}` output"), output);
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
        self.inspect("service log", text);
        if !text.trim().is_empty() {
            self.log = Some(Excerpt::of(self.masker, text));
        }
    }

    /// Record the response times the step measured.
    pub fn latency(&mut self, latency: Latency) {
        self.latency = Some(latency);
    }

    /// A fact about `about` beside the checks, resting on the service's
    /// output line `quote` when given (all masked); it never changes the
    /// status, but a pass with a [`NoteKind::DependsOnMachine`] note says
    /// so in its summary.
    pub fn note(&mut self, about: &str, kind: NoteKind, text: &str, quote: Option<&str>) {
        self.notes.push(Note {
            about: self.masker.mask(about),
            kind,
            text: self.masker.mask(text),
            quote: quote.map(|q| self.masker.mask(q)),
        });
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

    /// "The service revealed no credential": every step that captured what
    /// the service returned or printed gets it, when gonogo knows a secret
    /// (with none known it could not fail, so it would prove nothing).
    fn hygiene_check(&self) -> Option<Check> {
        let known = self.masker.table().len();
        if self.skipped.is_some() || !self.inspected || known == 0 {
            return None;
        }
        let observed = if self.revealed.is_empty() {
            format!(
                "none of the {known} known secrets, raw or encoded, in its responses, log or output"
            )
        } else {
            revelations(&self.revealed)
        };
        Some(Check {
            expected: self.masker.mask(HYGIENE_EXPECTED),
            observed: self.masker.mask(&observed),
            passed: self.revealed.is_empty(),
            discriminates: true,
            healthy: None,
        })
    }

    pub fn finish(mut self) -> StepOutcome {
        // The hygiene check joins the step's own checks, but a step must
        // have checked something of its own to pass.
        let own = self.checks.len();
        if let Some(hygiene) = self.hygiene_check() {
            self.checks.push(hygiene);
        }
        let (status, summary) = self.verdict(own);
        // A step that did not run took no time of its own.
        let ended = match status {
            StepStatus::NotRun | StepStatus::NotApplicable => self.started,
            _ => self.ended.unwrap_or_else(Instant::now),
        };
        let took = ended.duration_since(self.started);
        let ended_wall = self.started_wall + chrono::Duration::from_std(took).unwrap_or_default();
        let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        StepOutcome {
            number: self.step.number,
            id: self.step.id,
            title: self.step.title,
            claim: self.step.claim,
            required: true,
            status,
            summary: self.masker.mask(&summary),
            duration_ms: took.as_millis() as u64,
            started_at: Some(stamp(self.started_wall)),
            ended_at: Some(stamp(ended_wall)),
            checks: self.checks,
            actions: self.actions,
            log: self.log,
            latency: self.latency,
            dependency_views: Vec::new(),
            notes: self.notes,
        }
    }

    /// The status and the one line that says why.
    /// `own` is how many checks the step made itself (the hygiene check
    /// comes after them).
    fn verdict(&self, own: usize) -> (StepStatus, String) {
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
        if own == 0 {
            // A step that checked nothing proves nothing.
            return (StepStatus::Fail, "no expectation was checked".into());
        }
        if let Some(first) = self.checks.iter().find(|c| c.failed()) {
            return (
                StepStatus::Fail,
                format!("expected {}, observed {}", first.expected, first.observed),
            );
        }
        let idle: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| !c.discriminates)
            .map(|c| c.expected.as_str())
            .collect();
        // A step needs a check of its own that could have failed: one that
        // did not discriminate counts for nothing.
        if !self.checks[..own].iter().any(|c| c.passed) {
            return (
                StepStatus::Fail,
                format!(
                    "no check that could have failed passed; {}: {NOT_DISCRIMINATING}",
                    idle.join("; ")
                ),
            );
        }
        let passed = self.checks.iter().filter(|c| c.passed).count();
        let total = self.checks.len();
        let mut summary = format!("{passed} of {total} checks passed");
        if !idle.is_empty() {
            summary.push_str(&format!("; {} {NOT_DISCRIMINATING}", idle.join("; ")));
            if let Some(basis) = &self.basis {
                summary.push_str(&format!("; {basis}"));
            }
        }
        let on_machine: Vec<&str> = self
            .notes
            .iter()
            .filter(|note| note.kind == NoteKind::DependsOnMachine)
            .map(|note| note.about.as_str())
            .collect();
        if !on_machine.is_empty() {
            summary.push_str(&format!(
                "; this pass depends on the machine ({}: the service exited after a failed connection)",
                on_machine.join(", ")
            ));
        }
        (StepStatus::Pass, summary)
    }
}

/// "`GET /ready` body: Redis password (raw, base64); service log: …", at
/// most a few places, so an engineer sees what to fix.
fn revelations(revealed: &[(String, String, Vec<&'static str>)]) -> String {
    const PLACES: usize = 4;
    let mut places: Vec<(&str, Vec<String>)> = Vec::new();
    let rank = |e: &&str| ENCODINGS.iter().position(|x| x.name == *e);
    for (place, secret, encodings) in revealed {
        let mut encodings = encodings.clone();
        encodings.sort_by_key(rank);
        let entry = format!("{secret} ({})", encodings.join(", "));
        match places.iter_mut().find(|(p, _)| p == place) {
            Some((_, entries)) => entries.push(entry),
            None => places.push((place, vec![entry])),
        }
    }
    let mut parts: Vec<String> = places
        .iter()
        .take(PLACES)
        .map(|(place, entries)| format!("{place}: {}", entries.join(", ")))
        .collect();
    if places.len() > PLACES {
        parts.push(format!("{} more places", places.len() - PLACES));
    }
    format!(
        "{}; a service must never return or log a credential (mask it, e.g. redis://:***@host)",
        parts.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_that_does_not_discriminate_is_neither_pass_nor_fail() {
        let m = Masker::new();
        let step = PlannedStep::new("x", "X", "x holds", "nothing");
        let mut r = StepRecorder::new(&m, &step);
        r.check("ready answers 503", "first 503 after 90 ms", true);
        let counted = r.discriminating_check(
            "503 body names Redis",
            "body mentions Redis",
            true,
            Some("the healthy HTTP 200 body names Redis too".into()),
        );
        assert!(!counted);
        r.basis("the step stands on the status change 200 → 503 alone");
        let outcome = r.finish();
        assert_eq!(outcome.status, StepStatus::Pass);
        assert_eq!(
            outcome.summary.as_str(),
            "1 of 2 checks passed; 503 body names Redis does not discriminate: the healthy answer satisfies it too; the step stands on the status change 200 → 503 alone"
        );
        let idle = &outcome.checks[1];
        assert!(!idle.passed && !idle.discriminates && !idle.failed());

        // With nothing else that could have failed, the step proves nothing.
        let mut r = StepRecorder::new(&m, &step);
        r.discriminating_check(
            "body names Redis",
            "body mentions Redis",
            true,
            Some("…".into()),
        );
        assert_eq!(r.finish().status, StepStatus::Fail);

        // A check that failed is a FAIL, whatever the healthy answer says.
        let mut r = StepRecorder::new(&m, &step);
        r.check("HTTP 503", "HTTP 503", true);
        r.discriminating_check("body names Redis", "no", false, Some("…".into()));
        assert_eq!(r.finish().status, StepStatus::Fail);
    }

    #[test]
    fn a_pass_that_depends_on_the_machine_says_so() {
        let m = Masker::new();
        let step = PlannedStep::new("x", "X", "x holds", "nothing");
        let mut recorder = StepRecorder::new(&m, &step);
        recorder.check("exits", "exited", true);
        recorder.note("case a", NoteKind::Observed, "made no connection", None);
        recorder.note(
            "case b",
            NoteKind::DependsOnMachine,
            "fallback",
            Some("Connection refused"),
        );
        let outcome = recorder.finish();
        assert_eq!(outcome.status, StepStatus::Pass);
        assert_eq!(
            outcome.summary.as_str(),
            "1 of 1 checks passed; this pass depends on the machine (case b: the service exited after a failed connection)"
        );
        assert_eq!(outcome.notes.len(), 2);
    }

    #[test]
    fn a_step_without_checks_fails() {
        let m = Masker::new();
        let step = PlannedStep::new("x", "X", "x holds", "nothing");
        let outcome = StepRecorder::new(&m, &step).finish();
        assert_eq!(outcome.status, StepStatus::Fail);
    }
}
