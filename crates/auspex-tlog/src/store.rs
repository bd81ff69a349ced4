//! The durable log: one SQLite database (WAL, `synchronous=FULL`) and one
//! key file under the state directory.
//!
//! ```text
//! <state>/tlog.sqlite3   meta (tree ID, name, log ID, key creation time),
//!                        leaves (index, leaf hash, UUID, integratedTime, body),
//!                        nodes (level, index) → hash of each complete subtree
//! <state>/log-key.pem    PKCS#8 PEM private key, mode 0600
//! ```
//!
//! Appends are transactions: the leaf, its node and the parents it
//! completes are committed together (and a batch of appends in one
//! transaction), so an acknowledged entry survives a crash and a crash
//! mid-append leaves the tree as it was. Nodes are never rewritten, so every
//! checkpoint the log ever signed stays provable from the stored nodes.
//! Checkpoints and signed entry timestamps are deterministic (Ed25519, and
//! RFC 6979 ECDSA): the checkpoint of size `n` carries the integration time
//! of leaf `n − 1` as its `Timestamp:` line, so it is the same note whenever
//! it is asked for.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auspex_crypto::merkle::{self, Hash};
use auspex_crypto::tlog::testlog::LogSigner;
use auspex_crypto::tlog::{
    Checkpoint, InclusionProof, LogKey, RekorEntry, Timestamp, TransparencyLog, TrustedRoot,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use crate::error::TlogError;
use crate::keyfile::{self, KeyType};
use crate::kinds;
use crate::tree::{self, NodeSource};

/// The database file inside the state directory.
pub const DB_FILE: &str = "tlog.sqlite3";
/// The private-key file inside the state directory.
pub const KEY_FILE: &str = "log-key.pem";
/// The name a new log signs as unless told otherwise.
pub const DEFAULT_NAME: &str = "127.0.0.1";

const SCHEMA_VERSION: &str = "1";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leaves (
    idx             INTEGER PRIMARY KEY,
    leaf_hash       BLOB NOT NULL UNIQUE,
    uuid            TEXT NOT NULL,
    integrated_time INTEGER NOT NULL,
    body            BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
";

/// How to open (or create) a log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogOptions {
    /// The host name the log signs as (checkpoint origin `<name> - <tree
    /// ID>` and signature name; the host of its URL). `None`: the stored
    /// name, or [`DEFAULT_NAME`] for a new log. A different name than the
    /// stored one is refused.
    pub name: Option<String>,
    /// The key type of a new log (default Ed25519). An existing log keeps
    /// its key; asking for another type is refused.
    pub key_type: Option<KeyType>,
}

impl LogOptions {
    /// Options naming the log `name`.
    pub fn named(name: impl Into<String>) -> LogOptions {
        LogOptions {
            name: Some(name.into()),
            key_type: None,
        }
    }

    /// These options with the key type of a new log.
    #[must_use]
    pub fn with_key_type(mut self, key_type: KeyType) -> LogOptions {
        self.key_type = Some(key_type);
        self
    }
}

/// The log's fixed identity, shared by every connection.
pub(crate) struct Identity {
    pub(crate) signer: LogSigner,
    pub(crate) key: LogKey,
    pub(crate) key_type: KeyType,
    pub(crate) log_id: [u8; 32],
    pub(crate) log_id_hex: String,
    pub(crate) public_key_pem: String,
    pub(crate) tree_id: u64,
    pub(crate) name: String,
    pub(crate) key_created: i64,
    pub(crate) db_path: PathBuf,
}

impl Identity {
    pub(crate) fn origin(&self) -> String {
        format!("{} - {}", self.name, self.tree_id)
    }

    pub(crate) fn transparency_log(&self, base_url: &str) -> Result<TransparencyLog, TlogError> {
        Ok(TransparencyLog::new(
            base_url,
            self.key.clone(),
            Some(Timestamp::from_unix(self.key_created)),
            None,
        )?)
    }
}

/// One appended (or already present) entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Its leaf index (and log index).
    pub index: u64,
    /// Its entry UUID: 16 hex digits of tree ID, then the leaf hash.
    pub uuid: String,
    /// `SHA-256(0x00 ‖ body)`.
    pub leaf_hash: Hash,
    /// When the log integrated it (Unix seconds).
    pub integrated_time: i64,
    /// True if the body was already in the log (nothing was appended; the
    /// fields describe the existing entry).
    pub duplicate: bool,
}

/// A signed checkpoint and what it states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The tree size.
    pub size: u64,
    /// The root of the tree of that size.
    pub root_hash: Hash,
    /// The C2SP signed note.
    pub note: String,
}

/// A stored leaf.
pub(crate) struct Leaf {
    pub(crate) index: u64,
    pub(crate) leaf_hash: Hash,
    pub(crate) body: Vec<u8>,
    pub(crate) integrated_time: i64,
}

/// The entry UUID of a leaf: tree ID in 16 hex digits, then the leaf hash.
pub fn entry_uuid(tree_id: u64, leaf_hash: &Hash) -> String {
    format!("{tree_id:016x}{}", auspex_wire::hex_lower(leaf_hash))
}

/// Splits an entry ID (64 hex digits: the leaf hash; 80: tree ID + leaf
/// hash; either case) into its tree ID, if any, and leaf hash.
pub fn parse_entry_id(id: &str) -> Result<(Option<u64>, Hash), TlogError> {
    let bad = || TlogError::EntryId(id.chars().take(100).collect());
    if !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let (tree, leaf) = match id.len() {
        64 => (None, id),
        80 => {
            let (t, l) = id.split_at(16);
            (Some(u64::from_str_radix(t, 16).map_err(|_| bad())?), l)
        }
        _ => return Err(bad()),
    };
    let mut hash = [0u8; 32];
    for (i, out) in hash.iter_mut().enumerate() {
        let pair = leaf.get(2 * i..2 * i + 2).ok_or_else(bad)?;
        *out = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok((tree, hash))
}

fn to_i64(v: u64) -> Result<i64, TlogError> {
    i64::try_from(v).map_err(|_| TlogError::Corrupt(format!("index {v} beyond SQLite's range")))
}

fn to_hash(v: Vec<u8>, what: &str) -> Result<Hash, TlogError> {
    v.try_into()
        .map_err(|_| TlogError::Corrupt(format!("{what} is not 32 bytes")))
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn open_connection(path: &Path) -> Result<Connection, TlogError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(TlogError::Corrupt(format!(
            "{} cannot use WAL journaling (got {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// Read access to the tree through one connection.
pub(crate) struct View<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) id: &'a Identity,
}

impl NodeSource for View<'_> {
    fn node(&self, level: u32, index: u64) -> Result<Hash, TlogError> {
        let hash: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT hash FROM nodes WHERE level = ?1 AND idx = ?2")?
            .query_row(params![level, to_i64(index)?], |r| r.get(0))
            .optional()?;
        match hash {
            Some(h) => to_hash(h, "a node hash"),
            None => Err(TlogError::Corrupt(format!(
                "subtree node (level {level}, index {index}) is missing"
            ))),
        }
    }
}

impl View<'_> {
    pub(crate) fn size(&self) -> Result<u64, TlogError> {
        let max: Option<i64> = self
            .conn
            .prepare_cached("SELECT MAX(idx) FROM leaves")?
            .query_row([], |r| r.get(0))?;
        match max {
            None => Ok(0),
            Some(m) => u64::try_from(m)
                .map(|m| m + 1)
                .map_err(|_| TlogError::Corrupt(format!("negative leaf index {m}"))),
        }
    }

    fn leaf_where(&self, sql: &str, arg: &dyn rusqlite::ToSql) -> Result<Option<Leaf>, TlogError> {
        let row: Option<(i64, Vec<u8>, Vec<u8>, i64)> = self
            .conn
            .prepare_cached(sql)?
            .query_row([arg], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        let Some((index, leaf_hash, body, integrated_time)) = row else {
            return Ok(None);
        };
        Ok(Some(Leaf {
            index: u64::try_from(index)
                .map_err(|_| TlogError::Corrupt(format!("negative leaf index {index}")))?,
            leaf_hash: to_hash(leaf_hash, "a leaf hash")?,
            body,
            integrated_time,
        }))
    }

    pub(crate) fn leaf_by_index(&self, index: u64) -> Result<Option<Leaf>, TlogError> {
        let Ok(i) = i64::try_from(index) else {
            return Ok(None);
        };
        self.leaf_where(
            "SELECT idx, leaf_hash, body, integrated_time FROM leaves WHERE idx = ?1",
            &i,
        )
    }

    pub(crate) fn leaf_by_hash(&self, leaf_hash: &Hash) -> Result<Option<Leaf>, TlogError> {
        self.leaf_where(
            "SELECT idx, leaf_hash, body, integrated_time FROM leaves WHERE leaf_hash = ?1",
            &leaf_hash.as_slice(),
        )
    }

    fn leaf_meta_by_hash(&self, leaf_hash: &Hash) -> Result<Option<(u64, i64)>, TlogError> {
        let row: Option<(i64, i64)> = self
            .conn
            .prepare_cached("SELECT idx, integrated_time FROM leaves WHERE leaf_hash = ?1")?
            .query_row([leaf_hash.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(i, t)| {
            u64::try_from(i)
                .map(|i| (i, t))
                .map_err(|_| TlogError::Corrupt(format!("negative leaf index {i}")))
        })
        .transpose()
    }

    fn integrated_time(&self, index: u64) -> Result<i64, TlogError> {
        self.conn
            .prepare_cached("SELECT integrated_time FROM leaves WHERE idx = ?1")?
            .query_row([to_i64(index)?], |r| r.get(0))
            .optional()?
            .ok_or_else(|| TlogError::Corrupt(format!("leaf {index} is missing")))
    }

    /// Checks `size` against the tree.
    pub(crate) fn check_size(&self, size: u64) -> Result<u64, TlogError> {
        let tree_size = self.size()?;
        if size > tree_size {
            return Err(TlogError::SizeOutOfRange { size, tree_size });
        }
        Ok(tree_size)
    }

    pub(crate) fn root(&self, size: u64) -> Result<Hash, TlogError> {
        tree::range_hash(self, 0, size)
    }

    /// The signed checkpoint of the first `size` leaves (`size` ≤ the tree).
    pub(crate) fn checkpoint(&self, size: u64) -> Result<SignedCheckpoint, TlogError> {
        let root_hash = self.root(size)?;
        let secs = match size.checked_sub(1) {
            None => self.id.key_created,
            Some(last) => self.integrated_time(last)?,
        };
        let cp = Checkpoint {
            origin: self.id.origin(),
            size,
            root_hash,
            extensions: vec![format!("Timestamp: {}", i128::from(secs) * 1_000_000_000)],
        };
        let note = self.id.signer.sign_checkpoint(&self.id.name, &cp)?;
        Ok(SignedCheckpoint {
            size,
            root_hash,
            note,
        })
    }

    /// The entry response for `leaf`, proved against `checkpoint`.
    pub(crate) fn entry(
        &self,
        leaf: &Leaf,
        checkpoint: &SignedCheckpoint,
    ) -> Result<RekorEntry, TlogError> {
        let hashes = tree::inclusion_proof(self, leaf.index, checkpoint.size)?;
        let mut entry = RekorEntry {
            uuid: Some(entry_uuid(self.id.tree_id, &leaf.leaf_hash)),
            body_b64: STANDARD.encode(&leaf.body),
            body: leaf.body.clone(),
            integrated_time: leaf.integrated_time,
            log_id: Some(self.id.log_id_hex.clone()),
            log_index: leaf.index,
            inclusion_proof: Some(InclusionProof {
                log_index: leaf.index,
                tree_size: checkpoint.size,
                root_hash: auspex_wire::hex_lower(&checkpoint.root_hash),
                hashes: hashes.iter().map(|h| auspex_wire::hex_lower(h)).collect(),
                checkpoint: Some(checkpoint.note.clone()),
            }),
            signed_entry_timestamp: None,
        };
        entry.signed_entry_timestamp = Some(self.id.signer.sign_entry_set(&entry)?);
        Ok(entry)
    }

    pub(crate) fn consistency_proof(&self, first: u64, last: u64) -> Result<Vec<Hash>, TlogError> {
        if first == 0 {
            return Err(TlogError::ProofRange {
                first,
                last,
                reason: "the first size must be at least 1",
            });
        }
        if first > last {
            return Err(TlogError::ProofRange {
                first,
                last,
                reason: "the first size is larger than the last",
            });
        }
        self.check_size(last)?;
        tree::consistency_proof(self, first, last)
    }

    pub(crate) fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, TlogError> {
        self.check_size(size)?;
        if index >= size {
            return Err(TlogError::NoSuchEntry(format!(
                "with index {index} in a tree of size {size}"
            )));
        }
        tree::inclusion_proof(self, index, size)
    }
}

/// A transparency log in a state directory (the synchronous API; the HTTP
/// service is [`crate::serve`]).
pub struct Log {
    conn: Connection,
    id: Arc<Identity>,
    dir: PathBuf,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("name", &self.id.name)
            .field("tree_id", &self.id.tree_id)
            .field("log_id", &self.id.log_id_hex)
            .finish_non_exhaustive()
    }
}

fn validate_name(name: &str) -> Result<(), TlogError> {
    let ok_host = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let ok_v6 = name.len() > 2
        && name.starts_with('[')
        && name.ends_with(']')
        && name[1..name.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    if ok_host || ok_v6 {
        Ok(())
    } else {
        Err(TlogError::InvalidName(name.chars().take(100).collect()))
    }
}

fn meta(conn: &Connection, key: &str) -> Result<Option<String>, TlogError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

fn meta_req(conn: &Connection, key: &str) -> Result<String, TlogError> {
    meta(conn, key)?.ok_or_else(|| TlogError::Corrupt(format!("meta {key} is missing")))
}

impl Log {
    /// Opens the log in `dir`, creating the directory (0700), the database
    /// and an Ed25519 key on first use.
    pub fn open(dir: impl AsRef<Path>) -> Result<Log, TlogError> {
        Log::open_with(dir, &LogOptions::default())
    }

    /// [`Log::open`] with options.
    pub fn open_with(dir: impl AsRef<Path>, opts: &LogOptions) -> Result<Log, TlogError> {
        let dir = dir.as_ref().to_owned();
        if let Some(n) = &opts.name {
            validate_name(n)?;
        }
        auspex_crypto::atomic::create_dir_all(&dir, 0o700)?;
        let db_path = dir.join(DB_FILE);
        let key_path = dir.join(KEY_FILE);
        let mut conn = open_connection(&db_path)?;
        conn.execute_batch(SCHEMA)?;

        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing = meta(&tx, "tree_id")?;
        let (signer, tree_id, name, key_created) = match existing {
            Some(tree_id) => {
                let version = meta_req(&tx, "schema_version")?;
                if version != SCHEMA_VERSION {
                    return Err(TlogError::Corrupt(format!(
                        "schema version {version} is not {SCHEMA_VERSION}"
                    )));
                }
                let tree_id: u64 = tree_id
                    .parse()
                    .map_err(|_| TlogError::Corrupt(format!("tree ID {tree_id:?}")))?;
                let stored_id = meta_req(&tx, "log_id")?;
                let signer = keyfile::load(&key_path)?.ok_or_else(|| TlogError::KeyMissing {
                    path: key_path.clone(),
                    log_id: stored_id.clone(),
                })?;
                let found = auspex_wire::hex_lower(&signer.public_key().log_id()?);
                if found != stored_id {
                    return Err(TlogError::KeyMismatch {
                        path: key_path,
                        stored: stored_id,
                        found,
                    });
                }
                let name = meta_req(&tx, "name")?;
                if let Some(requested) = &opts.name
                    && *requested != name
                {
                    return Err(TlogError::NameMismatch {
                        stored: name,
                        requested: requested.clone(),
                    });
                }
                let created = meta_req(&tx, "key_created")?;
                let key_created: i64 = created
                    .parse()
                    .map_err(|_| TlogError::Corrupt(format!("key_created {created:?}")))?;
                (signer, tree_id, name, key_created)
            }
            None => {
                let signer = match keyfile::load(&key_path)? {
                    Some(s) => s,
                    None => keyfile::create(&key_path, opts.key_type.unwrap_or_default())?,
                };
                let tree_id = loop {
                    let r = getrandom::u64().map_err(|e| TlogError::KeyFile {
                        path: key_path.clone(),
                        reason: format!("no randomness for the tree ID: {e}"),
                    })? & (i64::MAX as u64);
                    if r != 0 {
                        break r;
                    }
                };
                let name = opts.name.clone().unwrap_or_else(|| DEFAULT_NAME.to_owned());
                let key_created = unix_now();
                let log_id = auspex_wire::hex_lower(&signer.public_key().log_id()?);
                for (k, v) in [
                    ("schema_version", SCHEMA_VERSION.to_owned()),
                    ("tree_id", tree_id.to_string()),
                    ("name", name.clone()),
                    ("log_id", log_id),
                    ("key_created", key_created.to_string()),
                ] {
                    tx.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", [k, &v])?;
                }
                (signer, tree_id, name, key_created)
            }
        };
        let key_type = KeyType::of(&signer)
            .ok_or_else(|| TlogError::Corrupt("unsupported key type".into()))?;
        if let Some(want) = opts.key_type
            && want != key_type
        {
            return Err(TlogError::KeyTypeMismatch {
                requested: want.name(),
                found: key_type.name(),
            });
        }
        tx.commit()?;
        let key = signer.public_key();
        let log_id = key.log_id()?;
        let public_key_pem = kinds::public_key_pem(&key)?;
        let id = Identity {
            signer,
            key,
            key_type,
            log_id,
            log_id_hex: auspex_wire::hex_lower(&log_id),
            public_key_pem,
            tree_id,
            name,
            key_created,
            db_path,
        };
        Ok(Log {
            conn,
            id: Arc::new(id),
            dir,
        })
    }

    pub(crate) fn identity(&self) -> Arc<Identity> {
        Arc::clone(&self.id)
    }

    fn view(&self) -> View<'_> {
        View {
            conn: &self.conn,
            id: &self.id,
        }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The host name the log signs as.
    pub fn name(&self) -> &str {
        &self.id.name
    }

    /// The checkpoint origin: `<name> - <tree ID>`.
    pub fn origin(&self) -> String {
        self.id.origin()
    }

    /// The tree ID (the first 16 hex digits of every entry UUID).
    pub fn tree_id(&self) -> u64 {
        self.id.tree_id
    }

    /// The key's algorithm.
    pub fn key_type(&self) -> KeyType {
        self.id.key_type
    }

    /// The log's public key.
    pub fn public_key(&self) -> &LogKey {
        &self.id.key
    }

    /// The public key as PEM (what `GET /api/v1/log/publicKey` serves).
    pub fn public_key_pem(&self) -> &str {
        &self.id.public_key_pem
    }

    /// The log ID: SHA-256 of the DER public key.
    pub fn log_id(&self) -> [u8; 32] {
        self.id.log_id
    }

    /// When the key was first used (the start of its validity).
    pub fn key_created(&self) -> Timestamp {
        Timestamp::from_unix(self.id.key_created)
    }

    /// This log as a trusted-root entry served at `base_url` (whose host
    /// must be [`Log::name`] for checkpoints to verify).
    pub fn transparency_log(&self, base_url: &str) -> Result<TransparencyLog, TlogError> {
        self.id.transparency_log(base_url)
    }

    /// A Sigstore trusted root holding this log at `base_url`.
    pub fn trusted_root(&self, base_url: &str) -> Result<TrustedRoot, TlogError> {
        Ok(TrustedRoot::new(vec![self.transparency_log(base_url)?]))
    }

    /// Number of entries.
    pub fn size(&self) -> Result<u64, TlogError> {
        self.view().size()
    }

    /// The root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, TlogError> {
        let v = self.view();
        v.check_size(size)?;
        v.root(size)
    }

    /// Appends one entry body (used as given: see [`Log::submit`] for
    /// proposed entries) and commits it.
    pub fn append(&mut self, body: Vec<u8>) -> Result<Appended, TlogError> {
        self.append_batch(vec![body])?
            .pop()
            .ok_or_else(|| TlogError::Writer("an append returned nothing".into()))
    }

    /// Appends bodies in one transaction (one fsync), in order; a body
    /// already in the log (or earlier in the batch) is reported as a
    /// duplicate and not appended again. All or nothing.
    pub fn append_batch(&mut self, bodies: Vec<Vec<u8>>) -> Result<Vec<Appended>, TlogError> {
        let id = Arc::clone(&self.id);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(bodies.len());
        {
            let view = View { conn: &tx, id: &id };
            let mut size = view.size()?;
            let last = match size.checked_sub(1) {
                None => id.key_created,
                Some(i) => view.integrated_time(i)?,
            };
            let now = unix_now().max(last).max(id.key_created);
            let mut in_batch: HashMap<Hash, usize> = HashMap::new();
            for body in bodies {
                let leaf = merkle::leaf_hash(&body);
                if let Some(&at) = in_batch.get(&leaf) {
                    if let Some(prev) = out.get(at).cloned() {
                        out.push(Appended {
                            duplicate: true,
                            ..prev
                        });
                    }
                    continue;
                }
                if let Some((index, t)) = view.leaf_meta_by_hash(&leaf)? {
                    out.push(Appended {
                        index,
                        uuid: entry_uuid(id.tree_id, &leaf),
                        leaf_hash: leaf,
                        integrated_time: t,
                        duplicate: true,
                    });
                    continue;
                }
                let uuid = entry_uuid(id.tree_id, &leaf);
                tx.prepare_cached(
                    "INSERT INTO leaves (idx, leaf_hash, uuid, integrated_time, body) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    to_i64(size)?,
                    leaf.as_slice(),
                    uuid,
                    now,
                    body
                ])?;
                for (level, idx, hash) in tree::completed_nodes(&view, size, leaf)? {
                    tx.prepare_cached("INSERT INTO nodes (level, idx, hash) VALUES (?1, ?2, ?3)")?
                        .execute(params![level, to_i64(idx)?, hash.as_slice()])?;
                }
                in_batch.insert(leaf, out.len());
                out.push(Appended {
                    index: size,
                    uuid,
                    leaf_hash: leaf,
                    integrated_time: now,
                    duplicate: false,
                });
                size += 1;
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Checks a proposed entry (`rekord` 0.0.1, `intoto` 0.0.2), computes
    /// its canonical body and appends it.
    pub fn submit(&mut self, proposed: &[u8]) -> Result<Appended, TlogError> {
        let body = kinds::canonical_body(proposed)?;
        self.append(body)
    }

    /// The signed checkpoint of the whole log.
    pub fn checkpoint(&self) -> Result<SignedCheckpoint, TlogError> {
        let v = self.view();
        v.checkpoint(v.size()?)
    }

    /// The signed checkpoint of the first `size` leaves.
    pub fn checkpoint_at(&self, size: u64) -> Result<SignedCheckpoint, TlogError> {
        let v = self.view();
        v.check_size(size)?;
        v.checkpoint(size)
    }

    /// The entry at `index` with an inclusion proof against the whole log,
    /// its signed checkpoint and the SET.
    pub fn entry(&self, index: u64) -> Result<RekorEntry, TlogError> {
        let v = self.view();
        let size = v.size()?;
        self.entry_at(index, size)
    }

    /// The entry at `index`, proved in the tree of the first `size` leaves.
    pub fn entry_at(&self, index: u64, size: u64) -> Result<RekorEntry, TlogError> {
        let v = self.view();
        v.check_size(size)?;
        if index >= size {
            return Err(TlogError::NoSuchEntry(format!(
                "with index {index} in a tree of size {size}"
            )));
        }
        let leaf = v
            .leaf_by_index(index)?
            .ok_or_else(|| TlogError::Corrupt(format!("leaf {index} is missing")))?;
        v.entry(&leaf, &v.checkpoint(size)?)
    }

    /// The entry with this ID (64-hex leaf hash or 80-hex UUID), proved
    /// against the whole log.
    pub fn entry_by_id(&self, id: &str) -> Result<RekorEntry, TlogError> {
        let (tree, leaf_hash) = parse_entry_id(id)?;
        let v = self.view();
        let missing = || TlogError::NoSuchEntry(id.to_ascii_lowercase());
        if tree.is_some_and(|t| t != self.id.tree_id) {
            return Err(missing());
        }
        let leaf = v.leaf_by_hash(&leaf_hash)?.ok_or_else(missing)?;
        let size = v.size()?;
        v.entry(&leaf, &v.checkpoint(size)?)
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, TlogError> {
        self.view().inclusion_proof(index, size)
    }

    /// The consistency proof from the first `first` leaves to the first
    /// `last` (`0 < first ≤ last ≤ size`; empty when equal).
    pub fn consistency_proof(&self, first: u64, last: u64) -> Result<Vec<Hash>, TlogError> {
        self.view().consistency_proof(first, last)
    }

    /// Recomputes every leaf hash and subtree node from the stored bodies
    /// and compares them with the stored ones (a full pass: for tests and
    /// repair tools). Returns the size checked.
    pub fn verify_integrity(&self) -> Result<u64, TlogError> {
        let v = self.view();
        let size = v.size()?;
        let mut stmt = self
            .conn
            .prepare("SELECT idx, leaf_hash, body FROM leaves ORDER BY idx")?;
        let mut rows = stmt.query([])?;
        let mut expected = 0u64;
        while let Some(row) = rows.next()? {
            let idx: i64 = row.get(0)?;
            let stored: Vec<u8> = row.get(1)?;
            let body: Vec<u8> = row.get(2)?;
            if u64::try_from(idx).ok() != Some(expected) {
                return Err(TlogError::Corrupt(format!(
                    "leaf index {idx} where {expected} was expected"
                )));
            }
            let leaf = merkle::leaf_hash(&body);
            if stored != leaf {
                return Err(TlogError::Corrupt(format!(
                    "leaf {idx}: stored hash is not the body's"
                )));
            }
            for (level, i, hash) in tree::completed_nodes(&v, expected, leaf)? {
                if v.node(level, i)? != hash {
                    return Err(TlogError::Corrupt(format!(
                        "node (level {level}, index {i}) does not match the leaves"
                    )));
                }
            }
            expected += 1;
        }
        let nodes: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM nodes", [], |r| r.get(0))?;
        let want = 2 * size - u64::from(size.count_ones());
        if u64::try_from(nodes).ok() != Some(want) {
            return Err(TlogError::Corrupt(format!(
                "{nodes} subtree nodes stored, {want} expected for {size} leaves"
            )));
        }
        Ok(size)
    }
}

/// A second connection to a log's database, for concurrent reads.
pub(crate) struct Reader {
    conn: Connection,
    id: Arc<Identity>,
}

impl Reader {
    pub(crate) fn open(id: Arc<Identity>) -> Result<Reader, TlogError> {
        let conn = open_connection(&id.db_path)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(Reader { conn, id })
    }

    pub(crate) fn view(&self) -> View<'_> {
        View {
            conn: &self.conn,
            id: &self.id,
        }
    }
}
