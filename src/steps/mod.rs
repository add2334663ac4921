//! Steps stage: each proof step drives the real service (and tools) and
//! returns a [`StepOutcome`], which is data whether it passed or failed.
//!
//! A step returns `Err` only when the harness itself broke (for example it
//! could not spawn a process it had already found).

pub mod failfast;
pub mod faults;
pub mod migrate;
pub mod negative;
mod outcome;
pub mod ready;

use std::path::Path;
use std::time::{Duration, Instant};

pub use failfast::failfast;
pub use migrate::migrate;
pub use negative::negative;
pub use outcome::{
    Action, ActionKind, Check, Excerpt, Latency, StepOutcome, StepRecorder, StepStatus,
};
pub use ready::{ReadyGate, ready_gate};

use crate::http::Probe;
use crate::mask::Masker;
use crate::process::{ChildGuard, GuardOptions, OutputCapture, piped_output};
use crate::progress::{Event, Reporter};
use crate::scenario::Scenario;
use crate::scenario::placeholders::Bindings;
use crate::service::shell_quote;

/// What every step needs: the scenario, the masker, placeholder values for
/// healthy dependencies, and where to report progress.
pub struct StepContext<'a> {
    pub scenario: &'a Scenario,
    pub masker: &'a Masker,
    pub probe: Probe,
    /// Placeholder values pointing at the healthy dependencies.
    pub bindings: Bindings,
    /// Extra service environment from `--env KEY=VALUE`.
    pub extra_env: Vec<(String, String)>,
    pub reporter: &'a mut dyn Reporter,
}

impl StepContext<'_> {
    pub fn detail(&mut self, text: &str) {
        let masked = self.masker.mask(text);
        self.reporter.event(Event::StepDetail {
            text: masked.as_str(),
        });
    }

    /// Bindings with a fresh port for one service instance.
    pub fn bindings_with_port(&self, base: &Bindings) -> std::io::Result<Bindings> {
        let mut bindings = base.clone();
        bindings.insert("port".into(), crate::process::free_port()?.to_string());
        Ok(bindings)
    }
}

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
    let mut invocation = format!("cd {} && ", shell_quote(&workdir.display().to_string()));
    invocation.push_str(
        &argv
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" "),
    );
    let started = Instant::now();
    let program = match crate::service::resolve_program(&argv[0], workdir) {
        Ok(p) => p,
        Err(e) => {
            return CommandRun {
                invocation,
                exit_code: None,
                output: String::new(),
                duration: started.elapsed(),
                timed_out: false,
                spawn_error: Some(e.to_string()),
            };
        }
    };
    let mut command = tokio::process::Command::new(program);
    command.args(&argv[1..]).current_dir(workdir);
    for (key, value) in env {
        command.env(key, value);
    }
    piped_output(&mut command);
    let mut guard = match ChildGuard::spawn(argv[0].clone(), command, GuardOptions::default()) {
        Ok(g) => g,
        Err(e) => {
            return CommandRun {
                invocation,
                exit_code: None,
                output: String::new(),
                duration: started.elapsed(),
                timed_out: false,
                spawn_error: Some(format!("cannot start `{}`: {e}", argv[0])),
            };
        }
    };
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
    CommandRun {
        invocation,
        exit_code,
        output,
        duration: started.elapsed(),
        timed_out,
        spawn_error: None,
    }
}

/// The value at a JSON pointer, as text for display.
pub fn pointer_text(
    body: &Option<serde_json::Value>,
    pointer: &str,
) -> (Option<serde_json::Value>, String) {
    match body {
        None => (None, "body is not JSON".into()),
        Some(json) => match json.pointer(pointer) {
            Some(value) => (Some(value.clone()), format!("{pointer} = {value}")),
            None => (None, format!("{pointer} is missing")),
        },
    }
}
