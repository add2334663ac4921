//! Kubernetes probe conformance: the `[kubernetes]` manifest's probes, run
//! as the kubelet would on what the earlier steps observed (the ready
//! gate's cold start and healthy answers, the latency step's p99, the
//! shutdown step's SIGTERM to exit, every runtime fault's window). It
//! drives nothing itself: it judges ([`crate::kube::judge`]) and records a
//! check per rule and a table per probe.

use std::fmt::Write as _;

use super::{Exercise, Mode, Ran, StepContext, StepFuture, StepRecorder, Unit};
use crate::kube::{Conformance, ProbeTable};
use crate::plan::{Observation, PlannedStep, Precondition};
use crate::scenario::Scenario;

pub const ID: &str = "kubernetes-probes";
pub const TITLE: &str = "Kubernetes probes (as the kubelet would run them)";

/// Why target mode judges less.
const TARGET_MODE: &str = "target mode (--service-url): gonogo did not start the service, send it SIGTERM or break its dependencies, so the cold start, SIGTERM to exit and the probes during an outage cannot be observed; the startup budget, the grace period and the probes' behaviour during faults are not judged";

/// The step, when the scenario has `[kubernetes]`: after the steps whose
/// observations it judges.
pub fn unit(scenario: &Scenario, mode: &Mode) -> Option<Unit> {
    let k = scenario.kubernetes.as_ref()?;
    let manifest = k.manifest.display();
    let claim = match mode {
        Mode::Launch { .. } => format!(
            "The probes of container `{}` in {manifest}, run as the kubelet would on what gonogo observed, never restart a healthy pod, mark it NotReady during each outage and Ready after, and fit the startup budget, the grace period and the healthy answer times.",
            k.container.name
        ),
        Mode::Target { .. } => format!(
            "The probes of container `{}` in {manifest} ask the port the service serves on, their paths answer 200-399 on the healthy running service, and no timeoutSeconds is shorter than the healthy answer time. ({TARGET_MODE}.)",
            k.container.name
        ),
    };
    let step = PlannedStep::new(
        ID,
        TITLE,
        claim,
        format!(
            "{manifest} ({}) against the observations of the earlier steps; nothing is run again",
            k.container.workload
        ),
    );
    let mut preconditions = vec![Precondition::ReadyHealthy];
    if mode.provider().is_some() {
        preconditions.push(Precondition::Observed {
            observation: Observation::FaultWindow,
            needs: "the fault windows the runtime fault steps record (how the probed paths answered during each outage)".into(),
            from: fault_steps(scenario),
        });
    }
    Some(Unit::one(step, preconditions, Vec::new(), Probes))
}

/// The steps that record fault windows: each dependency's outage step, or
/// the folded fault step.
fn fault_steps(scenario: &Scenario) -> Vec<String> {
    if !scenario.faults.enabled || scenario.faults.targets.is_empty() {
        return vec![super::faults::FOLDED_ID.to_string()];
    }
    scenario
        .faults
        .targets
        .iter()
        .map(|key| super::faults::step_ids(key)[0].clone())
        .collect()
}

struct Probes;

impl Exercise for Probes {
    fn run<'a>(&'a self, ctx: &'a mut StepContext<'_>, steps: &'a [PlannedStep]) -> StepFuture<'a> {
        Box::pin(async move { Ok(Ran::one(probes(ctx, &steps[0])?)) })
    }
}

fn probes(
    ctx: &mut StepContext<'_>,
    planned: &PlannedStep,
) -> anyhow::Result<crate::outcome::StepOutcome> {
    let Some(k) = &ctx.scenario.kubernetes else {
        anyhow::bail!("the kubernetes-probes step was planned without [kubernetes]");
    };
    let mut step = StepRecorder::new(ctx.masker, planned);
    let obs = &ctx.recorded.kube;
    let conformance = crate::kube::judge(&k.container, &k.serving, obs);
    let started = std::time::Instant::now();
    for c in &conformance.checks {
        let probe = c.probe.map_or("pod".to_string(), |p| p.to_string());
        step.check(
            format!("{} ({probe}): {}", c.rule.id(), c.expected),
            &c.observed,
            c.passed,
        );
    }
    for table in &conformance.tables {
        step.command(
            &format!("kubelet model: {}", table.title),
            &format!(
                "gonogo's kubelet model of {} (manifest setting against what was observed)",
                k.manifest.display()
            ),
            None,
            &table_text(table),
            std::time::Duration::ZERO,
        );
    }
    let mut unjudged = not_judged(&conformance);
    if matches!(ctx.mode, Mode::Target { .. }) {
        unjudged.insert(0, format!("{TARGET_MODE}."));
    }
    let missing = missing_windows(ctx);
    unjudged.extend(missing);
    if !unjudged.is_empty() {
        step.command(
            "not judged (never counted as passed)",
            "gonogo's kubelet model: rules it could not apply, and why",
            None,
            &unjudged.join("\n"),
            started.elapsed(),
        );
    }
    Ok(step.finish())
}

/// Each rule that could not be applied, in words.
fn not_judged(c: &Conformance) -> Vec<String> {
    c.unjudged
        .iter()
        .map(|u| {
            let probe = u.probe.map_or("pod".to_string(), |p| p.to_string());
            format!("{} ({probe}): {}", u.rule.id(), u.reason)
        })
        .collect()
}

/// Fault targets whose outage was not observed: the probes were judged
/// without them.
fn missing_windows(ctx: &StepContext<'_>) -> Vec<String> {
    if ctx.mode.provider().is_none() || !ctx.scenario.faults.enabled {
        return Vec::new();
    }
    let seen: Vec<&str> = ctx
        .recorded
        .kube
        .faults
        .iter()
        .map(|w| w.dependency.as_str())
        .collect();
    ctx.scenario
        .faults
        .targets
        .iter()
        .filter(|key| !seen.contains(&ctx.dependency(key).display.as_str()))
        .map(|key| {
            format!(
                "the {} outage: its fault steps recorded no window (see {}), so the probes were not judged against it",
                ctx.dependency(key).display,
                super::faults::step_ids(key)[0]
            )
        })
        .collect()
}

/// A probe table as aligned text: setting, manifest, observed.
fn table_text(table: &ProbeTable) -> String {
    if table.rows.is_empty() {
        return format!("{}\n", table.title);
    }
    let w0 = table
        .rows
        .iter()
        .map(|r| r.setting.chars().count())
        .max()
        .unwrap_or(0)
        .max("setting".len());
    let w1 = table
        .rows
        .iter()
        .map(|r| r.manifest.chars().count())
        .max()
        .unwrap_or(0)
        .max("manifest".len());
    let mut out = String::new();
    let _ = writeln!(out, "{:w0$}  {:w1$}  observed", "setting", "manifest");
    for r in &table.rows {
        let _ = writeln!(out, "{:w0$}  {:w1$}  {}", r.setting, r.manifest, r.observed);
    }
    out
}
