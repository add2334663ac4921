//! Commands run to completion under a guard (migrations, `current`, `git
//! rev-parse`): argv in, a [`CommandRun`] with exit code and output out,
//! within a deadline.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::process::{ChildGuard, GuardOptions, OutputCapture, piped_output};
use crate::service::shell_quote;

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
    let program = match crate::service::resolve_program(&argv[0], workdir) {
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
