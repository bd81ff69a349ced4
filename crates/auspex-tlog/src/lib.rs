//! `auspex-tlog` owns the devnet's transparency log: an RFC 6962 Merkle
//! tree in SQLite with the REST shape of Rekor v1, so that the coordinator
//! can anchor attestations in it and the official SDK's `--check-rekor`
//! (pointed at it through `rekor_url`) and our own offline verifier
//! ([`auspex_crypto::tlog::verify_entry`]) accept its entries.
//!
//! * [`Log`] — the synchronous library API over a state directory: append
//!   (transactional, crash-safe), entries with inclusion proofs, signed
//!   checkpoints, consistency proofs, the trusted root. Proofs read O(log n)
//!   stored subtree hashes (see the `tree` module notes in [`Log`]'s docs).
//! * [`serve`] — the HTTP service on a loopback address, returning a
//!   [`RunningTlog`] with its URL, trusted root and public key.
//! * [`canonical_body`] — what a proposed `rekord` 0.0.1 / `intoto` 0.0.2
//!   entry is stored as (Rekor's canonicalisation, with its signature
//!   checks).
//!
//! Signing and formatting (checkpoint notes, SETs, entry JSON, trusted-root
//! JSON) are `auspex_crypto::tlog`'s, the same code its verifier and its
//! in-memory test log use. The log's key (Ed25519 by default, ECDSA P-256 on
//! request) lives in the state directory with mode 0600; it signs
//! checkpoints as the log's host name (`127.0.0.1` by default), which is the
//! host of the log's URL, without the port, so that the log keeps one
//! identity when it is restarted on another port.
//!
//! ```no_run
//! # async fn demo() -> Result<(), auspex_tlog::TlogError> {
//! let tlog = auspex_tlog::serve(auspex_tlog::TlogConfig::new("/tmp/devnet/tlog")).await?;
//! println!("rekor_url = {}", tlog.url());
//! std::fs::write("/tmp/devnet/trusted_root.json", tlog.trusted_root_json()).ok();
//! tlog.shutdown().await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod error;
mod keyfile;
mod kinds;
mod server;
mod store;
mod tree;

pub use error::TlogError;
pub use keyfile::KeyType;
pub use kinds::{
    MAX_DSSE_SIGNATURES, MAX_KEY_OR_SIGNATURE_BYTES, MAX_LABEL_CHARS, MAX_NESTING, ProposalError,
    canonical_body, public_key_pem,
};
pub use server::{DEFAULT_MAX_BODY_BYTES, RunningTlog, TlogConfig, serve};
pub use store::{
    Appended, DB_FILE, DEFAULT_NAME, KEY_FILE, Log, LogOptions, SignedCheckpoint, entry_uuid,
    parse_entry_id,
};
