//! Executor packages and tar archives, byte-exact with the official SDK
//! (spec `tenant-sdk.md` §3i):
//!
//! * [`package_digest`] — the `executor.package_sha256` digest of a package
//!   directory (`compute_package_digest`, identical in 0.5.5 and 0.6.67, and
//!   re-implemented byte for byte by the worker);
//! * [`write_package_tar`] / [`build_package_archive`] — the deterministic
//!   package archive of 0.6.67 (`build_package_archive`, the body of
//!   `POST /api/v0/packages`): a PAX tar of the same files in the same order,
//!   with fixed metadata, gzip level 9 without a file name and with MTIME 0;
//! * [`write_unit_tar`] / [`write_unit_tarball`] — the static work-unit tarball
//!   of 0.5.5 (`tar_writer`), whose inner tar is byte-identical to the SDK's.
//!
//! **I/O.** This crate otherwise does no I/O beyond what a caller hands it;
//! walking and reading a package directory is the one exception, because the
//! digest *is* a function of a directory tree and splitting the walk from the
//! encoding would only invite the two to disagree. Nothing is ever written
//! to the file system here: archives go to a caller-supplied [`Write`].
//!
//! **The walk** reproduces Python's `sorted(Path(dir).rglob("*"))`:
//!
//! * entries are ordered by their *path components* compared element-wise by
//!   code point, so `a/b` sorts before `a-b/x` although `-` < `/`;
//! * hidden entries are included; symbolic links to files are followed and
//!   hashed as their target's content; symbolic links to directories are
//!   listed but not descended into; dangling or looping links, directories,
//!   FIFOs, sockets and devices contribute nothing;
//! * the top-level `manifest.json` and `manifest.json.sig`, every `*.pyc` and
//!   every path with a `__pycache__` component are excluded.
//!
//! Where Python would silently do something surprising this module refuses
//! instead: an unreadable sub-directory (Python 3.11 skips it, changing the
//! digest without a word), a missing package directory (Python digests the
//! empty package), a kept file whose path is not valid UTF-8 (Python fails
//! with an encoding error), and a file that changes size while it is being
//! archived.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::hex_lower;

/// Size of a tar block.
const BLOCK: usize = 512;
/// Python's `tarfile.RECORDSIZE` (20 blocks): archives are padded to a multiple.
const RECORD: u64 = 10_240;
/// Largest size the 12-byte octal ustar field holds (`8**11 - 1`); larger
/// members get a PAX `size` record, as Python writes them.
const MAX_USTAR_SIZE: u64 = (1 << 33) - 1;
/// Top-level files the digest and the archive leave out.
const EXCLUDED_TOP_LEVEL: [&str; 2] = ["manifest.json", "manifest.json.sig"];

/// Errors of the package digest and the archive writers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// The package directory does not exist.
    #[error("package directory {path} does not exist")]
    NotFound {
        /// The directory given.
        path: PathBuf,
    },
    /// The package path exists but is not a directory.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// Reading a directory, a file or its metadata failed.
    #[error("cannot read {path}")]
    Io {
        /// The entry being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file that belongs to the package has a path that is not valid UTF-8;
    /// the digest is defined over UTF-8 text, so it cannot be computed.
    #[error("{path}: path is not valid UTF-8; rename it or remove it from the package")]
    NonUtf8Path {
        /// The offending file (lossily displayed).
        path: PathBuf,
    },
    /// A file changed size while it was being archived.
    #[error("{path} changed while it was being read; retry when the package is not being modified")]
    FileChanged {
        /// The file.
        path: PathBuf,
    },
    /// Two work units share a `unit_id` (their members would collide).
    #[error("duplicate unit_id in work-unit set: {unit_id}")]
    DuplicateUnitId {
        /// The repeated id.
        unit_id: String,
    },
    /// Writing the archive to the caller's writer failed.
    #[error("cannot write the archive")]
    Output {
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// One file of a package, as enumerated by [`package_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    /// POSIX relative path inside the package (`lib/util.py`); also the
    /// archive member name.
    pub rel: String,
    /// The file on disk (`<dir>/<rel>`; may be a symbolic link to a file).
    pub path: PathBuf,
}

/// The package digest with the text it is computed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageDigest {
    /// One line per file, in walk order: `rel` + `\0` + lowercase hex SHA-256
    /// of the file's bytes.
    pub lines: Vec<String>,
    /// The lines joined by `\n` (no trailing newline; empty for an empty
    /// package) — the exact text that is hashed.
    pub blob: String,
    /// Lowercase hex SHA-256 of the UTF-8 `blob`: the value of
    /// `executor.package_sha256`.
    pub sha256: String,
}

impl PackageDigest {
    fn from_lines(lines: Vec<String>) -> PackageDigest {
        let blob = lines.join("\n");
        let sha256 = crate::sha256_hex(blob.as_bytes());
        PackageDigest {
            lines,
            blob,
            sha256,
        }
    }
}

/// A deterministic package archive together with the digest of exactly the
/// bytes it contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageArchive {
    /// The `.tar.gz` bytes (the body of `POST /api/v0/packages`).
    pub bytes: Vec<u8>,
    /// The package digest over the same file contents that were archived
    /// (read once, so the archive and the digest cannot disagree).
    pub digest: PackageDigest,
}

/// Enumerates the files of the package at `dir` in digest order, applying the
/// exclusions (see the module documentation for the exact rules).
pub fn package_files(dir: &Path) -> Result<Vec<PackageFile>, PackageError> {
    let meta = fs::metadata(dir).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => PackageError::NotFound {
            path: dir.to_path_buf(),
        },
        _ => PackageError::Io {
            path: dir.to_path_buf(),
            source,
        },
    })?;
    if !meta.is_dir() {
        return Err(PackageError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let mut found = Vec::new();
    walk(dir, &mut Vec::new(), true, &mut found)?;
    found.sort_by(|a, b| a.components.cmp(&b.components));
    let mut files = Vec::with_capacity(found.len());
    for entry in found {
        let rel = entry.components.join("/");
        if is_excluded(&rel, &entry.components) {
            continue;
        }
        if !entry.utf8 {
            return Err(PackageError::NonUtf8Path { path: entry.path });
        }
        files.push(PackageFile {
            rel,
            path: entry.path,
        });
    }
    Ok(files)
}

/// Computes the executor package digest of `dir` (`compute_package_digest`).
pub fn package_digest(dir: &Path) -> Result<PackageDigest, PackageError> {
    let files = package_files(dir)?;
    let mut lines = Vec::with_capacity(files.len());
    let mut buf = vec![0u8; 64 * 1024];
    for file in &files {
        let mut reader = File::open(&file.path).map_err(|e| io_error(&file.path, e))?;
        let mut hasher = Sha256::new();
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(&file.path, e)),
            };
            hasher.update(&buf[..n]);
        }
        lines.push(format!("{}\0{}", file.rel, hex_lower(&hasher.finalize())));
    }
    Ok(PackageDigest::from_lines(lines))
}

/// Writes the *uncompressed* deterministic package archive of `dir` to `out`
/// (the inner tar of 0.6.67 `build_package_archive`) and returns the digest of
/// the archived contents.
///
/// Members are the files of [`package_files`] in that order, each a regular
/// file named by its relative path, mode 0644, uid/gid 0, empty user and group
/// names, mtime 0; names longer than 100 bytes or not ASCII get a PAX `path`
/// record. The archive ends with two zero blocks and is padded to 10 240 bytes.
pub fn write_package_tar<W: Write>(dir: &Path, out: W) -> Result<PackageDigest, PackageError> {
    let files = package_files(dir)?;
    let mut tar = TarWriter::new(out);
    let mut lines = Vec::with_capacity(files.len());
    for file in &files {
        let sha = tar.append_file(&file.rel, &file.path)?;
        lines.push(format!("{}\0{}", file.rel, sha));
    }
    tar.finish()?;
    Ok(PackageDigest::from_lines(lines))
}

/// Builds the deterministic `.tar.gz` package archive of `dir` (0.6.67
/// `build_package_archive`): the tar of [`write_package_tar`] compressed at
/// gzip level 9 with no file name and MTIME 0 (header `1f8b08000000000002ff`).
///
/// The inner tar is byte-identical to the SDK's. The compressed bytes depend
/// on the deflate implementation: this crate uses `zlib-rs`, whose level-9
/// output equals that of the zlib 1.2.13 behind the SDK on every vector (the
/// tests pin the complete archive bytes), but a different zlib build on the
/// Python side could compress differently.
pub fn build_package_archive(dir: &Path) -> Result<PackageArchive, PackageError> {
    let mut gz = deterministic_gzip(Vec::new());
    let digest = write_package_tar(dir, &mut gz)?;
    let bytes = gz
        .finish()
        .map_err(|source| PackageError::Output { source })?;
    Ok(PackageArchive { bytes, digest })
}

/// Builds the inner tar of a static work-unit tarball (0.5.5 `tar_writer`):
/// one member `unit_<unit_id>.json` per `(unit_id, json_text)` pair, **in the
/// order given**, whose content is `json_text` as UTF-8 (the SDK writes
/// `WorkUnit.model_dump_json(indent=2)`, without a trailing newline). Member
/// headers are those of [`write_package_tar`].
///
/// A repeated `unit_id` is refused with [`PackageError::DuplicateUnitId`].
pub fn write_unit_tar<U, J>(members: &[(U, J)]) -> Result<Vec<u8>, PackageError>
where
    U: AsRef<str>,
    J: AsRef<str>,
{
    let mut seen = std::collections::HashSet::with_capacity(members.len());
    for (unit_id, _) in members {
        if !seen.insert(unit_id.as_ref()) {
            return Err(PackageError::DuplicateUnitId {
                unit_id: unit_id.as_ref().to_owned(),
            });
        }
    }
    let mut tar = TarWriter::new(Vec::new());
    for (unit_id, json) in members {
        let name = format!("unit_{}.json", unit_id.as_ref());
        tar.append_bytes(&name, json.as_ref().as_bytes())?;
    }
    tar.finish()
}

/// Builds a static work-unit tarball: the tar of [`write_unit_tar`], gzipped
/// at level 9 with no file name and MTIME 0.
///
/// Unlike 0.5.5 — whose gzip header carries the output file name and the
/// current time, so `work_unit_source.tarball_sha256` changes on every run —
/// the result is reproducible: the same units always give the same bytes.
/// Readers (including the SDK's `tar_reader`) see the same members.
pub fn write_unit_tarball<U, J>(members: &[(U, J)]) -> Result<Vec<u8>, PackageError>
where
    U: AsRef<str>,
    J: AsRef<str>,
{
    let tar = write_unit_tar(members)?;
    let mut gz = deterministic_gzip(Vec::new());
    gz.write_all(&tar)
        .map_err(|source| PackageError::Output { source })?;
    gz.finish()
        .map_err(|source| PackageError::Output { source })
}

/// A gzip stream at level 9 with no FNAME and MTIME 0; flate2 writes XFL 2 and
/// OS 255, i.e. the header `1f8b08000000000002ff` Python writes for
/// `GzipFile(filename="", mtime=0, compresslevel=9)`.
fn deterministic_gzip<W: Write>(out: W) -> flate2::write::GzEncoder<W> {
    flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(out, flate2::Compression::best())
}

// ---------------------------------------------------------------------------
// The walk.

struct Found {
    components: Vec<String>,
    path: PathBuf,
    /// Every component was valid UTF-8 (else `components` is lossy).
    utf8: bool,
}

fn io_error(path: &Path, source: io::Error) -> PackageError {
    PackageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn is_excluded(rel: &str, components: &[String]) -> bool {
    EXCLUDED_TOP_LEVEL.contains(&rel)
        || rel.ends_with(".pyc")
        || components.iter().any(|c| c == "__pycache__")
}

/// Collects every file under `dir` (see the module docs for what counts).
fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    utf8: bool,
    out: &mut Vec<Found>,
) -> Result<(), PackageError> {
    let entries = fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let (component, name_utf8) = match name.to_str() {
            Some(s) => (s.to_owned(), true),
            None => (name.to_string_lossy().into_owned(), false),
        };
        let file_type = entry.file_type().map_err(|e| io_error(&path, e))?;
        let is_file = if file_type.is_dir() {
            prefix.push(component);
            let result = walk(&path, prefix, utf8 && name_utf8, out);
            prefix.pop();
            result?;
            continue;
        } else if file_type.is_symlink() {
            // Python's `is_file()` follows the link and answers False when the
            // target is missing, is a loop or is not a regular file; other
            // errors (e.g. permission denied on the target) propagate.
            match fs::metadata(&path) {
                Ok(meta) => meta.is_file(),
                Err(e) if is_dangling(&e) => false,
                Err(e) => return Err(io_error(&path, e)),
            }
        } else {
            file_type.is_file()
        };
        if is_file {
            let mut components = prefix.clone();
            components.push(component);
            out.push(Found {
                components,
                path,
                utf8: utf8 && name_utf8,
            });
        }
    }
    Ok(())
}

/// Errors for which Python's `Path.is_file()` quietly answers False
/// (`ENOENT`, `ENOTDIR`, `EBADF`, `ELOOP`).
fn is_dangling(e: &io::Error) -> bool {
    /// `ELOOP` (`io::ErrorKind::FilesystemLoop` is not stable yet).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const ELOOP: i32 = 40;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const ELOOP: i32 = 62; // macOS and the BSDs
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    ) || e.raw_os_error() == Some(ELOOP)
}

// ---------------------------------------------------------------------------
// The tar encoder (Python `tarfile`, `PAX_FORMAT`, as `TarInfo.tobuf` writes).

struct TarWriter<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> TarWriter<W> {
    fn new(out: W) -> TarWriter<W> {
        TarWriter { out, written: 0 }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), PackageError> {
        self.out
            .write_all(bytes)
            .map_err(|source| PackageError::Output { source })?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad_to_block(&mut self, len: u64) -> Result<(), PackageError> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.write(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    fn header(&mut self, name: &str, size: u64) -> Result<(), PackageError> {
        let header = member_header(name, size);
        self.write(&header)
    }

    fn append_bytes(&mut self, name: &str, data: &[u8]) -> Result<(), PackageError> {
        self.header(name, data.len() as u64)?;
        self.write(data)?;
        self.pad_to_block(data.len() as u64)
    }

    /// Appends the file at `path` (following symbolic links) as member `name`,
    /// returning the hex SHA-256 of the bytes archived.
    fn append_file(&mut self, name: &str, path: &Path) -> Result<String, PackageError> {
        let mut file = File::open(path).map_err(|e| io_error(path, e))?;
        let size = file.metadata().map_err(|e| io_error(path, e))?.len();
        self.header(name, size)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut remaining = size;
        while remaining > 0 {
            let want = usize::try_from(remaining.min(buf.len() as u64)).unwrap_or(buf.len());
            let n = match file.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(PackageError::FileChanged {
                        path: path.to_path_buf(),
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(path, e)),
            };
            hasher.update(&buf[..n]);
            self.write(&buf[..n])?;
            remaining -= n as u64;
        }
        // The file must end where its size said it would.
        loop {
            match file.read(&mut buf[..1]) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(PackageError::FileChanged {
                        path: path.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(path, e)),
            }
        }
        self.pad_to_block(size)?;
        Ok(hex_lower(&hasher.finalize()))
    }

    /// Two zero blocks, then zeros up to a multiple of [`RECORD`]
    /// (`TarFile.close`).
    fn finish(mut self) -> Result<W, PackageError> {
        self.write(&[0u8; 2 * BLOCK])?;
        let rem = self.written % RECORD;
        if rem != 0 {
            let mut pad = RECORD - rem;
            while pad > 0 {
                let n = pad.min(BLOCK as u64);
                self.write(&[0u8; BLOCK][..n as usize])?;
                pad -= n;
            }
        }
        // No `flush()`: on a gzip stream it would emit a sync-flush block and
        // change the compressed bytes; the caller flushes or finishes `out`.
        Ok(self.out)
    }
}

/// The header block(s) of one regular-file member: a PAX extended header
/// (`././@PaxHeader`, type `x`) when the name is longer than 100 characters or
/// not ASCII, or the size needs more than 11 octal digits — then the ustar
/// header itself.
fn member_header(name: &str, size: u64) -> Vec<u8> {
    let mut records: Vec<u8> = Vec::new();
    if !name.is_ascii() || name.len() > 100 {
        records.extend(pax_record("path", name));
    }
    let ustar_size = if size > MAX_USTAR_SIZE {
        records.extend(pax_record("size", &size.to_string()));
        0
    } else {
        size
    };
    let mut out = Vec::with_capacity(3 * BLOCK);
    if !records.is_empty() {
        out.extend_from_slice(&ustar_block(
            b"././@PaxHeader",
            0,
            records.len() as u64,
            b'x',
        ));
        let len = records.len();
        out.extend_from_slice(&records);
        let rem = len % BLOCK;
        if rem != 0 {
            out.resize(out.len() + BLOCK - rem, 0);
        }
    }
    // `stn(name, 100, "ascii", "replace")`: one `?` per non-ASCII character,
    // then truncated to the field.
    let ascii_name: Vec<u8> = name
        .chars()
        .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
        .collect();
    out.extend_from_slice(&ustar_block(&ascii_name, 0o644, ustar_size, b'0'));
    out
}

/// One PAX record `"<len> <keyword>=<value>\n"`, where `<len>` counts the
/// whole record including its own digits.
fn pax_record(keyword: &str, value: &str) -> Vec<u8> {
    // Python's `_create_pax_generic_header` loop, verbatim.
    let base = keyword.len() + value.len() + 3;
    let mut p = 0usize;
    loop {
        let n = base + p.to_string().len();
        if n == p {
            break;
        }
        p = n;
    }
    format!("{p} {keyword}={value}\n").into_bytes()
}

/// A ustar header block as Python's `TarInfo._create_header` writes it:
/// uid/gid/mtime 0, empty link name, user and group names, device fields and
/// prefix, magic `ustar\0` version `00`.
fn ustar_block(name: &[u8], mode: u32, size: u64, typeflag: u8) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], u64::from(mode & 0o7777));
    octal(&mut h[108..116], 0); // uid
    octal(&mut h[116..124], 0); // gid
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0); // mtime
    h[148..156].copy_from_slice(b"        ");
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let chk = format!("{sum:06o}\0");
    h[148..155].copy_from_slice(chk.as_bytes());
    h
}

/// Zero-padded octal filling the field but its last byte, which is NUL
/// (`itn`); callers guarantee the value fits.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    let bytes = s.as_bytes();
    let start = bytes.len().saturating_sub(digits);
    field[..digits].copy_from_slice(&bytes[start..]);
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(
            pax_record("path", "data/é.json"),
            b"21 path=data/\xc3\xa9.json\n"
        );
        let r = pax_record("path", "abcd");
        assert_eq!(r, b"13 path=abcd\n");
        // Base length 9: "10 a=bcdef\n" would be 11 bytes long, so it is 11.
        let r = pax_record("a", "bcdef");
        assert_eq!(r, b"11 a=bcdef\n");
        assert_eq!(r.len(), 11);
    }

    #[test]
    fn checksum_field_layout() {
        let h = ustar_block(b"a", 0o644, 3, b'0');
        assert_eq!(&h[100..108], b"0000644\0");
        assert_eq!(&h[124..136], b"00000000003\0");
        assert_eq!(h[154], 0);
        assert_eq!(h[155], b' ');
    }
}
