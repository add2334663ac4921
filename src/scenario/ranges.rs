//! Every number and duration a scenario accepts, its default and its range,
//! in one place; the README's scenario reference lists the same table.
//! `load` calls these with one line per field; a value outside its range is
//! a [`ScenarioError`] at the value's file:line:column, naming the field.
//!
//! The rules: durations are more than 0 and at most 1 h unless the field
//! says otherwise (a window of `0s` makes a check that cannot fail, and one
//! of days makes a run that never ends); HTTP statuses are 100-599; exit
//! codes are 0-255; thresholds are finite and positive; URL paths start
//! with `/` and are printable, without whitespace.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::duration::HumanDuration;
use super::load::ScenarioError;

/// Builds the error for a span (from `load`, which knows the source).
pub type ErrorAt<'a> = &'a dyn Fn(Range<usize>, String) -> ScenarioError;

const HOUR: Duration = Duration::from_secs(3600);
/// seed 000's probe deadline.
const PROBE_MAX: Duration = Duration::from_secs(5);

/// A duration field: its default and its (exclusive 0, inclusive) maximum.
#[derive(Debug, Clone, Copy)]
pub struct DurationRange {
    pub default: Duration,
    pub max: Duration,
    /// Why the maximum, when it is not the general 1 h.
    pub why: &'static str,
}

const fn within_hour(default: Duration) -> DurationRange {
    DurationRange {
        default,
        max: HOUR,
        why: "",
    }
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub const STARTUP_TIMEOUT: DurationRange = within_hour(secs(30));
pub const REQUEST_TIMEOUT: DurationRange = DurationRange {
    default: PROBE_MAX,
    max: PROBE_MAX,
    why: " (readiness contract: probes answer within 5 s)",
};
pub const MIGRATION_TIMEOUT: DurationRange = within_hour(secs(120));
pub const READY_SETTLE: DurationRange = within_hour(secs(10));
pub const NEGATIVE_OBSERVE: DurationRange = within_hour(secs(1));
pub const FAILFAST_DEADLINE: DurationRange = within_hour(secs(10));
pub const SHUTDOWN_TIMEOUT: DurationRange = within_hour(secs(20));
pub const DETECTION_WINDOW: DurationRange = within_hour(secs(10));
pub const PROBE_DEADLINE: DurationRange = DurationRange {
    default: PROBE_MAX,
    max: PROBE_MAX,
    why: " (readiness contract: probe deadlines of at most 5 s)",
};
pub const RECOVERY_WINDOW: DurationRange = within_hour(secs(10));
pub const LIVE_WATCH: DurationRange = within_hour(secs(1));

/// A count field: its default and inclusive bounds.
#[derive(Debug, Clone, Copy)]
pub struct CountRange {
    pub default: usize,
    pub min: usize,
    pub max: usize,
}

pub const LATENCY_REQUESTS: CountRange = CountRange {
    default: 200,
    min: 1,
    max: 100_000,
};
pub const LATENCY_CONCURRENCY: CountRange = CountRange {
    default: 4,
    min: 1,
    max: 256,
};
/// `[latency] p95_ms`: default, and the largest threshold (1 h).
pub const P95_MS_DEFAULT: f64 = 200.0;
pub const P95_MS_MAX: f64 = 3_600_000.0;
/// `[shutdown] exit_codes` when not given: 0, or 143 (ended by the SIGTERM).
pub const SHUTDOWN_EXIT_CODES: [i32; 2] = [0, 143];

fn shown(d: Duration) -> String {
    super::duration::human(d)
}

/// A duration field, or its default; out of range is an error at the value.
pub fn duration(
    value: &Option<Spanned<HumanDuration>>,
    range: &DurationRange,
    error_at: ErrorAt<'_>,
) -> Result<Duration, ScenarioError> {
    let Some(value) = value else {
        return Ok(range.default);
    };
    let d = value.get_ref().0;
    if d.is_zero() || d > range.max {
        return Err(error_at(
            value.span(),
            format!(
                "must be more than 0 and at most {}{}; found {}",
                shown(range.max),
                range.why,
                shown(d)
            ),
        ));
    }
    Ok(d)
}

/// A count field, or its default.
pub fn count(
    value: &Option<Spanned<usize>>,
    range: &CountRange,
    error_at: ErrorAt<'_>,
) -> Result<usize, ScenarioError> {
    let Some(value) = value else {
        return Ok(range.default);
    };
    let n = *value.get_ref();
    if n < range.min || n > range.max {
        return Err(error_at(
            value.span(),
            format!("must be between {} and {}; found {n}", range.min, range.max),
        ));
    }
    Ok(n)
}

/// An expected HTTP status (100-599), or `default`.
pub fn status(
    value: &Option<Spanned<u16>>,
    default: u16,
    error_at: ErrorAt<'_>,
) -> Result<u16, ScenarioError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let status = *value.get_ref();
    if !(100..=599).contains(&status) {
        return Err(error_at(
            value.span(),
            format!("must be an HTTP status between 100 and 599; found {status}"),
        ));
    }
    Ok(status)
}

/// `[latency] p95_ms`: finite, more than 0, at most [`P95_MS_MAX`].
pub fn p95_ms(value: &Option<Spanned<f64>>, error_at: ErrorAt<'_>) -> Result<f64, ScenarioError> {
    let Some(value) = value else {
        return Ok(P95_MS_DEFAULT);
    };
    let ms = *value.get_ref();
    if !ms.is_finite() || ms <= 0.0 || ms > P95_MS_MAX {
        return Err(error_at(
            value.span(),
            format!(
                "must be a number of milliseconds more than 0 and at most {P95_MS_MAX}; found {ms}"
            ),
        ));
    }
    Ok(ms)
}

/// `[shutdown] exit_codes`: at least one, each 0-255.
pub fn exit_codes(
    value: &Option<Spanned<Vec<Spanned<i64>>>>,
    error_at: ErrorAt<'_>,
) -> Result<Vec<i32>, ScenarioError> {
    let Some(list) = value else {
        return Ok(SHUTDOWN_EXIT_CODES.to_vec());
    };
    if list.get_ref().is_empty() {
        return Err(error_at(
            list.span(),
            "must list at least one exit code".into(),
        ));
    }
    list.get_ref()
        .iter()
        .map(|code| {
            i32::try_from(*code.get_ref())
                .ok()
                .filter(|c| (0..=255).contains(c))
                .ok_or_else(|| {
                    error_at(
                        code.span(),
                        format!(
                            "exit codes are 0-255 (a signal shows as 128 + its number); found {}",
                            code.get_ref()
                        ),
                    )
                })
        })
        .collect()
}

/// A `[[dependency]]` port: 1-65535.
pub fn port(value: &Spanned<u16>, error_at: ErrorAt<'_>) -> Result<u16, ScenarioError> {
    match *value.get_ref() {
        0 => Err(error_at(
            value.span(),
            "must be a TCP port between 1 and 65535; found 0".into(),
        )),
        port => Ok(port),
    }
}

/// Why `path` cannot be a URL path (printable, no whitespace), if it cannot.
pub fn url_path(path: &str) -> Option<String> {
    let bad = path.chars().find(|c| c.is_whitespace() || c.is_control())?;
    Some(format!(
        "`{}` must be printable, without whitespace; found {:?} (percent-encode it, e.g. %20 for a space)",
        path.escape_debug(),
        bad
    ))
}
