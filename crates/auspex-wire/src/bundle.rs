//! The evidence bundle `auspexai-evidence-bundle/v1` (spec `tenant-sdk.md`
//! §7.1; `coordinator.md` §13.8): the export of `GET …/results/export`.
//!
//! The types are read from a Python-semantics [`Value`] rather than through
//! serde: payloads feed `unit_payload_sha256` and worker-signature bytes, which
//! need Python's number semantics (big integers, `1.10` → `1.1`, `NaN`) that
//! serde_json does not keep. Reading is tolerant like the SDK: a missing member
//! and `null` mean the same, unknown members are kept in `extra`, and only a
//! member of the wrong JSON type is an error (the SDK would crash on it).
//! Values the verifier must use verbatim (`exit_code`, `environment`, …) stay
//! [`Value`]s. Nothing here verifies anything.

use crate::json::{self, Object, Value};
use crate::validate::{Checker, JsonPath, ViolationKind, Violations};
use crate::workunit::DocumentError;

/// The `schema` value of a v1 bundle.
pub const SCHEMA_V1: &str = "auspexai-evidence-bundle/v1";

/// One entry of `work_units` (the input leg).
#[derive(Debug, Clone, PartialEq)]
pub struct BundleWorkUnit {
    /// The unit id.
    pub unit_id: Option<String>,
    /// The payload as stored (may be null).
    pub payload: Option<Value>,
    /// Other members.
    pub extra: Object,
}

/// One entry of `consensus_results`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsensusRow {
    /// The result id.
    pub result_id: Option<String>,
    /// The unit id.
    pub unit_id: Option<String>,
    /// The attested semantic hash.
    pub semantic_hash: Option<String>,
    /// The payload (null when aged off).
    pub payload: Option<Value>,
    /// Python truthiness of `aged_off`.
    pub aged_off: bool,
    /// Base64 worker signature.
    pub worker_signature: Option<String>,
    /// The worker's public key hex (case as given).
    pub worker_pubkey_hex: Option<String>,
    /// The exit code, verbatim.
    pub exit_code: Option<Value>,
    /// Coordinator-asserted environment snapshot.
    pub environment: Option<Value>,
    /// Worker result-signature schema version.
    pub schema_version: Option<Value>,
    /// Served weights, if recorded.
    pub served_weights: Option<Value>,
    /// Execution context, if recorded.
    pub ran_under: Option<Value>,
    /// The receipt id.
    pub receipt_id: Option<String>,
    /// `completed_at` verbatim (signed as is).
    pub completed_at: Option<String>,
    /// Other members.
    pub extra: Object,
}

/// One entry of `receipts`.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleReceipt {
    /// The receipt id.
    pub receipt_id: Option<String>,
    /// Standard base64 of the receipt's COSE_Sign1.
    pub cose_b64: Option<String>,
    /// Other members.
    pub extra: Object,
}

/// The `attestation` block (no `units`: those come from the signed predicate).
#[derive(Debug, Clone, PartialEq)]
pub struct BundleAttestation {
    /// `att-…`.
    pub attestation_id: Option<String>,
    /// The claimed root (unsigned here).
    pub merkle_root: Option<String>,
    /// The algorithm.
    pub algorithm: Option<String>,
    /// Standard base64 of the COSE_Sign1.
    pub cose_b64: Option<String>,
    /// Informational signer hex.
    pub signing_key_pubkey_hex: Option<String>,
    /// Rekor log index.
    pub rekor_log_index: Option<Value>,
    /// Rekor entry UUID.
    pub rekor_entry_uuid: Option<String>,
    /// The captured inclusion proof.
    pub rekor_inclusion_proof: Option<Value>,
    /// Other members.
    pub extra: Object,
}

/// The `transfer` (custody) block.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    /// `xfer-…`.
    pub transfer_id: Option<String>,
    /// The custody root.
    pub result_set_root: Option<String>,
    /// `sha256-merkle-v1` / `sha256-merkle-v0` / `flat-v0` (unsigned).
    pub root_kind: Option<String>,
    /// The attestation the root was unified with.
    pub attestation_id: Option<String>,
    /// `isoformat()` text, signed verbatim.
    pub collected_at: Option<String>,
    /// The collector's pubkey hex or `<maintainer>`.
    pub collected_by_pubkey: Option<String>,
    /// The manifest hash.
    pub manifest_hash: Option<String>,
    /// Number of receipts delivered.
    pub receipt_count: Option<Value>,
    /// Hex Ed25519 signature over the custody record.
    pub coordinator_signature: Option<String>,
    /// The coordinator's pubkey hex.
    pub coordinator_pubkey_hex: Option<String>,
    /// Other members.
    pub extra: Object,
}

/// An evidence bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceBundle {
    /// `auspexai-evidence-bundle/v1`; `None` for pre-EB-1 bundles.
    pub schema: Option<String>,
    /// The coordinator experiment id (`exp-…`).
    pub experiment_id: Option<String>,
    /// The experiment's manifest hash.
    pub manifest_hash: Option<String>,
    /// The stored raw manifest.
    pub manifest: Option<Value>,
    /// Every unit's input, ordered by unit id.
    pub work_units: Vec<BundleWorkUnit>,
    /// The consensus rows.
    pub consensus_results: Vec<ConsensusRow>,
    /// Tolerance / observe-only evidence, as given.
    pub unit_consensus: Vec<Value>,
    /// The pre-registration anchor, as given.
    pub pre_registration: Option<Value>,
    /// Deviation records, as given.
    pub deviations: Vec<Value>,
    /// Receipts referenced by the rows.
    pub receipts: Vec<BundleReceipt>,
    /// The final attestation, when the experiment completed (an empty object
    /// counts as absent, as in the SDK).
    pub attestation: Option<BundleAttestation>,
    /// The custody record.
    pub transfer: Option<Transfer>,
    /// Other top-level members.
    pub extra: Object,
}

/// Reads members of one object, reporting wrong types with their paths.
struct Reader<'a, 'c> {
    c: &'c mut Checker,
    path: JsonPath,
    o: &'a Object,
    known: Vec<&'static str>,
}

impl<'a, 'c> Reader<'a, 'c> {
    fn new(c: &'c mut Checker, path: JsonPath, v: &'a Value) -> Option<Reader<'a, 'c>> {
        match v {
            Value::Object(o) => Some(Reader {
                c,
                path,
                o,
                known: Vec::new(),
            }),
            other => {
                c.report(
                    path,
                    ViolationKind::WrongType {
                        expected: "object",
                        found: other.type_name(),
                    },
                );
                None
            }
        }
    }

    fn value(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        self.o.get(key).filter(|v| !matches!(v, Value::Null))
    }

    fn any(&mut self, key: &'static str) -> Option<Value> {
        self.value(key).cloned()
    }

    fn string(&mut self, key: &'static str) -> Option<String> {
        let v = self.value(key)?;
        let path = self.path.key(key);
        self.c.string(&path, v).map(str::to_owned)
    }

    fn truthy(&mut self, key: &'static str) -> bool {
        self.value(key).is_some_and(crate::attestation::truthy)
    }

    fn list(&mut self, key: &'static str) -> Vec<(JsonPath, &'a Value)> {
        let Some(v) = self.value(key) else {
            return Vec::new();
        };
        let path = self.path.key(key);
        match self.c.array(&path, v) {
            Some(items) => items
                .iter()
                .enumerate()
                .map(|(i, it)| (path.index(i), it))
                .collect(),
            None => Vec::new(),
        }
    }

    fn extra(&self) -> Object {
        self.o
            .iter()
            .filter(|(k, _)| !self.known.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

fn work_unit(c: &mut Checker, path: JsonPath, v: &Value) -> Option<BundleWorkUnit> {
    let mut r = Reader::new(c, path, v)?;
    Some(BundleWorkUnit {
        unit_id: r.string("unit_id"),
        payload: r.any("payload"),
        extra: r.extra(),
    })
}

fn consensus_row(c: &mut Checker, path: JsonPath, v: &Value) -> Option<ConsensusRow> {
    let mut r = Reader::new(c, path, v)?;
    Some(ConsensusRow {
        result_id: r.string("result_id"),
        unit_id: r.string("unit_id"),
        semantic_hash: r.string("semantic_hash"),
        payload: r.any("payload"),
        aged_off: r.truthy("aged_off"),
        worker_signature: r.string("worker_signature"),
        worker_pubkey_hex: r.string("worker_pubkey_hex"),
        exit_code: r.any("exit_code"),
        environment: r.any("environment"),
        schema_version: r.any("schema_version"),
        served_weights: r.any("served_weights"),
        ran_under: r.any("ran_under"),
        receipt_id: r.string("receipt_id"),
        completed_at: r.string("completed_at"),
        extra: r.extra(),
    })
}

fn receipt(c: &mut Checker, path: JsonPath, v: &Value) -> Option<BundleReceipt> {
    let mut r = Reader::new(c, path, v)?;
    Some(BundleReceipt {
        receipt_id: r.string("receipt_id"),
        cose_b64: r.string("cose_b64"),
        extra: r.extra(),
    })
}

fn attestation(c: &mut Checker, path: JsonPath, v: &Value) -> Option<BundleAttestation> {
    let mut r = Reader::new(c, path, v)?;
    Some(BundleAttestation {
        attestation_id: r.string("attestation_id"),
        merkle_root: r.string("merkle_root"),
        algorithm: r.string("algorithm"),
        cose_b64: r.string("cose_b64"),
        signing_key_pubkey_hex: r.string("signing_key_pubkey_hex"),
        rekor_log_index: r.any("rekor_log_index"),
        rekor_entry_uuid: r.string("rekor_entry_uuid"),
        rekor_inclusion_proof: r.any("rekor_inclusion_proof"),
        extra: r.extra(),
    })
}

fn transfer(c: &mut Checker, path: JsonPath, v: &Value) -> Option<Transfer> {
    let mut r = Reader::new(c, path, v)?;
    Some(Transfer {
        transfer_id: r.string("transfer_id"),
        result_set_root: r.string("result_set_root"),
        root_kind: r.string("root_kind"),
        attestation_id: r.string("attestation_id"),
        collected_at: r.string("collected_at"),
        collected_by_pubkey: r.string("collected_by_pubkey"),
        manifest_hash: r.string("manifest_hash"),
        receipt_count: r.any("receipt_count"),
        coordinator_signature: r.string("coordinator_signature"),
        coordinator_pubkey_hex: r.string("coordinator_pubkey_hex"),
        extra: r.extra(),
    })
}

impl EvidenceBundle {
    /// Reads a bundle from a parsed value, reporting every member of the
    /// wrong type.
    pub fn from_value(v: &Value) -> Result<EvidenceBundle, Violations> {
        let mut c = Checker::new();
        let bundle = EvidenceBundle::read(&mut c, v);
        c.into_result(bundle)
    }

    fn read(c: &mut Checker, v: &Value) -> Option<EvidenceBundle> {
        let mut r = Reader::new(c, JsonPath::root(), v)?;
        let schema = r.string("schema");
        let experiment_id = r.string("experiment_id");
        let manifest_hash = r.string("manifest_hash");
        let manifest = r.any("manifest");
        let wu = r.list("work_units");
        let rows = r.list("consensus_results");
        let unit_consensus = r
            .list("unit_consensus")
            .into_iter()
            .map(|(_, v)| v.clone())
            .collect();
        let pre_registration = r.any("pre_registration");
        let deviations = r
            .list("deviations")
            .into_iter()
            .map(|(_, v)| v.clone())
            .collect();
        let rcpts = r.list("receipts");
        // The SDK checks the attestation only when the member is truthy.
        let att = r
            .value("attestation")
            .filter(|v| crate::attestation::truthy(v));
        let xfer = r.value("transfer");
        let extra = r.extra();
        let c = r.c;
        let work_units = wu
            .into_iter()
            .filter_map(|(p, v)| work_unit(c, p, v))
            .collect();
        let consensus_results = rows
            .into_iter()
            .filter_map(|(p, v)| consensus_row(c, p, v))
            .collect();
        let receipts = rcpts
            .into_iter()
            .filter_map(|(p, v)| receipt(c, p, v))
            .collect();
        let attestation = att.and_then(|v| attestation(c, JsonPath::root().key("attestation"), v));
        let transfer = xfer.and_then(|v| transfer(c, JsonPath::root().key("transfer"), v));
        Some(EvidenceBundle {
            schema,
            experiment_id,
            manifest_hash,
            manifest,
            work_units,
            consensus_results,
            unit_consensus,
            pre_registration,
            deviations,
            receipts,
            attestation,
            transfer,
            extra,
        })
    }

    /// Parses and reads a bundle file.
    pub fn parse(bytes: &[u8]) -> Result<EvidenceBundle, DocumentError> {
        Ok(EvidenceBundle::from_value(&json::parse(bytes)?)?)
    }

    /// True when the bundle declares [`SCHEMA_V1`].
    pub fn is_v1(&self) -> bool {
        self.schema.as_deref() == Some(SCHEMA_V1)
    }

    /// True when `schema` is present but not one this crate knows (the SDK
    /// refuses such bundles: "upgrade the SDK").
    pub fn has_unknown_schema(&self) -> bool {
        self.schema.as_deref().is_some_and(|s| s != SCHEMA_V1)
    }
}
