//! Steps stage: the proof as one [`Plan`] of steps, and the loop that runs
//! it ([`run`]). Each step drives the real service (and tools) and gives a
//! [`StepOutcome`], which is data whether it passed or failed; a step
//! returns `Err` only when the harness itself broke.
//!
//! The plan is one ordered list of [`Unit`]s, each made by its step module
//! (`unit()`/`units()`): the planned steps it records (id, title, claim),
//! the preconditions they need, the resources they hold, and the
//! [`Exercise`] that runs them. Most units are one step; a dependency's four
//! fault steps share one service instance and so form one unit. Adding a
//! step is one line in [`Plan::new`] plus its module.

pub mod alert_rules;
pub mod failfast;
pub mod faults;
pub mod kubernetes;
pub mod latency;
pub mod metrics;
pub mod migrate;
pub mod negative;
pub mod observed;
pub mod read_only;
pub mod ready;
pub mod shutdown;

mod discriminate;
mod failed_connection;
mod instance;
mod link;
mod ordered;
mod recorder;
mod runner;
mod timeline;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

pub use crate::command::{CommandRun, run_command, run_service_command};
pub use instance::{
    expect_response, launch, meets, pointer_text, start_healthy, startup_text, take_or_start,
    until_ready_status,
};
pub use link::{Gate, Link, Spare};
pub use recorder::{HYGIENE_EXPECTED, StepRecorder};
pub use runner::{Proof, Schedule, run};

use crate::deps::{Dependencies, Dependency, ProviderKind};
use crate::http::Probe;
use crate::mask::Masker;
use crate::outcome::{FaultTimeline, StepOutcome};
use crate::plan::{Facts, Hold, PlannedStep, Precondition, Ready, Resource};
use crate::progress::{Event, Reporter};
use crate::scenario::placeholders::Bindings;
use crate::scenario::{Scenario, ScenarioError};

/// What every step needs: the scenario, the masker, placeholder values for
/// healthy dependencies, and where to report progress.
pub struct StepContext<'a> {
    pub scenario: &'a Scenario,
    pub masker: &'a Masker,
    pub probe: Probe,
    /// Placeholder values pointing at the healthy dependencies.
    pub bindings: Bindings,
    /// Extra service environment from `--env KEY=VALUE`.
    pub extra_env: Vec<(String, String)>,
    pub reporter: &'a mut dyn Reporter,
    /// How the service is reached: launched by gonogo, or already running.
    pub mode: Mode,
    /// Every dependency, each behind its fault proxy (none in target mode).
    pub deps: &'a Dependencies,
    /// What the steps so far observed for later steps (the runner fills
    /// it from each unit's [`Ran::observed`]).
    pub recorded: observed::Recorded,
    /// What the unit shares with the runner while it runs: early release
    /// of its holds, the ready gate's verdict, a healthy instance handed
    /// on (see [`link`]).
    pub link: Link,
}

/// How gonogo reaches the service under test, which decides the steps it
/// can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// gonogo starts (and restarts) the service itself, against servers
    /// from this provider.
    Launch { provider: ProviderKind },
    /// The service already runs at this base URL (`--service-url`); gonogo
    /// only sends it requests.
    Target { base_url: String },
}

impl Mode {
    /// The provider of the dependencies, when gonogo launched the service.
    pub fn provider(&self) -> Option<ProviderKind> {
        match self {
            Mode::Launch { provider } => Some(*provider),
            Mode::Target { .. } => None,
        }
    }

    /// What is known before the first step runs.
    pub fn facts(&self) -> Facts {
        Facts {
            launched: self.provider().is_some(),
            owns_servers: self.provider().is_some_and(ProviderKind::owns_servers),
            ready: Ready::Unknown("it comes later in the plan".into()),
            observed: Vec::new(),
            finished: Vec::new(),
        }
    }
}

impl<'a> StepContext<'a> {
    /// The dependency with this key. Fault targets and the metrics fault
    /// are checked against the declared dependencies when the scenario
    /// loads, and steps that break one run only in launch mode, where every
    /// dependency has its proxy.
    pub fn dependency(&self, key: &str) -> &'a Dependency {
        self.deps
            .get(key)
            .expect("fault targets are validated against the declared dependencies")
    }

    /// A sub-action inside a step, for the live progress (masked).
    pub fn detail(&mut self, text: &str) {
        let masked = self.masker.mask(text);
        self.reporter.event(Event::StepDetail {
            text: masked.as_str(),
        });
    }

    /// Bindings with a fresh port for one service instance.
    pub fn bindings_with_port(&self, base: &Bindings) -> std::io::Result<Bindings> {
        let mut bindings = base.clone();
        bindings.insert("port".into(), crate::process::free_port()?.to_string());
        Ok(bindings)
    }
}

/// Run every future of `all` at once, on this task; gives their outputs in
/// their order.
pub async fn join_all<F: Future>(all: Vec<F>) -> Vec<F::Output> {
    let mut all: Vec<Pin<Box<F>>> = all.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = all.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in all.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// The future an [`Exercise`] gives.
pub type StepFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<Ran>> + 'a>>;

/// What a unit runs once its preconditions hold.
pub trait Exercise {
    /// Run the unit's `steps` (in plan order), giving one outcome per step.
    fn run<'a>(&'a self, ctx: &'a mut StepContext<'_>, steps: &'a [PlannedStep]) -> StepFuture<'a>;
}

/// What running a unit gave.
#[derive(Debug, Default)]
pub struct Ran {
    /// One per planned step of the unit, in its order.
    pub outcomes: Vec<StepOutcome>,
    /// What the fault proxy did when, for units that inject faults.
    pub timeline: Option<FaultTimeline>,
    /// What the ready gate established about the service's health.
    pub ready: Option<Ready>,
    /// The version endpoint's body (unmasked: the runner masks it into the
    /// metadata).
    pub version: Option<String>,
    /// What later steps judge (see [`observed`]).
    pub observed: Vec<observed::Observed>,
}

impl Ran {
    /// A unit of one step.
    pub fn one(outcome: StepOutcome) -> Ran {
        Ran {
            outcomes: vec![outcome],
            ..Ran::default()
        }
    }
}

/// Steps that run together: one, or several sharing one service instance.
pub struct Unit {
    /// What the progress line calls a unit of several steps, e.g. `Redis
    /// runtime faults`.
    pub label: String,
    pub steps: Vec<PlannedStep>,
    /// What must hold for the unit to prove anything; the first that does
    /// not makes every step of it NOT RUN.
    pub preconditions: Vec<Precondition>,
    /// What it holds while it runs (see [`crate::plan::conflicts`]).
    pub holds: Vec<Hold>,
    /// Whether this unit is the ready gate, whose outcome the
    /// [`Precondition::ReadyHealthy`] (and [`Precondition::Answers`]) of
    /// later units reads.
    pub establishes_ready: bool,
    /// Whether the runner starts fault proxies for this unit alone (see
    /// [`own_proxy_holds`]): a unit that switches faults gets them, so its
    /// faults reach only its own service instance.
    pub own_proxies: bool,
    /// Whether the unit starts beside the ready gate and waits for its
    /// verdict itself (see [`Link::gate`]) before judging: its
    /// preconditions that read the gate are checked then, not before it
    /// starts.
    pub defers_ready: bool,
    /// Whether the unit takes the healthy instance an earlier unit handed
    /// on (see [`Link::take`]); the runner stops that instance once every
    /// such unit has finished.
    pub takes_spare: bool,
    exercise: Box<dyn Exercise>,
}

impl Unit {
    /// A unit of one step.
    pub fn one(
        step: PlannedStep,
        preconditions: Vec<Precondition>,
        holds: Vec<Hold>,
        exercise: impl Exercise + 'static,
    ) -> Unit {
        Unit {
            label: step.title.clone(),
            steps: vec![step],
            preconditions,
            holds,
            establishes_ready: false,
            own_proxies: false,
            defers_ready: false,
            takes_spare: false,
            exercise: Box::new(exercise),
        }
    }

    /// A unit of several steps sharing one run.
    pub fn group(
        label: String,
        steps: Vec<PlannedStep>,
        preconditions: Vec<Precondition>,
        holds: Vec<Hold>,
        exercise: impl Exercise + 'static,
    ) -> Unit {
        Unit {
            label,
            steps,
            preconditions,
            holds,
            establishes_ready: false,
            own_proxies: false,
            defers_ready: false,
            takes_spare: false,
            exercise: Box::new(exercise),
        }
    }
}

impl Unit {
    /// Whether a precondition of the unit reads what the ready gate
    /// established, so it cannot start before the gate finished.
    pub fn reads_ready(&self) -> bool {
        !self.defers_ready && self.preconditions.iter().any(Precondition::reads_ready)
    }

    /// Its name in progress and evidence: its label, with its step
    /// numbers when it has several steps.
    pub fn title(&self) -> String {
        match (self.steps.first(), self.steps.last()) {
            (Some(first), Some(last)) if first.number != last.number => {
                format!("{} (steps {}-{})", self.label, first.number, last.number)
            }
            _ => self.label.clone(),
        }
    }

    /// Whether a precondition of the unit reads what earlier units
    /// observed (the conformance steps), so it cannot start before every
    /// earlier unit finished and gave its observations.
    pub fn reads_observations(&self) -> bool {
        self.preconditions
            .iter()
            .any(|p| matches!(p, Precondition::Observed { .. }))
    }

    /// Give the unit fault proxies of its own, with `holds` from
    /// [`own_proxy_holds`].
    pub fn with_own_proxies(mut self, holds: Vec<Hold>) -> Unit {
        self.own_proxies = true;
        self.holds = holds;
        self
    }
}

/// What a unit that starts service instances on healthy dependencies
/// holds: every dependency's shared proxy, its server and its schema,
/// shared (the instance reaches each server through its proxy).
pub fn instance_holds(scenario: &Scenario) -> Vec<Hold> {
    crate::deps::dependency::keys(scenario)
        .into_iter()
        .flat_map(|key| {
            [
                Hold::uses(Resource::Proxy(key.clone())),
                Hold::uses(Resource::Server(key.clone())),
                Hold::uses(Resource::Schema(key)),
            ]
        })
        .collect()
}

/// What a unit labelled `unit` holds when the runner gives it proxies of
/// its own and it switches faults on `faulted`'s: that proxy exclusively,
/// the others shared, and every server and schema shared. No other unit reaches a
/// dependency through these proxies, so the unit's faults disturb no
/// instance but its own, and it may run beside any unit but the latency
/// measurement.
pub fn own_proxy_holds(scenario: &Scenario, unit: &str, faulted: &str) -> Vec<Hold> {
    crate::deps::dependency::keys(scenario)
        .into_iter()
        .flat_map(|key| {
            let proxy = Resource::OwnProxy {
                unit: unit.to_string(),
                dependency: key.clone(),
            };
            let proxy = if key == faulted {
                Hold::holds(proxy)
            } else {
                Hold::uses(proxy)
            };
            [
                proxy,
                Hold::uses(Resource::Server(key.clone())),
                Hold::uses(Resource::Schema(key)),
            ]
        })
        .collect()
}

/// The whole proof for one scenario in one mode, in order.
pub struct Plan {
    units: Vec<Unit>,
}

impl Plan {
    /// The plan for `scenario` when the service is reached as `mode`.
    pub fn new(scenario: &Scenario, mode: &Mode) -> Plan {
        let mut units = vec![
            migrate::unit(scenario, mode),
            ready::unit(scenario),
            negative::unit(scenario),
            failfast::unit(scenario),
        ];
        units.extend(latency::unit(scenario));
        units.extend(shutdown::unit(scenario));
        units.extend(metrics::unit(scenario));
        units.extend(faults::units(scenario, mode));
        units.extend(read_only::unit(scenario, mode));
        units.extend(kubernetes::unit(scenario, mode));
        units.extend(alert_rules::unit(scenario, mode));
        let mut number = 0;
        for step in units.iter_mut().flat_map(|u| u.steps.iter_mut()) {
            number += 1;
            step.number = number;
        }
        Plan { units }
    }

    /// How many steps the plan has.
    pub fn len(&self) -> usize {
        self.units.iter().map(|u| u.steps.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// Every planned step, in order.
    pub fn steps(&self) -> impl Iterator<Item = &PlannedStep> {
        self.units.iter().flat_map(|u| u.steps.iter())
    }
}

/// Read and validate the scenario at `path`: the file itself (see
/// [`crate::scenario::load`]), then every step id it names (`[[waiver]]`,
/// `[[not_applicable]]`) against its plan.
pub fn load_scenario(path: &Path) -> Result<Scenario, ScenarioError> {
    let scenario = crate::scenario::load(path)?;
    validate(&scenario)?;
    Ok(scenario)
}

/// Check that every step id `scenario` names is a step of its plan, in
/// launch or target mode; the error lists the valid ids.
pub fn validate(scenario: &Scenario) -> Result<(), ScenarioError> {
    let ids = step_ids(scenario);
    let named = scenario
        .waivers
        .iter()
        .map(|w| (&w.step, &w.span, "waiver"))
        .chain(
            scenario
                .not_applicable
                .iter()
                .map(|n| (&n.step, &n.span, "[[not_applicable]] entry")),
        );
    for (step, span, what) in named {
        if !ids.contains(step) {
            return Err(scenario.error_at(
                span.clone(),
                format!(
                    "the {what} names `{step}`, which is not a step of this scenario; its steps are {}",
                    ids.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Every step id a run of `scenario` can have, in either mode (launch or
/// target), in plan order: what a waiver may name.
pub fn step_ids(scenario: &Scenario) -> Vec<String> {
    planned_steps(scenario)
        .into_iter()
        .map(|step| step.id)
        .collect()
}

/// Every planned step a run of `scenario` can have, in either mode, once
/// per id, in plan order.
pub fn planned_steps(scenario: &Scenario) -> Vec<PlannedStep> {
    let launch = Plan::new(
        scenario,
        &Mode::Launch {
            provider: ProviderKind::Embedded,
        },
    );
    let target = Plan::new(
        scenario,
        &Mode::Target {
            base_url: String::new(),
        },
    );
    let mut steps: Vec<PlannedStep> = Vec::new();
    for step in launch.steps().chain(target.steps()) {
        if !steps.iter().any(|s| s.id == step.id) {
            steps.push(step.clone());
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::conflicts;

    fn plan(file: &str) -> Plan {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let scenario = crate::scenario::load(&path).expect("the shipped scenario loads");
        let mode = Mode::Launch {
            provider: ProviderKind::Embedded,
        };
        Plan::new(&scenario, &mode)
    }

    fn unit<'p>(plan: &'p Plan, first_step: &str) -> &'p Unit {
        plan.units()
            .iter()
            .find(|u| u.steps[0].id == first_step)
            .unwrap_or_else(|| panic!("no unit starting with {first_step}"))
    }

    /// The proxies a unit switches faults on are its own, so no fault
    /// reaches an instance another unit started on healthy dependencies.
    #[test]
    fn units_that_switch_faults_hold_proxies_of_their_own() {
        for file in ["scenarios/reference.toml", "scenarios/fastapi-backend.toml"] {
            let plan = plan(file);
            for u in plan.units() {
                for hold in u.holds.iter().filter(|h| h.exclusive) {
                    if let Resource::Proxy(key) = &hold.resource {
                        panic!("{file}: {} holds the shared {key} proxy", u.label);
                    }
                    if let Resource::OwnProxy { unit, .. } = &hold.resource {
                        assert!(u.own_proxies, "{file}: {}", u.label);
                        assert_eq!(unit, &u.label, "{file}");
                    }
                }
            }
            let switching = [
                "postgres-runtime-outage",
                "redis-runtime-outage",
                "metrics-gauge",
            ];
            for (i, a) in switching.iter().enumerate() {
                let a = unit(&plan, a);
                assert!(a.own_proxies, "{file}: {}", a.label);
                for b in switching.iter().skip(i + 1) {
                    let b = unit(&plan, b);
                    assert!(!conflicts(&a.holds, &b.holds), "{file}: {}", a.label);
                }
                for healthy in ["negative-proof", "fail-fast", "graceful-shutdown"] {
                    let h = unit(&plan, healthy);
                    assert!(!h.own_proxies && !conflicts(&a.holds, &h.holds), "{file}");
                }
            }
        }
    }

    #[test]
    fn latency_runs_alone_and_the_ready_gate_waits_for_the_migrations() {
        let plan = plan("scenarios/fastapi-backend.toml");
        let latency = unit(&plan, "latency-slo");
        for other in plan.units() {
            assert!(conflicts(&latency.holds, &other.holds), "{}", other.label);
        }
        let migrate = unit(&plan, "migration-gate");
        let ready = unit(&plan, "ready-gate");
        assert!(conflicts(&migrate.holds, &ready.holds));
        assert!(ready.establishes_ready);
        // Fail-fast needs no schema: it runs beside the migrations, but
        // never beside a server-wide fault.
        let failfast = unit(&plan, "fail-fast");
        assert!(!conflicts(&migrate.holds, &failfast.holds));
        // The negative proof starts beside the gate and waits for its
        // verdict itself before judging.
        let negative = unit(&plan, "negative-proof");
        assert!(negative.defers_ready && !negative.reads_ready());
        assert!(negative.preconditions.contains(&Precondition::ReadyHealthy));
        assert!(conflicts(&migrate.holds, &negative.holds));
        // The gate's healthy instance goes to latency, then to shutdown.
        assert!(unit(&plan, "latency-slo").takes_spare);
        assert!(unit(&plan, "graceful-shutdown").takes_spare);
        assert!(unit(&plan, "redis-runtime-outage").reads_ready());
        // Shutdown waits for the gate too: it is NOT RUN when the gate's
        // instance never answered HTTP.
        assert!(unit(&plan, "graceful-shutdown").reads_ready());
        // A server-wide fault reaches every instance, whatever its proxy.
        let read_only = unit(&plan, read_only::ID);
        for other in [
            "ready-gate",
            "fail-fast",
            "redis-runtime-outage",
            "metrics-gauge",
        ] {
            assert!(
                conflicts(&read_only.holds, &unit(&plan, other).holds),
                "{other}"
            );
        }
    }
}
