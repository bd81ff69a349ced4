//! Manifest signatures (spec `tenant-sdk.md` §3a): Ed25519 over the Pydantic
//! signing input of the *normalised* manifest, carried in a `ManifestSignature`
//! (`sig_v` "0.1", hex public key, base64 signature).
//!
//! Unlike the official `verify_manifest`, which answers only "does the embedded
//! key verify", [`verify_manifest`] can also pin the signer, and says which of
//! its checks failed.

use auspex_wire::manifest::{Manifest, ManifestSignature, SdkProfile, SigningInputError};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};

use crate::keys::TenantKey;

/// Why a manifest signature was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestSignatureError {
    /// The signing input could not be built for the chosen SDK profile.
    #[error(transparent)]
    SigningInput(#[from] SigningInputError),
    /// `sig_v` is not `"0.1"`.
    #[error("unsupported signature version {0:?} (expected \"0.1\")")]
    Version(String),
    /// `maintainer_pubkey` is not 64 lowercase hex characters of a valid key.
    #[error("maintainer_pubkey is not a valid Ed25519 public key: {0:?}")]
    PublicKey(String),
    /// `signature` is not strict, padded base64 of 64 bytes.
    #[error("signature is not base64 of a 64-byte Ed25519 signature")]
    Encoding,
    /// The signature does not verify under the embedded key.
    #[error("the signature does not match this manifest under key {pubkey}")]
    Mismatch {
        /// The embedded public key.
        pubkey: String,
    },
    /// It verifies, but under another key than the pinned one.
    #[error("signed by {actual}, but {expected} was required")]
    WrongSigner {
        /// The pinned key.
        expected: String,
        /// The key that signed.
        actual: String,
    },
}

/// Signs `manifest` with `key`, reproducing the signing input of `profile`.
pub fn sign_manifest(
    manifest: &Manifest,
    key: &TenantKey,
    profile: SdkProfile,
) -> Result<ManifestSignature, SigningInputError> {
    let input = manifest.signing_input(profile)?;
    let sig = key.sign(&input);
    Ok(ManifestSignature {
        sig_v: "0.1".to_owned(),
        maintainer_pubkey: key.public_hex(),
        signature: STANDARD.encode(sig),
    })
}

/// Verifies `sig` over `manifest` under the embedded key and, when
/// `expected_signer` is given (64 hex characters), requires that key.
/// Returns the signer's hex key.
pub fn verify_manifest(
    manifest: &Manifest,
    sig: &ManifestSignature,
    profile: SdkProfile,
    expected_signer: Option<&str>,
) -> Result<String, ManifestSignatureError> {
    if sig.sig_v != "0.1" {
        return Err(ManifestSignatureError::Version(sig.sig_v.clone()));
    }
    let pubkey = parse_pubkey(&sig.maintainer_pubkey)
        .ok_or_else(|| ManifestSignatureError::PublicKey(sig.maintainer_pubkey.clone()))?;
    let raw = STANDARD
        .decode(&sig.signature)
        .map_err(|_| ManifestSignatureError::Encoding)?;
    let signature = Signature::from_slice(&raw).map_err(|_| ManifestSignatureError::Encoding)?;
    let input = manifest.signing_input(profile)?;
    pubkey
        .verify_strict(&input, &signature)
        .map_err(|_| ManifestSignatureError::Mismatch {
            pubkey: sig.maintainer_pubkey.clone(),
        })?;
    if let Some(expected) = expected_signer
        && !expected.eq_ignore_ascii_case(&sig.maintainer_pubkey)
    {
        return Err(ManifestSignatureError::WrongSigner {
            expected: expected.to_ascii_lowercase(),
            actual: sig.maintainer_pubkey.clone(),
        });
    }
    Ok(sig.maintainer_pubkey.clone())
}

/// Parses 64 lowercase hex characters into an Ed25519 public key.
pub fn parse_pubkey(hex: &str) -> Option<VerifyingKey> {
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        bytes[i] = u8::from_str_radix(s, 16).ok()?;
    }
    VerifyingKey::from_bytes(&bytes).ok()
}
