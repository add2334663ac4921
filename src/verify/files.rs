//! Reading an untrusted bundle: list what is there without following
//! anything, and read only regular files, each with a size bound, so a
//! FIFO, a device or a symlink planted in a bundle cannot hang `verify` or
//! make it read something outside the bundle.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The largest file `verify` reads. Evidence files are bounded far below
/// this (captured bodies and logs are cut), so a bigger one is not gonogo's.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a file's bytes were not read.
#[derive(Debug)]
pub enum ReadProblem {
    /// A FIFO, device, socket, symlink or directory.
    NotRegular(&'static str),
    TooLarge(u64),
    Io(std::io::Error),
}

/// What kind of file a non-regular entry is, in words.
pub fn kind_of(file_type: fs::FileType) -> Option<&'static str> {
    if file_type.is_file() {
        return None;
    }
    Some(if file_type.is_symlink() {
        "a symlink"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    })
}

/// Read `path` if it is a regular file of at most [`MAX_FILE_BYTES`]. The
/// file is opened without following a symlink and without blocking (a
/// FIFO with no writer), and its type is checked on the open descriptor,
/// so a file swapped after listing cannot slip through.
pub fn read_regular(path: &Path) -> Result<Vec<u8>, ReadProblem> {
    let meta = fs::symlink_metadata(path).map_err(ReadProblem::Io)?;
    if let Some(kind) = kind_of(meta.file_type()) {
        return Err(ReadProblem::NotRegular(kind));
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => ReadProblem::NotRegular("a symlink"),
            _ => ReadProblem::Io(e),
        })?;
    let meta = file.metadata().map_err(ReadProblem::Io)?;
    if let Some(kind) = kind_of(meta.file_type()) {
        return Err(ReadProblem::NotRegular(kind));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ReadProblem::TooLarge(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadProblem::Io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadProblem::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Every entry under `dir` that is not a directory (symlinks, FIFOs and
/// the like included, never followed), keyed by its `/`-separated relative
/// path.
pub fn entries_under(dir: &Path) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in
            fs::read_dir(&current).with_context(|| format!("read {}", current.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            // `file_type` does not follow symlinks: a symlinked directory
            // is listed as an entry, not walked into.
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

/// Subdirectories of `dir` that hold a `file` (evidence bundles under an
/// evidence root), sorted, at most `limit`.
pub fn subdirs_holding(dir: &Path, file: &str, limit: usize) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| fs::symlink_metadata(p.join(file)).is_ok())
        .collect();
    found.sort();
    found.truncate(limit);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.display().to_string()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.txt");
        fs::write(&file, b"abc").unwrap();
        assert_eq!(read_regular(&file).unwrap(), b"abc");
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        assert!(matches!(
            read_regular(&fifo),
            Err(ReadProblem::NotRegular("a FIFO"))
        ));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(matches!(
            read_regular(&link),
            Err(ReadProblem::NotRegular("a symlink"))
        ));
        assert!(matches!(
            read_regular(Path::new("/dev/null")),
            Err(ReadProblem::NotRegular("a character device"))
        ));
        let big = dir.path().join("big");
        // Sparse: no disk is used.
        fs::File::create(&big)
            .unwrap()
            .set_len(MAX_FILE_BYTES + 1)
            .unwrap();
        assert!(matches!(read_regular(&big), Err(ReadProblem::TooLarge(_))));
        let listed: Vec<String> = entries_under(dir.path()).unwrap().into_keys().collect();
        assert_eq!(listed, ["a.txt", "big", "fifo", "link"]);
    }
}
