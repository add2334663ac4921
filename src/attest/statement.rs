//! The in-toto Statement v1 that a signed bundle carries, with the
//! test-result predicate (`https://in-toto.io/attestation/test-result/v0.1`).
//!
//! Subjects: the service's commit (`gitCommit`) when known, every
//! `--subject NAME@sha256:HEX`, and `manifest.json` with its SHA-256 (which
//! in turn covers every other file of the bundle).
//!
//! How gonogo fills the predicate, so that a consumer who reads only the
//! standard fields never sees more success than gonogo did (the framework's
//! monotonic principle):
//!
//! | verdict | `result` |
//! |---------|----------|
//! | GO, no step waived | `PASSED` |
//! | GO with a waived step | `WARNED` |
//! | INCONCLUSIVE | `WARNED` |
//! | NO-GO | `FAILED` |
//!
//! | step status | list |
//! |-------------|------|
//! | PASS | `passedTests` |
//! | FAIL | `failedTests` |
//! | WAIVED, NOT RUN | `warnedTests` |
//!
//! Everything else (verdict, headline, each step's title and status, the
//! waivers with justification, approver and expiry, the run's times) is in
//! the extension field `predicate.gonogo`, which consumers may ignore.
//!
//! Sample (abridged):
//!
//! ```text
//! {"_type": "https://in-toto.io/Statement/v1",
//!  "subject": [{"name": "git+file:///src/service", "digest": {"gitCommit": "6e7ef5c…"}},
//!              {"name": "manifest.json", "digest": {"sha256": "39f9…"}}],
//!  "predicateType": "https://in-toto.io/attestation/test-result/v0.1",
//!  "predicate": {"result": "PASSED",
//!    "configuration": [{"name": "scenarios/reference.toml", "digest": {"sha256": "b032…"}, "mediaType": "application/toml"}],
//!    "passedTests": ["migration-gate", "ready-gate", …], "warnedTests": [], "failedTests": [],
//!    "gonogo": {"verdict": "GO", "headline": "15 of 15 required steps passed", …}}}
//! ```

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::evidence::Evidence;
use crate::evidence::manifest::MANIFEST_FILE;
use crate::mask::Masked;
use crate::outcome::{StepOutcome, StepStatus};
use crate::verdict::Verdict;
use crate::waiver::WaiverState;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://in-toto.io/attestation/test-result/v0.1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: TestResult,
}

/// An in-toto ResourceDescriptor (the fields gonogo uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub digest: BTreeMap<String, String>,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// The test-result predicate, v0.1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub result: Outcome,
    pub configuration: Vec<ResourceDescriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(rename = "passedTests", default)]
    pub passed_tests: Vec<String>,
    #[serde(rename = "warnedTests", default)]
    pub warned_tests: Vec<String>,
    #[serde(rename = "failedTests", default)]
    pub failed_tests: Vec<String>,
    /// gonogo's extension field (see the module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gonogo: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    Passed,
    Warned,
    Failed,
}

/// An artifact the run vouches for: `--subject NAME@sha256:HEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub name: String,
    /// 64 lower-case hex characters.
    pub sha256: String,
}

impl FromStr for Subject {
    type Err = String;

    fn from_str(text: &str) -> Result<Subject, String> {
        let (name, hex) = text.rsplit_once("@sha256:").ok_or_else(|| {
            format!("`{text}` is not NAME@sha256:HEX (e.g. ghcr.io/acme/api@sha256:<64 hex>)")
        })?;
        if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!(
                "`{text}`: the name before @sha256: must be non-empty, without spaces"
            ));
        }
        if name == MANIFEST_FILE {
            return Err(format!(
                "`{text}`: {MANIFEST_FILE} is always a subject; name the artifact you tested"
            ));
        }
        if hex.len() != 64 || !hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(format!(
                "`{text}`: the digest must be 64 lower-case hex characters (got {})",
                hex.len()
            ));
        }
        Ok(Subject {
            name: name.to_string(),
            sha256: hex.to_string(),
        })
    }
}

/// What a statement is made from, besides the evidence.
pub struct StatementInput<'a> {
    pub evidence: &'a Evidence,
    /// SHA-256 of the `manifest.json` bytes being written.
    pub manifest_sha256: String,
    /// `--subject` artifacts, names masked.
    pub subjects: Vec<(Masked, String)>,
    /// Where the commit came from: `git+file://<workdir>`, masked.
    pub git_name: Masked,
    /// The CI run's page, masked.
    pub url: Option<Masked>,
}

/// The statement for one run.
pub fn statement(input: StatementInput<'_>) -> Statement {
    let evidence = input.evidence;
    let mut subject = Vec::new();
    if let Some(sha) = evidence.metadata.git_sha.as_deref().and_then(full_commit) {
        subject.push(descriptor(input.git_name.as_str(), "gitCommit", &sha));
    }
    for (name, sha256) in &input.subjects {
        subject.push(descriptor(name.as_str(), "sha256", sha256));
    }
    subject.push(descriptor(MANIFEST_FILE, "sha256", &input.manifest_sha256));
    let lists = TestLists::of(&evidence.steps);
    let mut configuration = descriptor(
        evidence.scenario.path.as_str(),
        "sha256",
        &evidence.scenario.sha256,
    );
    configuration.media_type = Some("application/toml".into());
    Statement {
        statement_type: STATEMENT_TYPE.into(),
        subject,
        predicate_type: PREDICATE_TYPE.into(),
        predicate: TestResult {
            result: outcome(evidence.verdict, &evidence.steps),
            configuration: vec![configuration],
            url: input.url.map(|u| u.as_str().to_string()),
            passed_tests: lists.passed,
            warned_tests: lists.warned,
            failed_tests: lists.failed,
            gonogo: Some(extension(evidence)),
        },
    }
}

/// A full commit id (SHA-1 or SHA-256 hex), lower-cased; an abbreviated
/// one (a `GIT_SHA` of 7 characters) is not a digest and is left out.
fn full_commit(sha: &str) -> Option<String> {
    let sha = sha.to_ascii_lowercase();
    (matches!(sha.len(), 40 | 64) && sha.chars().all(|c| c.is_ascii_hexdigit())).then_some(sha)
}

fn descriptor(name: &str, algorithm: &str, value: &str) -> ResourceDescriptor {
    ResourceDescriptor {
        name: name.to_string(),
        digest: BTreeMap::from([(algorithm.to_string(), value.to_string())]),
        media_type: None,
    }
}

/// GO → PASSED (WARNED when a step was waived), INCONCLUSIVE → WARNED,
/// NO-GO → FAILED.
pub fn outcome(verdict: Verdict, steps: &[StepOutcome]) -> Outcome {
    match verdict {
        Verdict::NoGo => Outcome::Failed,
        Verdict::Inconclusive => Outcome::Warned,
        Verdict::Go if steps.iter().any(|s| s.status == StepStatus::Waived) => Outcome::Warned,
        Verdict::Go => Outcome::Passed,
    }
}

/// The step ids in the predicate's three lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestLists {
    pub passed: Vec<String>,
    pub warned: Vec<String>,
    pub failed: Vec<String>,
}

impl TestLists {
    /// PASS is passed, FAIL failed; WAIVED and NOT RUN are warned: neither
    /// proved anything, and a consumer that ignores gonogo's extension
    /// must not count them as passes. A step declared NOT APPLICABLE was
    /// not tested at all: it is in no list, only in the extension, with
    /// its reason.
    pub fn of(steps: &[StepOutcome]) -> TestLists {
        let mut lists = TestLists::default();
        for step in steps {
            let list = match step.status {
                StepStatus::Pass => &mut lists.passed,
                StepStatus::Fail => &mut lists.failed,
                StepStatus::Waived | StepStatus::NotRun => &mut lists.warned,
                StepStatus::NotApplicable => continue,
            };
            list.push(step.id.clone());
        }
        lists
    }

    /// The lists a statement holds.
    pub fn in_statement(result: &TestResult) -> TestLists {
        TestLists {
            passed: result.passed_tests.clone(),
            warned: result.warned_tests.clone(),
            failed: result.failed_tests.clone(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Extension<'a> {
    verdict: Verdict,
    headline: &'a str,
    gonogo_version: &'a str,
    scenario: &'a str,
    environment: &'a str,
    started_on: &'a str,
    finished_on: &'a str,
    steps: Vec<ExtensionStep<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    waivers: Vec<ExtensionWaiver<'a>>,
}

#[derive(Serialize)]
struct ExtensionStep<'a> {
    id: &'a str,
    title: &'a str,
    status: StepStatus,
    summary: &'a Masked,
    /// The checks that held on the healthy answer too: they proved
    /// nothing and were not counted as passed.
    #[serde(rename = "notDiscriminating", skip_serializing_if = "Vec::is_empty")]
    not_discriminating: Vec<&'a Masked>,
}

#[derive(Serialize)]
struct ExtensionWaiver<'a> {
    step: &'a str,
    state: WaiverState,
    justification: &'a Masked,
    approver: &'a Masked,
    expires: &'a str,
}

fn extension(evidence: &Evidence) -> serde_json::Value {
    let extension = Extension {
        verdict: evidence.verdict,
        headline: &evidence.headline,
        gonogo_version: &evidence.gonogo_version,
        scenario: &evidence.scenario.name,
        environment: &evidence.metadata.environment,
        started_on: &evidence.metadata.date_utc,
        finished_on: &evidence.metadata.finished_utc,
        steps: evidence
            .steps
            .iter()
            .map(|s| ExtensionStep {
                id: &s.id,
                title: &s.title,
                status: s.status,
                summary: &s.summary,
                not_discriminating: s
                    .checks
                    .iter()
                    .filter(|c| !c.discriminates)
                    .map(|c| &c.expected)
                    .collect(),
            })
            .collect(),
        waivers: evidence
            .waivers
            .iter()
            .map(|w| ExtensionWaiver {
                step: &w.step,
                state: w.state,
                justification: &w.justification,
                approver: &w.approver,
                expires: &w.expires,
            })
            .collect(),
    };
    serde_json::to_value(extension).expect("the extension is plain JSON data")
}

impl Statement {
    /// The SHA-256 the statement gives `manifest.json`.
    pub fn manifest_sha256(&self) -> Option<&str> {
        self.subject
            .iter()
            .find(|s| s.name == MANIFEST_FILE)
            .and_then(|s| s.digest.get("sha256"))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::sample::evidence as sample;
    use crate::mask::Masker;

    #[test]
    fn subjects_are_validated() {
        let hex = "ab".repeat(32);
        let s: Subject = format!("ghcr.io/acme/api@sha256:{hex}").parse().unwrap();
        assert_eq!(
            (s.name.as_str(), s.sha256.as_str()),
            ("ghcr.io/acme/api", hex.as_str())
        );
        for bad in [
            format!("ghcr.io/acme/api:{hex}"),
            format!("@sha256:{hex}"),
            format!("ghcr.io/acme/api@sha256:{}", "AB".repeat(32)),
            format!("ghcr.io/acme/api@sha256:{}", &hex[1..]),
            format!("a b@sha256:{hex}"),
            format!("manifest.json@sha256:{hex}"),
        ] {
            assert!(bad.parse::<Subject>().is_err(), "{bad}");
        }
    }

    #[test]
    fn statement_of_the_sample_run() {
        let masker = Masker::new();
        let evidence = sample();
        let statement = statement(StatementInput {
            evidence: &evidence,
            manifest_sha256: "cd".repeat(32),
            subjects: vec![(masker.mask("ghcr.io/acme/api"), "ef".repeat(32))],
            git_name: masker.mask("git+file:///src/api"),
            url: Some(masker.mask("https://ci.example/run/1")),
        });
        let json = serde_json::to_value(&statement).unwrap();
        assert_eq!(json["_type"], STATEMENT_TYPE);
        assert_eq!(json["predicateType"], PREDICATE_TYPE);
        let names: Vec<&str> = statement.subject.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["git+file:///src/api", "ghcr.io/acme/api", "manifest.json"]
        );
        assert_eq!(
            json["subject"][0]["digest"]["gitCommit"],
            "0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(statement.manifest_sha256(), Some("cd".repeat(32).as_str()));
        let p = &json["predicate"];
        assert_eq!(p["result"], "FAILED");
        assert_eq!(p["configuration"][0]["name"], "scenarios/sample.toml");
        assert_eq!(p["configuration"][0]["digest"]["sha256"], "ab".repeat(32));
        assert_eq!(p["url"], "https://ci.example/run/1");
        assert_eq!(p["passedTests"], serde_json::json!(["a-step"]));
        assert_eq!(p["warnedTests"], serde_json::json!(["c-step", "d-step"]));
        assert_eq!(p["failedTests"], serde_json::json!(["b-step"]));
        assert_eq!(p["gonogo"]["verdict"], "NO-GO");
        assert_eq!(p["gonogo"]["waivers"][0]["approver"], "alice");
        assert_eq!(p["gonogo"]["waivers"][0]["expires"], "2026-04-01");
        assert_eq!(p["gonogo"]["steps"][2]["status"], "NOT RUN");
        let back: Statement = serde_json::from_value(json).unwrap();
        assert_eq!(back, statement);
    }

    #[test]
    fn a_waived_go_is_warned() {
        let mut steps = sample().steps;
        steps.retain(|s| s.status == StepStatus::Pass);
        assert_eq!(outcome(Verdict::Go, &steps), Outcome::Passed);
        let all = sample().steps;
        assert_eq!(outcome(Verdict::Go, &all), Outcome::Warned);
        assert_eq!(outcome(Verdict::Inconclusive, &steps), Outcome::Warned);
        assert_eq!(outcome(Verdict::NoGo, &steps), Outcome::Failed);
    }

    #[test]
    fn a_step_declared_not_applicable_is_in_no_list() {
        let mut steps = sample().steps;
        steps.retain(|s| s.status == StepStatus::Pass);
        let declared = steps[0].id.clone();
        steps[0].status = StepStatus::NotApplicable;
        let lists = TestLists::of(&steps);
        for list in [&lists.passed, &lists.warned, &lists.failed] {
            assert!(!list.contains(&declared), "{lists:?}");
        }
        assert_eq!(lists.passed.len(), steps.len() - 1);
        assert_eq!(outcome(Verdict::Go, &steps), Outcome::Passed);
    }
}
