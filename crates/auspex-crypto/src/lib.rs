//! `auspex-crypto` owns keys and signatures: tenant key files (PKCS#8 PEM,
//! created 0600, written atomically) and, as the project grows, every signing
//! and verification construction of the protocol. It never prints.
#![deny(missing_docs)]

pub mod atomic;
pub mod attestation;
pub mod cose;
pub mod custody;
#[doc(hidden)]
pub mod fuzzing;
pub mod http_sig;
pub mod keys;
pub mod manifest;
pub mod merkle;
pub mod report;
pub mod tlog;
pub mod worker_sig;
