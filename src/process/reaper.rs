//! gonogo as a child subreaper: orphaned descendants (a daemon that double
//! forked, the background child of a wrapper script that exited) are
//! re-parented to gonogo instead of init, so it can find and end them.
//! Takes nothing; keeps a registry of the children guards spawned, the
//! processes `--keep` leaves running and the watchdog; gives
//! [`end_descendants`], the teardown that ends everything else.
//!
//! Reaping is by pid, only for adopted orphans: never `waitpid(-1)`, which
//! would steal the exit status of a child tokio waits for. A spawn and the
//! reaper take the same lock, so a child between `fork` and registration
//! cannot be mistaken for an orphan.

use std::collections::BTreeSet;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::tree::{self, Identity, ProcInfo};

/// How long the final teardown gives descendants after `SIGTERM`.
pub const TEARDOWN_GRACE: Duration = Duration::from_secs(2);

/// Whether this process made itself a subreaper (only the `gonogo` binary
/// does; library users and unit tests keep the default).
static SUBREAPER: AtomicBool = AtomicBool::new(false);

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    guarded: BTreeSet::new(),
    kept: BTreeSet::new(),
    spared: BTreeSet::new(),
});

struct Registry {
    /// Children spawned by a live `ChildGuard`: tokio reaps them.
    guarded: BTreeSet<u32>,
    /// Detached for `--keep`: they and their descendants outlive gonogo.
    kept: BTreeSet<Identity>,
    /// gonogo's own helpers (the watchdog): never ended, never reaped here.
    spared: BTreeSet<u32>,
}

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while holding the lock leaves the sets intact.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`).
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments has no memory-safety preconditions.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    SUBREAPER.store(true, Ordering::SeqCst);
    Ok(())
}

/// Runs `spawn` under the registry lock and records the child's pid as one
/// a guard owns.
pub(crate) fn spawn_guarded<T>(
    spawn: impl FnOnce() -> io::Result<T>,
    pid_of: impl FnOnce(&T) -> Option<u32>,
) -> io::Result<T> {
    let mut registry = registry();
    let child = spawn()?;
    if let Some(pid) = pid_of(&child) {
        registry.guarded.insert(pid);
    }
    Ok(child)
}

/// Runs `spawn` under the registry lock and spares the child from every
/// ending and reaping (the watchdog).
pub(crate) fn spawn_spared(
    spawn: impl FnOnce() -> io::Result<std::process::Child>,
) -> io::Result<std::process::Child> {
    let mut registry = registry();
    let child = spawn()?;
    registry.spared.insert(child.id());
    Ok(child)
}

/// The guard of `pid` is gone: it is no longer tokio's to reap.
pub(crate) fn forget(pid: u32) {
    registry().guarded.remove(&pid);
}

/// `identity` is left running on purpose (`--keep`).
pub(crate) fn keep(identity: Identity) {
    registry().kept.insert(identity);
    super::watchdog::keep(identity);
}

/// Reaps the orphans re-parented to gonogo that have exited. Does nothing
/// unless this process is a subreaper.
pub fn reap_adopted() {
    if !SUBREAPER.load(Ordering::SeqCst) {
        return;
    }
    let registry = registry();
    for pid in tree::children(std::process::id()) {
        if registry.guarded.contains(&pid) || registry.spared.contains(&pid) {
            continue;
        }
        let Ok(raw) = libc::pid_t::try_from(pid) else {
            continue;
        };
        let mut status = 0;
        // SAFETY: waitpid on one specific pid that is our child and that no
        // guard (so no tokio handle) owns; WNOHANG never blocks.
        unsafe { libc::waitpid(raw, &mut status, libc::WNOHANG) };
    }
}

/// The pids an ending must leave alone: spared helpers, and kept processes
/// with their descendants.
fn spared_pids() -> BTreeSet<u32> {
    let registry = registry();
    let mut spared = registry.spared.clone();
    for kept in registry.kept.iter().filter(|k| k.alive()) {
        spared.insert(kept.pid);
        spared.extend(tree::descendants(kept.pid).iter().map(|p| p.pid));
    }
    spared
}

/// The teardown: ends every descendant of gonogo except the spared and
/// kept ones (`SIGTERM`, then `SIGKILL` after [`TEARDOWN_GRACE`]), process
/// groups and sessions included, and reaps the adopted ones. Call it after
/// the runtime is gone, when no guard is left. Gives how many were ended.
pub fn end_descendants() -> usize {
    let spared = spared_pids();
    let targets: Vec<Identity> = tree::descendants(std::process::id())
        .iter()
        .filter(|p| !spared.contains(&p.pid) && !p.is_zombie())
        .map(ProcInfo::identity)
        .collect();
    let spare = |p: &ProcInfo| spared.contains(&p.pid);
    if !targets.is_empty() {
        tree::end_blocking(&targets, TEARDOWN_GRACE, &spare);
    }
    reap_adopted();
    targets.len()
}
