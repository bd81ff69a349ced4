//! Pre-registration anchors and deviation records (the 0.6.67-era D16.2
//! design: `coordinator.md` §3.2, §3.3 step 12, §13.8; `tenant-sdk.md` §7.1).
//!
//! * **Pre-registration anchor.** When a manifest declaring
//!   `pre_registration` is uploaded, the coordinator signs — in the same
//!   transaction that creates the experiment, so the design exists before
//!   any data — a COSE_Sign1 over an in-toto statement with subject
//!   `auspexai:pre-registration/<experiment_id>` and predicate type
//!   `…/pre-registration/v0`. The predicate (canonical CBOR) binds the
//!   manifest hash and carries the declared design verbatim:
//!   `{experiment_id, manifest_hash, pre_registration, submitted_at,
//!   tenant_id, version}`.
//! * **Deviation.** `POST …/pre-registration/deviations` records an
//!   append-only, tenant-signed declaration `{what_changed, why}`. The
//!   tenant's Ed25519 signature over the canonical JSON
//!   `{"manifest_hash","what_changed","why"}` is verified with the caller's
//!   key before anything is stored; the coordinator then signs a statement
//!   with subject `auspexai:pre-registration-deviation/<deviation_id>` whose
//!   predicate binds `declaration_sha256` (SHA-256 of those canonical bytes)
//!   and the manifest hash.
//!
//! Both are anchored in the transparency log like attestations
//! ([`crate::anchor`]), pre-registrations first, so a pre-registration's
//! log index precedes the attestation's (`design_precedes_data`). Both
//! appear in the evidence bundle (`pre_registration`, `deviations`).

use auspex_crypto::cose::CoseSign1;
use auspex_wire::attestation::Statement;
use auspex_wire::json::{self, Object, Value};
use auspex_wire::receipt::cbor::{Cbor, encode_canonical};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::consensus::NO_REKOR_UUID;
use crate::db::ApiResult;
use crate::error::ApiError;
use crate::keys::CoordinatorKey;
use crate::util::{Obj, iso_now, to_json, token_urlsafe};

/// Predicate type of a pre-registration anchor.
pub const PREREG_PREDICATE_TYPE: &str = "https://auspexai.network/pre-registration/v0";
/// Predicate type of a deviation anchor.
pub const DEVIATION_PREDICATE_TYPE: &str = "https://auspexai.network/pre-registration-deviation/v0";
/// Subject-name prefix of a pre-registration anchor.
pub const PREREG_SUBJECT_PREFIX: &str = "auspexai:pre-registration/";
/// Subject-name prefix of a deviation anchor.
pub const DEVIATION_SUBJECT_PREFIX: &str = "auspexai:pre-registration-deviation/";

/// Which anchored artifact a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A pre-registration anchor (keyed by experiment id).
    PreRegistration,
    /// A deviation record (keyed by deviation id).
    Deviation,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Kind::PreRegistration => "pre_registrations",
            Kind::Deviation => "pre_registration_deviations",
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            Kind::PreRegistration => "experiment_id",
            Kind::Deviation => "deviation_id",
        }
    }
}

/// A JSON value as canonical-CBOR data (integers, floats, text, arrays,
/// maps; `null` as CBOR null). Integers outside 64 bits are refused.
fn cbor_of(v: &Value, at: &str) -> ApiResult<Cbor> {
    Ok(match v {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Int(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Cbor::Unsigned(u),
            (None, Some(n)) if n < 0 => Cbor::Negative((-1 - n) as u64),
            _ => {
                return Err(ApiError::with(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "pre_registration_invalid",
                    format!("{at}: integer out of the 64-bit range"),
                    Obj::new(),
                ));
            }
        },
        Value::Float(f) => Cbor::Float(*f),
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Array(a) => Cbor::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| cbor_of(x, &format!("{at}[{i}]")))
                .collect::<ApiResult<_>>()?,
        ),
        Value::Object(o) => Cbor::Map(
            o.iter()
                .map(|(k, x)| Ok((Cbor::Text(k.clone()), cbor_of(x, &format!("{at}.{k}"))?)))
                .collect::<ApiResult<_>>()?,
        ),
    })
}

fn text_map(members: Vec<(&str, Cbor)>) -> Cbor {
    Cbor::Map(
        members
            .into_iter()
            .map(|(k, v)| (Cbor::Text(k.to_owned()), v))
            .collect(),
    )
}

fn sign(key: &CoordinatorKey, subject: &str, predicate_type: &str, predicate: &Cbor) -> Vec<u8> {
    let statement = Statement::wrap(subject, predicate_type, encode_canonical(predicate));
    CoseSign1::sign(statement.encode(), key.signing_key()).encode()
}

/// Signs and stores the pre-registration anchor of a new experiment (inside
/// the transaction that creates it).
pub fn insert_anchor(
    conn: &Connection,
    key: &CoordinatorKey,
    experiment_id: &str,
    tenant_id: &str,
    manifest_hash: &str,
    pre_registration: &Value,
    submitted_at: &str,
) -> ApiResult<()> {
    let predicate = text_map(vec![
        ("version", Cbor::Text("0.1".into())),
        ("experiment_id", Cbor::Text(experiment_id.into())),
        ("tenant_id", Cbor::Text(tenant_id.into())),
        ("manifest_hash", Cbor::Text(manifest_hash.into())),
        ("submitted_at", Cbor::Text(submitted_at.into())),
        (
            "pre_registration",
            cbor_of(pre_registration, "pre_registration")?,
        ),
    ]);
    let cose = sign(
        key,
        &format!("{PREREG_SUBJECT_PREFIX}{experiment_id}"),
        PREREG_PREDICATE_TYPE,
        &predicate,
    );
    conn.execute(
        "INSERT INTO pre_registrations (experiment_id, manifest_hash, submitted_at, cose_blob, \
         signing_key_pubkey_hex) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            experiment_id,
            manifest_hash,
            submitted_at,
            cose,
            key.public_hex()
        ],
    )?;
    Ok(())
}

/// The canonical declaration bytes a tenant signs for a deviation.
pub fn declaration_bytes(manifest_hash: &str, what_changed: &str, why: &str) -> Vec<u8> {
    let mut o = Object::new();
    o.insert("manifest_hash".into(), Value::from(manifest_hash));
    o.insert("what_changed".into(), Value::from(what_changed));
    o.insert("why".into(), Value::from(why));
    json::canonical(&Value::Object(o)).into_bytes()
}

/// A verified deviation about to be stored.
pub struct NewDeviation<'a> {
    /// The experiment.
    pub experiment_id: &'a str,
    /// Its manifest hash.
    pub manifest_hash: &'a str,
    /// What changed (10–2000 characters).
    pub what_changed: &'a str,
    /// Why (10–2000 characters).
    pub why: &'a str,
    /// The declarer's key (hex).
    pub tenant_pubkey_hex: &'a str,
    /// The declarer's signature (base64), already verified.
    pub tenant_signature_b64: &'a str,
}

/// Signs and stores a deviation; returns its id.
pub fn insert_deviation(
    conn: &Connection,
    key: &CoordinatorKey,
    d: &NewDeviation<'_>,
) -> ApiResult<String> {
    let deviation_id = format!("dev-{}", token_urlsafe(9));
    let declared_at = iso_now();
    let digest =
        auspex_wire::sha256_hex(&declaration_bytes(d.manifest_hash, d.what_changed, d.why));
    let predicate = text_map(vec![
        ("version", Cbor::Text("0.1".into())),
        ("deviation_id", Cbor::Text(deviation_id.clone())),
        ("experiment_id", Cbor::Text(d.experiment_id.into())),
        ("manifest_hash", Cbor::Text(d.manifest_hash.into())),
        ("declaration_sha256", Cbor::Text(digest)),
        (
            "declarer_pubkey_hex",
            Cbor::Text(d.tenant_pubkey_hex.into()),
        ),
        ("declared_at", Cbor::Text(declared_at.clone())),
    ]);
    let cose = sign(
        key,
        &format!("{DEVIATION_SUBJECT_PREFIX}{deviation_id}"),
        DEVIATION_PREDICATE_TYPE,
        &predicate,
    );
    conn.execute(
        "INSERT INTO pre_registration_deviations (deviation_id, experiment_id, manifest_hash, \
         what_changed, why, tenant_pubkey_hex, tenant_signature_b64, declared_at, cose_blob, \
         signing_key_pubkey_hex) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            deviation_id,
            d.experiment_id,
            d.manifest_hash,
            d.what_changed,
            d.why,
            d.tenant_pubkey_hex,
            d.tenant_signature_b64,
            declared_at,
            cose,
            key.public_hex()
        ],
    )?;
    Ok(deviation_id)
}

/// The rekor members shared by both record kinds.
fn anchor_members(mut o: Obj, r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Obj> {
    let proof: Option<String> = r.get(first + 2)?;
    let proof = proof
        .and_then(|p| json::parse(p.as_bytes()).ok())
        .unwrap_or(Value::Null);
    o = o
        .set("rekor_log_index", r.get::<_, i64>(first)?)
        .set("rekor_entry_uuid", r.get::<_, String>(first + 1)?)
        .set("rekor_inclusion_proof", proof);
    Ok(o)
}

/// The bundle's `pre_registration` block, or `None` when the experiment
/// declared none.
pub fn bundle_block(conn: &Connection, experiment_id: &str) -> ApiResult<Option<Value>> {
    Ok(conn
        .query_row(
            "SELECT manifest_hash, submitted_at, cose_blob, signing_key_pubkey_hex, \
             rekor_log_index, rekor_entry_uuid, rekor_inclusion_proof_json \
             FROM pre_registrations WHERE experiment_id = ?1",
            params![experiment_id],
            |r| {
                let o = Obj::new()
                    .set("manifest_hash", r.get::<_, String>(0)?)
                    .set("submitted_at", r.get::<_, String>(1)?)
                    .set("cose_b64", STANDARD.encode(r.get::<_, Vec<u8>>(2)?))
                    .set("signing_key_pubkey_hex", r.get::<_, String>(3)?);
                Ok(anchor_members(o, r, 4)?.build())
            },
        )
        .optional()?)
}

/// The columns [`deviation_row`] reads, in its order.
const DEVIATION_COLUMNS: &str = "deviation_id, experiment_id, manifest_hash, what_changed, why, \
     tenant_pubkey_hex, tenant_signature_b64, declared_at, cose_blob, signing_key_pubkey_hex, \
     rekor_log_index, rekor_entry_uuid, rekor_inclusion_proof_json";

/// Every deviation of an experiment, oldest first, as served by the API and
/// in bundles.
pub fn deviations(conn: &Connection, experiment_id: &str) -> ApiResult<Vec<Value>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DEVIATION_COLUMNS} FROM pre_registration_deviations \
             WHERE experiment_id = ?1 ORDER BY seq"
    ))?;
    let rows = stmt.query_map(params![experiment_id], deviation_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One deviation by id.
pub fn deviation(conn: &Connection, deviation_id: &str) -> ApiResult<Option<Value>> {
    Ok(conn
        .query_row(
            &format!("SELECT {DEVIATION_COLUMNS} FROM pre_registration_deviations WHERE deviation_id = ?1"),
            params![deviation_id],
            deviation_row,
        )
        .optional()?)
}

fn deviation_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let o = Obj::new()
        .set("deviation_id", r.get::<_, String>(0)?)
        .set("experiment_id", r.get::<_, String>(1)?)
        .set("manifest_hash", r.get::<_, String>(2)?)
        .set("what_changed", r.get::<_, String>(3)?)
        .set("why", r.get::<_, String>(4)?)
        .set("tenant_pubkey_hex", r.get::<_, String>(5)?)
        .set("tenant_signature_b64", r.get::<_, String>(6)?)
        .set("declared_at", r.get::<_, String>(7)?)
        .set("cose_b64", STANDARD.encode(r.get::<_, Vec<u8>>(8)?))
        .set("signing_key_pubkey_hex", r.get::<_, String>(9)?);
    Ok(anchor_members(o, r, 10)?.build())
}

/// The COSE bytes of an artifact still waiting for the log (`None` when it
/// is anchored, terminal or unknown).
pub fn unanchored_cose(conn: &Connection, kind: Kind, id: &str) -> ApiResult<Option<Vec<u8>>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT cose_blob FROM {} WHERE {} = ?1 AND rekor_entry_uuid = ?2 \
                 AND anchor_terminal = 0",
                kind.table(),
                kind.id_column()
            ),
            params![id, NO_REKOR_UUID],
            |r| r.get(0),
        )
        .optional()?)
}

/// Records a successful anchoring.
pub fn set_anchor(
    conn: &Connection,
    kind: Kind,
    id: &str,
    log_index: i64,
    entry_uuid: &str,
    proof: Option<&Value>,
) -> ApiResult<()> {
    conn.execute(
        &format!(
            "UPDATE {} SET rekor_log_index = ?2, rekor_entry_uuid = ?3, \
             rekor_inclusion_proof_json = ?4, anchor_attempts = anchor_attempts + 1, \
             anchor_last_error = NULL WHERE {} = ?1",
            kind.table(),
            kind.id_column()
        ),
        params![id, log_index, entry_uuid, proof.map(to_json)],
    )?;
    Ok(())
}

/// Records a failed attempt; three permanent rejections make it terminal.
pub fn record_anchor_failure(
    conn: &Connection,
    kind: Kind,
    id: &str,
    permanent: bool,
    error: &str,
) -> ApiResult<()> {
    conn.execute(
        &format!(
            "UPDATE {} SET anchor_attempts = anchor_attempts + 1, \
             anchor_permanent_failures = anchor_permanent_failures + ?2, \
             anchor_terminal = CASE WHEN anchor_permanent_failures + ?2 >= 3 THEN 1 \
                               ELSE anchor_terminal END, \
             anchor_last_error = ?3 WHERE {} = ?1",
            kind.table(),
            kind.id_column()
        ),
        params![id, i64::from(permanent), error],
    )?;
    Ok(())
}

/// Artifacts of `kind` still waiting for the log, oldest first.
pub fn pending(conn: &Connection, kind: Kind) -> ApiResult<Vec<String>> {
    let order = match kind {
        Kind::PreRegistration => "submitted_at",
        Kind::Deviation => "seq",
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM {} WHERE rekor_entry_uuid = ?1 AND anchor_terminal = 0 ORDER BY {order}",
        kind.id_column(),
        kind.table()
    ))?;
    Ok(stmt
        .query_map(params![NO_REKOR_UUID], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// The migration creating both tables.
pub const MIGRATION: &str = r#"
CREATE TABLE pre_registrations (
    experiment_id TEXT PRIMARY KEY,
    manifest_hash TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    cose_blob BLOB NOT NULL,
    signing_key_pubkey_hex TEXT NOT NULL,
    rekor_log_index INTEGER NOT NULL DEFAULT 0,
    rekor_entry_uuid TEXT NOT NULL DEFAULT 'lab-mode-no-rekor',
    rekor_inclusion_proof_json TEXT,
    anchor_attempts INTEGER NOT NULL DEFAULT 0,
    anchor_permanent_failures INTEGER NOT NULL DEFAULT 0,
    anchor_terminal INTEGER NOT NULL DEFAULT 0,
    anchor_last_error TEXT
);
CREATE TABLE pre_registration_deviations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    deviation_id TEXT NOT NULL UNIQUE,
    experiment_id TEXT NOT NULL,
    manifest_hash TEXT NOT NULL,
    what_changed TEXT NOT NULL,
    why TEXT NOT NULL,
    tenant_pubkey_hex TEXT NOT NULL,
    tenant_signature_b64 TEXT NOT NULL,
    declared_at TEXT NOT NULL,
    cose_blob BLOB NOT NULL,
    signing_key_pubkey_hex TEXT NOT NULL,
    rekor_log_index INTEGER NOT NULL DEFAULT 0,
    rekor_entry_uuid TEXT NOT NULL DEFAULT 'lab-mode-no-rekor',
    rekor_inclusion_proof_json TEXT,
    anchor_attempts INTEGER NOT NULL DEFAULT 0,
    anchor_permanent_failures INTEGER NOT NULL DEFAULT 0,
    anchor_terminal INTEGER NOT NULL DEFAULT 0,
    anchor_last_error TEXT
);
CREATE INDEX pre_registration_deviations_by_experiment
    ON pre_registration_deviations (experiment_id, seq);
"#;
