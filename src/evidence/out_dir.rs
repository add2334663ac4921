//! The `--out` preflight: before anything is provisioned, prove the
//! evidence root can be written, so a bad `--out` costs nothing and says
//! why (exit 2) instead of failing after the whole proof. Takes the path;
//! creates it if missing, then creates and removes a probe file in it.

use std::io;
use std::path::{Path, PathBuf};

/// Checks that evidence can be written under `out`; the error names the
/// path and the reason, ready to print after "error: ".
pub fn preflight(out: &Path) -> Result<(), String> {
    let fail = |reason: String| Err(format!("--out {}: {reason}", out.display()));
    if let Some(file) = file_in_the_way(out) {
        return fail(if file == out {
            "it is a regular file, not a directory".into()
        } else {
            format!(
                "{} is a regular file, so no directory can be created under it",
                file.display()
            )
        });
    }
    if let Err(e) = std::fs::create_dir_all(out) {
        return fail(format!("create the directory: {}", describe(&e)));
    }
    let probe = out.join(format!(".gonogo-write-probe-{}", std::process::id()));
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe);
    match created {
        Ok(file) => {
            drop(file);
            std::fs::remove_file(&probe)
                .or_else(|e| fail(format!("remove the probe file: {}", describe(&e))))
        }
        Err(e) => fail(format!("create a file in it: {}", describe(&e))),
    }
}

/// The nearest existing ancestor of `path` (or `path` itself) when it is
/// not a directory.
fn file_in_the_way(path: &Path) -> Option<PathBuf> {
    let existing = path.ancestors().find(|p| p.exists())?;
    (!existing.is_dir()).then(|| existing.to_path_buf())
}

/// The reason behind an I/O error, in words.
fn describe(error: &io::Error) -> String {
    let reason = match error.raw_os_error() {
        Some(libc::EROFS) => "the file system is read-only",
        Some(libc::EACCES) => "permission denied (the directory is not writable by this user)",
        Some(libc::EPERM) => "operation not permitted (the directory may be immutable)",
        Some(libc::ENOTDIR) => "a component of the path is not a directory",
        Some(libc::ENOSPC) => "no space left on the device",
        Some(libc::EDQUOT) => "the disk quota is exhausted",
        _ => return error.to_string(),
    };
    format!("{reason} ({error})")
}

#[cfg(test)]
mod tests {
    use super::preflight;

    #[test]
    fn creates_a_missing_directory_and_leaves_nothing_in_it() {
        let base = tempfile::tempdir().expect("tempdir");
        let out = base.path().join("a/b");
        preflight(&out).expect("writable");
        assert!(out.is_dir());
        assert_eq!(std::fs::read_dir(&out).expect("read").count(), 0);
    }

    #[test]
    fn names_a_regular_file_in_the_way() {
        let base = tempfile::tempdir().expect("tempdir");
        let file = base.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        let error = preflight(&file.join("evidence")).expect_err("under a file");
        assert!(
            error.contains(&format!("{} is a regular file", file.display())),
            "{error}"
        );
        let error = preflight(&file).expect_err("a file");
        assert!(error.contains("it is a regular file"), "{error}");
    }
}
