//! The one loop over the plan. A unit starts once every earlier unit it
//! conflicts with (see [`crate::plan::conflicts`]) has finished, and, when
//! a precondition of it reads the ready gate's outcome, once the gate has
//! finished; units that do not conflict run side by side, and latency,
//! which holds the machine, runs alone. [`Schedule::Serial`] runs one unit
//! after another instead (`--serial`).
//!
//! When a unit starts: it is skipped when the scenario declares all its
//! steps not applicable (NOT APPLICABLE, with the reason); else its
//! preconditions are checked against what is known so far, and it runs
//! when they hold or each of its steps is NOT RUN with the unmet
//! precondition when not. Each unit reports through its own buffer, and
//! progress reaches the terminal in plan order (see [`super::ordered`]).
//!
//! The observations units give (see [`super::observed`]) are folded into
//! one record as each unit finishes; a unit that reads them (the
//! conformance steps) starts only once every earlier unit has finished,
//! and gets its own copy of the record as it stands then.
//!
//! Through its [`Link`] a running unit may release its holds before it
//! finishes (the migration gate, once the migrations are applied), wait
//! for the ready gate's verdict itself (a unit that [`Unit::defers_ready`]
//! starts beside the gate), and hand on a healthy instance; the runner
//! stops a handed-on instance once every unit that [`Unit::takes_spare`]
//! has finished.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::link::{Gate, Link, Shared};
use super::observed::Recorded;
use super::ordered::Ordered;
use super::{Mode, Plan, Ran, StepContext, StepRecorder, Unit};
use crate::deps::Dependencies;
use crate::deps::watch::{DependencyWatch, Mark};
use crate::http::Probe;
use crate::mask::Masker;
use crate::outcome::{DependencyView, Excerpt, FaultTimeline, StepOutcome, StepStatus};
use crate::plan::{self, Facts, Ready};
use crate::progress::{Event, Reporter, StepEnd};
use crate::scenario::placeholders::Bindings;
use crate::scenario::{NotApplicable, Scenario};

/// What the whole plan gave.
#[derive(Debug, Default)]
pub struct Proof {
    /// One per planned step, in plan order.
    pub outcomes: Vec<StepOutcome>,
    /// One per unit that injected faults and recorded any event, in plan
    /// order.
    pub timelines: Vec<FaultTimeline>,
    /// The version endpoint's body, when the ready gate captured it.
    pub version: Option<String>,
}

/// How the runner orders the units of a plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Schedule {
    /// Units whose holds do not conflict run at the same time.
    #[default]
    Concurrent,
    /// One unit after another, in plan order (`--serial`, for debugging).
    Serial,
}

/// A running unit: its place in the plan and what it will give.
type Running<'p> = (
    usize,
    Pin<Box<dyn Future<Output = anyhow::Result<Ran>> + 'p>>,
);

/// Work the runner does beside the units: stopping an instance no unit
/// will take.
type Chore = Pin<Box<dyn Future<Output = ()>>>;

/// Run `plan` with `ctx` as every unit's template (each unit gets its own
/// context and progress buffer). `shown` gives the status the live
/// progress shows for a finished step (WAIVED where a valid waiver covers
/// it).
pub async fn run(
    plan: &Plan,
    ctx: &mut StepContext<'_>,
    shown: &dyn Fn(&StepOutcome) -> StepStatus,
    schedule: Schedule,
) -> anyhow::Result<Proof> {
    let units = plan.units();
    let StepContext {
        scenario,
        masker,
        probe,
        bindings,
        extra_env,
        reporter,
        mode,
        deps,
        recorded,
        link: _,
    } = ctx;
    let ordered = Ordered::new(&mut **reporter, units.len());
    let shared = Shared::new();
    let template = Template {
        scenario,
        masker,
        probe,
        bindings,
        extra_env,
        mode,
        deps,
        ordered: &ordered,
        total: plan.len(),
        units,
        windows: RefCell::new(vec![None; units.len()]),
        shared: shared.clone(),
        chores: RefCell::new(Vec::new()),
    };
    let mut facts = mode.facts();
    let mut gave: Vec<Option<Ran>> = units.iter().map(|_| None).collect();
    let mut running: Vec<Running<'_>> = Vec::new();
    let mut releases = 0;
    loop {
        let mut next = 0;
        while let Some(index) = template.startable(&gave, &running, schedule, next) {
            next = index + 1;
            match template.decide(&units[index], &facts) {
                Some(skipped) => {
                    let done = Done {
                        facts: &mut facts,
                        recorded,
                        gave: &mut gave,
                    };
                    template.finish(index, &units[index], skipped, done, shown);
                    // A skipped ready gate changes the facts: look again.
                    next = 0;
                }
                None => {
                    let unit = template.run_unit(index, &units[index], recorded.clone());
                    running.push((index, Box::pin(unit)));
                }
            }
        }
        if running.is_empty() && template.chores.borrow().is_empty() {
            break;
        }
        let event = next_event(&mut running, &template.chores, &shared, releases).await;
        releases = shared.releases();
        let Some((at, result)) = event else {
            continue;
        };
        let (index, _) = running.swap_remove(at);
        let done = Done {
            facts: &mut facts,
            recorded,
            gave: &mut gave,
        };
        template.finish(index, &units[index], result?, done, shown);
    }
    template.stop_kept().await;
    assemble(units, gave)
}

/// Wait until a running unit finishes (its place in `running`, and what it
/// gave), or one releases its holds or a chore is done (`None`: look again
/// at what may start), doing the chores meanwhile.
async fn next_event(
    running: &mut [Running<'_>],
    chores: &RefCell<Vec<Chore>>,
    shared: &Shared,
    releases: usize,
) -> Option<(usize, anyhow::Result<Ran>)> {
    poll_fn(|cx| {
        let mut chores = chores.borrow_mut();
        let before = chores.len();
        chores.retain_mut(|chore| chore.as_mut().poll(cx).is_pending());
        for (at, (_, unit)) in running.iter_mut().enumerate() {
            if let Poll::Ready(result) = unit.as_mut().poll(cx) {
                return Poll::Ready(Some((at, result)));
            }
        }
        match shared.releases() > releases || chores.len() < before {
            true => Poll::Ready(None),
            false => Poll::Pending,
        }
    })
    .await
}

/// Stopping an instance handed on that no unit will take.
fn stop_spare(spare: super::Spare) -> Chore {
    Box::pin(async move {
        let _ = spare.service.stop().await;
    })
}

/// The proof from what each unit gave, in plan order.
fn assemble(units: &[Unit], gave: Vec<Option<Ran>>) -> anyhow::Result<Proof> {
    let mut proof = Proof::default();
    for (unit, ran) in units.iter().zip(gave) {
        let Some(ran) = ran else {
            anyhow::bail!("the runner never started {}", unit.label);
        };
        proof.outcomes.extend(ran.outcomes);
        proof
            .timelines
            .extend(ran.timeline.filter(|t| !t.events.is_empty()));
        proof.version = proof.version.or(ran.version);
    }
    Ok(proof)
}

/// The first unit from `from` on, in plan order, that has not started and
/// may start now. An earlier unit that `released` its holds still
/// counts as unfinished for what it establishes (the gate's verdict,
/// observations), but conflicts with nothing. While an instance is kept
/// for a later unit (or being stopped), it holds what the unit that
/// started it held: a unit that conflicts with that (a server-wide fault)
/// waits, unless it is one that takes the instance.
fn startable(
    units: &[Unit],
    gave: &[Option<Ran>],
    running: &[Running<'_>],
    released: &dyn Fn(usize) -> bool,
    kept: Option<&[plan::Hold]>,
    schedule: Schedule,
    from: usize,
) -> Option<usize> {
    let started = |i: usize| gave[i].is_some() || running.iter().any(|(r, _)| *r == i);
    let unfinished = |i: usize| gave[i].is_none();
    (from..units.len()).filter(|&i| !started(i)).find(|&later| {
        let unit = &units[later];
        if kept.is_some_and(|kept| !unit.takes_spare && plan::conflicts(kept, &unit.holds)) {
            return false;
        }
        match schedule {
            Schedule::Serial => running.is_empty() && (0..later).all(|i| !unfinished(i)),
            Schedule::Concurrent => !(0..later).filter(|&i| unfinished(i)).any(|i| {
                let earlier = &units[i];
                if unit.reads_observations() {
                    return true;
                }
                let reads_its_facts = earlier.establishes_ready && unit.reads_ready();
                let conflicts = !released(i) && plan::conflicts(&earlier.holds, &unit.holds);
                reads_its_facts || conflicts
            }),
        }
    })
}

/// When a unit started and, once it has, ended.
type Window = (Instant, Option<Instant>);

/// Where the runner keeps what finished units gave.
struct Done<'d> {
    facts: &'d mut Facts,
    recorded: &'d mut Recorded,
    gave: &'d mut [Option<Ran>],
}

/// What every unit's own context is made from: the run's context, but for
/// its reporter, which is shared in plan order.
struct Template<'t, 'r> {
    scenario: &'t Scenario,
    masker: &'t Masker,
    probe: &'t Probe,
    bindings: &'t Bindings,
    extra_env: &'t [(String, String)],
    mode: &'t Mode,
    deps: &'t Dependencies,
    ordered: &'t Ordered<'r>,
    total: usize,
    units: &'t [Unit],
    /// When each unit that ran started and (once done) ended.
    windows: RefCell<Vec<Option<Window>>>,
    /// What every unit's link shares with the runner.
    shared: Rc<Shared>,
    /// Stopping instances no unit will take.
    chores: RefCell<Vec<Chore>>,
}

impl Template<'_, '_> {
    /// What `unit` gives without running: NOT APPLICABLE when the scenario
    /// declares all its steps so, NOT RUN when a precondition does not
    /// hold; `None` when it runs.
    fn decide(&self, unit: &Unit, facts: &Facts) -> Option<Ran> {
        let declared = self.declared(unit);
        if declared.iter().all(Option::is_some) {
            return Some(self.skip(unit, |recorder, i| {
                if let Some(n) = declared[i] {
                    recorder.not_applicable(&n.reason);
                }
            }));
        }
        // A unit that waits for the gate itself checks those later, unless
        // the gate has finished already (then it would start for nothing).
        let defer = unit.defers_ready && !self.shared.gate_known();
        let now: Vec<plan::Precondition> = unit
            .preconditions
            .iter()
            .filter(|p| !(defer && p.reads_ready()))
            .cloned()
            .collect();
        let unmet = plan::first_unmet(&now, facts)?;
        Some(self.skip(unit, |recorder, _| recorder.unmet(unmet.clone())))
    }

    fn declared<'s>(&'s self, unit: &Unit) -> Vec<Option<&'s NotApplicable>> {
        unit.steps
            .iter()
            .map(|s| self.scenario.not_applicable(&s.id))
            .collect()
    }

    /// Record what unit `index` gave: its steps declared not applicable,
    /// the ready gate's facts, its progress lines.
    fn finish(
        &self,
        index: usize,
        unit: &Unit,
        mut ran: Ran,
        done: Done<'_>,
        shown: &dyn Fn(&StepOutcome) -> StepStatus,
    ) {
        let Done {
            facts,
            recorded,
            gave,
        } = done;
        // A step declared not applicable inside a unit that ran anyway
        // (it shares an instance with steps that apply) is not judged.
        let declared = self.declared(unit);
        for ((outcome, step), declared) in ran.outcomes.iter_mut().zip(&unit.steps).zip(&declared) {
            if let Some(n) = declared {
                let mut recorder = StepRecorder::new(self.masker, step);
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
            recorded.absorb(observed);
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
            self.shared.publish_gate(Gate {
                ready: facts.ready.clone(),
                healthy: recorded.healthy_ready.clone(),
            });
        }
        let mut reporter = self.ordered.unit(index);
        for outcome in &ran.outcomes {
            reporter.event(Event::StepFinished(StepEnd {
                number: outcome.number,
                total: self.total,
                title: &outcome.title,
                status: shown(outcome),
                took: Duration::from_millis(outcome.duration_ms),
                summary: outcome.summary.as_str(),
            }));
        }
        self.ordered.finished(index);
        gave[index] = Some(ran);
        let takers_done = (self.units.iter().zip(gave.iter()))
            .all(|(unit, gave)| !unit.takes_spare || gave.is_some());
        if let Some(spare) = takers_done.then(|| self.shared.take_spare()).flatten() {
            self.chores.borrow_mut().push(stop_spare(spare));
        }
    }

    /// The first unit from `from` on that may start now (see
    /// [`startable`]).
    fn startable(
        &self,
        gave: &[Option<Ran>],
        running: &[Running<'_>],
        schedule: Schedule,
        from: usize,
    ) -> Option<usize> {
        let released = |i: usize| schedule == Schedule::Concurrent && self.shared.released(i);
        let kept = self.kept();
        startable(self.units, gave, running, &released, kept, schedule, from)
    }

    /// Stop the instance still kept, if any, and wait for every stop.
    async fn stop_kept(&self) {
        let mut chores = self.chores.take();
        chores.extend(self.shared.take_spare().map(stop_spare));
        for chore in chores {
            chore.await;
        }
    }

    /// While an instance is kept for a later unit (or being stopped), what
    /// it holds: what the ready gate, which started it, held.
    fn kept(&self) -> Option<&[plan::Hold]> {
        let alive = self.shared.has_spare() || !self.chores.borrow().is_empty();
        let gate = self.units.iter().find(|u| u.establishes_ready)?;
        alive.then_some(&gate.holds[..])
    }

    /// Run unit `index`, whose preconditions hold, with a context of its
    /// own: its own progress buffer, and its own fault proxies when it
    /// switches faults.
    async fn run_unit(&self, index: usize, unit: &Unit, recorded: Recorded) -> anyhow::Result<Ran> {
        let own = match unit.own_proxies {
            true => Some(self.deps.with_own_proxies().await?),
            false => None,
        };
        let deps: &Dependencies = own.as_ref().unwrap_or(self.deps);
        let mut bindings = self.bindings.clone();
        deps.rebind(&mut bindings);
        let watch = self.deps.watch();
        let mark = watch.mark().await;
        let started = Instant::now();
        self.windows.borrow_mut()[index] = Some((started, None));
        let mut reporter = self.ordered.unit(index);
        let mut ctx = StepContext {
            scenario: self.scenario,
            masker: self.masker,
            probe: self.probe.clone(),
            bindings,
            extra_env: self.extra_env.to_vec(),
            reporter: &mut reporter,
            mode: self.mode.clone(),
            deps,
            recorded,
            link: Link::new(index, self.shared.clone()),
        };
        let ran = run_unit(&mut ctx, unit, self.total).await;
        if let Some(own) = own {
            own.shutdown().await;
        }
        let mut ran = ran?;
        let ended = Instant::now();
        let alongside = self.alongside(index, started, ended);
        self.windows.borrow_mut()[index] = Some((started, Some(ended)));
        attach_views(self.masker, watch, &mark, &mut ran.outcomes, &alongside).await;
        Ok(ran)
    }

    /// The other units that ran at some time between `started` and
    /// `ended`, as progress names them.
    fn alongside(&self, index: usize, started: Instant, ended: Instant) -> Vec<String> {
        let windows = self.windows.borrow();
        windows
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .filter_map(|(other, window)| {
                let (from, to) = (*window)?;
                let overlaps = from < ended && to.is_none_or(|to| to > started);
                overlaps.then(|| self.units[other].title())
            })
            .collect()
    }

    /// Every step of `unit` recorded without running: `why` marks the
    /// recorder of the `i`th step NOT RUN or NOT APPLICABLE.
    fn skip(&self, unit: &Unit, why: impl Fn(&mut StepRecorder<'_>, usize)) -> Ran {
        let outcomes = unit
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let mut recorder = StepRecorder::new(self.masker, step);
                why(&mut recorder, i);
                recorder.finish()
            })
            .collect();
        Ran {
            outcomes,
            ..Ran::default()
        }
    }
}

/// Run one unit whose preconditions hold.
async fn run_unit(ctx: &mut StepContext<'_>, unit: &Unit, total: usize) -> anyhow::Result<Ran> {
    let Some(first) = unit.steps.first().map(|s| s.number) else {
        anyhow::bail!("the plan has a unit without steps: {}", unit.label);
    };
    let title = unit.title();
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

/// What the dependencies' servers saw while the unit ran (units running
/// beside it included), on each of its steps that failed or did not run:
/// the facts an engineer needs to act.
async fn attach_views(
    masker: &Masker,
    watch: &DependencyWatch,
    mark: &Mark,
    outcomes: &mut [StepOutcome],
    alongside: &[String],
) {
    let needs = |o: &StepOutcome| matches!(o.status, StepStatus::Fail | StepStatus::NotRun);
    if watch.is_empty() || !outcomes.iter().any(needs) {
        return;
    }
    let views: Vec<DependencyView> = watch
        .since(mark)
        .await
        .into_iter()
        .map(|seen| DependencyView {
            dependency: seen.dependency.to_string(),
            source: seen.source.to_string(),
            text: Excerpt::of(masker, &seen.text),
            alongside: alongside.to_vec(),
        })
        .collect();
    for outcome in outcomes.iter_mut().filter(|o| needs(o)) {
        outcome.dependency_views = views.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Hold, PlannedStep, Resource};
    use crate::steps::{Exercise, StepFuture};

    struct Idle;

    impl Exercise for Idle {
        fn run<'a>(&'a self, _: &'a mut StepContext<'_>, _: &'a [PlannedStep]) -> StepFuture<'a> {
            Box::pin(async { Ok(Ran::default()) })
        }
    }

    fn unit(id: &str, holds: Vec<Hold>, takes_spare: bool) -> Unit {
        let mut unit = Unit::one(PlannedStep::new(id, id, id, id), Vec::new(), holds, Idle);
        unit.takes_spare = takes_spare;
        unit
    }

    /// A kept instance holds what the gate's instance held until it is
    /// stopped: a server-wide fault waits for it, a unit that takes it
    /// does not, and a unit that shares the servers does not either.
    #[test]
    fn a_kept_instance_holds_off_a_server_wide_fault_but_not_its_takers() {
        let server = || Resource::Server("postgres".into());
        let instance = vec![Hold::uses(server())];
        let units = vec![
            unit("graceful-shutdown", instance.clone(), true),
            unit("postgres-read-only", vec![Hold::holds(server())], false),
            unit("kubernetes-probes", Vec::new(), false),
        ];
        let none = |_: usize| false;
        let fresh: Vec<Option<Ran>> = vec![None, None, None];
        let kept = Some(&instance[..]);
        let concurrent = Schedule::Concurrent;
        assert_eq!(
            startable(&units, &fresh, &[], &none, kept, concurrent, 0),
            Some(0)
        );
        // The taker finished, but the instance is still being stopped.
        let taken = vec![Some(Ran::default()), None, None];
        assert_eq!(
            startable(&units, &taken, &[], &none, None, concurrent, 1),
            Some(1)
        );
        assert_eq!(
            startable(&units, &taken, &[], &none, kept, concurrent, 1),
            Some(2)
        );
        let serial = Schedule::Serial;
        assert_eq!(startable(&units, &taken, &[], &none, kept, serial, 1), None);
        assert_eq!(
            startable(&units, &taken, &[], &none, None, serial, 1),
            Some(1)
        );
    }
}
