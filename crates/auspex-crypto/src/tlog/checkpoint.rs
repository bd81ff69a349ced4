//! Signed checkpoints: the C2SP signed-note envelope (c2sp.org/signed-note)
//! around a C2SP checkpoint body (c2sp.org/tlog-checkpoint), as Rekor writes
//! them:
//!
//! ```text
//! rekor.sigstore.dev - 2605736670972794746     origin
//! 75408393                                      tree size (decimal)
//! Fnnj13Uu1jdksPc4HZLapKX329dVlD5+MGNsiqBq1XM=  root hash (base64)
//! Timestamp: 1689748607742585419                optional extension lines
//!                                               blank line
//! — rekor.sigstore.dev wNI9ajBFAiBTyiBM9Wty…    — <name> base64(key ID ‖ signature)
//! ```
//!
//! The note text (origin through the last extension line, with its final
//! newline) is what is signed. Parsing is strict: valid UTF-8 without control
//! characters other than newline, the text separated from the signatures by
//! the **last** blank line, signature lines exactly `— <name> <base64>` with a
//! name free of spaces and `+`, canonical base64, a size without leading
//! zeros, a 32-byte root, no empty extension line.
//!
//! Verification follows C2SP: a signature counts as the log's only if both
//! its name (the host of the log's `baseUrl`, which is what Rekor signs as)
//! and its key ID match the log's key; signatures by other keys (witness
//! cosignatures) are ignored; a signature by the log's key that does not
//! verify rejects the whole note; at least one must verify.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

use super::key::{KeyError, LogKey, SignatureError};
use crate::merkle::Hash;

/// Notes larger than this are refused before parsing (Rekor's are ~300 bytes).
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// At most this many signature lines (C2SP requires accepting at least 16).
pub const MAX_SIGNATURES: usize = 64;

/// Why a note or checkpoint is malformed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NoteError {
    /// Larger than [`MAX_NOTE_BYTES`].
    #[error("note is {0} bytes, more than the limit of {MAX_NOTE_BYTES}")]
    TooLarge(usize),
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A control character other than newline.
    #[error("note contains control character U+{0:04X}")]
    ControlCharacter(u32),
    /// No blank line separating the text from the signatures.
    #[error("note has no blank line before its signatures")]
    NoSignatureBlock,
    /// The note does not end with a newline.
    #[error("note does not end with a newline")]
    NoFinalNewline,
    /// No signature lines after the blank line.
    #[error("note has no signatures")]
    NoSignatures,
    /// A signature line is not `— <name> <base64>`.
    #[error("signature line {line} is not \"— <name> <base64 signature>\": {text:?}")]
    SignatureLine {
        /// 1-based among the signature lines.
        line: usize,
        /// The line (truncated).
        text: String,
    },
    /// A signature is not canonical base64 of at least 5 bytes.
    #[error("signature line {line}: signature is not base64 of a key ID and a signature")]
    SignatureEncoding {
        /// 1-based among the signature lines.
        line: usize,
    },
    /// The checkpoint body has fewer than three lines.
    #[error("checkpoint has {0} lines, needs origin, size and root hash")]
    TooFewLines(usize),
    /// The origin line is empty.
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    /// The size line is not a canonical decimal `u64`.
    #[error("checkpoint size {0:?} is not a decimal number without leading zeros")]
    Size(String),
    /// The root line is not base64 of 32 bytes.
    #[error("checkpoint root hash {0:?} is not base64 of 32 bytes")]
    RootHash(String),
    /// An extension line is empty.
    #[error("checkpoint has an empty extension line")]
    EmptyExtension,
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The 4-byte key ID (hint).
    pub key_id: [u8; 4],
    /// The signature proper.
    pub signature: Vec<u8>,
}

/// A parsed (not yet verified) signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The signed text, including its final newline.
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Parses a signed note (see the module docs for the rules).
    pub fn parse(note: &str) -> Result<SignedNote, NoteError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge(note.len()));
        }
        if let Some(c) = note.chars().find(|c| *c < ' ' && *c != '\n') {
            return Err(NoteError::ControlCharacter(u32::from(c)));
        }
        let split = note.rfind("\n\n").ok_or(NoteError::NoSignatureBlock)?;
        let (text, sigs) = (&note[..=split], &note[split + 2..]);
        if sigs.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let Some(sigs) = sigs.strip_suffix('\n') else {
            return Err(NoteError::NoFinalNewline);
        };
        let mut signatures = Vec::new();
        for (i, line) in sigs.split('\n').enumerate() {
            if i >= MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            signatures.push(parse_signature_line(i + 1, line)?);
        }
        Ok(SignedNote {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note as text: `text`, a blank line, one line per signature.
    pub fn to_text(&self) -> String {
        let mut s = self.text.clone();
        s.push('\n');
        for sig in &self.signatures {
            let mut bytes = sig.key_id.to_vec();
            bytes.extend_from_slice(&sig.signature);
            s.push_str(&format!(
                "\u{2014} {} {}\n",
                sig.name,
                STANDARD.encode(bytes)
            ));
        }
        s
    }
}

fn parse_signature_line(line: usize, text: &str) -> Result<NoteSignature, NoteError> {
    let bad = || NoteError::SignatureLine {
        line,
        text: text.chars().take(120).collect(),
    };
    let rest = text.strip_prefix("\u{2014} ").ok_or_else(bad)?;
    let (name, b64) = rest.split_once(' ').ok_or_else(bad)?;
    if name.is_empty()
        || name.chars().any(|c| c.is_whitespace() || c == '+')
        || b64.is_empty()
        || b64.contains(' ')
    {
        return Err(bad());
    }
    let bytes = STANDARD
        .decode(b64)
        .map_err(|_| NoteError::SignatureEncoding { line })?;
    if bytes.len() < 5 {
        return Err(NoteError::SignatureEncoding { line });
    }
    let mut key_id = [0u8; 4];
    key_id.copy_from_slice(&bytes[..4]);
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id,
        signature: bytes[4..].to_vec(),
    })
}

/// A checkpoint body: the log's signed statement of its size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The origin line: the log's identity (Rekor: `<host> - <tree ID>`).
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The root hash of the tree of that size.
    pub root_hash: Hash,
    /// Extension lines (Rekor v1 adds `Timestamp: <unix nanoseconds>`).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Parses a checkpoint body (the signed text of a note).
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let body = text.strip_suffix('\n').ok_or(NoteError::NoFinalNewline)?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(NoteError::TooFewLines(lines.len()));
        };
        if origin.is_empty() {
            return Err(NoteError::EmptyOrigin);
        }
        let size_ok = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (*size == "0" || !size.starts_with('0'));
        let size = size
            .parse::<u64>()
            .ok()
            .filter(|_| size_ok)
            .ok_or_else(|| NoteError::Size(size.chars().take(40).collect()))?;
        let root_hash: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| NoteError::RootHash(root.chars().take(80).collect()))?;
        if extensions.iter().any(|l| l.is_empty()) {
            return Err(NoteError::EmptyExtension);
        }
        Ok(Checkpoint {
            origin: (*origin).to_owned(),
            size,
            root_hash,
            extensions: extensions.iter().map(|l| (*l).to_owned()).collect(),
        })
    }

    /// The body as signed: origin, size, base64 root, extensions, each
    /// followed by a newline.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root_hash)
        );
        for line in &self.extensions {
            s.push_str(line);
            s.push('\n');
        }
        s
    }
}

/// Why a checkpoint is not the log's signed statement.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The note or its body is malformed.
    #[error("malformed checkpoint: {0}")]
    Malformed(#[from] NoteError),
    /// The log's key cannot be encoded (not expected).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// No signature line carries the log's name and key ID.
    #[error(
        "no signature by the log's key (want \"— {name} {}…\", found {})",
        STANDARD.encode(key_ids.first().copied().unwrap_or_default()),
        describe(found)
    )]
    NoSignatureByLog {
        /// The log's signing name.
        name: String,
        /// The key IDs the log's key may appear under.
        key_ids: Vec<[u8; 4]>,
        /// `(name, key ID)` of each signature line present.
        found: Vec<(String, [u8; 4])>,
    },
    /// A signature line by the log's key does not verify.
    #[error("signature line {line} by {name} does not verify: {source}")]
    BadSignature {
        /// 1-based among the signature lines.
        line: usize,
        /// The name on the line.
        name: String,
        /// Why.
        source: SignatureError,
    },
}

fn describe(found: &[(String, [u8; 4])]) -> String {
    if found.is_empty() {
        return "none".to_owned();
    }
    found
        .iter()
        .map(|(n, id)| format!("{n} {}", auspex_wire::hex_lower(id)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Verifies a signed checkpoint note against the log's key and signing name
/// and returns its body.
pub fn verify_checkpoint(
    note: &str,
    key: &LogKey,
    name: &str,
) -> Result<Checkpoint, CheckpointError> {
    let parsed = SignedNote::parse(note)?;
    let key_ids = key.note_key_ids(name)?;
    let mut verified = false;
    for (i, sig) in parsed.signatures.iter().enumerate() {
        if sig.name != name || !key_ids.contains(&sig.key_id) {
            continue; // another key's signature (a witness): ignored
        }
        key.verify(parsed.text.as_bytes(), &sig.signature)
            .map_err(|source| CheckpointError::BadSignature {
                line: i + 1,
                name: sig.name.clone(),
                source,
            })?;
        verified = true;
    }
    if !verified {
        return Err(CheckpointError::NoSignatureByLog {
            name: name.to_owned(),
            key_ids,
            found: parsed
                .signatures
                .iter()
                .map(|s| (s.name.clone(), s.key_id))
                .collect(),
        });
    }
    Ok(Checkpoint::parse(&parsed.text)?)
}
