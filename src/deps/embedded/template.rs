//! Provision stage, Postgres template cache: keeps one pristine, initialized
//! cluster per Postgres build, so a run copies it (tens of milliseconds)
//! instead of running `initdb` (half a second). Takes the data directory a
//! fresh `initdb` produced; gives a [`Template`] that later runs copy from.
//!
//! The cache lives in `$GONOGO_CACHE_DIR`, else `$XDG_CACHE_HOME/gonogo`,
//! else `~/.cache/gonogo`; `GONOGO_NO_PG_TEMPLATE=1` turns it off. Each
//! template is a directory named after the Postgres version, the
//! [`LAYOUT`] version and a digest of everything else that shapes the
//! cluster (the exact `--version` text, the `initdb` path and the recipe in
//! [`postgres`](super::postgres)), e.g. `pg-template-15.18-v1-3f9a0c12`.
//!
//! Several gonogo processes may fill the cache at once: each copies into its
//! own staging [`TempRoot`] inside the cache directory and `rename`s the copy
//! into place. `rename` is atomic, so a template directory that exists is
//! complete; the loser of a race drops its copy and the winner's is used.
//!
//! The template holds no secret: its role has no password at all (see
//! [`postgres`](super::postgres) for how each run sets one).

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::TempRoot;
use super::user::ServerUser;

/// The version of the template's recipe. Bump it whenever what goes into a
/// template changes, so old templates are no longer used.
pub const LAYOUT: u32 = 1;
/// Overrides the cache directory.
pub const CACHE_DIR_ENV: &str = "GONOGO_CACHE_DIR";
/// Set to `1` (or anything but `0` or empty) to skip the template and run
/// `initdb` every time.
pub const NO_TEMPLATE_ENV: &str = "GONOGO_NO_PG_TEMPLATE";

/// The template cache directory the environment selects, or `None` when
/// [`NO_TEMPLATE_ENV`] disables it or no home directory is known.
pub fn cache_dir_from_env() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if var(NO_TEMPLATE_ENV).is_some_and(|value| value != "0") {
        return None;
    }
    if let Some(dir) = var(CACHE_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("gonogo"));
    }
    var("HOME").map(|home| PathBuf::from(home).join(".cache").join("gonogo"))
}

/// One cached cluster (which may not exist yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    cache: PathBuf,
    dir: PathBuf,
}

/// What [`Template::store`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// This process's copy became the template.
    Installed,
    /// Another process installed the template first; its copy is kept.
    AlreadyThere,
}

impl Template {
    /// The template in `cache` for the Postgres whose `postgres --version`
    /// printed `version_output`, initialized by `initdb` following `recipe`.
    pub fn locate(cache: &Path, version_output: &str, initdb: &Path, recipe: &str) -> Template {
        let number = super::postgres::version_number(version_output).unwrap_or("unknown");
        let identity = format!("{version_output}\n{}\n{recipe}", initdb.display());
        let digest = crate::digest::sha256_hex(identity.as_bytes());
        let name = format!("pg-template-{number}-v{LAYOUT}-{}", &digest[..8]);
        Template {
            cache: cache.to_path_buf(),
            dir: cache.join(name),
        }
    }

    /// The template's data directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Whether the template exists (and so is complete).
    pub fn exists(&self) -> bool {
        self.dir.join("PG_VERSION").is_file()
    }

    /// Copies the template to `dest` (which must not exist), handing every
    /// file to `owner`.
    pub async fn copy_to(&self, dest: &Path, owner: &ServerUser) -> anyhow::Result<()> {
        let owner = (!owner.is_current()).then_some((owner.uid, owner.gid));
        let (from, to) = (self.dir.clone(), dest.to_path_buf());
        tokio::task::spawn_blocking(move || copy_tree(&from, &to, owner))
            .await
            .context("join the copy task")?
            .with_context(|| {
                format!(
                    "copy the postgres template `{}` to `{}` (remove the template, or set {NO_TEMPLATE_ENV}=1)",
                    self.dir.display(),
                    dest.display()
                )
            })
    }

    /// Stores a copy of the pristine data directory `data` as the template,
    /// unless another process got there first.
    pub async fn store(&self, data: &Path) -> anyhow::Result<Stored> {
        let (cache, dir, data) = (self.cache.clone(), self.dir.clone(), data.to_path_buf());
        tokio::task::spawn_blocking(move || store_blocking(&cache, &dir, &data))
            .await
            .context("join the copy task")?
            .with_context(|| {
                format!(
                    "store the postgres template in `{}` (set {CACHE_DIR_ENV} to a writable directory, or {NO_TEMPLATE_ENV}=1)",
                    self.cache.display()
                )
            })
    }
}

fn store_blocking(cache: &Path, dir: &Path, data: &Path) -> io::Result<Stored> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(cache)?;
    // The staging root sweeps the copies that killed runs left behind.
    let staging = TempRoot::create_in(cache)?;
    let copy = staging.path().join("data");
    copy_tree(data, &copy, None)?;
    match std::fs::rename(&copy, dir) {
        Ok(()) => Ok(Stored::Installed),
        // `rename` refuses to replace a non-empty directory.
        Err(error) if matches!(error.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {
            Ok(Stored::AlreadyThere)
        }
        Err(error) => Err(error),
    }
    // Dropping `staging` removes whatever is left of it.
}

/// Copies the tree at `from` to `to` (which must not exist), keeping
/// permission bits and symlinks, like `cp -a` but without the owner: the
/// copy belongs to `owner` if given, else to the current user.
pub fn copy_tree(from: &Path, to: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    let chown = |path: &Path| match owner {
        Some((uid, gid)) => std::os::unix::fs::lchown(path, Some(uid), Some(gid)),
        None => Ok(()),
    };
    if meta.is_dir() {
        std::fs::DirBuilder::new().mode(0o700).create(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()), owner)?;
        }
        // After the contents, so a read-only directory can still be filled;
        // exactly, whatever the umask.
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        chown(to)
    } else if meta.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
        chown(to)
    } else if meta.is_file() {
        // `copy` uses copy_file_range (a reflink where the filesystem can)
        // and copies the permission bits.
        std::fs::copy(from, to)?;
        chown(to)
    } else {
        Err(io::Error::other(format!(
            "copy `{}`: not a file, directory or symlink",
            from.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::Path;

    use super::{Stored, Template, copy_tree};

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).expect("stat").mode() & 0o7777
    }

    #[test]
    fn names_the_template_after_version_layout_and_recipe() {
        let version = "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)";
        let initdb = Path::new("/usr/lib/postgresql/15/bin/initdb");
        let template = Template::locate(Path::new("/cache"), version, initdb, "recipe");
        let name = template.path().file_name().expect("name").to_string_lossy();
        assert!(name.starts_with("pg-template-15.18-v1-"), "{name}");
        assert_eq!(name.len(), "pg-template-15.18-v1-".len() + 8);
        let other = Template::locate(Path::new("/cache"), version, initdb, "other recipe");
        assert_ne!(template, other, "the recipe is part of the name");
    }

    #[test]
    fn copies_modes_links_and_contents() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let from = scratch.path().join("from");
        std::fs::create_dir_all(from.join("base/1")).expect("mkdir");
        std::fs::write(from.join("base/1/1259"), b"relation").expect("write");
        std::fs::write(from.join("PG_VERSION"), b"15\n").expect("write");
        std::fs::set_permissions(&from, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        std::fs::set_permissions(
            from.join("PG_VERSION"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
        std::os::unix::fs::symlink("base/1", from.join("link")).expect("symlink");

        let to = scratch.path().join("to");
        copy_tree(&from, &to, None).expect("copy");
        assert_eq!(
            std::fs::read(to.join("base/1/1259")).expect("read"),
            b"relation"
        );
        assert_eq!(mode(&to), 0o700);
        assert_eq!(mode(&to.join("PG_VERSION")), 0o600);
        assert_eq!(
            std::fs::read_link(to.join("link")).expect("readlink"),
            Path::new("base/1")
        );
    }

    #[test]
    fn copies_to_another_owner_when_root() {
        let Some(nobody) = crate::deps::embedded::user::lookup("nobody").expect("read accounts")
        else {
            return;
        };
        // SAFETY: geteuid cannot fail and has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let scratch = tempfile::tempdir().expect("tempdir");
        let from = scratch.path().join("from");
        std::fs::create_dir_all(from.join("sub")).expect("mkdir");
        std::fs::write(from.join("sub/file"), b"x").expect("write");
        let to = scratch.path().join("to");
        copy_tree(&from, &to, Some((nobody.uid, nobody.gid))).expect("copy");
        for path in [&to, &to.join("sub"), &to.join("sub/file")] {
            assert_eq!(
                std::fs::metadata(path).expect("stat").uid(),
                nobody.uid,
                "{}",
                path.display()
            );
        }
    }

    #[tokio::test]
    async fn the_first_store_wins_and_leaves_no_staging_behind() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let data = scratch.path().join("data");
        std::fs::create_dir(&data).expect("mkdir");
        std::fs::write(data.join("PG_VERSION"), b"15\n").expect("write");
        let cache = scratch.path().join("cache");
        let template = Template::locate(&cache, "postgres (PostgreSQL) 15.18", &data, "r");
        assert!(!template.exists());

        let (first, second) = tokio::join!(template.store(&data), template.store(&data));
        let mut outcomes = [first.expect("store"), second.expect("store")];
        outcomes.sort_by_key(|stored| *stored == Stored::AlreadyThere);
        assert_eq!(outcomes, [Stored::Installed, Stored::AlreadyThere]);
        assert!(template.exists());
        let left: Vec<_> = std::fs::read_dir(&cache)
            .expect("read cache")
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        assert_eq!(left.len(), 1, "only the template remains: {left:?}");
    }
}
