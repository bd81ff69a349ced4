//! Tenant keys (spec `tenant-sdk.md` §3j): an Ed25519 key stored as an
//! unencrypted PKCS#8 PEM file, byte-identical to what the official SDK's
//! `MaintainerKey.save` / `TenantKey.save` writes, so either implementation
//! reads the other's files.
//!
//! Differences from the SDK, all on the safe side (§11 #24):
//!
//! * [`save`] writes atomically with mode 0600 from the first byte (the SDK
//!   writes under the umask, then `chmod`s), creates missing parent
//!   directories with mode 0700, and refuses to replace an existing key unless
//!   asked to;
//! * [`load`] refuses files over [`MAX_KEY_FILE_BYTES`] without reading them,
//!   and reports each kind of unusable file with its own error.
//!
//! The public key form everywhere is 64 lowercase hex characters of the raw
//! 32-byte key ([`TenantKey::public_hex`]).

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::{KeypairBytes, PrivateKeyInfoRef};
use ed25519_dalek::{Signer as _, SigningKey};

use crate::atomic::{self, AtomicWriteError};

/// Largest key file [`load`] accepts (64 KiB; a tenant key file is 119 bytes).
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Directory of the key files, relative to the home directory.
pub const KEY_DIR: &str = ".config/auspexai-tenant";
/// File name of the tenant key (0.6.67 and this implementation).
pub const KEY_FILE_NAME: &str = "tenant_key";
/// File name of the key used by 0.5.5 (`maintainer_key`).
pub const LEGACY_KEY_FILE_NAME: &str = "maintainer_key";

/// DER prefix of an Ed25519 PKCS#8 v1 `PrivateKeyInfo`; the 32-byte seed
/// follows (RFC 8410 §7).
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// `id-Ed25519`, 1.3.101.112.
const ED25519_OID: &str = "1.3.101.112";

/// A tenant's Ed25519 signing key.
///
/// `Debug` shows only the public key.
#[derive(Clone)]
pub struct TenantKey {
    signing: SigningKey,
}

impl fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantKey")
            .field("public", &self.public_hex())
            .finish_non_exhaustive()
    }
}

impl TenantKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<TenantKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random {
            reason: e.to_string(),
        })?;
        let key = TenantKey::from_seed(seed);
        wipe(&mut seed);
        Ok(key)
    }

    /// The key whose 32-byte private seed (RFC 8032 secret key) is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> TenantKey {
        TenantKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Parses a PEM private key. Accepts any unencrypted PKCS#8 `PRIVATE KEY`
    /// block holding an Ed25519 key (v1, or v2 with a matching public key);
    /// text around the block and other PEM blocks before it are ignored, as
    /// OpenSSL does.
    pub fn from_pem(text: &str) -> Result<TenantKey, PemError> {
        let block = find_private_key_block(text)?;
        match block.label.as_str() {
            "PRIVATE KEY" => {}
            "ENCRYPTED PRIVATE KEY" => return Err(PemError::Encrypted),
            "OPENSSH PRIVATE KEY" => return Err(PemError::OpenSsh),
            label => {
                // Traditional OpenSSL formats: "RSA PRIVATE KEY", "EC …", "DSA …".
                let found = label.trim_end_matches(" PRIVATE KEY").to_owned();
                return Err(PemError::WrongAlgorithm { found });
            }
        }
        if block.encrypted_header {
            return Err(PemError::Encrypted);
        }
        let der = STANDARD
            .decode(block.base64.as_bytes())
            .map_err(|_| PemError::Base64)?;
        let result = TenantKey::from_pkcs8_der(&der);
        let mut der = der;
        wipe(&mut der);
        result
    }

    /// Parses a DER PKCS#8 `PrivateKeyInfo` holding an Ed25519 key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<TenantKey, PemError> {
        let info = PrivateKeyInfoRef::try_from(der).map_err(|e| PemError::Malformed {
            reason: e.to_string(),
        })?;
        let oid = info.algorithm.oid.to_string();
        if oid != ED25519_OID {
            return Err(PemError::WrongAlgorithm {
                found: algorithm_name(&oid),
            });
        }
        let pair = KeypairBytes::try_from(info).map_err(|e| PemError::Malformed {
            reason: e.to_string(),
        })?;
        let key = TenantKey::from_seed(pair.secret_key);
        if let Some(public) = &pair.public_key
            && public.as_ref() != &key.public_bytes()
        {
            return Err(PemError::PublicKeyMismatch);
        }
        Ok(key)
    }

    /// The PKCS#8 PEM text of this key exactly as the SDK writes it: label
    /// `PRIVATE KEY`, the 48-byte v1 DER in 64-character base64 lines, and a
    /// trailing newline.
    pub fn to_pem(&self) -> String {
        let mut der = Vec::with_capacity(48);
        der.extend_from_slice(&PKCS8_ED25519_PREFIX);
        der.extend_from_slice(self.signing.as_bytes());
        let b64 = STANDARD.encode(&der);
        wipe(&mut der);
        let mut pem = String::with_capacity(b64.len() + 64);
        pem.push_str("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            // Base64 output is ASCII, so every chunk is valid UTF-8.
            pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        let mut b64 = b64.into_bytes();
        wipe(&mut b64);
        pem
    }

    /// The raw 32-byte public key.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The public key as 64 lowercase hex characters (the form used on the
    /// wire, e.g. `maintainer_pubkey`).
    pub fn public_hex(&self) -> String {
        auspex_wire::hex_lower(&self.public_bytes())
    }

    /// The Ed25519 verifying key.
    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.signing.verifying_key()
    }

    /// Signs `message` (pure Ed25519), returning the 64-byte signature.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

/// Overwrites a buffer that held secret material (best effort; the compiler
/// is kept from eliding the writes by `black_box`).
fn wipe(buf: &mut [u8]) {
    for b in buf.iter_mut() {
        *b = 0;
    }
    std::hint::black_box(buf);
}

/// A readable name for the key algorithm `oid` of a PKCS#8 key.
fn algorithm_name(oid: &str) -> String {
    let name = match oid {
        "1.2.840.113549.1.1.1" => "RSA",
        "1.2.840.113549.1.1.10" => "RSA-PSS",
        "1.2.840.10045.2.1" => "EC",
        "1.2.840.10040.4.1" => "DSA",
        "1.2.840.113549.1.3.1" | "1.2.840.10046.2.1" => "DH",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        "1.3.101.113" => "Ed448",
        _ => return format!("algorithm OID {oid}"),
    };
    format!("{name} (OID {oid})")
}

/// Why a PEM text is not a usable tenant key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// The text is empty or only whitespace.
    #[error("the key file is empty")]
    Empty,
    /// No `-----BEGIN …-----` line.
    #[error("not a PEM file (no -----BEGIN ...----- line)")]
    NotPem,
    /// A `BEGIN` line without its `END` line.
    #[error("the PEM block {label:?} has no matching -----END {label}----- line")]
    Unterminated {
        /// The block's label.
        label: String,
    },
    /// Only public keys / certificates / other blocks, no private key.
    #[error("this is a public key (PEM {label:?}), not a private key")]
    PublicKey {
        /// The label found (`PUBLIC KEY`, `CERTIFICATE`, …).
        label: String,
    },
    /// PEM blocks, none of them a private key.
    #[error("no private key in the file (found a PEM {label:?} block)")]
    UnsupportedLabel {
        /// The first label found.
        label: String,
    },
    /// An encrypted (passphrase-protected) private key.
    #[error(
        "the private key is encrypted; only unencrypted PKCS#8 keys are supported \
         (decrypt it with `openssl pkey -in KEY -out PLAIN_KEY`)"
    )]
    Encrypted,
    /// An OpenSSH-format private key.
    #[error(
        "this is an OpenSSH private key; convert it to PKCS#8 with \
         `ssh-keygen -p -m PKCS8 -f KEY` (after making a copy)"
    )]
    OpenSsh,
    /// The body is not valid base64.
    #[error("the PEM body is not valid base64")]
    Base64,
    /// The body is not a valid PKCS#8 `PrivateKeyInfo`.
    #[error("the PEM body is not a valid PKCS#8 private key: {reason}")]
    Malformed {
        /// What the DER decoder reported.
        reason: String,
    },
    /// A private key of another algorithm.
    #[error("expected an Ed25519 private key, found {found}")]
    WrongAlgorithm {
        /// The algorithm found, with its OID when known (`EC (OID 1.2.840.10045.2.1)`).
        found: String,
    },
    /// A PKCS#8 v2 key whose embedded public key is not its own.
    #[error("the public key stored in the file does not belong to its private key")]
    PublicKeyMismatch,
}

/// Errors of key generation, loading and saving. Each file error names the
/// path; the underlying cause is its [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed: {reason}")]
    Random {
        /// Its error.
        reason: String,
    },
    /// The key file does not exist.
    #[error("key file {path} does not exist")]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// The key file (or a directory on its way) may not be read / written.
    #[error("permission denied for {path}")]
    PermissionDenied {
        /// The path.
        path: PathBuf,
    },
    /// The path is a directory, FIFO, device or other non-regular file.
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file is larger than [`MAX_KEY_FILE_BYTES`]; it was not read.
    #[error("{path} is too large to be a key file (over {limit} bytes)")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The file is not UTF-8 text, so it cannot be PEM.
    #[error("{path} is not a text file (not valid UTF-8), so not a PEM key")]
    NotUtf8 {
        /// The path.
        path: PathBuf,
    },
    /// The file is text but not a usable key.
    #[error("{path} does not hold a usable Ed25519 private key")]
    Invalid {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: PemError,
    },
    /// [`save`] without `overwrite` found the target present.
    #[error("{path} already exists")]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// Any other I/O failure reading the file.
    #[error("cannot read {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Writing the key file failed (nothing was left behind: the target is
    /// unchanged, no temporary file remains).
    #[error("cannot write the key to {path}")]
    Write {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: AtomicWriteError,
    },
}

fn read_error(path: &Path, source: io::Error) -> KeyError {
    let path = path.to_path_buf();
    match source.kind() {
        io::ErrorKind::NotFound => KeyError::NotFound { path },
        io::ErrorKind::PermissionDenied => KeyError::PermissionDenied { path },
        io::ErrorKind::IsADirectory => KeyError::NotAFile { path },
        _ => KeyError::Io { path, source },
    }
}

/// Loads the key file at `path` (see [`TenantKey::from_pem`] for what is
/// accepted). Files over [`MAX_KEY_FILE_BYTES`], directories and special
/// files are refused without being read.
pub fn load(path: &Path) -> Result<TenantKey, KeyError> {
    // Check before opening: opening a FIFO would block.
    let meta = std::fs::metadata(path).map_err(|e| read_error(path, e))?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let too_large = || KeyError::TooLarge {
        path: path.to_path_buf(),
        limit: MAX_KEY_FILE_BYTES,
    };
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(too_large());
    }
    let file = File::open(path).map_err(|e| read_error(path, e))?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may have grown since `metadata`: never read past the limit.
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| read_error(path, e))?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        wipe(&mut bytes);
        return Err(too_large());
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let mut bytes = e.into_bytes();
            wipe(&mut bytes);
            return Err(KeyError::NotUtf8 {
                path: path.to_path_buf(),
            });
        }
    };
    let result = TenantKey::from_pem(&text).map_err(|source| KeyError::Invalid {
        path: path.to_path_buf(),
        source,
    });
    let mut bytes = text.into_bytes();
    wipe(&mut bytes);
    result
}

/// Saves `key` to `path` as PKCS#8 PEM ([`TenantKey::to_pem`]).
///
/// Missing parent directories are created with mode 0700; the file is written
/// atomically (temporary file created with mode 0600, synced, renamed into
/// place, directory synced), so `path` holds either its old content or the
/// complete new key, never a partial or group-readable one. An existing
/// `path` is refused with [`KeyError::Exists`] unless `overwrite` is true.
pub fn save(key: &TenantKey, path: &Path, overwrite: bool) -> Result<(), KeyError> {
    let write_error = |source: AtomicWriteError| match source {
        AtomicWriteError::Exists { path } => KeyError::Exists { path },
        source => KeyError::Write {
            path: path.to_path_buf(),
            source,
        },
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        atomic::create_dir_all(parent, 0o700).map_err(write_error)?;
    }
    let mut pem = key.to_pem().into_bytes();
    let result = if overwrite {
        atomic::write_atomic(path, &pem, 0o600)
    } else {
        atomic::write_atomic_new(path, &pem, 0o600)
    };
    wipe(&mut pem);
    result.map_err(write_error)
}

/// The default key path: `<home>/.config/auspexai-tenant/tenant_key`.
pub fn default_key_path(home: &Path) -> PathBuf {
    home.join(KEY_DIR).join(KEY_FILE_NAME)
}

/// The 0.5.5 default key path: `<home>/.config/auspexai-tenant/maintainer_key`.
pub fn legacy_key_path(home: &Path) -> PathBuf {
    home.join(KEY_DIR).join(LEGACY_KEY_FILE_NAME)
}

/// The key file to read when none was named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKey {
    /// The file to load.
    pub path: PathBuf,
    /// True when `tenant_key` is absent and the 0.5.5 `maintainer_key` beside
    /// it is used instead (callers should say so).
    pub fell_back_to_legacy: bool,
}

/// Chooses the key to read under `home`: `tenant_key`, or the legacy
/// `maintainer_key` in the same directory when only that one exists.
/// Existence is not a promise that loading succeeds; when neither exists the
/// default path is returned, so the load error names it.
pub fn resolve_key_for_reading(home: &Path) -> ResolvedKey {
    let path = default_key_path(home);
    let legacy = legacy_key_path(home);
    if matches!(path.try_exists(), Ok(false)) && matches!(legacy.try_exists(), Ok(true)) {
        ResolvedKey {
            path: legacy,
            fell_back_to_legacy: true,
        }
    } else {
        ResolvedKey {
            path,
            fell_back_to_legacy: false,
        }
    }
}

// ---------------------------------------------------------------------------
// PEM scanning.

struct PemBlock {
    label: String,
    /// A `Proc-Type: 4,ENCRYPTED` header (traditional OpenSSL encryption).
    encrypted_header: bool,
    base64: String,
}

/// Scans every PEM block and returns the first private-key block; reports
/// what was found instead when there is none.
fn find_private_key_block(text: &str) -> Result<PemBlock, PemError> {
    if text.trim().is_empty() {
        return Err(PemError::Empty);
    }
    let mut first_label: Option<String> = None;
    let mut public_label: Option<String> = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = line
            .trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        else {
            continue;
        };
        let label = label.to_owned();
        let end = format!("-----END {label}-----");
        let mut block = PemBlock {
            label: label.clone(),
            encrypted_header: false,
            base64: String::new(),
        };
        let mut terminated = false;
        for body in lines.by_ref() {
            let body = body.trim();
            if body == end {
                terminated = true;
                break;
            }
            if let Some((name, value)) = body.split_once(':') {
                if name.trim().eq_ignore_ascii_case("Proc-Type") && value.contains("ENCRYPTED") {
                    block.encrypted_header = true;
                }
                continue;
            }
            block
                .base64
                .extend(body.chars().filter(|c| !c.is_whitespace()));
        }
        if label.ends_with("PRIVATE KEY") {
            if !terminated {
                return Err(PemError::Unterminated { label });
            }
            return Ok(block);
        }
        if public_label.is_none() && (label.contains("PUBLIC KEY") || label == "CERTIFICATE") {
            public_label = Some(label.clone());
        }
        first_label.get_or_insert(label);
    }
    match (public_label, first_label) {
        (Some(label), _) => Err(PemError::PublicKey { label }),
        (None, Some(label)) => Err(PemError::UnsupportedLabel { label }),
        (None, None) => Err(PemError::NotPem),
    }
}
