//! Storage: one SQLite database in WAL mode with `synchronous=FULL`, so a
//! write is on disk before the request that made it is acknowledged.
//!
//! One connection behind a mutex serves every request (SQLite allows one
//! writer anyway); route code runs on the blocking pool. Multi-row changes
//! happen inside one transaction. The schema is versioned with
//! `PRAGMA user_version`; [`MIGRATIONS`] are applied in order at open.
//!
//! Unlike the real service (a control DB plus one SQLite file per
//! experiment, `coordinator.md` §10), every table lives in one file, keyed
//! by `experiment_id` where the real per-job tables are implicit.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

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

/// The database handle shared by all requests.
#[derive(Debug)]
pub struct Db {
    conn: Mutex<Connection>,
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
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    /// The connection. A poisoned lock (a panic while holding it) is
    /// recovered: SQLite rolls back whatever transaction was open.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
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
