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
//! caches its first answer cannot hide behind a restart; the four steps are
//! one unit of the plan. Inside it the plan's rule holds too: when the
//! instance never answered ready 200 before the fault, the outage step
//! carries the FAIL and the other three are NOT RUN; when ready did not
//! come back after the outage, the blackhole is not tried and timeout
//! discipline is NOT RUN.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::observed::{Observed, answer, probe_paths};
use super::timeline::TimelineRecorder;
use super::{
    Exercise, Mode, Ran, StepContext, StepFuture, StepRecorder, Unit, launch, own_proxy_holds,
    startup_text, until_ready_status,
};
use crate::deps::Dependency;
use crate::deps::dependency::display;
use crate::http::HttpExchange;
use crate::kube::{Answer, FaultWindow};
use crate::plan::{PlannedStep, Precondition, Unmet};
use crate::proxy::Fault;
use crate::scenario::Scenario;
use crate::service::{RunningService, Startup};

/// How often ready and live are asked while waiting for a change.
const POLL: Duration = Duration::from_millis(100);

/// The id of the one step that stands for every fault step when none can
/// run (target mode, or `[faults] enabled = false`).
pub const FOLDED_ID: &str = "runtime-faults";
const FOLDED_TITLE: &str = "Runtime dependency faults";

/// The four step ids for one dependency, e.g. `redis-runtime-outage`.
pub fn step_ids(key: &str) -> [String; 4] {
    [
        format!("{key}-runtime-outage"),
        format!("{key}-liveness-isolation"),
        format!("{key}-timeout-discipline"),
        format!("{key}-recovery"),
    ]
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

/// One unit per fault target; or, when no fault can run here, one folded
/// step that says why.
pub fn units(scenario: &Scenario, mode: &Mode) -> Vec<Unit> {
    let faults = &scenario.faults;
    if !faults.enabled || mode.provider().is_none() {
        return vec![folded(scenario)];
    }
    faults
        .targets
        .iter()
        .map(|key| {
            let steps = planned(scenario, key);
            let display = display(key);
            let preconditions = vec![
                Precondition::Faultable {
                    dependency: display.clone(),
                },
                Precondition::ReadyHealthy,
            ];
            let label = format!("{display} runtime faults");
            let holds = own_proxy_holds(scenario, &label, key);
            let exercise = FaultSequence { key: key.clone() };
            Unit::group(label, steps, preconditions, Vec::new(), exercise).with_own_proxies(holds)
        })
        .collect()
}

/// The four planned steps for the dependency `key`.
fn planned(scenario: &Scenario, key: &str) -> Vec<PlannedStep> {
    let faults = &scenario.faults;
    let d = display(key);
    let [outage, liveness, timeout, recovery] = step_ids(key);
    let [t0, t1, t2, t3] = titles(&d);
    let (detect, deadline, recover) = (
        faults.detection_window.as_secs_f64(),
        faults.probe_deadline.as_secs_f64(),
        faults.recovery_window.as_secs_f64(),
    );
    let exercises = format!("one running service instance; gonogo's proxy in front of {d}");
    vec![
        PlannedStep::new(
            outage,
            t0,
            format!(
                "When {d} goes down while the service runs, ready answers 503 naming {d} within {detect} s."
            ),
            &exercises,
        ),
        PlannedStep::new(
            liveness,
            t1,
            format!("While {d} is down or blackholed, live keeps answering 200."),
            &exercises,
        ),
        PlannedStep::new(
            timeout,
            t2,
            format!(
                "With {d} blackholed, ready still answers, 503, within the {deadline} s probe deadline."
            ),
            &exercises,
        ),
        PlannedStep::new(
            recovery,
            t3,
            format!(
                "Once {d} is back, ready answers 200 again within {recover} s, without a restart."
            ),
            &exercises,
        ),
    ]
}

/// The one step standing for every fault step when none can run here.
fn folded(scenario: &Scenario) -> Unit {
    let step = PlannedStep::new(
        FOLDED_ID,
        FOLDED_TITLE,
        "While the service runs, an outage of each dependency is detected, contained and recovered from.",
        "gonogo's fault proxy in front of each dependency",
    );
    let precondition = if scenario.faults.enabled {
        Precondition::Faultable {
            dependency: "its dependencies".into(),
        }
    } else {
        Precondition::Configured {
            needs: "runtime fault steps switched on ([faults])".into(),
            unmet: Some("the scenario switches them off ([faults] enabled = false)".into()),
        }
    };
    Unit::one(step, vec![precondition], Vec::new(), Folded)
}

/// Never runs: its precondition never holds.
struct Folded;

impl Exercise for Folded {
    fn run<'a>(&'a self, _: &'a mut StepContext<'_>, _: &'a [PlannedStep]) -> StepFuture<'a> {
        Box::pin(async { anyhow::bail!("the folded runtime-faults step has nothing to run") })
    }
}

/// The sequence for one dependency.
struct FaultSequence {
    key: String,
}

impl Exercise for FaultSequence {
    fn run<'a>(&'a self, ctx: &'a mut StepContext<'_>, steps: &'a [PlannedStep]) -> StepFuture<'a> {
        Box::pin(sequence(ctx, steps, &self.key))
    }
}

/// The four recorders, the timeline and the fault windows of one
/// sequence.
struct Sequence<'m> {
    outage: StepRecorder<'m>,
    liveness: StepRecorder<'m>,
    timeout: StepRecorder<'m>,
    recovery: StepRecorder<'m>,
    timeline: TimelineRecorder<'m>,
    /// The fault being watched, from its injection until ready recovered.
    window: Option<Window>,
    /// Every fault watched to its end, for the probe judges.
    windows: Vec<FaultWindow>,
    /// Ready's healthy answer before the fault: what each check about the
    /// failure is judged against too.
    healthy: Option<HttpExchange>,
}

/// One fault as it is being watched: every answer of every probed path,
/// timed from the injection.
struct Window {
    dependency: String,
    fault: &'static str,
    injected: Instant,
    cleared_at: Option<Duration>,
    answers: BTreeMap<String, Vec<Answer>>,
}

impl Sequence<'_> {
    /// Start watching the fault `fault` of `dependency`, injected now.
    fn open_window(&mut self, dependency: &str, fault: &'static str) {
        self.window = Some(Window {
            dependency: dependency.to_string(),
            fault,
            injected: Instant::now(),
            cleared_at: None,
            answers: BTreeMap::new(),
        });
    }

    /// Record an answer of `path`, sent at `sent`, in the open window.
    fn answered(&mut self, path: &str, exchange: &HttpExchange, sent: Instant) {
        if let Some(w) = &mut self.window {
            w.answers
                .entry(path.to_string())
                .or_default()
                .push(answer(exchange, sent, w.injected));
        }
    }

    fn cleared(&mut self) {
        if let Some(w) = &mut self.window {
            w.cleared_at = Some(w.injected.elapsed());
        }
    }

    /// The open window is watched to its end.
    fn close_window(&mut self) {
        if let Some(w) = self.window.take() {
            let cleared_at = w.cleared_at.unwrap_or_else(|| w.injected.elapsed());
            self.windows.push(FaultWindow {
                dependency: w.dependency,
                fault: w.fault.to_string(),
                cleared_at,
                answers: w.answers,
            });
        }
    }
}

impl Sequence<'_> {
    /// Liveness, timeout discipline and recovery are NOT RUN for `unmet`.
    fn rest_not_run(&mut self, unmet: &Unmet) {
        for step in [&mut self.liveness, &mut self.timeout, &mut self.recovery] {
            step.unmet(unmet.clone());
        }
    }

    async fn finish(mut self, service: RunningService) -> Ran {
        self.recovery.log(&service.log_text().await);
        let _ = service.stop().await;
        self.close_window();
        Ran {
            observed: self.windows.into_iter().map(Observed::Fault).collect(),
            outcomes: vec![
                self.outage.finish(),
                self.liveness.finish(),
                self.timeout.finish(),
                self.recovery.finish(),
            ],
            timeline: Some(self.timeline.finish()),
            ..Ran::default()
        }
    }
}

/// Run the sequence for the dependency `key`.
async fn sequence(
    ctx: &mut StepContext<'_>,
    steps: &[PlannedStep],
    key: &str,
) -> anyhow::Result<Ran> {
    let [outage, liveness, timeout, recovery] = steps else {
        anyhow::bail!("the fault unit for {key} has {} steps, not 4", steps.len());
    };
    let target = ctx.dependency(key);
    let mut seq = Sequence {
        outage: StepRecorder::new(ctx.masker, outage),
        liveness: StepRecorder::new(ctx.masker, liveness),
        timeout: StepRecorder::new(ctx.masker, timeout),
        recovery: StepRecorder::new(ctx.masker, recovery),
        timeline: TimelineRecorder::new(ctx.masker, target.display.clone()),
        window: None,
        windows: Vec::new(),
        healthy: None,
    };
    let service = match start_healthy_instance(ctx, &mut seq).await? {
        Ok(service) => service,
        Err(service) => return Ok(seq.finish(service).await),
    };
    down(ctx, &mut seq, &service, target).await?;
    let back = clear_and_recover(ctx, &mut seq, &service, target, "outage").await?;
    match back {
        Ok(()) => {
            blackhole(ctx, &mut seq, &service, target).await?;
            // The recovery step records whether it came back either way.
            let _ = clear_and_recover(ctx, &mut seq, &service, target, "blackhole").await?;
        }
        Err(last) => seq.timeout.unmet(Unmet::new(
            "ready answering 200 before the blackhole",
            format!("ready did not return to 200 after the outage (see the recovery step); last answer: {last}"),
        )),
    }
    Ok(seq.finish(service).await)
}

/// Start the instance and wait for ready 200 before any fault. When either
/// fails, the outage step records the FAIL, the other three are NOT RUN,
/// and the instance comes back as `Err` to be stopped.
async fn start_healthy_instance(
    ctx: &mut StepContext<'_>,
    seq: &mut Sequence<'_>,
) -> anyhow::Result<Result<RunningService, RunningService>> {
    let bindings = ctx.bindings.clone();
    let label = "start service";
    let (service, startup) = launch(ctx, &mut seq.outage, label, &bindings).await?;
    if !matches!(startup, Startup::Answering(_)) {
        let seen = startup_text(&startup);
        seq.outage
            .check("service answers HTTP before the fault", &seen, false);
        seq.rest_not_run(&Unmet::new(
            "a service instance answering HTTP before the fault",
            format!("the instance {seen}"),
        ));
        return Ok(Err(service));
    }
    // Healthy first: a fault proves nothing about a service that was
    // already failing.
    let (healthy, exchange) =
        until_ready_status(ctx, &service, 200, ctx.scenario.ready.settle).await;
    let ready_path = &ctx.scenario.service.ready_path;
    seq.outage
        .request(&format!("GET {ready_path} before the fault"), &exchange);
    let was_healthy = seq.outage.check(
        "ready answers 200 before the fault",
        exchange.summary(),
        healthy.is_some(),
    );
    if !was_healthy {
        seq.rest_not_run(&Unmet::new(
            "ready answering 200 before the fault",
            format!(
                "ready was never 200 before the fault: {}",
                exchange.summary()
            ),
        ));
        return Ok(Err(service));
    }
    seq.healthy = Some(exchange);
    Ok(Ok(service))
}

/// What gonogo saw while the dependency was down.
#[derive(Default)]
struct Watch {
    /// When ready first answered 503, and that answer.
    first_503: Option<(Duration, HttpExchange)>,
    last_ready: Option<HttpExchange>,
    /// The statuses (or `None`: no answer) ready gave besides 200 and 503,
    /// each recorded once in the timeline.
    odd: Vec<Option<u16>>,
    live_total: usize,
    live_bad: Vec<String>,
    /// A live answer to show: the first bad one, else the first.
    live_sample: Option<HttpExchange>,
}

/// Take the dependency down, with pooled connections cut, and watch ready
/// (until its first 503 or the detection window) and live (until the live
/// watch after that 503, or the window).
async fn down(
    ctx: &mut StepContext<'_>,
    seq: &mut Sequence<'_>,
    service: &RunningService,
    target: &Dependency,
) -> anyhow::Result<()> {
    ctx.detail(&format!("{}: fault down", target.display));
    seq.outage.start_clock();
    seq.liveness.start_clock();
    target.proxy.apply(Fault::Down).await?;
    seq.open_window(&target.display, "down");
    let injected = Instant::now();
    seq.timeline.record(
        "fault down injected",
        &format!("{} proxy refuses and cuts connections", target.display),
    );
    let mut watch = Watch::default();
    while !watch_done(ctx, &watch, injected.elapsed()) {
        watch_once(ctx, seq, service, &mut watch, injected).await;
        tokio::time::sleep(POLL).await;
    }
    record_outage(ctx, seq, target, &watch);
    seq.outage.stop_clock();
    Ok(())
}

/// Whether the outage has been watched long enough.
fn watch_done(ctx: &StepContext<'_>, watch: &Watch, elapsed: Duration) -> bool {
    let faults = &ctx.scenario.faults;
    let timed_out = elapsed >= faults.detection_window;
    let watched_live = watch
        .first_503
        .as_ref()
        .is_some_and(|(at, _)| elapsed >= *at + faults.live_watch);
    timed_out || watched_live
}

/// Ask live (and ready, until its first 503) once, at the same time.
async fn watch_once(
    ctx: &StepContext<'_>,
    seq: &mut Sequence<'_>,
    service: &RunningService,
    watch: &mut Watch,
    injected: Instant,
) {
    let spec = &ctx.scenario.service;
    // Ready is asked after its first 503 too: the probe judges need the
    // whole window, as the kubelet would have seen it.
    let sent = Instant::now();
    let (ready, live) = tokio::join!(
        service.get(&ctx.probe, &spec.ready_path, spec.request_timeout),
        service.get(&ctx.probe, &spec.live_path, spec.request_timeout),
    );
    seq.answered(&spec.ready_path, &ready, sent);
    seq.answered(&spec.live_path, &live, sent);
    for path in other_probe_paths(ctx) {
        let sent = Instant::now();
        let exchange = service.get(&ctx.probe, &path, spec.request_timeout).await;
        seq.answered(&path, &exchange, sent);
    }
    watch.live_total += 1;
    if live.status != Some(200) {
        let at = injected.elapsed().as_millis();
        watch
            .live_bad
            .push(format!("t+{at} ms: {}", live.summary()));
        if watch
            .live_sample
            .as_ref()
            .is_none_or(|s| s.status == Some(200))
        {
            watch.live_sample = Some(live);
        }
    } else if watch.live_sample.is_none() {
        watch.live_sample = Some(live);
    }
    if watch.first_503.is_some() {
        return;
    }
    match ready.status {
        Some(503) => {
            seq.timeline.record("first 503", &ready.summary());
            watch.first_503 = Some((injected.elapsed(), ready));
        }
        Some(200) => watch.last_ready = Some(ready),
        other => {
            // Neither healthy nor the expected failure: a fact for the
            // timeline (a 500, or no answer at all).
            if !watch.odd.contains(&other) {
                watch.odd.push(other);
                seq.timeline.record("ready answer", &ready.summary());
            }
            watch.last_ready = Some(ready);
        }
    }
}

/// The outage and liveness checks from what the watch saw.
fn record_outage(
    ctx: &StepContext<'_>,
    seq: &mut Sequence<'_>,
    target: &Dependency,
    watch: &Watch,
) {
    let spec = &ctx.scenario.service;
    let window = ctx.scenario.faults.detection_window.as_secs_f64();
    let expected = format!("ready answers 503 within {window} s of the outage");
    match &watch.first_503 {
        Some((at, exchange)) => {
            seq.outage.request(
                &format!("GET {} during the outage", spec.ready_path),
                exchange,
            );
            seq.outage.check(
                &expected,
                format!("first 503 after {} ms", at.as_millis()),
                true,
            );
            failure_semantics(ctx, &mut seq.outage, exchange, seq.healthy.as_ref(), target);
        }
        None => {
            if let Some(last) = &watch.last_ready {
                seq.outage.request(
                    &format!("GET {} during the outage (last answer)", spec.ready_path),
                    last,
                );
            }
            let last = watch
                .last_ready
                .as_ref()
                .map_or("none".into(), HttpExchange::summary);
            seq.outage.check(
                &expected,
                format!("no 503 within {window} s; last answer: {last}"),
                false,
            );
        }
    }
    if let Some(sample) = &watch.live_sample {
        seq.liveness
            .request(&format!("GET {} during the outage", spec.live_path), sample);
    }
    let total = watch.live_total;
    seq.liveness.check(
        format!("live answers 200 throughout the {} outage", target.display),
        if watch.live_bad.is_empty() {
            format!("{total} of {total} probes answered 200")
        } else {
            format!(
                "{} of {total} probes did not answer 200: {}",
                watch.live_bad.len(),
                watch.live_bad.join("; ")
            )
        },
        watch.live_bad.is_empty() && total > 0,
    );
}

/// Live's answer while the dependency is blackholed: it must be 200.
fn live_while_blackholed(
    seq: &mut Sequence<'_>,
    live_path: &str,
    target: &Dependency,
    live: &crate::http::HttpExchange,
) {
    seq.liveness.request(
        &format!("GET {live_path} with {} blackholed", target.display),
        live,
    );
    seq.liveness.check(
        format!("live answers 200 while {} is blackholed", target.display),
        live.summary(),
        live.status == Some(200),
    );
}

/// Ask every other probe path the manifest names once, for the probe judges.
async fn ask_other_probe_paths(
    ctx: &StepContext<'_>,
    seq: &mut Sequence<'_>,
    service: &RunningService,
) {
    let timeout = ctx.scenario.service.request_timeout;
    for path in other_probe_paths(ctx) {
        let sent = Instant::now();
        let exchange = service.get(&ctx.probe, &path, timeout).await;
        seq.answered(&path, &exchange, sent);
    }
}

/// Blackhole the dependency and send one ready request bounded by the probe
/// deadline (gonogo's own client gives up there too), with live asked
/// meanwhile.
async fn blackhole(
    ctx: &mut StepContext<'_>,
    seq: &mut Sequence<'_>,
    service: &RunningService,
    target: &Dependency,
) -> anyhow::Result<()> {
    let spec = &ctx.scenario.service;
    let deadline = ctx.scenario.faults.probe_deadline;
    ctx.detail(&format!("{}: fault blackhole", target.display));
    seq.timeout.start_clock();
    target.proxy.apply(Fault::Blackhole).await?;
    seq.close_window();
    seq.open_window(&target.display, "blackhole");
    seq.timeline.record(
        "fault blackhole injected",
        &format!("{} proxy holds connections, passes nothing", target.display),
    );
    let sent = Instant::now();
    let ((ready, _), (live, live_sent)) = tokio::join!(
        async {
            (
                service.get(&ctx.probe, &spec.ready_path, deadline).await,
                sent,
            )
        },
        async {
            // Ask live while ready is stuck on the dependency.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let sent = Instant::now();
            (
                service
                    .get(&ctx.probe, &spec.live_path, spec.request_timeout)
                    .await,
                sent,
            )
        }
    );
    seq.answered(&spec.ready_path, &ready, sent);
    seq.answered(&spec.live_path, &live, live_sent);
    ask_other_probe_paths(ctx, seq, service).await;
    let event = if ready.status == Some(503) {
        "first 503"
    } else {
        "ready answer"
    };
    seq.timeline.record(event, &ready.summary());
    seq.timeout.request(
        &format!("GET {} with {} blackholed", spec.ready_path, target.display),
        &ready,
    );
    seq.timeout.check(
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
    seq.timeout.check(
        "the answer is HTTP 503",
        ready.summary(),
        ready.status == Some(503),
    );
    if ready.status == Some(503) {
        failure_semantics(ctx, &mut seq.timeout, &ready, seq.healthy.as_ref(), target);
    }
    live_while_blackholed(seq, &spec.live_path, target, &live);
    seq.timeout.stop_clock();
    seq.liveness.stop_clock();
    Ok(())
}

/// Clear the fault and wait for ready to return to 200; gives `Err` with
/// the last answer when it did not.
async fn clear_and_recover(
    ctx: &mut StepContext<'_>,
    seq: &mut Sequence<'_>,
    service: &RunningService,
    target: &Dependency,
    after: &str,
) -> anyhow::Result<Result<(), String>> {
    if after == "outage" {
        seq.recovery.start_clock();
    }
    target.proxy.apply(Fault::None).await?;
    seq.cleared();
    seq.timeline.record(
        "fault cleared",
        &format!("{} proxy forwards again", target.display),
    );
    ctx.detail(&format!("{}: fault cleared after {after}", target.display));
    let window = ctx.scenario.faults.recovery_window;
    let started = Instant::now();
    let (ok, exchange) = recover(ctx, seq, service, window).await;
    seq.close_window();
    if ok.is_some() {
        seq.timeline.record("first 200 again", &exchange.summary());
    }
    seq.recovery.request(
        &format!(
            "GET {} after the {after} cleared",
            ctx.scenario.service.ready_path
        ),
        &exchange,
    );
    let took = started.elapsed().as_millis();
    seq.recovery.check(
        format!(
            "ready returns to 200 within {} s after the {after} clears",
            window.as_secs_f64()
        ),
        match ok {
            Some(_) => format!("200 again after {took} ms"),
            None => format!(
                "still not 200 after {took} ms; last answer: {}",
                exchange.summary()
            ),
        },
        ok.is_some(),
    );
    Ok(match ok {
        Some(_) => Ok(()),
        None => Err(exchange.summary()),
    })
}

/// Ask ready until it answers 200 or `window` passes, recording every
/// answer in the open fault window; gives how long it took (if it did)
/// and the last exchange.
async fn recover(
    ctx: &StepContext<'_>,
    seq: &mut Sequence<'_>,
    service: &RunningService,
    window: Duration,
) -> (Option<Duration>, HttpExchange) {
    let spec = &ctx.scenario.service;
    let started = Instant::now();
    loop {
        let sent = Instant::now();
        let exchange = service
            .get(&ctx.probe, &spec.ready_path, spec.request_timeout)
            .await;
        seq.answered(&spec.ready_path, &exchange, sent);
        if exchange.status == Some(200) {
            return (Some(started.elapsed()), exchange);
        }
        if started.elapsed() >= window {
            return (None, exchange);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The manifest's probe paths besides ready and live (none without
/// `[kubernetes]`).
fn other_probe_paths(ctx: &StepContext<'_>) -> Vec<String> {
    let spec = &ctx.scenario.service;
    probe_paths(ctx.scenario)
        .into_iter()
        .filter(|p| *p != spec.ready_path && *p != spec.live_path)
        .collect()
}

/// What the 503 says about `target`, judged on the healthy answer too,
/// with the scenario's `[faults] expect` for it.
pub(super) fn failure_semantics(
    ctx: &StepContext<'_>,
    step: &mut StepRecorder<'_>,
    exchange: &HttpExchange,
    healthy: Option<&HttpExchange>,
    target: &Dependency,
) {
    let expect = ctx
        .scenario
        .faults
        .expect
        .get(&target.key)
        .map_or(&[][..], Vec::as_slice);
    super::discriminate::failure_semantics(step, exchange, healthy, target, expect);
}
