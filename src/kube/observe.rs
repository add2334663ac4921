//! What the proof observed, as the probe judges need it: timed answers per
//! path during each fault window, the cold start, SIGTERM to exit, healthy
//! latency. Plain data: the steps record it, [`mod@super::judge`] reads it.

use std::collections::BTreeMap;
use std::time::Duration;

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An HTTP status.
    Status(u16),
    /// No answer within gonogo's own deadline for the request.
    TimedOut,
    /// No HTTP answer at all (refused, reset), with why.
    Failed(String),
}

/// One timed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// When the request was sent, from the start of its window (fault
    /// injection, or process start).
    pub at: Duration,
    pub reply: Reply,
    /// How long the answer took (up to the deadline when it timed out).
    pub latency: Duration,
}

impl Answer {
    /// When the answer arrived, from the start of its window.
    pub fn done(&self) -> Duration {
        self.at + self.latency
    }

    /// Whether the kubelet would count it as a success: a status from 200
    /// to 399 received within `timeout` (the probe's `timeoutSeconds`).
    pub fn kubelet_success(&self, timeout: Duration) -> bool {
        matches!(self.reply, Reply::Status(s) if (200..400).contains(&s)) && self.latency <= timeout
    }

    /// The answer as the kubelet would see it, e.g. `503 in 4 ms`,
    /// `200 after 1.2 s, past timeoutSeconds 1`.
    pub fn kubelet_view(&self, timeout: Duration) -> String {
        let took = super::judge::secs(self.latency);
        match &self.reply {
            Reply::Status(s) if self.latency > timeout => format!(
                "{s} after {took}, past timeoutSeconds {}",
                timeout.as_secs()
            ),
            Reply::Status(s) => format!("{s} in {took}"),
            Reply::TimedOut => format!("no answer within {took}"),
            Reply::Failed(why) => format!("no answer ({why})"),
        }
    }
}

/// One fault gonogo injected, and how the probed paths answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultWindow {
    /// Human name of the dependency, e.g. `Redis`.
    pub dependency: String,
    /// The fault, e.g. `down` or `blackhole`.
    pub fault: String,
    /// When the fault was cleared, from its injection.
    pub cleared_at: Duration,
    /// Answers per URL path, in order, offsets from the injection; those
    /// after `cleared_at` show the recovery.
    pub answers: BTreeMap<String, Vec<Answer>>,
}

impl FaultWindow {
    /// `Redis down`, for messages.
    pub fn label(&self) -> String {
        format!("{} {}", self.dependency, self.fault)
    }
}

/// From process start (on healthy dependencies) until ready answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdStart {
    /// Per path polled from process start: when it first answered with a
    /// status from 200 to 399, or `None` when not within `watched`.
    pub first_success: BTreeMap<String, Option<Duration>>,
    /// When the service first answered HTTP at all (its port listens).
    pub first_answer: Option<Duration>,
    /// How long gonogo watched.
    pub watched: Duration,
}

/// SIGTERM to exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    Exited {
        after: Duration,
    },
    /// Still running when gonogo stopped waiting (and killed it).
    StillRunning {
        waited: Duration,
    },
}

/// Everything the probe judges read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observations {
    /// The scenario's ready path (the proven readiness endpoint).
    pub ready_path: String,
    /// The scenario's live path.
    pub live_path: String,
    /// Answers per path while every dependency was up.
    pub healthy: BTreeMap<String, Vec<Answer>>,
    /// Healthy p99 latency per path (the latency step's figure).
    pub healthy_p99: BTreeMap<String, Duration>,
    pub cold_start: Option<ColdStart>,
    pub shutdown: Option<Shutdown>,
    pub faults: Vec<FaultWindow>,
}
