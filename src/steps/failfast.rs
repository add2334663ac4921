//! Fail-fast: in strict mode the service must exit non-zero within the
//! deadline, without ever answering HTTP, when its configuration is missing
//! or wrong (`REDIS_URL` unset, `DATABASE_URL` unset, sqlite URL).

use std::time::{Duration, Instant};

use super::{Exercise, Ran, StepContext, StepFuture, StepRecorder, Unit, instance_holds};
use crate::plan::{PlannedStep, Precondition};
use crate::scenario::{FailFastCase, Scenario};
use crate::service::{RunningService, ServiceLaunch};

pub const ID: &str = "fail-fast";
pub const TITLE: &str = "Fail-fast (strict mode, no listener)";

/// How often gonogo knocks on the port while waiting for the exit.
const KNOCK: Duration = Duration::from_millis(50);

/// Fail-fast: it starts the service itself, once per case, and needs at
/// least one case.
pub fn unit(scenario: &Scenario) -> Unit {
    let step = PlannedStep::new(
        ID,
        TITLE,
        format!(
            "In strict mode, with its configuration missing or wrong, the service exits non-zero within {} s without ever answering HTTP.",
            scenario.failfast.deadline.as_secs_f64()
        ),
        "one strict-mode service instance per fail-fast case, each with a variable unset or replaced",
    );
    let preconditions = vec![
        Precondition::Launches {
            because: "it starts the service in strict mode with its configuration missing".into(),
        },
        Precondition::Configured {
            needs: "fail-fast cases".into(),
            unmet: no_cases(scenario),
        },
    ];
    Unit::one(step, preconditions, instance_holds(scenario), FailFast)
}

/// Why there is no case to run, when there is none.
fn no_cases(scenario: &Scenario) -> Option<String> {
    let failfast = &scenario.failfast;
    if !failfast.cases.is_empty() {
        return None;
    }
    Some(if failfast.explicit {
        "the scenario's [failfast] lists no case".into()
    } else {
        "no default case applies: no service variable carries Postgres or Redis (none uses {{database_url}}, {{redis_url}}, {{database_host}} or {{redis_host}}), and the scenario lists no [[failfast.case]]".into()
    })
}

struct FailFast;

impl Exercise for FailFast {
    fn run<'a>(&'a self, ctx: &'a mut StepContext<'_>, steps: &'a [PlannedStep]) -> StepFuture<'a> {
        Box::pin(async move {
            let mut step = StepRecorder::new(ctx.masker, &steps[0]);
            for case in &ctx.scenario.failfast.cases {
                run_case(ctx, &mut step, case).await?;
            }
            Ok(Ran::one(step.finish()))
        })
    }
}

/// Start the service with `case`'s configuration and watch it: it must exit
/// non-zero within the deadline, never answering HTTP meanwhile.
async fn run_case(
    ctx: &mut StepContext<'_>,
    step: &mut StepRecorder<'_>,
    case: &FailFastCase,
) -> anyhow::Result<()> {
    let spec = &ctx.scenario.service;
    let deadline = ctx.scenario.failfast.deadline;
    let bindings = ctx.bindings_with_port(&ctx.bindings)?;
    let launch = ServiceLaunch::build(spec, &bindings, &ctx.extra_env, &case.unset, &case.set)?;
    ctx.detail(&format!("case: {}", case.name));
    let started = Instant::now();
    let mut service = RunningService::spawn(&launch)?;
    let (exit, answered) = watch(ctx, &mut service, deadline).await;
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
    Ok(())
}

/// Knock on the port until the service exits or `deadline` passes; gives
/// its exit (`None` if it still ran; `Some(None)` if a signal ended it) and
/// its first HTTP answer, if any.
async fn watch(
    ctx: &StepContext<'_>,
    service: &mut RunningService,
    deadline: Duration,
) -> (Option<Option<i32>>, Option<String>) {
    let started = Instant::now();
    let mut answered: Option<String> = None;
    loop {
        if let Some(code) = service.exited() {
            return (Some(code), answered);
        }
        if started.elapsed() >= deadline {
            return (None, answered);
        }
        if answered.is_none() {
            let knock = service
                .get(
                    &ctx.probe,
                    &ctx.scenario.service.ready_path,
                    Duration::from_millis(200),
                )
                .await;
            if knock.status.is_some() {
                answered = Some(match crate::sockets::check(service.port, service.pid()) {
                    crate::sockets::Ownership::Owned => knock.summary(),
                    owner => format!("{}, so gonogo cannot tell what the service does", owner),
                });
            }
        }
        if let Some(code) = service.wait_exit(KNOCK).await {
            return (Some(code), answered);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn reason(extra: &str) -> Option<String> {
        let source =
            format!("[service]\ncommand = [\"svc\"]\n\n[service.env]\nMODE = \"strict\"\n{extra}");
        let scenario = crate::scenario::load_str(Path::new("/tmp/s.toml"), &source).unwrap();
        super::no_cases(&scenario)
    }

    #[test]
    fn the_reason_says_whether_the_defaults_or_the_scenario_gave_no_case() {
        let defaults = reason("").unwrap();
        assert!(
            defaults.starts_with("no default case applies"),
            "{defaults}"
        );
        assert!(defaults.contains("{{database_host}}"), "{defaults}");
        let listed = reason("\n[failfast]\ncase = []\n").unwrap();
        assert_eq!(listed, "the scenario's [failfast] lists no case");
    }
}
