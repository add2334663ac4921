//! The process tree as `/proc` shows it. Takes pids; gives [`ProcInfo`]s,
//! [`Identity`]s that pid reuse cannot fake (pid plus start time), the
//! descendants of a process, and [`end_blocking`]/[`end`], which stop a set
//! of processes (with the process groups and sessions they lead) with
//! `SIGTERM`, then `SIGKILL` after a bound.
//!
//! Signals go through a pidfd opened before the start time is checked, so a
//! process that exits and whose pid is reused in between is never hit.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How often the ending loops look again.
const POLL: Duration = Duration::from_millis(10);
/// How long the ending waits after each `SIGKILL` round.
const KILL_WAIT: Duration = Duration::from_millis(500);
/// How many `SIGKILL` rounds catch processes forked during the ending.
const KILL_ROUNDS: usize = 3;

/// One process, from `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    /// Its process group.
    pub pgid: u32,
    /// Its session.
    pub sid: u32,
    /// Start time in clock ticks after boot.
    pub start: u64,
    /// `R`, `S`, `Z`, …
    pub state: char,
}

impl ProcInfo {
    /// Its identity (pid and start time).
    pub fn identity(&self) -> Identity {
        Identity {
            pid: self.pid,
            start: self.start,
        }
    }

    /// Whether it has exited and only waits to be reaped.
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// A process that pid reuse cannot be mistaken for: its pid and the start
/// time the kernel recorded for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity {
    pub pid: u32,
    pub start: u64,
}

impl Identity {
    /// The identity of the live process `pid`, if there is one.
    pub fn of(pid: u32) -> Option<Identity> {
        stat(pid).map(|p| p.identity())
    }

    /// Whether this very process still runs (a zombie has exited).
    pub fn alive(&self) -> bool {
        matches!(stat(self.pid), Some(p) if p.start == self.start && !p.is_zombie())
    }

    /// Sends `signal` to this very process; `false` when it is gone.
    pub fn signal(&self, signal: libc::c_int) -> bool {
        let Ok(pid) = libc::pid_t::try_from(self.pid) else {
            return false;
        };
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            // No pidfds (before Linux 5.3): check, then signal by pid.
            return self.alive() && {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, signal) == 0 }
            };
        }
        let fd = fd as libc::c_int;
        // The fd now pins this pid: if the start time matches, it is ours.
        let sent = self.alive() && {
            // SAFETY: fd is a pidfd we own; a null siginfo is allowed.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd,
                    signal,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                ) == 0
            }
        };
        // SAFETY: fd was opened above and is closed exactly once.
        unsafe { libc::close(fd) };
        sent
    }
}

/// Parses `/proc/<pid>/stat`.
pub fn parse_stat(text: &str) -> Option<ProcInfo> {
    let (head, rest) = text.rsplit_once(')')?;
    let pid = head.split_whitespace().next()?.parse().ok()?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state(0) ppid(1) pgrp(2) session(3) … starttime(19).
    Some(ProcInfo {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        sid: fields.get(3)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
        state: fields.first()?.chars().next()?,
    })
}

/// `/proc/<pid>/stat`, if the process exists.
pub fn stat(pid: u32) -> Option<ProcInfo> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process in `/proc`.
pub fn all() -> Vec<ProcInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .collect()
}

/// Whether the kernel lists children per thread (`CONFIG_PROC_CHILDREN`).
fn has_children_files() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        let pid = std::process::id();
        std::path::Path::new(&format!("/proc/{pid}/task/{pid}/children")).exists()
    })
}

/// The direct children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    if !has_children_files() {
        return all()
            .into_iter()
            .filter(|p| p.ppid == pid)
            .map(|p| p.pid)
            .collect();
    }
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Every descendant of `root` (not `root` itself), parents first.
pub fn descendants(root: u32) -> Vec<ProcInfo> {
    let mut found: Vec<ProcInfo> = Vec::new();
    let mut queue = vec![root];
    let mut seen = BTreeSet::from([root]);
    while let Some(parent) = queue.pop() {
        for child in children(parent) {
            if !seen.insert(child) {
                continue;
            }
            if let Some(info) = stat(child).filter(|i| i.ppid == parent) {
                found.push(info);
                queue.push(child);
            }
        }
    }
    found
}

/// The command line of `pid`, spaces for NULs, at most 200 characters.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text: String = String::from_utf8_lossy(&raw)
        .replace('\0', " ")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    })
}

/// Which processes an ending must leave alone.
pub type Spare<'a> = &'a dyn Fn(&ProcInfo) -> bool;

/// `targets` that still run, plus what they now lead or parent: their live
/// descendants, and the members of the process groups and sessions they
/// lead (or led: a group outlives its leader, and its id stays reserved).
fn widen(targets: &BTreeSet<Identity>, spare: Spare<'_>) -> BTreeSet<Identity> {
    let table: BTreeMap<u32, ProcInfo> = all().into_iter().map(|p| (p.pid, p)).collect();
    let me = std::process::id();
    // A group or session led by a target; a pid now held by a stranger
    // means that group is empty and the id was reused.
    let leaders: BTreeSet<u32> = targets
        .iter()
        .filter(|t| table.get(&t.pid).is_none_or(|p| p.start == t.start))
        .map(|t| t.pid)
        .collect();
    let mut out: BTreeSet<Identity> = targets
        .iter()
        .filter(|t| table.get(&t.pid).is_some_and(|p| p.start == t.start))
        .copied()
        .collect();
    for p in table.values() {
        if leaders.contains(&p.pgid) || leaders.contains(&p.sid) {
            out.insert(p.identity());
        }
    }
    // Descendants of everything found so far, through the parent links.
    loop {
        let pids: BTreeSet<u32> = out.iter().map(|i| i.pid).collect();
        let before = out.len();
        out.extend(
            table
                .values()
                .filter(|p| pids.contains(&p.ppid))
                .map(ProcInfo::identity),
        );
        if out.len() == before {
            break;
        }
    }
    out.retain(|i| {
        i.pid != me
            && table
                .get(&i.pid)
                .is_some_and(|p| !p.is_zombie() && !spare(p))
    });
    out
}

fn signal_all(set: &BTreeSet<Identity>, signal: libc::c_int) {
    for identity in set {
        identity.signal(signal);
    }
}

fn still_alive(set: &BTreeSet<Identity>) -> BTreeSet<Identity> {
    set.iter().filter(|i| i.alive()).copied().collect()
}

/// Ends `targets` and everything they lead (see [`widen`]): `SIGTERM`, up to
/// `grace` for them to go, then `SIGKILL` rounds for what is left or was
/// forked meanwhile. Blocks the calling thread; gives the processes that
/// could not be ended (normally none).
pub fn end_blocking(targets: &[Identity], grace: Duration, spare: Spare<'_>) -> Vec<Identity> {
    let Some(mut ending) = Ending::start(targets, grace, spare) else {
        return Vec::new();
    };
    while ending.wait_more() {
        std::thread::sleep(POLL);
    }
    ending.left()
}

/// [`end_blocking`] for async callers: waits with the runtime's timer.
pub async fn end(targets: &[Identity], grace: Duration, spare: Spare<'_>) -> Vec<Identity> {
    let Some(mut ending) = Ending::start(targets, grace, spare) else {
        return Vec::new();
    };
    while ending.wait_more() {
        tokio::time::sleep(POLL).await;
    }
    ending.left()
}

/// The signals and deadlines of [`end_blocking`] and [`end`], which differ
/// only in how they wait between polls.
struct Ending<'s> {
    targets: BTreeSet<Identity>,
    ending: BTreeSet<Identity>,
    spare: Spare<'s>,
    deadline: Instant,
    kill_rounds_left: usize,
}

impl<'s> Ending<'s> {
    /// Sends `SIGTERM`; `None` when there is nothing to end.
    fn start(targets: &[Identity], grace: Duration, spare: Spare<'s>) -> Option<Ending<'s>> {
        // The usual case, cheaply: everything already went with its group.
        if !targets.iter().any(Identity::alive) {
            return None;
        }
        let targets: BTreeSet<Identity> = targets.iter().copied().collect();
        let ending = widen(&targets, spare);
        if ending.is_empty() {
            return None;
        }
        signal_all(&ending, libc::SIGTERM);
        Some(Ending {
            targets,
            ending,
            spare,
            deadline: Instant::now() + grace,
            kill_rounds_left: KILL_ROUNDS,
        })
    }

    /// Whether to poll again after a pause: something is still alive before
    /// the deadline. Past it, sends the next `SIGKILL` round to what is
    /// left or was forked meanwhile; `false` once nothing is left to signal
    /// or the rounds are spent.
    fn wait_more(&mut self) -> bool {
        loop {
            if !still_alive(&self.ending).is_empty() && Instant::now() < self.deadline {
                return true;
            }
            if self.kill_rounds_left == 0 {
                return false;
            }
            self.kill_rounds_left -= 1;
            self.ending = widen(
                &self.ending.union(&self.targets).copied().collect(),
                self.spare,
            );
            if self.ending.is_empty() {
                return false;
            }
            signal_all(&self.ending, libc::SIGKILL);
            self.deadline = Instant::now() + KILL_WAIT;
        }
    }

    /// What could not be ended.
    fn left(self) -> Vec<Identity> {
        still_alive(&self.ending).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt as _;
    use std::time::Duration;

    use super::{Identity, cmdline, descendants, end_blocking, parse_stat, stat};

    #[test]
    fn parses_stat_lines_with_odd_command_names() {
        let line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let info = parse_stat(line).expect("parses");
        assert_eq!(
            (info.pid, info.ppid, info.pgid, info.sid, info.start),
            (4242, 1, 4242, 4242, 987654)
        );
        assert_eq!(info.state, 'S');
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn sees_itself_and_its_children() {
        let me = stat(std::process::id()).expect("own stat");
        assert!(Identity::of(me.pid).expect("identity").alive());
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let found = descendants(std::process::id());
        assert!(found.iter().any(|p| p.pid == pid), "{found:?}");
        // Right after fork the child still shows our command line until it
        // execs `sleep`: wait for that, within a bound.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !cmdline(pid).is_some_and(|c| c.starts_with("sleep 30"))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(cmdline(pid).expect("cmdline").starts_with("sleep 30"));
        let identity = Identity::of(pid).expect("identity");
        // A different start time is another process: it is not signalled.
        let impostor = Identity {
            start: identity.start + 1,
            ..identity
        };
        assert!(!impostor.signal(libc::SIGKILL));
        assert!(identity.alive());
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(!identity.alive());
    }

    #[test]
    fn ending_takes_the_group_and_what_left_it() {
        // sh leads a group holding a sleep, and a setsid'd sleep in its own
        // session; it prints both pids.
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "sleep 30 & echo $!; setsid sleep 30 & echo $!; trap '' TERM; wait",
            ])
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sh");
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut pids = Vec::new();
        for _ in 0..2 {
            pids.push(
                lines
                    .next()
                    .expect("a line")
                    .expect("read")
                    .parse::<u32>()
                    .expect("a pid"),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
        let leader = Identity::of(child.id()).expect("sh");
        let members: Vec<Identity> = pids.iter().filter_map(|p| Identity::of(*p)).collect();
        let left = end_blocking(&[leader], Duration::from_millis(300), &|_| false);
        assert!(left.is_empty(), "{left:?}");
        child.wait().expect("reap sh");
        std::thread::sleep(Duration::from_millis(50));
        for member in members {
            assert!(!member.alive(), "{member:?} survived");
        }
    }
}
