//! Alert-rule conformance: a Prometheus rule file judged against the
//! series the service really exported during the proof.
//!
//! - [`rules`]: the rule file in, its alerting rules out.
//! - [`promql`]: the selectors and windows of an expression.
//! - [`unit_test`]: `promtool test rules` files written from the metrics
//!   step's scrapes, stretched past the rule's windows.
//! - [`promtool`]: finding and running promtool under a deadline.
//!
//! [`judge`] runs `promtool check rules`, picks the alerts (the scenario's
//! `alert`, else every alert whose expression selects the readiness gauge),
//! checks that each selector matches a series the service exports, and
//! proves with promtool that each alert stays quiet while healthy, fires
//! during the outage and resolves after recovery. Results are data
//! ([`AlertsReport`]); `Err` means the harness itself failed.

pub mod promql;
pub mod promtool;
pub mod rules;
pub mod unit_test;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

pub use promtool::Promtool;
pub use rules::{AlertRule, RuleFile};
pub use unit_test::ScrapedPhases;

use crate::command::CommandRun;
use crate::prometheus::Sample;
use promql::{ExprFacts, Selector};
use unit_test::{Assertion, Fact, Timing};

/// Most alerts tested in one proof (each costs three promtool runs).
pub const MAX_ALERTS: usize = 20;

/// Which check a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// `promtool check rules` accepts the file.
    RulesValid,
    /// An alert watches the readiness gauge (default selection).
    AlertSelected,
    /// Every selector of the alert matches a series the service exports.
    SelectorMatches,
    /// Quiet while healthy.
    QuietWhileHealthy,
    /// Fires during the outage, in time, with the rule's labels.
    FiresDuringOutage,
    /// Resolves after recovery.
    ResolvesAfterRecovery,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertCheck {
    pub kind: CheckKind,
    pub alert: Option<String>,
    pub expected: String,
    pub observed: String,
    pub passed: bool,
}

/// A promtool run, for the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    pub label: String,
    pub invocation: String,
    pub exit_code: Option<i32>,
    pub output: String,
    pub duration: Duration,
}

/// A file gonogo wrote and gave promtool, for the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    pub name: String,
    pub text: String,
}

/// Everything the alert judge found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertsReport {
    /// Why nothing could be judged (promtool missing), with the fix.
    pub not_run: Option<String>,
    pub checks: Vec<AlertCheck>,
    /// What could not be judged, and why (never a PASS).
    pub unjudged: Vec<String>,
    pub commands: Vec<CommandRecord>,
    pub files: Vec<GeneratedFile>,
    /// Per alert: how the observed phases were stretched, and from what.
    pub stretched: Vec<String>,
}

impl AlertsReport {
    pub fn failed(&self, kind: CheckKind) -> bool {
        self.checks.iter().any(|c| c.kind == kind && !c.passed)
    }

    fn check(
        &mut self,
        kind: CheckKind,
        alert: Option<&str>,
        expected: String,
        observed: String,
        passed: bool,
    ) -> bool {
        self.checks.push(AlertCheck {
            kind,
            alert: alert.map(str::to_string),
            expected,
            observed,
            passed,
        });
        passed
    }

    fn command(&mut self, label: String, run: &CommandRun) {
        self.commands.push(CommandRecord {
            label,
            invocation: run.invocation.clone(),
            exit_code: run.exit_code,
            output: run.output.clone(),
            duration: run.duration,
        });
    }
}

/// What the alert judge reads.
#[derive(Debug, Clone)]
pub struct AlertsInput<'a> {
    pub rules: &'a RuleFile,
    /// The scenario's `alert = "Name"`.
    pub alert: Option<&'a str>,
    /// The readiness gauge named in `[metrics]`.
    pub gauge: Option<&'a str>,
    /// Labels Prometheus attaches to the target at scrape time.
    pub target_labels: &'a BTreeMap<String, String>,
    pub scrape_interval: Duration,
    /// Used when the rule's group sets no `interval`.
    pub evaluation_interval: Duration,
    pub phases: &'a ScrapedPhases,
    /// Where the test files are written.
    pub workdir: &'a Path,
}

/// Judge the rule file against the observed scrapes.
pub async fn judge(
    input: &AlertsInput<'_>,
    promtool: Result<Promtool, String>,
) -> anyhow::Result<AlertsReport> {
    let mut report = AlertsReport::default();
    let promtool = match promtool {
        Ok(p) => p,
        Err(reason) => {
            report.not_run = Some(reason);
            return Ok(report);
        }
    };
    let path = &input.rules.path;
    let run = promtool.check_rules(path).await;
    harness_trouble(&run)?;
    report.command(format!("promtool check rules {}", path.display()), &run);
    let valid = report.check(
        CheckKind::RulesValid,
        None,
        format!("promtool check rules accepts {}", path.display()),
        format!(
            "exit {}: {}",
            exit_text(run.exit_code),
            last_line(&run.output)
        ),
        run.exit_code == Some(0),
    );
    if !valid {
        report
            .unjudged
            .push("the rule file does not load, so no alert was tested".into());
        return Ok(report);
    }
    let mut chosen = select(input, &mut report);
    if chosen.len() > MAX_ALERTS {
        let skipped: Vec<&str> = chosen[MAX_ALERTS..]
            .iter()
            .map(|(r, _)| r.name.as_str())
            .collect();
        report.unjudged.push(format!(
            "gonogo tests at most {MAX_ALERTS} alerts per proof; not tested: {}",
            skipped.join(", ")
        ));
        chosen.truncate(MAX_ALERTS);
    }
    for (rule, facts) in chosen {
        judge_alert(input, &promtool, rule, &facts, &mut report).await?;
    }
    Ok(report)
}

/// A promtool that could not run, or ran out of time, is the harness's
/// trouble, not the rule's.
fn harness_trouble(run: &CommandRun) -> anyhow::Result<()> {
    if let Some(e) = &run.spawn_error {
        anyhow::bail!("run promtool: {e}");
    }
    anyhow::ensure!(
        !run.timed_out,
        "promtool did not finish within {} s: {}",
        promtool::DEADLINE.as_secs(),
        run.invocation
    );
    Ok(())
}

fn exit_text(code: Option<i32>) -> String {
    code.map_or("none".into(), |c| c.to_string())
}

fn last_line(output: &str) -> String {
    output
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no output")
        .to_string()
}

/// The alerts to test, each with its expression read.
fn select<'r>(
    input: &AlertsInput<'r>,
    report: &mut AlertsReport,
) -> Vec<(&'r AlertRule, ExprFacts)> {
    let mut read = Vec::new();
    let candidates: Vec<&AlertRule> = match input.alert {
        Some(name) => input.rules.named(name),
        None => input.rules.alerts.iter().collect(),
    };
    for rule in candidates {
        match promql::analyze(&rule.expr) {
            Ok(facts) => read.push((rule, facts)),
            Err(e) => report.unjudged.push(format!(
                "alert {} (line {}): {e}; gonogo cannot test it",
                rule.name, rule.line
            )),
        }
    }
    let (Some(gauge), None) = (input.gauge, input.alert) else {
        return read;
    };
    let all: Vec<String> = read
        .iter()
        .map(|(rule, facts)| format!("{}: {}", rule.name, selectors_text(&facts.selectors)))
        .collect();
    read.retain(|(_, facts)| {
        facts
            .selectors
            .iter()
            .any(|s| s.metric_name() == Some(gauge))
    });
    let names: Vec<&str> = read.iter().map(|(r, _)| r.name.as_str()).collect();
    report.check(
        CheckKind::AlertSelected,
        None,
        format!(
            "an alert in {} selects the readiness gauge {gauge}",
            input.rules.path.display()
        ),
        if names.is_empty() {
            format!(
                "no alert selects {gauge}, so a readiness failure pages nobody; the file's alerts select: {}",
                if all.is_empty() { "nothing (no alerts)".into() } else { all.join("; ") }
            )
        } else if names.len() == 1 {
            format!("{} selects it", names[0])
        } else {
            format!("{} select it", names.join(", "))
        },
        !names.is_empty(),
    );
    read
}

fn selectors_text(selectors: &[Selector]) -> String {
    let list: Vec<String> = selectors.iter().map(|s| format!("`{s}`")).collect();
    if list.is_empty() {
        "no series".into()
    } else {
        list.join(", ")
    }
}

/// Synthetic series Prometheus makes itself, not the service.
fn synthetic(name: &str) -> bool {
    matches!(name, "up" | "ALERTS" | "ALERTS_FOR_STATE") || name.starts_with("scrape_")
}

/// Selector check, then the three promtool assertions for one alert.
async fn judge_alert(
    input: &AlertsInput<'_>,
    promtool: &Promtool,
    rule: &AlertRule,
    facts: &ExprFacts,
    report: &mut AlertsReport,
) -> anyhow::Result<()> {
    selector_check(input, rule, facts, report);
    let timing = match Timing::new(
        rule,
        facts,
        input.scrape_interval,
        input.evaluation_interval,
    ) {
        Ok(t) => t,
        Err(e) => {
            report.unjudged.push(format!("alert {}: {e}", rule.name));
            return Ok(());
        }
    };
    let mut names: Vec<&str> = facts
        .selectors
        .iter()
        .filter_map(Selector::metric_name)
        .collect();
    names.dedup();
    let series =
        unit_test::input_series(input.phases, &names, input.target_labels, timing.samples());
    let observed_outage = !input.phases.outage.is_empty() && !input.phases.recovered.is_empty();
    let stretched = if observed_outage {
        timing.describe(input.phases)
    } else {
        format!(
            "One scrape of the healthy service is stretched to {}, one sample every {}, with the values it exported, so the rule's windows elapse while healthy.",
            rules::format_duration(timing.phase),
            rules::format_duration(timing.scrape)
        )
    };
    report.stretched.push(format!("{}: {stretched}", rule.name));
    let files = unit_test::assertions(
        &input.rules.path,
        rule,
        &timing,
        &series,
        &input.phases.dependency,
    );
    if !observed_outage {
        report.unjudged.push(format!(
            "alert {}: no outage was scraped, so whether it fires during one and resolves after is not tested",
            rule.name
        ));
    }
    for assertion in files {
        if !observed_outage && assertion.fact != Fact::Quiet {
            continue;
        }
        let never_fired = report.checks.iter().any(|c| {
            c.kind == CheckKind::FiresDuringOutage
                && !c.passed
                && c.alert.as_deref() == Some(rule.name.as_str())
        });
        if assertion.fact == Fact::Resolves && never_fired {
            report.unjudged.push(format!(
                "alert {}: it never fired during the outage, so its resolution proves nothing",
                rule.name
            ));
            continue;
        }
        run_assertion(input, promtool, rule, assertion, report).await?;
    }
    Ok(())
}

/// Every selector must match a series the service exports (as Prometheus
/// stores it, with the target's labels).
fn selector_check(
    input: &AlertsInput<'_>,
    rule: &AlertRule,
    facts: &ExprFacts,
    report: &mut AlertsReport,
) {
    let exported: Vec<(&Sample, BTreeMap<String, String>)> = input
        .phases
        .healthy
        .iter()
        .map(|s| (s, unit_test::stored_labels(s, input.target_labels)))
        .collect();
    let mut lines = Vec::new();
    let mut passed = true;
    let mut judged = 0;
    for selector in &facts.selectors {
        let name = selector.metric_name().unwrap_or("");
        if synthetic(name) || selector.expects_absence() {
            report.unjudged.push(format!(
                "alert {}: `{selector}` is {}; gonogo does not judge it",
                rule.name,
                if selector.expects_absence() {
                    "inside absent()"
                } else {
                    "a series Prometheus makes itself"
                }
            ));
            continue;
        }
        judged += 1;
        let hits: Vec<String> = exported
            .iter()
            .filter(|(s, labels)| selector.matches(&s.name, labels))
            .map(|(s, labels)| unit_test::series_text(&s.name, labels))
            .collect();
        if hits.is_empty() {
            passed = false;
            lines.push(format!(
                "`{selector}` matches no series the service exports; {}",
                exported_text(name, &exported)
            ));
        } else {
            lines.push(format!("`{selector}` matches {}", hits.join(", ")));
        }
    }
    if judged == 0 {
        return;
    }
    report.check(
        CheckKind::SelectorMatches,
        Some(&rule.name),
        format!(
            "every selector of {} (line {}) matches a series the service exports",
            rule.name, rule.line
        ),
        lines.join("; "),
        passed,
    );
}

/// The real series under `name`, or the real metric names when there are
/// none (a misspelled metric).
fn exported_text(name: &str, exported: &[(&Sample, BTreeMap<String, String>)]) -> String {
    let same: Vec<String> = exported
        .iter()
        .filter(|(s, _)| s.name == name)
        .map(|(s, labels)| unit_test::series_text(&s.name, labels))
        .collect();
    if !same.is_empty() {
        return format!("the service exports {}", same.join(", "));
    }
    let mut names: Vec<&str> = exported.iter().map(|(s, _)| s.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let shown: Vec<&str> = names.iter().take(12).copied().collect();
    format!(
        "the service exports no series named {name}; its metrics are: {}{}",
        if shown.is_empty() {
            "none".to_string()
        } else {
            shown.join(", ")
        },
        if names.len() > shown.len() {
            ", …"
        } else {
            ""
        }
    )
}

/// Write one test file, run promtool on it, record the check.
async fn run_assertion(
    input: &AlertsInput<'_>,
    promtool: &Promtool,
    rule: &AlertRule,
    assertion: Assertion,
    report: &mut AlertsReport,
) -> anyhow::Result<()> {
    let (kind, slug) = match assertion.fact {
        Fact::Quiet => (CheckKind::QuietWhileHealthy, "quiet"),
        Fact::Fires => (CheckKind::FiresDuringOutage, "fires"),
        Fact::Resolves => (CheckKind::ResolvesAfterRecovery, "resolves"),
    };
    let name = format!("alert-test-{}-{slug}.yml", file_safe(&rule.name));
    let file = input.workdir.join(&name);
    std::fs::write(&file, &assertion.text)
        .with_context(|| format!("write the promtool test {}", file.display()))?;
    let run = promtool.test_rules(&file).await;
    harness_trouble(&run)?;
    let passed = run.exit_code == Some(0);
    let assertion_failed = run.output.contains("exp:") && run.output.contains("got:");
    if !passed && !assertion_failed {
        anyhow::bail!(
            "promtool could not run the test gonogo wrote ({}): {}",
            file.display(),
            run.output.trim()
        );
    }
    report.command(format!("promtool test rules {name}"), &run);
    report.files.push(GeneratedFile {
        name,
        text: assertion.text,
    });
    let observed = if passed {
        "promtool: SUCCESS".to_string()
    } else {
        failure_text(&run.output)
    };
    report.check(kind, Some(&rule.name), assertion.expected, observed, passed);
    Ok(())
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// promtool's failure lines (`expr`, `exp`, `got`), trimmed.
fn failure_text(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("expr:") || l.starts_with("exp:") || l.starts_with("got:"))
        .collect();
    format!("promtool: {}", lines.join(" "))
}

#[cfg(test)]
mod tests;
