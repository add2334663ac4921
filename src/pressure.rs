//! The machine's CPU pressure (Linux PSI, `/proc/pressure/cpu`): how much
//! of a time span some runnable task waited for a CPU. The latency step
//! records it beside its figures, so a reader can tell a slow service from
//! a busy machine.

use std::time::Duration;

/// The cumulative time, in microseconds, that some task waited for a CPU
/// (`some ... total=`), or `None` where the kernel does not say.
pub fn cpu_stall() -> Option<u64> {
    parse(&std::fs::read_to_string("/proc/pressure/cpu").ok()?)
}

/// The `some` line's `total=` of a `/proc/pressure/cpu` text.
fn parse(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("some "))?;
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?
        .parse()
        .ok()
}

/// The share of `wall` that some task waited for a CPU, from two readings
/// of [`cpu_stall`] at its start and end (0.0 to 1.0).
pub fn share(before: Option<u64>, after: Option<u64>, wall: Duration) -> Option<f64> {
    let (before, after) = (before?, after?);
    let wall_us = wall.as_micros() as f64;
    (wall_us > 0.0).then(|| (after.saturating_sub(before) as f64 / wall_us).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_some_total_and_gives_a_share_of_the_wall_time() {
        let text = "some avg10=70.90 avg60=64.87 avg300=78.66 total=8241848899\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(parse(text), Some(8_241_848_899));
        assert_eq!(parse("full avg10=0.00 total=3\n"), None);
        assert_eq!(parse("some total=x\n"), None);
        let half = share(Some(1_000), Some(501_000), Duration::from_secs(1));
        assert_eq!(half, Some(0.5));
        assert_eq!(share(None, Some(1), Duration::from_secs(1)), None);
        assert_eq!(share(Some(5), Some(1), Duration::from_secs(1)), Some(0.0));
        assert_eq!(
            share(Some(0), Some(9_000_000), Duration::from_secs(1)),
            Some(1.0)
        );
        assert_eq!(share(Some(0), Some(1), Duration::ZERO), None);
    }
}
