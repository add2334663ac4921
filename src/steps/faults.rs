//! Runtime fault steps: with the service running and its pooled
//! connections open, gonogo's fault proxy breaks one dependency and the
//! readiness contract (seed 000) must hold:
//!
//! - **runtime outage**: the dependency goes `down`; ready answers 503,
//!   naming it, within the detection window;
//! - **liveness isolation**: live keeps answering 200 throughout;
//! - **timeout discipline**: the dependency is blackholed; ready still
//!   answers, 503, within the probe deadline (≤ 5 s);
//! - **recovery**: each fault is cleared; ready returns to 200 within the
//!   recovery window.
//!
//! One service instance lives through the whole sequence, so a ready that
//! caches its first answer cannot hide behind a restart. Gives four
//! [`StepOutcome`]s and a [`FaultTimeline`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};

use super::ready::startup_text;
use super::{StepContext, StepRecorder, until_ready_status};
use crate::deps::Dependency;
use crate::http::HttpExchange;
use crate::outcome::StepOutcome;
use crate::outcome::{FaultTimeline, TimelineEvent};
use crate::progress::Event;
use crate::proxy::Fault;
use crate::service::{RunningService, ServiceLaunch, Startup};

/// How often ready and live are asked while waiting for a change.
const POLL: Duration = Duration::from_millis(100);

/// The four step ids for one dependency, e.g. `redis-runtime-outage`.
pub fn step_ids(key: &str) -> [String; 4] {
    [
        format!("{key}-runtime-outage"),
        format!("{key}-liveness-isolation"),
        format!("{key}-timeout-discipline"),
        format!("{key}-recovery"),
    ]
}

/// Timeline under construction, anchored at its first event.
struct Timeline {
    dependency: String,
    started: Option<Instant>,
    events: Vec<TimelineEvent>,
}

impl Timeline {
    fn record(&mut self, ctx: &StepContext<'_>, event: &str, detail: String) {
        let now = Instant::now();
        let started = *self.started.get_or_insert(now);
        self.events.push(TimelineEvent {
            at_utc: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            offset_ms: now.duration_since(started).as_millis() as u64,
            event: event.to_string(),
            detail: ctx.masker.mask(&detail),
        });
    }
}

struct Steps<'m> {
    outage: StepRecorder<'m>,
    liveness: StepRecorder<'m>,
    timeout: StepRecorder<'m>,
    recovery: StepRecorder<'m>,
}

/// Titles of the four steps for `display`.
pub fn titles(display: &str) -> [String; 4] {
    [
        format!("{display} runtime outage (ready 503 within the window)"),
        format!("{display} outage: liveness isolation (live stays 200)"),
        format!("{display} blackholed: timeout discipline (ready answers within the deadline)"),
        format!("{display} recovery (ready back to 200)"),
    ]
}

/// Run the sequence for one dependency. `first` is the first step number.
pub async fn fault_steps(
    ctx: &mut StepContext<'_>,
    first: u32,
    target: &Dependency,
) -> anyhow::Result<(Vec<StepOutcome>, FaultTimeline)> {
    let faults = ctx.scenario.faults.clone();
    let ids = step_ids(&target.key);
    let titles = titles(&target.display);
    let [id0, id1, id2, id3] = ids;
    let [t0, t1, t2, t3] = titles;
    let mut steps = Steps {
        outage: StepRecorder::new(ctx.masker, first, id0, t0),
        liveness: StepRecorder::new(ctx.masker, first + 1, id1, t1),
        timeout: StepRecorder::new(ctx.masker, first + 2, id2, t2),
        recovery: StepRecorder::new(ctx.masker, first + 3, id3, t3),
    };
    let mut timeline = Timeline {
        dependency: target.display.clone(),
        started: None,
        events: Vec::new(),
    };
    let spec = &ctx.scenario.service;
    let bindings = ctx.bindings_with_port(&ctx.bindings)?;
    let launch = ServiceLaunch::build(spec, &bindings, &ctx.extra_env, &[], &BTreeMap::new())?;
    ctx.detail(&format!(
        "start service on port {} (dependencies through the fault proxy)",
        launch.port
    ));
    let mut service = RunningService::spawn(&launch)?;
    let startup = service
        .wait_answering(&ctx.probe, &spec.live_path, spec.startup_timeout)
        .await;
    steps.outage.process(
        "start service",
        &launch.display(),
        None,
        &startup_text(&startup),
        Duration::ZERO,
    );
    if !matches!(startup, Startup::Answering(_)) {
        let why = format!("the service did not come up: {}", startup_text(&startup));
        for step in [
            &mut steps.outage,
            &mut steps.liveness,
            &mut steps.timeout,
            &mut steps.recovery,
        ] {
            step.check("service answers HTTP before the fault", why.clone(), false);
        }
        return finish(service, steps, timeline).await;
    }

    // Healthy first: a fault proves nothing about a service that was
    // already failing.
    let (healthy, exchange) =
        until_ready_status(ctx, &service, 200, ctx.scenario.ready.settle).await;
    steps.outage.request(
        &format!("GET {} before the fault", spec.ready_path),
        &exchange,
    );
    let was_healthy = steps.outage.check(
        "ready answers 200 before the fault",
        exchange.summary(),
        healthy.is_some(),
    );
    if !was_healthy {
        for step in [&mut steps.liveness, &mut steps.timeout, &mut steps.recovery] {
            step.check(
                "ready answers 200 before the fault",
                exchange.summary(),
                false,
            );
        }
        return finish(service, steps, timeline).await;
    }

    // Outage: down, with pooled connections cut.
    ctx.detail(&format!("{}: fault down", target.display));
    steps.outage.start_clock();
    steps.liveness.start_clock();
    target.proxy.apply(Fault::Down).await?;
    timeline.record(
        ctx,
        "fault down injected",
        format!("{} proxy refuses and cuts connections", target.display),
    );
    let injected = Instant::now();
    let mut first_503: Option<(Duration, HttpExchange)> = None;
    let mut last_ready: Option<HttpExchange> = None;
    let mut live_total = 0;
    let mut live_bad: Vec<String> = Vec::new();
    let mut live_sample: Option<HttpExchange> = None;
    loop {
        let elapsed = injected.elapsed();
        let done_detecting = first_503.is_some() || elapsed >= faults.detection_window;
        let done_watching = first_503
            .as_ref()
            .is_some_and(|(at, _)| elapsed >= *at + faults.live_watch)
            || elapsed >= faults.detection_window;
        if done_detecting && done_watching {
            break;
        }
        let (ready, live) = tokio::join!(
            async {
                if first_503.is_none() {
                    Some(
                        service
                            .get(&ctx.probe, &spec.ready_path, spec.request_timeout)
                            .await,
                    )
                } else {
                    None
                }
            },
            service.get(&ctx.probe, &spec.live_path, spec.request_timeout),
        );
        live_total += 1;
        if live.status != Some(200) {
            live_bad.push(format!(
                "t+{} ms: {}",
                injected.elapsed().as_millis(),
                live.summary()
            ));
            if live_sample.as_ref().is_none_or(|s| s.status == Some(200)) {
                live_sample = Some(live);
            }
        } else if live_sample.is_none() {
            live_sample = Some(live);
        }
        if let Some(ready) = ready {
            if ready.status == Some(503) && first_503.is_none() {
                timeline.record(ctx, "first 503", ready.summary());
                first_503 = Some((injected.elapsed(), ready));
            } else {
                last_ready = Some(ready);
            }
        }
        tokio::time::sleep(POLL).await;
    }
    let window = faults.detection_window.as_secs_f64();
    match &first_503 {
        Some((at, exchange)) => {
            steps.outage.request(
                &format!("GET {} during the outage", spec.ready_path),
                exchange,
            );
            steps.outage.check(
                format!("ready answers 503 within {window} s of the outage"),
                format!("first 503 after {} ms", at.as_millis()),
                true,
            );
            names_check(&mut steps.outage, exchange, target);
        }
        None => {
            if let Some(last) = &last_ready {
                steps.outage.request(
                    &format!("GET {} during the outage (last answer)", spec.ready_path),
                    last,
                );
            }
            steps.outage.check(
                format!("ready answers 503 within {window} s of the outage"),
                format!(
                    "no 503 within {window} s; last answer: {}",
                    last_ready
                        .as_ref()
                        .map_or("none".into(), HttpExchange::summary)
                ),
                false,
            );
        }
    }
    if let Some(sample) = &live_sample {
        steps
            .liveness
            .request(&format!("GET {} during the outage", spec.live_path), sample);
    }
    steps.liveness.check(
        format!("live answers 200 throughout the {} outage", target.display),
        if live_bad.is_empty() {
            format!("{live_total} of {live_total} probes answered 200")
        } else {
            format!(
                "{} of {live_total} probes did not answer 200: {}",
                live_bad.len(),
                live_bad.join("; ")
            )
        },
        live_bad.is_empty() && live_total > 0,
    );

    steps.outage.stop_clock();
    // Recovery from the outage.
    steps.recovery.start_clock();
    clear_and_recover(
        ctx,
        &service,
        target,
        &mut steps.recovery,
        &mut timeline,
        "outage",
    )
    .await?;

    // Timeout discipline: blackhole, then one ready request bounded by the
    // probe deadline (gonogo's own client gives up there too).
    ctx.detail(&format!("{}: fault blackhole", target.display));
    steps.timeout.start_clock();
    target.proxy.apply(Fault::Blackhole).await?;
    timeline.record(
        ctx,
        "fault blackhole injected",
        format!("{} proxy holds connections, passes nothing", target.display),
    );
    let deadline = faults.probe_deadline;
    let (ready, live) = tokio::join!(service.get(&ctx.probe, &spec.ready_path, deadline), async {
        // Ask live while ready is stuck on the dependency.
        tokio::time::sleep(Duration::from_millis(200)).await;
        service
            .get(&ctx.probe, &spec.live_path, spec.request_timeout)
            .await
    });
    if ready.status == Some(503) {
        timeline.record(ctx, "first 503", ready.summary());
    } else {
        timeline.record(ctx, "ready answer", ready.summary());
    }
    steps.timeout.request(
        &format!("GET {} with {} blackholed", spec.ready_path, target.display),
        &ready,
    );
    steps.timeout.check(
        format!(
            "ready answers within the {} s probe deadline",
            deadline.as_secs_f64()
        ),
        if ready.timed_out {
            format!(
                "no answer within {} ms: ready hangs on a blackholed {}",
                deadline.as_millis(),
                target.display
            )
        } else {
            ready.summary()
        },
        ready.status.is_some() && !ready.timed_out,
    );
    steps.timeout.check(
        "the answer is HTTP 503",
        ready.summary(),
        ready.status == Some(503),
    );
    if ready.status == Some(503) {
        names_check(&mut steps.timeout, &ready, target);
    }
    steps.liveness.request(
        &format!("GET {} with {} blackholed", spec.live_path, target.display),
        &live,
    );
    steps.liveness.check(
        format!("live answers 200 while {} is blackholed", target.display),
        live.summary(),
        live.status == Some(200),
    );

    steps.timeout.stop_clock();
    steps.liveness.stop_clock();
    clear_and_recover(
        ctx,
        &service,
        target,
        &mut steps.recovery,
        &mut timeline,
        "blackhole",
    )
    .await?;
    finish(service, steps, timeline).await
}

/// Clear the fault and wait for ready to return to 200.
async fn clear_and_recover(
    ctx: &mut StepContext<'_>,
    service: &RunningService,
    target: &Dependency,
    step: &mut StepRecorder<'_>,
    timeline: &mut Timeline,
    after: &str,
) -> anyhow::Result<()> {
    target.proxy.apply(Fault::None).await?;
    timeline.record(
        ctx,
        "fault cleared",
        format!("{} proxy forwards again", target.display),
    );
    ctx.detail(&format!("{}: fault cleared after {after}", target.display));
    let window = ctx.scenario.faults.recovery_window;
    let started = Instant::now();
    let (ok, exchange) = until_ready_status(ctx, service, 200, window).await;
    if ok.is_some() {
        timeline.record(ctx, "first 200 again", exchange.summary());
    }
    step.request(
        &format!(
            "GET {} after the {after} cleared",
            ctx.scenario.service.ready_path
        ),
        &exchange,
    );
    step.check(
        format!(
            "ready returns to 200 within {} s after the {after} clears",
            window.as_secs_f64()
        ),
        match ok {
            Some(_) => format!("200 again after {} ms", started.elapsed().as_millis()),
            None => format!(
                "still not 200 after {} ms; last answer: {}",
                started.elapsed().as_millis(),
                exchange.summary()
            ),
        },
        ok.is_some(),
    );
    Ok(())
}

fn names_check(step: &mut StepRecorder<'_>, exchange: &HttpExchange, target: &Dependency) {
    let body = exchange.body.to_lowercase();
    let named = target
        .names
        .iter()
        .find(|n| body.contains(&n.to_lowercase()));
    step.check(
        format!("503 body names {}", target.names.join(" or ")),
        match named {
            Some(n) => format!("body mentions {n}"),
            None => "body names none of them".to_string(),
        },
        named.is_some(),
    );
}

async fn finish(
    service: RunningService,
    mut steps: Steps<'_>,
    timeline: Timeline,
) -> anyhow::Result<(Vec<StepOutcome>, FaultTimeline)> {
    steps.recovery.log(&service.log_text().await);
    let _ = service.stop().await;
    let outcomes = vec![
        steps.outage.finish(),
        steps.liveness.finish(),
        steps.timeout.finish(),
        steps.recovery.finish(),
    ];
    Ok((
        outcomes,
        FaultTimeline {
            dependency: timeline.dependency,
            events: timeline.events,
        },
    ))
}

/// Report the finished outcomes of a group.
pub fn report(ctx: &mut StepContext<'_>, outcomes: &[StepOutcome], total: usize) {
    for o in outcomes {
        ctx.reporter.event(Event::StepFinished {
            number: o.number,
            total,
            title: &o.title,
            status: o.status,
            took: Duration::from_millis(o.duration_ms),
            summary: o.summary.as_str(),
        });
    }
}
