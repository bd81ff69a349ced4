//! The coordinator's persistent Ed25519 signing key
//! (`<state>/coordinator_receipt_signing_key.pem`, PKCS#8 PEM, mode 0600,
//! `coordinator.md` §6): generated on first start, reused afterwards, so
//! receipts and attestations stay verifiable across restarts.

use std::path::Path;

use auspex_crypto::keys::{self, KeyError, TenantKey};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;

/// The coordinator's signing key.
#[derive(Clone)]
pub struct CoordinatorKey {
    signing: SigningKey,
    public_hex: String,
}

impl std::fmt::Debug for CoordinatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorKey")
            .field("public", &self.public_hex)
            .finish_non_exhaustive()
    }
}

/// Why the key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoordinatorKeyError {
    /// Reading, generating or saving the key file failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The PEM the key module wrote did not decode as PKCS#8 (cannot
    /// happen unless the file format changes).
    #[error("coordinator key is not PKCS#8 Ed25519: {0}")]
    Pkcs8(String),
}

impl CoordinatorKey {
    /// Loads the key at `path`, creating it (0600, atomically) when absent.
    pub fn load_or_create(path: &Path) -> Result<CoordinatorKey, CoordinatorKeyError> {
        let key = match keys::load(path) {
            Ok(k) => k,
            Err(KeyError::NotFound { .. }) => {
                let k = TenantKey::generate()?;
                keys::save(&k, path, false)?;
                k
            }
            Err(e) => return Err(e.into()),
        };
        CoordinatorKey::from_tenant_key(&key)
    }

    /// The key from a seed (tests).
    pub fn from_seed(seed: [u8; 32]) -> CoordinatorKey {
        let signing = SigningKey::from_bytes(&seed);
        let public_hex = auspex_wire::hex_lower(signing.verifying_key().as_bytes());
        CoordinatorKey {
            signing,
            public_hex,
        }
    }

    fn from_tenant_key(key: &TenantKey) -> Result<CoordinatorKey, CoordinatorKeyError> {
        // `TenantKey` keeps its seed private; its PKCS#8 PEM is the
        // documented way out.
        let signing = SigningKey::from_pkcs8_pem(&key.to_pem())
            .map_err(|e| CoordinatorKeyError::Pkcs8(e.to_string()))?;
        Ok(CoordinatorKey {
            public_hex: key.public_hex(),
            signing,
        })
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The public key, 64 lowercase hex characters.
    pub fn public_hex(&self) -> &str {
        &self.public_hex
    }
}
