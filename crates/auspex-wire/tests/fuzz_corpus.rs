//! Replays the cargo-fuzz corpora of `fuzz/corpus/` as ordinary tests, so every
//! input a fuzzer once found interesting keeps passing without a fuzzer.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("readable corpus file");
            (p, bytes)
        })
        .collect()
}

#[test]
fn json_canonical_corpus() {
    for (_path, bytes) in corpus("json_canonical") {
        auspex_wire::fuzzing::json_canonical(&bytes);
    }
}

#[test]
fn manifest_validate_corpus() {
    for (_path, bytes) in corpus("manifest_validate") {
        auspex_wire::fuzzing::manifest_validate(&bytes);
    }
}
