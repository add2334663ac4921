//! Bad scenario files exit 2, name the place, and write no evidence.

use std::time::Duration;

use crate::support::{gonogo, marker, run_with_limit, stderr};

/// Write `text` as a scenario, run it, and return (exit code, stderr).
fn run_bad(name: &str, text: &str, command: &str) -> (i32, String, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    let out = dir.path().join("evidence");
    let mut cmd = gonogo(&marker(name));
    cmd.arg(command).arg(&path);
    if command == "run" {
        cmd.arg("--out").arg(&out);
    }
    let output = run_with_limit(cmd, Duration::from_secs(30));
    assert!(
        !out.exists(),
        "a bad scenario must not create {}",
        out.display()
    );
    let keep = dir.keep();
    (
        output.status.code().unwrap_or(-1),
        stderr(&output),
        keep.join(format!("{name}.toml")),
    )
}

fn assert_error(name: &str, text: &str, place: &str, needle: &str) {
    for command in ["run", "validate"] {
        let (code, err, path) = run_bad(name, text, command);
        assert_eq!(code, 2, "{command} {name}: {err}");
        let expected_place = format!("{}:{place}", path.display());
        assert!(
            err.contains(&expected_place),
            "{command} {name}: wanted `{expected_place}` in:\n{err}"
        );
        assert!(
            err.contains(needle),
            "{command} {name}: wanted `{needle}` in:\n{err}"
        );
    }
}

#[test]
fn syntax_error_names_line_and_column() {
    assert_error(
        "syntax",
        "[service]\ncommand = [\"x\"\n",
        "2:",
        "field `service.command`",
    );
}

#[test]
fn unknown_field_is_named() {
    assert_error(
        "unknown",
        "[service]\ncommand = [\"x\"]\nreddy_path = \"/ready\"\n",
        "3:1",
        "unknown field `reddy_path`",
    );
}

#[test]
fn a_fault_expectation_for_an_unknown_dependency_is_named() {
    assert_error(
        "faults-expect",
        "[service]\ncommand = [\"x\"]\n\n[faults]\nexpect = { redis = [], kafka = [{ pointer = \"/kafka\", equals = \"down\" }] }\n",
        "5:",
        "unknown dependency `kafka` in [faults] expect; choose from postgres, redis",
    );
}

#[test]
fn missing_command_is_named() {
    assert_error(
        "missing",
        "[service]\nready_path = \"/ready\"\n",
        "1:1",
        "missing field `command`",
    );
}

#[test]
fn bad_placeholder_is_named() {
    assert_error(
        "placeholder",
        "[service]\ncommand = [\"x\"]\n\n[service.env]\nREDIS_URL = \"{{redis_uri}}\"\n",
        "5:13",
        "unknown placeholder `{{redis_uri}}`",
    );
}

#[test]
fn missing_service_binary_is_a_usage_error() {
    let (code, err, _) = run_bad(
        "nobinary",
        "[service]\ncommand = [\"./no-such-server\"]\n",
        "run",
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no-such-server"), "{err}");
}

#[test]
fn a_waiver_for_a_step_that_does_not_exist_is_named_with_the_valid_ids() {
    let text = "[service]\ncommand = [\"x\"]\n\n[[waiver]]\nstep = \"failfast\"\njustification = \"j\"\napprover = \"a\"\nexpires = 2099-01-01\n";
    assert_error(
        "unknown-waiver",
        text,
        "5:8",
        "the waiver names `failfast`, which is not a step of this scenario; its steps are migration-gate, ready-gate, negative-proof, fail-fast,",
    );
}

#[test]
fn a_missing_manifest_or_unknown_alert_is_a_scenario_error() {
    assert_error(
        "missing-manifest",
        "[service]\ncommand = [\"./server\"]\n\n[kubernetes]\nmanifest = \"deploy/deployment.yaml\"\n",
        "5:12",
        "field `kubernetes.manifest`: manifest ",
    );
    let rules = crate::support::repo().join("examples/reference/deploy/alerts.yml");
    assert_error(
        "unknown-alert",
        &format!(
            "[service]\ncommand = [\"./server\"]\n\n[alerts]\nrules = \"{}\"\nalert = \"ReadyzFailure\"\n",
            rules.display()
        ),
        "6:9",
        "no alert `ReadyzFailure`",
    );
}

#[test]
fn not_applicable_needs_a_known_step_and_a_reason() {
    let unknown = "[service]\ncommand = [\"x\"]\n\n[[not_applicable]]\nstep = \"strict-mode\"\nreason = \"none\"\n";
    assert_error(
        "unknown-not-applicable",
        unknown,
        "5:8",
        "the [[not_applicable]] entry names `strict-mode`, which is not a step",
    );
    let no_reason = "[service]\ncommand = [\"x\"]\n\n[[not_applicable]]\nstep = \"fail-fast\"\nreason = \" \"\n";
    assert_error(
        "not-applicable-no-reason",
        no_reason,
        "6:10",
        "`reason` must not be empty",
    );
    let both = "[service]\ncommand = [\"x\"]\n\n[[waiver]]\nstep = \"fail-fast\"\njustification = \"j\"\napprover = \"a\"\nexpires = 2099-01-01\n\n[[not_applicable]]\nstep = \"fail-fast\"\nreason = \"no strict mode\"\n";
    assert_error(
        "waived-and-not-applicable",
        both,
        "11:8",
        "both waived and declared not applicable",
    );
}

#[test]
fn gonogo_s_own_variables_cannot_be_inherited() {
    assert_error(
        "inherit-gonogo",
        "[service]\ncommand = [\"x\"]\ninherit = [\"PATH_EXTRA\", \"GONOGO_SIGNING_KEY\"]\n",
        "3:",
        "GONOGO_* variables are never passed to the service",
    );
}

#[test]
fn validate_warns_about_an_expired_waiver_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("expired.toml");
    std::fs::write(
        &path,
        "[service]\ncommand = [\"x\"]\n\n[[waiver]]\nstep = \"fail-fast\"\njustification = \"j\"\napprover = \"a\"\nexpires = 2020-01-01\n",
    )
    .unwrap();
    let mut cmd = gonogo(&marker("expired-waiver"));
    cmd.arg("validate").arg(&path);
    let output = run_with_limit(cmd, Duration::from_secs(30));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "warning: {}:5: the waiver for `fail-fast` expired on 2020-01-01",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn masking_declarations_are_checked() {
    assert_error(
        "masking-both",
        "[service]\ncommand = [\"x\"]\n\n[masking]\nextra_env = [\"MY_VAR\"]\nnot_secret = [\"my_var\"]\n",
        "6:",
        "listed in both `extra_env` and `not_secret`",
    );
    assert_error(
        "masking-unknown",
        "[service]\ncommand = [\"x\"]\n\n[masking]\nextra_vars = [\"MY_VAR\"]\n",
        "5:",
        "unknown field `extra_vars`",
    );
}
