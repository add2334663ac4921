//! Prometheus text exposition format (0.0.4): a scrape body in, samples
//! out, and a lookup of one series by name and labels.
//!
//! Only what a gauge check needs: `# HELP`/`# TYPE` and other comments are
//! skipped; label values honour the format's escapes (`\\`, `\"`, `\n`);
//! values accept `NaN`, `+Inf`, `-Inf`; an optional timestamp is ignored.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parse a scrape body; gives the samples and, for each line that could
/// not be read, its 1-based number and why.
pub fn parse(text: &str) -> (Vec<Sample>, Vec<(usize, String)>) {
    let mut samples = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Ok(sample) => samples.push(sample),
            Err(e) => errors.push((index + 1, e)),
        }
    }
    (samples, errors)
}

/// The value of the series `name` whose labels include all of `labels`.
/// Several matches are ambiguous and give an error naming them.
pub fn find(
    samples: &[Sample],
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<f64, String> {
    let matches: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.value),
        [] => Err(format!("no series {}", series(name, labels))),
        many => Err(format!(
            "{} series match {}; add labels to pick one",
            many.len(),
            series(name, labels)
        )),
    }
}

/// `name{k="v",…}` for messages.
pub fn series(name: &str, labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return name.to_string();
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value after the metric name")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("empty metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after)?;
        labels = parsed;
        rest = remaining;
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = match value {
        "NaN" => f64::NAN,
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse::<f64>()
            .map_err(|_| format!("`{other}` is not a number"))?,
    };
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("`{ts}` is not a timestamp"))?;
    }
    if fields.next().is_some() {
        return Err("unexpected text after the timestamp".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Parse `k="v",k2="v2"}`; gives the labels and the text after `}`.
fn parse_labels(mut text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = text.find('=').ok_or("label without `=`")?;
        let key = text[..eq].trim().to_string();
        if key.is_empty() {
            return Err("empty label name".into());
        }
        let after = text[eq + 1..].trim_start();
        let mut chars = after.char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(format!("label `{key}` value is not quoted"));
        }
        let mut value = String::new();
        let mut end = None;
        let mut escaped = false;
        for (i, c) in chars {
            if escaped {
                value.push(match c {
                    'n' => '\n',
                    other => other,
                });
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                end = Some(i);
                break;
            } else {
                value.push(c);
            }
        }
        let end = end.ok_or_else(|| format!("label `{key}` value is not closed"))?;
        labels.insert(key, value);
        text = after[end + 1..].trim_start();
        if let Some(rest) = text.strip_prefix(',') {
            text = rest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP aether_readyz_success 1 when ready passed
# TYPE aether_readyz_success gauge
aether_readyz_success{service="reference-service"} 1
aether_readyz_success{service="other",zone="a\"b"} 0 1700000000000
reference_ready_requests_total 42
weird{path="a,b}c",msg="line\nbreak"} +Inf
broken{service="x" 1
"#;

    #[test]
    fn parses_samples_labels_and_escapes() {
        let (samples, errors) = parse(SCRAPE);
        assert_eq!(samples.len(), 4);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, 7);
        assert_eq!(samples[1].labels["zone"], "a\"b");
        assert_eq!(samples[3].labels["path"], "a,b}c");
        assert_eq!(samples[3].labels["msg"], "line\nbreak");
        assert!(samples[3].value.is_infinite());
    }

    #[test]
    fn finds_one_series_by_labels() {
        let (samples, _) = parse(SCRAPE);
        let labels = BTreeMap::from([("service".to_string(), "reference-service".to_string())]);
        assert_eq!(find(&samples, "aether_readyz_success", &labels), Ok(1.0));
        let err = find(&samples, "aether_readyz_success", &BTreeMap::new()).unwrap_err();
        assert!(err.contains("2 series match"), "{err}");
        let err = find(&samples, "missing", &labels).unwrap_err();
        assert!(
            err.contains("no series missing{service=\"reference-service\"}"),
            "{err}"
        );
        assert_eq!(
            find(&samples, "reference_ready_requests_total", &BTreeMap::new()),
            Ok(42.0)
        );
    }
}
