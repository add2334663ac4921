//! Writing the evidence directory: all or nothing, and never with a secret.
//!
//! Files are written into a hidden staging directory next to the final one,
//! scanned for every known secret, and only then renamed into place. A
//! killed run leaves at most a `.partial` directory (removed by the next
//! run), never a half-written report under the final name.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Evidence;
use crate::mask::SecretTable;

/// Where a secret was found, without the secret itself: which one (by
/// description) and in which encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakLocation {
    pub file: String,
    pub line: usize,
    /// e.g. `DB_PASS value, base64`.
    pub what: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(
        "a secret reached the evidence at {}; the evidence was deleted (if that value is not a secret, name its variable in the scenario's [masking] not_secret)",
        .0.iter().map(|l| format!("{}:{} ({})", l.file, l.line, l.what)).collect::<Vec<_>>().join(", ")
    )]
    SecretLeak(Vec<LeakLocation>),
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

/// A finished evidence directory.
#[derive(Debug, Clone)]
pub struct Written {
    pub dir: PathBuf,
    /// `report.md`, or the directory itself when no report was written.
    pub report: PathBuf,
}

/// One file of the bundle: a relative path and its (already masked) bytes.
pub struct Artifact {
    pub name: String,
    pub contents: Vec<u8>,
}

/// `20261123T022140Z-reference`.
pub fn dir_name(evidence: &Evidence) -> String {
    let stamp: String = evidence
        .metadata
        .date_utc
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("{stamp}-{}", evidence.scenario.name)
}

/// Write `artifacts` into `out_root/<dir_name>` atomically, after checking
/// that no secret of `secrets`, in any encoding, appears in any of them.
pub fn write_bundle(
    out_root: &Path,
    name: &str,
    artifacts: &[Artifact],
    secrets: &SecretTable,
) -> Result<Written, WriteError> {
    fs::create_dir_all(out_root)
        .with_context(|| format!("create evidence directory {}", out_root.display()))?;
    sweep_partials(out_root);
    let staging = out_root.join(format!(".{name}.{}.partial", std::process::id()));
    if staging.exists() {
        fs::remove_dir_all(&staging).ok();
    }
    fs::create_dir_all(&staging)
        .with_context(|| format!("create staging directory {}", staging.display()))?;
    let result = (|| {
        for artifact in artifacts {
            let path = staging.join(&artifact.name);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("create {}", parent.display()))?;
            }
            let mut file =
                fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
            file.write_all(&artifact.contents)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("write {}", path.display()))?;
        }
        let leaks = scan_for_secrets(&staging, secrets)?;
        if !leaks.is_empty() {
            return Err(WriteError::SecretLeak(leaks));
        }
        let mut target = out_root.join(name);
        let mut n = 2;
        while target.exists() {
            target = out_root.join(format!("{name}-{n}"));
            n += 1;
        }
        fs::rename(&staging, &target).with_context(|| {
            format!(
                "move {} into place at {}",
                staging.display(),
                target.display()
            )
        })?;
        // Without report.md (`--format` left it out), point at the bundle.
        let report = target.join("report.md");
        Ok(Written {
            report: if report.is_file() {
                report
            } else {
                target.clone()
            },
            dir: target,
        })
    })();
    if result.is_err() {
        fs::remove_dir_all(&staging).ok();
    }
    result
}

/// Remove staging directories left by runs that were killed mid-write.
fn sweep_partials(out_root: &Path) {
    let Ok(entries) = fs::read_dir(out_root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".partial") {
            let pid = name
                .trim_end_matches(".partial")
                .rsplit('.')
                .next()
                .and_then(|p| p.parse::<i32>().ok());
            // Leave a directory alone while the run writing it still lives.
            let alive = pid.is_some_and(|pid| {
                // SAFETY: kill with signal 0 only checks for existence.
                unsafe { libc::kill(pid, 0) == 0 }
            });
            if !alive {
                fs::remove_dir_all(entry.path()).ok();
            }
        }
    }
}

/// Every line under `dir` where a secret of `secrets` appears, in any
/// encoding of the table the masker uses.
pub fn scan_for_secrets(dir: &Path, secrets: &SecretTable) -> anyhow::Result<Vec<LeakLocation>> {
    let mut leaks = Vec::new();
    if secrets.is_empty() {
        return Ok(leaks);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in
            fs::read_dir(&current).with_context(|| format!("scan {}", current.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = fs::read(&path).with_context(|| format!("scan {}", path.display()))?;
            let text = String::from_utf8_lossy(&bytes);
            if !secrets.found_in(&text) {
                continue;
            }
            let relative = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            for (index, line) in text.lines().enumerate() {
                for hit in secrets.hits(line) {
                    leaks.push(LeakLocation {
                        file: relative.clone(),
                        line: index + 1,
                        what: format!("{}, {}", hit.secret, hit.encoding),
                    });
                }
            }
        }
    }
    leaks.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(leaks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leak_deletes_the_bundle_and_names_the_place() {
        let root = tempfile::tempdir().unwrap();
        let err = write_bundle(
            root.path(),
            "run",
            &[Artifact {
                name: "report.md".into(),
                contents: b"ok\nthe password is s3cretvalue\n".to_vec(),
            }],
            &SecretTable::of(&["s3cretvalue"]),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("report.md:2 (a known secret, raw)"),
            "{message}"
        );
        assert!(!message.contains("s3cretvalue"));
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_scan_finds_every_encoding() {
        let root = tempfile::tempdir().unwrap();
        let err = write_bundle(
            root.path(),
            "run",
            &[Artifact {
                name: "evidence.json".into(),
                // base64 of "xs3cretvalue" and hex of the secret.
                contents: b"{\"a\": \"eHMzY3JldHZhbHVl\"}\n73336372657476616c7565\n".to_vec(),
            }],
            &SecretTable::of(&["s3cretvalue"]),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("evidence.json:1 (a known secret, base64)"),
            "{message}"
        );
        assert!(
            message.contains("evidence.json:2 (a known secret, hex)"),
            "{message}"
        );
    }

    #[test]
    fn clean_bundle_lands_under_its_name() {
        let root = tempfile::tempdir().unwrap();
        let written = write_bundle(
            root.path(),
            "run",
            &[Artifact {
                name: "report.md".into(),
                contents: b"fine".to_vec(),
            }],
            &SecretTable::of(&["s3cretvalue"]),
        )
        .unwrap();
        assert_eq!(fs::read_to_string(written.report).unwrap(), "fine");
    }
}
