//! Evidence stage: the run's typed, masked record, and its renderers.
//!
//! [`Evidence`] is the one model every artifact is rendered from
//! (`report.md` through a minijinja template, `evidence.json` by serde,
//! `junit.xml`, `readiness-scorecard.json`, the CI step summary and the
//! integrity `manifest.json`). It holds only [`Masked`] text and values
//! gonogo computed itself.

pub mod appendix;
pub mod bundle;
pub mod claims;
pub mod junit;
pub mod manifest;
pub mod markdown;
#[cfg(test)]
mod no_leaks;
pub mod out_dir;
#[cfg(test)]
pub(crate) mod sample;
pub mod scorecard;
pub mod summary;
pub mod write;

use serde::{Deserialize, Serialize};

use crate::mask::Masked;
use crate::steps::{StepOutcome, StepStatus};
use crate::verdict::Verdict;
use crate::waiver::WaiverRecord;

/// Version of the `evidence.json` shape.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    pub schema_version: u32,
    pub gonogo_version: String,
    pub verdict: Verdict,
    /// e.g. "4 of 4 required steps passed".
    pub headline: String,
    pub scenario: ScenarioInfo,
    pub metadata: Metadata,
    pub dependencies: Vec<DependencyInfo>,
    pub steps: Vec<StepOutcome>,
    /// What happened when, during the runtime fault steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timelines: Vec<FaultTimeline>,
    /// Every waiver the scenario declared and what became of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waivers: Vec<WaiverRecord>,
    /// Which variables the service received and which secrets were masked
    /// (names only).
    #[serde(default)]
    pub masking: crate::mask::learn::MaskingInfo,
    /// The key id that signs the bundle's attestation, when the run signs
    /// it (`--sign-key`); the report says so, and how to check it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub path: Masked,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Masked>,
    pub sha256: String,
}

/// The seed template's metadata block.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metadata {
    /// RFC 3339, UTC, second precision.
    pub date_utc: String,
    pub finished_utc: String,
    pub duration_ms: u64,
    /// Where the time went.
    #[serde(default)]
    pub phases: Phases,
    pub environment: String,
    /// First 200 bytes of the version endpoint's body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_version: Option<Masked>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_sha: Option<String>,
    pub runner_host: Masked,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<Masked>,
    /// How gonogo was invoked, masked.
    pub command_line: Masked,
    /// The release this run gates (`--release` or the scenario's
    /// `[release] version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<Masked>,
    /// Who owns the release gate (`--owner` or `[release] owner`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Masked>,
}

/// Wall time by phase of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    /// Choosing and starting dependencies and fault proxies.
    pub provision_ms: u64,
    /// Every step, service start-ups and waits included.
    pub steps_ms: u64,
    /// Stopping dependencies and removing temp dirs.
    pub teardown_ms: u64,
}

/// A dependency the proof ran against.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DependencyInfo {
    pub name: String,
    /// `embedded`, `docker` or `external`.
    pub provider: String,
    pub version: String,
    pub endpoint: Masked,
    /// Time from start to accepting connections.
    pub ready_ms: u64,
    /// How the server's data was made, where that varies: `template` (a
    /// copy of the cached `initdb` output) or `initdb` (Postgres).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_from: Option<String>,
}

impl Evidence {
    /// "3 of 4 required steps passed; failed: negative-proof".
    pub fn headline(steps: &[StepOutcome]) -> String {
        let required: Vec<&StepOutcome> = steps.iter().filter(|s| s.required).collect();
        let passed = required
            .iter()
            .filter(|s| s.status == StepStatus::Pass)
            .count();
        let mut line = format!("{passed} of {} required steps passed", required.len());
        let failed: Vec<String> = required
            .iter()
            .filter(|s| s.status == StepStatus::Fail)
            .map(|s| format!("Step {} ({})", s.number, s.title))
            .collect();
        if !failed.is_empty() {
            line.push_str("; failed: ");
            line.push_str(&failed.join(", "));
        }
        let not_run: Vec<String> = required
            .iter()
            .filter(|s| s.status == StepStatus::NotRun)
            .map(|s| format!("Step {} ({})", s.number, s.title))
            .collect();
        if !not_run.is_empty() {
            line.push_str("; not run: ");
            line.push_str(&not_run.join(", "));
        }
        let waived: Vec<String> = required
            .iter()
            .filter(|s| s.status == StepStatus::Waived)
            .map(|s| format!("Step {} ({})", s.number, s.title))
            .collect();
        if !waived.is_empty() {
            line.push_str("; waived: ");
            line.push_str(&waived.join(", "));
        }
        line
    }
}
