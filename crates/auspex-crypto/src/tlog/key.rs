//! The log's public key: ECDSA P-256 (public Rekor) or Ed25519 (Rekor v2,
//! the devnet), parsed from DER SubjectPublicKeyInfo, and the signed-note key
//! IDs it may appear under.

use ed25519_dalek::pkcs8::DecodePublicKey as _;
use p256::ecdsa::signature::Verifier as _;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// A log public key this crate can verify with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogKey {
    /// ECDSA over NIST P-256 with SHA-256, DER (ASN.1) signatures
    /// (`PKIX_ECDSA_P256_SHA_256`).
    EcdsaP256(p256::ecdsa::VerifyingKey),
    /// Ed25519 over the message itself (`PKIX_ED25519`).
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// The `keyDetails` names of the trusted-root format this crate supports.
pub const KEY_DETAILS_P256: &str = "PKIX_ECDSA_P256_SHA_256";
/// See [`KEY_DETAILS_P256`].
pub const KEY_DETAILS_ED25519: &str = "PKIX_ED25519";

/// Why a key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The DER is not a SubjectPublicKeyInfo of the declared type.
    #[error("public key is not a DER SubjectPublicKeyInfo for {details}: {reason}")]
    Spki {
        /// The declared `keyDetails`.
        details: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The key cannot be encoded as DER (not expected for valid keys).
    #[error("cannot encode the public key as DER: {0}")]
    Encode(String),
}

/// A signature that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature bytes are not a signature of this key type at all
    /// (not DER for ECDSA, not 64 bytes for Ed25519).
    #[error("malformed {alg} signature ({len} bytes)")]
    Malformed {
        /// `ECDSA P-256` or `Ed25519`.
        alg: &'static str,
        /// Its length.
        len: usize,
    },
    /// The signature is well formed but not by this key over this message.
    #[error("{alg} signature does not verify with the log's key")]
    Invalid {
        /// `ECDSA P-256` or `Ed25519`.
        alg: &'static str,
    },
}

impl LogKey {
    /// Parses a DER SubjectPublicKeyInfo declared as `details` (one of
    /// [`KEY_DETAILS_P256`], [`KEY_DETAILS_ED25519`]); `Ok(None)` for other
    /// (unsupported) key types.
    pub fn from_spki_der(der: &[u8], details: &str) -> Result<Option<LogKey>, KeyError> {
        match details {
            KEY_DETAILS_P256 => p256::ecdsa::VerifyingKey::from_public_key_der(der)
                .map(|k| Some(LogKey::EcdsaP256(k)))
                .map_err(|e| KeyError::Spki {
                    details: KEY_DETAILS_P256,
                    reason: e.to_string(),
                }),
            KEY_DETAILS_ED25519 => ed25519_dalek::VerifyingKey::from_public_key_der(der)
                .map(|k| Some(LogKey::Ed25519(k)))
                .map_err(|e| KeyError::Spki {
                    details: KEY_DETAILS_ED25519,
                    reason: e.to_string(),
                }),
            _ => Ok(None),
        }
    }

    /// The trusted-root `keyDetails` name of this key's type.
    pub fn key_details(&self) -> &'static str {
        match self {
            LogKey::EcdsaP256(_) => KEY_DETAILS_P256,
            LogKey::Ed25519(_) => KEY_DETAILS_ED25519,
        }
    }

    /// A short name of the algorithm, for messages.
    pub fn algorithm(&self) -> &'static str {
        match self {
            LogKey::EcdsaP256(_) => "ECDSA P-256",
            LogKey::Ed25519(_) => "Ed25519",
        }
    }

    /// The canonical DER SubjectPublicKeyInfo (what Go's
    /// `x509.MarshalPKIXPublicKey` produces: an uncompressed P-256 point).
    pub fn spki_der(&self) -> Result<Vec<u8>, KeyError> {
        use p256::pkcs8::EncodePublicKey as _;
        let doc = match self {
            LogKey::EcdsaP256(k) => k.to_public_key_der(),
            LogKey::Ed25519(k) => k.to_public_key_der(),
        };
        doc.map(|d| d.as_bytes().to_vec())
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// Rekor's log ID: SHA-256 of the DER SubjectPublicKeyInfo.
    pub fn log_id(&self) -> Result<[u8; 32], KeyError> {
        Ok(Sha256::digest(self.spki_der()?).into())
    }

    /// Verifies `signature` over `message`: ECDSA signs SHA-256(message) with
    /// an ASN.1 DER signature; Ed25519 signs the message itself (strict
    /// verification: canonical `S`, no small-order keys).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        match self {
            LogKey::EcdsaP256(k) => {
                let alg = "ECDSA P-256";
                let sig = p256::ecdsa::DerSignature::from_bytes(signature).map_err(|_| {
                    SignatureError::Malformed {
                        alg,
                        len: signature.len(),
                    }
                })?;
                k.verify(message, &sig)
                    .map_err(|_| SignatureError::Invalid { alg })
            }
            LogKey::Ed25519(k) => {
                let alg = "Ed25519";
                let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| {
                    SignatureError::Malformed {
                        alg,
                        len: signature.len(),
                    }
                })?;
                k.verify_strict(message, &sig)
                    .map_err(|_| SignatureError::Invalid { alg })
            }
        }
    }

    /// The signed-note key IDs under which a signature by this key, named
    /// `name`, is recognised:
    ///
    /// * ECDSA: the first 4 bytes of SHA-256 of the DER SubjectPublicKeyInfo
    ///   (Rekor's `getPublicKeyHash`; C2SP signed-note type `0x02`).
    /// * Ed25519: the C2SP ID, `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte key)[:4]`,
    ///   and also Rekor v1's SPKI hash, which Rekor uses for every key type.
    pub fn note_key_ids(&self, name: &str) -> Result<Vec<[u8; 4]>, KeyError> {
        let spki_id = first4(&Sha256::digest(self.spki_der()?));
        Ok(match self {
            LogKey::EcdsaP256(_) => vec![spki_id],
            LogKey::Ed25519(k) => {
                let mut h = Sha256::new();
                h.update(name.as_bytes());
                h.update([0x0a, 0x01]);
                h.update(k.as_bytes());
                vec![first4(&h.finalize()), spki_id]
            }
        })
    }
}

fn first4(d: &[u8]) -> [u8; 4] {
    let mut id = [0u8; 4];
    id.copy_from_slice(&d[..4]);
    id
}
