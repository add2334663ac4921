//! The whole run's deadline (`gonogo run --deadline`, default 30 min). Takes
//! a run and a [`Duration`]; gives the run's result, or past the deadline a
//! harness error that says where the run was. The run future is dropped
//! there, so every guard stops its process and no evidence is written.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::progress::{Event, Reporter};
use crate::run::{RunOptions, RunOutcome, run};
use crate::scenario::Scenario;

/// The default for `--deadline`.
pub const DEFAULT: Duration = Duration::from_secs(30 * 60);
/// The longest `--deadline` accepted.
pub const MAX: Duration = Duration::from_secs(24 * 60 * 60);

/// Forwards every event and remembers which phase of the run it is in.
struct Tracking<'a> {
    inner: &'a mut dyn Reporter,
    at: Arc<Mutex<String>>,
}

impl Reporter for Tracking<'_> {
    fn event(&mut self, event: Event<'_>) {
        let phase = match &event {
            Event::ProvisionStarted { .. } => Some("provisioning the dependencies".to_string()),
            Event::StepStarted {
                number,
                total,
                title,
            } => Some(format!("step {number}/{total} ({title})")),
            Event::Cleanup { .. } | Event::Kept { .. } => Some("cleanup".to_string()),
            _ => None,
        };
        if let Some(phase) = phase {
            *self.at.lock().unwrap_or_else(|e| e.into_inner()) = phase;
        }
        self.inner.event(event);
    }
}

/// [`run`], ended as a harness error (exit 3) once `deadline` passes.
pub async fn run_within(
    scenario: &Scenario,
    options: &RunOptions,
    reporter: &mut dyn Reporter,
    deadline: Duration,
) -> Result<RunOutcome> {
    let at = Arc::new(Mutex::new("starting".to_string()));
    let mut tracking = Tracking {
        inner: reporter,
        at: at.clone(),
    };
    match tokio::time::timeout(deadline, run(scenario, options, &mut tracking)).await {
        Ok(result) => result,
        Err(_elapsed) => {
            let at = at.lock().unwrap_or_else(|e| e.into_inner()).clone();
            Err(Error::Harness(anyhow::anyhow!(
                "the run passed its deadline of {} (--deadline) during {at}; every child process was stopped and no evidence was written",
                crate::scenario::human_duration(deadline)
            )))
        }
    }
}

/// Parses `--deadline`: a duration such as `90s`, `30m` or `2h`, more than
/// 0 and at most 24 h.
pub fn parse(text: &str) -> std::result::Result<Duration, String> {
    let value = crate::scenario::parse_duration(text)?;
    if value.is_zero() || value > MAX {
        return Err(format!(
            "`{text}` is out of range: give more than 0 and at most 24 h"
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse;

    #[test]
    fn parses_and_bounds_the_deadline() {
        assert_eq!(parse("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("1500ms"), Ok(Duration::from_millis(1500)));
        for bad in ["0s", "25h", "-1s", "soon", "1e30s"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
