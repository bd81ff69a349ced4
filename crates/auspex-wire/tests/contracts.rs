//! The harness-file models, receipts, in-toto statements, attestation and
//! bundle shapes, the journal and SSE against the SDK-made vectors, byte for
//! byte, plus validation error paths and malformed CBOR.

use auspex_wire::attestation::{
    self, AttestationResponse, RESULT_SET_PREDICATE_TYPE_V0, RESULT_SET_PREDICATE_TYPE_V1,
    ResultSetPredicate, Statement, StatementError,
};
use auspex_wire::bundle::EvidenceBundle;
use auspex_wire::executor_output::ExecutorOutput;
use auspex_wire::journal::{self, JournalUnit, Record, Terminal};
use auspex_wire::json::{self, Value};
use auspex_wire::receipt::cbor::{self, Cbor, CborError};
use auspex_wire::receipt::{self, RECEIPT_PREDICATE_TYPE, Receipt, ReceiptError};
use auspex_wire::reducer::ReducerDecision;
use auspex_wire::result::WorkResult;
use auspex_wire::sse::{LineSplitter, SseParser};
use auspex_wire::validate::{ViolationKind, Violations};
use auspex_wire::workunit::{DateTime, DocumentError, SubmitUnit, WorkUnit};

fn vectors(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).expect("fixture present");
    json::parse(&bytes).expect("fixture is JSON")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).expect("string member")
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hex(b: &[u8]) -> String {
    auspex_wire::hex_lower(b)
}

fn paths(v: &Violations) -> Vec<String> {
    v.0.iter().map(|x| x.path.to_string()).collect()
}

// ---------------------------------------------------------------------------
// Receipts (receipt_cbor_cose.json)
// ---------------------------------------------------------------------------

#[test]
fn receipt_cbor_round_trips_byte_exactly() {
    let doc = vectors("receipt_cbor_cose.json");
    let cbor_bytes = unhex(s(&doc, "receipt_cbor_hex"));
    let r = receipt::decode_cbor(&cbor_bytes).expect("vector receipt decodes");
    assert_eq!(r.tenant_id, "acme-lab");
    assert_eq!(r.quorum_agreement.replication_factor, 3);
    assert_eq!(r.time_window.end.microsecond(), 123_456);
    assert_eq!(receipt::encode_cbor(&r).expect("encodes"), cbor_bytes);
    assert_eq!(
        r.to_pydantic_json_indent(),
        s(&doc, "receipt_json_pretty_as_printed_by_receipts_show")
    );
    // The JSON form reads back to the same receipt and dumps identically.
    let json_form = doc.get("receipt_json").expect("receipt_json");
    let from_json = Receipt::validate_value(json_form).expect("JSON form validates");
    assert_eq!(from_json, r);
    assert_eq!(r.to_pydantic_json(false), json::pydantic_compact(json_form));
    assert_eq!(
        Receipt::parse_json(r.to_pydantic_json(true).as_bytes()).expect("own output reads"),
        r
    );
}

#[test]
fn receipt_statement_decodes_and_re_encodes() {
    let doc = vectors("receipt_cbor_cose.json");
    let stmt_bytes = unhex(s(&doc, "statement_cbor_hex"));
    let st = Statement::decode(&stmt_bytes).expect("statement decodes");
    assert_eq!(st.statement_type, attestation::STATEMENT_TYPE_V1);
    assert_eq!(st.predicate_type, RECEIPT_PREDICATE_TYPE);
    assert_eq!(st.subjects.len(), 1);
    assert_eq!(st.subjects[0].name, "auspexai:receipt/rcpt-0001");
    assert_eq!(st.predicate, unhex(s(&doc, "receipt_cbor_hex")));
    assert!(st.subject_digest_matches());
    assert_eq!(st.encode(), stmt_bytes);
    let rebuilt = Statement::wrap(
        "auspexai:receipt/rcpt-0001",
        RECEIPT_PREDICATE_TYPE,
        st.predicate.clone(),
    );
    assert_eq!(rebuilt.encode(), stmt_bytes);

    let mut tampered = st.clone();
    tampered.predicate[10] ^= 1;
    assert!(!tampered.subject_digest_matches());
    tampered.subjects.clear();
    assert!(!tampered.subject_digest_matches());
}

#[test]
fn receipt_decoding_is_lax_like_pydantic_python_mode() {
    let doc = vectors("receipt_cbor_cose.json");
    let base = cbor::decode(&unhex(s(&doc, "receipt_cbor_hex"))).expect("decodes");
    let set = |item: &Cbor, path: &[&str], new: Cbor| -> Cbor {
        fn go(item: &Cbor, path: &[&str], new: Cbor) -> Cbor {
            let Cbor::Map(entries) = item else {
                panic!("not a map")
            };
            let mut entries = entries.clone();
            match entries
                .iter_mut()
                .find(|(k, _)| k.as_text() == Some(path[0]))
            {
                Some((_, v)) if path.len() == 1 => *v = new,
                Some((_, v)) => *v = go(v, &path[1..], new),
                None => entries.push((Cbor::Text(path[0].to_owned()), new)),
            }
            Cbor::Map(entries)
        }
        go(item, path, new)
    };
    let ok = |item: Cbor| Receipt::validate_cbor(&item).expect("accepted");
    let bad = |item: Cbor| Receipt::validate_cbor(&item).expect_err("refused");

    // Accepted like 0.5.5 (Pydantic lax mode).
    let pk = unhex("770b5d5e0d025b1b6644a2b5b113dbb8bf07e04c61d2c3fd4c5e2701a55e5be8");
    let r = ok(set(&base, &["tenant_id"], Cbor::Bytes(b"acme".to_vec())));
    assert_eq!(r.tenant_id, "acme");
    let r = ok(set(
        &base,
        &["worker_pubkey"],
        Cbor::Text("770B5D5E 0d025b1b6644a2b5b113dbb8bf07e04c61d2c3fd4c5e2701a55e5be8".into()),
    ));
    assert_eq!(r.worker_pubkey.to_vec(), pk);
    let r = ok(set(
        &base,
        &["quorum_agreement", "replication_factor"],
        Cbor::Float(3.0),
    ));
    assert_eq!(r.quorum_agreement.replication_factor, 3);
    ok(set(
        &base,
        &["quorum_agreement", "replication_factor"],
        Cbor::Bool(true),
    ));
    ok(set(
        &base,
        &["quorum_agreement", "replication_factor"],
        Cbor::Text("3".into()),
    ));
    let r = ok(set(
        &base,
        &["time_window", "start"],
        Cbor::Text("2025-01-02T03:04:05+01:00".into()),
    ));
    assert_eq!(r.time_window.start.to_string(), "2025-01-02T03:04:05+01:00");
    let r = ok(set(
        &base,
        &["time_window", "start"],
        Cbor::Unsigned(1735787045),
    ));
    assert_eq!(r.time_window.start.to_string(), "2025-01-02T03:04:05Z");
    let r = ok(set(
        &base,
        &["time_window", "start"],
        Cbor::Tag(1, Box::new(Cbor::Unsigned(1735787045))),
    ));
    assert_eq!(r.time_window.start.to_string(), "2025-01-02T03:04:05Z");
    // A naive plain-text time is accepted on read, but cannot be encoded.
    let r = ok(set(
        &base,
        &["time_window", "start"],
        Cbor::Text("2025-01-02T03:04:05".into()),
    ));
    assert_eq!(
        receipt::encode_cbor(&r),
        Err(ReceiptError::NaiveDatetime { field: "start" })
    );

    // Refused, with the path of the offending member.
    let v = bad(set(&base, &["tenant_id"], Cbor::Unsigned(5)));
    assert_eq!(paths(&v), ["tenant_id"]);
    let v = bad(set(&base, &["worker_pubkey"], Cbor::Bytes(vec![0; 31])));
    assert_eq!(paths(&v), ["worker_pubkey"]);
    let v = bad(set(&base, &["worker_pubkey"], Cbor::Text("zz".into())));
    assert_eq!(paths(&v), ["worker_pubkey"]);
    let v = bad(set(
        &base,
        &["quorum_agreement", "replication_factor"],
        Cbor::Float(3.5),
    ));
    assert_eq!(paths(&v), ["quorum_agreement.replication_factor"]);
    let v = bad(set(
        &base,
        &["quorum_agreement", "agreeing_workers"],
        Cbor::Unsigned(0),
    ));
    assert!(matches!(v.0[0].kind, ViolationKind::Range { .. }));
    let v = bad(set(&base, &["version"], Cbor::Text("0.2".into())));
    assert_eq!(paths(&v), ["version"]);
    let v = bad(set(&base, &["work_unit_ids"], Cbor::Array(vec![])));
    assert!(matches!(
        v.0[0].kind,
        ViolationKind::TooFewItems { min: 1, actual: 0 }
    ));
    let v = bad(set(&base, &["zzz"], Cbor::Unsigned(1)));
    assert_eq!(v.0[0].kind, ViolationKind::Unknown);
    let anchor_idx = set(
        &base,
        &["result_hash_anchors"],
        Cbor::Array(vec![Cbor::Map(vec![
            (Cbor::Text("rekor_log_index".into()), Cbor::Negative(0)),
            (
                Cbor::Text("rekor_entry_uuid".into()),
                Cbor::Text("x".into()),
            ),
            (
                Cbor::Text("result_sha256".into()),
                Cbor::Text("AB".repeat(32)),
            ),
        ])]),
    );
    let v = bad(anchor_idx);
    assert_eq!(
        paths(&v),
        [
            "result_hash_anchors[0].rekor_log_index",
            "result_hash_anchors[0].result_sha256"
        ]
    );
    let v = bad(set(
        &base,
        &["time_window", "end"],
        Cbor::Tag(0, Box::new(Cbor::Text("2025-01-02T03:04:05".into()))),
    ));
    assert_eq!(paths(&v), ["time_window.end"]);
    let v = bad(set(&base, &["time_window", "end"], Cbor::Bool(true)));
    assert_eq!(paths(&v), ["time_window.end"]);
    // Several problems are all reported.
    let many = set(
        &set(&base, &["tenant_id"], Cbor::Null),
        &["experiment_id"],
        Cbor::Array(vec![]),
    );
    assert_eq!(paths(&bad(many)), ["tenant_id", "experiment_id"]);
    // Non-text and duplicate keys.
    let Cbor::Map(mut entries) = base.clone() else {
        panic!("map")
    };
    entries.push((Cbor::Unsigned(1), Cbor::Unsigned(1)));
    entries.push((Cbor::Text("tenant_id".into()), Cbor::Text("x".into())));
    let v = bad(Cbor::Map(entries));
    assert_eq!(paths(&v), ["1", "tenant_id"]);
}

#[test]
fn receipt_decode_refuses_malformed_cbor() {
    let doc = vectors("receipt_cbor_cose.json");
    let good = unhex(s(&doc, "receipt_cbor_hex"));
    for cut in [0, 1, 2, 10, good.len() / 2, good.len() - 1] {
        let err = receipt::decode_cbor(&good[..cut]).expect_err("truncated");
        assert!(matches!(
            err,
            ReceiptError::Cbor(
                CborError::Truncated { .. }
                    | CborError::Empty
                    | CborError::LengthExceedsInput { .. }
            )
        ));
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(
        receipt::decode_cbor(&trailing),
        Err(ReceiptError::Cbor(CborError::TrailingBytes {
            remaining: 1,
            ..
        }))
    ));
    // The COSE blob is not a naked receipt (as in 0.5.5).
    let cose = unhex(s(&doc, "cose_sign1_hex"));
    let err = receipt::decode_cbor(&cose).expect_err("COSE is not a naked receipt");
    assert!(matches!(err, ReceiptError::Invalid(_)));
    for bad in [
        "9bffffffffffffffff",
        "5bffffffffffffffff",
        "bb0000000100000000",
    ] {
        assert!(matches!(
            receipt::decode_cbor(&unhex(bad)),
            Err(ReceiptError::Cbor(CborError::LengthExceedsInput { .. }))
        ));
    }
    let deep = vec![0x81u8; 100_000];
    assert!(matches!(
        receipt::decode_cbor(&deep),
        Err(ReceiptError::Cbor(CborError::TooDeep { .. }))
    ));
}

mod fuzzish {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn cbor_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = cbor::decode(&bytes);
            let _ = receipt::decode_cbor(&bytes);
            let _ = Statement::decode(&bytes);
            let _ = ResultSetPredicate::decode(&bytes);
        }

        #[test]
        fn mutated_receipts_never_panic(pos in 0usize..447, byte in any::<u8>()) {
            let doc = vectors("receipt_cbor_cose.json");
            let mut good = unhex(s(&doc, "receipt_cbor_hex"));
            let i = pos % good.len();
            good[i] = byte;
            if let Ok(r) = receipt::decode_cbor(&good) {
                let _ = receipt::encode_cbor(&r);
                let _ = r.to_pydantic_json_indent();
            }
        }

        #[test]
        fn canonical_cbor_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(item) = cbor::decode(&bytes) {
                let enc = cbor::encode_canonical(&item);
                let again = cbor::decode(&enc).expect("canonical output decodes");
                prop_assert_eq!(cbor::encode_canonical(&again), enc);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Attestations (attestation.json)
// ---------------------------------------------------------------------------

/// The payload of an untagged COSE_Sign1 (element 2), without verification.
fn cose_payload(cose_hex: &str) -> Vec<u8> {
    let item = cbor::decode(&unhex(cose_hex)).expect("COSE decodes");
    item.as_array().expect("array")[2]
        .as_bytes()
        .expect("bstr payload")
        .to_vec()
}

#[test]
fn attestation_predicates_and_statements() {
    let doc = vectors("attestation.json");
    for (version, ptype) in [
        ("v1", RESULT_SET_PREDICATE_TYPE_V1),
        ("v0", RESULT_SET_PREDICATE_TYPE_V0),
    ] {
        let case = doc.get(version).expect("case");
        let pred_bytes = unhex(s(case, "predicate_cbor_hex"));
        let pred = ResultSetPredicate::decode(&pred_bytes).expect("predicate decodes");
        let resp_json = case.get("attestation_response_json").expect("response");
        let resp = AttestationResponse::from_value(resp_json).expect("response reads");

        assert_eq!(pred.merkle_root, resp.merkle_root);
        assert_eq!(pred.algorithm, resp.algorithm);
        assert_eq!(pred.experiment_id, "drift-probe-007");
        assert_eq!(pred.tenant_id, "acme-lab");
        assert_eq!(pred.unit_count, 3);
        assert!(!pred.partial);
        assert!(pred.extra.is_empty());
        let ids: Vec<&str> = pred.units.iter().map(|u| u.unit_id.as_str()).collect();
        assert_eq!(ids, ["u-0001", "u-0002", "u-0003"]);
        for (pu, ru) in pred.units.iter().zip(&resp.units) {
            assert_eq!(pu.consensus_result_hash, ru.consensus_result_hash);
            assert_eq!(pu.receipt_id, ru.receipt_id);
            assert_eq!(pu.unit_payload_sha256, ru.unit_payload_sha256);
        }
        if version == "v1" {
            assert!(resp.is_v1());
            assert_eq!(
                pred.units[0].integrity_basis.as_deref(),
                Some("within_cell_exact")
            );
        } else {
            assert!(!resp.is_v1());
            assert_eq!(pred.units[0].unit_payload_sha256, None);
        }
        assert_eq!(resp.expected_predicate_type(), ptype);

        let stmt_bytes = unhex(s(case, "statement_cbor_hex"));
        let st = Statement::decode(&stmt_bytes).expect("statement decodes");
        assert_eq!(st.predicate_type, ptype);
        assert_eq!(st.predicate, pred_bytes);
        assert!(st.subject_digest_matches());
        assert_eq!(st.subjects[0].name, "auspexai:result-set/att-TESTVECTOR1");
        assert_eq!(st.encode(), stmt_bytes);
        assert_eq!(cose_payload(s(case, "cose_sign1_hex")), stmt_bytes);
        assert_eq!(resp.attestation_id, "att-TESTVECTOR1");
        assert!(!resp.partial);
        assert_eq!(resp.rekor_entry_uuid, "lab-mode-no-rekor");
    }
}

#[test]
fn checkpoint_predicate_says_partial() {
    let doc = vectors("attestation.json");
    let case = doc.get("partial_flag_not_bound_in_0_5_5").expect("case");
    let st = Statement::decode(&cose_payload(s(case, "cose_sign1_hex"))).expect("statement");
    assert!(st.subject_digest_matches());
    let pred = ResultSetPredicate::decode(&st.predicate).expect("predicate");
    assert!(pred.partial);
    assert_eq!(
        case.get("signed_predicate_partial"),
        Some(&Value::Bool(true))
    );
}

#[test]
fn attestation_response_defaults_and_errors() {
    let minimal = json::parse(
        br#"{"attestation_id":"att-1","experiment_id":"e","tenant_id":"t","merkle_root":"r",
             "cose_b64":"AA==","signing_key_pubkey_hex":"k","partial":1,"zzz":true}"#,
    )
    .expect("json");
    let r = AttestationResponse::from_value(&minimal).expect("reads");
    assert_eq!(r.algorithm, attestation::ALGORITHM_V0);
    assert_eq!(r.unit_count, 0);
    assert!(r.units.is_empty());
    assert_eq!(r.rekor_log_index, 0);
    assert_eq!(r.rekor_entry_uuid, "");
    assert!(r.partial, "Python truthiness");
    assert_eq!(r.extra.get("zzz"), Some(&Value::Bool(true)));
    assert!(!attestation::is_v1_algorithm("SHA256-MERKLE-V1"));

    let bad = json::parse(br#"{"attestation_id":1,"units":[{"unit_id":"u"}],"merkle_root":"r"}"#)
        .expect("json");
    let v = AttestationResponse::from_value(&bad).expect_err("invalid");
    assert_eq!(
        paths(&v),
        [
            "attestation_id",
            "experiment_id",
            "tenant_id",
            "units[0].consensus_result_hash",
            "units[0].receipt_id",
            "cose_b64",
            "signing_key_pubkey_hex"
        ]
    );
}

#[test]
fn statement_errors_are_typed() {
    let m = |entries: Vec<(&str, Cbor)>| {
        cbor::encode_canonical(&Cbor::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Cbor::Text(k.into()), v))
                .collect(),
        ))
    };
    let subject = Cbor::Array(vec![Cbor::Map(vec![
        (Cbor::Text("name".into()), Cbor::Text("n".into())),
        (
            Cbor::Text("digest".into()),
            Cbor::Map(vec![(Cbor::Text("sha256".into()), Cbor::Text("00".into()))]),
        ),
    ])]);
    assert!(matches!(
        Statement::decode(&[0x01]),
        Err(StatementError::NotAMap { .. })
    ));
    assert!(matches!(
        Statement::decode(&m(vec![("_type", Cbor::Text("t".into()))])),
        Err(StatementError::Missing {
            member: "subject",
            ..
        })
    ));
    let nested = m(vec![
        ("_type", Cbor::Text("t".into())),
        ("subject", subject.clone()),
        ("predicateType", Cbor::Text("p".into())),
        ("predicate", Cbor::Map(vec![])),
    ]);
    assert!(matches!(
        Statement::decode(&nested),
        Err(StatementError::WrongType {
            expected: "a byte string",
            ..
        })
    ));
    let ok = m(vec![
        ("_type", Cbor::Text("t".into())),
        ("subject", subject),
        ("predicateType", Cbor::Text("p".into())),
        ("predicate", Cbor::Bytes(vec![0xa0])),
    ]);
    let st = Statement::decode(&ok).expect("decodes");
    assert!(!st.subject_digest_matches());
    let mut dup = ok.clone();
    dup[0] += 1; // a5: one more entry
    dup.extend(cbor::encode_canonical(&Cbor::Text("_type".into())));
    dup.extend(cbor::encode_canonical(&Cbor::Text("t".into())));
    assert!(matches!(
        Statement::decode(&dup),
        Err(StatementError::BadKey { .. })
    ));
}

// ---------------------------------------------------------------------------
// Evidence bundle (evidence_bundle_v1.json)
// ---------------------------------------------------------------------------

#[test]
fn evidence_bundle_v1_reads() {
    let doc = vectors("evidence_bundle_v1.json");
    let b = EvidenceBundle::from_value(doc.get("bundle").expect("bundle")).expect("reads");
    assert!(b.is_v1());
    assert!(!b.has_unknown_schema());
    assert_eq!(b.experiment_id.as_deref(), Some("exp-CmK1YYqC"));
    assert!(b.manifest.is_some());
    assert_eq!(b.work_units.len(), 3);
    assert_eq!(b.consensus_results.len(), 3);
    assert_eq!(b.receipts.len(), 3);
    assert!(b.unit_consensus.is_empty() && b.deviations.is_empty());
    assert!(b.pre_registration.is_none());
    assert!(b.extra.is_empty());
    let row = &b.consensus_results[0];
    assert_eq!(row.result_id.as_deref(), Some("res-1"));
    assert_eq!(
        row.completed_at.as_deref(),
        Some("2025-01-02T03:00:00+00:00")
    );
    assert_eq!(row.exit_code, Some(Value::from(0i64)));
    assert!(!row.aged_off);
    assert!(row.environment.is_none() && row.extra.is_empty());
    // Payload hashing keeps Python semantics (floats like 0.1 as written).
    let payload = b.work_units[0].payload.as_ref().expect("payload");
    assert_eq!(json::canonical(payload), r#"{"n":10,"seed":1}"#);
    let att = b.attestation.as_ref().expect("attestation");
    assert_eq!(att.algorithm.as_deref(), Some("sha256-merkle-v1"));
    assert!(att.rekor_inclusion_proof.is_none());
    let t = b.transfer.as_ref().expect("transfer");
    assert_eq!(t.root_kind.as_deref(), Some("sha256-merkle-v1"));
    assert_eq!(t.result_set_root, att.merkle_root);
    assert_eq!(t.receipt_count, Some(Value::from(3i64)));
    assert!(t.extra.is_empty());

    // The attestation's COSE payload is a v1 result-set statement over the
    // bundle's units.
    let rows = b.consensus_results.len();
    let b64 = att.cose_b64.as_deref().expect("cose_b64");
    use base64::Engine as _;
    let cose = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    let st = Statement::decode(&cose_payload(&hex(&cose))).expect("statement");
    let pred = ResultSetPredicate::decode(&st.predicate).expect("predicate");
    assert_eq!(pred.units.len(), rows);
    assert_eq!(Some(pred.merkle_root.as_str()), att.merkle_root.as_deref());
}

#[test]
fn evidence_bundle_tolerance_and_errors() {
    let v = json::parse(br#"{"consensus_results":[{"aged_off":0,"payload":null}],"attestation":{},"receipts":null}"#)
        .expect("json");
    let b = EvidenceBundle::from_value(&v).expect("reads");
    assert_eq!(b.schema, None);
    assert!(
        b.attestation.is_none(),
        "empty attestation is absent, as in the SDK"
    );
    assert!(b.receipts.is_empty());
    assert!(b.consensus_results[0].payload.is_none());
    let v = json::parse(br#"{"schema":"auspexai-evidence-bundle/v2"}"#).expect("json");
    assert!(
        EvidenceBundle::from_value(&v)
            .expect("reads")
            .has_unknown_schema()
    );
    let v = json::parse(br#"{"receipts":{},"consensus_results":[1,{"unit_id":5}],"transfer":[]}"#)
        .expect("json");
    let err = EvidenceBundle::from_value(&v).expect_err("wrong types");
    assert_eq!(
        paths(&err),
        [
            "receipts",
            "consensus_results[0]",
            "consensus_results[1].unit_id",
            "transfer"
        ]
    );
    assert!(matches!(
        EvidenceBundle::parse(b"{"),
        Err(DocumentError::Json(_))
    ));
}

// ---------------------------------------------------------------------------
// Driver side: journal, SSE, harness files (driver_journal_aggregates_sse.json)
// ---------------------------------------------------------------------------

fn obj(text: &str) -> Value {
    json::parse(text.as_bytes()).expect("json")
}

#[test]
fn journal_text_is_byte_exact_and_resumes() {
    let doc = vectors("driver_journal_aggregates_sse.json");
    let want = s(&doc, "journal_text_after_round1_submit");
    let records = vec![
        Record::Submit {
            round: 0,
            units: vec![
                JournalUnit {
                    unit_id: "geom-r0-u0".into(),
                    payload: obj(r#"{"n_samples":2000,"seed":0}"#),
                },
                JournalUnit {
                    unit_id: "geom-r0-u1".into(),
                    payload: obj(r#"{"seed":1,"é":"x"}"#),
                },
            ],
        },
        Record::RoundDone {
            round: 0,
            cursor: Some("2025-01-02T03:04:05.123456+00:00|res-2".into()),
            aggregate: obj(r#"{"count":2,"sum":0.75,"sumsq":0.3125}"#),
        },
        Record::Submit {
            round: 1,
            units: vec![JournalUnit {
                unit_id: "geom-r1-u0".into(),
                payload: obj(r#"{"seed":1000}"#),
            }],
        },
    ];
    let text: String = records.iter().map(Record::to_line).collect();
    assert_eq!(text, want);

    let parsed = journal::parse_journal(want.as_bytes()).expect("journal reads");
    assert_eq!(parsed, records);
    let st = journal::resume_state(&parsed);
    let exp = doc
        .get("resume_state_after_round1_submit")
        .expect("expected");
    assert_eq!(st.terminal, None);
    assert_eq!(
        st.cursor.as_deref(),
        exp.get("cursor").and_then(Value::as_str)
    );
    assert_eq!(st.aggregate.as_ref(), exp.get("aggregate"));
    assert_eq!(st.current_round, 1);
    let pinned = st.pinned_units.as_ref().expect("pinned");
    assert_eq!(pinned.len(), 1);
    assert_eq!(pinned[0].unit_id, "geom-r1-u0");
    assert_eq!(pinned[0].payload, obj(r#"{"seed":1000}"#));
    let folded: Vec<&str> = st.folded_units.iter().map(String::as_str).collect();
    assert_eq!(folded, ["geom-r0-u0", "geom-r0-u1"]);
    assert!(st.resumed);

    let mut after = want.to_owned();
    after.push_str(&Record::Finalized.to_line());
    assert!(after.ends_with("{\"kind\":\"finalized\"}\n"));
    let st = journal::resume_state(&journal::parse_journal(after.as_bytes()).expect("reads"));
    assert_eq!(st.terminal, Some(Terminal::Finalized));
    assert_eq!(st.terminal.map(|t| t.as_str()), Some("finalized"));
    assert_eq!(st.current_round, 1);

    let empty = journal::resume_state(&[]);
    assert!(!empty.resumed && empty.current_round == 0 && empty.pinned_units.is_none());
}

#[test]
fn journal_reading_errors_and_blank_lines() {
    let text = "\n  \n{\"kind\":\"aborted\"}\r\n{\"kind\":\"other\",\"x\":1}\n\n";
    let recs = journal::parse_journal(text.as_bytes()).expect("reads");
    assert_eq!(recs.len(), 2);
    assert!(matches!(recs[1], Record::Other(_)));
    assert_eq!(
        journal::resume_state(&recs).terminal,
        Some(Terminal::Aborted)
    );
    let torn = "{\"kind\":\"finalized\"}\n{\"kind\":\"sub";
    assert!(matches!(
        journal::parse_journal(torn.as_bytes()),
        Err(journal::JournalError::Json { line: 2, .. })
    ));
    assert!(matches!(
        journal::parse_journal(b"[1]\n"),
        Err(journal::JournalError::Record { line: 1, .. })
    ));
    assert!(matches!(
        journal::parse_journal(b"{\"kind\":\"submit\",\"round\":\"1\",\"units\":[]}"),
        Err(journal::JournalError::Record { .. })
    ));
    assert!(matches!(
        journal::parse_journal(b"\xff"),
        Err(journal::JournalError::NotUtf8)
    ));
}

#[test]
fn sse_lines_parse_like_the_sdk() {
    let doc = vectors("driver_journal_aggregates_sse.json");
    let lines = doc
        .get("sse_input_lines")
        .and_then(Value::as_array)
        .expect("lines");
    let want = doc
        .get("sse_events")
        .and_then(Value::as_array)
        .expect("events");
    let mut p = SseParser::new();
    let events: Vec<_> = lines
        .iter()
        .filter_map(|l| p.feed_line(l.as_str().expect("line")))
        .collect();
    assert_eq!(events.len(), want.len());
    for (e, w) in events.iter().zip(want) {
        assert_eq!(e.event_type, s(w, "type"));
        assert_eq!(e.data, s(w, "data"));
        assert_eq!(e.id.as_deref(), w.get("id").and_then(Value::as_str));
        assert_eq!(Some(&Value::Bool(e.wakes_driver())), w.get("wakes_driver"));
    }

    // The same stream as raw bytes, split at awkward places.
    let mut raw = String::new();
    for l in lines {
        raw.push_str(l.as_str().expect("line"));
        raw.push_str("\r\n");
    }
    let mut splitter = LineSplitter::new();
    let mut p = SseParser::new();
    let mut again = Vec::new();
    for chunk in raw.as_bytes().chunks(3) {
        for line in splitter.push(chunk) {
            again.extend(p.feed_line(&line));
        }
    }
    assert_eq!(splitter.finish(), None);
    assert_eq!(again, events);
}

#[test]
fn harness_files_are_byte_exact() {
    let doc = vectors("driver_journal_aggregates_sse.json");

    let text = s(&doc, "workunit_model_dump_json_indent2");
    let wu = WorkUnit::parse(text.as_bytes()).expect("work unit");
    assert_eq!(wu.to_pydantic_json(true), text);
    assert_eq!(wu.created_at.to_string(), "2025-01-02T03:04:05Z");

    let text = s(&doc, "executor_output_file_text_ExecutorHarness");
    let eo = ExecutorOutput::parse(text.as_bytes()).expect("executor output");
    assert_eq!(eo.to_pydantic_json(true), text);
    assert_eq!(eo.exit_code, 0);

    let text = s(&doc, "reducer_decision_agree_file_text");
    let d = ReducerDecision::parse(text.as_bytes()).expect("agree");
    assert!(matches!(d, ReducerDecision::Agree { .. }));
    assert_eq!(d.to_pydantic_json(true), text);
    assert_eq!(d.to_schema_json(true), text);

    let text = s(&doc, "reducer_decision_disagree_file_text");
    let d = ReducerDecision::parse(text.as_bytes()).expect("disagree");
    assert_eq!(d, ReducerDecision::Disagree);
    assert_eq!(d.to_pydantic_json(true), text);
    assert_eq!(
        d.to_schema_json(true),
        "{\n  \"schema_version\": \"0.1\",\n  \"verdict\": \"disagree\"\n}"
    );
    assert_eq!(
        ReducerDecision::parse(d.to_schema_json(false).as_bytes()).expect("reads back"),
        d
    );

    let env = doc.get("submit_units_envelope_example").expect("envelope");
    let payload = env
        .get("payload")
        .and_then(Value::as_object)
        .expect("payload");
    let unit = SubmitUnit {
        unit_id: s(env, "unit_id").into(),
        tenant_id: s(env, "tenant_id").into(),
        experiment_id: s(env, "experiment_id").into(),
        manifest_sha256: s(env, "manifest_sha256").into(),
        payload: payload.clone(),
    };
    assert_eq!(
        json::pydantic_compact(&unit.to_value()),
        json::pydantic_compact(env)
    );
}

#[test]
fn harness_models_report_every_violation() {
    let many = br#"{"schema_version":"0.2","unit_id":"","completed_at":"x","exit_code":"a","payload":1,"extra":2}"#;
    let Err(DocumentError::Invalid(v)) = ExecutorOutput::parse(many) else {
        panic!("invalid")
    };
    assert_eq!(
        paths(&v),
        [
            "schema_version",
            "unit_id",
            "completed_at",
            "exit_code",
            "payload",
            "extra"
        ]
    );
    assert!(matches!(
        ExecutorOutput::parse(b"[1]"),
        Err(DocumentError::Invalid(_))
    ));
    assert!(matches!(
        ExecutorOutput::parse(b"{"),
        Err(DocumentError::Json(_))
    ));

    // Pydantic lax ints.
    for (ec, want) in [
        ("\"3\"", Some(3)),
        (" 3.0", Some(3)),
        ("true", Some(1)),
        ("\" 3 \"", Some(3)),
        ("256", None),
        ("-256", None),
        ("3.5", None),
        ("1e400", None),
        ("100000000000000000000000000000", None),
    ] {
        let text = format!(
            r#"{{"schema_version":"0.1","unit_id":"u-1","completed_at":"2025-01-02T03:04:05Z","exit_code":{ec},"payload":{{}}}}"#
        );
        let got = ExecutorOutput::parse(text.as_bytes())
            .ok()
            .map(|e| e.exit_code);
        assert_eq!(got, want, "exit_code {ec}");
    }
    // Datetime forms; a trailing newline in a pattern field is refused.
    let wu = |created: &str, unit: &str| {
        format!(
            r#"{{"schema_version":"0.1","unit_id":{unit},"tenant_id":"acme-lab","experiment_id":"exp-x",
                "manifest_sha256":"{}","created_at":{created},"payload":{{}}}}"#,
            "a".repeat(64)
        )
    };
    let u = WorkUnit::parse(wu("1735787045.5", "\"u\"").as_bytes()).expect("timestamp");
    assert_eq!(u.created_at.to_string(), "2025-01-02T03:04:05.500000Z");
    let u = WorkUnit::parse(wu("\"2025-01-02T03:04:05.1234567-08:00\"", "\"u\"").as_bytes())
        .expect("offset");
    assert_eq!(
        u.to_pydantic_json(false)
            .split("\"created_at\":")
            .nth(1)
            .map(|r| &r[..35]),
        Some("\"2025-01-02T03:04:05.123456-08:00\",")
    );
    let Err(DocumentError::Invalid(v)) = WorkUnit::parse(wu("null", "\"u\\n\"").as_bytes()) else {
        panic!("invalid")
    };
    assert_eq!(paths(&v), ["unit_id", "created_at"]);

    let result =
        br#"{"schema_version":"0.1","unit_id":"u","worker_pubkey":"AA","completed_at":"2025-01-02",
        "exit_code":0,"payload":{},"worker_signature":"a b"}"#;
    let Err(DocumentError::Invalid(v)) = WorkResult::parse(result) else {
        panic!("invalid")
    };
    assert_eq!(paths(&v), ["worker_pubkey", "worker_signature"]);

    // Reducer rules, reported at the root after field checks.
    for (text, ok) in [
        (r#"{"schema_version":"0.1","verdict":"agree"}"#, false),
        (
            r#"{"schema_version":"0.1","verdict":"agree","merged":null}"#,
            false,
        ),
        (
            r#"{"schema_version":"0.1","verdict":"agree","merged":{}}"#,
            true,
        ),
        (
            r#"{"schema_version":"0.1","verdict":"disagree","merged":{}}"#,
            false,
        ),
        (r#"{"schema_version":"0.1","verdict":"disagree"}"#, true),
        (
            r#"{"schema_version":"0.1","verdict":"maybe","merged":{}}"#,
            false,
        ),
        (
            r#"{"schema_version":"0.1","verdict":"agree","merged":[1]}"#,
            false,
        ),
    ] {
        assert_eq!(
            ReducerDecision::parse(text.as_bytes()).is_ok(),
            ok,
            "{text}"
        );
    }
    let Err(DocumentError::Invalid(v)) =
        ReducerDecision::parse(br#"{"schema_version":"0.1","verdict":"agree"}"#)
    else {
        panic!("invalid")
    };
    assert_eq!(paths(&v), ["(root)"]);
    assert!(matches!(&v.0[0].kind, ViolationKind::Rule(m) if m.contains("merged is required")));
}

#[test]
fn datetime_writes_like_pydantic() {
    let d = DateTime::new(2025, 1, 2, 3, 4, 5, 0, Some(-5 * 3600 - 30 * 60)).expect("valid");
    assert_eq!(d.to_string(), "2025-01-02T03:04:05-05:30");
    let d = DateTime::new(2025, 1, 2, 3, 4, 5, 7, None).expect("valid");
    assert_eq!(d.to_string(), "2025-01-02T03:04:05.000007");
    assert!(DateTime::new(2023, 2, 29, 0, 0, 0, 0, None).is_err());
    let now = DateTime::now_utc();
    assert_eq!(now.offset_seconds(), Some(0));
}

// ---------------------------------------------------------------------------
// Interop with the official SDK 0.5.5 (pydantic 2.14.4, cbor2 6.3.0).
// ---------------------------------------------------------------------------

mod interop {
    use super::*;
    use std::io::Write as _;
    use std::path::{Path, PathBuf};

    /// `$AUSPEX_PYTHON_055`, else `<workspace>/target/py-0.5.5/bin/python`.
    /// Missing → the test fails unless `AUSPEX_SKIP_INTEROP=1`.
    #[allow(clippy::print_stderr)]
    fn python_055() -> Option<PathBuf> {
        let path = std::env::var_os("AUSPEX_PYTHON_055")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/py-0.5.5/bin/python")
            });
        if path.exists() {
            return Some(path);
        }
        if std::env::var("AUSPEX_SKIP_INTEROP").as_deref() == Ok("1") {
            eprintln!(
                "SKIPPED interop with auspexai-tenant 0.5.5: {} missing",
                path.display()
            );
            return None;
        }
        panic!(
            "the auspexai-tenant 0.5.5 interpreter {} does not exist; create it with \
             `bash scripts/python-peers.sh` (or set AUSPEX_PYTHON_055), or set \
             AUSPEX_SKIP_INTEROP=1",
            path.display()
        );
    }

    /// Runs `script` with `input` on stdin; returns stdout lines.
    fn run(python: &Path, script: &str, input: &str) -> Vec<String> {
        let mut child = std::process::Command::new(python)
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the 0.5.5 interpreter");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// A tiny deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    fn datetime_inputs() -> Vec<String> {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut out: Vec<String> = Vec::new();
        for _ in 0..3000 {
            let text = if rng.below(5) == 0 {
                let sign = rng.pick(&["", "", "-", "+"]);
                let int = rng.pick(&[
                    "",
                    "0",
                    "1",
                    "1735787045",
                    "20000000001",
                    "253402300799999",
                    "99999999999999999999",
                    "2025",
                    "0001",
                ]);
                let frac = rng.pick(&["", "", ".", ".5", ".1234567", ".9999999", ".0004"]);
                let exp = rng.pick(&["", "", "e3", "E0", "e-1"]);
                format!("{sign}{int}{frac}{exp}")
            } else {
                let year = rng.pick(&[
                    "2025", "2024", "1900", "2000", "0000", "0001", "9999", "202", "20250",
                ]);
                let month = rng.pick(&["01", "02", "12", "13", "00", "1", "04"]);
                let day = rng.pick(&["01", "28", "29", "30", "31", "32", "00", "1"]);
                let sep = rng.pick(&["T", "T", "t", " ", "_", "x", ""]);
                let hm = rng.pick(&["03:04", "23:59", "24:00", "3:04", "03:60", "0304", ""]);
                let sec = rng.pick(&["", ":05", ":59", ":60", ":5"]);
                let frac = rng.pick(&[
                    "", "", ".1", ".123456", ".1234567", ".", ",5", ".000000", ".9999999",
                ]);
                let tz = rng.pick(&[
                    "", "Z", "z", "+01:00", "+0100", "+01", "-00:00", "+24:00", "+23:59", "-08:30",
                    "ZZ", " Z", "+1:00",
                ]);
                let tail = rng.pick(&["", "", "", " ", "\n", "x"]);
                format!("{year}-{month}-{day}{sep}{hm}{sec}{frac}{tz}{tail}")
            };
            out.push(text);
        }
        out.sort();
        out.dedup();
        out
    }

    const DATETIME_SCRIPT: &str = r#"
import json, sys
from datetime import datetime
from pydantic import TypeAdapter
ta = TypeAdapter(datetime)
for raw in sys.stdin.read().splitlines():
    try:
        print(json.dumps(json.loads(ta.dump_json(ta.validate_json(raw)))))
    except Exception:
        print("null")
"#;

    #[test]
    fn datetimes_parse_and_print_like_pydantic() {
        let Some(python) = python_055() else { return };
        let mut raws: Vec<String> = datetime_inputs()
            .iter()
            .map(|s| json::canonical(&Value::from(s.as_str())))
            .collect();
        // JSON numbers are timestamps too.
        for n in [
            "0",
            "-1",
            "1735787045",
            "1735787045.5",
            "-1.5",
            "1e11",
            "2.5e10",
            "20000000001",
            "-20000000001.5",
            "253402300799999",
            "253402300800000",
            "-62135596800000",
            "-62135596800001",
            "1.9999995",
            "0.0000005",
            "-0.0000004",
            "1735787045.9999999",
        ] {
            raws.push(n.to_owned());
        }
        let answers = run(&python, DATETIME_SCRIPT, &raws.join("\n"));
        assert_eq!(answers.len(), raws.len());
        let mut mismatches = Vec::new();
        let mut accepted = 0;
        for (raw, answer) in raws.iter().zip(&answers) {
            let v = json::parse_str(raw).expect("own JSON");
            let ours = match &v {
                Value::String(s) => DateTime::parse_pydantic(s).ok(),
                Value::Int(i) => i
                    .as_i64()
                    .and_then(|n| DateTime::from_timestamp_i64(n).ok()),
                Value::Float(f) => DateTime::from_timestamp_f64(*f).ok(),
                _ => None,
            }
            .map(|d| d.to_string());
            let theirs = json::parse_str(answer)
                .expect("python answers JSON")
                .as_str()
                .map(str::to_owned);
            accepted += usize::from(theirs.is_some());
            if ours != theirs {
                mismatches.push(format!("{raw}: ours {ours:?}, pydantic {theirs:?}"));
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
        // Both outcomes are well represented.
        assert!(
            accepted > 200 && raws.len() - accepted > 200,
            "{accepted}/{}",
            raws.len()
        );
    }

    const RECEIPT_SCRIPT: &str = r#"
import json, sys
from auspexai_tenant.receipts import Receipt, encode_cbor, decode_cbor
for raw in sys.stdin.read().splitlines():
    r = Receipt.model_validate_json(raw)
    blob = encode_cbor(r)
    assert decode_cbor(blob) == r
    print(json.dumps({"cbor": blob.hex(), "show": r.model_dump_json(indent=2)}))
"#;

    #[test]
    fn receipts_encode_like_cbor2() {
        let Some(python) = python_055() else { return };
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut receipts = Vec::new();
        for i in 0..200 {
            let offset = match rng.below(4) {
                0 => Some(0),
                1 => Some(((rng.below(48) as i32) - 24) * 1800 + 60 * rng.below(2) as i32),
                _ => Some(0),
            };
            let offset = offset.map(|o| o.clamp(-86_340, 86_340));
            let micro = if rng.below(2) == 0 {
                0
            } else {
                rng.below(1_000_000) as u32
            };
            let start = DateTime::new(
                1 + rng.below(9999) as u16,
                1 + rng.below(12) as u8,
                1 + rng.below(28) as u8,
                rng.below(24) as u8,
                rng.below(60) as u8,
                rng.below(60) as u8,
                micro,
                offset,
            )
            .expect("valid");
            let words = [
                "acme",
                "é",
                "😀",
                "a\"b",
                "\u{7f}",
                "x\ny",
                "",
                "long-name-123",
            ];
            let word = |rng: &mut Rng| words[rng.below(words.len())].to_owned();
            let big = |rng: &mut Rng| match rng.below(4) {
                0 => 1 + rng.next() % 23,
                1 => 1 + rng.next() % 65_535,
                2 => 1 + rng.next() % (1 << 40),
                _ => u64::MAX - rng.next() % 2,
            };
            let mut pk = [0u8; 32];
            for b in pk.iter_mut() {
                *b = rng.next() as u8;
            }
            let anchors = (0..1 + rng.below(3))
                .map(|_| auspex_wire::receipt::ResultHashAnchor {
                    rekor_log_index: big(&mut rng) - 1,
                    rekor_entry_uuid: word(&mut rng),
                    result_sha256: format!("{:016x}", rng.next()).repeat(4),
                })
                .collect();
            receipts.push(Receipt {
                tenant_id: word(&mut rng),
                experiment_id: format!("exp-{i}"),
                worker_pubkey: pk,
                work_unit_ids: (0..1 + rng.below(4)).map(|_| word(&mut rng)).collect(),
                time_window: auspex_wire::receipt::TimeWindow { start, end: start },
                quorum_agreement: auspex_wire::receipt::QuorumAgreement {
                    replication_factor: big(&mut rng),
                    agreeing_workers: big(&mut rng),
                    method: word(&mut rng),
                },
                result_hash_anchors: anchors,
            });
        }
        let input: Vec<String> = receipts.iter().map(|r| r.to_pydantic_json(false)).collect();
        let answers = run(&python, RECEIPT_SCRIPT, &input.join("\n"));
        assert_eq!(answers.len(), receipts.len());
        for (r, answer) in receipts.iter().zip(&answers) {
            let a = json::parse_str(answer).expect("json");
            let blob = receipt::encode_cbor(r).expect("aware times encode");
            assert_eq!(hex(&blob), s(&a, "cbor"), "{r:?}");
            assert_eq!(r.to_pydantic_json_indent(), s(&a, "show"));
            assert_eq!(&receipt::decode_cbor(&blob).expect("decodes"), r);
        }
    }

    const MODELS_SCRIPT: &str = r#"
import json, sys
from pydantic import ValidationError
from auspexai_tenant.workunits import WorkUnit, ExecutorOutput, Result
from auspexai_tenant.reducer import ReducerDecision
models = {"workunit": WorkUnit, "executor_output": ExecutorOutput, "result": Result, "reducer": ReducerDecision}
for line in sys.stdin.read().splitlines():
    kind, raw = line.split(" ", 1)
    try:
        m = models[kind].model_validate_json(raw)
        print(json.dumps({"ok": m.model_dump_json(indent=2)}))
    except ValidationError as e:
        locs = [".".join(str(p) for p in err["loc"]) or "(root)" for err in e.errors()]
        print(json.dumps({"err": locs}))
"#;

    fn model_docs() -> Vec<(&'static str, String)> {
        let mut rng = Rng(0x0bad_cafe_dead_beef);
        let pools: &[(&str, &[&str])] = &[
            (
                "schema_version",
                &[r#""0.1""#, r#""0.1""#, r#""0.2""#, "0.1", "null"],
            ),
            (
                "unit_id",
                &[r#""u-1""#, r#""U_2""#, r#""""#, r#""u 1""#, r#""u\n""#, "5"],
            ),
            (
                "tenant_id",
                &[r#""acme-lab""#, r#""ab""#, r#""Acme""#, "null"],
            ),
            (
                "experiment_id",
                &[r#""drift-probe-007""#, r#""x""#, r#""exp-1""#],
            ),
            (
                "manifest_sha256",
                &[
                    r#""aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa""#,
                    r#""AA""#,
                ],
            ),
            (
                "created_at",
                &[
                    r#""2025-01-02T03:04:05Z""#,
                    r#""2025-01-02""#,
                    "1735787045.5",
                    r#""x""#,
                    "true",
                ],
            ),
            (
                "completed_at",
                &[
                    r#""2025-01-02T03:04:05.123456789+05:30""#,
                    r#""2025-01-02 03:04""#,
                    "0",
                    r#""2025-02-30""#,
                ],
            ),
            (
                "exit_code",
                &[
                    "0", "-255", "255", "256", r#""3""#, r#"" 7 ""#, "3.0", "3.5", "true", "null",
                    r#""1_0""#,
                ],
            ),
            (
                "payload",
                &[
                    r#"{"a":1,"é":"x","n":null}"#,
                    "{}",
                    "[]",
                    "null",
                    r#"{"f":0.00001,"g":-0.0,"big":123456789012345678901234567890}"#,
                ],
            ),
            (
                "worker_pubkey",
                &[
                    r#""770b5d5e0d025b1b6644a2b5b113dbb8bf07e04c61d2c3fd4c5e2701a55e5be8""#,
                    r#""770B""#,
                ],
            ),
            (
                "worker_signature",
                &[r#""q92QDwoQ==""#, r#""a b""#, r#""""#],
            ),
            ("verdict", &[r#""agree""#, r#""disagree""#, r#""maybe""#]),
            ("merged", &[r#"{"v":2}"#, "null", "{}", "[1]"]),
        ];
        let models: &[(&str, &[&str])] = &[
            (
                "workunit",
                &[
                    "schema_version",
                    "unit_id",
                    "tenant_id",
                    "experiment_id",
                    "manifest_sha256",
                    "created_at",
                    "payload",
                ],
            ),
            (
                "executor_output",
                &[
                    "schema_version",
                    "unit_id",
                    "completed_at",
                    "exit_code",
                    "payload",
                ],
            ),
            (
                "result",
                &[
                    "schema_version",
                    "unit_id",
                    "worker_pubkey",
                    "completed_at",
                    "exit_code",
                    "payload",
                    "worker_signature",
                ],
            ),
            ("reducer", &["schema_version", "verdict", "merged"]),
        ];
        let mut out = Vec::new();
        for _ in 0..1500 {
            let (kind, fields) = models[rng.below(models.len())];
            let mut members = Vec::new();
            for f in fields {
                if rng.below(12) == 0 {
                    continue; // missing
                }
                let pool = pools
                    .iter()
                    .find(|(n, _)| n == f)
                    .map(|(_, p)| *p)
                    .unwrap_or(&["1"]);
                // Mostly the first (valid) value.
                let v = if rng.below(3) == 0 {
                    pool[rng.below(pool.len())]
                } else {
                    pool[0]
                };
                members.push(format!("\"{f}\":{v}"));
            }
            if rng.below(15) == 0 {
                members.push("\"extra\":1".to_owned());
            }
            out.push((kind, format!("{{{}}}", members.join(","))));
        }
        out
    }

    #[test]
    fn harness_models_validate_like_pydantic() {
        let Some(python) = python_055() else { return };
        let docs = model_docs();
        let input: Vec<String> = docs.iter().map(|(k, d)| format!("{k} {d}")).collect();
        let answers = run(&python, MODELS_SCRIPT, &input.join("\n"));
        assert_eq!(answers.len(), docs.len());
        let mut mismatches = Vec::new();
        let mut oks = 0;
        for ((kind, doc), answer) in docs.iter().zip(&answers) {
            let ours: Result<String, Vec<String>> = match *kind {
                "workunit" => WorkUnit::parse(doc.as_bytes()).map(|m| m.to_pydantic_json(true)),
                "executor_output" => {
                    ExecutorOutput::parse(doc.as_bytes()).map(|m| m.to_pydantic_json(true))
                }
                "result" => WorkResult::parse(doc.as_bytes()).map(|m| m.to_pydantic_json(true)),
                _ => ReducerDecision::parse(doc.as_bytes()).map(|m| m.to_pydantic_json(true)),
            }
            .map_err(|e| match e {
                DocumentError::Invalid(v) => paths(&v),
                other => vec![other.to_string()],
            });
            let a = json::parse_str(answer).expect("json");
            let theirs: Result<String, Vec<String>> = match a.get("ok") {
                Some(Value::String(t)) => Ok(t.clone()),
                _ => Err(a
                    .get("err")
                    .and_then(Value::as_array)
                    .expect("err list")
                    .iter()
                    .map(|p| p.as_str().expect("loc").to_owned())
                    .collect()),
            };
            oks += usize::from(theirs.is_ok());
            if ours != theirs {
                mismatches.push(format!(
                    "{kind} {doc}\n  ours   {ours:?}\n  theirs {theirs:?}"
                ));
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
        assert!(oks > 200 && docs.len() - oks > 200, "{oks}/{}", docs.len());
    }
}
