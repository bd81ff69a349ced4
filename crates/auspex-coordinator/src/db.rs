//! Storage: one SQLite database in WAL mode with `synchronous=FULL`, so a
//! write is on disk before the request that made it is acknowledged.
//!
//! One read-write connection behind a mutex does every write (SQLite allows
//! one writer anyway); route code runs on the blocking pool. Multi-row
//! changes happen inside one transaction. The schema is versioned with
//! `PRAGMA user_version`; [`MIGRATIONS`] are applied in order at open.
//!
//! **Group commit.** The hot worker routes (leases, result uploads) hand
//! their database work to [`Db::write`]. A writer thread takes every job
//! waiting at that moment, runs them in one transaction, each inside its
//! own `SAVEPOINT` (a job that fails is rolled back alone, exactly as if it
//! had run in a transaction of its own), commits once — one WAL fsync for
//! the whole batch — and only then answers each job. So no caller is told
//! "done" before its change is durable, and `synchronous=FULL` stays.
//! Jobs see each other's changes in queue order, as if they had run one
//! after the other. A job's `after_commit` hook runs on the writer thread
//! after the commit, in commit order (events are published there, so
//! their order matches the order of the changes).
//!
//! **Readers.** Reads that need no transaction with a write (resolving a
//! request's signing key, maintainer tokens) use [`Db::read`]: pooled
//! connections that only read. In WAL mode they see the last committed
//! state and never wait for the writer or its fsync.
//!
//! Unlike the real service (a control DB plus one SQLite file per
//! experiment, `coordinator.md` §10), every table lives in one file, keyed
//! by `experiment_id` where the real per-job tables are implicit.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::ApiError;

/// Schema migrations, applied in order; `user_version` = number applied.
/// Append only: a released migration is never edited.
pub const MIGRATIONS: &[&str] = &[
    // 1: the core (tenants, manifests, experiments, units, workers, leases,
    // results, consensus, receipts).
    r#"
CREATE TABLE maintainer_tokens (
    token_sha256 TEXT PRIMARY KEY,
    login TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT
);
CREATE TABLE tenants (
    tenant_id TEXT PRIMARY KEY,
    maintainer_pubkey TEXT NOT NULL UNIQUE,
    display_name TEXT,
    contact_email TEXT,
    contact_public INTEGER,
    description TEXT,
    registered_at TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE manifests (
    manifest_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    manifest_json TEXT NOT NULL,
    signature_json TEXT NOT NULL,
    uploaded_at TEXT NOT NULL
);
CREATE TABLE experiments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    label TEXT NOT NULL,
    manifest_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    submitted_at TEXT NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    last_action_at TEXT,
    last_action_by_class TEXT,
    submissions_finalized INTEGER NOT NULL DEFAULT 0,
    error_summary TEXT,
    integrity_policy TEXT NOT NULL,
    replication_target INTEGER NOT NULL,
    replication_floor INTEGER NOT NULL,
    max_unit_duration_seconds INTEGER,
    max_units INTEGER,
    max_concurrent_assignments INTEGER,
    max_payload_bytes INTEGER,
    required_capabilities TEXT NOT NULL,
    requires_real_execution INTEGER NOT NULL DEFAULT 0,
    reducer_kind TEXT NOT NULL,
    declared_replication_factor INTEGER,
    expected_duration_hours REAL,
    retention_hold INTEGER NOT NULL DEFAULT 0,
    retention_hold_reason TEXT,
    results_collected_at TEXT,
    UNIQUE (tenant_id, label)
);
CREATE TABLE work_units (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    unit_payload_sha256 TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    replication_target INTEGER NOT NULL,
    completions_so_far INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    UNIQUE (experiment_id, unit_id)
);
CREATE INDEX work_units_by_status ON work_units (experiment_id, status, seq);
CREATE TABLE workers (
    worker_id TEXT PRIMARY KEY,
    pubkey_hex TEXT NOT NULL UNIQUE,
    trust_tier INTEGER NOT NULL DEFAULT 0,
    capabilities_json TEXT NOT NULL DEFAULT '{}',
    registered_at TEXT NOT NULL,
    last_heartbeat_at TEXT,
    retired_at TEXT,
    quarantined_at TEXT,
    quarantine_reason TEXT,
    paused_at TEXT,
    pause_reason TEXT
);
CREATE TABLE retired_keys (
    pubkey_hex TEXT PRIMARY KEY,
    retired_at TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE assignments (
    assignment_id TEXT PRIMARY KEY,
    experiment_id TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    worker_pubkey_hex TEXT NOT NULL,
    assigned_at TEXT NOT NULL,
    lease_expires_us INTEGER NOT NULL,
    result_id TEXT,
    refused_at TEXT,
    refused_kind TEXT,
    refused_reason TEXT,
    attempt_count INTEGER NOT NULL DEFAULT 1,
    UNIQUE (experiment_id, unit_id, worker_id)
);
CREATE INDEX assignments_by_worker ON assignments (worker_id, unit_id);
CREATE TABLE results (
    result_id TEXT PRIMARY KEY,
    experiment_id TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    assignment_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    worker_pubkey_hex TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    payload_json TEXT,
    worker_signature TEXT NOT NULL,
    completed_at TEXT NOT NULL,
    completed_at_key TEXT NOT NULL,
    received_at TEXT NOT NULL,
    semantic_hash TEXT NOT NULL,
    result_sha256 TEXT NOT NULL,
    is_consensus INTEGER NOT NULL DEFAULT 0,
    delivered_at TEXT,
    payload_aged_off_at TEXT,
    environment_json TEXT,
    schema_version INTEGER,
    served_weights_json TEXT,
    ran_under TEXT,
    generation_options_json TEXT
);
CREATE INDEX results_by_time ON results (experiment_id, completed_at_key, result_id);
CREATE INDEX results_consensus_by_time
    ON results (experiment_id, is_consensus, completed_at_key, result_id);
CREATE INDEX results_by_unit ON results (experiment_id, unit_id);
CREATE TABLE unit_consensus (
    experiment_id TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    method TEXT NOT NULL,
    agreed INTEGER NOT NULL,
    representative_hash TEXT,
    representative_json TEXT,
    spread_json TEXT,
    envelope_json TEXT,
    agreeing_workers INTEGER NOT NULL,
    outlier_count INTEGER NOT NULL,
    outlier_result_hashes_json TEXT NOT NULL,
    integrity_basis TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (experiment_id, unit_id)
);
CREATE TABLE receipts (
    receipt_id TEXT PRIMARY KEY,
    experiment_id TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    result_id TEXT NOT NULL UNIQUE,
    worker_id TEXT NOT NULL,
    worker_pubkey TEXT NOT NULL,
    cose_blob BLOB NOT NULL,
    body_cbor BLOB NOT NULL,
    signing_key_pubkey_hex TEXT NOT NULL,
    issued_at TEXT NOT NULL
);
CREATE INDEX receipts_by_experiment ON receipts (experiment_id, issued_at, receipt_id);
CREATE TABLE receipt_outcomes (
    result_id TEXT PRIMARY KEY,
    worker_id TEXT NOT NULL,
    experiment_id TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
"#,
    // 2: attestations and their transparency-log anchors, custody
    // transfers, packages, tenant applications, model and software
    // requests, driver heartbeats.
    r#"
CREATE TABLE attestations (
    attestation_id TEXT PRIMARY KEY,
    experiment_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    label TEXT NOT NULL,
    merkle_root TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    unit_count INTEGER NOT NULL,
    cose_blob BLOB NOT NULL,
    signing_key_pubkey_hex TEXT NOT NULL,
    rekor_log_index INTEGER NOT NULL DEFAULT 0,
    rekor_entry_uuid TEXT NOT NULL DEFAULT 'lab-mode-no-rekor',
    rekor_inclusion_proof_json TEXT,
    anchor_attempts INTEGER NOT NULL DEFAULT 0,
    anchor_permanent_failures INTEGER NOT NULL DEFAULT 0,
    anchor_terminal INTEGER NOT NULL DEFAULT 0,
    anchor_last_error TEXT,
    anchor_last_attempt_at TEXT,
    issued_at TEXT NOT NULL,
    UNIQUE (experiment_id)
);
CREATE TABLE result_transfers (
    transfer_id TEXT PRIMARY KEY,
    experiment_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    collected_by_pubkey TEXT NOT NULL,
    collected_at TEXT NOT NULL,
    manifest_hash TEXT NOT NULL,
    result_set_root TEXT NOT NULL,
    root_kind TEXT NOT NULL,
    attestation_id TEXT,
    receipt_count INTEGER NOT NULL,
    coordinator_signature TEXT NOT NULL
);
CREATE TABLE packages (
    digest TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    archive BLOB NOT NULL,
    uploaded_at TEXT NOT NULL
);
CREATE TABLE tenant_applications (
    application_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    github_login TEXT NOT NULL,
    requested_tenant_id TEXT NOT NULL,
    contact_name TEXT NOT NULL,
    affiliation TEXT NOT NULL,
    research_summary TEXT NOT NULL DEFAULT '',
    research_classes_json TEXT NOT NULL DEFAULT '[]',
    pubkey_hex TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    created_at TEXT NOT NULL,
    resolved_at TEXT,
    resolved_by TEXT,
    resolution_reason TEXT,
    created_tenant_id TEXT
);
CREATE INDEX tenant_applications_by_key ON tenant_applications (pubkey_hex, created_at);
CREATE TABLE model_requests (
    request_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    hf_repo TEXT,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    resolved_at TEXT,
    resolved_by TEXT,
    resolution_reason TEXT
);
CREATE TABLE software_requests (
    request_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    created_at TEXT NOT NULL,
    resolved_at TEXT,
    resolved_by TEXT,
    resolution_reason TEXT
);
CREATE TABLE driver_status (
    experiment_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    run_id TEXT,
    reason TEXT,
    round INTEGER,
    reported_by_class TEXT NOT NULL,
    reported_at TEXT NOT NULL
);
"#,
    // 3: indexes so per-request cost does not grow with experiment size.
    // Settling a unit reads its replicas `ORDER BY completed_at_key,
    // result_id`; with only `results_by_unit` SQLite preferred walking
    // `results_by_time` over the whole experiment to skip the sort, so it
    // gets an index with the unit and the order (which subsumes
    // `results_by_unit`). The assignment picker finds a worker's re-armable
    // refusals (refused, no result) and an experiment's live leases (for
    // `max_concurrent_assignments`) through partial indexes whose size is
    // the number of such rows, not every assignment ever made.
    r#"
CREATE INDEX results_by_unit_time
    ON results (experiment_id, unit_id, completed_at_key, result_id);
DROP INDEX results_by_unit;
CREATE INDEX assignments_refused_open ON assignments (experiment_id, worker_id)
    WHERE refused_at IS NOT NULL AND result_id IS NULL;
CREATE INDEX assignments_active ON assignments (experiment_id, lease_expires_us)
    WHERE result_id IS NULL AND refused_at IS NULL;
"#,
    // 4: pre-registration anchors and deviation records (0.6.67 era).
    crate::prereg::MIGRATION,
];

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// SQLite refused.
    #[error("database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The group-commit writer thread could not be started.
    #[error("database writer thread: {0}")]
    Writer(String),
    /// The file was written by a newer coordinator.
    #[error("database {path} has schema version {found}, this coordinator knows up to {known}")]
    TooNew {
        /// The database file.
        path: String,
        /// Its `user_version`.
        found: i64,
        /// The number of known migrations.
        known: usize,
    },
}

/// Prepared statements kept per connection (`prepare_cached`).
const STATEMENT_CACHE: usize = 128;
/// Idle read connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;
/// Most jobs committed together (bounds one batch's latency).
const MAX_BATCH: usize = 256;

/// What a job reports back once its batch has committed (or failed to).
type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A unit of group-committed work: runs inside its savepoint and says
/// whether to keep its changes.
type Job = Box<dyn FnOnce(&Transaction<'_>) -> (bool, Finish) + Send>;

/// The database handle shared by all requests.
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    stats: Arc<CommitStats>,
    hints: Mutex<HashMap<(String, String), i64>>,
}

/// What the group-commit writer has done ([`Db::group_commit_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupCommitStats {
    /// Transactions committed (or attempted) by the writer.
    pub commits: u64,
    /// Jobs they carried.
    pub jobs: u64,
    /// Time spent running jobs (inside the transactions).
    pub running: std::time::Duration,
    /// Time spent committing (WAL writes, fsync, checkpoints).
    pub committing: std::time::Duration,
}

/// Counters of the group-commit writer.
#[derive(Debug, Default)]
struct CommitStats {
    batches: AtomicU64,
    jobs: AtomicU64,
    run_ns: AtomicU64,
    commit_ns: AtomicU64,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // Closing the queue ends the writer thread once it is idle.
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

impl Db {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let name = path.display().to_string();
        let err = |source| DbError::Sqlite {
            path: name.clone(),
            source,
        };
        let mut conn = Connection::open(path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; \
             PRAGMA busy_timeout=5000;",
        )
        .map_err(err)?;
        // Savepoint journals (one per group-committed job) live in memory:
        // they only serve rolling back a job inside its open transaction,
        // never crash recovery (the WAL does that). A larger page cache
        // keeps the hot index pages of big experiments resident.
        conn.execute_batch("PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536;")
            .map_err(err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        let known = MIGRATIONS.len();
        if version < 0 || version as usize > known {
            return Err(DbError::TooNew {
                path: name,
                found: version,
                known,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction().map_err(err)?;
            tx.execute_batch(sql).map_err(err)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        let conn = Arc::new(Mutex::new(conn));
        let (tx, rx) = mpsc::channel::<Job>();
        let writer_conn = Arc::clone(&conn);
        let stats = Arc::new(CommitStats::default());
        let writer_stats = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("auspex-db-writer".into())
            .spawn(move || writer_loop(&writer_conn, &rx, &writer_stats))
            .map_err(|e| DbError::Writer(e.to_string()))?;
        Ok(Db {
            conn,
            path: path.to_path_buf(),
            readers: Mutex::new(Vec::new()),
            jobs: Mutex::new(Some(tx)),
            stats,
            hints: Mutex::new(HashMap::new()),
        })
    }

    /// The connection. A poisoned lock (a panic while holding it) is
    /// recovered: SQLite rolls back whatever transaction was open.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    /// The group-commit writer's counters since the database was opened.
    pub fn group_commit_stats(&self) -> GroupCommitStats {
        let ns = |a: &AtomicU64| std::time::Duration::from_nanos(a.load(Ordering::Relaxed));
        GroupCommitStats {
            commits: self.stats.batches.load(Ordering::Relaxed),
            jobs: self.stats.jobs.load(Ordering::Relaxed),
            running: ns(&self.stats.run_ns),
            committing: ns(&self.stats.commit_ns),
        }
    }

    /// The lease picker's skip hint for `worker_id` in `experiment_id`: a
    /// `seq` below which every `in_progress` unit already has a committed
    /// assignment of this worker (0 when nothing is known). The picker
    /// starts its walk over in-progress units there instead of walking past
    /// every unit the worker holds. Hints live in memory only and are set
    /// and lowered after commits (see `routes::workers`).
    pub(crate) fn pick_hint(&self, experiment_id: &str, worker_id: &str) -> i64 {
        let hints = self.hints.lock().unwrap_or_else(|p| p.into_inner());
        hints
            .get(&(experiment_id.to_owned(), worker_id.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Records a hint found by a committed pick.
    pub(crate) fn set_pick_hint(&self, experiment_id: &str, worker_id: &str, seq: i64) {
        let mut hints = self.hints.lock().unwrap_or_else(|p| p.into_inner());
        hints.insert((experiment_id.to_owned(), worker_id.to_owned()), seq);
    }

    /// A unit of `experiment_id` with `seq` became `in_progress` (committed):
    /// no hint of that experiment may stay above it.
    pub(crate) fn lower_pick_hints(&self, experiment_id: &str, seq: i64) {
        let mut hints = self.hints.lock().unwrap_or_else(|p| p.into_inner());
        for ((exp, _), hint) in hints.iter_mut() {
            if exp == experiment_id && *hint > seq {
                *hint = seq;
            }
        }
    }

    /// Runs `f` on a read connection (see the module docs): it sees the
    /// last committed state and does not wait for the writer. `f` must
    /// only read.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.execute_batch("PRAGMA query_only=ON; PRAGMA busy_timeout=5000;")?;
                c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                c
            }
        };
        let out = f(&conn);
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS && conn.is_autocommit() {
            idle.push(conn);
        }
        out
    }

    /// Runs `work` in the group-commit writer (see the module docs) and
    /// blocks until the transaction holding it has committed — durably —
    /// or failed. An `Err` from `work` (or a panic) rolls back only this
    /// job's changes. `after_commit` runs on the writer thread right after
    /// a successful commit, in commit order, before this call returns.
    pub fn write<T, W, A>(&self, work: W, after_commit: A) -> ApiResult<T>
    where
        T: Send + 'static,
        W: FnOnce(&Transaction<'_>) -> ApiResult<T> + Send + 'static,
        A: FnOnce(&mut T) + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel::<ApiResult<T>>(1);
        let job: Job = Box::new(move |tx| {
            let out = work(tx);
            let keep = out.is_ok();
            let finish: Finish = Box::new(move |committed| {
                let out = match (out, committed) {
                    (Ok(mut v), Ok(())) => {
                        after_commit(&mut v);
                        Ok(v)
                    }
                    (Ok(_), Err(e)) => Err(ApiError::Internal(format!("commit failed: {e}"))),
                    (Err(e), _) => Err(e),
                };
                let _ = reply.send(out);
            });
            (keep, finish)
        });
        let sent = match &*self.jobs.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if !sent {
            return Err(ApiError::Internal("the database writer is gone".into()));
        }
        answer.recv().unwrap_or_else(|_| {
            Err(ApiError::Internal(
                "database job panicked or its writer stopped".into(),
            ))
        })
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|p| p.into_inner())
}

/// The writer thread: batches whatever is queued, commits once, answers.
fn writer_loop(conn: &Mutex<Connection>, jobs: &mpsc::Receiver<Job>, stats: &CommitStats) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.jobs.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let (finishes, committed) = {
            let mut guard = lock(conn);
            run_batch(&mut guard, batch, stats)
        };
        for finish in finishes {
            finish(committed.clone());
        }
    }
}

/// Runs `batch` in one transaction, one savepoint per job, and commits.
/// Returns each job's finisher and the commit outcome. A job that panicked
/// has no finisher: its caller sees its reply channel close.
fn run_batch(
    conn: &mut Connection,
    batch: Vec<Job>,
    stats: &CommitStats,
) -> (Vec<Finish>, Result<(), String>) {
    let t0 = std::time::Instant::now();
    let mut finishes = Vec::with_capacity(batch.len());
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        // Nothing ran; dropping the jobs closes their reply channels, which
        // their callers report as an internal error.
        Err(e) => return (finishes, Err(e.to_string())),
    };
    for job in batch {
        if let Err(e) = tx.execute_batch("SAVEPOINT job") {
            // Without a savepoint the batch cannot isolate jobs: fail it
            // (the transaction rolls back when dropped).
            return (finishes, Err(e.to_string()));
        }
        let (keep, finish) = match catch_unwind(AssertUnwindSafe(|| job(&tx))) {
            Ok((keep, finish)) => (keep, Some(finish)),
            Err(_) => (false, None),
        };
        let end = if keep {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if let Some(f) = finish {
            finishes.push(f);
        }
        if let Err(e) = tx.execute_batch(end) {
            return (finishes, Err(e.to_string()));
        }
    }
    let t1 = std::time::Instant::now();
    let committed = tx.commit().map_err(|e| e.to_string());
    stats
        .run_ns
        .fetch_add((t1 - t0).as_nanos() as u64, Ordering::Relaxed);
    stats
        .commit_ns
        .fetch_add(t1.elapsed().as_nanos() as u64, Ordering::Relaxed);
    (finishes, committed)
}

/// Maps a unique-constraint violation to `Some(message)`.
pub fn unique_violation(e: &rusqlite::Error) -> Option<String> {
    match e {
        rusqlite::Error::SqliteFailure(f, msg)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Some(msg.clone().unwrap_or_else(|| e.to_string()))
        }
        _ => None,
    }
}

/// `Result` alias for route code.
pub type ApiResult<T> = Result<T, ApiError>;
