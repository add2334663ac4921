//! The pipeline, end to end: scenario → dependencies → steps → waivers →
//! verdict → mask → evidence. Each stage hands the next a typed value;
//! [`run`] only sequences them and owns the teardown. Run metadata (times,
//! host, git SHA) is in `metadata`.

mod metadata;
mod secrets;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use self::metadata::Clock;
use crate::deps::{self, Dependencies, DepsChoice, ProvisionOptions, Provisioned};
use crate::error::{Error, Result};
use crate::evidence::bundle::{self, BundleError, BundleOptions};
use crate::evidence::write::{WriteError, Written, dir_name, write_bundle};
use crate::evidence::{DependencyInfo, Evidence, Phases, SCHEMA_VERSION, ScenarioInfo};
use crate::http::Probe;
use crate::mask::Masker;
use crate::outcome::StepOutcome;
use crate::progress::{Event, Reporter};
use crate::scenario::Scenario;
use crate::scenario::placeholders::Bindings;
use crate::steps::{self, Mode, Plan, StepContext};
use crate::verdict::Verdict;
use crate::waiver;

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
    /// Which artifacts to write (`--format`); empty means all.
    pub formats: Vec<crate::evidence::bundle::Format>,
    /// The release this run gates (`--release`, over `[release] version`).
    pub release: Option<String>,
    /// Who owns the gate (`--owner`, over `[release] owner`).
    pub owner: Option<String>,
    /// Where to append the CI step summary (`GITHUB_STEP_SUMMARY`).
    pub step_summary: Option<PathBuf>,
    /// The CI run's page, linked from the step summary.
    pub ci_run_url: Option<String>,
    /// Where Postgres and Redis come from (`--deps`).
    pub deps: DepsChoice,
    /// Prove the service already running at this base URL (`--service-url`)
    /// instead of launching it: target mode.
    pub service_url: Option<String>,
    /// Sign the bundle (`--sign-key`, `--subject`): adds the attestation.
    pub signing: Option<crate::attest::Signer>,
    /// Run the plan one unit after another (`--serial`), not side by side.
    pub serial: bool,
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub verdict: Verdict,
    pub evidence: Evidence,
    pub written: Written,
}

/// Run `scenario` end to end and write its evidence.
pub async fn run(
    scenario: &Scenario,
    options: &RunOptions,
    reporter: &mut dyn Reporter,
) -> Result<RunOutcome> {
    if options.service_url.is_none() {
        preflight(scenario)?;
    }
    let mut clock = Clock::start();
    let mode = mode(options).await?;
    let plan = Plan::new(scenario, &mode);
    let today = clock.started_utc.date_naive();
    announce(reporter, scenario, &plan, today);
    let mut masker = masker(options);
    let provisioned = provision(scenario, options, &mode, &mut masker, reporter).await?;
    let deps = Dependencies::start(provisioned.as_ref(), scenario).await?;
    let (bindings, service_env) = learn_secrets(&mut masker, &deps, scenario, options);
    let dependencies = deps.infos(&masker);
    report_dependencies(reporter, &dependencies);
    let provision_ms = clock.lap();

    let shown = |o: &StepOutcome| waiver::shown_status(o, &scenario.waivers, today);
    let proof = {
        let mut ctx = StepContext {
            scenario,
            masker: &masker,
            probe: Probe::new(),
            bindings,
            extra_env: options.env.clone(),
            reporter: &mut *reporter,
            mode,
            deps: &deps,
            recorded: steps::observed::Recorded::new(scenario),
            link: steps::Link::detached(),
        };
        let schedule = match options.serial {
            true => steps::Schedule::Serial,
            false => steps::Schedule::Concurrent,
        };
        steps::run(&plan, &mut ctx, &shown, schedule).await?
    };
    deps.shutdown().await;
    let steps_ms = clock.lap();
    teardown(provisioned, options.keep, reporter).await?;
    let phases = Phases {
        provision_ms,
        steps_ms,
        teardown_ms: clock.lap(),
    };

    let mut steps = proof.outcomes;
    let waivers = apply_waivers(&mut steps, scenario, today, &masker, reporter);
    let verdict = Verdict::decide(&steps);
    let metadata = metadata::metadata(
        scenario,
        options,
        &masker,
        &clock,
        phases,
        proof.version.as_deref(),
    )
    .await;
    let evidence = Evidence {
        schema_version: SCHEMA_VERSION,
        gonogo_version: env!("CARGO_PKG_VERSION").to_string(),
        verdict,
        headline: Evidence::headline(&steps),
        scenario: scenario_info(scenario, &masker),
        metadata,
        dependencies,
        steps,
        timelines: proof.timelines,
        waivers,
        masking: crate::mask::learn::MaskingInfo::of(&masker, service_env),
        signed_by: options.signing.as_ref().map(|s| s.key.keyid().to_string()),
    };
    let written = write_evidence(&evidence, options, &masker, &scenario.service.workdir)?;
    report_sealed(reporter, &evidence, &written);
    publish_summary(&evidence, &written, options, &masker, reporter);
    report_finished(reporter, &evidence, &written);
    Ok(RunOutcome {
        verdict,
        evidence,
        written,
    })
}

/// Say the run started, with its step count, and warn about expired
/// waivers.
fn announce(
    reporter: &mut dyn Reporter,
    scenario: &Scenario,
    plan: &Plan,
    today: chrono::NaiveDate,
) {
    reporter.event(Event::RunStarted {
        scenario: &scenario.name,
        path: &scenario.path.display().to_string(),
        steps: plan.len(),
    });
    for text in waiver::expired(scenario, today) {
        reporter.event(Event::Warning { text: &text });
    }
}

/// Say the bundle is sealed: its manifest's SHA-256, and who signed it.
fn report_sealed(reporter: &mut dyn Reporter, evidence: &Evidence, written: &Written) {
    if let Some(sha) = crate::evidence::manifest::sha256_of(&written.dir) {
        reporter.event(Event::Sealed {
            manifest_sha256: &sha,
            signed_by: evidence.signed_by.as_deref(),
        });
    }
}

/// Judge each failed or NOT RUN step against the scenario's waivers, and
/// warn about waivers that matched no step.
fn apply_waivers(
    steps: &mut [StepOutcome],
    scenario: &Scenario,
    today: chrono::NaiveDate,
    masker: &Masker,
    reporter: &mut dyn Reporter,
) -> Vec<waiver::WaiverRecord> {
    let waivers = waiver::apply(steps, &scenario.waivers, today, masker);
    for text in waiver::warnings(&waivers) {
        reporter.event(Event::Warning { text: &text });
    }
    waivers
}

fn report_finished(reporter: &mut dyn Reporter, evidence: &Evidence, written: &Written) {
    reporter.event(Event::Finished {
        scenario: &evidence.scenario.name,
        verdict: evidence.verdict,
        headline: &evidence.headline,
        report: &written.report.display().to_string(),
    });
}

/// The run's masker: it knows the signing key from the start.
fn masker(options: &RunOptions) -> Masker {
    let mut masker = Masker::new().with_partial_hosts(options.mask_hosts);
    for secret in options.signing.iter().flat_map(|s| s.key.secrets()) {
        masker.add_secret(secret);
    }
    masker
}

/// How the service will be reached: at `--service-url` (target mode), or
/// launched by gonogo on dependencies from the chosen provider.
async fn mode(options: &RunOptions) -> Result<Mode> {
    if let Some(url) = &options.service_url {
        let base_url = url.trim_end_matches('/').to_string();
        return Ok(Mode::Target { base_url });
    }
    let provider = deps::resolve(options.deps)
        .await
        .map_err(|e| anyhow::anyhow!("choose the dependency provider: {e:#}"))?;
    Ok(Mode::Launch { provider })
}

/// Start the dependencies (launch mode), or nothing (target mode).
async fn provision(
    scenario: &Scenario,
    options: &RunOptions,
    mode: &Mode,
    masker: &mut Masker,
    reporter: &mut dyn Reporter,
) -> Result<Option<Provisioned>> {
    let Mode::Launch { provider: kind } = *mode else {
        if let Some(url) = &options.service_url {
            masker.learn_from_env("SERVICE_URL", url);
        }
        reporter.event(Event::ProvisionStarted {
            what: "nothing: target mode asks the running service, and starts no dependencies",
        });
        return Ok(None);
    };
    reporter.event(Event::ProvisionStarted {
        what: deps::describe(kind),
    });
    let provisioned = deps::provision(kind, scenario, &ProvisionOptions { keep: options.keep })
        .await
        .map_err(|e| anyhow::anyhow!("provision {} dependencies: {e:#}", kind.as_str()))?;
    Ok(Some(provisioned))
}

/// Teach the masker every secret the service will be given: the
/// dependencies' passwords (named), URLs and secret-looking variables in
/// the service's environment, and `--env` values. Gives the bindings the
/// service starts with, and the names of the variables it is given (none in
/// target mode, where gonogo launches nothing).
fn learn_secrets(
    masker: &mut Masker,
    deps: &Dependencies,
    scenario: &Scenario,
    options: &RunOptions,
) -> (Bindings, Vec<String>) {
    for (label, secret) in deps.secrets() {
        masker.add_named_secret(&label, secret);
    }
    let bindings = deps.bindings();
    let mut service_env = secrets::learn(masker, scenario, &bindings, &options.env);
    if options.service_url.is_some() {
        service_env.clear();
    }
    (bindings, service_env)
}

fn report_dependencies(reporter: &mut dyn Reporter, dependencies: &[DependencyInfo]) {
    for dep in dependencies {
        reporter.event(Event::Provisioned {
            name: &dep.name,
            version: &dep.version,
            endpoint: dep.endpoint.as_str(),
            took: Duration::from_millis(dep.ready_ms),
        });
    }
}

/// Stop what gonogo started, or leave it running with `--keep`.
async fn teardown(
    provisioned: Option<Provisioned>,
    keep: bool,
    reporter: &mut dyn Reporter,
) -> Result<()> {
    let started = Instant::now();
    match provisioned {
        Some(provisioned) if keep => {
            if let Some(what) = provisioned.detach() {
                reporter.event(Event::Kept { what: &what });
            }
        }
        Some(provisioned) => {
            provisioned.shutdown().await.context("stop dependencies")?;
            reporter.event(Event::Cleanup {
                took: started.elapsed(),
            });
        }
        None => {}
    }
    Ok(())
}

fn scenario_info(scenario: &Scenario, masker: &Masker) -> ScenarioInfo {
    ScenarioInfo {
        name: scenario.name.clone(),
        path: masker.mask(&scenario.path.display().to_string()),
        description: scenario.description.as_deref().map(|d| masker.mask(d)),
        sha256: crate::digest::sha256_hex(scenario.source.as_bytes()),
    }
}

/// Append the CI step summary, when the CI asks for one; a failure is a
/// warning, not a harness error (the evidence is already written).
fn publish_summary(
    evidence: &Evidence,
    written: &Written,
    options: &RunOptions,
    masker: &Masker,
    reporter: &mut dyn Reporter,
) {
    let Some(path) = &options.step_summary else {
        return;
    };
    let published = crate::evidence::summary::publish(
        path,
        evidence,
        written,
        options.ci_run_url.clone(),
        signed_by(written),
        masker.table(),
    );
    if let Err(e) = published {
        let text = format!("step summary not written: {e:#}");
        reporter.event(Event::Warning { text: &text });
    }
}

/// The key ids that signed the written bundle, if it is signed.
fn signed_by(written: &Written) -> Option<String> {
    std::fs::read(written.dir.join(crate::attest::ATTESTATION_FILE))
        .ok()
        .and_then(|bytes| crate::attest::dsse::Envelope::parse(&bytes).ok())
        .map(|envelope| envelope.keyids().join(", "))
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

fn write_evidence(
    evidence: &Evidence,
    options: &RunOptions,
    masker: &Masker,
    workdir: &std::path::Path,
) -> Result<Written> {
    let bundle = BundleOptions {
        template: options.template.clone(),
        formats: options.formats.clone(),
    };
    let mut artifacts = bundle::artifacts(evidence, &bundle).map_err(|e| match e {
        BundleError::Template(t) => Error::Usage(t.to_string()),
        other => Error::Harness(anyhow::anyhow!("{other}")),
    })?;
    if let Some(signer) = &options.signing {
        let origin = crate::attest::Origin {
            workdir,
            run_url: options.ci_run_url.as_deref(),
        };
        let signed = crate::attest::attestation(signer, evidence, &artifacts, &origin, masker)
            .map_err(|e| anyhow::anyhow!("sign the evidence: {e}"))?;
        artifacts.push(signed);
    }
    let name = dir_name(evidence);
    write_bundle(&options.out, &name, &artifacts, masker.table()).map_err(|e| match e {
        WriteError::SecretLeak(_) => Error::Harness(anyhow::anyhow!("{e}")),
        WriteError::Io(io) => Error::Harness(io.context("write evidence")),
    })
}
