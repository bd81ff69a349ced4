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
    v.get(key).and_then(Value::as_str).unwrap_or_else(|| panic!("string member {key}"))
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
                    reason_mismatch.push(format!("{input:?}\n    py: {reason}\n    rs: {}", e.reason));
                }
            }
            _ => accept_mismatch.push(format!("{input:?}: python {want:?} / {:?} ; rust {got:?}", case.get("error"))),
        }
    }
    eprintln!("REASONS:\n{}", reason_mismatch.join("\n"));
    assert!(accept_mismatch.is_empty(), "{}", accept_mismatch.join("\n"));
}
