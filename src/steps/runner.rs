//! The one loop over the plan: for each unit, skip it when the scenario
//! declares all its steps not applicable (NOT APPLICABLE, with the reason);
//! else check its preconditions against what is known so far, and run it
//! when they hold or record each of its steps as NOT RUN with the unmet
//! precondition when not; report every step as it finishes, numbered from
//! the plan.

use std::time::Duration;

use super::{Plan, Ran, StepContext, StepRecorder, Unit};
use crate::deps::watch::Mark;
use crate::outcome::{DependencyView, Excerpt, FaultTimeline, StepOutcome, StepStatus};
use crate::plan::{self, Ready};
use crate::progress::Event;
use crate::scenario::NotApplicable;

/// What the whole plan gave.
#[derive(Debug, Default)]
pub struct Proof {
    /// One per planned step, in plan order.
    pub outcomes: Vec<StepOutcome>,
    /// One per unit that injected faults and recorded any event.
    pub timelines: Vec<FaultTimeline>,
    /// The version endpoint's body, when the ready gate captured it.
    pub version: Option<String>,
}

/// Run `plan`. `shown` gives the status the live progress shows for a
/// finished step (WAIVED where a valid waiver covers it).
pub async fn run(
    plan: &Plan,
    ctx: &mut StepContext<'_>,
    shown: &dyn Fn(&StepOutcome) -> StepStatus,
) -> anyhow::Result<Proof> {
    let total = plan.len();
    let mut facts = ctx.mode.facts();
    let mut proof = Proof::default();
    for unit in plan.units() {
        let declared: Vec<Option<&NotApplicable>> = unit
            .steps
            .iter()
            .map(|s| ctx.scenario.not_applicable(&s.id))
            .collect();
        let mut ran = if declared.iter().all(Option::is_some) {
            skip(ctx, unit, |recorder, i| {
                if let Some(n) = declared[i] {
                    recorder.not_applicable(&n.reason);
                }
            })
        } else if let Some(unmet) = plan::first_unmet(&unit.preconditions, &facts) {
            skip(ctx, unit, |recorder, _| recorder.unmet(unmet.clone()))
        } else {
            let mark = ctx.deps.watch().mark().await;
            let mut ran = run_unit(ctx, unit, total).await?;
            attach_views(ctx, &mark, &mut ran.outcomes).await;
            ran
        };
        // A step declared not applicable inside a unit that ran anyway
        // (it shares an instance with steps that apply) is not judged.
        for ((outcome, step), declared) in ran.outcomes.iter_mut().zip(&unit.steps).zip(&declared) {
            if let Some(n) = declared {
                let mut recorder = StepRecorder::new(ctx.masker, step);
                recorder.not_applicable(&n.reason);
                *outcome = recorder.finish();
            }
        }
        for observed in std::mem::take(&mut ran.observed) {
            if let Some(kind) = observed.kind()
                && !facts.observed.contains(&kind)
            {
                facts.observed.push(kind);
            }
            ctx.recorded.absorb(observed);
        }
        facts
            .finished
            .extend(ran.outcomes.iter().map(|o| plan::Finished {
                id: o.id.clone(),
                status: o.status.label().to_string(),
                summary: o.summary.to_string(),
            }));
        if unit.establishes_ready {
            facts.ready = ran.ready.clone().unwrap_or_else(|| {
                Ready::Unknown(
                    ran.outcomes
                        .first()
                        .map_or(String::new(), |o| o.summary.to_string()),
                )
            });
        }
        for outcome in &ran.outcomes {
            ctx.reporter.event(Event::StepFinished {
                number: outcome.number,
                total,
                title: &outcome.title,
                status: shown(outcome),
                took: Duration::from_millis(outcome.duration_ms),
                summary: outcome.summary.as_str(),
            });
        }
        proof.outcomes.extend(ran.outcomes);
        proof
            .timelines
            .extend(ran.timeline.filter(|t| !t.events.is_empty()));
        proof.version = proof.version.or(ran.version);
    }
    Ok(proof)
}

/// Run one unit whose preconditions hold.
async fn run_unit(ctx: &mut StepContext<'_>, unit: &Unit, total: usize) -> anyhow::Result<Ran> {
    let (first, last) = match (unit.steps.first(), unit.steps.last()) {
        (Some(first), Some(last)) => (first.number, last.number),
        _ => anyhow::bail!("the plan has a unit without steps: {}", unit.label),
    };
    let title = if first == last {
        unit.label.clone()
    } else {
        format!("{} (steps {first}-{last})", unit.label)
    };
    ctx.reporter.event(Event::StepStarted {
        number: first,
        total,
        title: &title,
    });
    let ran = unit.exercise.run(ctx, &unit.steps).await?;
    let ids: Vec<&str> = ran.outcomes.iter().map(|o| o.id.as_str()).collect();
    let planned: Vec<&str> = unit.steps.iter().map(|s| s.id.as_str()).collect();
    anyhow::ensure!(
        ids == planned,
        "{} gave outcomes for {ids:?}, not for its planned steps {planned:?}",
        unit.label
    );
    Ok(ran)
}

/// What the dependencies' servers saw during the unit, on each of its
/// steps that failed or did not run: the facts an engineer needs to act.
async fn attach_views(ctx: &StepContext<'_>, mark: &Mark, outcomes: &mut [StepOutcome]) {
    let needs = |o: &StepOutcome| matches!(o.status, StepStatus::Fail | StepStatus::NotRun);
    if ctx.deps.watch().is_empty() || !outcomes.iter().any(needs) {
        return;
    }
    let views: Vec<DependencyView> = ctx
        .deps
        .watch()
        .since(mark)
        .await
        .into_iter()
        .map(|seen| DependencyView {
            dependency: seen.dependency.to_string(),
            source: seen.source.to_string(),
            text: Excerpt::of(ctx.masker, &seen.text),
        })
        .collect();
    for outcome in outcomes.iter_mut().filter(|o| needs(o)) {
        outcome.dependency_views = views.clone();
    }
}

/// Every step of `unit` recorded without running: `why` marks the
/// recorder of the `i`th step NOT RUN or NOT APPLICABLE.
fn skip(ctx: &StepContext<'_>, unit: &Unit, why: impl Fn(&mut StepRecorder<'_>, usize)) -> Ran {
    let outcomes = unit
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let mut recorder = StepRecorder::new(ctx.masker, step);
            why(&mut recorder, i);
            recorder.finish()
        })
        .collect();
    Ran {
        outcomes,
        ..Ran::default()
    }
}
