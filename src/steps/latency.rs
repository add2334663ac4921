//! Latency SLO: N requests to ready at a set concurrency, on healthy
//! dependencies; p95 must stay within the threshold (seeds 001 and 002:
//! P95 < 200 ms; ready and live within 200 ms when healthy).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Latency, Mode, StepContext, StepOutcome, StepRecorder, start_healthy};

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

pub async fn latency(ctx: &mut StepContext<'_>, number: u32) -> anyhow::Result<StepOutcome> {
    let spec = ctx.scenario.latency.clone();
    let mut step = StepRecorder::new(ctx.masker, number, ID, title(spec.p95_ms));
    // Target mode: measure the running service as it is.
    if let Mode::Target { base_url } = &ctx.mode {
        let url = format!("{}{}", base_url, spec.path);
        measure(ctx, &mut step, url).await?;
        return Ok(step.finish());
    }
    let Some(service) = start_healthy(ctx, &mut step, "service answers HTTP").await? else {
        return Ok(step.finish());
    };
    measure(ctx, &mut step, service.url(&spec.path)).await?;
    step.log(&service.log_text().await);
    let _ = service.stop().await;
    Ok(step.finish())
}

/// Sends the latency requests from `concurrency` workers until every one
/// is sent or [`Silence`] gives up; gives each one's time and the count per
/// status.
async fn send(
    ctx: &StepContext<'_>,
    url: &str,
    silence: &Arc<Silence>,
) -> anyhow::Result<(Vec<Duration>, BTreeMap<String, usize>)> {
    let spec = &ctx.scenario.latency;
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
    let mut samples: Vec<Duration> = Vec::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    while let Some(joined) = workers.join_next().await {
        for (elapsed, status) in joined? {
            samples.push(elapsed);
            let key = status.map_or("no answer".into(), |s| s.to_string());
            *statuses.entry(key).or_default() += 1;
        }
    }
    Ok((samples, statuses))
}

/// Warm up, then send the requests and record the figures and checks.
async fn measure(
    ctx: &mut StepContext<'_>,
    step: &mut StepRecorder<'_>,
    url: String,
) -> anyhow::Result<()> {
    let spec = ctx.scenario.latency.clone();
    let silence = Arc::new(Silence::default());
    for _ in 0..WARMUP {
        let exchange = ctx
            .probe
            .get(&url, ctx.scenario.service.request_timeout)
            .await;
        silence.record(exchange.status.is_some());
    }
    ctx.detail(&format!(
        "{} × GET {}, {} concurrent",
        spec.requests, spec.path, spec.concurrency
    ));
    let started = Instant::now();
    let (samples, statuses) = if silence.gave_up() {
        (Vec::new(), BTreeMap::new())
    } else {
        send(ctx, &url, &silence).await?
    };
    let wall = started.elapsed();
    let ok = statuses.get("200").copied().unwrap_or(0);
    let stats = Latency::from_samples(&samples);
    let mut output = format!(
        "requests: {}\nconcurrency: {}\nwall time: {} ms\nthroughput: {:.0} req/s\nstatus counts: {}\n",
        samples.len(),
        spec.concurrency,
        wall.as_millis(),
        samples.len() as f64 / wall.as_secs_f64().max(1e-9),
        statuses
            .iter()
            .map(|(k, v)| format!("{k}×{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(s) = &stats {
        output.push_str(&format!(
            "p50: {:.1} ms\np95: {:.1} ms\np99: {:.1} ms\nmax: {:.1} ms\n",
            s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms
        ));
    }
    step.command(
        &format!("{} × GET {}", spec.requests, spec.path),
        &format!(
            "gonogo latency probe: {} requests, {} concurrent, GET {url}",
            spec.requests, spec.concurrency
        ),
        None,
        &output,
        wall,
    );
    match &stats {
        Some(s) => {
            step.check(
                format!("p95 ≤ {} ms", spec.p95_ms),
                format!(
                    "p95 {:.1} ms (p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} requests, {} concurrent)",
                    s.p95_ms, s.p50_ms, s.p99_ms, s.max_ms, s.samples, spec.concurrency
                ),
                s.p95_ms <= spec.p95_ms,
            );
            step.latency(s.clone());
        }
        None => {
            step.check(format!("p95 ≤ {} ms", spec.p95_ms), "no samples", false);
        }
    }
    if silence.gave_up() {
        step.check(
            format!("ready keeps answering (the run stops after {GIVE_UP_AFTER} requests in a row without an answer)"),
            format!(
                "stopped after {} of {} requests ({WARMUP} warm-up requests before them): {GIVE_UP_AFTER} in a row got no answer",
                samples.len(),
                spec.requests
            ),
            false,
        );
    }
    step.check(
        "every answer is HTTP 200 on healthy dependencies",
        format!("{ok} of {} answered 200", samples.len()),
        ok == samples.len() && ok > 0,
    );
    Ok(())
}
