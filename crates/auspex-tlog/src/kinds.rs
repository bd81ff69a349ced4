//! Proposed entries (`POST /api/v1/log/entries`) and the canonical bodies
//! the log stores for them, as Rekor v1 computes them.
//!
//! | kind | apiVersion | proposed | stored (canonical) body |
//! | --- | --- | --- | --- |
//! | `rekord` | 0.0.1 | `spec.data.content` (base64 artifact, optional `spec.data.hash` that must match), `spec.signature {format: "x509", content, publicKey.content}` (base64 detached signature, base64 PEM public key) | `spec.data.hash` = SHA-256 of the artifact, the signature, the key re-encoded as PEM; the artifact itself is not stored |
//! | `intoto` | 0.0.2 | `spec.content.envelope` as a DSSE envelope object `{payload, payloadType, signatures: [{sig, publicKey, keyid?}]}` | `spec.content.envelope {payloadType, signatures}`, `spec.content.hash` = SHA-256 of the envelope (Go `json.Marshal` form), `spec.content.payloadHash` = SHA-256 of the payload |
//! | `intoto` | 0.0.2 | `spec.content.envelope` as a base64 **string** (what older AuspexAI coordinators posted: the COSE attestation) with an optional `spec.content.payloadType` | `spec.content.hash` = SHA-256 of the decoded envelope, `spec.content.envelope.payloadType` if given; a devnet extension, public Rekor refuses it |
//!
//! As Rekor does, the log verifies what it is given before accepting it:
//! the `rekord` signature over the artifact (`x509` format with a PEM
//! `PUBLIC KEY`: Ed25519 over the bytes, ECDSA P-256 over their SHA-256), and
//! every DSSE signature over the envelope's pre-authentication encoding.
//! Certificates, RSA keys, PGP/minisign/SSH formats and `data.url` are
//! refused (400) rather than half-supported. Bodies are written as Rekor's
//! Go encoder writes them (keys in struct order, which for these types is
//! sorted order; no insignificant whitespace): [`rekord_body`] is shared
//! with `auspex_crypto`'s test log.

use auspex_crypto::tlog::testlog::rekord_body;
use auspex_crypto::tlog::{KEY_DETAILS_ED25519, KEY_DETAILS_P256, LogKey};
use auspex_wire::json::{self, Object, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// At most this many DSSE signatures per envelope.
pub const MAX_DSSE_SIGNATURES: usize = 16;
/// The longest `payloadType` / `keyid` accepted.
pub const MAX_LABEL_CHARS: usize = 256;
/// The largest public key (PEM) or signature accepted, in bytes.
pub const MAX_KEY_OR_SIGNATURE_BYTES: usize = 64 * 1024;

/// Why a proposed entry is refused (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProposalError {
    /// The request body is not JSON.
    #[error("the proposed entry is not JSON: {0}")]
    Json(String),
    /// A member is absent or of the wrong type.
    #[error("{path} is {found}, expected {expected}")]
    Shape {
        /// The member's path (`spec.signature.content`).
        path: String,
        /// What was wanted.
        expected: &'static str,
        /// `absent` or the JSON type found.
        found: &'static str,
    },
    /// A kind this log does not take.
    #[error(
        "entry kind {kind:?} apiVersion {api_version:?} is not supported by this log \
         (rekord 0.0.1 and intoto 0.0.2 are)"
    )]
    Unsupported {
        /// `kind`.
        kind: String,
        /// `apiVersion`.
        api_version: String,
    },
    /// A base64 member does not decode.
    #[error("{0} is not standard base64")]
    Base64(String),
    /// A member is empty or too large.
    #[error("{path}: {reason}")]
    Size {
        /// The member.
        path: String,
        /// Why.
        reason: String,
    },
    /// A feature of the kind this log does not support.
    #[error("{0}")]
    NotSupported(String),
    /// A value is malformed.
    #[error("{path}: {reason}")]
    Invalid {
        /// The member.
        path: String,
        /// Why.
        reason: String,
    },
    /// The given digest is not the artifact's.
    #[error("{path} is {given} but the content hashes to {computed}")]
    HashMismatch {
        /// The member.
        path: &'static str,
        /// The digest given.
        given: String,
        /// The digest of the content.
        computed: String,
    },
    /// A signature does not verify.
    #[error("{path}: signature does not verify with the given public key: {reason}")]
    Signature {
        /// The signature's member.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Proposed entries nest a few levels; deeper input is refused before the
/// (recursive) JSON parser sees it.
pub const MAX_NESTING: usize = 32;

/// Checks a proposed entry and returns the canonical body the log stores.
pub fn canonical_body(proposed: &[u8]) -> Result<Vec<u8>, ProposalError> {
    check_nesting(proposed)?;
    let doc = json::parse(proposed).map_err(|e| ProposalError::Json(e.to_string()))?;
    let top = obj(&doc, "the proposed entry")?;
    let kind = string(top, "kind", "kind")?;
    let api_version = string(top, "apiVersion", "apiVersion")?;
    match (kind, api_version) {
        ("rekord", "0.0.1") => rekord(obj(member(top, "spec", "spec")?, "spec")?),
        ("intoto", "0.0.2") => intoto(obj(member(top, "spec", "spec")?, "spec")?),
        _ => Err(ProposalError::Unsupported {
            kind: truncate(kind),
            api_version: truncate(api_version),
        }),
    }
}

/// Refuses JSON text nested deeper than [`MAX_NESTING`] (a linear scan that
/// skips strings; the parser reports every other syntax error).
fn check_nesting(text: &[u8]) -> Result<(), ProposalError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(ProposalError::Json(format!(
                        "nested deeper than {MAX_NESTING} levels"
                    )));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn rekord(spec: &Object) -> Result<Vec<u8>, ProposalError> {
    let sig = obj(
        member(spec, "signature", "spec.signature")?,
        "spec.signature",
    )?;
    let format = string(sig, "format", "spec.signature.format")?;
    if format != "x509" {
        return Err(ProposalError::NotSupported(format!(
            "spec.signature.format {:?} is not supported (x509 is)",
            truncate(format)
        )));
    }
    let signature = b64(sig, "content", "spec.signature.content")?;
    bounded(&signature, "spec.signature.content")?;
    let pk = obj(
        member(sig, "publicKey", "spec.signature.publicKey")?,
        "spec.signature.publicKey",
    )?;
    let pem = b64(pk, "content", "spec.signature.publicKey.content")?;
    bounded(&pem, "spec.signature.publicKey.content")?;
    let key = public_key(&pem, "spec.signature.publicKey.content")?;

    let data = obj(member(spec, "data", "spec.data")?, "spec.data")?;
    if data.get("content").is_none_or(|v| *v == Value::Null) {
        if data.get("url").is_some_and(|v| *v != Value::Null) {
            return Err(ProposalError::NotSupported(
                "spec.data.url is not supported: send the artifact as spec.data.content".into(),
            ));
        }
        return Err(ProposalError::Shape {
            path: "spec.data.content".into(),
            expected: "a string",
            found: "absent",
        });
    }
    let content = b64(data, "content", "spec.data.content")?;
    if content.is_empty() {
        return Err(ProposalError::Size {
            path: "spec.data.content".into(),
            reason: "the artifact is empty".into(),
        });
    }
    let digest: [u8; 32] = Sha256::digest(&content).into();
    if let Some(h) = data.get("hash").filter(|v| **v != Value::Null) {
        check_hash(h, &digest, "spec.data.hash")?;
    }
    key.verify(&content, &signature)
        .map_err(|e| ProposalError::Signature {
            path: "spec.signature.content".into(),
            reason: e.to_string(),
        })?;
    let canonical_pem = public_key_pem(&key)?;
    Ok(rekord_body(&digest, &signature, canonical_pem.as_bytes()))
}

fn intoto(spec: &Object) -> Result<Vec<u8>, ProposalError> {
    let content = obj(member(spec, "content", "spec.content")?, "spec.content")?;
    match member(content, "envelope", "spec.content.envelope")? {
        Value::String(s) => intoto_legacy(content, s),
        Value::Object(env) => intoto_dsse(content, env),
        other => Err(ProposalError::Shape {
            path: "spec.content.envelope".into(),
            expected: "a DSSE envelope object (or a base64 string)",
            found: other.type_name(),
        }),
    }
}

fn intoto_legacy(content: &Object, envelope: &str) -> Result<Vec<u8>, ProposalError> {
    let artifact = STANDARD
        .decode(envelope)
        .map_err(|_| ProposalError::Base64("spec.content.envelope".into()))?;
    if artifact.is_empty() {
        return Err(ProposalError::Size {
            path: "spec.content.envelope".into(),
            reason: "the envelope is empty".into(),
        });
    }
    let digest: [u8; 32] = Sha256::digest(&artifact).into();
    if let Some(h) = content.get("hash").filter(|v| **v != Value::Null) {
        check_hash(h, &digest, "spec.content.hash")?;
    }
    let payload_type = match content.get("payloadType") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(label(s, "spec.content.payloadType")?),
        Some(other) => {
            return Err(ProposalError::Shape {
                path: "spec.content.payloadType".into(),
                expected: "a string",
                found: other.type_name(),
            });
        }
    };
    let mut c = Object::new();
    if let Some(pt) = payload_type {
        let mut env = Object::new();
        env.insert("payloadType".into(), Value::from(pt));
        c.insert("envelope".into(), Value::Object(env));
    }
    c.insert("hash".into(), sha256_member(&digest));
    Ok(body("intoto", "0.0.2", "content", c))
}

fn intoto_dsse(content: &Object, env: &Object) -> Result<Vec<u8>, ProposalError> {
    const E: &str = "spec.content.envelope";
    let payload_b64 = string(env, "payload", &format!("{E}.payload"))?;
    let payload = STANDARD
        .decode(payload_b64)
        .map_err(|_| ProposalError::Base64(format!("{E}.payload")))?;
    let payload_type = label(
        string(env, "payloadType", &format!("{E}.payloadType"))?,
        &format!("{E}.payloadType"),
    )?;
    let sigs = match member(env, "signatures", &format!("{E}.signatures"))? {
        Value::Array(items) => items,
        other => {
            return Err(ProposalError::Shape {
                path: format!("{E}.signatures"),
                expected: "an array",
                found: other.type_name(),
            });
        }
    };
    if sigs.is_empty() || sigs.len() > MAX_DSSE_SIGNATURES {
        return Err(ProposalError::Size {
            path: format!("{E}.signatures"),
            reason: format!(
                "has {} signatures, expected 1 to {MAX_DSSE_SIGNATURES}",
                sigs.len()
            ),
        });
    }
    let pae = dsse_pae(payload_type, &payload);
    let mut canonical_sigs = Vec::new();
    let mut go_sigs = Vec::new();
    for (i, s) in sigs.iter().enumerate() {
        let path = format!("{E}.signatures[{i}]");
        let s = obj(s, &path)?;
        let sig = b64(s, "sig", &format!("{path}.sig"))?;
        bounded(&sig, &format!("{path}.sig"))?;
        let pem = b64(s, "publicKey", &format!("{path}.publicKey"))?;
        bounded(&pem, &format!("{path}.publicKey"))?;
        let key = public_key(&pem, &format!("{path}.publicKey"))?;
        let keyid = match s.get("keyid") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(label(k, &format!("{path}.keyid"))?),
            Some(other) => {
                return Err(ProposalError::Shape {
                    path: format!("{path}.keyid"),
                    expected: "a string",
                    found: other.type_name(),
                });
            }
        };
        key.verify(&pae, &sig)
            .map_err(|e| ProposalError::Signature {
                path: format!("{path}.sig"),
                reason: e.to_string(),
            })?;
        let sig_b64 = STANDARD.encode(&sig);
        let mut o = Object::new();
        if let Some(k) = keyid.filter(|k| !k.is_empty()) {
            o.insert("keyid".into(), Value::from(k));
        }
        o.insert("publicKey".into(), Value::from(STANDARD.encode(&pem)));
        o.insert("sig".into(), Value::from(sig_b64.as_str()));
        canonical_sigs.push(Value::Object(o));
        go_sigs.push((keyid.unwrap_or(""), sig_b64));
    }
    // The envelope as Go's json.Marshal writes a DSSE `Envelope` struct.
    let mut go = String::from("{\"payloadType\":");
    go_string(payload_type, &mut go);
    go.push_str(",\"payload\":");
    go_string(&STANDARD.encode(&payload), &mut go);
    go.push_str(",\"signatures\":[");
    for (i, (keyid, sig)) in go_sigs.iter().enumerate() {
        if i > 0 {
            go.push(',');
        }
        go.push_str("{\"keyid\":");
        go_string(keyid, &mut go);
        go.push_str(",\"sig\":");
        go_string(sig, &mut go);
        go.push('}');
    }
    go.push_str("]}");
    let env_digest: [u8; 32] = Sha256::digest(go.as_bytes()).into();
    if let Some(h) = content.get("hash").filter(|v| **v != Value::Null) {
        check_hash(h, &env_digest, "spec.content.hash")?;
    }
    let payload_digest: [u8; 32] = Sha256::digest(&payload).into();
    if let Some(h) = content.get("payloadHash").filter(|v| **v != Value::Null) {
        check_hash(h, &payload_digest, "spec.content.payloadHash")?;
    }
    let mut e = Object::new();
    e.insert("payloadType".into(), Value::from(payload_type));
    e.insert("signatures".into(), Value::Array(canonical_sigs));
    let mut c = Object::new();
    c.insert("envelope".into(), Value::Object(e));
    c.insert("hash".into(), sha256_member(&env_digest));
    c.insert("payloadHash".into(), sha256_member(&payload_digest));
    Ok(body("intoto", "0.0.2", "content", c))
}

/// DSSE v1 pre-authentication encoding.
fn dsse_pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    v.extend_from_slice(payload);
    v
}

/// A string as Go's `encoding/json` writes it (the caller has refused
/// control characters).
fn go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn body(kind: &str, api_version: &str, spec_key: &str, inner: Object) -> Vec<u8> {
    let mut spec = Object::new();
    spec.insert(spec_key.into(), Value::Object(inner));
    let mut o = Object::new();
    o.insert("apiVersion".into(), Value::from(api_version));
    o.insert("kind".into(), Value::from(kind));
    o.insert("spec".into(), Value::Object(spec));
    json::canonical(&Value::Object(o)).into_bytes()
}

fn sha256_member(digest: &[u8; 32]) -> Value {
    let mut h = Object::new();
    h.insert("algorithm".into(), Value::from("sha256"));
    h.insert("value".into(), Value::from(auspex_wire::hex_lower(digest)));
    Value::Object(h)
}

/// A public key in the PEM form Rekor stores (`PUBLIC KEY`, 64-column base64).
pub fn public_key_pem(key: &LogKey) -> Result<String, ProposalError> {
    let der = key.spki_der().map_err(|e| ProposalError::Invalid {
        path: "publicKey".into(),
        reason: e.to_string(),
    })?;
    Ok(pem_encode("PUBLIC KEY", &der))
}

/// PEM armour around `der`.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(chunk));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// The first PEM block of `text`: its label and decoded bytes.
pub(crate) fn pem_decode(text: &str) -> Option<(String, Vec<u8>)> {
    let mut lines = text.lines().map(str::trim);
    let label = loop {
        let line = lines.next()?;
        if let Some(l) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            break l.to_owned();
        }
    };
    let end = format!("-----END {label}-----");
    let mut b64 = String::new();
    for line in lines {
        if line == end {
            return STANDARD.decode(&b64).ok().map(|der| (label, der));
        }
        b64.push_str(line);
    }
    None
}

fn public_key(pem: &[u8], path: &str) -> Result<LogKey, ProposalError> {
    let invalid = |reason: &str| ProposalError::Invalid {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let text = std::str::from_utf8(pem).map_err(|_| invalid("not a PEM text"))?;
    let (label, der) = pem_decode(text).ok_or_else(|| invalid("not a PEM block"))?;
    match label.as_str() {
        "PUBLIC KEY" => {}
        "CERTIFICATE" => {
            return Err(ProposalError::NotSupported(format!(
                "{path}: certificates are not supported by this log; send the PEM public key"
            )));
        }
        other => {
            return Err(invalid(&format!(
                "PEM block {:?} is not a PUBLIC KEY",
                truncate(other)
            )));
        }
    }
    for details in [KEY_DETAILS_ED25519, KEY_DETAILS_P256] {
        if let Ok(Some(k)) = LogKey::from_spki_der(&der, details) {
            return Ok(k);
        }
    }
    Err(ProposalError::NotSupported(format!(
        "{path}: only Ed25519 and ECDSA P-256 public keys are supported"
    )))
}

fn check_hash(v: &Value, computed: &[u8; 32], path: &'static str) -> Result<(), ProposalError> {
    let o = obj(v, path)?;
    let alg = string(o, "algorithm", &format!("{path}.algorithm"))?;
    if alg != "sha256" {
        return Err(ProposalError::NotSupported(format!(
            "{path}.algorithm {:?} is not supported (sha256 is)",
            truncate(alg)
        )));
    }
    let given = string(o, "value", &format!("{path}.value"))?.to_ascii_lowercase();
    let want = auspex_wire::hex_lower(computed);
    if given != want {
        return Err(ProposalError::HashMismatch {
            path,
            given: truncate(&given),
            computed: want,
        });
    }
    Ok(())
}

fn label<'a>(s: &'a str, path: &str) -> Result<&'a str, ProposalError> {
    if s.chars().count() > MAX_LABEL_CHARS || s.chars().any(char::is_control) {
        return Err(ProposalError::Invalid {
            path: path.to_owned(),
            reason: format!(
                "must be at most {MAX_LABEL_CHARS} characters without control characters"
            ),
        });
    }
    Ok(s)
}

fn bounded(bytes: &[u8], path: &str) -> Result<(), ProposalError> {
    if bytes.is_empty() || bytes.len() > MAX_KEY_OR_SIGNATURE_BYTES {
        return Err(ProposalError::Size {
            path: path.to_owned(),
            reason: format!(
                "is {} bytes, expected 1 to {MAX_KEY_OR_SIGNATURE_BYTES}",
                bytes.len()
            ),
        });
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn obj<'a>(v: &'a Value, path: &str) -> Result<&'a Object, ProposalError> {
    v.as_object().ok_or_else(|| ProposalError::Shape {
        path: path.to_owned(),
        expected: "an object",
        found: v.type_name(),
    })
}

fn member<'a>(o: &'a Object, key: &str, path: &str) -> Result<&'a Value, ProposalError> {
    match o.get(key) {
        None | Some(Value::Null) => Err(ProposalError::Shape {
            path: path.to_owned(),
            expected: "present",
            found: "absent",
        }),
        Some(v) => Ok(v),
    }
}

fn string<'a>(o: &'a Object, key: &str, path: &str) -> Result<&'a str, ProposalError> {
    let v = member(o, key, path)?;
    v.as_str().ok_or_else(|| ProposalError::Shape {
        path: path.to_owned(),
        expected: "a string",
        found: v.type_name(),
    })
}

fn b64(o: &Object, key: &str, path: &str) -> Result<Vec<u8>, ProposalError> {
    STANDARD
        .decode(string(o, key, path)?)
        .map_err(|_| ProposalError::Base64(path.to_owned()))
}

#[cfg(test)]
mod tests {
    use auspex_crypto::tlog::testlog::LogSigner;

    use super::*;

    fn rekord_proposal(content: &[u8], signer: &LogSigner, sig: Option<Vec<u8>>) -> Vec<u8> {
        let sig = sig.unwrap_or_else(|| signer.sign(content));
        let pem = public_key_pem(&signer.public_key()).expect("pem");
        format!(
            r#"{{"apiVersion":"0.0.1","kind":"rekord","spec":{{"data":{{"content":"{}"}},"signature":{{"format":"x509","content":"{}","publicKey":{{"content":"{}"}}}}}}}}"#,
            STANDARD.encode(content),
            STANDARD.encode(sig),
            STANDARD.encode(pem)
        )
        .into_bytes()
    }

    #[test]
    fn rekord_body_is_rekors_canonical_form() {
        let signer = LogSigner::ed25519([9; 32]);
        let content = b"cose bytes";
        let body = canonical_body(&rekord_proposal(content, &signer, None)).expect("accepted");
        let pem = public_key_pem(&signer.public_key()).expect("pem");
        let want = rekord_body(
            &Sha256::digest(content).into(),
            &signer.sign(content),
            pem.as_bytes(),
        );
        assert_eq!(body, want);
        let text = String::from_utf8(body).expect("utf8");
        assert!(text.starts_with(r#"{"apiVersion":"0.0.1","kind":"rekord","spec":{"data":{"hash":{"algorithm":"sha256","value":""#));
        assert_eq!(
            auspex_crypto::tlog::committed_sha256(text.as_bytes()).expect("committed"),
            <[u8; 32]>::from(Sha256::digest(content))
        );
        // P-256 too.
        let p = LogSigner::ecdsa_p256([5; 32]).expect("p256");
        assert!(canonical_body(&rekord_proposal(content, &p, None)).is_ok());
    }

    #[test]
    fn rekord_refusals() {
        let signer = LogSigner::ed25519([9; 32]);
        let bad_sig = canonical_body(&rekord_proposal(b"x", &signer, Some(vec![0; 64])));
        assert!(
            matches!(bad_sig, Err(ProposalError::Signature { .. })),
            "{bad_sig:?}"
        );
        for (doc, want) in [
            (&b"not json"[..], "not JSON"),
            (b"[]", "expected an object"),
            (br#"{"kind":"rekord","apiVersion":"0.0.2","spec":{}}"#, "not supported"),
            (br#"{"kind":"hashedrekord","apiVersion":"0.0.1","spec":{}}"#, "not supported"),
            (br#"{"kind":"rekord","apiVersion":"0.0.1"}"#, "spec is absent"),
            (br#"{"kind":"rekord","apiVersion":"0.0.1","spec":{"signature":{"format":"pgp"}}}"#, "format"),
            (br#"{"kind":"rekord","apiVersion":"0.0.1","spec":{"signature":{"format":"x509","content":"!!","publicKey":{"content":""}}}}"#, "base64"),
            (br#"{"kind":"intoto","apiVersion":"0.0.2","spec":{"content":{"envelope":7}}}"#, "DSSE"),
            (br#"{"kind":"intoto","apiVersion":"0.0.2","spec":{"content":{"envelope":""}}}"#, "empty"),
            (&b"[".repeat(100_000), "nested deeper"),
        ] {
            let err = canonical_body(doc).expect_err("refused").to_string();
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        }
    }

    #[test]
    fn intoto_legacy_and_dsse() {
        let cose = b"\x84\x43\xa1\x01\x27";
        let doc = format!(
            r#"{{"apiVersion":"0.0.2","kind":"intoto","spec":{{"content":{{"envelope":"{}","payloadType":"application/vnd.in-toto+cbor"}}}}}}"#,
            STANDARD.encode(cose)
        );
        let body = canonical_body(doc.as_bytes()).expect("legacy accepted");
        assert_eq!(
            auspex_crypto::tlog::committed_sha256(&body).expect("committed"),
            <[u8; 32]>::from(Sha256::digest(cose))
        );

        let signer = LogSigner::ecdsa_p256([7; 32]).expect("p256");
        let payload = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;
        let pt = "application/vnd.in-toto+json";
        let sig = signer.sign(&dsse_pae(pt, payload));
        let pem = public_key_pem(&signer.public_key()).expect("pem");
        let doc = format!(
            r#"{{"apiVersion":"0.0.2","kind":"intoto","spec":{{"content":{{"envelope":{{"payload":"{}","payloadType":"{pt}","signatures":[{{"sig":"{}","publicKey":"{}"}}]}}}}}}}}"#,
            STANDARD.encode(payload),
            STANDARD.encode(&sig),
            STANDARD.encode(pem.as_bytes()),
        );
        let body = canonical_body(doc.as_bytes()).expect("dsse accepted");
        let v = json::parse(&body).expect("json");
        let content = v
            .get("spec")
            .and_then(|s| s.get("content"))
            .expect("content");
        assert!(content.get("payloadHash").is_some());
        assert!(
            content
                .get("envelope")
                .and_then(|e| e.get("payload"))
                .is_none()
        );
        let tampered = doc.replace(&STANDARD.encode(payload), &STANDARD.encode(b"other"));
        assert!(matches!(
            canonical_body(tampered.as_bytes()),
            Err(ProposalError::Signature { .. })
        ));
    }

    #[test]
    fn pem_round_trip() {
        let der: Vec<u8> = (0..=200u8).collect();
        let pem = pem_encode("PUBLIC KEY", &der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(pem_decode(&pem), Some(("PUBLIC KEY".to_owned(), der)));
        assert_eq!(pem_decode("nothing"), None);
        assert_eq!(pem_decode("-----BEGIN X-----\nAAAA\n"), None);
    }
}
