//! The synchronous library API: entries verify, proofs equal the in-memory
//! reference, every pair of checkpoints is consistent, state survives a
//! reopen, and the key and identity are guarded.

use auspex_crypto::merkle;
use auspex_crypto::tlog::RekorEntry;
use auspex_tlog::{KEY_FILE, KeyType, Log, LogOptions, TlogError};

use crate::common::*;

const URL: &str = "http://127.0.0.1:9";

#[test]
fn entries_verify_against_the_trusted_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::open(dir.path()).expect("open");
    assert_eq!(log.size().expect("size"), 0);
    let root = log.trusted_root(URL).expect("root");
    let signer = submitter();
    for i in 0..20 {
        let a = artifact(i);
        let appended = log.submit(&rekord(&a, &signer)).expect("submit");
        assert_eq!(appended.index, i);
        assert!(!appended.duplicate);
        assert_eq!(appended.uuid.len(), 80);
        assert!(
            appended
                .uuid
                .starts_with(&format!("{:016x}", log.tree_id()))
        );
    }
    let legacy = log.submit(&intoto_legacy(b"old cose")).expect("intoto");
    let size = log.size().expect("size");
    assert_eq!(size, 21);
    for i in 0..20 {
        let e = log.entry(i).expect("entry");
        assert_verifies(&e.to_json(), &root, Some(&artifact(i)));
        // Proved in every earlier tree that holds it, too.
        for s in [i + 1, (i + 1 + size) / 2, size] {
            let e = log.entry_at(i, s).expect("entry_at");
            assert_eq!(e.inclusion_proof.as_ref().map(|p| p.tree_size), Some(s));
            assert_verifies(&e.to_json(), &root, Some(&artifact(i)));
        }
    }
    let e = log.entry_by_id(&legacy.uuid).expect("by uuid");
    assert_verifies(&e.to_json(), &root, Some(b"old cose"));
    // 64-hex leaf hash and upper case are accepted.
    let bare = &legacy.uuid[16..];
    assert_eq!(log.entry_by_id(bare).expect("64").log_index, legacy.index);
    assert_eq!(
        log.entry_by_id(&legacy.uuid.to_ascii_uppercase())
            .expect("upper")
            .log_index,
        legacy.index
    );
    // Another tree's UUID, an unknown leaf, malformed IDs.
    let other = format!("{:016x}{bare}", log.tree_id() ^ 1);
    assert!(matches!(
        log.entry_by_id(&other),
        Err(TlogError::NoSuchEntry(_))
    ));
    assert!(matches!(
        log.entry_by_id(&"ab".repeat(32)),
        Err(TlogError::NoSuchEntry(_))
    ));
    for bad in ["", "xyz", &"a".repeat(63), &"g".repeat(64), &"a".repeat(81)] {
        assert!(
            matches!(log.entry_by_id(bad), Err(TlogError::EntryId(_))),
            "{bad}"
        );
    }
    assert!(matches!(log.entry(size), Err(TlogError::NoSuchEntry(_))));
    assert!(matches!(
        log.entry_at(0, size + 1),
        Err(TlogError::SizeOutOfRange { .. })
    ));
    assert_eq!(log.verify_integrity().expect("integrity"), size);
}

#[test]
fn proofs_equal_the_reference_and_all_checkpoints_are_consistent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::open(dir.path()).expect("open");
    let tl = log.transparency_log(URL).expect("tlog");
    let mut leaves = Vec::new();
    let mut checkpoints = Vec::new();
    for i in 0..67u64 {
        let body = format!("{{\"leaf\":{i}}}").into_bytes();
        leaves.push(merkle::leaf_hash(&body));
        // Single appends and batches of varying size.
        if i % 5 == 0 {
            log.append(body).expect("append");
        } else {
            log.append_batch(vec![body]).expect("batch");
        }
        let cp = log.checkpoint().expect("checkpoint");
        assert_eq!(cp.size, i + 1);
        assert_eq!(cp.root_hash, merkle::root_from_leaf_hashes(&leaves));
        checkpoints.push(cp);
    }
    let n = leaves.len() as u64;
    for size in 1..=n {
        let prefix = &leaves[..size as usize];
        assert_eq!(
            log.root(size).expect("root"),
            merkle::root_from_leaf_hashes(prefix)
        );
        for i in (0..size).step_by(3) {
            assert_eq!(
                log.inclusion_proof(i, size).expect("incl"),
                merkle::inclusion_proof(prefix, i).expect("ref"),
                "inclusion {i} of {size}"
            );
        }
        for first in 1..=size {
            assert_eq!(
                log.consistency_proof(first, size).expect("cons"),
                merkle::consistency_proof(prefix, first).expect("ref"),
                "consistency {first} -> {size}"
            );
        }
    }
    // Every checkpoint ever signed is consistent with every later one, and
    // re-signing a size gives the same note.
    // (Signature checks are slow in debug builds: every old checkpoint
    // against a spread of newer ones, not all pairs.)
    for (a, old) in checkpoints.iter().enumerate() {
        assert_eq!(log.checkpoint_at(old.size).expect("again").note, old.note);
        let mut later: Vec<usize> = vec![a, a + 1, 2 * a + 1, a + 13, checkpoints.len() - 1];
        later.retain(|b| *b < checkpoints.len());
        later.dedup();
        for new in later.iter().map(|b| &checkpoints[*b]) {
            let proof = log.consistency_proof(old.size, new.size).expect("proof");
            assert_consistent(&tl, &old.note, &new.note, &proof);
        }
    }
    assert!(matches!(
        log.consistency_proof(0, 3),
        Err(TlogError::ProofRange { .. })
    ));
    assert!(matches!(
        log.consistency_proof(4, 3),
        Err(TlogError::ProofRange { .. })
    ));
    assert!(matches!(
        log.consistency_proof(1, n + 1),
        Err(TlogError::SizeOutOfRange { .. })
    ));
    assert_eq!(log.verify_integrity().expect("integrity"), n);
}

#[test]
fn duplicates_are_not_appended_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::open(dir.path()).expect("open");
    let a = log.append(b"one".to_vec()).expect("one");
    let again = log.append(b"one".to_vec()).expect("again");
    assert!(again.duplicate);
    assert_eq!((again.index, &again.uuid), (a.index, &a.uuid));
    let batch = log
        .append_batch(vec![b"two".to_vec(), b"one".to_vec(), b"two".to_vec()])
        .expect("batch");
    assert_eq!(
        batch
            .iter()
            .map(|x| (x.index, x.duplicate))
            .collect::<Vec<_>>(),
        vec![(1, false), (0, true), (1, true)]
    );
    assert_eq!(log.size().expect("size"), 2);
    assert_eq!(log.verify_integrity().expect("integrity"), 2);
}

#[test]
fn reopen_keeps_tree_key_identity_and_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tree_id, log_id, note, entry0) = {
        let mut log = Log::open(dir.path()).expect("open");
        for i in 0..9 {
            log.submit(&rekord(&artifact(i), &submitter()))
                .expect("submit");
        }
        let cp = log.checkpoint().expect("cp");
        (
            log.tree_id(),
            log.log_id(),
            cp.note,
            log.entry(0).expect("e").to_json(),
        )
    };
    let mut log = Log::open(dir.path()).expect("reopen");
    assert_eq!(log.tree_id(), tree_id);
    assert_eq!(log.log_id(), log_id);
    assert_eq!(log.name(), auspex_tlog::DEFAULT_NAME);
    assert_eq!(
        log.checkpoint().expect("cp").note,
        note,
        "same size, same note"
    );
    for i in 9..30 {
        log.submit(&rekord(&artifact(i), &submitter()))
            .expect("submit");
    }
    let tl = log.transparency_log(URL).expect("tl");
    let now = log.checkpoint().expect("cp");
    assert_consistent(
        &tl,
        &note,
        &now.note,
        &log.consistency_proof(9, 30).expect("p"),
    );
    // The entry served before the reopen still verifies (its proof is for
    // the old size, signed by the same key).
    assert_verifies(
        &entry0,
        &log.trusted_root(URL).expect("root"),
        Some(&artifact(0)),
    );
    assert_eq!(log.verify_integrity().expect("integrity"), 30);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join(KEY_FILE)), 0o600);
    }
}

#[test]
fn p256_logs_work_and_key_mixups_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = LogOptions::named("localhost").with_key_type(KeyType::EcdsaP256);
    let log_id = {
        let mut log = Log::open_with(dir.path(), &opts).expect("open");
        assert_eq!(log.key_type(), KeyType::EcdsaP256);
        log.submit(&rekord(b"p256 artifact", &submitter()))
            .expect("submit");
        let e = log.entry(0).expect("entry");
        assert_verifies(
            &e.to_json(),
            &log.trusted_root("http://localhost:8080").expect("root"),
            Some(b"p256 artifact"),
        );
        assert!(
            log.public_key_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
        log.log_id()
    };
    // Reopen: same key; a different key type or name is refused.
    assert_eq!(Log::open(dir.path()).expect("reopen").log_id(), log_id);
    assert!(matches!(
        Log::open_with(
            dir.path(),
            &LogOptions::default().with_key_type(KeyType::Ed25519)
        ),
        Err(TlogError::KeyTypeMismatch { .. })
    ));
    assert!(matches!(
        Log::open_with(dir.path(), &LogOptions::named("127.0.0.1")),
        Err(TlogError::NameMismatch { .. })
    ));
    assert!(matches!(
        Log::open_with(dir.path(), &LogOptions::named("bad name")),
        Err(TlogError::InvalidName(_))
    ));

    // Another key in place of the log's: refused; no key: refused.
    let other = tempfile::tempdir().expect("tempdir");
    Log::open(other.path()).expect("other log");
    let key = dir.path().join(KEY_FILE);
    std::fs::remove_file(&key).expect("rm");
    assert!(matches!(
        Log::open(dir.path()),
        Err(TlogError::KeyMissing { .. })
    ));
    std::fs::copy(other.path().join(KEY_FILE), &key).expect("copy");
    assert!(matches!(
        Log::open(dir.path()),
        Err(TlogError::KeyMismatch { .. })
    ));
}

#[test]
fn an_entry_is_rekors_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::open(dir.path()).expect("open");
    let a = log.submit(&rekord(b"cose", &submitter())).expect("submit");
    let json = log.entry(0).expect("entry").to_json();
    let v = parse(&json);
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 1);
    let (uuid, e) = obj.iter().next().expect("one");
    assert_eq!(uuid, &a.uuid);
    let keys: Vec<&str> = e
        .as_object()
        .expect("entry")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "body",
            "integratedTime",
            "logID",
            "logIndex",
            "verification"
        ]
    );
    let ver = e.get("verification").expect("verification");
    assert!(
        ver.get("signedEntryTimestamp")
            .and_then(|s| s.as_str())
            .is_some()
    );
    let p = ver.get("inclusionProof").expect("proof");
    for k in ["checkpoint", "hashes", "logIndex", "rootHash", "treeSize"] {
        assert!(p.get(k).is_some(), "{k}");
    }
    let parsed = RekorEntry::parse(&json).expect("parse");
    let body = parse(&parsed.body);
    let hash = body
        .get("spec")
        .and_then(|s| s.get("data"))
        .and_then(|d| d.get("hash"))
        .and_then(|h| h.get("value"))
        .and_then(|v| v.as_str())
        .expect("spec.data.hash.value");
    assert_eq!(hash, auspex_wire::hex_lower(&sha256(b"cose")));
    assert!(
        body.get("spec")
            .and_then(|s| s.get("data"))
            .and_then(|d| d.get("content"))
            .is_none()
    );
}
