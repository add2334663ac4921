//! The scenario's release-gate tables: `[release]` (what the scorecard calls
//! the release and its owner), `[[waiver]]` (signed-off exceptions) and
//! `[[not_applicable]]` (steps that do not apply to this service), in raw
//! serde shape and validated into [`ReleaseSpec`], [`Waiver`]s and
//! [`NotApplicable`]s.
//!
//! ```toml
//! [release]
//! version = "2026.03.01"        # `release` in the scorecard; --release wins
//! owner = "platform-readiness"  # --owner wins
//!
//! [[waiver]]
//! step = "negative-proof"       # a step id, as in evidence.json
//! justification = "Redis outage handling ships in 1.4 (TICKET-123)"
//! approver = "alice@example.com"
//! expires = 2026-04-01          # a TOML date or "YYYY-MM-DD"; inclusive, UTC
//!
//! [[not_applicable]]
//! step = "fail-fast"
//! reason = "no strict mode: the service reads its configuration per request"
//! ```
//!
//! Here only the shape is checked; that each step id names a step of the
//! scenario's plan is checked by `steps::validate`, which knows the plan.

use std::ops::Range;

use chrono::NaiveDate;
use serde::Deserialize;
use toml::Spanned;

use super::ScenarioError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseFile {
    pub version: Option<String>,
    pub owner: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaiverFile {
    pub step: Spanned<String>,
    pub justification: Spanned<String>,
    pub approver: Spanned<String>,
    pub expires: Spanned<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotApplicableFile {
    pub step: Spanned<String>,
    pub reason: Spanned<String>,
}

/// A step the scenario declares not applicable to this service
/// (`[[not_applicable]]`): it is not run, shows as NOT APPLICABLE with the
/// reason in every artifact, and does not block GO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotApplicable {
    /// The step's id, e.g. `fail-fast`.
    pub step: String,
    /// Why it does not apply; required.
    pub reason: String,
    /// Where the step id is written in the scenario file, for messages.
    pub span: Range<usize>,
}

/// What the scenario says about the release it gates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseSpec {
    pub version: Option<String>,
    pub owner: Option<String>,
}

/// One waiver as the scenario declares it (`[[waiver]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    /// The id of the step it waives, e.g. `negative-proof`.
    pub step: String,
    pub justification: String,
    pub approver: String,
    /// Last day (UTC) on which the waiver holds.
    pub expires: NaiveDate,
    /// 1-based line of the waiver in the scenario file, for messages.
    pub line: usize,
    /// Where the step id is written in the scenario file, for messages.
    pub span: Range<usize>,
}

pub fn release(raw: Option<&ReleaseFile>) -> ReleaseSpec {
    raw.map(|r| ReleaseSpec {
        version: r.version.clone().filter(|v| !v.trim().is_empty()),
        owner: r.owner.clone().filter(|o| !o.trim().is_empty()),
    })
    .unwrap_or_default()
}

/// Validate `[[waiver]]` entries; `error_at` points an error at a span of
/// `source`.
pub fn waivers(
    raw: &[WaiverFile],
    source: &str,
    error_at: &dyn Fn(Range<usize>, String) -> ScenarioError,
) -> Result<Vec<Waiver>, ScenarioError> {
    let mut out: Vec<Waiver> = Vec::new();
    for w in raw {
        let step = step_id(&w.step, error_at)?;
        if out.iter().any(|o| o.step == step) {
            return Err(error_at(
                w.step.span(),
                format!("step `{step}` is waived twice; keep one waiver per step"),
            ));
        }
        for (field, value) in [
            ("justification", &w.justification),
            ("approver", &w.approver),
        ] {
            if value.get_ref().trim().is_empty() {
                return Err(error_at(
                    value.span(),
                    format!(
                        "`{field}` must not be empty: a waiver needs a reason and who signed it off"
                    ),
                ));
            }
        }
        let expires = date(w.expires.get_ref()).ok_or_else(|| {
            error_at(
                w.expires.span(),
                "`expires` must be a date like 2026-12-31 (a TOML date or a \"YYYY-MM-DD\" string)"
                    .into(),
            )
        })?;
        out.push(Waiver {
            step: step.to_string(),
            justification: w.justification.get_ref().trim().to_string(),
            approver: w.approver.get_ref().trim().to_string(),
            expires,
            line: source[..w.step.span().start.min(source.len())]
                .matches('\n')
                .count()
                + 1,
            span: w.step.span(),
        });
    }
    Ok(out)
}

/// Validate `[[not_applicable]]` entries: a step id, a reason, each step
/// once, and no step both waived and not applicable.
pub fn not_applicable(
    raw: &[NotApplicableFile],
    waivers: &[Waiver],
    error_at: &dyn Fn(Range<usize>, String) -> ScenarioError,
) -> Result<Vec<NotApplicable>, ScenarioError> {
    let mut out: Vec<NotApplicable> = Vec::new();
    for n in raw {
        let step = step_id(&n.step, error_at)?;
        if out.iter().any(|o| o.step == step) {
            return Err(error_at(
                n.step.span(),
                format!("step `{step}` is declared not applicable twice; keep one entry per step"),
            ));
        }
        if waivers.iter().any(|w| w.step == step) {
            return Err(error_at(
                n.step.span(),
                format!(
                    "step `{step}` is both waived and declared not applicable; a step that does not apply needs no waiver, so keep one of them"
                ),
            ));
        }
        let reason = n.reason.get_ref().trim();
        if reason.is_empty() {
            return Err(error_at(
                n.reason.span(),
                "`reason` must not be empty: say why the step does not apply to this service"
                    .into(),
            ));
        }
        out.push(NotApplicable {
            step: step.to_string(),
            reason: reason.to_string(),
            span: n.step.span(),
        });
    }
    Ok(out)
}

/// A step id as written, checked for shape.
fn step_id<'s>(
    raw: &'s Spanned<String>,
    error_at: &dyn Fn(Range<usize>, String) -> ScenarioError,
) -> Result<&'s str, ScenarioError> {
    let step = raw.get_ref().trim();
    let valid_id = !step.is_empty()
        && step
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid_id {
        return Err(error_at(
            raw.span(),
            format!(
                "`{step}` is not a step id; use the id from evidence.json, e.g. `negative-proof`"
            ),
        ));
    }
    Ok(step)
}

fn date(value: &toml::Value) -> Option<NaiveDate> {
    match value {
        toml::Value::String(text) => NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok(),
        toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
            let d = dt.date?;
            NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::{ScenarioError, load_str};

    fn load(tail: &str) -> Result<crate::scenario::Scenario, ScenarioError> {
        let dir = tempfile::tempdir().unwrap();
        let source = format!("[service]\ncommand = [\"./svc\"]\n\n{tail}");
        load_str(&dir.path().join("s.toml"), &source)
    }

    const WAIVER: &str = "[[waiver]]\nstep = \"negative-proof\"\njustification = \"fix in 1.4\"\napprover = \"alice\"\n";

    #[test]
    fn waivers_and_release_load_with_either_date_form() {
        let s = load(&format!(
            "[release]\nversion = \"2026.03.01\"\nowner = \"platform\"\n\n{WAIVER}expires = 2026-04-01\n\n[[waiver]]\nstep = \"fail-fast\"\njustification = \"j\"\napprover = \"bob\"\nexpires = \"2026-05-01\"\n"
        ))
        .unwrap();
        assert_eq!(s.release.version.as_deref(), Some("2026.03.01"));
        assert_eq!(s.release.owner.as_deref(), Some("platform"));
        assert_eq!(s.waivers.len(), 2);
        assert_eq!(s.waivers[0].expires.to_string(), "2026-04-01");
        assert_eq!(s.waivers[0].line, 9);
        assert_eq!(s.waivers[1].expires.to_string(), "2026-05-01");
    }

    #[test]
    fn a_bad_expiry_is_reported_at_its_line() {
        let e = load(&format!("{WAIVER}expires = \"next week\"\n")).unwrap_err();
        assert_eq!(e.location.map(|l| l.0), Some(8), "{e}");
        assert_eq!(e.field.as_deref(), Some("waiver.expires"), "{e}");
        assert!(e.message.contains("must be a date"), "{e}");
        let e = load(&format!("{WAIVER}expires = 2026-04-01T10:00:00Z\n")).unwrap_err();
        assert!(e.message.contains("must be a date"), "{e}");
    }

    #[test]
    fn missing_or_empty_fields_are_errors_with_a_place() {
        let e = load(
            "[[waiver]]\nstep = \"ready-gate\"\njustification = \"j\"\nexpires = 2026-04-01\n",
        )
        .unwrap_err();
        assert!(e.message.contains("approver"), "{e}");
        assert!(e.location.is_some(), "{e}");
        let e = load(
            "[[waiver]]\nstep = \"ready-gate\"\njustification = \"  \"\napprover = \"a\"\nexpires = 2026-04-01\n",
        )
        .unwrap_err();
        assert_eq!(e.location.map(|l| l.0), Some(6), "{e}");
        assert!(
            e.message.contains("`justification` must not be empty"),
            "{e}"
        );
    }

    #[test]
    fn a_step_waived_twice_is_an_error() {
        let e = load(&format!(
            "{WAIVER}expires = 2026-04-01\n\n{WAIVER}expires = 2026-04-01\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("waived twice"), "{e}");
        assert_eq!(e.location.map(|l| l.0), Some(11), "{e}");
    }
}
