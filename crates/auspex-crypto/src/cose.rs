//! COSE_Sign1 (RFC 9052) as the coordinator produces it (spec
//! `tenant-sdk.md` §3e): decoding with a typed error for every malformation,
//! Ed25519 verification, and [`inspect_receipt`] — the entry point of
//! `receipts show`.
//!
//! Shape: `[protected: bstr, unprotected: map, payload: bstr, signature:
//! bstr]`, untagged (tag 18 is accepted too). The protected header is the
//! canonical CBOR of `{1: -8, 4: kid}` where the kid is the signer's public key
//! as **64 lowercase hex ASCII bytes**. The signature is Ed25519 over the
//! canonical CBOR of `["Signature1", protected, h'', payload]`, built from the
//! protected bytes exactly as received.
//!
//! Stricter than 0.5.5 on purpose: [`CoseSign1::verify`] requires `alg` −8
//! (EdDSA) and a kid of exactly 64 lowercase hex characters, and uses
//! `verify_strict` (no small-order keys, canonical `S`).

use auspex_wire::attestation::{Statement, StatementError};
use auspex_wire::receipt::cbor::{self, Cbor, CborError};
use auspex_wire::receipt::{self, RECEIPT_PREDICATE_TYPE, Receipt, ReceiptError};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// The CBOR tag of a COSE_Sign1 (optional on input).
pub const COSE_SIGN1_TAG: u64 = 18;
/// Header label `alg`.
pub const HEADER_ALG: i64 = 1;
/// Header label `kid`.
pub const HEADER_KID: i64 = 4;
/// `alg` value EdDSA.
pub const ALG_EDDSA: i64 = -8;

/// Why a COSE_Sign1 was refused or did not verify.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CoseError {
    /// The bytes are not one well-formed CBOR item.
    #[error("COSE_Sign1 is not well-formed CBOR: {0}")]
    Cbor(#[from] CborError),
    /// Tagged with something other than 18.
    #[error("COSE_Sign1 carries CBOR tag {0}, expected none or 18")]
    UnexpectedTag(u64),
    /// The item is not an array.
    #[error("COSE_Sign1 must be an array, found {found}")]
    NotAnArray {
        /// The type found.
        found: &'static str,
    },
    /// The array does not have 4 elements.
    #[error("COSE_Sign1 must have 4 elements, found {len}")]
    WrongLength {
        /// The number of elements.
        len: usize,
    },
    /// `protected`, `payload` or `signature` is not a byte string.
    #[error("COSE_Sign1 {field} must be a byte string, found {found}")]
    FieldNotBytes {
        /// Which field.
        field: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// The payload is `nil` (detached), which this protocol never uses.
    #[error("COSE_Sign1 has a detached (nil) payload")]
    DetachedPayload,
    /// The unprotected header is not a map.
    #[error("COSE_Sign1 unprotected header must be a map, found {found}")]
    UnprotectedNotMap {
        /// The type found.
        found: &'static str,
    },
    /// The protected header bytes are not one well-formed CBOR item.
    #[error("COSE protected header is not well-formed CBOR: {0}")]
    ProtectedHeader(CborError),
    /// The protected header is not a map.
    #[error("COSE protected header must be a map, found {found}")]
    ProtectedNotMap {
        /// The type found.
        found: &'static str,
    },
    /// A header label occurs twice in the protected header.
    #[error("COSE protected header repeats label {label}")]
    DuplicateHeaderLabel {
        /// The label, displayed.
        label: String,
    },
    /// `alg` is not an integer.
    #[error("COSE alg must be an integer, found {found}")]
    AlgNotInteger {
        /// The type found.
        found: &'static str,
    },
    /// `kid` is not a byte string.
    #[error("COSE kid must be a byte string, found {found}")]
    KidNotBytes {
        /// The type found.
        found: &'static str,
    },
    /// No `alg` in the protected header.
    #[error("COSE protected header has no alg")]
    MissingAlgorithm,
    /// `alg` is not EdDSA (−8).
    #[error("COSE alg {alg} is not EdDSA (-8)")]
    UnsupportedAlgorithm {
        /// The algorithm found.
        alg: i64,
    },
    /// No `kid` in the protected header.
    #[error("COSE protected header has no kid")]
    MissingKid,
    /// The kid is not 64 lowercase hex ASCII characters.
    #[error("COSE kid must be 64 lowercase hex characters (found {len} bytes)")]
    InvalidKid {
        /// The kid's length in bytes.
        len: usize,
    },
    /// The kid names bytes that are not an Ed25519 public key.
    #[error("COSE kid is not a valid Ed25519 public key")]
    InvalidPublicKey,
    /// The signature is not 64 bytes.
    #[error("COSE signature must be 64 bytes, found {len}")]
    BadSignatureLength {
        /// The length found.
        len: usize,
    },
    /// The Ed25519 signature does not verify.
    #[error("COSE signature does not verify under the kid's key")]
    SignatureInvalid,
    /// Valid, but by another key than the one required.
    #[error("COSE signed by {found}, expected {expected}")]
    UnexpectedSigner {
        /// The required signer (hex).
        expected: String,
        /// The actual signer (hex).
        found: String,
    },
}

/// The signer whose signature verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedSigner {
    /// The raw Ed25519 public key.
    pub public_key: [u8; 32],
}

impl VerifiedSigner {
    /// The public key as 64 lowercase hex characters.
    pub fn hex(&self) -> String {
        auspex_wire::hex_lower(&self.public_key)
    }
}

/// A decoded COSE_Sign1.
#[derive(Debug, Clone, PartialEq)]
pub struct CoseSign1 {
    protected: Vec<u8>,
    alg: Option<i64>,
    kid: Option<Vec<u8>>,
    unprotected: Vec<(Cbor, Cbor)>,
    payload: Vec<u8>,
    signature: Vec<u8>,
    tagged: bool,
}

fn label_display(k: &Cbor) -> String {
    match (k.as_i64(), k.as_text()) {
        (Some(n), _) => n.to_string(),
        (_, Some(s)) => format!("{s:?}"),
        _ => format!("<{}>", k.type_name()),
    }
}

impl CoseSign1 {
    /// Decodes COSE_Sign1 bytes (untagged or tag 18).
    pub fn decode(bytes: &[u8]) -> Result<CoseSign1, CoseError> {
        CoseSign1::from_cbor(&cbor::decode(bytes)?)
    }

    /// Decodes from an already decoded item.
    pub fn from_cbor(item: &Cbor) -> Result<CoseSign1, CoseError> {
        let (tagged, inner) = match item {
            Cbor::Tag(COSE_SIGN1_TAG, inner) => (true, &**inner),
            Cbor::Tag(t, _) => return Err(CoseError::UnexpectedTag(*t)),
            other => (false, other),
        };
        let parts = inner.as_array().ok_or(CoseError::NotAnArray {
            found: inner.type_name(),
        })?;
        let [protected, unprotected, payload, signature] = parts else {
            return Err(CoseError::WrongLength { len: parts.len() });
        };
        let bytes_of = |field: &'static str, v: &Cbor| {
            v.as_bytes()
                .map(<[u8]>::to_vec)
                .ok_or(CoseError::FieldNotBytes {
                    field,
                    found: v.type_name(),
                })
        };
        let protected = bytes_of("protected header", protected)?;
        let unprotected = unprotected
            .as_map()
            .ok_or(CoseError::UnprotectedNotMap {
                found: unprotected.type_name(),
            })?
            .to_vec();
        let payload = match payload {
            Cbor::Null => return Err(CoseError::DetachedPayload),
            p => bytes_of("payload", p)?,
        };
        let signature = bytes_of("signature", signature)?;

        let mut alg = None;
        let mut kid = None;
        if !protected.is_empty() {
            let header = cbor::decode(&protected).map_err(CoseError::ProtectedHeader)?;
            let entries = header.as_map().ok_or(CoseError::ProtectedNotMap {
                found: header.type_name(),
            })?;
            let mut seen = std::collections::HashSet::new();
            for (label, value) in entries {
                if !seen.insert(cbor::encode_canonical(label)) {
                    return Err(CoseError::DuplicateHeaderLabel {
                        label: label_display(label),
                    });
                }
                match label.as_i64() {
                    Some(HEADER_ALG) => {
                        alg = Some(value.as_i64().ok_or(CoseError::AlgNotInteger {
                            found: value.type_name(),
                        })?);
                    }
                    Some(HEADER_KID) => {
                        kid = Some(
                            value
                                .as_bytes()
                                .ok_or(CoseError::KidNotBytes {
                                    found: value.type_name(),
                                })?
                                .to_vec(),
                        );
                    }
                    _ => {}
                }
            }
        }
        Ok(CoseSign1 {
            protected,
            alg,
            kid,
            unprotected,
            payload,
            signature,
            tagged,
        })
    }

    /// The protected header bytes exactly as received.
    pub fn protected_bytes(&self) -> &[u8] {
        &self.protected
    }

    /// The protected `alg`, if present.
    pub fn alg(&self) -> Option<i64> {
        self.alg
    }

    /// The protected `kid` bytes, if present.
    pub fn kid(&self) -> Option<&[u8]> {
        self.kid.as_deref()
    }

    /// The kid as text when it is ASCII (what 0.5.5 reports as the signer).
    pub fn kid_text(&self) -> Option<&str> {
        self.kid
            .as_deref()
            .filter(|k| k.is_ascii())
            .and_then(|k| std::str::from_utf8(k).ok())
    }

    /// The public key the kid names: exactly 64 lowercase hex characters.
    pub fn kid_public_key(&self) -> Result<[u8; 32], CoseError> {
        let kid = self.kid.as_deref().ok_or(CoseError::MissingKid)?;
        let bad = CoseError::InvalidKid { len: kid.len() };
        if kid.len() != 64 || !kid.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad);
        }
        let mut key = [0u8; 32];
        for (i, pair) in kid.chunks_exact(2).enumerate() {
            let hi = char::from(pair[0]).to_digit(16).ok_or(bad.clone())?;
            let lo = char::from(pair[1]).to_digit(16).ok_or(bad.clone())?;
            key[i] = (hi * 16 + lo) as u8;
        }
        Ok(key)
    }

    /// The unprotected header entries.
    pub fn unprotected(&self) -> &[(Cbor, Cbor)] {
        &self.unprotected
    }

    /// The payload bytes (for the protocol: a CBOR in-toto statement).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// True when the input carried tag 18.
    pub fn is_tagged(&self) -> bool {
        self.tagged
    }

    /// The signed bytes: canonical CBOR of `["Signature1", protected, h'',
    /// payload]` over the protected bytes as received.
    pub fn sig_structure(&self) -> Vec<u8> {
        cbor::encode_canonical(&Cbor::Array(vec![
            Cbor::Text("Signature1".to_owned()),
            Cbor::Bytes(self.protected.clone()),
            Cbor::Bytes(Vec::new()),
            Cbor::Bytes(self.payload.clone()),
        ]))
    }

    /// Verifies: `alg` must be EdDSA, the kid 64 lowercase hex characters of
    /// a valid key, the signature valid under it (`verify_strict`), and —
    /// when `expected_signer` is given — that key must be the expected one.
    pub fn verify(&self, expected_signer: Option<&[u8; 32]>) -> Result<VerifiedSigner, CoseError> {
        match self.alg {
            None => return Err(CoseError::MissingAlgorithm),
            Some(ALG_EDDSA) => {}
            Some(alg) => return Err(CoseError::UnsupportedAlgorithm { alg }),
        }
        let public_key = self.kid_public_key()?;
        let key = VerifyingKey::from_bytes(&public_key).map_err(|_| CoseError::InvalidPublicKey)?;
        let sig_bytes: [u8; 64] =
            self.signature
                .as_slice()
                .try_into()
                .map_err(|_| CoseError::BadSignatureLength {
                    len: self.signature.len(),
                })?;
        let signature = Signature::from_bytes(&sig_bytes);
        key.verify_strict(&self.sig_structure(), &signature)
            .map_err(|_| CoseError::SignatureInvalid)?;
        if let Some(expected) = expected_signer
            && expected != &public_key
        {
            return Err(CoseError::UnexpectedSigner {
                expected: auspex_wire::hex_lower(expected),
                found: auspex_wire::hex_lower(&public_key),
            });
        }
        Ok(VerifiedSigner { public_key })
    }

    /// General RFC 9052 verification under a key the caller supplies, for
    /// COSE_Sign1 messages outside this protocol (where the kid may be absent,
    /// unprotected, or not a public key): `alg` must be EdDSA over Ed25519 and
    /// the signature valid (`verify_strict`) over the Sig_structure built
    /// from the received protected bytes. Protocol messages use
    /// [`CoseSign1::verify`], which also binds the kid.
    pub fn verify_with_key(&self, key: &VerifyingKey) -> Result<(), CoseError> {
        match self.alg {
            None => return Err(CoseError::MissingAlgorithm),
            Some(ALG_EDDSA) => {}
            Some(alg) => return Err(CoseError::UnsupportedAlgorithm { alg }),
        }
        let sig_bytes: [u8; 64] =
            self.signature
                .as_slice()
                .try_into()
                .map_err(|_| CoseError::BadSignatureLength {
                    len: self.signature.len(),
                })?;
        key.verify_strict(&self.sig_structure(), &Signature::from_bytes(&sig_bytes))
            .map_err(|_| CoseError::SignatureInvalid)
    }

    /// Signs `payload` as the coordinator does: protected `{1: -8, 4:
    /// hex(pubkey)}`, unprotected `{}`, untagged.
    pub fn sign(payload: Vec<u8>, key: &SigningKey) -> CoseSign1 {
        let kid = auspex_wire::hex_lower(key.verifying_key().as_bytes()).into_bytes();
        let protected = cbor::encode_canonical(&Cbor::Map(vec![
            // 1 (alg) → -8 (EdDSA, encoded as -1 - 7); 4 (kid) → ASCII hex.
            (Cbor::Unsigned(1), Cbor::Negative(7)),
            (Cbor::Unsigned(4), Cbor::Bytes(kid.clone())),
        ]));
        let mut cose = CoseSign1 {
            protected,
            alg: Some(ALG_EDDSA),
            kid: Some(kid),
            unprotected: Vec::new(),
            payload,
            signature: Vec::new(),
            tagged: false,
        };
        cose.signature = key.sign(&cose.sig_structure()).to_bytes().to_vec();
        cose
    }

    /// The cbor2-canonical encoding (tag 18 only if the input had it).
    pub fn encode(&self) -> Vec<u8> {
        let array = Cbor::Array(vec![
            Cbor::Bytes(self.protected.clone()),
            Cbor::Map(self.unprotected.clone()),
            Cbor::Bytes(self.payload.clone()),
            Cbor::Bytes(self.signature.clone()),
        ]);
        let item = if self.tagged {
            Cbor::Tag(COSE_SIGN1_TAG, Box::new(array))
        } else {
            array
        };
        cbor::encode_canonical(&item)
    }
}

/// Why a `receipts show` input could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The file is not one well-formed CBOR item.
    #[error("not a CBOR receipt: {0}")]
    NotCbor(CborError),
    /// CBOR, but neither a receipt map nor a COSE_Sign1 array.
    #[error("neither a receipt (CBOR map) nor a COSE_Sign1 (array): found {found}")]
    UnrecognizedShape {
        /// What was found.
        found: String,
    },
    /// A malformed COSE_Sign1.
    #[error("{0}")]
    Cose(CoseError),
    /// The COSE payload is not an in-toto statement.
    #[error("COSE payload is not an in-toto statement: {0}")]
    Statement(StatementError),
    /// The statement's predicate is not a receipt.
    #[error("statement predicateType is {found:?}, expected {RECEIPT_PREDICATE_TYPE:?}")]
    WrongPredicateType {
        /// The predicate type found.
        found: String,
    },
    /// The (naked or embedded) receipt is invalid.
    #[error("{0}")]
    Receipt(ReceiptError),
}

/// The signed wrapping of a receipt, when the input was a COSE_Sign1.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiptEnvelope {
    /// The decoded COSE_Sign1 (re-verify with a pinned signer via
    /// [`CoseSign1::verify`]).
    pub cose: CoseSign1,
    /// The in-toto statement in its payload.
    pub statement: Statement,
    /// The outcome of [`CoseSign1::verify`] without a pinned signer.
    pub signature: Result<VerifiedSigner, CoseError>,
    /// SHA-256 of the predicate bytes equals every subject digest.
    pub subject_digest_matches: bool,
}

impl ReceiptEnvelope {
    /// True when the signature verified (self-consistency only: the kid names
    /// the key; pin it against an authorized list before trusting it).
    pub fn signature_valid(&self) -> bool {
        self.signature.is_ok()
    }

    /// The signer as the kid names it (ASCII), valid or not.
    pub fn signer_hex(&self) -> Option<&str> {
        self.cose.kid_text()
    }
}

/// What `receipts show PATH` reads from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiptInspection {
    /// The receipt.
    pub receipt: Receipt,
    /// `None` for a naked receipt CBOR; the envelope for a COSE_Sign1.
    pub envelope: Option<ReceiptEnvelope>,
}

/// Reads a receipt file for `receipts show`: either a naked receipt CBOR map
/// (what 0.5.5 accepts) or a COSE_Sign1 (untagged or tag 18) wrapping an
/// in-toto statement with predicateType [`RECEIPT_PREDICATE_TYPE`]. For a
/// COSE input the signature and subject digest are checked and reported (a
/// bad signature is not an error: the receipt is still shown); malformed
/// input of any kind is a typed error, never a panic.
pub fn inspect_receipt(bytes: &[u8]) -> Result<ReceiptInspection, InspectError> {
    let item = cbor::decode(bytes).map_err(InspectError::NotCbor)?;
    match &item {
        Cbor::Map(_) => {
            let receipt = Receipt::validate_cbor(&item)
                .map_err(|v| InspectError::Receipt(ReceiptError::Invalid(v)))?;
            Ok(ReceiptInspection {
                receipt,
                envelope: None,
            })
        }
        Cbor::Array(_) | Cbor::Tag(COSE_SIGN1_TAG, _) => {
            let cose = CoseSign1::from_cbor(&item).map_err(InspectError::Cose)?;
            let statement = Statement::decode(cose.payload()).map_err(InspectError::Statement)?;
            if statement.predicate_type != RECEIPT_PREDICATE_TYPE {
                return Err(InspectError::WrongPredicateType {
                    found: statement.predicate_type,
                });
            }
            let receipt =
                receipt::decode_cbor(&statement.predicate).map_err(InspectError::Receipt)?;
            let signature = cose.verify(None);
            let subject_digest_matches = statement.subject_digest_matches();
            Ok(ReceiptInspection {
                receipt,
                envelope: Some(ReceiptEnvelope {
                    cose,
                    statement,
                    signature,
                    subject_digest_matches,
                }),
            })
        }
        Cbor::Tag(t, _) => Err(InspectError::UnrecognizedShape {
            found: format!("CBOR tag {t}"),
        }),
        other => Err(InspectError::UnrecognizedShape {
            found: other.type_name().to_owned(),
        }),
    }
}
