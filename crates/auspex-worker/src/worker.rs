//! The worker loop: enrol, heartbeat, lease, verify, run, sign, upload,
//! receipts; faults; graceful shutdown.

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auspex_crypto::keys::TenantKey;
use auspex_wire::json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broker::{self, GenerationPolicy, ModelStore, ServedModel};
use crate::caps;
use crate::client::{Client, ClientError, Lease, Poll, ReceiptState, Submitted};
use crate::config::{Fault, KeySource, Level, SandboxMode, WorkerConfig};
use crate::error::{Refusal, WorkerError, kind};
use crate::exec::{self, Context};
use crate::package::{CoordinatorSource, PackageSource, PackageStore};
use crate::result::{self, SignedUpload};
use crate::sandbox;
use crate::state::{EnrollmentFile, Pending, PinCheck, Pins, Results, StoredEnrollment};

/// Submit attempts before a result is parked for the operator
/// (`worker.md` §2.11).
pub const MAX_SUBMIT_ATTEMPTS: u64 = 100;
/// Pending re-submits and receipt polls per housekeeping tick.
pub const PER_TICK: usize = 5;

/// A refusal the worker sent (or tried to send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalRecord {
    /// The unit.
    pub unit_id: String,
    /// The coordinator experiment.
    pub experiment_id: String,
    /// The refusal kind.
    pub kind: String,
    /// The reason.
    pub reason: String,
}

/// A result the coordinator accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRecord {
    /// The unit.
    pub unit_id: String,
    /// `res-…`.
    pub result_id: String,
    /// The consensus key of the signed payload.
    pub semantic_hash: String,
    /// The unit status after the upload (`in_progress` / `completed`; empty
    /// when reconciled from a 409).
    pub unit_status_after: String,
}

/// A canonical receipt received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRecord {
    /// The unit.
    pub unit_id: String,
    /// The result it covers.
    pub result_id: String,
    /// Where the COSE_Sign1 bytes were stored.
    pub path: PathBuf,
}

/// What a worker did (a live snapshot via [`WorkerHandle::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// `wkr-…` (empty until enrolled).
    pub worker_id: String,
    /// The worker key, lowercase hex.
    pub pubkey_hex: String,
    /// Heartbeats answered 200.
    pub heartbeats: u64,
    /// Heartbeats that failed.
    pub heartbeat_failures: u64,
    /// Assignment polls that failed (transport or HTTP error).
    pub poll_failures: u64,
    /// Units leased.
    pub leased: u64,
    /// Results accepted, in order.
    pub results: Vec<ResultRecord>,
    /// Refusals sent, in order.
    pub refusals: Vec<RefusalRecord>,
    /// Results the coordinator refused for good (parked).
    pub rejected_results: Vec<(String, String)>,
    /// Upload attempts that failed transiently (retried later).
    pub submit_retries: u64,
    /// Receipts received.
    pub receipts: Vec<ReceiptRecord>,
    /// Results that will never get a receipt (410): `(result_id, reason)`.
    pub no_receipt: Vec<(String, String)>,
}

struct Shared {
    config: WorkerConfig,
    key: TenantKey,
    key_path: Option<PathBuf>,
    client: Arc<Client>,
    worker_id: String,
    python: PathBuf,
    python_version: Option<String>,
    store: PackageStore,
    pins: Pins,
    results: Results,
    stats: Arc<Mutex<WorkerStats>>,
    stop: watch::Receiver<bool>,
    abort: watch::Receiver<bool>,
    receipt_cursor: AtomicUsize,
    /// Pending records a slot is uploading right now (housekeeping leaves
    /// them alone).
    in_flight: Mutex<HashSet<String>>,
    /// The model store, when configured.
    models: Option<Arc<ModelStore>>,
    /// Models served since start (heartbeat `served_models`).
    served: Mutex<std::collections::BTreeMap<String, ServedModel>>,
}

impl Shared {
    fn stats(&self) -> std::sync::MutexGuard<'_, WorkerStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log(&self, level: Level, msg: &str) {
        self.config.log(level, msg);
    }

    fn capabilities(&self) -> Value {
        let serving = self.config.inference.as_ref().map(|b| caps::Serving {
            version: b.serving_version(),
            served: self
                .served
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .map(|m| (m.model_id.clone(), m.gguf_sha256.clone()))
                .collect(),
        });
        caps::capabilities(
            self.python_version.as_deref(),
            self.config.sandbox.ran_under(),
            self.config.models_dir.as_deref(),
            serving.as_ref(),
        )
    }
}

/// Sleeps `d` unless `stop` flips first; true when stopped.
async fn nap(stop: &watch::Receiver<bool>, d: Duration) -> bool {
    let mut stop = stop.clone();
    if *stop.borrow_and_update() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        r = stop.changed() => r.is_err() || *stop.borrow(),
    }
}

/// Exponential back-off: 250 ms doubling to a cap.
#[derive(Debug)]
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(max: Duration) -> Backoff {
        Backoff {
            next: Duration::from_millis(250),
            max: max.max(Duration::from_millis(250)),
        }
    }

    fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    fn reset(&mut self) {
        self.next = Duration::from_millis(250);
    }
}

/// A worker running on its own task.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<WorkerStats, WorkerError>>,
    stats: Arc<Mutex<WorkerStats>>,
}

impl WorkerHandle {
    /// A snapshot of what the worker did so far.
    pub fn stats(&self) -> WorkerStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the worker's task has ended (crash, error or shutdown).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Graceful shutdown: stop leasing, finish (or, after the grace period,
    /// kill and refuse) units in hand, flush results; then the final stats.
    pub async fn shutdown(mut self) -> Result<WorkerStats, WorkerError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.join_inner().await
    }

    /// Waits for the worker to end on its own.
    pub async fn join(mut self) -> Result<WorkerStats, WorkerError> {
        self.join_inner().await
    }

    async fn join_inner(&mut self) -> Result<WorkerStats, WorkerError> {
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(WorkerError::Config(format!(
                "worker task ended abnormally: {e}"
            ))),
        }
    }

    /// Kills the worker as a crash would: its task is dropped mid-flight
    /// (executors in hand are killed), nothing is refused or flushed.
    pub async fn kill(self) -> WorkerStats {
        self.task.abort();
        let _ = self.task.await;
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Starts a worker on a new task (the devnet's in-process workers).
pub fn spawn(config: WorkerConfig) -> WorkerHandle {
    let stats = Arc::new(Mutex::new(WorkerStats::default()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_with(config, stats.clone(), async move {
        let _ = rx.await;
    }));
    WorkerHandle {
        stop: Some(tx),
        task,
        stats,
    }
}

/// Runs a worker until `shutdown` completes (then shuts down gracefully) or
/// it fails. Returns what it did.
pub async fn run(
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<WorkerStats, WorkerError> {
    run_with(
        config,
        Arc::new(Mutex::new(WorkerStats::default())),
        shutdown,
    )
    .await
}

async fn run_with(
    config: WorkerConfig,
    stats: Arc<Mutex<WorkerStats>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<WorkerStats, WorkerError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (abort_tx, abort_rx) = watch::channel(false);
    let grace = config.shutdown_grace;
    let inner = run_inner(config, stats, stop_rx, abort_rx);
    tokio::pin!(inner);
    tokio::pin!(shutdown);
    tokio::select! {
        r = &mut inner => return r,
        _ = &mut shutdown => {}
    }
    stop_tx.send_replace(true);
    tokio::select! {
        r = &mut inner => r,
        _ = tokio::time::sleep(grace) => {
            abort_tx.send_replace(true);
            inner.await
        }
    }
}

fn load_key(config: &WorkerConfig) -> Result<(TenantKey, Option<PathBuf>), WorkerError> {
    match &config.key {
        KeySource::Key(k) => Ok((k.clone(), None)),
        KeySource::Path(p) => {
            let key = match auspex_crypto::keys::load(p) {
                Ok(k) => k,
                Err(auspex_crypto::keys::KeyError::NotFound { .. }) => {
                    let k = TenantKey::generate().map_err(|source| WorkerError::Key {
                        path: p.clone(),
                        source,
                    })?;
                    auspex_crypto::keys::save(&k, p, false).map_err(|source| WorkerError::Key {
                        path: p.clone(),
                        source,
                    })?;
                    config.log(
                        Level::Info,
                        &format!("generated a new worker key at {}", p.display()),
                    );
                    k
                }
                Err(source) => {
                    return Err(WorkerError::Key {
                        path: p.clone(),
                        source,
                    });
                }
            };
            let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
            Ok((key, Some(abs)))
        }
    }
}

fn mkdir(p: &Path, mode: u32) -> Result<(), WorkerError> {
    auspex_crypto::atomic::create_dir_all(p, mode).map_err(|e| WorkerError::State {
        path: p.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Runs a trivial command through the real sandbox path once.
async fn probe_sandbox(config: &WorkerConfig) -> Result<(), WorkerError> {
    let base = config.runs_dir().join(".probe");
    let _ = std::fs::remove_dir_all(&base);
    let pkg = base.join("pkg");
    let ws = base.join("ws");
    let fail = |why: String| WorkerError::SandboxUnavailable(sandbox::install_hint(&why));
    for d in [&pkg, &ws] {
        std::fs::create_dir_all(d).map_err(|e| fail(format!("probe dir: {e}")))?;
    }
    std::fs::write(ws.join("exec_input.json"), b"{}")
        .map_err(|e| fail(format!("probe input: {e}")))?;
    let out = ws.join("exec_output.json").to_string_lossy().into_owned();
    let inv = exec::Invocation {
        workspace: ws.clone(),
        package_dir: pkg,
        model_dir: None,
        argv: vec![
            "/bin/sh".into(),
            "-c".into(),
            "printf '{\"payload\":{}}' > \"$0\"".into(),
            out,
        ],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        extra_ro: Vec::new(),
        inference_socket: None,
    };
    let limits = crate::Limits {
        wall_clock: Duration::from_secs(20),
        ..config.limits.clone()
    };
    let (_tx, never) = watch::channel(false);
    let r = exec::run(&inv, &config.sandbox, &limits, &never).await;
    let _ = std::fs::remove_dir_all(&base);
    match r {
        Ok(o) if o.output == b"{\"payload\":{}}" => Ok(()),
        Ok(o) => Err(fail(format!(
            "probe produced unexpected output {:?}",
            String::from_utf8_lossy(&o.output)
        ))),
        Err(refusal) => Err(fail(format!("probe run failed: {}", refusal.reason))),
    }
}

async fn identity(
    config: &WorkerConfig,
    client: &Client,
    key_path: Option<&Path>,
    capabilities: &Value,
    stop: &watch::Receiver<bool>,
) -> Result<Option<String>, WorkerError> {
    let file = EnrollmentFile::new(match key_path {
        Some(p) => {
            let mut s = p.as_os_str().to_owned();
            s.push(".enrollment.json");
            PathBuf::from(s)
        }
        None => config.work_dir.join("enrollment.json"),
    });
    let url = config.coordinator_url.trim_end_matches('/');
    let pubkey = client.pubkey_hex();
    let mut backoff = Backoff::new(config.max_backoff);
    let stored = file.get(url, &pubkey);
    // Enrolment carries the minimal capabilities (§2.4); the full report
    // follows with the first heartbeat.
    let minimal: auspex_wire::json::Object = ["os", "arch", "python_version"]
        .iter()
        .filter_map(|k| capabilities.get(k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    let minimal = Value::Object(minimal);
    let mut conflicts = 0;
    loop {
        if let Some(rec) = &stored {
            match client.heartbeat(&rec.worker_id, capabilities).await {
                Ok(()) => return Ok(Some(rec.worker_id.clone())),
                Err(e) if e.is_transient() => {
                    config.log(Level::Warn, &format!("coordinator unreachable: {e}"));
                    if nap(stop, backoff.step()).await {
                        return Ok(None);
                    }
                    continue;
                }
                Err(e) if matches!(e.status(), Some(401 | 403 | 404)) => {
                    config.log(
                        Level::Warn,
                        &format!(
                            "the coordinator does not accept worker {} ({e}); enrolling again",
                            rec.worker_id
                        ),
                    );
                }
                Err(e) => return Err(WorkerError::Coordinator(e)),
            }
        }
        match client.enroll(&minimal).await {
            Ok(en) => {
                let rec = StoredEnrollment {
                    worker_id: en.worker_id.clone(),
                    pubkey_hex: pubkey.clone(),
                };
                file.put(url, &rec, en.trust_tier, &en.registered_at)?;
                config.log(
                    Level::Info,
                    &format!("enrolled as {} at {url}", en.worker_id),
                );
                return Ok(Some(en.worker_id));
            }
            Err(e) if e.is_transient() => {
                config.log(Level::Warn, &format!("coordinator unreachable: {e}"));
                if nap(stop, backoff.step()).await {
                    return Ok(None);
                }
            }
            // The key is enrolled and we hold its record: the refusal above
            // was passing (clock skew, a replay across a restart); retry.
            Err(e)
                if stored.is_some() && e.code() == "pubkey_already_enrolled" && conflicts < 5 =>
            {
                conflicts += 1;
                if nap(stop, backoff.step()).await {
                    return Ok(None);
                }
            }
            Err(e) => return Err(WorkerError::Enroll(e)),
        }
    }
}

async fn run_inner(
    config: WorkerConfig,
    stats: Arc<Mutex<WorkerStats>>,
    stop: watch::Receiver<bool>,
    abort: watch::Receiver<bool>,
) -> Result<WorkerStats, WorkerError> {
    if config.concurrency == 0 {
        return Err(WorkerError::Config("concurrency must be at least 1".into()));
    }
    let (key, key_path) = load_key(&config)?;
    mkdir(&config.work_dir, 0o700)?;
    // Workspaces and packages are bound into sandboxes run as another uid.
    mkdir(&config.runs_dir(), 0o700)?;
    match &config.sandbox {
        SandboxMode::Bubblewrap(opts) => {
            sandbox::check_tools(opts).map_err(WorkerError::SandboxUnavailable)?;
            probe_sandbox(&config).await?;
            if let Some(k) = &key_path
                && ["/usr", "/etc", "/bin", "/lib", "/lib64", "/sbin"]
                    .iter()
                    .map(Path::new)
                    .chain(opts.extra_ro_binds.iter().map(PathBuf::as_path))
                    .any(|d| k.starts_with(d))
            {
                return Err(WorkerError::Config(format!(
                    "the worker key {} lies under a directory the sandbox exposes",
                    k.display()
                )));
            }
        }
        SandboxMode::None => config.log(
            Level::Warn,
            "!!! SANDBOX DISABLED (--no-sandbox): tenant code runs with this worker's full \
             privileges, network and files, including its key. Use only for code you trust. !!!",
        ),
    }
    let python = config.python_path();
    let py = python.clone();
    let python_version = tokio::task::spawn_blocking(move || caps::python_version(&py))
        .await
        .ok()
        .flatten();
    let client = Arc::new(
        Client::new(&config.coordinator_url, key.clone(), config.http_timeout)
            .map_err(|e| WorkerError::Config(e.to_string()))?,
    );
    let serving = config.inference.as_ref().map(|b| caps::Serving {
        version: b.serving_version(),
        served: Vec::new(),
    });
    let capabilities = caps::capabilities(
        python_version.as_deref(),
        config.sandbox.ran_under(),
        config.models_dir.as_deref(),
        serving.as_ref(),
    );
    if let Some(s) = &serving {
        config.log(
            Level::Info,
            &format!("inference broker enabled, serving with {}", s.version),
        );
    }
    {
        let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
        s.pubkey_hex = key.public_hex();
    }
    let Some(worker_id) =
        identity(&config, &client, key_path.as_deref(), &capabilities, &stop).await?
    else {
        return Ok(stats.lock().unwrap_or_else(|p| p.into_inner()).clone());
    };
    stats.lock().unwrap_or_else(|p| p.into_inner()).worker_id = worker_id.clone();
    let mut sources: Vec<Arc<dyn PackageSource>> = config.package_sources.clone();
    if config.auto_fetch {
        sources.push(Arc::new(CoordinatorSource::new(client.clone())));
    }
    let reverify = matches!(config.sandbox, SandboxMode::None);
    let store = PackageStore::new(config.package_dir(), sources, reverify).map_err(|e| {
        WorkerError::State {
            path: config.package_dir(),
            reason: e.to_string(),
        }
    })?;
    let pins = Pins::load(config.work_dir.join("pins.json"));
    let results = Results::open(config.work_dir.join("results"))?;
    let concurrency = config.concurrency;
    let models = config
        .models_dir
        .clone()
        .map(|d| Arc::new(ModelStore::new(d)));
    let shared = Arc::new(Shared {
        config,
        key,
        key_path,
        client,
        worker_id,
        python,
        python_version,
        store,
        pins,
        results,
        stats: stats.clone(),
        stop,
        abort,
        receipt_cursor: AtomicUsize::new(0),
        in_flight: Mutex::new(HashSet::new()),
        models,
        served: Mutex::new(std::collections::BTreeMap::new()),
    });
    let mut background = JoinSet::new();
    background.spawn(heartbeat_loop(shared.clone()));
    background.spawn(housekeeping_loop(shared.clone()));
    let mut slots = JoinSet::new();
    for slot in 0..concurrency {
        slots.spawn(slot_loop(shared.clone(), slot));
    }
    let mut failure = None;
    while let Some(r) = slots.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failure = Some(e);
                break;
            }
            Err(join) => {
                failure = Some(WorkerError::Config(format!(
                    "a unit slot ended abnormally: {join}"
                )));
                break;
            }
        }
    }
    if let Some(e) = failure {
        // As abrupt as a crash: nothing in hand is refused or flushed.
        slots.abort_all();
        background.abort_all();
        return Err(e);
    }
    background.abort_all();
    // One last attempt at results still pending.
    let _ = tokio::time::timeout(Duration::from_secs(5), resubmit_pending(&shared)).await;
    let out = shared.stats().clone();
    Ok(out)
}

async fn heartbeat_loop(shared: Arc<Shared>) {
    loop {
        let caps = shared.capabilities();
        match shared.client.heartbeat(&shared.worker_id, &caps).await {
            Ok(()) => shared.stats().heartbeats += 1,
            Err(e) => {
                shared.stats().heartbeat_failures += 1;
                shared.log(Level::Warn, &format!("heartbeat failed: {e}"));
            }
        }
        if nap(&shared.stop, shared.config.heartbeat_interval).await {
            return;
        }
    }
}

async fn housekeeping_loop(shared: Arc<Shared>) {
    let tick = shared.config.poll_interval.max(Duration::from_millis(200));
    loop {
        if nap(&shared.stop, tick).await {
            return;
        }
        resubmit_pending(&shared).await;
        poll_receipts(&shared).await;
    }
}

async fn resubmit_pending(shared: &Shared) {
    let busy = shared
        .in_flight
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    for p in shared
        .results
        .pending(PER_TICK + busy.len())
        .into_iter()
        .filter(|p| !busy.contains(&p.name))
        .take(PER_TICK)
    {
        match shared
            .client
            .submit(&shared.worker_id, &p.unit_id, p.body.clone())
            .await
        {
            Ok(Submitted::Accepted {
                result_id,
                unit_status_after,
            }) => accepted(
                shared,
                &p.name,
                &p.unit_id,
                &result_id,
                &p.semantic_hash,
                unit_status_after,
            ),
            Err(e) if e.is_transient() => {
                shared.stats().submit_retries += 1;
                let next = Pending {
                    attempts: p.attempts + 1,
                    ..p.clone()
                };
                if next.attempts >= MAX_SUBMIT_ATTEMPTS {
                    rejected(
                        shared,
                        &p.name,
                        &p.unit_id,
                        &format!("gave up after {} attempts: {e}", next.attempts),
                    );
                } else if let Err(e) = shared.results.add_pending(&next) {
                    shared.log(Level::Error, &e.to_string());
                }
            }
            Err(e) => rejected(shared, &p.name, &p.unit_id, &e.to_string()),
        }
    }
}

async fn poll_receipts(shared: &Shared) {
    let all = shared.results.awaiting_receipt(usize::MAX);
    if all.is_empty() {
        return;
    }
    let start = shared.receipt_cursor.fetch_add(PER_TICK, Ordering::Relaxed) % all.len();
    let picked: Vec<_> = all
        .iter()
        .cycle()
        .skip(start)
        .take(PER_TICK.min(all.len()))
        .cloned()
        .collect();
    for (unit_id, result_id) in picked {
        match shared
            .client
            .canonical_receipt(&shared.worker_id, &result_id)
            .await
        {
            Ok(ReceiptState::Issued(cose)) => match shared.results.receipt(&result_id, &cose) {
                Ok(path) => shared.stats().receipts.push(ReceiptRecord {
                    unit_id,
                    result_id,
                    path,
                }),
                Err(e) => shared.log(Level::Error, &e.to_string()),
            },
            Ok(ReceiptState::Pending) => {}
            Ok(ReceiptState::WillNotIssue(reason)) => {
                shared.results.no_receipt(&result_id, &reason);
                shared.log(
                    Level::Info,
                    &format!("no receipt will be issued for {result_id} ({unit_id}): {reason}"),
                );
                shared.stats().no_receipt.push((result_id, reason));
            }
            Err(e) => shared.log(Level::Warn, &format!("receipt poll failed: {e}")),
        }
    }
}

fn accepted(
    shared: &Shared,
    name: &str,
    unit_id: &str,
    result_id: &str,
    semantic_hash: &str,
    status: String,
) {
    if let Err(e) = shared.results.submitted(name, unit_id, result_id) {
        shared.log(Level::Error, &e.to_string());
    }
    shared.log(
        Level::Info,
        &format!("result {result_id} accepted for {unit_id}"),
    );
    shared.stats().results.push(ResultRecord {
        unit_id: unit_id.to_owned(),
        result_id: result_id.to_owned(),
        semantic_hash: semantic_hash.to_owned(),
        unit_status_after: status,
    });
}

fn rejected(shared: &Shared, name: &str, unit_id: &str, why: &str) {
    shared.results.park(name, why);
    shared.log(
        Level::Error,
        &format!("result for {unit_id} rejected for good: {why}"),
    );
    shared
        .stats()
        .rejected_results
        .push((unit_id.to_owned(), why.to_owned()));
}

async fn slot_loop(shared: Arc<Shared>, slot: usize) -> Result<(), WorkerError> {
    let mut backoff = Backoff::new(shared.config.max_backoff);
    let mut last_note = String::new();
    loop {
        if *shared.stop.borrow() {
            return Ok(());
        }
        let wait = match shared.client.poll(&shared.worker_id).await {
            Err(e) => {
                shared.stats().poll_failures += 1;
                let note = format!("assignment poll failed: {e}");
                if note != last_note {
                    shared.log(Level::Warn, &note);
                    last_note = note;
                }
                backoff.step()
            }
            Ok(p) => {
                backoff.reset();
                match p {
                    Poll::Work(lease) => {
                        last_note.clear();
                        shared.stats().leased += 1;
                        handle_unit(&shared, slot, *lease).await?;
                        continue;
                    }
                    Poll::Idle(_) => shared.config.poll_interval,
                    Poll::Hold { code, message } => {
                        let note = format!("operator hold ({code}): {message}");
                        if note != last_note {
                            shared.log(Level::Warn, &note);
                            last_note = note;
                        }
                        shared.config.poll_interval
                    }
                    Poll::Unusable(id) => {
                        shared.log(
                            Level::Warn,
                            &format!(
                                "ignoring a unit whose id {id:?} is not [A-Za-z0-9_-]{{1,128}}"
                            ),
                        );
                        shared.config.poll_interval
                    }
                }
            }
        };
        if nap(&shared.stop, wait).await {
            return Ok(());
        }
    }
}

async fn handle_unit(shared: &Shared, slot: usize, lease: Lease) -> Result<(), WorkerError> {
    let fault = shared.config.fault;
    match fault {
        Some(Fault::Crash) => {
            shared.log(
                Level::Warn,
                &format!("injected fault: crashing while holding {}", lease.unit_id),
            );
            return Err(WorkerError::InjectedCrash {
                unit_id: lease.unit_id,
            });
        }
        Some(Fault::Hang) => {
            shared.log(
                Level::Warn,
                &format!("injected fault: hanging on {}", lease.unit_id),
            );
            let mut stop = shared.stop.clone();
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
            return Ok(());
        }
        Some(Fault::Slow(d)) if nap(&shared.stop, d).await => {
            refuse(
                shared,
                &lease,
                Refusal::runner("aborted: the worker is shutting down"),
            )
            .await;
            return Ok(());
        }
        _ => {}
    }
    match compute(shared, slot, &lease).await {
        Ok(upload) => submit(shared, &lease, upload).await,
        Err(refusal) => refuse(shared, &lease, refusal).await,
    }
    Ok(())
}

fn sensitive(payload: &auspex_wire::json::Object) -> bool {
    match payload.get("sensitive_content_flags") {
        Some(Value::Array(a)) => !a.is_empty() && a.iter().all(|v| v.as_str().is_some()),
        _ => false,
    }
}

async fn compute(shared: &Shared, slot: usize, lease: &Lease) -> Result<SignedUpload, Refusal> {
    let cfg = &shared.config;
    // Gates, in the official order.
    match shared
        .pins
        .check(&lease.experiment_id, &lease.manifest_sha256)
    {
        Ok(PinCheck::Ok) => {}
        Ok(PinCheck::Swapped { pinned }) => {
            return Err(Refusal::new(
                kind::MANIFEST_SWAP,
                format!(
                    "experiment {} is pinned to manifest {pinned}; this unit names {}",
                    lease.experiment_id, lease.manifest_sha256
                ),
            ));
        }
        Err(e) => return Err(Refusal::runner(format!("pin store: {e}"))),
    }
    if cfg.tenant_deny.contains(&lease.tenant_id) {
        return Err(Refusal::new(
            kind::TENANT_DENY,
            format!("tenant {} is on this worker's deny list", lease.tenant_id),
        ));
    }
    if let Some(allow) = &cfg.tenant_allow
        && !allow.contains(&lease.tenant_id)
    {
        return Err(Refusal::new(
            kind::TENANT_ALLOW_LIST_MISS,
            format!(
                "tenant {} is not on this worker's allow list",
                lease.tenant_id
            ),
        ));
    }
    if sensitive(&lease.payload)
        && !cfg
            .accept_sensitive
            .iter()
            .any(|e| e == "*" || *e == lease.experiment_id)
    {
        return Err(Refusal::new(
            kind::SENSITIVE,
            format!(
                "unit carries sensitive_content_flags and experiment {} was not accepted",
                lease.experiment_id
            ),
        ));
    }
    let pkg = shared.store.resolve(&lease.manifest_sha256).await?;
    let serving_version = cfg.inference.as_ref().map(|b| b.serving_version());
    if let Some(reason) = serving_pin_reason(
        pkg.serving_version_pin.as_deref(),
        serving_version.as_deref(),
    ) {
        return Err(Refusal::executor(reason));
    }
    // The model (§6.2): a locally-required model the store lacks is a
    // refusal, not a run without weights.
    let model_dir = shared
        .models
        .as_ref()
        .zip(pkg.model_id.as_deref())
        .and_then(|(store, id)| store.model_dir(id));
    if let (Some(id), None, true) = (&pkg.model_id, &model_dir, pkg.model_required) {
        return Err(Refusal::executor(format!(
            "locally-required model {} is not in the worker model store ({}); install it \
             (BYOM) before this experiment can run here",
            broker::policy::py_str_repr(id),
            cfg.models_dir
                .as_ref()
                .map_or_else(|| "none configured".to_owned(), |d| d.display().to_string())
        )));
    }
    if let (Some(k), SandboxMode::Bubblewrap(_)) = (&shared.key_path, &cfg.sandbox)
        && (k.starts_with(&pkg.dir) || model_dir.as_ref().is_some_and(|m| k.starts_with(m)))
    {
        return Err(Refusal::sandbox(format!(
            "the worker key {} would be visible inside the sandbox",
            k.display()
        )));
    }
    // The inference broker (§7.1): a backend, a declared model, in the store.
    let inference = match (&cfg.inference, &shared.models, &pkg.model_id, &model_dir) {
        (Some(backend), Some(store), Some(id), Some(_)) => {
            Some(serve_model(shared, backend, store, id, &pkg).await?)
        }
        _ => None,
    };
    let workspace = cfg.runs_dir().join(slot.to_string()).join(&lease.unit_id);
    let mut inv = {
        let (ws, l, p) = (workspace.clone(), lease.clone(), pkg.clone());
        let (python, models, sandbox_mode, limits) = (
            shared.python.clone(),
            cfg.models_dir.clone(),
            cfg.sandbox.clone(),
            cfg.limits.clone(),
        );
        tokio::task::spawn_blocking(move || {
            exec::prepare(
                &ws,
                &l,
                &p,
                &Context {
                    python: &python,
                    models_dir: models.as_deref(),
                    sandbox: &sandbox_mode,
                    limits: &limits,
                },
            )
        })
        .await
        .unwrap_or_else(|e| Err(Refusal::runner(format!("workspace task failed: {e}"))))?
    };
    let remove_workspace = || {
        let ws = workspace.clone();
        tokio::task::spawn_blocking(move || std::fs::remove_dir_all(ws))
    };
    let session = match inference {
        None => None,
        Some(b) => {
            let id = b.model().model_id.clone();
            match broker::Session::open(&workspace, b) {
                Ok(s) => {
                    inv.attach_inference(s.path(), &id);
                    Some(s)
                }
                Err(e) => {
                    let _ = remove_workspace().await;
                    return Err(Refusal::executor(format!(
                        "inference serving unavailable for {id}: {e}"
                    )));
                }
            }
        }
    };
    let run = exec::run(&inv, &cfg.sandbox, &cfg.limits, &shared.abort).await;
    // The unit has ended: close the broker (removing its socket) first.
    let served = session.map(|s| {
        let model = s.model().clone();
        let record = s.close();
        let mut weights = auspex_wire::json::Object::new();
        weights.insert(model.model_id, Value::from(model.gguf_sha256));
        result::Served {
            weights,
            generation_options: record
                .generation_options
                .into_iter()
                .map(Value::Object)
                .collect(),
        }
    });
    let _ = remove_workspace().await;
    let run = run?;
    let report = exec::parse_report(&run.output, pkg.capture_raw)?;
    Ok(result::sign_report_served(
        &shared.key,
        &lease.unit_id,
        lease.assignment_id.as_deref(),
        &report,
        cfg.sandbox.ran_under(),
        &served.unwrap_or_default(),
        shared.config.fault,
    ))
}

/// `serving_version_mismatch` (§7.4): a pin must match this worker's
/// serving version on the part after the last `/`; with no serving stack
/// every pinned unit is declined (it cannot prove the pin).
pub(crate) fn serving_pin_reason(pin: Option<&str>, serving: Option<&str>) -> Option<String> {
    let pin = pin.filter(|p| !p.is_empty())?;
    let tail = |v: &str| v.trim().rsplit('/').next().unwrap_or_default().to_owned();
    let pin_repr = broker::policy::py_str_repr(pin);
    match serving {
        None => Some(format!(
            "serving_version_mismatch: manifest pins {pin_repr} but this worker reports no \
             serving version"
        )),
        Some(v) if tail(v) != tail(pin) => Some(format!(
            "serving_version_mismatch: serving {} is outside the manifest pin {pin_repr}",
            broker::policy::py_str_repr(v)
        )),
        Some(_) => None,
    }
}

/// Parses the unit's generation policy and serves its model: the broker to
/// open once the workspace exists.
async fn serve_model(
    shared: &Shared,
    backend: &Arc<dyn broker::InferenceBackend>,
    store: &Arc<ModelStore>,
    model_id: &str,
    pkg: &crate::package::VerifiedPackage,
) -> Result<broker::Broker, Refusal> {
    let policy = match &pkg.inference_determinism {
        None => GenerationPolicy::greedy(),
        Some(block) => GenerationPolicy::from_block(block)
            .map_err(|e| Refusal::executor(format!("generation_policy_unhonorable: {e}")))?,
    };
    let unavailable =
        |e: String| Refusal::executor(format!("inference serving unavailable for {model_id}: {e}"));
    // Hashing a large GGUF blocks (once: the store caches digests).
    let served = {
        let (store, id) = (store.clone(), model_id.to_owned());
        tokio::task::spawn_blocking(move || store.serve(&id))
            .await
            .map_err(|e| unavailable(format!("serving task failed: {e}")))?
    }
    .map_err(|e| unavailable(e.to_string()))?;
    backend
        .prepare(&served)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    shared
        .served
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(served.model_id.clone(), served.clone());
    Ok(broker::Broker::new(served, backend.clone(), policy))
}

async fn refuse(shared: &Shared, lease: &Lease, refusal: Refusal) {
    shared.log(
        Level::Warn,
        &format!(
            "refusing {} ({}): {}",
            lease.unit_id, refusal.kind, refusal.reason
        ),
    );
    shared.stats().refusals.push(RefusalRecord {
        unit_id: lease.unit_id.clone(),
        experiment_id: lease.experiment_id.clone(),
        kind: refusal.kind.to_owned(),
        reason: refusal.reason.clone(),
    });
    let mut backoff = Backoff::new(Duration::from_secs(2));
    for _ in 0..4 {
        match shared
            .client
            .refuse(
                &shared.worker_id,
                &lease.unit_id,
                refusal.kind,
                &refusal.wire_reason(),
                lease.assignment_id.as_deref(),
            )
            .await
        {
            Ok(()) => return,
            Err(e) if e.is_transient() => {
                tokio::time::sleep(backoff.step()).await;
            }
            Err(e) => {
                shared.log(
                    Level::Warn,
                    &format!("refusal of {} not recorded: {e}", lease.unit_id),
                );
                return;
            }
        }
    }
}

async fn submit(shared: &Shared, lease: &Lease, up: SignedUpload) {
    let name = Results::pending_name(&up.unit_id, up.assignment_id.as_deref());
    shared
        .in_flight
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.clone());
    submit_in_flight(shared, lease, up, &name).await;
    shared
        .in_flight
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&name);
}

async fn submit_in_flight(shared: &Shared, lease: &Lease, up: SignedUpload, name: &str) {
    let name = name.to_owned();
    let pending = Pending {
        name: name.clone(),
        unit_id: up.unit_id.clone(),
        body: up.retry_body.clone(),
        attempts: 1,
        semantic_hash: up.semantic_hash.clone(),
    };
    // Write before submit: a crash after this line loses nothing.
    if let Err(e) = shared.results.add_pending(&pending) {
        shared.log(Level::Error, &e.to_string());
    }
    let mut body = up.body.clone();
    let mut backoff = Backoff::new(Duration::from_secs(2));
    for attempt in 0..3 {
        match shared
            .client
            .submit(&shared.worker_id, &lease.unit_id, body.clone())
            .await
        {
            Ok(Submitted::Accepted {
                result_id,
                unit_status_after,
            }) => {
                accepted(
                    shared,
                    &name,
                    &lease.unit_id,
                    &result_id,
                    &up.semantic_hash,
                    unit_status_after,
                );
                return;
            }
            Err(e) if e.is_transient() => {
                shared.stats().submit_retries += 1;
                shared.log(
                    Level::Warn,
                    &format!(
                        "upload of {} failed (attempt {}): {e}",
                        lease.unit_id,
                        attempt + 1
                    ),
                );
                body = up.retry_body.clone();
                if nap(&shared.abort, backoff.step()).await {
                    break;
                }
            }
            Err(e) => {
                rejected(shared, &name, &lease.unit_id, &describe(&e));
                return;
            }
        }
    }
    // Left in pending/: the housekeeping loop retries it.
}

fn describe(e: &ClientError) -> String {
    e.to_string()
}
