//! Attestation stage: the [`Evidence`] and the bundle's `manifest.json`
//! in, a signed in-toto attestation (`attestation.intoto.jsonl`) out; and
//! the reading side that `gonogo verify` uses.
//!
//! The attestation is one DSSE envelope ([`dsse`]) whose payload is an
//! in-toto Statement v1 with the test-result predicate ([`statement`]),
//! signed with an ECDSA P-256 key ([`key`]). Its subjects include
//! `manifest.json`'s SHA-256, and the manifest holds the SHA-256 of every
//! other file, so the one signature covers the whole bundle. The
//! attestation is therefore not listed in the manifest: it is the one file
//! `verify` accepts beyond it.
//!
//! It is written with the other artifacts, through the same staging
//! directory, secret scan and atomic rename.

pub mod dsse;
pub mod key;
pub mod statement;

use std::path::Path;

use crate::digest::sha256_hex;
use crate::evidence::Evidence;
use crate::evidence::manifest::MANIFEST_FILE;
use crate::evidence::write::Artifact;
use crate::mask::Masker;

use dsse::Envelope;
use key::{SigningKey, VerifyingKey};
use statement::{PREDICATE_TYPE, STATEMENT_TYPE, Statement, StatementInput, Subject};

pub use crate::evidence::ATTESTATION_FILE;

/// How a run signs its bundle: the key (`--sign-key` or
/// `GONOGO_SIGNING_KEY`) and the artifacts it vouches for (`--subject`).
#[derive(Debug, Clone)]
pub struct Signer {
    pub key: SigningKey,
    pub subjects: Vec<Subject>,
}

/// Where the tested code came from, for the statement.
pub struct Origin<'a> {
    /// The service's working directory, whose commit the evidence records.
    pub workdir: &'a Path,
    /// The CI run's page, when known.
    pub run_url: Option<&'a str>,
}

/// The signed attestation for `artifacts` (which must hold the manifest).
pub fn attestation(
    signer: &Signer,
    evidence: &Evidence,
    artifacts: &[Artifact],
    origin: &Origin<'_>,
    masker: &Masker,
) -> Result<Artifact, String> {
    let manifest = artifacts
        .iter()
        .find(|a| a.name == MANIFEST_FILE)
        .ok_or("the bundle has no manifest to attest")?;
    let statement = statement::statement(StatementInput {
        evidence,
        manifest_sha256: sha256_hex(&manifest.contents),
        subjects: signer
            .subjects
            .iter()
            .map(|s| (masker.mask(&s.name), s.sha256.clone()))
            .collect(),
        git_name: masker.mask(&format!("git+file://{}", origin.workdir.display())),
        url: origin.run_url.map(|u| masker.mask(u)),
    });
    let body =
        serde_json::to_vec(&statement).map_err(|e| format!("serialize the statement: {e}"))?;
    let line = Envelope::sign(&body, &signer.key)
        .to_line()
        .map_err(|e| format!("serialize the envelope: {e}"))?;
    Ok(Artifact {
        name: ATTESTATION_FILE.into(),
        contents: line,
    })
}

/// A bundle's attestation, read back.
#[derive(Debug, Clone)]
pub struct ReadAttestation {
    /// The key ids its signatures name.
    pub keyids: Vec<String>,
    /// Whether a signature was checked against a given key (and held).
    pub signature_checked: bool,
    pub statement: Statement,
}

/// Parse `attestation.intoto.jsonl` and, with `key`, check its signature.
/// The error says what is wrong (never "invalid" alone).
pub fn read(bytes: &[u8], key: Option<&VerifyingKey>) -> Result<ReadAttestation, String> {
    let envelope = Envelope::parse(bytes)?;
    if let Some(key) = key {
        envelope.verify(key)?;
    }
    let payload = envelope.payload_bytes()?;
    let statement: Statement = serde_json::from_slice(&payload)
        .map_err(|e| format!("its payload is not an in-toto test-result statement: {e}"))?;
    if statement.statement_type != STATEMENT_TYPE {
        return Err(format!(
            "its statement type is `{}`, not `{STATEMENT_TYPE}`",
            statement.statement_type
        ));
    }
    if statement.predicate_type != PREDICATE_TYPE {
        return Err(format!(
            "its predicate type is `{}`, not `{PREDICATE_TYPE}`",
            statement.predicate_type
        ));
    }
    Ok(ReadAttestation {
        keyids: envelope.keyids().into_iter().map(String::from).collect(),
        signature_checked: key.is_some(),
        statement,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::sample::evidence as sample;

    #[test]
    fn an_attestation_reads_back_and_binds_the_manifest() {
        let key = SigningKey::generate().unwrap();
        let signer = Signer {
            key: key.clone(),
            subjects: Vec::new(),
        };
        let artifacts = vec![Artifact {
            name: MANIFEST_FILE.into(),
            contents: b"{}\n".to_vec(),
        }];
        let origin = Origin {
            workdir: Path::new("/src/api"),
            run_url: None,
        };
        let artifact =
            attestation(&signer, &sample(), &artifacts, &origin, &Masker::new()).unwrap();
        assert_eq!(artifact.name, ATTESTATION_FILE);
        let read = read(&artifact.contents, Some(&key.verifying_key())).unwrap();
        assert!(read.signature_checked);
        assert_eq!(read.keyids, [key.keyid()]);
        assert_eq!(
            read.statement.manifest_sha256(),
            Some(sha256_hex(b"{}\n").as_str())
        );
        let other = SigningKey::generate().unwrap();
        let err = super::read(&artifact.contents, Some(&other.verifying_key())).unwrap_err();
        assert!(err.contains("does not verify"), "{err}");
    }
}
