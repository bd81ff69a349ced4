//! RFC 9421 HTTP message signatures: the AuspexAI signer, the coordinator's
//! verifier and a general RFC 9421 verifier (spec `tenant-sdk.md` §3b,
//! `coordinator.md` §2.2, `worker.md` §2.2).
//!
//! **Signing** ([`sign_request`]) produces byte for byte what the official
//! SDK 0.5.5 sends through httpx: label `sig1`, components `"@method"
//! "@path" "@authority"` plus `"content-digest"` when the body is non-empty,
//! `;created=N;alg="ed25519";keyid="<hex>"`. `@method` is uppercased,
//! `@path` is the target without its query, percent-decoded ([`sdk_path`]),
//! `@authority` is the lowercased `Host` value ([`authority_for`] computes it
//! from a URL's parts the way httpx does).
//!
//! **Verifying** parses `Signature-Input` and `Signature` as RFC 8941
//! dictionaries with the `sfv` parser, then runs named checks, each failing
//! with its own [`HttpSigError`] variant whose [`code`](HttpSigError::code)
//! is the coordinator's 401 code. [`verify_request`] enforces the
//! coordinator profile; [`verify_rfc9421`] verifies any Ed25519 request
//! signature with the RFC's own component rules (tested on RFC 9421 B.2.6
//! and B.4). [`ReplayCache`] adds the replay protection the coordinator
//! lacks.
//!
//! ```
//! use auspex_crypto::http_sig::{self, Policy, RequestParts};
//! use auspex_crypto::keys::TenantKey;
//! use auspex_crypto::manifest::parse_pubkey;
//!
//! let key = TenantKey::from_seed([7; 32]);
//! let body = br#"{"x":1}"#;
//! let signed = http_sig::sign_request(&key, "POST", "/api/v0/experiments", "coord.example", body, 1_700_000_000);
//!
//! let mut headers = vec![("host", "coord.example")];
//! headers.extend(signed.header_pairs());
//! let req = RequestParts::new("POST", "/api/v0/experiments", &headers, body);
//! let ok = http_sig::verify_request(&req, 1_700_000_100, parse_pubkey, &Policy::default()).unwrap();
//! assert_eq!(ok.keyid(), key.public_hex());
//!
//! let late = http_sig::verify_request(&req, 1_700_000_301, parse_pubkey, &Policy::default());
//! assert_eq!(late.unwrap_err().code(), "signature_expired");
//! ```
//!
//! Never prints, never does I/O.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::keys::TenantKey;

mod components;
mod error;
mod parse;
mod replay;
mod verify;

#[cfg(test)]
mod tests;

pub use components::{
    Derivation, KNOWN_STRUCTURED_FIELDS, RequestParts, StructuredType, authority_for, sdk_path,
};
pub use error::{ComponentErrorKind, HttpSigError, MalformedKind, SignatureHeader};
pub use parse::{
    ComponentId, SignatureInput, SignatureParams, parse_signature, parse_signature_input,
};
pub use replay::{ReplayCache, ReplayError};
pub use verify::{
    Policy, Rfc9421Policy, VerifiedRequest, VerifiedSignature, verify_request, verify_rfc9421,
};

/// The label the SDK and the worker use.
pub const LABEL: &str = "sig1";
/// The only algorithm of the AuspexAI profile.
pub const ALG_ED25519: &str = "ed25519";
/// The coordinator's clock window, seconds (inclusive).
pub const DEFAULT_WINDOW_SECS: i64 = 300;
/// The component name of the body digest.
pub const CONTENT_DIGEST: &str = "content-digest";

/// The headers a signed request adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `Signature-Input` value, e.g. `sig1=("@method" ...);created=...`.
    pub signature_input: String,
    /// `Signature` value, `sig1=:<base64>:`.
    pub signature: String,
    /// `Content-Digest` value, present iff the body is non-empty.
    pub content_digest: Option<String>,
}

impl SignedHeaders {
    /// `(name, value)` pairs in the order the SDK adds them.
    pub fn header_pairs(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![
            ("Signature-Input", self.signature_input.as_str()),
            ("Signature", self.signature.as_str()),
        ];
        if let Some(d) = &self.content_digest {
            out.push(("Content-Digest", d.as_str()));
        }
        out
    }
}

/// RFC 9530 `Content-Digest` with SHA-256: `sha-256=:<base64>:`.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)))
}

/// The SDK's `@signature-params` value (also `Signature-Input` after
/// `sig1=`): `("@method" "@path" "@authority"[ "content-digest"])
/// ;created=N;alg="ed25519";keyid="<keyid>"` without spaces around `;`.
pub fn signature_params(has_body: bool, created: i64, keyid: &str) -> String {
    let digest = if has_body { " \"content-digest\"" } else { "" };
    format!(
        "(\"@method\" \"@path\" \"@authority\"{digest});created={created};alg=\"{ALG_ED25519}\";keyid=\"{keyid}\""
    )
}

/// The signature base the SDK signs (spec §3b.6): `target` is the request
/// target as sent (its query is dropped and the path percent-decoded),
/// `authority` the `Host` value (lowercased here).
pub fn signature_base(
    method: &str,
    target: &str,
    authority: &str,
    body: &[u8],
    created: i64,
    keyid: &str,
) -> String {
    let mut base = format!(
        "\"@method\": {}\n\"@path\": {}\n\"@authority\": {}\n",
        method.to_ascii_uppercase(),
        sdk_path(target),
        authority.to_ascii_lowercase(),
    );
    if !body.is_empty() {
        base.push_str("\"content-digest\": ");
        base.push_str(&content_digest(body));
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(&signature_params(!body.is_empty(), created, keyid));
    base
}

/// Signs a request exactly as the SDK's `Rfc9421Auth` does (spec §3b).
///
/// `target` is the request target as it goes on the wire (percent-encoded,
/// may carry a query, which is not covered); `authority` is the `Host`
/// header value; `created` is Unix seconds.
pub fn sign_request(
    key: &TenantKey,
    method: &str,
    target: &str,
    authority: &str,
    body: &[u8],
    created: i64,
) -> SignedHeaders {
    let keyid = key.public_hex();
    let base = signature_base(method, target, authority, body, created, &keyid);
    let sig = key.sign(base.as_bytes());
    SignedHeaders {
        signature_input: format!(
            "{LABEL}={}",
            signature_params(!body.is_empty(), created, &keyid)
        ),
        signature: format!("{LABEL}=:{}:", STANDARD.encode(sig)),
        content_digest: (!body.is_empty()).then(|| content_digest(body)),
    }
}
