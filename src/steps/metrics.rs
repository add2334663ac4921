//! Metrics: the readiness success gauge (seed 000:
//! `aether_readyz_success{service=...}`) is 1 while healthy, 0 during a
//! dependency outage, and 1 again after recovery, so the alert path is
//! proven before production. The values go into a fault timeline.

use std::time::Instant;

use chrono::{SecondsFormat, Utc};

use super::{StepContext, StepRecorder, start_healthy, until_ready_status};
use crate::deps::Dependency;
use crate::outcome::StepOutcome;
use crate::outcome::{FaultTimeline, TimelineEvent};
use crate::prometheus;
use crate::proxy::Fault;
use crate::scenario::MetricsSpec;

pub const ID: &str = "metrics-gauge";
pub const TITLE: &str = "Readiness gauge follows ready (metrics)";

pub async fn metrics(
    ctx: &mut StepContext<'_>,
    number: u32,
    target: &Dependency,
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
    let Some(service) = start_healthy(ctx, &mut step, "service answers HTTP").await? else {
        return Ok((step.finish(), timeline));
    };
    let service_spec = &ctx.scenario.service;

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
        let (reached, _) = until_ready_status(ctx, &service, status, window).await;
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
