//! Metrics: the readiness success gauge (seed 000:
//! `aether_readyz_success{service=...}`) is 1 while healthy, 0 during a
//! dependency outage, and 1 again after recovery, so the alert path is
//! proven before production. The values go into a fault timeline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};

use super::faults::FaultTarget;
use super::ready::startup_text;
use super::{StepContext, StepOutcome, StepRecorder};
use crate::evidence::{FaultTimeline, TimelineEvent};
use crate::prometheus;
use crate::proxy::Fault;
use crate::scenario::MetricsSpec;
use crate::service::{RunningService, ServiceLaunch, Startup};

pub const ID: &str = "metrics-gauge";
pub const TITLE: &str = "Readiness gauge follows ready (metrics)";

const POLL: Duration = Duration::from_millis(100);

pub async fn metrics(
    ctx: &mut StepContext<'_>,
    number: u32,
    target: &FaultTarget<'_>,
) -> anyhow::Result<(StepOutcome, FaultTimeline)> {
    let spec = ctx
        .scenario
        .metrics
        .clone()
        .expect("the metrics step runs only when the scenario configures it");
    let mut step = StepRecorder::new(ctx.masker, number, ID, TITLE);
    let series = prometheus::series(&spec.gauge, &spec.labels);
    let mut timeline = FaultTimeline {
        dependency: format!("{} (metrics: {series})", target.display),
        events: Vec::new(),
    };
    // Offsets count from the timeline's first event, as in the fault steps.
    let mut origin: Option<Instant> = None;
    let mut note = |ctx: &StepContext<'_>, event: &str, detail: String| {
        let origin = *origin.get_or_insert_with(Instant::now);
        timeline.events.push(TimelineEvent {
            at_utc: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            offset_ms: origin.elapsed().as_millis() as u64,
            event: event.to_string(),
            detail: ctx.masker.mask(&detail),
        });
    };
    let service_spec = &ctx.scenario.service;
    let bindings = ctx.bindings_with_port(&ctx.bindings)?;
    let launch = ServiceLaunch::build(
        service_spec,
        &bindings,
        &ctx.extra_env,
        &[],
        &BTreeMap::new(),
    )?;
    let mut service = RunningService::spawn(&launch)?;
    let startup = service
        .wait_answering(
            &ctx.probe,
            &service_spec.live_path,
            service_spec.startup_timeout,
        )
        .await;
    if !matches!(startup, Startup::Answering(_)) {
        step.check("service answers HTTP", startup_text(&startup), false);
        step.log(&service.log_text().await);
        let _ = service.stop().await;
        return Ok((step.finish(), timeline));
    }

    let phases = [
        ("healthy", 1.0, None),
        ("during the outage", 0.0, Some(Fault::Down)),
        ("after recovery", 1.0, Some(Fault::None)),
    ];
    for (phase, want, fault) in phases {
        if let Some(fault) = fault {
            target.proxy.apply(fault).await?;
            note(
                ctx,
                if fault == Fault::None {
                    "fault cleared"
                } else {
                    "fault down injected"
                },
                format!("{} proxy: {fault}", target.display),
            );
        }
        let status = if want == 1.0 { 200 } else { 503 };
        let window = if want == 1.0 {
            ctx.scenario
                .faults
                .recovery_window
                .max(ctx.scenario.ready.settle)
        } else {
            ctx.scenario.faults.detection_window
        };
        let reached = until_ready(ctx, &service, status, window).await;
        note(
            ctx,
            &format!("ready {status}"),
            match reached {
                Some(d) => format!("after {} ms", d.as_millis()),
                None => format!("not reached within {} s", window.as_secs_f64()),
            },
        );
        let scrape = service
            .get(&ctx.probe, &spec.path, service_spec.request_timeout)
            .await;
        step.request(&format!("GET {} {phase}", spec.path), &scrape);
        let value = read_gauge(&spec, &scrape.body, scrape.status);
        note(
            ctx,
            &format!("gauge {phase}"),
            match &value {
                Ok(v) => format!("{series} = {v}"),
                Err(e) => e.clone(),
            },
        );
        step.check(
            format!("{series} = {want} {phase} (ready {status})"),
            match (&value, reached) {
                (Ok(v), Some(_)) => format!("{v}"),
                (Ok(v), None) => format!("{v}, but ready never answered {status}"),
                (Err(e), _) => e.clone(),
            },
            matches!(value, Ok(v) if v == want) && reached.is_some(),
        );
    }
    step.log(&service.log_text().await);
    let _ = service.stop().await;
    Ok((step.finish(), timeline))
}

fn read_gauge(spec: &MetricsSpec, body: &str, status: Option<u16>) -> Result<f64, String> {
    if status != Some(200) {
        return Err(format!(
            "metrics endpoint answered {}",
            status.map_or("nothing".into(), |s| format!("HTTP {s}"))
        ));
    }
    let (samples, _) = prometheus::parse(body);
    prometheus::find(&samples, &spec.gauge, &spec.labels)
}

async fn until_ready(
    ctx: &StepContext<'_>,
    service: &RunningService,
    status: u16,
    window: Duration,
) -> Option<Duration> {
    let spec = &ctx.scenario.service;
    let started = Instant::now();
    loop {
        let exchange = service
            .get(&ctx.probe, &spec.ready_path, spec.request_timeout)
            .await;
        if exchange.status == Some(status) {
            return Some(started.elapsed());
        }
        if started.elapsed() >= window {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}
