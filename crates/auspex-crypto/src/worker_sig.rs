//! Worker result signatures, result schema v0–v3, and the semantic hash
//! (spec `tenant-sdk.md` §3h, `worker.md` §4–§5).
//!
//! A worker signs the Python-canonical JSON (`json.dumps(sort_keys=True,
//! separators=(",", ":"))`, ASCII-escaped) of a body whose members depend on
//! the result's `schema_version` (cumulative):
//!
//! | version | members |
//! |---|---|
//! | v0 (absent, null or 0) | `completed_at` (verbatim), `exit_code` (int), `payload`, `unit_id`, `worker_pubkey` (lowercased) |
//! | v1 | + `schema_version`, `served_weights` (`{model: lowercase digest}`, `{}` when none) |
//! | v2 | + `ran_under` (lowercased, `""` when none) |
//! | v3 | + `generation_options` (list order kept, `[]` when none) |
//!
//! The signature is Ed25519 over those bytes, carried as standard base64.
//! 0.5.5 rebuilds only v0 and therefore reports every current (v1–v3) result
//! as failed (§11.2 #11); this module rebuilds all four and refuses any other
//! version by name instead of guessing.
//!
//! Stricter than the reference on purpose:
//!
//! * signatures are checked with `verify_strict` (canonical `S`, no
//!   small-order key or `R`), base64 must be canonical standard base64 of 64
//!   bytes, `exit_code` and `schema_version` must be JSON integers;
//! * the **semantic hash** `sha256(canonical({"exit_code", "payload"}))` of
//!   every consensus row that still has its payload is recomputed and compared
//!   with the attested `semantic_hash` ([`SEMANTIC_HASH`]), which closes the
//!   "payload swapped for another worker-signed payload" gap (§11.2 #12).
//!
//! **Batch verification.** [`verify_rows`] checks signatures in chunks with
//! `ed25519_dalek::verify_batch`; when a chunk fails it is re-verified one row
//! at a time so the failing rows are named. Rows whose key is small-order or
//! not torsion-free never enter a batch (they are checked with
//! `verify_strict`). Residual difference, documented rather than hidden: the
//! batch equation is checked with 128-bit coefficients, so a signature whose
//! `R` carries a deliberate small torsion component — which only the holder
//! of that worker's private key can produce — may be accepted by a batch
//! where `verify_strict` alone would refuse it. It cannot make a signature
//! verify under somebody else's key. [`VerifyMode::OneByOne`] removes even
//! that difference.
//!
//! ```
//! use auspex_crypto::worker_sig::{SchemaVersion, SignedResult, semantic_hash, verify_row};
//! use auspex_wire::json;
//! use ed25519_dalek::SigningKey;
//!
//! let key = SigningKey::from_bytes(&[1u8; 32]);
//! let pubkey = auspex_wire::hex_lower(key.verifying_key().as_bytes());
//! let payload = json::parse(br#"{"score": 0.5}"#).unwrap();
//! let result = SignedResult {
//!     schema_version: SchemaVersion::V3,
//!     ..SignedResult::v0("u-0001", &pubkey, "2026-07-01T12:00:00Z", 0, &payload)
//! };
//! let signature = result.sign(&key);
//! assert!(verify_row(&result, &signature).is_ok());
//! assert_eq!(semantic_hash(0, &payload).len(), 64);
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;

use auspex_wire::bundle::ConsensusRow;
use auspex_wire::json::{self, Object, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::report::{CheckId, Report};

/// Every row that carries its payload and signed fields has a worker
/// signature that verifies (schema v0–v3).
pub const ROW: CheckId = CheckId("worker_sig.row");
/// Every row that is not aged off carries the fields a signature needs
/// (`worker_pubkey_hex`, `exit_code`); required for v1 bundles.
pub const FIELDS: CheckId = CheckId("worker_sig.fields");
/// Every row that carries its payload has an attested `semantic_hash` equal
/// to `sha256(canonical({"exit_code", "payload"}))`.
pub const SEMANTIC_HASH: CheckId = CheckId("worker_sig.semantic_hash");
/// Rows whose payload has aged off (their signature and semantic hash cannot
/// be checked); recorded as not checked when there are any.
pub const AGED_OFF: CheckId = CheckId("worker_sig.aged_off");

/// Rows per `verify_batch` call in [`VerifyMode::default`].
pub const DEFAULT_BATCH: usize = 128;

/// Why a worker result signature could not be checked or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerSigError {
    /// A member the signature covers is absent or null.
    #[error("the row lacks {field}")]
    MissingField {
        /// The member.
        field: &'static str,
    },
    /// A member has the wrong JSON type.
    #[error("{field} must be {expected}, found {found}")]
    WrongType {
        /// The member.
        field: &'static str,
        /// The required type.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// `exit_code` does not fit a 64-bit integer.
    #[error("exit_code {value} is outside the 64-bit range")]
    ExitCodeRange {
        /// The value, in decimal.
        value: String,
    },
    /// `schema_version` is an integer this verifier does not know.
    #[error("unsupported result schema_version {found} (known: 0, 1, 2, 3)")]
    UnsupportedSchemaVersion {
        /// The value, in decimal.
        found: String,
    },
    /// The worker key is not 64 hex characters of an Ed25519 public key.
    #[error("worker_pubkey {pubkey:?} is not 64 hex characters of an Ed25519 public key")]
    PublicKey {
        /// The key as given.
        pubkey: String,
    },
    /// The signature is not canonical standard base64 of 64 bytes.
    #[error("worker_signature is not standard base64 of a 64-byte signature ({len} characters)")]
    SignatureEncoding {
        /// Length of the text.
        len: usize,
    },
    /// The signature does not verify over the canonical bytes.
    #[error("signature does not verify under worker key {pubkey} over the v{version} body")]
    SignatureInvalid {
        /// The worker key, lowercase hex.
        pubkey: String,
        /// The schema version whose body was rebuilt.
        version: u8,
    },
}

/// Why a row's attested semantic hash was not confirmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SemanticHashError {
    /// The row carries a payload but no `semantic_hash`.
    #[error("the row has a payload but no semantic_hash")]
    Missing,
    /// The row's `exit_code` cannot be hashed.
    #[error("cannot recompute: {0}")]
    Fields(WorkerSigError),
    /// The recomputed hash differs from the attested one.
    #[error("semantic_hash {attested} does not match the payload (recomputed {recomputed})")]
    Mismatch {
        /// The row's `semantic_hash`.
        attested: String,
        /// `sha256(canonical({"exit_code", "payload"}))`.
        recomputed: String,
    },
}

/// The worker result-signature schema, selecting the signed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SchemaVersion {
    /// No `schema_version` key (absent, null or 0).
    V0,
    /// Adds `schema_version` and `served_weights`.
    V1,
    /// Adds `ran_under`.
    V2,
    /// Adds `generation_options` (what 0.2.80 workers sign).
    V3,
}

impl SchemaVersion {
    /// All versions, oldest first.
    pub const ALL: [SchemaVersion; 4] = [
        SchemaVersion::V0,
        SchemaVersion::V1,
        SchemaVersion::V2,
        SchemaVersion::V3,
    ];

    /// The version number (0–3).
    pub fn number(self) -> u8 {
        match self {
            SchemaVersion::V0 => 0,
            SchemaVersion::V1 => 1,
            SchemaVersion::V2 => 2,
            SchemaVersion::V3 => 3,
        }
    }

    /// The version with this number, if known.
    pub fn from_number(n: u64) -> Option<SchemaVersion> {
        match n {
            0 => Some(SchemaVersion::V0),
            1 => Some(SchemaVersion::V1),
            2 => Some(SchemaVersion::V2),
            3 => Some(SchemaVersion::V3),
            _ => None,
        }
    }

    /// Reads a row's `schema_version`: absent, `null` and `0` mean v0 (the
    /// reference's "truthy and ≥ 1" rule); 1–3 select their body; any other
    /// integer and any non-integer are refused rather than guessed.
    pub fn from_value(v: Option<&Value>) -> Result<SchemaVersion, WorkerSigError> {
        match v {
            None | Some(Value::Null) => Ok(SchemaVersion::V0),
            Some(Value::Int(i)) => {
                i.as_u64()
                    .and_then(SchemaVersion::from_number)
                    .ok_or_else(|| WorkerSigError::UnsupportedSchemaVersion {
                        found: i.as_str().to_owned(),
                    })
            }
            Some(other) => Err(WorkerSigError::WrongType {
                field: "schema_version",
                expected: "an integer",
                found: other.type_name(),
            }),
        }
    }
}

/// The members of one worker result that its signature covers, borrowed.
/// [`SignedResult::canonical_json`] is the exact signing input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignedResult<'a> {
    /// The unit.
    pub unit_id: &'a str,
    /// The worker key as given (lowercased in the body; parsed
    /// case-insensitively for verification).
    pub worker_pubkey: &'a str,
    /// The executor's completion time, **verbatim** (never re-formatted).
    pub completed_at: &'a str,
    /// The executor's exit code.
    pub exit_code: i64,
    /// The payload as stored.
    pub payload: &'a Value,
    /// Which body to build.
    pub schema_version: SchemaVersion,
    /// v1+: `{model_id: digest}`; string values are lowercased, `None` is
    /// `{}`.
    pub served_weights: Option<&'a Object>,
    /// v2+: lowercased; `None` is `""`.
    pub ran_under: Option<&'a str>,
    /// v3+: the sampler chains in first-seen order; `None` is `[]`.
    pub generation_options: Option<&'a [Value]>,
}

fn lower(s: &str) -> String {
    // Python's `str.lower()`: full Unicode lowercase mapping.
    s.to_lowercase()
}

impl<'a> SignedResult<'a> {
    /// A v0 result (the form 0.5.5 verifies); set [`Self::schema_version`]
    /// and the later members for v1–v3.
    pub fn v0(
        unit_id: &'a str,
        worker_pubkey: &'a str,
        completed_at: &'a str,
        exit_code: i64,
        payload: &'a Value,
    ) -> SignedResult<'a> {
        SignedResult {
            unit_id,
            worker_pubkey,
            completed_at,
            exit_code,
            payload,
            schema_version: SchemaVersion::V0,
            served_weights: None,
            ran_under: None,
            generation_options: None,
        }
    }

    /// Reads the signed members of a result row given as JSON: the
    /// evidence-bundle row shape (`worker_pubkey_hex`) or the upload shape
    /// (`worker_pubkey`). `generation_options` is read when present.
    pub fn from_value(row: &'a Value) -> Result<SignedResult<'a>, WorkerSigError> {
        let Some(o) = row.as_object() else {
            return Err(WorkerSigError::WrongType {
                field: "row",
                expected: "an object",
                found: row.type_name(),
            });
        };
        let get = |k: &str| o.get(k).filter(|v| !matches!(v, Value::Null));
        let text = |field: &'static str, v: Option<&'a Value>| match v {
            None => Err(WorkerSigError::MissingField { field }),
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(other) => Err(WorkerSigError::WrongType {
                field,
                expected: "a string",
                found: other.type_name(),
            }),
        };
        let pubkey = match get("worker_pubkey_hex") {
            Some(v) => text("worker_pubkey_hex", Some(v))?,
            None => text("worker_pubkey_hex", get("worker_pubkey"))?,
        };
        RawRow {
            unit_id: Some(text("unit_id", get("unit_id"))?),
            worker_pubkey: Some(pubkey),
            completed_at: Some(text("completed_at", get("completed_at"))?),
            exit_code: get("exit_code"),
            payload: get("payload"),
            schema_version: get("schema_version"),
            served_weights: get("served_weights"),
            ran_under: get("ran_under"),
            generation_options: get("generation_options"),
        }
        .signed()
    }

    /// Reads the signed members of an evidence-bundle consensus row
    /// (`generation_options` comes from the row's extra members).
    pub fn from_consensus_row(row: &'a ConsensusRow) -> Result<SignedResult<'a>, WorkerSigError> {
        RawRow::of(row).signed()
    }

    /// The signing input as text: Python-canonical JSON of the body for
    /// [`Self::schema_version`] (pure ASCII).
    pub fn canonical_json(&self) -> String {
        let v = self.schema_version;
        let mut out = String::with_capacity(192);
        out.push_str("{\"completed_at\":");
        json::write_ascii_string(self.completed_at, &mut out);
        // Writing into a String cannot fail.
        let _ = write!(out, ",\"exit_code\":{}", self.exit_code);
        if v >= SchemaVersion::V3 {
            out.push_str(",\"generation_options\":[");
            for (i, opt) in self.generation_options.unwrap_or(&[]).iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json::write_canonical(opt, &mut out);
            }
            out.push(']');
        }
        out.push_str(",\"payload\":");
        json::write_canonical(self.payload, &mut out);
        if v >= SchemaVersion::V2 {
            out.push_str(",\"ran_under\":");
            json::write_ascii_string(&lower(self.ran_under.unwrap_or("")), &mut out);
        }
        if v >= SchemaVersion::V1 {
            let _ = write!(out, ",\"schema_version\":{}", v.number());
            out.push_str(",\"served_weights\":");
            json::write_canonical(&Value::Object(self.served_weights_lowered()), &mut out);
        }
        out.push_str(",\"unit_id\":");
        json::write_ascii_string(self.unit_id, &mut out);
        out.push_str(",\"worker_pubkey\":");
        json::write_ascii_string(&lower(self.worker_pubkey), &mut out);
        out.push('}');
        out
    }

    /// The signing input bytes (UTF-8 of [`Self::canonical_json`]).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        self.canonical_json().into_bytes()
    }

    /// The body as a JSON object (before canonicalisation); its
    /// [`json::canonical`] equals [`Self::canonical_json`].
    pub fn to_value(&self) -> Value {
        let v = self.schema_version;
        let mut o = Object::new();
        o.insert("unit_id".into(), Value::from(self.unit_id));
        o.insert(
            "worker_pubkey".into(),
            Value::from(lower(self.worker_pubkey)),
        );
        o.insert("completed_at".into(), Value::from(self.completed_at));
        o.insert("exit_code".into(), Value::from(self.exit_code));
        o.insert("payload".into(), self.payload.clone());
        if v >= SchemaVersion::V1 {
            o.insert("schema_version".into(), Value::from(u64::from(v.number())));
            o.insert(
                "served_weights".into(),
                Value::Object(self.served_weights_lowered()),
            );
        }
        if v >= SchemaVersion::V2 {
            o.insert(
                "ran_under".into(),
                Value::from(lower(self.ran_under.unwrap_or(""))),
            );
        }
        if v >= SchemaVersion::V3 {
            o.insert(
                "generation_options".into(),
                Value::Array(self.generation_options.unwrap_or(&[]).to_vec()),
            );
        }
        Value::Object(o)
    }

    fn served_weights_lowered(&self) -> Object {
        self.served_weights
            .map(|w| {
                w.iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => Value::String(lower(s)),
                            other => other.clone(),
                        };
                        (k.clone(), v)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The receipt anchor `result_sha256`: lowercase hex SHA-256 of the
    /// signing input (`worker.md` §5).
    pub fn result_sha256(&self) -> String {
        auspex_wire::sha256_hex(self.canonical_json().as_bytes())
    }

    /// Anchors a verifier also accepts for old receipts: the current one,
    /// then (v2+) the anchor computed with `ran_under` blanked and (v3) with
    /// `generation_options: []` — two historical coordinator bugs
    /// (`worker.md` §5).
    pub fn result_sha256_variants(&self) -> Vec<String> {
        let mut out = vec![self.result_sha256()];
        if self.schema_version >= SchemaVersion::V2 {
            let blanked = SignedResult {
                ran_under: None,
                ..*self
            };
            out.push(blanked.result_sha256());
        }
        if self.schema_version >= SchemaVersion::V3 {
            let no_options = SignedResult {
                generation_options: None,
                ..*self
            };
            out.push(no_options.result_sha256());
        }
        out.dedup();
        out
    }

    /// The semantic hash of this result's exit code and payload.
    pub fn semantic_hash(&self) -> String {
        semantic_hash(self.exit_code, self.payload)
    }

    /// Signs the body with `key` (the worker side and the devnet): standard
    /// base64 of the Ed25519 signature. The body's `worker_pubkey` is taken
    /// as given; set it to `key`'s public key.
    pub fn sign(&self, key: &SigningKey) -> String {
        STANDARD.encode(key.sign(self.canonical_json().as_bytes()).to_bytes())
    }
}

/// `hex(sha256(canonical({"exit_code": exit_code, "payload": payload})))`
/// (§3h.3): the consensus key, and `consensus_result_hash` of exact units.
pub fn semantic_hash(exit_code: i64, payload: &Value) -> String {
    let mut out = String::with_capacity(64);
    let _ = write!(out, "{{\"exit_code\":{exit_code},\"payload\":");
    json::write_canonical(payload, &mut out);
    out.push('}');
    auspex_wire::sha256_hex(out.as_bytes())
}

/// Compares an attested `semantic_hash` with the one recomputed from the
/// payload (case-sensitive: the coordinator writes lowercase hex).
pub fn check_semantic_hash(
    exit_code: i64,
    payload: &Value,
    attested: &str,
) -> Result<(), SemanticHashError> {
    let recomputed = semantic_hash(exit_code, payload);
    if recomputed == attested {
        Ok(())
    } else {
        Err(SemanticHashError::Mismatch {
            attested: attested.to_owned(),
            recomputed,
        })
    }
}

/// A row's members before type checks (shared by the JSON and typed row
/// readers).
struct RawRow<'a> {
    unit_id: Option<&'a str>,
    worker_pubkey: Option<&'a str>,
    completed_at: Option<&'a str>,
    exit_code: Option<&'a Value>,
    payload: Option<&'a Value>,
    schema_version: Option<&'a Value>,
    served_weights: Option<&'a Value>,
    ran_under: Option<&'a Value>,
    generation_options: Option<&'a Value>,
}

impl<'a> RawRow<'a> {
    fn of(row: &'a ConsensusRow) -> RawRow<'a> {
        RawRow {
            unit_id: row.unit_id.as_deref(),
            worker_pubkey: row.worker_pubkey_hex.as_deref(),
            completed_at: row.completed_at.as_deref(),
            exit_code: row.exit_code.as_ref(),
            payload: row.payload.as_ref(),
            schema_version: row.schema_version.as_ref(),
            served_weights: row.served_weights.as_ref(),
            ran_under: row.ran_under.as_ref(),
            generation_options: row
                .extra
                .get("generation_options")
                .filter(|v| !matches!(v, Value::Null)),
        }
    }

    fn signed(self) -> Result<SignedResult<'a>, WorkerSigError> {
        let missing = |field| WorkerSigError::MissingField { field };
        let schema_version = SchemaVersion::from_value(self.schema_version)?;
        let served_weights = match self.served_weights {
            None => None,
            Some(Value::Object(o)) => {
                if let Some((_, bad)) = o.iter().find(|(_, v)| !matches!(v, Value::String(_))) {
                    return Err(WorkerSigError::WrongType {
                        field: "served_weights",
                        expected: "an object of strings",
                        found: bad.type_name(),
                    });
                }
                Some(o)
            }
            Some(other) => {
                return Err(WorkerSigError::WrongType {
                    field: "served_weights",
                    expected: "an object",
                    found: other.type_name(),
                });
            }
        };
        let ran_under = match self.ran_under {
            None => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(other) => {
                return Err(WorkerSigError::WrongType {
                    field: "ran_under",
                    expected: "a string",
                    found: other.type_name(),
                });
            }
        };
        let generation_options = match self.generation_options {
            None => None,
            Some(Value::Array(a)) => Some(a.as_slice()),
            Some(other) => {
                return Err(WorkerSigError::WrongType {
                    field: "generation_options",
                    expected: "an array",
                    found: other.type_name(),
                });
            }
        };
        Ok(SignedResult {
            unit_id: self.unit_id.ok_or(missing("unit_id"))?,
            worker_pubkey: self.worker_pubkey.ok_or(missing("worker_pubkey_hex"))?,
            completed_at: self.completed_at.ok_or(missing("completed_at"))?,
            exit_code: exit_code(self.exit_code)?,
            payload: self.payload.ok_or(missing("payload"))?,
            schema_version,
            served_weights,
            ran_under,
            generation_options,
        })
    }
}

/// `int(exit_code)`, accepting only JSON integers.
fn exit_code(v: Option<&Value>) -> Result<i64, WorkerSigError> {
    match v {
        None | Some(Value::Null) => Err(WorkerSigError::MissingField { field: "exit_code" }),
        Some(Value::Int(i)) => i.as_i64().ok_or_else(|| WorkerSigError::ExitCodeRange {
            value: i.as_str().to_owned(),
        }),
        Some(other) => Err(WorkerSigError::WrongType {
            field: "exit_code",
            expected: "an integer",
            found: other.type_name(),
        }),
    }
}

/// Decodes hex of either case into exactly `N` bytes.
pub(crate) fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// A worker signature that verified: only this module constructs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedRow {
    worker_pubkey: [u8; 32],
    schema_version: SchemaVersion,
}

impl VerifiedRow {
    /// The worker's public key.
    pub fn worker_pubkey(&self) -> &[u8; 32] {
        &self.worker_pubkey
    }

    /// The body version that verified.
    pub fn schema_version(&self) -> SchemaVersion {
        self.schema_version
    }
}

/// One row to check: its signed members and the claimed signature (standard
/// base64, as on the wire).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignedRow<'a> {
    /// The signed members.
    pub result: SignedResult<'a>,
    /// `worker_signature`.
    pub signature_b64: &'a str,
}

/// How [`verify_rows`] checks signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMode {
    /// `verify_batch` over chunks of this many rows (at least 1); a failed
    /// chunk is re-verified row by row to name the failures.
    Batch {
        /// Rows per batch.
        chunk: usize,
    },
    /// `verify_strict` on every row.
    OneByOne,
}

impl Default for VerifyMode {
    fn default() -> VerifyMode {
        VerifyMode::Batch {
            chunk: DEFAULT_BATCH,
        }
    }
}

/// A parsed worker key and whether it may enter a batch (not small-order and
/// torsion-free, so the batch equation decides exactly what `verify_strict`
/// decides about the key).
#[derive(Clone, Copy)]
struct WorkerKey {
    key: VerifyingKey,
    batchable: bool,
}

fn parse_worker_key(hex: &str) -> Result<WorkerKey, WorkerSigError> {
    let bad = || WorkerSigError::PublicKey {
        pubkey: hex.to_owned(),
    };
    let bytes = decode_hex::<32>(hex).ok_or_else(bad)?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?;
    let batchable = !key.is_weak() && key.to_edwards().is_torsion_free();
    Ok(WorkerKey { key, batchable })
}

fn parse_signature(b64: &str) -> Result<Signature, WorkerSigError> {
    let bad = || WorkerSigError::SignatureEncoding { len: b64.len() };
    let raw = STANDARD.decode(b64).map_err(|_| bad())?;
    let bytes: [u8; 64] = raw.as_slice().try_into().map_err(|_| bad())?;
    Ok(Signature::from_bytes(&bytes))
}

fn strict(
    key: &VerifyingKey,
    msg: &[u8],
    sig: &Signature,
    version: SchemaVersion,
) -> Result<VerifiedRow, WorkerSigError> {
    key.verify_strict(msg, sig)
        .map(|()| VerifiedRow {
            worker_pubkey: key.to_bytes(),
            schema_version: version,
        })
        .map_err(|_| WorkerSigError::SignatureInvalid {
            pubkey: auspex_wire::hex_lower(key.as_bytes()),
            version: version.number(),
        })
}

/// Verifies one row's signature with `verify_strict`.
pub fn verify_row(
    result: &SignedResult<'_>,
    signature_b64: &str,
) -> Result<VerifiedRow, WorkerSigError> {
    let key = parse_worker_key(result.worker_pubkey)?;
    let sig = parse_signature(signature_b64)?;
    strict(
        &key.key,
        result.canonical_json().as_bytes(),
        &sig,
        result.schema_version,
    )
}

/// Verifies many rows' signatures; the outcome of `rows[i]` is at index `i`.
/// Batch mode checks chunks with `ed25519_dalek::verify_batch` and re-checks
/// a failing chunk row by row, so every failure is named (see the module
/// docs for the one residual difference from `verify_strict`).
pub fn verify_rows(
    rows: &[SignedRow<'_>],
    mode: VerifyMode,
) -> Vec<Result<VerifiedRow, WorkerSigError>> {
    let chunk = match mode {
        VerifyMode::Batch { chunk } => chunk.max(1),
        VerifyMode::OneByOne => 1,
    };
    let batch = matches!(mode, VerifyMode::Batch { .. });
    let mut keys: HashMap<&str, Result<WorkerKey, WorkerSigError>> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for part in rows.chunks(chunk) {
        // (index in `out`, key, message, signature, version) of batchable rows.
        let mut pending: Vec<(usize, VerifyingKey, Vec<u8>, Signature, SchemaVersion)> =
            Vec::with_capacity(part.len());
        for row in part {
            let idx = out.len();
            let key = keys
                .entry(row.result.worker_pubkey)
                .or_insert_with(|| parse_worker_key(row.result.worker_pubkey))
                .clone();
            let prepared = key.and_then(|k| Ok((k, parse_signature(row.signature_b64)?)));
            let version = row.result.schema_version;
            match prepared {
                Err(e) => out.push(Err(e)),
                Ok((k, sig)) => {
                    let msg = row.result.canonical_bytes();
                    if batch && k.batchable {
                        // Placeholder, replaced once the batch is decided.
                        out.push(Err(WorkerSigError::SignatureInvalid {
                            pubkey: auspex_wire::hex_lower(k.key.as_bytes()),
                            version: version.number(),
                        }));
                        pending.push((idx, k.key, msg, sig, version));
                    } else {
                        out.push(strict(&k.key, &msg, &sig, version));
                    }
                }
            }
        }
        if pending.is_empty() {
            continue;
        }
        let msgs: Vec<&[u8]> = pending.iter().map(|p| p.2.as_slice()).collect();
        let sigs: Vec<Signature> = pending.iter().map(|p| p.3).collect();
        let vks: Vec<VerifyingKey> = pending.iter().map(|p| p.1).collect();
        let all_ok = ed25519_dalek::verify_batch(&msgs, &sigs, &vks).is_ok();
        for (idx, key, msg, sig, version) in &pending {
            let outcome = if all_ok {
                Ok(VerifiedRow {
                    worker_pubkey: key.to_bytes(),
                    schema_version: *version,
                })
            } else {
                strict(key, msg, sig, *version)
            };
            if let Some(slot) = out.get_mut(*idx) {
                *slot = outcome;
            }
        }
    }
    out
}

/// How [`verify_consensus_rows`] treats a bundle's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowsPolicy {
    /// Rows lacking `worker_pubkey_hex` or `exit_code` fail [`FIELDS`]
    /// (v1 bundles); otherwise they are recorded as not checked (pre-EB-1).
    pub require_signed_fields: bool,
    /// How signatures are checked.
    pub mode: VerifyMode,
}

impl Default for RowsPolicy {
    fn default() -> RowsPolicy {
        RowsPolicy {
            require_signed_fields: true,
            mode: VerifyMode::default(),
        }
    }
}

/// What became of one row's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowSignature {
    /// The signature verified.
    Verified(VerifiedRow),
    /// The signature did not verify, or the signed members are malformed.
    Failed(WorkerSigError),
    /// `aged_off` or no payload: nothing to verify.
    AgedOff,
    /// The row lacks these members (`worker_pubkey_hex`, `exit_code`).
    MissingFields(Vec<&'static str>),
}

/// The checks of one consensus row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowCheck {
    /// Position in `consensus_results`.
    pub index: usize,
    /// `result_id`, else `unit_id`, else `<unknown>` (as the SDK names rows).
    pub label: String,
    /// The signature.
    pub signature: RowSignature,
    /// The semantic hash; `None` when the row has no payload or no
    /// `exit_code` to hash.
    pub semantic_hash: Option<Result<(), SemanticHashError>>,
}

/// Per-row outcomes of [`verify_consensus_rows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowsVerification {
    /// One entry per row, in input order.
    pub rows: Vec<RowCheck>,
    /// The policy the rows were checked under.
    pub policy: RowsPolicy,
}

fn row_label(row: &ConsensusRow) -> String {
    row.result_id
        .clone()
        .or_else(|| row.unit_id.clone())
        .unwrap_or_else(|| "<unknown>".to_owned())
}

/// Checks every consensus row of an evidence bundle: its worker signature
/// (v0–v3, batched) and its semantic hash. Classification follows 0.5.5:
/// `aged_off` or a null payload → aged off; a missing `worker_pubkey_hex` or
/// `exit_code` → missing fields; anything else is verified.
pub fn verify_consensus_rows(rows: &[ConsensusRow], policy: &RowsPolicy) -> RowsVerification {
    let mut checks: Vec<RowCheck> = Vec::with_capacity(rows.len());
    let mut to_verify: Vec<SignedRow<'_>> = Vec::new();
    let mut slots: Vec<usize> = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        let label = row_label(row);
        let aged = row.aged_off || row.payload.is_none();
        // Without an exit code (pre-EB-1 rows) the hash cannot be rebuilt:
        // not checked (FIELDS reports the missing member), never "passed".
        let semantic = match (&row.payload, &row.exit_code, aged) {
            (Some(payload), Some(code), false) => {
                Some(match (exit_code(Some(code)), &row.semantic_hash) {
                    (_, None) => Err(SemanticHashError::Missing),
                    (Err(e), _) => Err(SemanticHashError::Fields(e)),
                    (Ok(code), Some(attested)) => check_semantic_hash(code, payload, attested),
                })
            }
            _ => None,
        };
        let signature = if aged {
            RowSignature::AgedOff
        } else {
            let mut missing = Vec::new();
            if row.worker_pubkey_hex.as_deref().is_none_or(str::is_empty) {
                missing.push("worker_pubkey_hex");
            }
            if row.exit_code.is_none() {
                missing.push("exit_code");
            }
            if !missing.is_empty() {
                RowSignature::MissingFields(missing)
            } else {
                match (
                    SignedResult::from_consensus_row(row),
                    row.worker_signature.as_deref(),
                ) {
                    (Err(e), _) => RowSignature::Failed(e),
                    (Ok(_), None) => RowSignature::Failed(WorkerSigError::MissingField {
                        field: "worker_signature",
                    }),
                    (Ok(result), Some(signature_b64)) => {
                        to_verify.push(SignedRow {
                            result,
                            signature_b64,
                        });
                        slots.push(index);
                        // Replaced below once the signatures are checked.
                        RowSignature::AgedOff
                    }
                }
            }
        };
        checks.push(RowCheck {
            index,
            label,
            signature,
            semantic_hash: semantic,
        });
    }
    let outcomes = verify_rows(&to_verify, policy.mode);
    for (slot, outcome) in slots.into_iter().zip(outcomes) {
        if let Some(check) = checks.get_mut(slot) {
            check.signature = match outcome {
                Ok(v) => RowSignature::Verified(v),
                Err(e) => RowSignature::Failed(e),
            };
        }
    }
    RowsVerification {
        rows: checks,
        policy: *policy,
    }
}

/// At most this many rows are named in a check's reason.
const NAMED_ROWS: usize = 10;

fn name_rows<'r>(items: impl Iterator<Item = (&'r str, String)>) -> String {
    let all: Vec<(&str, String)> = items.collect();
    let mut s = all
        .iter()
        .take(NAMED_ROWS)
        .map(|(label, why)| format!("{label} ({why})"))
        .collect::<Vec<_>>()
        .join("; ");
    if all.len() > NAMED_ROWS {
        let _ = write!(s, "; and {} more", all.len() - NAMED_ROWS);
    }
    s
}

impl RowsVerification {
    /// Rows whose signature verified.
    pub fn verified(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.signature, RowSignature::Verified(_)))
            .count()
    }

    /// Labels of rows whose signature failed.
    pub fn failed(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| matches!(r.signature, RowSignature::Failed(_)))
            .map(|r| r.label.as_str())
            .collect()
    }

    /// Rows skipped because their payload aged off.
    pub fn aged_off(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.signature, RowSignature::AgedOff))
            .count()
    }

    /// Rows skipped because they lack signed fields.
    pub fn missing_fields(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.signature, RowSignature::MissingFields(_)))
            .count()
    }

    /// The named checks [`ROW`], [`FIELDS`], [`SEMANTIC_HASH`] and (when
    /// rows aged off) [`AGED_OFF`].
    pub fn report(&self) -> Report {
        let mut r = Report::new();
        let total = self.rows.len();
        let failed: Vec<(&str, String)> = self
            .rows
            .iter()
            .filter_map(|c| match &c.signature {
                RowSignature::Failed(e) => Some((c.label.as_str(), e.to_string())),
                _ => None,
            })
            .collect();
        if !failed.is_empty() {
            let n = failed.len();
            r.fail(
                ROW,
                format!(
                    "{n} of {total} rows failed: {}",
                    name_rows(failed.into_iter())
                ),
            );
        } else if self.verified() > 0 {
            r.pass(ROW);
        } else {
            r.not_checked(ROW, format!("no row could be verified ({total} rows)"));
        }

        let missing: Vec<(&str, String)> = self
            .rows
            .iter()
            .filter_map(|c| match &c.signature {
                RowSignature::MissingFields(f) => Some((c.label.as_str(), f.join(", "))),
                _ => None,
            })
            .collect();
        if missing.is_empty() {
            r.pass(FIELDS);
        } else {
            let why = format!(
                "{} rows lack signed fields: {}",
                missing.len(),
                name_rows(missing.into_iter())
            );
            if self.policy.require_signed_fields {
                r.fail(FIELDS, why);
            } else {
                r.not_checked(FIELDS, format!("{why} (tolerated: pre-EB-1 bundle)"));
            }
        }

        let mut checked = 0usize;
        let mut bad: Vec<(&str, String)> = Vec::new();
        for c in &self.rows {
            match &c.semantic_hash {
                Some(Ok(())) => checked += 1,
                Some(Err(e)) => bad.push((c.label.as_str(), e.to_string())),
                None => {}
            }
        }
        if !bad.is_empty() {
            let n = bad.len();
            r.fail(
                SEMANTIC_HASH,
                format!(
                    "{n} rows' semantic_hash does not recompute: {}",
                    name_rows(bad.into_iter())
                ),
            );
        } else if checked > 0 {
            r.pass(SEMANTIC_HASH);
        } else {
            r.not_checked(
                SEMANTIC_HASH,
                "no row carries both a payload and an exit_code to hash",
            );
        }

        let aged = self.aged_off();
        if aged > 0 {
            r.not_checked(
                AGED_OFF,
                format!(
                    "{aged} of {total} rows aged off: their signatures and semantic hashes cannot be checked"
                ),
            );
        }
        r
    }
}
