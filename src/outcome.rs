//! What the proof steps produced: typed, masked data ([`StepOutcome`],
//! [`FaultTimeline`] and their parts) that the verdict, the waivers and the
//! evidence renderers consume. A leaf: it depends only on `mask`, so every
//! stage can read it without depending on the steps that made it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::mask::{Masked, Masker, floor_boundary};

/// Lines kept from each end of a long output.
pub const EXCERPT_LINES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepStatus {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "FAIL")]
    Fail,
    /// A precondition of the step did not hold, so it proved nothing
    /// either way; the summary says which and what was observed.
    #[serde(rename = "NOT RUN")]
    NotRun,
    /// It failed or could not run, but a valid waiver covers it (see
    /// `waiver`); it does not block GO.
    #[serde(rename = "WAIVED")]
    Waived,
    /// The scenario declares that the step does not apply to this service
    /// (`[[not_applicable]]`, with a reason); it was not run, does not
    /// count as passed, and does not block GO.
    #[serde(rename = "NOT APPLICABLE")]
    NotApplicable,
}

impl StepStatus {
    pub fn label(self) -> &'static str {
        match self {
            StepStatus::Pass => "PASS",
            StepStatus::Fail => "FAIL",
            StepStatus::NotRun => "NOT RUN",
            StepStatus::Waived => "WAIVED",
            StepStatus::NotApplicable => "NOT APPLICABLE",
        }
    }
}

/// Output shown in full, or as its first and last lines when long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// It held, and it counts: `false` for a check that failed, and for
    /// one that held but does not discriminate.
    pub passed: bool,
    /// `false` when the check held on the failure but the healthy answer
    /// satisfies it too, so it could not have failed: it proves nothing,
    /// is neither PASS nor FAIL, and does not count as passed.
    #[serde(
        default = "discriminates",
        skip_serializing_if = "discriminates_is_true"
    )]
    pub discriminates: bool,
    /// What in the healthy answer satisfied it (masked), for a check that
    /// does not discriminate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<Masked>,
}

fn discriminates() -> bool {
    true
}

fn discriminates_is_true(d: &bool) -> bool {
    *d
}

/// How one check ended, as every artifact shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckResult {
    Pass,
    Fail,
    /// It held, but the healthy answer satisfies it too.
    DoesNotDiscriminate,
}

/// What every artifact says of a check that does not discriminate.
pub const NOT_DISCRIMINATING: &str = "does not discriminate: the healthy answer satisfies it too";

impl Check {
    pub fn result(&self) -> CheckResult {
        match (self.discriminates, self.passed) {
            (false, _) => CheckResult::DoesNotDiscriminate,
            (true, true) => CheckResult::Pass,
            (true, false) => CheckResult::Fail,
        }
    }

    /// Whether it failed (a check that does not discriminate did not).
    pub fn failed(&self) -> bool {
        self.result() == CheckResult::Fail
    }
}

impl CheckResult {
    pub fn label(self) -> &'static str {
        match self {
            CheckResult::Pass => "PASS",
            CheckResult::Fail => "FAIL",
            CheckResult::DoesNotDiscriminate => "DOES NOT DISCRIMINATE",
        }
    }
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
    /// What the step proves when it passes, in one plain sentence.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub claim: String,
    pub required: bool,
    pub status: StepStatus,
    /// One line saying why it passed or failed.
    pub summary: Masked,
    pub duration_ms: u64,
    /// When the step started and ended (RFC 3339, UTC, milliseconds): steps
    /// that run side by side overlap. Absent in evidence written before
    /// they were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    pub checks: Vec<Check>,
    pub actions: Vec<Action>,
    /// Service log lines captured during the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<Excerpt>,
    /// Response times, for steps that measure them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// What the dependencies' servers saw during the step, for a step that
    /// failed or did not run (servers gonogo owns only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependency_views: Vec<DependencyView>,
    /// Facts the step observed that are neither checks nor failures: what
    /// a fail-fast case's service connected to before it exited, or why
    /// its pass depends on the machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
}

/// A fact a step observed beside its checks. It never changes the status:
/// a reader weighs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// What it is about, e.g. the fail-fast case `REDIS_URL unset`.
    pub about: Masked,
    pub kind: NoteKind,
    /// gonogo's own words.
    pub text: Masked,
    /// The service's own output line the note rests on, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<Masked>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// What gonogo saw, e.g. the connections its proxies accepted.
    Observed,
    /// The step passed, but the pass depends on the machine it ran on
    /// (the service exited after a failed connection, not a check).
    DependsOnMachine,
}

/// One dependency server's view of a step's time window: its log lines, or
/// what it answered when gonogo asked (masked, bounded like any output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DependencyView {
    /// `Postgres`, `Redis`.
    pub dependency: String,
    /// Where it comes from: `server log`, `error replies`, `ACL LOG`,
    /// `INFO clients`.
    pub source: String,
    pub text: Excerpt,
    /// The other units that ran side by side during this step's window:
    /// the server served them too, so some lines may be theirs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alongside: Vec<String>,
}

/// The fault timeline of one dependency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultTimeline {
    pub dependency: String,
    pub events: Vec<TimelineEvent>,
}

/// One moment of a fault timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// RFC 3339, UTC, millisecond precision.
    pub at_utc: String,
    /// Milliseconds since the timeline's first event.
    pub offset_ms: u64,
    /// e.g. `fault down injected`, `first 503`, `fault cleared`,
    /// `first 200 again`.
    pub event: String,
    pub detail: Masked,
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
}
