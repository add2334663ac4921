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
fn gonogo_s_own_variables_cannot_be_inherited() {
    assert_error(
        "inherit-gonogo",
        "[service]\ncommand = [\"x\"]\ninherit = [\"PATH_EXTRA\", \"GONOGO_SIGNING_KEY\"]\n",
        "3:",
        "GONOGO_* variables are never passed to the service",
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
