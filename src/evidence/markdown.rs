//! `report.md`: the change-ticket report, rendered from [`Evidence`] with a
//! minijinja template (`report.md.j2` beside this file, compiled into the
//! binary, unless `--template` says otherwise).
//!
//! Sample:
//!
//! ```text
//! # Go/No-Go evidence: reference
//!
//! > **Verdict: GO** — 4 of 4 required steps passed
//! ```

use std::path::Path;

use minijinja::{Environment, UndefinedBehavior, Value};

use super::Evidence;

/// The built-in template, compiled into the binary.
pub const DEFAULT_TEMPLATE: &str = include_str!("report.md.j2");

/// A template that cannot be loaded or rendered, with its location.
#[derive(Debug, thiserror::Error)]
#[error("template {name}{location}: {message}")]
pub struct TemplateError {
    pub name: String,
    pub location: String,
    pub message: String,
}

impl TemplateError {
    fn from_minijinja(name: &str, e: &minijinja::Error) -> TemplateError {
        TemplateError {
            name: name.to_string(),
            location: e.line().map(|l| format!(":{l}")).unwrap_or_default(),
            message: e.to_string(),
        }
    }
}

/// Read a user template from disk, checking that it compiles.
pub fn load_template(path: &Path) -> Result<String, TemplateError> {
    let text = std::fs::read_to_string(path).map_err(|e| TemplateError {
        name: path.display().to_string(),
        location: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    let mut env = environment();
    env.add_template_owned("user", text.clone())
        .map_err(|e| TemplateError::from_minijinja(&path.display().to_string(), &e))?;
    Ok(text)
}

/// Render `evidence` with `template` (the built-in one when `None`).
pub fn render(evidence: &Evidence, template: Option<&str>) -> Result<String, TemplateError> {
    let source = template.unwrap_or(DEFAULT_TEMPLATE);
    let mut env = environment();
    env.add_template_owned("report", source.to_string())
        .map_err(|e| TemplateError::from_minijinja("report", &e))?;
    let tmpl = env
        .get_template("report")
        .map_err(|e| TemplateError::from_minijinja("report", &e))?;
    let mut out = tmpl
        .render(Value::from(minijinja::value::Serde(evidence)))
        .map_err(|e| TemplateError::from_minijinja("report", &e))?;
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// Re-render a stored `evidence.json` with `template` (the built-in one
/// when `None`), without re-running anything.
pub fn rerender(evidence_json: &Path, template: Option<&Path>) -> Result<String, String> {
    let bytes = std::fs::read(evidence_json)
        .map_err(|e| format!("cannot read {}: {e}", evidence_json.display()))?;
    let evidence: Evidence = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not gonogo evidence: {e}", evidence_json.display()))?;
    let template = template
        .map(load_template)
        .transpose()
        .map_err(|e| e.to_string())?;
    render(&evidence, template.as_deref()).map_err(|e| e.to_string())
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters are valid"),
    );
    env.add_filter("fence", fence);
    env.add_filter("cell", cell);
    env.add_filter("text", text);
    env.add_filter("code", code);
    env.add_filter("ms", ms);
    env
}

/// Wrap text in a code fence longer than any backtick run inside it, so
/// captured output can never close the fence early.
fn fence(text: String, lang: Option<String>) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let ticks = "`".repeat(longest.max(2) + 1);
    let body = if text.is_empty() {
        "(no output)"
    } else {
        &text
    };
    format!("{ticks}{}\n{body}\n{ticks}", lang.unwrap_or_default())
}

/// Make text safe inside a Markdown table cell.
fn cell(text: String) -> String {
    let flat = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\\', "\\\\")
        .replace('|', "\\|");
    let flat = flat.replace("\r\n", "<br>").replace('\n', "<br>");
    if flat.is_empty() { "—".into() } else { flat }
}

/// Service-controlled text outside a code block: HTML escaped, on one
/// line, so it renders as text and cannot start a block of its own.
fn text(value: String) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace("\r\n", " ")
        .replace('\n', " ")
}

/// An inline code span that holds any text: delimited by one more backtick
/// than the longest run inside it, padded when the text starts or ends
/// with a backtick, on one line.
fn code(value: String) -> String {
    let flat = value.replace("\r\n", " ").replace('\n', " ");
    let longest = flat.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let ticks = "`".repeat(longest + 1);
    let pad = if flat.starts_with('`') || flat.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{flat}{pad}{ticks}")
}

/// Milliseconds as a short human duration.
fn ms(value: u64) -> String {
    if value < 1000 {
        format!("{value} ms")
    } else {
        format!("{:.2} s", value as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fence_outlasts_backticks_in_content() {
        let fenced = fence("a ``` b".into(), None);
        assert!(fenced.starts_with("````\n"), "{fenced}");
        assert!(fenced.ends_with("\n````"), "{fenced}");
    }

    #[test]
    fn waivers_and_release_appear_in_the_report() {
        let report = render(&crate::evidence::sample::evidence(), None).unwrap();
        assert!(report.contains("**WAIVED**"), "{report}");
        assert!(
            report.contains("| d-step | **applied**: was FAIL, now WAIVED | known issue, fix in 1.2 | alice | 2026-04-01 |"),
            "{report}"
        );
        assert!(
            report.contains("| b-step | **EXPIRED**: no effect, the step stays FAIL |"),
            "{report}"
        );
        assert!(
            report.contains("- Release: 2026.03.01 (owner: platform-readiness)\n"),
            "{report}"
        );
    }

    #[test]
    fn service_text_renders_inert() {
        assert_eq!(
            text("<script>alert(1)</script>\n# heading".into()),
            "&lt;script&gt;alert(1)&lt;/script&gt; # heading"
        );
        assert_eq!(code("a`b".into()), "``a`b``");
        assert_eq!(code("`x` ```".into()), "```` `x` ``` ````");
        assert_eq!(code("plain".into()), "`plain`");
    }

    /// The text of `line` outside CommonMark code spans (a run of N
    /// backticks up to the next run of exactly N).
    fn outside_code_spans(line: &str) -> String {
        let mut out = String::new();
        let mut rest = line;
        while let Some(start) = rest.find('`') {
            out.push_str(&rest[..start]);
            let run = rest[start..].len() - rest[start..].trim_start_matches('`').len();
            let after = &rest[start + run..];
            let mut search = 0;
            let close = loop {
                match after[search..].find('`') {
                    None => break None,
                    Some(i) => {
                        let at = search + i;
                        let n = after[at..].len() - after[at..].trim_start_matches('`').len();
                        if n == run {
                            break Some(at);
                        }
                        search = at + n;
                    }
                }
            };
            match close {
                Some(at) => rest = &after[at + run..],
                None => {
                    out.push_str(&rest[start..]);
                    return out;
                }
            }
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn service_markup_renders_inert_in_the_report() {
        let masker = crate::mask::Masker::new();
        let hostile =
            "<script>alert(1)</script>\n```\n# not a heading\n````\n<img src=x onerror=alert(2)>";
        let mut step = crate::steps::StepRecorder::new(
            &masker,
            &crate::plan::PlannedStep {
                number: 1,
                ..crate::plan::PlannedStep::new("ready-gate", "Ready", "", "")
            },
        );
        step.check("HTTP 200", hostile, false);
        step.command(
            "GET /ready <b>",
            "curl x",
            None,
            hostile,
            Default::default(),
        );
        step.log(hostile);
        let mut evidence = crate::evidence::sample::evidence();
        evidence.steps = vec![step.finish()];
        evidence.metadata.service_version = Some(masker.mask("`v1` <script>"));
        let report = render(&evidence, None).unwrap();
        // Walk the Markdown: outside code blocks no raw tag may appear.
        let mut fence: Option<usize> = None;
        for line in report.lines() {
            let ticks = line.len() - line.trim_start_matches('`').len();
            match fence {
                Some(open) if ticks >= open && line.trim_matches('`').is_empty() => fence = None,
                Some(_) => {}
                None if ticks >= 3 => fence = Some(ticks),
                None => {
                    let outside = outside_code_spans(line);
                    assert!(!outside.contains("<script"), "live markup: {line}");
                    assert!(!outside.contains("<img"), "live markup: {line}");
                    assert!(!outside.contains("<b>"), "live markup: {line}");
                }
            }
        }
        assert!(fence.is_none(), "a fence was left open:\n{report}");
        assert!(
            report.contains("\n`````\n<script>"),
            "the log fence outlasts ````:\n{report}"
        );
        assert!(
            report.contains("- Service version: `` `v1` <script> ``"),
            "{report}"
        );
    }

    #[test]
    fn cells_escape_pipes_and_newlines() {
        assert_eq!(cell("a|b\nc".into()), "a\\|b<br>c");
        assert_eq!(cell("<script>".into()), "&lt;script&gt;");
    }
}
