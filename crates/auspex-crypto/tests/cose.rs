//! COSE_Sign1 decoding and verification and `inspect_receipt` against the
//! coordinator-made vectors (receipt_cbor_cose.json, attestation.json,
//! evidence_bundle_v1.json), tampering, and malformed input.

use auspex_crypto::cose::{self, CoseError, CoseSign1, InspectError};
use auspex_wire::attestation::Statement;
use auspex_wire::json::{self, Value};
use auspex_wire::receipt::cbor::{self, Cbor, CborError};
use auspex_wire::receipt::{RECEIPT_PREDICATE_TYPE, ReceiptError};
use base64::Engine as _;
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
/// RFC 8032 test 2 seed (the coordinator key of keys.json).
const COORDINATOR_SEED: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";

fn coordinator_key() -> SigningKey {
    SigningKey::from_bytes(&key32(COORDINATOR_SEED))
}

#[test]
fn receipt_cose_vector_verifies() {
    let doc = vectors("receipt_cbor_cose.json");
    let bytes = unhex(s(&doc, "cose_sign1_hex"));
    let b64 = base64::engine::general_purpose::STANDARD
        .decode(s(&doc, "cose_sign1_b64"))
        .expect("base64");
    assert_eq!(b64, bytes);
    let c = CoseSign1::decode(&bytes).expect("decodes");
    assert!(!c.is_tagged());
    assert_eq!(c.protected_bytes(), unhex(s(&doc, "protected_header_hex")));
    assert_eq!(c.alg(), Some(cose::ALG_EDDSA));
    assert_eq!(c.kid_text(), Some(COORDINATOR));
    assert_eq!(c.kid_public_key(), Ok(key32(COORDINATOR)));
    assert_eq!(c.payload(), unhex(s(&doc, "statement_cbor_hex")));
    assert_eq!(c.signature(), unhex(s(&doc, "signature_hex")));
    assert!(c.unprotected().is_empty());
    assert_eq!(c.sig_structure(), unhex(s(&doc, "sig_structure_hex")));
    let signer = c.verify(None).expect("verifies");
    assert_eq!(signer.hex(), COORDINATOR);
    assert_eq!(c.verify(Some(&key32(COORDINATOR))), Ok(signer));
    assert_eq!(
        c.verify(Some(&key32(TENANT))),
        Err(CoseError::UnexpectedSigner {
            expected: TENANT.into(),
            found: COORDINATOR.into()
        })
    );
    assert_eq!(c.encode(), bytes);
    // Signing the same payload with the coordinator key reproduces the blob
    // (Ed25519 is deterministic).
    let again = CoseSign1::sign(c.payload().to_vec(), &coordinator_key());
    assert_eq!(again.encode(), bytes);
}

#[test]
fn attestation_cose_blobs_verify() {
    let doc = vectors("attestation.json");
    for case in ["v1", "v0", "partial_flag_not_bound_in_0_5_5"] {
        let c = doc.get(case).expect("case");
        let bytes = unhex(s(c, "cose_sign1_hex"));
        let cose = CoseSign1::decode(&bytes).expect("decodes");
        let signer = cose.verify(Some(&key32(COORDINATOR))).expect(case);
        assert_eq!(signer.hex(), COORDINATOR);
        let st = Statement::decode(cose.payload()).expect("statement");
        assert!(st.subject_digest_matches());
        if let Some(want) = c.get("statement_cbor_hex").and_then(Value::as_str) {
            assert_eq!(cose.payload(), unhex(want));
        }
        if let Some(resp) = c.get("attestation_response_json") {
            let b64 = base64::engine::general_purpose::STANDARD
                .decode(s(resp, "cose_b64"))
                .expect("base64");
            assert_eq!(b64, bytes);
        }
    }
    // The bundle's receipts and attestation verify too.
    let doc = vectors("evidence_bundle_v1.json");
    let bundle = doc.get("bundle").expect("bundle");
    let mut blobs = vec![s(bundle.get("attestation").expect("att"), "cose_b64").to_owned()];
    for r in bundle
        .get("receipts")
        .and_then(Value::as_array)
        .expect("receipts")
    {
        blobs.push(s(r, "cose_b64").to_owned());
    }
    for b in blobs {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b)
            .expect("base64");
        let cose = CoseSign1::decode(&bytes).expect("decodes");
        cose.verify(Some(&key32(COORDINATOR))).expect("verifies");
    }
}

#[test]
fn flipped_bits_fail_with_the_right_error() {
    let doc = vectors("receipt_cbor_cose.json");
    let good = unhex(s(&doc, "cose_sign1_hex"));
    let cose = CoseSign1::decode(&good).expect("decodes");
    let protected_len = cose.protected_bytes().len();
    let payload_len = cose.payload().len();
    // Layout: 84 | 58 46 <protected 70> | a0 | 59 02a7 <payload> | 58 40 <sig 64>
    let protected_at = 1 + 2;
    let payload_at = protected_at + protected_len + 1 + 3;
    let sig_at = payload_at + payload_len + 2;
    assert_eq!(sig_at + 64, good.len());

    let flip = |i: usize, mask: u8| {
        let mut b = good.clone();
        b[i] ^= mask;
        b
    };
    // Signature and payload bits: still well-formed, signature invalid.
    for i in [
        sig_at,
        sig_at + 31,
        sig_at + 63,
        payload_at,
        payload_at + 100,
    ] {
        let c = CoseSign1::decode(&flip(i, 0x01)).expect("still decodes");
        assert_eq!(c.verify(None), Err(CoseError::SignatureInvalid), "byte {i}");
    }
    // A kid hex digit changed to another lowercase digit: another key.
    let kid_at = protected_at + 6;
    let mut b = good.clone();
    b[kid_at] = if b[kid_at] == b'3' { b'4' } else { b'3' };
    let c = CoseSign1::decode(&b).expect("decodes");
    assert!(matches!(
        c.verify(None),
        Err(CoseError::SignatureInvalid | CoseError::InvalidPublicKey)
    ));
    // Upper-case kid: refused before any key parsing.
    let mut b = good.clone();
    b[kid_at + 1] = b'D';
    let c = CoseSign1::decode(&b).expect("decodes");
    assert_eq!(c.verify(None), Err(CoseError::InvalidKid { len: 64 }));
    // alg -8 → -7 (ES256).
    let mut b = good.clone();
    assert_eq!(b[protected_at + 2], 0x27);
    b[protected_at + 2] = 0x26;
    let c = CoseSign1::decode(&b).expect("decodes");
    assert_eq!(c.alg(), Some(-7));
    assert_eq!(
        c.verify(None),
        Err(CoseError::UnsupportedAlgorithm { alg: -7 })
    );
}

fn arr(items: Vec<Cbor>) -> Vec<u8> {
    cbor::encode_canonical(&Cbor::Array(items))
}

fn protected(entries: Vec<(Cbor, Cbor)>) -> Cbor {
    Cbor::Bytes(cbor::encode_canonical(&Cbor::Map(entries)))
}

#[test]
fn malformed_cose_is_refused_with_typed_errors() {
    let kid = Cbor::Bytes(COORDINATOR.as_bytes().to_vec());
    let good_hdr = protected(vec![
        (Cbor::Unsigned(1), Cbor::Negative(7)),
        (Cbor::Unsigned(4), kid.clone()),
    ]);
    let sig = Cbor::Bytes(vec![0; 64]);
    let body = Cbor::Bytes(vec![0xa0]);
    let empty = Cbor::Map(vec![]);

    let dec = |b: &[u8]| CoseSign1::decode(b);
    assert!(matches!(dec(&[]), Err(CoseError::Cbor(CborError::Empty))));
    assert!(matches!(dec(&[0x84, 0x40]), Err(CoseError::Cbor(_))));
    assert_eq!(
        dec(&cbor::encode_canonical(&Cbor::Map(vec![]))),
        Err(CoseError::NotAnArray { found: "map" })
    );
    assert_eq!(
        dec(&arr(vec![good_hdr.clone(), empty.clone(), body.clone()])),
        Err(CoseError::WrongLength { len: 3 })
    );
    assert_eq!(
        dec(&arr(vec![
            Cbor::Text("x".into()),
            empty.clone(),
            body.clone(),
            sig.clone()
        ])),
        Err(CoseError::FieldNotBytes {
            field: "protected header",
            found: "text string"
        })
    );
    assert_eq!(
        dec(&arr(vec![
            good_hdr.clone(),
            empty.clone(),
            Cbor::Null,
            sig.clone()
        ])),
        Err(CoseError::DetachedPayload)
    );
    assert_eq!(
        dec(&arr(vec![
            good_hdr.clone(),
            empty.clone(),
            body.clone(),
            Cbor::Array(vec![])
        ])),
        Err(CoseError::FieldNotBytes {
            field: "signature",
            found: "array"
        })
    );
    assert_eq!(
        dec(&arr(vec![
            good_hdr.clone(),
            Cbor::Bytes(vec![]),
            body.clone(),
            sig.clone()
        ])),
        Err(CoseError::UnprotectedNotMap {
            found: "byte string"
        })
    );
    assert!(matches!(
        dec(&arr(vec![
            Cbor::Bytes(vec![0xa1, 0x01]),
            empty.clone(),
            body.clone(),
            sig.clone()
        ])),
        Err(CoseError::ProtectedHeader(_))
    ));
    assert_eq!(
        dec(&arr(vec![
            Cbor::Bytes(vec![0x80]),
            empty.clone(),
            body.clone(),
            sig.clone()
        ])),
        Err(CoseError::ProtectedNotMap { found: "array" })
    );
    let dup = Cbor::Bytes(vec![0xa2, 0x01, 0x27, 0x01, 0x27]);
    assert_eq!(
        dec(&arr(vec![dup, empty.clone(), body.clone(), sig.clone()])),
        Err(CoseError::DuplicateHeaderLabel { label: "1".into() })
    );
    let text_alg = protected(vec![(Cbor::Unsigned(1), Cbor::Text("EdDSA".into()))]);
    assert_eq!(
        dec(&arr(vec![
            text_alg,
            empty.clone(),
            body.clone(),
            sig.clone()
        ])),
        Err(CoseError::AlgNotInteger {
            found: "text string"
        })
    );
    let raw_kid = protected(vec![
        (Cbor::Unsigned(1), Cbor::Negative(7)),
        (Cbor::Unsigned(4), Cbor::Text(COORDINATOR.into())),
    ]);
    assert_eq!(
        dec(&arr(vec![
            raw_kid,
            empty.clone(),
            body.clone(),
            sig.clone()
        ])),
        Err(CoseError::KidNotBytes {
            found: "text string"
        })
    );
    assert_eq!(
        dec(&cbor::encode_canonical(&Cbor::Tag(
            17,
            Box::new(Cbor::Array(vec![]))
        ))),
        Err(CoseError::UnexpectedTag(17))
    );

    // Well-formed but unverifiable.
    let verify = |hdr: Cbor, sig: Cbor| {
        dec(&arr(vec![hdr, empty.clone(), body.clone(), sig]))
            .expect("decodes")
            .verify(None)
    };
    assert_eq!(
        verify(Cbor::Bytes(vec![]), sig.clone()),
        Err(CoseError::MissingAlgorithm)
    );
    assert_eq!(
        verify(
            protected(vec![(Cbor::Unsigned(1), Cbor::Negative(7))]),
            sig.clone()
        ),
        Err(CoseError::MissingKid)
    );
    assert_eq!(
        verify(
            protected(vec![
                (Cbor::Unsigned(1), Cbor::Negative(7)),
                (Cbor::Unsigned(4), Cbor::Bytes(key32(COORDINATOR).to_vec())),
            ]),
            sig.clone()
        ),
        Err(CoseError::InvalidKid { len: 32 })
    );
    assert_eq!(
        verify(good_hdr.clone(), Cbor::Bytes(vec![0; 63])),
        Err(CoseError::BadSignatureLength { len: 63 })
    );
    assert_eq!(verify(good_hdr, sig), Err(CoseError::SignatureInvalid));
}

#[test]
fn tagged_cose_is_accepted() {
    let doc = vectors("receipt_cbor_cose.json");
    let mut tagged = vec![0xd2];
    tagged.extend(unhex(s(&doc, "cose_sign1_hex")));
    let c = CoseSign1::decode(&tagged).expect("tag 18 decodes");
    assert!(c.is_tagged());
    assert!(c.verify(Some(&key32(COORDINATOR))).is_ok());
    assert_eq!(c.encode(), tagged);
    let inspected = cose::inspect_receipt(&tagged).expect("inspects");
    assert!(inspected.envelope.expect("envelope").signature_valid());
}

#[test]
fn inspect_receipt_naked_and_cose() {
    let doc = vectors("receipt_cbor_cose.json");
    let show = s(&doc, "receipt_json_pretty_as_printed_by_receipts_show");

    let naked = cose::inspect_receipt(&unhex(s(&doc, "receipt_cbor_hex"))).expect("naked");
    assert!(naked.envelope.is_none());
    assert_eq!(naked.receipt.to_pydantic_json_indent(), show);

    let wrapped = cose::inspect_receipt(&unhex(s(&doc, "cose_sign1_hex"))).expect("COSE");
    assert_eq!(wrapped.receipt, naked.receipt);
    let env = wrapped.envelope.expect("envelope");
    assert!(env.signature_valid());
    assert_eq!(env.signer_hex(), Some(COORDINATOR));
    assert!(env.subject_digest_matches);
    assert_eq!(env.statement.predicate_type, RECEIPT_PREDICATE_TYPE);
    assert_eq!(env.statement.subjects[0].name, "auspexai:receipt/rcpt-0001");

    // A bad signature is reported, not an error: the receipt is still shown.
    let mut bad = unhex(s(&doc, "cose_sign1_hex"));
    let n = bad.len();
    bad[n - 1] ^= 0x80;
    let r = cose::inspect_receipt(&bad).expect("still inspects");
    let env = r.envelope.expect("envelope");
    assert_eq!(env.signature, Err(CoseError::SignatureInvalid));
    assert!(env.subject_digest_matches);

    // A statement whose subject digest is wrong, correctly signed.
    let mut st = env.statement.clone();
    st.subjects[0].digest[0].1 = "00".repeat(32);
    let signed = CoseSign1::sign(st.encode(), &coordinator_key()).encode();
    let env = cose::inspect_receipt(&signed)
        .expect("inspects")
        .envelope
        .expect("envelope");
    assert!(env.signature_valid());
    assert!(!env.subject_digest_matches);
}

#[test]
fn inspect_receipt_errors_are_typed() {
    let doc = vectors("receipt_cbor_cose.json");
    let key = coordinator_key();

    assert!(matches!(
        cose::inspect_receipt(b""),
        Err(InspectError::NotCbor(CborError::Empty))
    ));
    assert!(matches!(
        cose::inspect_receipt(b"\x01"),
        Err(InspectError::UnrecognizedShape { .. })
    ));
    assert!(matches!(
        cose::inspect_receipt(&[0xc1, 0x01]),
        Err(InspectError::UnrecognizedShape { found }) if found == "CBOR tag 1"
    ));
    assert!(matches!(
        cose::inspect_receipt(&[0x84, 0x40, 0xa0, 0x40, 0x40]),
        Err(InspectError::Statement(_))
    ));
    assert!(matches!(
        cose::inspect_receipt(&[0x83, 0x40, 0xa0, 0x40]),
        Err(InspectError::Cose(CoseError::WrongLength { len: 3 }))
    ));
    assert!(matches!(
        cose::inspect_receipt(&[0xd2, 0x84]),
        Err(InspectError::NotCbor(_))
    ));
    // An attestation statement is not a receipt.
    let att = vectors("attestation.json");
    let att_cose = unhex(s(att.get("v1").expect("v1"), "cose_sign1_hex"));
    assert!(matches!(
        cose::inspect_receipt(&att_cose),
        Err(InspectError::WrongPredicateType { found }) if found.ends_with("/result-set/v1")
    ));
    // A receipt statement whose predicate is not a valid receipt.
    let st = Statement::wrap("auspexai:receipt/x", RECEIPT_PREDICATE_TYPE, vec![0xa0]);
    let blob = CoseSign1::sign(st.encode(), &key).encode();
    assert!(matches!(
        cose::inspect_receipt(&blob),
        Err(InspectError::Receipt(ReceiptError::Invalid(_)))
    ));
    // An invalid naked receipt.
    assert!(matches!(
        cose::inspect_receipt(&[0xa1, 0x61, 0x78, 0x01]),
        Err(InspectError::Receipt(ReceiptError::Invalid(_)))
    ));
    // Length prefixes beyond the input and deep nesting.
    for bad in [
        vec![0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        vec![0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        vec![0x81; 50_000],
        vec![0xd2; 50_000],
    ] {
        assert!(matches!(
            cose::inspect_receipt(&bad),
            Err(InspectError::NotCbor(
                CborError::LengthExceedsInput { .. } | CborError::TooDeep { .. }
            ))
        ));
    }
    // Every truncation and every single-byte corruption of the COSE blob is
    // handled without panicking.
    let good = unhex(s(&doc, "cose_sign1_hex"));
    for cut in 0..good.len() {
        assert!(cose::inspect_receipt(&good[..cut]).is_err());
    }
    for i in 0..good.len() {
        for mask in [0x01u8, 0xff] {
            let mut b = good.clone();
            b[i] ^= mask;
            let _ = cose::inspect_receipt(&b);
        }
    }
}
