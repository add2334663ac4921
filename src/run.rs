//! The pipeline, end to end: scenario → provision → steps → verdict →
//! mask → evidence. Each stage hands the next a typed value; this file only
//! sequences them and owns the teardown.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{SecondsFormat, Utc};

use crate::error::{Error, Result};
use crate::evidence::bundle::{self, BundleError, BundleOptions};
use crate::evidence::write::{WriteError, Written, dir_name, write_bundle};
use crate::evidence::{DependencyInfo, Evidence, Metadata, SCHEMA_VERSION, ScenarioInfo};
use crate::http::Probe;
use crate::mask::Masker;
use crate::progress::{Event, Reporter};
use crate::provision::{Embedded, EmbeddedOptions};
use crate::scenario::Scenario;
use crate::scenario::placeholders::Bindings;
use crate::steps::{self, StepContext, StepOutcome};
use crate::verdict::Verdict;

/// How to run one proof.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Root of the evidence tree (`evidence/`).
    pub out: PathBuf,
    /// Extra service environment (`--env KEY=VALUE`).
    pub env: Vec<(String, String)>,
    /// Environment label for the metadata (`--environment`).
    pub environment: Option<String>,
    /// Leave servers and temp dirs running (`--keep`).
    pub keep: bool,
    /// A report template to use instead of the built-in one.
    pub template: Option<String>,
    pub operator: Option<String>,
    /// Partially mask hosts and IPs in URLs.
    pub mask_hosts: bool,
    /// How gonogo was invoked (masked before it is stored).
    pub command_line: String,
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub verdict: Verdict,
    pub evidence: Evidence,
    pub written: Written,
}

/// The number of proof steps.
pub const STEP_COUNT: usize = 4;

/// Run `scenario` end to end and write its evidence.
pub async fn run(
    scenario: &Scenario,
    options: &RunOptions,
    reporter: &mut dyn Reporter,
) -> Result<RunOutcome> {
    preflight(scenario)?;
    let started_utc = Utc::now();
    let started = Instant::now();
    reporter.event(Event::RunStarted {
        scenario: &scenario.name,
        path: &scenario.path.display().to_string(),
        steps: STEP_COUNT,
    });

    reporter.event(Event::ProvisionStarted {
        what: "embedded postgres and redis-server",
    });
    let embedded = Embedded::start(&EmbeddedOptions {
        keep: options.keep,
        ..EmbeddedOptions::default()
    })
    .await
    .context("provision embedded dependencies")?;

    let mut masker = Masker::new().with_partial_hosts(options.mask_hosts);
    let pg = embedded.postgres();
    let redis = embedded.redis();
    masker.add_secret(pg.password().expose());
    masker.add_secret(redis.password().expose());
    let bindings = bindings(&embedded);
    for (key, template) in &scenario.service.env {
        masker.learn_from_env(key, &template.render(&bindings));
    }
    for (key, value) in &options.env {
        masker.learn_from_env(key, value);
    }
    let dependencies = vec![
        DependencyInfo {
            name: "postgres".into(),
            provider: "embedded".into(),
            version: pg.version().to_string(),
            endpoint: masker.mask(pg.url().expose()),
            ready_ms: pg.timings().total.as_millis() as u64,
        },
        DependencyInfo {
            name: "redis".into(),
            provider: "embedded".into(),
            version: redis.version().to_string(),
            endpoint: masker.mask(redis.url().expose()),
            ready_ms: redis.timings().total.as_millis() as u64,
        },
    ];
    for dep in &dependencies {
        reporter.event(Event::Provisioned {
            name: &dep.name,
            version: &dep.version,
            endpoint: dep.endpoint.as_str(),
            took: Duration::from_millis(dep.ready_ms),
        });
    }

    let (steps, version) = {
        let mut ctx = StepContext {
            scenario,
            masker: &masker,
            probe: Probe::new(),
            bindings,
            extra_env: options.env.clone(),
            reporter,
        };
        run_steps(&mut ctx).await?
    };

    let cleanup = Instant::now();
    if options.keep {
        let root = embedded.detach();
        reporter.event(Event::Kept {
            what: &format!(
                "servers still running; their files are in {} (stop them with `pkill -f {}`)",
                root.display(),
                root.display()
            ),
        });
    } else {
        embedded
            .shutdown()
            .await
            .context("stop embedded dependencies")?;
        reporter.event(Event::Cleanup {
            took: cleanup.elapsed(),
        });
    }

    let verdict = Verdict::decide(&steps);
    let finished_utc = Utc::now();
    let evidence = Evidence {
        schema_version: SCHEMA_VERSION,
        gonogo_version: env!("CARGO_PKG_VERSION").to_string(),
        verdict,
        headline: Evidence::headline(&steps),
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            path: masker.mask(&scenario.path.display().to_string()),
            description: scenario.description.as_deref().map(|d| masker.mask(d)),
            sha256: crate::digest::sha256_hex(scenario.source.as_bytes()),
        },
        metadata: Metadata {
            date_utc: started_utc.to_rfc3339_opts(SecondsFormat::Secs, true),
            finished_utc: finished_utc.to_rfc3339_opts(SecondsFormat::Secs, true),
            duration_ms: started.elapsed().as_millis() as u64,
            environment: environment(scenario, options),
            service_version: version.as_deref().map(|v| masker.mask(v)),
            git_sha: git_sha(scenario).await,
            runner_host: masker.mask_host(&hostname()),
            operator: options.operator.as_deref().map(|o| masker.mask(o)),
            command_line: masker.mask(&options.command_line),
        },
        dependencies,
        steps,
    };
    let written = write_evidence(&evidence, options, &masker)?;
    reporter.event(Event::Finished {
        scenario: &scenario.name,
        verdict,
        headline: &evidence.headline,
        report: &written.report.display().to_string(),
    });
    Ok(RunOutcome {
        verdict,
        evidence,
        written,
    })
}

/// Fail before starting anything if the service cannot possibly start.
fn preflight(scenario: &Scenario) -> Result<()> {
    let program = scenario.service.command[0].render(&Bindings::new());
    crate::service::resolve_program(&program, &scenario.service.workdir).map_err(|e| {
        Error::Usage(format!(
            "service command in {}: {e}; build or install it first",
            scenario.path.display()
        ))
    })?;
    Ok(())
}

async fn run_steps(ctx: &mut StepContext<'_>) -> Result<(Vec<StepOutcome>, Option<String>)> {
    let mut outcomes = Vec::new();
    let mut version = None;
    for number in 1..=STEP_COUNT as u32 {
        let title = match number {
            1 => steps::migrate::TITLE,
            2 => steps::ready::TITLE,
            3 => steps::negative::TITLE,
            _ => steps::failfast::TITLE,
        };
        ctx.reporter.event(Event::StepStarted {
            number,
            total: STEP_COUNT,
            title,
        });
        let outcome = match number {
            1 => steps::migrate(ctx, number).await,
            2 => {
                let gate = steps::ready_gate(ctx, number).await?;
                version = gate.version;
                gate.outcome
            }
            3 => steps::negative(ctx, number).await?,
            _ => steps::failfast(ctx, number).await?,
        };
        ctx.reporter.event(Event::StepFinished {
            number,
            total: STEP_COUNT,
            title,
            status: outcome.status,
            took: Duration::from_millis(outcome.duration_ms),
            summary: outcome.summary.as_str(),
        });
        outcomes.push(outcome);
    }
    Ok((outcomes, version))
}

/// Placeholder values for the healthy embedded servers.
fn bindings(embedded: &Embedded) -> Bindings {
    let pg = embedded.postgres();
    let redis = embedded.redis();
    let mut b = Bindings::new();
    b.insert("host", "127.0.0.1".into());
    b.insert("database_url", pg.url().expose().to_string());
    b.insert("database_host", "127.0.0.1".into());
    b.insert("database_port", pg.port().to_string());
    b.insert("database_user", "gonogo".to_string());
    b.insert("database_password", pg.password().expose().to_string());
    b.insert("database_name", pg.database().to_string());
    b.insert("redis_url", redis.url().expose().to_string());
    b.insert("redis_host", "127.0.0.1".into());
    b.insert("redis_port", redis.port().to_string());
    b.insert("redis_password", redis.password().expose().to_string());
    b
}

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

fn write_evidence(evidence: &Evidence, options: &RunOptions, masker: &Masker) -> Result<Written> {
    let bundle = BundleOptions {
        template: options.template.clone(),
    };
    let artifacts = bundle::artifacts(evidence, &bundle).map_err(|e| match e {
        BundleError::Template(t) => Error::Usage(t.to_string()),
        other => Error::Harness(anyhow::anyhow!("{other}")),
    })?;
    let name = dir_name(evidence);
    write_bundle(&options.out, &name, &artifacts, masker.secrets()).map_err(|e| match e {
        WriteError::SecretLeak(_) => Error::Harness(anyhow::anyhow!("{e}")),
        WriteError::Io(io) => Error::Harness(io.context("write evidence")),
    })
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
    let output = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::process::Command::new("git")
            .arg("-C")
            .arg(&scenario.service.workdir)
            .args(["rev-parse", "HEAD"])
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    let sha = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && sha.len() >= 7 && sha.chars().all(|c| c.is_ascii_hexdigit()))
        .then_some(sha)
}

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
