//! The read-only Postgres step: with the service running and healthy, the
//! Postgres server gonogo owns refuses writes server-wide (seed 000 asks
//! ready for read AND write sentinels; a ready that only reads stays 200
//! here). Ready must answer 503 naming the database within the detection
//! window, and 200 again within the recovery window once writes are
//! allowed. The server is changed through `deps::read_only`; with external
//! servers the step is NOT RUN, since gonogo never changes someone else's.

use std::time::Instant;

use super::timeline::{TimelineRecorder, Watch};
use super::{
    Exercise, Mode, Ran, StepContext, StepFuture, StepRecorder, Unit, instance_holds, launch,
    startup_text, until_ready_status,
};
use crate::deps::Dependency;
use crate::deps::read_only::{ALLOW_SQL, REFUSE_SQL, Refused, ServerSession};
use crate::http::HttpExchange;
use crate::plan::{Hold, PlannedStep, Precondition, Resource};
use crate::scenario::Scenario;
use crate::service::{RunningService, Startup};

/// The step's id.
pub const ID: &str = "postgres-read-only";
/// The dependency it changes.
const KEY: &str = "postgres";

/// The step, when the scenario faults Postgres and gonogo launches the
/// service (otherwise the folded runtime-faults step stands for it).
pub fn unit(scenario: &Scenario, mode: &Mode) -> Option<Unit> {
    let faults = &scenario.faults;
    if !faults.enabled || mode.provider().is_none() || !faults.targets.iter().any(|t| t == KEY) {
        return None;
    }
    let window = faults.detection_window.as_secs_f64();
    let recover = faults.recovery_window.as_secs_f64();
    let step = PlannedStep::new(
        ID,
        "Postgres refuses writes (ready 503 within the window, 200 after)",
        format!(
            "When Postgres refuses writes while the service runs, ready answers 503 naming it within {window} s, and 200 again within {recover} s once writes are allowed."
        ),
        "one running service instance; the Postgres server gonogo owns, set read-only server-wide",
    );
    let preconditions = vec![
        Precondition::Writable {
            dependency: "Postgres".into(),
        },
        Precondition::ReadyHealthy,
    ];
    let mut holds = instance_holds(scenario);
    holds.push(Hold::holds(Resource::Server(KEY.into())));
    Some(Unit::one(step, preconditions, holds, ReadOnly))
}

struct ReadOnly;

impl Exercise for ReadOnly {
    fn run<'a>(&'a self, ctx: &'a mut StepContext<'_>, steps: &'a [PlannedStep]) -> StepFuture<'a> {
        Box::pin(async move {
            let [planned] = steps else {
                anyhow::bail!("the {ID} unit has {} steps, not 1", steps.len());
            };
            let mut step = StepRecorder::new(ctx.masker, planned);
            let mut timeline = TimelineRecorder::new(ctx.masker, "Postgres (read-only)");
            if let Some((service, healthy)) = healthy_instance(ctx, &mut step).await? {
                let mut watch = Watch {
                    step: &mut step,
                    timeline: &mut timeline,
                    service: &service,
                };
                let result = fault(ctx, &mut watch, &healthy).await;
                step.log(&service.log_text().await);
                let _ = service.stop().await;
                result?;
            }
            Ok(Ran {
                outcomes: vec![step.finish()],
                timeline: Some(timeline.finish()),
                ..Ran::default()
            })
        })
    }
}

/// Start the instance and wait for ready 200; gives it with that healthy
/// answer, or `None` (with the FAIL recorded and the instance stopped)
/// when it never got there.
async fn healthy_instance(
    ctx: &mut StepContext<'_>,
    step: &mut StepRecorder<'_>,
) -> anyhow::Result<Option<(RunningService, HttpExchange)>> {
    let bindings = ctx.bindings.clone();
    let (service, startup) = launch(ctx, step, "start service", &bindings).await?;
    if matches!(startup, Startup::Answering(_)) {
        let (healthy, exchange) =
            until_ready_status(ctx, &service, 200, ctx.scenario.ready.settle).await;
        let ready_path = &ctx.scenario.service.ready_path;
        step.request(&format!("GET {ready_path} before the fault"), &exchange);
        let healthy = step.check(
            "ready answers 200 before the fault",
            exchange.summary(),
            healthy.is_some(),
        );
        if healthy {
            return Ok(Some((service, exchange)));
        }
    } else {
        step.check(
            "service answers HTTP before the fault",
            startup_text(&startup),
            false,
        );
    }
    step.log(&service.log_text().await);
    let _ = service.stop().await;
    Ok(None)
}

/// Refuse writes, watch ready, allow writes, watch ready. Writes are
/// allowed again whatever happened in between.
async fn fault(
    ctx: &mut StepContext<'_>,
    w: &mut Watch<'_, '_>,
    healthy: &HttpExchange,
) -> anyhow::Result<()> {
    let target = ctx.dependency(KEY);
    let Some(endpoint) = target.postgres() else {
        anyhow::bail!("the postgres dependency has no server endpoint");
    };
    ctx.detail("Postgres: refuse writes server-wide");
    let mut session = ServerSession::connect(endpoint).await?;
    w.step.start_clock();
    let began = Instant::now();
    let refused = session.refuse_writes().await;
    let watched = match &refused {
        Ok(refused) => {
            record_refused(w, refused, began);
            Ok(watch_outage(ctx, w, target, healthy).await)
        }
        Err(e) => Err(anyhow::anyhow!("make postgres refuse writes: {e:#}")),
    };
    let began = Instant::now();
    let allowed = session.allow_writes().await;
    session.close().await;
    let allowed = allowed.map_err(|e| anyhow::anyhow!("allow writes on postgres again: {e:#}"))?;
    let saw_503 = watched?;
    w.step.command(
        "allow writes again",
        ALLOW_SQL,
        None,
        &format!(
            "a new session saw default_transaction_read_only = off {} ms after the reload",
            allowed.as_millis()
        ),
        began.elapsed(),
    );
    w.timeline.record(
        "writes allowed again",
        "default_transaction_read_only reset, configuration reloaded",
    );
    // Without a 503 first, "200 again" could not have failed.
    if saw_503 {
        watch_recovery(ctx, w).await;
    }
    w.step.stop_clock();
    Ok(())
}

fn record_refused(w: &mut Watch<'_, '_>, refused: &Refused, began: Instant) {
    let sessions = match refused.sessions_ended {
        1 => "1 session".to_string(),
        n => format!("{n} sessions"),
    };
    w.step.command(
        "refuse writes server-wide",
        REFUSE_SQL,
        None,
        &format!(
            "a new session saw default_transaction_read_only = on {} ms after the reload; {sessions} of the service's role ended",
            refused.took.as_millis()
        ),
        began.elapsed(),
    );
    w.timeline.record(
        "writes refused",
        &format!("default_transaction_read_only = on server-wide; {sessions} ended"),
    );
}

/// Ask ready until its first 503 or the detection window; gives whether
/// it turned 503.
async fn watch_outage(
    ctx: &StepContext<'_>,
    w: &mut Watch<'_, '_>,
    target: &Dependency,
    healthy: &HttpExchange,
) -> bool {
    let window = ctx.scenario.faults.detection_window;
    let ready_path = &ctx.scenario.service.ready_path;
    let (first, exchange) = until_ready_status(ctx, w.service, 503, window).await;
    let expected = format!(
        "ready answers 503 within {} s of Postgres refusing writes",
        window.as_secs_f64()
    );
    match first {
        Some(at) => {
            w.timeline.record("first 503", &exchange.summary());
            w.step.request(
                &format!("GET {ready_path} while Postgres refuses writes"),
                &exchange,
            );
            w.step.check(
                expected,
                format!("first 503 after {} ms", at.as_millis()),
                true,
            );
            // The names only: `[faults] expect` describes an outage, and a
            // database that refuses writes may say so in other words.
            super::discriminate::failure_semantics(w.step, &exchange, Some(healthy), target, &[]);
            true
        }
        None => {
            // The odd answer (a 500, a 200 that never turned) is a fact
            // the timeline keeps, as in the fault sequences.
            w.timeline.record("ready answer", &exchange.summary());
            w.step.request(
                &format!("GET {ready_path} while Postgres refuses writes (last answer)"),
                &exchange,
            );
            w.step.check(
                expected,
                format!(
                    "no 503 within {} s; last answer: {}: a ready that only reads does not see a database that refuses writes (seed 000 asks for read and write sentinels)",
                    window.as_secs_f64(),
                    exchange.summary()
                ),
                false,
            );
            false
        }
    }
}

/// Ask ready until 200 or the recovery window.
async fn watch_recovery(ctx: &StepContext<'_>, w: &mut Watch<'_, '_>) {
    let window = ctx.scenario.faults.recovery_window;
    let ready_path = &ctx.scenario.service.ready_path;
    let (back, exchange) = until_ready_status(ctx, w.service, 200, window).await;
    if back.is_some() {
        w.timeline.record("first 200 again", &exchange.summary());
    }
    w.step.request(
        &format!("GET {ready_path} after writes are allowed again"),
        &exchange,
    );
    w.step.check(
        format!(
            "ready returns to 200 within {} s once writes are allowed",
            window.as_secs_f64()
        ),
        match back {
            Some(took) => format!("200 again after {} ms", took.as_millis()),
            None => format!(
                "still not 200 after {} s; last answer: {}",
                window.as_secs_f64(),
                exchange.summary()
            ),
        },
        back.is_some(),
    );
}
