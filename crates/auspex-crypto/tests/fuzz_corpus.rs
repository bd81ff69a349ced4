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

/// Replays the `http_sig_headers` corpus (RFC 9421 header parsing and
/// verification).
#[test]
fn http_sig_headers_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/http_sig_headers");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus present") {
        let path = entry.expect("dir entry").path();
        let bytes = std::fs::read(&path).expect("readable");
        auspex_crypto::fuzzing::http_sig_headers(&bytes);
        n += 1;
    }
    assert!(n > 0, "corpus {} is empty", dir.display());
}

/// Replays a corpus directory through `f`; the corpus must not be empty.
fn replay(name: &str, f: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus present") {
        let path = entry.expect("dir entry").path();
        f(&std::fs::read(&path).expect("readable"));
        n += 1;
    }
    assert!(n > 0, "corpus {} is empty", dir.display());
}

/// Replays the `checkpoint_note` corpus (signed notes and checkpoints).
#[test]
fn checkpoint_note_corpus() {
    replay("checkpoint_note", auspex_crypto::fuzzing::checkpoint_note);
}

/// Replays the `rekor_entry` corpus (entry responses and trusted roots).
#[test]
fn rekor_entry_corpus() {
    replay("rekor_entry", auspex_crypto::fuzzing::rekor_entry);
}
