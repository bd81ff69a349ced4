//! Helpers shared by the integration tests.

use std::path::Path;

use auspex_crypto::merkle::Hash;
use auspex_crypto::tlog::testlog::LogSigner;
use auspex_crypto::tlog::{
    self, ENTRY_CHECKS, ENTRY_FORMAT, LogIndexRule, RekorEntry, TransparencyLog, TrustedRoot,
    VerifyOptions,
};
use auspex_tlog::{RunningTlog, TlogConfig};
use auspex_wire::json::{self, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// The "coordinator" key that signs anchored artifacts.
pub fn submitter() -> LogSigner {
    LogSigner::ed25519([0x42; 32])
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Some COSE-looking artifact bytes, distinct per `i`.
pub fn artifact(i: u64) -> Vec<u8> {
    let mut v = b"\x84\x58\x4a\xa2\x01\x27\x04\x58\x40".to_vec();
    v.extend_from_slice(format!("attestation #{i}").as_bytes());
    v
}

/// A `rekord` 0.0.1 proposal as the coordinator posts it: the artifact as
/// `spec.data.content`, a detached signature and the PEM public key.
pub fn rekord(artifact: &[u8], signer: &LogSigner) -> Vec<u8> {
    let pem = auspex_tlog::public_key_pem(&signer.public_key()).expect("pem");
    format!(
        r#"{{"apiVersion":"0.0.1","kind":"rekord","spec":{{"data":{{"content":"{}"}},"signature":{{"content":"{}","format":"x509","publicKey":{{"content":"{}"}}}}}}}}"#,
        STANDARD.encode(artifact),
        STANDARD.encode(signer.sign(artifact)),
        STANDARD.encode(pem),
    )
    .into_bytes()
}

/// An `intoto` 0.0.2 proposal as older coordinators posted it.
pub fn intoto_legacy(artifact: &[u8]) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"0.0.2","kind":"intoto","spec":{{"content":{{"envelope":"{}","payloadType":"application/vnd.in-toto+cbor"}}}}}}"#,
        STANDARD.encode(artifact)
    )
    .into_bytes()
}

/// Asserts that `entry_json` passes every check of the offline verifier
/// against `root`, for `artifact` (when given) and a single-tree log.
pub fn assert_verifies(entry_json: &[u8], root: &TrustedRoot, artifact: Option<&[u8]>) {
    let opts = VerifyOptions {
        artifact_sha256: artifact.map(sha256),
        expected_log_index: None,
        log_index_rule: LogIndexRule::Exact,
    };
    let report = tlog::verify_entry(entry_json, root, &opts);
    let entry = RekorEntry::parse(entry_json).expect("entry parses");
    assert!(
        report
            .verdict(&tlog::required_checks(&entry, &opts))
            .is_verified(),
        "entry does not verify: {report:?}\n{}",
        String::from_utf8_lossy(entry_json)
    );
    assert!(report.passed(ENTRY_FORMAT));
    for c in ENTRY_CHECKS {
        if c == tlog::BODY_HASH && artifact.is_none() {
            continue;
        }
        assert!(report.passed(c), "{c:?} did not pass: {report:?}");
    }
}

/// Asserts that the consistency proof between two signed checkpoints of
/// `log` verifies.
pub fn assert_consistent(log: &TransparencyLog, old: &str, new: &str, proof: &[Hash]) {
    let report = tlog::verify_consistency(log, old, new, proof);
    for c in [
        tlog::OLD_CHECKPOINT_SIGNATURE,
        tlog::NEW_CHECKPOINT_SIGNATURE,
        tlog::CONSISTENCY_PROOF,
    ] {
        assert!(
            report.passed(c),
            "{c:?} did not pass: {report:?}\n{old}\n{new}"
        );
    }
}

pub fn hex32(s: &str) -> Hash {
    let mut h = [0u8; 32];
    assert_eq!(s.len(), 64, "{s}");
    for (i, b) in h.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
    }
    h
}

pub fn parse(bytes: &[u8]) -> Value {
    json::parse(bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

pub async fn start(dir: &Path) -> RunningTlog {
    auspex_tlog::serve(TlogConfig::new(dir))
        .await
        .expect("serve")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// POSTs a proposal; returns status, `Location`, body.
pub async fn post(c: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, Option<String>, Vec<u8>) {
    let r = c
        .post(format!("{url}/api/v1/log/entries"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = r.bytes().await.expect("body").to_vec();
    (status, loc, bytes)
}

pub async fn get(c: &reqwest::Client, url: &str) -> (u16, Vec<u8>) {
    let r = c.get(url).send().await.expect("get");
    let status = r.status().as_u16();
    (status, r.bytes().await.expect("body").to_vec())
}

/// The checkpoint note inside an entry response.
pub fn checkpoint_of(entry_json: &[u8]) -> (u64, String) {
    let e = RekorEntry::parse(entry_json).expect("entry");
    let p = e.inclusion_proof.expect("proof");
    (p.tree_size, p.checkpoint.expect("checkpoint"))
}
