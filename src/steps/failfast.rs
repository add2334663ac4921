//! Step 4, fail-fast: in strict mode the service must exit non-zero within
//! the deadline, without ever answering HTTP, when its configuration is
//! missing or wrong (`REDIS_URL` unset, `DATABASE_URL` unset, sqlite URL).

use std::time::{Duration, Instant};

use super::{StepContext, StepOutcome, StepRecorder};
use crate::service::{RunningService, ServiceLaunch};

pub const ID: &str = "fail-fast";
pub const TITLE: &str = "Fail-fast (strict mode, no listener)";

/// How often gonogo knocks on the port while waiting for the exit.
const KNOCK: Duration = Duration::from_millis(50);

pub async fn failfast(ctx: &mut StepContext<'_>, number: u32) -> anyhow::Result<StepOutcome> {
    let mut step = StepRecorder::new(ctx.masker, number, ID, TITLE);
    let spec = &ctx.scenario.service;
    let deadline = ctx.scenario.failfast.deadline;
    if ctx.scenario.failfast.cases.is_empty() {
        step.not_run("no fail-fast cases: no service variable uses {{database_url}} or {{redis_url}}, and the scenario lists no [[failfast.case]]");
        return Ok(step.finish());
    }
    for case in &ctx.scenario.failfast.cases {
        let bindings = ctx.bindings_with_port(&ctx.bindings)?;
        let launch = ServiceLaunch::build(spec, &bindings, &ctx.extra_env, &case.unset, &case.set)?;
        ctx.detail(&format!("case: {}", case.name));
        let started = Instant::now();
        let mut service = RunningService::spawn(&launch)?;
        let mut answered: Option<String> = None;
        let exit = loop {
            if let Some(code) = service.exited() {
                break Some(code);
            }
            if started.elapsed() >= deadline {
                break None;
            }
            if answered.is_none() {
                let knock = service
                    .get(&ctx.probe, &spec.ready_path, Duration::from_millis(200))
                    .await;
                if knock.status.is_some() {
                    answered = Some(match crate::sockets::check(service.port, service.pid()) {
                        crate::sockets::Ownership::Owned => knock.summary(),
                        owner => format!("{}, so gonogo cannot tell what the service does", owner),
                    });
                }
            }
            if let Some(code) = service.wait_exit(KNOCK).await {
                break Some(code);
            }
        };
        let took = started.elapsed();
        let observed_exit = match exit {
            Some(Some(code)) => format!("exited with code {code} after {} ms", took.as_millis()),
            Some(None) => format!("killed by a signal after {} ms", took.as_millis()),
            None => format!(
                "still running after {} ms; gonogo stopped it",
                took.as_millis()
            ),
        };
        let log = service.log_text().await;
        let _ = service.stop().await;
        step.process(
            &format!("strict start with {}", case.name),
            &launch.display(),
            exit.flatten(),
            &format!("{log}gonogo: {observed_exit}\n"),
            took,
        );
        step.check(
            format!(
                "{}: exits non-zero within {} s",
                case.name,
                deadline.as_secs_f64()
            ),
            observed_exit.clone(),
            matches!(exit, Some(Some(code)) if code != 0) || matches!(exit, Some(None)),
        );
        step.check(
            format!("{}: never answers HTTP", case.name),
            answered
                .as_ref()
                .map_or("no HTTP answer seen".to_string(), |a| {
                    format!("answered: {a}")
                }),
            answered.is_none(),
        );
    }
    Ok(step.finish())
}
