//! The temp root of one run: a private directory that holds both embedded
//! servers' files and is removed when the run ends, or swept by a later run
//! when the harness that made it was killed.

use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::deps::secret;

/// A private directory for one run, `<base>/gonogo-<pid>-XXXXXXXX`, mode
/// 0711 so the unprivileged server user can reach its own subdirectories
/// but not list the root. Removed recursively on drop unless kept.
///
/// A harness killed outright runs no `Drop`, so its root stays behind.
/// Creating a root therefore first sweeps abandoned ones: roots in the same
/// base, owned by the same user, whose pid is gone. The pid in the name is a
/// cheap first filter (a recycled pid only delays a sweep). The truth is the
/// `flock` the owner holds on `<root>/.lock` for as long as it lives, which
/// also protects roots of harnesses in other pid namespaces sharing the base.
/// A kept root (`--keep`) holds a `.kept` file and is never swept.
#[derive(Debug)]
pub struct TempRoot {
    path: PathBuf,
    kept: bool,
    /// The open, locked `.lock` file: the kernel releases the lock when the
    /// owner dies.
    lock: Option<std::fs::File>,
}

/// The prefix of every temp root's name.
const ROOT_PREFIX: &str = "gonogo-";
/// The length of the random part of a temp root's name.
const ROOT_RANDOM_LEN: usize = 8;
/// The lock file inside a temp root.
const ROOT_LOCK: &str = ".lock";
/// The marker inside a kept temp root.
const ROOT_KEPT: &str = ".kept";

/// Where temp roots go: `$GONOGO_TMPDIR` if set, else `/dev/shm` when it is
/// a writable directory, else `/tmp`.
///
/// Memory first because a Postgres cluster is ~35 MB of small files: on the
/// 2-core VMs this runs on, copying the template onto disk took ~800 ms of
/// kernel time, onto tmpfs ~70 ms. Nothing here needs to survive the run.
pub fn default_temp_base() -> PathBuf {
    if let Some(dir) = std::env::var_os("GONOGO_TMPDIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let writable = shm.is_dir() && {
        let c = std::ffi::CString::new("/dev/shm").expect("no NUL in a literal");
        // SAFETY: access(2) reads a valid NUL-terminated path and nothing else.
        unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
    };
    if writable {
        shm.to_path_buf()
    } else {
        PathBuf::from("/tmp")
    }
}

impl TempRoot {
    /// Creates a fresh root under [`default_temp_base`].
    pub fn create() -> io::Result<TempRoot> {
        TempRoot::create_in(&default_temp_base())
    }

    /// Sweeps abandoned roots under `base`, then creates a fresh one there.
    pub fn create_in(base: &Path) -> io::Result<TempRoot> {
        sweep_abandoned_roots(base);
        loop {
            let suffix = secret::random_alphanumeric(ROOT_RANDOM_LEN)?;
            let path = base.join(format!("{ROOT_PREFIX}{}-{suffix}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o711).create(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(error),
            }
            let mut root = TempRoot {
                path,
                kept: false,
                lock: None,
            };
            // The umask may have narrowed the mode.
            std::fs::set_permissions(&root.path, std::fs::Permissions::from_mode(0o711))?;
            match lock_root(&root.path) {
                Ok(lock) => root.lock = Some(lock),
                // A harness in another pid namespace swept the root before
                // it was locked: start over.
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            }
            return Ok(root);
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops guarding the directory and marks it kept, so no later sweep
    /// removes it; returns its path.
    pub fn keep(mut self) -> PathBuf {
        self.kept = true;
        // Without the marker a sweep would remove the files of servers
        // still running; nothing better can be done if writing it fails.
        let _ = std::fs::write(self.path.join(ROOT_KEPT), b"kept by gonogo --keep\n");
        std::mem::take(&mut self.path)
    }

    /// Removes the directory now, reporting failure.
    pub fn remove(mut self) -> io::Result<()> {
        self.kept = true;
        std::fs::remove_dir_all(&self.path)
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        if !self.kept {
            // Nothing useful can be done with a failure here.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Creates and locks `<root>/.lock`, checking that the locked file is still
/// the one in the root (a sweep may have removed it in between).
fn lock_root(root: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    let path = root.join(ROOT_LOCK);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.lock()?;
    let locked = file.metadata()?;
    let current = std::fs::symlink_metadata(&path)?;
    if (locked.dev(), locked.ino()) != (current.dev(), current.ino()) {
        return Err(io::Error::from(io::ErrorKind::NotFound));
    }
    Ok(file)
}

/// The owner's pid in a temp root's name, `gonogo-<pid>-XXXXXXXX`.
fn root_owner(name: &str) -> Option<libc::pid_t> {
    let rest = name.strip_prefix(ROOT_PREFIX)?;
    let (pid, random) = rest.split_once('-')?;
    let plain = |text: &str, digits_only: bool| {
        !text.is_empty()
            && text.bytes().all(|b| {
                if digits_only {
                    b.is_ascii_digit()
                } else {
                    b.is_ascii_alphanumeric()
                }
            })
    };
    if !plain(pid, true) || random.len() != ROOT_RANDOM_LEN || !plain(random, false) {
        return None;
    }
    pid.parse().ok().filter(|&pid| pid > 0)
}

/// Whether a process with `pid` exists (in this pid namespace).
fn pid_alive(pid: libc::pid_t) -> bool {
    // SAFETY: kill has no memory-safety preconditions; signal 0 only probes.
    let probed = unsafe { libc::kill(pid, 0) };
    // EPERM: it exists but belongs to someone else.
    probed == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes the temp roots under `base` that a dead harness of this user
/// left: see [`TempRoot`]. Best effort; errors leave a root in place.
fn sweep_abandoned_roots(base: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    // SAFETY: geteuid cannot fail and has no preconditions.
    let me = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(root_owner) else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        let path = entry.path();
        let ours = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == me);
        if !ours || path.join(ROOT_KEPT).exists() {
            continue;
        }
        let unlocked = match std::fs::File::open(path.join(ROOT_LOCK)) {
            Ok(lock) => lock.try_lock().is_ok(),
            // Killed between creating the root and locking it.
            Err(error) => error.kind() == io::ErrorKind::NotFound,
        };
        if unlocked {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::{ROOT_KEPT, ROOT_LOCK, TempRoot, root_owner};

    /// The pid of a process that has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("reap true");
        pid
    }

    fn fake_root(base: &Path, name: &str, lock: bool) -> std::path::PathBuf {
        let path = base.join(name);
        std::fs::create_dir(&path).expect("mkdir");
        std::fs::create_dir(path.join("pg")).expect("mkdir pg");
        if lock {
            std::fs::write(path.join(ROOT_LOCK), b"").expect("write lock");
        }
        path
    }

    #[test]
    fn parses_only_root_names() {
        assert_eq!(root_owner("gonogo-1234-abcDEF12"), Some(1234));
        for name in [
            "gonogo-abcDEF12",
            "gonogo-1234-abc",
            "gonogo-1234-abcDEF12-x",
            "gonogo-0-abcDEF12",
            "gonogo--abcDEF12",
            "gonogo-12a4-abcDEF12",
            "other-1234-abcDEF12",
            "gonogo-bin-test-1234",
        ] {
            assert_eq!(root_owner(name), None, "{name}");
        }
    }

    #[test]
    fn a_root_is_named_after_its_owner_private_and_locked() {
        let base = tempfile::tempdir().expect("tempdir");
        let root = TempRoot::create_in(base.path()).expect("create root");
        let name = root.path().file_name().expect("name").to_string_lossy();
        assert_eq!(root_owner(&name), Some(std::process::id() as libc::pid_t));
        let mode = std::fs::metadata(root.path()).expect("stat").permissions();
        assert_eq!(mode.mode() & 0o777, 0o711);
        let lock = std::fs::File::open(root.path().join(ROOT_LOCK)).expect("open lock");
        assert!(lock.try_lock().is_err(), "the owner holds the lock");
        let path = root.path().to_path_buf();
        drop(root);
        assert!(!path.exists(), "dropping removes the root");
    }

    #[test]
    fn creating_a_root_sweeps_only_abandoned_ones() {
        let base = tempfile::tempdir().expect("tempdir");
        let dead = dead_pid();
        let abandoned = fake_root(base.path(), &format!("gonogo-{dead}-aaaaaaaa"), true);
        let killed_early = fake_root(base.path(), &format!("gonogo-{dead}-bbbbbbbb"), false);
        let kept = fake_root(base.path(), &format!("gonogo-{dead}-cccccccc"), true);
        std::fs::write(kept.join(ROOT_KEPT), b"").expect("mark kept");
        // Its owner looks dead here but holds the lock (another pid namespace).
        let locked = fake_root(base.path(), &format!("gonogo-{dead}-dddddddd"), true);
        let held = std::fs::File::open(locked.join(ROOT_LOCK)).expect("open lock");
        held.lock().expect("hold the lock");
        let alive = fake_root(
            base.path(),
            &format!("gonogo-{}-eeeeeeee", std::process::id()),
            true,
        );
        let old_style = fake_root(base.path(), "gonogo-ffffffff", false);
        let unrelated = fake_root(base.path(), &format!("other-{dead}-gggggggg"), false);
        let file = base.path().join(format!("gonogo-{dead}-hhhhhhhh"));
        std::fs::write(&file, b"not a root").expect("write file");

        let root = TempRoot::create_in(base.path()).expect("create root");
        assert!(!abandoned.exists(), "the abandoned root is swept");
        assert!(!killed_early.exists(), "a root never locked is swept");
        for survivor in [&kept, &locked, &alive, &old_style, &unrelated, &file] {
            assert!(survivor.exists(), "{} survives", survivor.display());
        }
        drop(root);
    }

    #[test]
    fn a_kept_root_survives_later_sweeps() {
        let base = tempfile::tempdir().expect("tempdir");
        let root = TempRoot::create_in(base.path()).expect("create root");
        let kept = root.keep();
        // Pretend the owner died: rename it to a dead pid's name.
        let name = kept
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let random = name.rsplit('-').next().expect("random part");
        let orphan = base.path().join(format!("gonogo-{}-{random}", dead_pid()));
        std::fs::rename(&kept, &orphan).expect("rename");
        drop(TempRoot::create_in(base.path()).expect("create another root"));
        assert!(orphan.join(ROOT_KEPT).exists(), "the kept root survives");
    }
}
