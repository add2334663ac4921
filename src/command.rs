//! Commands run to completion under a guard (migrations, `current`, `git
//! rev-parse`, promtool): argv in, a [`CommandRun`] with exit code and
//! output out, within a deadline. Depends only on `process`, so the steps,
//! the alert-rule checks and the service launcher can all use it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process::{ChildGuard, GuardOptions, OutputCapture, piped_output};

/// The result of running one command to completion (or its deadline).
pub struct CommandRun {
    pub invocation: String,
    pub exit_code: Option<i32>,
    pub output: String,
    pub duration: Duration,
    pub timed_out: bool,
    /// The program could not be started at all.
    pub spawn_error: Option<String>,
}

/// Run `argv` in `workdir` with `env` added, capturing stdout and stderr,
/// killing it (and its process group) if it outlives `timeout`.
pub async fn run_command(
    argv: &[String],
    workdir: &Path,
    env: &[(String, String)],
    timeout: Duration,
) -> CommandRun {
    run_command_with(argv, workdir, env, false, timeout).await
}

/// [`run_command`] for the service's own tooling (migrations): it gets the
/// service's explicit environment, `env` and nothing else of gonogo's.
pub async fn run_service_command(
    argv: &[String],
    workdir: &Path,
    env: &[(String, String)],
    timeout: Duration,
) -> CommandRun {
    run_command_with(argv, workdir, env, true, timeout).await
}

async fn run_command_with(
    argv: &[String],
    workdir: &Path,
    env: &[(String, String)],
    clear_env: bool,
    timeout: Duration,
) -> CommandRun {
    let mut invocation = format!("cd {} && ", shell_quote(&workdir.display().to_string()));
    invocation.push_str(
        &argv
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" "),
    );
    let started = Instant::now();
    let not_started = |error: String| CommandRun {
        invocation: invocation.clone(),
        exit_code: None,
        output: String::new(),
        duration: started.elapsed(),
        timed_out: false,
        spawn_error: Some(error),
    };
    let program = match resolve_program(&argv[0], workdir) {
        Ok(p) => p,
        Err(e) => return not_started(e.to_string()),
    };
    let mut command = tokio::process::Command::new(program);
    command.args(&argv[1..]).current_dir(workdir);
    if clear_env {
        command.env_clear();
    }
    for (key, value) in env {
        command.env(key, value);
    }
    piped_output(&mut command);
    let guard = match ChildGuard::spawn(argv[0].clone(), command, GuardOptions::default()) {
        Ok(g) => g,
        Err(e) => return not_started(format!("cannot start `{}`: {e}", argv[0])),
    };
    let (exit_code, output, timed_out) = wait(guard, timeout).await;
    CommandRun {
        invocation,
        exit_code,
        output,
        duration: started.elapsed(),
        timed_out,
        spawn_error: None,
    }
}

/// Wait for the command, killing it at `timeout`; gives its exit code, its
/// output and whether it was killed.
async fn wait(mut guard: ChildGuard, timeout: Duration) -> (Option<i32>, String, bool) {
    let capture = OutputCapture::attach(&mut guard);
    let status = guard.wait_timeout(timeout).await.ok().flatten();
    let timed_out = status.is_none();
    let exit_code = match status {
        Some(s) => s.code(),
        None => {
            let _ = guard.stop().await;
            None
        }
    };
    let _ = capture
        .wait_closed(tokio::time::Instant::now() + Duration::from_millis(500))
        .await;
    let snapshot = capture.snapshot();
    let mut output: String = snapshot.lines().map(|l| format!("{}\n", l.text)).collect();
    if timed_out {
        output.push_str(&format!(
            "gonogo: killed after the {} s deadline\n",
            timeout.as_secs_f64()
        ));
    }
    (exit_code, output, timed_out)
}

/// Quote for a POSIX shell when needed.
pub fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Find the program: a path with a `/` is taken relative to `workdir`;
/// a bare name is searched on `PATH`.
pub fn resolve_program(program: &str, workdir: &Path) -> io::Result<PathBuf> {
    let not_found = |detail: String| io::Error::new(io::ErrorKind::NotFound, detail);
    if program.contains('/') {
        let path = workdir.join(program);
        if path.is_file() {
            return Ok(path);
        }
        return Err(not_found(format!(
            "`{program}` does not exist (looked at {})",
            path.display()
        )));
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path_var) {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(not_found(format!("`{program}` is not on PATH")))
}
