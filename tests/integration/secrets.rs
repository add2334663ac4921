//! No secret reaches the evidence, whatever its source or encoding, and a
//! service that reveals one fails the credential-hygiene check (issue 9).
//! Real runs: the reference service with its `echo-credentials`,
//! `reveals-redis-url`, `huge-ready-body` and `endless-ready-body` flaws.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::proof::{run_reference_with, status_of};
use crate::support::{
    all_files, evidence_dir, gonogo, leftovers, marker, processes_with_marker, reference_service,
    repo, stderr, stdout, wait_with_limit,
};

const LIMIT: Duration = Duration::from_secs(180);

/// The characters that break naive masking, and a few ordinary ones.
const ALPHABET: &[char] = &[
    '@', ':', '%', '/', '#', '"', '\\', '&', '<', ' ', 'a', 'Q', 'z', '7', '=', '+', 'é',
];

/// A fresh random secret of 16 to 24 characters from [`ALPHABET`].
fn random_secret() -> String {
    let mut bytes = [0u8; 25];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    let len = 16 + usize::from(bytes[0] % 9);
    let mut secret = String::from("k");
    secret.extend(
        bytes[1..len]
            .iter()
            .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()]),
    );
    secret
}

/// Every form of `secret` an artifact must not hold, computed here
/// independently of gonogo's table: raw, percent (both cases), hex (both
/// cases), JSON (serialized and `\u` for every unit), HTML (numeric and
/// named), and the part of each base64 encoding (standard and URL-safe, at
/// each of the three alignments) that only the secret's bits decide.
pub fn betrayals(secret: &str) -> Vec<(String, String)> {
    let bytes = secret.as_bytes();
    let json = serde_json::to_string(secret).unwrap();
    let mut out = vec![
        ("raw".to_string(), secret.to_string()),
        (
            "percent".into(),
            bytes.iter().map(|b| format!("%{b:02X}")).collect(),
        ),
        (
            "percent-lower".into(),
            bytes.iter().map(|b| format!("%{b:02x}")).collect(),
        ),
        (
            "hex".into(),
            bytes.iter().map(|b| format!("{b:02x}")).collect(),
        ),
        (
            "HEX".into(),
            bytes.iter().map(|b| format!("{b:02X}")).collect(),
        ),
        ("json".into(), json[1..json.len() - 1].to_string()),
        (
            "json-u".into(),
            secret
                .encode_utf16()
                .map(|u| format!("\\u{u:04X}"))
                .collect(),
        ),
        (
            "json-u-lower".into(),
            secret
                .encode_utf16()
                .map(|u| format!("\\u{u:04x}"))
                .collect(),
        ),
        (
            "html-decimal".into(),
            secret.chars().map(|c| format!("&#{};", c as u32)).collect(),
        ),
        (
            "html-hex".into(),
            secret
                .chars()
                .map(|c| format!("&#x{:X};", c as u32))
                .collect(),
        ),
        (
            "html-named".into(),
            secret
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
                .replace('\'', "&#39;"),
        ),
    ];
    for prefix in 0..3usize {
        let data = [vec![b'u'; prefix], bytes.to_vec()].concat();
        let (start, end) = ((8 * prefix).div_ceil(6), 8 * data.len() / 6);
        out.push((
            format!("base64 at {prefix}"),
            STANDARD.encode(&data)[start..end].to_string(),
        ));
        out.push((
            format!("base64url at {prefix}"),
            URL_SAFE_NO_PAD.encode(&data)[start..end].to_string(),
        ));
    }
    out
}

/// Assert that no text of `sinks` holds any form of any of `secrets`.
pub fn assert_no_leak(sinks: &[(String, String)], secrets: &[(&str, String)]) {
    for (sink, text) in sinks {
        for (source, secret) in secrets {
            for (form, betrayal) in betrayals(secret) {
                assert!(
                    !text.contains(&betrayal),
                    "{sink} holds the {source} secret {secret:?} ({form})"
                );
            }
        }
    }
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A quick scenario for the reference service, fault steps off (these
/// runs are about secrets): `service` adds keys to `[service]`, `env`
/// lines to `[service.env]`, `tables` whole tables at the end.
fn quick_scenario(dir: &Path, service: &str, env: &str, tables: &str) -> PathBuf {
    let root = repo().display().to_string();
    let text = format!(
        r#"name = "secrets"
[service]
command = ["target/debug/reference-service"]
workdir = "{root}"
version_path = "/version"
startup_timeout = "20s"
{service}

[service.env]
HOST = "{{{{host}}}}"
PORT = "{{{{port}}}}"
DATABASE_URL = "{{{{database_url}}}}"
REDIS_URL = "{{{{redis_url}}}}"
ENV = "staging"
CI_STRICT = "1"
{env}

[migrations]
dir = "{root}/reference-service/migrations"

[ready]
settle = "2s"

[faults]
enabled = false
{tables}
"#
    );
    let path = dir.join("secrets.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What the service processes of a run received, read from /proc while
/// gonogo runs: variable names, and the passwords in their URLs.
#[derive(Default)]
struct Seen {
    names: BTreeSet<String>,
    passwords: BTreeSet<String>,
}

/// Run `command` (carrying `marker`) to the end, watching the service
/// processes' environments and gonogo's peak memory (VmHWM, KiB).
fn watch_run(mut command: std::process::Command, marker: &str) -> (Output, Seen, u64) {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut seen = Seen::default();
    let mut peak_kib = 0;
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < LIMIT, "gonogo did not finish");
        peak_kib = peak_kib.max(vm_hwm_kib(child.id()).unwrap_or(0));
        for (pid, cmdline) in processes_with_marker(marker) {
            if !cmdline.contains("reference-service") {
                continue;
            }
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            for var in environ.split(|b| *b == 0).filter(|v| !v.is_empty()) {
                let var = String::from_utf8_lossy(var);
                let Some((name, value)) = var.split_once('=') else {
                    continue;
                };
                seen.names.insert(name.to_string());
                if let Some(password) = value
                    .split_once("://")
                    .and_then(|(_, rest)| rest.split_once('@'))
                    .and_then(|(userinfo, _)| userinfo.split_once(':'))
                    .map(|(_, password)| password.to_string())
                    .filter(|p| !p.is_empty())
                {
                    seen.passwords.insert(password);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = wait_with_limit(child, LIMIT);
    assert!(leftovers(marker).is_empty(), "processes left behind");
    (output, seen, peak_kib)
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The hygiene check of step `id`.
fn hygiene(json: &Value, id: &str) -> Value {
    json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"))["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["expected"] == "the service revealed no credential")
        .unwrap_or_else(|| panic!("step {id} has no hygiene check"))
        .clone()
}

#[test]
fn echoed_credentials_from_every_source_fail_hygiene_and_never_reach_any_artifact() {
    // One secret per source, each echoed by the service in its headers, its
    // body and its log, raw and in every encoding.
    reference_service();
    let scratch = tempfile::tempdir().unwrap();
    let from_env = random_secret();
    let from_scenario = random_secret();
    let from_set = random_secret();
    let inherited = random_secret();
    let declared = random_secret();
    let not_passed = random_secret();
    let env = format!(
        "MYSQL_PWD = {}\nMY_VAR = {}\nREFERENCE_FLAW = \"echo-credentials\"",
        toml_string(&from_scenario),
        toml_string(&declared)
    );
    let tables = format!(
        "[masking]\nextra_env = [\"MY_VAR\"]\n\n[latency]\nenabled = false\n\n[shutdown]\nenabled = false\n\n[failfast]\ndeadline = \"2s\"\n\n[[failfast.case]]\nname = \"strict start with a session cookie\"\nset = {{ SESSION_COOKIE = {} }}\n",
        toml_string(&from_set)
    );
    let scenario = quick_scenario(scratch.path(), "inherit = [\"GH_TOKEN\"]", &env, &tables);
    let out = scratch.path().join("evidence");
    let summary = scratch.path().join("step-summary.md");
    let marker = marker("secrets-echo");
    let mut command = gonogo(&marker);
    command
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .arg("--env")
        .arg(format!("DB_PASS={from_env}"))
        .env("GH_TOKEN", &inherited)
        .env("CI_JOB_TOKEN", &not_passed)
        .env("GITHUB_STEP_SUMMARY", &summary);
    let (output, seen, _) = watch_run(command, &marker);
    let transcript = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(
        output.status.code(),
        Some(1),
        "NO-GO expected\n{transcript}"
    );

    // The service got an explicit environment: inherited by name only.
    assert!(seen.names.contains("GH_TOKEN"), "{:?}", seen.names);
    assert!(seen.names.contains("DB_PASS"), "{:?}", seen.names);
    assert!(!seen.names.contains("CI_JOB_TOKEN"), "{:?}", seen.names);
    for name in &seen.names {
        assert!(
            !name.starts_with("GONOGO_") || name == "GONOGO_TEST_MARKER",
            "{name} reached the service"
        );
    }
    assert_eq!(seen.passwords.len(), 2, "{:?}", seen.passwords);

    let dir = evidence_dir(&out);
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("evidence.json")).unwrap()).unwrap();
    assert_eq!(json["verdict"], "NO-GO");
    let ready = hygiene(&json, "ready-gate");
    assert_eq!(ready["passed"], false, "{ready}");
    let observed = ready["observed"].as_str().unwrap();
    for needle in [
        "`GET /ready` headers",
        "`GET /ready` body",
        "service log",
        "Postgres password",
        "Redis password",
        "DB_PASS value",
        "MYSQL_PWD value",
        "GH_TOKEN value",
        "MY_VAR value",
        "base64",
        "hex",
    ] {
        assert!(observed.contains(needle), "{needle} missing: {observed}");
    }
    let failfast = hygiene(&json, "fail-fast");
    assert!(
        failfast["observed"]
            .as_str()
            .unwrap()
            .contains("SESSION_COOKIE value"),
        "{failfast}"
    );
    let service_env: Vec<&str> = json["masking"]["service_env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(service_env.contains(&"GH_TOKEN"), "{service_env:?}");
    assert!(!service_env.contains(&"CI_JOB_TOKEN"), "{service_env:?}");

    let mut sinks = all_files(&dir);
    sinks.push((
        "step summary".into(),
        std::fs::read_to_string(&summary).unwrap(),
    ));
    sinks.push(("stdout".into(), stdout(&output)));
    sinks.push(("stderr".into(), stderr(&output)));
    assert_eq!(
        sinks.len(),
        8,
        "every artifact, the summary, stdout, stderr"
    );
    let mut secrets = vec![
        ("--env", from_env.clone()),
        ("scenario env", from_scenario.clone()),
        ("fail-fast set", from_set.clone()),
        ("inherited", inherited.clone()),
        ("[masking] extra_env", declared.clone()),
        ("not passed", not_passed.clone()),
    ];
    secrets.extend(seen.passwords.iter().map(|p| ("embedded", p.clone())));
    assert_no_leak(&sinks, &secrets);
}

#[test]
fn a_service_that_returns_and_logs_its_redis_url_is_no_go() {
    reference_service();
    let scratch = tempfile::tempdir().unwrap();
    let scenario = quick_scenario(
        scratch.path(),
        "",
        "REFERENCE_FLAW = \"reveals-redis-url\"",
        "",
    );
    let out = scratch.path().join("evidence");
    let marker = marker("secrets-reveals");
    let mut command = gonogo(&marker);
    command.arg("run").arg(&scenario).arg("--out").arg(&out);
    let (output, seen, _) = watch_run(command, &marker);
    let transcript = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(1), "{transcript}");
    let dir = evidence_dir(&out);
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("evidence.json")).unwrap()).unwrap();
    assert_eq!(status_of(&json, "ready-gate"), "FAIL", "{transcript}");
    let check = hygiene(&json, "ready-gate");
    let observed = check["observed"].as_str().unwrap();
    assert!(
        observed.contains("`GET /ready` body: Redis password (raw)"),
        "{observed}"
    );
    assert!(
        observed.contains("service log: Redis password (raw)"),
        "{observed}"
    );
    // Only the hygiene check failed: the flaw reveals, it does not break.
    let failed: Vec<&Value> = json["steps"][1]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let verdict = stdout(&output);
    assert!(verdict.contains("NO-GO"), "{verdict}");
    let mut sinks = all_files(&dir);
    sinks.push(("stderr".into(), stderr(&output)));
    let passwords: Vec<(&str, String)> = seen
        .passwords
        .iter()
        .map(|p| ("embedded", p.clone()))
        .collect();
    assert_eq!(passwords.len(), 2);
    assert_no_leak(&sinks, &passwords);
}

#[test]
fn an_ordinary_value_under_a_secret_looking_name_keeps_the_proof_go() {
    // `true` is in every JSON document: learning it as a secret would fail
    // the evidence scan (exit 3) or the hygiene check. It is skipped, and
    // the evidence says so.
    let (code, transcript, json, report) = run_reference_with(
        "feature-key",
        "scenarios/reference.toml",
        &["--env", "FEATURE_KEY=true"],
    );
    assert_eq!(code, 0, "{transcript}");
    assert_eq!(json["verdict"], "GO");
    let skipped = &json["masking"]["skipped"];
    assert_eq!(skipped[0]["name"], "FEATURE_KEY", "{skipped}");
    assert!(
        report.contains("Not treated as secrets: `FEATURE_KEY`"),
        "{report}"
    );
    assert!(
        json["metadata"]["command_line"]
            .as_str()
            .unwrap()
            .contains("FEATURE_KEY=***")
    );
}

/// Run the quick scenario with one of the body flaws; gives the evidence
/// directory's report size, the evidence and gonogo's peak memory in KiB.
fn body_flaw_run(flaw: &str) -> (u64, Value, u64, String) {
    reference_service();
    let scratch = tempfile::tempdir().unwrap();
    let scenario = quick_scenario(
        scratch.path(),
        "",
        &format!("REFERENCE_FLAW = \"{flaw}\""),
        "[latency]\nrequests = 4\nconcurrency = 4\n\n[shutdown]\nenabled = false\n",
    );
    let out = scratch.path().join("evidence");
    let marker = marker(flaw);
    let mut command = gonogo(&marker);
    command.arg("run").arg(&scenario).arg("--out").arg(&out);
    let (output, _, peak_kib) = watch_run(command, &marker);
    let transcript = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(1), "{transcript}");
    let dir = evidence_dir(&out);
    let report_bytes = std::fs::metadata(dir.join("report.md")).unwrap().len();
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("evidence.json")).unwrap()).unwrap();
    (report_bytes, json, peak_kib, transcript)
}

/// The `GET /ready` action of the ready gate.
fn ready_request(json: &Value) -> Value {
    json["steps"][1]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["label"] == "GET /ready")
        .expect("the ready gate asked ready")
        .clone()
}

#[test]
fn a_ten_megabyte_ready_body_is_capped_in_memory_and_in_the_report() {
    let (report_bytes, json, peak_kib, transcript) = body_flaw_run("huge-ready-body");
    // Bounds, with generous margins: 5 MB of report, 300 MB of memory.
    assert!(
        report_bytes < 5_000_000,
        "report.md is {report_bytes} bytes"
    );
    assert!(peak_kib > 0, "VmHWM was read");
    assert!(
        peak_kib < 300 * 1024,
        "peak RSS {peak_kib} KiB\n{transcript}"
    );
    let ready = ready_request(&json);
    assert_eq!(ready["http_status"], 200);
    assert_eq!(ready["output"]["truncated"], true, "{ready}");
    let tail = ready["output"]["tail"].as_str().unwrap();
    assert!(
        tail.ends_with("[… cut by gonogo: body longer than 1 MiB; the rest was not read]"),
        "{}",
        &tail[tail.len().saturating_sub(200)..]
    );
}

#[test]
fn a_never_ending_ready_body_ends_at_the_cap() {
    let (report_bytes, json, peak_kib, transcript) = body_flaw_run("endless-ready-body");
    assert!(
        report_bytes < 5_000_000,
        "report.md is {report_bytes} bytes"
    );
    assert!(
        peak_kib < 300 * 1024,
        "peak RSS {peak_kib} KiB\n{transcript}"
    );
    // A status means the exchange ended at the cap; at the deadline it
    // would have been recorded as no answer.
    let ready = ready_request(&json);
    assert_eq!(ready["http_status"], 200, "{ready}");
    assert!(
        ready["output"]["tail"]
            .as_str()
            .unwrap()
            .contains("body longer than 1 MiB"),
        "{ready}"
    );
}
