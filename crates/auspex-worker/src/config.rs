//! How a worker runs: [`WorkerConfig`] and its parts.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use auspex_crypto::keys::TenantKey;

use crate::broker::InferenceBackend;
use crate::package::PackageSource;

/// Where the worker's Ed25519 identity comes from.
#[derive(Clone)]
pub enum KeySource {
    /// A PKCS#8 PEM key file (`auspex_crypto::keys` format); generated
    /// (0600, parents 0700) when missing. The enrolment record is kept beside
    /// it as `<path>.enrollment.json`.
    Path(PathBuf),
    /// A key held in memory (the devnet's in-process workers); the enrolment
    /// record is kept in the work directory.
    Key(TenantKey),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Path(p) => f.debug_tuple("Path").field(p).finish(),
            KeySource::Key(k) => f.debug_tuple("Key").field(&k.public_hex()).finish(),
        }
    }
}

/// Resource limits of one executor run (`worker.md` §3.5–§3.6). Every limit
/// applies under the sandbox; [`SandboxMode::None`] applies only the wall
/// clock and the output caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget; on expiry the whole sandbox (its process group and
    /// PID namespace) is killed. Also the executor's advisory `--timeout`.
    pub wall_clock: Duration,
    /// `RLIMIT_CPU` seconds per process.
    pub cpu_seconds: u64,
    /// `RLIMIT_AS` bytes per process.
    pub address_space_bytes: u64,
    /// `RLIMIT_NOFILE`.
    pub open_files: u64,
    /// `RLIMIT_NPROC`: processes (threads included) of the sandbox user.
    /// Root workers run tenant code as a dedicated unprivileged uid (see
    /// [`BwrapOptions::sandbox_uid_base`]) so the limit is enforced.
    pub processes: u64,
    /// `RLIMIT_FSIZE`: largest file the executor may write.
    pub file_size_bytes: u64,
    /// Size of the private workspace tmpfs (and, separately, of `/tmp`).
    pub scratch_bytes: u64,
    /// Largest `exec_output.json` accepted.
    pub output_bytes: u64,
    /// How much of the executor's stderr is kept (the tail).
    pub stderr_tail_bytes: usize,
}

impl Default for Limits {
    /// 600 s wall clock and CPU, 4 GiB address space, 256 files, 256
    /// processes, 256 MiB files, 512 MiB scratch, 16 MiB output.
    fn default() -> Limits {
        Limits {
            wall_clock: Duration::from_secs(600),
            cpu_seconds: 600,
            address_space_bytes: 4 << 30,
            open_files: 256,
            processes: 256,
            file_size_bytes: 256 << 20,
            scratch_bytes: 512 << 20,
            output_bytes: 16 << 20,
            stderr_tail_bytes: 8 << 10,
        }
    }
}

/// Bubblewrap settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BwrapOptions {
    /// The `bwrap` binary.
    pub bwrap: PathBuf,
    /// `setpriv` (util-linux), used when the worker runs as root to drop
    /// tenant code to an unprivileged uid.
    pub setpriv: PathBuf,
    /// First uid (and gid) given to tenant code when the worker runs as
    /// root; concurrent units in one worker process get consecutive ids so
    /// their process limits are separate.
    pub sandbox_uid_base: u32,
    /// Extra directories bound read-only at the same path (an interpreter
    /// living outside `/usr`, say).
    pub extra_ro_binds: Vec<PathBuf>,
    /// The Landlock shim (the `auspex` binary, see [`crate::landlock`]):
    /// when set, tenant code also runs under a Landlock ruleset applied
    /// inside the sandbox. Set it only after [`crate::landlock::probe`]
    /// succeeded.
    pub landlock_shim: Option<PathBuf>,
}

impl Default for BwrapOptions {
    fn default() -> BwrapOptions {
        BwrapOptions {
            bwrap: PathBuf::from("/usr/bin/bwrap"),
            setpriv: PathBuf::from("/usr/bin/setpriv"),
            sandbox_uid_base: 61000,
            extra_ro_binds: Vec::new(),
            landlock_shim: None,
        }
    }
}

/// How tenant code is isolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxMode {
    /// Bubblewrap (the default): no network, read-only system, the package
    /// read-only, a private size-capped workspace and `/tmp`, nothing of the
    /// worker's key or home, rlimits, a new session and PID namespace.
    /// Results are signed `ran_under: "strict"`.
    Bubblewrap(BwrapOptions),
    /// No isolation at all (`--no-sandbox`): for trusted code only, logged
    /// loudly at start. Results are signed `ran_under: "permissive"`.
    None,
}

impl Default for SandboxMode {
    fn default() -> SandboxMode {
        SandboxMode::Bubblewrap(BwrapOptions::default())
    }
}

impl SandboxMode {
    /// The signed `ran_under` value (`worker.md` §3.6).
    pub fn ran_under(&self) -> &'static str {
        match self {
            SandboxMode::Bubblewrap(_) => "strict",
            SandboxMode::None => "permissive",
        }
    }
}

/// Injected misbehaviour, for tests and demos (the devnet's
/// `--faulty-workers K --fault …`). Applied honestly inside the worker: the
/// coordinator sees exactly what such a worker would send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Runs the executor, then perturbs the payload *before* signing: a
    /// validly signed wrong answer (the unit diverges).
    WrongAnswer,
    /// Leases a unit and dies: [`run`](crate::run) returns
    /// [`WorkerError::InjectedCrash`](crate::WorkerError::InjectedCrash)
    /// without a result or a refusal (the lease expires).
    Crash,
    /// Leases a unit and never answers, heartbeating on, until shut down.
    Hang,
    /// Uploads a garbage result (a signature over other bytes); the
    /// coordinator refuses it and the lease expires.
    Garbage,
    /// Waits this long before running each unit.
    Slow(Duration),
}

impl Fault {
    /// Parses the devnet's spelling: `wrong-answer`, `crash`, `hang`,
    /// `garbage`, `slow` (5 s) or `slow:<seconds>`.
    pub fn parse(text: &str) -> Option<Fault> {
        match text {
            "wrong-answer" => Some(Fault::WrongAnswer),
            "crash" => Some(Fault::Crash),
            "hang" => Some(Fault::Hang),
            "garbage" => Some(Fault::Garbage),
            "slow" => Some(Fault::Slow(Duration::from_secs(5))),
            _ => {
                let secs: f64 = text.strip_prefix("slow:")?.parse().ok()?;
                Duration::try_from_secs_f64(secs).ok().map(Fault::Slow)
            }
        }
    }
}

/// Severity of a [`Logger`] line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Routine progress.
    Info,
    /// Something the operator should see.
    Warn,
    /// Something failed.
    Error,
}

/// Where the library's log lines go (it never prints itself).
pub type Logger = Arc<dyn Fn(Level, &str) + Send + Sync>;

/// Everything a worker needs.
#[derive(Clone)]
pub struct WorkerConfig {
    /// The coordinator's base URL (`http://127.0.0.1:8080`; a trailing `/` is
    /// dropped; a path prefix is kept and signed).
    pub coordinator_url: String,
    /// The worker identity.
    pub key: KeySource,
    /// State: `runs/` (workspaces), `packages/` (verified package cache),
    /// `results/` (signed results not yet acknowledged, receipts), `pins.json`.
    pub work_dir: PathBuf,
    /// Units run in parallel, each in its own workspace.
    pub concurrency: usize,
    /// Isolation of tenant code.
    pub sandbox: SandboxMode,
    /// Resource limits of each run.
    pub limits: Limits,
    /// Injected misbehaviour (`None`: honest).
    pub fault: Option<Fault>,
    /// Wait between assignment polls when idle.
    pub poll_interval: Duration,
    /// Wait between heartbeats.
    pub heartbeat_interval: Duration,
    /// Per-request HTTP timeout (the official worker's 10 s).
    pub http_timeout: Duration,
    /// Longest back-off after coordinator errors (it starts at 250 ms and
    /// doubles).
    pub max_backoff: Duration,
    /// On shutdown, how long a unit in hand may still run before it is
    /// killed and refused.
    pub shutdown_grace: Duration,
    /// The interpreter that replaces `python`/`python3` in executor commands
    /// (`worker.md` §3.2); `None` picks `/usr/bin/python3`, else `python3` on
    /// `PATH`.
    pub python: Option<PathBuf>,
    /// The model store (`--models DIR`): one sub-directory per model id,
    /// reported in the capabilities; a unit whose manifest names one of them
    /// gets it (read-only) as `--models`. A unit whose manifest requires a
    /// model (`local_weights_required`) the store lacks is declined.
    pub models_dir: Option<PathBuf>,
    /// The serving backend behind the per-unit inference broker
    /// (`worker.md` §7; [`crate::broker`]). `None` (the default): no broker,
    /// like the official worker's `[inference] backend = "none"`. With a
    /// backend, a unit whose manifest declares a model the store holds (one
    /// `*.gguf`) gets `<workspace>/inference.sock`, and its result is
    /// signed with `served_weights` and the `generation_options` used.
    pub inference: Option<Arc<dyn InferenceBackend>>,
    /// Fetch packages from the coordinator (`GET /packages/by-manifest`)
    /// when they are not in the cache or another source.
    pub auto_fetch: bool,
    /// Other package sources, tried in order before the coordinator.
    pub package_sources: Vec<Arc<dyn PackageSource>>,
    /// Tenants whose units are refused (`refused_tenant_deny`).
    pub tenant_deny: Vec<String>,
    /// When set, only these tenants' units are run
    /// (`refused_tenant_allow_list_miss`).
    pub tenant_allow: Option<Vec<String>>,
    /// Coordinator experiment ids (`exp-…`) whose sensitive units are
    /// accepted; `["*"]` accepts all (`refused_sensitive` otherwise).
    pub accept_sensitive: Vec<String>,
    /// Receives log lines.
    pub logger: Option<Logger>,
}

impl fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("coordinator_url", &self.coordinator_url)
            .field("key", &self.key)
            .field("work_dir", &self.work_dir)
            .field("concurrency", &self.concurrency)
            .field("sandbox", &self.sandbox)
            .field("limits", &self.limits)
            .field("fault", &self.fault)
            .field("poll_interval", &self.poll_interval)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("models_dir", &self.models_dir)
            .field(
                "inference",
                &self.inference.as_ref().map(|b| b.serving_version()),
            )
            .field("auto_fetch", &self.auto_fetch)
            .field("package_sources", &self.package_sources.len())
            .finish_non_exhaustive()
    }
}

impl WorkerConfig {
    /// Defaults: one unit at a time, bubblewrap, default [`Limits`], polls
    /// every 3 s, heartbeats every 30 s, 10 s HTTP timeout, back-off up to
    /// 30 s, 30 s shutdown grace, auto-fetch on.
    pub fn new(
        coordinator_url: impl Into<String>,
        key: KeySource,
        work_dir: impl Into<PathBuf>,
    ) -> WorkerConfig {
        WorkerConfig {
            coordinator_url: coordinator_url.into(),
            key,
            work_dir: work_dir.into(),
            concurrency: 1,
            sandbox: SandboxMode::default(),
            limits: Limits::default(),
            fault: None,
            poll_interval: Duration::from_secs(3),
            heartbeat_interval: Duration::from_secs(30),
            http_timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            python: None,
            models_dir: None,
            inference: None,
            auto_fetch: true,
            package_sources: Vec::new(),
            tenant_deny: Vec::new(),
            tenant_allow: None,
            accept_sensitive: Vec::new(),
            logger: None,
        }
    }

    pub(crate) fn log(&self, level: Level, msg: &str) {
        if let Some(l) = &self.logger {
            l(level, msg);
        }
    }

    /// `<work_dir>/packages`.
    pub fn package_dir(&self) -> PathBuf {
        self.work_dir.join("packages")
    }

    /// `<work_dir>/runs`.
    pub fn runs_dir(&self) -> PathBuf {
        self.work_dir.join("runs")
    }

    /// The interpreter for `python` / `python3` commands.
    pub fn python_path(&self) -> PathBuf {
        if let Some(p) = &self.python {
            return p.clone();
        }
        let system = Path::new("/usr/bin/python3");
        if system.exists() {
            return system.to_path_buf();
        }
        crate::exec::which("python3", &std::env::var("PATH").unwrap_or_default())
            .unwrap_or_else(|| PathBuf::from("python3"))
    }
}
