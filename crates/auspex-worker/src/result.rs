//! The signed result (`worker.md` §2.7, §4): schema v3 canonical bytes via
//! `auspex_crypto::worker_sig::SignedResult`, Ed25519 with the worker key,
//! and the upload body in the official emission order.

use auspex_crypto::keys::TenantKey;
use auspex_crypto::worker_sig::{SchemaVersion, SignedResult};
use auspex_wire::json::{self, Object, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::config::Fault;
use crate::exec::ExecutorReport;
use crate::jsonfmt;

/// A result ready to upload (and to re-upload: retries send the same signed
/// fields without the detached raw response).
#[derive(Debug, Clone, PartialEq)]
pub struct SignedUpload {
    /// The unit.
    pub unit_id: String,
    /// The lease's assignment id.
    pub assignment_id: Option<String>,
    /// The exact body of the first attempt.
    pub body: Vec<u8>,
    /// The body of later attempts (no `raw_response` / `raw_signature`).
    pub retry_body: Vec<u8>,
    /// `sha256(canonical({"exit_code", "payload"}))` — the consensus key.
    pub semantic_hash: String,
    /// SHA-256 of the signed canonical bytes — the receipt anchor.
    pub result_sha256: String,
}

fn b64_sign(key: &TenantKey, bytes: &[u8]) -> String {
    STANDARD.encode(key.sign(bytes))
}

/// What the unit's inference broker attests (`worker.md` §4.3): nothing
/// for a unit without one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Served {
    /// `{model_id: gguf_sha256}` of the served model (`{}`: none).
    pub weights: Object,
    /// The distinct sampler chains the broker sent, first-seen order.
    pub generation_options: Vec<Value>,
}

/// Signs the executor's report as schema v3 and lays out the upload body:
/// `unit_id, worker_pubkey, completed_at, exit_code, payload,
/// worker_signature, assignment_id, schema_version, served_weights,
/// ran_under, generation_options[, raw_response, raw_signature]`, for a
/// unit without inference (`served_weights` `{}`, `generation_options`
/// `[]`). [`Fault::WrongAnswer`] perturbs the payload before signing;
/// [`Fault::Garbage`] signs other bytes.
pub fn sign_report(
    key: &TenantKey,
    unit_id: &str,
    assignment_id: Option<&str>,
    report: &ExecutorReport,
    ran_under: &str,
    fault: Option<Fault>,
) -> SignedUpload {
    sign_report_served(
        key,
        unit_id,
        assignment_id,
        report,
        ran_under,
        &Served::default(),
        fault,
    )
}

/// [`sign_report`] with what the inference broker served.
pub fn sign_report_served(
    key: &TenantKey,
    unit_id: &str,
    assignment_id: Option<&str>,
    report: &ExecutorReport,
    ran_under: &str,
    served: &Served,
    fault: Option<Fault>,
) -> SignedUpload {
    let pubkey = key.public_hex();
    let mut payload = report.payload.clone();
    if fault == Some(Fault::WrongAnswer) {
        payload.insert("auspex_injected_fault".into(), Value::from("wrong-answer"));
    }
    let payload = Value::Object(payload);
    // Digests are lowercase on the wire and in the signed body.
    let weights: Object = served
        .weights
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => Value::from(s.to_ascii_lowercase()),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    let signed = SignedResult {
        schema_version: SchemaVersion::V3,
        served_weights: Some(&weights),
        ran_under: Some(ran_under),
        generation_options: Some(&served.generation_options),
        ..SignedResult::v0(
            unit_id,
            &pubkey,
            &report.completed_at,
            report.exit_code,
            &payload,
        )
    };
    let canonical = signed.canonical_bytes();
    let signature = if fault == Some(Fault::Garbage) {
        b64_sign(key, b"garbage: not the canonical result bytes")
    } else {
        b64_sign(key, &canonical)
    };
    let mut body = Object::new();
    body.insert("unit_id".into(), Value::from(unit_id));
    body.insert("worker_pubkey".into(), Value::from(pubkey.as_str()));
    body.insert(
        "completed_at".into(),
        Value::from(report.completed_at.as_str()),
    );
    body.insert("exit_code".into(), Value::from(report.exit_code));
    body.insert("payload".into(), payload.clone());
    body.insert("worker_signature".into(), Value::from(signature));
    if let Some(a) = assignment_id {
        body.insert("assignment_id".into(), Value::from(a));
    }
    body.insert("schema_version".into(), Value::from(3u64));
    body.insert("served_weights".into(), Value::Object(weights.clone()));
    body.insert("ran_under".into(), Value::from(ran_under));
    body.insert(
        "generation_options".into(),
        Value::Array(served.generation_options.clone()),
    );
    let retry_body = jsonfmt::compact(&Value::Object(body.clone())).into_bytes();
    if let Some(raw) = &report.raw_response {
        // §4.6: a detached signature over the raw text's digest.
        let mut r = Object::new();
        r.insert(
            "raw_response_sha256".into(),
            Value::from(auspex_wire::sha256_hex(raw.as_bytes())),
        );
        r.insert("unit_id".into(), Value::from(unit_id));
        r.insert("worker_pubkey".into(), Value::from(pubkey.as_str()));
        let raw_sig = b64_sign(key, json::canonical(&Value::Object(r)).as_bytes());
        body.insert("raw_response".into(), Value::from(raw.as_str()));
        body.insert("raw_signature".into(), Value::from(raw_sig));
    }
    SignedUpload {
        unit_id: unit_id.to_owned(),
        assignment_id: assignment_id.map(str::to_owned),
        body: jsonfmt::compact(&Value::Object(body)).into_bytes(),
        retry_body,
        semantic_hash: signed.semantic_hash(),
        result_sha256: auspex_wire::sha256_hex(&canonical),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auspex_crypto::worker_sig::verify_row;

    fn report(payload: &str) -> ExecutorReport {
        let p = match json::parse(payload.as_bytes()) {
            Ok(Value::Object(o)) => o,
            _ => Object::new(),
        };
        ExecutorReport {
            completed_at: "2026-07-01T12:00:00.000001Z".into(),
            exit_code: 0,
            payload: p,
            raw_response: None,
        }
    }

    #[test]
    fn matches_the_spec_vector_and_verifies() {
        // worker.md §4.7 with no served weights / chains: the v3 body with
        // `{}` and `[]` still verifies and hashes semantically as §5 says.
        let key = TenantKey::from_seed([1; 32]);
        let r = report(r#"{"score": 0.5, "label": "é", "n": 3, "xs": [1.0, 1e-05, 1e16]}"#);
        let up = sign_report(&key, "u-0001", Some("asg-1"), &r, "strict", None);
        assert_eq!(
            up.semantic_hash,
            "950cfd33f64c9b99a541da597a766fa214785a27cb1a951f0194bd57b4c22383"
        );
        let text = String::from_utf8(up.body.clone()).expect("ascii");
        assert!(text.starts_with(
            r#"{"unit_id":"u-0001","worker_pubkey":"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c","completed_at":"2026-07-01T12:00:00.000001Z","exit_code":0,"payload":{"score":0.5,"label":"\u00e9","n":3,"xs":[1.0,1e-05,1e+16]},"worker_signature":""#
        ));
        assert!(text.ends_with(
            r#","assignment_id":"asg-1","schema_version":3,"served_weights":{},"ran_under":"strict","generation_options":[]}"#
        ));
        let body = json::parse(&up.body).expect("json");
        let signed = SignedResult::from_value(&body).expect("fields");
        let sig = body
            .get("worker_signature")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(verify_row(&signed, sig).is_ok());
        assert_eq!(up.body, up.retry_body);
    }

    #[test]
    fn served_weights_and_chains_match_the_spec_vector() {
        // worker.md §4.7: the v3 vector with served weights and one greedy
        // chain (in the order the broker emits it; signing sorts keys).
        let key = TenantKey::from_seed([1; 32]);
        let r = report(r#"{"score": 0.5, "label": "é", "n": 3, "xs": [1.0, 1e-05, 1e16]}"#);
        let p = crate::broker::GenerationPolicy::greedy();
        let chain = crate::broker::policy::sanitize_options(
            Some(&json::parse(br#"{"num_predict": 16}"#).expect("json")),
            &p,
        )
        .expect("chain");
        let mut weights = Object::new();
        weights.insert("tiny".into(), Value::from("AB".repeat(32)));
        let served = Served {
            weights,
            generation_options: vec![Value::Object(chain)],
        };
        let up = sign_report_served(&key, "u-0001", None, &r, "permissive", &served, None);
        assert_eq!(
            up.result_sha256,
            "dcbd62634c7c06d4695a57629979edcf1804c5b76d309f306404f1ab750fd795"
        );
        let body = json::parse(&up.body).expect("json");
        assert_eq!(
            body.get("worker_signature").and_then(Value::as_str),
            Some(
                "xlI6bG2MB6AuLSAD75iznvW4zF6fgp+1WQyYJU67sGUiFyHnjHNXVxlqVaZ1zLx4ZASBgor5JFKXwcVk+wwrBw=="
            )
        );
        let text = String::from_utf8(up.body.clone()).expect("ascii");
        assert!(text.ends_with(&format!(
            r#""schema_version":3,"served_weights":{{"tiny":"{}"}},"ran_under":"permissive","generation_options":[{{"top_k":1,"top_p":1.0,"min_p":0.0,"typical_p":1.0,"repeat_penalty":1.0,"repeat_last_n":0,"presence_penalty":0.0,"frequency_penalty":0.0,"mirostat":0,"temperature":0,"seed":0,"num_predict":16}}]}}"#,
            "ab".repeat(32)
        )));
    }

    #[test]
    fn faults_are_applied_before_or_instead_of_signing() {
        let key = TenantKey::from_seed([2; 32]);
        let r = report(r#"{"v": 1}"#);
        let honest = sign_report(&key, "u", None, &r, "strict", None);
        let wrong = sign_report(&key, "u", None, &r, "strict", Some(Fault::WrongAnswer));
        assert_ne!(honest.semantic_hash, wrong.semantic_hash);
        let body = json::parse(&wrong.body).expect("json");
        let sig = body
            .get("worker_signature")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(verify_row(&SignedResult::from_value(&body).expect("fields"), sig).is_ok());
        let garbage = sign_report(&key, "u", None, &r, "strict", Some(Fault::Garbage));
        let body = json::parse(&garbage.body).expect("json");
        let sig = body
            .get("worker_signature")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(verify_row(&SignedResult::from_value(&body).expect("fields"), sig).is_err());
    }

    #[test]
    fn raw_response_is_detached_on_the_first_attempt_only() {
        let key = TenantKey::from_seed([1; 32]);
        let mut r = report(r#"{"v": 1}"#);
        r.raw_response = Some("hello".into());
        let up = sign_report(&key, "u-0001", None, &r, "strict", None);
        let body = json::parse(&up.body).expect("json");
        assert_eq!(
            body.get("raw_signature").and_then(Value::as_str),
            Some(
                "GwrLR/nWwYOt6yUA2e4EHmyC2bIkZQ6EPoizHsbMqFeEmSaos+yfiOTIwT0VZQg+zqMULtMq4hKcwIU98CE8Bg=="
            )
        );
        let retry = json::parse(&up.retry_body).expect("json");
        assert!(retry.get("raw_response").is_none());
    }
}
