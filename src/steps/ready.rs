//! Step 2, ready gate: the service starts with the real URLs and ready
//! answers 200 with the database and Redis shown as connected. The version
//! endpoint is captured for the report's metadata.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{Mode, StepContext, StepOutcome, StepRecorder, pointer_text};
use crate::http::HttpExchange;
use crate::scenario::BodyExpectation;
use crate::service::{RunningService, ServiceLaunch, Startup};

pub const ID: &str = "ready-gate";
pub const TITLE: &str = "Runtime ready gate (DB + Redis)";

/// Step 2's outcome plus the version body for the metadata.
pub struct ReadyGate {
    pub outcome: StepOutcome,
    /// The version endpoint's body (unmasked: the runner masks it, then
    /// keeps its first 200 bytes for the metadata).
    pub version: Option<String>,
}

pub async fn ready_gate(ctx: &mut StepContext<'_>, number: u32) -> anyhow::Result<ReadyGate> {
    let mut step = StepRecorder::new(ctx.masker, number, ID, TITLE);
    if let Mode::Target { base_url } = &ctx.mode {
        let base = base_url.clone();
        ctx.detail(&format!("ask the running service at {base}"));
        let version = ask_ready_and_version(ctx, &mut step, &base).await;
        return Ok(ReadyGate {
            outcome: step.finish(),
            version,
        });
    }
    let spec = &ctx.scenario.service;
    let bindings = ctx.bindings_with_port(&ctx.bindings)?;
    let launch = ServiceLaunch::build(spec, &bindings, &ctx.extra_env, &[], &BTreeMap::new())?;
    let mut version = None;
    ctx.detail(&format!("start service on port {}", launch.port));
    let mut service = RunningService::spawn(&launch)?;
    let startup = service
        .wait_answering(&ctx.probe, &spec.live_path, spec.startup_timeout)
        .await;
    step.process(
        "start service",
        &launch.display(),
        None,
        &startup_text(&startup),
        startup.took(),
    );
    let up = matches!(startup, Startup::Answering(_));
    step.check(
        format!(
            "service answers HTTP within {} s",
            spec.startup_timeout.as_secs_f64()
        ),
        startup_text(&startup),
        up,
    );
    if up {
        version = ask_ready_and_version(ctx, &mut step, &service.url("")).await;
    }
    step.log(&service.log_text().await);
    let _ = service.stop().await;
    Ok(ReadyGate {
        outcome: step.finish(),
        version,
    })
}

/// Ready (until healthy or the settle window ends), then the version
/// endpoint, of the instance at `base`; gives the version body.
async fn ask_ready_and_version(
    ctx: &StepContext<'_>,
    step: &mut StepRecorder<'_>,
    base: &str,
) -> Option<String> {
    let spec = &ctx.scenario.service;
    let exchange = poll_ready(ctx, base, &ctx.scenario.ready.expect).await;
    step.request(&format!("GET {}", spec.ready_path), &exchange);
    expect_response(
        step,
        &exchange,
        ctx.scenario.ready.status,
        &ctx.scenario.ready.expect,
    );
    let path = spec.version_path.as_ref()?;
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
        return None;
    }
    // Cut to 200 bytes by the runner, after masking: a cut before masking
    // could leave part of a secret behind.
    Some(exchange.body.trim().to_string())
}

/// Ask ready until it matches the expectations or the settle window ends;
/// gives the last exchange. Services may need a moment to open pools.
async fn poll_ready(ctx: &StepContext<'_>, base: &str, expect: &[BodyExpectation]) -> HttpExchange {
    let spec = &ctx.scenario.service;
    let started = Instant::now();
    loop {
        let exchange = ctx
            .probe
            .get(&format!("{base}{}", spec.ready_path), spec.request_timeout)
            .await;
        let json = exchange.json();
        let healthy = exchange.status == Some(ctx.scenario.ready.status)
            && expect
                .iter()
                .all(|e| json.as_ref().and_then(|j| j.pointer(&e.pointer)) == Some(&e.equals));
        if healthy || started.elapsed() >= ctx.scenario.ready.settle {
            return exchange;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Record status and body expectations for one response.
pub fn expect_response(
    step: &mut StepRecorder<'_>,
    exchange: &HttpExchange,
    status: u16,
    expect: &[BodyExpectation],
) {
    step.check(
        format!("HTTP {status}"),
        exchange.summary(),
        exchange.status == Some(status),
    );
    let json = exchange.json();
    for e in expect {
        let (value, shown) = pointer_text(&json, &e.pointer);
        step.check(
            format!("{} = {}", e.pointer, e.equals),
            shown,
            value.as_ref() == Some(&e.equals),
        );
    }
}

pub fn startup_text(startup: &Startup) -> String {
    match startup {
        Startup::Answering(d) => format!("answered HTTP after {} ms", d.as_millis()),
        Startup::Exited { code, after } => format!(
            "exited with {} after {} ms, before answering HTTP",
            code.map_or("a signal".into(), |c| format!("code {c}")),
            after.as_millis()
        ),
        Startup::TimedOut(d) => format!("did not answer HTTP within {} ms", d.as_millis()),
        Startup::Foreign { owner, .. } => owner.to_string(),
    }
}
