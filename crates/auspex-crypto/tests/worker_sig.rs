//! Worker result signatures v0–v3 and the semantic hash against the SDK
//! vectors (worker_signature_and_transfer.json: 0.5.5 v0; v0_6_67_deltas.json:
//! 0.6.67 v0–v3 and semantic-hash examples; evidence_bundle_v1.json: three
//! signed consensus rows) and `worker.md` §4.7/§5 (worker 0.2.80), plus
//! batch-verification, mutation and property tests.

use auspex_crypto::report::{Outcome, Verdict};
use auspex_crypto::worker_sig::{
    self, AGED_OFF, FIELDS, ROW, RowSignature, RowsPolicy, SEMANTIC_HASH, SchemaVersion,
    SemanticHashError, SignedResult, SignedRow, VerifyMode, WorkerSigError, semantic_hash,
    verify_consensus_rows, verify_row, verify_rows,
};
use auspex_wire::bundle::EvidenceBundle;
use auspex_wire::json::{self, Object, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

fn vectors(name: &str) -> Value {
    let path = format!(
        "{}/../auspex-wire/tests/fixtures/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).expect("fixture present");
    json::parse(&bytes).expect("fixture is JSON")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).expect("string member")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn seed(hex: &str) -> SigningKey {
    SigningKey::from_bytes(&unhex(hex).try_into().expect("32 bytes"))
}

/// keys.json: worker i's seed is sha256("auspexai-spec-worker-<i>").
fn worker_key(i: usize) -> SigningKey {
    let keys = vectors("keys.json");
    let w = &keys
        .get("workers")
        .and_then(Value::as_array)
        .expect("workers")[i];
    seed(s(w, "seed_hex"))
}

fn bundle() -> EvidenceBundle {
    let doc = vectors("evidence_bundle_v1.json");
    EvidenceBundle::from_value(doc.get("bundle").expect("bundle")).expect("bundle reads")
}

// ---------------------------------------------------------------------------
// Vectors
// ---------------------------------------------------------------------------

#[test]
fn v0_vector_of_0_5_5_is_byte_exact_and_verifies() {
    let doc = vectors("worker_signature_and_transfer.json");
    let wr = doc.get("worker_result").expect("worker_result");
    let row = wr.get("bundle_row_fields").expect("row");
    let result = SignedResult::from_value(row).expect("row reads");
    assert_eq!(result.schema_version, SchemaVersion::V0);
    // The row's pubkey is uppercase; the signed body lowercases it.
    assert!(result.worker_pubkey.starts_with("770B"));
    assert_eq!(result.canonical_json(), s(wr, "canonical_utf8"));
    assert_eq!(result.canonical_bytes(), unhex(s(wr, "canonical_hex")));
    let sig = s(wr, "worker_signature_b64");
    let verified = verify_row(&result, sig).expect("verifies");
    assert_eq!(verified.schema_version(), SchemaVersion::V0);
    assert_eq!(
        verified.worker_pubkey(),
        worker_key(0).verifying_key().as_bytes()
    );
    // Ed25519 is deterministic: signing reproduces the vector.
    assert_eq!(result.sign(&worker_key(0)), sig);
}

#[test]
fn v0_to_v3_vectors_of_0_6_67_are_byte_exact_and_verify() {
    let doc = vectors("v0_6_67_deltas.json");
    let cases = doc
        .get("worker_result_signature_versions")
        .and_then(Value::as_array)
        .expect("versions");
    assert_eq!(cases.len(), 4);
    for (i, case) in cases.iter().enumerate() {
        let row = case.get("bundle_row_fields").expect("row");
        let result = SignedResult::from_value(row).expect("row reads");
        assert_eq!(usize::from(result.schema_version.number()), i, "case {i}");
        assert_eq!(
            result.canonical_json(),
            s(case, "canonical_utf8"),
            "case {i}"
        );
        assert_eq!(
            json::canonical(&result.to_value()),
            s(case, "canonical_utf8"),
            "case {i} via the generic canonicaliser"
        );
        let sig = s(case, "worker_signature_b64");
        let verified = verify_row(&result, sig).expect("verifies");
        assert_eq!(verified.schema_version(), result.schema_version);
        assert_eq!(result.sign(&worker_key(0)), sig, "case {i}");
        // Every other body version of the same row fails: the version is bound.
        for other in SchemaVersion::ALL {
            if other == result.schema_version {
                continue;
            }
            let wrong = SignedResult {
                schema_version: other,
                ..result
            };
            assert!(
                matches!(
                    verify_row(&wrong, sig),
                    Err(WorkerSigError::SignatureInvalid { version, .. }) if version == other.number()
                ),
                "case {i} verified as v{}",
                other.number()
            );
        }
    }
}

#[test]
fn semantic_hash_examples_of_0_6_67() {
    let doc = vectors("v0_6_67_deltas.json");
    for case in doc
        .get("semantic_hash")
        .and_then(Value::as_array)
        .expect("semantic_hash")
    {
        let code = match case.get("exit_code") {
            Some(Value::Int(i)) => i.as_i64().expect("small"),
            _ => panic!("exit_code"),
        };
        let payload = case.get("payload").expect("payload");
        assert_eq!(
            semantic_hash(code, payload),
            s(case, "semantic_hash"),
            "{}",
            s(case, "canonical_utf8")
        );
        assert_eq!(
            auspex_wire::sha256_hex(s(case, "canonical_utf8").as_bytes()),
            s(case, "semantic_hash")
        );
    }
}

/// worker.md §4.7 and §5: computed with the 0.2.80 worker (seed 0x01 × 32).
#[test]
fn worker_0_2_80_vectors() {
    let key = SigningKey::from_bytes(&[1u8; 32]);
    let pubkey = auspex_wire::hex_lower(key.verifying_key().as_bytes());
    assert_eq!(
        pubkey,
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    );
    let payload =
        json::parse(br#"{"score": 0.5, "label": "\u00e9", "n": 3, "xs": [1.0, 1e-05, 1e16]}"#)
            .expect("payload");
    let weights = json::parse(
        br#"{"tiny": "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"}"#,
    )
    .expect("weights");
    let chain = json::parse(
        br#"[{"top_k": 1, "top_p": 1.0, "min_p": 0.0, "typical_p": 1.0, "repeat_penalty": 1.0,
              "repeat_last_n": 0, "presence_penalty": 0.0, "frequency_penalty": 0.0, "mirostat": 0,
              "temperature": 0, "seed": 0, "num_predict": 16}]"#,
    )
    .expect("chain");
    let v3 = SignedResult {
        schema_version: SchemaVersion::V3,
        served_weights: weights.as_object(),
        ran_under: Some("permissive"),
        generation_options: chain.as_array().map(Vec::as_slice),
        ..SignedResult::v0(
            "u-0001",
            &pubkey,
            "2026-07-01T12:00:00.000001Z",
            0,
            &payload,
        )
    };
    let expected = concat!(
        r#"{"completed_at":"2026-07-01T12:00:00.000001Z","exit_code":0,"generation_options":[{"frequency_penalty":0.0,"min_p":0.0,"mirostat":0,"num_predict":16,"presence_penalty":0.0,"repeat_last_n":0,"repeat_penalty":1.0,"seed":0,"temperature":0,"top_k":1,"top_p":1.0,"typical_p":1.0}],"#,
        r#""payload":{"label":"\u00e9","n":3,"score":0.5,"xs":[1.0,1e-05,1e+16]},"ran_under":"permissive","schema_version":3,"#,
        r#""served_weights":{"tiny":"abababababababababababababababababababababababababababababababab"},"unit_id":"u-0001","#,
        r#""worker_pubkey":"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"}"#
    );
    assert_eq!(v3.canonical_json(), expected);
    assert_eq!(
        v3.result_sha256(),
        "dcbd62634c7c06d4695a57629979edcf1804c5b76d309f306404f1ab750fd795"
    );
    let sig =
        "xlI6bG2MB6AuLSAD75iznvW4zF6fgp+1WQyYJU67sGUiFyHnjHNXVxlqVaZ1zLx4ZASBgor5JFKXwcVk+wwrBw==";
    assert_eq!(v3.sign(&key), sig);
    assert!(verify_row(&v3, sig).is_ok());
    // The historical anchor variants (ran_under blanked, options emptied).
    assert_eq!(v3.result_sha256_variants().len(), 3);
    assert_eq!(
        v3.result_sha256_variants()[0],
        "dcbd62634c7c06d4695a57629979edcf1804c5b76d309f306404f1ab750fd795"
    );

    let v0 = SignedResult {
        schema_version: SchemaVersion::V0,
        ..v3
    };
    assert_eq!(
        v0.canonical_json(),
        format!(
            r#"{{"completed_at":"2026-07-01T12:00:00.000001Z","exit_code":0,"payload":{{"label":"\u00e9","n":3,"score":0.5,"xs":[1.0,1e-05,1e+16]}},"unit_id":"u-0001","worker_pubkey":"{pubkey}"}}"#
        )
    );
    assert_eq!(
        semantic_hash(0, &payload),
        "950cfd33f64c9b99a541da597a766fa214785a27cb1a951f0194bd57b4c22383"
    );

    // Upstream worker test-suite vector (v2; the pubkey is not a real key).
    let kv = json::parse(br#"{"k": "v"}"#).expect("payload");
    let m = json::parse(br#"{"m": "AABB"}"#).expect("weights");
    let v2 = SignedResult {
        schema_version: SchemaVersion::V2,
        served_weights: m.as_object(),
        ran_under: Some("STRICT"),
        ..SignedResult::v0("u", "ab", "2026-06-19T00:00:00+00:00", 0, &kv)
    };
    assert_eq!(
        v2.canonical_json(),
        r#"{"completed_at":"2026-06-19T00:00:00+00:00","exit_code":0,"payload":{"k":"v"},"ran_under":"strict","schema_version":2,"served_weights":{"m":"aabb"},"unit_id":"u","worker_pubkey":"ab"}"#
    );
    assert!(matches!(
        verify_row(&v2, sig),
        Err(WorkerSigError::PublicKey { .. })
    ));
}

#[test]
fn evidence_bundle_rows_verify_and_their_semantic_hashes_recompute() {
    let b = bundle();
    let v = verify_consensus_rows(&b.consensus_results, &RowsPolicy::default());
    assert_eq!(v.verified(), 3);
    assert!(v.failed().is_empty());
    let report = v.report();
    assert_eq!(
        report.verdict(&[ROW, FIELDS, SEMANTIC_HASH]),
        Verdict::Verified
    );
    assert!(report.outcome(AGED_OFF).is_none());
}

// ---------------------------------------------------------------------------
// Mutations: each names the check it fails
// ---------------------------------------------------------------------------

#[test]
fn edited_payload_fails_the_row_signature_and_the_semantic_hash() {
    let mut b = bundle();
    let row = &mut b.consensus_results[0];
    if let Some(Value::Object(o)) = row.payload.as_mut() {
        o.insert("value".into(), Value::from(3i64));
    }
    let v = verify_consensus_rows(&b.consensus_results, &RowsPolicy::default());
    assert_eq!(v.failed(), vec!["res-1"]);
    assert_eq!(v.verified(), 2);
    let report = v.report();
    let Some(Outcome::Failed(why)) = report.outcome(ROW) else {
        panic!("{report:?}")
    };
    assert!(why.contains("res-1"), "{why}");
    assert!(matches!(
        report.outcome(SEMANTIC_HASH),
        Some(Outcome::Failed(_))
    ));
    assert_eq!(report.first_failure().map(|c| c.id), Some(ROW));
}

/// §11.2 #12: 0.5.5 accepts a payload replaced by another payload the same
/// worker signed, as long as the attested semantic_hash is left alone.
#[test]
fn swapped_worker_signed_payload_fails_only_the_semantic_hash() {
    let mut b = bundle();
    let row = &mut b.consensus_results[0];
    let swapped = json::parse(br#"{"value": 99, "score": 0.9}"#).expect("payload");
    row.payload = Some(swapped);
    let resigned = {
        let r = SignedResult::from_consensus_row(row).expect("fields");
        r.sign(&worker_key(0))
    };
    row.worker_signature = Some(resigned);
    let v = verify_consensus_rows(&b.consensus_results, &RowsPolicy::default());
    let report = v.report();
    assert!(report.passed(ROW), "{report:?}");
    assert_eq!(report.first_failure().map(|c| c.id), Some(SEMANTIC_HASH));
    assert!(matches!(
        &v.rows[0].semantic_hash,
        Some(Err(SemanticHashError::Mismatch { .. }))
    ));
}

#[test]
fn stripped_pubkey_fails_fields_in_a_v1_bundle_and_is_tolerated_before_eb1() {
    let mut b = bundle();
    b.consensus_results[1].worker_pubkey_hex = None;
    let strict = verify_consensus_rows(&b.consensus_results, &RowsPolicy::default());
    assert_eq!(strict.missing_fields(), 1);
    let report = strict.report();
    assert_eq!(report.first_failure().map(|c| c.id), Some(FIELDS));
    assert!(report.passed(ROW));

    let lenient = RowsPolicy {
        require_signed_fields: false,
        ..RowsPolicy::default()
    };
    let report = verify_consensus_rows(&b.consensus_results, &lenient).report();
    assert!(matches!(
        report.outcome(FIELDS),
        Some(Outcome::NotChecked(_))
    ));
    assert!(report.verdict(&[ROW, SEMANTIC_HASH]).is_verified());
    assert!(!report.verdict(&[ROW, FIELDS]).is_verified());
}

#[test]
fn aged_off_rows_are_visible_as_not_checked() {
    let mut b = bundle();
    b.consensus_results[2].payload = None;
    b.consensus_results[2].aged_off = true;
    let v = verify_consensus_rows(&b.consensus_results, &RowsPolicy::default());
    assert_eq!((v.verified(), v.aged_off()), (2, 1));
    assert_eq!(v.rows[2].semantic_hash, None);
    let report = v.report();
    assert!(report.verdict(&[ROW, FIELDS, SEMANTIC_HASH]).is_verified());
    assert!(matches!(
        report.outcome(AGED_OFF),
        Some(Outcome::NotChecked(_))
    ));
}

#[test]
fn unknown_schema_version_is_refused_by_name() {
    let mut b = bundle();
    b.consensus_results[0].schema_version = Some(Value::from(4i64));
    b.consensus_results[1].schema_version = Some(Value::from("1"));
    let v = verify_consensus_rows(&b.consensus_results, &RowsPolicy::default());
    assert_eq!(
        v.rows[0].signature,
        RowSignature::Failed(WorkerSigError::UnsupportedSchemaVersion { found: "4".into() })
    );
    assert!(matches!(
        v.rows[1].signature,
        RowSignature::Failed(WorkerSigError::WrongType {
            field: "schema_version",
            ..
        })
    ));
    assert_eq!(v.report().first_failure().map(|c| c.id), Some(ROW));
}

#[test]
fn a_v0_signature_does_not_verify_as_v1() {
    // A row re-labelled v1 (served_weights added) no longer matches what the
    // worker signed.
    let mut b = bundle();
    b.consensus_results[0].schema_version = Some(Value::from(1i64));
    let v = verify_consensus_rows(&b.consensus_results, &RowsPolicy::default());
    assert!(matches!(
        v.rows[0].signature,
        RowSignature::Failed(WorkerSigError::SignatureInvalid { version: 1, .. })
    ));
}

#[test]
fn malformed_signatures_and_keys_are_typed() {
    let doc = vectors("worker_signature_and_transfer.json");
    let wr = doc.get("worker_result").expect("worker_result");
    let row = wr.get("bundle_row_fields").expect("row");
    let result = SignedResult::from_value(row).expect("row reads");
    let good = s(wr, "worker_signature_b64");
    for bad in ["", "not base64!", &good[..good.len() - 4], "AAAA"] {
        assert!(
            matches!(
                verify_row(&result, bad),
                Err(WorkerSigError::SignatureEncoding { .. })
            ),
            "{bad:?}"
        );
    }
    // Non-canonical trailing bits in the last base64 group.
    let mut noncanonical = good.to_owned();
    noncanonical.replace_range(85..86, "h");
    assert!(verify_row(&result, &noncanonical).is_err());

    for key in ["", "770b", &"zz".repeat(32), &"00".repeat(33)] {
        let r = SignedResult {
            worker_pubkey: key,
            ..result
        };
        assert!(
            matches!(verify_row(&r, good), Err(WorkerSigError::PublicKey { .. })),
            "{key:?}"
        );
    }
    // A small-order key (the identity point) never verifies.
    let identity = format!("01{}", "00".repeat(31));
    let r = SignedResult {
        worker_pubkey: &identity,
        ..result
    };
    assert!(matches!(
        verify_row(&r, good),
        Err(WorkerSigError::SignatureInvalid { .. })
    ));
}

#[test]
fn row_members_of_the_wrong_type_are_typed_errors() {
    for (json_text, field) in [
        (
            r#"{"unit_id":"u","worker_pubkey_hex":"ab","completed_at":"t","exit_code":0.0,"payload":{}}"#,
            "exit_code",
        ),
        (
            r#"{"unit_id":"u","worker_pubkey_hex":"ab","completed_at":"t","exit_code":"0","payload":{}}"#,
            "exit_code",
        ),
        (
            r#"{"unit_id":1,"worker_pubkey_hex":"ab","completed_at":"t","exit_code":0,"payload":{}}"#,
            "unit_id",
        ),
        (
            r#"{"unit_id":"u","worker_pubkey_hex":"ab","completed_at":"t","exit_code":0,"payload":{},"schema_version":1,"served_weights":{"m":1}}"#,
            "served_weights",
        ),
        (
            r#"{"unit_id":"u","worker_pubkey_hex":"ab","completed_at":"t","exit_code":0,"payload":{},"schema_version":2,"ran_under":true}"#,
            "ran_under",
        ),
        (
            r#"{"unit_id":"u","worker_pubkey_hex":"ab","completed_at":"t","exit_code":0,"payload":{},"schema_version":3,"generation_options":{}}"#,
            "generation_options",
        ),
    ] {
        let v = json::parse(json_text.as_bytes()).expect("json");
        match SignedResult::from_value(&v) {
            Err(WorkerSigError::WrongType { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{json_text}: {other:?}"),
        }
    }
    let v = json::parse(br#"{"unit_id":"u","worker_pubkey_hex":"ab","exit_code":0,"payload":{}}"#)
        .expect("json");
    assert_eq!(
        SignedResult::from_value(&v),
        Err(WorkerSigError::MissingField {
            field: "completed_at"
        })
    );
    let v = json::parse(
        br#"{"unit_id":"u","worker_pubkey_hex":"ab","completed_at":"t","exit_code":99999999999999999999,"payload":{}}"#,
    )
    .expect("json");
    assert!(matches!(
        SignedResult::from_value(&v),
        Err(WorkerSigError::ExitCodeRange { .. })
    ));
}

// ---------------------------------------------------------------------------
// Batch verification
// ---------------------------------------------------------------------------

struct Corpus {
    payloads: Vec<Value>,
    pubkeys: Vec<String>,
    keys: Vec<SigningKey>,
}

impl Corpus {
    fn new(n: usize) -> Corpus {
        let keys: Vec<SigningKey> = (0..3).map(worker_key).collect();
        Corpus {
            payloads: (0..n)
                .map(|i| {
                    json::parse(format!(r#"{{"i": {i}, "score": 0.{i}}}"#).as_bytes())
                        .expect("payload")
                })
                .collect(),
            pubkeys: keys
                .iter()
                .map(|k| auspex_wire::hex_lower(k.verifying_key().as_bytes()))
                .collect(),
            keys,
        }
    }

    fn results(&self) -> Vec<SignedResult<'_>> {
        self.payloads
            .iter()
            .enumerate()
            .map(|(i, p)| SignedResult {
                schema_version: SchemaVersion::ALL[i % 4],
                ..SignedResult::v0("u", &self.pubkeys[i % 3], "2025-01-01T00:00:00Z", 0, p)
            })
            .collect()
    }

    fn signatures(&self, results: &[SignedResult<'_>]) -> Vec<String> {
        results
            .iter()
            .enumerate()
            .map(|(i, r)| r.sign(&self.keys[i % 3]))
            .collect()
    }
}

#[test]
fn a_failed_batch_is_retried_one_by_one_and_names_each_failure() {
    // Small on purpose: Ed25519 is slow in unoptimised test builds.
    let corpus = Corpus::new(40);
    let results = corpus.results();
    let mut sigs = corpus.signatures(&results);
    // Corrupt rows 7 and 35 (different chunks of 8) and swap rows 20 and
    // 21's signatures.
    sigs[7] = sigs[8].clone();
    let mut raw = STANDARD.decode(&sigs[35]).expect("b64");
    raw[10] ^= 0x01;
    sigs[35] = STANDARD.encode(raw);
    sigs.swap(20, 21);
    let rows: Vec<SignedRow<'_>> = results
        .iter()
        .zip(&sigs)
        .map(|(r, s)| SignedRow {
            result: *r,
            signature_b64: s,
        })
        .collect();
    for mode in [
        VerifyMode::default(),
        VerifyMode::Batch { chunk: 8 },
        VerifyMode::Batch { chunk: 1 },
        VerifyMode::Batch { chunk: 0 },
        VerifyMode::OneByOne,
    ] {
        let out = verify_rows(&rows, mode);
        assert_eq!(out.len(), 40);
        let failed: Vec<usize> = out
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_err())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(failed, vec![7, 20, 21, 35], "{mode:?}");
        for (i, r) in out.iter().enumerate() {
            match r {
                Ok(v) => assert_eq!(v.schema_version(), SchemaVersion::ALL[i % 4]),
                Err(e) => assert!(
                    matches!(e, WorkerSigError::SignatureInvalid { .. }),
                    "{e:?}"
                ),
            }
        }
    }
}

#[test]
fn batches_mixing_malformed_rows_keep_positions() {
    let corpus = Corpus::new(10);
    let mut results = corpus.results();
    let sigs = corpus.signatures(&results);
    results[3].worker_pubkey = "nope";
    let mut rows: Vec<SignedRow<'_>> = results
        .iter()
        .zip(&sigs)
        .map(|(r, s)| SignedRow {
            result: *r,
            signature_b64: s,
        })
        .collect();
    rows[5].signature_b64 = "%%%";
    let out = verify_rows(&rows, VerifyMode::default());
    assert!(matches!(out[3], Err(WorkerSigError::PublicKey { .. })));
    assert!(matches!(
        out[5],
        Err(WorkerSigError::SignatureEncoding { .. })
    ));
    assert_eq!(out.iter().filter(|r| r.is_ok()).count(), 8);
    assert!(verify_rows(&[], VerifyMode::default()).is_empty());
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::Float),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((".{0,6}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Object>())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    prop::collection::vec((".{0,6}", value()), 0..4)
        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Object>()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// sign → verify round-trips for every schema version; the hand-written
    /// canonical writer equals the generic canonicaliser; a flipped bit in
    /// the signature or another version's body fails.
    #[test]
    fn sign_verify_round_trip(
        seed_bytes in any::<[u8; 32]>(),
        version in 0u64..4,
        unit_id in "[a-zA-Z0-9_-]{1,20}",
        completed_at in ".{0,30}",
        exit_code in -255i64..=255,
        payload in object(),
        weights in prop::collection::vec(("[a-z0-9.:-]{1,8}", "[0-9a-fA-F]{0,64}"), 0..3),
        ran_under in prop::option::of("[A-Za-z]{0,10}"),
        options in prop::collection::vec(object(), 0..3),
        flip in 0usize..512,
    ) {
        let key = SigningKey::from_bytes(&seed_bytes);
        let pubkey = auspex_wire::hex_lower(key.verifying_key().as_bytes()).to_uppercase();
        let weights = Value::Object(
            weights.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<Object>(),
        );
        let version = SchemaVersion::from_number(version).expect("0..4");
        let result = SignedResult {
            schema_version: version,
            served_weights: weights.as_object(),
            ran_under: ran_under.as_deref(),
            generation_options: Some(&options),
            ..SignedResult::v0(&unit_id, &pubkey, &completed_at, exit_code, &payload)
        };
        let text = result.canonical_json();
        prop_assert!(text.is_ascii());
        prop_assert_eq!(&text, &json::canonical(&result.to_value()));
        // Round trip through JSON text: the body re-parses to itself.
        let reparsed = json::parse(text.as_bytes()).expect("canonical JSON parses");
        prop_assert_eq!(json::canonical(&reparsed), text.clone());

        let sig = result.sign(&key);
        let verified = verify_row(&result, &sig).expect("own signature verifies");
        prop_assert_eq!(verified.schema_version(), version);
        prop_assert_eq!(verified.worker_pubkey(), &key.verifying_key().to_bytes());
        let batch = verify_rows(&[SignedRow { result, signature_b64: &sig }], VerifyMode::default());
        prop_assert!(batch[0].is_ok());

        let mut raw = STANDARD.decode(&sig).expect("b64");
        raw[flip / 8] ^= 1 << (flip % 8);
        prop_assert!(verify_row(&result, &STANDARD.encode(raw)).is_err());

        for other in SchemaVersion::ALL {
            let o = SignedResult { schema_version: other, ..result };
            if o.canonical_json() != text {
                prop_assert!(verify_row(&o, &sig).is_err());
            }
        }
    }

    /// The semantic hash is SHA-256 of the generic canonical form.
    #[test]
    fn semantic_hash_is_sha256_of_canonical(exit_code in any::<i64>(), payload in value()) {
        let mut o = Object::new();
        o.insert("payload".into(), payload.clone());
        o.insert("exit_code".into(), Value::from(exit_code));
        let want = auspex_wire::sha256_hex(json::canonical(&Value::Object(o)).as_bytes());
        prop_assert_eq!(semantic_hash(exit_code, &payload), want.clone());
        prop_assert!(worker_sig::check_semantic_hash(exit_code, &payload, &want).is_ok());
    }
}
