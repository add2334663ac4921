//! Shared helpers: the real gonogo binary, the real reference service, and
//! process accounting by pid.
//!
//! The test process makes itself a child subreaper, so whatever gonogo
//! orphans (or leaves behind when it is killed) is re-parented to the test
//! process instead of init. [`TreeWatch`] records every descendant of a
//! gonogo run (pid and start time) by walking parent links in /proc,
//! including through those adopted orphans; [`survivors`] says which of
//! them still run. The environment marker ([`processes_with_marker`]) is an
//! extra net only: gonogo gives the service an explicit environment, and
//! servers rewrite theirs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Build the reference service once per test run (cargo test only builds
/// this package's binaries).
pub fn reference_service() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "reference-service"])
                .current_dir(repo())
                .status()
                .expect("run cargo build -p reference-service");
            assert!(status.success(), "building the reference service failed");
            let binary = repo().join("target/debug/reference-service");
            assert!(binary.is_file(), "{} missing", binary.display());
            binary
        })
        .clone()
}

pub fn scenario(relative: &str) -> PathBuf {
    repo().join(relative)
}

/// A marker unique to one test, put in gonogo's environment; every process
/// gonogo starts inherits it, so leftovers can be found in /proc.
pub fn marker(test: &str) -> String {
    format!("gonogo-test-{test}-{}", std::process::id())
}

/// Makes the test process a child subreaper (once), so processes gonogo
/// leaves behind are re-parented here, where [`TreeWatch`] still sees them.
pub fn become_subreaper() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // SAFETY: prctl with integer arguments has no memory preconditions.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(rc, 0, "PR_SET_CHILD_SUBREAPER");
    });
}

/// A `gonogo` command carrying `marker` in its environment. The locale
/// variables a service receives are pinned, so reports read the same on
/// every machine.
pub fn gonogo(marker: &str) -> Command {
    become_subreaper();
    let mut command = Command::new(env!("CARGO_BIN_EXE_gonogo"));
    command
        .current_dir(repo())
        .env("GONOGO_TEST_MARKER", marker)
        .env("NO_COLOR", "1")
        .env("LANG", "C.UTF-8")
        .env_remove("TZ")
        .env_remove("GITHUB_STEP_SUMMARY");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LC_") {
            command.env_remove(name);
        }
    }
    command
}

/// Run to completion, killing it after `limit` so a test never hangs.
pub fn run_with_limit(mut command: Command, limit: Duration) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().expect("spawn gonogo");
    wait_with_limit(child, limit)
}

pub fn wait_with_limit(child: Child, limit: Duration) -> Output {
    let watch = TreeWatch::start(child.id());
    wait_watched(child, watch, limit)
}

/// [`wait_with_limit`] for a child whose tree is already watched (started
/// right after the spawn, so nothing it started early is missed).
pub fn wait_watched(mut child: Child, watch: TreeWatch, limit: Duration) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().expect("poll child").is_some() {
            let output = child.wait_with_output().expect("collect output");
            let seen = watch.finish();
            let alive = survivors(&seen);
            assert!(
                alive.is_empty(),
                "processes started by gonogo outlived it: {alive:?}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            return output;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().expect("collect output");
            panic!(
                "gonogo did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Live processes whose environment holds `marker`, as (pid, cmdline).
pub fn processes_with_marker(marker: &str) -> Vec<(u32, String)> {
    let needle = format!("GONOGO_TEST_MARKER={marker}");
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let has = environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes());
        if has {
            // Zombies have exited; only the reaper is missing.
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            if stat
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z'))
            {
                continue;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            found.push((pid, cmdline));
        }
    }
    found
}

/// Wait briefly for marked processes to disappear; returns the leftovers.
pub fn leftovers(marker: &str) -> Vec<(u32, String)> {
    let started = Instant::now();
    loop {
        let found = processes_with_marker(marker);
        if found.is_empty() || started.elapsed() > Duration::from_secs(3) {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The single evidence directory under `out`.
pub fn evidence_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("read evidence root")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "expected one evidence dir in {}: {dirs:?}",
        out.display()
    );
    dirs[0].clone()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Read every file under `dir`, as (relative path, text).
pub fn all_files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                out.push((path.strip_prefix(dir).unwrap().display().to_string(), text));
            }
        }
    }
    out
}

/// Records every descendant of a process while it runs, by walking the
/// parent links in /proc. Unlike the environment marker, this also sees
/// processes that rewrite their environment (redis-server, Postgres
/// helpers).
pub struct TreeWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// How many descendants were recorded so far.
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    handle: std::thread::JoinHandle<Vec<(u32, u64)>>,
}

impl TreeWatch {
    pub fn start(root: u32) -> TreeWatch {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = count.clone();
        let handle = std::thread::spawn(move || {
            let mut seen: std::collections::BTreeSet<(u32, u64)> = Default::default();
            let mut rounds_after_stop = 0;
            loop {
                let table = proc_table();
                // From gonogo, and from every recorded process still alive:
                // after gonogo dies its orphans hang below the test process.
                let mut tree = vec![root];
                tree.extend(
                    seen.iter()
                        .filter(|(pid, start)| table.get(pid).is_some_and(|(_, s)| s == start))
                        .map(|(pid, _)| *pid),
                );
                let mut i = 0;
                while i < tree.len() {
                    let parent = tree[i];
                    for (pid, (ppid, start)) in &table {
                        if *ppid == parent && !tree.contains(pid) {
                            tree.push(*pid);
                            seen.insert((*pid, *start));
                        }
                    }
                    i += 1;
                }
                counter.store(seen.len(), Ordering::Relaxed);
                if flag.load(Ordering::Relaxed) {
                    rounds_after_stop += 1;
                    if rounds_after_stop > 1 {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            seen.into_iter().collect()
        });
        TreeWatch {
            stop,
            count,
            handle,
        }
    }

    /// How many descendants have been recorded so far.
    pub fn seen_so_far(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn finish(self) -> Vec<(u32, u64)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().expect("tree watch thread")
    }
}

/// pid -> (ppid, start time) for every live, non-zombie process.
fn proc_table() -> std::collections::BTreeMap<u32, (u32, u64)> {
    let mut table = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return table;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some((state, ppid, start)) = stat(pid)
            && state != 'Z'
        {
            table.insert(pid, (ppid, start));
        }
    }
    table
}

/// (state, ppid, start time) from /proc/PID/stat.
fn stat(pid: u32) -> Option<(char, u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command: state(0) ppid(1) ... starttime(19).
    Some((
        fields.first()?.chars().next()?,
        fields.get(1)?.parse().ok()?,
        fields.get(19)?.parse().ok()?,
    ))
}

/// The recorded processes still alive (same pid and start time) after a
/// short grace, as (pid, cmdline).
pub fn survivors(seen: &[(u32, u64)]) -> Vec<(u32, String)> {
    survivors_within(seen, Duration::from_secs(3))
}

/// Reaps the recorded processes that were re-parented to the test process
/// and have exited (never a child the test spawned itself: those are not
/// descendants of gonogo).
pub fn reap_adopted(seen: &[(u32, u64)]) {
    let me = std::process::id();
    for (pid, start) in seen {
        if matches!(stat(*pid), Some(('Z', ppid, s)) if ppid == me && s == *start) {
            let mut status = 0;
            // SAFETY: waitpid on one exited child of ours that no std::process
            // handle owns (it descends from gonogo, not from the test).
            unsafe { libc::waitpid(*pid as i32, &mut status, libc::WNOHANG) };
        }
    }
}

/// [`survivors`], waiting up to `grace` for them to go.
pub fn survivors_within(seen: &[(u32, u64)], grace: Duration) -> Vec<(u32, String)> {
    let started = Instant::now();
    loop {
        reap_adopted(seen);
        let alive: Vec<(u32, String)> = seen
            .iter()
            .filter(|(pid, start)| {
                matches!(stat(*pid), Some((state, _, s)) if s == *start && state != 'Z')
            })
            .map(|(pid, _)| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                    .unwrap_or_default();
                (*pid, cmdline)
            })
            .collect();
        if alive.is_empty() || started.elapsed() > grace {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The identity (pid, start time) of a live process.
pub fn identity(pid: u32) -> Option<(u32, u64)> {
    stat(pid)
        .filter(|(state, _, _)| *state != 'Z')
        .map(|(_, _, start)| (pid, start))
}
