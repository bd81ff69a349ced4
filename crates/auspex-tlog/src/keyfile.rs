//! The log's private key file: unencrypted PKCS#8 PEM (`PRIVATE KEY`),
//! Ed25519 or ECDSA P-256, created with mode 0600 atomically and never
//! replaced.

use std::path::Path;

use auspex_crypto::tlog::testlog::LogSigner;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};

use crate::error::TlogError;
use crate::kinds::{pem_decode, pem_encode};

/// Key files larger than this are refused unread.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// The log key's algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyType {
    /// Ed25519 (the default; Rekor v2 logs and C2SP checkpoints).
    #[default]
    Ed25519,
    /// ECDSA P-256 with SHA-256 (what public Rekor v1 uses).
    EcdsaP256,
}

impl KeyType {
    /// A short name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "Ed25519",
            KeyType::EcdsaP256 => "ECDSA P-256",
        }
    }

    pub(crate) fn of(signer: &LogSigner) -> Option<KeyType> {
        match signer {
            LogSigner::Ed25519(_) => Some(KeyType::Ed25519),
            LogSigner::EcdsaP256(_) => Some(KeyType::EcdsaP256),
            _ => None,
        }
    }
}

fn key_err(path: &Path, reason: impl Into<String>) -> TlogError {
    TlogError::KeyFile {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// A fresh random key of `kind`.
pub(crate) fn generate(kind: KeyType, path: &Path) -> Result<LogSigner, TlogError> {
    let rng = |e: getrandom::Error| key_err(path, format!("no randomness: {e}"));
    match kind {
        KeyType::Ed25519 => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(rng)?;
            Ok(LogSigner::ed25519(seed))
        }
        KeyType::EcdsaP256 => {
            // A random 256-bit string is a valid scalar except with
            // probability ~2^-32; retry in that case.
            for _ in 0..16 {
                let mut scalar = [0u8; 32];
                getrandom::fill(&mut scalar).map_err(rng)?;
                if let Ok(s) = LogSigner::ecdsa_p256(scalar) {
                    return Ok(s);
                }
            }
            Err(key_err(path, "could not draw a P-256 scalar"))
        }
    }
}

/// The PKCS#8 PEM of `signer`.
pub(crate) fn to_pem(signer: &LogSigner, path: &Path) -> Result<String, TlogError> {
    let der = match signer {
        LogSigner::Ed25519(k) => k.to_pkcs8_der(),
        LogSigner::EcdsaP256(k) => {
            use p256::pkcs8::EncodePrivateKey as _;
            k.to_pkcs8_der()
        }
        _ => return Err(key_err(path, "unsupported key type")),
    }
    .map_err(|e| key_err(path, format!("cannot encode PKCS#8: {e}")))?;
    Ok(pem_encode("PRIVATE KEY", der.as_bytes()))
}

/// Reads the key file, `None` if it does not exist.
pub(crate) fn load(path: &Path) -> Result<Option<LogSigner>, TlogError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TlogError::io(path, e)),
    };
    if !meta.is_file() {
        return Err(key_err(path, "not a regular file"));
    }
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(key_err(
            path,
            format!("{} bytes, more than {MAX_KEY_FILE_BYTES}", meta.len()),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| TlogError::io(path, e))?;
    let (label, der) = pem_decode(&text).ok_or_else(|| key_err(path, "not a PEM file"))?;
    if label != "PRIVATE KEY" {
        return Err(key_err(
            path,
            format!("PEM block {label:?} is not a PKCS#8 PRIVATE KEY"),
        ));
    }
    if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(&der) {
        return Ok(Some(LogSigner::Ed25519(k)));
    }
    {
        use p256::pkcs8::DecodePrivateKey as _;
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_der(&der) {
            return Ok(Some(LogSigner::EcdsaP256(k)));
        }
    }
    Err(key_err(
        path,
        "not an Ed25519 or ECDSA P-256 PKCS#8 private key",
    ))
}

/// Creates the key file (mode 0600) unless it exists; returns the key in
/// the file either way.
pub(crate) fn create(path: &Path, kind: KeyType) -> Result<LogSigner, TlogError> {
    let signer = generate(kind, path)?;
    let pem = to_pem(&signer, path)?;
    match auspex_crypto::atomic::write_atomic_new(path, pem.as_bytes(), 0o600) {
        Ok(()) => Ok(signer),
        Err(auspex_crypto::atomic::AtomicWriteError::Exists { .. }) => {
            load(path)?.ok_or_else(|| key_err(path, "vanished after creation"))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_key_types_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        for kind in [KeyType::Ed25519, KeyType::EcdsaP256] {
            let path = dir
                .path()
                .join(format!("{}.pem", kind.name().replace(' ', "")));
            let made = create(&path, kind).expect("create");
            let again = load(&path).expect("load").expect("exists");
            assert_eq!(made.public_key(), again.public_key());
            assert_eq!(KeyType::of(&again), Some(kind));
            // A second create keeps the first key.
            let kept = create(&path, kind).expect("create again");
            assert_eq!(kept.public_key(), made.public_key());
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
                assert_eq!(mode & 0o777, 0o600);
            }
        }
        assert!(load(&dir.path().join("absent.pem")).expect("ok").is_none());
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        assert!(matches!(load(&junk), Err(TlogError::KeyFile { .. })));
    }
}
