//! The negative proof: the service restarts with its Redis URL pointing at
//! a closed loopback port (the seed's `127.0.0.1:1`). Ready must answer 503
//! and the body must name Redis, and keep doing so.

use std::time::Duration;

use super::{
    Exercise, Ran, StepContext, StepFuture, StepRecorder, Unit, discriminate, instance_holds,
    launch, startup_text,
};
use crate::http::HttpExchange;
use crate::plan::{Facts, PlannedStep, Precondition};
use crate::scenario::Scenario;
use crate::service::{RunningService, Startup};

pub const ID: &str = "negative-proof";
pub const TITLE: &str = "Negative proof (Redis broken, ready 503)";

/// The seed's closed port.
pub const CLOSED_PORT: u16 = 1;

/// The negative proof: it restarts the service with other settings, and a
/// 503 only means something from a service whose ready can be healthy. It
/// starts beside the ready gate and judges what it saw once the gate has
/// finished: NOT RUN when the gate saw no healthy service.
pub fn unit(scenario: &Scenario) -> Unit {
    let negative = &scenario.negative;
    let step = PlannedStep::new(
        ID,
        TITLE,
        format!(
            "When Redis is unreachable at boot, the service reports not-ready ({}) and names {}, and still does {} s later.",
            negative.status,
            negative.body_names,
            negative.observe.as_secs_f64()
        ),
        format!(
            "a service instance whose Redis URL points at the closed port 127.0.0.1:{CLOSED_PORT}; its ready endpoint"
        ),
    );
    let preconditions = vec![
        Precondition::Launches {
            because: "it restarts the service with Redis pointed at a closed port".into(),
        },
        Precondition::ReadyHealthy,
    ];
    let mut unit = Unit::one(step, preconditions, instance_holds(scenario), Negative);
    unit.defers_ready = true;
    unit
}

struct Negative;

impl Exercise for Negative {
    fn run<'a>(&'a self, ctx: &'a mut StepContext<'_>, steps: &'a [PlannedStep]) -> StepFuture<'a> {
        Box::pin(negative(ctx, &steps[0]))
    }
}

async fn negative(ctx: &mut StepContext<'_>, planned: &PlannedStep) -> anyhow::Result<Ran> {
    let mut step = StepRecorder::new(ctx.masker, planned);
    let closed = format!("127.0.0.1:{CLOSED_PORT}");
    let closed_now = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(&closed),
    )
    .await
    .is_ok_and(|c| c.is_err());
    step.check(
        format!("{closed} refuses connections (so Redis is really unreachable)"),
        if closed_now {
            "connection refused"
        } else {
            "something accepted a connection"
        },
        closed_now,
    );
    let mut broken = ctx.bindings.clone();
    ctx.dependency("redis")
        .bind(&mut broken, "127.0.0.1", CLOSED_PORT);
    let label = "restart service with REDIS pointed at a closed port";
    let (service, startup) = launch(ctx, &mut step, label, &broken).await?;
    let up = step.check(
        "service starts and answers HTTP with Redis unreachable",
        startup_text(&startup),
        matches!(startup, Startup::Answering(_)),
    );
    let answers = match up {
        true => Some(observe(ctx, &service).await),
        false => None,
    };
    step.log(&service.log_text().await);
    let _ = service.stop().await;
    // Only now is what the gate saw known: the 503 means something only
    // from a service whose ready can be healthy.
    let gate = ctx.link.gate().await;
    let healthy = match gate {
        Some(gate) => {
            let facts = Facts {
                ready: gate.ready,
                ..ctx.mode.facts()
            };
            if let Err(unmet) = Precondition::ReadyHealthy.check(&facts) {
                let mut skipped = StepRecorder::new(ctx.masker, planned);
                skipped.unmet(unmet);
                return Ok(Ran::one(skipped.finish()));
            }
            gate.healthy
        }
        // Run on its own (no runner): the record of earlier steps.
        None => ctx.recorded.healthy_ready.clone(),
    };
    if let Some((first, again)) = answers {
        judge(ctx, &mut step, &first, &again, healthy.as_ref());
    }
    Ok(Ran::one(step.finish()))
}

/// Ask ready, then again after the observation window; gives both answers.
async fn observe(ctx: &StepContext<'_>, service: &RunningService) -> (HttpExchange, HttpExchange) {
    let first = ready(ctx, service).await;
    // A service that says 503 once and 200 a moment later is still
    // routing traffic to a broken instance.
    tokio::time::sleep(ctx.scenario.negative.observe).await;
    let again = ready(ctx, service).await;
    (first, again)
}

/// Ready must have answered as `[negative]` expects, named Redis, and
/// still answered so after the observation window.
fn judge(
    ctx: &StepContext<'_>,
    step: &mut StepRecorder<'_>,
    first: &HttpExchange,
    again: &HttpExchange,
    healthy: Option<&HttpExchange>,
) {
    let spec = &ctx.scenario.service;
    let negative = &ctx.scenario.negative;
    step.request(&format!("GET {}", spec.ready_path), first);
    step.check(
        format!("HTTP {}", negative.status),
        first.summary(),
        first.status == Some(negative.status),
    );
    // What the body says of the failure could have failed only if the
    // ready gate's healthy answer does not say it too.
    let pointers = discriminate::pointer_checks(step, first, healthy, &negative.expect);
    let named = discriminate::names_check(
        step,
        format!("body names {}", negative.body_names),
        first,
        healthy,
        std::slice::from_ref(&negative.body_names),
    );
    if pointers == 0 && !named {
        step.basis(format!(
            "the step stands on the status change 200 → {} alone",
            negative.status
        ));
    }
    let observe = negative.observe.as_secs_f64();
    step.request(
        &format!("GET {} again after {observe} s", spec.ready_path),
        again,
    );
    step.check(
        format!("still HTTP {} {observe} s later", negative.status),
        again.summary(),
        again.status == Some(negative.status),
    );
}

async fn ready(ctx: &StepContext<'_>, service: &RunningService) -> HttpExchange {
    let spec = &ctx.scenario.service;
    service
        .get(&ctx.probe, &spec.ready_path, spec.request_timeout)
        .await
}
