//! Fail-fast: in strict mode the service must exit non-zero within the
//! deadline, without ever answering HTTP, when its configuration is missing
//! or wrong (`REDIS_URL` unset, `DATABASE_URL` unset, sqlite URL).
//!
//! Each case runs the service with fault proxies of its own in front of
//! every dependency, so what they accepted is that case's alone, even when
//! cases run side by side. Beside its checks, each case notes what the
//! service connected to before it exited, and whether its exit came from
//! a failed connection (see [`super::failed_connection`]): such a pass
//! depends on the machine, since a fallback like `localhost:6379` is
//! refused only where nothing listens there.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::failed_connection;
use super::{Exercise, Ran, StepContext, StepFuture, StepRecorder, Unit};
use crate::deps::Dependency;
use crate::deps::dependency::PROXY_HOST;
use crate::outcome::NoteKind;
use crate::plan::{Hold, PlannedStep, Precondition, Resource};
use crate::proxy::FaultProxy;
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
    Unit::one(step, preconditions, holds(scenario), FailFast)
}

/// Each case reaches the servers through proxies of its own, and needs no
/// schema (it must exit before using any dependency): it uses the servers
/// alone, so it runs beside the migrations, but never beside a server-wide
/// fault, which could make a service exit that would otherwise not.
fn holds(scenario: &Scenario) -> Vec<Hold> {
    crate::deps::dependency::keys(scenario)
        .into_iter()
        .map(|key| Hold::uses(Resource::Server(key)))
        .collect()
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
            let cases = &ctx.scenario.failfast.cases;
            for case in cases {
                ctx.detail(&format!("case: {}", case.name));
            }
            // The cases are independent (each has its own port and proxies
            // of its own): they run side by side, and are recorded in
            // their order.
            let shared: &StepContext<'_> = ctx;
            let seen =
                super::join_all(cases.iter().map(|case| observe(shared, case)).collect()).await;
            for (case, seen) in cases.iter().zip(seen) {
                record(ctx, &mut step, case, seen?);
            }
            Ok(Ran::one(step.finish()))
        })
    }
}

/// What one case's instance did.
struct Seen {
    /// `None` if it still ran at the deadline; `Some(None)` if a signal
    /// ended it.
    exit: Option<Option<i32>>,
    /// Its first HTTP answer, if any.
    answered: Option<String>,
    took: Duration,
    /// What it connected to, in words.
    connected: String,
    log: String,
    invocation: String,
}

/// Start the service with `case`'s configuration and watch it until it
/// exits or the deadline passes.
async fn observe(ctx: &StepContext<'_>, case: &FailFastCase) -> anyhow::Result<Seen> {
    let spec = &ctx.scenario.service;
    let deadline = ctx.scenario.failfast.deadline;
    let proxies = CaseProxies::start(ctx.deps.iter()).await?;
    let mut bindings = ctx.bindings_with_port(&ctx.bindings)?;
    proxies.bind(&mut bindings);
    let launch = ServiceLaunch::build(spec, &bindings, &ctx.extra_env, &case.unset, &case.set)?;
    let started = Instant::now();
    let mut service = RunningService::spawn(&launch)?;
    let (exit, answered) = watch(ctx, &mut service, deadline).await;
    let took = started.elapsed();
    let connected = proxies.finish(started).await;
    let log = service.log_text().await;
    let _ = service.stop().await;
    Ok(Seen {
        exit,
        answered,
        took,
        connected,
        log,
        invocation: launch.display(),
    })
}

/// Record what `case`'s instance did: it must have exited non-zero within
/// the deadline, never answering HTTP meanwhile.
fn record(ctx: &StepContext<'_>, step: &mut StepRecorder<'_>, case: &FailFastCase, seen: Seen) {
    let deadline = ctx.scenario.failfast.deadline;
    let Seen {
        exit,
        answered,
        took,
        connected,
        log,
        invocation,
    } = seen;
    let observed_exit = match exit {
        Some(Some(code)) => format!("exited with code {code} after {} ms", took.as_millis()),
        Some(None) => format!("killed by a signal after {} ms", took.as_millis()),
        None => format!(
            "still running after {} ms; gonogo stopped it",
            took.as_millis()
        ),
    };
    let ending = if exit.is_some() {
        "before it exited"
    } else {
        "before gonogo stopped it"
    };
    step.note(
        &case.name,
        NoteKind::Observed,
        &format!("{connected} {ending}"),
        None,
    );
    let exited_non_zero = matches!(exit, Some(Some(code)) if code != 0);
    if exited_non_zero && let Some(failed) = failed_connection::find(ctx.masker.mask(&log).as_str())
    {
        step.note(
            &case.name,
            NoteKind::DependsOnMachine,
            &format!(
                "this pass depends on the machine: the service exited after a failed connection ({}), not after a configuration check; a fallback such as localhost:6379 passes only where nothing listens there",
                failed.meaning
            ),
            Some(&failed.line),
        );
    }
    step.process(
        &format!("strict start with {}", case.name),
        &invocation,
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
        exited_non_zero || matches!(exit, Some(None)),
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

/// One fault proxy per dependency, for one case alone.
struct CaseProxies<'d> {
    all: Vec<(&'d Dependency, FaultProxy)>,
}

impl<'d> CaseProxies<'d> {
    /// A fresh proxy to each dependency's server.
    async fn start(deps: impl Iterator<Item = &'d Dependency>) -> anyhow::Result<CaseProxies<'d>> {
        let mut all = Vec::new();
        for dep in deps {
            let proxy = FaultProxy::start(&dep.key, dep.proxy.upstream())
                .await
                .with_context(|| format!("start a fail-fast proxy to {}", dep.key))?;
            all.push((dep, proxy));
        }
        Ok(CaseProxies { all })
    }

    /// Point every dependency's placeholders at this case's proxy.
    fn bind(&self, bindings: &mut crate::scenario::placeholders::Bindings) {
        for (dep, proxy) in &self.all {
            dep.bind(bindings, PROXY_HOST, proxy.local_addr().port());
        }
    }

    /// What the service connected to, counted from `started`, in words:
    /// "the service connected to Postgres (1 connection, 120 ms after
    /// start)", or "made no connection to any dependency"; then stop
    /// every proxy.
    async fn finish(self, started: Instant) -> String {
        let mut seen = Vec::new();
        for (dep, proxy) in self.all {
            let accepted = proxy.accepted();
            proxy.shutdown().await;
            if accepted.connections == 0 {
                continue;
            }
            let after = accepted
                .first_at
                .map(|at| at.saturating_duration_since(started).as_millis())
                .unwrap_or_default();
            seen.push(match accepted.connections {
                1 => format!("{} (1 connection, {after} ms after start)", dep.display),
                n => format!(
                    "{} ({n} connections, the first {after} ms after start)",
                    dep.display
                ),
            });
        }
        if seen.is_empty() {
            "the service made no connection to any dependency".into()
        } else {
            format!("the service connected to {}", seen.join(" and "))
        }
    }
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
