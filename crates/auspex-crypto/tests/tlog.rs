//! Offline transparency-log verification (`auspex_crypto::tlog`):
//!
//! * the shared vector `rekor_inclusion.json` (its proof verifies; it carries
//!   no real checkpoint or SET, which fail);
//! * two **real** public Rekor entries with their checkpoints and SETs,
//!   signed by the public Sigstore (production and staging) Rekor keys, against
//!   Sigstore's own trusted roots (fixtures/tlog, see SOURCES.md);
//! * a devnet-independent test log (`tlog::testlog`, Ed25519 and P-256): every
//!   single mutation of a good entry is rejected by the check it breaks;
//! * trusted-root parsing, consistency proofs, malformed input.

use std::fs;
use std::path::PathBuf;

use auspex_crypto::report::{CheckId, Outcome, Report};
use auspex_crypto::tlog::testlog::{LogSigner, TestLog, rekord_body};
use auspex_crypto::tlog::{self, *};
use auspex_wire::hex_lower;
use auspex_wire::json::{self, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tlog")
        .join(name);
    fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn root(name: &str) -> TrustedRoot {
    TrustedRoot::from_json(&fixture(name)).expect("trusted root parses")
}

fn hex32(s: &str) -> [u8; 32] {
    let v: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect();
    v.try_into().expect("32 bytes")
}

fn outcome(r: &Report, id: CheckId) -> &Outcome {
    r.outcome(id)
        .unwrap_or_else(|| panic!("{id} not recorded in {r:#?}"))
}

#[track_caller]
fn assert_all_passed(r: &Report, except: &[CheckId]) {
    for c in r.checks() {
        if except.contains(&c.id) {
            continue;
        }
        assert_eq!(c.outcome, Outcome::Passed, "{}: {r:#?}", c.id);
    }
}

fn flip_hex_bit(hex: &str, bit: usize) -> String {
    let mut b = hex32(hex);
    b[bit / 8] ^= 1 << (bit % 8);
    hex_lower(&b)
}

fn flip_b64_bit(b64: &str, bit: usize) -> String {
    let mut b = STANDARD.decode(b64).expect("base64");
    let n = b.len() * 8;
    b[(bit % n) / 8] ^= 1 << (bit % 8);
    STANDARD.encode(b)
}

// ---------------------------------------------------------------------------
// The shared vector
// ---------------------------------------------------------------------------

fn vector() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../auspex-wire/tests/fixtures/vectors/rekor_inclusion.json");
    json::parse(&fs::read(p).expect("vector")).expect("json")
}

#[test]
fn shared_vector_proof_verifies_and_unsigned_parts_fail() {
    let v = vector();
    let response = json::canonical(v.get("rekor_response_json").expect("response"));
    let cose_sha = hex32(v.get("cose_sha256").and_then(Value::as_str).expect("sha"));
    let want_index = v
        .get("attestation_rekor_log_index")
        .and_then(|i| match i {
            Value::Int(i) => i.as_u64(),
            _ => None,
        })
        .expect("index");
    let opts = VerifyOptions {
        artifact_sha256: Some(cose_sha),
        expected_log_index: Some(want_index),
        ..Default::default()
    };
    // Its logID is the public Rekor's, so the public root finds the key.
    let r = verify_entry(
        response.as_bytes(),
        &root("trusted_root_sigstore_prod.json"),
        &opts,
    );
    for id in [
        ENTRY_FORMAT,
        BODY_HASH,
        INCLUSION_PROOF,
        LOG_INDEX,
        LOG_KEY_TRUSTED,
        LOG_KEY_VALID,
    ] {
        assert_eq!(outcome(&r, id), &Outcome::Passed, "{id}: {r:#?}");
    }
    // The vector's UUID is Rekor-shaped: tree ID + the body's leaf hash.
    assert_eq!(outcome(&r, ENTRY_UUID), &Outcome::Passed, "{r:#?}");
    // "(not checked by the SDK)" is no signed note, "(not checked)" no base64.
    assert!(matches!(
        outcome(&r, CHECKPOINT_SIGNATURE),
        Outcome::Failed(_)
    ));
    assert!(matches!(outcome(&r, SET_SIGNATURE), Outcome::Failed(_)));
    assert!(matches!(
        outcome(&r, CHECKPOINT_MATCHES_PROOF),
        Outcome::NotChecked(_)
    ));
    assert_eq!(r.first_failure().map(|c| c.id), Some(CHECKPOINT_SIGNATURE));

    // The official SDK's other expectations: a different anchor index or
    // artifact is caught by its own check.
    let r = verify_entry(
        response.as_bytes(),
        &root("trusted_root_sigstore_prod.json"),
        &VerifyOptions {
            expected_log_index: Some(want_index + 1),
            ..opts.clone()
        },
    );
    assert_eq!(r.first_failure().map(|c| c.id), Some(LOG_INDEX));
    let r = verify_entry(
        response.as_bytes(),
        &root("trusted_root_sigstore_prod.json"),
        &VerifyOptions {
            artifact_sha256: Some([0; 32]),
            ..opts
        },
    );
    assert_eq!(r.first_failure().map(|c| c.id), Some(BODY_HASH));
}

// ---------------------------------------------------------------------------
// Real public Rekor entries
// ---------------------------------------------------------------------------

/// SHA-256 of sigstore-python's `test/assets/bundle_v3_github.whl`.
const PROD_ARTIFACT: &str = "c4e92e9ecc828bef2aa7dba1de8ac983511f7532a0df11c770d39099a25cf201";
/// SHA-256 of sigstore-python's `test/assets/bundle.txt`.
const STAGING_ARTIFACT: &str = "802dd60ff88333802f2585e73043bd21c341285e1992fe5b31755e1cadeae30e";

#[test]
fn public_rekor_production_entry_verifies_completely() {
    let bytes = fixture("rekor_prod_entry.json");
    let entry = RekorEntry::parse(&bytes).expect("entry");
    let opts = VerifyOptions {
        artifact_sha256: Some(hex32(PROD_ARTIFACT)),
        ..Default::default()
    };
    let r = verify_entry(&bytes, &root("trusted_root_sigstore_prod.json"), &opts);
    assert_all_passed(&r, &[]);
    assert!(r.verdict(&required_checks(&entry, &opts)).is_verified());
    assert_eq!(r.checks().len(), ENTRY_CHECKS.len() + 1);
    // Sharded: the log-wide index is above the index inside the shard.
    let p = entry.inclusion_proof.as_ref().expect("proof");
    assert!(entry.log_index > p.log_index);
    // …which the exact rule (single-tree logs) refuses.
    let exact = VerifyOptions {
        log_index_rule: LogIndexRule::Exact,
        ..opts
    };
    let r = verify_entry(&bytes, &root("trusted_root_sigstore_prod.json"), &exact);
    assert_eq!(r.first_failure().map(|c| c.id), Some(LOG_INDEX));
}

#[test]
fn public_rekor_staging_entry_with_timestamp_extension_verifies() {
    let bytes = fixture("rekor_staging_entry.json");
    let entry = RekorEntry::parse(&bytes).expect("entry");
    let note = entry
        .inclusion_proof
        .as_ref()
        .and_then(|p| p.checkpoint.clone())
        .expect("checkpoint");
    let parsed = SignedNote::parse(&note).expect("note");
    let cp = Checkpoint::parse(&parsed.text).expect("checkpoint");
    assert_eq!(cp.extensions.len(), 1);
    assert!(cp.extensions[0].starts_with("Timestamp: "), "{cp:?}");
    assert_eq!(parsed.to_text(), note, "note re-serialises byte for byte");
    assert_eq!(cp.to_text(), parsed.text);

    let opts = VerifyOptions {
        artifact_sha256: Some(hex32(STAGING_ARTIFACT)),
        ..Default::default()
    };
    let r = verify_entry(&bytes, &root("trusted_root_sigstore_staging.json"), &opts);
    assert_all_passed(&r, &[]);
    assert!(r.verdict(&required_checks(&entry, &opts)).is_verified());
}

#[test]
fn public_entries_are_refused_under_the_other_instances_root() {
    for (entry, other) in [
        (
            "rekor_prod_entry.json",
            "trusted_root_sigstore_staging.json",
        ),
        (
            "rekor_staging_entry.json",
            "trusted_root_sigstore_prod.json",
        ),
    ] {
        let r = verify_entry(&fixture(entry), &root(other), &VerifyOptions::default());
        assert_eq!(
            r.first_failure().map(|c| c.id),
            Some(LOG_KEY_TRUSTED),
            "{entry}"
        );
        for dependent in [LOG_KEY_VALID, CHECKPOINT_SIGNATURE, SET_SIGNATURE] {
            assert_eq!(
                outcome(&r, dependent),
                &Outcome::NotChecked("needs tlog.log_key_trusted".into()),
                "{entry} {dependent}"
            );
        }
    }
}

#[test]
fn public_entry_mutations_fail_their_checks() {
    let bytes = fixture("rekor_prod_entry.json");
    let good = RekorEntry::parse(&bytes).expect("entry");
    let prod = root("trusted_root_sigstore_prod.json");
    let check = |e: &RekorEntry| {
        verify_entry(&e.to_json(), &prod, &VerifyOptions::default())
            .first_failure()
            .map(|c| c.id)
    };
    assert_eq!(check(&good), None);
    let mut e = good.clone();
    e.integrated_time += 1;
    assert_eq!(check(&e), Some(SET_SIGNATURE));
    let mut e = good.clone();
    let p = e.inclusion_proof.as_mut().expect("proof");
    p.hashes[3] = flip_hex_bit(&p.hashes[3], 77);
    assert_eq!(check(&e), Some(INCLUSION_PROOF));
    let mut e = good.clone();
    let p = e.inclusion_proof.as_mut().expect("proof");
    let note = p.checkpoint.clone().expect("note");
    p.checkpoint = Some(note.replacen("rekor.sigstore.dev - ", "rekor.sigstore.dev -  ", 1));
    assert_eq!(check(&e), Some(CHECKPOINT_SIGNATURE));
    // A real key validity window that excludes the entry.
    let mut r = prod.clone();
    r.tlogs[0].valid_from = Some(Timestamp::from_unix(good.integrated_time + 1));
    let rep = verify_entry(&bytes, &r, &VerifyOptions::default());
    assert_eq!(rep.first_failure().map(|c| c.id), Some(LOG_KEY_VALID));
}

// ---------------------------------------------------------------------------
// The test log: positive cases
// ---------------------------------------------------------------------------

const T0: i64 = 1_735_787_045;

fn artifact(i: u8) -> [u8; 32] {
    Sha256::digest([b'a', i]).into()
}

fn signers() -> Vec<(&'static str, LogSigner)> {
    vec![
        ("ed25519", LogSigner::ed25519([0x11; 32])),
        (
            "p256",
            LogSigner::ecdsa_p256([0x22; 32]).expect("valid P-256 scalar"),
        ),
    ]
}

/// A log of 7 entries (the shape of the shared vector), tree ID as public
/// Rekor's first shard.
fn log7(signer: LogSigner) -> TestLog {
    let mut log = TestLog::new(signer, "rekor.test")
        .expect("log")
        .with_tree_id(2_605_736_670_972_794_746);
    for i in 0..7u8 {
        log.append(
            rekord_body(&artifact(i), &[i; 64], b"-----BEGIN PUBLIC KEY-----\n"),
            T0 + i64::from(i),
        );
    }
    log
}

fn opts(i: u8) -> VerifyOptions {
    VerifyOptions {
        artifact_sha256: Some(artifact(i)),
        log_index_rule: LogIndexRule::Exact,
        ..Default::default()
    }
}

#[test]
fn test_log_entries_verify_for_every_index_and_size() {
    for (name, signer) in signers() {
        let mut log = TestLog::new(signer, "log.example").expect("log");
        let root = log.trusted_root();
        for n in 0..9u8 {
            log.append(rekord_body(&artifact(n), b"s", b"k"), T0);
            // P-256 in debug builds is slow: every index for Ed25519, the
            // first and last for P-256.
            let indices: Vec<u64> = if name == "ed25519" {
                (0..=u64::from(n)).collect()
            } else {
                vec![0, u64::from(n)]
            };
            for i in indices {
                let entry = log.entry(i).expect("entry");
                let o = opts(u8::try_from(i).expect("small"));
                let r = verify_entry(&entry.to_json(), &root, &o);
                assert_all_passed(&r, &[]);
                assert!(
                    r.verdict(&required_checks(&entry, &o)).is_verified(),
                    "{name} {i}/{}",
                    n + 1
                );
            }
        }
    }
}

#[test]
fn entry_json_round_trips_and_bare_entries_verify_without_uuid() {
    let log = log7(LogSigner::ed25519([3; 32]));
    let entry = log.entry(5).expect("entry");
    assert_eq!(RekorEntry::parse(&entry.to_json()).expect("parses"), entry);

    let mut bare = entry.clone();
    bare.uuid = None;
    let r = verify_entry(&bare.to_json(), &log.trusted_root(), &opts(5));
    assert!(matches!(outcome(&r, ENTRY_UUID), Outcome::NotChecked(_)));
    assert!(r.verdict(&required_checks(&bare, &opts(5))).is_verified());
    // With the UUID, the UUID check is required.
    assert!(required_checks(&entry, &opts(5)).contains(&ENTRY_UUID));
}

#[test]
fn sharded_log_reports_virtual_indices() {
    let mut log = TestLog::new(LogSigner::ed25519([4; 32]), "rekor.test")
        .expect("log")
        .with_index_offset(1_000_000);
    log.append(rekord_body(&artifact(0), b"s", b"k"), T0);
    log.append(rekord_body(&artifact(1), b"s", b"k"), T0);
    let entry = log.entry(1).expect("entry");
    assert_eq!(entry.log_index, 1_000_001);
    let sharded = VerifyOptions {
        artifact_sha256: Some(artifact(1)),
        expected_log_index: Some(1_000_001),
        ..Default::default()
    };
    let r = verify_entry(&entry.to_json(), &log.trusted_root(), &sharded);
    assert!(
        r.verdict(&required_checks(&entry, &sharded)).is_verified(),
        "{r:#?}"
    );
    let exact = VerifyOptions {
        log_index_rule: LogIndexRule::Exact,
        ..sharded
    };
    let r = verify_entry(&entry.to_json(), &log.trusted_root(), &exact);
    assert_eq!(r.first_failure().map(|c| c.id), Some(LOG_INDEX));
}

#[test]
fn absent_checkpoint_and_set_are_not_checked_and_block_the_verdict() {
    // The coordinator's / devnet's older shape: proof without checkpoint,
    // no SET, no logID.
    let log = log7(LogSigner::ed25519([5; 32]));
    let mut entry = log.entry(2).expect("entry");
    entry.signed_entry_timestamp = None;
    if let Some(p) = entry.inclusion_proof.as_mut() {
        p.checkpoint = None;
    }
    let r = verify_entry(&entry.to_json(), &log.trusted_root(), &opts(2));
    assert_eq!(r.first_failure(), None, "{r:#?}");
    assert_eq!(
        outcome(&r, CHECKPOINT_SIGNATURE),
        &Outcome::NotChecked("the entry carries no checkpoint".into())
    );
    assert!(matches!(outcome(&r, SET_SIGNATURE), Outcome::NotChecked(_)));
    let verdict = r.verdict(&required_checks(&entry, &opts(2)));
    assert!(!verdict.is_verified());
    assert_eq!(
        verdict,
        auspex_crypto::report::Verdict::Incomplete(vec![
            CHECKPOINT_SIGNATURE,
            CHECKPOINT_ORIGIN,
            CHECKPOINT_MATCHES_PROOF,
            SET_SIGNATURE
        ])
    );
    entry.log_id = None;
    let r = verify_entry(&entry.to_json(), &log.trusted_root(), &opts(2));
    assert_eq!(
        outcome(&r, LOG_KEY_TRUSTED),
        &Outcome::NotChecked("the entry carries no logID".into())
    );
}

#[test]
fn witness_cosignatures_are_ignored_and_bad_log_signatures_reject_the_note() {
    for (_, signer) in signers() {
        let log = log7(signer);
        let root = log.trusted_root();
        let entry = log.entry(4).expect("entry");
        let note = entry
            .inclusion_proof
            .as_ref()
            .and_then(|p| p.checkpoint.clone())
            .expect("note");
        let mut parsed = SignedNote::parse(&note).expect("note");
        let witness = TestLog::new(LogSigner::ed25519([9; 32]), "witness.example").expect("w");
        let w_sig = NoteSignature {
            name: "witness.example".into(),
            key_id: [1, 2, 3, 4],
            signature: witness.signer().sign(parsed.text.as_bytes()),
        };
        // Unknown key before and after the log's: ignored.
        parsed.signatures.insert(0, w_sig.clone());
        parsed.signatures.push(w_sig);
        let mut e = entry.clone();
        if let Some(p) = e.inclusion_proof.as_mut() {
            p.checkpoint = Some(parsed.to_text());
        }
        let r = verify_entry(&e.to_json(), &root, &opts(4));
        assert_eq!(r.first_failure(), None, "{r:#?}");

        // A second signature under the log's name and key ID that does not
        // verify rejects the note, even though a good one is present.
        let mut bad = parsed.signatures[1].clone();
        bad.signature[5] ^= 0x40;
        parsed.signatures.push(bad);
        if let Some(p) = e.inclusion_proof.as_mut() {
            p.checkpoint = Some(parsed.to_text());
        }
        let r = verify_entry(&e.to_json(), &root, &opts(4));
        assert_eq!(r.first_failure().map(|c| c.id), Some(CHECKPOINT_SIGNATURE));
    }
}

#[test]
fn ed25519_checkpoints_with_rekor_style_key_hints_verify() {
    // Rekor v1 hints every key type with SHA-256(DER SPKI)[:4]; C2SP with
    // SHA-256(name || 0x0A || 0x01 || key)[:4]. Both are accepted for Ed25519.
    let log = log7(LogSigner::ed25519([6; 32]));
    let key = log.key().clone();
    let ids = key.note_key_ids("rekor.test").expect("ids");
    assert_eq!(ids.len(), 2);
    let spki_hint: [u8; 4] = Sha256::digest(key.spki_der().expect("der"))[..4]
        .try_into()
        .expect("4");
    assert_eq!(ids[1], spki_hint);
    let mut c2sp = Sha256::new();
    c2sp.update(b"rekor.test\n\x01");
    if let LogKey::Ed25519(k) = &key {
        c2sp.update(k.as_bytes());
    }
    assert_eq!(ids[0][..], c2sp.finalize()[..4]);

    let cp = log.checkpoint(7).expect("checkpoint");
    let text = cp.to_text();
    let note = SignedNote {
        signatures: vec![NoteSignature {
            name: "rekor.test".into(),
            key_id: spki_hint,
            signature: log.signer().sign(text.as_bytes()),
        }],
        text,
    }
    .to_text();
    assert_eq!(verify_checkpoint(&note, &key, "rekor.test"), Ok(cp));
    // For ECDSA only the SPKI hint exists.
    let p = LogSigner::ecdsa_p256([7; 32]).expect("key").public_key();
    assert_eq!(p.note_key_ids("any").expect("ids").len(), 1);
}

// ---------------------------------------------------------------------------
// The test log: every mutation fails its own check
// ---------------------------------------------------------------------------

/// One mutation of a good entry (index 5 of `log7`) or of its context.
#[derive(Debug, Clone)]
enum Mutation {
    ProofHashBit(usize, usize),
    ProofRootBit(usize),
    ProofTreeSizeBit(u32),
    ProofLeafIndexBit(u32),
    EntryLogIndexBit(u32),
    IntegratedTimeBit(u32),
    BodyBit(usize),
    BodyBitWithoutArtifact(usize),
    UuidBit(usize),
    UuidTreeBit(usize),
    LogIdBit(usize),
    CheckpointTextBit { line: usize, byte: usize },
    CheckpointSignatureBit(usize),
    CheckpointKeyIdBit(usize),
    CheckpointName,
    SetBit(usize),
    StaleCheckpoint,
    ForeignOrigin,
    SignedByAnotherKey,
    KeyNotYetValid,
    KeyExpired,
    UnknownKey,
    RootNamesLogWithOtherKey,
    OtherArtifact,
    UnexpectedAnchorIndex,
}

fn apply(
    m: &Mutation,
    log: &TestLog,
    entry: &RekorEntry,
) -> (RekorEntry, TrustedRoot, VerifyOptions) {
    let mut e = entry.clone();
    let mut root = log.trusted_root();
    let mut o = opts(5);
    let p = e.inclusion_proof.as_mut().expect("proof");
    let note = p.checkpoint.clone().expect("checkpoint");
    match m {
        Mutation::ProofHashBit(i, bit) => p.hashes[*i] = flip_hex_bit(&p.hashes[*i], *bit),
        Mutation::ProofRootBit(bit) => p.root_hash = flip_hex_bit(&p.root_hash, *bit),
        Mutation::ProofTreeSizeBit(bit) => p.tree_size ^= 1 << bit,
        Mutation::ProofLeafIndexBit(bit) => p.log_index ^= 1 << bit,
        Mutation::EntryLogIndexBit(bit) => e.log_index ^= 1 << bit,
        Mutation::IntegratedTimeBit(bit) => e.integrated_time ^= 1 << bit,
        Mutation::BodyBit(byte) | Mutation::BodyBitWithoutArtifact(byte) => {
            e.body[*byte] ^= 1;
            e.body_b64 = STANDARD.encode(&e.body);
            if matches!(m, Mutation::BodyBitWithoutArtifact(_)) {
                o.artifact_sha256 = None;
            }
        }
        Mutation::UuidBit(bit) => {
            let uuid = e.uuid.clone().expect("uuid");
            let (tree, leaf) = uuid.split_at(16);
            e.uuid = Some(format!("{tree}{}", flip_hex_bit(leaf, *bit)));
        }
        Mutation::UuidTreeBit(bit) => {
            let uuid = e.uuid.clone().expect("uuid");
            let (tree, leaf) = uuid.split_at(16);
            let id = u64::from_str_radix(tree, 16).expect("hex") ^ (1 << bit);
            e.uuid = Some(format!("{id:016x}{leaf}"));
        }
        Mutation::LogIdBit(bit) => {
            e.log_id = Some(flip_hex_bit(e.log_id.as_deref().expect("id"), *bit));
        }
        Mutation::CheckpointTextBit { line, byte } => {
            let mut lines: Vec<Vec<u8>> = note.split('\n').map(|l| l.as_bytes().to_vec()).collect();
            let l = &mut lines[*line];
            let at = byte % l.len();
            l[at] ^= 1;
            let text = String::from_utf8(lines.join(&b'\n')).expect("ascii stays utf8");
            p.checkpoint = Some(text);
        }
        Mutation::CheckpointSignatureBit(bit) | Mutation::CheckpointKeyIdBit(bit) => {
            let mut n = SignedNote::parse(&note).expect("note");
            if matches!(m, Mutation::CheckpointKeyIdBit(_)) {
                n.signatures[0].key_id[bit / 8 % 4] ^= 1 << (bit % 8);
            } else {
                let s = &mut n.signatures[0].signature;
                let len = s.len();
                s[bit / 8 % len] ^= 1 << (bit % 8);
            }
            p.checkpoint = Some(n.to_text());
        }
        Mutation::CheckpointName => {
            let mut n = SignedNote::parse(&note).expect("note");
            n.signatures[0].name = "rekor.tesu".into();
            p.checkpoint = Some(n.to_text());
        }
        Mutation::SetBit(bit) => {
            e.signed_entry_timestamp = Some(flip_b64_bit(
                e.signed_entry_timestamp.as_deref().expect("set"),
                *bit,
            ));
        }
        Mutation::StaleCheckpoint => {
            p.checkpoint = Some(log.signed_checkpoint(6).expect("older checkpoint"));
        }
        Mutation::ForeignOrigin => {
            let mut c = log.checkpoint(7).expect("checkpoint");
            c.origin = "other.test - 1".into();
            p.checkpoint = Some(log.sign_checkpoint(&c).expect("signed"));
        }
        Mutation::SignedByAnotherKey => {
            // Same name, other key, entry still claiming the trusted logID.
            let other = match log.key() {
                LogKey::Ed25519(_) => LogSigner::ed25519([0x99; 32]),
                _ => LogSigner::ecdsa_p256([0x99; 32]).expect("key"),
            };
            let forger = log7(other);
            let forged = forger.entry(5).expect("entry");
            p.checkpoint = forged
                .inclusion_proof
                .as_ref()
                .and_then(|fp| fp.checkpoint.clone());
            e.signed_entry_timestamp = forged.signed_entry_timestamp;
        }
        Mutation::KeyNotYetValid => {
            root.tlogs[0].valid_from = Some(Timestamp::from_unix(entry.integrated_time + 1));
        }
        Mutation::KeyExpired => {
            root.tlogs[0].valid_until = Some(Timestamp::from_unix(entry.integrated_time - 1));
        }
        Mutation::UnknownKey => {
            let other = log7(LogSigner::ed25519([0x42; 32]));
            root = other.trusted_root();
        }
        Mutation::RootNamesLogWithOtherKey => {
            let other = log7(LogSigner::ed25519([0x43; 32]));
            let log_id = root.tlogs[0].log_id.clone();
            root = other.trusted_root();
            root.tlogs[0].log_id = log_id;
        }
        Mutation::OtherArtifact => o.artifact_sha256 = Some(artifact(6)),
        Mutation::UnexpectedAnchorIndex => o.expected_log_index = Some(4),
    }
    (e, root, o)
}

fn mutations(entry: &RekorEntry) -> Vec<(Mutation, CheckId)> {
    use Mutation::*;
    let body = String::from_utf8(entry.body.clone()).expect("utf8 body");
    let digest_at = body.find(&hex_lower(&artifact(5))).expect("digest in body");
    let proof = entry.inclusion_proof.as_ref().expect("proof");
    let mut v = Vec::new();
    for i in 0..proof.hashes.len() {
        for bit in (0..256).step_by(29) {
            v.push((ProofHashBit(i, bit), INCLUSION_PROOF));
        }
    }
    for bit in (0..256).step_by(17) {
        v.push((ProofRootBit(bit), INCLUSION_PROOF));
    }
    for bit in [0, 1, 2, 3, 40, 63] {
        v.push((ProofTreeSizeBit(bit), INCLUSION_PROOF));
        v.push((ProofLeafIndexBit(bit), INCLUSION_PROOF));
    }
    // Entry index 5 = 0b101: clearing bit 0 or 2 goes below the proof's
    // index (the index check), setting a higher bit only breaks the SET.
    v.push((EntryLogIndexBit(0), LOG_INDEX));
    v.push((EntryLogIndexBit(2), LOG_INDEX));
    for bit in [1, 3, 20, 52] {
        v.push((EntryLogIndexBit(bit), LOG_INDEX)); // exact rule in `opts`
    }
    for bit in [0, 7, 31] {
        v.push((IntegratedTimeBit(bit), SET_SIGNATURE));
    }
    // Inside the signature and key strings the body stays valid JSON with
    // the same digest: only the leaf (hence the proof) breaks.
    let sig_at = body.find("\"content\":\"").expect("signature content") + 11;
    let key_at = body.rfind("\"content\":\"").expect("key content") + 11;
    for byte in [sig_at, sig_at + 40, key_at, key_at + 3] {
        v.push((BodyBit(byte), INCLUSION_PROOF));
    }
    // The digest itself, or the JSON around it: the body no longer commits.
    for byte in [
        digest_at,
        digest_at + 31,
        digest_at + 63,
        0,
        3,
        body.len() - 1,
    ] {
        v.push((BodyBit(byte), BODY_HASH));
        // Without an artifact to compare, the proof catches it.
        v.push((BodyBitWithoutArtifact(byte), INCLUSION_PROOF));
    }
    for bit in [0, 100, 255] {
        v.push((UuidBit(bit), ENTRY_UUID));
        v.push((LogIdBit(bit), LOG_KEY_TRUSTED));
    }
    // Checkpoint lines: origin, size, root, Timestamp extension.
    for line in 0..4 {
        for byte in [0, 5, 13, 99] {
            v.push((CheckpointTextBit { line, byte }, CHECKPOINT_SIGNATURE));
        }
    }
    for bit in [0, 9, 100, 300, 511] {
        v.push((CheckpointSignatureBit(bit), CHECKPOINT_SIGNATURE));
        v.push((SetBit(bit), SET_SIGNATURE));
    }
    for bit in [0, 15, 31] {
        v.push((CheckpointKeyIdBit(bit), CHECKPOINT_SIGNATURE));
    }
    for bit in [0, 33, 63] {
        // The UUID's tree ID must be the checkpoint's (the entry's shard).
        v.push((UuidTreeBit(bit), CHECKPOINT_ORIGIN));
    }
    v.push((CheckpointName, CHECKPOINT_SIGNATURE));
    v.push((StaleCheckpoint, CHECKPOINT_MATCHES_PROOF));
    v.push((ForeignOrigin, CHECKPOINT_ORIGIN));
    v.push((SignedByAnotherKey, CHECKPOINT_SIGNATURE));
    v.push((KeyNotYetValid, LOG_KEY_VALID));
    v.push((KeyExpired, LOG_KEY_VALID));
    v.push((UnknownKey, LOG_KEY_TRUSTED));
    v.push((RootNamesLogWithOtherKey, LOG_KEY_TRUSTED));
    v.push((OtherArtifact, BODY_HASH));
    v.push((UnexpectedAnchorIndex, LOG_INDEX));
    v
}

#[test]
fn every_mutation_is_rejected_by_its_own_check() {
    for (name, signer) in signers() {
        let log = log7(signer);
        let entry = log.entry(5).expect("entry");
        // The unmutated entry passes everything.
        let r = verify_entry(&entry.to_json(), &log.trusted_root(), &opts(5));
        assert_all_passed(&r, &[]);
        let cases = mutations(&entry);
        assert!(cases.len() > 100, "{}", cases.len());
        for (m, want) in cases {
            let (e, root, o) = apply(&m, &log, &entry);
            let r = verify_entry(&e.to_json(), &root, &o);
            assert_eq!(
                r.first_failure().map(|c| c.id),
                Some(want),
                "{name} {m:?}: {r:#?}"
            );
            assert!(!r.verdict(&required_checks(&e, &o)).is_verified());
        }
    }
}

#[test]
fn under_the_sharded_rule_a_raised_entry_index_breaks_only_the_set() {
    let log = log7(LogSigner::ed25519([0x31; 32]));
    let entry = log.entry(5).expect("entry");
    let sharded = VerifyOptions {
        log_index_rule: LogIndexRule::Sharded,
        ..opts(5)
    };
    for bit in [1, 3, 20, 52] {
        let mut e = entry.clone();
        e.log_index ^= 1 << bit;
        let r = verify_entry(&e.to_json(), &log.trusted_root(), &sharded);
        assert_eq!(
            r.first_failure().map(|c| c.id),
            Some(SET_SIGNATURE),
            "{bit}"
        );
        assert_eq!(outcome(&r, LOG_INDEX), &Outcome::Passed);
    }
    let mut e = entry;
    e.log_index = 4;
    let r = verify_entry(&e.to_json(), &log.trusted_root(), &sharded);
    assert_eq!(r.first_failure().map(|c| c.id), Some(LOG_INDEX));
}

// ---------------------------------------------------------------------------
// Consistency proofs
// ---------------------------------------------------------------------------

#[test]
fn consistency_between_signed_checkpoints() {
    for (_, signer) in signers() {
        let log = log7(signer);
        let tlog = log.trusted_root().tlogs[0].clone();
        for (m, n) in [(1, 7), (3, 7), (4, 7), (6, 7), (7, 7), (2, 5)] {
            let old = log.signed_checkpoint(m).expect("old");
            let new = log.signed_checkpoint(n).expect("new");
            let proof = log.consistency_proof(m, n).expect("proof");
            let r = verify_consistency(&tlog, &old, &new, &proof);
            assert_all_passed(&r, &[]);
            if let Some(first) = proof.first() {
                let mut bad = proof.clone();
                bad[0] = {
                    let mut h = *first;
                    h[0] ^= 1;
                    h
                };
                let r = verify_consistency(&tlog, &old, &new, &bad);
                assert_eq!(r.first_failure().map(|c| c.id), Some(CONSISTENCY_PROOF));
            }
        }
        // Swapped order, other origin, forged signature.
        let (old, new) = (
            log.signed_checkpoint(3).expect("old"),
            log.signed_checkpoint(7).expect("new"),
        );
        let proof = log.consistency_proof(3, 7).expect("proof");
        let r = verify_consistency(&tlog, &new, &old, &proof);
        assert_eq!(r.first_failure().map(|c| c.id), Some(CONSISTENCY_PROOF));
        let mut c = log.checkpoint(7).expect("cp");
        c.origin = "rekor.test - 2".into();
        let other = log.sign_checkpoint(&c).expect("signed");
        let r = verify_consistency(&tlog, &old, &other, &proof);
        assert_eq!(r.first_failure().map(|c| c.id), Some(CONSISTENCY_PROOF));
        let r = verify_consistency(&tlog, &old.replace("\n3\n", "\n4\n"), &new, &proof);
        assert_eq!(
            r.first_failure().map(|c| c.id),
            Some(OLD_CHECKPOINT_SIGNATURE)
        );
        assert!(matches!(
            outcome(&r, CONSISTENCY_PROOF),
            Outcome::NotChecked(_)
        ));
    }
}

// ---------------------------------------------------------------------------
// Trusted roots
// ---------------------------------------------------------------------------

#[test]
fn note_name_is_the_host_without_scheme_or_port() {
    let key = LogSigner::ed25519([3; 32]).public_key();
    for (url, want) in [
        ("https://rekor.sigstore.dev", "rekor.sigstore.dev"),
        ("https://rekor.sigstore.dev/", "rekor.sigstore.dev"),
        ("http://127.0.0.1:43121", "127.0.0.1"),
        ("http://localhost:3000/", "localhost"),
        ("http://[::1]:8080", "[::1]"),
        ("::1", "::1"),
        ("https://example.com/log:1", "example.com/log:1"),
        ("rekor.test", "rekor.test"),
    ] {
        let log = TransparencyLog::new(url, key.clone(), None, None).expect("log");
        assert_eq!(log.note_name(), want, "{url}");
    }
}

#[test]
fn sigstore_trusted_roots_load() {
    let prod = root("trusted_root_sigstore_prod.json");
    assert_eq!(prod.tlogs.len(), 2);
    let rekor = &prod.tlogs[0];
    assert_eq!(rekor.note_name(), "rekor.sigstore.dev");
    assert_eq!(
        hex_lower(&rekor.log_id),
        "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
    );
    assert!(matches!(rekor.key, Some(LogKey::EcdsaP256(_))));
    assert_eq!(
        rekor.valid_from.map(|t| t.to_string()).as_deref(),
        Some("2021-01-12T11:53:27Z")
    );
    assert!(matches!(prod.tlogs[1].key, Some(LogKey::Ed25519(_))));
    let staging = root("trusted_root_sigstore_staging.json");
    assert!(staging.tlogs.iter().any(|t| t.valid_until.is_some()));
}

#[test]
fn trusted_roots_round_trip() {
    for (_, signer) in signers() {
        let log = log7(signer);
        let mut root = log.trusted_root();
        root.tlogs[0].valid_until =
            Some(Timestamp::parse_rfc3339("2030-01-01T00:00:00.25Z").expect("t"));
        let text = root.to_json();
        assert_eq!(
            TrustedRoot::from_json(text.as_bytes()).expect("parses"),
            root
        );
    }
}

#[test]
fn malformed_trusted_roots_are_refused_with_their_path() {
    let good = fixture("trusted_root_sigstore_prod.json");
    let doc = json::parse(&good).expect("json");
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut d = doc.clone();
        f(&mut d);
        TrustedRoot::from_json(json::canonical(&d).as_bytes())
            .expect_err("refused")
            .to_string()
    };
    fn tlog0(d: &mut Value) -> &mut json::Object {
        let Value::Object(o) = d else { panic!() };
        let Some(Value::Array(t)) = o.get_mut("tlogs") else {
            panic!()
        };
        let Value::Object(t0) = &mut t[0] else {
            panic!()
        };
        t0
    }
    fn pk0(d: &mut Value) -> &mut json::Object {
        let Some(Value::Object(pk)) = tlog0(d).get_mut("publicKey") else {
            panic!()
        };
        pk
    }
    let e = edit(&|d| {
        if let Value::Object(o) = d {
            o.insert("mediaType".into(), Value::from("application/json"));
        }
    });
    assert!(e.contains("mediaType"), "{e}");
    let e = edit(&|d| {
        pk0(d).insert(
            "rawBytes".into(),
            Value::from("MCowBQYDK2VwAyEAt8rlp1knGwjfbcXAYPYAkn0XiLz1x8O4t0YkEhie244="),
        );
    });
    assert!(e.contains("tlogs[0].publicKey.rawBytes"), "{e}");
    let e = edit(&|d| {
        pk0(d).insert("rawBytes".into(), Value::from("not base64!"));
    });
    assert!(
        e.contains("tlogs[0].publicKey.rawBytes is not base64"),
        "{e}"
    );
    let e = edit(&|d| {
        let mut w = json::Object::new();
        w.insert("start".into(), Value::from("2021-13-01T00:00:00Z"));
        pk0(d).insert("validFor".into(), Value::Object(w));
    });
    assert!(e.contains("tlogs[0].publicKey.validFor.start"), "{e}");
    let e = edit(&|d| {
        let mut w = json::Object::new();
        w.insert("start".into(), Value::from("2022-01-01T00:00:00Z"));
        w.insert("end".into(), Value::from("2021-01-01T00:00:00Z"));
        pk0(d).insert("validFor".into(), Value::Object(w));
    });
    assert!(e.contains("before it starts"), "{e}");
    let e = edit(&|d| {
        tlog0(d).shift_remove("logId");
    });
    assert!(e.contains("tlogs[0].logId"), "{e}");
    // Unsupported key types load, and are refused when an entry names them.
    let mut d = doc.clone();
    pk0(&mut d).insert(
        "keyDetails".into(),
        Value::from("PKIX_RSA_PKCS1V15_2048_SHA256"),
    );
    let r = TrustedRoot::from_json(json::canonical(&d).as_bytes()).expect("loads");
    assert!(r.tlogs[0].key.is_none());
    let rep = verify_entry(
        &fixture("rekor_prod_entry.json"),
        &r,
        &VerifyOptions::default(),
    );
    assert_eq!(rep.first_failure().map(|c| c.id), Some(LOG_KEY_TRUSTED));
    assert!(TrustedRoot::from_json(b"[]").is_err());
    assert!(TrustedRoot::from_json(b"{").is_err());
}

// ---------------------------------------------------------------------------
// Malformed entries and notes
// ---------------------------------------------------------------------------

#[test]
fn undecodable_entries_fail_the_format_check_only() {
    let root = log7(LogSigner::ed25519([1; 32])).trusted_root();
    for bad in [
        &b""[..],
        b"garbage",
        b"[]",
        b"{}",
        br#"{"a": {"body": "e30="}, "b": {}}"#,
        br#"{"u": {"body": "e30=", "integratedTime": 1, "logIndex": "1"}}"#,
        br#"{"u": {"body": "e30=", "integratedTime": 1, "logIndex": -1}}"#,
        br#"{"u": {"body": "not base64", "integratedTime": 1, "logIndex": 1}}"#,
        br#"{"u": {"body": "e30=", "integratedTime": 1.5, "logIndex": 1}}"#,
        br#"{"u": {"body": "e30=", "integratedTime": 1, "logIndex": 1, "verification": {"inclusionProof": {"logIndex": 0}}}}"#,
        br#"{"u": {"body": "e30=", "integratedTime": 1, "logIndex": 1, "verification": {"inclusionProof": {"logIndex": 0, "treeSize": 1, "rootHash": "00", "hashes": [1]}}}}"#,
    ] {
        let r = verify_entry(bad, &root, &VerifyOptions::default());
        assert_eq!(
            r.first_failure().map(|c| c.id),
            Some(ENTRY_FORMAT),
            "{}",
            String::from_utf8_lossy(bad)
        );
        assert_eq!(r.checks().len(), ENTRY_CHECKS.len() + 1);
        assert!(RekorEntry::parse(bad).is_err());
    }
    // Well-formed but bad values fail the check that uses them.
    let r = verify_entry(
        br#"{"u": {"body": "e30=", "integratedTime": 1, "logIndex": 0, "logID": "zz", "verification": {"inclusionProof": {"logIndex": 0, "treeSize": 1, "rootHash": "00", "hashes": []}, "signedEntryTimestamp": "!"}}}"#,
        &root,
        &VerifyOptions::default(),
    );
    assert_eq!(outcome(&r, ENTRY_FORMAT), &Outcome::Passed);
    assert!(matches!(outcome(&r, INCLUSION_PROOF), Outcome::Failed(m) if m.contains("rootHash")));
    assert!(matches!(outcome(&r, ENTRY_UUID), Outcome::Failed(_)));
    assert!(matches!(outcome(&r, LOG_KEY_TRUSTED), Outcome::Failed(m) if m.contains("not hex")));
}

#[test]
fn malformed_notes_are_refused() {
    let good = "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u{2014} n AAAAAAE=\n";
    let n = SignedNote::parse(good).expect("parses");
    assert_eq!(n.signatures[0].key_id, [0, 0, 0, 0]);
    assert!(Checkpoint::parse(&n.text).is_ok());
    for bad in [
        "o\n1\nroot\n",                          // no signature block
        "o\n1\nroot\n\n",                        // no signatures
        "o\n1\nroot\n\n\u{2014} n AAAAAAE=",     // no final newline
        "o\n1\nroot\n\n- n AAAAAAE=\n",          // ASCII dash
        "o\n1\nroot\n\n\u{2014} n  AAAAAAE=\n",  // two spaces
        "o\n1\nroot\n\n\u{2014} n+x AAAAAAE=\n", // '+' in the name
        "o\n1\nroot\n\n\u{2014} n AAAA\n",       // too short
        "o\n1\nroot\n\n\u{2014} n AAAAAAE\n",    // not padded
        "o\n1\nro\rot\n\n\u{2014} n AAAAAAE=\n", // control character
        "o\n1\nroot\n\n\u{2014} n AAAAAAE=\n\n", // blank line after the signatures
    ] {
        assert!(SignedNote::parse(bad).is_err(), "{bad:?}");
    }
    for bad in [
        "o\n1\n",
        "\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n+1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n18446744073709551616\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n1\nAAAA\n",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next\n\nmore\n",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ] {
        assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
    }
    let big = "x".repeat(MAX_NOTE_BYTES + 1);
    assert!(matches!(
        SignedNote::parse(&big),
        Err(NoteError::TooLarge(_))
    ));
    let many = format!(
        "o\n1\nr\n\n{}",
        "\u{2014} n AAAAAAE=\n".repeat(MAX_SIGNATURES + 1)
    );
    assert!(matches!(
        SignedNote::parse(&many),
        Err(NoteError::TooManySignatures)
    ));
}

#[test]
fn the_reports_name_every_check() {
    let log = log7(LogSigner::ed25519([2; 32]));
    let r = tlog::verify_entry(
        &log.entry(0).expect("e").to_json(),
        &log.trusted_root(),
        &opts(0),
    );
    let names: Vec<&str> = r.checks().iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        names,
        [
            "tlog.entry_format",
            "tlog.body_hash",
            "tlog.inclusion_proof",
            "tlog.entry_uuid",
            "tlog.log_index",
            "tlog.log_key_trusted",
            "tlog.log_key_valid_at_integrated_time",
            "tlog.checkpoint_signature",
            "tlog.checkpoint_origin",
            "tlog.checkpoint_matches_proof",
            "tlog.set_signature",
        ]
    );
}
