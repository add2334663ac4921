//! Verify: an evidence directory in, a [`Verification`] out: every file
//! that changed, disappeared or appeared since `manifest.json` was written.
//!
//! A mismatch is data (exit `TAMPERED`), not an error; `Err` means the
//! directory could not be checked at all (no manifest: exit `USAGE`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;

use crate::digest::sha256_hex;
use crate::error::{Error, Result};
use crate::evidence::manifest::{MANIFEST_FILE, Manifest};

/// One way the bundle differs from its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The file's bytes are not the ones the manifest hashed.
    Changed(String),
    /// The manifest lists the file; it is gone.
    Removed(String),
    /// The file is in the directory but not in the manifest.
    Added(String),
    /// `manifest.json` itself cannot be read as a manifest.
    BadManifest(String),
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Changed(p) => write!(f, "changed: {p} does not match its sha256"),
            Mismatch::Removed(p) => write!(f, "removed: {p} is in the manifest but missing"),
            Mismatch::Added(p) => write!(f, "added: {p} is not in the manifest"),
            Mismatch::BadManifest(why) => write!(f, "{MANIFEST_FILE} is not valid: {why}"),
        }
    }
}

/// What `verify` found.
#[derive(Debug, Clone)]
pub struct Verification {
    pub dir: PathBuf,
    /// SHA-256 of `manifest.json`, to compare with the one the CI log or
    /// the change ticket recorded.
    pub manifest_sha256: String,
    /// Files whose digest matched.
    pub matched: usize,
    pub mismatches: Vec<Mismatch>,
}

impl Verification {
    pub fn intact(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Recompute every digest under `dir` and compare with its manifest.
pub fn verify(dir: &Path) -> Result<Verification> {
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{} is not an evidence directory",
            dir.display()
        )));
    }
    let manifest_path = dir.join(MANIFEST_FILE);
    let bytes = match fs::read(&manifest_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Usage(format!(
                "{} has no {MANIFEST_FILE}; it was not written by gonogo run, or the manifest was removed",
                dir.display()
            )));
        }
        Err(e) => {
            return Err(Error::Harness(
                anyhow::Error::new(e).context(format!("read {}", manifest_path.display())),
            ));
        }
    };
    let mut verification = Verification {
        dir: dir.to_path_buf(),
        manifest_sha256: sha256_hex(&bytes),
        matched: 0,
        mismatches: Vec::new(),
    };
    let manifest: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            verification
                .mismatches
                .push(Mismatch::BadManifest(e.to_string()));
            return Ok(verification);
        }
    };
    let mut on_disk = files_under(dir).context("list the evidence directory")?;
    on_disk.remove(MANIFEST_FILE);
    for entry in &manifest.files {
        if !is_plain_relative(&entry.path) {
            verification.mismatches.push(Mismatch::BadManifest(format!(
                "`{}` is not a path inside the bundle",
                entry.path
            )));
            continue;
        }
        match on_disk.remove(&entry.path) {
            None => verification
                .mismatches
                .push(Mismatch::Removed(entry.path.clone())),
            Some(path) => {
                let actual = fs::read(&path).with_context(|| format!("read {}", path.display()))?;
                if sha256_hex(&actual) == entry.sha256 {
                    verification.matched += 1;
                } else {
                    verification
                        .mismatches
                        .push(Mismatch::Changed(entry.path.clone()));
                }
            }
        }
    }
    verification
        .mismatches
        .extend(on_disk.into_keys().map(Mismatch::Added));
    Ok(verification)
}

/// Every file under `dir` (symlinks included, as files), keyed by its
/// `/`-separated relative path.
fn files_under(dir: &Path) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in
            fs::read_dir(&current).with_context(|| format!("read {}", current.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.insert(relative, path);
        }
    }
    Ok(out)
}

fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::manifest::{manifest, render};
    use crate::evidence::sample::evidence as sample;
    use crate::evidence::write::Artifact;

    fn bundle() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut artifacts = vec![
            Artifact {
                name: "report.md".into(),
                contents: b"# report\n".to_vec(),
            },
            Artifact {
                name: "evidence.json".into(),
                contents: b"{}\n".to_vec(),
            },
        ];
        let m = render(&manifest(&sample(), &artifacts)).unwrap();
        artifacts.push(Artifact {
            name: MANIFEST_FILE.into(),
            contents: m,
        });
        for a in artifacts {
            fs::write(dir.path().join(a.name), a.contents).unwrap();
        }
        dir
    }

    #[test]
    fn an_untouched_bundle_is_intact() {
        let dir = bundle();
        let v = verify(dir.path()).unwrap();
        assert!(v.intact(), "{:?}", v.mismatches);
        assert_eq!(v.matched, 2);
    }

    #[test]
    fn changes_removals_and_additions_are_named() {
        let dir = bundle();
        fs::write(dir.path().join("report.md"), b"# report!\n").unwrap();
        fs::remove_file(dir.path().join("evidence.json")).unwrap();
        fs::create_dir(dir.path().join("extra")).unwrap();
        fs::write(dir.path().join("extra/notes.txt"), b"hi").unwrap();
        let v = verify(dir.path()).unwrap();
        assert_eq!(
            v.mismatches,
            [
                Mismatch::Removed("evidence.json".into()),
                Mismatch::Changed("report.md".into()),
                Mismatch::Added("extra/notes.txt".into()),
            ]
        );
    }

    #[test]
    fn a_missing_manifest_is_a_usage_error_and_a_broken_one_a_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(verify(dir.path()), Err(Error::Usage(_))));
        fs::write(dir.path().join(MANIFEST_FILE), b"{ nope").unwrap();
        let v = verify(dir.path()).unwrap();
        assert!(matches!(v.mismatches[..], [Mismatch::BadManifest(_)]));
    }

    #[test]
    fn manifest_paths_cannot_escape_the_bundle() {
        assert!(is_plain_relative("a/b.txt"));
        assert!(!is_plain_relative("../a"));
        assert!(!is_plain_relative("/etc/passwd"));
        assert!(!is_plain_relative("./a"));
    }
}
