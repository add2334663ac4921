//! `readiness-scorecard.json`: the [`Evidence`] in the readiness
//! programme's scorecard shape (seed 001), for a governance registry or a
//! deployment gate that reads `overall_passed`.
//!
//! Each proof step is one suite. `status` is `passed`, `failed`, `skipped`
//! (NOT RUN), `waived` or `not_applicable`; `duration` is in seconds. Steps that measure
//! response times add `p50_latency_ms`, `p95_latency_ms`, `p99_latency_ms`,
//! `max_latency_ms` and `latency_samples`; the others leave them out.
//! `release` and `owner` are `null` when neither the scenario's `[release]`
//! table nor `--release`/`--owner` gave them.
//!
//! Sample:
//!
//! ```text
//! {
//!   "release": "2025.10.01",
//!   "owner": "platform-readiness",
//!   "generated_at": "2025-10-01T12:00:09Z",
//!   "overall_passed": true,
//!   "verdict": "GO",
//!   "suites": [
//!     {"name": "ready-gate", "status": "passed", "duration": 1.2, ...},
//!     {"name": "negative-proof", "status": "waived", "duration": 0.8, ...}
//!   ],
//!   "waivers": [
//!     {"suite": "negative-proof", "justification": "…", "approver": "alice",
//!      "expires": "2025-10-31", "state": "applied"}
//!   ],
//!   ...
//! }
//! ```

use serde::{Deserialize, Serialize};

use super::Evidence;
use crate::mask::Masked;
use crate::outcome::StepStatus;
use crate::verdict::Verdict;
use crate::waiver::WaiverState;

/// Version of the scorecard's shape.
pub const SCORECARD_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scorecard {
    pub release: Option<Masked>,
    pub owner: Option<Masked>,
    /// When the run finished (RFC 3339, UTC).
    pub generated_at: String,
    /// True only for GO.
    pub overall_passed: bool,
    pub verdict: Verdict,
    pub suites: Vec<Suite>,
    pub waivers: Vec<ScorecardWaiver>,
    pub scenario: String,
    pub scenario_sha256: String,
    pub environment: String,
    /// The service's git SHA, `null` when unknown.
    pub git_sha: Option<String>,
    pub gonogo_version: String,
    pub schema_version: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SuiteStatus {
    Passed,
    Failed,
    Skipped,
    Waived,
    /// Declared not applicable by the scenario (`[[not_applicable]]`).
    #[serde(rename = "not_applicable")]
    NotApplicable,
}

impl From<StepStatus> for SuiteStatus {
    fn from(status: StepStatus) -> SuiteStatus {
        match status {
            StepStatus::Pass => SuiteStatus::Passed,
            StepStatus::Fail => SuiteStatus::Failed,
            StepStatus::NotRun => SuiteStatus::Skipped,
            StepStatus::Waived => SuiteStatus::Waived,
            StepStatus::NotApplicable => SuiteStatus::NotApplicable,
        }
    }
}

/// One proof step as a scorecard suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suite {
    /// The step id, e.g. `ready-gate`.
    pub name: String,
    pub title: String,
    pub status: SuiteStatus,
    pub required: bool,
    /// Seconds.
    pub duration: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_samples: Option<usize>,
    pub summary: Masked,
}

/// A waiver as the scorecard lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorecardWaiver {
    /// The suite (step id) it waives.
    pub suite: String,
    pub justification: Masked,
    pub approver: Masked,
    /// `YYYY-MM-DD`, inclusive.
    pub expires: String,
    pub state: WaiverState,
}

/// The scorecard for `evidence`.
pub fn scorecard(evidence: &Evidence) -> Scorecard {
    Scorecard {
        release: evidence.metadata.release.clone(),
        owner: evidence.metadata.owner.clone(),
        generated_at: evidence.metadata.finished_utc.clone(),
        overall_passed: evidence.verdict == Verdict::Go,
        verdict: evidence.verdict,
        suites: evidence
            .steps
            .iter()
            .map(|step| Suite {
                name: step.id.clone(),
                title: step.title.clone(),
                status: step.status.into(),
                required: step.required,
                duration: step.duration_ms as f64 / 1000.0,
                p50_latency_ms: step.latency.as_ref().map(|l| l.p50_ms),
                p95_latency_ms: step.latency.as_ref().map(|l| l.p95_ms),
                p99_latency_ms: step.latency.as_ref().map(|l| l.p99_ms),
                max_latency_ms: step.latency.as_ref().map(|l| l.max_ms),
                latency_samples: step.latency.as_ref().map(|l| l.samples),
                summary: step.summary.clone(),
            })
            .collect(),
        waivers: evidence
            .waivers
            .iter()
            .map(|w| ScorecardWaiver {
                suite: w.step.clone(),
                justification: w.justification.clone(),
                approver: w.approver.clone(),
                expires: w.expires.clone(),
                state: w.state,
            })
            .collect(),
        scenario: evidence.scenario.name.clone(),
        scenario_sha256: evidence.scenario.sha256.clone(),
        environment: evidence.metadata.environment.clone(),
        git_sha: evidence.metadata.git_sha.clone(),
        gonogo_version: evidence.gonogo_version.clone(),
        schema_version: SCORECARD_VERSION,
    }
}

/// `readiness-scorecard.json`'s bytes.
pub fn render(evidence: &Evidence) -> serde_json::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(&scorecard(evidence))?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::sample::evidence as sample;
    use crate::outcome::Latency;

    #[test]
    fn statuses_map_to_the_seed_vocabulary() {
        let card = scorecard(&sample());
        let statuses: Vec<SuiteStatus> = card.suites.iter().map(|s| s.status).collect();
        assert_eq!(
            statuses,
            [
                SuiteStatus::Passed,
                SuiteStatus::Failed,
                SuiteStatus::Skipped,
                SuiteStatus::Waived
            ]
        );
        assert!(!card.overall_passed);
        assert_eq!(card.release.unwrap().as_str(), "2026.03.01");
        assert_eq!(card.waivers[0].state, WaiverState::Applied);
    }

    #[test]
    fn latency_appears_only_when_measured() {
        let mut evidence = sample();
        let samples: Vec<std::time::Duration> =
            (1..=200).map(std::time::Duration::from_millis).collect();
        evidence.steps[0].latency = Latency::from_samples(&samples);
        let json: serde_json::Value = serde_json::from_slice(&render(&evidence).unwrap()).unwrap();
        assert_eq!(json["suites"][0]["p95_latency_ms"], 190.0);
        assert_eq!(json["suites"][0]["latency_samples"], 200);
        assert!(json["suites"][1].get("p95_latency_ms").is_none());
        assert_eq!(json["suites"][0]["duration"], 1.201);
    }
}
