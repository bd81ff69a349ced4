//! The shared vectors made with the official SDK, replayed byte for byte.

use auspex_wire::json::{self, Value};

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

#[test]
fn canonical_json_and_unit_payload_sha256() {
    let doc = vectors("canonical_json_and_unit_payload_sha256.json");
    let cases = doc.get("cases").and_then(Value::as_array).expect("cases");
    assert_eq!(cases.len(), 6);
    for case in cases {
        let want = s(case, "canonical_json");
        // The canonical text is itself JSON: parsing it and encoding again must
        // give the same bytes (Python semantics survive the round trip).
        let parsed = json::parse_str(want).expect("canonical text parses");
        assert_eq!(json::canonical(&parsed), want);
        assert_eq!(
            json::canonical_sha256(&parsed),
            s(case, "unit_payload_sha256")
        );
        assert_eq!(
            auspex_wire::hex_lower(want.as_bytes()),
            s(case, "canonical_json_hex")
        );
    }
}
