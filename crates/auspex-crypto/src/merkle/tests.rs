//! Unit tests of the Merkle module: proof-length formulas against the
//! proofs the RFC 6962 generator makes.

use super::rfc6962::{consistency_proof_len, inclusion_proof_len, split_point};
use super::*;

#[test]
fn split_point_is_the_largest_power_of_two_below_n() {
    for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1025, 1024)] {
        assert_eq!(split_point(n), k, "{n}");
    }
}

#[test]
fn proof_length_formulas_match_generated_proofs() {
    for n in 1..=70usize {
        let leaves: Vec<Hash> = (0..n as u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        for i in 0..n {
            let proof = inclusion_proof(&leaves, i as u64).expect("proof");
            assert_eq!(
                proof.len(),
                inclusion_proof_len(i as u64, n as u64),
                "{i}/{n}"
            );
        }
        for m in 1..n {
            let proof = consistency_proof(&leaves, m as u64).expect("proof");
            assert_eq!(
                proof.len(),
                consistency_proof_len(m as u64, n as u64),
                "{m}->{n}"
            );
        }
    }
}

#[test]
fn streaming_hasher_equals_slice_root() {
    let ids = ["b", "a", "c", "a"];
    let units: Vec<UnitLeaf<'_>> = ids
        .iter()
        .map(|id| UnitLeaf {
            unit_id: id,
            consensus_result_hash: id,
            receipt_id: "r",
            unit_payload_sha256: None,
        })
        .collect();
    let mut h = ResultSetHasher::new(Algorithm::V0);
    assert!(h.is_empty());
    for u in &units {
        h.push(u);
    }
    assert_eq!(h.finish(), result_set_root(&units, Algorithm::V0));
}
