//! Merkle trees of the protocol: the result-set roots of attestations
//! (spec `tenant-sdk.md` §3c, algorithms `sha256-merkle-v0`/`-v1`), the
//! flat custody root (§3g) and RFC 6962 / RFC 9162 log trees with inclusion
//! and consistency proofs (§3f, for the transparency log).
//!
//! The two tree shapes differ on odd levels — the result-set tree
//! **duplicates** the last node, RFC 6962 splits at the largest power of
//! two — so each has its own builder and neither is reused for the other.
//!
//! ```
//! use auspex_crypto::merkle::{self, Algorithm, UnitLeaf};
//!
//! assert_eq!(merkle::result_set_root_hex(&[], Algorithm::V1), merkle::EMPTY_ROOT_HEX);
//!
//! let unit = UnitLeaf {
//!     unit_id: "u-0001",
//!     consensus_result_hash: "84db80aea1c9efdf9780191c37db919c78aef24a63eba74ef9c8cbc2a8186c89",
//!     receipt_id: "rcpt-0001",
//!     unit_payload_sha256: None,
//! };
//! // One unit: the root is its leaf hash.
//! assert_eq!(
//!     merkle::result_set_root_hex(&[unit], Algorithm::V0),
//!     "174307a9d1fe0420dfb9f1dab2658d66b544d6b7231aa9932c14cd009d67b5e7",
//! );
//!
//! let leaves: Vec<_> = (0u8..7).map(|i| merkle::leaf_hash(&[i])).collect();
//! let root = merkle::root_from_leaf_hashes(&leaves);
//! let proof = merkle::inclusion_proof(&leaves, 5).unwrap();
//! assert!(merkle::verify_inclusion(5, 7, &leaves[5], &proof, &root).is_ok());
//! ```

mod result_set;
mod rfc6962;

#[cfg(test)]
mod tests;

pub use result_set::{
    ALG_V0, ALG_V1, Algorithm, EMPTY_ROOT_HEX, LeafError, ResultSetHasher, UnitLeaf, dup_last_root,
    flat_custody_root, leaf_hashes, result_set_levels, result_set_root, result_set_root_hex,
};
pub use rfc6962::{
    ProofError, consistency_proof, empty_root, hash_from_slice, inclusion_proof, leaf_hash,
    node_hash, root_from_inclusion_proof, root_from_leaf_hashes, root_of, verify_consistency,
    verify_inclusion,
};

/// A SHA-256 digest, the node type of every tree here.
pub type Hash = [u8; 32];
