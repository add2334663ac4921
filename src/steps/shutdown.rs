//! Graceful shutdown: SIGTERM to a service instance gonogo started; it must
//! exit within the bound (seed 002: termination timeout enforcement, e.g.
//! 20 s) with an expected exit code. A service that ignores SIGTERM is
//! killed afterwards, so nothing is left running either way.

use std::time::Instant;

use super::observed::Observed;
use super::{
    Exercise, Ran, StepContext, StepFuture, StepRecorder, Unit, instance_holds, take_or_start,
};
use crate::kube;
use crate::plan::{PlannedStep, Precondition};
use crate::scenario::Scenario;

pub const ID: &str = "graceful-shutdown";
pub const TITLE: &str = "Graceful shutdown (SIGTERM)";

/// Graceful shutdown, when the scenario keeps it on: it signals an
/// instance gonogo started itself.
pub fn unit(scenario: &Scenario) -> Option<Unit> {
    let spec = &scenario.shutdown;
    if !spec.enabled {
        return None;
    }
    let codes: Vec<String> = spec.exit_codes.iter().map(i32::to_string).collect();
    let step = PlannedStep::new(
        ID,
        TITLE,
        format!(
            "On SIGTERM the service exits within {} s, with exit status {}.",
            spec.timeout.as_secs_f64(),
            codes.join(" or ")
        ),
        "a service instance gonogo started, sent SIGTERM",
    );
    // An instance that never answers HTTP cannot be shown to stop
    // gracefully; the ready gate, which saw that, carries the FAIL.
    let preconditions = vec![
        Precondition::Launches {
            because: "it sends SIGTERM to an instance it started".into(),
        },
        Precondition::Answers,
    ];
    let mut unit = Unit::one(step, preconditions, instance_holds(scenario), Shutdown);
    unit.takes_spare = true;
    Some(unit)
}

struct Shutdown;

impl Exercise for Shutdown {
    fn run<'a>(&'a self, ctx: &'a mut StepContext<'_>, steps: &'a [PlannedStep]) -> StepFuture<'a> {
        Box::pin(shutdown(ctx, &steps[0]))
    }
}

async fn shutdown(ctx: &mut StepContext<'_>, planned: &PlannedStep) -> anyhow::Result<Ran> {
    let spec = ctx.scenario.shutdown.clone();
    let mut step = StepRecorder::new(ctx.masker, planned);
    let what = "service answers HTTP before SIGTERM";
    let Some(held) = take_or_start(ctx, &mut step, what, "graceful shutdown").await? else {
        return Ok(Ran::one(step.finish()));
    };
    let (mut service, log_mark) = (held.service, held.log_mark);
    let service_spec = &ctx.scenario.service;
    // Let it reach steady state: one ready answer, pools open.
    let _ = service
        .get(
            &ctx.probe,
            &service_spec.ready_path,
            service_spec.request_timeout,
        )
        .await;
    ctx.detail(&format!(
        "SIGTERM to pid {}, waiting up to {} s",
        service.pid(),
        spec.timeout.as_secs_f64()
    ));
    let sent = Instant::now();
    service.signal(libc::SIGTERM);
    let exit = service.wait_exit_code(spec.timeout).await;
    let took = sent.elapsed();
    let observed = match exit {
        Some(143) => format!(
            "ended by the SIGTERM itself (status 143) after {} ms",
            took.as_millis()
        ),
        Some(code) if code > 128 => format!(
            "ended by signal {} (status {code}) after {} ms",
            code - 128,
            took.as_millis()
        ),
        Some(code) => format!("exited with code {code} after {} ms", took.as_millis()),
        None => format!(
            "still running {} s after SIGTERM; gonogo killed it",
            spec.timeout.as_secs_f64()
        ),
    };
    if exit.is_none() {
        service.signal_group(libc::SIGKILL);
    }
    let (log, _) = service.log_since(log_mark).await;
    let _ = service.stop().await;
    step.process(
        "kill -TERM <service pid>",
        "kill -TERM <pid of the service started above>",
        exit,
        &format!("gonogo: {observed}\n"),
        took,
    );
    step.check(
        format!("exits within {} s of SIGTERM", spec.timeout.as_secs_f64()),
        observed.clone(),
        exit.is_some(),
    );
    let codes: Vec<String> = spec.exit_codes.iter().map(i32::to_string).collect();
    step.check(
        format!("exit code is {}", codes.join(" or ")),
        match exit {
            Some(code) => format!("exit status {code}"),
            None => "did not exit".into(),
        },
        matches!(exit, Some(code) if spec.exit_codes.contains(&code)),
    );
    step.log(&log);
    let observed = match exit {
        Some(_) => kube::Shutdown::Exited { after: took },
        None => kube::Shutdown::StillRunning { waited: took },
    };
    Ok(Ran {
        observed: vec![Observed::Shutdown(observed)],
        ..Ran::one(step.finish())
    })
}
