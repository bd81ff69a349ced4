//! A bounded seen-signature cache: what the coordinator lacks (spec
//! `tenant-sdk.md` §11 #20) — within the ±window a captured request could
//! otherwise be replayed verbatim.

use std::collections::{BTreeSet, HashSet};

use thiserror::Error;

use super::verify::VerifiedRequest;

/// Why [`ReplayCache::check_and_insert`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// This exact signature was already accepted inside its window.
    #[error("signature already used (created {created}, keyid {keyid})")]
    Replayed {
        /// The signer.
        keyid: String,
        /// The signature's `created`.
        created: i64,
    },
    /// The cache is full of unexpired signatures; refusing is the fail-closed
    /// choice (evicting would reopen a replay hole).
    #[error("replay cache full ({capacity} unexpired signatures)")]
    Full {
        /// The configured capacity.
        capacity: usize,
    },
}

impl ReplayError {
    /// A 401 code for the coordinator envelope: a replay is an
    /// `invalid_signature`; a full cache is an `auth_error` (the server, not
    /// the request, is at fault).
    pub fn code(&self) -> &'static str {
        match self {
            ReplayError::Replayed { .. } => "invalid_signature",
            ReplayError::Full { .. } => "auth_error",
        }
    }
}

/// Signatures seen within the verification window, keyed by the 64
/// signature bytes. Ed25519 signatures verified strictly are not malleable
/// (canonical `S`, `R` compared as encoded), so a replay necessarily repeats
/// the bytes.
///
/// An entry lives until `created + window`; after that the clock check of
/// [`verify_request`](super::verify_request) rejects the request anyway.
#[derive(Debug, Clone)]
pub struct ReplayCache {
    window_secs: i64,
    capacity: usize,
    seen: HashSet<[u8; 64]>,
    by_expiry: BTreeSet<(i64, [u8; 64])>,
}

impl ReplayCache {
    /// An empty cache for signatures accepted within `±window_secs`, holding
    /// at most `capacity` of them.
    pub fn new(window_secs: i64, capacity: usize) -> ReplayCache {
        ReplayCache {
            window_secs,
            capacity,
            seen: HashSet::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    /// Number of signatures remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no signature is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Forgets every signature whose window ended before `now`.
    pub fn evict_expired(&mut self, now: i64) {
        while let Some(&(expiry, sig)) = self.by_expiry.first() {
            if expiry >= now {
                break;
            }
            self.by_expiry.pop_first();
            self.seen.remove(&sig);
        }
    }

    /// Records `request`'s signature, or refuses it if it was seen before
    /// (or the cache is full). Call after a successful verification.
    pub fn check_and_insert(
        &mut self,
        request: &VerifiedRequest,
        now: i64,
    ) -> Result<(), ReplayError> {
        self.evict_expired(now);
        let sig = *request.signature();
        if self.seen.contains(&sig) {
            return Err(ReplayError::Replayed {
                keyid: request.keyid().to_owned(),
                created: request.created(),
            });
        }
        if self.seen.len() >= self.capacity {
            return Err(ReplayError::Full {
                capacity: self.capacity,
            });
        }
        let expiry = request.created().saturating_add(self.window_secs);
        self.seen.insert(sig);
        self.by_expiry.insert((expiry, sig));
        Ok(())
    }
}
