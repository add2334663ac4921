//! Nothing leaks: after a passing run, a failing run and a run interrupted
//! with SIGINT, no process gonogo started remains and no temp dir is left.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{
    TreeWatch, gonogo, leftovers, marker, reference_service, run_with_limit, wait_watched,
};

fn temp_roots() -> Vec<String> {
    std::fs::read_dir(gonogo::deps::embedded::default_temp_base())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gonogo-"))
        .collect()
}

#[test]
fn passing_and_failing_runs_leave_no_process() {
    reference_service();
    for flaw in ["none", "ready-500"] {
        let out = tempfile::tempdir().unwrap();
        let marker = marker(&format!("cleanup-{flaw}"));
        let mut command = gonogo(&marker);
        command
            .args(["run", "scenarios/reference.toml", "--env"])
            .arg(format!(
                "REFERENCE_FLAW={}",
                if flaw == "none" { "" } else { flaw }
            ))
            .arg("--out")
            .arg(out.path());
        let output = run_with_limit(command, Duration::from_secs(120));
        assert!(output.status.code().is_some());
        assert_eq!(leftovers(&marker), Vec::new(), "after the {flaw} run");
    }
}

#[test]
fn sigint_mid_run_stops_everything_and_writes_no_evidence() {
    reference_service();
    let out = tempfile::tempdir().unwrap();
    let marker = marker("sigint");
    let before = temp_roots();
    let mut command = gonogo(&marker);
    command
        .args(["run", "scenarios/reference.toml", "--out"])
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let gonogo_pid = child.id();
    // Every process gonogo starts is recorded by pid from here on.
    let watch = TreeWatch::start(child.id());
    let stderr = child.stderr.take().unwrap();
    // Interrupt during the negative proof, while a service, Postgres and
    // Redis are all running.
    let mut seen = String::new();
    let started = Instant::now();
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("[3/") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{seen}");
    }
    // Keep draining stderr so gonogo never writes into a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        watch.seen_so_far() >= 3,
        "nothing was running to interrupt:\n{seen}"
    );
    // SAFETY: plain kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    // Fails if anything gonogo started (by pid and start time) outlives it.
    let output = wait_watched(child, watch, Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(130), "{seen}");
    assert_eq!(leftovers(&marker), Vec::new());
    let evidence: Vec<_> = std::fs::read_dir(out.path()).unwrap().flatten().collect();
    assert!(
        evidence.is_empty(),
        "an interrupted run wrote evidence: {evidence:?}"
    );
    // The temp root carries gonogo's pid in its name: it must be gone.
    let ours = format!("gonogo-{gonogo_pid}-");
    let left: Vec<String> = temp_roots()
        .into_iter()
        .filter(|r| !before.contains(r) && r.starts_with(&ours))
        .collect();
    assert!(left.is_empty(), "{left:?} left behind");
}
