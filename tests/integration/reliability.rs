//! Reliability (issue 10): only the service answers for itself, nothing
//! outlives gonogo (not on SIGKILL, not for daemons), every wait has a
//! deadline, wrong external credentials are gonogo's error, a bad `--out`
//! fails first, absurd scenario values are rejected, and `--keep` can be
//! undone. Real processes throughout; leftovers are counted by pid.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{
    TreeWatch, evidence_dir, gonogo, identity, marker, reference_service, repo, run_with_limit,
    stderr, stdout, survivors_within,
};

/// A scenario in `dir` running `command` (absolute paths), with the
/// reference service's environment and only the steps a test needs.
fn scenario(dir: &Path, name: &str, command: &[&str], extra: &str) -> PathBuf {
    let argv: Vec<String> = command.iter().map(|a| format!("{a:?}")).collect();
    let text = format!(
        r#"name = "{name}"
[service]
command = [{argv}]
startup_timeout = "20s"
[service.env]
PORT = "{{{{port}}}}"
DATABASE_URL = "{{{{database_url}}}}"
REDIS_URL = "{{{{redis_url}}}}"
CI_STRICT = "1"
[faults]
enabled = false
[shutdown]
enabled = false
{extra}
"#,
        argv = argv.join(", ")
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write scenario");
    path
}

fn refsvc() -> String {
    reference_service().display().to_string()
}

/// Pids written one per line to `file`.
fn pids_in(file: &Path) -> Vec<u32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn wait_for_pids(file: &Path, limit: Duration) -> Vec<u32> {
    let started = Instant::now();
    loop {
        let pids = pids_in(file);
        if !pids.is_empty() {
            return pids;
        }
        assert!(
            started.elapsed() < limit,
            "{} never got a pid",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Spawns `command` with its output drained in the background.
fn spawn(mut command: Command) -> (Child, TreeWatch, std::thread::JoinHandle<String>) {
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn gonogo");
    let watch = TreeWatch::start(child.id());
    let mut err = child.stderr.take().expect("stderr");
    let drain = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    (child, watch, drain)
}

/// SIGKILLs gonogo, then asserts that everything it started is gone.
fn sigkill_and_account(
    mut child: Child,
    watch: TreeWatch,
    drain: std::thread::JoinHandle<String>,
    also: &[(u32, u64)],
) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().expect("reap gonogo");
    let seen = watch.finish();
    let err = drain.join().expect("stderr");
    for pid in also {
        assert!(
            seen.contains(pid),
            "the tree watch never saw {pid:?}; it saw {seen:?}"
        );
    }
    let alive = survivors_within(&seen, Duration::from_secs(10));
    assert!(
        alive.is_empty(),
        "processes outlived a SIGKILLed gonogo: {alive:?}\nstderr:\n{err}"
    );
}

// ---- only the service answers for itself (item 1) ----

/// A listener in the test process (not in gonogo's tree) that answers
/// HTTP 200 on every port the service writes to `ports`.
struct Squatter {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Squatter {
    fn start(ports: PathBuf) -> Squatter {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut listeners: Vec<TcpListener> = Vec::new();
            let mut bound = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                for port in pids_in(&ports) {
                    if bound.contains(&port) {
                        continue;
                    }
                    bound.push(port);
                    let listener = TcpListener::bind(("127.0.0.1", port as u16)).expect("squat");
                    listener.set_nonblocking(true).expect("nonblocking");
                    listeners.push(listener);
                }
                for listener in &listeners {
                    while let Ok((mut stream, _)) = listener.accept() {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                        let mut buf = [0u8; 1024];
                        let _ = stream.read(&mut buf);
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Squatter {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_foreign_process_answering_on_the_service_port_fails_the_ready_gate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = dir.path().join("ports");
    // The "service" never listens: it only says which port it was given.
    let script = format!("echo $PORT >> {}; exec sleep 600", ports.display());
    let path = scenario(
        dir.path(),
        "squatted",
        &["/bin/sh", "-c", &script],
        "[latency]\nenabled = false\n[failfast]\ndeadline = \"1s\"\n",
    );
    let squatter = Squatter::start(ports);
    let out = dir.path().join("evidence");
    let mut command = gonogo(&marker("squatter"));
    command.arg("run").arg(&path).arg("--out").arg(&out);
    let output = run_with_limit(command, Duration::from_secs(120));
    drop(squatter);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = std::fs::read_to_string(evidence_dir(&out).join("report.md")).expect("report");
    let me = std::process::id();
    let named = format!("another process (pid {me}, `");
    let ready = report
        .split("<summary>Step 2 — ")
        .nth(1)
        .and_then(|rest| rest.split("</details>").next())
        .expect("a step 2 block");
    assert!(
        ready.contains(&named),
        "step 2 must name pid {me}:\n{ready}"
    );
    assert!(ready.contains("| **FAIL** |"), "{ready}");
    assert!(
        stdout(&output).contains("failed: Step 2"),
        "{}",
        stdout(&output)
    );
}

// ---- nothing outlives gonogo (item 2) ----

#[test]
fn sigkill_mid_proof_ends_a_wrapper_scripts_background_child() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bg = dir.path().join("bg.pid");
    let script = format!("sleep 600 & echo $! >> {}; exec {}", bg.display(), refsvc());
    let path = scenario(
        dir.path(),
        "wrapper",
        &["/bin/sh", "-c", &script],
        "[latency]\nenabled = false\n",
    );
    let mut command = gonogo(&marker("wrapper-kill"));
    command
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("evidence"));
    let (child, watch, drain) = spawn(command);
    let pid = wait_for_pids(&bg, Duration::from_secs(60))[0];
    let sleeper = identity(pid).expect("the background child runs");
    // Let the watchdog's snapshot include it.
    std::thread::sleep(Duration::from_millis(400));
    sigkill_and_account(child, watch, drain, &[sleeper]);
}

#[test]
fn a_double_forked_setsid_daemon_is_ended_after_a_normal_run_and_after_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemons = dir.path().join("daemons.pid");
    let script = format!(
        "(setsid sh -c 'sleep 600 & echo $! >> {}' &); exec {}",
        daemons.display(),
        refsvc()
    );
    let path = scenario(
        dir.path(),
        "daemon",
        &["/bin/sh", "-c", &script],
        "[latency]\nenabled = false\n",
    );

    // A normal run: every daemon it spawned is gone when gonogo exits.
    let mut command = gonogo(&marker("daemon-run"));
    command
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("evidence"));
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().expect("spawn");
    let watch = TreeWatch::start(child.id());
    let output = child.wait_with_output().expect("wait");
    let seen = watch.finish();
    assert!(output.status.code().is_some(), "{}", stderr(&output));
    let spawned = pids_in(&daemons);
    assert!(!spawned.is_empty(), "the service never daemonized");
    for pid in &spawned {
        assert!(
            seen.iter().any(|(p, _)| p == pid),
            "daemon {pid} was never seen in gonogo's tree"
        );
    }
    let alive = survivors_within(&seen, Duration::from_secs(3));
    assert!(alive.is_empty(), "daemons outlived gonogo: {alive:?}");

    // SIGKILL while a daemon runs.
    std::fs::remove_file(&daemons).expect("reset");
    let mut command = gonogo(&marker("daemon-kill"));
    command
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("evidence-2"));
    let (child, watch, drain) = spawn(command);
    let pid = wait_for_pids(&daemons, Duration::from_secs(60))[0];
    let daemon = identity(pid).expect("the daemon runs");
    std::thread::sleep(Duration::from_millis(400));
    sigkill_and_account(child, watch, drain, &[daemon]);
}

/// A directory with an `initdb` and a `postgres` whose `--version` hangs
/// (leaving a grandchild that writes its pid to `probe`).
fn hanging_postgres(dir: &Path, probe: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    for (name, body) in [
        ("initdb", "exit 1".to_string()),
        (
            "postgres",
            format!("sleep 600 & echo $! >> {}; wait", probe.display()),
        ),
    ] {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    bin
}

#[test]
fn a_hanging_postgres_version_probe_is_bounded_and_does_not_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = dir.path().join("probe.pid");
    let bin = hanging_postgres(dir.path(), &probe);
    let path_var = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let path = scenario(dir.path(), "probe", &[&refsvc()], "");

    let mut command = gonogo(&marker("probe-bounded"));
    command
        .env("PATH", &path_var)
        .args(["run", "--deps", "embedded", "--out"])
        .arg(dir.path().join("evidence"))
        .arg(&path);
    let started = Instant::now();
    let output = run_with_limit(command, Duration::from_secs(60));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{err}");
    assert!(err.contains("--version"), "{err}");
    assert!(err.contains("did not finish within 5s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "{err}");
    for pid in pids_in(&probe) {
        assert!(identity(pid).is_none(), "the probe's sleep {pid} survived");
    }

    std::fs::remove_file(&probe).expect("reset");
    let mut command = gonogo(&marker("probe-kill"));
    command
        .env("PATH", &path_var)
        .args(["run", "--deps", "embedded", "--out"])
        .arg(dir.path().join("evidence"))
        .arg(&path);
    let (child, watch, drain) = spawn(command);
    let pid = wait_for_pids(&probe, Duration::from_secs(30))[0];
    let sleeper = identity(pid).expect("the probe runs");
    std::thread::sleep(Duration::from_millis(400));
    sigkill_and_account(child, watch, drain, &[sleeper]);
}

// ---- every wait has a deadline (item 3) ----

/// A small real HTTP service (Python's standard library): `/live` and
/// `/ready` answer 200 with every dependency connected, unless
/// `HANG_READY` is set; `/slow` answers its first `SLOW_ANSWERS` requests
/// and then never again.
const PY_SERVICE: &str = r#"
import http.server, json, os, threading, time
lock = threading.Lock()
count = [0]
class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_GET(self):
        if self.path == "/slow":
            with lock:
                count[0] += 1
                n = count[0]
            if n > int(os.environ.get("SLOW_ANSWERS", "0")):
                time.sleep(3600)
        if self.path == "/ready" and os.environ.get("HANG_READY"):
            time.sleep(3600)
        body = json.dumps({"dependencies": {"database": "connected", "redis": "connected"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
server.daemon_threads = True
server.serve_forever()
"#;

fn py_service(dir: &Path) -> PathBuf {
    let path = dir.join("service.py");
    std::fs::write(&path, PY_SERVICE).expect("write service");
    path
}

#[test]
fn a_latency_run_stops_after_five_requests_in_a_row_without_an_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = py_service(dir.path());
    let path = scenario(
        dir.path(),
        "silent",
        &["python3", &service.display().to_string()],
        "[latency]\npath = \"/slow\"\nrequests = 200\nconcurrency = 4\n",
    );
    // The scenario's env table is written above; add the flaw's knob.
    let text = std::fs::read_to_string(&path)
        .expect("read")
        .replace(
            "CI_STRICT = \"1\"",
            "CI_STRICT = \"1\"\nSLOW_ANSWERS = \"7\"",
        )
        .replace(
            "startup_timeout = \"20s\"",
            "startup_timeout = \"20s\"\nrequest_timeout = \"500ms\"",
        );
    std::fs::write(&path, text).expect("write");
    let out = dir.path().join("evidence");
    let mut command = gonogo(&marker("latency-silent"));
    command.arg("run").arg(&path).arg("--out").arg(&out);
    let output = run_with_limit(command, Duration::from_secs(120));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("Latency SLO") && l.contains("FAIL in"))
        .unwrap_or_else(|| panic!("no failed latency step:\n{err}"));
    let took: f64 = line
        .split("FAIL in ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    assert!(took < 15.0 || line.contains(" ms "), "{line}");
    let report = std::fs::read_to_string(evidence_dir(&out).join("report.md")).expect("report");
    let stopped = report
        .lines()
        .find(|l| l.contains("in a row got no answer"))
        .unwrap_or_else(|| panic!("no stop count in the report:\n{report}"));
    let count: usize = stopped
        .split("stopped after ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    assert!(count < 20, "{stopped}");
}

#[test]
fn a_run_past_its_deadline_is_a_harness_error_naming_the_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = py_service(dir.path());
    let path = scenario(
        dir.path(),
        "late",
        &["python3", &service.display().to_string()],
        "[latency]\nenabled = false\n[ready]\nsettle = \"10m\"\n",
    );
    let text = std::fs::read_to_string(&path)
        .expect("read")
        .replace("CI_STRICT = \"1\"", "CI_STRICT = \"1\"\nHANG_READY = \"1\"")
        .replace(
            "startup_timeout = \"20s\"",
            "startup_timeout = \"20s\"\nrequest_timeout = \"500ms\"",
        );
    std::fs::write(&path, text).expect("write");
    let out = dir.path().join("evidence");
    let mut command = gonogo(&marker("deadline"));
    command
        .arg("run")
        .arg(&path)
        .args(["--deadline", "8s", "--out"])
        .arg(&out);
    let started = Instant::now();
    let output = run_with_limit(command, Duration::from_secs(60));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{err}");
    assert!(
        err.contains("passed its deadline of 8 s (--deadline) during step 2/"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "{err}");
    let written: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(written.is_empty(), "evidence was written: {written:?}");
}

// ---- wrong external credentials are gonogo's error (item 4) ----

#[test]
fn wrong_external_credentials_exit_3_with_the_servers_own_message() {
    use gonogo::deps::embedded::{Embedded, EmbeddedOptions};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let servers = runtime
        .block_on(Embedded::start(&EmbeddedOptions::default()))
        .expect("start the test's own postgres and redis");
    let pg = servers.postgres();
    let redis = servers.redis();
    let (pg_password, redis_password) = (
        pg.password().expose().to_string(),
        redis.password().expose().to_string(),
    );
    let good_pg = pg.url().expose().to_string();
    let good_redis = redis.url().expose().to_string();
    let wrong = "Wr0ngPassw0rdWr0ngPassw0rd";
    let bad_pg = good_pg.replace(&pg_password, wrong);
    let bad_redis = good_redis.replace(&redis_password, wrong);
    reference_service();
    for (database, cache, expected) in [
        (
            &bad_pg,
            &good_redis,
            "password authentication failed for user",
        ),
        (&good_pg, &bad_redis, "WRONGPASS"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut command = gonogo(&marker("external-credentials"));
        command
            .env("DATABASE_URL", database)
            .env("REDIS_URL", cache)
            .args([
                "run",
                "scenarios/reference.toml",
                "--deps",
                "external",
                "--out",
            ])
            .arg(dir.path());
        let output = run_with_limit(command, Duration::from_secs(60));
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(3), "{err}");
        assert!(err.contains(expected), "wanted `{expected}` in:\n{err}");
        assert!(!err.contains("[1/"), "a step ran:\n{err}");
        for secret in [wrong, pg_password.as_str(), redis_password.as_str()] {
            assert!(!err.contains(secret) && !stdout(&output).contains(secret));
        }
    }
    runtime.block_on(servers.shutdown()).expect("stop servers");
}

// ---- a bad --out fails before anything starts (item 5) ----

fn run_with_out(out: &Path) -> Output {
    reference_service();
    let mut command = gonogo(&marker("out-preflight"));
    command
        .args(["run", "scenarios/reference.toml", "--out"])
        .arg(out);
    run_with_limit(command, Duration::from_secs(30))
}

fn assert_refused(out: &Path, reason: &str) {
    let started = Instant::now();
    let output = run_with_out(out);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("--out {}", out.display())), "{err}");
    assert!(err.contains(reason), "wanted `{reason}` in:\n{err}");
    assert!(!err.contains("provision"), "it provisioned first:\n{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");
}

/// Covers ENOTDIR: `--out` below a regular file, and `--out` a file.
#[test]
fn out_under_a_regular_file_is_refused_before_provisioning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    assert_refused(
        &file.join("evidence"),
        &format!("{} is a regular file", file.display()),
    );
    assert_refused(&file, "it is a regular file, not a directory");
}

/// Covers EROFS with a read-only tmpfs, which needs root (CAP_SYS_ADMIN).
#[test]
fn out_on_a_read_only_file_system_is_refused_before_provisioning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mount = dir.path().join("ro");
    std::fs::create_dir(&mount).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
        .arg(&mount)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: cannot mount a read-only tmpfs here (needs root)");
        return;
    }
    assert_refused(&mount.join("evidence"), "the file system is read-only");
    let _ = Command::new("umount").arg(&mount).status();
}

/// Covers an unwritable directory. Root ignores permission bits, so as root
/// the directory is made immutable (`chattr +i`, EPERM); otherwise it is
/// mode 0500 (EACCES).
#[test]
fn out_in_an_unwritable_directory_is_refused_before_provisioning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        let immutable = Command::new("chattr")
            .arg("+i")
            .arg(&locked)
            .status()
            .is_ok_and(|s| s.success());
        if !immutable {
            eprintln!("SKIPPED: chattr +i is not supported on this file system");
            return;
        }
        struct Unlock(PathBuf);
        impl Drop for Unlock {
            fn drop(&mut self) {
                let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
            }
        }
        let _unlock = Unlock(locked.clone());
        assert_refused(&locked, "operation not permitted");
        assert_refused(&locked.join("evidence"), "operation not permitted");
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).expect("chmod");
        assert_refused(&locked, "permission denied");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    }
}

// ---- absurd scenario values (item 6) ----

/// A valid scenario (absolute paths) with `[section] line` added.
fn base_with(section: &str, line: &str) -> String {
    let mut text = format!(
        "name = \"absurd\"\n[service]\ncommand = [{:?}]\nworkdir = {:?}\n",
        refsvc(),
        repo().display().to_string()
    );
    if section == "service" {
        text.push_str(line);
        text.push('\n');
    } else {
        text.push_str(&format!("[{section}]\n{line}\n"));
    }
    text
}

#[test]
fn every_absurd_value_is_exit_2_with_its_place_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, &str, &str, &str)] = &[
        ("latency", "p95_ms = inf", "latency.p95_ms", "more than 0"),
        ("latency", "p95_ms = nan", "latency.p95_ms", "more than 0"),
        ("latency", "p95_ms = 0", "latency.p95_ms", "more than 0"),
        ("latency", "p95_ms = -5", "latency.p95_ms", "more than 0"),
        (
            "shutdown",
            "timeout = \"0s\"",
            "shutdown.timeout",
            "more than 0",
        ),
        (
            "shutdown",
            "exit_codes = [999]",
            "shutdown.exit_codes",
            "0-255",
        ),
        (
            "shutdown",
            "exit_codes = [-1]",
            "shutdown.exit_codes",
            "0-255",
        ),
        (
            "shutdown",
            "exit_codes = []",
            "shutdown.exit_codes",
            "at least one",
        ),
        (
            "faults",
            "detection_window = \"0s\"",
            "faults.detection_window",
            "more than 0",
        ),
        (
            "faults",
            "recovery_window = \"2h\"",
            "faults.recovery_window",
            "at most 1 h",
        ),
        (
            "faults",
            "probe_deadline = \"6s\"",
            "faults.probe_deadline",
            "at most 5 s",
        ),
        (
            "service",
            "startup_timeout = \"0s\"",
            "service.startup_timeout",
            "more than 0",
        ),
        (
            "service",
            "startup_timeout = \"100000000000000000000s\"",
            "service.startup_timeout",
            "too long",
        ),
        (
            "failfast",
            "deadline = \"0s\"",
            "failfast.deadline",
            "more than 0",
        ),
        (
            "ready",
            "settle = \"99999m\"",
            "ready.settle",
            "at most 1 h",
        ),
        ("ready", "status = 0", "ready.status", "between 100 and 599"),
        (
            "negative",
            "status = 700",
            "negative.status",
            "between 100 and 599",
        ),
        (
            "service",
            "ready_path = \"/re ady\"",
            "service.ready_path",
            "without whitespace",
        ),
        (
            "service",
            "ready_path = \"/ready\\n\"",
            "service.ready_path",
            "without whitespace",
        ),
        (
            "latency",
            "requests = 0",
            "latency.requests",
            "between 1 and 100000",
        ),
        (
            "latency",
            "concurrency = 1000",
            "latency.concurrency",
            "between 1 and 256",
        ),
    ];
    for (i, (section, line, field, needle)) in cases.iter().enumerate() {
        let text = base_with(section, line);
        let path = dir.path().join(format!("absurd-{i}.toml"));
        std::fs::write(&path, &text).expect("write");
        let line_number = text.lines().position(|l| l == *line).expect("the line") + 1;
        let mut command = gonogo(&marker("absurd"));
        command.arg("validate").arg(&path);
        let output = run_with_limit(command, Duration::from_secs(30));
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{line}: {err}");
        let place = format!("{}:{line_number}:", path.display());
        assert!(err.contains(&place), "{line}: wanted {place} in {err}");
        assert!(err.contains(&format!("field `{field}`")), "{line}: {err}");
        assert!(err.contains(needle), "{line}: wanted `{needle}` in {err}");
    }
    // A dependency on port 0.
    let text = format!(
        "{}[[dependency]]\nname = \"kafka\"\nhost = \"127.0.0.1\"\nport = 0\n",
        base_with("service", "")
    );
    let path = dir.path().join("port.toml");
    std::fs::write(&path, text).expect("write");
    let mut command = gonogo(&marker("absurd"));
    command.arg("validate").arg(&path);
    let output = run_with_limit(command, Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("between 1 and 65535"));
}

/// A tiny deterministic generator, so a failure reproduces.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const ABSURD: &[&str] = &[
    "0",
    "-1",
    "1e309",
    "-1e309",
    "nan",
    "inf",
    "-inf",
    "99999999999999999999",
    "18446744073709551616",
    "-9223372036854775808",
    "\"0s\"",
    "\"-5s\"",
    "\"1e20s\"",
    "\"100000000000000000000s\"",
    "\"99999999999m\"",
    "\"NaNs\"",
    "\"\"",
    "\"ms\"",
    "\"\\u0000\"",
    "\"a\\nb\"",
    "\"/ \"",
    "[]",
    "[999]",
    "{}",
    "true",
    "1979-05-27",
    "\"{{\"",
    "\"{{port\"",
    "\"}}\"",
];

/// One mutation of `text`.
fn mutate(text: &str, rng: &mut XorShift) -> Vec<u8> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match rng.below(6) {
        // Replace a value with an absurd one.
        0 | 1 => {
            let i = rng.below(out.len());
            if let Some((key, _)) = out[i].split_once('=') {
                out[i] = format!("{key}= {}", ABSURD[rng.below(ABSURD.len())]);
            }
        }
        // Drop a line.
        2 => {
            out.remove(rng.below(out.len()));
        }
        // Duplicate a line.
        3 => {
            let i = rng.below(out.len());
            out.insert(i, out[i].clone());
        }
        // Truncate.
        4 => {
            let joined = out.join("\n");
            let cut = rng.below(joined.len());
            return joined.as_bytes()[..cut].to_vec();
        }
        // Flip bytes, invalid UTF-8 included.
        _ => {
            let mut bytes = out.join("\n").into_bytes();
            for _ in 0..=rng.below(4) {
                let i = rng.below(bytes.len());
                bytes[i] = (rng.next() & 0xff) as u8;
            }
            return bytes;
        }
    }
    out.join("\n").into_bytes()
}

/// No input makes gonogo panic: every value of the shipped scenarios
/// replaced by five harsh ones, plus 400 random mutations, through
/// `gonogo validate`: each exits 0 or 2, never 101.
#[test]
fn mutated_scenarios_never_make_validate_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seeds = Vec::new();
    for file in ["scenarios/reference.toml", "scenarios/fastapi-backend.toml"] {
        let text = std::fs::read_to_string(repo().join(file)).expect("read scenario");
        // Absolute paths, so the files can live in the temp dir.
        let base = repo().join("scenarios");
        let text = text.replace("\"..", &format!("\"{}/..", base.display()));
        seeds.push(text);
    }
    let mut files = Vec::new();
    // Every `key = value` line of both seeds gets the values that break
    // parsers most often (an overlong duration, an integer overflow, nan,
    // a negative, a zero window)...
    const HARSHEST: [&str; 5] = [
        "\"100000000000000000000s\"",
        "99999999999999999999",
        "nan",
        "-1",
        "\"0s\"",
    ];
    for (s, seed) in seeds.iter().enumerate() {
        for (l, line) in seed.lines().enumerate() {
            let Some((key, _)) = line.split_once('=') else {
                continue;
            };
            for (v, value) in HARSHEST.iter().enumerate() {
                let mut lines: Vec<String> = seed.lines().map(str::to_string).collect();
                lines[l] = format!("{key}= {value}");
                let path = dir.path().join(format!("h{s}-{l:03}-{v}.toml"));
                std::fs::write(&path, lines.join("\n")).expect("write");
                files.push(path);
            }
        }
    }
    // ...then a few hundred random mutations.
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for i in 0..400 {
        let seed = &seeds[i % seeds.len()];
        let mut bytes = mutate(seed, &mut rng);
        if i % 3 == 0 {
            bytes = mutate(&String::from_utf8_lossy(&bytes), &mut rng);
        }
        let path = dir.path().join(format!("m{i:03}.toml"));
        std::fs::write(&path, &bytes).expect("write");
        files.push(path);
    }
    assert!(files.len() > 600, "{} files", files.len());
    for batch in files.chunks(100) {
        let mut command = gonogo(&marker("mutated"));
        command.arg("validate").args(batch);
        let output = run_with_limit(command, Duration::from_secs(60));
        let err = stderr(&output);
        assert!(
            matches!(output.status.code(), Some(0 | 2)),
            "exit {:?} for a batch starting at {}:\n{err}",
            output.status.code(),
            batch[0].display()
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

// ---- --keep, then gonogo stop (item 8) ----

#[test]
fn keep_writes_a_private_connection_env_and_stop_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = scenario(
        dir.path(),
        "kept",
        &[&refsvc()],
        "[latency]\nenabled = false\n",
    );
    let mut command = gonogo(&marker("keep"));
    command
        .args(["run", "--keep", "--out"])
        .arg(dir.path().join("evidence"))
        .arg(&path);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().expect("spawn");
    let watch = TreeWatch::start(child.id());
    let output = child.wait_with_output().expect("wait");
    let err = stderr(&output);
    assert!(output.status.code().is_some(), "{err}");
    let stop_line = err
        .lines()
        .find(|l| l.contains("`gonogo stop "))
        .unwrap_or_else(|| panic!("no stop command printed:\n{err}"));
    assert!(!err.contains("pkill"), "{err}");
    let kept = PathBuf::from(
        stop_line
            .split("`gonogo stop ")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            .expect("a directory"),
    );
    let env = kept.join("connection.env");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&env)
        .expect("connection.env")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "connection.env must be private");
    let text = std::fs::read_to_string(&env).expect("read");
    let url = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim_matches('\'').to_string())
            .unwrap_or_else(|| panic!("no {key} in connection.env"))
    };
    let (database_url, redis_url) = (url("DATABASE_URL"), url("REDIS_URL"));
    // The URLs hold real passwords, which the terminal never showed.
    let password = |u: &str| {
        u.split("://")
            .nth(1)
            .and_then(|r| r.split('@').next())
            .and_then(|c| c.rsplit(':').next())
            .map(str::to_string)
            .expect("a password")
    };
    for secret in [password(&database_url), password(&redis_url)] {
        assert!(secret.len() >= 16, "{secret}");
        assert!(!err.contains(&secret) && !stdout(&output).contains(&secret));
    }
    // The kept servers answer with those credentials.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        use sqlx::Connection;
        let conn = sqlx::PgConnection::connect(&database_url)
            .await
            .expect("the kept postgres takes DATABASE_URL");
        let _ = conn.close().await;
    });
    let pids = std::fs::read_to_string(kept.join("pids")).expect("pids");
    let servers: Vec<(u32, u64)> = pids
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some((w.get(1)?.parse().ok()?, w.get(2)?.parse().ok()?))
        })
        .collect();
    assert_eq!(servers.len(), 2, "{pids}");
    for server in &servers {
        assert_eq!(
            identity(server.0),
            Some(*server),
            "kept server {server:?} runs"
        );
    }

    let mut stop = gonogo(&marker("keep-stop"));
    stop.arg("stop").arg(&kept);
    let stopped = run_with_limit(stop, Duration::from_secs(60));
    assert_eq!(stopped.status.code(), Some(0), "{}", stderr(&stopped));
    assert!(!kept.exists(), "gonogo stop removes {}", kept.display());
    let seen = watch.finish();
    for server in &servers {
        assert!(seen.contains(server), "{server:?} was not in gonogo's tree");
    }
    let alive = survivors_within(&seen, Duration::from_secs(5));
    assert!(alive.is_empty(), "left after gonogo stop: {alive:?}");
}
