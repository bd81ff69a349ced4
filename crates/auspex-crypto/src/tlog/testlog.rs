//! A tiny in-memory RFC 6962 transparency log that speaks Rekor v1's shapes:
//! it appends entry bodies, proves inclusion and consistency, signs C2SP
//! checkpoints and signed entry timestamps with an Ed25519 or ECDSA P-256
//! key, and describes itself as a Sigstore trusted root. Tests use it to
//! build entries nobody else produced; the devnet's log builds on it.
//!
//! It behaves as Rekor does: leaf = `SHA-256(0x00 ‖ body)`, entry UUID = the
//! 16-hex-digit tree ID followed by the leaf hash, checkpoint origin
//! `<name> - <tree ID>` with a `Timestamp: <ns>` extension line, signatures
//! named `<name>` (the host of the log's `baseUrl`), ECDSA checkpoint key IDs
//! from the DER key, Ed25519 ones per C2SP. With [`TestLog::with_index_offset`]
//! it reports log-wide indices the way a sharded Rekor does.
//!
//! ```
//! use auspex_crypto::tlog::{self, testlog::{LogSigner, TestLog, rekord_body}};
//!
//! let mut log = TestLog::new(LogSigner::ed25519([7; 32]), "tlog.example").unwrap();
//! let artifact = [0xab; 32];
//! let index = log.append(rekord_body(&artifact, b"sig", b"key"), 1_700_000_000);
//! let entry = log.entry(index).unwrap();
//! let opts = tlog::VerifyOptions { artifact_sha256: Some(artifact), ..Default::default() };
//! let report = tlog::verify_entry(&entry.to_json(), &log.trusted_root(), &opts);
//! assert!(report.verdict(&tlog::required_checks(&entry, &opts)).is_verified());
//! ```

use auspex_wire::json::{Object, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Signer as _;
use thiserror::Error;

use super::checkpoint::{Checkpoint, NoteSignature, SignedNote};
use super::entry::{InclusionProof, RekorEntry};
use super::key::{KeyError, LogKey};
use super::set::{SetError, entry_set_payload};
use super::time::Timestamp;
use super::trusted_root::{TransparencyLog, TrustedRoot};
use crate::merkle::{self, Hash, ProofError};

/// Why the test log cannot do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TestLogError {
    /// The P-256 private scalar is zero or not below the group order.
    #[error("not a valid P-256 private key")]
    InvalidP256Key,
    /// The name cannot be a signed-note key name.
    #[error("log name {0:?} must be non-empty, without spaces or '+'")]
    Name(String),
    /// A leaf index or tree size beyond the log.
    #[error("index {index} / tree size {size} out of range for a log of {len} leaves")]
    OutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size asked for.
        size: u64,
        /// Leaves in the log.
        len: u64,
    },
    /// A proof could not be made.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The key cannot be encoded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The SET payload cannot be formed.
    #[error(transparent)]
    Set(#[from] SetError),
}

/// The log's private key.
#[derive(Clone)]
#[non_exhaustive]
pub enum LogSigner {
    /// Ed25519 (signs messages directly).
    Ed25519(ed25519_dalek::SigningKey),
    /// ECDSA P-256 with SHA-256 (deterministic RFC 6979 nonces, DER output).
    EcdsaP256(p256::ecdsa::SigningKey),
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogSigner::Ed25519(_) => "LogSigner::Ed25519(..)",
            LogSigner::EcdsaP256(_) => "LogSigner::EcdsaP256(..)",
        })
    }
}

impl LogSigner {
    /// An Ed25519 key from its 32-byte seed.
    pub fn ed25519(seed: [u8; 32]) -> LogSigner {
        LogSigner::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// A P-256 key from its 32-byte big-endian private scalar.
    pub fn ecdsa_p256(scalar: [u8; 32]) -> Result<LogSigner, TestLogError> {
        p256::ecdsa::SigningKey::from_slice(&scalar)
            .map(LogSigner::EcdsaP256)
            .map_err(|_| TestLogError::InvalidP256Key)
    }

    /// The public key.
    pub fn public_key(&self) -> LogKey {
        match self {
            LogSigner::Ed25519(k) => LogKey::Ed25519(k.verifying_key()),
            LogSigner::EcdsaP256(k) => LogKey::EcdsaP256(*k.verifying_key()),
        }
    }

    /// Signs as the log does: Ed25519 over `message`, ECDSA over
    /// SHA-256(`message`) with a DER signature.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            LogSigner::Ed25519(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(message).to_bytes().to_vec()
            }
            LogSigner::EcdsaP256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
        }
    }

    /// Signs a checkpoint body as the log named `name` (the host of its
    /// `baseUrl`): a one-signature C2SP note whose key ID is the first of
    /// [`LogKey::note_key_ids`] (C2SP for Ed25519, the SPKI hash for ECDSA).
    pub fn sign_checkpoint(&self, name: &str, checkpoint: &Checkpoint) -> Result<String, KeyError> {
        let text = checkpoint.to_text();
        let key_id = self
            .public_key()
            .note_key_ids(name)?
            .first()
            .copied()
            .unwrap_or_default();
        let note = SignedNote {
            signatures: vec![NoteSignature {
                name: name.to_owned(),
                key_id,
                signature: self.sign(text.as_bytes()),
            }],
            text,
        };
        Ok(note.to_text())
    }

    /// The signed entry timestamp of `entry` (its body, integratedTime,
    /// logID, logIndex; see [`entry_set_payload`]), base64.
    pub fn sign_entry_set(&self, entry: &RekorEntry) -> Result<String, SetError> {
        let payload = entry_set_payload(entry)?;
        Ok(STANDARD.encode(self.sign(&payload)))
    }
}

/// An in-memory RFC 6962 log.
#[derive(Debug, Clone)]
pub struct TestLog {
    signer: LogSigner,
    key: LogKey,
    name: String,
    tree_id: u64,
    index_offset: u64,
    bodies: Vec<Vec<u8>>,
    leaf_hashes: Vec<Hash>,
    integrated_times: Vec<i64>,
}

impl TestLog {
    /// An empty log signing as `name` (a host name such as `rekor.test`: its
    /// `baseUrl` is `https://<name>`), tree ID 1, no index offset.
    pub fn new(signer: LogSigner, name: &str) -> Result<TestLog, TestLogError> {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
            return Err(TestLogError::Name(name.to_owned()));
        }
        let key = signer.public_key();
        key.spki_der()?;
        Ok(TestLog {
            signer,
            key,
            name: name.to_owned(),
            tree_id: 1,
            index_offset: 0,
            bodies: Vec::new(),
            leaf_hashes: Vec::new(),
            integrated_times: Vec::new(),
        })
    }

    /// Sets the tree ID (in the origin line and the entry UUIDs).
    #[must_use]
    pub fn with_tree_id(mut self, tree_id: u64) -> TestLog {
        self.tree_id = tree_id;
        self
    }

    /// Reports entry indices `offset` higher than their index in the tree,
    /// as a sharded Rekor does for a shard preceded by `offset` entries.
    #[must_use]
    pub fn with_index_offset(mut self, offset: u64) -> TestLog {
        self.index_offset = offset;
        self
    }

    /// The signing name (the host of [`TestLog::base_url`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `https://<name>`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.name)
    }

    /// The log's public key.
    pub fn key(&self) -> &LogKey {
        &self.key
    }

    /// The signer.
    pub fn signer(&self) -> &LogSigner {
        &self.signer
    }

    /// The log ID (SHA-256 of the DER public key).
    pub fn log_id(&self) -> Result<[u8; 32], TestLogError> {
        Ok(self.key.log_id()?)
    }

    /// The checkpoint origin: `<name> - <tree ID>`.
    pub fn origin(&self) -> String {
        format!("{} - {}", self.name, self.tree_id)
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.leaf_hashes.len() as u64
    }

    /// Appends an entry body integrated at `integrated_time` (Unix seconds)
    /// and returns its leaf index.
    pub fn append(&mut self, body: Vec<u8>, integrated_time: i64) -> u64 {
        self.leaf_hashes.push(merkle::leaf_hash(&body));
        self.bodies.push(body);
        self.integrated_times.push(integrated_time);
        self.size() - 1
    }

    fn prefix(&self, index: u64, size: u64) -> Result<&[Hash], TestLogError> {
        let len = self.size();
        let out = || TestLogError::OutOfRange { index, size, len };
        if size > len || index >= size.max(1) {
            return Err(out());
        }
        let n = usize::try_from(size).map_err(|_| out())?;
        self.leaf_hashes.get(..n).ok_or_else(out)
    }

    /// The root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, TestLogError> {
        Ok(merkle::root_from_leaf_hashes(self.prefix(0, size)?))
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, TestLogError> {
        Ok(merkle::inclusion_proof(self.prefix(index, size)?, index)?)
    }

    /// The consistency proof from the first `size1` leaves to the first `size2`.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, TestLogError> {
        Ok(merkle::consistency_proof(self.prefix(0, size2)?, size1)?)
    }

    /// The (unsigned) checkpoint of the first `size` leaves, with Rekor's
    /// `Timestamp:` extension (the last leaf's integration time, in ns).
    pub fn checkpoint(&self, size: u64) -> Result<Checkpoint, TestLogError> {
        let root_hash = self.root(size)?;
        let last = usize::try_from(size)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| self.integrated_times.get(i))
            .copied()
            .unwrap_or(0);
        Ok(Checkpoint {
            origin: self.origin(),
            size,
            root_hash,
            extensions: vec![format!("Timestamp: {}", i128::from(last) * 1_000_000_000)],
        })
    }

    /// Signs any checkpoint body with the log's key, as a one-signature note.
    pub fn sign_checkpoint(&self, checkpoint: &Checkpoint) -> Result<String, TestLogError> {
        Ok(self.signer.sign_checkpoint(&self.name, checkpoint)?)
    }

    /// The signed checkpoint of the first `size` leaves.
    pub fn signed_checkpoint(&self, size: u64) -> Result<String, TestLogError> {
        self.sign_checkpoint(&self.checkpoint(size)?)
    }

    /// Signs the SET of `entry` (its body, integratedTime, logID, logIndex).
    pub fn sign_set(&self, entry: &RekorEntry) -> Result<String, TestLogError> {
        Ok(self.signer.sign_entry_set(entry)?)
    }

    /// The entry response for leaf `index`, proved against the whole log.
    pub fn entry(&self, index: u64) -> Result<RekorEntry, TestLogError> {
        self.entry_at(index, self.size())
    }

    /// The entry response for leaf `index`, proved in the tree of the first
    /// `size` leaves, with its signed checkpoint and SET.
    pub fn entry_at(&self, index: u64, size: u64) -> Result<RekorEntry, TestLogError> {
        let hashes = self.inclusion_proof(index, size)?;
        let i = usize::try_from(index).map_err(|_| TestLogError::OutOfRange {
            index,
            size,
            len: self.size(),
        })?;
        let (Some(body), Some(leaf), Some(t)) = (
            self.bodies.get(i),
            self.leaf_hashes.get(i),
            self.integrated_times.get(i),
        ) else {
            return Err(TestLogError::OutOfRange {
                index,
                size,
                len: self.size(),
            });
        };
        let mut entry = RekorEntry {
            uuid: Some(format!(
                "{:016x}{}",
                self.tree_id,
                auspex_wire::hex_lower(leaf)
            )),
            body_b64: STANDARD.encode(body),
            body: body.clone(),
            integrated_time: *t,
            log_id: Some(auspex_wire::hex_lower(&self.log_id()?)),
            log_index: index + self.index_offset,
            inclusion_proof: Some(InclusionProof {
                log_index: index,
                tree_size: size,
                root_hash: auspex_wire::hex_lower(&self.root(size)?),
                hashes: hashes.iter().map(|h| auspex_wire::hex_lower(h)).collect(),
                checkpoint: Some(self.signed_checkpoint(size)?),
            }),
            signed_entry_timestamp: None,
        };
        entry.signed_entry_timestamp = Some(self.sign_set(&entry)?);
        Ok(entry)
    }

    /// This log as a trusted-root entry with the given validity window.
    pub fn transparency_log(
        &self,
        valid_from: Option<Timestamp>,
        valid_until: Option<Timestamp>,
    ) -> Result<TransparencyLog, TestLogError> {
        Ok(TransparencyLog::new(
            self.base_url(),
            self.key.clone(),
            valid_from,
            valid_until,
        )?)
    }

    /// A trusted root holding only this log, valid from the Unix epoch on.
    pub fn trusted_root(&self) -> TrustedRoot {
        // `TransparencyLog::new` cannot fail here: `new` checked the key encodes.
        match self.transparency_log(Some(Timestamp::from_unix(0)), None) {
            Ok(t) => TrustedRoot::new(vec![t]),
            Err(_) => TrustedRoot::new(Vec::new()),
        }
    }
}

/// A `rekord` 0.0.1 entry body in Rekor's canonical form: `spec.data.hash`
/// the artifact's SHA-256, `spec.signature` the detached signature and the
/// signer's public key (PEM), both base64, format `x509` — what the
/// coordinator posts, after Rekor's canonicalisation.
pub fn rekord_body(artifact_sha256: &[u8; 32], signature: &[u8], public_key_pem: &[u8]) -> Vec<u8> {
    let mut hash = Object::new();
    hash.insert("algorithm".into(), Value::from("sha256"));
    hash.insert(
        "value".into(),
        Value::from(auspex_wire::hex_lower(artifact_sha256)),
    );
    let mut data = Object::new();
    data.insert("hash".into(), Value::Object(hash));
    let mut public_key = Object::new();
    public_key.insert(
        "content".into(),
        Value::from(STANDARD.encode(public_key_pem)),
    );
    let mut sig = Object::new();
    sig.insert("content".into(), Value::from(STANDARD.encode(signature)));
    sig.insert("format".into(), Value::from("x509"));
    sig.insert("publicKey".into(), Value::Object(public_key));
    let mut spec = Object::new();
    spec.insert("data".into(), Value::Object(data));
    spec.insert("signature".into(), Value::Object(sig));
    let mut o = Object::new();
    o.insert("apiVersion".into(), Value::from("0.0.1"));
    o.insert("kind".into(), Value::from("rekord"));
    o.insert("spec".into(), Value::Object(spec));
    auspex_wire::json::canonical(&Value::Object(o)).into_bytes()
}
