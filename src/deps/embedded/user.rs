//! Which account the embedded servers run as. `initdb` and `postgres` refuse
//! to run as root, so a root harness drops to the `postgres` system user, or
//! `nobody` where that does not exist; anyone else runs them as themselves.
//!
//! Accounts are looked up with `getpwnam_r`, so NSS sources beyond
//! `/etc/passwd` (LDAP, systemd-userdb) count too.

use std::ffi::CString;
use std::io;

use tokio::process::Command;

/// An account the servers run as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerUser {
    /// The account name, or the uid as text when it has none.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group id.
    pub gid: u32,
}

/// The reasons no account could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ServerUserError {
    /// Running as root and neither candidate account exists.
    #[error(
        "find an unprivileged account to run postgres as (running as root, and neither {} exists); create one with `useradd --system postgres`",
        CANDIDATES.join(" nor ")
    )]
    NoCandidate,
    /// The account database could not be read.
    #[error("look up account `{name}`")]
    Lookup {
        /// The account looked up.
        name: String,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
}

/// The accounts a root harness tries, in order.
const CANDIDATES: [&str; 2] = ["postgres", "nobody"];

impl ServerUser {
    /// The account to run servers as: the current effective user unless that
    /// is root, else the first of `postgres` and `nobody` that exists.
    pub fn choose() -> Result<ServerUser, ServerUserError> {
        // SAFETY: geteuid and getegid cannot fail and have no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if uid != 0 {
            return Ok(ServerUser {
                name: uid.to_string(),
                uid,
                gid,
            });
        }
        for name in CANDIDATES {
            let found = lookup(name).map_err(|source| ServerUserError::Lookup {
                name: name.to_owned(),
                source,
            })?;
            if let Some(user) = found {
                return Ok(user);
            }
        }
        Err(ServerUserError::NoCandidate)
    }

    /// Whether this is the harness's own effective user (then nothing needs
    /// switching or chowning).
    pub fn is_current(&self) -> bool {
        // SAFETY: geteuid cannot fail and has no preconditions.
        self.uid == unsafe { libc::geteuid() }
    }

    /// Makes `command` run as this user, when that differs from the
    /// harness's own.
    pub fn apply(&self, command: &mut Command) {
        if !self.is_current() {
            command.uid(self.uid).gid(self.gid);
        }
    }

    /// Hands `path` to this user, when that differs from the harness's own.
    pub fn chown(&self, path: &std::path::Path) -> io::Result<()> {
        if self.is_current() {
            return Ok(());
        }
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
    }
}

/// Looks up an account by name; `Ok(None)` when there is no such account.
pub fn lookup(name: &str) -> io::Result<Option<ServerUser>> {
    let c_name = CString::new(name).map_err(io::Error::other)?;
    let mut scratch = vec![0u8; 1024];
    loop {
        // SAFETY: an all-zero passwd (null pointers, zero ids) is a valid value.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call: a NUL-terminated name,
        // an entry to fill, a scratch buffer with its true length, and the
        // result slot. The entry's strings point into `scratch`, which
        // outlives every read of them below.
        let code = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &raw mut entry,
                scratch.as_mut_ptr().cast(),
                scratch.len(),
                &raw mut result,
            )
        };
        if code == libc::ERANGE && scratch.len() < 1 << 20 {
            scratch.resize(scratch.len() * 2, 0);
            continue;
        }
        if code != 0 {
            return Err(io::Error::from_raw_os_error(code));
        }
        if result.is_null() {
            return Ok(None);
        }
        return Ok(Some(ServerUser {
            name: name.to_owned(),
            uid: entry.pw_uid,
            gid: entry.pw_gid,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::{ServerUser, lookup};

    #[test]
    fn looks_up_root_and_misses_nonsense() {
        let root = lookup("root").expect("read accounts").expect("root exists");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(lookup("gonogo-no-such-user").expect("read accounts"), None);
    }

    #[test]
    fn never_chooses_root() {
        let user = ServerUser::choose().expect("an account to run servers as");
        assert_ne!(user.uid, 0);
    }
}
