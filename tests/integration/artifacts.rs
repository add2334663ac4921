//! The CI and change-ticket artifacts of real runs: junit.xml, the
//! readiness scorecard, the GitHub step summary, the integrity manifest and
//! `gonogo verify`, waivers, `--format` and `gonogo render`.
//!
//! Runs use the reference scenario with the runtime fault steps switched
//! off (they have their own tests and take most of a run's time); the
//! resulting NOT RUN `runtime-faults` step is waived, which is exactly what
//! a waiver is for. Each kind of run happens once per test binary and is
//! shared by the tests that read it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    all_files, evidence_dir, gonogo, leftovers, marker, processes_with_marker, reference_service,
    repo, run_with_limit, stderr, stdout, wait_with_limit,
};

const LIMIT: Duration = Duration::from_secs(120);

/// Waives the NOT RUN fault step, so the four seed steps decide.
const FAULTS_WAIVER: &str = r#"
[[waiver]]
step = "runtime-faults"
justification = "runtime fault steps are proved by the proof tests, not here"
approver = "gonogo-tests"
expires = 2099-12-31
"#;

/// A scenario file: the reference scenario without its fault table, with
/// absolute paths, plus `extra` TOML.
pub fn gate_scenario(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let reference = std::fs::read_to_string(repo().join("scenarios/reference.toml")).unwrap();
    let base = match reference.find("\n[faults]") {
        Some(at) => &reference[..at],
        None => reference.as_str(),
    };
    let root = repo().display().to_string();
    let text = format!(
        "{}\n[faults]\nenabled = false\n{FAULTS_WAIVER}{extra}",
        base.replace("workdir = \"..\"", &format!("workdir = \"{root}\""))
            .replace(
                "dir = \"../reference-service/migrations\"",
                &format!("dir = \"{root}/reference-service/migrations\"")
            )
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// One finished run and everything it left.
struct Run {
    code: i32,
    transcript: String,
    dir: PathBuf,
    summary: String,
    _scratch: tempfile::TempDir,
}

impl Run {
    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", self.transcript))
    }

    fn json(&self, name: &str) -> Value {
        serde_json::from_str(&self.file(name)).unwrap()
    }
}

/// Run gonogo on a gate scenario with `extra` TOML and `args`, with a step
/// summary file that already holds an earlier step's text.
fn run(test: &str, extra: &str, args: &[&str]) -> Run {
    reference_service();
    let scratch = tempfile::tempdir().unwrap();
    let scenario = gate_scenario(scratch.path(), "gate", extra);
    let out = scratch.path().join("evidence");
    let summary = scratch.path().join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let marker = marker(test);
    let mut command = gonogo(&marker);
    command
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .args(args)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_SERVER_URL", "https://github.example")
        .env("GITHUB_REPOSITORY", "acme/service")
        .env("GITHUB_RUN_ID", "42")
        .env_remove("GONOGO_RELEASE")
        .env_remove("GONOGO_OWNER");
    let output = run_with_limit(command, LIMIT);
    assert!(leftovers(&marker).is_empty(), "processes left behind");
    let transcript = format!("{}{}", stdout(&output), stderr(&output));
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.starts_with("earlier step\n"),
        "the summary must be appended to: {summary}"
    );
    Run {
        code: output.status.code().unwrap_or(-1),
        dir: evidence_dir(&out),
        summary: summary["earlier step\n".len()..].to_string(),
        transcript,
        _scratch: scratch,
    }
}

const RELEASE: &str = "\n[release]\nversion = \"2026.03.01\"\nowner = \"platform-readiness\"\n";

/// A GO run: the four seed steps pass, the fault step is waived.
fn go_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| run("artifacts-go", RELEASE, &[]))
}

/// A NO-GO run (`ready-500`): the negative proof fails, and its waiver
/// expired long ago, so it still blocks. Flags override `[release]`.
fn no_go_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let extra = format!(
            "{RELEASE}\n[[waiver]]\nstep = \"negative-proof\"\njustification = \"an exception that ran out\"\napprover = \"bob\"\nexpires = 2020-01-01\n"
        );
        run(
            "artifacts-nogo",
            &extra,
            &[
                "--env",
                "REFERENCE_FLAW=ready-500",
                "--release",
                "2026.03.02-rc1",
                "--owner",
                "release-team",
            ],
        )
    })
}

fn redactions() -> Vec<(&'static str, &'static str)> {
    let mut filters = vec![
        (r#"timestamp="[^"]*""#, r#"timestamp="[TIMESTAMP]""#),
        (r#"time="[0-9.]+""#, r#"time="[TIME]""#),
        (r#""duration": [0-9.]+"#, r#""duration": "[SECONDS]""#),
        (r#"_latency_ms": [0-9.]+"#, r#"_latency_ms": "[MS]""#),
        (r"\b[0-9a-f]{64}\b", "[SHA256]"),
        (
            r#""git_sha": (null|"[0-9a-f]+")"#,
            r#""git_sha": "[GIT-SHA]""#,
        ),
        (r"/tmp/\.tmp[A-Za-z0-9]+", "[SCRATCH]"),
        (r"\d{8}T\d{6}Z-", "[STAMP]-"),
        (r#""environment": "[a-z]+""#, r#""environment": "[ENV]""#),
        (
            r#"name="gonogo.environment" value="[a-z]+""#,
            r#"name="gonogo.environment" value="[ENV]""#,
        ),
        (
            r#"name="gonogo.version" value="[^"]+""#,
            r#"name="gonogo.version" value="[VERSION]""#,
        ),
        (
            r#""gonogo_version": "[^"]+""#,
            r#""gonogo_version": "[VERSION]""#,
        ),
    ];
    filters.extend(crate::redactions());
    filters
}

fn snapshot_artifacts(label: &str, run: &Run) {
    insta::with_settings!({filters => redactions()}, {
        insta::assert_snapshot!(format!("{label}_junit"), run.file("junit.xml"));
        insta::assert_snapshot!(format!("{label}_scorecard"), run.file("readiness-scorecard.json"));
        insta::assert_snapshot!(format!("{label}_step_summary"), run.summary.clone());
    });
}

#[test]
fn go_run_artifacts() {
    let run = go_run();
    assert_eq!(run.code, 0, "{}", run.transcript);
    let scorecard = run.json("readiness-scorecard.json");
    assert_eq!(scorecard["overall_passed"], true);
    assert_eq!(scorecard["release"], "2026.03.01");
    assert_eq!(scorecard["owner"], "platform-readiness");
    assert!(run.summary.contains("gonogo: GO"), "{}", run.summary);
    snapshot_artifacts("go", run);
}

#[test]
fn no_go_run_artifacts() {
    let run = no_go_run();
    assert_eq!(run.code, 1, "{}", run.transcript);
    let scorecard = run.json("readiness-scorecard.json");
    assert_eq!(scorecard["overall_passed"], false);
    assert_eq!(scorecard["release"], "2026.03.02-rc1", "flags win");
    assert_eq!(scorecard["owner"], "release-team");
    assert!(run.summary.contains("gonogo: NO-GO"), "{}", run.summary);
    snapshot_artifacts("no_go", run);
}

/// Parse junit.xml and compare its counts with evidence.json.
fn assert_junit_matches_evidence(run: &Run) {
    let xml = run.file("junit.xml");
    let doc = roxmltree::Document::parse(&xml).expect("junit.xml is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 1);
    let cases: Vec<_> = suites[0]
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let evidence = run.json("evidence.json");
    let steps = evidence["steps"].as_array().unwrap();
    let count = |status: &str| steps.iter().filter(|s| s["status"] == status).count();
    let with_child = |tag: &str| {
        cases
            .iter()
            .filter(|c| c.children().any(|n| n.has_tag_name(tag)))
            .count()
    };
    assert_eq!(cases.len(), steps.len());
    assert_eq!(with_child("failure"), count("FAIL"));
    assert_eq!(with_child("skipped"), count("NOT RUN"));
    assert_eq!(with_child("error"), 0);
    for node in [root, suites[0]] {
        let attr = |name| node.attribute(name).unwrap().parse::<usize>().unwrap();
        assert_eq!(attr("tests"), steps.len());
        assert_eq!(attr("failures"), count("FAIL"));
        assert_eq!(attr("errors"), 0);
    }
    // A waived step passes, and says so.
    for (case, step) in cases.iter().zip(steps) {
        if step["status"] == "WAIVED" {
            assert!(
                case.descendants()
                    .any(|n| n.attribute("name") == Some("gonogo.waiver.justification")),
                "waived test case must carry its waiver"
            );
        }
    }
}

#[test]
fn junit_counts_match_the_evidence() {
    let go = go_run();
    assert_junit_matches_evidence(go);
    let no_go = no_go_run();
    assert_junit_matches_evidence(no_go);
    let xml = no_go.file("junit.xml");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .expect("a failure element");
    assert_eq!(
        failure
            .attribute("message")
            .map(|m| m.starts_with("expected HTTP 503, observed HTTP 500")),
        Some(true),
        "{xml}"
    );
    assert!(
        failure.text().unwrap().contains("observed: HTTP 500"),
        "{xml}"
    );
}

#[test]
fn an_expired_waiver_does_not_turn_no_go_into_go() {
    let run = no_go_run();
    let evidence = run.json("evidence.json");
    assert_eq!(evidence["verdict"], "NO-GO");
    let waiver = evidence["waivers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["step"] == "negative-proof")
        .unwrap();
    assert_eq!(waiver["state"], "expired");
    let report = run.file("report.md");
    assert!(
        report.contains("| negative-proof | **EXPIRED**: no effect, the step stays FAIL | an exception that ran out | bob | 2020-01-01 |"),
        "{report}"
    );
    assert!(
        run.transcript
            .contains("the waiver for `negative-proof` expired on 2020-01-01"),
        "{}",
        run.transcript
    );
}

#[test]
fn a_valid_waiver_turns_no_go_into_go_and_the_report_shows_it() {
    let extra = "\n[[waiver]]\nstep = \"negative-proof\"\njustification = \"ready answers 500 until TICKET-42 ships in 1.4\"\napprover = \"alice@example.com\"\nexpires = \"2099-12-31\"\n";
    let run = run(
        "artifacts-waived",
        extra,
        &["--env", "REFERENCE_FLAW=ready-500", "--format", "md,junit"],
    );
    assert_eq!(run.code, 0, "{}", run.transcript);
    assert!(
        run.transcript
            .contains("Negative proof (Redis broken, ready 503) WAIVED in"),
        "the live progress shows the waived step as WAIVED:\n{}",
        run.transcript
    );
    let report = run.file("report.md");
    assert!(report.contains("**Verdict: GO**"), "{report}");
    assert!(report.contains("**WAIVED**"), "{report}");
    assert!(
        report.contains("| negative-proof | **applied**: was FAIL, now WAIVED | ready answers 500 until TICKET-42 ships in 1.4 | alice@example.com | 2099-12-31 |"),
        "{report}"
    );
    assert!(
        run.file("junit.xml")
            .contains("ready answers 500 until TICKET-42 ships in 1.4")
    );
    // --format md,junit: only those two, plus the model and the manifest,
    // which are always written.
    let mut names: Vec<String> = all_files(&run.dir).into_iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(
        names,
        ["evidence.json", "junit.xml", "manifest.json", "report.md"]
    );
    let (code, out) = verify(&run.dir);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_step_declared_not_applicable_shows_in_every_artifact_and_does_not_block_go() {
    let reason = "no strict mode: the service reads its configuration per request";
    let extra = format!("\n[[not_applicable]]\nstep = \"fail-fast\"\nreason = \"{reason}\"\n");
    let run = run("artifacts-not-applicable", &extra, &[]);
    assert_eq!(run.code, 0, "{}", run.transcript);
    let title = "Fail-fast (strict mode, no listener)";
    let evidence = run.json("evidence.json");
    assert_eq!(evidence["verdict"], "GO");
    let headline = evidence["headline"].as_str().unwrap();
    assert!(
        headline.starts_with("5 of 6 required steps passed; waived: Step 7")
            && headline.ends_with(&format!("; 1 not applicable: Step 4 ({title})")),
        "{headline}"
    );
    let step = evidence["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "fail-fast")
        .unwrap();
    assert_eq!(step["status"], "NOT APPLICABLE");
    assert_eq!(
        step["summary"],
        format!("declared not applicable: {reason}")
    );
    assert_eq!(step["actions"], Value::Array(vec![]), "it did not run");
    let xml = run.file("junit.xml");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let case = doc
        .descendants()
        .find(|n| {
            n.has_tag_name("testcase")
                && n.attribute("name")
                    .is_some_and(|name| name.starts_with("fail-fast:"))
        })
        .unwrap();
    let skipped = case
        .children()
        .find(|n| n.has_tag_name("skipped"))
        .expect("a skipped test case");
    assert_eq!(skipped.attribute("type"), Some("NOT APPLICABLE"), "{xml}");
    assert!(
        skipped.attribute("message").unwrap().contains(reason),
        "{xml}"
    );
    let scorecard = run.json("readiness-scorecard.json");
    assert_eq!(scorecard["overall_passed"], true);
    let suite = scorecard["suites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "fail-fast")
        .unwrap();
    assert_eq!(suite["status"], "not_applicable");
    let report = run.file("report.md");
    let screen = &report[..report.find("\n## Appendix").expect("an appendix")];
    assert!(
        screen.contains(
            "| 4 | In strict mode, a missing or unsafe dependency setting stops the service at boot: it exits non-zero and never answers HTTP. | **NOT APPLICABLE** | — |"
        ),
        "{screen}"
    );
    assert!(
        screen.contains(&format!(
            "**Not proven**\n\n- Step 4 **NOT APPLICABLE**: declared not applicable: {reason}\n"
        )),
        "{screen}"
    );
    assert!(screen.lines().count() <= 60, "{screen}");
    assert!(
        run.summary
            .contains(&format!("| 4 | {title} | NOT APPLICABLE |")),
        "{}",
        run.summary
    );
    assert!(
        run.transcript.contains(&format!("{title} NOT APPLICABLE")),
        "{}",
        run.transcript
    );
}

/// `gonogo verify DIR`: (exit code, stdout + stderr).
fn verify(dir: &Path) -> (i32, String) {
    let mut command = gonogo(&marker("verify"));
    command.arg("verify").arg(dir);
    let output = run_with_limit(command, Duration::from_secs(30));
    (
        output.status.code().unwrap_or(-1),
        format!("{}{}", stdout(&output), stderr(&output)),
    )
}

/// A private copy of a run's evidence directory to tamper with.
fn copy_of(dir: &Path) -> (tempfile::TempDir, PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join(dir.file_name().unwrap());
    std::fs::create_dir(&copy).unwrap();
    for (name, _) in all_files(dir) {
        std::fs::copy(dir.join(&name), copy.join(&name)).unwrap();
    }
    (scratch, copy)
}

#[test]
fn verify_passes_an_untouched_bundle_and_names_every_tampering() {
    let run = go_run();
    let manifest = run.json("manifest.json");
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [
            "evidence.json",
            "junit.xml",
            "readiness-scorecard.json",
            "report.md"
        ]
    );
    assert_eq!(manifest["verdict"], "GO");
    assert!(manifest["scenario"]["sha256"].as_str().unwrap().len() == 64);
    assert!(manifest["command_line"].as_str().unwrap().contains("run"));
    assert!(manifest["started_utc"].as_str().unwrap().ends_with('Z'));

    let (code, out) = verify(&run.dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("4 files match"), "{out}");

    let (_keep, changed) = copy_of(&run.dir);
    let mut bytes = std::fs::read(changed.join("report.md")).unwrap();
    bytes[20] ^= 0x01;
    std::fs::write(changed.join("report.md"), bytes).unwrap();
    let (code, out) = verify(&changed);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("changed: report.md"), "{out}");

    let (_keep, removed) = copy_of(&run.dir);
    std::fs::remove_file(removed.join("junit.xml")).unwrap();
    let (code, out) = verify(&removed);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("removed: junit.xml"), "{out}");

    let (_keep, added) = copy_of(&run.dir);
    std::fs::write(added.join("approval.txt"), "looks good").unwrap();
    let (code, out) = verify(&added);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("added: approval.txt"), "{out}");

    let (_keep, bare) = copy_of(&run.dir);
    std::fs::remove_file(bare.join("manifest.json")).unwrap();
    let (code, out) = verify(&bare);
    assert_eq!(code, 5, "a missing manifest is tampering: {out}");
    assert!(out.contains("manifest.json is missing"), "{out}");
}

#[test]
fn render_rebuilds_the_report_from_evidence_json() {
    let run = no_go_run();
    let evidence = run.dir.join("evidence.json");
    let mut command = gonogo(&marker("render"));
    command.arg("render").arg(&evidence);
    let output = run_with_limit(command, Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), run.file("report.md"));

    let scratch = tempfile::tempdir().unwrap();
    let template = scratch.path().join("cab.md.j2");
    std::fs::write(
        &template,
        "CAB: {{ scenario.name }} is {{ verdict }}\n{% for w in waivers %}{{ w.step }} {{ w.state }}\n{% endfor %}",
    )
    .unwrap();
    let out = scratch.path().join("ticket.md");
    let mut command = gonogo(&marker("render"));
    command
        .arg("render")
        .arg(&evidence)
        .arg("--template")
        .arg(&template)
        .arg("--out")
        .arg(&out);
    let output = run_with_limit(command, Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let ticket = std::fs::read_to_string(&out).unwrap();
    assert!(ticket.starts_with("CAB: reference is NO-GO\n"), "{ticket}");
    assert!(ticket.contains("negative-proof expired"), "{ticket}");
}

/// `evidence.json` files written by earlier versions of gonogo: the first
/// one (four steps; no phases, timelines, waivers, masking or release) and
/// the committed example of 2026-11-23, whose report then had 962 lines.
const OLD_EVIDENCE: [(&str, usize); 2] = [
    ("tests/fixtures/evidence/2026-11-23-four-steps.json", 4),
    ("tests/fixtures/evidence/2026-11-23-reference.json", 15),
];

#[test]
fn render_reads_evidence_from_earlier_versions() {
    for (fixture, steps) in OLD_EVIDENCE {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(fixture);
        let mut command = gonogo(&marker("render-old"));
        command.arg("render").arg(&path);
        let output = run_with_limit(command, Duration::from_secs(30));
        assert_eq!(
            output.status.code(),
            Some(0),
            "{fixture}: {}",
            stderr(&output)
        );
        let report = stdout(&output);
        assert!(
            report.starts_with("# Go/No-Go evidence: reference\n\n> **Verdict: GO** — "),
            "{report}"
        );
        let screen = &report[..report.find("\n## Appendix").unwrap()];
        assert!(screen.lines().count() <= 60, "{fixture}:\n{screen}");
        assert_eq!(
            screen
                .lines()
                .filter(|l| l.contains("| **PASS** |"))
                .count(),
            steps,
            "{screen}"
        );
        assert_eq!(report.matches("<details><summary>Step ").count(), steps);
        assert!(
            !report.contains("provisioning 0 ms"),
            "{fixture}: phases it never recorded"
        );
    }
    // Every fact of the 962-line report, in at most half as many lines.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(OLD_EVIDENCE[1].0);
    let mut command = gonogo(&marker("render-old"));
    command.arg("render").arg(&path);
    let report = stdout(&run_with_limit(command, Duration::from_secs(30)));
    assert!(
        report.lines().count() <= 962 / 2,
        "{} lines",
        report.lines().count()
    );
    for fact in [
        "sha256 `b0329f06965da6db0c0155fab8e75405dd43e56749f0aecaff44ab9c81d6a322`",
        "commit `6e7ef5cdb8f1c9125031ff9d6d77ec35bb481746`",
        "runner vm*** (masked); operator release-bot; release 2026.11.23 (owner: platform-readiness)",
        "| 2.83 s | 2026-11-23T03:59:06.738Z | fault cleared | Postgres proxy forwards again |",
        "| ready answers within the 5 s probe deadline | HTTP 503 in 1803 ms | PASS |",
        "`redis://:***@127.0.0.1:33749/0`",
        "status counts: 200×200",
        "ready: fail Redis: PING timeout",
        "`HTTP/1.1 503 Service Unavailable` · `content-type: application/json`",
        "**GET /ready after the outage cleared**, **GET /ready after the blackhole cleared** (4 ms, 3 ms), the same answer 2 times",
    ] {
        assert!(report.contains(fact), "missing {fact}:\n{report}");
    }
}

/// The committed example is signed, and its public key is committed with
/// it: `gonogo verify evidence/example --key evidence/example.pub` passes.
#[test]
fn the_committed_example_verifies_with_its_key() {
    let mut command = gonogo(&marker("verify-example"));
    command
        .arg("verify")
        .arg(repo().join("evidence/example"))
        .arg("--key")
        .arg(repo().join("evidence/example.pub"));
    let output = run_with_limit(command, Duration::from_secs(30));
    let said = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(said.contains("signature verified"), "{said}");
}

/// The README shows the committed example's first screen, as it is.
#[test]
fn the_readme_excerpt_is_the_example_first_screen() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let report = std::fs::read_to_string(repo().join("evidence/example/report.md")).unwrap();
    let screen = &report[..report.find("\n---\n\n## Appendix").expect("an appendix")];
    let excerpt = readme
        .split("````markdown\n")
        .nth(1)
        .and_then(|rest| rest.split("\n````\n").next())
        .expect("a ````markdown excerpt in the README");
    assert_eq!(
        excerpt, screen,
        "copy the first screen of evidence/example/report.md into the README"
    );
    assert!(screen.lines().count() <= 60);
}

#[test]
fn a_bad_waiver_is_a_scenario_error_with_its_line() {
    let scratch = tempfile::tempdir().unwrap();
    let path = gate_scenario(
        scratch.path(),
        "bad-waiver",
        "\n[[waiver]]\nstep = \"ready-gate\"\njustification = \"j\"\napprover = \"a\"\nexpires = \"someday\"\n",
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text
        .lines()
        .position(|l| l == "expires = \"someday\"")
        .unwrap()
        + 1;
    let mut command = gonogo(&marker("bad-waiver"));
    command.arg("validate").arg(&path);
    let output = run_with_limit(command, Duration::from_secs(30));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!(":{line}:")), "{err}");
    assert!(err.contains("field `waiver.expires`"), "{err}");
}

#[test]
fn no_artifact_or_step_summary_holds_a_secret() {
    // As in proof.rs: the leak-secrets flaw prints both URLs, passwords
    // included; read the per-run passwords from the live service.
    reference_service();
    let scratch = tempfile::tempdir().unwrap();
    let scenario = gate_scenario(scratch.path(), "gate", "");
    let out = scratch.path().join("evidence");
    let summary = scratch.path().join("step-summary.md");
    let marker = marker("artifacts-leak");
    let mut command = gonogo(&marker);
    command
        .arg("run")
        .arg(&scenario)
        .args(["--env", "REFERENCE_FLAW=leak-secrets", "--out"])
        .arg(&out)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut passwords = std::collections::BTreeSet::new();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < LIMIT, "gonogo did not finish");
        for (pid, _) in processes_with_marker(&marker) {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            for var in environ.split(|b| *b == 0) {
                let var = String::from_utf8_lossy(var);
                for prefix in ["DATABASE_URL=", "REDIS_URL="] {
                    if let Some(password) = var
                        .strip_prefix(prefix)
                        .and_then(|url| url.split_once("://"))
                        .and_then(|(_, rest)| rest.split_once('@'))
                        .and_then(|(userinfo, _)| userinfo.split_once(':'))
                        .map(|(_, password)| password.to_string())
                        .filter(|p| !p.is_empty())
                    {
                        passwords.insert(password);
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = wait_with_limit(child, LIMIT);
    assert_eq!(passwords.len(), 2, "expected both passwords: {passwords:?}");
    assert_eq!(output.status.code(), Some(1), "NO-GO at the hygiene check");
    let dir = evidence_dir(&out);
    let mut files = all_files(&dir);
    files.push((
        "step summary".into(),
        std::fs::read_to_string(&summary).unwrap_or_default(),
    ));
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "junit.xml",
        "readiness-scorecard.json",
        "manifest.json",
        "step summary",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    for (name, text) in &files {
        assert!(!text.is_empty(), "{name} is empty\n{}", stderr(&output));
        for password in &passwords {
            assert!(!text.contains(password.as_str()), "{name} holds a password");
        }
    }
    assert!(
        files.iter().any(|(_, text)| text.contains("redis://:***@")),
        "the leaked URL should reach the evidence, masked"
    );
}
