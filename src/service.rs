//! The service under test: a [`ServiceLaunch`] (argv, workdir, env with the
//! placeholders filled in) becomes a [`RunningService`] whose process group
//! is owned by a guard and whose output is captured for the evidence.
//!
//! The service gets an explicit environment: nothing of gonogo's own but
//! [`BASE_ENV`] (when set), the names the scenario lists in `[service]
//! inherit`, and the test hook [`TEST_MARKER`]; then the scenario's
//! variables and `--env`. A token exported in CI never reaches it unasked.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use crate::command::{resolve_program, shell_quote};
use crate::http::{HttpExchange, Probe};
use crate::process::{ChildGuard, GuardOptions, OutputCapture, Signal, StopReport, piped_output};
use crate::scenario::placeholders::Bindings;
use crate::scenario::{ServiceSpec, Template};

/// Variables every launched service (and migration command) gets from
/// gonogo's environment, when set; `LC_*` too.
pub const BASE_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ"];

/// A test hook: passed through when set, so the test suite can find every
/// process a run started. Every other `GONOGO_*` variable stays with gonogo.
pub const TEST_MARKER: &str = "GONOGO_TEST_MARKER";

/// The part of gonogo's own environment a service gets: [`BASE_ENV`],
/// `LC_*`, the names in `inherit` and [`TEST_MARKER`], each when set (and
/// valid UTF-8), in that order.
pub fn inherited_env(inherit: &[String]) -> Vec<(String, String)> {
    let wanted = |name: &str| {
        BASE_ENV.contains(&name)
            || name.starts_with("LC_")
            || name == TEST_MARKER
            || (inherit.iter().any(|i| i == name) && !name.starts_with("GONOGO_"))
    };
    let mut vars: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| wanted(k))
        .collect();
    let rank = |name: &str| {
        BASE_ENV
            .iter()
            .position(|b| *b == name)
            .or_else(|| name.starts_with("LC_").then_some(BASE_ENV.len()))
            .or_else(|| inherit.iter().position(|i| i == name).map(|i| i + 100))
            .unwrap_or(usize::MAX)
    };
    vars.sort_by(|a, b| (rank(&a.0), &a.0).cmp(&(rank(&b.0), &b.0)));
    vars
}

/// Everything needed to start one instance of the service.
#[derive(Debug, Clone)]
pub struct ServiceLaunch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub workdir: PathBuf,
    /// Variables passed through from gonogo's environment (see
    /// [`inherited_env`]), unless the scenario sets or unsets them.
    pub inherited: Vec<(String, String)>,
    /// Variables set for this instance, in scenario order.
    pub env: Vec<(String, String)>,
    /// Variables removed from the inherited environment.
    pub unset: Vec<String>,
    pub port: u16,
}

impl ServiceLaunch {
    /// Fill in `spec` for one start: `extra` (from `--env`) is applied after
    /// the scenario's env, then `unset` removes and `set` overrides.
    pub fn build(
        spec: &ServiceSpec,
        bindings: &Bindings,
        extra: &[(String, String)],
        unset: &[String],
        set: &BTreeMap<String, Template>,
    ) -> io::Result<ServiceLaunch> {
        let argv: Vec<String> = spec.command.iter().map(|t| t.render(bindings)).collect();
        let program = resolve_program(&argv[0], &spec.workdir)?;
        let mut env: Vec<(String, String)> = spec
            .env
            .iter()
            .map(|(k, t)| (k.clone(), t.render(bindings)))
            .collect();
        for (key, value) in extra {
            upsert(&mut env, key, value.clone());
        }
        for (key, template) in set {
            upsert(&mut env, key, template.render(bindings));
        }
        env.retain(|(k, _)| !unset.contains(k));
        let mut inherited = inherited_env(&spec.inherit);
        inherited.retain(|(k, _)| !unset.contains(k) && !env.iter().any(|(e, _)| e == k));
        let port = bindings
            .get("port")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Ok(ServiceLaunch {
            program,
            args: argv[1..].to_vec(),
            workdir: spec.workdir.clone(),
            inherited,
            env,
            unset: unset.to_vec(),
            port,
        })
    }

    /// A shell line that would start the same instance, from an empty
    /// environment; passed-through variables appear by name only
    /// (unmasked: callers pass it through the masker).
    pub fn display(&self) -> String {
        let mut line = format!(
            "cd {} && env -i",
            shell_quote(&self.workdir.display().to_string())
        );
        for key in &self.unset {
            line.push_str(&format!(" -u {key}"));
        }
        for (key, _) in &self.inherited {
            line.push_str(&format!(" {key}=\"${key}\""));
        }
        for (key, value) in &self.env {
            line.push_str(&format!(" {key}={}", shell_quote(value)));
        }
        line.push(' ');
        line.push_str(&shell_quote(&self.program.display().to_string()));
        for arg in &self.args {
            line.push(' ');
            line.push_str(&shell_quote(arg));
        }
        line
    }
}

fn upsert(env: &mut Vec<(String, String)>, key: &str, value: String) {
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key.to_string(), value)),
    }
}

/// How the wait for the service to answer HTTP ended.
#[derive(Debug, Clone)]
pub enum Startup {
    /// It answered (any status) after this long.
    Answering(Duration),
    /// The process exited first, with this code (`None`: killed by a signal).
    Exited { code: Option<i32>, after: Duration },
    /// Neither, within the deadline.
    TimedOut(Duration),
    /// Something answered, but the socket on the port is not the
    /// instance's: the answer is not the service's (see [`crate::sockets`]).
    Foreign {
        owner: crate::sockets::Ownership,
        after: Duration,
    },
}

impl Startup {
    /// How long the wait took.
    pub fn took(&self) -> Duration {
        match self {
            Startup::Answering(d) | Startup::TimedOut(d) => *d,
            Startup::Exited { after, .. } | Startup::Foreign { after, .. } => *after,
        }
    }
}

/// A started service instance. Dropping it stops its process group.
pub struct RunningService {
    guard: ChildGuard,
    capture: OutputCapture,
    pub port: u16,
    started: Instant,
}

impl RunningService {
    /// Spawn the instance, in its own process group, output captured.
    pub fn spawn(launch: &ServiceLaunch) -> io::Result<RunningService> {
        let mut command = tokio::process::Command::new(&launch.program);
        command
            .args(&launch.args)
            .current_dir(&launch.workdir)
            .env_clear();
        for (key, value) in launch.inherited.iter().chain(&launch.env) {
            command.env(key, value);
        }
        piped_output(&mut command);
        let options = GuardOptions {
            death_signal: Some(Signal::Kill),
            stop_signal: Signal::Term,
            grace: Duration::from_secs(5),
        };
        let mut guard = ChildGuard::spawn("service", command, options)?;
        let capture = OutputCapture::attach(&mut guard);
        Ok(RunningService {
            guard,
            capture,
            port: launch.port,
            started: Instant::now(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// When the process was spawned.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Send `signal` to the service process itself (as Kubernetes does to
    /// a container's main process).
    pub fn signal(&self, signal: libc::c_int) {
        if let Ok(pid) = libc::pid_t::try_from(self.guard.pid()) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    /// Send `signal` to the service's whole process group.
    pub fn signal_group(&self, signal: libc::c_int) {
        if let Ok(pid) = libc::pid_t::try_from(self.guard.pid()) {
            // SAFETY: kill(2) has no memory-safety preconditions; a negative
            // pid addresses the process group the guard created.
            unsafe {
                libc::kill(-pid, signal);
            }
        }
    }

    /// Poll `path` until the service answers any HTTP status, exits, or
    /// `deadline` passes. The first answer counts only if the socket on the
    /// port belongs to the instance's process tree.
    pub async fn wait_answering(
        &mut self,
        probe: &Probe,
        path: &str,
        deadline: Duration,
    ) -> Startup {
        let url = self.url(path);
        loop {
            if let Ok(Some(status)) = self.guard.try_wait() {
                return Startup::Exited {
                    code: status.code(),
                    after: self.started.elapsed(),
                };
            }
            let elapsed = self.started.elapsed();
            if elapsed >= deadline {
                return Startup::TimedOut(elapsed);
            }
            let left = deadline - elapsed;
            let exchange = probe.get(&url, left.min(Duration::from_millis(500))).await;
            if exchange.status.is_some() {
                let after = self.started.elapsed();
                return match crate::sockets::check(self.port, self.pid()) {
                    crate::sockets::Ownership::Owned => Startup::Answering(after),
                    owner => Startup::Foreign { owner, after },
                };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// GET `path` with `timeout`.
    pub async fn get(&self, probe: &Probe, path: &str, timeout: Duration) -> HttpExchange {
        probe.get(&self.url(path), timeout).await
    }

    /// Exit code if the process has exited.
    pub fn exited(&mut self) -> Option<Option<i32>> {
        match self.guard.try_wait() {
            Ok(Some(status)) => Some(status.code()),
            _ => None,
        }
    }

    /// Wait up to `timeout` for the process to exit; gives its exit code,
    /// or 128 + the signal number when a signal ended it (the shell's
    /// convention, so SIGTERM is 143).
    pub async fn wait_exit_code(&mut self, timeout: Duration) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        match self.guard.wait_timeout(timeout).await {
            Ok(Some(status)) => status.code().or_else(|| status.signal().map(|s| 128 + s)),
            _ => None,
        }
    }

    /// Wait up to `timeout` for the process to exit by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<Option<i32>> {
        match self.guard.wait_timeout(timeout).await {
            Ok(Some(status)) => Some(status.code()),
            _ => None,
        }
    }

    /// Everything the service printed so far, one line per line.
    pub async fn log_text(&self) -> String {
        self.log_since(0).await.0
    }

    /// What the service printed after its first `mark` lines, one line per
    /// line, and the mark where this text ends: a step that hands the
    /// instance on gives the next one that mark, so every line is recorded
    /// by exactly one step.
    pub async fn log_since(&self, mark: u64) -> (String, u64) {
        // Give the pipe readers a moment to catch the last lines.
        let _ = self
            .capture
            .wait_closed(tokio::time::Instant::now() + Duration::from_millis(50))
            .await;
        let snapshot = self.capture.snapshot().since(mark);
        let mut out = String::new();
        for (i, line) in snapshot.lines().enumerate() {
            if i == snapshot.head.len() && snapshot.omitted > 0 {
                out.push_str(&format!("… {} lines omitted …\n", snapshot.omitted));
            }
            out.push_str(&line.text);
            out.push('\n');
        }
        (out, snapshot.received.max(mark))
    }

    /// Stop the process group (SIGTERM, then SIGKILL after the grace) and
    /// reap it.
    pub async fn stop(self) -> io::Result<StopReport> {
        self.guard.stop().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_variables_are_passed_through() {
        // Cargo sets CARGO_PKG_NAME for every test process.
        let names = |inherit: &[&str]| -> Vec<String> {
            let inherit: Vec<String> = inherit.iter().map(|s| s.to_string()).collect();
            inherited_env(&inherit)
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        let base = names(&[]);
        assert!(base.contains(&"PATH".to_string()), "{base:?}");
        assert!(!base.contains(&"CARGO_PKG_NAME".to_string()), "{base:?}");
        assert!(
            base.iter().all(|n| BASE_ENV.contains(&n.as_str())
                || n.starts_with("LC_")
                || n == TEST_MARKER)
        );
        let asked = names(&["CARGO_PKG_NAME", "GONOGO_SIGNING_KEY"]);
        assert_eq!(asked.last().map(String::as_str), Some("CARGO_PKG_NAME"));
        assert!(!asked.iter().any(|n| n == "GONOGO_SIGNING_KEY"));
    }
}
