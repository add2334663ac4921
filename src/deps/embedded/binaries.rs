//! Finding the server binaries the provision stage runs. Takes a search
//! path (normally `$PATH`) and the Debian Postgres layout
//! (`/usr/lib/postgresql/<version>/bin`); gives absolute paths, or an error
//! that says which package to install.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::process::{ChildGuard, GuardOptions};

/// How long `<binary> --version` may take: it prints one line.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// Where Debian's `postgresql-<version>` packages put their binaries.
pub const DEBIAN_POSTGRES_LIBS: &str = "/usr/lib/postgresql";

/// A binary that was not found.
#[derive(Debug, thiserror::Error)]
#[error(
    "find `{binary}` on PATH or under {DEBIAN_POSTGRES_LIBS}/*/bin (install it: apt-get install {package})"
)]
pub struct MissingBinary {
    /// The binary's file name.
    pub binary: String,
    /// The Debian package that provides it.
    pub package: &'static str,
}

/// Where to look for binaries. Injectable so tests can simulate a machine
/// without Postgres or Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinarySearch {
    path: OsString,
    postgres_libs: PathBuf,
}

impl BinarySearch {
    /// `$PATH`, then [`DEBIAN_POSTGRES_LIBS`].
    pub fn from_env() -> BinarySearch {
        BinarySearch::new(
            std::env::var_os("PATH").unwrap_or_default(),
            DEBIAN_POSTGRES_LIBS,
        )
    }

    /// `path` in `$PATH` syntax, then `postgres_libs/<version>/bin`.
    pub fn new(path: impl Into<OsString>, postgres_libs: impl Into<PathBuf>) -> BinarySearch {
        BinarySearch {
            path: path.into(),
            postgres_libs: postgres_libs.into(),
        }
    }

    /// The first executable `binary` on the search path, else under the
    /// highest Postgres version directory that has it.
    pub fn find(&self, binary: &str) -> Result<PathBuf, MissingBinary> {
        std::env::split_paths(&self.path)
            .chain(self.postgres_bin_dirs())
            .map(|dir| dir.join(binary))
            .find(|candidate| is_executable(candidate))
            .ok_or_else(|| MissingBinary {
                binary: binary.to_owned(),
                package: package_for(binary),
            })
    }

    /// The `<postgres_libs>/<version>/bin` directories, highest version first.
    fn postgres_bin_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.postgres_libs) else {
            return Vec::new();
        };
        let mut versions: Vec<(Vec<u32>, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let version = name
                    .split('.')
                    .map(str::parse)
                    .collect::<Result<Vec<u32>, _>>()
                    .ok()?;
                Some((version, entry.path().join("bin")))
            })
            .collect();
        versions.sort_by(|a, b| b.0.cmp(&a.0));
        versions.into_iter().map(|(_, dir)| dir).collect()
    }
}

/// The Postgres binaries, all from one installation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresBinaries {
    /// `initdb`.
    pub initdb: PathBuf,
    /// `postgres`.
    pub postgres: PathBuf,
}

impl PostgresBinaries {
    /// Finds `initdb`, then `postgres` preferably beside it (resolving
    /// symlinks), so the two come from the same version.
    pub fn find(search: &BinarySearch) -> Result<PostgresBinaries, MissingBinary> {
        let initdb = search.find("initdb")?;
        let home = std::fs::canonicalize(&initdb)
            .ok()
            .and_then(|real| real.parent().map(Path::to_path_buf));
        let sibling = |name: &str| {
            home.as_ref()
                .map(|dir| dir.join(name))
                .filter(|candidate| is_executable(candidate))
        };
        let postgres = match sibling("postgres") {
            Some(found) => found,
            None => search.find("postgres")?,
        };
        Ok(PostgresBinaries { initdb, postgres })
    }
}

/// The Debian package that provides `binary`.
fn package_for(binary: &str) -> &'static str {
    match binary {
        "redis-server" | "redis-cli" => "redis-server",
        "psql" | "createdb" => "postgresql-client",
        _ => "postgresql",
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// `<binary> --version`, trimmed: run under a guard like every child, and
/// given up (its process group stopped) after [`VERSION_TIMEOUT`].
pub async fn version_output(binary: &Path) -> anyhow::Result<String> {
    use anyhow::Context;
    let mut command = Command::new(binary);
    command.arg("--version");
    let options = GuardOptions {
        grace: Duration::from_secs(1),
        ..GuardOptions::default()
    };
    let finished = ChildGuard::run(
        format!("{} --version", binary.display()),
        command,
        options,
        VERSION_TIMEOUT,
    )
    .await
    .with_context(|| format!("run `{} --version`", binary.display()))?;
    anyhow::ensure!(
        finished.status.success(),
        "run `{} --version`: {}",
        binary.display(),
        finished.status
    );
    let stdout: Vec<&str> = finished
        .output
        .lines()
        .filter(|l| l.stream == crate::process::Stream::Stdout)
        .map(|l| l.text.as_str())
        .collect();
    Ok(stdout.join("\n").trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::{BinarySearch, PostgresBinaries};

    fn nowhere() -> BinarySearch {
        BinarySearch::new("/nonexistent-gonogo-bin", "/nonexistent-gonogo-lib")
    }

    #[test]
    fn missing_postgres_names_the_package() {
        let error = PostgresBinaries::find(&nowhere()).expect_err("nothing to find");
        let message = error.to_string();
        assert!(message.contains("`initdb`"), "{message}");
        assert!(message.contains("apt-get install postgresql"), "{message}");
    }

    #[test]
    fn missing_redis_names_the_package() {
        let error = nowhere().find("redis-server").expect_err("nothing to find");
        let message = error.to_string();
        assert!(message.contains("`redis-server`"), "{message}");
        assert!(
            message.contains("apt-get install redis-server"),
            "{message}"
        );
    }

    #[test]
    fn falls_back_to_the_highest_postgres_version() {
        let libs = std::env::temp_dir().join(format!("gonogo-bin-test-{}", std::process::id()));
        for version in ["9.6", "14", "16"] {
            let bin = libs.join(version).join("bin");
            std::fs::create_dir_all(&bin).expect("create fake bin dir");
            let initdb = bin.join("initdb");
            std::fs::write(&initdb, "#!/bin/sh\n").expect("write fake initdb");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&initdb, std::fs::Permissions::from_mode(0o755))
                .expect("make fake initdb executable");
        }
        let found = BinarySearch::new("/nonexistent-gonogo-bin", &libs).find("initdb");
        std::fs::remove_dir_all(&libs).expect("remove fake libs");
        assert_eq!(found.expect("found"), libs.join("16/bin/initdb"));
    }

    #[test]
    fn finds_the_installed_servers() {
        let search = BinarySearch::from_env();
        let postgres = PostgresBinaries::find(&search).expect("postgres installed");
        assert!(postgres.postgres.ends_with("postgres"));
        search.find("redis-server").expect("redis installed");
    }
}
