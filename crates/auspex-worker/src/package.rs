//! Executor packages (`worker.md` §6): where they come from, how an archive
//! is unpacked safely, and how a staged package is verified before anything
//! in it runs.
//!
//! **Sources.** The verified cache `<work_dir>/packages/<manifest_sha256>/`
//! first (also where an operator may pre-stage a package by hand), then the
//! configured [`PackageSource`]s in order, then the coordinator
//! (`GET /packages/by-manifest/{hash}`, [`CoordinatorSource`]) when
//! auto-fetch is on.
//!
//! **Unpacking** ([`unpack_archive`]) accepts a gzip'd tar of regular files
//! and directories only. It refuses the whole archive on: an absolute name,
//! a `..` component, a non-UTF-8 name, symbolic or hard links, devices,
//! FIFOs, sparse or other special members, a duplicate member, more than
//! [`UnpackCaps::max_entries`] members, a member over
//! [`UnpackCaps::max_file_bytes`], more than
//! [`UnpackCaps::max_total_bytes`] unpacked, or a path deeper than
//! [`UnpackCaps::max_depth`]. Files are created with `O_EXCL` (never through
//! an existing entry) with mode 0644, or 0755 when the archive gave any
//! execute bit (Python's `data` filter drops group/other write and set-id
//! bits; ownership and times are ignored).
//!
//! **Verification** ([`verify_dir`]) re-derives the manifest hash from the
//! staged `manifest.json` (Python-canonical JSON of the parsed object) and
//! the package digest of the tree (`auspex_wire::package::package_digest`),
//! and refuses with `executor_refused` and a machine tag on any mismatch:
//! `(manifest_hash_mismatch)`, `(auto_fetch_digest_mismatch)` (fetched),
//! `(package_digest_mismatch)` (staged), `(package_pin_missing)` (a fetched
//! manifest must pin `executor.package_sha256`), `(unsafe_package)`,
//! `(invalid_package)`, `(package_unavailable)`. Like the official worker it
//! reads only `executor.command`, `executor.package_sha256`, `models`,
//! `capture.raw` and `inference_determinism` from the manifest; it does not
//! re-validate the manifest schema (the hash is what binds it).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use auspex_wire::json::{self, Value};

use crate::client::Client;
use crate::error::Refusal;

/// Largest `manifest.json` read.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// What a [`PackageSource`] hands over.
#[derive(Debug)]
pub enum Fetched {
    /// A gzip'd tar (unpacked with [`unpack_archive`]).
    Archive(Vec<u8>),
    /// A directory holding the package and its `manifest.json` (copied,
    /// regular files and directories only).
    Directory(PathBuf),
}

/// Why a source could not provide a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The source does not have it (try the next one).
    NotFound(String),
    /// The source failed (unreachable, error answer).
    Unavailable(String),
}

/// A boxed future (the trait stays object safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Somewhere a package can be fetched from by manifest hash.
pub trait PackageSource: Send + Sync {
    /// A short name for log lines and refusal reasons.
    fn name(&self) -> String;
    /// The package whose `manifest.json` hashes to `manifest_sha256`
    /// (lowercase hex). What comes back is verified by the caller.
    fn fetch<'a>(&'a self, manifest_sha256: &'a str)
    -> BoxFuture<'a, Result<Fetched, SourceError>>;
}

impl fmt::Debug for dyn PackageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A local directory of packages: `<root>/<manifest_sha256>/` (a package
/// directory with its `manifest.json`) or `<root>/<manifest_sha256>.tar.gz`.
#[derive(Debug, Clone)]
pub struct LocalSource {
    /// The directory.
    pub root: PathBuf,
}

impl PackageSource for LocalSource {
    fn name(&self) -> String {
        format!("local {}", self.root.display())
    }

    fn fetch<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(async move {
            let dir = self.root.join(hash);
            if dir.join("manifest.json").is_file() {
                return Ok(Fetched::Directory(dir));
            }
            let archive = self.root.join(format!("{hash}.tar.gz"));
            match fs::metadata(&archive) {
                Ok(m) if m.is_file() && m.len() <= crate::client::MAX_PACKAGE_BYTES as u64 => {
                    fs::read(&archive).map(Fetched::Archive).map_err(|e| {
                        SourceError::Unavailable(format!("{}: {e}", archive.display()))
                    })
                }
                Ok(_) => Err(SourceError::Unavailable(format!(
                    "{} is not a file of at most 64 MiB",
                    archive.display()
                ))),
                Err(_) => Err(SourceError::NotFound(format!(
                    "not in {}",
                    self.root.display()
                ))),
            }
        })
    }
}

/// The coordinator's `GET /api/v0/packages/by-manifest/{hash}` (signed).
#[derive(Debug, Clone)]
pub struct CoordinatorSource {
    client: Arc<Client>,
}

impl CoordinatorSource {
    /// Fetches through `client`.
    pub fn new(client: Arc<Client>) -> CoordinatorSource {
        CoordinatorSource { client }
    }
}

impl PackageSource for CoordinatorSource {
    fn name(&self) -> String {
        "coordinator".into()
    }

    fn fetch<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(async move {
            match self.client.package_by_manifest(hash).await {
                Ok(bytes) => Ok(Fetched::Archive(bytes)),
                Err(e) if e.status() == Some(404) => Err(SourceError::NotFound(e.to_string())),
                Err(e) => Err(SourceError::Unavailable(e.to_string())),
            }
        })
    }
}

/// Limits of [`unpack_archive`] and of copying a local package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackCaps {
    /// Largest compressed archive.
    pub max_archive_bytes: u64,
    /// Most members (directories included).
    pub max_entries: usize,
    /// Largest single file.
    pub max_file_bytes: u64,
    /// Largest total of file sizes.
    pub max_total_bytes: u64,
    /// Deepest path (components).
    pub max_depth: usize,
    /// Longest path (bytes).
    pub max_path_bytes: usize,
}

impl Default for UnpackCaps {
    /// 64 MiB archive, 10 000 members, 64 MiB per file, 256 MiB in all,
    /// depth 32, 1024-byte paths.
    fn default() -> UnpackCaps {
        UnpackCaps {
            max_archive_bytes: 64 << 20,
            max_entries: 10_000,
            max_file_bytes: 64 << 20,
            max_total_bytes: 256 << 20,
            max_depth: 32,
            max_path_bytes: 1024,
        }
    }
}

/// Why an archive was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// Not gzip, not tar, truncated, over a cap, or unwritable.
    #[error("invalid package archive: {0}")]
    Invalid(String),
    /// A member that could escape the package or is not a plain file or
    /// directory.
    #[error("unsafe package archive: {0}")]
    Unsafe(String),
}

impl ArchiveError {
    fn refusal(&self) -> Refusal {
        match self {
            ArchiveError::Invalid(_) => Refusal::executor(format!("{self} (invalid_package)")),
            ArchiveError::Unsafe(_) => Refusal::executor(format!("{self} (unsafe_package)")),
        }
    }
}

/// Checks a member name and returns its normal components.
fn safe_components(path: &Path, caps: &UnpackCaps) -> Result<Vec<String>, ArchiveError> {
    let shown = path.display().to_string();
    if path.as_os_str().len() > caps.max_path_bytes {
        return Err(ArchiveError::Invalid(format!(
            "member name longer than {} bytes",
            caps.max_path_bytes
        )));
    }
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => {
                let s = s.to_str().ok_or_else(|| {
                    ArchiveError::Unsafe(format!("member name {shown:?} is not UTF-8"))
                })?;
                parts.push(s.to_owned());
            }
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(ArchiveError::Unsafe(format!(
                    "member {shown:?} has a `..` component"
                )));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ArchiveError::Unsafe(format!(
                    "member {shown:?} is absolute"
                )));
            }
        }
    }
    if parts.len() > caps.max_depth {
        return Err(ArchiveError::Invalid(format!(
            "member {shown:?} is nested too deeply"
        )));
    }
    Ok(parts)
}

/// Creates `dest/parts…` as directories (each must be a directory we made
/// or an existing real directory: never a link).
fn make_dirs(dest: &Path, parts: &[String]) -> Result<PathBuf, ArchiveError> {
    let mut p = dest.to_path_buf();
    for part in parts {
        p.push(part);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(ArchiveError::Invalid(format!(
                    "{} is both a file and a directory",
                    parts.join("/")
                )));
            }
            Err(_) => {
                fs::create_dir(&p)
                    .map_err(|e| ArchiveError::Invalid(format!("create {}: {e}", p.display())))?;
                let _ = fs::set_permissions(&p, fs::Permissions::from_mode(0o755));
            }
        }
    }
    Ok(p)
}

/// Writes at most `limit` bytes from `src` into a new file (`O_EXCL`).
fn write_new_file(
    path: &Path,
    mut src: impl Read,
    limit: u64,
    executable: bool,
) -> Result<u64, ArchiveError> {
    let mode = if executable { 0o755 } else { 0o644 };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => {
                ArchiveError::Invalid(format!("duplicate member {}", path.display()))
            }
            _ => ArchiveError::Invalid(format!("create {}: {e}", path.display())),
        })?;
    let n = io::copy(&mut (&mut src).take(limit + 1), &mut f)
        .map_err(|e| ArchiveError::Invalid(format!("write {}: {e}", path.display())))?;
    if n > limit {
        return Err(ArchiveError::Invalid(format!(
            "{} is larger than {limit} bytes",
            path.display()
        )));
    }
    f.flush()
        .map_err(|e| ArchiveError::Invalid(format!("write {}: {e}", path.display())))?;
    // umask may have narrowed the mode; the sandbox user must read it.
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode));
    Ok(n)
}

/// Unpacks a gzip'd tar into the existing, empty directory `dest` (see the
/// module docs for what is refused). On error `dest` may hold a partial
/// tree; the caller removes it.
pub fn unpack_archive(gz: &[u8], dest: &Path, caps: &UnpackCaps) -> Result<(), ArchiveError> {
    if gz.len() as u64 > caps.max_archive_bytes {
        return Err(ArchiveError::Invalid(format!(
            "archive is larger than {} bytes",
            caps.max_archive_bytes
        )));
    }
    if gz.len() < 2 || gz[0] != 0x1f || gz[1] != 0x8b {
        return Err(ArchiveError::Invalid("not gzip data".into()));
    }
    // Bound what is decompressed at all (member data, and headers the tar
    // reader buffers, such as PAX records): a gzip bomb ends as a truncated
    // archive.
    let budget = caps
        .max_total_bytes
        .saturating_add((caps.max_entries as u64).saturating_mul(4096))
        .saturating_add(1 << 20);
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(gz).take(budget));
    let entries = archive
        .entries()
        .map_err(|e| ArchiveError::Invalid(format!("tar: {e}")))?;
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    let mut total: u64 = 0;
    for (count, entry) in entries.enumerate() {
        if count >= caps.max_entries {
            return Err(ArchiveError::Invalid(format!(
                "more than {} members",
                caps.max_entries
            )));
        }
        let mut entry = entry.map_err(|e| ArchiveError::Invalid(format!("tar: {e}")))?;
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| ArchiveError::Unsafe(format!("member name: {e}")))?
            .into_owned();
        let parts = safe_components(&path, caps)?;
        if parts.is_empty() {
            if kind.is_dir() {
                continue;
            }
            return Err(ArchiveError::Unsafe(format!(
                "member {:?} has no name",
                path.display().to_string()
            )));
        }
        if !seen.insert(parts.clone()) && !kind.is_dir() {
            return Err(ArchiveError::Invalid(format!(
                "duplicate member {}",
                parts.join("/")
            )));
        }
        match kind {
            tar::EntryType::Directory => {
                if entry.size() > 0 {
                    return Err(ArchiveError::Invalid(format!(
                        "directory {} has data",
                        parts.join("/")
                    )));
                }
                make_dirs(dest, &parts)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                if size > caps.max_file_bytes {
                    return Err(ArchiveError::Invalid(format!(
                        "{} is larger than {} bytes",
                        parts.join("/"),
                        caps.max_file_bytes
                    )));
                }
                total = total.saturating_add(size);
                if total > caps.max_total_bytes {
                    return Err(ArchiveError::Invalid(format!(
                        "archive unpacks to more than {} bytes",
                        caps.max_total_bytes
                    )));
                }
                let (dirs, file) = parts.split_at(parts.len() - 1);
                let parent = make_dirs(dest, dirs)?;
                let executable = entry
                    .header()
                    .mode()
                    .map(|m| m & 0o111 != 0)
                    .unwrap_or(false);
                write_new_file(&parent.join(&file[0]), &mut entry, size, executable)?;
            }
            other => {
                let what = match other {
                    tar::EntryType::Symlink => "a symbolic link",
                    tar::EntryType::Link => "a hard link",
                    tar::EntryType::Char | tar::EntryType::Block => "a device",
                    tar::EntryType::Fifo => "a FIFO",
                    tar::EntryType::GNUSparse => "a sparse file",
                    _ => "a special member",
                };
                return Err(ArchiveError::Unsafe(format!(
                    "member {} is {what}",
                    parts.join("/")
                )));
            }
        }
    }
    Ok(())
}

/// Copies a local package directory: regular files (symbolic links to
/// files are read through, as the digest walk does) and directories, under
/// the same caps.
fn copy_tree(src: &Path, dest: &Path, caps: &UnpackCaps) -> Result<(), ArchiveError> {
    let mut total = 0u64;
    let mut count = 0usize;
    let mut stack = vec![(src.to_path_buf(), Vec::<String>::new())];
    while let Some((dir, rel)) = stack.pop() {
        let rd = fs::read_dir(&dir)
            .map_err(|e| ArchiveError::Invalid(format!("{}: {e}", dir.display())))?;
        for item in rd {
            let item =
                item.map_err(|e| ArchiveError::Invalid(format!("{}: {e}", dir.display())))?;
            count += 1;
            if count > caps.max_entries {
                return Err(ArchiveError::Invalid(format!(
                    "more than {} entries",
                    caps.max_entries
                )));
            }
            let name = item
                .file_name()
                .into_string()
                .map_err(|_| ArchiveError::Unsafe("a name is not UTF-8".into()))?;
            let mut parts = rel.clone();
            parts.push(name);
            if parts.len() > caps.max_depth {
                return Err(ArchiveError::Invalid("package nested too deeply".into()));
            }
            let path = item.path();
            let lmeta = fs::symlink_metadata(&path)
                .map_err(|e| ArchiveError::Invalid(format!("{}: {e}", path.display())))?;
            if lmeta.is_dir() {
                make_dirs(dest, &parts)?;
                stack.push((path, parts));
                continue;
            }
            // Follow links to files only; anything else contributes nothing.
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            total = total.saturating_add(meta.len());
            if meta.len() > caps.max_file_bytes || total > caps.max_total_bytes {
                return Err(ArchiveError::Invalid("package larger than the caps".into()));
            }
            let (dirs, file) = parts.split_at(parts.len() - 1);
            let parent = make_dirs(dest, dirs)?;
            let f = File::open(&path)
                .map_err(|e| ArchiveError::Invalid(format!("{}: {e}", path.display())))?;
            let executable = meta.permissions().mode() & 0o111 != 0;
            write_new_file(&parent.join(&file[0]), f, caps.max_file_bytes, executable)?;
        }
    }
    Ok(())
}

/// A package that passed verification, with what the worker reads from its
/// manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedPackage {
    /// The package directory (the executor's cwd).
    pub dir: PathBuf,
    /// The manifest hash (lowercase hex).
    pub manifest_sha256: String,
    /// `executor.command` (non-empty).
    pub command: Vec<String>,
    /// `executor.package_sha256`, when pinned.
    pub package_sha256: Option<String>,
    /// The package digest of the tree as verified.
    pub digest: String,
    /// `models[0].id` (at most one model is allowed).
    pub model_id: Option<String>,
    /// `models[0].local_weights_required` truthy: a worker without the
    /// model declines the unit rather than running it without weights.
    pub model_required: bool,
    /// `capture.raw` truthy.
    pub capture_raw: bool,
    /// `inference_determinism.serving_version_pin`.
    pub serving_version_pin: Option<String>,
    /// The `inference_determinism` block as declared (`null` → `None`): the
    /// generation policy the inference broker enforces.
    pub inference_determinism: Option<Value>,
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Int(i)) => i.as_str() != "0",
        Some(Value::Float(f)) => *f != 0.0,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Bool(true)) => true,
    }
}

/// Reads and verifies the package at `dir` against `expected_hash`
/// (`fetched`: the pin is mandatory and a mismatch is tagged
/// `(auto_fetch_digest_mismatch)`).
pub fn verify_dir(
    dir: &Path,
    expected_hash: &str,
    fetched: bool,
) -> Result<VerifiedPackage, Refusal> {
    let short = expected_hash.get(..12).unwrap_or(expected_hash);
    let mpath = dir.join("manifest.json");
    let meta = fs::symlink_metadata(&mpath).map_err(|e| {
        Refusal::executor(format!(
            "package {short}: manifest.json: {e} (invalid_package)"
        ))
    })?;
    if !meta.is_file() || meta.len() > MAX_MANIFEST_BYTES {
        return Err(Refusal::executor(format!(
            "package {short}: manifest.json is not a regular file of at most 1 MiB (invalid_package)"
        )));
    }
    let bytes = fs::read(&mpath).map_err(|e| {
        Refusal::executor(format!(
            "package {short}: manifest.json: {e} (invalid_package)"
        ))
    })?;
    let manifest = json::parse(&bytes).map_err(|e| {
        Refusal::executor(format!(
            "package {short}: manifest.json: {e} (invalid_package)"
        ))
    })?;
    if manifest.as_object().is_none() {
        return Err(Refusal::executor(format!(
            "package {short}: manifest.json is not an object (invalid_package)"
        )));
    }
    let actual = json::canonical_sha256(&manifest);
    if actual != expected_hash {
        return Err(Refusal::executor(format!(
            "staged manifest hashes to {actual} != assigned manifest_sha256 {expected_hash} (manifest_hash_mismatch)"
        )));
    }
    let executor = manifest.get("executor");
    let command: Vec<String> = match executor
        .and_then(|e| e.get("command"))
        .and_then(Value::as_array)
    {
        Some(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .filter(|c| c.iter().all(|s| !s.contains('\0')))
            .ok_or_else(|| {
                Refusal::executor(format!(
                    "manifest {short}: executor.command must be a list of strings (invalid_package)"
                ))
            })?,
        _ => {
            return Err(Refusal::executor(format!(
                "manifest {short}: executor.command must be a non-empty list (invalid_package)"
            )));
        }
    };
    let pin = match executor.and_then(|e| e.get("package_sha256")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.to_ascii_lowercase()),
        Some(_) => {
            return Err(Refusal::executor(format!(
                "manifest {short}: executor.package_sha256 is not a string (invalid_package)"
            )));
        }
    };
    if fetched && pin.is_none() {
        return Err(Refusal::executor(format!(
            "fetched manifest {short} does not pin executor.package_sha256 (package_pin_missing)"
        )));
    }
    let digest = auspex_wire::package::package_digest(dir)
        .map_err(|e| Refusal::executor(format!("package {short}: {e} (invalid_package)")))?
        .sha256;
    if let Some(p) = &pin
        && *p != digest
    {
        let tag = if fetched {
            "auto_fetch_digest_mismatch"
        } else {
            "package_digest_mismatch"
        };
        return Err(Refusal::executor(format!(
            "executor package digest {digest} != manifest executor.package_sha256 {p} for {expected_hash} ({tag})"
        )));
    }
    let models = match manifest.get("models") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => {
            return Err(Refusal::executor(format!(
                "manifest {short}: models is not a list (invalid_package)"
            )));
        }
    };
    if models.len() > 1 {
        return Err(Refusal::executor(format!(
            "manifest {short} declares {} models; a unit can use at most one",
            models.len()
        )));
    }
    let model_id = match models.first() {
        None => None,
        Some(m) => {
            let id = m.get("id").and_then(Value::as_str).unwrap_or_default();
            let one_segment = !id.is_empty()
                && id != "."
                && id != ".."
                && !id.contains('/')
                && !id.contains('\\')
                && !id.contains('\0');
            if !one_segment {
                return Err(Refusal::executor(format!(
                    "manifest {short}: model id {id:?} is not a single path segment"
                )));
            }
            Some(id.to_owned())
        }
    };
    Ok(VerifiedPackage {
        dir: dir.to_path_buf(),
        manifest_sha256: expected_hash.to_owned(),
        command,
        package_sha256: pin,
        digest,
        model_required: truthy(models.first().and_then(|m| m.get("local_weights_required"))),
        model_id,
        capture_raw: truthy(manifest.get("capture").and_then(|c| c.get("raw"))),
        serving_version_pin: manifest
            .get("inference_determinism")
            .and_then(|d| d.get("serving_version_pin"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        inference_determinism: manifest
            .get("inference_determinism")
            .filter(|d| !matches!(d, Value::Null))
            .cloned(),
    })
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    if getrandom::fill(&mut b).is_err() {
        // Uniqueness only (the name is not a secret): fall back to time.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        return format!("{t:x}");
    }
    auspex_wire::hex_lower(&b)
}

/// The verified package cache plus the sources behind it.
pub struct PackageStore {
    root: PathBuf,
    sources: Vec<Arc<dyn PackageSource>>,
    caps: UnpackCaps,
    /// Re-verify a cached package on every use (when tenant code can write
    /// the package directory: no sandbox).
    reverify: bool,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    verified: Mutex<HashMap<String, VerifiedPackage>>,
}

impl fmt::Debug for PackageStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackageStore")
            .field("root", &self.root)
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

impl PackageStore {
    /// A store rooted at `root` (created 0755 when missing).
    pub fn new(
        root: PathBuf,
        sources: Vec<Arc<dyn PackageSource>>,
        reverify: bool,
    ) -> io::Result<PackageStore> {
        fs::create_dir_all(&root)?;
        let _ = fs::set_permissions(&root, fs::Permissions::from_mode(0o755));
        Ok(PackageStore {
            root,
            sources,
            caps: UnpackCaps::default(),
            reverify,
            locks: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// `<root>/<hash>`.
    pub fn path_of(&self, hash: &str) -> PathBuf {
        self.root.join(hash)
    }

    /// The verified package for `manifest_sha256`: from the cache, else from
    /// the first source that has it (installed atomically into the cache).
    pub async fn resolve(&self, manifest_sha256: &str) -> Result<VerifiedPackage, Refusal> {
        let hash = manifest_sha256.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Refusal::executor(format!(
                "manifest_sha256 {manifest_sha256:?} is not 64 hex digits (invalid_package)"
            )));
        }
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(hash.clone()).or_default().clone()
        };
        let _guard = lock.lock().await;
        if !self.reverify
            && let Some(v) = self
                .verified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&hash)
        {
            return Ok(v.clone());
        }
        let dir = self.path_of(&hash);
        if dir.join("manifest.json").exists() {
            let (d, h) = (dir.clone(), hash.clone());
            let v = blocking(move || verify_dir(&d, &h, false)).await?;
            self.remember(&hash, &v);
            return Ok(v);
        }
        let mut misses = Vec::new();
        for source in &self.sources {
            let fetched = match source.fetch(&hash).await {
                Ok(f) => f,
                Err(SourceError::NotFound(why) | SourceError::Unavailable(why)) => {
                    misses.push(format!("{}: {why}", source.name()));
                    continue;
                }
            };
            let v = self.install(&hash, fetched).await?;
            self.remember(&hash, &v);
            return Ok(v);
        }
        let tried = if misses.is_empty() {
            "no package source configured".to_owned()
        } else {
            misses.join("; ")
        };
        Err(Refusal::executor(format!(
            "package for manifest {hash} is unavailable ({tried}) (package_unavailable)"
        )))
    }

    fn remember(&self, hash: &str, v: &VerifiedPackage) {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash.to_owned(), v.clone());
    }

    async fn install(&self, hash: &str, fetched: Fetched) -> Result<VerifiedPackage, Refusal> {
        let tmp = self.root.join(format!(
            ".fetch-{}-{}",
            hash.get(..12).unwrap_or(hash),
            random_hex(6)
        ));
        let caps = self.caps;
        let (t, h, final_dir) = (tmp.clone(), hash.to_owned(), self.path_of(hash));
        let result = blocking(move || {
            fs::create_dir(&t).map_err(|e| Refusal::executor(format!("{}: {e}", t.display())))?;
            let _ = fs::set_permissions(&t, fs::Permissions::from_mode(0o755));
            match fetched {
                Fetched::Archive(bytes) => unpack_archive(&bytes, &t, &caps),
                Fetched::Directory(src) => copy_tree(&src, &t, &caps),
            }
            .map_err(|e| e.refusal())?;
            verify_dir(&t, &h, true)?;
            match fs::rename(&t, &final_dir) {
                Ok(()) => {}
                // Installed meanwhile (another process): use that one.
                Err(_) if final_dir.join("manifest.json").exists() => {
                    let _ = fs::remove_dir_all(&t);
                }
                Err(e) => {
                    return Err(Refusal::executor(format!(
                        "cannot install package {}: {e}",
                        final_dir.display()
                    )));
                }
            }
            verify_dir(&final_dir, &h, true)
        })
        .await;
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(Refusal::executor(format!("package task failed: {e}"))))
}
