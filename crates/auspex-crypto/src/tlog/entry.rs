//! The Rekor v1 log-entry response, parsed into typed fields.
//!
//! `GET /api/v1/log/entries/{uuid}` answers `{"<uuid>": {body, integratedTime,
//! logID, logIndex, verification: {inclusionProof: {logIndex, treeSize,
//! rootHash, hashes, checkpoint}, signedEntryTimestamp}}}`. The devnet and the
//! coordinator's stored shape omit `logID`, the checkpoint and the SET; a bare
//! entry (the inner object, without the UUID key) is accepted too.
//!
//! Parsing checks the **shape** only (types and required members); values are
//! decoded by the checks that use them, so a bad value is reported by the
//! named check it breaks (a non-hex proof hash fails `tlog.inclusion_proof`,
//! not the parse).

use auspex_wire::json::{self, Object, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

use crate::merkle::Hash;

/// Why an entry response cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The bytes are not JSON.
    #[error("entry is not JSON: {0}")]
    Json(#[from] json::ParseError),
    /// The response object does not hold exactly one entry.
    #[error(
        "expected an object holding one entry keyed by its UUID (or a bare entry with a \"body\"), \
         found an object with {members} members"
    )]
    Wrapper {
        /// Members of the top-level object.
        members: usize,
    },
    /// A member has the wrong JSON type.
    #[error("{field} is {found}, expected {expected}")]
    WrongType {
        /// The member's path (`verification.inclusionProof.treeSize`).
        field: String,
        /// The type wanted.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// A required member is absent.
    #[error("{field} is missing")]
    Missing {
        /// The member's path.
        field: String,
    },
    /// An integer member is outside its range.
    #[error("{field} = {value} is out of range ({range})")]
    OutOfRange {
        /// The member's path.
        field: String,
        /// The value, as written.
        value: String,
        /// The allowed range.
        range: &'static str,
    },
    /// `body` is not standard base64.
    #[error("body is not base64: {0}")]
    BodyBase64(String),
}

/// The inclusion proof as the entry carries it (values undecoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// Index of the leaf in the tree the proof is for (for a sharded Rekor,
    /// the index inside the active shard).
    pub log_index: u64,
    /// Size of the tree the proof leads to.
    pub tree_size: u64,
    /// The tree's root, hex as received.
    pub root_hash: String,
    /// The audit path, hex strings, leaf to root.
    pub hashes: Vec<String>,
    /// The signed checkpoint (C2SP signed note), if the log sent one.
    pub checkpoint: Option<String>,
}

/// An inclusion proof with its hashes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedProof {
    /// Leaf index inside the proved tree.
    pub log_index: u64,
    /// Size of the proved tree.
    pub tree_size: u64,
    /// The proved tree's root.
    pub root_hash: Hash,
    /// The audit path.
    pub hashes: Vec<Hash>,
}

/// Why the proof's values cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProofDecodeError {
    /// A hash is not 64 hex digits.
    #[error("{what} is not a 32-byte hex hash: {value:?}")]
    Hash {
        /// Which hash (`rootHash`, `hashes[3]`).
        what: String,
        /// The value as received (truncated).
        value: String,
    },
}

impl InclusionProof {
    /// Decodes the root and the audit path.
    pub fn decode(&self) -> Result<DecodedProof, ProofDecodeError> {
        let root_hash = decode_hash(&self.root_hash, "rootHash")?;
        let hashes = self
            .hashes
            .iter()
            .enumerate()
            .map(|(i, h)| decode_hash(h, &format!("hashes[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DecodedProof {
            log_index: self.log_index,
            tree_size: self.tree_size,
            root_hash,
            hashes,
        })
    }
}

/// Decodes 64 hex digits (either case, as Go's `hex.DecodeString`).
pub(crate) fn decode_hex32(s: &str) -> Option<Hash> {
    let bytes = decode_hex(s)?;
    bytes.try_into().ok()
}

/// Decodes hex digits of either case.
pub(crate) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

fn decode_hash(s: &str, what: &str) -> Result<Hash, ProofDecodeError> {
    decode_hex32(s).ok_or_else(|| ProofDecodeError::Hash {
        what: what.to_owned(),
        value: s.chars().take(80).collect(),
    })
}

/// One Rekor v1 log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekorEntry {
    /// The key of the response object: 64 hex digits (the leaf hash) or 80
    /// (a 16-digit tree ID, then the leaf hash). `None` for a bare entry.
    pub uuid: Option<String>,
    /// `body` exactly as received (base64; the SET covers this string).
    pub body_b64: String,
    /// The decoded body: the canonical entry JSON, and the log's leaf.
    pub body: Vec<u8>,
    /// Seconds since the Unix epoch at which the log integrated the entry.
    pub integrated_time: i64,
    /// The log's ID (hex SHA-256 of its DER public key), as received.
    pub log_id: Option<String>,
    /// The entry's index as the log reports it (for a sharded Rekor, the
    /// log-wide "virtual" index across all shards).
    pub log_index: u64,
    /// The inclusion proof, if the log sent one.
    pub inclusion_proof: Option<InclusionProof>,
    /// The signed entry timestamp (base64), as received.
    pub signed_entry_timestamp: Option<String>,
}

impl RekorEntry {
    /// Parses a `GET /api/v1/log/entries/{uuid}` response (`{uuid: entry}`)
    /// or a bare entry object.
    pub fn parse(bytes: &[u8]) -> Result<RekorEntry, EntryError> {
        let doc = json::parse(bytes)?;
        RekorEntry::from_value(&doc)
    }

    /// As [`RekorEntry::parse`], from an already parsed document.
    pub fn from_value(doc: &Value) -> Result<RekorEntry, EntryError> {
        let top = as_object(doc, "response")?;
        if let Some(Value::String(_)) = top.get("body") {
            return RekorEntry::from_entry(None, top);
        }
        let mut members = top.iter();
        match (members.next(), members.next()) {
            (Some((uuid, entry)), None) => {
                let entry = as_object(entry, "the entry")?;
                RekorEntry::from_entry(Some(uuid.clone()), entry)
            }
            _ => Err(EntryError::Wrapper { members: top.len() }),
        }
    }

    fn from_entry(uuid: Option<String>, e: &Object) -> Result<RekorEntry, EntryError> {
        let body_b64 = req_str(e, "body", "body")?.to_owned();
        let body = STANDARD
            .decode(&body_b64)
            .map_err(|err| EntryError::BodyBase64(err.to_string()))?;
        let integrated_time = req_i64(e, "integratedTime", "integratedTime")?;
        let log_id = opt_str(e, "logID", "logID")?.map(str::to_owned);
        let log_index = req_u64(e, "logIndex", "logIndex")?;
        let (inclusion_proof, signed_entry_timestamp) = match e.get("verification") {
            None | Some(Value::Null) => (None, None),
            Some(v) => {
                let v = as_object(v, "verification")?;
                let proof = match v.get("inclusionProof") {
                    None | Some(Value::Null) => None,
                    Some(p) => Some(parse_proof(as_object(p, "verification.inclusionProof")?)?),
                };
                let set = opt_str(
                    v,
                    "signedEntryTimestamp",
                    "verification.signedEntryTimestamp",
                )?
                .map(str::to_owned);
                (proof, set)
            }
        };
        Ok(RekorEntry {
            uuid,
            body_b64,
            body,
            integrated_time,
            log_id,
            log_index,
            inclusion_proof,
            signed_entry_timestamp,
        })
    }

    /// The entry as the log's response shape (`{uuid: entry}`, or the bare
    /// entry when it has no UUID), with the members in Rekor's order.
    pub fn to_value(&self) -> Value {
        let mut e = Object::new();
        e.insert("body".into(), Value::from(self.body_b64.as_str()));
        e.insert("integratedTime".into(), Value::from(self.integrated_time));
        if let Some(id) = &self.log_id {
            e.insert("logID".into(), Value::from(id.as_str()));
        }
        e.insert("logIndex".into(), Value::from(self.log_index));
        let mut verification = Object::new();
        if let Some(p) = &self.inclusion_proof {
            let mut o = Object::new();
            if let Some(c) = &p.checkpoint {
                o.insert("checkpoint".into(), Value::from(c.as_str()));
            }
            o.insert(
                "hashes".into(),
                Value::Array(p.hashes.iter().map(|h| Value::from(h.as_str())).collect()),
            );
            o.insert("logIndex".into(), Value::from(p.log_index));
            o.insert("rootHash".into(), Value::from(p.root_hash.as_str()));
            o.insert("treeSize".into(), Value::from(p.tree_size));
            verification.insert("inclusionProof".into(), Value::Object(o));
        }
        if let Some(set) = &self.signed_entry_timestamp {
            verification.insert("signedEntryTimestamp".into(), Value::from(set.as_str()));
        }
        if !verification.is_empty() {
            e.insert("verification".into(), Value::Object(verification));
        }
        match &self.uuid {
            Some(uuid) => {
                let mut top = Object::new();
                top.insert(uuid.clone(), Value::Object(e));
                Value::Object(top)
            }
            None => Value::Object(e),
        }
    }

    /// [`RekorEntry::to_value`] as compact JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        json::canonical(&self.to_value()).into_bytes()
    }
}

fn parse_proof(p: &Object) -> Result<InclusionProof, EntryError> {
    const P: &str = "verification.inclusionProof";
    let hashes = match p.get("hashes") {
        None => {
            return Err(EntryError::Missing {
                field: format!("{P}.hashes"),
            });
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, h)| match h {
                Value::String(s) => Ok(s.clone()),
                other => Err(EntryError::WrongType {
                    field: format!("{P}.hashes[{i}]"),
                    expected: "a string",
                    found: other.type_name(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(EntryError::WrongType {
                field: format!("{P}.hashes"),
                expected: "an array",
                found: other.type_name(),
            });
        }
    };
    Ok(InclusionProof {
        log_index: req_u64(p, "logIndex", &format!("{P}.logIndex"))?,
        tree_size: req_u64(p, "treeSize", &format!("{P}.treeSize"))?,
        root_hash: req_str(p, "rootHash", &format!("{P}.rootHash"))?.to_owned(),
        hashes,
        checkpoint: opt_str(p, "checkpoint", &format!("{P}.checkpoint"))?.map(str::to_owned),
    })
}

fn as_object<'a>(v: &'a Value, what: &str) -> Result<&'a Object, EntryError> {
    v.as_object().ok_or_else(|| EntryError::WrongType {
        field: what.to_owned(),
        expected: "an object",
        found: v.type_name(),
    })
}

fn req<'a>(o: &'a Object, key: &str, path: &str) -> Result<&'a Value, EntryError> {
    match o.get(key) {
        None | Some(Value::Null) => Err(EntryError::Missing {
            field: path.to_owned(),
        }),
        Some(v) => Ok(v),
    }
}

fn req_str<'a>(o: &'a Object, key: &str, path: &str) -> Result<&'a str, EntryError> {
    let v = req(o, key, path)?;
    v.as_str().ok_or_else(|| EntryError::WrongType {
        field: path.to_owned(),
        expected: "a string",
        found: v.type_name(),
    })
}

fn opt_str<'a>(o: &'a Object, key: &str, path: &str) -> Result<Option<&'a str>, EntryError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(EntryError::WrongType {
            field: path.to_owned(),
            expected: "a string",
            found: v.type_name(),
        }),
    }
}

fn req_int<'a>(o: &'a Object, key: &str, path: &str) -> Result<&'a json::Int, EntryError> {
    match req(o, key, path)? {
        Value::Int(i) => Ok(i),
        v => Err(EntryError::WrongType {
            field: path.to_owned(),
            expected: "an integer",
            found: v.type_name(),
        }),
    }
}

fn req_u64(o: &Object, key: &str, path: &str) -> Result<u64, EntryError> {
    let i = req_int(o, key, path)?;
    i.as_u64().ok_or_else(|| EntryError::OutOfRange {
        field: path.to_owned(),
        value: i.as_str().to_owned(),
        range: "0 ..= 2^64 - 1",
    })
}

fn req_i64(o: &Object, key: &str, path: &str) -> Result<i64, EntryError> {
    let i = req_int(o, key, path)?;
    i.as_i64().ok_or_else(|| EntryError::OutOfRange {
        field: path.to_owned(),
        value: i.as_str().to_owned(),
        range: "a 64-bit signed integer",
    })
}
