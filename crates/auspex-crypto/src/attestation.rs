//! Result-set attestation verification (spec `tenant-sdk.md` §3c, §3e, §4.5,
//! §7.3, with the stricter rules of §11.2; `coordinator.md` §7).
//!
//! An attestation is a COSE_Sign1 by the coordinator over an in-toto
//! Statement whose predicate (a CBOR byte string) lists the attested units
//! and their Merkle root. What a server *serves* next to it (the JSON
//! response's `merkle_root`, `partial`, `units`, …; the evidence bundle's
//! attestation block) is unsigned: it is only accepted when it equals the
//! signed predicate.
//!
//! [`verify_attestation`] makes these checks, in this order; a check whose
//! prerequisite did not pass is recorded as not checked (`needs …`):
//!
//! | check | what it stops |
//! |---|---|
//! | [`COSE_DECODE`] | `cose_b64` is canonical base64 of a well-formed COSE_Sign1 (tag 18 optional) |
//! | [`COSE_HEADER`] | protected `alg` is EdDSA (−8) and the kid is 64 lowercase hex characters of a valid key (0.5.5 checks neither, §11.2 #17) |
//! | [`COSE_SIGNATURE`] | Ed25519 (`verify_strict`) over the Sig_structure built from the received protected bytes: any edit of the statement |
//! | [`SIGNER_PINNED`] | the kid is an authorized coordinator key (only with a list; without one the signature proves self-consistency only) |
//! | [`STATEMENT`] | the payload is an in-toto statement with the predicate embedded as a byte string |
//! | [`STATEMENT_TYPE`] | `_type` is `https://www.in-toto.io/Statement/v1` |
//! | [`SUBJECT_DIGEST`] | exactly one subject, whose `sha256` is SHA-256 of the predicate bytes (0.5.5 never checks it) |
//! | [`SUBJECT_NAME`] | the subject is `auspexai:result-set/<attestation_id>`, naming the served attestation |
//! | [`PREDICATE`] | the predicate decodes as a result-set predicate |
//! | [`PREDICATE_TYPE`] | `predicateType` is `…/result-set/v0` or `/v1` and matches the predicate's `algorithm` (v1 type iff `sha256-merkle-v1`; unknown algorithms are refused, not read as v0) |
//! | [`UNITS_SORTED`] | the units are strictly ascending by `unit_id` (sorted, no duplicates). The tree duplicates the last node of odd levels, so `[a, b, c]` and `[a, b, c, c]` share a root (the CVE-2012-2459 shape): only uniqueness tells them apart |
//! | [`UNIT_COUNT`] | `unit_count` equals the number of units |
//! | [`MERKLE_ROOT`] | the root recomputed from the **signed** units equals the signed `merkle_root` |
//! | [`SERVED_FIELDS`] | served `merkle_root`, `algorithm`, `experiment_id`, `tenant_id`, `unit_count`, `units`, `signing_key_pubkey_hex` equal the signed ones (0.5.5 recomputes the root from the *served* units) |
//! | [`PARTIAL_BOUND`] | the served `partial` equals the signed one (AUD-35, §11.2 #9: 0.5.5 trusts the unsigned flag) |
//! | [`PARTIAL_EXPECTED`] | the attestation is (not) a partial checkpoint, as the caller requires (a custody bundle requires a final one, §11.2 #15) |
//!
//! Rekor anchoring is not part of this module (see `tlog`); the hash the log
//! commits to is [`VerifiedAttestation::cose_sha256`].

use std::collections::BTreeMap;

use auspex_wire::attestation::{
    ALGORITHM_V0, ALGORITHM_V1, AttestationResponse, RESULT_SET_PREDICATE_TYPE_V0,
    RESULT_SET_PREDICATE_TYPE_V1, ResultSetPredicate, STATEMENT_TYPE_V1, Statement, StatementError,
};
use auspex_wire::bundle::BundleAttestation;
use auspex_wire::json::Value;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::cose::{CoseError, CoseSign1};
use crate::merkle::{self, Algorithm, UnitLeaf};
use crate::report::{CheckId, Report, Verdict};

/// `cose_b64` decodes to a well-formed COSE_Sign1.
pub const COSE_DECODE: CheckId = CheckId("attestation.cose_decode");
/// `alg` is EdDSA and the kid names a valid key as 64 lowercase hex.
pub const COSE_HEADER: CheckId = CheckId("attestation.cose_header");
/// The COSE signature verifies under the kid.
pub const COSE_SIGNATURE: CheckId = CheckId("attestation.cose_signature");
/// The signer is an authorized coordinator key.
pub const SIGNER_PINNED: CheckId = CheckId("attestation.signer_pinned");
/// The payload is an in-toto statement.
pub const STATEMENT: CheckId = CheckId("attestation.statement");
/// `_type` is in-toto Statement v1.
pub const STATEMENT_TYPE: CheckId = CheckId("attestation.statement_type");
/// The subject digest is SHA-256 of the predicate bytes.
pub const SUBJECT_DIGEST: CheckId = CheckId("attestation.subject_digest");
/// The subject names this attestation.
pub const SUBJECT_NAME: CheckId = CheckId("attestation.subject_name");
/// The predicate decodes.
pub const PREDICATE: CheckId = CheckId("attestation.predicate");
/// `predicateType` is allowed and consistent with `algorithm`.
pub const PREDICATE_TYPE: CheckId = CheckId("attestation.predicate_type");
/// Units are strictly ascending by `unit_id`.
pub const UNITS_SORTED: CheckId = CheckId("attestation.units_sorted");
/// `unit_count` equals the number of units.
pub const UNIT_COUNT: CheckId = CheckId("attestation.unit_count");
/// The Merkle root recomputes from the signed units.
pub const MERKLE_ROOT: CheckId = CheckId("attestation.merkle_root");
/// Served fields equal the signed predicate's.
pub const SERVED_FIELDS: CheckId = CheckId("attestation.served_fields");
/// The served `partial` equals the signed one.
pub const PARTIAL_BOUND: CheckId = CheckId("attestation.partial_bound");
/// `partial` is what the caller requires.
pub const PARTIAL_EXPECTED: CheckId = CheckId("attestation.partial_expected");
/// The units rebuilt from delivered results give the signed root.
pub const RESULTS_MATCH: CheckId = CheckId("attestation.results_match");

/// The subject-name prefix of result-set attestations.
pub const SUBJECT_PREFIX: &str = "auspexai:result-set/";

/// Why one attestation check failed (rendered into the report's reasons).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationError {
    /// A value a prerequisite check produces is unavailable (not reachable:
    /// a check runs only after its prerequisites passed; fails closed).
    #[error("a prerequisite of this check produced no value")]
    Prerequisite,
    /// The input has no COSE blob.
    #[error("the attestation carries no cose_b64")]
    MissingCose,
    /// `cose_b64` is not canonical standard base64.
    #[error("cose_b64 is not standard base64 ({len} characters)")]
    Base64 {
        /// Length of the text.
        len: usize,
    },
    /// COSE decoding, header or signature failure.
    #[error(transparent)]
    Cose(#[from] CoseError),
    /// The signer is not authorized.
    #[error("attestation signer {signer} is not an authorized coordinator key")]
    UnauthorizedSigner {
        /// The signer, lowercase hex.
        signer: String,
    },
    /// The payload or the predicate could not be decoded.
    #[error(transparent)]
    Decode(#[from] StatementError),
    /// `_type` is not in-toto Statement v1.
    #[error("statement _type is {found:?}, expected {STATEMENT_TYPE_V1:?}")]
    StatementType {
        /// The `_type` found.
        found: String,
    },
    /// Not exactly one subject.
    #[error("the statement has {count} subjects, expected exactly 1")]
    SubjectCount {
        /// The number of subjects.
        count: usize,
    },
    /// The subject has no `sha256` digest.
    #[error("the subject has no sha256 digest")]
    SubjectDigestMissing,
    /// The subject digest is not SHA-256 of the predicate bytes.
    #[error("subject digest {found} is not SHA-256 of the predicate ({expected})")]
    SubjectDigest {
        /// SHA-256 of the predicate bytes.
        expected: String,
        /// The subject's digest.
        found: String,
    },
    /// The subject name is not `auspexai:result-set/<id>`.
    #[error("subject name {found:?} is not {SUBJECT_PREFIX}<attestation_id>")]
    SubjectName {
        /// The name found.
        found: String,
    },
    /// The subject names another attestation than the one served.
    #[error("the signed subject names {signed}, but attestation {served} was served")]
    SubjectNameMismatch {
        /// The id in the subject name.
        signed: String,
        /// The served `attestation_id`.
        served: String,
    },
    /// `predicateType` is not a result-set type.
    #[error(
        "predicateType {found:?} is not {RESULT_SET_PREDICATE_TYPE_V0:?} or {RESULT_SET_PREDICATE_TYPE_V1:?}"
    )]
    PredicateType {
        /// The type found.
        found: String,
    },
    /// The predicate's `algorithm` is not a known one.
    #[error("predicate algorithm {algorithm:?} is not {ALGORITHM_V0:?} or {ALGORITHM_V1:?}")]
    UnknownAlgorithm {
        /// The algorithm found.
        algorithm: String,
    },
    /// `predicateType` and `algorithm` disagree.
    #[error("predicateType {predicate_type:?} does not match algorithm {algorithm:?}")]
    AlgorithmMismatch {
        /// The statement's type.
        predicate_type: String,
        /// The predicate's algorithm.
        algorithm: String,
    },
    /// Two units are out of order.
    #[error("units are not sorted by unit_id: {previous:?} before {unit_id:?} (position {index})")]
    UnitsNotSorted {
        /// Position of the later unit.
        index: usize,
        /// The earlier unit's id.
        previous: String,
        /// The later unit's id.
        unit_id: String,
    },
    /// A unit id occurs twice.
    #[error("unit {unit_id:?} is attested twice")]
    DuplicateUnit {
        /// The repeated id.
        unit_id: String,
    },
    /// `unit_count` disagrees with the units.
    #[error("unit_count is {claimed}, but the predicate lists {actual} units")]
    UnitCount {
        /// The signed `unit_count`.
        claimed: u64,
        /// The number of units.
        actual: usize,
    },
    /// The signed root does not recompute.
    #[error("signed merkle_root {signed} does not recompute from the signed units ({recomputed})")]
    MerkleRoot {
        /// The signed root.
        signed: String,
        /// The recomputed root.
        recomputed: String,
    },
    /// Served fields differ from the signed ones.
    #[error("served fields differ from the signed predicate: {}", .0.join("; "))]
    Served(Vec<String>),
    /// The served `partial` differs from the signed one.
    #[error("served partial={served}, but the signed predicate says partial={signed}")]
    PartialNotBound {
        /// The served flag.
        served: bool,
        /// The signed flag.
        signed: bool,
    },
    /// The attestation is (not) partial against the caller's requirement.
    #[error("attestation is {}, but a {} attestation is required", if *.signed { "a partial checkpoint" } else { "final" }, if *.expected { "partial checkpoint" } else { "final" })]
    PartialUnexpected {
        /// What the caller required.
        expected: bool,
        /// The signed flag.
        signed: bool,
    },
    /// Results do not reproduce the attested root.
    #[error("the delivered results give root {recomputed}, the attestation signs {signed}{detail}")]
    ResultsMismatch {
        /// The signed root.
        signed: String,
        /// The root recomputed from the results.
        recomputed: String,
        /// Which units differ, pre-rendered (`: missing …; extra …`).
        detail: String,
    },
}

/// What to verify an attestation against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttestationPolicy {
    /// Authorized coordinator keys. `None`: [`SIGNER_PINNED`] is not checked
    /// (nor required); `Some(list)`: the signer must be in the list.
    pub authorized_signers: Option<Vec<[u8; 32]>>,
    /// `Some(false)`: require a final attestation; `Some(true)`: require a
    /// partial checkpoint; `None`: either ([`PARTIAL_EXPECTED`] not checked).
    pub expect_partial: Option<bool>,
}

/// What is being verified.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttestationInput<'a> {
    /// `GET …/attestation` (served: everything of §4.5).
    Response(&'a AttestationResponse),
    /// An evidence bundle's `attestation` block (served: `attestation_id`,
    /// `merkle_root`, `algorithm`, `signing_key_pubkey_hex`; no units, no
    /// `partial`).
    Bundle(&'a BundleAttestation),
    /// A bare COSE_Sign1 (nothing served).
    Cose(&'a [u8]),
}

/// An attestation every required check passed for: only this module
/// constructs it, so holding one means it verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedAttestation {
    signer: [u8; 32],
    attestation_id: String,
    algorithm: Algorithm,
    predicate: ResultSetPredicate,
    cose: Vec<u8>,
}

impl VerifiedAttestation {
    /// The coordinator key that signed it.
    pub fn signer(&self) -> &[u8; 32] {
        &self.signer
    }

    /// The attestation id named by the signed subject.
    pub fn attestation_id(&self) -> &str {
        &self.attestation_id
    }

    /// The leaf layout.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The signed Merkle root (hex).
    pub fn merkle_root(&self) -> &str {
        &self.predicate.merkle_root
    }

    /// True for a partial checkpoint attestation (signed flag).
    pub fn partial(&self) -> bool {
        self.predicate.partial
    }

    /// The signed predicate (units sorted, unique, counted, root checked).
    pub fn predicate(&self) -> &ResultSetPredicate {
        &self.predicate
    }

    /// The signed units as Merkle leaves.
    pub fn unit_leaves(&self) -> Vec<UnitLeaf<'_>> {
        self.predicate
            .units
            .iter()
            .map(|u| UnitLeaf {
                unit_id: &u.unit_id,
                consensus_result_hash: &u.consensus_result_hash,
                receipt_id: &u.receipt_id,
                unit_payload_sha256: u.unit_payload_sha256.as_deref(),
            })
            .collect()
    }

    /// The COSE_Sign1 bytes as received.
    pub fn cose_bytes(&self) -> &[u8] {
        &self.cose
    }

    /// SHA-256 (hex) of the COSE bytes: what a Rekor entry must commit to.
    pub fn cose_sha256(&self) -> String {
        auspex_wire::sha256_hex(&self.cose)
    }

    /// `verify_against_results`: the root over units rebuilt from delivered
    /// results (any order) must equal the signed root ([`RESULTS_MATCH`]). On
    /// a mismatch the reason names missing, extra and changed units.
    pub fn verify_against_results(&self, units: &[UnitLeaf<'_>]) -> Report {
        let mut r = Report::new();
        let recomputed = merkle::result_set_root_hex(units, self.algorithm);
        let mut ids: Vec<&str> = units.iter().map(|u| u.unit_id).collect();
        ids.sort_unstable();
        let unique = ids.windows(2).all(|w| w[0] != w[1]);
        // A repeated last unit leaves the duplicate-last root unchanged, so
        // the root alone cannot refuse it.
        if recomputed == self.predicate.merkle_root && unique {
            r.pass(RESULTS_MATCH);
            return r;
        }
        let signed: BTreeMap<&str, String> = self
            .unit_leaves()
            .iter()
            .map(|u| (u.unit_id, u.canonical_json(self.algorithm)))
            .collect();
        let given: BTreeMap<&str, String> = units
            .iter()
            .map(|u| (u.unit_id, u.canonical_json(self.algorithm)))
            .collect();
        let list = |ids: Vec<&str>| ids.join(", ");
        let missing: Vec<&str> = signed
            .keys()
            .filter(|k| !given.contains_key(*k))
            .copied()
            .collect();
        let extra: Vec<&str> = given
            .keys()
            .filter(|k| !signed.contains_key(*k))
            .copied()
            .collect();
        let changed: Vec<&str> = signed
            .iter()
            .filter(|(k, v)| given.get(*k).is_some_and(|g| g != *v))
            .map(|(k, _)| *k)
            .collect();
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing {}", list(missing)));
        }
        if !extra.is_empty() {
            parts.push(format!("extra {}", list(extra)));
        }
        if !changed.is_empty() {
            parts.push(format!("changed {}", list(changed)));
        }
        if !unique {
            parts.push(format!("{} duplicate unit rows", units.len() - given.len()));
        }
        let detail = if parts.is_empty() {
            String::new()
        } else {
            format!(": {}", parts.join("; "))
        };
        r.fail(
            RESULTS_MATCH,
            AttestationError::ResultsMismatch {
                signed: self.predicate.merkle_root.clone(),
                recomputed,
                detail,
            }
            .to_string(),
        );
        r
    }
}

/// A unit rebuilt from a delivered result row (owned; see
/// [`ResultUnit::from_row`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultUnit {
    /// `unit_id`.
    pub unit_id: String,
    /// The row's `semantic_hash`, else its `consensus_result_hash`.
    pub consensus_result_hash: String,
    /// `receipt_id`.
    pub receipt_id: String,
    /// The row's `unit_payload_sha256`, else the caller's map entry.
    pub unit_payload_sha256: Option<String>,
}

impl ResultUnit {
    /// Builds the unit from a result row as the SDK's
    /// `verify_against_results` does: `unit_id`, `semantic_hash` or
    /// `consensus_result_hash`, `receipt_id`, and `unit_payload_sha256` from
    /// the row or `payload_hashes`. `None` when a member is missing or not a
    /// string (such a row cannot be attested).
    pub fn from_row(
        row: &Value,
        payload_hashes: Option<&BTreeMap<String, String>>,
    ) -> Option<ResultUnit> {
        let text = |k: &str| row.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let unit_id = text("unit_id")?.to_owned();
        let hash = text("semantic_hash").or_else(|| text("consensus_result_hash"))?;
        let unit_payload_sha256 = text("unit_payload_sha256")
            .map(str::to_owned)
            .or_else(|| payload_hashes.and_then(|m| m.get(&unit_id).cloned()));
        Some(ResultUnit {
            consensus_result_hash: hash.to_owned(),
            receipt_id: text("receipt_id")?.to_owned(),
            unit_id,
            unit_payload_sha256,
        })
    }

    /// The borrowed leaf.
    pub fn as_leaf(&self) -> UnitLeaf<'_> {
        UnitLeaf {
            unit_id: &self.unit_id,
            consensus_result_hash: &self.consensus_result_hash,
            receipt_id: &self.receipt_id,
            unit_payload_sha256: self.unit_payload_sha256.as_deref(),
        }
    }
}

/// The outcome of [`verify_attestation`]: the report, and the verified
/// attestation when every required check passed.
#[derive(Debug, Clone, PartialEq)]
pub struct AttestationVerification {
    /// The named checks.
    pub report: Report,
    required: Vec<CheckId>,
    verified: Option<VerifiedAttestation>,
}

impl AttestationVerification {
    /// The checks this verification required (those not required were not
    /// requested or do not apply to the input, and say so).
    pub fn required(&self) -> &[CheckId] {
        &self.required
    }

    /// The verdict over [`Self::required`].
    pub fn verdict(&self) -> Verdict {
        self.report.verdict(&self.required)
    }

    /// The verified attestation, when the verdict is verified.
    pub fn verified(&self) -> Option<&VerifiedAttestation> {
        self.verified.as_ref()
    }

    /// The verified attestation, or the report explaining why not.
    pub fn into_result(self) -> Result<VerifiedAttestation, Report> {
        match self.verified {
            Some(v) => Ok(v),
            None => Err(self.report),
        }
    }
}

/// What the input serves next to the COSE blob (unsigned claims).
struct Served<'a> {
    attestation_id: Option<&'a str>,
    merkle_root: Option<&'a str>,
    algorithm: Option<&'a str>,
    experiment_id: Option<&'a str>,
    tenant_id: Option<&'a str>,
    unit_count: Option<i64>,
    units: Option<&'a [auspex_wire::attestation::ResponseUnit]>,
    signing_key: Option<&'a str>,
    partial: Option<bool>,
}

fn served_of<'a>(input: &AttestationInput<'a>) -> Option<Served<'a>> {
    match *input {
        AttestationInput::Response(r) => Some(Served {
            attestation_id: Some(&r.attestation_id),
            merkle_root: Some(&r.merkle_root),
            algorithm: Some(&r.algorithm),
            experiment_id: Some(&r.experiment_id),
            tenant_id: Some(&r.tenant_id),
            unit_count: Some(r.unit_count),
            units: Some(&r.units),
            signing_key: Some(&r.signing_key_pubkey_hex),
            partial: Some(r.partial),
        }),
        AttestationInput::Bundle(b) => Some(Served {
            attestation_id: b.attestation_id.as_deref(),
            merkle_root: b.merkle_root.as_deref(),
            algorithm: b.algorithm.as_deref(),
            experiment_id: None,
            tenant_id: None,
            unit_count: None,
            units: None,
            signing_key: b.signing_key_pubkey_hex.as_deref(),
            partial: None,
        }),
        AttestationInput::Cose(_) => None,
    }
}

fn cose_bytes(input: &AttestationInput<'_>) -> Result<Vec<u8>, AttestationError> {
    let b64 = match *input {
        AttestationInput::Cose(bytes) => return Ok(bytes.to_vec()),
        AttestationInput::Response(r) => r.cose_b64.as_str(),
        AttestationInput::Bundle(b) => {
            b.cose_b64.as_deref().ok_or(AttestationError::MissingCose)?
        }
    };
    STANDARD
        .decode(b64)
        .map_err(|_| AttestationError::Base64 { len: b64.len() })
}

fn header_error(e: &CoseError) -> bool {
    matches!(
        e,
        CoseError::MissingAlgorithm
            | CoseError::UnsupportedAlgorithm { .. }
            | CoseError::MissingKid
            | CoseError::InvalidKid { .. }
            | CoseError::InvalidPublicKey
    )
}

/// Records `result` under `id` after checking `deps`; returns the value when
/// the check passed.
fn step<T>(
    r: &mut Report,
    id: CheckId,
    deps: &[CheckId],
    f: impl FnOnce() -> Result<T, AttestationError>,
) -> Option<T> {
    if let Some(why) = r.unmet(deps) {
        r.not_checked(id, why);
        return None;
    }
    match f() {
        Ok(v) => {
            r.pass(id);
            Some(v)
        }
        Err(e) => {
            r.fail(id, e.to_string());
            None
        }
    }
}

fn check_sorted(p: &ResultSetPredicate) -> Result<(), AttestationError> {
    for (i, pair) in p.units.windows(2).enumerate() {
        let (a, b) = (&pair[0].unit_id, &pair[1].unit_id);
        match a.cmp(b) {
            std::cmp::Ordering::Less => {}
            std::cmp::Ordering::Equal => {
                return Err(AttestationError::DuplicateUnit { unit_id: b.clone() });
            }
            std::cmp::Ordering::Greater => {
                return Err(AttestationError::UnitsNotSorted {
                    index: i + 1,
                    previous: a.clone(),
                    unit_id: b.clone(),
                });
            }
        }
    }
    Ok(())
}

fn algorithm_of(
    predicate_type: &str,
    p: &ResultSetPredicate,
) -> Result<Algorithm, AttestationError> {
    let by_type = match predicate_type {
        RESULT_SET_PREDICATE_TYPE_V0 => Algorithm::V0,
        RESULT_SET_PREDICATE_TYPE_V1 => Algorithm::V1,
        other => {
            return Err(AttestationError::PredicateType {
                found: other.to_owned(),
            });
        }
    };
    let by_alg = match p.algorithm.as_str() {
        ALGORITHM_V0 => Algorithm::V0,
        ALGORITHM_V1 => Algorithm::V1,
        other => {
            return Err(AttestationError::UnknownAlgorithm {
                algorithm: other.to_owned(),
            });
        }
    };
    if by_type == by_alg {
        Ok(by_alg)
    } else {
        Err(AttestationError::AlgorithmMismatch {
            predicate_type: predicate_type.to_owned(),
            algorithm: p.algorithm.clone(),
        })
    }
}

fn compare_served(
    s: &Served<'_>,
    p: &ResultSetPredicate,
    signer: &[u8; 32],
) -> Result<(), AttestationError> {
    let mut diffs: Vec<String> = Vec::new();
    let mut text = |field: &str, served: Option<&str>, signed: &str, required: bool| match served {
        Some(v) if v == signed => {}
        Some(v) => diffs.push(format!("{field} served {v:?}, signed {signed:?}")),
        None if required => diffs.push(format!("{field} is not served")),
        None => {}
    };
    text("merkle_root", s.merkle_root, &p.merkle_root, true);
    text("algorithm", s.algorithm, &p.algorithm, false);
    text("experiment_id", s.experiment_id, &p.experiment_id, false);
    text("tenant_id", s.tenant_id, &p.tenant_id, false);
    if let Some(n) = s.unit_count
        && u64::try_from(n).ok() != Some(p.unit_count)
    {
        diffs.push(format!("unit_count served {n}, signed {}", p.unit_count));
    }
    if let Some(key) = s.signing_key {
        let kid = auspex_wire::hex_lower(signer);
        if !key.eq_ignore_ascii_case(&kid) {
            diffs.push(format!(
                "signing_key_pubkey_hex served {key:?}, signed by {kid}"
            ));
        }
    }
    if let Some(units) = s.units {
        let mut served: BTreeMap<&str, &auspex_wire::attestation::ResponseUnit> = BTreeMap::new();
        for u in units {
            if served.insert(u.unit_id.as_str(), u).is_some() {
                diffs.push(format!("units: {:?} is served twice", u.unit_id));
            }
        }
        let mut missing = Vec::new();
        let mut changed = Vec::new();
        for su in &p.units {
            match served.remove(su.unit_id.as_str()) {
                None => missing.push(su.unit_id.as_str()),
                Some(u) => {
                    let payload_differs = u
                        .unit_payload_sha256
                        .as_deref()
                        .is_some_and(|h| h != su.unit_payload_sha256.as_deref().unwrap_or(""));
                    if u.consensus_result_hash != su.consensus_result_hash
                        || u.receipt_id != su.receipt_id
                        || payload_differs
                    {
                        changed.push(su.unit_id.as_str());
                    }
                }
            }
        }
        if !missing.is_empty() {
            diffs.push(format!("units not served: {}", missing.join(", ")));
        }
        if !served.is_empty() {
            let extra: Vec<&str> = served.keys().copied().collect();
            diffs.push(format!("units served but not signed: {}", extra.join(", ")));
        }
        if !changed.is_empty() {
            diffs.push(format!("units served differently: {}", changed.join(", ")));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(AttestationError::Served(diffs))
    }
}

/// Verifies a result-set attestation; see the module docs for the checks.
/// Never panics and never returns early: every check appears in the report,
/// passed, failed or not checked with the reason.
pub fn verify_attestation(
    input: AttestationInput<'_>,
    policy: &AttestationPolicy,
) -> AttestationVerification {
    let mut r = Report::new();
    let served = served_of(&input);
    let mut required = vec![
        COSE_DECODE,
        COSE_HEADER,
        COSE_SIGNATURE,
        STATEMENT,
        STATEMENT_TYPE,
        SUBJECT_DIGEST,
        SUBJECT_NAME,
        PREDICATE,
        PREDICATE_TYPE,
        UNITS_SORTED,
        UNIT_COUNT,
        MERKLE_ROOT,
    ];

    // 1–3: COSE.
    let decoded = step(&mut r, COSE_DECODE, &[], || {
        let bytes = cose_bytes(&input)?;
        let cose = CoseSign1::decode(&bytes)?;
        Ok((bytes, cose))
    });
    // One verification; its error says whether the header or the signature
    // is at fault.
    let verification = decoded.as_ref().map(|(_, cose)| cose.verify(None));
    let header = step(&mut r, COSE_HEADER, &[COSE_DECODE], || {
        match (&decoded, &verification) {
            (_, Some(Err(e))) if header_error(e) => Err(e.clone().into()),
            // Header fine; the signature is the next check's business.
            (Some((_, cose)), Some(_)) => Ok(cose.kid_public_key()?),
            _ => Err(AttestationError::Prerequisite),
        }
    });
    let signer = step(
        &mut r,
        COSE_SIGNATURE,
        &[COSE_HEADER],
        || match verification.clone() {
            Some(result) => Ok(result?.public_key),
            None => Err(AttestationError::Prerequisite),
        },
    );

    // 4: pinning.
    match &policy.authorized_signers {
        None => r.not_checked(
            SIGNER_PINNED,
            "no authorized signer list given: the signature only proves consistency with the key \
             the attestation names",
        ),
        Some(list) => {
            required.push(SIGNER_PINNED);
            step(&mut r, SIGNER_PINNED, &[COSE_SIGNATURE], || match signer {
                Some(key) if list.contains(&key) => Ok(()),
                _ => Err(AttestationError::UnauthorizedSigner {
                    signer: header
                        .map(|k| auspex_wire::hex_lower(&k))
                        .unwrap_or_default(),
                }),
            });
        }
    }

    // 5–8: the statement.
    let statement = step(&mut r, STATEMENT, &[COSE_SIGNATURE], || {
        let Some((_, cose)) = &decoded else {
            return Err(AttestationError::Prerequisite);
        };
        Ok(Statement::decode(cose.payload())?)
    });
    step(&mut r, STATEMENT_TYPE, &[STATEMENT], || match &statement {
        Some(st) if st.statement_type == STATEMENT_TYPE_V1 => Ok(()),
        Some(st) => Err(AttestationError::StatementType {
            found: st.statement_type.clone(),
        }),
        None => Err(AttestationError::Prerequisite),
    });
    let subject = step(&mut r, SUBJECT_DIGEST, &[STATEMENT], || {
        let Some(st) = &statement else {
            return Err(AttestationError::Prerequisite);
        };
        let [subject] = st.subjects.as_slice() else {
            return Err(AttestationError::SubjectCount {
                count: st.subjects.len(),
            });
        };
        let found = subject
            .sha256()
            .ok_or(AttestationError::SubjectDigestMissing)?;
        let expected = st.predicate_sha256();
        if found.len() == 64 && found.eq_ignore_ascii_case(&expected) {
            Ok(subject.name.clone())
        } else {
            Err(AttestationError::SubjectDigest {
                expected,
                found: found.to_owned(),
            })
        }
    });
    let attestation_id = step(&mut r, SUBJECT_NAME, &[SUBJECT_DIGEST], || {
        let name = subject.clone().unwrap_or_default();
        let id = name
            .strip_prefix(SUBJECT_PREFIX)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| AttestationError::SubjectName {
                found: name.clone(),
            })?;
        match served.as_ref().map(|s| s.attestation_id) {
            Some(Some(served_id)) if served_id != id => {
                Err(AttestationError::SubjectNameMismatch {
                    signed: id.to_owned(),
                    served: served_id.to_owned(),
                })
            }
            Some(None) => Err(AttestationError::Served(vec![
                "attestation_id is not served".to_owned(),
            ])),
            _ => Ok(id.to_owned()),
        }
    });

    // 9–13: the predicate.
    let predicate = step(&mut r, PREDICATE, &[STATEMENT], || {
        let Some(st) = &statement else {
            return Err(AttestationError::Prerequisite);
        };
        Ok(ResultSetPredicate::decode(&st.predicate)?)
    });
    let algorithm = match (&statement, &predicate) {
        // An unknown type fails even when the predicate does not decode.
        (Some(st), None)
            if st.predicate_type != RESULT_SET_PREDICATE_TYPE_V0
                && st.predicate_type != RESULT_SET_PREDICATE_TYPE_V1 =>
        {
            r.fail(
                PREDICATE_TYPE,
                AttestationError::PredicateType {
                    found: st.predicate_type.clone(),
                }
                .to_string(),
            );
            None
        }
        _ => step(&mut r, PREDICATE_TYPE, &[STATEMENT, PREDICATE], || {
            match (&statement, &predicate) {
                (Some(st), Some(p)) => algorithm_of(&st.predicate_type, p),
                _ => Err(AttestationError::Prerequisite),
            }
        }),
    };
    step(&mut r, UNITS_SORTED, &[PREDICATE], || match &predicate {
        Some(p) => check_sorted(p),
        None => Err(AttestationError::Prerequisite),
    });
    step(&mut r, UNIT_COUNT, &[PREDICATE], || match &predicate {
        Some(p) if usize::try_from(p.unit_count).ok() == Some(p.units.len()) => Ok(()),
        Some(p) => Err(AttestationError::UnitCount {
            claimed: p.unit_count,
            actual: p.units.len(),
        }),
        None => Err(AttestationError::Prerequisite),
    });
    step(&mut r, MERKLE_ROOT, &[PREDICATE, PREDICATE_TYPE], || {
        let (Some(p), Some(alg)) = (&predicate, algorithm) else {
            return Err(AttestationError::Prerequisite);
        };
        let leaves: Vec<UnitLeaf<'_>> = p
            .units
            .iter()
            .map(|u| UnitLeaf {
                unit_id: &u.unit_id,
                consensus_result_hash: &u.consensus_result_hash,
                receipt_id: &u.receipt_id,
                unit_payload_sha256: u.unit_payload_sha256.as_deref(),
            })
            .collect();
        let recomputed = merkle::result_set_root_hex(&leaves, alg);
        if recomputed == p.merkle_root {
            Ok(())
        } else {
            Err(AttestationError::MerkleRoot {
                signed: p.merkle_root.clone(),
                recomputed,
            })
        }
    });

    // 14–16: served claims and the caller's expectation.
    match &served {
        None => {
            r.not_checked(SERVED_FIELDS, "bare COSE input: nothing is served");
            r.not_checked(PARTIAL_BOUND, "bare COSE input: no partial flag is served");
        }
        Some(s) => {
            required.push(SERVED_FIELDS);
            step(
                &mut r,
                SERVED_FIELDS,
                &[PREDICATE, COSE_SIGNATURE],
                || match (&predicate, &signer) {
                    (Some(p), Some(key)) => compare_served(s, p, key),
                    _ => Err(AttestationError::Prerequisite),
                },
            );
            match s.partial {
                None => r.not_checked(
                    PARTIAL_BOUND,
                    "the evidence bundle's attestation block serves no partial flag (the signed \
                     one is used)",
                ),
                Some(served_partial) => {
                    required.push(PARTIAL_BOUND);
                    step(&mut r, PARTIAL_BOUND, &[PREDICATE], || match &predicate {
                        Some(p) if p.partial == served_partial => Ok(()),
                        Some(p) => Err(AttestationError::PartialNotBound {
                            served: served_partial,
                            signed: p.partial,
                        }),
                        None => Err(AttestationError::Prerequisite),
                    });
                }
            }
        }
    }
    match policy.expect_partial {
        None => r.not_checked(PARTIAL_EXPECTED, "no expectation about partial given"),
        Some(expected) => {
            required.push(PARTIAL_EXPECTED);
            step(
                &mut r,
                PARTIAL_EXPECTED,
                &[PREDICATE],
                || match &predicate {
                    Some(p) if p.partial == expected => Ok(()),
                    Some(p) => Err(AttestationError::PartialUnexpected {
                        expected,
                        signed: p.partial,
                    }),
                    None => Err(AttestationError::Prerequisite),
                },
            );
        }
    }

    let verified = match (
        r.verdict(&required),
        signer,
        attestation_id,
        algorithm,
        predicate,
        decoded,
    ) {
        (
            Verdict::Verified,
            Some(signer),
            Some(attestation_id),
            Some(algorithm),
            Some(predicate),
            Some((cose, _)),
        ) => Some(VerifiedAttestation {
            signer,
            attestation_id,
            algorithm,
            predicate,
            cose,
        }),
        _ => None,
    };
    AttestationVerification {
        report: r,
        required,
        verified,
    }
}
