//! Transparency-log verification, fully offline: a Rekor v1 log entry
//! (`GET /api/v1/log/entries/{uuid}`) checked against a pinned Sigstore
//! trusted root, every step its own named check (spec `tenant-sdk.md` §3f,
//! and the residual-trust gaps of §11 that the official SDK leaves open: it
//! trusts the proof's root as returned and never checks the checkpoint, the
//! SET or the log's key).
//!
//! | check | passes when |
//! | --- | --- |
//! | [`BODY_HASH`] `tlog.body_hash` | the entry body commits to the artifact's SHA-256 (`rekord`/`hashedrekord` `spec.data.hash`, `intoto` `spec.content.hash`); not checked without an artifact digest |
//! | [`INCLUSION_PROOF`] `tlog.inclusion_proof` | the RFC 6962 audit path leads from `SHA-256(0x00 ‖ body)` at the proof's index to the proof's `rootHash` in a tree of `treeSize` |
//! | [`ENTRY_UUID`] `tlog.entry_uuid` | the response key (64 hex, or 16-hex tree ID + 64 hex) ends with that leaf hash; not checked for a bare entry |
//! | [`LOG_INDEX`] `tlog.log_index` | the entry's `logIndex` relates to the proof's as [`LogIndexRule`] says, and equals [`VerifyOptions::expected_log_index`] if given |
//! | [`LOG_KEY_TRUSTED`] `tlog.log_key_trusted` | the entry's `logID` names a log of the trusted root (`logId.keyId`), that log's key is supported, SHA-256 of its DER key is the `logID` (Rekor's definition), and its hash algorithm is SHA2_256 |
//! | [`LOG_KEY_VALID`] `tlog.log_key_valid_at_integrated_time` | `integratedTime` lies inside the key's `validFor` window (inclusive) |
//! | [`CHECKPOINT_SIGNATURE`] `tlog.checkpoint_signature` | the proof's checkpoint is a well-formed signed note carrying a valid signature by the log's key under the log's name (see [`verify_checkpoint`]) |
//! | [`CHECKPOINT_ORIGIN`] `tlog.checkpoint_origin` | the checkpoint's origin is the log's name, or Rekor's `<name> - <tree ID>`; with an 80-digit entry UUID, that tree ID is the UUID's first 16 hex digits (the shard holding the entry) |
//! | [`CHECKPOINT_MATCHES_PROOF`] `tlog.checkpoint_matches_proof` | the signed size and root equal the proof's `treeSize` and `rootHash` |
//! | [`SET_SIGNATURE`] `tlog.set_signature` | the signed entry timestamp verifies with the log's key over the RFC 8785 form of `{body, integratedTime, logID, logIndex}` (see [`set_payload`]) |
//!
//! Checks run in that order; a check whose prerequisite did not pass is
//! recorded as not checked (`needs tlog.log_key_trusted`), never omitted, so
//! [`Report::first_failure`] names the step that broke. Absent evidence (no
//! checkpoint, no SET, no `logID`) is "not checked" with the reason; present
//! but wrong evidence is "failed". [`required_checks`] lists what a verdict
//! needs: everything except `tlog.body_hash` when no artifact digest was
//! given and `tlog.entry_uuid` for a bare entry.
//!
//! **Sharding.** Public Rekor is split into shards (one RFC 6962 tree each).
//! The entry's `logIndex` (which the SET signs) is the log-wide *virtual*
//! index: the index inside the active shard plus the sizes of the earlier
//! shards; the inclusion proof's `logIndex` is the index inside the shard's
//! tree. Rekor's own verifier never relates the two; offline, the shard
//! offsets are unknown, so [`LogIndexRule::Sharded`] (the default) requires
//! `entry ≥ proof`, and [`LogIndexRule::Exact`] (single-tree logs such as the
//! devnet) requires equality.
//!
//! **Key hints.** Rekor prefixes each checkpoint signature with the first 4
//! bytes of SHA-256 of the log key's DER SubjectPublicKeyInfo (for every key
//! type; for ECDSA this is also C2SP signed-note type `0x02`). For Ed25519 the
//! C2SP ID `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4]` is accepted as well; the
//! [`testlog`] signs Ed25519 notes with the C2SP ID.
//!
//! Consistency between two checkpoints of one log (for monitors) is
//! [`verify_consistency`]. The RFC 6962 arithmetic is [`crate::merkle`]'s.

mod body;
mod checkpoint;
mod entry;
mod key;
mod set;
pub mod testlog;
mod time;
mod trusted_root;

pub use body::{BodyError, check_artifact, committed_sha256};
pub use checkpoint::{
    Checkpoint, CheckpointError, MAX_NOTE_BYTES, MAX_SIGNATURES, NoteError, NoteSignature,
    SignedNote, verify_checkpoint,
};
pub use entry::{DecodedProof, EntryError, InclusionProof, ProofDecodeError, RekorEntry};
pub use key::{KEY_DETAILS_ED25519, KEY_DETAILS_P256, KeyError, LogKey, SignatureError};
pub use set::{SetError, entry_set_payload, set_payload, verify_set};
pub use time::{TimeError, Timestamp};
pub use trusted_root::{MEDIA_TYPE_V01, TransparencyLog, TrustedRoot, TrustedRootError};

use crate::merkle::{self, Hash};
use crate::report::{CheckId, Report};

/// The entry response could be read as a Rekor entry (only [`verify_entry`]
/// records it: it fails when the bytes are not an entry at all).
pub const ENTRY_FORMAT: CheckId = CheckId("tlog.entry_format");
/// The body commits to the artifact's digest.
pub const BODY_HASH: CheckId = CheckId("tlog.body_hash");
/// The RFC 6962 inclusion proof verifies.
pub const INCLUSION_PROOF: CheckId = CheckId("tlog.inclusion_proof");
/// The entry UUID is (ends with) the leaf hash of the body.
pub const ENTRY_UUID: CheckId = CheckId("tlog.entry_uuid");
/// The entry's and the proof's log indices agree.
pub const LOG_INDEX: CheckId = CheckId("tlog.log_index");
/// The entry's `logID` names a log of the trusted root with a usable key.
pub const LOG_KEY_TRUSTED: CheckId = CheckId("tlog.log_key_trusted");
/// The log's key was valid at the entry's `integratedTime`.
pub const LOG_KEY_VALID: CheckId = CheckId("tlog.log_key_valid_at_integrated_time");
/// The checkpoint is signed by the log's key.
pub const CHECKPOINT_SIGNATURE: CheckId = CheckId("tlog.checkpoint_signature");
/// The checkpoint's origin is the log's.
pub const CHECKPOINT_ORIGIN: CheckId = CheckId("tlog.checkpoint_origin");
/// The checkpoint's size and root are the proof's.
pub const CHECKPOINT_MATCHES_PROOF: CheckId = CheckId("tlog.checkpoint_matches_proof");
/// The signed entry timestamp verifies.
pub const SET_SIGNATURE: CheckId = CheckId("tlog.set_signature");

/// The checks of [`verify_parsed`], in the order they are made.
pub const ENTRY_CHECKS: [CheckId; 10] = [
    BODY_HASH,
    INCLUSION_PROOF,
    ENTRY_UUID,
    LOG_INDEX,
    LOG_KEY_TRUSTED,
    LOG_KEY_VALID,
    CHECKPOINT_SIGNATURE,
    CHECKPOINT_ORIGIN,
    CHECKPOINT_MATCHES_PROOF,
    SET_SIGNATURE,
];

/// The older checkpoint of a consistency check is signed by the log.
pub const OLD_CHECKPOINT_SIGNATURE: CheckId = CheckId("tlog.old_checkpoint_signature");
/// The newer checkpoint of a consistency check is signed by the log.
pub const NEW_CHECKPOINT_SIGNATURE: CheckId = CheckId("tlog.new_checkpoint_signature");
/// The consistency proof shows the newer tree extends the older one.
pub const CONSISTENCY_PROOF: CheckId = CheckId("tlog.consistency_proof");

/// How the entry's `logIndex` must relate to its inclusion proof's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogIndexRule {
    /// A sharded Rekor: the entry's virtual index is at least the index
    /// inside the shard (equal for the first shard).
    #[default]
    Sharded,
    /// A single-tree log: the two are equal.
    Exact,
}

/// What to verify the entry against besides the trusted root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The artifact's SHA-256 (for `tlog.body_hash`); `None` leaves that
    /// check not checked, and not required.
    pub artifact_sha256: Option<[u8; 32]>,
    /// The log index the artifact's anchor records (an attestation's
    /// `rekor_log_index`); the entry's `logIndex` must equal it.
    pub expected_log_index: Option<u64>,
    /// How the entry's and the proof's indices must relate.
    pub log_index_rule: LogIndexRule,
}

/// The checks a verdict over [`verify_parsed`]'s report must see passed:
/// all of [`ENTRY_CHECKS`], less `tlog.body_hash` without an artifact digest
/// and `tlog.entry_uuid` for a bare entry.
pub fn required_checks(entry: &RekorEntry, opts: &VerifyOptions) -> Vec<CheckId> {
    ENTRY_CHECKS
        .iter()
        .copied()
        .filter(|c| *c != BODY_HASH || opts.artifact_sha256.is_some())
        .filter(|c| *c != ENTRY_UUID || entry.uuid.is_some())
        .collect()
}

/// Parses an entry response and verifies it. A response that is not an
/// entry fails `tlog.entry_format` and leaves every other check not checked.
pub fn verify_entry(entry_json: &[u8], trusted_root: &TrustedRoot, opts: &VerifyOptions) -> Report {
    let mut report = Report::new();
    match RekorEntry::parse(entry_json) {
        Ok(entry) => {
            report.pass(ENTRY_FORMAT);
            report.extend(verify_parsed(&entry, trusted_root, opts));
        }
        Err(e) => {
            report.fail(ENTRY_FORMAT, e.to_string());
            for c in ENTRY_CHECKS {
                report.not_checked(c, "needs tlog.entry_format");
            }
        }
    }
    report
}

/// Verifies a parsed entry (the checks of the module table, in order).
pub fn verify_parsed(
    entry: &RekorEntry,
    trusted_root: &TrustedRoot,
    opts: &VerifyOptions,
) -> Report {
    let mut r = Report::new();

    // tlog.body_hash
    match &opts.artifact_sha256 {
        None => r.not_checked(BODY_HASH, "no artifact digest given"),
        Some(a) => {
            r.record(BODY_HASH, check_artifact(&entry.body, a));
        }
    }

    // tlog.inclusion_proof
    let leaf = merkle::leaf_hash(&entry.body);
    let proof = match &entry.inclusion_proof {
        None => {
            r.not_checked(INCLUSION_PROOF, "the entry carries no inclusion proof");
            None
        }
        Some(p) => match p.decode() {
            Ok(d) => {
                r.record(
                    INCLUSION_PROOF,
                    merkle::verify_inclusion(
                        d.log_index,
                        d.tree_size,
                        &leaf,
                        &d.hashes,
                        &d.root_hash,
                    ),
                );
                Some(d)
            }
            Err(e) => {
                r.fail(INCLUSION_PROOF, e.to_string());
                None
            }
        },
    };

    // tlog.entry_uuid
    match &entry.uuid {
        None => r.not_checked(ENTRY_UUID, "a bare entry has no UUID"),
        Some(uuid) => {
            r.record(ENTRY_UUID, check_uuid(uuid, &leaf));
        }
    }

    // tlog.log_index
    check_log_index(&mut r, entry, opts);

    // tlog.log_key_trusted
    let log = match &entry.log_id {
        None => {
            r.not_checked(LOG_KEY_TRUSTED, "the entry carries no logID");
            None
        }
        Some(id) => match find_trusted_log(id, trusted_root) {
            Ok((log, key)) => {
                r.pass(LOG_KEY_TRUSTED);
                Some((log, key))
            }
            Err(why) => {
                r.fail(LOG_KEY_TRUSTED, why);
                None
            }
        },
    };

    // tlog.log_key_valid_at_integrated_time
    match log {
        None => r.not_checked(LOG_KEY_VALID, "needs tlog.log_key_trusted"),
        Some((log, _)) => {
            let t = Timestamp::from_unix(entry.integrated_time);
            if log.valid_at(t) {
                r.pass(LOG_KEY_VALID);
            } else {
                r.fail(
                    LOG_KEY_VALID,
                    format!(
                        "integratedTime {t} is outside the key's validity ({} .. {})",
                        log.valid_from
                            .map_or("unbounded".to_owned(), |s| s.to_string()),
                        log.valid_until
                            .map_or("unbounded".to_owned(), |e| e.to_string()),
                    ),
                );
            }
        }
    }

    // tlog.checkpoint_signature, tlog.checkpoint_origin, tlog.checkpoint_matches_proof
    let note = entry
        .inclusion_proof
        .as_ref()
        .and_then(|p| p.checkpoint.as_deref());
    let checkpoint = match (log, note) {
        (_, None) => {
            r.not_checked(CHECKPOINT_SIGNATURE, "the entry carries no checkpoint");
            None
        }
        (None, Some(_)) => {
            r.not_checked(CHECKPOINT_SIGNATURE, "needs tlog.log_key_trusted");
            None
        }
        (Some((log, key)), Some(note)) => match verify_checkpoint(note, key, log.note_name()) {
            Ok(c) => {
                r.pass(CHECKPOINT_SIGNATURE);
                Some((log, c))
            }
            Err(e) => {
                r.fail(CHECKPOINT_SIGNATURE, e.to_string());
                None
            }
        },
    };
    match &checkpoint {
        None => {
            r.not_checked(CHECKPOINT_ORIGIN, "needs tlog.checkpoint_signature");
            r.not_checked(CHECKPOINT_MATCHES_PROOF, "needs tlog.checkpoint_signature");
        }
        Some((log, c)) => {
            r.record(
                CHECKPOINT_ORIGIN,
                check_origin(&c.origin, log.note_name(), entry.uuid.as_deref()),
            );
            match &proof {
                None => r.not_checked(
                    CHECKPOINT_MATCHES_PROOF,
                    "the inclusion proof's size and root cannot be decoded",
                ),
                Some(d) => {
                    r.record(CHECKPOINT_MATCHES_PROOF, check_matches(c, d));
                }
            }
        }
    }

    // tlog.set_signature
    match (log, &entry.signed_entry_timestamp) {
        (_, None) => r.not_checked(SET_SIGNATURE, "the entry carries no signedEntryTimestamp"),
        (None, Some(_)) => r.not_checked(SET_SIGNATURE, "needs tlog.log_key_trusted"),
        (Some((_, key)), Some(set)) => {
            r.record(SET_SIGNATURE, verify_set(entry, set, key));
        }
    }
    r
}

fn check_uuid(uuid: &str, leaf: &Hash) -> Result<(), String> {
    let want = auspex_wire::hex_lower(leaf);
    let lower = uuid.to_ascii_lowercase();
    let ok_form =
        (lower.len() == 64 || lower.len() == 80) && lower.bytes().all(|b| b.is_ascii_hexdigit());
    if !ok_form {
        return Err(format!(
            "entry UUID {:?} is neither 64 nor 80 hex digits",
            uuid.chars().take(100).collect::<String>()
        ));
    }
    if !lower.ends_with(&want) {
        return Err(format!(
            "entry UUID {lower} does not end with the body's leaf hash {want}"
        ));
    }
    Ok(())
}

fn check_log_index(r: &mut Report, entry: &RekorEntry, opts: &VerifyOptions) {
    if let Some(want) = opts.expected_log_index
        && entry.log_index != want
    {
        r.fail(
            LOG_INDEX,
            format!(
                "entry logIndex {} is not the expected {want}",
                entry.log_index
            ),
        );
        return;
    }
    let Some(p) = &entry.inclusion_proof else {
        if opts.expected_log_index.is_some() {
            r.pass(LOG_INDEX);
        } else {
            r.not_checked(
                LOG_INDEX,
                "the entry carries no inclusion proof to compare with",
            );
        }
        return;
    };
    let (entry_ix, proof_ix) = (entry.log_index, p.log_index);
    match opts.log_index_rule {
        LogIndexRule::Exact if entry_ix != proof_ix => r.fail(
            LOG_INDEX,
            format!("entry logIndex {entry_ix} is not the proof's logIndex {proof_ix}"),
        ),
        LogIndexRule::Sharded if entry_ix < proof_ix => r.fail(
            LOG_INDEX,
            format!(
                "entry logIndex {entry_ix} is below the proof's logIndex {proof_ix} \
                 (a log-wide index is never below the index inside its shard)"
            ),
        ),
        _ => r.pass(LOG_INDEX),
    }
}

fn find_trusted_log<'a>(
    log_id_hex: &str,
    root: &'a TrustedRoot,
) -> Result<(&'a TransparencyLog, &'a LogKey), String> {
    let Some(id) = entry::decode_hex(log_id_hex) else {
        return Err(format!(
            "logID {:?} is not hex",
            log_id_hex.chars().take(100).collect::<String>()
        ));
    };
    let Some(log) = root.find_log(&id) else {
        return Err(format!(
            "logID {} is not a log of the trusted root",
            auspex_wire::hex_lower(&id)
        ));
    };
    let Some(key) = &log.key else {
        return Err(format!(
            "the trusted log {} has a {} key, which is not supported",
            log.base_url, log.key_details
        ));
    };
    if let Some(h) = &log.hash_algorithm
        && h != "SHA2_256"
    {
        return Err(format!(
            "the trusted log {} uses hash algorithm {h}, not SHA2_256",
            log.base_url
        ));
    }
    match key.log_id() {
        Ok(computed) if computed.as_slice() == id.as_slice() => Ok((log, key)),
        Ok(computed) => Err(format!(
            "the trusted log {} is named {} but its key's SHA-256 is {}",
            log.base_url,
            auspex_wire::hex_lower(&id),
            auspex_wire::hex_lower(&computed)
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn check_origin(origin: &str, name: &str, uuid: Option<&str>) -> Result<(), String> {
    let tree = origin
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix(" - "))
        .filter(|t| {
            !t.is_empty()
                && t.bytes().all(|b| b.is_ascii_digit())
                && (*t == "0" || !t.starts_with('0'))
        });
    if origin != name && tree.is_none() {
        return Err(format!(
            "checkpoint origin {origin:?} is not the log's ({name:?} or \"{name} - <tree ID>\")"
        ));
    }
    // An 80-digit entry UUID starts with the ID of the tree (shard) holding
    // the entry, in 16 hex digits: the checkpoint must be that tree's.
    if let (Some(tree), Some(uuid)) = (tree, uuid)
        && uuid.len() == 80
        && uuid.is_ascii()
    {
        let Ok(id) = tree.parse::<u64>() else {
            return Err(format!("checkpoint tree ID {tree} is not a 64-bit number"));
        };
        let want = format!("{id:016x}");
        let got = uuid[..16].to_ascii_lowercase();
        if got != want {
            return Err(format!(
                "checkpoint is for tree {id} ({want}) but the entry UUID names tree {got}"
            ));
        }
    }
    Ok(())
}

fn check_matches(c: &Checkpoint, d: &DecodedProof) -> Result<(), String> {
    if c.size != d.tree_size {
        return Err(format!(
            "checkpoint size {} is not the proof's treeSize {}",
            c.size, d.tree_size
        ));
    }
    if c.root_hash != d.root_hash {
        return Err(format!(
            "checkpoint root {} is not the proof's rootHash {}",
            auspex_wire::hex_lower(&c.root_hash),
            auspex_wire::hex_lower(&d.root_hash)
        ));
    }
    Ok(())
}

/// Verifies that `new_checkpoint` extends `old_checkpoint` (both signed
/// checkpoints of `log`) by the RFC 6962 consistency `proof`: checks
/// [`OLD_CHECKPOINT_SIGNATURE`], [`NEW_CHECKPOINT_SIGNATURE`] and
/// [`CONSISTENCY_PROOF`] (same origin, proof valid between the two signed
/// sizes and roots).
pub fn verify_consistency(
    log: &TransparencyLog,
    old_checkpoint: &str,
    new_checkpoint: &str,
    proof: &[Hash],
) -> Report {
    let mut r = Report::new();
    let signed = |id: CheckId, note: &str, r: &mut Report| match &log.key {
        None => {
            r.fail(
                id,
                format!("the log's {} key is not supported", log.key_details),
            );
            None
        }
        Some(key) => match verify_checkpoint(note, key, log.note_name()) {
            Ok(c) => {
                r.pass(id);
                Some(c)
            }
            Err(e) => {
                r.fail(id, e.to_string());
                None
            }
        },
    };
    let old = signed(OLD_CHECKPOINT_SIGNATURE, old_checkpoint, &mut r);
    let new = signed(NEW_CHECKPOINT_SIGNATURE, new_checkpoint, &mut r);
    match (old, new) {
        (Some(old), Some(new)) => {
            if old.origin != new.origin {
                r.fail(
                    CONSISTENCY_PROOF,
                    format!(
                        "the checkpoints are of different logs ({:?}, {:?})",
                        old.origin, new.origin
                    ),
                );
            } else {
                r.record(
                    CONSISTENCY_PROOF,
                    merkle::verify_consistency(
                        old.size,
                        new.size,
                        proof,
                        &old.root_hash,
                        &new.root_hash,
                    ),
                );
            }
        }
        _ => {
            let why = r
                .unmet(&[OLD_CHECKPOINT_SIGNATURE, NEW_CHECKPOINT_SIGNATURE])
                .unwrap_or_default();
            r.not_checked(CONSISTENCY_PROOF, why);
        }
    }
    r
}
