//! Alert-rule conformance: the `[alerts]` rule file checked by `promtool
//! check rules`, then proven with `promtool test rules` files gonogo writes
//! from the metrics step's three scrapes (healthy, outage, recovered),
//! stretched past the rule's windows ([`crate::alerts::judge`]). In target
//! mode there is no outage: one scrape of the running service proves the
//! selectors and that the alert stays quiet while healthy.

use std::time::Duration;

use super::{Exercise, Mode, Ran, StepContext, StepFuture, StepRecorder, Unit};
use crate::alerts::{AlertsInput, AlertsReport, CheckKind, Promtool, ScrapedPhases};
use crate::outcome::StepOutcome;
use crate::plan::{Observation, PlannedStep, Precondition, Unmet};
use crate::scenario::Scenario;

pub const ID: &str = "alert-rules";
pub const TITLE: &str = "Alert rules (promtool, on the observed series)";

/// The step, when the scenario has `[alerts]`: after the metrics step whose
/// scrapes it replays.
pub fn unit(scenario: &Scenario, mode: &Mode) -> Option<Unit> {
    let a = scenario.alerts.as_ref()?;
    let rules = a.rules.path.display();
    let which = match &a.alert {
        Some(name) => format!("alert {name}"),
        None => match &scenario.metrics {
            Some(m) => format!("every alert on {}", m.gauge),
            None => "every alert".to_string(),
        },
    };
    let claim = match mode {
        Mode::Launch { .. } => format!(
            "{rules} loads (promtool check rules), and {which} selects series the service really exports, stays quiet while it is healthy, fires during the outage after the time the rule implies, and resolves after recovery (promtool test rules on the observed series, stretched past the rule's windows)."
        ),
        Mode::Target { .. } => format!(
            "{rules} loads (promtool check rules), and {which} selects series the running service exports and stays quiet while it is healthy. (Target mode (--service-url): gonogo breaks no dependency, so firing during an outage and resolving after it are not tested.)"
        ),
    };
    let step = PlannedStep::new(
        ID,
        TITLE,
        claim,
        format!(
            "promtool on {rules}, with test files written from the metrics the service exported"
        ),
    );
    let mut preconditions = vec![Precondition::Configured {
        needs: "a readiness gauge and metrics path ([metrics])".into(),
        unmet: scenario
            .metrics
            .is_none()
            .then(|| "the scenario has no [metrics], so gonogo scraped no series".into()),
    }];
    match mode {
        Mode::Launch { .. } => preconditions.push(Precondition::Observed {
            observation: Observation::Scrapes,
            needs: "the metrics step's three scrapes (healthy, during the outage, after recovery)"
                .into(),
            from: vec![super::metrics::ID.to_string()],
        }),
        Mode::Target { .. } => preconditions.push(Precondition::ReadyHealthy),
    }
    Some(Unit::one(step, preconditions, Vec::new(), Rules))
}

struct Rules;

impl Exercise for Rules {
    fn run<'a>(&'a self, ctx: &'a mut StepContext<'_>, steps: &'a [PlannedStep]) -> StepFuture<'a> {
        Box::pin(async move { Ok(Ran::one(rules(ctx, &steps[0]).await?)) })
    }
}

async fn rules(ctx: &mut StepContext<'_>, planned: &PlannedStep) -> anyhow::Result<StepOutcome> {
    let (Some(spec), Some(metrics)) = (&ctx.scenario.alerts, &ctx.scenario.metrics) else {
        anyhow::bail!("the alert-rules step was planned without [alerts] and [metrics]");
    };
    let mut step = StepRecorder::new(ctx.masker, planned);
    let promtool = match Promtool::find() {
        Ok(p) => p,
        Err(why) => {
            step.unmet(Unmet::new(
                "promtool, from the distribution's prometheus package",
                format!("{why}; `gonogo doctor --install` installs it"),
            ));
            return Ok(step.finish());
        }
    };
    let phases = match (&ctx.mode, &ctx.recorded.scrapes) {
        (Mode::Launch { .. }, Some(phases)) => phases.clone(),
        (Mode::Launch { .. }, None) => {
            anyhow::bail!("the alert-rules step ran without the metrics step's scrapes")
        }
        (Mode::Target { base_url }, _) => {
            let url = format!("{base_url}{}", metrics.path);
            let exchange = ctx
                .probe
                .get(&url, ctx.scenario.service.request_timeout)
                .await;
            step.request(&format!("GET {} (healthy)", metrics.path), &exchange);
            let ok = step.check(
                format!("{} answers 200 on the healthy service", metrics.path),
                exchange.summary(),
                exchange.status == Some(200),
            );
            if !ok {
                return Ok(step.finish());
            }
            ScrapedPhases {
                dependency: String::new(),
                healthy: crate::prometheus::parse(&exchange.body).0,
                outage: Vec::new(),
                recovered: Vec::new(),
            }
        }
    };
    // Removed when the step ends, swept by a later run if gonogo is killed.
    let workdir = crate::deps::embedded::TempRoot::create()
        .map_err(|e| anyhow::anyhow!("create a directory for the promtool tests: {e}"))?;
    ctx.detail(&format!("promtool on {}", spec.rules.path.display()));
    let input = AlertsInput {
        rules: &spec.rules,
        alert: spec.alert.as_deref(),
        gauge: Some(metrics.gauge.as_str()),
        target_labels: &spec.target_labels,
        scrape_interval: spec.scrape_interval,
        evaluation_interval: spec.evaluation_interval,
        phases: &phases,
        workdir: workdir.path(),
    };
    let report = crate::alerts::judge(&input, Ok(promtool)).await?;
    record(&mut step, &report, &phases);
    Ok(step.finish())
}

/// The report as checks and actions.
fn record(step: &mut StepRecorder<'_>, report: &AlertsReport, phases: &ScrapedPhases) {
    for c in &report.checks {
        let what = match c.kind {
            CheckKind::RulesValid => "rules load",
            CheckKind::AlertSelected => "alert selected",
            CheckKind::SelectorMatches => "selectors match",
            CheckKind::QuietWhileHealthy => "quiet while healthy",
            CheckKind::FiresDuringOutage => "fires during the outage",
            CheckKind::ResolvesAfterRecovery => "resolves after recovery",
        };
        let alert = c
            .alert
            .as_deref()
            .map_or(String::new(), |a| format!(" {a}"));
        step.check(
            format!("{what}{alert}: {}", c.expected),
            &c.observed,
            c.passed,
        );
    }
    if !report.stretched.is_empty() {
        let source = if phases.outage.is_empty() {
            "one scrape of the healthy running service".to_string()
        } else {
            format!(
                "the metrics step's three scrapes: healthy ({} series), during the {} outage ({}), after recovery ({})",
                phases.healthy.len(),
                phases.dependency,
                phases.outage.len(),
                phases.recovered.len()
            )
        };
        step.command(
            "stretched timeline (the phases were stretched, not observed for this long)",
            &format!("gonogo, from {source}"),
            None,
            &report.stretched.join("\n"),
            Duration::ZERO,
        );
    }
    for c in &report.commands {
        step.command(&c.label, &c.invocation, c.exit_code, &c.output, c.duration);
    }
    for f in &report.files {
        step.command(
            &format!("test file {}", f.name),
            &format!("written by gonogo for promtool test rules: {}", f.name),
            None,
            &f.text,
            Duration::ZERO,
        );
    }
    if !report.unjudged.is_empty() {
        step.command(
            "not tested (never counted as passed)",
            "gonogo: alerts or facts it could not test, and why",
            None,
            &report.unjudged.join("\n"),
            Duration::ZERO,
        );
    }
}
