//! RFC 6962 / RFC 9162 Merkle tree hashing and proofs — the transparency
//! log's tree (Rekor, C2SP checkpoints). Not the result-set tree: that one
//! duplicates odd nodes (see [`super::result_set`]).

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::Hash;

/// Why a proof does not verify (or cannot be made).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The proof has the wrong number of hashes for these sizes/index.
    #[error("proof has {got} hashes, want {want}")]
    WrongProofSize {
        /// Hashes supplied.
        got: usize,
        /// Hashes the tree shape requires.
        want: usize,
    },
    /// The root computed from the proof is not the expected root (for a
    /// consistency proof: the second, larger tree's root).
    #[error(
        "computed root {} does not match expected root {}",
        auspex_wire::hex_lower(calculated),
        auspex_wire::hex_lower(expected)
    )]
    RootMismatch {
        /// The root the caller trusts.
        expected: Hash,
        /// The root the proof leads to.
        calculated: Hash,
    },
    /// A consistency proof does not lead to the first (smaller) tree's root.
    #[error(
        "computed first root {} does not match expected first root {}",
        auspex_wire::hex_lower(calculated),
        auspex_wire::hex_lower(expected)
    )]
    FirstRootMismatch {
        /// The first root the caller trusts.
        expected: Hash,
        /// The first root the proof leads to.
        calculated: Hash,
    },
    /// A consistency proof from a larger to a smaller tree.
    #[error("first size {size1} is larger than second size {size2}")]
    SizeOrder {
        /// The first tree size.
        size1: u64,
        /// The second tree size.
        size2: u64,
    },
    /// A consistency proof from the empty tree proves nothing (RFC 9162
    /// §2.1.4 requires `0 < first`).
    #[error("consistency from an empty tree is meaningless")]
    EmptyFirstTree,
    /// A hash in the input is not 32 bytes.
    #[error("{what} is {got} bytes, want 32")]
    HashLength {
        /// Which input (`"leaf hash"`, `"root"`, `"proof[3]"`, ...).
        what: String,
        /// Its length.
        got: usize,
    },
}

/// A 32-byte hash from a slice, naming the input on failure.
pub fn hash_from_slice(bytes: &[u8], what: &str) -> Result<Hash, ProofError> {
    bytes.try_into().map_err(|_| ProofError::HashLength {
        what: what.to_owned(),
        got: bytes.len(),
    })
}

/// The root of the empty tree, SHA-256 of nothing (RFC 6962 §2.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly below `n` (`n > 1`).
pub(super) fn split_point(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// `MTH` over already-hashed leaves (RFC 6962 §2.1).
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let k = split_point(leaves.len());
            let (l, r) = leaves.split_at(k);
            node_hash(&root_from_leaf_hashes(l), &root_from_leaf_hashes(r))
        }
    }
}

/// `MTH` over raw leaf data.
pub fn root_of<T: AsRef<[u8]>>(leaves: &[T]) -> Hash {
    let hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l.as_ref())).collect();
    root_from_leaf_hashes(&hashes)
}

/// The audit path of leaf `index` (RFC 6962 §2.1.1 `PATH`), bottom-up.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    let i = usize::try_from(index)
        .ok()
        .filter(|i| *i < leaves.len())
        .ok_or(ProofError::IndexOutOfRange { index, size })?;
    let mut proof = Vec::new();
    path(i, leaves, &mut proof);
    Ok(proof)
}

fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    if d.len() <= 1 {
        return;
    }
    let k = split_point(d.len());
    let (l, r) = d.split_at(k);
    if m < k {
        path(m, l, out);
        out.push(root_from_leaf_hashes(r));
    } else {
        path(m - k, r, out);
        out.push(root_from_leaf_hashes(l));
    }
}

/// The consistency proof from the first `size1` leaves to all of `leaves`
/// (RFC 6962 §2.1.2 `PROOF`).
pub fn consistency_proof(leaves: &[Hash], size1: u64) -> Result<Vec<Hash>, ProofError> {
    let size2 = leaves.len() as u64;
    if size1 > size2 {
        return Err(ProofError::SizeOrder { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyFirstTree);
    }
    let m = usize::try_from(size1).map_err(|_| ProofError::SizeOrder { size1, size2 })?;
    let mut proof = Vec::new();
    subproof(m, leaves, true, &mut proof);
    Ok(proof)
}

fn subproof(m: usize, d: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !complete {
            out.push(root_from_leaf_hashes(d));
        }
        return;
    }
    let k = split_point(n);
    let (l, r) = d.split_at(k);
    if m <= k {
        subproof(m, l, complete, out);
        out.push(root_from_leaf_hashes(r));
    } else {
        subproof(m - k, r, false, out);
        out.push(root_from_leaf_hashes(l));
    }
}

/// Bit length of `x` (0 for 0).
fn bit_len(x: u64) -> usize {
    (u64::BITS - x.leading_zeros()) as usize
}

/// Number of proof hashes for leaf `index` in a tree of `size` (`index <
/// size`): the levels below where the paths to `index` and `size − 1`
/// diverge, plus one left sibling per set bit above.
pub(super) fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = bit_len(index ^ (size - 1));
    // `inner` can be 64 for sizes near 2^64 (peer input): shift checked.
    inner + index.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize
}

/// The root an inclusion proof leads to (RFC 9162 §2.1.3.2), after checking
/// the index and the proof length.
pub fn root_from_inclusion_proof(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if leaf_index >= tree_size {
        return Err(ProofError::IndexOutOfRange {
            index: leaf_index,
            size: tree_size,
        });
    }
    let want = inclusion_proof_len(leaf_index, tree_size);
    if proof.len() != want {
        return Err(ProofError::WrongProofSize {
            got: proof.len(),
            want,
        });
    }
    let (mut fn_, mut sn) = (leaf_index, tree_size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            // Unreachable after the length check; kept as the RFC's guard.
            return Err(ProofError::WrongProofSize {
                got: proof.len(),
                want,
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    Ok(r)
}

/// Verifies that `leaf_hash` is leaf `leaf_index` of the tree of
/// `tree_size` leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let calculated = root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, proof)?;
    if calculated != *root {
        return Err(ProofError::RootMismatch {
            expected: *root,
            calculated,
        });
    }
    Ok(())
}

/// Number of hashes in a consistency proof from `size1` to `size2` (`0 <
/// size1 < size2`).
pub(super) fn consistency_proof_len(size1: u64, size2: u64) -> usize {
    let last = size1 - 1;
    let fork = bit_len(last ^ (size2 - 1));
    let border = last.checked_shr(fork as u32).unwrap_or(0).count_ones() as usize;
    let shift = size1.trailing_zeros() as usize;
    let seed = usize::from(!size1.is_power_of_two());
    // fork > shift whenever size1 < size2 (the paths to size1 − 1 and
    // size2 − 1 part above the rightmost perfect subtree of the first tree).
    seed + fork.saturating_sub(shift) + border
}

/// Verifies that the tree of `size2` leaves with root `root2` extends the
/// tree of `size1` leaves with root `root1` (RFC 9162 §2.1.4.2). Equal sizes
/// need an empty proof and equal roots; `size1 = 0` is refused.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), ProofError> {
    if size2 < size1 {
        return Err(ProofError::SizeOrder { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyFirstTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofSize {
                got: proof.len(),
                want: 0,
            });
        }
        if root1 != root2 {
            return Err(ProofError::RootMismatch {
                expected: *root2,
                calculated: *root1,
            });
        }
        return Ok(());
    }
    let want = consistency_proof_len(size1, size2);
    if proof.len() != want {
        return Err(ProofError::WrongProofSize {
            got: proof.len(),
            want,
        });
    }
    // RFC 9162 §2.1.4.2, step by step.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(*root1);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongProofSize { got: 0, want });
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::WrongProofSize {
                got: proof.len(),
                want,
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if fr != *root1 {
        return Err(ProofError::FirstRootMismatch {
            expected: *root1,
            calculated: fr,
        });
    }
    if sr != *root2 {
        return Err(ProofError::RootMismatch {
            expected: *root2,
            calculated: sr,
        });
    }
    if sn != 0 {
        return Err(ProofError::WrongProofSize {
            got: proof.len(),
            want,
        });
    }
    Ok(())
}
