//! Guards own processes: every child the harness starts (database, cache,
//! service, one-shot tools, version probes) is spawned through
//! [`ChildGuard`], which stops and reaps it. Takes a
//! `tokio::process::Command`; gives a guard, its captured output
//! ([`OutputCapture`]) and, when stopped, a [`StopReport`].
//!
//! Four layers make sure nothing outlives the harness:
//!
//! 1. [`ChildGuard::stop`] and `Drop` signal the child's whole process group
//!    (each child leads its own group, so helpers it forks go too), wait a
//!    grace period, then `SIGKILL` the group and reap. Descendants that left
//!    the group (`setsid`) but still hang below the child are recorded
//!    before the signal and ended after it ([`tree`]).
//! 2. The `gonogo` binary makes itself a child subreaper ([`reaper`]):
//!    whatever orphans itself (a double-forked daemon, the background child
//!    of a wrapper script that exited) is re-parented to gonogo, not init.
//!    At exit, and after SIGINT/SIGTERM/SIGHUP or a panic, gonogo ends every
//!    descendant still there, process groups and sessions included (`TERM`,
//!    then `KILL` after a bound), and reaps the adopted ones by pid.
//! 3. If the harness is killed outright, the kernel sends each direct child
//!    its `PR_SET_PDEATHSIG` signal. It is set in `pre_exec`, which std runs
//!    after `setgid`/`setuid` (a credential change clears the setting), so
//!    it holds for servers that run as another user; a test proves it.
//! 4. For the rest of the tree after a `SIGKILL` of gonogo, the
//!    [`watchdog`], a small process in its own session, keeps a snapshot of
//!    gonogo's descendants (pid and start time, so pid reuse cannot fool
//!    it, with their groups and sessions) and ends them all when gonogo dies
//!    without saying it exited cleanly.
//!
//! `--keep` detaches its servers ([`ChildGuard::detach`]): the teardown and
//! the watchdog spare them and their descendants.
//!
//! # Caveat: PDEATHSIG follows the spawning *thread*
//!
//! Linux delivers the death signal when the thread that forked the child
//! exits, not when the process does. Spawn only from long-lived threads:
//! best the thread driving `#[tokio::main]`'s future, else a runtime worker
//! (a task from `tokio::spawn`). Never spawn inside `spawn_blocking`, whose
//! threads tokio retires after a few idle seconds, killing a healthy child;
//! and avoid `block_in_place` anywhere, since it turns a worker thread (that
//! may have spawned children) into such a retirable blocking thread.

pub mod reaper;
pub mod tree;
pub mod watchdog;

use std::collections::VecDeque;
use std::io;
use std::net::TcpListener;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::watch;

/// How often `Drop` polls for the child's exit while it waits.
const DROP_POLL: Duration = Duration::from_millis(10);
/// How long `Drop` waits for the kernel to finish a `SIGKILL`ed child.
const DROP_KILL_WAIT: Duration = Duration::from_millis(500);

/// The signals the guards send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// `SIGTERM`: the polite default.
    Term,
    /// `SIGINT`: Postgres "fast shutdown".
    Int,
    /// `SIGQUIT`: Postgres "immediate shutdown", which also takes its
    /// backends down.
    Quit,
    /// `SIGKILL`.
    Kill,
}

impl Signal {
    /// The raw signal number.
    pub fn as_raw(self) -> libc::c_int {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Int => libc::SIGINT,
            Signal::Quit => libc::SIGQUIT,
            Signal::Kill => libc::SIGKILL,
        }
    }
}

/// How a guarded child is told to stop, and what the kernel sends it if the
/// harness dies first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardOptions {
    /// Sent by the kernel when the spawning thread exits (`PR_SET_PDEATHSIG`).
    /// `None` lets the child outlive the harness, which `--keep` needs.
    pub death_signal: Option<Signal>,
    /// Sent to the process group by [`ChildGuard::stop`] and `Drop`.
    pub stop_signal: Signal,
    /// How long to wait after `stop_signal` before `SIGKILL`.
    pub grace: Duration,
}

impl Default for GuardOptions {
    fn default() -> Self {
        GuardOptions {
            death_signal: Some(Signal::Kill),
            stop_signal: Signal::Term,
            grace: Duration::from_secs(5),
        }
    }
}

/// How a stopped child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// It had already exited before it was asked to stop.
    ExitedBefore,
    /// It exited within the grace period after the stop signal.
    Stopped,
    /// It outlived the grace period and was `SIGKILL`ed.
    Killed,
}

/// What [`ChildGuard::stop`] observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopReport {
    /// The guard's name.
    pub name: String,
    /// The child's pid (and process group id).
    pub pid: u32,
    /// How it ended.
    pub outcome: StopOutcome,
    /// Its exit status.
    pub status: ExitStatus,
    /// From the stop request to the reaped exit.
    pub took: Duration,
}

/// What a one-shot child run by [`ChildGuard::run`] left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it printed.
    pub output: OutputSnapshot,
    /// From spawn to exit.
    pub took: Duration,
}

/// Owns one spawned child and its process group. Stops and reaps it on
/// [`stop`](ChildGuard::stop) or `Drop`, unless [`detach`](ChildGuard::detach)ed.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    pid: u32,
    child: Child,
    options: GuardOptions,
    started_at: Instant,
    /// Set once the child is reaped or detached; `Drop` then does nothing.
    finished: bool,
}

impl ChildGuard {
    /// Spawns `command` as the leader of a new process group with the
    /// configured death signal. The command's stdio settings are kept.
    ///
    /// Call this from a long-lived thread (see the module docs).
    pub fn spawn(
        name: impl Into<String>,
        mut command: Command,
        options: GuardOptions,
    ) -> io::Result<ChildGuard> {
        let name = name.into();
        command.process_group(0);
        if let Some(signal) = options.death_signal {
            let signal = signal.as_raw();
            // SAFETY: getpid is async-signal-safe and has no preconditions.
            let parent = unsafe { libc::getpid() };
            // SAFETY: the closure runs in the forked child before exec and
            // only calls async-signal-safe functions (prctl, getppid) and
            // builds an io::Error from a raw errno, which does not allocate.
            unsafe {
                command.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    // The parent may have died between fork and prctl; then
                    // nobody would ever send the signal.
                    if libc::getppid() != parent {
                        return Err(io::Error::from_raw_os_error(libc::ESRCH));
                    }
                    Ok(())
                });
            }
        }
        let started_at = Instant::now();
        let child = reaper::spawn_guarded(|| command.spawn(), Child::id)?;
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other(format!("{name} exited before its pid was read")))?;
        Ok(ChildGuard {
            name,
            pid,
            child,
            options,
            started_at,
            finished: false,
        })
    }

    /// The child's pid, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// When the child was spawned.
    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// Takes the child's stdin, if it was piped.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// The child's exit status if it has exited (reaping it), without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Waits up to `timeout` for the child to exit. Cancel-safe.
    ///
    /// Note that waiting closes the child's stdin if the guard still holds it.
    pub async fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.map(Some),
            Err(_elapsed) => Ok(None),
        }
    }

    /// Runs a one-shot `command` to completion under a guard, with its
    /// output captured (stdin is closed). Past `timeout` the child is stopped
    /// and this fails with [`io::ErrorKind::TimedOut`].
    pub async fn run(
        name: impl Into<String>,
        mut command: Command,
        options: GuardOptions,
        timeout: Duration,
    ) -> io::Result<Finished> {
        piped_output(&mut command);
        let mut guard = ChildGuard::spawn(name, command, options)?;
        let output = OutputCapture::attach(&mut guard);
        match guard.wait_timeout(timeout).await? {
            Some(status) => {
                // The pipes close right after the exit unless a grandchild
                // holds them; the guard's drop then kills it.
                let settle = tokio::time::Instant::now() + Duration::from_secs(1);
                output.wait_closed(settle).await;
                Ok(Finished {
                    status,
                    output: output.snapshot(),
                    took: guard.started_at.elapsed(),
                })
            }
            None => {
                let message = format!("{} did not finish within {timeout:?}", guard.name);
                guard.stop().await?;
                Err(io::Error::new(io::ErrorKind::TimedOut, message))
            }
        }
    }

    /// Signals the process group with the stop signal, waits up to the grace
    /// period, then `SIGKILL`s the group, and reaps the child.
    ///
    /// On error the guard is dropped, which still kills the group.
    pub async fn stop(mut self) -> io::Result<StopReport> {
        let begun = Instant::now();
        let below = self.tree_below();
        let (outcome, status) = if let Some(status) = self.child.try_wait()? {
            (StopOutcome::ExitedBefore, status)
        } else {
            signal_group(self.pid, self.options.stop_signal);
            match self.wait_timeout(self.options.grace).await? {
                Some(status) => (StopOutcome::Stopped, status),
                None => {
                    signal_group(self.pid, Signal::Kill);
                    (StopOutcome::Killed, self.child.wait().await?)
                }
            }
        };
        self.finished = true;
        sweep_group(self.pid);
        tree::end(&below, self.options.grace, &|_| false).await;
        reaper::forget(self.pid);
        reaper::reap_adopted();
        Ok(StopReport {
            name: self.name.clone(),
            pid: self.pid,
            outcome,
            status,
            took: begun.elapsed(),
        })
    }

    /// Leaves the child running and stops guarding it (for `--keep`).
    ///
    /// The death signal set at spawn still applies: a child meant to outlive
    /// the harness must be spawned with `death_signal: None`.
    pub fn detach(mut self) {
        self.finished = true;
        if let Some(identity) = tree::Identity::of(self.pid) {
            reaper::keep(identity);
        }
    }

    /// The descendants of the child right now (recorded before a stop
    /// signal, to end those that left its process group).
    fn tree_below(&self) -> Vec<tree::Identity> {
        tree::descendants(self.pid)
            .iter()
            .filter(|p| !p.is_zombie())
            .map(tree::ProcInfo::identity)
            .collect()
    }

    /// `Drop`'s synchronous version of [`stop`](ChildGuard::stop): blocks the
    /// calling thread for at most the grace period plus [`DROP_KILL_WAIT`].
    fn stop_blocking(&mut self) {
        let below = self.tree_below();
        if matches!(self.child.try_wait(), Ok(None)) {
            signal_group(self.pid, self.options.stop_signal);
            if !self.poll_exit(self.options.grace) {
                signal_group(self.pid, Signal::Kill);
                // If it is still not reaped, tokio's orphan queue reaps it later.
                self.poll_exit(DROP_KILL_WAIT);
            }
        }
        sweep_group(self.pid);
        tree::end_blocking(&below, self.options.grace, &|_| false);
        reaper::forget(self.pid);
        reaper::reap_adopted();
    }

    /// Polls `try_wait` until the child exits or `limit` passes.
    fn poll_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return true,
                Ok(None) if Instant::now() >= deadline => return false,
                Ok(None) => std::thread::sleep(DROP_POLL),
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.finished = true;
            self.stop_blocking();
        }
        reaper::forget(self.pid);
    }
}

/// Sends `signal` to the process group led by `pgid`, whose leader must not
/// be reaped yet (so the id cannot have been recycled). Failures (typically
/// `ESRCH`: the group is already gone) are ignored: every caller follows up
/// by waiting, which tells the truth.
fn signal_group(pgid: u32, signal: Signal) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // SAFETY: kill has no memory-safety preconditions; a negative pid
    // addresses the process group.
    unsafe {
        libc::kill(-pgid, signal.as_raw());
    }
}

/// `SIGKILL`s whatever a reaped leader left behind in its process group.
///
/// Linux keeps a pid reserved while any process still has it as its process
/// group id. So if something now has the leader's pid, the group is empty
/// and the pid was recycled for an unrelated process: leave it alone.
/// Otherwise any member left is ours.
fn sweep_group(pgid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // SAFETY: kill has no memory-safety preconditions; signal 0 only probes.
    let vacant = unsafe { libc::kill(pid, 0) } != 0
        && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    if vacant {
        signal_group(pgid, Signal::Kill);
    }
}

/// The range [`free_port`] draws from: below Linux's default ephemeral
/// range (32768-60999), so outgoing connections never hold these ports,
/// and above the well-known services.
pub const PORT_RANGE: std::ops::RangeInclusive<u16> = 20000..=32000;

/// A TCP port that is free right now: random in [`PORT_RANGE`], so a
/// stranger is unlikely to guess it, and verified by binding `0.0.0.0`
/// (which fails if anything listens on the port on any IPv4 address).
/// Another process may still take it before the caller binds it: callers
/// retry on "address in use", and the service's start-up wait proves who
/// answers ([`crate::sockets`]). This process never hands out the same
/// port twice, so units running side by side never get the same port
/// before either has bound it.
pub fn free_port() -> io::Result<u16> {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let span = u32::from(PORT_RANGE.end() - PORT_RANGE.start()) + 1;
    for _ in 0..64 {
        let offset = getrandom::u32().map_err(|e| io::Error::other(e.to_string()))? % span;
        let port = PORT_RANGE.start() + u16::try_from(offset).expect("offset < span <= u16::MAX");
        let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if !handed.contains(&port) && TcpListener::bind(("0.0.0.0", port)).is_ok() {
            handed.insert(port);
            return Ok(port);
        }
    }
    // A crowded range: let the kernel choose.
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Which stream a captured line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The child's stdout.
    Stdout,
    /// The child's stderr.
    Stderr,
}

/// One captured line of a child's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputLine {
    /// Arrival order across both streams, from 1.
    pub number: u64,
    /// Time since the child was spawned.
    pub at: Duration,
    /// Which stream it came from.
    pub stream: Stream,
    /// The line without its line ending, lossily decoded as UTF-8.
    pub text: String,
}

/// The captured output at one moment. When more lines arrived than the
/// capture holds, the first and last ones are kept and `omitted` counts the
/// ones in between.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputSnapshot {
    /// The first lines.
    pub head: Vec<OutputLine>,
    /// How many lines were dropped between `head` and `tail`.
    pub omitted: u64,
    /// The last lines.
    pub tail: Vec<OutputLine>,
    /// Whether every captured stream has reached end of file.
    pub closed: bool,
    /// How many lines had arrived (kept or not) when it was taken.
    pub received: u64,
}

impl OutputSnapshot {
    /// The kept lines in arrival order.
    pub fn lines(&self) -> impl Iterator<Item = &OutputLine> {
        self.head.iter().chain(&self.tail)
    }

    /// Only the lines that arrived after the first `mark` (an earlier
    /// snapshot's `received`); lines omitted from the middle stay
    /// counted when some of them came after the mark.
    pub fn since(mut self, mark: u64) -> OutputSnapshot {
        let first_tail = self.tail.first().map_or(u64::MAX, |l| l.number);
        let omitted_from = first_tail.saturating_sub(self.omitted);
        self.omitted = first_tail.saturating_sub(omitted_from.max(mark + 1));
        if self.tail.is_empty() {
            self.omitted = 0;
        }
        self.head.retain(|l| l.number > mark);
        self.tail.retain(|l| l.number > mark);
        self
    }

    /// The last `n` kept lines' text, one per line, for error messages.
    pub fn last_lines(&self, n: usize) -> String {
        let kept = self.head.len() + self.tail.len();
        let texts: Vec<&str> = self
            .lines()
            .skip(kept.saturating_sub(n))
            .map(|line| line.text.as_str())
            .collect();
        texts.join("\n")
    }
}

/// The result of [`OutputCapture::wait_for_line`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineWait {
    /// A matching line arrived.
    Found(OutputLine),
    /// Every stream closed (the child most likely exited) without a match.
    Closed,
    /// The deadline passed without a match.
    TimedOut,
}

/// Collects a child's stdout and stderr lines, interleaved in arrival order,
/// into a shared bounded buffer. Cheap to clone; reader tasks keep draining
/// the pipes (so the child never blocks on a full pipe) until end of file,
/// even after every clone is dropped.
#[derive(Clone, Debug)]
pub struct OutputCapture {
    buffer: Arc<watch::Sender<Buffer>>,
}

impl OutputCapture {
    /// The default number of lines kept.
    pub const DEFAULT_CAPACITY: usize = 20_000;
    /// Longer lines keep their start; the rest is skipped and the line ends
    /// with a [`crate::mask::cut_note`] (the masker then drops what could
    /// be the start of a cut-off secret).
    pub const MAX_LINE_BYTES: u64 = 16 * 1024;
    /// At most this many bytes of lines are kept from the start, and as
    /// many from the end, whatever the line count: 1 MiB in all.
    pub const MAX_KEPT_BYTES: usize = 512 * 1024;

    /// Takes the child's piped stdout and stderr (whichever are piped) and
    /// starts collecting them. Must be called inside a tokio runtime.
    pub fn attach(guard: &mut ChildGuard) -> OutputCapture {
        OutputCapture::with_capacity(guard, OutputCapture::DEFAULT_CAPACITY)
    }

    /// Like [`attach`](OutputCapture::attach), keeping at most `capacity` lines.
    pub fn with_capacity(guard: &mut ChildGuard, capacity: usize) -> OutputCapture {
        let stdout = guard.child.stdout.take();
        let stderr = guard.child.stderr.take();
        let open = u8::from(stdout.is_some()) + u8::from(stderr.is_some());
        let buffer = Arc::new(watch::Sender::new(Buffer::new(capacity.max(2), open)));
        let started_at = guard.started_at;
        if let Some(stdout) = stdout {
            tokio::spawn(collect(stdout, Stream::Stdout, started_at, buffer.clone()));
        }
        if let Some(stderr) = stderr {
            tokio::spawn(collect(stderr, Stream::Stderr, started_at, buffer.clone()));
        }
        OutputCapture { buffer }
    }

    /// A copy of everything captured so far.
    pub fn snapshot(&self) -> OutputSnapshot {
        let buffer = self.buffer.borrow();
        OutputSnapshot {
            head: buffer.head.clone(),
            omitted: buffer.omitted,
            tail: buffer.tail.iter().cloned().collect(),
            closed: buffer.open == 0,
            received: buffer.received,
        }
    }

    /// Waits until a line matching `is_match` arrives, every stream closes,
    /// or `deadline` passes. Lines already captured are checked first; lines
    /// dropped from the middle of an over-full buffer are never seen.
    pub async fn wait_for_line(
        &self,
        mut is_match: impl FnMut(&OutputLine) -> bool,
        deadline: tokio::time::Instant,
    ) -> LineWait {
        let mut changes = self.buffer.subscribe();
        let mut next = 1;
        loop {
            {
                let buffer = changes.borrow_and_update();
                let fresh = buffer.head.iter().chain(&buffer.tail);
                if let Some(line) = fresh
                    .filter(|line| line.number >= next)
                    .find(|l| is_match(l))
                {
                    return LineWait::Found(line.clone());
                }
                next = buffer.received + 1;
                if buffer.open == 0 {
                    return LineWait::Closed;
                }
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives in `self`, so it cannot be dropped.
                Ok(Err(_)) => return LineWait::Closed,
                Err(_elapsed) => return LineWait::TimedOut,
            }
        }
    }

    /// Waits until every stream has closed or `deadline` passes; returns
    /// whether they closed. Useful after the child exits, to be sure its
    /// last lines are in.
    pub async fn wait_closed(&self, deadline: tokio::time::Instant) -> bool {
        let mut changes = self.buffer.subscribe();
        let closed = tokio::time::timeout_at(deadline, changes.wait_for(|b| b.open == 0)).await;
        matches!(closed, Ok(Ok(_)))
    }
}

/// The shared state behind [`OutputCapture`].
#[derive(Debug)]
struct Buffer {
    head: Vec<OutputLine>,
    tail: VecDeque<OutputLine>,
    head_capacity: usize,
    tail_capacity: usize,
    /// Bytes of text in `head` and in `tail`, each bounded by
    /// [`OutputCapture::MAX_KEPT_BYTES`].
    head_bytes: usize,
    tail_bytes: usize,
    /// Once a line went to the tail, the head takes no more (order).
    head_closed: bool,
    omitted: u64,
    received: u64,
    open: u8,
}

impl Buffer {
    fn new(capacity: usize, open: u8) -> Buffer {
        let head_capacity = capacity / 2;
        Buffer {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_capacity,
            tail_capacity: capacity - head_capacity,
            head_bytes: 0,
            tail_bytes: 0,
            head_closed: false,
            omitted: 0,
            received: 0,
            open,
        }
    }

    fn push(&mut self, at: Duration, stream: Stream, text: String) {
        self.received += 1;
        let line = OutputLine {
            number: self.received,
            at,
            stream,
            text,
        };
        let size = line.text.len();
        self.head_closed |= self.head.len() >= self.head_capacity
            || self.head_bytes + size > OutputCapture::MAX_KEPT_BYTES;
        if !self.head_closed {
            self.head_bytes += size;
            self.head.push(line);
            return;
        }
        self.tail_bytes += size;
        self.tail.push_back(line);
        while self.tail.len() > self.tail_capacity
            || (self.tail_bytes > OutputCapture::MAX_KEPT_BYTES && self.tail.len() > 1)
        {
            if let Some(dropped) = self.tail.pop_front() {
                self.tail_bytes -= dropped.text.len();
                self.omitted += 1;
            }
        }
    }
}

/// Reads `stream` line by line into `buffer` until end of file or a read error.
async fn collect(
    stream: impl AsyncRead + Unpin,
    which: Stream,
    started_at: Instant,
    buffer: Arc<watch::Sender<Buffer>>,
) {
    let mut reader = BufReader::new(stream);
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        let read = (&mut reader)
            .take(OutputCapture::MAX_LINE_BYTES)
            .read_until(b'\n', &mut bytes)
            .await;
        let Ok(n) = read else { break };
        if n == 0 {
            break;
        }
        let at = started_at.elapsed();
        let cut = bytes.last() != Some(&b'\n') && n as u64 == OutputCapture::MAX_LINE_BYTES;
        let skipped = if cut {
            skip_rest_of_line(&mut reader).await
        } else {
            0
        };
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if cut {
            text.push_str(&crate::mask::cut_note(&format!(
                "line longer than {} KiB; {skipped} more bytes not kept",
                OutputCapture::MAX_LINE_BYTES / 1024
            )));
        }
        buffer.send_modify(|buffer| buffer.push(at, which, text));
    }
    buffer.send_modify(|buffer| buffer.open = buffer.open.saturating_sub(1));
}

/// Consumes the rest of an over-long line, up to and including its newline
/// (or end of file), without holding it; gives how many bytes were skipped.
async fn skip_rest_of_line(reader: &mut (impl AsyncBufReadExt + Unpin)) -> u64 {
    let mut skipped = 0u64;
    loop {
        let Ok(buf) = reader.fill_buf().await else {
            return skipped;
        };
        if buf.is_empty() {
            return skipped;
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return skipped + i as u64;
            }
            None => {
                let len = buf.len();
                reader.consume(len);
                skipped += len as u64;
            }
        }
    }
}

/// Sets the stdio of a child whose output [`OutputCapture`] will collect:
/// stdin closed, stdout and stderr piped.
pub fn piped_output(command: &mut Command) -> &mut Command {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::process::Command;

    use super::{
        ChildGuard, GuardOptions, LineWait, OutputCapture, Signal, StopOutcome, Stream, free_port,
        piped_output,
    };

    fn is_gone(pid: u32) -> bool {
        let pid = libc::pid_t::try_from(pid).expect("pid fits");
        // SAFETY: signal 0 only checks for existence.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        !alive
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(") ")
                    .is_some_and(|(_, s)| s.starts_with('Z'))
            })
    }

    fn wait_gone(pid: u32) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !is_gone(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        is_gone(pid)
    }

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        piped_output(&mut command);
        command
    }

    fn quick(grace_ms: u64) -> GuardOptions {
        GuardOptions {
            grace: Duration::from_millis(grace_ms),
            ..GuardOptions::default()
        }
    }

    /// Spawns `script`, which must print a pid as its first line; returns it.
    async fn spawn_reporting(script: &str, options: GuardOptions) -> (ChildGuard, u32) {
        let mut guard = ChildGuard::spawn("sh", sh(script), options).expect("spawn sh");
        let output = OutputCapture::attach(&mut guard);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let LineWait::Found(line) = output.wait_for_line(|_| true, deadline).await else {
            panic!("no pid printed");
        };
        (guard, line.text.parse().expect("a pid"))
    }

    #[tokio::test]
    async fn stop_terminates_the_whole_group() {
        let (guard, grandchild) = spawn_reporting("sleep 1000 & echo $!; wait", quick(2000)).await;
        let pid = guard.pid();
        let report = guard.stop().await.expect("stop");
        assert_eq!(report.outcome, StopOutcome::Stopped);
        assert_eq!(report.pid, pid);
        assert!(report.took < Duration::from_secs(1), "{report:?}");
        assert!(is_gone(pid));
        assert!(wait_gone(grandchild), "the group's sleep is gone too");
    }

    #[tokio::test]
    async fn stop_kills_what_ignores_the_stop_signal() {
        let script = "trap '' TERM; sleep 1000 & echo $!; wait";
        let (guard, grandchild) = spawn_reporting(script, quick(200)).await;
        let report = guard.stop().await.expect("stop");
        assert_eq!(report.outcome, StopOutcome::Killed);
        assert!(report.took >= Duration::from_millis(200), "{report:?}");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(report.status.signal(), Some(libc::SIGKILL));
        assert!(wait_gone(grandchild));
    }

    #[tokio::test]
    async fn stop_uses_the_configured_signal() {
        let options = GuardOptions {
            stop_signal: Signal::Int,
            ..quick(2000)
        };
        let guard = ChildGuard::spawn("sleep", sh("exec sleep 1000"), options).expect("spawn");
        let report = guard.stop().await.expect("stop");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(report.status.signal(), Some(libc::SIGINT));
    }

    #[tokio::test]
    async fn stop_sweeps_what_an_exited_leader_left_behind() {
        let (mut guard, straggler) = spawn_reporting("sleep 1000 & echo $!", quick(100)).await;
        let exited = guard.wait_timeout(Duration::from_secs(5)).await;
        assert!(exited.expect("wait").expect("leader exited").success());
        assert!(!is_gone(straggler), "the sleep outlives its leader");
        let report = guard.stop().await.expect("stop");
        assert_eq!(report.outcome, StopOutcome::ExitedBefore);
        assert!(wait_gone(straggler), "the sweep killed the sleep");
    }

    #[tokio::test]
    async fn stop_after_exit_reports_it() {
        let mut guard = ChildGuard::spawn("true", sh("exit 7"), quick(100)).expect("spawn");
        let status = guard
            .wait_timeout(Duration::from_secs(5))
            .await
            .expect("wait")
            .expect("exited");
        assert_eq!(status.code(), Some(7));
        let report = guard.stop().await.expect("stop");
        assert_eq!(report.outcome, StopOutcome::ExitedBefore);
        assert_eq!(report.status.code(), Some(7));
    }

    #[tokio::test]
    async fn drop_stops_the_group_within_the_grace_period() {
        let script = "trap '' TERM; sleep 1000 & echo $!; wait";
        let (guard, grandchild) = spawn_reporting(script, quick(300)).await;
        let pid = guard.pid();
        let began = Instant::now();
        drop(guard);
        let took = began.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert!(is_gone(pid));
        assert!(wait_gone(grandchild));
    }

    #[tokio::test]
    async fn detach_leaves_the_child_running() {
        let guard = ChildGuard::spawn("sleep", sh("exec sleep 1000"), quick(100)).expect("spawn");
        let pid = guard.pid();
        guard.detach();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!is_gone(pid), "still running after detach");
        let raw = libc::pid_t::try_from(pid).expect("pid fits");
        // SAFETY: we started this process; kill has no memory preconditions.
        unsafe { libc::kill(raw, libc::SIGKILL) };
        assert!(wait_gone(pid));
    }

    #[tokio::test]
    async fn wait_timeout_and_try_wait() {
        let mut guard = ChildGuard::spawn("sleep", sh("sleep 0.3"), quick(100)).expect("spawn");
        assert_eq!(guard.try_wait().expect("try_wait"), None);
        let early = guard.wait_timeout(Duration::from_millis(50)).await;
        assert_eq!(early.expect("wait"), None);
        let late = guard.wait_timeout(Duration::from_secs(5)).await;
        assert!(late.expect("wait").expect("exited").success());
        assert!(guard.try_wait().expect("try_wait").is_some());
    }

    #[tokio::test]
    async fn run_captures_output_and_enforces_its_timeout() {
        let finished = ChildGuard::run(
            "echo",
            sh("echo out; echo err >&2"),
            quick(100),
            Duration::from_secs(5),
        )
        .await
        .expect("run");
        assert!(finished.status.success());
        let lines: Vec<_> = finished
            .output
            .lines()
            .map(|l| (l.stream, l.text.as_str()))
            .collect();
        assert!(lines.contains(&(Stream::Stdout, "out")), "{lines:?}");
        assert!(lines.contains(&(Stream::Stderr, "err")), "{lines:?}");

        let error = ChildGuard::run(
            "sleep",
            sh("sleep 1000"),
            quick(100),
            Duration::from_millis(100),
        )
        .await
        .expect_err("times out");
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn capture_keeps_first_and_last_lines() {
        let command = sh("i=1; while [ $i -le 100 ]; do echo line$i; i=$((i+1)); done");
        let mut guard = ChildGuard::spawn("counter", command, quick(100)).expect("spawn");
        let output = OutputCapture::with_capacity(&mut guard, 10);
        assert!(
            output
                .wait_closed(tokio::time::Instant::now() + Duration::from_secs(5))
                .await
        );
        let snapshot = output.snapshot();
        let head: Vec<_> = snapshot.head.iter().map(|l| l.text.as_str()).collect();
        let tail: Vec<_> = snapshot.tail.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(head, ["line1", "line2", "line3", "line4", "line5"]);
        assert_eq!(tail, ["line96", "line97", "line98", "line99", "line100"]);
        assert_eq!(snapshot.omitted, 90);
        assert!(snapshot.closed);
        assert_eq!(snapshot.last_lines(2), "line99\nline100");
        assert!(snapshot.tail.iter().all(|l| l.stream == Stream::Stdout));
        assert_eq!(snapshot.tail[4].number, 100);
        assert_eq!(snapshot.received, 100);
        // After a mark: only later lines, and only the later omitted ones.
        let since = snapshot.clone().since(3);
        assert_eq!(since.head.len(), 2);
        assert_eq!((since.omitted, since.tail.len()), (90, 5));
        let since = snapshot.clone().since(50);
        assert!(since.head.is_empty());
        assert_eq!((since.omitted, since.tail.len()), (45, 5));
        let since = snapshot.clone().since(98);
        assert_eq!((since.omitted, since.tail.len()), (0, 2));
        assert!(snapshot.since(100).lines().next().is_none());
    }

    #[tokio::test]
    async fn wait_for_line_finds_times_out_and_sees_the_end() {
        let command = sh("echo starting; sleep 0.2; echo ready >&2; sleep 0.3");
        let mut guard = ChildGuard::spawn("sh", command, quick(100)).expect("spawn");
        let output = OutputCapture::attach(&mut guard);
        let soon = tokio::time::Instant::now() + Duration::from_millis(50);
        assert_eq!(
            output.wait_for_line(|l| l.text == "ready", soon).await,
            LineWait::TimedOut
        );
        let later = tokio::time::Instant::now() + Duration::from_secs(5);
        let LineWait::Found(line) = output.wait_for_line(|l| l.text == "ready", later).await else {
            panic!("ready never came");
        };
        assert_eq!(line.stream, Stream::Stderr);
        assert!(line.at >= Duration::from_millis(200), "{line:?}");
        assert_eq!(
            output.wait_for_line(|l| l.text == "never", later).await,
            LineWait::Closed
        );
    }

    #[test]
    fn free_port_is_bindable() {
        let port = free_port().expect("free port");
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind it");
    }
}
