//! `manifest.json`: the bundle's integrity record, computed from the other
//! artifacts' bytes before anything is written, so it lands in the same
//! atomic staging directory and passes the same secret scan.
//!
//! It lists the SHA-256 of every other file in the evidence directory, and
//! says what produced them: gonogo's version, the scenario's SHA-256, the
//! masked command line, start and end times (UTC) and the service's git SHA
//! when known. `gonogo verify DIR` (see `crate::verify`) recomputes the
//! hashes. The manifest cannot vouch for itself: record its own SHA-256
//! outside the bundle (the CI step summary and `gonogo verify` print it),
//! or sign the bundle, whose attestation names it (see `crate::attest`).
//!
//! Sample:
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "gonogo_version": "0.1.0",
//!   "verdict": "GO",
//!   "scenario": {"name": "reference", "path": "scenarios/reference.toml", "sha256": "9f2c…"},
//!   "command_line": "gonogo run scenarios/reference.toml --out evidence",
//!   "started_utc": "2026-03-01T10:00:00Z",
//!   "finished_utc": "2026-03-01T10:00:09Z",
//!   "service_git_sha": "c06a7e0…",
//!   "files": [{"path": "evidence.json", "sha256": "…", "bytes": 18234}, …]
//! }
//! ```

use serde::{Deserialize, Serialize};

use super::Evidence;
use super::write::Artifact;
use crate::digest::sha256_hex;
use crate::mask::Masked;
use crate::verdict::Verdict;

/// The manifest's file name, at the root of the evidence directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The SHA-256 of the manifest in the evidence directory `dir`, as it was
/// written (`None` when it cannot be read).
pub fn sha256_of(dir: &std::path::Path) -> Option<String> {
    std::fs::read(dir.join(MANIFEST_FILE))
        .ok()
        .map(|bytes| sha256_hex(&bytes))
}

/// Version of the manifest's shape.
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub gonogo_version: String,
    pub verdict: Verdict,
    pub scenario: ManifestScenario,
    /// How gonogo was invoked, masked.
    pub command_line: Masked,
    pub started_utc: String,
    pub finished_utc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_git_sha: Option<String>,
    /// Every other file of the bundle, sorted by path.
    pub files: Vec<FileDigest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestScenario {
    pub name: String,
    pub path: Masked,
    pub sha256: String,
}

/// One file of the bundle and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// Relative to the evidence directory, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

/// The manifest for `artifacts`, which are about to be written as the
/// bundle of `evidence`.
pub fn manifest(evidence: &Evidence, artifacts: &[Artifact]) -> Manifest {
    let mut files: Vec<FileDigest> = artifacts
        .iter()
        .filter(|a| a.name != MANIFEST_FILE)
        .map(|a| FileDigest {
            path: a.name.clone(),
            sha256: sha256_hex(&a.contents),
            bytes: a.contents.len() as u64,
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Manifest {
        schema_version: MANIFEST_VERSION,
        gonogo_version: evidence.gonogo_version.clone(),
        verdict: evidence.verdict,
        scenario: ManifestScenario {
            name: evidence.scenario.name.clone(),
            path: evidence.scenario.path.clone(),
            sha256: evidence.scenario.sha256.clone(),
        },
        command_line: evidence.metadata.command_line.clone(),
        started_utc: evidence.metadata.date_utc.clone(),
        finished_utc: evidence.metadata.finished_utc.clone(),
        service_git_sha: evidence.metadata.git_sha.clone(),
        files,
    }
}

/// `manifest.json`'s bytes.
pub fn render(manifest: &Manifest) -> serde_json::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(manifest)?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::sample::evidence as sample;

    #[test]
    fn lists_every_other_artifact_sorted_with_its_digest() {
        let artifacts = vec![
            Artifact {
                name: "report.md".into(),
                contents: b"abc".to_vec(),
            },
            Artifact {
                name: "evidence.json".into(),
                contents: b"{}".to_vec(),
            },
        ];
        let m = manifest(&sample(), &artifacts);
        let paths: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["evidence.json", "report.md"]);
        assert_eq!(
            m.files[1].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(m.files[1].bytes, 3);
        assert_eq!(
            m.service_git_sha.as_deref(),
            Some("0123456789abcdef0123456789abcdef01234567")
        );
        let back: Manifest = serde_json::from_slice(&render(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
