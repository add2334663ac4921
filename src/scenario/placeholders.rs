//! Placeholders: `{{port}}`, `{{database_url}}`, `{{redis_url}}` and friends,
//! which gonogo fills in when it starts the service.
//!
//! A [`Template`] is parsed once, at load time, so a misspelt placeholder is
//! a scenario error with a line number rather than a surprise mid-run.

use std::collections::BTreeMap;

/// Every placeholder a scenario may use, with what it expands to.
pub const KNOWN: &[(&str, &str)] = &[
    ("port", "the TCP port the service must listen on"),
    ("host", "the address the service must bind (127.0.0.1)"),
    (
        "database_url",
        "postgresql://USER:PASSWORD@HOST:PORT/DB of the Postgres under test",
    ),
    ("database_host", "the Postgres host"),
    ("database_port", "the Postgres port"),
    ("database_user", "the Postgres user"),
    (
        "database_password",
        "the Postgres password (masked in evidence)",
    ),
    ("database_name", "the Postgres database name"),
    (
        "redis_url",
        "redis://:PASSWORD@HOST:PORT/0 of the Redis under test",
    ),
    ("redis_host", "the Redis host"),
    ("redis_port", "the Redis port"),
    ("redis_password", "the Redis password (masked in evidence)"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Placeholder(String),
}

/// A string with `{{name}}` placeholders, checked against [`KNOWN`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// Values for each placeholder at one moment of the run.
pub type Bindings = BTreeMap<String, String>;

impl Template {
    /// Parse `text`, rejecting unknown or unterminated placeholders, and
    /// accepting the placeholders in `extra` (those of
    /// the scenario's own `[[dependency]]` entries).
    pub fn parse_with(text: &str, extra: &[String]) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                segments.push(Segment::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("unterminated placeholder in `{text}`: missing `}}}}`"))?;
            let name = after[..end].trim();
            let known = KNOWN
                .iter()
                .map(|(known, _)| *known)
                .chain(extra.iter().map(String::as_str))
                .find(|known| *known == name)
                .map(str::to_string)
                .ok_or_else(|| {
                    let names: Vec<String> = KNOWN
                        .iter()
                        .map(|(n, _)| *n)
                        .chain(extra.iter().map(String::as_str))
                        .map(|n| format!("{{{{{n}}}}}"))
                        .collect();
                    format!(
                        "unknown placeholder `{{{{{name}}}}}`; known placeholders are {}",
                        names.join(", ")
                    )
                })?;
            segments.push(Segment::Placeholder(known));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_string()));
        }
        Ok(Template { segments })
    }

    /// A template with no placeholders.
    pub fn literal(text: &str) -> Template {
        Template {
            segments: vec![Segment::Literal(text.to_string())],
        }
    }

    /// Expand with `bindings`; a placeholder with no binding expands to "".
    pub fn render(&self, bindings: &Bindings) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Placeholder(name) => out.push_str(
                    bindings
                        .get(name.as_str())
                        .map(String::as_str)
                        .unwrap_or(""),
                ),
            }
        }
        out
    }

    /// Whether the template uses the named placeholder.
    pub fn uses(&self, name: &str) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Placeholder(n) if *n == name))
    }

    /// The text as written, placeholders included (for display).
    pub fn source(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Placeholder(name) => {
                    out.push_str("{{");
                    out.push_str(name);
                    out.push_str("}}");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_placeholders() {
        let t = Template::parse_with(
            "redis://:{{redis_password}}@{{ redis_host }}:{{redis_port}}/0",
            &[],
        )
        .unwrap();
        let mut b = Bindings::new();
        b.insert("redis_password".into(), "pw".into());
        b.insert("redis_host".into(), "127.0.0.1".into());
        b.insert("redis_port".into(), "6379".into());
        assert_eq!(t.render(&b), "redis://:pw@127.0.0.1:6379/0");
        assert!(t.uses("redis_port"));
        assert!(!t.uses("port"));
    }

    #[test]
    fn rejects_unknown_and_unterminated() {
        let err = Template::parse_with("{{db_url}}", &[]).unwrap_err();
        assert!(err.contains("unknown placeholder `{{db_url}}`"), "{err}");
        assert!(err.contains("{{database_url}}"), "{err}");
        let err = Template::parse_with("x {{port", &[]).unwrap_err();
        assert!(err.contains("unterminated"), "{err}");
    }
}
