//! The ready gate: the service starts with the real URLs and ready answers
//! 200 with the database and Redis shown as connected. The version endpoint
//! is captured for the report's metadata. What it sees of ready is the fact
//! later steps that need a healthy service read.

use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use super::observed::{Observed, answer, probe_paths};
use super::{
    Exercise, Mode, Ran, Spare, StepContext, StepFuture, StepRecorder, Unit, expect_response,
    instance_holds, launch, meets, pointer_text, startup_text,
};
use crate::http::HttpExchange;
use crate::kube::ColdStart;
use crate::plan::{Hold, PlannedStep, Ready, Resource};
use crate::scenario::{BodyExpectation, Scenario};
use crate::service::{RunningService, Startup};

/// Healthy answers gonogo asks of each probed path, for the probe judges.
const HEALTHY_ASKS: usize = 3;

pub const ID: &str = "ready-gate";
pub const TITLE: &str = "Runtime ready gate (DB + Redis)";

/// The ready gate: it runs in either mode (target mode asks the running
/// service) and needs nothing before it.
pub fn unit(scenario: &Scenario) -> Unit {
    let step = PlannedStep::new(
        ID,
        TITLE,
        format!(
            "Started with real dependencies, the service answers ready {} as [ready] expects within {} s.",
            scenario.ready.status,
            scenario.ready.settle.as_secs_f64()
        ),
        "a service instance on the real Postgres and Redis (or the running service in target mode), its ready and version endpoints",
    );
    let mut holds = instance_holds(scenario);
    holds.push(Hold::uses(Resource::TargetService));
    let mut unit = Unit::one(step, Vec::new(), holds, ReadyGate);
    unit.establishes_ready = true;
    unit
}

struct ReadyGate;

impl Exercise for ReadyGate {
    fn run<'a>(&'a self, ctx: &'a mut StepContext<'_>, steps: &'a [PlannedStep]) -> StepFuture<'a> {
        Box::pin(ready_gate(ctx, &steps[0]))
    }
}

async fn ready_gate(ctx: &mut StepContext<'_>, planned: &PlannedStep) -> anyhow::Result<Ran> {
    let mut step = StepRecorder::new(ctx.masker, planned);
    if let Mode::Target { base_url } = &ctx.mode {
        let base = base_url.clone();
        ctx.detail(&format!("ask the running service at {base}"));
        let (ready, version, answer) = ask_ready_and_version(ctx, &mut step, &base).await;
        let mut ran = ran(step, ready, version);
        if ran.ready == Some(Ready::Healthy) {
            ran.observed.push(healthy_answers(ctx, &base).await);
            ran.observed.push(Observed::HealthyReady(answer));
        }
        return Ok(ran);
    }
    let spec = &ctx.scenario.service;
    let startup_timeout = spec.startup_timeout;
    let bindings = ctx.bindings.clone();
    let (service, startup) = launch(ctx, &mut step, "start service", &bindings).await?;
    let up = step.check(
        format!(
            "service answers HTTP within {} s",
            startup_timeout.as_secs_f64()
        ),
        startup_text(&startup),
        matches!(startup, Startup::Answering(_)),
    );
    let mut observed = Vec::new();
    let (ready, version) = if up {
        if ctx.scenario.kubernetes.is_some() {
            observed.push(Observed::ColdStart(
                cold_start(ctx, &service, startup.took()).await,
            ));
        }
        let (ready, version, answer) =
            ask_ready_and_version(ctx, &mut step, &service.url("")).await;
        if ready == Ready::Healthy {
            observed.push(Observed::HealthyReady(answer));
        }
        (ready, version)
    } else {
        let seen = format!("the service {}", startup_text(&startup));
        let ready = match startup {
            // Someone else's answer on the port: the service may answer too.
            Startup::Foreign { .. } => Ready::Unhealthy(seen),
            _ => Ready::NeverAnswered(seen),
        };
        (ready, None)
    };
    if ready == Ready::Healthy && ctx.scenario.kubernetes.is_some() {
        observed.push(healthy_answers(ctx, &service.url("")).await);
    }
    let (log, log_mark) = service.log_since(0).await;
    step.log(&log);
    if ready == Ready::Healthy {
        // Kept for the latency measurement and the graceful shutdown; the
        // runner stops it once neither is left to take it.
        ctx.link.offer(Spare {
            log_mark,
            service,
            started_by: "ready gate".into(),
            used_by: Vec::new(),
        });
    } else {
        let _ = service.stop().await;
    }
    let mut ran = ran(step, ready, version);
    ran.observed = observed;
    Ok(ran)
}

/// From process start, ask every probed path until each has answered a
/// status from 200 to 399 (as the kubelet counts a success) or the settle
/// window ends; `first_answer` is when the service first answered HTTP.
async fn cold_start(
    ctx: &StepContext<'_>,
    service: &RunningService,
    first_answer: Duration,
) -> ColdStart {
    let spec = &ctx.scenario.service;
    let paths = probe_paths(ctx.scenario);
    let mut first_success: BTreeMap<String, Option<Duration>> =
        paths.iter().map(|p| (p.clone(), None)).collect();
    let origin = service.started();
    let deadline = Instant::now() + ctx.scenario.ready.settle;
    while Instant::now() < deadline && first_success.values().any(Option::is_none) {
        for path in &paths {
            if first_success[path].is_some() {
                continue;
            }
            let exchange = service.get(&ctx.probe, path, spec.request_timeout).await;
            if exchange.status.is_some_and(|s| (200..400).contains(&s)) {
                first_success.insert(path.clone(), Some(origin.elapsed()));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ColdStart {
        first_success,
        first_answer: Some(first_answer),
        watched: origin.elapsed(),
    }
}

/// A few answers of every probed path of the healthy instance at `base`.
async fn healthy_answers(ctx: &StepContext<'_>, base: &str) -> Observed {
    let timeout = ctx.scenario.service.request_timeout;
    let mut answers: BTreeMap<String, Vec<crate::kube::Answer>> = BTreeMap::new();
    for path in probe_paths(ctx.scenario) {
        for _ in 0..HEALTHY_ASKS {
            let sent = Instant::now();
            let exchange = ctx.probe.get(&format!("{base}{path}"), timeout).await;
            answers
                .entry(path.clone())
                .or_default()
                .push(answer(&exchange, sent, sent));
        }
    }
    Observed::Healthy(answers)
}

fn ran(step: StepRecorder<'_>, ready: Ready, version: Option<String>) -> Ran {
    Ran {
        ready: Some(ready),
        version,
        ..Ran::one(step.finish())
    }
}

/// Ready (until healthy or the settle window ends), then the version
/// endpoint, of the instance at `base`; gives what ready showed, the
/// version body and ready's last answer.
async fn ask_ready_and_version(
    ctx: &StepContext<'_>,
    step: &mut StepRecorder<'_>,
    base: &str,
) -> (Ready, Option<String>, HttpExchange) {
    let spec = &ctx.scenario.service;
    let expected = &ctx.scenario.ready;
    let exchange = poll_ready(ctx, base).await;
    step.request(&format!("GET {}", spec.ready_path), &exchange);
    expect_response(step, &exchange, expected.status, &expected.expect);
    let ready = if meets(&exchange, expected.status, &expected.expect) {
        Ready::Healthy
    } else {
        Ready::Unhealthy(unhealthy(&exchange, expected.status, &expected.expect))
    };
    let Some(path) = &spec.version_path else {
        return (ready, None, exchange);
    };
    let answer = exchange;
    let exchange = ctx
        .probe
        .get(&format!("{base}{path}"), spec.request_timeout)
        .await;
    step.request(&format!("GET {path}"), &exchange);
    step.check(
        format!("{path} answers 200"),
        exchange.summary(),
        exchange.status == Some(200),
    );
    if exchange.status != Some(200) {
        return (ready, None, answer);
    }
    // Cut to 200 bytes by the runner, after masking: a cut before masking
    // could leave part of a secret behind.
    (ready, Some(exchange.body.trim().to_string()), answer)
}

/// Why `exchange` is not healthy, in a few words: its status, or the
/// first expectation it misses.
fn unhealthy(exchange: &HttpExchange, status: u16, expect: &[BodyExpectation]) -> String {
    if exchange.status != Some(status) {
        return format!("ready answered {}", exchange.summary());
    }
    let missed = expect.iter().find_map(|e| {
        let (value, shown) = pointer_text(exchange, &e.pointer);
        (value.as_ref() != Some(&e.equals)).then_some(format!("{shown}, not {}", e.equals))
    });
    format!(
        "ready answered {}, but {}",
        exchange.summary(),
        missed.unwrap_or_default()
    )
}

/// Ask ready until it matches the expectations or the settle window ends;
/// gives the last exchange. Services may need a moment to open pools.
async fn poll_ready(ctx: &StepContext<'_>, base: &str) -> HttpExchange {
    let spec = &ctx.scenario.service;
    let expected = &ctx.scenario.ready;
    let started = Instant::now();
    loop {
        let exchange = ctx
            .probe
            .get(&format!("{base}{}", spec.ready_path), spec.request_timeout)
            .await;
        if meets(&exchange, expected.status, &expected.expect)
            || started.elapsed() >= expected.settle
        {
            return exchange;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
