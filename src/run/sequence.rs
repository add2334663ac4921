//! The order of the proof's steps and how many there are.

use std::time::Duration;

use crate::error::Result;
use crate::outcome::{FaultTimeline, StepOutcome};
use crate::progress::Event;
use crate::scenario::Scenario;
use crate::steps::{self, Needs, StepContext};

/// The seed's four steps, before the runtime fault steps.
pub const BASE_STEPS: usize = 4;

/// Steps 1-4, then four fault steps per fault target.
pub fn step_count(scenario: &Scenario) -> usize {
    let extra = usize::from(scenario.latency.enabled)
        + usize::from(scenario.shutdown.enabled)
        + usize::from(scenario.metrics.is_some());
    let faults = if scenario.faults.enabled {
        4 * scenario.faults.targets.len()
    } else {
        1
    };
    BASE_STEPS + extra + faults
}

/// [`step_count`], less the fault steps target mode folds into one NOT RUN.
pub fn planned_steps(scenario: &Scenario, target: bool) -> usize {
    let count = step_count(scenario);
    if target && scenario.faults.enabled {
        count + 1 - 4 * scenario.faults.targets.len()
    } else {
        count
    }
}

pub type StepsRun = (Vec<StepOutcome>, Option<String>, Vec<FaultTimeline>);

pub async fn run_steps(ctx: &mut StepContext<'_>) -> Result<StepsRun> {
    let total = planned_steps(ctx.scenario, ctx.mode.provider().is_none());
    let mut outcomes = Vec::new();
    let mut version = None;
    for number in 1..=BASE_STEPS as u32 {
        let (id, title, needs) = match number {
            1 => (steps::migrate::ID, steps::migrate::TITLE, Needs::Database),
            2 => (steps::ready::ID, steps::ready::TITLE, Needs::Requests),
            3 => (steps::negative::ID, steps::negative::TITLE, Needs::Restart),
            _ => (steps::failfast::ID, steps::failfast::TITLE, Needs::Restart),
        };
        ctx.reporter.event(Event::StepStarted {
            number,
            total,
            title,
        });
        let outcome = match steps::ruled_out(ctx, number, id, title, needs) {
            Some(not_run) => not_run,
            None => match number {
                1 => steps::migrate(ctx, number).await,
                2 => {
                    let gate = steps::ready_gate(ctx, number).await?;
                    version = gate.version;
                    gate.outcome
                }
                3 => steps::negative(ctx, number).await?,
                _ => steps::failfast(ctx, number).await?,
            },
        };
        ctx.reporter.event(Event::StepFinished {
            number,
            total,
            title,
            status: outcome.status,
            took: Duration::from_millis(outcome.duration_ms),
            summary: outcome.summary.as_str(),
        });
        outcomes.push(outcome);
    }
    let mut timelines = Vec::new();
    let mut number = BASE_STEPS as u32 + 1;
    if ctx.scenario.latency.enabled {
        let title = steps::latency::title(ctx.scenario.latency.p95_ms);
        ctx.reporter.event(Event::StepStarted {
            number,
            total,
            title: &title,
        });
        let outcome =
            match steps::ruled_out(ctx, number, steps::latency::ID, &title, Needs::Requests) {
                Some(not_run) => not_run,
                None => steps::latency::latency(ctx, number).await?,
            };
        steps::faults::report(ctx, std::slice::from_ref(&outcome), total);
        outcomes.push(outcome);
        number += 1;
    }
    if ctx.scenario.shutdown.enabled {
        ctx.reporter.event(Event::StepStarted {
            number,
            total,
            title: steps::shutdown::TITLE,
        });
        let outcome = match steps::ruled_out(
            ctx,
            number,
            steps::shutdown::ID,
            steps::shutdown::TITLE,
            Needs::Restart,
        ) {
            Some(not_run) => not_run,
            None => steps::shutdown::shutdown(ctx, number).await?,
        };
        steps::faults::report(ctx, std::slice::from_ref(&outcome), total);
        outcomes.push(outcome);
        number += 1;
    }
    if let Some(metrics) = ctx.scenario.metrics.clone() {
        ctx.reporter.event(Event::StepStarted {
            number,
            total,
            title: steps::metrics::TITLE,
        });
        let ruled_out = steps::ruled_out(
            ctx,
            number,
            steps::metrics::ID,
            steps::metrics::TITLE,
            Needs::Faults,
        );
        let outcome = match ruled_out {
            Some(not_run) => not_run,
            None => {
                let target = ctx.dependency(&metrics.fault);
                let (outcome, timeline) = steps::metrics::metrics(ctx, number, target).await?;
                timelines.push(timeline);
                outcome
            }
        };
        steps::faults::report(ctx, std::slice::from_ref(&outcome), total);
        outcomes.push(outcome);
        number += 1;
    }
    let folded = ctx.scenario.faults.enabled.then(|| {
        steps::ruled_out(
            ctx,
            number,
            "runtime-faults",
            "Runtime dependency faults",
            Needs::Faults,
        )
    });
    if let Some(Some(not_run)) = folded {
        steps::faults::report(ctx, std::slice::from_ref(&not_run), total);
        outcomes.push(not_run);
        return Ok((outcomes, version, timelines));
    }
    if !ctx.scenario.faults.enabled {
        let mut step = steps::StepRecorder::new(
            ctx.masker,
            number,
            "runtime-faults",
            "Runtime dependency faults",
        );
        step.not_run("runtime fault steps are disabled in the scenario ([faults] enabled = false)");
        outcomes.push(step.finish());
        return Ok((outcomes, version, timelines));
    }
    for key in ctx.scenario.faults.targets.clone() {
        let target = ctx.dependency(&key);
        ctx.reporter.event(Event::StepStarted {
            number,
            total,
            title: &format!(
                "{} runtime faults (steps {number}-{})",
                target.display,
                number + 3
            ),
        });
        let (group, timeline) = steps::faults::fault_steps(ctx, number, target).await?;
        steps::faults::report(ctx, &group, total);
        outcomes.extend(group);
        timelines.push(timeline);
        number += 4;
    }
    Ok((outcomes, version, timelines))
}
