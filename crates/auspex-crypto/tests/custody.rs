//! Custody (proof-of-transfer) records against the SDK vectors
//! (worker_signature_and_transfer.json: record bytes and hex signature
//! verified by 0.5.5 `verify_transfer`; evidence_bundle_v1.json: the bundle's
//! transfer block and its unified root), mutations that assert the rejecting
//! check, and the root binding that closes the cherry-pick gap (§11.2 #15).

use auspex_crypto::attestation::{
    AttestationInput, AttestationPolicy, VerifiedAttestation, verify_attestation,
};
use auspex_crypto::cose::CoseSign1;
use auspex_crypto::custody::{
    self, ATTESTATION_SIGNER, CustodyError, CustodyPolicy, CustodyRecord, FIELDS, ROOT_BINDING,
    SIGNATURE, SIGNER_PINNED, verify_root_binding, verify_transfer,
};
use auspex_crypto::merkle;
use auspex_crypto::report::{Outcome, Verdict};
use auspex_wire::attestation::Statement;
use auspex_wire::bundle::{ConsensusRow, EvidenceBundle, Transfer};
use auspex_wire::json::{self, Value};
use auspex_wire::receipt::cbor::{self, Cbor};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;

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

fn key32(hex: &str) -> [u8; 32] {
    (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect::<Vec<u8>>()
        .try_into()
        .expect("32 bytes")
}

const COORDINATOR: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
const TENANT: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const COORDINATOR_SEED: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
const TENANT_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

fn coordinator_key() -> SigningKey {
    SigningKey::from_bytes(&key32(COORDINATOR_SEED))
}

fn pinned() -> CustodyPolicy {
    CustodyPolicy {
        authorized_signers: Some(vec![key32(COORDINATOR)]),
    }
}

fn bundle() -> EvidenceBundle {
    let doc = vectors("evidence_bundle_v1.json");
    EvidenceBundle::from_value(doc.get("bundle").expect("bundle")).expect("bundle reads")
}

fn rows(rows: &[ConsensusRow]) -> Vec<(&str, Option<&str>)> {
    rows.iter()
        .map(|r| {
            (
                r.unit_id.as_deref().unwrap_or(""),
                r.semantic_hash.as_deref(),
            )
        })
        .collect()
}

fn attestation_of(b: &EvidenceBundle) -> VerifiedAttestation {
    let block = b.attestation.as_ref().expect("attestation");
    verify_attestation(
        AttestationInput::Bundle(block),
        &AttestationPolicy {
            authorized_signers: Some(vec![key32(COORDINATOR)]),
            expect_partial: Some(false),
        },
    )
    .into_result()
    .expect("the bundle's attestation verifies")
}

/// Re-signs the custody record of `t` with `key`, as the coordinator would.
fn resign(t: &mut Transfer, key: &SigningKey) {
    let record = CustodyRecord::from_transfer(t).expect("fields");
    t.coordinator_signature = Some(record.sign(key).expect("unambiguous"));
    t.coordinator_pubkey_hex = Some(auspex_wire::hex_lower(key.verifying_key().as_bytes()));
}

#[test]
fn transfer_vector_is_byte_exact_and_verifies() {
    let doc = vectors("worker_signature_and_transfer.json");
    let t = doc.get("transfer").expect("transfer");
    let record = CustodyRecord {
        result_set_root: s(t, "result_set_root"),
        collected_by: s(t, "collected_by_pubkey"),
        collected_at: s(t, "collected_at"),
        manifest_hash: s(t, "manifest_hash"),
    };
    assert_eq!(record.text(), s(t, "record_utf8"));
    assert_eq!(record.to_bytes(), s(t, "record_utf8").as_bytes());
    let sig = s(t, "coordinator_signature_hex");
    assert_eq!(record.sign(&coordinator_key()), Ok(sig.to_owned()));
    let v = record
        .verify(sig, s(t, "coordinator_pubkey_hex"))
        .expect("verifies");
    assert_eq!(v.signer(), &key32(COORDINATOR));
    assert_eq!(v.result_set_root(), s(t, "result_set_root"));
    assert_eq!(v.collected_at(), "2025-01-02T04:00:00.000001+00:00");
    // Hex of either case is the same signature.
    assert!(
        record
            .verify(&sig.to_uppercase(), &COORDINATOR.to_uppercase())
            .is_ok()
    );
    // The record is signed verbatim: a re-formatted time fails.
    let reformatted = CustodyRecord {
        collected_at: "2025-01-02T04:00:00.000001Z",
        ..record
    };
    assert!(matches!(
        reformatted.verify(sig, COORDINATOR),
        Err(CustodyError::SignatureInvalid { .. })
    ));
}

#[test]
fn bundle_transfer_verifies_pinned_and_unpinned() {
    let b = bundle();
    let t = b.transfer.as_ref().expect("transfer");
    let v = verify_transfer(t, &pinned());
    assert_eq!(v.verdict(), Verdict::Verified, "{:#?}", v.report);
    assert_eq!(v.required(), vec![FIELDS, SIGNATURE, SIGNER_PINNED]);
    let custody = v.into_result().expect("verified");
    assert_eq!(custody.signer(), &key32(COORDINATOR));

    let v = verify_transfer(t, &CustodyPolicy::default());
    assert_eq!(v.verdict(), Verdict::Verified);
    assert!(matches!(
        v.report.outcome(SIGNER_PINNED),
        Some(Outcome::NotChecked(_))
    ));
}

#[test]
fn transfer_mutations_fail_their_own_checks() {
    let base = bundle().transfer.expect("transfer");

    // evidence_bundle_v1.json "transfer collected_at edited".
    let mut t = base.clone();
    t.collected_at = Some("2025-01-02T04:00:00.000002+00:00".into());
    let v = verify_transfer(&t, &pinned());
    assert_eq!(v.verdict(), Verdict::Failed(vec![SIGNATURE]));
    assert!(matches!(
        v.report.outcome(SIGNER_PINNED),
        Some(Outcome::NotChecked(why)) if why == "needs custody.signature"
    ));
    assert!(v.verified().is_none());

    // "wrong signer pin".
    let tenant_pin = CustodyPolicy {
        authorized_signers: Some(vec![key32(TENANT)]),
    };
    let v = verify_transfer(&base, &tenant_pin);
    assert_eq!(v.verdict(), Verdict::Failed(vec![SIGNER_PINNED]));
    // A record re-signed by another key verifies only unpinned.
    let mut t = base.clone();
    resign(&mut t, &SigningKey::from_bytes(&key32(TENANT_SEED)));
    assert_eq!(
        verify_transfer(&t, &pinned()).verdict(),
        Verdict::Failed(vec![SIGNER_PINNED])
    );
    assert_eq!(
        verify_transfer(&t, &CustodyPolicy::default()).verdict(),
        Verdict::Verified
    );

    // Flipped signature bits and malformed hex.
    let sig = base.coordinator_signature.clone().expect("sig");
    for bad in [
        format!("{}0", &sig[..127]),
        sig[..126].to_owned(),
        format!("{}zz", &sig[..126]),
        STANDARD.encode([0u8; 64]),
    ] {
        let mut t = base.clone();
        t.coordinator_signature = Some(bad.clone());
        let v = verify_transfer(&t, &pinned());
        assert_eq!(v.verdict(), Verdict::Failed(vec![SIGNATURE]), "{bad}");
    }
    // A bad signer key.
    let mut t = base.clone();
    t.coordinator_pubkey_hex = Some("00".repeat(31));
    assert_eq!(
        verify_transfer(&t, &pinned()).verdict(),
        Verdict::Failed(vec![SIGNATURE])
    );

    // Missing members.
    for strip in [
        |t: &mut Transfer| t.result_set_root = None,
        |t: &mut Transfer| t.collected_by_pubkey = None,
        |t: &mut Transfer| t.collected_at = None,
        |t: &mut Transfer| t.manifest_hash = None,
        |t: &mut Transfer| t.coordinator_signature = None,
        |t: &mut Transfer| t.coordinator_pubkey_hex = None,
    ] {
        let mut t = base.clone();
        strip(&mut t);
        let v = verify_transfer(&t, &pinned());
        assert_eq!(v.verdict(), Verdict::Failed(vec![FIELDS]));
        assert!(matches!(
            v.report.outcome(SIGNATURE),
            Some(Outcome::NotChecked(_))
        ));
    }
}

/// With no escaping, `a|b` + `c` and `a` + `b|c` sign the same bytes: a
/// member containing `|` is refused before any signature is made or checked.
#[test]
fn ambiguous_records_are_refused() {
    let base = bundle().transfer.expect("transfer");
    let root = base.result_set_root.clone().expect("root");
    let by = base.collected_by_pubkey.clone().expect("by");
    let mut shifted = base.clone();
    shifted.result_set_root = Some(format!("{root}|{by}"));
    shifted.collected_by_pubkey = base.collected_at.clone();
    shifted.collected_at = base.manifest_hash.clone().map(|m| format!("x|{m}"));
    let v = verify_transfer(&shifted, &pinned());
    assert_eq!(v.verdict(), Verdict::Failed(vec![FIELDS]));
    let record = CustodyRecord::from_transfer(&shifted).expect("present");
    assert!(matches!(
        record.sign(&coordinator_key()),
        Err(CustodyError::AmbiguousField {
            field: "result_set_root"
        })
    ));
}

#[test]
fn the_unified_root_binds_the_bundle_to_its_attestation() {
    let b = bundle();
    let t = b.transfer.as_ref().expect("transfer");
    let custody = verify_transfer(t, &pinned())
        .into_result()
        .expect("custody");
    let a = attestation_of(&b);
    let report = verify_root_binding(&custody, t, rows(&b.consensus_results), Some(&a));
    assert!(
        report
            .verdict(&[ROOT_BINDING, ATTESTATION_SIGNER])
            .is_verified(),
        "{report:?}"
    );

    // The Merkle kind needs the attestation.
    let report = verify_root_binding(&custody, t, rows(&b.consensus_results), None);
    assert_eq!(report.first_failure().map(|c| c.id), Some(ROOT_BINDING));
    assert!(matches!(
        report.outcome(ATTESTATION_SIGNER),
        Some(Outcome::NotChecked(_))
    ));

    // root_kind is unsigned: stripping it, or an unknown or mismatching
    // kind, fails instead of skipping the check (0.5.5 skips).
    for kind in [None, Some("sha256-merkle-v9"), Some("sha256-merkle-v0")] {
        let mut t2 = t.clone();
        t2.root_kind = kind.map(str::to_owned);
        let report = verify_root_binding(&custody, &t2, rows(&b.consensus_results), Some(&a));
        assert_eq!(
            report.first_failure().map(|c| c.id),
            Some(ROOT_BINDING),
            "{kind:?}"
        );
    }
    // Claiming flat-v0 for an attestation root: the flat root of the rows
    // is something else.
    let mut t2 = t.clone();
    t2.root_kind = Some(custody::ROOT_KIND_FLAT.into());
    let report = verify_root_binding(&custody, &t2, rows(&b.consensus_results), Some(&a));
    assert_eq!(report.first_failure().map(|c| c.id), Some(ROOT_BINDING));
    // The transfer naming another attestation.
    let mut t2 = t.clone();
    t2.attestation_id = Some("att-OTHER".into());
    let report = verify_root_binding(&custody, &t2, rows(&b.consensus_results), Some(&a));
    assert_eq!(report.first_failure().map(|c| c.id), Some(ROOT_BINDING));
}

#[test]
fn a_flat_root_binds_the_delivered_rows() {
    let b = bundle();
    let mut t = b.transfer.clone().expect("transfer");
    let flat = merkle::flat_custody_root(rows(&b.consensus_results));
    t.result_set_root = Some(flat);
    t.root_kind = Some(custody::ROOT_KIND_FLAT.into());
    t.attestation_id = None;
    resign(&mut t, &coordinator_key());
    let custody = verify_transfer(&t, &pinned())
        .into_result()
        .expect("custody");
    let report = verify_root_binding(&custody, &t, rows(&b.consensus_results), None);
    assert!(report.passed(ROOT_BINDING), "{report:?}");

    // A row dropped after signing, or its hash edited: the flat root differs.
    let report = verify_root_binding(&custody, &t, rows(&b.consensus_results[..2]), None);
    assert_eq!(report.first_failure().map(|c| c.id), Some(ROOT_BINDING));
    let mut edited = b.consensus_results.clone();
    edited[0].semantic_hash = Some("00".repeat(32));
    let report = verify_root_binding(&custody, &t, rows(&edited), None);
    assert_eq!(report.first_failure().map(|c| c.id), Some(ROOT_BINDING));
}

/// A checkpoint attestation over units u-0001..u-0002 of the bundle, signed
/// by `key` (coordinator-style, `partial: true` in the signed predicate).
fn partial_attestation(b: &EvidenceBundle, key: &SigningKey) -> VerifiedAttestation {
    let full = attestation_of(b);
    let leaves = &full.unit_leaves()[..2];
    let root = merkle::result_set_root_hex(leaves, full.algorithm());
    let units: Vec<Value> = leaves
        .iter()
        .map(|u| {
            let mut o = json::Object::new();
            o.insert("unit_id".into(), Value::from(u.unit_id));
            o.insert(
                "consensus_result_hash".into(),
                Value::from(u.consensus_result_hash),
            );
            o.insert("receipt_id".into(), Value::from(u.receipt_id));
            o.insert(
                "unit_payload_sha256".into(),
                Value::from(u.unit_payload_sha256.unwrap_or("")),
            );
            Value::Object(o)
        })
        .collect();
    let mut p = json::Object::new();
    p.insert("merkle_root".into(), Value::from(root));
    p.insert("algorithm".into(), Value::from(full.algorithm().name()));
    p.insert(
        "experiment_id".into(),
        Value::from(full.predicate().experiment_id.as_str()),
    );
    p.insert(
        "tenant_id".into(),
        Value::from(full.predicate().tenant_id.as_str()),
    );
    p.insert("unit_count".into(), Value::from(2u64));
    p.insert("units".into(), Value::Array(units));
    p.insert("partial".into(), Value::Bool(true));
    let predicate = cbor::encode_canonical(&Cbor::from_json(&Value::Object(p)));
    let st = Statement::wrap(
        "auspexai:result-set/att-CHECKPOINT",
        full.algorithm().predicate_type(),
        predicate,
    );
    let cose = CoseSign1::sign(st.encode(), key).encode();
    verify_attestation(AttestationInput::Cose(&cose), &AttestationPolicy::default())
        .into_result()
        .expect("a well-formed checkpoint")
}

/// evidence_bundle_v1.json mutation "cherry-pick": a coordinator-signed
/// partial checkpoint over 2 units, the 3rd row dropped, the unsigned
/// `root_kind` stripped. 0.5.5 and 0.6.67 accept it; here the attestation
/// fails `partial_expected` and the custody root binding fails.
#[test]
fn the_cherry_pick_attack_fails() {
    let b = bundle();
    let checkpoint = partial_attestation(&b, &coordinator_key());
    let kept = &b.consensus_results[..2];

    // The custody record signed over the checkpoint root, root_kind stripped.
    let mut t = b.transfer.clone().expect("transfer");
    t.result_set_root = Some(checkpoint.merkle_root().to_owned());
    t.attestation_id = Some(checkpoint.attestation_id().to_owned());
    resign(&mut t, &coordinator_key());
    t.root_kind = None;
    let custody = verify_transfer(&t, &pinned())
        .into_result()
        .expect("custody");
    let report = verify_root_binding(&custody, &t, rows(kept), Some(&checkpoint));
    assert_eq!(report.first_failure().map(|c| c.id), Some(ROOT_BINDING));

    // Even with root_kind restored, a partial attestation cannot anchor custody.
    t.root_kind = Some(merkle::ALG_V1.into());
    let report = verify_root_binding(&custody, &t, rows(kept), Some(&checkpoint));
    let Some(Outcome::Failed(why)) = report.outcome(ROOT_BINDING) else {
        panic!("{report:?}")
    };
    assert!(why.contains("partial"), "{why}");

    // And the attestation itself fails when a final one is required.
    let v = verify_attestation(
        AttestationInput::Cose(checkpoint.cose_bytes()),
        &AttestationPolicy {
            authorized_signers: Some(vec![key32(COORDINATOR)]),
            expect_partial: Some(false),
        },
    );
    assert_eq!(
        v.verdict(),
        Verdict::Failed(vec![auspex_crypto::attestation::PARTIAL_EXPECTED])
    );
}

/// AUD-23 (§11.2 #10): the attestation must have the custody signer.
#[test]
fn an_attestation_by_another_key_fails_attestation_signer() {
    let b = bundle();
    let t = b.transfer.as_ref().expect("transfer");
    let custody = verify_transfer(t, &pinned())
        .into_result()
        .expect("custody");
    let tenant = SigningKey::from_bytes(&key32(TENANT_SEED));
    let full = attestation_of(&b);
    // The same predicate re-signed by the tenant key, under the bundle's id.
    let cose = CoseSign1::decode(full.cose_bytes()).expect("cose");
    let resigned = CoseSign1::sign(cose.payload().to_vec(), &tenant).encode();
    let other = verify_attestation(
        AttestationInput::Cose(&resigned),
        &AttestationPolicy::default(),
    )
    .into_result()
    .expect("self-consistent");
    let report = verify_root_binding(&custody, t, rows(&b.consensus_results), Some(&other));
    assert!(report.passed(ROOT_BINDING));
    assert_eq!(
        report.first_failure().map(|c| c.id),
        Some(ATTESTATION_SIGNER)
    );
}
