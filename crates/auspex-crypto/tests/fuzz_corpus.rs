//! Replays the `receipt_decode` cargo-fuzz corpus as an ordinary test.

use std::path::PathBuf;

#[test]
fn receipt_decode_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/receipt_decode");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus present") {
        let path = entry.expect("dir entry").path();
        let bytes = std::fs::read(&path).expect("readable");
        auspex_crypto::fuzzing::receipt_decode(&bytes);
        n += 1;
    }
    assert!(n > 0, "corpus {} is empty", dir.display());
}
