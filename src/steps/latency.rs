//! Latency SLO: N requests to ready at a set concurrency, on healthy
//! dependencies; p95 must stay within the threshold (seeds 001 and 002:
//! P95 < 200 ms; ready and live within 200 ms when healthy).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::observed::Observed;
use super::{
    Exercise, Mode, Ran, StepContext, StepFuture, StepRecorder, Unit, instance_holds, take_or_start,
};
use crate::outcome::Latency;
use crate::plan::{Hold, PlannedStep, Precondition, Resource};
use crate::scenario::{LatencySpec, Scenario};

pub const ID: &str = "latency-slo";

pub fn title(p95_ms: f64) -> String {
    format!("Latency SLO (ready p95 ≤ {p95_ms} ms)")
}

/// Requests sent before measuring, so connection setup inside the service
/// (pools, lazy clients) is not counted against it.
const WARMUP: usize = 5;

/// A latency run stops once this many requests in a row got no answer: a
/// service that never answers must not cost `requests` × the timeout.
pub const GIVE_UP_AFTER: usize = 5;

/// A measurement that misses the SLO while other work on the machine used
/// at least this share of its CPU is measured again.
const BUSY: f64 = 0.25;

/// At most this many measurements in all.
const ATTEMPTS: usize = 3;

/// The pause before measuring again, for the other work to move on.
const CALM: Duration = Duration::from_secs(2);

/// Counts requests without an answer in a row, across every worker.
#[derive(Debug, Default)]
struct Silence {
    in_a_row: AtomicUsize,
    gave_up: AtomicBool,
}

impl Silence {
    /// Records one exchange; gives whether to keep going.
    fn record(&self, answered: bool) -> bool {
        if answered {
            self.in_a_row.store(0, Ordering::Relaxed);
        } else if self.in_a_row.fetch_add(1, Ordering::Relaxed) + 1 >= GIVE_UP_AFTER {
            self.gave_up.store(true, Ordering::Relaxed);
        }
        !self.gave_up()
    }

    fn gave_up(&self) -> bool {
        self.gave_up.load(Ordering::Relaxed)
    }
}

/// The latency SLO, when the scenario keeps it on: it measures a healthy
/// service (in target mode, the running one), alone on the machine.
pub fn unit(scenario: &Scenario) -> Option<Unit> {
    let spec = &scenario.latency;
    if !spec.enabled {
        return None;
    }
    let step = PlannedStep::new(
        ID,
        title(spec.p95_ms),
        format!(
            "On healthy dependencies, {} answers with p95 ≤ {} ms over {} requests, {} at a time, each HTTP 200.",
            spec.path, spec.p95_ms, spec.requests, spec.concurrency
        ),
        format!(
            "{} × GET {} against a healthy instance (or the running service in target mode)",
            spec.requests, spec.path
        ),
    );
    let mut holds = instance_holds(scenario);
    holds.push(Hold::uses(Resource::TargetService));
    holds.push(Hold::holds(Resource::Machine));
    let mut unit = Unit::one(step, vec![Precondition::ReadyHealthy], holds, LatencySlo);
    unit.takes_spare = true;
    Some(unit)
}

struct LatencySlo;

impl Exercise for LatencySlo {
    fn run<'a>(&'a self, ctx: &'a mut StepContext<'_>, steps: &'a [PlannedStep]) -> StepFuture<'a> {
        Box::pin(latency(ctx, &steps[0]))
    }
}

async fn latency(ctx: &mut StepContext<'_>, planned: &PlannedStep) -> anyhow::Result<Ran> {
    let path = ctx.scenario.latency.path.clone();
    let mut step = StepRecorder::new(ctx.masker, planned);
    // Target mode: measure the running service as it is.
    if let Mode::Target { base_url } = &ctx.mode {
        let url = format!("{base_url}{path}");
        let stats = measure(ctx, &mut step, url).await?;
        return Ok(with_p99(Ran::one(step.finish()), path, stats));
    }
    let held = take_or_start(
        ctx,
        &mut step,
        "service answers HTTP",
        "latency measurement",
    )
    .await?;
    let Some(mut held) = held else {
        return Ok(Ran::one(step.finish()));
    };
    let stats = measure(ctx, &mut step, held.service.url(&path)).await?;
    let (log, log_mark) = held.service.log_since(held.log_mark).await;
    step.log(&log);
    held.log_mark = log_mark;
    // Handed on to the graceful shutdown only when it answered every
    // request 200: a step must not inherit trouble another step caused.
    if stats.is_some() {
        ctx.link.offer(held);
    } else {
        let _ = held.service.stop().await;
    }
    Ok(with_p99(Ran::one(step.finish()), path, stats))
}

/// The healthy p99 of `path`, for the probe judges, when every answer was
/// a 200 (a p99 of errors says nothing about a healthy probe).
fn with_p99(mut ran: Ran, path: String, stats: Option<Latency>) -> Ran {
    if let Some(s) = stats {
        ran.observed.push(Observed::HealthyP99 {
            path,
            p99: Duration::from_secs_f64(s.p99_ms.max(0.0) / 1000.0),
        });
    }
    ran
}

/// Measure, and judge the measurement. A measurement that misses the SLO
/// while the machine was busy with other work (other processes used at
/// least [`BUSY`] of its CPU) says more about the machine than about the service: it is
/// recorded, set aside, and measured again, at most [`ATTEMPTS`] times in
/// all; the last one is judged, whatever the pressure. Gives the figures
/// when every request answered 200.
async fn measure(
    ctx: &mut StepContext<'_>,
    step: &mut StepRecorder<'_>,
    url: String,
) -> anyhow::Result<Option<Latency>> {
    let spec = ctx.scenario.latency.clone();
    let mut set_aside: Vec<String> = Vec::new();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let run = run_once(ctx, &url, &spec).await?;
        let label = format!("{} × GET {}", spec.requests, spec.path);
        let label = match attempt {
            1 => label,
            n => format!("{label} (attempt {n})"),
        };
        step.command(
            &label,
            &format!(
                "gonogo latency probe: {} requests, {} concurrent, GET {url}",
                spec.requests, spec.concurrency
            ),
            None,
            &run.figures(&spec),
            run.wall,
        );
        let missed = run.stats.as_ref().is_some_and(|s| s.p95_ms > spec.p95_ms);
        // In target mode the service is not gonogo's child: its own CPU
        // would count as other work, so a miss is never set aside there.
        let ours = matches!(ctx.mode, Mode::Launch { .. });
        let busy = ours && run.pressure.is_some_and(|p| p >= BUSY);
        if missed && busy && attempt < ATTEMPTS && !run.silence.gave_up() {
            set_aside.push(format!(
                "attempt {attempt}: p95 {:.1} ms while the machine was busy ({})",
                run.stats.as_ref().map_or(0.0, |s| s.p95_ms),
                pressure_text(run.pressure)
            ));
            ctx.detail(&format!(
                "p95 missed while the machine was busy ({}): measuring again",
                pressure_text(run.pressure)
            ));
            tokio::time::sleep(CALM).await;
            continue;
        }
        return Ok(judge(step, &spec, &run, &set_aside));
    }
}

/// One measurement: warm-up, then the requests, with the machine's CPU
/// pressure while they ran.
async fn run_once(
    ctx: &mut StepContext<'_>,
    url: &str,
    spec: &LatencySpec,
) -> anyhow::Result<Measurement> {
    let silence = Arc::new(Silence::default());
    for _ in 0..WARMUP {
        let exchange = ctx
            .probe
            .get(url, ctx.scenario.service.request_timeout)
            .await;
        silence.record(exchange.status.is_some());
    }
    ctx.detail(&format!(
        "{} × GET {}, {} concurrent",
        spec.requests, spec.path, spec.concurrency
    ));
    let before = crate::pressure::read();
    let started = Instant::now();
    let seen = if silence.gave_up() {
        Vec::new()
    } else {
        send(&*ctx, url, spec, &silence).await?
    };
    let wall = started.elapsed();
    let pressure = crate::pressure::others_share(before, crate::pressure::read(), wall);
    let samples: Vec<Duration> = seen.iter().map(|(elapsed, _)| *elapsed).collect();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for (_, status) in &seen {
        let key = status.map_or("no answer".into(), |s| s.to_string());
        *statuses.entry(key).or_default() += 1;
    }
    Ok(Measurement {
        stats: Latency::from_samples(&samples),
        count: samples.len(),
        statuses,
        wall,
        pressure,
        silence,
    })
}

/// The checks on the measurement that is judged; `set_aside` are the
/// earlier attempts that missed while the machine was busy.
fn judge(
    step: &mut StepRecorder<'_>,
    spec: &LatencySpec,
    run: &Measurement,
    set_aside: &[String],
) -> Option<Latency> {
    let mut context = format!(
        "{} requests, {} concurrent; {}",
        run.count,
        spec.concurrency,
        pressure_text(run.pressure)
    );
    if !set_aside.is_empty() {
        context.push_str(&format!(
            "; measured again, set aside: {}",
            set_aside.join("; ")
        ));
    }
    match &run.stats {
        Some(s) => {
            step.check(
                format!("p95 ≤ {} ms", spec.p95_ms),
                format!(
                    "p95 {:.1} ms (p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {context})",
                    s.p95_ms, s.p50_ms, s.p99_ms, s.max_ms
                ),
                s.p95_ms <= spec.p95_ms,
            );
            step.latency(s.clone());
        }
        None => {
            step.check(format!("p95 ≤ {} ms", spec.p95_ms), "no samples", false);
        }
    }
    if run.silence.gave_up() {
        gave_up(step, spec, run.count);
    }
    let ok = run.statuses.get("200").copied().unwrap_or(0);
    let all_ok = step.check(
        "every answer is HTTP 200 on healthy dependencies",
        format!("{ok} of {} answered 200", run.count),
        ok == run.count && ok > 0,
    );
    run.stats
        .clone()
        .filter(|_| all_ok && !run.silence.gave_up())
}

/// One latency measurement.
struct Measurement {
    stats: Option<Latency>,
    count: usize,
    statuses: BTreeMap<String, usize>,
    wall: Duration,
    /// The share of the machine's CPU that other work used meanwhile.
    pressure: Option<f64>,
    silence: Arc<Silence>,
}

/// The other work on the machine, as the evidence says it.
fn pressure_text(pressure: Option<f64>) -> String {
    match pressure {
        Some(p) => format!("other work used {:.0}% of the machine's CPU", p * 100.0),
        None => "other work on the machine unknown (no /proc)".to_string(),
    }
}

/// The check that says the run stopped early, and why.
fn gave_up(step: &mut StepRecorder<'_>, spec: &LatencySpec, sent: usize) {
    step.check(
        format!(
            "ready keeps answering (the run stops after {GIVE_UP_AFTER} requests in a row without an answer)"
        ),
        format!(
            "stopped after {sent} of {} requests ({WARMUP} warm-up requests before them): {GIVE_UP_AFTER} in a row got no answer",
            spec.requests
        ),
        false,
    );
}

/// Send the requests from `concurrency` workers until every one is sent or
/// [`Silence`] gives up; gives each answer's time and status.
async fn send(
    ctx: &StepContext<'_>,
    url: &str,
    spec: &LatencySpec,
    silence: &Arc<Silence>,
) -> anyhow::Result<Vec<(Duration, Option<u16>)>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..spec.concurrency.min(spec.requests) {
        let next = next.clone();
        let silence = silence.clone();
        let probe = ctx.probe.clone();
        let url = url.to_string();
        let timeout = ctx.scenario.service.request_timeout;
        let total = spec.requests;
        workers.spawn(async move {
            let mut seen = Vec::new();
            while !silence.gave_up() && next.fetch_add(1, Ordering::Relaxed) < total {
                let exchange = probe.get(&url, timeout).await;
                seen.push((exchange.elapsed, exchange.status));
                if !silence.record(exchange.status.is_some()) {
                    break;
                }
            }
            seen
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = workers.join_next().await {
        all.extend(joined?);
    }
    Ok(all)
}

impl Measurement {
    /// The measurement as the action's output.
    fn figures(&self, spec: &LatencySpec) -> String {
        let mut output = format!(
            "requests: {}\nconcurrency: {}\nwall time: {} ms\nthroughput: {:.0} req/s\nstatus counts: {}\n",
            self.count,
            spec.concurrency,
            self.wall.as_millis(),
            self.count as f64 / self.wall.as_secs_f64().max(1e-9),
            self.statuses
                .iter()
                .map(|(k, v)| format!("{k}×{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(s) = &self.stats {
            output.push_str(&format!(
                "p50: {:.1} ms\np95: {:.1} ms\np99: {:.1} ms\nmax: {:.1} ms\n",
                s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms
            ));
        }
        output.push_str(&format!(
            "machine: {} (beyond gonogo, the service and the servers gonogo runs)\n",
            pressure_text(self.pressure)
        ));
        output
    }
}
