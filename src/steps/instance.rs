//! What the steps do with service instances: start one and wait for it to
//! answer HTTP, ask ready until it answers a status, and check a response
//! against the scenario's expectations. Each step that starts an instance
//! records the start as an action with the real time to its first answer.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Spare, StepContext, StepRecorder};
use crate::http::HttpExchange;
use crate::outcome::NoteKind;
use crate::scenario::BodyExpectation;
use crate::scenario::placeholders::Bindings;
use crate::service::{RunningService, ServiceLaunch, Startup};

/// How often ready is asked while waiting for a status.
const POLL: Duration = Duration::from_millis(100);

/// Start one instance with `bindings` (plus a fresh port), record the
/// start as the action `label` with how long it took to answer HTTP (or to
/// give up), and give the instance and how its start ended.
pub async fn launch(
    ctx: &mut StepContext<'_>,
    step: &mut StepRecorder<'_>,
    label: &str,
    bindings: &Bindings,
) -> anyhow::Result<(RunningService, Startup)> {
    let spec = &ctx.scenario.service;
    let bindings = ctx.bindings_with_port(bindings)?;
    let launch = ServiceLaunch::build(spec, &bindings, &ctx.extra_env, &[], &BTreeMap::new())?;
    ctx.detail(&format!("{label} on port {}", launch.port));
    let mut service = RunningService::spawn(&launch)?;
    let startup = service
        .wait_answering(&ctx.probe, &spec.live_path, spec.startup_timeout)
        .await;
    step.process(
        label,
        &launch.display(),
        None,
        &startup_text(&startup),
        startup.took(),
    );
    Ok((service, startup))
}

/// Start one instance of the service on healthy dependencies and wait for
/// it to answer HTTP. When it does not, records a failed check (`what`)
/// with its log and gives `None`; the step then finishes as a FAIL.
pub async fn start_healthy(
    ctx: &mut StepContext<'_>,
    step: &mut StepRecorder<'_>,
    what: &str,
) -> anyhow::Result<Option<RunningService>> {
    let bindings = ctx.bindings.clone();
    let (service, startup) = launch(ctx, step, "start service", &bindings).await?;
    if matches!(startup, Startup::Answering(_)) {
        return Ok(Some(service));
    }
    step.check(what, startup_text(&startup), false);
    step.log(&service.log_text().await);
    let _ = service.stop().await;
    Ok(None)
}

/// A healthy instance for the step `user` (e.g. `latency measurement`):
/// the one an earlier step handed on (see [`super::Link::take`]), recorded
/// as an action that says whose it is, or else a new one
/// ([`start_healthy`], which records the FAIL `what` when it does not
/// answer). Its `log_mark` is where the step's share of its log starts:
/// the lines the service printed since the last step recorded its log,
/// idle time included.
pub async fn take_or_start(
    ctx: &mut StepContext<'_>,
    step: &mut StepRecorder<'_>,
    what: &str,
    user: &str,
) -> anyhow::Result<Option<Spare>> {
    if let Some(mut spare) = ctx.link.take() {
        if let Some(code) = spare.service.exited() {
            exited_while_idle(step, &spare, code).await;
            return start_anew(ctx, step, what, user).await;
        }
        let (pid, port) = (spare.service.pid(), spare.service.port);
        let mut history = format!("started by the {}", spare.started_by);
        if !spare.used_by.is_empty() {
            history.push_str(&format!(
                ", then used by the {}",
                spare.used_by.join(", then the ")
            ));
        }
        let up = spare.service.started().elapsed();
        ctx.detail(&format!(
            "the {}'s instance on port {port}, {history}",
            spare.started_by
        ));
        step.process(
            &format!("use the instance the {} started", spare.started_by),
            &format!("# the running service, pid {pid}, port {port}"),
            None,
            &format!(
                "running for {} ms, {history}; healthy when handed on",
                up.as_millis()
            ),
            Duration::ZERO,
        );
        spare.used_by.push(user.to_string());
        return Ok(Some(spare));
    }
    start_anew(ctx, step, what, user).await
}

/// A healthy instance handed on exited by itself before the step took it:
/// a fact worth an approver's eye (no claim covers a service that dies
/// while idle), and its last lines, which no step recorded yet, are
/// checked for credentials like any other output.
async fn exited_while_idle(step: &mut StepRecorder<'_>, spare: &Spare, code: Option<i32>) {
    let (log, _) = spare.service.log_since(spare.log_mark).await;
    step.log(&log);
    let last: Vec<&str> = log.lines().rev().take(3).collect();
    let last: Vec<&str> = last.into_iter().rev().collect();
    step.note(
        &format!("the {}'s instance", spare.started_by),
        NoteKind::Observed,
        &format!(
            "it was healthy when the {} handed it on, then exited by itself ({}) before this step took it, with no step asking anything of it (found {} ms after its start); this step started its own",
            spare.started_by,
            code.map_or("killed by a signal".into(), |c| format!("exit code {c}")),
            spare.service.started().elapsed().as_millis()
        ),
        (!last.is_empty()).then(|| last.join("\n")).as_deref(),
    );
}

/// A new instance for `user` ([`start_healthy`]).
async fn start_anew(
    ctx: &mut StepContext<'_>,
    step: &mut StepRecorder<'_>,
    what: &str,
    user: &str,
) -> anyhow::Result<Option<Spare>> {
    let Some(service) = start_healthy(ctx, step, what).await? else {
        return Ok(None);
    };
    Ok(Some(Spare {
        service,
        started_by: user.to_string(),
        used_by: Vec::new(),
        log_mark: 0,
    }))
}

/// Ask ready until it answers `status` or `window` passes; gives how long
/// that took (if it did) and the last exchange.
pub async fn until_ready_status(
    ctx: &StepContext<'_>,
    service: &RunningService,
    status: u16,
    window: Duration,
) -> (Option<Duration>, HttpExchange) {
    let spec = &ctx.scenario.service;
    let started = Instant::now();
    loop {
        let exchange = service
            .get(&ctx.probe, &spec.ready_path, spec.request_timeout)
            .await;
        if exchange.status == Some(status) {
            return (Some(started.elapsed()), exchange);
        }
        if started.elapsed() >= window {
            return (None, exchange);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How a start ended, in words.
pub fn startup_text(startup: &Startup) -> String {
    match startup {
        Startup::Answering(d) => format!("answered HTTP after {} ms", d.as_millis()),
        Startup::Exited { code, after } => format!(
            "exited with {} after {} ms, before answering HTTP",
            code.map_or("a signal".into(), |c| format!("code {c}")),
            after.as_millis()
        ),
        Startup::TimedOut(d) => format!("did not answer HTTP within {} ms", d.as_millis()),
        Startup::Foreign { owner, .. } => owner.to_string(),
    }
}

/// Record status and body expectations for one response.
pub fn expect_response(
    step: &mut StepRecorder<'_>,
    exchange: &HttpExchange,
    status: u16,
    expect: &[BodyExpectation],
) {
    step.check(
        format!("HTTP {status}"),
        exchange.summary(),
        exchange.status == Some(status),
    );
    for e in expect {
        let (value, shown) = pointer_text(exchange, &e.pointer);
        step.check(
            format!("{} = {}", e.pointer, e.equals),
            shown,
            value.as_ref() == Some(&e.equals),
        );
    }
}

/// Whether `exchange` answered `status` with every expectation met.
pub fn meets(exchange: &HttpExchange, status: u16, expect: &[BodyExpectation]) -> bool {
    exchange.status == Some(status)
        && expect
            .iter()
            .all(|e| pointer_text(exchange, &e.pointer).0.as_ref() == Some(&e.equals))
}

/// The value at a JSON pointer of the response body, and what to show for
/// it: the value, or why there is none.
pub fn pointer_text(exchange: &HttpExchange, pointer: &str) -> (Option<serde_json::Value>, String) {
    if exchange.status.is_none() {
        return (None, exchange.summary());
    }
    match exchange.json() {
        None => (None, "body is not JSON".into()),
        Some(json) => match json.pointer(pointer) {
            Some(value) => (Some(value.clone()), format!("{pointer} = {value}")),
            None => (None, format!("{pointer} is missing")),
        },
    }
}
