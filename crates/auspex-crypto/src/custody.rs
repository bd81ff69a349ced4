//! The proof-of-transfer (custody) record of an evidence bundle (spec
//! `tenant-sdk.md` §3g, §7.1–§7.2; `coordinator.md` §8, §13.8).
//!
//! The coordinator signs the UTF-8 bytes
//! `<result_set_root>|<collected_by_pubkey>|<collected_at>|<manifest_hash>`
//! (four strings verbatim, no escaping, no trailing newline) with its Ed25519
//! key; `coordinator_signature` is the signature in **lowercase hex**.
//!
//! Checks, each named (what it stops):
//!
//! 1. [`FIELDS`] — the four record members, the signature and the signer key
//!    are present, and no member contains `|` (the record has no escaping, so
//!    a `|` would let two different transfers share one signed string).
//! 2. [`SIGNATURE`] — the signature verifies (`verify_strict`) under
//!    `coordinator_pubkey_hex`: the record was not edited after signing.
//! 3. [`SIGNER_PINNED`] — the signer is one of the caller's authorized keys
//!    (without a list the signature only proves self-consistency with a key
//!    the bundle itself names; §11.1 #3).
//! 4. [`ROOT_BINDING`] ([`verify_root_binding`]) — the signed
//!    `result_set_root` commits to the delivered rows: either it equals the
//!    flat custody root recomputed from them (`flat-v0`) or the verified
//!    attestation's Merkle root (`sha256-merkle-v0/v1`). `root_kind` is
//!    unsigned, so a missing or unknown value fails instead of skipping the
//!    check (the cherry-pick gap of §11.2 #15), and a custody record bound to
//!    a *partial* checkpoint attestation fails too.
//! 5. [`ATTESTATION_SIGNER`] — the attestation was signed by the same key as
//!    the custody record (AUD-23, §11.2 #10).

use auspex_wire::bundle::Transfer;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::attestation::VerifiedAttestation;
use crate::merkle;
use crate::report::{CheckId, Report, Verdict};
use crate::worker_sig::decode_hex;

/// The record members, the signature and the signer key are present and
/// unambiguous.
pub const FIELDS: CheckId = CheckId("custody.fields");
/// The coordinator signature verifies over the record.
pub const SIGNATURE: CheckId = CheckId("custody.signature");
/// The signer is an authorized coordinator key.
pub const SIGNER_PINNED: CheckId = CheckId("custody.signer_pinned");
/// The signed root commits to the delivered rows (flat root or attestation
/// root).
pub const ROOT_BINDING: CheckId = CheckId("custody.root_binding");
/// The attestation and the custody record have the same signer.
pub const ATTESTATION_SIGNER: CheckId = CheckId("custody.attestation_signer");

/// `root_kind` of a custody record over the flat root.
pub const ROOT_KIND_FLAT: &str = "flat-v0";

/// Why a custody record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CustodyError {
    /// A member is absent or null.
    #[error("transfer lacks {field}")]
    MissingField {
        /// The member.
        field: &'static str,
    },
    /// A record member contains the separator `|`.
    #[error("transfer {field} contains '|', which makes the signed record ambiguous")]
    AmbiguousField {
        /// The member.
        field: &'static str,
    },
    /// The signer key is not 64 hex characters of an Ed25519 public key.
    #[error("coordinator_pubkey_hex {pubkey:?} is not an Ed25519 public key")]
    PublicKey {
        /// The key as given.
        pubkey: String,
    },
    /// The signature is not 128 hex characters.
    #[error("coordinator_signature is not 128 hex characters ({len} characters)")]
    SignatureEncoding {
        /// The length found.
        len: usize,
    },
    /// The signature does not verify.
    #[error("coordinator_signature does not verify under {pubkey}")]
    SignatureInvalid {
        /// The signer key, lowercase hex.
        pubkey: String,
    },
    /// The signer is not in the authorized list.
    #[error("custody signer {signer} is not an authorized coordinator key")]
    UnauthorizedSigner {
        /// The signer key, lowercase hex.
        signer: String,
    },
}

/// The four signed members of a custody record, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustodyRecord<'a> {
    /// The attestation root or the flat custody root.
    pub result_set_root: &'a str,
    /// The collector's key hex, or `<maintainer>` for a bearer caller.
    pub collected_by: &'a str,
    /// `datetime.isoformat()` text, verbatim.
    pub collected_at: &'a str,
    /// The experiment's manifest hash.
    pub manifest_hash: &'a str,
}

impl<'a> CustodyRecord<'a> {
    /// The record members of a bundle's `transfer` block.
    pub fn from_transfer(t: &'a Transfer) -> Result<CustodyRecord<'a>, CustodyError> {
        let req =
            |v: &'a Option<String>, field| v.as_deref().ok_or(CustodyError::MissingField { field });
        Ok(CustodyRecord {
            result_set_root: req(&t.result_set_root, "result_set_root")?,
            collected_by: req(&t.collected_by_pubkey, "collected_by_pubkey")?,
            collected_at: req(&t.collected_at, "collected_at")?,
            manifest_hash: req(&t.manifest_hash, "manifest_hash")?,
        })
    }

    /// Refuses members containing `|`: with no escaping, such a record could
    /// be re-split into a different transfer with the same signed bytes.
    pub fn check_unambiguous(&self) -> Result<(), CustodyError> {
        for (field, v) in [
            ("result_set_root", self.result_set_root),
            ("collected_by_pubkey", self.collected_by),
            ("collected_at", self.collected_at),
            ("manifest_hash", self.manifest_hash),
        ] {
            if v.contains('|') {
                return Err(CustodyError::AmbiguousField { field });
            }
        }
        Ok(())
    }

    /// The signed text, `root|collected_by|collected_at|manifest_hash`.
    pub fn text(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.result_set_root, self.collected_by, self.collected_at, self.manifest_hash
        )
    }

    /// The signed bytes (UTF-8 of [`Self::text`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.text().into_bytes()
    }

    /// Signs the record as the coordinator does: lowercase hex of the
    /// Ed25519 signature. Refuses an ambiguous record.
    pub fn sign(&self, key: &SigningKey) -> Result<String, CustodyError> {
        self.check_unambiguous()?;
        Ok(auspex_wire::hex_lower(
            &key.sign(self.text().as_bytes()).to_bytes(),
        ))
    }

    /// Verifies `signature_hex` (128 hex digits, either case) under
    /// `signer_hex` with `verify_strict`; the record must be unambiguous.
    pub fn verify(
        &self,
        signature_hex: &str,
        signer_hex: &str,
    ) -> Result<VerifiedCustody, CustodyError> {
        self.check_unambiguous()?;
        let key = parse_key(signer_hex)?;
        let sig = decode_hex::<64>(signature_hex).ok_or(CustodyError::SignatureEncoding {
            len: signature_hex.len(),
        })?;
        key.verify_strict(self.text().as_bytes(), &Signature::from_bytes(&sig))
            .map_err(|_| CustodyError::SignatureInvalid {
                pubkey: auspex_wire::hex_lower(key.as_bytes()),
            })?;
        Ok(VerifiedCustody {
            signer: key.to_bytes(),
            result_set_root: self.result_set_root.to_owned(),
            collected_at: self.collected_at.to_owned(),
        })
    }
}

fn parse_key(hex: &str) -> Result<VerifyingKey, CustodyError> {
    let bad = || CustodyError::PublicKey {
        pubkey: hex.to_owned(),
    };
    let bytes = decode_hex::<32>(hex).ok_or_else(bad)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| bad())
}

/// A custody record whose signature verified: only this module constructs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCustody {
    signer: [u8; 32],
    result_set_root: String,
    collected_at: String,
}

impl VerifiedCustody {
    /// The key that signed the record.
    pub fn signer(&self) -> &[u8; 32] {
        &self.signer
    }

    /// The signed root.
    pub fn result_set_root(&self) -> &str {
        &self.result_set_root
    }

    /// The signed collection time, verbatim.
    pub fn collected_at(&self) -> &str {
        &self.collected_at
    }
}

/// What [`verify_transfer`] requires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustodyPolicy {
    /// Authorized coordinator keys. `None`: [`SIGNER_PINNED`] is not checked
    /// (and not required); `Some(list)`: the signer must be in it.
    pub authorized_signers: Option<Vec<[u8; 32]>>,
}

/// The outcome of [`verify_transfer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustodyVerification {
    /// The named checks.
    pub report: Report,
    pinned: bool,
    verified: Option<VerifiedCustody>,
}

impl CustodyVerification {
    /// The checks that must pass for a verified record: [`FIELDS`],
    /// [`SIGNATURE`], and [`SIGNER_PINNED`] when a key list was given.
    pub fn required(&self) -> Vec<CheckId> {
        if self.pinned {
            vec![FIELDS, SIGNATURE, SIGNER_PINNED]
        } else {
            vec![FIELDS, SIGNATURE]
        }
    }

    /// The verdict over [`Self::required`].
    pub fn verdict(&self) -> Verdict {
        self.report.verdict(&self.required())
    }

    /// The verified record when the verdict is verified.
    pub fn verified(&self) -> Option<&VerifiedCustody> {
        self.verified.as_ref()
    }

    /// The verified record, or the report explaining why not.
    pub fn into_result(self) -> Result<VerifiedCustody, Report> {
        match self.verified {
            Some(v) => Ok(v),
            None => Err(self.report),
        }
    }
}

/// Verifies a bundle's `transfer` block: [`FIELDS`], [`SIGNATURE`],
/// [`SIGNER_PINNED`]. Root binding needs the delivered rows and the
/// attestation: see [`verify_root_binding`].
pub fn verify_transfer(transfer: &Transfer, policy: &CustodyPolicy) -> CustodyVerification {
    let mut r = Report::new();
    let fields = CustodyRecord::from_transfer(transfer).and_then(|rec| {
        rec.check_unambiguous()?;
        let sig = transfer
            .coordinator_signature
            .as_deref()
            .ok_or(CustodyError::MissingField {
                field: "coordinator_signature",
            })?;
        let signer =
            transfer
                .coordinator_pubkey_hex
                .as_deref()
                .ok_or(CustodyError::MissingField {
                    field: "coordinator_pubkey_hex",
                })?;
        Ok((rec, sig, signer))
    });
    let verified = match fields {
        Err(e) => {
            r.fail(FIELDS, e.to_string());
            let why = r.unmet(&[FIELDS]).unwrap_or_default();
            r.not_checked(SIGNATURE, why.clone());
            r.not_checked(SIGNER_PINNED, why);
            None
        }
        Ok((rec, sig, signer)) => {
            r.pass(FIELDS);
            match rec.verify(sig, signer) {
                Err(e) => {
                    r.fail(SIGNATURE, e.to_string());
                    let why = r.unmet(&[SIGNATURE]).unwrap_or_default();
                    r.not_checked(SIGNER_PINNED, why);
                    None
                }
                Ok(v) => {
                    r.pass(SIGNATURE);
                    match &policy.authorized_signers {
                        None => {
                            r.not_checked(
                                SIGNER_PINNED,
                                "no authorized coordinator keys given: the signature only proves \
                                 consistency with the key the bundle names",
                            );
                            Some(v)
                        }
                        Some(list) if list.contains(v.signer()) => {
                            r.pass(SIGNER_PINNED);
                            Some(v)
                        }
                        Some(_) => {
                            r.fail(
                                SIGNER_PINNED,
                                CustodyError::UnauthorizedSigner {
                                    signer: auspex_wire::hex_lower(v.signer()),
                                }
                                .to_string(),
                            );
                            None
                        }
                    }
                }
            }
        }
    };
    CustodyVerification {
        report: r,
        pinned: policy.authorized_signers.is_some(),
        verified,
    }
}

/// Checks that a verified custody record's root commits to the delivered
/// consensus rows (`(unit_id, semantic_hash)` pairs; a missing hash counts
/// as `""` as in the flat root) — [`ROOT_BINDING`] — and, when an
/// attestation is given, that it has the custody signer —
/// [`ATTESTATION_SIGNER`].
///
/// `root_kind` is not covered by the signature, so it only says which
/// recomputation must succeed: `flat-v0` → the flat custody root of `rows`;
/// `sha256-merkle-v0`/`-v1` → the given verified attestation's root under
/// that algorithm (its units must be compared with the rows separately:
/// completeness is the evidence verifier's check). A missing or unknown
/// `root_kind`, a missing attestation for a Merkle kind, an `attestation_id`
/// that names another attestation, and a partial attestation all fail.
pub fn verify_root_binding<'r>(
    custody: &VerifiedCustody,
    transfer: &Transfer,
    rows: impl IntoIterator<Item = (&'r str, Option<&'r str>)>,
    attestation: Option<&VerifiedAttestation>,
) -> Report {
    let mut r = Report::new();
    let root = custody.result_set_root();
    let binding: Result<(), String> = match transfer.root_kind.as_deref() {
        None => Err("root_kind is missing: the custody root cannot be tied to the rows".into()),
        Some(ROOT_KIND_FLAT) => {
            let flat = merkle::flat_custody_root(rows);
            if flat == root {
                Ok(())
            } else {
                Err(format!(
                    "result_set_root {root} is not the flat root of the delivered rows ({flat})"
                ))
            }
        }
        Some(kind @ (merkle::ALG_V0 | merkle::ALG_V1)) => match attestation {
            None => Err(format!(
                "root_kind {kind} names an attestation root, but no verified attestation was given"
            )),
            Some(a) if a.algorithm().name() != kind => Err(format!(
                "root_kind {kind} differs from the attestation's algorithm {}",
                a.algorithm().name()
            )),
            Some(a) if a.merkle_root() != root => Err(format!(
                "result_set_root {root} differs from the attested root {}",
                a.merkle_root()
            )),
            Some(a) if a.partial() => Err(format!(
                "custody is bound to partial checkpoint attestation {}",
                a.attestation_id()
            )),
            Some(a) => match transfer.attestation_id.as_deref() {
                Some(id) if id != a.attestation_id() => Err(format!(
                    "transfer names attestation {id}, the verified one is {}",
                    a.attestation_id()
                )),
                _ => Ok(()),
            },
        },
        Some(other) => Err(format!("unknown root_kind {other:?}")),
    };
    match binding {
        Ok(()) => r.pass(ROOT_BINDING),
        Err(why) => r.fail(ROOT_BINDING, why),
    }
    match attestation {
        None => r.not_checked(ATTESTATION_SIGNER, "no attestation given"),
        Some(a) if a.signer() == custody.signer() => r.pass(ATTESTATION_SIGNER),
        Some(a) => r.fail(
            ATTESTATION_SIGNER,
            format!(
                "attestation signed by {}, custody record by {}",
                auspex_wire::hex_lower(a.signer()),
                auspex_wire::hex_lower(custody.signer())
            ),
        ),
    }
    r
}
