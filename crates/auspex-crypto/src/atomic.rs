//! Atomic file writes: the new content appears under its name all at once or
//! not at all, with its final permissions from the first byte.
//!
//! The bytes go to a temporary file in the target's directory, created
//! exclusively (`O_CREAT|O_EXCL`) with the requested mode — never wider — then
//! flushed to disk, moved over the target with `rename(2)` (or, when an
//! existing target must be refused, linked in with `link(2)`, which fails
//! atomically if the name is taken), and the directory is synced so the new
//! name survives a crash. On every error path the temporary file is removed.
//!
//! Permissions are applied on Unix only; elsewhere `mode` is ignored.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Errors of [`write_atomic`], [`write_atomic_new`] and [`create_dir_all`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AtomicWriteError {
    /// The target exists and replacing it was not allowed.
    #[error("{path} already exists")]
    Exists {
        /// The target.
        path: PathBuf,
    },
    /// The target path has no file-name component (`/`, `..`, empty).
    #[error("{path} does not name a file")]
    NoFileName {
        /// The path given.
        path: PathBuf,
    },
    /// Creating a directory failed.
    #[error("cannot create directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Creating, writing or syncing the temporary file failed.
    #[error("cannot write a temporary file in {dir}")]
    Write {
        /// The directory of the target.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Moving the temporary file into place failed.
    #[error("cannot move the new file into place at {path}")]
    Rename {
        /// The target.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file is in place but syncing its directory failed, so the new
    /// name may not survive a crash.
    #[error("wrote {path} but could not sync its directory")]
    SyncDir {
        /// The target.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Writes `bytes` to `path` atomically with permission bits `mode`
/// (e.g. `0o600`), replacing any existing file. The parent directory must
/// exist.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AtomicWriteError> {
    write(path, bytes, mode, true)
}

/// Like [`write_atomic`] but refuses to replace an existing `path` (any kind
/// of entry, including a dangling symbolic link) with
/// [`AtomicWriteError::Exists`]; the check and the creation are one atomic
/// step where the file system supports hard links.
pub fn write_atomic_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AtomicWriteError> {
    write(path, bytes, mode, false)
}

/// Creates `dir` and any missing ancestors; the directories created get
/// permission bits `mode` (subject to the umask, like `mkdir -p -m`), existing
/// ones are left as they are.
pub fn create_dir_all(dir: &Path, mode: u32) -> Result<(), AtomicWriteError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    builder
        .create(dir)
        .map_err(|source| AtomicWriteError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// Removes the temporary file on drop unless disarmed.
struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn write(path: &Path, bytes: &[u8], mode: u32, replace: bool) -> Result<(), AtomicWriteError> {
    let file_name = path
        .file_name()
        .ok_or_else(|| AtomicWriteError::NoFileName {
            path: path.to_path_buf(),
        })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !replace && fs::symlink_metadata(path).is_ok() {
        return Err(AtomicWriteError::Exists {
            path: path.to_path_buf(),
        });
    }
    let write_err = |source| AtomicWriteError::Write {
        dir: dir.to_path_buf(),
        source,
    };

    let (tmp_path, mut file) = create_temp(dir, file_name, mode).map_err(write_err)?;
    let mut guard = TempGuard {
        path: tmp_path,
        armed: true,
    };
    file.write_all(bytes).map_err(write_err)?;
    // The umask may have removed bits from the creation mode; set exactly
    // `mode` (never wider than requested, and the file was created narrower).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(write_err)?;
    }
    file.sync_all().map_err(write_err)?;
    drop(file);

    if replace {
        fs::rename(&guard.path, path).map_err(|source| AtomicWriteError::Rename {
            path: path.to_path_buf(),
            source,
        })?;
        guard.armed = false;
    } else {
        link_new(&guard.path, path)?;
        // The target now holds the content; the temporary name goes (the
        // guard retries on drop should this fail).
        if fs::remove_file(&guard.path).is_ok() {
            guard.armed = false;
        }
    }
    sync_dir(dir).map_err(|source| AtomicWriteError::SyncDir {
        path: path.to_path_buf(),
        source,
    })
}

/// Puts `tmp` at `path` only if `path` does not exist.
fn link_new(tmp: &Path, path: &Path) -> Result<(), AtomicWriteError> {
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(AtomicWriteError::Exists {
            path: path.to_path_buf(),
        }),
        // File systems without hard links (FAT, some FUSE mounts): fall back
        // to check-then-rename, which is not atomic against a concurrent
        // writer but is the best such a file system allows.
        Err(_) => {
            if fs::symlink_metadata(path).is_ok() {
                return Err(AtomicWriteError::Exists {
                    path: path.to_path_buf(),
                });
            }
            fs::rename(tmp, path).map_err(|source| AtomicWriteError::Rename {
                path: path.to_path_buf(),
                source,
            })
        }
    }
}

/// Creates `<dir>/.<name>.<random>.tmp` exclusively with `mode`.
fn create_temp(dir: &Path, name: &std::ffi::OsStr, mode: u32) -> io::Result<(PathBuf, File)> {
    let mut attempts = 0;
    loop {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
        let mut tmp_name = OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", auspex_wire::hex_lower(&random)));
        let tmp_path = dir.join(tmp_name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        match options.open(&tmp_path) {
            Ok(file) => return Ok((tmp_path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Flushes the directory entry to disk (Unix); file systems that cannot sync
/// a directory (it returns `EINVAL`) are not an error.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        match File::open(dir).and_then(|d| d.sync_all()) {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
