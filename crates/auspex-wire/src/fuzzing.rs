//! Entry points shared by the cargo-fuzz targets in `fuzz/` and by the tests
//! that replay their corpora. Each takes arbitrary bytes, must never panic, and
//! asserts the properties that hold for every input.

use crate::json;

/// JSON parse + canonical encoding: the canonical form of any accepted input
/// is itself accepted and is a fixed point of parse → encode.
#[allow(clippy::panic)]
pub fn json_canonical(data: &[u8]) {
    let Ok(v) = json::parse(data) else { return };
    let once = json::canonical(&v);
    assert!(once.is_ascii(), "canonical JSON must be pure ASCII");
    let again = match json::parse_str(&once) {
        Ok(v2) => json::canonical(&v2),
        Err(e) => panic!("canonical output does not parse: {e}: {once}"),
    };
    assert_eq!(once, again, "canonical form is not a fixed point");
    // The Pydantic layouts must not panic either, and must parse back.
    let compact = json::pydantic_compact(&v);
    let _ = json::pydantic_indent(&v);
    let _ = json::python_indent(&v);
    assert!(
        json::parse_str(&compact).is_ok(),
        "pydantic output does not parse: {compact}"
    );
}

/// Manifest parsing and validation; for a valid manifest, both signing
/// layouts (where they apply) and the manifest hash.
pub fn manifest_validate(data: &[u8]) {
    if let Ok(m) = crate::manifest::parse_manifest(data) {
        let _ = m.signing_input(crate::manifest::SdkProfile::V0_5_5);
        let _ = m.signing_input(crate::manifest::SdkProfile::V0_6_67);
        let hash = m.manifest_hash();
        assert_eq!(hash.len(), 64);
    }
}
