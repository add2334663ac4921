//! How much of the machine's CPU other work used during a span of time: all
//! the CPU time the machine spent (`/proc/stat`) less what gonogo and its
//! own process tree spent (`/proc/<pid>/stat`: the service it started, the
//! servers it runs, and every descendant reaped meanwhile), as a share of
//! what every CPU could have given. The latency step records it beside its
//! figures, so a reader can tell a slow service from a busy machine.

use std::time::Duration;

use crate::process::tree;

/// CPU time, in clock ticks, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// What every CPU of the machine spent outside idle and I/O wait.
    machine: u64,
    /// What gonogo's process and its descendants spent (reaped ones
    /// included, through the parents' `cutime`/`cstime`).
    own: u64,
    /// How many CPUs the machine has.
    cpus: u64,
}

/// A reading now, or `None` where `/proc` does not say.
pub fn read() -> Option<Reading> {
    let (machine, cpus) = parse_machine(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let me = std::process::id();
    let own = std::iter::once(me)
        .chain(tree::descendants(me).into_iter().map(|p| p.pid))
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|text| parse_process(&text))
        .sum();
    Some(Reading { machine, own, cpus })
}

/// The share (0.0 to 1.0) of the machine's CPU capacity over `wall` that
/// other work used between two readings.
pub fn others_share(
    before: Option<Reading>,
    after: Option<Reading>,
    wall: Duration,
) -> Option<f64> {
    let (before, after) = (before?, after?);
    let ticks = clock_ticks()?;
    let capacity = wall.as_secs_f64() * ticks * after.cpus as f64;
    let machine = after.machine.saturating_sub(before.machine);
    let own = after.own.saturating_sub(before.own);
    (capacity > 0.0).then(|| (machine.saturating_sub(own) as f64 / capacity).clamp(0.0, 1.0))
}

fn clock_ticks() -> Option<f64> {
    // SAFETY: sysconf reads a constant of the system; no memory is shared.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then_some(ticks as f64)
}

/// The busy ticks of the `cpu` line of `/proc/stat` and the number of
/// `cpuN` lines.
fn parse_machine(text: &str) -> Option<(u64, u64)> {
    let total = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = total
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest is in user).
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum();
    let cpus = text
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count() as u64;
    (cpus > 0).then_some((busy, cpus))
}

/// utime + stime + cutime + cstime of one `/proc/<pid>/stat`.
fn parse_process(text: &str) -> Option<u64> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state(0) … utime(11) stime(12) cutime(13) cstime(14).
    (11..=14)
        .map(|i| fields.get(i)?.parse::<i64>().ok().map(|v| v.max(0) as u64))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_machine_and_a_process() {
        let stat = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\ncpu1 50 3 25 500 10 2 1 1 0 0\nintr 1\n";
        assert_eq!(parse_machine(stat), Some((100 + 5 + 50 + 3 + 2 + 1, 2)));
        assert_eq!(parse_machine("intr 1\n"), None);
        let proc = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 11 9 20 0 1 0 12345 0 0";
        assert_eq!(parse_process(proc), Some(7 + 3 + 11 + 9));
        assert_eq!(parse_process("42 (x) S 1"), None);
    }

    #[test]
    fn the_share_is_what_others_spent_of_the_capacity() {
        let Some(ticks) = clock_ticks() else { return };
        let at = |machine: u64, own: u64| Reading {
            machine,
            own,
            cpus: 2,
        };
        let second = Duration::from_secs(1);
        // 2 CPUs for 1 s: 2 × ticks; others spent half a CPU.
        let half_cpu = (ticks / 2.0) as u64;
        let share = others_share(Some(at(0, 0)), Some(at(half_cpu * 3, half_cpu * 2)), second);
        assert!((share.unwrap() - 0.25).abs() < 0.01, "{share:?}");
        // Our own work is never another's.
        assert_eq!(
            others_share(Some(at(0, 0)), Some(at(50, 80)), second),
            Some(0.0)
        );
        assert_eq!(others_share(None, Some(at(1, 1)), second), None);
        assert_eq!(
            others_share(Some(at(0, 0)), Some(at(1, 1)), Duration::ZERO),
            None
        );
    }

    #[test]
    fn a_reading_of_this_machine_works() {
        let before = read().expect("/proc/stat and /proc/self/stat");
        assert!(before.cpus >= 1);
        let share = others_share(Some(before), read(), Duration::from_millis(50));
        assert!(share.is_some_and(|s| (0.0..=1.0).contains(&s)));
    }
}
