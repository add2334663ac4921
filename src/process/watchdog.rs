//! The watchdog: a small process (`gonogo __watchdog`, hidden) that ends
//! gonogo's whole process tree if gonogo dies without saying it exited
//! cleanly, for example on `SIGKILL`, which no handler sees.
//!
//! [`start`] spawns it from `/proc/self/exe` in its own session (so a
//! Ctrl-C to the terminal's foreground group does not reach it) with the
//! read end of a pipe as its stdin; gonogo keeps the write end (close on
//! exec, so no child inherits it). The watchdog ([`main`]) then:
//!
//! - every [`SNAPSHOT_EVERY`] records gonogo's descendants from `/proc`, each
//!   with its start time, process group and session (descendants that
//!   orphan themselves stay in the tree, because gonogo is a subreaper);
//! - on a `keep PID START` line, spares that process and its descendants
//!   (`--keep`);
//! - on an `exit` line, exits and does nothing else ([`finish`]);
//! - on end of file, or when gonogo's pid no longer has gonogo's start
//!   time, ends every recorded process still running, with the groups and
//!   sessions they lead ([`tree::end_blocking`]), and exits.
//!
//! A process forked and orphaned within one snapshot interval just before
//! gonogo is killed can escape it; everything older cannot.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use super::tree::{self, Identity, ProcInfo};

/// How often the watchdog records gonogo's descendants.
pub const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);
/// How long the watchdog gives the tree after `SIGTERM`.
const GRACE: Duration = Duration::from_secs(2);
/// How long gonogo waits for the watchdog to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(5);
/// The hidden subcommand that runs [`main`].
pub const SUBCOMMAND: &str = "__watchdog";

/// gonogo's end of the pipe, and the watchdog's pid.
struct Handle {
    pipe: std::fs::File,
    pid: u32,
}

static WATCHDOG: Mutex<Option<Handle>> = Mutex::new(None);

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Waits up to `limit` for `fd` to be readable.
fn readable(fd: &impl AsRawFd, limit: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(limit.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut poll, 1, ms) > 0 }
}

/// Starts the watchdog for this process and waits until it watches.
pub fn start() -> io::Result<()> {
    let (watch_read, watch_write) = pipe()?;
    let (ready_read, ready_write) = pipe()?;
    let mut command = Command::new("/proc/self/exe");
    use std::os::unix::process::CommandExt;
    command
        .arg0("gonogo")
        .arg(SUBCOMMAND)
        .arg(std::process::id().to_string())
        .stdin(Stdio::from(watch_read))
        .stdout(Stdio::from(ready_write))
        .stderr(Stdio::null())
        .current_dir("/");
    // SAFETY: setsid is async-signal-safe; the closure builds an io::Error
    // from errno only, which does not allocate.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = super::reaper::spawn_spared(|| command.spawn())?;
    // Our copies of the child's ends must close, or EOF never comes.
    drop(command);
    let mut ready = std::fs::File::from(ready_read);
    let mut word = [0u8; 6];
    if !readable(&ready, READY_WITHIN) || ready.read(&mut word)? == 0 || &word != b"ready\n" {
        return Err(io::Error::other(format!(
            "the watchdog (pid {}) did not say it was ready within {READY_WITHIN:?}",
            child.id()
        )));
    }
    let handle = Handle {
        pipe: std::fs::File::from(watch_write),
        pid: child.id(),
    };
    *WATCHDOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
    Ok(())
}

/// Tells the watchdog to spare `identity` and its descendants.
pub(crate) fn keep(identity: Identity) {
    let mut watchdog = WATCHDOG.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(handle) = watchdog.as_mut() {
        // A watchdog that is gone cannot kill anything either.
        let _ = writeln!(handle.pipe, "keep {} {}", identity.pid, identity.start);
    }
}

/// gonogo exits cleanly: the watchdog stops watching and exits; this waits
/// briefly for it, so not even the watchdog outlives gonogo.
pub fn finish() {
    let Some(mut handle) = WATCHDOG.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let _ = writeln!(handle.pipe, "exit");
    drop(handle.pipe);
    let Ok(pid) = libc::pid_t::try_from(handle.pid) else {
        return;
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        let mut status = 0;
        // SAFETY: waitpid on our own child, which nobody else waits for.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What the watchdog knows.
struct Watch {
    parent: Identity,
    /// Every live descendant of gonogo seen so far.
    known: BTreeMap<u32, ProcInfo>,
    kept: BTreeSet<Identity>,
    /// Bytes of an unfinished line from the pipe.
    pending: Vec<u8>,
}

impl Watch {
    fn snapshot(&mut self) {
        let me = std::process::id();
        self.known.retain(|_, p| p.identity().alive());
        for p in tree::descendants(self.parent.pid) {
            if p.pid != me && !p.is_zombie() {
                self.known.insert(p.pid, p);
            }
        }
    }

    /// Handles complete lines; gives `true` on `exit`.
    fn lines(&mut self, bytes: &[u8]) -> bool {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["exit"] => return true,
                ["keep", pid, start] => {
                    if let (Ok(pid), Ok(start)) = (pid.parse(), start.parse()) {
                        self.kept.insert(Identity { pid, start });
                    }
                }
                _ => {}
            }
        }
        false
    }

    /// Ends what gonogo left.
    fn end(&self) {
        let mut spared: BTreeSet<u32> = BTreeSet::from([std::process::id()]);
        for kept in self.kept.iter().filter(|k| k.alive()) {
            spared.insert(kept.pid);
            spared.extend(tree::descendants(kept.pid).iter().map(|p| p.pid));
        }
        let targets: Vec<Identity> = self
            .known
            .values()
            .filter(|p| !spared.contains(&p.pid))
            .map(ProcInfo::identity)
            .collect();
        tree::end_blocking(&targets, GRACE, &|p| spared.contains(&p.pid));
    }
}

/// The watchdog process: watches `parent` (which must be its parent) until
/// it exits cleanly or dies; see the module docs. Gives the exit code.
pub fn main(parent: u32) -> i32 {
    // SAFETY: setting dispositions to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // SAFETY: getppid cannot fail.
    let actual = unsafe { libc::getppid() };
    let Some(parent) = Identity::of(parent).filter(|p| u32::try_from(actual) == Ok(p.pid)) else {
        return 1;
    };
    {
        let mut out = io::stdout().lock();
        if out
            .write_all(b"ready\n")
            .and_then(|()| out.flush())
            .is_err()
        {
            return 1;
        }
    }
    // Let gonogo's end of the ready pipe see EOF; nothing else is printed.
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 atomically replaces fd 1 with a copy of a valid fd.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
    let mut watch = Watch {
        parent,
        known: BTreeMap::new(),
        kept: BTreeSet::new(),
        pending: Vec::new(),
    };
    let mut stdin = io::stdin().lock();
    let mut buf = [0u8; 512];
    loop {
        watch.snapshot();
        if readable(&io::stdin(), SNAPSHOT_EVERY) {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if watch.lines(&buf[..n]) {
                        return 0;
                    }
                }
            }
        }
        if !parent.alive() {
            break;
        }
    }
    watch.end();
    0
}
