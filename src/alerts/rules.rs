//! Reading a Prometheus rule file: `groups[].rules[]` in, the alerting
//! rules out (name, expression, `for`, `keep_firing_for`, labels, the
//! group's evaluation interval, the line). Recording rules are skipped.
//! gonogo reads only what it needs; `promtool check rules` is the judge of
//! everything else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::yaml::{Node, YamlError, YamlFile};

/// One alerting rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRule {
    pub name: String,
    pub expr: String,
    /// `for:` (default 0).
    pub for_: Duration,
    /// `keep_firing_for:` (default 0).
    pub keep_firing_for: Duration,
    pub labels: BTreeMap<String, String>,
    pub group: String,
    /// The group's `interval:`, when set.
    pub group_interval: Option<Duration>,
    /// 1-based line of the rule in the file.
    pub line: usize,
}

/// The alerting rules of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFile {
    pub path: PathBuf,
    pub alerts: Vec<AlertRule>,
}

impl RuleFile {
    /// The rules called `name` (one per group that defines it).
    pub fn named(&self, name: &str) -> Vec<&AlertRule> {
        self.alerts.iter().filter(|a| a.name == name).collect()
    }

    /// Alert names, for messages.
    pub fn names(&self) -> String {
        if self.alerts.is_empty() {
            return "none".into();
        }
        self.alerts
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Read the rule file at `path`.
pub fn read(path: &Path) -> Result<RuleFile, YamlError> {
    let file = YamlFile::read(path)?;
    from_file(&file)
}

/// The alerting rules of a parsed file.
pub fn from_file(file: &YamlFile) -> Result<RuleFile, YamlError> {
    let docs = file.documents();
    let [(_, root)] = docs.as_slice() else {
        return Err(YamlError {
            file: file.path.clone(),
            location: None,
            field: None,
            message: format!(
                "a Prometheus rule file is one YAML document with `groups`; this one has {}",
                docs.len()
            ),
        });
    };
    let mut alerts = Vec::new();
    for group in root.require("groups")?.items()? {
        let name = group.require("name")?.str()?.to_string();
        let group_interval = group
            .get("interval")?
            .map(|i| duration_field(&i))
            .transpose()?;
        let Some(rules) = group.get("rules")? else {
            continue;
        };
        for rule in rules.items()? {
            let Some(alert) = rule.get("alert")? else {
                continue;
            };
            alerts.push(alert_rule(&rule, &alert, &name, group_interval)?);
        }
    }
    Ok(RuleFile {
        path: file.path.clone(),
        alerts,
    })
}

fn alert_rule(
    rule: &Node<'_>,
    alert: &Node<'_>,
    group: &str,
    group_interval: Option<Duration>,
) -> Result<AlertRule, YamlError> {
    let mut labels = BTreeMap::new();
    if let Some(node) = rule.get("labels")? {
        for key in node.keys()? {
            let value = node.require(&key)?.scalar_text()?;
            labels.insert(key, value);
        }
    }
    let optional = |key: &str| -> Result<Duration, YamlError> {
        rule.get(key)?
            .map_or(Ok(Duration::ZERO), |n| duration_field(&n))
    };
    Ok(AlertRule {
        name: alert.str()?.to_string(),
        expr: rule.require("expr")?.scalar_text()?,
        for_: optional("for")?,
        keep_firing_for: optional("keep_firing_for")?,
        labels,
        group: group.to_string(),
        group_interval,
        line: rule.line(),
    })
}

fn duration_field(node: &Node<'_>) -> Result<Duration, YamlError> {
    parse_duration(node.str()?).map_err(|e| node.error(e))
}

/// A Prometheus duration: `5m`, `1h30m`, `500ms`, `1d`, `2w`, `1y`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a Prometheus duration (like 30s, 5m, 1h30m)");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let millis: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(bad()),
        };
        let part = number.checked_mul(millis).ok_or_else(bad)?;
        total = total
            .checked_add(Duration::from_millis(part))
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// A duration as Prometheus writes it: `1h30m`, `15s`, `1500ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut secs = ms / 1000;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"
groups:
  - name: readyz
    interval: 30s
    rules:
      - record: job:aether_readyz_success:min
        expr: min(aether_readyz_success)
      - alert: ReadyzDependencyFailure
        expr: min_over_time(aether_readyz_success{service!="self-healer"}[5m]) == 0
        for: 5m
        labels:
          severity: page
          team: sre
        annotations:
          summary: "{{ $labels.service }} readiness probe failing"
"#;

    #[test]
    fn reads_the_seed_rule() {
        let file = YamlFile::parse(Path::new("alerts.yml"), SEED).unwrap();
        let rules = from_file(&file).unwrap();
        assert_eq!(rules.alerts.len(), 1, "the recording rule is skipped");
        let rule = &rules.alerts[0];
        assert_eq!(rule.name, "ReadyzDependencyFailure");
        assert_eq!(rule.for_, Duration::from_secs(300));
        assert_eq!(rule.labels["severity"], "page");
        assert_eq!(rule.group_interval, Some(Duration::from_secs(30)));
        assert_eq!(rule.line, 8);
        assert_eq!(rules.named("ReadyzDependencyFailure").len(), 1);
    }

    #[test]
    fn bad_shapes_name_the_field() {
        let file = YamlFile::parse(
            Path::new("alerts.yml"),
            &SEED.replace("for: 5m", "for: soon"),
        )
        .unwrap();
        let err = from_file(&file).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("groups[0].rules[1].for"));
        assert!(err.message.contains("not a Prometheus duration"), "{err}");
        let file = YamlFile::parse(Path::new("alerts.yml"), "rules: []\n").unwrap();
        assert!(
            from_file(&file)
                .unwrap_err()
                .message
                .contains("missing `groups`")
        );
    }

    #[test]
    fn durations_both_ways() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        for bad in ["", "5", "m", "5x", "1.5m", "-5m", "99999999999999999999y"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
