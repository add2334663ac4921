//! Run metadata: the facts about a run that are not step results (when it
//! ran and for how long, where, by whom, on which commit of the service),
//! for the evidence's [`Metadata`] block.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

use super::RunOptions;
use crate::evidence::{Metadata, Phases};
use crate::mask::Masker;
use crate::scenario::Scenario;
use crate::scenario::placeholders::Bindings;
use crate::steps;

/// When the run started, and the wall time of each phase since.
pub struct Clock {
    pub started_utc: DateTime<Utc>,
    started: Instant,
    lap: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        let now = Instant::now();
        Clock {
            started_utc: Utc::now(),
            started: now,
            lap: now,
        }
    }

    /// Milliseconds since the previous lap (or the start).
    pub fn lap(&mut self) -> u64 {
        let now = Instant::now();
        let ms = now.duration_since(self.lap).as_millis() as u64;
        self.lap = now;
        ms
    }

    fn total_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// The metadata block, masked. `version` is the body of the service's
/// version endpoint, when the ready gate captured it.
pub async fn metadata(
    scenario: &Scenario,
    options: &RunOptions,
    masker: &Masker,
    clock: &Clock,
    phases: Phases,
    version: Option<&str>,
) -> Metadata {
    let pick = |flag: &Option<String>, scenario: &Option<String>| {
        flag.as_ref().or(scenario.as_ref()).map(|v| masker.mask(v))
    };
    Metadata {
        date_utc: clock.started_utc.to_rfc3339_opts(SecondsFormat::Secs, true),
        finished_utc: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        duration_ms: clock.total_ms(),
        phases,
        environment: environment(scenario, options),
        service_version: version.map(|v| masker.mask(v).truncated(200)),
        git_sha: git_sha(scenario).await,
        runner_host: masker.mask_host(&hostname()),
        operator: options.operator.as_deref().map(|o| masker.mask(o)),
        command_line: masker.mask(&options.command_line),
        release: pick(&options.release, &scenario.release.version),
        owner: pick(&options.owner, &scenario.release.owner),
    }
}

/// The environment label: `--environment`, else the scenario's, else `ci`
/// under CI, else `local`.
fn environment(scenario: &Scenario, options: &RunOptions) -> String {
    if let Some(env) = options
        .environment
        .as_ref()
        .or(scenario.environment.as_ref())
    {
        return env.clone();
    }
    if std::env::var_os("CI").is_some() {
        return "ci".into();
    }
    "local".into()
}

/// The service's git SHA: `GIT_SHA` in the scenario env, else the commit of
/// the service's working directory.
async fn git_sha(scenario: &Scenario) -> Option<String> {
    if let Some((_, t)) = scenario.service.env.iter().find(|(k, _)| k == "GIT_SHA") {
        let sha = t.render(&Bindings::new());
        if !sha.is_empty() {
            return Some(sha);
        }
    }
    // Through the same guarded runner as every other child process.
    let argv: Vec<String> = ["git", "rev-parse", "HEAD"].map(String::from).to_vec();
    let run = steps::run_command(
        &argv,
        &scenario.service.workdir,
        &[],
        Duration::from_secs(5),
    )
    .await;
    let sha = run.output.lines().next().unwrap_or("").trim().to_string();
    (run.exit_code == Some(0) && sha.len() >= 7 && sha.chars().all(|c| c.is_ascii_hexdigit()))
        .then_some(sha)
}

/// This machine's name, unmasked (the caller masks it).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // or truncates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
