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
use crate::outcome::{FaultTimeline, StepOutcome, StepStatus};
use crate::verdict::Verdict;
use crate::waiver::WaiverRecord;

/// The signed attestation's file name, beside `manifest.json` (written by
/// `attest`, named here so the renderers need not depend on it).
pub const ATTESTATION_FILE: &str = "attestation.intoto.jsonl";

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
    /// The address the service is given instead of the server's: gonogo's
    /// fault proxy, which forwards to `endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_connects_to: Option<Masked>,
}

impl Evidence {
    /// "3 of 4 required steps passed; failed: Step 2 (…); 1 not applicable:
    /// Step 4 (…)". Steps declared not applicable are counted apart: they
    /// are neither required nor passed.
    pub fn headline(steps: &[StepOutcome]) -> String {
        let applicable = || {
            steps
                .iter()
                .filter(|s| s.required && s.status != StepStatus::NotApplicable)
        };
        let passed = applicable()
            .filter(|s| s.status == StepStatus::Pass)
            .count();
        let mut line = format!("{passed} of {} required steps passed", applicable().count());
        let list = |status: StepStatus| -> Vec<String> {
            steps
                .iter()
                .filter(|s| s.status == status)
                .map(|s| format!("Step {} ({})", s.number, s.title))
                .collect()
        };
        for (status, label) in [
            (StepStatus::Fail, "failed"),
            (StepStatus::NotRun, "not run"),
            (StepStatus::Waived, "waived"),
        ] {
            let named = list(status);
            if !named.is_empty() {
                line.push_str(&format!("; {label}: {}", named.join(", ")));
            }
        }
        let not_applicable = list(StepStatus::NotApplicable);
        if !not_applicable.is_empty() {
            line.push_str(&format!(
                "; {} not applicable: {}",
                not_applicable.len(),
                not_applicable.join(", ")
            ));
        }
        line
    }
}
