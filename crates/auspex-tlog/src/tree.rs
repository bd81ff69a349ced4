//! RFC 6962 proofs from stored complete subtrees.
//!
//! The store keeps, for every `level` and `index`, the hash of the perfect
//! subtree over leaves `[index·2^level, (index+1)·2^level)` once all its
//! leaves exist (level 0 = the leaf hashes). Appending leaf `n` writes its
//! leaf node and one parent per trailing one-bit of `n` (two writes per
//! leaf on average): the "compact range" of the tree grows at its right
//! edge and nothing is ever rewritten.
//!
//! Any subtree the RFC 6962 recursion visits starts at a multiple of the
//! largest power of two not above its size, so its hash is a fold of at most
//! one stored node per set bit of its size. An inclusion or consistency
//! proof needs one such fold (the first sibling on the right that is not
//! perfect) plus one stored node per further level: O(log n) reads, never a
//! pass over the leaves.

use auspex_crypto::merkle::{self, Hash};

use crate::error::TlogError;

/// Where stored subtree hashes come from.
pub(crate) trait NodeSource {
    /// The perfect subtree at `level` and `index`; an error if it is not stored.
    fn node(&self, level: u32, index: u64) -> Result<Hash, TlogError>;
}

/// The largest power of two strictly below `n` (`n > 1`).
pub(crate) fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[start:end])` (the empty root for an empty range).
pub(crate) fn range_hash<S: NodeSource + ?Sized>(
    s: &S,
    start: u64,
    end: u64,
) -> Result<Hash, TlogError> {
    if end <= start {
        return Ok(merkle::empty_root());
    }
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let level = n.trailing_zeros();
        return s.node(level, start >> level);
    }
    let k = split_point(n);
    let left = range_hash(s, start, start + k)?;
    let right = range_hash(s, start + k, end)?;
    Ok(merkle::node_hash(&left, &right))
}

/// The audit path of leaf `index` in the tree of the first `size` leaves
/// (RFC 6962 §2.1.1), bottom-up. The caller checks `index < size`.
pub(crate) fn inclusion_proof<S: NodeSource + ?Sized>(
    s: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, TlogError> {
    let mut out = Vec::new();
    path(s, index, 0, size, &mut out)?;
    Ok(out)
}

fn path<S: NodeSource + ?Sized>(
    s: &S,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), TlogError> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < start + k {
        path(s, m, start, start + k, out)?;
        out.push(range_hash(s, start + k, end)?);
    } else {
        path(s, m, start + k, end, out)?;
        out.push(range_hash(s, start, start + k)?);
    }
    Ok(())
}

/// The consistency proof from the first `first` leaves to the first `last`
/// (RFC 6962 §2.1.2). The caller checks `0 < first <= last`.
pub(crate) fn consistency_proof<S: NodeSource + ?Sized>(
    s: &S,
    first: u64,
    last: u64,
) -> Result<Vec<Hash>, TlogError> {
    let mut out = Vec::new();
    subproof(s, first, 0, last, true, &mut out)?;
    Ok(out)
}

fn subproof<S: NodeSource + ?Sized>(
    s: &S,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), TlogError> {
    if m == end {
        if !complete {
            out.push(range_hash(s, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(end - start);
    if m <= start + k {
        subproof(s, m, start, start + k, complete, out)?;
        out.push(range_hash(s, start + k, end)?);
    } else {
        subproof(s, m, start + k, end, false, out)?;
        out.push(range_hash(s, start, start + k)?);
    }
    Ok(())
}

/// The nodes that appending leaf `index` (hash `leaf`) completes, given its
/// left siblings: `(level, index, hash)` from the leaf upwards.
pub(crate) fn completed_nodes<S: NodeSource + ?Sized>(
    s: &S,
    index: u64,
    leaf: Hash,
) -> Result<Vec<(u32, u64, Hash)>, TlogError> {
    let mut out = vec![(0, index, leaf)];
    let (mut level, mut idx, mut cur) = (0u32, index, leaf);
    while idx & 1 == 1 {
        let left = s.node(level, idx - 1)?;
        cur = merkle::node_hash(&left, &cur);
        idx >>= 1;
        level += 1;
        out.push((level, idx, cur));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;

    use super::*;

    #[derive(Default)]
    struct Mem {
        nodes: RefCell<HashMap<(u32, u64), Hash>>,
        reads: Cell<usize>,
    }

    impl NodeSource for Mem {
        fn node(&self, level: u32, index: u64) -> Result<Hash, TlogError> {
            self.reads.set(self.reads.get() + 1);
            self.nodes
                .borrow()
                .get(&(level, index))
                .copied()
                .ok_or_else(|| TlogError::Corrupt(format!("node ({level}, {index}) missing")))
        }
    }

    fn build(n: u64) -> (Mem, Vec<Hash>) {
        let mem = Mem::default();
        let mut leaves = Vec::new();
        for i in 0..n {
            let leaf = merkle::leaf_hash(&i.to_be_bytes());
            leaves.push(leaf);
            let done = completed_nodes(&mem, i, leaf).expect("append");
            for (l, x, h) in done {
                mem.nodes.borrow_mut().insert((l, x), h);
            }
        }
        (mem, leaves)
    }

    #[test]
    fn split_points() {
        for (n, k) in [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
        ] {
            assert_eq!(split_point(n), k, "{n}");
        }
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn same_proofs_as_the_reference() {
        let (mem, leaves) = build(70);
        let n = leaves.len();
        for size in 1..=n {
            let prefix = &leaves[..size];
            let root = merkle::root_from_leaf_hashes(prefix);
            assert_eq!(range_hash(&mem, 0, size as u64).expect("root"), root);
            for i in 0..size {
                let want = merkle::inclusion_proof(prefix, i as u64).expect("ref");
                let got = inclusion_proof(&mem, i as u64, size as u64).expect("proof");
                assert_eq!(got, want, "inclusion {i} in {size}");
            }
            for first in 1..=size {
                let want = merkle::consistency_proof(prefix, first as u64).expect("ref");
                let got = consistency_proof(&mem, first as u64, size as u64).expect("proof");
                assert_eq!(got, want, "consistency {first} -> {size}");
            }
        }
        assert_eq!(range_hash(&mem, 0, 0).expect("empty"), merkle::empty_root());
    }

    #[test]
    fn proofs_read_logarithmically_many_nodes() {
        let (mem, _) = build(1000);
        for (i, size) in [(0u64, 1000u64), (999, 1000), (511, 777), (3, 513)] {
            mem.reads.set(0);
            inclusion_proof(&mem, i, size).expect("proof");
            assert!(mem.reads.get() <= 2 * 10 + 2, "{} reads", mem.reads.get());
        }
        for (a, b) in [(1u64, 1000u64), (999, 1000), (500, 777), (3, 513)] {
            mem.reads.set(0);
            consistency_proof(&mem, a, b).expect("proof");
            assert!(mem.reads.get() <= 2 * 10 + 2, "{} reads", mem.reads.get());
        }
    }
}
