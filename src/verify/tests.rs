use std::fs;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::attest::key::SigningKey;
use crate::attest::{Origin, Signer, attestation};
use crate::evidence::manifest::{manifest, render as render_manifest};
use crate::evidence::sample::evidence as sample;
use crate::evidence::write::Artifact;
use crate::mask::Masker;

/// A bundle of the sample run: report.md, evidence.json, manifest.json,
/// and, with a key, its attestation.
fn bundle_with(key: Option<&SigningKey>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let evidence = sample();
    let mut artifacts = vec![
        Artifact {
            name: "report.md".into(),
            contents: b"# report\n".to_vec(),
        },
        Artifact {
            name: "evidence.json".into(),
            contents: serde_json::to_vec_pretty(&evidence).unwrap(),
        },
    ];
    let m = render_manifest(&manifest(&evidence, &artifacts)).unwrap();
    artifacts.push(Artifact {
        name: MANIFEST_FILE.into(),
        contents: m,
    });
    if let Some(key) = key {
        let signer = Signer {
            key: key.clone(),
            subjects: Vec::new(),
        };
        let origin = Origin {
            workdir: Path::new("/src/api"),
            run_url: None,
        };
        let signed = attestation(&signer, &evidence, &artifacts, &origin, &Masker::new()).unwrap();
        artifacts.push(signed);
    }
    for a in artifacts {
        fs::write(dir.path().join(a.name), a.contents).unwrap();
    }
    dir
}

fn bundle() -> tempfile::TempDir {
    bundle_with(None)
}

fn check(dir: &Path) -> Verification {
    verify(dir, &VerifyOptions::default()).unwrap()
}

fn with_key(dir: &Path, key: &SigningKey) -> Verification {
    let options = VerifyOptions {
        key: Some(key.verifying_key()),
        expect_manifest_sha256: None,
    };
    verify(dir, &options).unwrap()
}

/// Edit the manifest as JSON and write it back (hashes untouched).
fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join(MANIFEST_FILE);
    let mut json: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    edit(&mut json);
    fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
}

/// Replace a file and recompute its hash in the manifest, as a careful
/// forger would.
fn forge(dir: &Path, name: &str, contents: &[u8]) {
    fs::write(dir.join(name), contents).unwrap();
    let sha = sha256_hex(contents);
    edit_manifest(dir, |m| {
        for f in m["files"].as_array_mut().unwrap() {
            if f["path"] == name {
                f["sha256"] = sha.clone().into();
                f["bytes"] = contents.len().into();
            }
        }
    });
}

#[test]
fn an_untouched_bundle_is_intact_and_summarized() {
    let dir = bundle();
    let v = check(dir.path());
    assert!(v.intact(), "{:?}", v.mismatches);
    assert_eq!(v.matched, 2);
    assert_eq!(v.signature, Signature::Unsigned);
    let text = render(&v);
    assert!(text.starts_with("verdict   NO-GO — 1 of 4"), "{text}");
    assert!(
        text.contains("subject   service commit 0123456789abcdef"),
        "{text}"
    );
    assert!(text.contains("signer    none: unsigned"), "{text}");
    assert!(
        text.contains("steps     PASS      1. a-step — Title of a-step"),
        "{text}"
    );
    assert!(text.contains("          NOT RUN   3. c-step"), "{text}");
    assert!(text.contains("2 files match manifest.json"), "{text}");
    assert!(text.trim_end().ends_with("; unsigned"), "{text}");
}

#[test]
fn changes_removals_and_additions_are_named() {
    let dir = bundle();
    fs::write(dir.path().join("report.md"), b"# report!\n").unwrap();
    fs::remove_file(dir.path().join("evidence.json")).unwrap();
    fs::create_dir(dir.path().join("extra")).unwrap();
    fs::write(dir.path().join("extra/notes.txt"), b"hi").unwrap();
    let v = check(dir.path());
    assert_eq!(
        v.mismatches,
        [
            Mismatch::Removed("evidence.json".into()),
            Mismatch::Changed("report.md".into()),
            Mismatch::Added("extra/notes.txt".into()),
        ]
    );
    assert!(render(&v).starts_with("TAMPERED "), "{}", render(&v));
}

#[test]
fn a_missing_manifest_is_tampering_and_a_broken_one_too() {
    let dir = bundle();
    fs::remove_file(dir.path().join(MANIFEST_FILE)).unwrap();
    assert_eq!(check(dir.path()).mismatches, [Mismatch::MissingManifest]);
    fs::write(dir.path().join(MANIFEST_FILE), b"{ nope").unwrap();
    let v = check(dir.path());
    assert!(matches!(v.mismatches[..], [Mismatch::BadManifest(_)]));
}

#[test]
fn an_evidence_root_is_a_usage_error_with_a_hint() {
    let root = tempfile::tempdir().unwrap();
    let inner = bundle();
    let target = root.path().join("20260301T100000Z-sample");
    fs::rename(inner.path(), &target).unwrap();
    let Err(Error::Usage(message)) = verify(root.path(), &VerifyOptions::default()) else {
        panic!("an evidence root must be a usage error");
    };
    assert!(message.contains("gonogo verify"), "{message}");
    assert!(message.contains("20260301T100000Z-sample"), "{message}");
}

#[test]
fn a_verdict_or_metadata_edited_in_the_manifest_is_caught() {
    let dir = bundle();
    edit_manifest(dir.path(), |m| {
        m["verdict"] = "GO".into();
        m["service_git_sha"] = "fedcba9876543210fedcba9876543210fedcba98".into();
        m["finished_utc"] = "2026-03-02T00:00:00Z".into();
    });
    let v = check(dir.path());
    let fields: Vec<&str> = v
        .mismatches
        .iter()
        .filter_map(|m| match m {
            Mismatch::Differs { field, .. } => Some(*field),
            _ => None,
        })
        .collect();
    assert_eq!(
        fields,
        ["verdict", "finished_utc", "service_git_sha"],
        "{:?}",
        v.mismatches
    );
    let text = v.mismatches[0].to_string();
    assert_eq!(
        text,
        "differs: verdict is `GO` in manifest.json but `NO-GO` in evidence.json"
    );
}

#[test]
fn a_verdict_forged_everywhere_still_contradicts_the_steps() {
    let dir = bundle();
    let mut evidence: Value =
        serde_json::from_slice(&fs::read(dir.path().join("evidence.json")).unwrap()).unwrap();
    evidence["verdict"] = "GO".into();
    forge(
        dir.path(),
        "evidence.json",
        &serde_json::to_vec(&evidence).unwrap(),
    );
    edit_manifest(dir.path(), |m| m["verdict"] = "GO".into());
    let v = check(dir.path());
    assert_eq!(
        v.mismatches,
        [Mismatch::StepsDisagree {
            stated: Verdict::Go,
            implied: Verdict::NoGo
        }]
    );
}

#[test]
fn an_emptied_bundle_is_refused() {
    let dir = bundle();
    fs::remove_file(dir.path().join("report.md")).unwrap();
    fs::remove_file(dir.path().join("evidence.json")).unwrap();
    edit_manifest(dir.path(), |m| m["files"] = serde_json::json!([]));
    let v = check(dir.path());
    assert_eq!(v.mismatches, [Mismatch::NoFiles, Mismatch::NoEvidence]);
}

#[test]
fn a_fifo_in_place_of_a_file_does_not_hang_verify() {
    let dir = bundle();
    let report = dir.path().join("report.md");
    fs::remove_file(&report).unwrap();
    let c = std::ffi::CString::new(report.display().to_string()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let v = check(dir.path());
    assert_eq!(
        v.mismatches,
        [Mismatch::NotRegular {
            path: "report.md".into(),
            kind: "a FIFO"
        }]
    );
}

#[test]
fn a_pinned_manifest_must_match() {
    let dir = bundle();
    let actual = check(dir.path()).manifest_sha256.unwrap();
    let pinned = |hex: &str| {
        let options = VerifyOptions {
            key: None,
            expect_manifest_sha256: Some(hex.to_string()),
        };
        verify(dir.path(), &options).unwrap()
    };
    assert!(pinned(&actual).intact());
    let other = "0".repeat(64);
    assert_eq!(
        pinned(&other).mismatches,
        [Mismatch::ManifestPin {
            expected: other.clone(),
            actual
        }]
    );
}

#[test]
fn a_signed_bundle_verifies_with_its_key_only() {
    let key = SigningKey::generate().unwrap();
    let dir = bundle_with(Some(&key));
    let v = with_key(dir.path(), &key);
    assert!(v.intact(), "{:?}", v.mismatches);
    assert_eq!(
        v.signature,
        Signature::Verified {
            keyid: key.keyid().into()
        }
    );
    let text = render(&v);
    assert!(text.contains("subject   manifest.json sha256:"), "{text}");
    assert!(
        text.contains("subject   git+file:///src/api gitCommit:0123"),
        "{text}"
    );
    assert!(text.contains("signature verified with --key"), "{text}");

    let unchecked = check(dir.path());
    assert!(unchecked.intact());
    assert!(render(&unchecked).contains("signature NOT checked"));

    let other = SigningKey::generate().unwrap();
    let v = with_key(dir.path(), &other);
    let [Mismatch::Attestation(why)] = &v.mismatches[..] else {
        panic!("{:?}", v.mismatches);
    };
    assert!(why.contains("the signature does not verify"), "{why}");
}

#[test]
fn a_forger_who_rehashes_and_rewrites_the_statement_is_caught_only_by_the_key() {
    let key = SigningKey::generate().unwrap();
    let dir = bundle_with(Some(&key));
    forge(dir.path(), "report.md", b"# all good, ship it\n");
    // Left alone, the statement still names the old manifest.
    let v = check(dir.path());
    assert!(
        v.mismatches[0]
            .to_string()
            .contains("its statement names manifest.json sha256"),
        "{:?}",
        v.mismatches
    );
    // Rewrite the payload too (the signature is now over other bytes).
    let path = dir.path().join(ATTESTATION_FILE);
    let mut envelope: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let payload = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let mut statement: Value = serde_json::from_slice(&payload).unwrap();
    let manifest_sha = sha256_hex(&fs::read(dir.path().join(MANIFEST_FILE)).unwrap());
    for subject in statement["subject"].as_array_mut().unwrap() {
        if subject["name"] == MANIFEST_FILE {
            subject["digest"]["sha256"] = manifest_sha.clone().into();
        }
    }
    envelope["payload"] = STANDARD
        .encode(serde_json::to_vec(&statement).unwrap())
        .into();
    fs::write(&path, serde_json::to_vec(&envelope).unwrap()).unwrap();

    let unchecked = check(dir.path());
    assert!(unchecked.intact(), "{:?}", unchecked.mismatches);
    assert!(matches!(unchecked.signature, Signature::NotChecked { .. }));
    let v = with_key(dir.path(), &key);
    assert!(!v.intact());
    assert!(
        v.mismatches[0]
            .to_string()
            .contains("the signature does not verify")
    );
}

#[test]
fn a_key_demands_a_signature_and_a_corrupt_envelope_is_tampering() {
    let key = SigningKey::generate().unwrap();
    let dir = bundle();
    let v = with_key(dir.path(), &key);
    let [Mismatch::Attestation(why)] = &v.mismatches[..] else {
        panic!("{:?}", v.mismatches);
    };
    assert!(why.contains("not signed"), "{why}");
    fs::write(dir.path().join(ATTESTATION_FILE), b"{\"payloadType\": 1}\n").unwrap();
    let v = check(dir.path());
    assert!(
        matches!(v.mismatches[..], [Mismatch::Attestation(_)]),
        "{:?}",
        v.mismatches
    );
    assert_eq!(v.signature, Signature::Invalid);
}

#[test]
fn manifest_paths_cannot_escape_the_bundle() {
    assert!(is_plain_relative("a/b.txt"));
    assert!(!is_plain_relative("../a"));
    assert!(!is_plain_relative("/etc/passwd"));
    assert!(!is_plain_relative("./a"));
}

#[test]
fn control_characters_from_a_bundle_are_not_printed() {
    assert_eq!(printable("a\x1b[2Jb\n"), "a?[2Jb?");
}

#[test]
fn a_manifest_that_lists_the_attestation_is_not_gonogos() {
    let key = SigningKey::generate().unwrap();
    let dir = bundle_with(Some(&key));
    let signed = fs::read(dir.path().join(ATTESTATION_FILE)).unwrap();
    edit_manifest(dir.path(), |m| {
        m["files"].as_array_mut().unwrap().push(serde_json::json!({
            "path": ATTESTATION_FILE, "sha256": sha256_hex(&signed), "bytes": signed.len()
        }));
    });
    let v = check(dir.path());
    let [Mismatch::BadManifest(why)] = &v.mismatches[..] else {
        panic!("{:?}", v.mismatches);
    };
    assert!(why.contains("cannot be in it"), "{why}");
}
