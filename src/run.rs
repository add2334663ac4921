//! The pipeline, end to end: scenario → provision → steps → verdict →
//! mask → evidence. Each stage hands the next a typed value; this file only
//! sequences them and owns the teardown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{SecondsFormat, Utc};

use crate::error::{Error, Result};
use crate::evidence::bundle::{self, BundleError, BundleOptions};
use crate::evidence::write::{WriteError, Written, dir_name, write_bundle};
use crate::evidence::{
    DependencyInfo, Evidence, FaultTimeline, Metadata, Phases, SCHEMA_VERSION, ScenarioInfo,
};
use crate::http::Probe;
use crate::mask::Masker;
use crate::progress::{Event, Reporter};
use crate::provider::{self, DepsChoice, ProvisionOptions, Provisioned};
use crate::proxy::FaultProxy;
use crate::scenario::Scenario;
use crate::scenario::placeholders::Bindings;
use crate::steps::faults::FaultTarget;
use crate::steps::{self, Needs, StepContext, StepOutcome};
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
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub verdict: Verdict,
    pub evidence: Evidence,
    pub written: Written,
}

/// The seed's four steps, before the runtime fault steps.
pub const BASE_STEPS: usize = 4;

/// Run `scenario` end to end and write its evidence.
pub async fn run(
    scenario: &Scenario,
    options: &RunOptions,
    reporter: &mut dyn Reporter,
) -> Result<RunOutcome> {
    if options.service_url.is_none() {
        preflight(scenario)?;
    }
    let started_utc = Utc::now();
    let started = Instant::now();
    reporter.event(Event::RunStarted {
        scenario: &scenario.name,
        path: &scenario.path.display().to_string(),
        steps: planned_steps(scenario, options.service_url.is_some()),
    });

    let mut masker = Masker::new().with_partial_hosts(options.mask_hosts);
    for secret in options.signing.iter().flat_map(|s| s.key.secrets()) {
        masker.add_secret(secret);
    }
    let (provisioned, mode) = match &options.service_url {
        Some(url) => {
            masker.learn_from_env("SERVICE_URL", url);
            reporter.event(Event::ProvisionStarted {
                what: "nothing: target mode asks the running service, and starts no dependencies",
            });
            let base_url = url.trim_end_matches('/').to_string();
            (None, steps::Mode::Target { base_url })
        }
        None => {
            let kind = provider::resolve(options.deps)
                .await
                .map_err(|e| anyhow::anyhow!("choose the dependency provider: {e:#}"))?;
            reporter.event(Event::ProvisionStarted {
                what: provider::describe(kind),
            });
            let provisioned =
                provider::provision(kind, scenario, &ProvisionOptions { keep: options.keep })
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("provision {} dependencies: {e:#}", kind.as_str())
                    })?;
            (Some(provisioned), steps::Mode::Launch { provider: kind })
        }
    };
    if let Some(p) = &provisioned {
        learn_provisioned(&mut masker, p);
    }
    let proxies = Proxies::start(provisioned.as_ref(), scenario).await?;
    let bindings = bindings(provisioned.as_ref(), &proxies);
    let mut service_env = crate::mask::learn::learn(&mut masker, scenario, &bindings, &options.env);
    if options.service_url.is_some() {
        // Target mode: gonogo launches nothing, so no variable is given.
        service_env.clear();
    }
    let dependencies = provisioned
        .as_ref()
        .map(|p| dependency_infos(p, &masker))
        .unwrap_or_default();
    for dep in &dependencies {
        reporter.event(Event::Provisioned {
            name: &dep.name,
            version: &dep.version,
            endpoint: dep.endpoint.as_str(),
            took: Duration::from_millis(dep.ready_ms),
        });
    }

    let provision_ms = started.elapsed().as_millis() as u64;
    let steps_started = Instant::now();
    let (steps, version, timelines) = {
        let mut ctx = StepContext {
            scenario,
            masker: &masker,
            probe: Probe::new(),
            bindings,
            extra_env: options.env.clone(),
            reporter,
            mode,
        };
        run_steps(&mut ctx, &proxies).await?
    };
    proxies.shutdown().await;
    let steps_ms = steps_started.elapsed().as_millis() as u64;

    let cleanup = Instant::now();
    match provisioned {
        Some(provisioned) if options.keep => {
            if let Some(what) = provisioned.detach() {
                reporter.event(Event::Kept { what: &what });
            }
        }
        Some(provisioned) => {
            provisioned.shutdown().await.context("stop dependencies")?;
            reporter.event(Event::Cleanup {
                took: cleanup.elapsed(),
            });
        }
        None => {}
    }

    let teardown_ms = cleanup.elapsed().as_millis() as u64;
    let mut steps = steps;
    let waivers = crate::waiver::apply(
        &mut steps,
        &scenario.waivers,
        started_utc.date_naive(),
        &masker,
    );
    for text in crate::waiver::warnings(&waivers) {
        reporter.event(Event::Warning { text: &text });
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
            phases: Phases {
                provision_ms,
                steps_ms,
                teardown_ms,
            },
            environment: environment(scenario, options),
            service_version: version.as_deref().map(|v| masker.mask(v).truncated(200)),
            git_sha: git_sha(scenario).await,
            runner_host: masker.mask_host(&hostname()),
            operator: options.operator.as_deref().map(|o| masker.mask(o)),
            command_line: masker.mask(&options.command_line),
            release: options
                .release
                .as_ref()
                .or(scenario.release.version.as_ref())
                .map(|r| masker.mask(r)),
            owner: options
                .owner
                .as_ref()
                .or(scenario.release.owner.as_ref())
                .map(|o| masker.mask(o)),
        },
        dependencies,
        steps,
        timelines,
        waivers,
        masking: crate::mask::learn::MaskingInfo::of(&masker, service_env),
        signed_by: options.signing.as_ref().map(|s| s.key.keyid().to_string()),
    };
    let written = write_evidence(&evidence, options, &masker, &scenario.service.workdir)?;
    if let Some(sha) = crate::evidence::manifest::sha256_of(&written.dir) {
        reporter.event(Event::Sealed {
            manifest_sha256: &sha,
            signed_by: evidence.signed_by.as_deref(),
        });
    }
    if let Some(path) = &options.step_summary {
        let published = crate::evidence::summary::publish(
            path,
            &evidence,
            &written,
            options.ci_run_url.clone(),
            masker.table(),
        );
        if let Err(e) = published {
            let text = format!("step summary not written: {e:#}");
            reporter.event(Event::Warning { text: &text });
        }
    }
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

/// Steps 1-4, then four fault steps per fault target.
pub fn step_count(scenario: &Scenario) -> usize {
    let extra = usize::from(scenario.latency.enabled)
        + usize::from(scenario.shutdown.enabled)
        + usize::from(scenario.metrics.is_some());
    let faults = if scenario.faults.enabled {
        4 * scenario.faults.targets.len()
    } else {
        1
    };
    BASE_STEPS + extra + faults
}

/// [`step_count`], less the fault steps target mode folds into one NOT RUN.
fn planned_steps(scenario: &Scenario, target: bool) -> usize {
    let count = step_count(scenario);
    if target && scenario.faults.enabled {
        count + 1 - 4 * scenario.faults.targets.len()
    } else {
        count
    }
}

type StepsRun = (Vec<StepOutcome>, Option<String>, Vec<FaultTimeline>);

async fn run_steps(ctx: &mut StepContext<'_>, proxies: &Proxies) -> Result<StepsRun> {
    let total = planned_steps(ctx.scenario, ctx.mode.provider().is_none());
    let mut outcomes = Vec::new();
    let mut version = None;
    for number in 1..=BASE_STEPS as u32 {
        let (id, title, needs) = match number {
            1 => (steps::migrate::ID, steps::migrate::TITLE, Needs::Database),
            2 => (steps::ready::ID, steps::ready::TITLE, Needs::Requests),
            3 => (steps::negative::ID, steps::negative::TITLE, Needs::Restart),
            _ => (steps::failfast::ID, steps::failfast::TITLE, Needs::Restart),
        };
        ctx.reporter.event(Event::StepStarted {
            number,
            total,
            title,
        });
        let outcome = match steps::ruled_out(ctx, number, id, title, needs) {
            Some(not_run) => not_run,
            None => match number {
                1 => steps::migrate(ctx, number).await,
                2 => {
                    let gate = steps::ready_gate(ctx, number).await?;
                    version = gate.version;
                    gate.outcome
                }
                3 => steps::negative(ctx, number).await?,
                _ => steps::failfast(ctx, number).await?,
            },
        };
        ctx.reporter.event(Event::StepFinished {
            number,
            total,
            title,
            status: outcome.status,
            took: Duration::from_millis(outcome.duration_ms),
            summary: outcome.summary.as_str(),
        });
        outcomes.push(outcome);
    }
    let mut timelines = Vec::new();
    let mut number = BASE_STEPS as u32 + 1;
    if ctx.scenario.latency.enabled {
        let title = steps::latency::title(ctx.scenario.latency.p95_ms);
        ctx.reporter.event(Event::StepStarted {
            number,
            total,
            title: &title,
        });
        let outcome =
            match steps::ruled_out(ctx, number, steps::latency::ID, &title, Needs::Requests) {
                Some(not_run) => not_run,
                None => steps::latency::latency(ctx, number).await?,
            };
        steps::faults::report(ctx, std::slice::from_ref(&outcome), total);
        outcomes.push(outcome);
        number += 1;
    }
    if ctx.scenario.shutdown.enabled {
        ctx.reporter.event(Event::StepStarted {
            number,
            total,
            title: steps::shutdown::TITLE,
        });
        let outcome = match steps::ruled_out(
            ctx,
            number,
            steps::shutdown::ID,
            steps::shutdown::TITLE,
            Needs::Restart,
        ) {
            Some(not_run) => not_run,
            None => steps::shutdown::shutdown(ctx, number).await?,
        };
        steps::faults::report(ctx, std::slice::from_ref(&outcome), total);
        outcomes.push(outcome);
        number += 1;
    }
    if let Some(metrics) = ctx.scenario.metrics.clone() {
        ctx.reporter.event(Event::StepStarted {
            number,
            total,
            title: steps::metrics::TITLE,
        });
        let ruled_out = steps::ruled_out(
            ctx,
            number,
            steps::metrics::ID,
            steps::metrics::TITLE,
            Needs::Faults,
        );
        let outcome = match ruled_out {
            Some(not_run) => not_run,
            None => {
                let target = proxies.target(ctx.scenario, &metrics.fault);
                let (outcome, timeline) = steps::metrics::metrics(ctx, number, &target).await?;
                timelines.push(timeline);
                outcome
            }
        };
        steps::faults::report(ctx, std::slice::from_ref(&outcome), total);
        outcomes.push(outcome);
        number += 1;
    }
    let folded = ctx.scenario.faults.enabled.then(|| {
        steps::ruled_out(
            ctx,
            number,
            "runtime-faults",
            "Runtime dependency faults",
            Needs::Faults,
        )
    });
    if let Some(Some(not_run)) = folded {
        steps::faults::report(ctx, std::slice::from_ref(&not_run), total);
        outcomes.push(not_run);
        return Ok((outcomes, version, timelines));
    }
    if !ctx.scenario.faults.enabled {
        let mut step = steps::StepRecorder::new(
            ctx.masker,
            number,
            "runtime-faults",
            "Runtime dependency faults",
        );
        step.not_run("runtime fault steps are disabled in the scenario ([faults] enabled = false)");
        outcomes.push(step.finish());
        return Ok((outcomes, version, timelines));
    }
    for key in ctx.scenario.faults.targets.clone() {
        let target = proxies.target(ctx.scenario, &key);
        ctx.reporter.event(Event::StepStarted {
            number,
            total,
            title: &format!(
                "{} runtime faults (steps {number}-{})",
                target.display,
                number + 3
            ),
        });
        let (group, timeline) = steps::faults::fault_steps(ctx, number, &target).await?;
        steps::faults::report(ctx, &group, total);
        outcomes.extend(group);
        timelines.push(timeline);
        number += 4;
    }
    Ok((outcomes, version, timelines))
}

/// One fault proxy per dependency: the service only ever sees these.
pub struct Proxies {
    proxies: Vec<(String, FaultProxy)>,
}

impl Proxies {
    /// One proxy per provisioned server and `[[dependency]]`; none in
    /// target mode, where gonogo is not between the service and anything.
    async fn start(provisioned: Option<&Provisioned>, scenario: &Scenario) -> Result<Proxies> {
        let mut proxies = Vec::new();
        let Some(provisioned) = provisioned else {
            return Ok(Proxies { proxies });
        };
        let pg = &provisioned.postgres;
        let redis = &provisioned.redis;
        for (name, host, port) in [
            ("postgres", &pg.host, pg.port),
            ("redis", &redis.host, redis.port),
        ] {
            let addr = resolve(name, host, port).await?;
            proxies.push((
                name.to_string(),
                FaultProxy::start(name, addr)
                    .await
                    .with_context(|| format!("start the {name} fault proxy"))?,
            ));
        }
        for dep in &scenario.dependencies {
            let addr = resolve(&dep.name, &dep.host, dep.port).await?;
            proxies.push((
                dep.name.clone(),
                FaultProxy::start(&dep.name, addr)
                    .await
                    .with_context(|| format!("start the {} fault proxy", dep.name))?,
            ));
        }
        Ok(Proxies { proxies })
    }

    fn get(&self, key: &str) -> &FaultProxy {
        &self
            .proxies
            .iter()
            .find(|(k, _)| k == key)
            .expect("fault targets are validated against the declared dependencies")
            .1
    }

    fn target(&self, scenario: &Scenario, key: &str) -> FaultTarget<'_> {
        let (display, names) = match key {
            "postgres" => (
                "Postgres".to_string(),
                scenario.faults.postgres_names.clone(),
            ),
            "redis" => ("Redis".to_string(), scenario.faults.redis_names.clone()),
            other => {
                let dep = scenario.dependencies.iter().find(|d| d.name == other);
                (
                    other.to_string(),
                    dep.map(|d| d.names.clone()).unwrap_or_default(),
                )
            }
        };
        FaultTarget {
            key: key.to_string(),
            display,
            names,
            proxy: self.get(key),
        }
    }

    fn port(&self, key: &str) -> u16 {
        self.get(key).local_addr().port()
    }

    async fn shutdown(self) {
        for (_, proxy) in self.proxies {
            proxy.shutdown().await;
        }
    }
}

/// The first address of `host:port`, for a proxy's upstream.
async fn resolve(name: &str, host: &str, port: u16) -> Result<SocketAddr> {
    // A resolver that never answers must not hang the run.
    let lookup = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host((host, port)),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!("resolve dependency {name} at {host}:{port}: no answer within 5 s")
    })?;
    Ok(lookup
        .with_context(|| format!("resolve dependency {name} at {host}:{port}"))?
        .next()
        .with_context(|| format!("resolve dependency {name}: no address"))?)
}

/// The passwords of the servers gonogo provisioned (or was given), named.
fn learn_provisioned(masker: &mut Masker, provisioned: &Provisioned) {
    let (pg, redis) = (&provisioned.postgres, &provisioned.redis);
    for (label, secret) in [
        ("Postgres password", &pg.password),
        ("Postgres password", &pg.password_in_url),
        ("Redis password", &redis.password),
        ("Redis password", &redis.password_in_url),
    ] {
        masker.add_named_secret(label, secret.expose());
    }
}

/// What the evidence says about each provisioned server (URLs masked).
fn dependency_infos(provisioned: &Provisioned, masker: &Masker) -> Vec<DependencyInfo> {
    let pg = &provisioned.postgres;
    let redis = &provisioned.redis;
    let provider = provisioned.kind.as_str();
    vec![
        DependencyInfo {
            name: "postgres".into(),
            provider: provider.into(),
            version: pg.version.clone(),
            endpoint: masker.mask(&pg.url_via(&pg.host, pg.port)),
            ready_ms: pg.ready.as_millis() as u64,
            provisioned_from: pg.provisioned_from.clone(),
        },
        DependencyInfo {
            name: "redis".into(),
            provider: provider.into(),
            version: redis.version.clone(),
            endpoint: masker.mask(&redis.url_via(&redis.host, redis.port)),
            ready_ms: redis.ready.as_millis() as u64,
            provisioned_from: None,
        },
    ]
}

/// Placeholder values for the healthy servers, reached through their
/// fault proxies (none in target mode: the placeholders render empty).
fn bindings(provisioned: Option<&Provisioned>, proxies: &Proxies) -> Bindings {
    let mut b = Bindings::new();
    b.insert("host".into(), "127.0.0.1".into());
    let Some(provisioned) = provisioned else {
        return b;
    };
    let pg = &provisioned.postgres;
    let redis = &provisioned.redis;
    let pg_port = proxies.port("postgres");
    let redis_port = proxies.port("redis");
    b.insert("database_url".into(), pg.url_via("127.0.0.1", pg_port));
    b.insert("database_host".into(), "127.0.0.1".into());
    b.insert("database_port".into(), pg_port.to_string());
    b.insert("database_user".into(), pg.user.clone());
    b.insert("database_password".into(), pg.password.expose().to_string());
    b.insert("database_name".into(), pg.database.clone());
    b.insert("redis_url".into(), redis.url_via("127.0.0.1", redis_port));
    b.insert("redis_host".into(), "127.0.0.1".into());
    b.insert("redis_port".into(), redis_port.to_string());
    b.insert("redis_password".into(), redis.password.expose().to_string());
    for (name, proxy) in &proxies.proxies {
        if name == "postgres" || name == "redis" {
            continue;
        }
        let port = proxy.local_addr().port();
        b.insert(format!("{name}_host"), "127.0.0.1".into());
        b.insert(format!("{name}_port"), port.to_string());
        b.insert(format!("{name}_addr"), format!("127.0.0.1:{port}"));
    }
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
