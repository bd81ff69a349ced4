//! In-toto statements (CBOR), the result-set attestation predicate, and the
//! attestation HTTP response (spec `tenant-sdk.md` §3c, §3e, §4.5;
//! `coordinator.md` §7).
//!
//! The coordinator signs a COSE_Sign1 (see `auspex-crypto`'s `cose` module)
//! whose payload is a canonical-CBOR in-toto [`Statement`]; the statement's
//! `predicate` is itself a CBOR byte string holding the canonical CBOR of the
//! predicate (a receipt, or a [`ResultSetPredicate`]). The subject digest is
//! SHA-256 over those predicate bytes; 0.5.5 never checks it, we expose
//! [`Statement::subject_digest_matches`].

use crate::json::{self, Object, Value};
use crate::receipt::cbor::{self, Cbor, CborError};
use crate::validate::{Checker, JsonPath, ViolationKind, Violations};

/// The `_type` the coordinator writes.
pub const STATEMENT_TYPE_V1: &str = "https://www.in-toto.io/Statement/v1";
/// `algorithm` of v0 result sets.
pub const ALGORITHM_V0: &str = "sha256-merkle-v0";
/// `algorithm` of v1 result sets (leaves bind `unit_payload_sha256`).
pub const ALGORITHM_V1: &str = "sha256-merkle-v1";
/// `predicateType` of v0 result-set attestations.
pub const RESULT_SET_PREDICATE_TYPE_V0: &str = "https://auspexai.network/result-set/v0";
/// `predicateType` of v1 result-set attestations.
pub const RESULT_SET_PREDICATE_TYPE_V1: &str = "https://auspexai.network/result-set/v1";

/// True when `algorithm` selects v1 leaves: exactly `sha256-merkle-v1`; any
/// other value is treated as v0 (§3c).
pub fn is_v1_algorithm(algorithm: &str) -> bool {
    algorithm == ALGORITHM_V1
}

/// The predicate type an attestation with this `algorithm` must carry.
pub fn predicate_type_for_algorithm(algorithm: &str) -> &'static str {
    if is_v1_algorithm(algorithm) {
        RESULT_SET_PREDICATE_TYPE_V1
    } else {
        RESULT_SET_PREDICATE_TYPE_V0
    }
}

/// Why a CBOR statement or predicate could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// The bytes are not one well-formed CBOR item.
    #[error("not well-formed CBOR: {0}")]
    Cbor(#[from] CborError),
    /// The top-level item (or a nested object) is not a map.
    #[error("{what} must be a CBOR map, found {found}")]
    NotAMap {
        /// Which object.
        what: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// A required member is absent.
    #[error("{what} lacks member {member:?}")]
    Missing {
        /// Which object.
        what: &'static str,
        /// The member.
        member: &'static str,
    },
    /// A member has the wrong type.
    #[error("{what}.{member} must be {expected}, found {found}")]
    WrongType {
        /// Which object.
        what: &'static str,
        /// The member.
        member: String,
        /// The required type.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// A map key occurs twice (or is not text).
    #[error("{what} has a duplicate or non-text key {key:?}")]
    BadKey {
        /// Which object.
        what: &'static str,
        /// The key, displayed.
        key: String,
    },
}

/// A text-keyed CBOR map with typed accessors that produce [`StatementError`]s.
struct Members<'a> {
    what: &'static str,
    entries: Vec<(&'a str, &'a Cbor)>,
}

impl<'a> Members<'a> {
    fn of(what: &'static str, v: &'a Cbor) -> Result<Members<'a>, StatementError> {
        let raw = v.as_map().ok_or(StatementError::NotAMap {
            what,
            found: v.type_name(),
        })?;
        let mut entries: Vec<(&str, &Cbor)> = Vec::with_capacity(raw.len().min(64));
        let mut seen = std::collections::HashSet::new();
        for (k, val) in raw {
            match k.as_text() {
                Some(s) if seen.insert(s) => entries.push((s, val)),
                _ => {
                    return Err(StatementError::BadKey {
                        what,
                        key: match k {
                            Cbor::Text(s) => s.clone(),
                            other => format!("<{}>", other.type_name()),
                        },
                    });
                }
            }
        }
        Ok(Members { what, entries })
    }

    fn get(&self, key: &str) -> Option<&'a Cbor> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    fn req(&self, key: &'static str) -> Result<&'a Cbor, StatementError> {
        self.get(key).ok_or(StatementError::Missing {
            what: self.what,
            member: key,
        })
    }

    fn wrong(&self, key: &str, expected: &'static str, v: &Cbor) -> StatementError {
        StatementError::WrongType {
            what: self.what,
            member: key.to_owned(),
            expected,
            found: v.type_name(),
        }
    }

    fn text(&self, key: &'static str) -> Result<String, StatementError> {
        let v = self.req(key)?;
        v.as_text()
            .map(str::to_owned)
            .ok_or_else(|| self.wrong(key, "a text string", v))
    }

    fn opt_text(&self, key: &str) -> Result<Option<String>, StatementError> {
        match self.get(key) {
            None | Some(Cbor::Null) => Ok(None),
            Some(Cbor::Text(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.wrong(key, "a text string", v)),
        }
    }

    fn uint(&self, key: &'static str) -> Result<u64, StatementError> {
        match self.req(key)? {
            Cbor::Unsigned(n) => Ok(*n),
            v => Err(self.wrong(key, "an unsigned integer", v)),
        }
    }

    fn rest(&self, known: &[&str]) -> Vec<(String, Cbor)> {
        self.entries
            .iter()
            .filter(|(k, _)| !known.contains(k))
            .map(|(k, v)| ((*k).to_owned(), (*v).clone()))
            .collect()
    }
}

/// One in-toto subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    /// E.g. `auspexai:receipt/<receipt_id>`.
    pub name: String,
    /// Digest algorithm → value (the coordinator writes only `sha256`).
    pub digest: Vec<(String, String)>,
}

impl Subject {
    /// The `sha256` digest, if present.
    pub fn sha256(&self) -> Option<&str> {
        self.digest
            .iter()
            .find(|(k, _)| k == "sha256")
            .map(|(_, v)| v.as_str())
    }
}

/// An in-toto Statement as the coordinator encodes it in CBOR.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// `_type` (the coordinator writes [`STATEMENT_TYPE_V1`]).
    pub statement_type: String,
    /// The subjects (the coordinator writes exactly one).
    pub subjects: Vec<Subject>,
    /// `predicateType`.
    pub predicate_type: String,
    /// The predicate: canonical CBOR bytes, embedded as a byte string.
    pub predicate: Vec<u8>,
}

impl Statement {
    /// Decodes a statement from CBOR bytes (the COSE payload). Requires
    /// `_type`, `subject` (array of `{name, digest}` maps with text values),
    /// `predicateType` and `predicate` as a **byte string**; other members are
    /// ignored; duplicate keys are refused.
    pub fn decode(bytes: &[u8]) -> Result<Statement, StatementError> {
        Statement::from_cbor(&cbor::decode(bytes)?)
    }

    /// [`Self::decode`] over an already decoded item.
    pub fn from_cbor(item: &Cbor) -> Result<Statement, StatementError> {
        let m = Members::of("statement", item)?;
        let statement_type = m.text("_type")?;
        let subj = m.req("subject")?;
        let items = subj
            .as_array()
            .ok_or_else(|| m.wrong("subject", "an array", subj))?;
        let mut subjects = Vec::with_capacity(items.len());
        for it in items {
            let s = Members::of("subject", it)?;
            let name = s.text("name")?;
            let d = Members::of("subject digest", s.req("digest")?)?;
            let mut digest = Vec::with_capacity(d.entries.len());
            for (k, v) in &d.entries {
                let v = v.as_text().ok_or_else(|| d.wrong(k, "a text string", v))?;
                digest.push(((*k).to_owned(), v.to_owned()));
            }
            subjects.push(Subject { name, digest });
        }
        let predicate_type = m.text("predicateType")?;
        let p = m.req("predicate")?;
        let predicate = p
            .as_bytes()
            .ok_or_else(|| m.wrong("predicate", "a byte string", p))?
            .to_vec();
        Ok(Statement {
            statement_type,
            subjects,
            predicate_type,
            predicate,
        })
    }

    /// Lowercase hex SHA-256 of the predicate bytes.
    pub fn predicate_sha256(&self) -> String {
        crate::sha256_hex(&self.predicate)
    }

    /// True when there is at least one subject and every subject's `sha256`
    /// digest equals SHA-256 of the predicate bytes (hex, case-insensitive).
    pub fn subject_digest_matches(&self) -> bool {
        let want = self.predicate_sha256();
        !self.subjects.is_empty()
            && self
                .subjects
                .iter()
                .all(|s| s.sha256().is_some_and(|d| d.eq_ignore_ascii_case(&want)))
    }

    /// The statement as a canonical CBOR item (for building fixtures and the
    /// coordinator side).
    pub fn to_cbor(&self) -> Cbor {
        let t = |s: &str| Cbor::Text(s.to_owned());
        Cbor::Map(vec![
            (t("_type"), t(&self.statement_type)),
            (
                t("subject"),
                Cbor::Array(
                    self.subjects
                        .iter()
                        .map(|s| {
                            Cbor::Map(vec![
                                (t("name"), t(&s.name)),
                                (
                                    t("digest"),
                                    Cbor::Map(s.digest.iter().map(|(k, v)| (t(k), t(v))).collect()),
                                ),
                            ])
                        })
                        .collect(),
                ),
            ),
            (t("predicateType"), t(&self.predicate_type)),
            (t("predicate"), Cbor::Bytes(self.predicate.clone())),
        ])
    }

    /// cbor2-canonical bytes of [`Self::to_cbor`].
    pub fn encode(&self) -> Vec<u8> {
        cbor::encode_canonical(&self.to_cbor())
    }

    /// A coordinator-style statement over `predicate` bytes: `_type`
    /// [`STATEMENT_TYPE_V1`], one subject `name` with the predicate's SHA-256.
    pub fn wrap(name: &str, predicate_type: &str, predicate: Vec<u8>) -> Statement {
        let digest = crate::sha256_hex(&predicate);
        Statement {
            statement_type: STATEMENT_TYPE_V1.to_owned(),
            subjects: vec![Subject {
                name: name.to_owned(),
                digest: vec![("sha256".to_owned(), digest)],
            }],
            predicate_type: predicate_type.to_owned(),
            predicate,
        }
    }
}

/// One unit of a result-set predicate.
#[derive(Debug, Clone, PartialEq)]
pub struct PredicateUnit {
    /// The unit id.
    pub unit_id: String,
    /// The consensus result's semantic hash.
    pub consensus_result_hash: String,
    /// The unit's receipt.
    pub receipt_id: String,
    /// v1: SHA-256 of the unit's canonical payload (`""` if unknown).
    pub unit_payload_sha256: Option<String>,
    /// `within_cell_exact` | `within_cell_tolerance` | `process_only`.
    pub integrity_basis: Option<String>,
    /// Coordinator-asserted environment snapshot, as decoded.
    pub environment: Option<Cbor>,
    /// Tolerance evidence, as decoded.
    pub tolerance: Option<Cbor>,
    /// Members not listed above, in input order.
    pub extra: Vec<(String, Cbor)>,
}

/// The result-set attestation predicate (v0 or v1).
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSetPredicate {
    /// The Merkle root (hex) over `units`.
    pub merkle_root: String,
    /// `sha256-merkle-v0` / `sha256-merkle-v1`.
    pub algorithm: String,
    /// The experiment **label**.
    pub experiment_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// Number of units.
    pub unit_count: u64,
    /// Units sorted by `unit_id`.
    pub units: Vec<PredicateUnit>,
    /// True only for checkpoint attestations (member absent otherwise).
    pub partial: bool,
    /// v1 optional: the pre-registration anchor reference.
    pub pre_registration: Option<Cbor>,
    /// v1 optional: units whose replicas disagreed.
    pub diverged_units: Option<Cbor>,
    /// v1 optional: the governance footprint.
    pub governance_footprint: Option<Cbor>,
    /// Members not listed above, in input order.
    pub extra: Vec<(String, Cbor)>,
}

const PREDICATE_KNOWN: &[&str] = &[
    "merkle_root",
    "algorithm",
    "experiment_id",
    "tenant_id",
    "unit_count",
    "units",
    "partial",
    "pre_registration",
    "diverged_units",
    "governance_footprint",
];
const UNIT_KNOWN: &[&str] = &[
    "unit_id",
    "consensus_result_hash",
    "receipt_id",
    "unit_payload_sha256",
    "integrity_basis",
    "environment",
    "tolerance",
];

impl ResultSetPredicate {
    /// Decodes the predicate from its CBOR bytes (the statement's
    /// `predicate`). The six core members are required; `partial` must be a
    /// boolean when present.
    pub fn decode(bytes: &[u8]) -> Result<ResultSetPredicate, StatementError> {
        let item = cbor::decode(bytes)?;
        let m = Members::of("predicate", &item)?;
        let units_item = m.req("units")?;
        let unit_items = units_item
            .as_array()
            .ok_or_else(|| m.wrong("units", "an array", units_item))?;
        let mut units = Vec::with_capacity(unit_items.len());
        for it in unit_items {
            let u = Members::of("predicate unit", it)?;
            units.push(PredicateUnit {
                unit_id: u.text("unit_id")?,
                consensus_result_hash: u.text("consensus_result_hash")?,
                receipt_id: u.text("receipt_id")?,
                unit_payload_sha256: u.opt_text("unit_payload_sha256")?,
                integrity_basis: u.opt_text("integrity_basis")?,
                environment: u.get("environment").cloned(),
                tolerance: u.get("tolerance").cloned(),
                extra: u.rest(UNIT_KNOWN),
            });
        }
        let partial = match m.get("partial") {
            None | Some(Cbor::Null) => false,
            Some(Cbor::Bool(b)) => *b,
            Some(v) => return Err(m.wrong("partial", "a boolean", v)),
        };
        Ok(ResultSetPredicate {
            merkle_root: m.text("merkle_root")?,
            algorithm: m.text("algorithm")?,
            experiment_id: m.text("experiment_id")?,
            tenant_id: m.text("tenant_id")?,
            unit_count: m.uint("unit_count")?,
            units,
            partial,
            pre_registration: m.get("pre_registration").cloned(),
            diverged_units: m.get("diverged_units").cloned(),
            governance_footprint: m.get("governance_footprint").cloned(),
            extra: m.rest(PREDICATE_KNOWN),
        })
    }
}

/// One unit row of the attestation response.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseUnit {
    /// The unit id.
    pub unit_id: String,
    /// The consensus result hash.
    pub consensus_result_hash: String,
    /// The receipt id.
    pub receipt_id: String,
    /// v1 input hash, when echoed.
    pub unit_payload_sha256: Option<String>,
    /// Environment snapshot, when present.
    pub environment: Option<Value>,
    /// Tolerance evidence, when present.
    pub tolerance: Option<Value>,
    /// Other members, in input order.
    pub extra: Object,
}

/// `GET /api/v0/experiments/{id}/attestation` (§4.5), read like
/// `ResultSetAttestation.from_response`: required members must be present,
/// the others take the SDK's defaults. **Unsigned**: only the COSE blob in
/// `cose_b64` is evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct AttestationResponse {
    /// `att-…`.
    pub attestation_id: String,
    /// The experiment **label**.
    pub experiment_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The claimed root.
    pub merkle_root: String,
    /// Default `sha256-merkle-v0`.
    pub algorithm: String,
    /// Default 0.
    pub unit_count: i64,
    /// Default empty.
    pub units: Vec<ResponseUnit>,
    /// Standard base64 of the COSE_Sign1.
    pub cose_b64: String,
    /// Informational only; the COSE kid is what is verified.
    pub signing_key_pubkey_hex: String,
    /// Default 0.
    pub rekor_log_index: i64,
    /// Default `""`.
    pub rekor_entry_uuid: String,
    /// Python truthiness of the member, default false (unsigned claim).
    pub partial: bool,
    /// Carried only.
    pub rekor_inclusion_proof: Option<Value>,
    /// 0.6.67-era extra, carried only.
    pub governance_footprint: Option<Value>,
    /// 0.6.67-era extra, carried only.
    pub diverged_units: Option<Value>,
    /// Members not listed above, in input order.
    pub extra: Object,
}

/// Python `bool(x)` of a JSON value.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Int(i) => i.as_str() != "0",
        Value::Float(f) => *f != 0.0,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

const RESPONSE_KNOWN: &[&str] = &[
    "attestation_id",
    "experiment_id",
    "tenant_id",
    "merkle_root",
    "algorithm",
    "unit_count",
    "units",
    "cose_b64",
    "signing_key_pubkey_hex",
    "rekor_log_index",
    "rekor_entry_uuid",
    "partial",
    "rekor_inclusion_proof",
    "governance_footprint",
    "diverged_units",
];

fn req_str(c: &mut Checker, o: &Object, path: &JsonPath, key: &str) -> Option<String> {
    match o.get(key) {
        None => {
            c.report(path.key(key), ViolationKind::Missing);
            None
        }
        Some(v) => c.string(&path.key(key), v).map(str::to_owned),
    }
}

fn opt_str(c: &mut Checker, o: &Object, path: &JsonPath, key: &str) -> Option<Option<String>> {
    match o.get(key) {
        None | Some(Value::Null) => Some(None),
        Some(v) => c.string(&path.key(key), v).map(|s| Some(s.to_owned())),
    }
}

fn opt_int(c: &mut Checker, o: &Object, path: &JsonPath, key: &str) -> Option<i64> {
    match o.get(key) {
        None | Some(Value::Null) => Some(0),
        Some(v) => c.integer(&path.key(key), v, i64::MIN, i64::MAX),
    }
}

fn non_null(o: &Object, key: &str) -> Option<Value> {
    o.get(key).filter(|v| !matches!(v, Value::Null)).cloned()
}

impl AttestationResponse {
    /// Reads the response object, reporting every problem.
    pub fn from_value(v: &Value) -> Result<AttestationResponse, Violations> {
        let mut c = Checker::new();
        let root = JsonPath::root();
        let Some(o) = v.as_object() else {
            c.report(
                root,
                ViolationKind::WrongType {
                    expected: "object",
                    found: v.type_name(),
                },
            );
            return c.into_result(None);
        };
        let attestation_id = req_str(&mut c, o, &root, "attestation_id");
        let experiment_id = req_str(&mut c, o, &root, "experiment_id");
        let tenant_id = req_str(&mut c, o, &root, "tenant_id");
        let merkle_root = req_str(&mut c, o, &root, "merkle_root");
        let algorithm = opt_str(&mut c, o, &root, "algorithm")
            .map(|a| a.unwrap_or_else(|| ALGORITHM_V0.to_owned()));
        let unit_count = opt_int(&mut c, o, &root, "unit_count");
        let units = match o.get("units") {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(v) => {
                let path = root.key("units");
                c.array(&path, v).map(|items| {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, it) in items.iter().enumerate() {
                        let up = path.index(i);
                        let Some(uo) = it.as_object() else {
                            c.report(
                                up,
                                ViolationKind::WrongType {
                                    expected: "object",
                                    found: it.type_name(),
                                },
                            );
                            continue;
                        };
                        let unit_id = req_str(&mut c, uo, &up, "unit_id");
                        let crh = req_str(&mut c, uo, &up, "consensus_result_hash");
                        let rid = req_str(&mut c, uo, &up, "receipt_id");
                        let ups = opt_str(&mut c, uo, &up, "unit_payload_sha256");
                        if let (Some(u), Some(h), Some(r), Some(p)) = (unit_id, crh, rid, ups) {
                            out.push(ResponseUnit {
                                unit_id: u,
                                consensus_result_hash: h,
                                receipt_id: r,
                                unit_payload_sha256: p,
                                environment: non_null(uo, "environment"),
                                tolerance: non_null(uo, "tolerance"),
                                extra: uo
                                    .iter()
                                    .filter(|(k, _)| !UNIT_KNOWN.contains(&k.as_str()))
                                    .map(|(k, v)| (k.clone(), v.clone()))
                                    .collect(),
                            });
                        }
                    }
                    out
                })
            }
        };
        let cose_b64 = req_str(&mut c, o, &root, "cose_b64");
        let signing_key = req_str(&mut c, o, &root, "signing_key_pubkey_hex");
        let rekor_log_index = opt_int(&mut c, o, &root, "rekor_log_index");
        let rekor_entry_uuid =
            opt_str(&mut c, o, &root, "rekor_entry_uuid").map(Option::unwrap_or_default);
        let partial = o.get("partial").is_some_and(truthy);
        let resp = match (
            attestation_id,
            experiment_id,
            tenant_id,
            merkle_root,
            algorithm,
            unit_count,
            units,
            cose_b64,
            signing_key,
            rekor_log_index,
            rekor_entry_uuid,
        ) {
            (
                Some(attestation_id),
                Some(experiment_id),
                Some(tenant_id),
                Some(merkle_root),
                Some(algorithm),
                Some(unit_count),
                Some(units),
                Some(cose_b64),
                Some(signing_key_pubkey_hex),
                Some(rekor_log_index),
                Some(rekor_entry_uuid),
            ) if c.is_clean() => Some(AttestationResponse {
                attestation_id,
                experiment_id,
                tenant_id,
                merkle_root,
                algorithm,
                unit_count,
                units,
                cose_b64,
                signing_key_pubkey_hex,
                rekor_log_index,
                rekor_entry_uuid,
                partial,
                rekor_inclusion_proof: non_null(o, "rekor_inclusion_proof"),
                governance_footprint: non_null(o, "governance_footprint"),
                diverged_units: non_null(o, "diverged_units"),
                extra: o
                    .iter()
                    .filter(|(k, _)| !RESPONSE_KNOWN.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            }),
            _ => None,
        };
        c.into_result(resp)
    }

    /// Parses and reads the response body.
    pub fn parse(bytes: &[u8]) -> Result<AttestationResponse, crate::workunit::DocumentError> {
        Ok(AttestationResponse::from_value(&json::parse(bytes)?)?)
    }

    /// True when [`Self::algorithm`] selects v1 leaves.
    pub fn is_v1(&self) -> bool {
        is_v1_algorithm(&self.algorithm)
    }

    /// The predicate type the signed statement must carry for this
    /// `algorithm`.
    pub fn expected_predicate_type(&self) -> &'static str {
        predicate_type_for_algorithm(&self.algorithm)
    }
}
