//! promtool, from the distribution's `prometheus` package: found on
//! `PATH`, and run only through the guarded command runner with a deadline
//! (its own process group, killed and reaped if it outlives it).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::command::{CommandRun, run_command};

/// What to do when promtool is missing.
pub const INSTALL_HINT: &str = "install the distribution's prometheus package, which ships promtool: `apt-get install --no-install-recommends prometheus` (or run scripts/install-deps)";

/// Deadline for one promtool run.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A promtool binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promtool {
    pub path: PathBuf,
}

impl Promtool {
    /// promtool on `$PATH`, or why not (with the install hint).
    pub fn find() -> Result<Promtool, String> {
        Promtool::find_in(&std::env::var_os("PATH").unwrap_or_default())
    }

    /// promtool on the given search path.
    pub fn find_in(search: &OsStr) -> Result<Promtool, String> {
        use std::os::unix::fs::PermissionsExt;
        std::env::split_paths(search)
            .map(|dir| dir.join("promtool"))
            .find(|p| {
                std::fs::metadata(p)
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
            .map(|path| Promtool { path })
            .ok_or_else(|| format!("promtool is not on PATH: {INSTALL_HINT}"))
    }

    async fn run(&self, args: &[&str], workdir: &Path) -> CommandRun {
        let mut argv = vec![self.path.display().to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        run_command(&argv, workdir, &[], DEADLINE).await
    }

    /// The first line of `promtool --version`.
    pub async fn version(&self) -> Result<String, String> {
        let run = self.run(&["--version"], Path::new("/")).await;
        match (run.exit_code, run.spawn_error) {
            (_, Some(e)) => Err(e),
            (Some(0), None) => Ok(run.output.lines().next().unwrap_or("").trim().to_string()),
            _ => Err(format!(
                "`promtool --version` failed: {}",
                run.output.trim()
            )),
        }
    }

    /// `promtool check rules FILE`.
    pub async fn check_rules(&self, file: &Path) -> CommandRun {
        let name = file.display().to_string();
        self.run(&["check", "rules", &name], parent(file)).await
    }

    /// `promtool test rules FILE`.
    pub async fn test_rules(&self, file: &Path) -> CommandRun {
        let name = file.display().to_string();
        self.run(&["test", "rules", &name], parent(file)).await
    }
}

/// For `gonogo doctor`: promtool's version and path, or why it is
/// missing (with the install hint).
pub async fn diagnose() -> Result<String, String> {
    let promtool = Promtool::find()?;
    let version = promtool
        .version()
        .await
        .map_err(|e| format!("{} does not run: {e}", promtool.path.display()))?;
    Ok(format!("{version}  ({})", promtool.path.display()))
}

fn parent(file: &Path) -> &Path {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_promtool_gives_the_install_hint() {
        let err = Promtool::find_in(OsStr::new("/nonexistent-gonogo-bin")).unwrap_err();
        assert!(
            err.contains("apt-get install --no-install-recommends prometheus"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn reports_its_version_when_installed() {
        let Ok(promtool) = Promtool::find() else {
            println!("SKIPPED reports_its_version_when_installed: {INSTALL_HINT}");
            return;
        };
        let version = promtool.version().await.unwrap();
        assert!(version.starts_with("promtool, version"), "{version}");
    }
}
