//! Verify: an evidence directory in, a [`Verification`] out: every way the
//! bundle differs from what `gonogo run` wrote, whether its signature holds,
//! and a short summary for the approver.
//!
//! What is checked:
//! - every file against its SHA-256 in `manifest.json`, and that nothing is
//!   missing or added (only `attestation.intoto.jsonl`, which signs the
//!   manifest, may sit beside it);
//! - that the manifest lists files, `evidence.json` among them, and that
//!   its verdict and metadata agree with `evidence.json`, whose verdict
//!   must follow from its own steps;
//! - when the bundle is signed: the DSSE envelope, and that its statement
//!   names this manifest's SHA-256 and agrees with the evidence; with a
//!   key, the signature itself;
//! - with `--expect-manifest-sha256`, the manifest's own SHA-256.
//!
//! Only regular files are read, each with a size bound (see `files`).
//! Someone who edits a file and recomputes every hash passes every check
//! but the signature: only `--key` catches that.
//!
//! A mismatch is data (exit `TAMPERED`), not an error; `Err` means the
//! directory could not be checked at all.

mod files;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use crate::attest::key::VerifyingKey;
use crate::attest::statement::{self, Statement, TestLists};
use crate::attest::{self as attest_mod, ATTESTATION_FILE};
use crate::digest::sha256_hex;
use crate::error::{Error, Result};
use crate::evidence::manifest::{MANIFEST_FILE, Manifest};
use crate::outcome::{StepOutcome, StepStatus};
use crate::verdict::Verdict;

pub use files::MAX_FILE_BYTES;

const EVIDENCE_FILE: &str = "evidence.json";

/// What `gonogo verify` was asked to check beyond the bundle itself.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// `--key`: the public key whose signature the bundle must carry.
    pub key: Option<VerifyingKey>,
    /// `--expect-manifest-sha256`: lower-case hex.
    pub expect_manifest_sha256: Option<String>,
}

/// One way the bundle differs from what gonogo wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The file's bytes are not the ones the manifest hashed.
    Changed(String),
    /// The manifest lists the file; it is gone.
    Removed(String),
    /// The file is in the directory but not in the manifest.
    Added(String),
    /// `manifest.json` itself cannot be read as a manifest.
    BadManifest(String),
    /// There is no `manifest.json`.
    MissingManifest,
    /// An entry that is not a regular file (FIFO, device, symlink, …).
    NotRegular {
        path: String,
        kind: &'static str,
    },
    TooLarge {
        path: String,
        bytes: u64,
    },
    /// The manifest lists no files.
    NoFiles,
    /// The manifest does not list `evidence.json`.
    NoEvidence,
    /// `evidence.json` cannot be read as evidence.
    BadEvidence(String),
    /// A field the manifest and `evidence.json` both hold, with two values.
    Differs {
        field: &'static str,
        manifest: String,
        evidence: String,
    },
    /// `evidence.json`'s verdict is not the one its steps make.
    StepsDisagree {
        stated: Verdict,
        implied: Verdict,
    },
    /// `--expect-manifest-sha256` does not match.
    ManifestPin {
        expected: String,
        actual: String,
    },
    /// The attestation is missing, corrupt, badly signed or disagrees.
    Attestation(String),
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Changed(p) => write!(f, "changed: {p} does not match its sha256"),
            Mismatch::Removed(p) => write!(f, "removed: {p} is in the manifest but missing"),
            Mismatch::Added(p) => write!(f, "added: {p} is not in the manifest"),
            Mismatch::BadManifest(why) => write!(f, "{MANIFEST_FILE} is not valid: {why}"),
            Mismatch::MissingManifest => write!(
                f,
                "removed: {MANIFEST_FILE} is missing, so nothing vouches for the other files"
            ),
            Mismatch::NotRegular { path, kind } => write!(
                f,
                "not a file: {path} is {kind}; a bundle holds only regular files"
            ),
            Mismatch::TooLarge { path, bytes } => write!(
                f,
                "too large: {path} has {bytes} bytes; verify reads at most {MAX_FILE_BYTES}"
            ),
            Mismatch::NoFiles => write!(f, "empty: {MANIFEST_FILE} lists no files"),
            Mismatch::NoEvidence => write!(
                f,
                "missing: {MANIFEST_FILE} does not list {EVIDENCE_FILE}, which gonogo always writes"
            ),
            Mismatch::BadEvidence(why) => write!(f, "{EVIDENCE_FILE} cannot be read: {why}"),
            Mismatch::Differs {
                field,
                manifest,
                evidence,
            } => write!(
                f,
                "differs: {field} is `{manifest}` in {MANIFEST_FILE} but `{evidence}` in {EVIDENCE_FILE}"
            ),
            Mismatch::StepsDisagree { stated, implied } => write!(
                f,
                "differs: {EVIDENCE_FILE} says {stated}, but its steps make {implied}"
            ),
            Mismatch::ManifestPin { expected, actual } => write!(
                f,
                "pinned: {MANIFEST_FILE} has sha256 {actual}, not the expected {expected}"
            ),
            Mismatch::Attestation(why) => write!(f, "signature: {ATTESTATION_FILE}: {why}"),
        }
    }
}

/// Whether and how the bundle is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// No `attestation.intoto.jsonl`.
    Unsigned,
    /// Signed, by the keys the envelope names; no key was given to check.
    NotChecked { keyids: Vec<String> },
    /// The given key's signature holds.
    Verified { keyid: String },
    /// The attestation is there but does not hold (see the mismatches).
    Invalid,
}

/// What the approver needs from an intact bundle.
#[derive(Debug, Clone)]
pub struct Summary {
    pub verdict: Verdict,
    pub headline: String,
    pub scenario: String,
    pub scenario_path: String,
    pub scenario_sha256: String,
    pub started_utc: String,
    pub finished_utc: String,
    /// `name alg:hex`, from the statement; else the manifest's commit.
    pub subjects: Vec<String>,
    pub steps: Vec<(u32, String, StepStatus, String)>,
}

/// What `verify` found.
#[derive(Debug, Clone)]
pub struct Verification {
    pub dir: PathBuf,
    /// SHA-256 of `manifest.json`, to compare with the one the CI log or
    /// the change ticket recorded.
    pub manifest_sha256: Option<String>,
    /// Files whose digest matched.
    pub matched: usize,
    pub mismatches: Vec<Mismatch>,
    pub signature: Signature,
    pub summary: Option<Summary>,
}

impl Verification {
    pub fn intact(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// `evidence.json`, read back.
struct ReadEvidence {
    json: Value,
    verdict: Verdict,
    steps: Vec<StepOutcome>,
}

/// Check the bundle in `dir`.
pub fn verify(dir: &Path, options: &VerifyOptions) -> Result<Verification> {
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{} is not an evidence directory",
            dir.display()
        )));
    }
    let mut v = Verification {
        dir: dir.to_path_buf(),
        manifest_sha256: None,
        matched: 0,
        mismatches: Vec::new(),
        signature: Signature::Unsigned,
        summary: None,
    };
    let mut entries = files::entries_under(dir).context("list the evidence directory")?;
    let Some(manifest_path) = entries.remove(MANIFEST_FILE) else {
        return missing_manifest(v);
    };
    let Some(bytes) = read_entry(&mut v, MANIFEST_FILE, &manifest_path)? else {
        return Ok(v);
    };
    let actual = sha256_hex(&bytes);
    if let Some(expected) = &options.expect_manifest_sha256
        && *expected != actual
    {
        v.mismatches.push(Mismatch::ManifestPin {
            expected: expected.clone(),
            actual: actual.clone(),
        });
    }
    v.manifest_sha256 = Some(actual);
    let manifest: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            v.mismatches.push(Mismatch::BadManifest(e.to_string()));
            return Ok(v);
        }
    };
    // The attestation signs the manifest, so gonogo never lists it there;
    // a manifest that does is not gonogo's, and the file is hashed as listed.
    let attestation = if manifest.files.iter().any(|f| f.path == ATTESTATION_FILE) {
        v.mismatches.push(Mismatch::BadManifest(format!(
            "it lists {ATTESTATION_FILE}, which signs the manifest and cannot be in it"
        )));
        None
    } else {
        entries.remove(ATTESTATION_FILE)
    };
    let evidence_bytes = check_files(&mut v, &manifest, &mut entries)?;
    v.mismatches
        .extend(entries.into_keys().map(Mismatch::Added));
    let evidence = evidence_bytes.and_then(|bytes| cross_check(&mut v, &manifest, &bytes));
    let statement = check_attestation(&mut v, options, attestation, &manifest, evidence.as_ref())?;
    v.summary = evidence.map(|e| summary(&manifest, e, statement.as_ref()));
    Ok(v)
}

/// No manifest: tampering (exit 5), unless `dir` is an evidence root that
/// holds bundles, which is a usage error worth a hint.
fn missing_manifest(mut v: Verification) -> Result<Verification> {
    let bundles = files::subdirs_holding(&v.dir, MANIFEST_FILE, 3);
    if let Some(first) = bundles.first() {
        return Err(Error::Usage(format!(
            "{} holds evidence bundles, not a bundle itself; verify one of them, e.g. gonogo verify {}",
            v.dir.display(),
            first.display()
        )));
    }
    v.mismatches.push(Mismatch::MissingManifest);
    Ok(v)
}

/// Read one entry of the bundle; a non-regular or oversized one is a
/// mismatch (`None`), an I/O failure an error.
fn read_entry(v: &mut Verification, name: &str, path: &Path) -> Result<Option<Vec<u8>>> {
    match files::read_regular(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(files::ReadProblem::NotRegular(kind)) => {
            v.mismatches.push(Mismatch::NotRegular {
                path: name.to_string(),
                kind,
            });
            Ok(None)
        }
        Err(files::ReadProblem::TooLarge(bytes)) => {
            v.mismatches.push(Mismatch::TooLarge {
                path: name.to_string(),
                bytes,
            });
            Ok(None)
        }
        Err(files::ReadProblem::Io(e)) => Err(Error::Harness(
            anyhow::Error::new(e).context(format!("read {}", path.display())),
        )),
    }
}

/// Hash every file the manifest lists; returns `evidence.json`'s bytes
/// when they match.
fn check_files(
    v: &mut Verification,
    manifest: &Manifest,
    on_disk: &mut BTreeMap<String, PathBuf>,
) -> Result<Option<Vec<u8>>> {
    if manifest.files.is_empty() {
        v.mismatches.push(Mismatch::NoFiles);
    }
    if !manifest.files.iter().any(|f| f.path == EVIDENCE_FILE) {
        v.mismatches.push(Mismatch::NoEvidence);
    }
    let mut evidence = None;
    for entry in &manifest.files {
        if !is_plain_relative(&entry.path) {
            v.mismatches.push(Mismatch::BadManifest(format!(
                "`{}` is not a path inside the bundle",
                printable(&entry.path)
            )));
            continue;
        }
        let Some(path) = on_disk.remove(&entry.path) else {
            v.mismatches.push(Mismatch::Removed(entry.path.clone()));
            continue;
        };
        let Some(bytes) = read_entry(v, &entry.path, &path)? else {
            continue;
        };
        if sha256_hex(&bytes) != entry.sha256 {
            v.mismatches.push(Mismatch::Changed(entry.path.clone()));
            continue;
        }
        v.matched += 1;
        if entry.path == EVIDENCE_FILE {
            evidence = Some(bytes);
        }
    }
    Ok(evidence)
}

/// Compare the manifest with `evidence.json`, and `evidence.json`'s
/// verdict with its steps.
fn cross_check(v: &mut Verification, manifest: &Manifest, bytes: &[u8]) -> Option<ReadEvidence> {
    let read = match read_evidence(bytes) {
        Ok(read) => read,
        Err(why) => {
            v.mismatches.push(Mismatch::BadEvidence(why));
            return None;
        }
    };
    let json = &read.json;
    let text = |pointer: &str| match json.pointer(pointer) {
        None | Some(Value::Null) => "(none)".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let fields: [(&'static str, String, String); 9] = [
        ("verdict", manifest.verdict.label().into(), text("/verdict")),
        (
            "gonogo_version",
            manifest.gonogo_version.clone(),
            text("/gonogo_version"),
        ),
        (
            "scenario.name",
            manifest.scenario.name.clone(),
            text("/scenario/name"),
        ),
        (
            "scenario.path",
            manifest.scenario.path.to_string(),
            text("/scenario/path"),
        ),
        (
            "scenario.sha256",
            manifest.scenario.sha256.clone(),
            text("/scenario/sha256"),
        ),
        (
            "command_line",
            manifest.command_line.to_string(),
            text("/metadata/command_line"),
        ),
        (
            "started_utc",
            manifest.started_utc.clone(),
            text("/metadata/date_utc"),
        ),
        (
            "finished_utc",
            manifest.finished_utc.clone(),
            text("/metadata/finished_utc"),
        ),
        (
            "service_git_sha",
            manifest
                .service_git_sha
                .clone()
                .unwrap_or_else(|| "(none)".into()),
            text("/metadata/git_sha"),
        ),
    ];
    for (field, in_manifest, in_evidence) in fields {
        if in_manifest != in_evidence {
            v.mismatches.push(Mismatch::Differs {
                field,
                manifest: printable(&in_manifest),
                evidence: printable(&in_evidence),
            });
        }
    }
    let implied = Verdict::decide(&read.steps);
    if implied != read.verdict {
        v.mismatches.push(Mismatch::StepsDisagree {
            stated: read.verdict,
            implied,
        });
    }
    Some(read)
}

fn read_evidence(bytes: &[u8]) -> std::result::Result<ReadEvidence, String> {
    let json: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let verdict: Verdict =
        serde_json::from_value(json["verdict"].clone()).map_err(|e| format!("its verdict: {e}"))?;
    let steps: Vec<StepOutcome> =
        serde_json::from_value(json["steps"].clone()).map_err(|e| format!("its steps: {e}"))?;
    Ok(ReadEvidence {
        json,
        verdict,
        steps,
    })
}

/// Check the attestation, if any: envelope, signature (with a key), and
/// that its statement is about this manifest and this evidence.
fn check_attestation(
    v: &mut Verification,
    options: &VerifyOptions,
    path: Option<PathBuf>,
    manifest: &Manifest,
    evidence: Option<&ReadEvidence>,
) -> Result<Option<Statement>> {
    let Some(path) = path else {
        if options.key.is_some() {
            v.mismatches.push(Mismatch::Attestation(
                "missing: the bundle is not signed, and --key asks for a signature".into(),
            ));
        }
        return Ok(None);
    };
    v.signature = Signature::Invalid;
    let Some(bytes) = read_entry(v, ATTESTATION_FILE, &path)? else {
        return Ok(None);
    };
    let read = match attest_mod::read(&bytes, options.key.as_ref()) {
        Ok(read) => read,
        Err(why) => {
            v.mismatches.push(Mismatch::Attestation(printable(&why)));
            return Ok(None);
        }
    };
    let before = v.mismatches.len();
    for why in statement_disagreements(
        &read.statement,
        v.manifest_sha256.as_deref(),
        manifest,
        evidence,
    ) {
        v.mismatches.push(Mismatch::Attestation(why));
    }
    if v.mismatches.len() == before {
        v.signature = match &options.key {
            Some(key) => Signature::Verified {
                keyid: key.keyid().to_string(),
            },
            None => Signature::NotChecked {
                keyids: read.keyids.iter().map(|k| printable(k)).collect(),
            },
        };
    }
    Ok(Some(read.statement))
}

/// Where the statement disagrees with the manifest or the evidence.
fn statement_disagreements(
    statement: &Statement,
    manifest_sha256: Option<&str>,
    manifest: &Manifest,
    evidence: Option<&ReadEvidence>,
) -> Vec<String> {
    let mut out = Vec::new();
    match (statement.manifest_sha256(), manifest_sha256) {
        (None, _) => out.push(format!("its statement has no {MANIFEST_FILE} subject")),
        (Some(signed), Some(actual)) if signed != actual => out.push(format!(
            "its statement names {MANIFEST_FILE} sha256 {}, but {MANIFEST_FILE} has sha256 {actual}",
            printable(signed)
        )),
        _ => {}
    }
    let scenario = &manifest.scenario.sha256;
    if !statement
        .predicate
        .configuration
        .iter()
        .any(|c| c.digest.get("sha256") == Some(scenario))
    {
        out.push(format!(
            "its configuration is not the manifest's scenario (sha256 {scenario})"
        ));
    }
    if let Some(evidence) = evidence {
        let expected = statement::outcome(evidence.verdict, &evidence.steps);
        if statement.predicate.result != expected {
            out.push(format!(
                "its result is {:?}, but the evidence's verdict {} makes {expected:?}",
                statement.predicate.result, evidence.verdict
            ));
        }
        if TestLists::in_statement(&statement.predicate) != TestLists::of(&evidence.steps) {
            out.push("its passed, warned and failed tests are not the evidence's steps".into());
        }
    }
    out
}

fn summary(manifest: &Manifest, evidence: ReadEvidence, statement: Option<&Statement>) -> Summary {
    let subjects = match statement {
        Some(statement) => statement
            .subject
            .iter()
            .flat_map(|s| {
                s.digest
                    .iter()
                    .map(move |(alg, hex)| printable(&format!("{} {alg}:{hex}", s.name)))
            })
            .collect(),
        None => manifest
            .service_git_sha
            .iter()
            .map(|sha| format!("service commit {}", printable(sha)))
            .collect(),
    };
    Summary {
        verdict: evidence.verdict,
        headline: printable(evidence.json["headline"].as_str().unwrap_or_default()),
        scenario: printable(&manifest.scenario.name),
        scenario_path: printable(manifest.scenario.path.as_str()),
        scenario_sha256: printable(&manifest.scenario.sha256),
        started_utc: printable(&manifest.started_utc),
        finished_utc: printable(&manifest.finished_utc),
        subjects,
        steps: evidence
            .steps
            .into_iter()
            .map(|s| (s.number, printable(&s.id), s.status, printable(&s.title)))
            .collect(),
    }
}

/// The approver's summary of an intact bundle (empty otherwise), then the
/// one-line result.
pub fn render(v: &Verification) -> String {
    let mut out = String::new();
    if let (true, Some(s)) = (v.intact(), &v.summary) {
        let _ = writeln!(out, "verdict   {} — {}", s.verdict, s.headline);
        let _ = writeln!(
            out,
            "scenario  {} ({}, sha256 {})",
            s.scenario, s.scenario_path, s.scenario_sha256
        );
        for subject in &s.subjects {
            let _ = writeln!(out, "subject   {subject}");
        }
        let _ = writeln!(out, "signer    {}", signer(&v.signature));
        let _ = writeln!(out, "time      {} to {}", s.started_utc, s.finished_utc);
        for (i, (number, id, status, title)) in s.steps.iter().enumerate() {
            let label = if i == 0 { "steps" } else { "" };
            let _ = writeln!(
                out,
                "{label:<9} {:<8} {number:>2}. {id} — {title}",
                status.label()
            );
        }
    }
    let sha = v.manifest_sha256.as_deref().unwrap_or("(none)");
    if v.intact() {
        let _ = writeln!(
            out,
            "ok {}: {} files match {MANIFEST_FILE} (manifest sha256 {sha}); {}",
            v.dir.display(),
            v.matched,
            short_signer(&v.signature)
        );
    } else {
        let _ = writeln!(
            out,
            "TAMPERED {}: {} problem{} (manifest sha256 {sha})",
            v.dir.display(),
            v.mismatches.len(),
            if v.mismatches.len() == 1 { "" } else { "s" }
        );
    }
    out
}

fn signer(signature: &Signature) -> String {
    match signature {
        Signature::Unsigned => format!(
            "none: unsigned (no {ATTESTATION_FILE}); an edit that recomputes every hash would pass"
        ),
        Signature::NotChecked { keyids } => format!(
            "{}: signature NOT checked (pass --key FILE to check it)",
            keyids.join(", ")
        ),
        Signature::Verified { keyid } => format!("{keyid}: signature verified with --key"),
        Signature::Invalid => "the signature does not hold".into(),
    }
}

fn short_signer(signature: &Signature) -> String {
    match signature {
        Signature::Unsigned => "unsigned".into(),
        Signature::NotChecked { keyids } => {
            format!("signed by {}, signature not checked", keyids.join(", "))
        }
        Signature::Verified { keyid } => format!("signature verified ({keyid})"),
        Signature::Invalid => "signature invalid".into(),
    }
}

/// Text from the bundle, safe to print: control characters (terminal
/// escapes in an edited, unsigned bundle) become `?`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests;
