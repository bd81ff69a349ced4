//! What an entry body commits to: the artifact digest inside the canonical
//! entry JSON that Rekor stores (and hashes into the tree).
//!
//! | kind | apiVersion | digest member |
//! | --- | --- | --- |
//! | `rekord` | 0.0.1 | `spec.data.hash` (what the current coordinator posts) |
//! | `hashedrekord` | 0.0.1 | `spec.data.hash` |
//! | `intoto` | 0.0.1, 0.0.2 | `spec.content.hash` (what older coordinators posted) |
//!
//! The digest member must be `{"algorithm": "sha256", "value": <64 hex>}`;
//! the value is compared case-insensitively, as the official SDK does. Any
//! other kind or version is refused rather than guessed at.

use auspex_wire::json::{self, Value};
use thiserror::Error;

use super::entry::decode_hex32;

/// Why the body does not (or cannot be shown to) commit to the artifact.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is not JSON.
    #[error("entry body is not JSON: {0}")]
    Json(#[from] json::ParseError),
    /// A member is absent or has the wrong type.
    #[error("entry body: {path} is {found}, expected {expected}")]
    Shape {
        /// The member's path.
        path: &'static str,
        /// What was wanted.
        expected: &'static str,
        /// What was found (`absent` or a JSON type).
        found: &'static str,
    },
    /// A kind/apiVersion pair whose digest location is unknown.
    #[error(
        "entry kind {kind:?} apiVersion {api_version:?} is not supported (rekord 0.0.1, hashedrekord 0.0.1, intoto 0.0.1/0.0.2 are)"
    )]
    UnsupportedKind {
        /// `kind`.
        kind: String,
        /// `apiVersion`.
        api_version: String,
    },
    /// The digest algorithm is not SHA-256.
    #[error("entry body digest algorithm is {0:?}, not \"sha256\"")]
    Algorithm(String),
    /// The digest value is not 64 hex digits.
    #[error("entry body digest {0:?} is not 64 hex digits")]
    DigestFormat(String),
    /// The body commits to another artifact.
    #[error("entry body commits to sha256 {committed}, not to the artifact's {artifact}")]
    Mismatch {
        /// The digest in the body.
        committed: String,
        /// The artifact's digest.
        artifact: String,
    },
}

/// The artifact SHA-256 the body commits to.
pub fn committed_sha256(body: &[u8]) -> Result<[u8; 32], BodyError> {
    let doc = json::parse(body)?;
    let kind = str_at(&doc, &["kind"], "kind")?;
    let api_version = str_at(&doc, &["apiVersion"], "apiVersion")?;
    let (hash_path, alg_path, value_path): (&[&str], &'static str, &'static str) =
        match (kind, api_version) {
            ("rekord" | "hashedrekord", "0.0.1") => (
                &["spec", "data", "hash"],
                "spec.data.hash.algorithm",
                "spec.data.hash.value",
            ),
            ("intoto", "0.0.1" | "0.0.2") => (
                &["spec", "content", "hash"],
                "spec.content.hash.algorithm",
                "spec.content.hash.value",
            ),
            _ => {
                return Err(BodyError::UnsupportedKind {
                    kind: kind.to_owned(),
                    api_version: api_version.to_owned(),
                });
            }
        };
    let mut node = &doc;
    for key in hash_path {
        node = node.get(key).unwrap_or(&Value::Null);
    }
    let algorithm = str_at(node, &["algorithm"], alg_path)?;
    if algorithm != "sha256" {
        return Err(BodyError::Algorithm(algorithm.to_owned()));
    }
    let value = str_at(node, &["value"], value_path)?;
    decode_hex32(value).ok_or_else(|| BodyError::DigestFormat(value.chars().take(80).collect()))
}

/// Checks that the body commits to `artifact_sha256`.
pub fn check_artifact(body: &[u8], artifact_sha256: &[u8; 32]) -> Result<(), BodyError> {
    let committed = committed_sha256(body)?;
    if committed != *artifact_sha256 {
        return Err(BodyError::Mismatch {
            committed: auspex_wire::hex_lower(&committed),
            artifact: auspex_wire::hex_lower(artifact_sha256),
        });
    }
    Ok(())
}

fn str_at<'a>(v: &'a Value, path: &[&str], name: &'static str) -> Result<&'a str, BodyError> {
    let mut node = Some(v);
    for key in path {
        node = node.and_then(|n| n.get(key));
    }
    match node {
        Some(Value::String(s)) => Ok(s),
        other => Err(BodyError::Shape {
            path: name,
            expected: "a string",
            found: other.map_or("absent", Value::type_name),
        }),
    }
}
