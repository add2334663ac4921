//! `gonogo run a.toml b.toml -j 2`: isolated proofs side by side, one
//! verdict line each, one overall exit code.

use std::time::Duration;

use crate::support::{gonogo, marker, reference_service, run_with_limit, stderr, stdout};

/// A copy of the reference scenario under another name, with absolute paths.
pub fn twin(dir: &std::path::Path, name: &str, flaw: Option<&str>) -> std::path::PathBuf {
    let repo = env!("CARGO_MANIFEST_DIR");
    let mut text = std::fs::read_to_string(format!("{repo}/scenarios/reference.toml"))
        .unwrap()
        .replace("name = \"reference\"", &format!("name = \"{name}\""))
        .replace("workdir = \"..\"", &format!("workdir = \"{repo}\""))
        .replace(
            "dir = \"../reference-service/migrations\"",
            &format!("dir = \"{repo}/reference-service/migrations\""),
        )
        .replace("\"../examples/", &format!("\"{repo}/examples/"));
    if let Some(flaw) = flaw {
        text = text.replace(
            "PROBE_TIMEOUT_MS = \"2000\"",
            &format!("PROBE_TIMEOUT_MS = \"2000\"\nREFERENCE_FLAW = \"{flaw}\""),
        );
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn evidence(out: &std::path::Path, name: &str) -> serde_json::Value {
    let dir = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .ends_with(&format!("-{name}"))
        })
        .unwrap_or_else(|| panic!("no evidence for {name}"));
    serde_json::from_str(&std::fs::read_to_string(dir.join("evidence.json")).unwrap()).unwrap()
}

#[test]
fn two_scenarios_in_parallel_are_isolated() {
    reference_service();
    let dir = tempfile::tempdir().unwrap();
    let a = twin(dir.path(), "alpha", None);
    let b = twin(dir.path(), "beta", None);
    let out = dir.path().join("evidence");
    let mut command = gonogo(&marker("parallel"));
    command
        .arg("run")
        .arg(&a)
        .arg(&b)
        .args(["-j", "2", "--out"])
        .arg(&out);
    let output = run_with_limit(command, Duration::from_secs(240));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}\n{}", stderr(&output));
    assert!(text.contains("GO alpha:"), "{text}");
    assert!(text.contains("GO beta:"), "{text}");
    assert!(text.contains("summary of 2 proofs"), "{text}");
    assert!(
        stderr(&output).contains("[alpha] "),
        "progress lines are prefixed"
    );
    let alpha = evidence(&out, "alpha");
    let beta = evidence(&out, "beta");
    assert_eq!(alpha["verdict"], "GO");
    assert_eq!(beta["verdict"], "GO");
    for dep in 0..2 {
        assert_ne!(
            alpha["dependencies"][dep]["endpoint"], beta["dependencies"][dep]["endpoint"],
            "each proof has its own servers and ports"
        );
    }
}

#[test]
fn the_worst_verdict_sets_the_exit_code() {
    reference_service();
    let dir = tempfile::tempdir().unwrap();
    let a = twin(dir.path(), "good", None);
    let b = twin(dir.path(), "flawed", Some("ready-500"));
    let out = dir.path().join("evidence");
    let mut command = gonogo(&marker("parallel-worst"));
    command
        .arg("run")
        .arg(&a)
        .arg(&b)
        .args(["-j", "2", "--out"])
        .arg(&out);
    let output = run_with_limit(command, Duration::from_secs(240));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("NO-GO flawed:"), "{text}");
    assert!(text.contains("GO good:"), "{text}");
}
