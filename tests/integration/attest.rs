//! Signed bundles and `gonogo verify`, on real runs: `gonogo keygen`, the
//! reference proof with `--sign-key`, the envelope checked by gonogo and by
//! openssl (a tool gonogo did not write), every tampering case of issue 10,
//! and the key kept out of every artifact, output and child environment.
//!
//! cosign cannot be installed from the package registries this project
//! allows (no Debian package, nothing on PyPI or npm), so openssl is the
//! independent verifier; Python's `cryptography` is a second one when it
//! is importable.
//!
//! Two proofs run: the full reference proof, signed from a key file, and a
//! shorter NO-GO proof signed from `GONOGO_SIGNING_KEY`. Tampering tests
//! work on copies of the first bundle.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::artifacts::gate_scenario;
use crate::support::{
    all_files, evidence_dir, gonogo, leftovers, marker, processes_with_marker, reference_service,
    run_with_limit, scenario, stderr, stdout, wait_with_limit,
};

const LIMIT: Duration = Duration::from_secs(180);
const IMAGE_SHA: &str = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881";

/// A key pair made by `gonogo keygen` in a fresh directory.
fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    let mut command = gonogo(&marker("keygen"));
    command.arg("keygen").arg("--out").arg(dir);
    let output = run_with_limit(command, Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    (dir.join("gonogo.key"), dir.join("gonogo.pub"))
}

/// The base64 lines of a PEM file's body.
fn pem_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .map(String::from)
        .collect()
}

struct Signed {
    code: i32,
    transcript: String,
    dir: PathBuf,
    public: PathBuf,
    private: PathBuf,
    _scratch: tempfile::TempDir,
}

/// The reference proof, signed with a key from `gonogo keygen`.
fn signed_reference() -> &'static Signed {
    static RUN: OnceLock<Signed> = OnceLock::new();
    RUN.get_or_init(|| {
        reference_service();
        let scratch = tempfile::tempdir().unwrap();
        let (private, public) = keygen(&scratch.path().join("keys"));
        let out = scratch.path().join("evidence");
        let marker = marker("attest-signed");
        let mut command = gonogo(&marker);
        command
            .arg("run")
            .arg(scenario("scenarios/reference.toml"))
            .arg("--out")
            .arg(&out)
            .arg("--sign-key")
            .arg(&private)
            .arg("--subject")
            .arg(format!("ghcr.io/acme/api@sha256:{IMAGE_SHA}"))
            .env_remove("GONOGO_SIGNING_KEY");
        let output = run_with_limit(command, LIMIT);
        assert!(leftovers(&marker).is_empty(), "processes left behind");
        Signed {
            code: output.status.code().unwrap_or(-1),
            transcript: format!("{}{}", stdout(&output), stderr(&output)),
            dir: evidence_dir(&out),
            public,
            private,
            _scratch: scratch,
        }
    })
}

/// `gonogo verify DIR [args]`: (exit code, stdout + stderr).
fn verify(dir: &Path, args: &[&std::ffi::OsStr]) -> (i32, String) {
    let mut command = gonogo(&marker("attest-verify"));
    command.arg("verify").arg(dir).args(args);
    let output = run_with_limit(command, Duration::from_secs(30));
    (
        output.status.code().unwrap_or(-1),
        format!("{}{}", stdout(&output), stderr(&output)),
    )
}

fn with_key(key: &Path) -> Vec<&std::ffi::OsStr> {
    vec!["--key".as_ref(), key.as_os_str()]
}

/// A private copy of a bundle to tamper with.
fn copy_of(dir: &Path) -> (tempfile::TempDir, PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join(dir.file_name().unwrap());
    std::fs::create_dir(&copy).unwrap();
    for (name, _) in all_files(dir) {
        std::fs::copy(dir.join(&name), copy.join(&name)).unwrap();
    }
    (scratch, copy)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The envelope of a bundle, and the statement inside it.
fn envelope(dir: &Path) -> (Value, Value) {
    let line = std::fs::read_to_string(dir.join("attestation.intoto.jsonl")).unwrap();
    assert_eq!(line.lines().count(), 1, "one envelope on one line");
    let envelope: Value = serde_json::from_str(&line).unwrap();
    let payload = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    (envelope, serde_json::from_slice(&payload).unwrap())
}

#[test]
fn a_signed_reference_bundle_verifies_with_its_key() {
    let run = signed_reference();
    assert_eq!(run.code, 0, "{}", run.transcript);
    let (envelope, statement) = envelope(&run.dir);
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["predicateType"],
        "https://in-toto.io/attestation/test-result/v0.1"
    );
    let predicate = &statement["predicate"];
    assert_eq!(predicate["result"], "PASSED");
    assert_eq!(predicate["passedTests"].as_array().unwrap().len(), 18);
    assert_eq!(predicate["failedTests"], serde_json::json!([]));
    let subjects = statement["subject"].as_array().unwrap();
    let manifest_sha = sha256(&std::fs::read(run.dir.join("manifest.json")).unwrap());
    assert!(subjects.iter().any(|s| s["name"] == "manifest.json"
        && s["digest"]["sha256"] == manifest_sha.as_str()));
    assert!(
        subjects
            .iter()
            .any(|s| s["name"] == "ghcr.io/acme/api" && s["digest"]["sha256"] == IMAGE_SHA)
    );
    assert!(
        subjects
            .iter()
            .any(|s| s["digest"]["gitCommit"].is_string())
    );
    // The attestation signs the manifest, so the manifest cannot list it.
    let manifest = read_json(&run.dir.join("manifest.json"));
    assert!(
        !manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "attestation.intoto.jsonl")
    );

    let (code, out) = verify(&run.dir, &with_key(&run.public));
    assert_eq!(code, 0, "{out}");
    for expected in [
        "verdict   GO — 18 of 18 required steps passed",
        &format!("subject   ghcr.io/acme/api sha256:{IMAGE_SHA}"),
        &format!("subject   manifest.json sha256:{manifest_sha}"),
        "signature verified with --key",
        "PASS      1. migration-gate — Migration gate (Postgres)",
        "PASS     15. redis-recovery",
    ] {
        assert!(out.contains(expected), "{expected}\n{out}");
    }
    let keyid = envelope["signatures"][0]["keyid"].as_str().unwrap();
    assert!(out.contains(keyid), "{out}");
}

#[test]
fn openssl_verifies_the_envelope_gonogo_wrote() {
    let run = signed_reference();
    let (envelope, _) = envelope(&run.dir);
    let scratch = tempfile::tempdir().unwrap();
    // PAE, written out here from the DSSE spec, not by gonogo's code.
    let payload_type = envelope["payloadType"].as_str().unwrap();
    let body = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let mut pae = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        body.len()
    )
    .into_bytes();
    pae.extend_from_slice(&body);
    let pae_file = scratch.path().join("pae.bin");
    std::fs::write(&pae_file, &pae).unwrap();
    let sig = STANDARD
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let sig_file = scratch.path().join("sig.der");
    std::fs::write(&sig_file, sig).unwrap();
    let openssl = |args: &[&std::ffi::OsStr]| {
        let output = Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl");
        let err = stderr(&output);
        (output.status.success(), output.stdout, err)
    };
    let (ok, out, err) = openssl(&[
        "dgst".as_ref(),
        "-sha256".as_ref(),
        "-verify".as_ref(),
        run.public.as_os_str(),
        "-signature".as_ref(),
        sig_file.as_os_str(),
        pae_file.as_os_str(),
    ]);
    assert!(ok, "openssl: {err}");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "Verified OK");
    // A changed byte fails openssl too: the check could fail.
    pae[20] ^= 1;
    std::fs::write(&pae_file, &pae).unwrap();
    let (ok, ..) = openssl(&[
        "dgst".as_ref(),
        "-sha256".as_ref(),
        "-verify".as_ref(),
        run.public.as_os_str(),
        "-signature".as_ref(),
        sig_file.as_os_str(),
        pae_file.as_os_str(),
    ]);
    assert!(!ok, "openssl must reject a changed payload");
    // The key id is the SHA-256 of the public key's DER, as openssl sees it.
    let (ok, der, err) = openssl(&[
        "pkey".as_ref(),
        "-pubin".as_ref(),
        "-in".as_ref(),
        run.public.as_os_str(),
        "-outform".as_ref(),
        "DER".as_ref(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        envelope["signatures"][0]["keyid"],
        format!("SHA256:{}", sha256(&der))
    );
    // openssl reads the private key as the PKCS#8 it claims to be.
    let (ok, _, err) = openssl(&[
        "pkey".as_ref(),
        "-in".as_ref(),
        run.private.as_os_str(),
        "-noout".as_ref(),
    ]);
    assert!(ok, "{err}");
    pae[20] ^= 1;
    std::fs::write(&pae_file, &pae).unwrap();
    python_verifies(&run.public, &sig_file, &pae_file);
}

/// A second independent verifier, when Python's `cryptography` is there.
fn python_verifies(public: &Path, sig: &Path, message: &Path) {
    let script = "import sys\n\
        from cryptography.hazmat.primitives import serialization, hashes\n\
        from cryptography.hazmat.primitives.asymmetric import ec\n\
        key = serialization.load_pem_public_key(open(sys.argv[1], 'rb').read())\n\
        key.verify(open(sys.argv[2], 'rb').read(), open(sys.argv[3], 'rb').read(), ec.ECDSA(hashes.SHA256()))\n\
        print('verified')\n";
    let available = Command::new("python3")
        .args(["-c", "import cryptography"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        eprintln!("SKIPPED the Python check: python3 with `cryptography` is not installed");
        return;
    }
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(public)
        .arg(sig)
        .arg(message)
        .output()
        .unwrap();
    assert_eq!(stdout(&output).trim(), "verified", "{}", stderr(&output));
}

/// Edit report.md and recompute its hash in the manifest.
fn forge_report(dir: &Path) -> String {
    let forged = b"# Go/No-Go evidence: reference\n\n> **Verdict: GO** (edited)\n";
    std::fs::write(dir.join("report.md"), forged).unwrap();
    let path = dir.join("manifest.json");
    let mut manifest = read_json(&path);
    for file in manifest["files"].as_array_mut().unwrap() {
        if file["path"] == "report.md" {
            file["sha256"] = sha256(forged).into();
            file["bytes"] = forged.len().into();
        }
    }
    write_json(&path, &manifest);
    sha256(&std::fs::read(&path).unwrap())
}

#[test]
fn a_rehashed_report_is_caught_by_the_key_and_only_by_the_key() {
    let run = signed_reference();
    // Edited report, manifest rehashed, attestation left alone: its
    // statement still names the old manifest.
    let (_keep, forged) = copy_of(&run.dir);
    forge_report(&forged);
    let (code, out) = verify(&forged, &[]);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains("its statement names manifest.json sha256"),
        "{out}"
    );

    // The careful forger also rewrites the statement's manifest digest;
    // the signature now covers other bytes. Without a key it passes,
    // saying the signature was not checked; with the key it fails.
    let (_keep, forged) = copy_of(&run.dir);
    let manifest_sha = forge_report(&forged);
    let path = forged.join("attestation.intoto.jsonl");
    let (mut envelope, mut statement) = envelope(&forged);
    for subject in statement["subject"].as_array_mut().unwrap() {
        if subject["name"] == "manifest.json" {
            subject["digest"]["sha256"] = manifest_sha.clone().into();
        }
    }
    envelope["payload"] = STANDARD
        .encode(serde_json::to_vec(&statement).unwrap())
        .into();
    std::fs::write(&path, serde_json::to_vec(&envelope).unwrap()).unwrap();
    let (code, out) = verify(&forged, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("signature NOT checked"), "{out}");
    let (code, out) = verify(&forged, &with_key(&run.public));
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("the signature does not verify"), "{out}");
}

#[test]
fn a_wrong_key_a_corrupt_envelope_and_a_missing_one_are_named() {
    let run = signed_reference();
    let scratch = tempfile::tempdir().unwrap();
    let (_, other) = keygen(&scratch.path().join("other"));
    let (code, out) = verify(&run.dir, &with_key(&other));
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains(
            "signature: attestation.intoto.jsonl: the signature does not verify with key SHA256:"
        ),
        "{out}"
    );

    let (_keep, corrupt) = copy_of(&run.dir);
    let path = corrupt.join("attestation.intoto.jsonl");
    let line = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &line[..line.len() / 2]).unwrap();
    for args in [vec![], with_key(&run.public)] {
        let (code, out) = verify(&corrupt, &args);
        assert_eq!(code, 5, "{out}");
        assert!(out.contains("not a DSSE envelope"), "{out}");
    }

    let (_keep, unsigned) = copy_of(&run.dir);
    std::fs::remove_file(unsigned.join("attestation.intoto.jsonl")).unwrap();
    let (code, out) = verify(&unsigned, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("; unsigned"), "{out}");
    let (code, out) = verify(&unsigned, &with_key(&run.public));
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("the bundle is not signed"), "{out}");

    // A private key is not a verification key: a usage error.
    let (code, out) = verify(&run.dir, &with_key(&run.private));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("is a private key"), "{out}");
}

/// Issue 10's tampering cases, each on its own copy.
#[test]
fn every_tampering_case_of_issue_10_is_tampered() {
    let run = signed_reference();
    let edit = |name: &str, change: &dyn Fn(&mut Value)| {
        let (keep, copy) = copy_of(&run.dir);
        let path = copy.join(name);
        let mut json = read_json(&path);
        change(&mut json);
        write_json(&path, &json);
        (keep, copy)
    };
    let cases: Vec<(&str, (tempfile::TempDir, PathBuf), &str)> = vec![
        (
            "verdict",
            edit("manifest.json", &|m| m["verdict"] = "NO-GO".into()),
            "differs: verdict is `NO-GO` in manifest.json but `GO` in evidence.json",
        ),
        (
            "git sha",
            edit("manifest.json", &|m| {
                m["service_git_sha"] = "0000000000000000000000000000000000000000".into()
            }),
            "differs: service_git_sha",
        ),
        (
            "finish time",
            edit("manifest.json", &|m| {
                m["finished_utc"] = "2030-01-01T00:00:00Z".into()
            }),
            "differs: finished_utc",
        ),
    ];
    for (what, (_keep, dir), expected) in cases {
        let (code, out) = verify(&dir, &[]);
        assert_eq!(code, 5, "{what}: {out}");
        assert!(out.contains(expected), "{what}: {out}");
    }

    // Every artifact deleted and `files: []`.
    let (_keep, emptied) = edit("manifest.json", &|m| m["files"] = serde_json::json!([]));
    for (name, _) in all_files(&emptied) {
        if name != "manifest.json" {
            std::fs::remove_file(emptied.join(name)).unwrap();
        }
    }
    let (code, out) = verify(&emptied, &[]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("empty: manifest.json lists no files"), "{out}");
    assert!(out.contains("does not list evidence.json"), "{out}");

    // report.md replaced by a FIFO: verify must neither hang nor read it.
    let (_keep, fifo) = copy_of(&run.dir);
    std::fs::remove_file(fifo.join("report.md")).unwrap();
    let status = Command::new("mkfifo")
        .arg(fifo.join("report.md"))
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let (code, out) = verify(&fifo, &[]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("not a file: report.md is a FIFO"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(20));

    // manifest.json deleted: tampering, exit 5.
    let (_keep, bare) = copy_of(&run.dir);
    std::fs::remove_file(bare.join("manifest.json")).unwrap();
    let (code, out) = verify(&bare, &[]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("manifest.json is missing"), "{out}");
}

#[test]
fn a_pinned_manifest_sha256_must_match() {
    let run = signed_reference();
    let actual = sha256(&std::fs::read(run.dir.join("manifest.json")).unwrap());
    let pin = |hex: &str| {
        verify(
            &run.dir,
            &[
                "--expect-manifest-sha256".as_ref(),
                std::ffi::OsStr::new(hex),
            ],
        )
    };
    let (code, out) = pin(&actual);
    assert_eq!(code, 0, "{out}");
    let other = "f".repeat(64);
    let (code, out) = pin(&other);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains(&format!(
            "pinned: manifest.json has sha256 {actual}, not the expected {other}"
        )),
        "{out}"
    );
    let (code, out) = pin("abc");
    assert_eq!(code, 2, "{out}");
}

#[test]
fn bad_keys_and_subjects_are_usage_errors_before_anything_starts() {
    let scratch = tempfile::tempdir().unwrap();
    let (private, public) = keygen(&scratch.path().join("keys"));
    let out = scratch.path().join("evidence");
    let garbage = scratch.path().join("garbage.key");
    std::fs::write(&garbage, "not a key at all\n").unwrap();
    let hex = "a".repeat(64);
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec![
                "--sign-key".into(),
                scratch.path().join("missing.key").into(),
            ],
            "missing.key: read it",
        ),
        (
            vec!["--sign-key".into(), garbage.clone().into()],
            "garbage.key: it is not a PEM private key",
        ),
        (
            vec!["--sign-key".into(), public.clone().into()],
            "it is a public key",
        ),
        (
            vec!["--sign-key".into(), scratch.path().into()],
            "it is a directory",
        ),
        (
            vec![
                "--sign-key".into(),
                private.clone().into(),
                "--subject".into(),
                "api@sha256:ABC".into(),
            ],
            "the digest must be 64 lower-case hex characters",
        ),
        (
            vec!["--subject".into(), format!("api@sha256:{hex}").into()],
            "--subject goes into the signed attestation",
        ),
    ];
    for (args, expected) in cases {
        let mut command = gonogo(&marker("attest-usage"));
        command
            .arg("run")
            .arg(scenario("scenarios/reference.toml"))
            .arg("--out")
            .arg(&out)
            .args(&args)
            .env_remove("GONOGO_SIGNING_KEY");
        let output = run_with_limit(command, Duration::from_secs(30));
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(
            !err.contains("provision"),
            "found before provisioning: {err}"
        );
        assert!(!out.exists(), "no evidence for a usage error");
    }
    // A key in the environment that is not a key names the variable only.
    let mut command = gonogo(&marker("attest-usage"));
    command
        .arg("run")
        .arg(scenario("scenarios/reference.toml"))
        .arg("--out")
        .arg(&out)
        .env(
            "GONOGO_SIGNING_KEY",
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0IG5vdCBhIGtleQ==\n-----END PRIVATE KEY-----\n",
        );
    let output = run_with_limit(command, Duration::from_secs(30));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("GONOGO_SIGNING_KEY: it is not a PKCS#8"),
        "{err}"
    );
    assert!(!err.contains("c2VjcmV0IG5vdCBhIGtleQ"), "{err}");
    // keygen keeps an existing pair.
    let mut command = gonogo(&marker("attest-usage"));
    command
        .arg("keygen")
        .arg("--out")
        .arg(scratch.path().join("keys"));
    let output = run_with_limit(command, Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--force"), "{}", stderr(&output));
}

/// The key from `GONOGO_SIGNING_KEY` signs, and reaches no child, no
/// process environment, no artifact and no output. One body line is also
/// handed to the service on purpose (`--env LEAKED_LINE=…`, which the
/// report shows in the service's command line), so the masker must know it.
#[test]
fn a_key_from_the_environment_signs_and_never_leaks() {
    reference_service();
    let scratch = tempfile::tempdir().unwrap();
    let (private, public) = keygen(&scratch.path().join("keys"));
    let pem = std::fs::read_to_string(&private).unwrap();
    let lines = pem_lines(&private);
    let leaked_line = lines.last().unwrap().clone();
    let scenario_file = gate_scenario(scratch.path(), "gate", "");
    let out = scratch.path().join("evidence");
    let step_summary = scratch.path().join("step-summary.md");
    let marker = marker("attest-env-key");
    let mut command = gonogo(&marker);
    command
        .arg("run")
        .arg(&scenario_file)
        .arg("--out")
        .arg(&out)
        .args(["--env", "REFERENCE_FLAW=ready-500", "--env"])
        .arg(format!("LEAKED_LINE={leaked_line}"))
        .env("GONOGO_SIGNING_KEY", &pem)
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let gonogo_pid = child.id();
    // The latest environment seen per process: gonogo scrubs its own copy
    // first thing, and a snapshot taken before that is not the steady state.
    let mut seen = std::collections::BTreeMap::new();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < LIMIT, "gonogo did not finish");
        for (pid, cmdline) in processes_with_marker(&marker) {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let text = String::from_utf8_lossy(&environ).into_owned();
            if !text.is_empty() {
                seen.insert(pid, (cmdline, text));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = wait_with_limit(child, LIMIT);
    assert!(leftovers(&marker).is_empty(), "processes left behind");
    assert!(seen.len() > 2, "expected gonogo and its children: {seen:?}");
    assert!(
        seen.values()
            .any(|(cmdline, _)| cmdline.contains("reference-service")),
        "the service was never seen"
    );
    // A child caught between fork and exec still shows gonogo's own block
    // (same command line); it holds the name with the value zeroed.
    let gonogo_cmdline = seen.get(&gonogo_pid).map(|(c, _)| c.clone());
    for (pid, (cmdline, environ)) in &seen {
        for var in environ.split('\0') {
            // gonogo's own initial block keeps the name, its value zeroed;
            // no child that runs its own program may have the variable.
            let gonogo_block = *pid == gonogo_pid || Some(cmdline) == gonogo_cmdline.as_ref();
            let allowed = gonogo_block && var == "GONOGO_SIGNING_KEY=";
            assert!(
                !var.starts_with("GONOGO_SIGNING_KEY=") || allowed,
                "pid {pid} ({cmdline}) has GONOGO_SIGNING_KEY"
            );
        }
        assert!(
            !environ.contains(lines[0].as_str()),
            "pid {pid} ({cmdline}) holds the key in its environment"
        );
    }
    let code = output.status.code();
    let transcript = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(code, Some(1), "NO-GO expected: {transcript}");
    let dir = evidence_dir(&out);
    let mut texts = all_files(&dir);
    texts.push(("stdout and stderr".into(), transcript));
    let summary = std::fs::read_to_string(&step_summary).unwrap();
    assert!(
        summary.contains("Signed: `attestation.intoto.jsonl`"),
        "{summary}"
    );
    texts.push(("step summary".into(), summary));
    let body: String = lines.concat();
    let report = texts.iter().find(|(n, _)| n == "report.md").unwrap();
    assert!(
        report.1.contains("LEAKED_LINE=***"),
        "the masker must know every key line"
    );
    for (name, text) in &texts {
        for line in &lines {
            assert!(
                !text.contains(line.as_str()),
                "{name} holds a line of the key"
            );
        }
        assert!(!text.contains(&body), "{name} holds the key");
    }

    let (_, statement) = envelope(&dir);
    let predicate = &statement["predicate"];
    assert_eq!(predicate["result"], "FAILED");
    assert_eq!(
        predicate["failedTests"],
        serde_json::json!(["negative-proof"])
    );
    assert_eq!(
        predicate["warnedTests"],
        serde_json::json!(["runtime-faults"])
    );
    assert_eq!(
        predicate["gonogo"]["waivers"][0]["approver"],
        "gonogo-tests"
    );
    let (code, out) = verify(&dir, &with_key(&public));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verdict   NO-GO"), "{out}");
    assert!(out.contains("FAIL      3. negative-proof"), "{out}");
    assert!(out.contains("WAIVED"), "{out}");
}

/// The openssl + jq recipe in docs/ci.md, run as written.
#[test]
fn the_documented_openssl_recipe_verifies_the_bundle() {
    let jq = Command::new("jq").arg("--version").output();
    if !jq.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED the docs/ci.md recipe: jq is not installed");
        return;
    }
    let run = signed_reference();
    let doc = std::fs::read_to_string(crate::support::repo().join("docs/ci.md")).unwrap();
    let start = doc
        .find("# verify-attestation.sh DIR")
        .expect("docs/ci.md holds the recipe");
    let end = start + doc[start..].find("\n```").unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let script = scratch.path().join("verify-attestation.sh");
    std::fs::write(&script, &doc[start..end]).unwrap();
    std::fs::copy(&run.public, scratch.path().join("gonogo.pub")).unwrap();
    let recipe = |dir: &Path| {
        let output = Command::new("bash")
            .arg(&script)
            .arg(dir)
            .current_dir(scratch.path())
            .output()
            .unwrap();
        (
            output.status.success(),
            format!("{}{}", stdout(&output), stderr(&output)),
        )
    };
    let (ok, out) = recipe(&run.dir);
    assert!(ok, "{out}");
    assert!(out.contains("Verified OK"), "{out}");
    assert!(
        out.contains("signed and intact: 18 of 18 required steps passed"),
        "{out}"
    );
    let (_keep, forged) = copy_of(&run.dir);
    forge_report(&forged);
    let (ok, out) = recipe(&forged);
    assert!(!ok, "a rehashed report must fail the recipe: {out}");
}
