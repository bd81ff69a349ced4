//! The signed entry timestamp (SET): the log's signature, made when it
//! integrated the entry, over the entry's coordinates.
//!
//! Rekor (`pkg/api/entries.go`, verified by `pkg/verify.VerifySignedEntryTimestamp`
//! and sigstore-go) signs the **RFC 8785 (JCS)** canonical JSON of
//! `{body, integratedTime, logID, logIndex}`: Go's `json.Marshal` of a struct
//! with those four members, then `jsoncanonicalizer.Transform`. For these
//! values that is exactly
//!
//! ```text
//! {"body":"<base64 as received>","integratedTime":<int>,"logID":"<hex>","logIndex":<int>}
//! ```
//!
//! keys in UTF-16 order (`logID` before `logIndex`), strings with JCS
//! escaping (only `"`, `\` and control characters are escaped; Go's HTML
//! escaping of `<`, `>`, `&` is undone by the canonicaliser), integers in
//! ECMAScript form, which equals their decimal form up to 2^53; larger
//! values (which Rekor never produces) are refused rather than rounded the
//! way JCS would. `logIndex` is the index the entry carries (the log-wide
//! virtual index on a sharded Rekor), not the proof's.
//!
//! ECDSA keys sign SHA-256 of these bytes (DER signature); Ed25519 keys sign
//! the bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

use super::entry::RekorEntry;
use super::key::{LogKey, SignatureError};

/// The largest integer JCS writes as plain decimal (2^53).
const MAX_EXACT: u64 = 1 << 53;

/// Why the SET does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SetError {
    /// The entry has no `logID` to sign over.
    #[error("the entry has no logID, which the SET covers")]
    NoLogId,
    /// An integer has no exact RFC 8785 representation.
    #[error("{field} = {value} is beyond 2^53 and has no exact RFC 8785 form")]
    NotExact {
        /// `integratedTime` or `logIndex`.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// The SET is not base64.
    #[error("signedEntryTimestamp is not base64")]
    Encoding,
    /// The signature does not verify.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// The RFC 8785 bytes a SET signs.
pub fn set_payload(
    body_b64: &str,
    integrated_time: i64,
    log_id: &str,
    log_index: u64,
) -> Result<Vec<u8>, SetError> {
    if integrated_time.unsigned_abs() > MAX_EXACT {
        return Err(SetError::NotExact {
            field: "integratedTime",
            value: integrated_time.to_string(),
        });
    }
    if log_index > MAX_EXACT {
        return Err(SetError::NotExact {
            field: "logIndex",
            value: log_index.to_string(),
        });
    }
    let mut s = String::with_capacity(body_b64.len() + log_id.len() + 96);
    s.push_str("{\"body\":");
    write_jcs_string(body_b64, &mut s);
    s.push_str(",\"integratedTime\":");
    s.push_str(&integrated_time.to_string());
    s.push_str(",\"logID\":");
    write_jcs_string(log_id, &mut s);
    s.push_str(",\"logIndex\":");
    s.push_str(&log_index.to_string());
    s.push('}');
    Ok(s.into_bytes())
}

/// The SET payload of an entry.
pub fn entry_set_payload(entry: &RekorEntry) -> Result<Vec<u8>, SetError> {
    let log_id = entry.log_id.as_deref().ok_or(SetError::NoLogId)?;
    set_payload(
        &entry.body_b64,
        entry.integrated_time,
        log_id,
        entry.log_index,
    )
}

/// Verifies a base64 SET over the entry with the log's key.
pub fn verify_set(entry: &RekorEntry, set_b64: &str, key: &LogKey) -> Result<(), SetError> {
    let payload = entry_set_payload(entry)?;
    let sig = STANDARD.decode(set_b64).map_err(|_| SetError::Encoding)?;
    key.verify(&payload, &sig)?;
    Ok(())
}

/// RFC 8785 §3.2.2.2 string serialisation.
fn write_jcs_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_jcs() {
        let p = set_payload("a+/=", 1_700_000_000, "c0d2", 79_571_823).expect("payload");
        assert_eq!(
            String::from_utf8(p).expect("utf8"),
            r#"{"body":"a+/=","integratedTime":1700000000,"logID":"c0d2","logIndex":79571823}"#
        );
        let p = set_payload("<&>\"\\\u{1}\n\u{2028}é", -1, "x", 0).expect("payload");
        assert_eq!(
            String::from_utf8(p).expect("utf8"),
            "{\"body\":\"<&>\\\"\\\\\\u0001\\n\u{2028}é\",\"integratedTime\":-1,\"logID\":\"x\",\"logIndex\":0}"
        );
        assert!(set_payload("", 0, "", (1 << 53) + 1).is_err());
        assert!(set_payload("", 1 << 53, "", 1 << 53).is_ok());
    }
}
