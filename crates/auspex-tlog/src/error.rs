//! The crate's error type.

use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

use crate::kinds::ProposalError;

/// Everything that can go wrong opening, appending to, reading or serving
/// the log.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlogError {
    /// The SQLite database failed.
    #[error("transparency-log database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A file or directory of the state directory cannot be read or made.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing the key file failed.
    #[error(transparent)]
    Write(#[from] auspex_crypto::atomic::AtomicWriteError),
    /// The key file is not a usable PKCS#8 PEM Ed25519 or P-256 key.
    #[error("log key {path}: {reason}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The database holds a log but its key file is gone.
    #[error(
        "the state directory holds a log (log ID {log_id}) but its key {path} is missing; \
         restore the key or start from an empty directory"
    )]
    KeyMissing {
        /// Where the key should be.
        path: PathBuf,
        /// The log ID the database was created with.
        log_id: String,
    },
    /// The key file is not the key the log was created with.
    #[error("log key {path} has log ID {found}, but the log was created with {stored}")]
    KeyMismatch {
        /// The key file.
        path: PathBuf,
        /// The log ID in the database.
        stored: String,
        /// The key file's log ID.
        found: String,
    },
    /// The log's key is of another type than the one asked for.
    #[error("the log's key is {found}, not the requested {requested}")]
    KeyTypeMismatch {
        /// The key type asked for.
        requested: &'static str,
        /// The existing key's type.
        found: &'static str,
    },
    /// The log was created under another name.
    #[error("the log signs as {stored:?}; it cannot be reopened as {requested:?}")]
    NameMismatch {
        /// The name in the database.
        stored: String,
        /// The name asked for.
        requested: String,
    },
    /// The name cannot be a log's host name.
    #[error(
        "log name {0:?} must be a host name or IP address (letters, digits, '.', '-', or [IPv6])"
    )]
    InvalidName(String),
    /// The database is not a log this crate wrote, or is damaged.
    #[error("the transparency-log state is damaged: {0}")]
    Corrupt(String),
    /// A log key or signature could not be encoded.
    #[error(transparent)]
    Key(#[from] auspex_crypto::tlog::KeyError),
    /// A signed entry timestamp could not be formed.
    #[error(transparent)]
    Set(#[from] auspex_crypto::tlog::SetError),
    /// The proposed entry is not one the log accepts.
    #[error(transparent)]
    Proposal(#[from] ProposalError),
    /// No entry has this UUID, leaf hash or index.
    #[error("no entry {0} in the log")]
    NoSuchEntry(String),
    /// A tree size beyond the log.
    #[error("tree size {size} is beyond the log's {tree_size}")]
    SizeOutOfRange {
        /// The size asked for.
        size: u64,
        /// The log's size.
        tree_size: u64,
    },
    /// A consistency proof between sizes in the wrong order, or from 0.
    #[error("consistency proof from size {first} to {last}: {reason}")]
    ProofRange {
        /// The first size.
        first: u64,
        /// The last size.
        last: u64,
        /// Why.
        reason: &'static str,
    },
    /// An entry ID is neither 64 nor 80 hex digits.
    #[error("entry ID {0:?} is neither 64 hex digits (leaf hash) nor 80 (tree ID + leaf hash)")]
    EntryId(String),
    /// The server may bind loopback addresses only.
    #[error("the transparency log binds loopback addresses only, not {0}")]
    NotLoopback(SocketAddr),
    /// Binding the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server failed.
    #[error("transparency-log server: {0}")]
    Serve(std::io::Error),
    /// The log's writer stopped (the server is shutting down), or a batched
    /// write failed.
    #[error("transparency-log writer: {0}")]
    Writer(String),
    /// A background task failed.
    #[error("transparency-log task failed: {0}")]
    Task(String),
}

impl TlogError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> TlogError {
        TlogError::Io {
            path: path.into(),
            source,
        }
    }
}
