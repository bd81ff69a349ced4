//! `auspex-wire` owns every wire object of the AuspexAI protocol as a Rust type,
//! their validation with precise error paths, and the two byte-exact encodings
//! everything else hashes or signs:
//!
//! * [`json`] — JSON with Python's semantics: a parser that agrees with
//!   `json.loads`, the Python-canonical encoder behind every hash, and the
//!   Pydantic layouts behind the manifest signing input and SDK-written files.
//!
//! This crate does no I/O beyond what a caller hands it as bytes, never prints,
//! and never panics on input it did not produce itself.
//!
//! ```
//! use auspex_wire::json;
//! let v = json::parse(br#"{"b": 1.10, "a": "caf\u00e9"}"#).unwrap();
//! assert_eq!(json::canonical(&v), r#"{"a":"caf\u00e9","b":1.1}"#);
//! ```
#![deny(missing_docs)]

pub mod attestation;
pub mod bundle;
pub mod executor_output;
#[doc(hidden)]
pub mod fuzzing;
pub mod journal;
pub mod json;
pub mod manifest;
pub mod package;
pub mod receipt;
pub mod reducer;
pub mod result;
pub mod sse;
pub mod validate;
pub mod workunit;

use sha2::{Digest, Sha256};

/// Lowercase hex of SHA-256 over `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex_lower(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
pub fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}
