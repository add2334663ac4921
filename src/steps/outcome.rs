//! What one proof step produced: typed, masked data that the verdict and
//! the evidence renderers consume.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::http::HttpExchange;
use crate::mask::encodings::ENCODINGS;
use crate::mask::{Masked, Masker, floor_boundary};

/// Lines kept from each end of a long output.
pub const EXCERPT_LINES: usize = 10;

/// The credential-hygiene check every step that captured the service's
/// responses or output gets (see [`StepRecorder`]).
pub const HYGIENE_EXPECTED: &str = "the service revealed no credential";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepStatus {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "FAIL")]
    Fail,
    /// The step could not run here (see `reason`).
    #[serde(rename = "NOT RUN")]
    NotRun,
    /// It failed or could not run, but a valid waiver covers it (see
    /// `waiver`); it does not block GO.
    #[serde(rename = "WAIVED")]
    Waived,
}

impl StepStatus {
    pub fn label(self) -> &'static str {
        match self {
            StepStatus::Pass => "PASS",
            StepStatus::Fail => "FAIL",
            StepStatus::NotRun => "NOT RUN",
            StepStatus::Waived => "WAIVED",
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
    /// Whether bytes were left out: a body or log past its cap, a line past
    /// its limit (each marked where it was cut), or an excerpt past
    /// [`EXCERPT_BYTES`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Bytes of masked text kept in `head` and `tail`, when truncated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_bytes: Option<u64>,
}

/// Most bytes kept of one text (half from its start, half from its end), so
/// a service that floods its output cannot flood the report.
pub const EXCERPT_BYTES: usize = 64 * 1024;

impl Excerpt {
    /// Mask `text` whole, then keep its first and last lines (and at most
    /// [`EXCERPT_BYTES`]): masking before cutting means a cut can never
    /// split a secret.
    pub fn of(masker: &Masker, text: &str) -> Excerpt {
        let masked = masker.mask(text.trim_end_matches('\n'));
        let all = masked.as_str();
        let lines: Vec<&str> = if all.is_empty() {
            Vec::new()
        } else {
            all.lines().collect()
        };
        let total = lines.len();
        let marked = all.contains(crate::mask::CUT_TAG);
        let half = EXCERPT_BYTES / 2;
        if total <= 2 * EXCERPT_LINES && all.len() <= EXCERPT_BYTES {
            return Excerpt {
                head: masked.clone(),
                tail: None,
                total_lines: total,
                omitted_lines: 0,
                truncated: marked,
                kept_bytes: marked.then_some(all.len() as u64),
            };
        }
        let long = total > 2 * EXCERPT_LINES;
        // Whole lines first (the first and last ten), then the byte budget.
        let (line_head, line_tail) = if long {
            (
                line_end(all, EXCERPT_LINES),
                line_start_from_end(all, EXCERPT_LINES),
            )
        } else {
            (all.len(), all.len())
        };
        let head_end = line_head.min(floor_boundary(all, half));
        let byte_tail = ceil_boundary(all, all.len().saturating_sub(half));
        let tail_start = if long {
            line_tail.max(byte_tail)
        } else {
            byte_tail
        }
        .max(head_end);
        let kept = head_end + (all.len() - tail_start);
        let whole_lines = line_head + (all.len() - line_tail);
        let truncated = marked || kept < whole_lines;
        Excerpt {
            head: masked.part(|t| &t[..head_end]),
            tail: (tail_start < all.len()).then(|| masked.part(|t| &t[tail_start..])),
            total_lines: total,
            omitted_lines: if long { total - 2 * EXCERPT_LINES } else { 0 },
            truncated,
            kept_bytes: truncated.then_some(kept as u64),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.tail.is_none()
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

/// Byte offset just past the first `n` lines (without the last newline).
fn line_end(text: &str, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    text.match_indices('\n')
        .nth(n - 1)
        .map_or(text.len(), |(i, _)| i)
}

/// Byte offset where the last `n` lines start.
fn line_start_from_end(text: &str, n: usize) -> usize {
    if n == 0 {
        return text.len();
    }
    text.rmatch_indices('\n')
        .nth(n - 1)
        .map_or(0, |(i, _)| i + 1)
}

fn ceil_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
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

/// Response-time figures for a step that measures them (a load or latency
/// step). The scorecard reports them as `p95_latency_ms` and friends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub samples: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    #[serde(default)]
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Nearest-rank percentiles of `samples`; `None` when there are none.
    pub fn from_samples(samples: &[Duration]) -> Option<Latency> {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let rank = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
        (!ms.is_empty()).then(|| Latency {
            samples: ms.len(),
            p50_ms: rank(0.50),
            p95_ms: rank(0.95),
            p99_ms: rank(0.99),
            max_ms: ms[ms.len() - 1],
        })
    }
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
    /// Response times, for steps that measure them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
}

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
    /// Whether the step captured anything the service produced.
    inspected: bool,
    /// Where the service revealed which credential in which encodings:
    /// (place, secret, encodings), names only, never values.
    revealed: Vec<(String, String, Vec<&'static str>)>,
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
            inspected: false,
            revealed: Vec::new(),
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

    /// Mark the step as impossible to run here, with the reason.
    pub fn not_run(&mut self, reason: impl Into<String>) {
        self.not_run = Some(reason.into());
    }

    /// "The service revealed no credential": every step that captured what
    /// the service returned or printed gets it, when gonogo knows a secret
    /// (with none known it could not fail, so it would prove nothing).
    fn hygiene_check(&self) -> Option<Check> {
        let known = self.masker.table().len();
        if self.not_run.is_some() || !self.inspected || known == 0 {
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
        })
    }

    pub fn finish(mut self) -> StepOutcome {
        let checked_something = !self.checks.is_empty();
        if let Some(hygiene) = self.hygiene_check() {
            self.checks.push(hygiene);
        }
        let failed: Vec<&Check> = self.checks.iter().filter(|c| !c.passed).collect();
        let (status, summary) = if let Some(reason) = &self.not_run {
            (StepStatus::NotRun, self.masker.mask(reason))
        } else if !checked_something {
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
    fn latency_percentiles_use_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let latency = Latency::from_samples(&samples).unwrap();
        assert_eq!(latency.samples, 100);
        assert_eq!(latency.p50_ms, 50.0);
        assert_eq!(latency.p95_ms, 95.0);
        assert_eq!(latency.max_ms, 100.0);
        assert!(Latency::from_samples(&[]).is_none());
    }

    #[test]
    fn a_step_without_checks_fails() {
        let m = Masker::new();
        let outcome = StepRecorder::new(&m, 1, "x", "X").finish();
        assert_eq!(outcome.status, StepStatus::Fail);
    }
}
