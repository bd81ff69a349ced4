//! Entry points shared by the cargo-fuzz targets in `fuzz/` and by the tests
//! that replay their corpora. Each takes arbitrary bytes and must never panic.

/// Receipt decoding as `auspex receipts show` does it: naked receipt CBOR or a
/// COSE_Sign1 over an in-toto statement. A decoded COSE message must re-encode
/// and decode to the same structure.
#[allow(clippy::panic)]
pub fn receipt_decode(data: &[u8]) {
    let _ = crate::cose::inspect_receipt(data);
    if let Ok(msg) = crate::cose::CoseSign1::decode(data) {
        let _ = msg.verify(None);
        let _ = msg.sig_structure();
        match crate::cose::CoseSign1::decode(&msg.encode()) {
            Ok(again) => assert_eq!(again.payload(), msg.payload()),
            Err(e) => panic!("re-encoded COSE_Sign1 does not decode: {e}"),
        }
    }
}

/// RFC 9421 `Signature-Input` / `Signature` parsing (the RFC 8941
/// structured-field parser) and both verifiers on a synthetic request.
///
/// `data` is split at its first four `\n` into `Signature-Input`,
/// `Signature`, `Content-Digest` (header omitted when empty), the request
/// target (`/api/v0/experiments` when empty) and the body (the rest, raw).
/// The method is `GET` for an empty body, else `POST`; the host is
/// `coord.auspexai.network`; the key lookup answers the shared vectors'
/// tenant key (RFC 8032 test 1) for every keyid, so the SDK's real headers
/// verify; the clock is the first signature's `created`. Every
/// `Signature-Input` member that parses must serialize (as
/// `label=<@signature-params>`) to text that parses to the same member.
#[allow(clippy::panic)]
pub fn http_sig_headers(data: &[u8]) {
    use crate::http_sig::{self, Derivation, Policy, RequestParts, Rfc9421Policy, StructuredType};

    let parts: Vec<&[u8]> = data.splitn(5, |&b| b == b'\n').collect();
    let text = |i: usize| {
        parts
            .get(i)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default()
    };
    let (input, signature, digest, target) = (text(0), text(1), text(2), text(3));
    let body = parts.get(4).copied().unwrap_or_default();
    let target = if target.is_empty() {
        "/api/v0/experiments".to_owned()
    } else {
        target
    };

    let parsed = http_sig::parse_signature_input(&input);
    if let Ok(members) = &parsed {
        for member in members {
            let again = format!("{}={}", member.label(), member.signature_params());
            match http_sig::parse_signature_input(&again) {
                Ok(re) => assert_eq!(
                    re.as_slice(),
                    std::slice::from_ref(member),
                    "re-serialized Signature-Input member parses differently: {again}"
                ),
                Err(e) => panic!("re-serialized Signature-Input member {again:?} fails: {e}"),
            }
        }
    }
    let _ = http_sig::parse_signature(&signature);

    let mut headers = vec![
        ("Host", "coord.auspexai.network"),
        ("Accept", "*/*"),
        ("X-List", "a, b;q=1, (c d)"),
        ("X-Dict", "a=1, b=?0, c=(x y);p"),
        ("Signature-Input", input.as_str()),
        ("Signature", signature.as_str()),
    ];
    if !digest.is_empty() {
        headers.push(("Content-Digest", digest.as_str()));
    }
    let method = if body.is_empty() { "GET" } else { "POST" };
    let req = RequestParts::new(method, &target, &headers, body);
    let now = parsed
        .as_ref()
        .ok()
        .and_then(|m| m.first())
        .and_then(|m| m.params().created)
        .unwrap_or(0);
    let key = fuzz_tenant_key();
    let _ = http_sig::verify_request(&req, now, |_| Some(key), &Policy::default());
    let general = Rfc9421Policy::default()
        .structured("x-list", StructuredType::List)
        .structured("x-dict", StructuredType::Dictionary)
        .structured("accept", StructuredType::Item);
    let _ = http_sig::verify_rfc9421(&req, now, |_| Some(key), &general);
    let sdk = general.clone().derivation(Derivation::AuspexSdk);
    let _ = http_sig::verify_rfc9421(&req.with_scheme("http"), now, |_| Some(key), &sdk);
    if let Ok(members) = &parsed {
        for member in members {
            let _ = member.signature_base(&req, Derivation::Rfc9421, &general.structured_fields);
        }
    }
}

/// The tenant key of the shared vectors (RFC 8032 §7.1 test 1), computed once.
fn fuzz_tenant_key() -> ed25519_dalek::VerifyingKey {
    static KEY: std::sync::OnceLock<ed25519_dalek::VerifyingKey> = std::sync::OnceLock::new();
    *KEY.get_or_init(|| {
        crate::keys::TenantKey::from_seed([
            0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec,
            0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03,
            0x1c, 0xae, 0x7f, 0x60,
        ])
        .verifying_key()
    })
}

/// Signed-note / checkpoint parsing and verification (`tlog`): never panics;
/// an accepted note or checkpoint re-serialises to exactly its input (the
/// parsers accept only canonical forms).
#[allow(clippy::panic)]
pub fn checkpoint_note(data: &[u8]) {
    use crate::tlog::{Checkpoint, SignedNote, verify_checkpoint};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(note) = SignedNote::parse(text) {
        assert_eq!(note.to_text(), text, "signed note does not round-trip");
        if let Ok(c) = Checkpoint::parse(&note.text) {
            assert_eq!(c.to_text(), note.text, "checkpoint does not round-trip");
        }
    }
    if let Ok(c) = Checkpoint::parse(text) {
        assert_eq!(c.to_text(), text, "checkpoint does not round-trip");
    }
    for (log, _) in fuzz_logs() {
        let _ = verify_checkpoint(text, log.key(), log.name());
    }
}

/// Rekor entry and trusted-root parsing, and full entry verification
/// (`tlog`): never panics; a parsed entry survives `to_json` → `parse`.
#[allow(clippy::panic)]
pub fn rekor_entry(data: &[u8]) {
    use crate::tlog::{self, LogIndexRule, RekorEntry, TrustedRoot, VerifyOptions};
    let _ = TrustedRoot::from_json(data);
    let Ok(entry) = RekorEntry::parse(data) else {
        return;
    };
    match RekorEntry::parse(&entry.to_json()) {
        Ok(again) => assert_eq!(again, entry, "entry does not round-trip"),
        Err(e) => panic!("re-encoded entry does not parse: {e}"),
    }
    for (_, root) in fuzz_logs() {
        for rule in [LogIndexRule::Sharded, LogIndexRule::Exact] {
            let opts = VerifyOptions {
                artifact_sha256: Some([0; 32]),
                expected_log_index: Some(entry.log_index),
                log_index_rule: rule,
            };
            let report = tlog::verify_parsed(&entry, root, &opts);
            let _ = report.verdict(&tlog::required_checks(&entry, &opts));
        }
    }
}

/// One Ed25519 and one P-256 test log (named `rekor.test`) with their
/// trusted roots, built once. Seeds for the fuzz corpora are made with them.
fn fuzz_logs() -> &'static [(crate::tlog::testlog::TestLog, crate::tlog::TrustedRoot)] {
    use crate::tlog::testlog::{LogSigner, TestLog};
    static LOGS: std::sync::OnceLock<Vec<(TestLog, crate::tlog::TrustedRoot)>> =
        std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let mut signers = vec![LogSigner::ed25519([0x11; 32])];
        signers.extend(LogSigner::ecdsa_p256([0x22; 32]).ok());
        signers
            .into_iter()
            .filter_map(|s| TestLog::new(s, "rekor.test").ok())
            .map(|log| {
                let root = log.trusted_root();
                (log, root)
            })
            .collect()
    })
}
