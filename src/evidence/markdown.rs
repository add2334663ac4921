//! `report.md`: the change-ticket report, rendered from [`Evidence`] with a
//! minijinja template (`report.md.j2` beside this file, compiled into the
//! binary, unless `--template` says otherwise).
//!
//! The first screen is what an approver decides on: the verdict, one row
//! per step with its plain-language claim ([`claims`](super::claims)),
//! what failed and what was not proven, the run's environment, how to
//! verify the bundle and how to reproduce the run. Everything else follows
//! as an appendix of collapsible blocks ([`appendix`](super::appendix)).
//!
//! The template sees the [`Evidence`] as `evidence.json` has it, each step
//! with a few derived fields: `claim`, `checks_passed`, `shown` (its
//! actions as the appendix shows them) and `waiver` (the applied or
//! expired waiver for it); and `counts` of failed and unproven steps.
//!
//! Sample:
//!
//! ```text
//! # Go/No-Go evidence: reference
//!
//! > **Verdict: GO** — 15 of 15 required steps passed
//!
//! | # | Claim | Result | Checks | Time |
//! |--:|-------|--------|-------:|-----:|
//! | 1 | The migrations apply cleanly (exit 0) and leave the database at the newest version. | **PASS** | 2 of 2 | 141 ms |
//! ```

use std::path::Path;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use super::Evidence;
use super::appendix::{self, Shown};
use crate::outcome::{Note, NoteKind, StepOutcome, StepStatus};
use crate::waiver::{WaiverRecord, WaiverState};

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
        .render(context(evidence))
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

/// A step as the template sees it: the recorded outcome and what the
/// report derives from it.
#[derive(Serialize)]
struct StepView<'a> {
    #[serde(flatten)]
    step: &'a StepOutcome,
    /// What a PASS proves, in plain words (see [`super::claims`]); not
    /// `claim`, which the flattened outcome already has.
    proves: String,
    checks_passed: usize,
    /// Checks that held on the healthy answer too (neither PASS nor FAIL).
    checks_idle: usize,
    shown: Vec<Shown>,
    /// The waiver that applied to the step, or that had expired for it.
    waiver: Option<&'a WaiverRecord>,
    /// Its notes saying that a pass depends on the machine.
    on_machine: Vec<&'a Note>,
}

/// How many steps the first screen lists as failed and as not proven.
#[derive(Serialize)]
struct Counts {
    failed: usize,
    /// NOT RUN, WAIVED, and any other status that is neither PASS nor
    /// FAIL (such as NOT APPLICABLE).
    not_proven: usize,
    /// Notes, on steps that passed, saying the pass depends on the machine.
    on_machine: usize,
}

/// The template's context: the evidence, its steps as [`StepView`]s, and
/// the [`Counts`].
fn context(evidence: &Evidence) -> Value {
    let steps: Vec<StepView<'_>> = evidence
        .steps
        .iter()
        .map(|step| StepView {
            step,
            proves: super::claims::claim(step),
            checks_passed: step.checks.iter().filter(|c| c.passed).count(),
            checks_idle: step.checks.iter().filter(|c| !c.discriminates).count(),
            shown: appendix::shown(step),
            waiver: evidence.waivers.iter().find(|w| {
                w.step == step.id && matches!(w.state, WaiverState::Applied | WaiverState::Expired)
            }),
            on_machine: step
                .notes
                .iter()
                .filter(|n| step.status == StepStatus::Pass && n.kind == NoteKind::DependsOnMachine)
                .collect(),
        })
        .collect();
    let counts = Counts {
        failed: evidence
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Fail)
            .count(),
        not_proven: evidence
            .steps
            .iter()
            .filter(|s| !matches!(s.status, StepStatus::Pass | StepStatus::Fail))
            .count(),
        on_machine: steps.iter().map(|s| s.on_machine.len()).sum(),
    };
    minijinja::context! {
        steps => Value::from(minijinja::value::Serde(&steps)),
        counts => Value::from(minijinja::value::Serde(&counts)),
        ..Value::from(minijinja::value::Serde(evidence))
    }
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
    appendix::ms(value)
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
    fn a_check_that_does_not_discriminate_never_reads_as_pass() {
        let mut evidence = crate::evidence::sample::evidence();
        let m = crate::mask::Masker::new();
        let step = &mut evidence.steps[0];
        step.checks.push(crate::outcome::Check {
            expected: m.mask("503 body names Redis"),
            observed: m.mask("body mentions Redis"),
            passed: false,
            discriminates: false,
            healthy: Some(
                m.mask(r#"the healthy HTTP 200 body names Redis too: /checked/1 = "Redis""#),
            ),
        });
        let report = render(&evidence, None).unwrap();
        assert!(
            report.contains(
                r#"| 503 body names Redis | body mentions Redis; the healthy HTTP 200 body names Redis too: /checked/1 = "Redis" | **DOES NOT DISCRIMINATE**: the healthy answer satisfies it too; not counted as passed |"#
            ),
            "{report}"
        );
        assert!(
            report.contains("| 1 of 2 (1 not discriminating) |"),
            "{report}"
        );
        assert!(
            report.contains("Not proven by this run: 503 body names Redis"),
            "{report}"
        );
        let xml = super::super::junit::render(&evidence).unwrap();
        assert!(
            xml.contains("[does not discriminate: the healthy answer satisfies it too; not counted as passed] expected 503 body names Redis"),
            "{xml}"
        );
    }

    /// The appendix block of step `n` in `report`.
    fn step_block(report: &str, n: u32) -> &str {
        report
            .split(&format!("<summary>Step {n} — "))
            .nth(1)
            .and_then(|rest| rest.split("</details>").next())
            .unwrap_or_else(|| panic!("no step {n} block"))
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
            report.contains("; release 2026.03.01 (owner: platform-readiness)\n"),
            "{report}"
        );
    }

    /// The report up to its appendix.
    fn first_screen(report: &str) -> &str {
        &report[..report.find("\n## Appendix").expect("an appendix")]
    }

    #[test]
    fn the_first_screen_says_what_failed_and_what_was_not_proven() {
        let mut evidence = crate::evidence::sample::evidence();
        evidence.signed_by = Some("SHA256:beef".into());
        let report = render(&evidence, None).unwrap();
        let screen = first_screen(&report);
        assert!(screen.contains("> **Verdict: NO-GO** — "), "{screen}");
        assert!(
            screen.contains("**What failed**\n\n- Step 2: expected HTTP 503, observed &lt;script&gt;; its waiver expired on 2026-01-01 (\"old exception\", approved by bob)\n"),
            "{screen}"
        );
        assert!(
            screen.contains("- Step 3 **NOT RUN**: the scenario has no [migrations]\n"),
            "{screen}"
        );
        assert!(
            screen.contains("- Step 4 **WAIVED** (was FAIL: expected exit 1, observed exit 0): waived, \"known issue, fix in 1.2\", approved by alice, expires 2026-04-01 (UTC, inclusive)\n"),
            "{screen}"
        );
        assert!(
            screen.contains("| 2 | Title of b-step | **FAIL** | 1 of 2 | 1.20 s |"),
            "{screen}"
        );
        assert!(screen.contains("by key `SHA256:beef`"), "{screen}");
        assert!(screen.contains("sha256 `abababab"), "{screen}");
        assert!(screen.contains("commit `0123456789abcdef"), "{screen}");
        assert!(
            screen.contains("```bash\ngonogo run scenarios/sample.toml\n```"),
            "{screen}"
        );
        assert!(screen.contains("`sha256sum manifest.json`"), "{screen}");
        // Every step, and nothing but the summary, in a collapsible block.
        assert_eq!(report.matches("<details><summary>Step ").count(), 4);
    }

    #[test]
    fn a_step_that_did_not_run_names_its_expired_waiver() {
        let mut evidence = crate::evidence::sample::evidence();
        evidence.waivers[1].step = "c-step".into();
        evidence.waivers[1].step_status = Some(crate::outcome::StepStatus::NotRun);
        let report = render(&evidence, None).unwrap();
        assert!(
            first_screen(&report).contains("- Step 3 **NOT RUN**: the scenario has no [migrations]; its waiver expired on 2026-01-01 (\"old exception\", approved by bob)\n"),
            "{report}"
        );
    }

    #[test]
    fn an_unsigned_run_with_every_step_passing_says_so() {
        let mut evidence = crate::evidence::sample::evidence();
        evidence.waivers.clear();
        for step in &mut evidence.steps {
            step.status = crate::outcome::StepStatus::Pass;
        }
        let report = render(&evidence, None).unwrap();
        let screen = first_screen(&report);
        assert!(!screen.contains("**What failed**"), "{screen}");
        assert!(
            screen.contains("**Not proven:** nothing; every step ran.\n"),
            "{screen}"
        );
        assert!(screen.contains("- Signature: unsigned"), "{screen}");
    }

    #[test]
    fn a_step_not_applicable_is_not_proven_with_its_reason() {
        let mut evidence = crate::evidence::sample::evidence();
        evidence.steps[2].status = StepStatus::NotApplicable;
        evidence.steps[2].summary =
            crate::mask::Masker::new().mask("declared not applicable: no strict mode <b>");
        let report = render(&evidence, None).unwrap();
        let screen = first_screen(&report);
        assert!(
            screen.contains("| 3 | Title of c-step | **NOT APPLICABLE** | — | 1.20 s |"),
            "{screen}"
        );
        assert!(
            screen.contains(
                "**Not proven**\n\n- Step 3 **NOT APPLICABLE**: declared not applicable: no strict mode &lt;b&gt;\n"
            ),
            "{screen}"
        );
    }

    /// What a dependency saw is part of the step's own block, after the
    /// service log, and renders inert.
    #[test]
    fn the_dependency_view_is_inside_its_step_block() {
        let masker = crate::mask::Masker::new();
        let mut evidence = crate::evidence::sample::evidence();
        evidence.steps[1].dependency_views = vec![crate::outcome::DependencyView {
            dependency: "Redis".into(),
            source: "error replies".into(),
            text: crate::outcome::Excerpt {
                head: masker.mask("NOAUTH 3 <script>"),
                tail: None,
                total_lines: 1,
                omitted_lines: 0,
                truncated: false,
                kept_bytes: None,
            },
            alongside: vec!["Postgres runtime faults (steps 8-11)".into()],
        }];
        let report = render(&evidence, None).unwrap();
        let block = step_block(&report, 2);
        assert!(
            block.contains(
                "\nWhat Redis saw during this step (error replies; meanwhile it also served Postgres runtime faults (steps 8-11), so some of this may be theirs):\n```\nNOAUTH 3 <script>\n```\n\n"
            ),
            "{block}"
        );
        assert!(!first_screen(&report).contains("NOAUTH"), "{report}");
    }

    /// A step's notes sit under its checks: the facts as text, the
    /// service's own line in a code span.
    #[test]
    fn notes_follow_the_checks_and_quote_the_service_inert() {
        let masker = crate::mask::Masker::new();
        let mut evidence = crate::evidence::sample::evidence();
        let note = |kind, text: &str, quote: Option<&str>| crate::outcome::Note {
            about: masker.mask("REDIS_URL unset"),
            kind,
            text: masker.mask(text),
            quote: quote.map(|q| masker.mask(q)),
        };
        evidence.steps[1].notes = vec![
            note(
                crate::outcome::NoteKind::Observed,
                "the service made no connection to any dependency before it exited",
                None,
            ),
            note(
                crate::outcome::NoteKind::DependsOnMachine,
                "this pass depends on the machine",
                Some("*Connection refused* <b>"),
            ),
        ];
        let report = render(&evidence, None).unwrap();
        // Step 2 of the sample failed: its notes stay in its block.
        assert!(!first_screen(&report).contains("depend on the machine"));
        evidence.steps[0].notes = evidence.steps[1].notes.clone();
        let report = render(&evidence, None).unwrap();
        assert!(
            first_screen(&report).contains("**Passes that depend on the machine** (a fact for the reader, not a failure)\n\n- Step 1, REDIS_URL unset: this pass depends on the machine\n"),
            "{report}"
        );
        let block = step_block(&report, 2);
        assert!(
            block.contains("|\n\n- REDIS_URL unset: the service made no connection to any dependency before it exited\n- REDIS_URL unset: **this pass depends on the machine**; its output: `*Connection refused* <b>`\n\n"),
            "{block}"
        );
    }

    /// GitHub and GitLab render Markdown inside `<details>` only with a
    /// blank line after `</summary>` and before `</details>`.
    #[test]
    fn collapsible_blocks_have_blank_lines_around_their_markdown() {
        let report = render(&crate::evidence::sample::evidence(), None).unwrap();
        let lines: Vec<&str> = report.lines().collect();
        let mut blocks = 0;
        for (i, line) in lines.iter().enumerate() {
            if line.starts_with("<details>") {
                blocks += 1;
                assert!(line.ends_with("</summary>"), "{line}");
                assert_eq!(lines[i + 1], "", "after {line}");
            }
            if *line == "</details>" {
                assert_eq!(lines[i - 1], "", "before line {}", i + 1);
            }
        }
        assert_eq!(blocks, report.matches("</details>").count());
        assert_eq!(blocks, 5, "run details and one block per step");
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
            report.contains("- Service: `` `v1` <script> ``, commit"),
            "{report}"
        );
    }

    #[test]
    fn cells_escape_pipes_and_newlines() {
        assert_eq!(cell("a|b\nc".into()), "a\\|b<br>c");
        assert_eq!(cell("<script>".into()), "&lt;script&gt;");
    }
}
