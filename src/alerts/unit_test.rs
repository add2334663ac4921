//! Writing `promtool test rules` files from what the proof observed. Takes
//! the three scrapes of the metrics step (healthy, during the outage, after
//! recovery) and one alerting rule; gives the stretched timeline and three
//! test files, each asserting one fact through the `ALERTS` series the rule
//! produces:
//!
//! - **quiet**: while healthy the alert is neither pending nor firing;
//! - **fires**: during the outage it is not firing before its `for:` has
//!   passed, and is firing, with the rule's labels, by the time the rule
//!   implies (`for:` after the expression turns true, which takes at most
//!   its windows);
//! - **resolves**: after recovery it is gone once its windows and
//!   `keep_firing_for:` have passed.
//!
//! The observed phases lasted seconds; each is stretched to span the
//! rule's windows, one sample every scrape interval, with the value the
//! service really exported in that phase. The files are JSON, which YAML
//! (and so promtool) reads, so every label value is escaped correctly.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::promql::ExprFacts;
use super::rules::{AlertRule, format_duration};
use crate::prometheus::Sample;

/// Longest phase gonogo writes (a rule with day-long windows is not
/// testable in reasonable time).
pub const MAX_PHASE: Duration = Duration::from_secs(2 * 86_400);
/// Most input series in one test.
pub const MAX_SERIES: usize = 500;

/// The metrics step's three scrapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScrapedPhases {
    /// The dependency broken between the scrapes, e.g. `Redis`.
    pub dependency: String,
    pub healthy: Vec<Sample>,
    pub outage: Vec<Sample>,
    pub recovered: Vec<Sample>,
}

/// The stretched timeline for one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    pub scrape: Duration,
    pub eval: Duration,
    /// Length of each of the three phases.
    pub phase: Duration,
    /// From the outage's start, when the alert must be firing.
    pub fire_by: Duration,
    /// From recovery, when the alert must be gone.
    pub resolve_by: Duration,
    pub reach: Duration,
    pub for_: Duration,
    pub keep: Duration,
}

fn ceil_to(d: Duration, step: Duration) -> Duration {
    let (d, step) = (d.as_millis(), step.as_millis().max(1));
    Duration::from_millis((d.div_ceil(step) * step) as u64)
}

fn gcd(a: u128, b: u128) -> u128 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Timing {
    /// The timeline for `rule`: each phase spans its windows, `for:`,
    /// `keep_firing_for:` and four evaluations, in whole scrape and
    /// evaluation intervals.
    pub fn new(
        rule: &AlertRule,
        facts: &ExprFacts,
        scrape: Duration,
        default_eval: Duration,
    ) -> Result<Timing, String> {
        let eval = rule.group_interval.unwrap_or(default_eval);
        let (s, e) = (scrape.as_millis().max(1), eval.as_millis().max(1));
        let both = Duration::from_millis((s / gcd(s, e) * e) as u64);
        let (reach, for_, keep) = (facts.reach, rule.for_, rule.keep_firing_for);
        let phase = ceil_to(reach + for_ + keep + eval * 4, both);
        if phase > MAX_PHASE {
            return Err(format!(
                "its windows need phases of {}; gonogo tests rules whose windows fit in {}",
                format_duration(phase),
                format_duration(MAX_PHASE)
            ));
        }
        Ok(Timing {
            scrape,
            eval,
            phase,
            fire_by: ceil_to(reach, eval) + ceil_to(for_, eval) + eval * 2,
            resolve_by: ceil_to(reach, eval) + ceil_to(keep, eval) + eval * 2,
            reach,
            for_,
            keep,
        })
    }

    /// Samples per phase.
    pub fn samples(&self) -> usize {
        (self.phase.as_millis() / self.scrape.as_millis().max(1)) as usize
    }

    /// How the phases were stretched, for the evidence.
    pub fn describe(&self, phases: &ScrapedPhases) -> String {
        let p = self.phase;
        format!(
            "The metrics step scraped the service three times: healthy, during the {dep} outage, and after recovery; those phases lasted seconds. \
             The test stretches each to {len} (healthy 0–{a}, {dep} outage {a}–{b}, recovery {b}–{c}), one sample every {scrape} with the value observed in that phase, \
             so the rule's windows ({reach}), for: {for_} and keep_firing_for: {keep} elapse; rules are evaluated every {eval}.",
            dep = phases.dependency,
            len = format_duration(p),
            a = format_duration(p),
            b = format_duration(p * 2),
            c = format_duration(p * 3),
            scrape = format_duration(self.scrape),
            reach = format_duration(self.reach),
            for_ = format_duration(self.for_),
            keep = format_duration(self.keep),
            eval = format_duration(self.eval),
        )
    }
}

/// Escape a label value as PromQL writes it.
fn quote(value: &str) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// `name{k="v",…}`.
pub fn series_text(name: &str, labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// A sample's labels as Prometheus stores them after the scrape: the
/// target's labels win, and a scraped label they replace is kept as
/// `exported_<name>` (the default, `honor_labels: false`).
pub fn stored_labels(
    sample: &Sample,
    target: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels = sample.labels.clone();
    for (key, value) in target {
        if let Some(scraped) = labels.insert(key.clone(), value.clone()) {
            labels.insert(format!("exported_{key}"), scraped);
        }
    }
    labels
}

fn value_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// The input series: every series scraped under one of `names`, each
/// phase written as `n` samples of its observed value (or a stale marker
/// and gaps when it was not exported then).
pub fn input_series(
    phases: &ScrapedPhases,
    names: &[&str],
    target: &BTreeMap<String, String>,
    n: usize,
) -> Vec<(String, String)> {
    let scrapes = [&phases.healthy, &phases.outage, &phases.recovered];
    let mut keys: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for sample in scrapes.iter().flat_map(|s| s.iter()) {
        let key = (sample.name.clone(), stored_labels(sample, target));
        if names.contains(&sample.name.as_str()) && !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.truncate(MAX_SERIES);
    keys.iter()
        .map(|(name, labels)| {
            let mut values = Vec::new();
            let mut had = false;
            for scrape in scrapes {
                let found = scrape
                    .iter()
                    .find(|s| &s.name == name && &stored_labels(s, target) == labels);
                values.push(match (found, had) {
                    (Some(s), _) => format!("{}x{}", value_text(s.value), n - 1),
                    (None, true) if n > 1 => format!("stale _x{}", n - 1),
                    (None, true) => "stale".into(),
                    (None, false) => format!("_x{n}"),
                });
                had = found.is_some();
            }
            (series_text(name, labels), values.join(" "))
        })
        .collect()
}

/// Which fact a test file asserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    Quiet,
    Fires,
    Resolves,
}

/// One test file and what it asserts, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    pub fact: Fact,
    pub expected: String,
    /// The file's text (JSON).
    pub text: String,
}

/// `ALERTS{alertname="X", …}` with the rule's static labels (templated
/// values cannot be predicted and are left out).
fn alerts_selector(rule: &AlertRule, state: Option<&str>, with_labels: bool) -> String {
    let mut parts = vec![format!("alertname={}", quote(&rule.name))];
    if let Some(state) = state {
        parts.push(format!("alertstate={}", quote(state)));
    }
    if with_labels {
        for (k, v) in &rule.labels {
            if !v.contains("{{") {
                parts.push(format!("{k}={}", quote(v)));
            }
        }
    }
    format!("ALERTS{{{}}}", parts.join(","))
}

/// The rule's static labels as `k=v, …`, for messages.
pub fn static_labels(rule: &AlertRule) -> String {
    let labels: Vec<String> = rule
        .labels
        .iter()
        .filter(|(_, v)| !v.contains("{{"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if labels.is_empty() {
        "no static labels".into()
    } else {
        labels.join(", ")
    }
}

/// One `promtool test rules` file (JSON, which YAML reads) with the
/// input series and `tests` as its expression checks.
fn test_file(
    rules_file: &Path,
    timing: &Timing,
    series: &[(String, String)],
    tests: serde_json::Value,
) -> String {
    let input: Vec<serde_json::Value> = series
        .iter()
        .map(|(s, v)| json!({"series": s, "values": v}))
        .collect();
    let doc = json!({
        "rule_files": [rules_file.display().to_string()],
        "evaluation_interval": format_duration(timing.eval),
        "tests": [{
            "interval": format_duration(timing.scrape),
            "input_series": input,
            "promql_expr_test": tests,
        }],
    });
    serde_json::to_string_pretty(&doc).expect("a JSON value always serialises")
}

/// The three test files for `rule`.
pub fn assertions(
    rules_file: &Path,
    rule: &AlertRule,
    timing: &Timing,
    series: &[(String, String)],
    dependency: &str,
) -> Vec<Assertion> {
    let p = timing.phase;
    let one = Duration::from_millis(1);
    let d = format_duration;
    let file = |tests: serde_json::Value| test_file(rules_file, timing, series, tests);
    let none =
        |expr: String, at: Duration| json!({"expr": expr, "eval_time": d(at), "exp_samples": []});
    let quiet = none(
        format!(
            "count_over_time({}[{}])",
            alerts_selector(rule, None, false),
            d(p)
        ),
        p - one,
    );
    let mut fires = vec![json!({
        "expr": format!("count({}) > bool 0", alerts_selector(rule, Some("firing"), true)),
        "eval_time": d(p + timing.fire_by),
        "exp_samples": [{"labels": "{}", "value": 1}],
    })];
    if !timing.for_.is_zero() {
        fires.push(none(
            alerts_selector(rule, Some("firing"), false),
            p + timing.for_ - one,
        ));
    }
    let resolves = none(
        alerts_selector(rule, None, false),
        p * 2 + timing.resolve_by,
    );
    vec![
        Assertion {
            fact: Fact::Quiet,
            expected: format!(
                "{} is neither pending nor firing while the service is healthy (0–{})",
                rule.name,
                d(p)
            ),
            text: file(json!([quiet])),
        },
        Assertion {
            fact: Fact::Fires,
            expected: format!(
                "{} fires during the {dependency} outage, not before its for: {} and by {} into it, with {}",
                rule.name,
                d(timing.for_),
                d(timing.fire_by),
                static_labels(rule)
            ),
            text: file(json!(fires)),
        },
        Assertion {
            fact: Fact::Resolves,
            expected: format!(
                "{} is resolved {} after recovery (its windows {} + keep_firing_for {} + two evaluations)",
                rule.name,
                d(timing.resolve_by),
                d(timing.reach),
                d(timing.keep)
            ),
            text: file(json!([resolves])),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::promql::analyze;

    fn rule() -> AlertRule {
        AlertRule {
            name: "ReadyzDependencyFailure".into(),
            expr: r#"min_over_time(aether_readyz_success{service!="self-healer"}[5m]) == 0"#.into(),
            for_: Duration::from_secs(300),
            keep_firing_for: Duration::ZERO,
            labels: BTreeMap::from([
                ("severity".into(), "page".into()),
                ("summary".into(), "{{ $labels.service }}".into()),
            ]),
            group: "readyz".into(),
            group_interval: None,
            line: 1,
        }
    }

    /// The timing of `rule` for a `scrape` s scrape interval and a 1 min
    /// evaluation interval.
    fn timing(rule: &AlertRule, scrape: u64) -> Result<Timing, String> {
        let facts = analyze(&rule.expr)?;
        Timing::new(
            rule,
            &facts,
            Duration::from_secs(scrape),
            Duration::from_secs(60),
        )
    }

    fn sample(name: &str, service: &str, value: f64) -> Sample {
        Sample {
            name: name.into(),
            labels: BTreeMap::from([("service".into(), service.into())]),
            value,
        }
    }

    #[test]
    fn phases_span_the_windows_in_whole_intervals() {
        let rule = rule();
        let t = timing(&rule, 15).unwrap();
        // 5m range + 5m for + 4 × 1m evaluations.
        assert_eq!(t.phase, Duration::from_secs(14 * 60));
        assert_eq!(t.samples(), 56);
        assert_eq!(t.fire_by, Duration::from_secs(12 * 60));
        assert_eq!(t.resolve_by, Duration::from_secs(7 * 60));
        let odd = timing(&rule, 40).unwrap();
        assert_eq!(odd.phase.as_secs() % 120, 0, "a multiple of both intervals");
        let mut long = rule.clone();
        long.for_ = Duration::from_secs(3 * 86_400);
        assert!(timing(&long, 15).is_err());
    }

    #[test]
    fn series_keep_observed_values_labels_and_gaps() {
        let phases = ScrapedPhases {
            dependency: "Redis".into(),
            healthy: vec![
                sample("aether_readyz_success", "api", 1.0),
                sample("other_metric", "api", 7.0),
            ],
            outage: vec![sample("aether_readyz_success", "api", 0.0)],
            recovered: vec![
                sample("aether_readyz_success", "api", 1.0),
                sample("aether_readyz_success", "a\"b", 1.0),
            ],
        };
        let target = BTreeMap::from([("job".to_string(), "api".to_string())]);
        let series = input_series(&phases, &["aether_readyz_success"], &target, 4);
        assert_eq!(
            series,
            vec![
                (
                    r#"aether_readyz_success{job="api",service="api"}"#.to_string(),
                    "1x3 0x3 1x3".to_string()
                ),
                (
                    r#"aether_readyz_success{job="api",service="a\"b"}"#.to_string(),
                    "_x4 _x4 1x3".to_string()
                ),
            ]
        );
        let gone = ScrapedPhases {
            outage: Vec::new(),
            ..phases.clone()
        };
        let series = input_series(&gone, &["aether_readyz_success"], &BTreeMap::new(), 4);
        assert_eq!(series[0].1, "1x3 stale _x3 1x3");
        let clash = stored_labels(
            &sample("m", "api", 1.0),
            &BTreeMap::from([("service".into(), "prom".into())]),
        );
        assert_eq!(clash["service"], "prom");
        assert_eq!(clash["exported_service"], "api");
    }

    #[test]
    fn assertions_use_static_labels_only() {
        let rule = rule();
        let t = timing(&rule, 15).unwrap();
        let files = assertions(Path::new("/x/alerts.yml"), &rule, &t, &[], "Redis");
        assert_eq!(files.len(), 3);
        let fires = &files[1];
        assert!(
            fires.text.contains(r#"severity=\"page\""#),
            "{}",
            fires.text
        );
        assert!(!fires.text.contains("summary"), "{}", fires.text);
        assert!(
            fires.expected.contains("with severity=page"),
            "{}",
            fires.expected
        );
        // Not firing 1 ms before 14m (the outage) + 5m (for), firing at 14m + 12m.
        assert!(
            fires.text.contains(r#""eval_time": "1139999ms""#),
            "{}",
            fires.text
        );
        assert!(
            fires.text.contains(r#""eval_time": "26m""#),
            "{}",
            fires.text
        );
        assert!(
            files[0].text.contains(r#""eval_time": "839999ms""#),
            "{}",
            files[0].text
        );
    }
}
