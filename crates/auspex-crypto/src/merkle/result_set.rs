//! The result-set Merkle tree of attestations (spec `tenant-sdk.md` §3c) and
//! the flat custody root (§3g).

use auspex_wire::json::{self, Value};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::Hash;
use super::rfc6962::node_hash;

/// Algorithm name of v0 roots.
pub const ALG_V0: &str = "sha256-merkle-v0";
/// Algorithm name of v1 roots.
pub const ALG_V1: &str = "sha256-merkle-v1";
/// The root of the empty result set, `hex(sha256(0x00))`.
pub const EMPTY_ROOT_HEX: &str = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";

/// Which leaf layout a result-set root uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// `sha256-merkle-v0`: leaves `{consensus_result_hash, receipt_id,
    /// unit_id}`.
    V0,
    /// `sha256-merkle-v1`: v0 plus `unit_payload_sha256`.
    V1,
}

impl Algorithm {
    /// The SDK's selection rule: exactly `sha256-merkle-v1` is v1, **any
    /// other string** (including unknown ones) is v0.
    pub fn from_name(name: &str) -> Algorithm {
        if name == ALG_V1 {
            Algorithm::V1
        } else {
            Algorithm::V0
        }
    }

    /// The algorithm's name as attestations write it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::V0 => ALG_V0,
            Algorithm::V1 => ALG_V1,
        }
    }

    /// The in-toto `predicateType` of an attestation using this algorithm.
    pub fn predicate_type(self) -> &'static str {
        match self {
            Algorithm::V0 => "https://auspexai.network/result-set/v0",
            Algorithm::V1 => "https://auspexai.network/result-set/v1",
        }
    }
}

/// A unit entry of an attestation that cannot be made into a leaf.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LeafError {
    /// The unit entry is not a JSON object.
    #[error("unit #{index} is a {found}, not an object")]
    NotAnObject {
        /// Position in the input.
        index: usize,
        /// The JSON type found.
        found: &'static str,
    },
    /// A leaf field is absent or not a string (`unit_payload_sha256` may
    /// also be absent or null).
    #[error("unit #{index}: {field} is {found}, not a string")]
    Field {
        /// Position in the input.
        index: usize,
        /// The field.
        field: &'static str,
        /// `"absent"` or the JSON type found.
        found: &'static str,
    },
}

/// One attested unit, borrowed. The hash fields are hashed as the strings
/// they are (never hex-decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitLeaf<'a> {
    /// `unit_id`; the sort key.
    pub unit_id: &'a str,
    /// `consensus_result_hash`.
    pub consensus_result_hash: &'a str,
    /// `receipt_id`.
    pub receipt_id: &'a str,
    /// `unit_payload_sha256` (v1 only); `None` and `Some("")` both hash as
    /// the empty string, as the SDK's `… or ""` does.
    pub unit_payload_sha256: Option<&'a str>,
}

impl<'a> UnitLeaf<'a> {
    /// The leaf fields of `units[index]` of an attestation predicate.
    pub fn from_json(value: &'a Value, index: usize) -> Result<UnitLeaf<'a>, LeafError> {
        if value.as_object().is_none() {
            return Err(LeafError::NotAnObject {
                index,
                found: value.type_name(),
            });
        }
        let string = |field: &'static str| match value.get(field) {
            Some(Value::String(s)) => Ok(s.as_str()),
            other => Err(LeafError::Field {
                index,
                field,
                found: other.map_or("absent", Value::type_name),
            }),
        };
        let payload = match value.get("unit_payload_sha256") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(other) => {
                return Err(LeafError::Field {
                    index,
                    field: "unit_payload_sha256",
                    found: other.type_name(),
                });
            }
        };
        Ok(UnitLeaf {
            unit_id: string("unit_id")?,
            consensus_result_hash: string("consensus_result_hash")?,
            receipt_id: string("receipt_id")?,
            unit_payload_sha256: payload,
        })
    }

    /// The leaf's canonical JSON built through [`json::canonical`] — the
    /// reference the fast path of [`UnitLeaf::leaf_hash`] is tested against.
    pub fn canonical_json(&self, algorithm: Algorithm) -> String {
        let mut obj = json::Object::new();
        obj.insert("unit_id".into(), Value::String(self.unit_id.into()));
        obj.insert(
            "consensus_result_hash".into(),
            Value::String(self.consensus_result_hash.into()),
        );
        obj.insert("receipt_id".into(), Value::String(self.receipt_id.into()));
        if algorithm == Algorithm::V1 {
            obj.insert(
                "unit_payload_sha256".into(),
                Value::String(self.unit_payload_sha256.unwrap_or("").into()),
            );
        }
        json::canonical(&Value::Object(obj))
    }

    /// `sha256(0x00 || canonical_json(fields))`, written straight into a
    /// reused buffer (no JSON value is built).
    pub fn leaf_hash(&self, algorithm: Algorithm) -> Hash {
        let mut buf = String::with_capacity(256);
        self.leaf_hash_with(algorithm, &mut buf)
    }

    fn leaf_hash_with(&self, algorithm: Algorithm, buf: &mut String) -> Hash {
        buf.clear();
        // Keys in sorted order, as canonical JSON writes them.
        buf.push_str("\0{\"consensus_result_hash\":");
        push_json_string(self.consensus_result_hash, buf);
        buf.push_str(",\"receipt_id\":");
        push_json_string(self.receipt_id, buf);
        buf.push_str(",\"unit_id\":");
        push_json_string(self.unit_id, buf);
        if algorithm == Algorithm::V1 {
            buf.push_str(",\"unit_payload_sha256\":");
            push_json_string(self.unit_payload_sha256.unwrap_or(""), buf);
        }
        buf.push('}');
        Sha256::digest(buf.as_bytes()).into()
    }
}

/// A JSON string as Python's `json.dumps` (`ensure_ascii=True`) writes it;
/// printable ASCII without `"`/`\` (every hex hash and usual id) is copied.
fn push_json_string(s: &str, out: &mut String) {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        json::write_ascii_string(s, out);
    }
}

/// The tree over leaf hashes already in `unit_id` order: while a level has
/// more than one node, an odd level gets a copy of its last node, then pairs
/// are hashed `sha256(0x01 || left || right)`. Empty → `sha256(0x00)`.
/// (Not RFC 6962, which promotes the odd node instead.)
pub fn dup_last_root(mut level: Vec<Hash>) -> Hash {
    while level.len() > 1 {
        let n = level.len();
        for i in 0..n.div_ceil(2) {
            let left = level[2 * i];
            let right = level.get(2 * i + 1).copied().unwrap_or(left);
            level[i] = node_hash(&left, &right);
        }
        level.truncate(n.div_ceil(2));
    }
    level
        .first()
        .copied()
        .unwrap_or_else(|| Sha256::digest([0x00]).into())
}

fn sorted<'s, 'a>(units: &'s [UnitLeaf<'a>]) -> Vec<&'s UnitLeaf<'a>> {
    let mut refs: Vec<&UnitLeaf<'a>> = units.iter().collect();
    // Python sorts str by code point, which is UTF-8 byte order; the sort is
    // stable, so duplicate unit_ids keep their input order as in the SDK.
    refs.sort_by(|a, b| a.unit_id.cmp(b.unit_id));
    refs
}

/// Leaf hashes in tree order (sorted by `unit_id`).
pub fn leaf_hashes(units: &[UnitLeaf<'_>], algorithm: Algorithm) -> Vec<Hash> {
    let mut buf = String::with_capacity(256);
    sorted(units)
        .into_iter()
        .map(|u| u.leaf_hash_with(algorithm, &mut buf))
        .collect()
}

/// The result-set root of `units` (any order).
pub fn result_set_root(units: &[UnitLeaf<'_>], algorithm: Algorithm) -> Hash {
    dup_last_root(leaf_hashes(units, algorithm))
}

/// [`result_set_root`] as lowercase hex, the form attestations carry.
pub fn result_set_root_hex(units: &[UnitLeaf<'_>], algorithm: Algorithm) -> String {
    auspex_wire::hex_lower(&result_set_root(units, algorithm))
}

/// Every level of the tree, leaves first, each before odd duplication (the
/// layout of the `merkle.json` vector); empty for an empty set.
pub fn result_set_levels(units: &[UnitLeaf<'_>], algorithm: Algorithm) -> Vec<Vec<Hash>> {
    let mut levels = Vec::new();
    let mut level = leaf_hashes(units, algorithm);
    while !level.is_empty() {
        let n = level.len();
        let mut next = Vec::new();
        if n > 1 {
            for i in (0..n).step_by(2) {
                let left = level[i];
                let right = level.get(i + 1).copied().unwrap_or(left);
                next.push(node_hash(&left, &right));
            }
        }
        levels.push(level);
        level = next;
    }
    levels
}

/// Builds a root from units arriving one at a time (a paged download),
/// keeping only each `unit_id` and its 32-byte leaf hash.
#[derive(Debug, Clone)]
pub struct ResultSetHasher {
    algorithm: Algorithm,
    leaves: Vec<(String, Hash)>,
    buf: String,
}

impl ResultSetHasher {
    /// An empty set under `algorithm`.
    pub fn new(algorithm: Algorithm) -> ResultSetHasher {
        ResultSetHasher {
            algorithm,
            leaves: Vec::new(),
            buf: String::with_capacity(256),
        }
    }

    /// Adds one unit.
    pub fn push(&mut self, unit: &UnitLeaf<'_>) {
        let hash = unit.leaf_hash_with(self.algorithm, &mut self.buf);
        self.leaves.push((unit.unit_id.to_owned(), hash));
    }

    /// Units added so far.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// Whether no unit was added.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The root over every unit added.
    pub fn finish(mut self) -> Hash {
        self.leaves.sort_by(|a, b| a.0.cmp(&b.0));
        dup_last_root(self.leaves.into_iter().map(|(_, h)| h).collect())
    }
}

/// The flat custody root (spec §3g, `root_kind` `flat-v0`):
/// `hex(sha256(json.dumps(sorted([(unit_id, semantic_hash or "") …]),
/// separators=(",", ":"))))` — a JSON array of two-string arrays, sorted as
/// Python sorts tuples, ASCII-escaped.
pub fn flat_custody_root<'a, I>(rows: I) -> String
where
    I: IntoIterator<Item = (&'a str, Option<&'a str>)>,
{
    let mut pairs: Vec<(&str, &str)> = rows
        .into_iter()
        .map(|(id, hash)| (id, hash.unwrap_or("")))
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(pairs.len() * 80 + 2);
    out.push('[');
    for (i, (id, hash)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        push_json_string(id, &mut out);
        out.push(',');
        push_json_string(hash, &mut out);
        out.push(']');
    }
    out.push(']');
    auspex_wire::sha256_hex(out.as_bytes())
}
