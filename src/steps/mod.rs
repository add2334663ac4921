//! Steps stage: each proof step drives the real service (and tools) and
//! returns a [`StepOutcome`], which is data whether it passed or failed.
//!
//! A step returns `Err` only when the harness itself broke (for example it
//! could not spawn a process it had already found).

pub mod failfast;
pub mod faults;
pub mod latency;
pub mod metrics;
pub mod migrate;
pub mod negative;
mod outcome;
pub mod ready;
pub mod shutdown;

use std::path::Path;
use std::time::{Duration, Instant};

pub use failfast::failfast;
pub use migrate::migrate;
pub use negative::negative;
pub use outcome::{
    Action, ActionKind, Check, EXCERPT_BYTES, Excerpt, HYGIENE_EXPECTED, Latency, StepOutcome,
    StepRecorder, StepStatus,
};
pub use ready::{ReadyGate, ready_gate};

use crate::http::Probe;
use crate::mask::Masker;
use crate::process::{ChildGuard, GuardOptions, OutputCapture, piped_output};
use crate::progress::{Event, Reporter};
use crate::provider::ProviderKind;
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
    /// How the service is reached: launched by gonogo, or already running.
    pub mode: Mode,
}

/// How gonogo reaches the service under test, which decides the steps it
/// can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// gonogo starts (and restarts) the service itself, against servers
    /// from this provider.
    Launch { provider: ProviderKind },
    /// The service already runs at this base URL (`--service-url`); gonogo
    /// only sends it requests.
    Target { base_url: String },
}

/// What a step needs beyond sending HTTP requests to a running instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing more: a ready instance to ask.
    Requests,
    /// A connection to the service's database.
    Database,
    /// Starting the service itself, or restarting it with other settings.
    Restart,
    /// gonogo's fault proxy between the service and its dependencies.
    Faults,
}

impl Mode {
    /// Why a step that needs `needs` cannot run in this mode, or `None`.
    pub fn rules_out(&self, needs: Needs) -> Option<&'static str> {
        match (self, needs) {
            (Mode::Launch { .. }, _) | (Mode::Target { .. }, Needs::Requests) => None,
            (Mode::Target { .. }, Needs::Database) => Some(
                "target mode (--service-url): gonogo has no connection to the deployed service's database",
            ),
            (Mode::Target { .. }, Needs::Restart) => Some(
                "target mode (--service-url): the step restarts the service with other settings, and gonogo does not control the running service",
            ),
            (Mode::Target { .. }, Needs::Faults) => Some(
                "target mode (--service-url): the step breaks dependencies through gonogo's fault proxy, which is not in front of the running service's dependencies",
            ),
        }
    }

    /// The provider of the dependencies, when gonogo launched the service.
    pub fn provider(&self) -> Option<ProviderKind> {
        match self {
            Mode::Launch { provider } => Some(*provider),
            Mode::Target { .. } => None,
        }
    }
}

/// A NOT RUN outcome for a step that `mode` rules out, or `None` when it can
/// run.
pub fn ruled_out(
    ctx: &StepContext<'_>,
    number: u32,
    id: &str,
    title: &str,
    needs: Needs,
) -> Option<StepOutcome> {
    let reason = ctx.mode.rules_out(needs)?;
    let mut step = StepRecorder::new(ctx.masker, number, id, title);
    step.not_run(reason);
    Some(step.finish())
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
    if clear_env {
        command.env_clear();
    }
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

/// Start one instance of the service on healthy dependencies and wait for
/// it to answer HTTP. When it does not, records a failed check (`what`)
/// with its log and gives `None`; the step then finishes as a FAIL.
pub async fn start_healthy(
    ctx: &mut StepContext<'_>,
    step: &mut StepRecorder<'_>,
    what: &str,
) -> anyhow::Result<Option<crate::service::RunningService>> {
    use crate::service::{RunningService, ServiceLaunch, Startup};
    let spec = &ctx.scenario.service;
    let bindings = ctx.bindings_with_port(&ctx.bindings)?;
    let launch = ServiceLaunch::build(
        spec,
        &bindings,
        &ctx.extra_env,
        &[],
        &std::collections::BTreeMap::new(),
    )?;
    let mut service = RunningService::spawn(&launch)?;
    let startup = service
        .wait_answering(&ctx.probe, &spec.live_path, spec.startup_timeout)
        .await;
    let took = startup.took();
    step.process(
        "start service",
        &launch.display(),
        None,
        &ready::startup_text(&startup),
        took,
    );
    if matches!(startup, Startup::Answering(_)) {
        return Ok(Some(service));
    }
    step.check(what, ready::startup_text(&startup), false);
    step.log(&service.log_text().await);
    let _ = service.stop().await;
    Ok(None)
}

/// Ask ready until it answers `status` or `window` passes; gives how long
/// that took (if it did) and the last exchange.
pub async fn until_ready_status(
    ctx: &StepContext<'_>,
    service: &crate::service::RunningService,
    status: u16,
    window: Duration,
) -> (Option<Duration>, crate::http::HttpExchange) {
    let spec = &ctx.scenario.service;
    let started = Instant::now();
    loop {
        let exchange = service
            .get(&ctx.probe, &spec.ready_path, spec.request_timeout)
            .await;
        if exchange.status == Some(status) {
            return (Some(started.elapsed()), exchange);
        }
        if started.elapsed() >= window {
            return (None, exchange);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
