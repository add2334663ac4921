//! Just enough PromQL to judge an alert against what a service exports:
//! the vector selectors of an expression (`metric{label op "value", …}`),
//! the functions around each, and how far back the expression reaches
//! (range and subquery windows, `offset`). It skips strings, numbers,
//! operators and the label lists of `by`/`without`/`on`/`ignoring`/
//! `group_left`/`group_right`. What it cannot read is an error that says
//! so; promtool, not this, decides whether an expression is valid.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use regex::Regex;

use super::rules::parse_duration;

/// A label matcher's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    Ne,
    Re,
    Nre,
}

impl MatchOp {
    fn text(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::Nre => "!~",
        }
    }
}

/// One `label op "value"`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    /// The anchored regex, for `=~` and `!~`.
    regex: Option<Regex>,
}

impl Matcher {
    fn matches(&self, actual: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => actual == self.value,
            (MatchOp::Ne, _) => actual != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(actual),
            (MatchOp::Nre, Some(re)) => !re.is_match(actual),
            (MatchOp::Re | MatchOp::Nre, None) => false,
        }
    }
}

/// One vector selector.
#[derive(Debug, Clone)]
pub struct Selector {
    /// The metric name written before the braces, if any.
    pub metric: Option<String>,
    pub matchers: Vec<Matcher>,
    /// The functions and aggregations it sits in, outermost first.
    pub inside: Vec<String>,
}

impl Selector {
    /// The metric name it selects: the written name, or an `__name__=`
    /// matcher.
    pub fn metric_name(&self) -> Option<&str> {
        self.metric.as_deref().or_else(|| {
            self.matchers
                .iter()
                .find(|m| m.label == "__name__" && m.op == MatchOp::Eq)
                .map(|m| m.value.as_str())
        })
    }

    /// Whether the series `name{labels}` is selected. A missing label
    /// counts as the empty string, as in Prometheus.
    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        if self.metric.as_deref().is_some_and(|m| m != name) {
            return false;
        }
        self.matchers.iter().all(|m| {
            let actual = if m.label == "__name__" {
                name
            } else {
                labels.get(&m.label).map_or("", String::as_str)
            };
            m.matches(actual)
        })
    }

    /// Whether an empty match is what the expression wants (`absent`).
    pub fn expects_absence(&self) -> bool {
        self.inside
            .iter()
            .any(|f| f == "absent" || f == "absent_over_time")
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(metric) = &self.metric {
            f.write_str(metric)?;
        }
        if !self.matchers.is_empty() || self.metric.is_none() {
            let inner: Vec<String> = self
                .matchers
                .iter()
                .map(|m| format!("{}{}{:?}", m.label, m.op.text(), m.value))
                .collect();
            write!(f, "{{{}}}", inner.join(", "))?;
        }
        Ok(())
    }
}

/// What gonogo reads from an expression.
#[derive(Debug, Clone)]
pub struct ExprFacts {
    pub selectors: Vec<Selector>,
    /// Every range and subquery window plus every `offset`, added up: an
    /// upper bound on how far back the expression looks.
    pub reach: Duration,
}

/// Read the selectors and windows of `expr`.
pub fn analyze(expr: &str) -> Result<ExprFacts, String> {
    let mut lexer = Lexer {
        text: expr,
        pos: 0,
        facts: ExprFacts {
            selectors: Vec::new(),
            reach: Duration::ZERO,
        },
        stack: Vec::new(),
        grouping: false,
        pending: None,
    };
    lexer.run()?;
    Ok(lexer.facts)
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    facts: ExprFacts,
    /// Open parentheses: the function they belong to, if any.
    stack: Vec<Option<String>>,
    /// The last word was `by`, `without`, `on`, … : a label list follows.
    grouping: bool,
    /// An aggregation written before its modifier (`sum by (a) (…)`),
    /// waiting for its parenthesis.
    pending: Option<String>,
}

const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const OPERATORS: &[&str] = &["and", "or", "unless", "bool", "atan2", "inf", "nan"];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn skip_space(&mut self) {
        loop {
            let rest = &self.text[self.pos..];
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with('#') {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else {
                return;
            }
        }
    }

    fn word(&mut self) -> &str {
        let start = self.pos;
        let len = self.text[start..]
            .find(|c: char| !is_ident(c))
            .unwrap_or(self.text.len() - start);
        self.pos += len;
        &self.text[start..self.pos]
    }

    fn error(&self, what: &str) -> String {
        format!(
            "cannot read `{}`: {what} at character {}",
            self.text,
            self.pos + 1
        )
    }

    fn run(&mut self) -> Result<(), String> {
        loop {
            self.skip_space();
            let Some(c) = self.peek() else {
                return Ok(());
            };
            match c {
                '"' | '\'' | '`' => {
                    self.string()?;
                }
                '{' => self.selector(None)?,
                '[' => self.window()?,
                '(' => self.open(None)?,
                ')' => {
                    self.pos += 1;
                    self.stack.pop();
                }
                c if c.is_ascii_digit() || c == '.' => self.number(),
                c if is_ident_start(c) => self.identifier()?,
                _ => self.pos += c.len_utf8(),
            }
        }
    }

    fn identifier(&mut self) -> Result<(), String> {
        let word = self.word().to_string();
        let lower = word.to_ascii_lowercase();
        if GROUPING.contains(&lower.as_str()) {
            self.grouping = true;
            return Ok(());
        }
        if OPERATORS.contains(&lower.as_str()) {
            return Ok(());
        }
        if lower == "offset" {
            self.skip_space();
            if self.peek() == Some('-') {
                self.pos += 1;
            }
            let start = self.pos;
            let len = self.text[start..]
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(self.text.len() - start);
            self.pos += len;
            self.facts.reach +=
                parse_duration(&self.text[start..self.pos]).map_err(|e| self.error(&e))?;
            return Ok(());
        }
        self.skip_space();
        let rest = &self.text[self.pos..];
        let modifier = ["by", "without"].iter().any(|m| {
            rest.strip_prefix(m)
                .is_some_and(|after| !after.starts_with(is_ident))
        });
        if modifier {
            self.pending = Some(word);
            return Ok(());
        }
        match self.peek() {
            Some('(') => self.open(Some(word)),
            Some('{') => self.selector(Some(word)),
            _ => {
                self.push_selector(Some(word), Vec::new());
                Ok(())
            }
        }
    }

    fn open(&mut self, function: Option<String>) -> Result<(), String> {
        self.pos += 1;
        if std::mem::take(&mut self.grouping) {
            // A label list: names, not selectors.
            let close = self.text[self.pos..]
                .find(')')
                .ok_or_else(|| self.error("unclosed label list"))?;
            self.pos += close + 1;
            return Ok(());
        }
        self.stack.push(function.or_else(|| self.pending.take()));
        Ok(())
    }

    fn number(&mut self) {
        while let Some(c) = self.peek() {
            let exponent_sign =
                (c == '+' || c == '-') && self.text[..self.pos].ends_with(['e', 'E']);
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || exponent_sign {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// A quoted string; gives its value.
    fn string(&mut self) -> Result<String, String> {
        let quote = self.peek().ok_or_else(|| self.error("missing string"))?;
        self.pos += 1;
        let mut value = String::new();
        let mut chars = self.text[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.pos += i + 1;
                return Ok(value);
            }
            if c == '\\' && quote != '`' {
                let (_, escaped) = chars.next().ok_or_else(|| self.error("unclosed string"))?;
                value.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    other => other,
                });
            } else {
                value.push(c);
            }
        }
        Err(self.error("unclosed string"))
    }

    fn window(&mut self) -> Result<(), String> {
        self.pos += 1;
        let close = self.text[self.pos..]
            .find(']')
            .ok_or_else(|| self.error("unclosed range"))?;
        let inside = self.text[self.pos..self.pos + close].trim();
        let range = inside.split(':').next().unwrap_or("").trim();
        self.facts.reach += parse_duration(range).map_err(|e| self.error(&e))?;
        self.pos += close + 1;
        Ok(())
    }

    fn selector(&mut self, metric: Option<String>) -> Result<(), String> {
        self.pos += 1;
        let mut metric = metric;
        let mut matchers = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                Some('}') => {
                    self.pos += 1;
                    break;
                }
                Some(',') => self.pos += 1,
                Some('"') if metric.is_none() => metric = Some(self.string()?),
                Some(c) if is_ident_start(c) => matchers.push(self.matcher()?),
                _ => return Err(self.error("unexpected text in label matchers")),
            }
        }
        self.push_selector(metric, matchers);
        Ok(())
    }

    fn matcher(&mut self) -> Result<Matcher, String> {
        let label = self.word().to_string();
        self.skip_space();
        let rest = &self.text[self.pos..];
        let op = if rest.starts_with("=~") {
            MatchOp::Re
        } else if rest.starts_with("!~") {
            MatchOp::Nre
        } else if rest.starts_with("!=") {
            MatchOp::Ne
        } else if rest.starts_with('=') {
            MatchOp::Eq
        } else {
            return Err(self.error(&format!("no operator after label `{label}`")));
        };
        self.pos += op.text().len();
        self.skip_space();
        if !matches!(self.peek(), Some('"' | '\'' | '`')) {
            return Err(self.error(&format!("label `{label}` has no quoted value")));
        }
        let value = self.string()?;
        let regex = match op {
            MatchOp::Re | MatchOp::Nre => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| self.error(&format!("regex for `{label}`: {e}")))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            label,
            op,
            value,
            regex,
        })
    }

    fn push_selector(&mut self, metric: Option<String>, matchers: Vec<Matcher>) {
        let inside = self.stack.iter().flatten().cloned().collect();
        self.facts.selectors.push(Selector {
            metric,
            matchers,
            inside,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_the_seed_expression() {
        let facts =
            analyze(r#"min_over_time(aether_readyz_success{service!="self-healer"}[5m]) == 0"#)
                .unwrap();
        assert_eq!(facts.selectors.len(), 1);
        let s = &facts.selectors[0];
        assert_eq!(
            s.to_string(),
            r#"aether_readyz_success{service!="self-healer"}"#
        );
        assert_eq!(s.inside, vec!["min_over_time".to_string()]);
        assert_eq!(facts.reach, Duration::from_secs(300));
        assert!(s.matches("aether_readyz_success", &labels(&[("service", "api")])));
        assert!(!s.matches(
            "aether_readyz_success",
            &labels(&[("service", "self-healer")])
        ));
        assert!(!s.matches("other", &labels(&[("service", "api")])));
    }

    #[test]
    fn skips_grouping_lists_strings_numbers_and_keywords() {
        let expr = r#"
            sum by (service, job) (rate(http_requests_total{code=~"5.."}[5m] offset 1m))
              / on (service) group_left (team) sum without (instance) (rate(http_requests_total[5m]))
              > 0.05 and absent(up{job='api'}) or vector(1e-3) # a comment: not_a_metric
            unless label_replace(x, "dst", "$1", "src", "(.*)") > bool inf
        "#;
        let facts = analyze(expr).unwrap();
        let names: Vec<String> = facts.selectors.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            names,
            [
                r#"http_requests_total{code=~"5.."}"#,
                "http_requests_total",
                r#"up{job="api"}"#,
                "x"
            ]
        );
        assert!(facts.selectors[2].expects_absence());
        assert_eq!(facts.reach, Duration::from_secs(660));
        let s = &facts.selectors[0];
        assert!(s.matches("http_requests_total", &labels(&[("code", "503")])));
        assert!(!s.matches("http_requests_total", &labels(&[("code", "5030")])));
    }

    #[test]
    fn name_matchers_and_missing_labels() {
        let facts = analyze(r#"{__name__="up", job=""} == 0"#).unwrap();
        let s = &facts.selectors[0];
        assert_eq!(s.metric_name(), Some("up"));
        assert!(
            s.matches("up", &BTreeMap::new()),
            "a missing label is empty"
        );
        assert!(!s.matches("up", &labels(&[("job", "x")])));
        let facts = analyze(r#"max_over_time(rate(x[1m])[30m:1m])"#).unwrap();
        assert_eq!(facts.reach, Duration::from_secs(31 * 60));
    }

    #[test]
    fn what_cannot_be_read_is_an_error() {
        for bad in [
            r#"x{service="a""#,
            r#"x{service=a}"#,
            r#"x{service~"a"}"#,
            "x[5 minutes]",
            r#"x{service=~"("}"#,
            "sum by (a",
        ] {
            assert!(analyze(bad).is_err(), "{bad}");
        }
    }
}
