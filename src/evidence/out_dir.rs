//! The `--out` preflight: before anything is provisioned, prove the
//! evidence root can be written, so a bad `--out` costs nothing and says
//! why (exit 2) instead of failing after the whole proof. Takes the path;
//! creates it if missing, creates and removes a probe file in it, and
//! removes again the directories it created (the writer makes them at the
//! end), so a run stopped by a later usage error leaves nothing behind.

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
    let missing: Vec<PathBuf> = out
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .map(Path::to_path_buf)
        .collect();
    if let Err(e) = std::fs::create_dir_all(out) {
        return fail(format!("create the directory: {}", describe(&e)));
    }
    let probed = probe(out);
    // Deepest first; only what this check created, and only if empty.
    for dir in &missing {
        let _ = std::fs::remove_dir(dir);
    }
    probed.map_err(|reason| format!("--out {}: {reason}", out.display()))
}

/// Creates and removes a probe file in `dir`.
fn probe(dir: &Path) -> Result<(), String> {
    let probe = dir.join(format!(".gonogo-write-probe-{}", std::process::id()));
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe);
    match created {
        Ok(file) => {
            drop(file);
            std::fs::remove_file(&probe)
                .map_err(|e| format!("remove the probe file: {}", describe(&e)))
        }
        Err(e) => Err(format!("create a file in it: {}", describe(&e))),
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
    fn proves_a_missing_directory_can_be_made_and_leaves_nothing() {
        let base = tempfile::tempdir().expect("tempdir");
        let out = base.path().join("a/b");
        preflight(&out).expect("writable");
        assert!(!base.path().join("a").exists(), "what it made is gone");
        std::fs::create_dir(base.path().join("a")).expect("mkdir");
        preflight(&base.path().join("a")).expect("writable");
        assert_eq!(
            std::fs::read_dir(base.path().join("a"))
                .expect("read")
                .count(),
            0
        );
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
