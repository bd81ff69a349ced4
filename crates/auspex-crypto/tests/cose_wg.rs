//! The COSE working group's public EdDSA examples (cose-wg/Examples,
//! `eddsa-examples/`), which nobody on the team produced: our decoder builds
//! their exact `ToBeSign` bytes and verifies the Ed25519 one; the protocol's
//! stricter `verify` refuses it (its kid is not a 64-hex public key), and the
//! Ed448 one is refused with a typed error.

use auspex_crypto::cose::{CoseError, CoseSign1};
use auspex_wire::json::{self, Value};
use ed25519_dalek::VerifyingKey;

fn example(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/cose-wg/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    json::parse(&std::fs::read(path).expect("fixture")).expect("json")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for k in path {
        cur = cur.get(k).expect("member");
    }
    cur.as_str().expect("string")
}

#[test]
fn eddsa_sig_01_ed25519_verifies() {
    let ex = example("eddsa-sig-01.json");
    let msg = CoseSign1::decode(&hex(at(&ex, &["output", "cbor"]))).expect("decodes");
    assert!(msg.is_tagged());
    assert_eq!(msg.payload(), b"This is the content.");
    assert_eq!(
        msg.sig_structure(),
        hex(at(&ex, &["intermediates", "ToBeSign_hex"]))
    );
    let x: [u8; 32] = hex(at(&ex, &["input", "sign0", "key", "x_hex"]))
        .try_into()
        .expect("32 bytes");
    let key = VerifyingKey::from_bytes(&x).expect("valid key");
    msg.verify_with_key(&key)
        .expect("the published signature verifies");
    // Re-encoding gives the published bytes.
    assert_eq!(msg.encode(), hex(at(&ex, &["output", "cbor"])));
    // The protocol profile needs a 64-hex kid in the protected header.
    assert!(msg.verify(None).is_err());
    // One flipped payload bit breaks it.
    let mut bytes = hex(at(&ex, &["output", "cbor"]));
    let pos = bytes
        .windows(4)
        .position(|w| w == b"This")
        .expect("payload");
    bytes[pos] ^= 1;
    let tampered = CoseSign1::decode(&bytes).expect("decodes");
    assert_eq!(
        tampered.verify_with_key(&key),
        Err(CoseError::SignatureInvalid)
    );
}

#[test]
fn eddsa_sig_02_ed448_is_refused_cleanly() {
    let ex = example("eddsa-sig-02.json");
    let msg = CoseSign1::decode(&hex(at(&ex, &["output", "cbor"]))).expect("decodes");
    assert_eq!(
        msg.sig_structure(),
        hex(at(&ex, &["intermediates", "ToBeSign_hex"]))
    );
    // Any Ed25519 key: the 114-byte Ed448 signature is refused before use.
    let x: [u8; 32] = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        .try_into()
        .expect("32 bytes");
    let key = VerifyingKey::from_bytes(&x).expect("valid key");
    assert_eq!(
        msg.verify_with_key(&key),
        Err(CoseError::BadSignatureLength { len: 114 })
    );
    assert!(msg.verify(None).is_err());
}
