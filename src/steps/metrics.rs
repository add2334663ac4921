//! Metrics: the readiness success gauge (seed 000:
//! `aether_readyz_success{service=...}`) is 1 while healthy, 0 during a
//! dependency outage, and 1 again after recovery, so the alert path is
//! proven before production. The values go into a fault timeline.

use std::time::Duration;

use super::observed::Observed;
use super::timeline::{TimelineRecorder, Watch};
use super::{
    Exercise, Ran, StepContext, StepFuture, StepRecorder, Unit, own_proxy_holds, start_healthy,
    until_ready_status,
};
use crate::alerts::ScrapedPhases;
use crate::deps::Dependency;
use crate::deps::dependency::display;
use crate::plan::{PlannedStep, Precondition};
use crate::prometheus;
use crate::proxy::Fault;
use crate::scenario::{MetricsSpec, Scenario};

pub const ID: &str = "metrics-gauge";
pub const TITLE: &str = "Readiness gauge follows ready (metrics)";

/// The readiness gauge, when the scenario names one: it breaks one
/// dependency through its proxy, on a service whose ready can be healthy.
pub fn unit(scenario: &Scenario) -> Option<Unit> {
    let spec = scenario.metrics.as_ref()?;
    let series = prometheus::series(&spec.gauge, &spec.labels);
    let dependency = display(&spec.fault);
    let step = PlannedStep::new(
        ID,
        TITLE,
        format!(
            "{series} is 1 while ready is 200, 0 while {dependency} is down, and 1 again once it is back."
        ),
        format!(
            "a service instance's {} endpoint while gonogo's proxy takes {dependency} down and back",
            spec.path
        ),
    );
    let preconditions = vec![
        Precondition::Faultable {
            dependency: dependency.clone(),
        },
        Precondition::ReadyHealthy,
    ];
    let holds = own_proxy_holds(scenario, TITLE, &spec.fault);
    Some(Unit::one(step, preconditions, Vec::new(), Gauge).with_own_proxies(holds))
}

struct Gauge;

impl Exercise for Gauge {
    fn run<'a>(&'a self, ctx: &'a mut StepContext<'_>, steps: &'a [PlannedStep]) -> StepFuture<'a> {
        Box::pin(metrics(ctx, &steps[0]))
    }
}

/// One phase of the check: the fault to switch on first, and the gauge
/// value and ready status expected then.
struct Phase {
    name: &'static str,
    fault: Option<Fault>,
    gauge: f64,
    ready: u16,
}

const PHASES: [Phase; 3] = [
    Phase {
        name: "healthy",
        fault: None,
        gauge: 1.0,
        ready: 200,
    },
    Phase {
        name: "during the outage",
        fault: Some(Fault::Down),
        gauge: 0.0,
        ready: 503,
    },
    Phase {
        name: "after recovery",
        fault: Some(Fault::None),
        gauge: 1.0,
        ready: 200,
    },
];

async fn metrics(ctx: &mut StepContext<'_>, planned: &PlannedStep) -> anyhow::Result<Ran> {
    let Some(spec) = ctx.scenario.metrics.clone() else {
        anyhow::bail!("the metrics step was planned without [metrics]");
    };
    let target = ctx.dependency(&spec.fault);
    let mut step = StepRecorder::new(ctx.masker, planned);
    let series = prometheus::series(&spec.gauge, &spec.labels);
    let mut timeline = TimelineRecorder::new(
        ctx.masker,
        format!("{} (metrics: {series})", target.display),
    );
    let Some(service) = start_healthy(ctx, &mut step, "service answers HTTP").await? else {
        return Ok(Ran::one(step.finish()));
    };
    let mut scrapes = Vec::new();
    let mut watch = Watch {
        step: &mut step,
        timeline: &mut timeline,
        service: &service,
    };
    for phase in &PHASES {
        let (held, samples) = observe(ctx, &mut watch, target, phase).await?;
        scrapes.extend(samples);
        // A gauge at 0 during an outage proves nothing about a service
        // that was not healthy first: then the dependency is left alone.
        if !held && phase.fault.is_none() {
            break;
        }
    }
    step.log(&service.log_text().await);
    let _ = service.stop().await;
    // The three scrapes, with every series as exported, for the alert
    // rules' test; only when each phase was scraped.
    let observed = match <[Vec<prometheus::Sample>; 3]>::try_from(scrapes) {
        Ok([healthy, outage, recovered]) => vec![Observed::Scrapes(ScrapedPhases {
            dependency: target.display.clone(),
            healthy,
            outage,
            recovered,
        })],
        Err(_) => Vec::new(),
    };
    Ok(Ran {
        timeline: Some(timeline.finish()),
        observed,
        ..Ran::one(step.finish())
    })
}

/// Switch the phase's fault, wait for ready to answer as expected, then
/// scrape the gauge; gives whether the phase held, and the scrape's
/// samples when the endpoint answered 200.
async fn observe(
    ctx: &StepContext<'_>,
    w: &mut Watch<'_, '_>,
    target: &Dependency,
    phase: &Phase,
) -> anyhow::Result<(bool, Option<Vec<prometheus::Sample>>)> {
    let Some(spec) = &ctx.scenario.metrics else {
        anyhow::bail!("the metrics step was planned without [metrics]");
    };
    let series = prometheus::series(&spec.gauge, &spec.labels);
    if let Some(fault) = phase.fault {
        target.proxy.apply(fault).await?;
        let event = match fault {
            Fault::None => "fault cleared",
            _ => "fault down injected",
        };
        w.timeline
            .record(event, &format!("{} proxy: {fault}", target.display));
    }
    let window = phase_window(ctx, phase);
    let (reached, last) = until_ready_status(ctx, w.service, phase.ready, window).await;
    w.timeline.record(
        &format!("ready {}", phase.ready),
        &match reached {
            Some(d) => format!("after {} ms", d.as_millis()),
            None => format!(
                "not reached within {} s; ready last answered {}",
                window.as_secs_f64(),
                last.summary()
            ),
        },
    );
    let scrape = w
        .service
        .get(&ctx.probe, &spec.path, ctx.scenario.service.request_timeout)
        .await;
    w.step
        .request(&format!("GET {} {}", spec.path, phase.name), &scrape);
    let value = read_gauge(spec, &scrape.body, scrape.status);
    w.timeline.record(
        &format!("gauge {}", phase.name),
        &match &value {
            Ok(v) => format!("{series} = {v}"),
            Err(e) => e.clone(),
        },
    );
    let held = w.step.check(
        format!(
            "{series} = {} {} (ready {})",
            phase.gauge, phase.name, phase.ready
        ),
        match (&value, reached) {
            (Ok(v), Some(_)) => format!("{v}"),
            (Ok(v), None) => format!("{v}, but ready never answered {}", phase.ready),
            (Err(e), _) => e.clone(),
        },
        matches!(value, Ok(v) if v == phase.gauge) && reached.is_some(),
    );
    let samples = (scrape.status == Some(200)).then(|| prometheus::parse(&scrape.body).0);
    Ok((held, samples))
}

/// How long ready may take to reach the phase's status.
fn phase_window(ctx: &StepContext<'_>, phase: &Phase) -> Duration {
    let faults = &ctx.scenario.faults;
    if phase.ready == 200 {
        faults.recovery_window.max(ctx.scenario.ready.settle)
    } else {
        faults.detection_window
    }
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
