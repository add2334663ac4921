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

mod failed_connection;
mod instance;
mod recorder;
mod runner;
mod timeline;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

pub use crate::command::{CommandRun, run_command, run_service_command};
pub use instance::{
    expect_response, launch, meets, pointer_text, start_healthy, startup_text, until_ready_status,
};
pub use recorder::{HYGIENE_EXPECTED, StepRecorder};
pub use runner::{Proof, run};

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
    /// [`Precondition::ReadyHealthy`] of later units reads.
    pub establishes_ready: bool,
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
            exercise: Box::new(exercise),
        }
    }
}

/// What a unit that starts service instances on healthy dependencies
/// holds: every dependency's proxy, shared (the instance reaches each one
/// through it).
pub fn instance_holds(scenario: &Scenario) -> Vec<Hold> {
    crate::deps::dependency::keys(scenario)
        .into_iter()
        .map(|key| Hold::uses(Resource::Proxy(key)))
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
