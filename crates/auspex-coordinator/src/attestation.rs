//! Result-set attestations (`coordinator.md` §7, `tenant-sdk.md` §3c, §3e,
//! §4.5): a COSE_Sign1 by the coordinator key over an in-toto statement
//! whose predicate lists every consensus unit that has a receipt.
//!
//! * **Membership**: consensus rows (`is_consensus = 1`) that have a
//!   receipt, one per unit, sorted by `unit_id` (SQLite's `BINARY`
//!   collation is byte order, which is Python's code-point order).
//! * **Leaves**: `sha256-merkle-v1` (`unit_id, consensus_result_hash,
//!   receipt_id, unit_payload_sha256`), built with
//!   [`auspex_crypto::merkle::result_set_root`].
//! * **Predicate** (cbor2-canonical map, written by hand so a 100k-unit set
//!   needs no per-unit allocation beyond its strings): `merkle_root,
//!   algorithm, experiment_id` (the tenant **label**), `tenant_id,
//!   unit_count, units, diverged_units`, and `partial: true` only for
//!   checkpoints. Each unit carries the leaf fields plus `integrity_basis`
//!   (the achieved-corroboration rule the SDK re-derives from receipts,
//!   AUD-30: fewer than two agreeing workers is `process_only`, the
//!   tolerance reducer `within_cell_tolerance`, else `within_cell_exact`),
//!   the coordinator-asserted `environment` snapshot when one was recorded,
//!   and `tolerance` evidence (`agreeing_workers, outlier_count,
//!   outlier_result_hashes`) for tolerance units. `diverged_units` lists
//!   `{unit_id, result_hashes}` of units whose replicas disagreed (not in
//!   the Merkle set).
//! * **Statement**: subject `auspexai:result-set/<attestation_id>` with the
//!   SHA-256 of the predicate bytes, predicate type `…/result-set/v1`.
//!
//! The final attestation is built once — eagerly when the experiment
//! completes, or on the first `GET …/attestation` — and persisted (one row
//! per experiment), so every later GET, also after a restart, returns the
//! same id and bytes. Checkpoints (`?checkpoint=true` before completion)
//! are built per call with a fresh id and never stored. Anchoring in the
//! transparency log happens after the row is stored ([`crate::anchor`]).

use auspex_crypto::cose::CoseSign1;
use auspex_crypto::merkle::{self, Algorithm, UnitLeaf};
use auspex_wire::attestation::{ResultSetPredicate, Statement};
use auspex_wire::json::Value;
use auspex_wire::receipt::cbor::{self, Cbor};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::consensus::NO_REKOR_UUID;
use crate::db::ApiResult;
use crate::error::ApiError;
use crate::keys::CoordinatorKey;
use crate::routes::experiments::ExperimentRow;
use crate::util::{Obj, iso_now, parse_stored, to_json, token_urlsafe};

/// The algorithm of every attestation this coordinator issues.
pub const ALGORITHM: Algorithm = Algorithm::V1;

/// One attested unit as read from the database.
#[derive(Debug, Clone)]
struct UnitRow {
    unit_id: String,
    consensus_result_hash: String,
    receipt_id: String,
    unit_payload_sha256: String,
    method: Option<String>,
    agreeing_workers: i64,
    outlier_count: i64,
    outliers_json: Option<String>,
    environment_json: Option<String>,
}

/// A unit whose replicas disagreed.
#[derive(Debug, Clone)]
struct DivergedUnit {
    unit_id: String,
    unit_payload_sha256: String,
    result_hashes: Vec<String>,
}

/// An attestation, stored (final) or transient (checkpoint).
#[derive(Debug, Clone)]
pub struct StoredAttestation {
    /// `att-…`.
    pub attestation_id: String,
    /// The coordinator experiment id (`exp-…`).
    pub experiment_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The tenant's experiment label (the predicate's `experiment_id`).
    pub label: String,
    /// The Merkle root, hex.
    pub merkle_root: String,
    /// `sha256-merkle-v1`.
    pub algorithm: String,
    /// Number of attested units.
    pub unit_count: i64,
    /// The COSE_Sign1 bytes.
    pub cose: Vec<u8>,
    /// The signing key, hex.
    pub signing_key_pubkey_hex: String,
    /// Rekor log index (0 until anchored).
    pub rekor_log_index: i64,
    /// Rekor entry UUID ([`NO_REKOR_UUID`] until anchored).
    pub rekor_entry_uuid: String,
    /// The inclusion proof returned at anchoring, verbatim.
    pub rekor_inclusion_proof: Option<Value>,
    /// True for checkpoints.
    pub partial: bool,
}

impl StoredAttestation {
    /// Whether the log has taken it.
    pub fn anchored(&self) -> bool {
        self.rekor_entry_uuid != NO_REKOR_UUID
    }
}

/// The achieved-corroboration basis of a unit (the SDK's
/// `_classify_consensus_basis`, AUD-30).
fn integrity_basis(agreeing_workers: i64, method: Option<&str>) -> &'static str {
    if agreeing_workers < 2 {
        "process_only"
    } else if method == Some("builtin_within_cell_tolerance") {
        "within_cell_tolerance"
    } else {
        "within_cell_exact"
    }
}

fn collect(conn: &Connection, experiment_id: &str) -> ApiResult<(Vec<UnitRow>, Vec<DivergedUnit>)> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.unit_id, r.semantic_hash, c.receipt_id, COALESCE(w.unit_payload_sha256, ''), \
         u.method, COALESCE(u.agreeing_workers, 0), COALESCE(u.outlier_count, 0), \
         u.outlier_result_hashes_json, r.environment_json \
         FROM results r JOIN receipts c ON c.result_id = r.result_id \
         LEFT JOIN work_units w ON w.experiment_id = r.experiment_id AND w.unit_id = r.unit_id \
         LEFT JOIN unit_consensus u ON u.experiment_id = r.experiment_id AND u.unit_id = r.unit_id \
         WHERE r.experiment_id = ?1 AND r.is_consensus = 1 \
         ORDER BY r.unit_id, r.result_id",
    )?;
    let mut rows = stmt.query(params![experiment_id])?;
    let mut units: Vec<UnitRow> = Vec::new();
    while let Some(r) = rows.next()? {
        let unit_id: String = r.get(0)?;
        // One leaf per unit (the consensus row is unique per unit; a
        // duplicate would make two leaves share an id, which no verifier
        // accepts).
        if units.last().is_some_and(|u| u.unit_id == unit_id) {
            continue;
        }
        units.push(UnitRow {
            unit_id,
            consensus_result_hash: r.get(1)?,
            receipt_id: r.get(2)?,
            unit_payload_sha256: r.get(3)?,
            method: r.get(4)?,
            agreeing_workers: r.get(5)?,
            outlier_count: r.get(6)?,
            outliers_json: r.get(7)?,
            environment_json: r.get(8)?,
        });
    }
    let mut stmt = conn.prepare_cached(
        "SELECT u.unit_id, u.outlier_result_hashes_json, COALESCE(w.unit_payload_sha256, '') \
         FROM unit_consensus u LEFT JOIN work_units w \
         ON w.experiment_id = u.experiment_id AND w.unit_id = u.unit_id \
         WHERE u.experiment_id = ?1 AND u.agreed = 0 ORDER BY u.unit_id",
    )?;
    let diverged = stmt
        .query_map(params![experiment_id], |r| {
            let hashes: String = r.get(1)?;
            let result_hashes = match parse_stored(&hashes) {
                Value::Array(items) => items
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            Ok(DivergedUnit {
                unit_id: r.get(0)?,
                unit_payload_sha256: r.get(2)?,
                result_hashes,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((units, diverged))
}

// ---------------------------------------------------------------------------
// cbor2-canonical writing.
// ---------------------------------------------------------------------------

fn head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.push(m | 24);
        out.push(n as u8);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn text(s: &str, out: &mut Vec<u8>) {
    head(3, s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

fn uint(n: u64, out: &mut Vec<u8>) {
    head(0, n, out);
}

/// Keys sorted in cbor2's canonical order (encoded length, then bytes).
fn canonical_order<'k>(keys: &[&'k str]) -> Vec<&'k str> {
    let mut keys = keys.to_vec();
    keys.sort_by(|a, b| {
        let mut ea = Vec::new();
        let mut eb = Vec::new();
        text(a, &mut ea);
        text(b, &mut eb);
        cbor::canonical_key_order(&ea, &eb)
    });
    keys
}

const UNIT_KEYS: &[&str] = &[
    "unit_id",
    "consensus_result_hash",
    "receipt_id",
    "unit_payload_sha256",
    "integrity_basis",
    "environment",
    "tolerance",
];

const TOP_KEYS: &[&str] = &[
    "merkle_root",
    "algorithm",
    "experiment_id",
    "tenant_id",
    "unit_count",
    "units",
    "diverged_units",
    "governance_footprint",
    "partial",
];

/// The environment snapshot of a unit, when one was recorded.
fn environment(u: &UnitRow) -> Option<Value> {
    let v = parse_stored(u.environment_json.as_deref()?);
    v.as_object().is_some_and(|o| !o.is_empty()).then_some(v)
}

fn tolerance(u: &UnitRow) -> Option<Value> {
    if u.method.as_deref() != Some("builtin_within_cell_tolerance") {
        return None;
    }
    let outliers = u
        .outliers_json
        .as_deref()
        .map(parse_stored)
        .filter(|v| v.as_array().is_some())
        .unwrap_or(Value::Array(Vec::new()));
    Some(
        Obj::new()
            .set("agreeing_workers", u.agreeing_workers)
            .set("outlier_count", u.outlier_count)
            .set("outlier_result_hashes", outliers)
            .build(),
    )
}

fn write_unit(u: &UnitRow, order: &[&str], out: &mut Vec<u8>) {
    let env = environment(u);
    let tol = tolerance(u);
    let n = 5 + u64::from(env.is_some()) + u64::from(tol.is_some());
    head(5, n, out);
    for key in order {
        match *key {
            "unit_id" => {
                text(key, out);
                text(&u.unit_id, out);
            }
            "consensus_result_hash" => {
                text(key, out);
                text(&u.consensus_result_hash, out);
            }
            "receipt_id" => {
                text(key, out);
                text(&u.receipt_id, out);
            }
            "unit_payload_sha256" => {
                text(key, out);
                text(&u.unit_payload_sha256, out);
            }
            "integrity_basis" => {
                text(key, out);
                text(
                    integrity_basis(u.agreeing_workers, u.method.as_deref()),
                    out,
                );
            }
            "environment" => {
                if let Some(e) = &env {
                    text(key, out);
                    cbor::write_canonical(&Cbor::from_json(e), out);
                }
            }
            "tolerance" => {
                if let Some(t) = &tol {
                    text(key, out);
                    cbor::write_canonical(&Cbor::from_json(t), out);
                }
            }
            _ => {}
        }
    }
}

fn write_diverged(d: &[DivergedUnit], out: &mut Vec<u8>) {
    head(4, d.len() as u64, out);
    // `{unit_id, unit_payload_sha256, result_hashes, integrity_basis:
    // "diverged"}` (§5), keys in canonical order (shorter first).
    for u in d {
        head(5, 4, out);
        text("unit_id", out);
        text(&u.unit_id, out);
        text("result_hashes", out);
        head(4, u.result_hashes.len() as u64, out);
        for h in &u.result_hashes {
            text(h, out);
        }
        text("integrity_basis", out);
        text("diverged", out);
        text("unit_payload_sha256", out);
        text(&u.unit_payload_sha256, out);
    }
}

/// The governance footprint: how many units rest on each integrity basis
/// (`{"integrity_basis": {"counts": {…}}}`), counted from the very unit
/// rows the predicate lists, so a verifier can recount it from the signed
/// units and `diverged_units` (the 0.6.67 `footprint_ok` check).
fn governance_footprint(units: &[UnitRow], diverged: &[DivergedUnit]) -> Value {
    let mut counts = [0u64; 3];
    for u in units {
        match integrity_basis(u.agreeing_workers, u.method.as_deref()) {
            "within_cell_exact" => counts[0] += 1,
            "within_cell_tolerance" => counts[1] += 1,
            _ => counts[2] += 1,
        }
    }
    Obj::new()
        .set(
            "integrity_basis",
            Obj::new().set(
                "counts",
                Obj::new()
                    .set("within_cell_exact", counts[0])
                    .set("within_cell_tolerance", counts[1])
                    .set("process_only", counts[2])
                    .set("diverged", diverged.len() as u64),
            ),
        )
        .build()
}

struct PredicateInput<'a> {
    merkle_root: &'a str,
    label: &'a str,
    tenant_id: &'a str,
    units: &'a [UnitRow],
    diverged: &'a [DivergedUnit],
    partial: bool,
}

fn predicate_bytes(p: &PredicateInput<'_>) -> Vec<u8> {
    let unit_order = canonical_order(UNIT_KEYS);
    let top_order = canonical_order(TOP_KEYS);
    let mut out = Vec::with_capacity(256 + p.units.len() * 320);
    head(5, if p.partial { 9 } else { 8 }, &mut out);
    for key in top_order {
        match key {
            "merkle_root" => {
                text(key, &mut out);
                text(p.merkle_root, &mut out);
            }
            "algorithm" => {
                text(key, &mut out);
                text(ALGORITHM.name(), &mut out);
            }
            "experiment_id" => {
                text(key, &mut out);
                text(p.label, &mut out);
            }
            "tenant_id" => {
                text(key, &mut out);
                text(p.tenant_id, &mut out);
            }
            "unit_count" => {
                text(key, &mut out);
                uint(p.units.len() as u64, &mut out);
            }
            "units" => {
                text(key, &mut out);
                head(4, p.units.len() as u64, &mut out);
                for u in p.units {
                    write_unit(u, &unit_order, &mut out);
                }
            }
            "diverged_units" => {
                text(key, &mut out);
                write_diverged(p.diverged, &mut out);
            }
            "governance_footprint" => {
                text(key, &mut out);
                let footprint = governance_footprint(p.units, p.diverged);
                cbor::write_canonical(&Cbor::from_json(&footprint), &mut out);
            }
            "partial" if p.partial => {
                text(key, &mut out);
                out.push(0xf5);
            }
            _ => {}
        }
    }
    out
}

/// Builds (signs) an attestation over the experiment's current consensus
/// set; not stored.
fn build(
    conn: &Connection,
    key: &CoordinatorKey,
    e: &ExperimentRow,
    partial: bool,
) -> ApiResult<StoredAttestation> {
    let (units, diverged) = collect(conn, &e.experiment_id)?;
    let leaves: Vec<UnitLeaf<'_>> = units
        .iter()
        .map(|u| UnitLeaf {
            unit_id: &u.unit_id,
            consensus_result_hash: &u.consensus_result_hash,
            receipt_id: &u.receipt_id,
            unit_payload_sha256: Some(&u.unit_payload_sha256),
        })
        .collect();
    let merkle_root = merkle::result_set_root_hex(&leaves, ALGORITHM);
    drop(leaves);
    let attestation_id = format!("att-{}", token_urlsafe(9));
    let predicate = predicate_bytes(&PredicateInput {
        merkle_root: &merkle_root,
        label: &e.label,
        tenant_id: &e.tenant_id,
        units: &units,
        diverged: &diverged,
        partial,
    });
    let statement = Statement::wrap(
        &format!(
            "{}{attestation_id}",
            auspex_crypto::attestation::SUBJECT_PREFIX
        ),
        ALGORITHM.predicate_type(),
        predicate,
    );
    let cose = CoseSign1::sign(statement.encode(), key.signing_key()).encode();
    Ok(StoredAttestation {
        attestation_id,
        experiment_id: e.experiment_id.clone(),
        tenant_id: e.tenant_id.clone(),
        label: e.label.clone(),
        merkle_root,
        algorithm: ALGORITHM.name().to_owned(),
        unit_count: units.len() as i64,
        cose,
        signing_key_pubkey_hex: key.public_hex().to_owned(),
        rekor_log_index: 0,
        rekor_entry_uuid: NO_REKOR_UUID.to_owned(),
        rekor_inclusion_proof: None,
        partial,
    })
}

/// A transient `partial: true` checkpoint over the consensus set so far.
pub fn checkpoint(
    conn: &Connection,
    key: &CoordinatorKey,
    e: &ExperimentRow,
) -> ApiResult<StoredAttestation> {
    build(conn, key, e, true)
}

/// The recount guard (`assert_entries_cover_consensus`): every agreed unit
/// must be in the attested set and nothing else. 409
/// `attestation_incomplete_set` otherwise.
fn recount_guard(conn: &Connection, experiment_id: &str) -> ApiResult<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.unit_id FROM unit_consensus u WHERE u.experiment_id = ?1 AND u.agreed = 1 \
         AND NOT EXISTS (SELECT 1 FROM results r JOIN receipts c \
             ON c.result_id = r.result_id WHERE r.experiment_id = u.experiment_id \
             AND r.unit_id = u.unit_id AND r.is_consensus = 1) \
         ORDER BY u.unit_id LIMIT 100",
    )?;
    let missing: Vec<String> = stmt
        .query_map(params![experiment_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT r.unit_id FROM results r JOIN receipts c ON c.result_id = r.result_id \
         WHERE r.experiment_id = ?1 AND r.is_consensus = 1 AND NOT EXISTS \
         (SELECT 1 FROM unit_consensus u WHERE u.experiment_id = r.experiment_id \
          AND u.unit_id = r.unit_id AND u.agreed = 1) ORDER BY r.unit_id LIMIT 100",
    )?;
    let extra: Vec<String> = stmt
        .query_map(params![experiment_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    let list = |v: Vec<String>| Value::Array(v.into_iter().map(Value::from).collect());
    Err(ApiError::with(
        StatusCode::CONFLICT,
        "attestation_incomplete_set",
        "the consensus set does not match the units with receipts",
        Obj::new()
            .set("missing_units", list(missing))
            .set("extra_units", list(extra)),
    ))
}

const STORED_COLS: &str = "attestation_id, experiment_id, tenant_id, label, merkle_root, \
    algorithm, unit_count, cose_blob, signing_key_pubkey_hex, rekor_log_index, rekor_entry_uuid, \
    rekor_inclusion_proof_json";

fn stored_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredAttestation> {
    Ok(StoredAttestation {
        attestation_id: r.get(0)?,
        experiment_id: r.get(1)?,
        tenant_id: r.get(2)?,
        label: r.get(3)?,
        merkle_root: r.get(4)?,
        algorithm: r.get(5)?,
        unit_count: r.get(6)?,
        cose: r.get(7)?,
        signing_key_pubkey_hex: r.get(8)?,
        rekor_log_index: r.get(9)?,
        rekor_entry_uuid: r.get(10)?,
        rekor_inclusion_proof: r
            .get::<_, Option<String>>(11)?
            .map(|s| parse_stored(&s))
            .filter(|v| !matches!(v, Value::Null)),
        partial: false,
    })
}

/// The persisted final attestation of an experiment, if any.
pub fn load_final(conn: &Connection, experiment_id: &str) -> ApiResult<Option<StoredAttestation>> {
    Ok(conn
        .query_row(
            &format!("SELECT {STORED_COLS} FROM attestations WHERE experiment_id = ?1"),
            params![experiment_id],
            stored_row,
        )
        .optional()?)
}

/// A final attestation by id.
pub fn load_by_id(conn: &Connection, attestation_id: &str) -> ApiResult<Option<StoredAttestation>> {
    Ok(conn
        .query_row(
            &format!("SELECT {STORED_COLS} FROM attestations WHERE attestation_id = ?1"),
            params![attestation_id],
            stored_row,
        )
        .optional()?)
}

/// The final attestation of `e`: the stored one, or a new one built,
/// checked by the recount guard and stored (the caller commits). Returns
/// whether it was created now.
pub fn ensure_final(
    conn: &Connection,
    key: &CoordinatorKey,
    e: &ExperimentRow,
) -> ApiResult<(StoredAttestation, bool)> {
    if let Some(a) = load_final(conn, &e.experiment_id)? {
        return Ok((a, false));
    }
    recount_guard(conn, &e.experiment_id)?;
    let a = build(conn, key, e, false)?;
    conn.execute(
        "INSERT INTO attestations (attestation_id, experiment_id, tenant_id, label, merkle_root, \
         algorithm, unit_count, cose_blob, signing_key_pubkey_hex, issued_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            a.attestation_id,
            a.experiment_id,
            a.tenant_id,
            a.label,
            a.merkle_root,
            a.algorithm,
            a.unit_count,
            a.cose,
            a.signing_key_pubkey_hex,
            iso_now()
        ],
    )?;
    Ok((a, true))
}

/// The `attestation.issued` event of a newly created final attestation.
pub fn issued_event(a: &StoredAttestation) -> (&'static str, Value) {
    (
        "attestation.issued",
        Obj::new()
            .set("attestation_id", a.attestation_id.as_str())
            .set("merkle_root", a.merkle_root.as_str())
            .set("unit_count", a.unit_count)
            .build(),
    )
}

/// The signed predicate of an attestation (decoded from its COSE bytes).
pub fn predicate(a: &StoredAttestation) -> ApiResult<ResultSetPredicate> {
    let bad = |what: &str| ApiError::Internal(format!("stored attestation {what}"));
    let cose = CoseSign1::decode(&a.cose).map_err(|_| bad("COSE does not decode"))?;
    let statement = Statement::decode(cose.payload()).map_err(|_| bad("statement invalid"))?;
    ResultSetPredicate::decode(&statement.predicate).map_err(|_| bad("predicate invalid"))
}

fn cbor_json(c: &Cbor) -> Value {
    c.to_json().unwrap_or(Value::Null)
}

/// The `GET …/attestation` response (§4.5) as JSON text: every served
/// member equals the signed predicate's; units carry all their signed
/// fields. Written straight from the decoded predicate, with no
/// intermediate objects (about a third of the time for 100k units); the
/// test `response_json_equals_the_value_form` holds it byte-equal to the
/// same response built as a `Value`.
pub fn response_json(a: &StoredAttestation) -> ApiResult<String> {
    use auspex_wire::json::write_ascii_string as string;
    let p = predicate(a)?;
    let mut out = String::with_capacity(a.cose.len() * 4 / 3 + p.units.len() * 260 + 1024);
    let key = |k: &str, out: &mut String| {
        string(k, out);
        out.push(':');
    };
    out.push('{');
    for (i, (k, v)) in [
        ("attestation_id", a.attestation_id.as_str()),
        ("experiment_id", p.experiment_id.as_str()),
        ("tenant_id", p.tenant_id.as_str()),
        ("merkle_root", p.merkle_root.as_str()),
        ("algorithm", p.algorithm.as_str()),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        key(k, &mut out);
        string(v, &mut out);
    }
    out.push(',');
    key("unit_count", &mut out);
    out.push_str(&p.unit_count.to_string());
    out.push(',');
    key("units", &mut out);
    out.push('[');
    for (i, u) in p.units.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        key("unit_id", &mut out);
        string(&u.unit_id, &mut out);
        out.push(',');
        key("consensus_result_hash", &mut out);
        string(&u.consensus_result_hash, &mut out);
        out.push(',');
        key("receipt_id", &mut out);
        string(&u.receipt_id, &mut out);
        for (k, v) in [
            ("unit_payload_sha256", u.unit_payload_sha256.as_deref()),
            ("integrity_basis", u.integrity_basis.as_deref()),
        ] {
            if let Some(v) = v {
                out.push(',');
                key(k, &mut out);
                string(v, &mut out);
            }
        }
        for (k, v) in [("environment", &u.environment), ("tolerance", &u.tolerance)] {
            if let Some(c) = v {
                out.push(',');
                key(k, &mut out);
                out.push_str(&to_json(&cbor_json(c)));
            }
        }
        out.push('}');
    }
    out.push_str("],");
    key("cose_b64", &mut out);
    out.push('"');
    STANDARD.encode_string(&a.cose, &mut out);
    out.push_str("\",");
    key("signing_key_pubkey_hex", &mut out);
    string(&a.signing_key_pubkey_hex, &mut out);
    out.push(',');
    key("rekor_log_index", &mut out);
    out.push_str(&a.rekor_log_index.to_string());
    out.push(',');
    key("rekor_entry_uuid", &mut out);
    string(&a.rekor_entry_uuid, &mut out);
    out.push(',');
    key("partial", &mut out);
    out.push_str(if a.partial { "true" } else { "false" });
    if let Some(proof) = &a.rekor_inclusion_proof {
        out.push(',');
        key("rekor_inclusion_proof", &mut out);
        out.push_str(&to_json(proof));
    }
    out.push(',');
    key("diverged_units", &mut out);
    out.push_str(&to_json(
        &p.diverged_units
            .as_ref()
            .map_or(Value::Array(Vec::new()), cbor_json),
    ));
    if let Some(f) = &p.governance_footprint {
        out.push(',');
        key("governance_footprint", &mut out);
        out.push_str(&to_json(&cbor_json(f)));
    }
    out.push('}');
    Ok(out)
}

/// The evidence bundle's `attestation` block (§7.1: no units).
pub fn bundle_block(a: &StoredAttestation) -> Value {
    Obj::new()
        .set("attestation_id", a.attestation_id.as_str())
        .set("merkle_root", a.merkle_root.as_str())
        .set("algorithm", a.algorithm.as_str())
        .set("cose_b64", STANDARD.encode(&a.cose))
        .set("signing_key_pubkey_hex", a.signing_key_pubkey_hex.as_str())
        .set("rekor_log_index", a.rekor_log_index)
        .set("rekor_entry_uuid", a.rekor_entry_uuid.as_str())
        .set(
            "rekor_inclusion_proof",
            a.rekor_inclusion_proof.clone().unwrap_or(Value::Null),
        )
        .build()
}

/// Records a successful anchoring.
pub fn set_anchor(
    conn: &Connection,
    attestation_id: &str,
    log_index: i64,
    entry_uuid: &str,
    proof: Option<&Value>,
) -> ApiResult<()> {
    conn.execute(
        "UPDATE attestations SET rekor_log_index = ?2, rekor_entry_uuid = ?3, \
         rekor_inclusion_proof_json = ?4, anchor_attempts = anchor_attempts + 1, \
         anchor_last_error = NULL, anchor_last_attempt_at = ?5 WHERE attestation_id = ?1",
        params![
            attestation_id,
            log_index,
            entry_uuid,
            proof.map(to_json),
            iso_now()
        ],
    )?;
    Ok(())
}

/// Records a failed anchoring attempt; three permanent rejections make the
/// attestation terminal (never retried).
pub fn record_anchor_failure(
    conn: &Connection,
    attestation_id: &str,
    permanent: bool,
    error: &str,
) -> ApiResult<()> {
    conn.execute(
        "UPDATE attestations SET anchor_attempts = anchor_attempts + 1, \
         anchor_permanent_failures = anchor_permanent_failures + ?2, \
         anchor_terminal = CASE WHEN anchor_permanent_failures + ?2 >= 3 THEN 1 \
                           ELSE anchor_terminal END, \
         anchor_last_error = ?3, anchor_last_attempt_at = ?4 WHERE attestation_id = ?1",
        params![attestation_id, i64::from(permanent), error, iso_now()],
    )?;
    Ok(())
}

/// Final attestations still waiting for the log (not terminal).
pub fn pending_anchors(conn: &Connection) -> ApiResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT attestation_id FROM attestations WHERE rekor_entry_uuid = ?1 \
         AND anchor_terminal = 0 ORDER BY issued_at",
    )?;
    Ok(stmt
        .query_map(params![NO_REKOR_UUID], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// The Merkle root the experiment's current rows give, with the attested
/// `(unit_id, consensus_result_hash)` pairs (the export's root check).
pub fn current_set(
    conn: &Connection,
    experiment_id: &str,
) -> ApiResult<(String, Vec<(String, String)>)> {
    let (units, _) = collect(conn, experiment_id)?;
    let leaves: Vec<UnitLeaf<'_>> = units
        .iter()
        .map(|u| UnitLeaf {
            unit_id: &u.unit_id,
            consensus_result_hash: &u.consensus_result_hash,
            receipt_id: &u.receipt_id,
            unit_payload_sha256: Some(&u.unit_payload_sha256),
        })
        .collect();
    let root = merkle::result_set_root_hex(&leaves, ALGORITHM);
    drop(leaves);
    Ok((
        root,
        units
            .into_iter()
            .map(|u| (u.unit_id, u.consensus_result_hash))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a final attestation over `n` synthetic units straight from
    /// the database (100k in release: the < 2 s target; 2k in debug).
    #[test]
    fn attestation_build_time() {
        let n: usize = if cfg!(debug_assertions) {
            2_000
        } else {
            100_000
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::db::Db::open(&dir.path().join("c.db")).expect("db");
        let mut conn = db.lock();
        let tx = conn.transaction().expect("tx");
        tx.execute(
            "INSERT INTO experiments (experiment_id, tenant_id, label, manifest_hash, status, \
             submitted_at, integrity_policy, replication_target, replication_floor, \
             required_capabilities, reducer_kind, submissions_finalized) VALUES ('exp-1', 't', \
             'lab', 'h', 'completed', 'now', 'standard', 2, 2, '{}', \
             'builtin_hash_agreement', 1)",
            [],
        )
        .expect("experiment");
        for i in 0..n {
            let unit = format!("unit-{i:07}");
            let hash = auspex_wire::sha256_hex(unit.as_bytes());
            tx.execute(
                "INSERT INTO work_units (experiment_id, unit_id, payload_json, \
                 unit_payload_sha256, status, replication_target, created_at) \
                 VALUES ('exp-1', ?1, '{}', ?2, 'completed', 2, 'now')",
                params![unit, hash],
            )
            .expect("unit");
            tx.execute(
                "INSERT INTO results (result_id, experiment_id, unit_id, assignment_id, \
                 worker_id, worker_pubkey_hex, exit_code, payload_json, worker_signature, \
                 completed_at, completed_at_key, received_at, semantic_hash, result_sha256, \
                 is_consensus, environment_json) VALUES (?1, 'exp-1', ?2, 'a', 'w', 'k', 0, \
                 '{}', 's', 'now', 'now', 'now', ?3, ?3, 1, '{\"worker_version\":\"0.2.80\"}')",
                params![format!("res-{i}"), unit, hash],
            )
            .expect("result");
            tx.execute(
                "INSERT INTO receipts (receipt_id, experiment_id, unit_id, result_id, worker_id, \
                 worker_pubkey, cose_blob, body_cbor, signing_key_pubkey_hex, issued_at) \
                 VALUES (?1, 'exp-1', ?2, ?3, 'w', 'k', x'00', x'00', 'k', 'now')",
                params![format!("rcpt-{i}"), unit, format!("res-{i}")],
            )
            .expect("receipt");
            tx.execute(
                "INSERT INTO unit_consensus (experiment_id, unit_id, method, agreed, \
                 agreeing_workers, outlier_count, outlier_result_hashes_json, integrity_basis, \
                 recorded_at) VALUES ('exp-1', ?1, 'builtin_hash_agreement', 1, 2, 0, '[]', \
                 'within_cell_exact', 'now')",
                params![unit],
            )
            .expect("consensus");
        }
        tx.commit().expect("commit");
        let e = crate::routes::experiments::load(&conn, "exp-1")
            .expect("load")
            .expect("experiment");
        let key = CoordinatorKey::from_seed([3; 32]);
        let tx = conn.transaction().expect("tx");
        let (a, created) = ensure_final(&tx, &key, &e).expect("attestation");
        tx.commit().expect("commit");
        assert!(created);
        assert_eq!(a.unit_count as usize, n);
        let p = predicate(&a).expect("predicate");
        assert_eq!(p.units.len(), n);
    }

    #[test]
    fn key_orders_are_canonical() {
        assert_eq!(
            canonical_order(UNIT_KEYS),
            [
                "unit_id",
                "tolerance",
                "receipt_id",
                "environment",
                "integrity_basis",
                "unit_payload_sha256",
                "consensus_result_hash"
            ]
        );
        assert_eq!(
            canonical_order(TOP_KEYS),
            [
                "units",
                "partial",
                "algorithm",
                "tenant_id",
                "unit_count",
                "merkle_root",
                "experiment_id",
                "diverged_units",
                "governance_footprint"
            ]
        );
    }

    /// The response built as a `Value` (the reference `response_json` is
    /// held to).
    fn response_value(a: &StoredAttestation) -> ApiResult<Value> {
        let p = predicate(a)?;
        let units: Vec<Value> = p
            .units
            .iter()
            .map(|u| {
                Obj::new()
                    .set("unit_id", u.unit_id.as_str())
                    .set("consensus_result_hash", u.consensus_result_hash.as_str())
                    .set("receipt_id", u.receipt_id.as_str())
                    .opt("unit_payload_sha256", u.unit_payload_sha256.clone())
                    .opt("integrity_basis", u.integrity_basis.clone())
                    .opt("environment", u.environment.as_ref().map(cbor_json))
                    .opt("tolerance", u.tolerance.as_ref().map(cbor_json))
                    .build()
            })
            .collect();
        Ok(Obj::new()
            .set("attestation_id", a.attestation_id.as_str())
            .set("experiment_id", p.experiment_id.as_str())
            .set("tenant_id", p.tenant_id.as_str())
            .set("merkle_root", p.merkle_root.as_str())
            .set("algorithm", p.algorithm.as_str())
            .set("unit_count", p.unit_count)
            .set("units", Value::Array(units))
            .set("cose_b64", STANDARD.encode(&a.cose))
            .set("signing_key_pubkey_hex", a.signing_key_pubkey_hex.as_str())
            .set("rekor_log_index", a.rekor_log_index)
            .set("rekor_entry_uuid", a.rekor_entry_uuid.as_str())
            .set("partial", a.partial)
            .opt("rekor_inclusion_proof", a.rekor_inclusion_proof.clone())
            .set(
                "diverged_units",
                p.diverged_units
                    .as_ref()
                    .map_or(Value::Array(Vec::new()), cbor_json),
            )
            .opt(
                "governance_footprint",
                p.governance_footprint.as_ref().map(cbor_json),
            )
            .build())
    }

    #[test]
    fn response_json_equals_the_value_form() {
        let key = CoordinatorKey::from_seed([5; 32]);
        let units = vec![UnitRow {
            unit_id: "a\u{e9}\"".into(),
            consensus_result_hash: "h".repeat(64),
            receipt_id: "rcpt-1".into(),
            unit_payload_sha256: "p".repeat(64),
            method: Some("builtin_within_cell_tolerance".into()),
            agreeing_workers: 2,
            outlier_count: 1,
            outliers_json: Some(r#"["x"]"#.into()),
            environment_json: Some(r#"{"worker_version":"0.2.80","f":1.5}"#.into()),
        }];
        let diverged = vec![DivergedUnit {
            unit_id: "c".into(),
            unit_payload_sha256: "q".repeat(64),
            result_hashes: vec!["x".into(), "y".into()],
        }];
        for (partial, proof) in [
            (true, None),
            (false, Some(r#"{"hashes":["ab"],"logIndex":3}"#)),
        ] {
            let predicate = predicate_bytes(&PredicateInput {
                merkle_root: "r",
                label: "lab",
                tenant_id: "t",
                units: &units,
                diverged: &diverged,
                partial,
            });
            let statement = Statement::wrap(
                "auspexai:result-set/att-x",
                ALGORITHM.predicate_type(),
                predicate,
            );
            let a = StoredAttestation {
                attestation_id: "att-x".into(),
                experiment_id: "exp-1".into(),
                tenant_id: "t".into(),
                label: "lab".into(),
                merkle_root: "r".into(),
                algorithm: ALGORITHM.name().to_owned(),
                unit_count: 1,
                cose: CoseSign1::sign(statement.encode(), key.signing_key()).encode(),
                signing_key_pubkey_hex: key.public_hex().to_owned(),
                rekor_log_index: 7,
                rekor_entry_uuid: "u".into(),
                rekor_inclusion_proof: proof.map(parse_stored),
                partial,
            };
            assert_eq!(
                response_json(&a).expect("json"),
                to_json(&response_value(&a).expect("value"))
            );
        }
    }

    #[test]
    fn predicate_is_cbor2_canonical() {
        let units = vec![
            UnitRow {
                unit_id: "a".into(),
                consensus_result_hash: "h".repeat(64),
                receipt_id: "rcpt-1".into(),
                unit_payload_sha256: "p".repeat(64),
                method: Some("builtin_within_cell_tolerance".into()),
                agreeing_workers: 2,
                outlier_count: 1,
                outliers_json: Some(r#"["x"]"#.into()),
                environment_json: Some(r#"{"worker_version":"0.2.80"}"#.into()),
            },
            UnitRow {
                unit_id: "b".repeat(30),
                consensus_result_hash: "h".repeat(64),
                receipt_id: "rcpt-2".into(),
                unit_payload_sha256: String::new(),
                method: None,
                agreeing_workers: 1,
                outlier_count: 0,
                outliers_json: None,
                environment_json: None,
            },
        ];
        let diverged = vec![DivergedUnit {
            unit_id: "c".into(),
            unit_payload_sha256: "q".repeat(64),
            result_hashes: vec!["x".into(), "y".into()],
        }];
        for partial in [false, true] {
            let bytes = predicate_bytes(&PredicateInput {
                merkle_root: "r",
                label: "lab",
                tenant_id: "t",
                units: &units,
                diverged: &diverged,
                partial,
            });
            let item = cbor::decode(&bytes).expect("decodes");
            assert_eq!(cbor::encode_canonical(&item), bytes, "canonical");
            let p = ResultSetPredicate::decode(&bytes).expect("predicate");
            assert_eq!(p.partial, partial);
            assert_eq!(p.unit_count, 2);
            assert_eq!(
                p.units[0].integrity_basis.as_deref(),
                Some("within_cell_tolerance")
            );
            assert_eq!(p.units[1].integrity_basis.as_deref(), Some("process_only"));
            assert!(p.units[0].environment.is_some() && p.units[1].environment.is_none());
            assert!(p.diverged_units.is_some());
            let footprint = p.governance_footprint.as_ref().map(cbor_json);
            assert_eq!(
                footprint
                    .as_ref()
                    .map(auspex_wire::json::canonical)
                    .as_deref(),
                Some(
                    r#"{"integrity_basis":{"counts":{"diverged":1,"process_only":1,"within_cell_exact":0,"within_cell_tolerance":1}}}"#
                )
            );
        }
    }
}
