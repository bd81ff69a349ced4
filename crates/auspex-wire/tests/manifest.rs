//! Manifests: the shared vectors, fixtures checked against the official
//! packages, and error reporting.

use auspex_wire::json::{self, Value};
use auspex_wire::manifest::email::normalize_email;

fn fixture(rel: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn doc(rel: &str) -> Value {
    json::parse(&fixture(rel)).expect("fixture is JSON")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("string member {key}"))
}

#[test]
fn email_matches_pydantic_emailstr() {
    let d = doc("manifests/email_cases.json");
    let cases = d.get("cases").and_then(Value::as_array).expect("cases");
    let mut accept_mismatch = Vec::new();
    let mut reason_mismatch = Vec::new();
    for case in cases {
        let input = s(case, "input");
        let want = case.get("normalized").and_then(Value::as_str);
        let got = normalize_email(input);
        match (want, &got) {
            (Some(w), Ok(g)) if w == g => {}
            (None, Err(e)) => {
                let reason = s(case, "error");
                if reason != e.reason {
                    reason_mismatch
                        .push(format!("{input:?}\n    py: {reason}\n    rs: {}", e.reason));
                }
            }
            _ => accept_mismatch.push(format!(
                "{input:?}: python {want:?} / {:?} ; rust {got:?}",
                case.get("error")
            )),
        }
    }
    eprintln!("REASONS:\n{}", reason_mismatch.join("\n"));
    assert!(accept_mismatch.is_empty(), "{}", accept_mismatch.join("\n"));
}

use auspex_wire::manifest::{ManifestSignature, SdkProfile, parse_manifest};
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};

fn tenant_key() -> SigningKey {
    let keys = doc("vectors/keys.json");
    let seed = s(keys.get("tenant").expect("tenant"), "seed_hex");
    let bytes: Vec<u8> = (0..seed.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&seed[i..i + 2], 16).expect("hex"))
        .collect();
    SigningKey::from_bytes(&bytes.try_into().expect("32 bytes"))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn manifest_signing_vectors_0_5_5() {
    let d = doc("vectors/manifest_signing.json");
    let key = tenant_key();
    let cases = d.get("cases").and_then(Value::as_array).expect("cases");
    assert_eq!(cases.len(), 2);
    for case in cases {
        let m = parse_manifest(s(case, "manifest_file_text").as_bytes()).expect("valid manifest");
        assert_eq!(m.default_profile(), SdkProfile::V0_5_5);
        let input = m.signing_input(SdkProfile::V0_5_5).expect("signing input");
        assert_eq!(
            std::str::from_utf8(&input).unwrap(),
            s(case, "signing_input_utf8")
        );
        assert_eq!(auspex_wire::hex_lower(&input), s(case, "signing_input_hex"));
        assert_eq!(
            auspex_wire::sha256_hex(&input),
            s(case, "signing_input_sha256")
        );
        let sig = key.sign(&input);
        assert_eq!(b64(&sig.to_bytes()), s(case, "signature_b64"));
        let env = ManifestSignature::new(
            auspex_wire::hex_lower(key.verifying_key().as_bytes()),
            b64(&sig.to_bytes()),
        );
        assert_eq!(env.to_file_text(), s(case, "sig_file_text"));
        assert_eq!(
            env.to_value(),
            *case.get("manifest_signature_object").unwrap()
        );
        assert_eq!(
            ManifestSignature::parse(s(case, "sig_file_text").as_bytes()).unwrap(),
            env
        );
        assert_eq!(m.manifest_hash_input(), s(case, "manifest_hash_input_utf8"));
        assert_eq!(m.manifest_hash(), s(case, "manifest_hash"));
    }
}

#[test]
fn manifest_signing_vectors_0_6_67() {
    let d = doc("vectors/manifest_signing.json");
    let deltas = doc("vectors/v0_6_67_deltas.json");
    let key = tenant_key();
    let cases = d.get("cases").and_then(Value::as_array).expect("cases");
    let later = deltas
        .get("manifest_signing_0_6_67")
        .and_then(Value::as_array)
        .expect("deltas");
    assert_eq!(later.len(), cases.len());
    for (case, delta) in cases.iter().zip(later) {
        assert_eq!(s(case, "name"), s(delta, "name"));
        let m = parse_manifest(s(case, "manifest_file_text").as_bytes()).expect("valid manifest");
        let input = m.signing_input(SdkProfile::V0_6_67).expect("signing input");
        assert_eq!(
            std::str::from_utf8(&input).unwrap(),
            s(delta, "signing_input_utf8_0_6_67")
        );
        assert_eq!(
            b64(&key.sign(&input).to_bytes()),
            s(delta, "signature_b64_0_6_67")
        );
        assert_eq!(
            m.manifest_hash(),
            s(delta, "manifest_hash_0_6_67_canonical")
        );
        assert_ne!(input, m.signing_input(SdkProfile::V0_5_5).unwrap());
    }
}

/// Every fixture manifest: the 0.6.67 (and, for v0.1, 0.5.5) signing input
/// produced by the official package, byte for byte, its signature and hash.
#[test]
fn fixture_manifests_match_official_dumps() {
    let index = doc("manifests/index.json");
    let key = tenant_key();
    let cases = index.get("cases").and_then(Value::as_array).expect("cases");
    let mut versions = std::collections::BTreeSet::new();
    for case in cases {
        let name = s(case, "name");
        let m = parse_manifest(&fixture(&format!("manifests/{}", s(case, "manifest_file"))))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        versions.insert(m.schema_version().to_owned());
        assert_eq!(m.manifest_hash(), s(case, "manifest_hash"), "{name}");
        for (profile, tag) in [
            (SdkProfile::V0_6_67, "0_6_67"),
            (SdkProfile::V0_5_5, "0_5_5"),
        ] {
            let Some(file) = case
                .get(&format!("signing_input_{tag}_file"))
                .and_then(Value::as_str)
            else {
                assert!(
                    m.signing_input(profile).is_err(),
                    "{name}: {profile} cannot represent it"
                );
                continue;
            };
            let want = fixture(&format!("manifests/{file}"));
            let got = m
                .signing_input(profile)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{name} {profile}"
            );
            assert_eq!(
                auspex_wire::sha256_hex(&got),
                s(case, &format!("signing_input_{tag}_sha256"))
            );
            assert_eq!(
                b64(&key.sign(&got).to_bytes()),
                s(case, &format!("signature_b64_{tag}"))
            );
        }
    }
    let want: std::collections::BTreeSet<String> =
        ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"]
            .iter()
            .map(|v| (*v).to_owned())
            .collect();
    assert_eq!(versions, want);
}
