//! Result-set attestation verification against the coordinator-made vectors
//! (attestation.json: v1 and v0 responses verified by 0.5.5, and the
//! checkpoint attestation whose signed `partial: true` was served as
//! `false`, which 0.5.5 accepts; evidence_bundle_v1.json: the bundle's
//! attestation block), and mutations that each assert the check that
//! rejects them. Mutated statements are re-signed with the coordinator test
//! key (keys.json, RFC 8032 test 2), so the check under test is reached.

use std::collections::BTreeMap;

use auspex_crypto::attestation::{
    self, AttestationInput, AttestationPolicy, AttestationVerification, ResultUnit,
    verify_attestation,
};
use auspex_crypto::cose::CoseSign1;
use auspex_crypto::merkle::{Algorithm, UnitLeaf};
use auspex_crypto::report::{CheckId, Outcome, Verdict};
use auspex_wire::attestation::{AttestationResponse, Statement, Subject};
use auspex_wire::bundle::EvidenceBundle;
use auspex_wire::json::{self, Value};
use auspex_wire::receipt::cbor::{self, Cbor};
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

fn key32(hex: &str) -> [u8; 32] {
    unhex(hex).try_into().expect("32 bytes")
}

const COORDINATOR: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
const TENANT: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const COORDINATOR_SEED: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
const TENANT_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

fn coordinator_key() -> SigningKey {
    SigningKey::from_bytes(&key32(COORDINATOR_SEED))
}

fn pinned() -> AttestationPolicy {
    AttestationPolicy {
        authorized_signers: Some(vec![key32(COORDINATOR)]),
        expect_partial: Some(false),
    }
}

fn case(name: &str) -> Value {
    vectors("attestation.json")
        .get(name)
        .cloned()
        .expect("case present")
}

fn response(name: &str) -> AttestationResponse {
    AttestationResponse::from_value(case(name).get("attestation_response_json").expect("json"))
        .expect("response reads")
}

fn failures(v: &AttestationVerification) -> Vec<CheckId> {
    match v.verdict() {
        Verdict::Failed(ids) => ids,
        other => panic!("expected a failure, got {other:?}: {:#?}", v.report),
    }
}

fn assert_only_failure(v: &AttestationVerification, id: CheckId) {
    assert_eq!(failures(v), vec![id], "{:#?}", v.report);
    assert!(v.verified().is_none());
}

// ---------------------------------------------------------------------------
// Vectors
// ---------------------------------------------------------------------------

#[test]
fn v1_and_v0_responses_verify_pinned() {
    for (name, alg) in [("v1", Algorithm::V1), ("v0", Algorithm::V0)] {
        let c = case(name);
        let resp = response(name);
        // The vector's layers agree with each other.
        let cose_bytes = STANDARD.decode(&resp.cose_b64).expect("b64");
        assert_eq!(cose_bytes, unhex(s(&c, "cose_sign1_hex")));
        let cose = CoseSign1::decode(&cose_bytes).expect("cose");
        assert_eq!(cose.payload(), unhex(s(&c, "statement_cbor_hex")));
        let st = Statement::decode(cose.payload()).expect("statement");
        assert_eq!(st.predicate, unhex(s(&c, "predicate_cbor_hex")));

        let v = verify_attestation(AttestationInput::Response(&resp), &pinned());
        assert_eq!(v.verdict(), Verdict::Verified, "{name}: {:#?}", v.report);
        // Every check ran and passed.
        assert!(
            v.report
                .checks()
                .iter()
                .all(|c| c.outcome == Outcome::Passed),
            "{:#?}",
            v.report
        );
        let a = v.verified().expect("verified");
        assert_eq!(a.signer(), &key32(COORDINATOR));
        assert_eq!(a.attestation_id(), "att-TESTVECTOR1");
        assert_eq!(a.algorithm(), alg);
        assert_eq!(a.merkle_root(), resp.merkle_root);
        assert!(!a.partial());
        assert_eq!(a.predicate().units.len(), 3);
        assert_eq!(a.cose_bytes(), cose_bytes);
        assert_eq!(a.cose_sha256(), auspex_wire::sha256_hex(&cose_bytes));

        // Units rebuilt from the served rows give the same root.
        let units: Vec<UnitLeaf<'_>> = resp
            .units
            .iter()
            .map(|u| UnitLeaf {
                unit_id: &u.unit_id,
                consensus_result_hash: &u.consensus_result_hash,
                receipt_id: &u.receipt_id,
                unit_payload_sha256: u.unit_payload_sha256.as_deref(),
            })
            .collect();
        assert!(
            a.verify_against_results(&units)
                .passed(attestation::RESULTS_MATCH)
        );
        let dropped = a.verify_against_results(&units[..2]);
        let Some(Outcome::Failed(why)) = dropped.outcome(attestation::RESULTS_MATCH) else {
            panic!("{dropped:?}")
        };
        assert!(why.contains("missing u-0003"), "{why}");
    }
}

#[test]
fn unpinned_verification_is_visible_as_not_checked() {
    let resp = response("v1");
    let v = verify_attestation(
        AttestationInput::Response(&resp),
        &AttestationPolicy::default(),
    );
    assert_eq!(v.verdict(), Verdict::Verified);
    assert!(matches!(
        v.report.outcome(attestation::SIGNER_PINNED),
        Some(Outcome::NotChecked(_))
    ));
    assert!(matches!(
        v.report.outcome(attestation::PARTIAL_EXPECTED),
        Some(Outcome::NotChecked(_))
    ));
    assert!(!v.required().contains(&attestation::SIGNER_PINNED));
}

#[test]
fn bare_cose_verifies_without_served_fields() {
    let bytes = unhex(s(&case("v0"), "cose_sign1_hex"));
    let v = verify_attestation(AttestationInput::Cose(&bytes), &pinned());
    assert_eq!(v.verdict(), Verdict::Verified, "{:#?}", v.report);
    assert!(matches!(
        v.report.outcome(attestation::SERVED_FIELDS),
        Some(Outcome::NotChecked(_))
    ));
    // Tag 18 is accepted too.
    let mut tagged = vec![0xd2];
    tagged.extend_from_slice(&bytes);
    let v = verify_attestation(AttestationInput::Cose(&tagged), &pinned());
    assert_eq!(v.verdict(), Verdict::Verified, "{:#?}", v.report);
}

/// §11.2 #9 / AUD-35: the signed predicate says `partial: true`, the
/// response says `false`; 0.5.5 accepts it, we name the check.
#[test]
fn partial_flag_not_bound_in_0_5_5_fails_partial_bound() {
    let c = case("partial_flag_not_bound_in_0_5_5");
    assert_eq!(c.get("sdk_0_5_5_ok"), Some(&Value::Bool(true)));
    let cose = unhex(s(&c, "cose_sign1_hex"));
    let mut resp = response("v1");
    resp.cose_b64 = STANDARD.encode(&cose);
    resp.attestation_id = "att-PARTIAL".into();
    resp.partial = false;
    let policy = AttestationPolicy {
        expect_partial: None,
        ..pinned()
    };
    let v = verify_attestation(AttestationInput::Response(&resp), &policy);
    assert_only_failure(&v, attestation::PARTIAL_BOUND);
    let Some(Outcome::Failed(why)) = v.report.outcome(attestation::PARTIAL_BOUND) else {
        unreachable!()
    };
    assert!(why.contains("partial=true"), "{why}");

    // Served truthfully it verifies as a checkpoint, unless a final
    // attestation is required.
    resp.partial = true;
    let v = verify_attestation(AttestationInput::Response(&resp), &policy);
    assert_eq!(v.verdict(), Verdict::Verified, "{:#?}", v.report);
    assert!(v.verified().is_some_and(|a| a.partial()));
    let v = verify_attestation(AttestationInput::Response(&resp), &pinned());
    assert_only_failure(&v, attestation::PARTIAL_EXPECTED);

    // Served under the final attestation's id, the subject name also fails.
    resp.attestation_id = "att-TESTVECTOR1".into();
    resp.partial = false;
    let v = verify_attestation(AttestationInput::Response(&resp), &policy);
    assert_eq!(
        failures(&v),
        vec![attestation::SUBJECT_NAME, attestation::PARTIAL_BOUND]
    );
}

#[test]
fn evidence_bundle_attestation_block_verifies_and_matches_its_rows() {
    let doc = vectors("evidence_bundle_v1.json");
    let bundle = EvidenceBundle::from_value(doc.get("bundle").expect("bundle")).expect("reads");
    let block = bundle.attestation.as_ref().expect("attestation");
    let v = verify_attestation(AttestationInput::Bundle(block), &pinned());
    assert_eq!(v.verdict(), Verdict::Verified, "{:#?}", v.report);
    assert!(matches!(
        v.report.outcome(attestation::PARTIAL_BOUND),
        Some(Outcome::NotChecked(_))
    ));
    let a = v.verified().expect("verified");
    assert_eq!(a.attestation_id(), "att-BUNDLE1");
    assert_eq!(a.algorithm(), Algorithm::V1);

    // verify_against_results over the delivered rows; v1 leaves take the
    // input hashes from the bundle's work units.
    let payload_hashes: BTreeMap<String, String> = bundle
        .work_units
        .iter()
        .map(|w| {
            (
                w.unit_id.clone().expect("unit_id"),
                json::canonical_sha256(w.payload.as_ref().expect("payload")),
            )
        })
        .collect();
    let rows = doc
        .get("bundle")
        .and_then(|b| b.get("consensus_results"))
        .and_then(Value::as_array)
        .expect("rows");
    let units: Vec<ResultUnit> = rows
        .iter()
        .map(|r| ResultUnit::from_row(r, Some(&payload_hashes)).expect("unit"))
        .collect();
    let leaves: Vec<UnitLeaf<'_>> = units.iter().map(ResultUnit::as_leaf).collect();
    let report = a.verify_against_results(&leaves);
    assert!(report.passed(attestation::RESULTS_MATCH), "{report:?}");
    // Without the input hashes the v1 root differs, and the reason says how.
    let bare: Vec<ResultUnit> = rows
        .iter()
        .map(|r| ResultUnit::from_row(r, None).expect("unit"))
        .collect();
    let leaves: Vec<UnitLeaf<'_>> = bare.iter().map(ResultUnit::as_leaf).collect();
    let report = a.verify_against_results(&leaves);
    let Some(Outcome::Failed(why)) = report.outcome(attestation::RESULTS_MATCH) else {
        panic!("{report:?}")
    };
    assert!(why.contains("changed u-0001, u-0002, u-0003"), "{why}");

    // The bundle block's served root is unsigned: editing it is caught.
    let mut edited = block.clone();
    edited.merkle_root = Some("00".repeat(32));
    let v = verify_attestation(AttestationInput::Bundle(&edited), &pinned());
    assert_only_failure(&v, attestation::SERVED_FIELDS);
    edited.merkle_root = None;
    let v = verify_attestation(AttestationInput::Bundle(&edited), &pinned());
    assert_only_failure(&v, attestation::SERVED_FIELDS);
    let mut edited = block.clone();
    edited.cose_b64 = None;
    let v = verify_attestation(AttestationInput::Bundle(&edited), &pinned());
    assert_eq!(failures(&v), vec![attestation::COSE_DECODE]);
}

// ---------------------------------------------------------------------------
// Mutations of the v1 vector
// ---------------------------------------------------------------------------

/// The v1 vector's statement and predicate, to edit and re-sign.
struct Parts {
    statement: Statement,
    predicate: Vec<(Cbor, Cbor)>,
}

fn parts() -> Parts {
    let cose = CoseSign1::decode(&unhex(s(&case("v1"), "cose_sign1_hex"))).expect("cose");
    let statement = Statement::decode(cose.payload()).expect("statement");
    let predicate = match cbor::decode(&statement.predicate).expect("predicate") {
        Cbor::Map(m) => m,
        other => panic!("{other:?}"),
    };
    Parts {
        statement,
        predicate,
    }
}

impl Parts {
    fn set(&mut self, key: &str, value: Cbor) {
        match self
            .predicate
            .iter_mut()
            .find(|(k, _)| k.as_text() == Some(key))
        {
            Some(entry) => entry.1 = value,
            None => self.predicate.push((Cbor::Text(key.into()), value)),
        }
    }

    fn units(&mut self) -> &mut Vec<Cbor> {
        match self
            .predicate
            .iter_mut()
            .find(|(k, _)| k.as_text() == Some("units"))
        {
            Some((_, Cbor::Array(units))) => units,
            _ => panic!("units"),
        }
    }

    /// Re-encodes the predicate and refreshes the subject digest.
    fn statement(&self) -> Statement {
        let predicate = cbor::encode_canonical(&Cbor::Map(self.predicate.clone()));
        let mut st = self.statement.clone();
        st.subjects[0].digest = vec![("sha256".into(), auspex_wire::sha256_hex(&predicate))];
        st.predicate = predicate;
        st
    }

    fn signed_by(&self, key: &SigningKey) -> Vec<u8> {
        CoseSign1::sign(self.statement().encode(), key).encode()
    }

    fn signed(&self) -> Vec<u8> {
        self.signed_by(&coordinator_key())
    }
}

fn verify_cose(bytes: &[u8]) -> AttestationVerification {
    verify_attestation(AttestationInput::Cose(bytes), &pinned())
}

fn verify_served(bytes: &[u8]) -> AttestationVerification {
    let mut resp = response("v1");
    resp.cose_b64 = STANDARD.encode(bytes);
    verify_attestation(AttestationInput::Response(&resp), &pinned())
}

#[test]
fn resigning_the_unchanged_vector_verifies() {
    // Sanity for the mutation harness: re-encoding changes nothing.
    let p = parts();
    assert_eq!(p.statement(), p.statement);
    assert_eq!(verify_served(&p.signed()).verdict(), Verdict::Verified);
}

#[test]
fn flipped_bits_fail_the_cose_signature() {
    let good = unhex(s(&case("v1"), "cose_sign1_hex"));
    let cose = CoseSign1::decode(&good).expect("cose");
    let len = good.len();
    // Last byte of the signature, a byte of the payload (inside the
    // predicate), and the last kid character (still lowercase hex).
    let payload_at = good
        .windows(cose.payload().len())
        .position(|w| w == cose.payload())
        .expect("payload inside");
    for at in [len - 1, payload_at + 600] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        let v = verify_served(&bad);
        assert_eq!(
            v.report.first_failure().map(|c| c.id),
            Some(attestation::COSE_SIGNATURE),
            "byte {at}: {:#?}",
            v.report
        );
        // Everything downstream of the signature is not checked.
        assert!(matches!(
            v.report.outcome(attestation::MERKLE_ROOT),
            Some(Outcome::NotChecked(why)) if why.contains("needs")
        ));
    }
    // The kid names another (valid) key: the signature no longer verifies.
    let kid_at = good
        .windows(64)
        .position(|w| w == COORDINATOR.as_bytes())
        .expect("kid inside");
    let mut bad = good.clone();
    bad[kid_at..kid_at + 64].copy_from_slice(TENANT.as_bytes());
    assert_eq!(failures(&verify_cose(&bad))[0], attestation::COSE_SIGNATURE);
    // Uppercase kid: refused by the header rules.
    let mut bad = good.clone();
    bad[kid_at] = b'D';
    assert_eq!(failures(&verify_cose(&bad))[0], attestation::COSE_HEADER);
}

fn cose_with_protected(protected: Vec<(Cbor, Cbor)>, key: &SigningKey) -> Vec<u8> {
    use ed25519_dalek::Signer as _;
    let payload = parts().statement().encode();
    let protected = cbor::encode_canonical(&Cbor::Map(protected));
    let to_sign = cbor::encode_canonical(&Cbor::Array(vec![
        Cbor::Text("Signature1".into()),
        Cbor::Bytes(protected.clone()),
        Cbor::Bytes(vec![]),
        Cbor::Bytes(payload.clone()),
    ]));
    let sig = key.sign(&to_sign).to_bytes().to_vec();
    cbor::encode_canonical(&Cbor::Array(vec![
        Cbor::Bytes(protected),
        Cbor::Map(vec![]),
        Cbor::Bytes(payload),
        Cbor::Bytes(sig),
    ]))
}

#[test]
fn header_rules_fail_cose_header() {
    let key = coordinator_key();
    let kid = Cbor::Bytes(COORDINATOR.as_bytes().to_vec());
    let cases = [
        // ES256 instead of EdDSA (validly signed with Ed25519 anyway).
        vec![
            (Cbor::Unsigned(1), Cbor::Negative(6)),
            (Cbor::Unsigned(4), kid.clone()),
        ],
        // No alg.
        vec![(Cbor::Unsigned(4), kid.clone())],
        // No kid.
        vec![(Cbor::Unsigned(1), Cbor::Negative(7))],
        // The raw 32-byte key as kid.
        vec![
            (Cbor::Unsigned(1), Cbor::Negative(7)),
            (Cbor::Unsigned(4), Cbor::Bytes(key32(COORDINATOR).to_vec())),
        ],
    ];
    for protected in cases {
        let v = verify_cose(&cose_with_protected(protected.clone(), &key));
        assert_eq!(
            failures(&v),
            vec![attestation::COSE_HEADER],
            "{protected:?}"
        );
        assert!(matches!(
            v.report.outcome(attestation::COSE_SIGNATURE),
            Some(Outcome::NotChecked(_))
        ));
    }
    // The same construction with the right header verifies.
    let ok = cose_with_protected(
        vec![
            (Cbor::Unsigned(1), Cbor::Negative(7)),
            (Cbor::Unsigned(4), kid),
        ],
        &key,
    );
    assert_eq!(verify_cose(&ok).verdict(), Verdict::Verified);
}

#[test]
fn malformed_input_fails_cose_decode() {
    let mut resp = response("v1");
    resp.cose_b64 = "not base64!".into();
    let v = verify_attestation(AttestationInput::Response(&resp), &pinned());
    assert_eq!(failures(&v), vec![attestation::COSE_DECODE]);
    // Every other check is present and not checked.
    assert!(v.report.checks().len() >= 16);
    for bytes in [&b""[..], b"\xa0", b"\x84\x40\xa0\x40", b"\xff\xff"] {
        let v = verify_cose(bytes);
        assert_eq!(failures(&v), vec![attestation::COSE_DECODE], "{bytes:?}");
    }
}

#[test]
fn wrong_signer_fails_signer_pinned() {
    let p = parts();
    let tenant = SigningKey::from_bytes(&key32(TENANT_SEED));
    let by_tenant = p.signed_by(&tenant);
    let v = verify_cose(&by_tenant);
    assert_only_failure(&v, attestation::SIGNER_PINNED);
    // Unpinned, the tenant-signed attestation is self-consistent...
    let v = verify_attestation(
        AttestationInput::Cose(&by_tenant),
        &AttestationPolicy::default(),
    );
    assert_eq!(v.verdict(), Verdict::Verified);
    // ...and an empty list authorizes nobody.
    let nobody = AttestationPolicy {
        authorized_signers: Some(vec![]),
        expect_partial: None,
    };
    let good = unhex(s(&case("v1"), "cose_sign1_hex"));
    let v = verify_attestation(AttestationInput::Cose(&good), &nobody);
    assert_only_failure(&v, attestation::SIGNER_PINNED);
    // Served as the coordinator's key while signed by the tenant's.
    let v = verify_served(&by_tenant);
    assert_eq!(
        failures(&v),
        vec![attestation::SIGNER_PINNED, attestation::SERVED_FIELDS]
    );
}

#[test]
fn statement_mutations_fail_their_own_checks() {
    // _type.
    let p = parts();
    let mut st = p.statement();
    st.statement_type = "https://in-toto.io/Statement/v0.1".into();
    let v = verify_cose(&CoseSign1::sign(st.encode(), &coordinator_key()).encode());
    assert_only_failure(&v, attestation::STATEMENT_TYPE);

    // Subject digest of other bytes.
    let mut st = p.statement();
    st.subjects[0].digest = vec![("sha256".into(), auspex_wire::sha256_hex(b"other"))];
    let v = verify_cose(&CoseSign1::sign(st.encode(), &coordinator_key()).encode());
    assert_only_failure(&v, attestation::SUBJECT_DIGEST);
    assert!(matches!(
        v.report.outcome(attestation::SUBJECT_NAME),
        Some(Outcome::NotChecked(_))
    ));

    // No sha256 digest; two subjects; no subject.
    let mut st = p.statement();
    st.subjects[0].digest = vec![("sha512".into(), "00".into())];
    let v = verify_cose(&CoseSign1::sign(st.encode(), &coordinator_key()).encode());
    assert_only_failure(&v, attestation::SUBJECT_DIGEST);
    let mut st = p.statement();
    let extra = Subject {
        name: "auspexai:result-set/att-OTHER".into(),
        digest: st.subjects[0].digest.clone(),
    };
    st.subjects.push(extra);
    let v = verify_cose(&CoseSign1::sign(st.encode(), &coordinator_key()).encode());
    assert_only_failure(&v, attestation::SUBJECT_DIGEST);
    let mut st = p.statement();
    st.subjects.clear();
    let v = verify_cose(&CoseSign1::sign(st.encode(), &coordinator_key()).encode());
    assert_only_failure(&v, attestation::SUBJECT_DIGEST);

    // Subject name: another form, or another attestation than served.
    for name in ["auspexai:receipt/rcpt-0001", "auspexai:result-set/"] {
        let mut st = p.statement();
        st.subjects[0].name = name.into();
        let v = verify_cose(&CoseSign1::sign(st.encode(), &coordinator_key()).encode());
        assert_only_failure(&v, attestation::SUBJECT_NAME);
    }
    let mut st = p.statement();
    st.subjects[0].name = "auspexai:result-set/att-OTHER".into();
    let bytes = CoseSign1::sign(st.encode(), &coordinator_key()).encode();
    assert_eq!(verify_cose(&bytes).verdict(), Verdict::Verified);
    assert_only_failure(&verify_served(&bytes), attestation::SUBJECT_NAME);
}

#[test]
fn wrong_predicate_types_fail_predicate_type() {
    let p = parts();
    for ty in [
        "https://auspexai.network/receipt/v0",
        "https://auspexai.network/result-set/v2",
        // The v0 type over a v1 predicate.
        "https://auspexai.network/result-set/v0",
    ] {
        let mut st = p.statement();
        st.predicate_type = ty.into();
        let v = verify_cose(&CoseSign1::sign(st.encode(), &coordinator_key()).encode());
        assert_only_failure(&v, attestation::PREDICATE_TYPE);
        assert!(matches!(
            v.report.outcome(attestation::MERKLE_ROOT),
            Some(Outcome::NotChecked(_))
        ));
    }
    // An unknown algorithm is refused, not read as v0 as 0.5.5 does.
    let mut p = parts();
    p.set("algorithm", Cbor::Text("sha256-merkle-v2".into()));
    assert_only_failure(&verify_cose(&p.signed()), attestation::PREDICATE_TYPE);
    // A receipt predicate under a result-set type does not decode.
    let receipt = vectors("receipt_cbor_cose.json");
    let mut st = p.statement();
    st.predicate = unhex(s(&receipt, "receipt_cbor_hex"));
    st.subjects[0].digest = vec![("sha256".into(), auspex_wire::sha256_hex(&st.predicate))];
    let v = verify_cose(&CoseSign1::sign(st.encode(), &coordinator_key()).encode());
    assert_eq!(failures(&v), vec![attestation::PREDICATE]);
}

#[test]
fn unit_mutations_fail_their_own_checks() {
    // A unit removed, count and root left: the count fails, and the root.
    let mut p = parts();
    p.units().pop();
    let v = verify_cose(&p.signed());
    assert_eq!(
        failures(&v),
        vec![attestation::UNIT_COUNT, attestation::MERKLE_ROOT]
    );
    // ...with the count adjusted: only the root.
    p.set("unit_count", Cbor::Unsigned(2));
    assert_only_failure(&verify_cose(&p.signed()), attestation::MERKLE_ROOT);
    // Served next to the original response, the served fields differ too.
    assert_eq!(
        failures(&verify_served(&p.signed())),
        vec![attestation::MERKLE_ROOT, attestation::SERVED_FIELDS]
    );

    // The root changed.
    let mut p = parts();
    p.set("merkle_root", Cbor::Text("11".repeat(32)));
    assert_only_failure(&verify_cose(&p.signed()), attestation::MERKLE_ROOT);

    // A unit's hash changed.
    let mut p = parts();
    if let Cbor::Map(m) = &mut p.units()[1] {
        for (k, v) in m.iter_mut() {
            if k.as_text() == Some("consensus_result_hash") {
                *v = Cbor::Text("22".repeat(32));
            }
        }
    }
    assert_only_failure(&verify_cose(&p.signed()), attestation::MERKLE_ROOT);

    // Unsorted (the root, which sorts, still recomputes).
    let mut p = parts();
    p.units().swap(0, 2);
    assert_only_failure(&verify_cose(&p.signed()), attestation::UNITS_SORTED);

    // The last unit duplicated: the duplicate-last tree gives the original
    // root (the CVE-2012-2459 shape), so only uniqueness refuses it.
    let mut p = parts();
    let dup = p.units()[2].clone();
    p.units().push(dup);
    p.set("unit_count", Cbor::Unsigned(4));
    let v = verify_cose(&p.signed());
    assert_only_failure(&v, attestation::UNITS_SORTED);
    assert!(v.report.passed(attestation::MERKLE_ROOT));
    let Some(Outcome::Failed(why)) = v.report.outcome(attestation::UNITS_SORTED) else {
        unreachable!()
    };
    assert!(why.contains("u-0003"), "{why}");
    // Another unit duplicated changes the root as well.
    let mut p = parts();
    let dup = p.units()[0].clone();
    p.units().insert(1, dup);
    p.set("unit_count", Cbor::Unsigned(4));
    assert_eq!(
        failures(&verify_cose(&p.signed())),
        vec![attestation::UNITS_SORTED, attestation::MERKLE_ROOT]
    );

    // The same shape in delivered results: a repeated last row keeps the
    // root, and verify_against_results still refuses it.
    let good = unhex(s(&case("v1"), "cose_sign1_hex"));
    let a = verify_cose(&good).into_result().expect("verifies");
    let mut leaves = a.unit_leaves();
    leaves.push(leaves[2]);
    let report = a.verify_against_results(&leaves);
    let Some(Outcome::Failed(why)) = report.outcome(attestation::RESULTS_MATCH) else {
        panic!("{report:?}")
    };
    assert!(why.contains("1 duplicate unit rows"), "{why}");
}

#[test]
fn served_field_mutations_fail_served_fields() {
    type Edit = fn(&mut AttestationResponse);
    let edits: Vec<(&str, Edit)> = vec![
        ("merkle_root", |r| r.merkle_root = "00".repeat(32)),
        ("algorithm", |r| r.algorithm = "sha256-merkle-v0".into()),
        ("experiment_id", |r| r.experiment_id = "other".into()),
        ("tenant_id", |r| r.tenant_id = "other".into()),
        ("unit_count", |r| r.unit_count = 4),
        ("units", |r| {
            r.units.pop();
        }),
        ("units", |r| r.units[0].receipt_id = "rcpt-9999".into()),
        ("units", |r| {
            r.units[1].unit_payload_sha256 = Some("33".repeat(32));
        }),
        ("units", |r| {
            let dup = r.units[0].clone();
            r.units.push(dup);
        }),
        ("signing_key_pubkey_hex", |r| {
            r.signing_key_pubkey_hex = TENANT.into();
        }),
    ];
    for (field, edit) in edits {
        let mut resp = response("v1");
        edit(&mut resp);
        let v = verify_attestation(AttestationInput::Response(&resp), &pinned());
        assert_only_failure(&v, attestation::SERVED_FIELDS);
        let Some(Outcome::Failed(why)) = v.report.outcome(attestation::SERVED_FIELDS) else {
            unreachable!()
        };
        assert!(why.contains(field), "{field}: {why}");
    }
    // Served units in another order, or without the v1 input hash (as the
    // stored coordinator serves them), are the same claim.
    let mut resp = response("v1");
    resp.units.reverse();
    for u in &mut resp.units {
        u.unit_payload_sha256 = None;
    }
    resp.signing_key_pubkey_hex = COORDINATOR.to_uppercase();
    let v = verify_attestation(AttestationInput::Response(&resp), &pinned());
    assert_eq!(v.verdict(), Verdict::Verified, "{:#?}", v.report);
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// A coordinator-style attestation over `n` units, as bytes.
fn build(n: usize, v1: bool, partial: bool) -> Vec<u8> {
    let units: Vec<Value> = (0..n)
        .map(|i| {
            let mut o = json::Object::new();
            o.insert("unit_id".into(), Value::from(format!("u-{i:04}")));
            o.insert(
                "consensus_result_hash".into(),
                Value::from(auspex_wire::sha256_hex(&[i as u8])),
            );
            o.insert("receipt_id".into(), Value::from(format!("rcpt-{i}")));
            if v1 {
                o.insert(
                    "unit_payload_sha256".into(),
                    Value::from(if i % 3 == 0 {
                        String::new()
                    } else {
                        auspex_wire::sha256_hex(&[i as u8, 1])
                    }),
                );
            }
            Value::Object(o)
        })
        .collect();
    let leaves: Vec<UnitLeaf<'_>> = units
        .iter()
        .enumerate()
        .map(|(i, u)| UnitLeaf::from_json(u, i).expect("leaf"))
        .collect();
    let alg = if v1 { Algorithm::V1 } else { Algorithm::V0 };
    let root = auspex_crypto::merkle::result_set_root_hex(&leaves, alg);
    let mut p = json::Object::new();
    p.insert("merkle_root".into(), Value::from(root));
    p.insert("algorithm".into(), Value::from(alg.name()));
    p.insert("experiment_id".into(), Value::from("label"));
    p.insert("tenant_id".into(), Value::from("tenant"));
    p.insert("unit_count".into(), Value::from(n as u64));
    p.insert("units".into(), Value::Array(units));
    if partial {
        p.insert("partial".into(), Value::Bool(true));
    }
    let predicate = cbor::encode_canonical(&Cbor::from_json(&Value::Object(p)));
    let st = Statement::wrap(
        "auspexai:result-set/att-PROP",
        alg.predicate_type(),
        predicate,
    );
    CoseSign1::sign(st.encode(), &coordinator_key()).encode()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Coordinator-style attestations of any size verify (and report
    /// `partial` as signed); any single flipped bit is rejected, never panics.
    #[test]
    fn built_attestations_verify_and_no_bit_flip_does(
        n in 0usize..12,
        v1 in any::<bool>(),
        partial in any::<bool>(),
        flip in any::<prop::sample::Index>(),
    ) {
        let bytes = build(n, v1, partial);
        let policy = AttestationPolicy {
            authorized_signers: Some(vec![key32(COORDINATOR)]),
            expect_partial: Some(partial),
        };
        let v = verify_attestation(AttestationInput::Cose(&bytes), &policy);
        prop_assert_eq!(v.verdict(), Verdict::Verified);
        let a = v.verified().expect("verified");
        prop_assert_eq!(a.partial(), partial);
        prop_assert_eq!(a.predicate().units.len(), n);
        let leaves = a.unit_leaves();
        prop_assert!(a.verify_against_results(&leaves).passed(attestation::RESULTS_MATCH));

        let bit = flip.index(bytes.len() * 8);
        let mut bad = bytes.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let v = verify_attestation(AttestationInput::Cose(&bad), &policy);
        prop_assert!(!v.verdict().is_verified(), "bit {} verified", bit);
        prop_assert!(v.verified().is_none());
    }
}
