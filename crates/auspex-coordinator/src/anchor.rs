//! Anchoring final attestations, pre-registration anchors and deviation
//! records in a Rekor-shaped transparency log (`coordinator.md` §7, §13.8).
//!
//! An attestation is stored first and anchored after: it is never lost
//! because the log was down. Anchoring is tried right after the attestation
//! is issued (a background task woken by [`AppState::wake_anchorer`]), again
//! on every `GET …/attestation` / export of an unanchored attestation, and
//! by the background task every [`Config::anchor_retry`](crate::Config).
//!
//! The entry is `rekord` 0.0.1 as the newest real client posts it:
//! `spec.data.content` = base64 of the COSE bytes (the log stores its
//! SHA-256 as `spec.data.hash.value`), `spec.signature` = a detached Ed25519
//! signature by the coordinator key over the COSE bytes with the key as a
//! PEM SubjectPublicKeyInfo. A log that refuses the `content` form with a
//! 400/422 is sent the same entry with `spec.data.hash` instead, in the same
//! attempt. A 409 (already logged: a previous attempt succeeded but its
//! answer was lost) is resolved through the `Location` header.
//!
//! Outcomes, as the real backfill classifies them: success stores
//! `logIndex`, the entry UUID (the response's first key) and
//! `verification.inclusionProof` verbatim; a connection error, timeout,
//! 5xx, 408 or 429 is transient (retried); any other 4xx is a permanent
//! rejection, and after three the attestation is terminal (kept with the
//! placeholders, never retried).

use std::collections::HashSet;
use std::sync::Mutex;

use auspex_wire::json::{self, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::EncodePublicKey as _;

use crate::AppState;
use crate::attestation;
use crate::prereg;
use crate::util::{Obj, to_json};

/// Attestations being anchored right now (one attempt at a time each, so
/// two callers never log the same attestation twice).
#[derive(Debug, Default)]
pub(crate) struct InFlight(Mutex<HashSet<String>>);

impl InFlight {
    fn claim(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned())
    }

    fn busy(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    fn release(&self, id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

/// What one anchoring attempt achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorOutcome {
    /// No log configured (lab mode).
    Disabled,
    /// Already anchored, terminal, unknown, or another attempt is running.
    Skipped,
    /// Logged now.
    Anchored,
    /// The log could not be reached or asked to retry.
    Transient(String),
    /// The log refused the entry.
    Permanent(String),
}

/// The `rekord` 0.0.1 proposed entry for `cose`.
fn rekord_entry(state: &AppState, cose: &[u8], hash_form: bool) -> Result<Vec<u8>, String> {
    let key = state.key().signing_key();
    let signature = key.sign(cose).to_bytes();
    let pem = key
        .verifying_key()
        .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| format!("public key PEM: {e}"))?;
    let data = if hash_form {
        Obj::new().set(
            "hash",
            Obj::new()
                .set("algorithm", "sha256")
                .set("value", auspex_wire::sha256_hex(cose)),
        )
    } else {
        Obj::new().set("content", STANDARD.encode(cose))
    };
    let entry = Obj::new()
        .set("apiVersion", "0.0.1")
        .set("kind", "rekord")
        .set(
            "spec",
            Obj::new().set("data", data).set(
                "signature",
                Obj::new()
                    .set("format", "x509")
                    .set("content", STANDARD.encode(signature))
                    .set(
                        "publicKey",
                        Obj::new().set("content", STANDARD.encode(pem.as_bytes())),
                    ),
            ),
        )
        .build();
    Ok(to_json(&entry).into_bytes())
}

/// The log's answer to a create (or get): `{uuid: entry}` → (index, uuid,
/// inclusion proof).
fn parse_entry(body: &[u8]) -> Result<(i64, String, Option<Value>), String> {
    let v = json::parse(body).map_err(|e| format!("log answered invalid JSON: {e}"))?;
    let (uuid, entry) = v
        .as_object()
        .and_then(|o| o.iter().next())
        .ok_or("log answered no entry")?;
    let index = match entry.get("logIndex") {
        Some(Value::Int(i)) => i.as_i64().ok_or("logIndex out of range")?,
        None | Some(Value::Null) => 0,
        Some(_) => return Err("logIndex is not an integer".into()),
    };
    let proof = entry
        .get("verification")
        .and_then(|v| v.get("inclusionProof"))
        .filter(|p| p.as_object().is_some())
        .cloned();
    if uuid.is_empty() || uuid == crate::consensus::NO_REKOR_UUID {
        return Err("log answered the placeholder UUID".into());
    }
    Ok((index, uuid.clone(), proof))
}

enum Post {
    Done(i64, String, Option<Value>),
    Transient(String),
    Permanent(u16, String),
}

async fn post(client: &reqwest::Client, base: &str, body: Vec<u8>) -> Post {
    let url = format!("{base}/api/v1/log/entries");
    let resp = match client
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Post::Transient(format!("log unreachable: {e}")),
    };
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return Post::Transient(format!("log answer unreadable: {e}")),
    };
    match status {
        200..=299 => match parse_entry(&bytes) {
            Ok((i, u, p)) => Post::Done(i, u, p),
            // A success we cannot read is retried (a retry gets a 409 and
            // the Location of the entry).
            Err(e) => Post::Transient(e),
        },
        409 => match location {
            Some(loc) => {
                let url = if loc.starts_with("http://") || loc.starts_with("https://") {
                    loc
                } else {
                    format!("{base}/{}", loc.trim_start_matches('/'))
                };
                match client.get(&url).send().await {
                    Ok(r) if r.status().is_success() => match r.bytes().await {
                        Ok(b) => match parse_entry(&b) {
                            Ok((i, u, p)) => Post::Done(i, u, p),
                            Err(e) => Post::Transient(e),
                        },
                        Err(e) => Post::Transient(e.to_string()),
                    },
                    Ok(r) => Post::Transient(format!("existing entry: HTTP {}", r.status())),
                    Err(e) => Post::Transient(e.to_string()),
                }
            }
            None => Post::Permanent(409, "log answered 409 without a Location".into()),
        },
        408 | 429 | 500..=599 => Post::Transient(format!("log answered HTTP {status}")),
        _ => Post::Permanent(
            status,
            format!(
                "log refused the entry: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            ),
        ),
    }
}

/// What can be anchored: final attestations, pre-registration anchors
/// (keyed by experiment id) and deviation records.
#[derive(Debug, Clone, Copy)]
enum Artifact<'a> {
    Attestation(&'a str),
    PreRegistration(&'a str),
    Deviation(&'a str),
}

impl Artifact<'_> {
    /// The in-flight key (ids of different kinds never collide).
    fn key(self) -> String {
        match self {
            Artifact::Attestation(id) => format!("att:{id}"),
            Artifact::PreRegistration(id) => format!("pre:{id}"),
            Artifact::Deviation(id) => format!("dev:{id}"),
        }
    }

    /// The owned form, for the blocking pool.
    fn target(self) -> Target {
        match self {
            Artifact::Attestation(id) => Target::Attestation(id.to_owned()),
            Artifact::PreRegistration(id) => {
                Target::Prereg(prereg::Kind::PreRegistration, id.to_owned())
            }
            Artifact::Deviation(id) => Target::Prereg(prereg::Kind::Deviation, id.to_owned()),
        }
    }
}

/// An [`Artifact`] with its id owned, and where its anchor is stored.
enum Target {
    Attestation(String),
    Prereg(prereg::Kind, String),
}

impl Target {
    /// The COSE bytes to log, when it still waits for the log (not
    /// anchored, not terminal).
    fn unanchored_cose(&self, conn: &rusqlite::Connection) -> Option<Vec<u8>> {
        match self {
            Target::Attestation(id) => {
                let terminal: bool = conn
                    .query_row(
                        "SELECT anchor_terminal FROM attestations WHERE attestation_id = ?1",
                        [id],
                        |r| r.get(0),
                    )
                    .unwrap_or(true);
                attestation::load_by_id(conn, id)
                    .ok()
                    .flatten()
                    .filter(|a| !a.anchored() && !terminal)
                    .map(|a| a.cose)
            }
            Target::Prereg(kind, id) => prereg::unanchored_cose(conn, *kind, id).ok().flatten(),
        }
    }

    /// Records what the log answered.
    fn store(&self, conn: &rusqlite::Connection, result: Post) -> crate::db::ApiResult<()> {
        match (self, result) {
            (Target::Attestation(id), Post::Done(index, uuid, proof)) => {
                attestation::set_anchor(conn, id, index, &uuid, proof.as_ref())
            }
            (Target::Prereg(kind, id), Post::Done(index, uuid, proof)) => {
                prereg::set_anchor(conn, *kind, id, index, &uuid, proof.as_ref())
            }
            (t, Post::Transient(e)) => t.record_failure(conn, false, &e),
            (t, Post::Permanent(_, e)) => t.record_failure(conn, true, &e),
        }
    }

    fn record_failure(
        &self,
        conn: &rusqlite::Connection,
        permanent: bool,
        error: &str,
    ) -> crate::db::ApiResult<()> {
        match self {
            Target::Attestation(id) => {
                attestation::record_anchor_failure(conn, id, permanent, error)
            }
            Target::Prereg(kind, id) => {
                prereg::record_anchor_failure(conn, *kind, id, permanent, error)
            }
        }
    }
}

/// One anchoring attempt of the final attestation `attestation_id`.
pub async fn anchor_one(state: &AppState, attestation_id: &str) -> AnchorOutcome {
    anchor(state, Artifact::Attestation(attestation_id)).await
}

async fn anchor(state: &AppState, artifact: Artifact<'_>) -> AnchorOutcome {
    let Some(base) = state.config().tlog_url.clone() else {
        return AnchorOutcome::Disabled;
    };
    // Design before data: an attestation is not logged ahead of its
    // experiment's pre-registration anchor.
    if let Artifact::Attestation(id) = artifact
        && let Some(experiment_id) = prereg_waiting(state, id).await
    {
        let first = Box::pin(anchor(state, Artifact::PreRegistration(&experiment_id))).await;
        if let AnchorOutcome::Transient(e) = first {
            return AnchorOutcome::Transient(format!("pre-registration not logged yet: {e}"));
        }
        if prereg_waiting(state, id).await.is_some() {
            return AnchorOutcome::Transient("pre-registration not logged yet".into());
        }
    }
    let key = artifact.key();
    if !state.anchor_in_flight().claim(&key) {
        // Another caller (the background task) is anchoring it: wait for
        // that attempt (bounded by the request timeout) so this caller
        // sees its outcome.
        let deadline = tokio::time::Instant::now() + state.config().tlog_timeout * 2;
        while state.anchor_in_flight().busy(&key) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        return AnchorOutcome::Skipped;
    }
    let outcome = attempt(state, &base, artifact).await;
    state.anchor_in_flight().release(&key);
    outcome
}

/// The experiment of attestation `attestation_id` when its pre-registration
/// anchor still waits for the log (and is not terminal).
async fn prereg_waiting(state: &AppState, attestation_id: &str) -> Option<String> {
    let s = state.clone();
    let id = attestation_id.to_owned();
    tokio::task::spawn_blocking(move || {
        let conn = s.db().lock();
        conn.query_row(
            "SELECT p.experiment_id FROM attestations a \
             JOIN pre_registrations p ON p.experiment_id = a.experiment_id \
             WHERE a.attestation_id = ?1 AND p.rekor_entry_uuid = ?2 AND p.anchor_terminal = 0",
            rusqlite::params![id, crate::consensus::NO_REKOR_UUID],
            |r| r.get::<_, String>(0),
        )
        .ok()
    })
    .await
    .ok()
    .flatten()
}

async fn attempt(state: &AppState, base: &str, artifact: Artifact<'_>) -> AnchorOutcome {
    let s = state.clone();
    let target = artifact.target();
    let loaded = tokio::task::spawn_blocking(move || {
        let cose = target.unanchored_cose(&s.db().lock());
        (target, cose)
    })
    .await;
    let Ok((target, Some(cose))) = loaded else {
        return AnchorOutcome::Skipped;
    };
    let client = state.http();
    let mut result = Post::Transient("not attempted".into());
    for hash_form in [false, true] {
        let body = match rekord_entry(state, &cose, hash_form) {
            Ok(b) => b,
            Err(e) => return AnchorOutcome::Permanent(e),
        };
        result = post(client, base, body).await;
        // Only a refusal of the entry's *form* is worth the other form.
        if !matches!(result, Post::Permanent(400 | 422, _)) {
            break;
        }
    }
    let outcome = match &result {
        Post::Done(..) => AnchorOutcome::Anchored,
        Post::Transient(e) => AnchorOutcome::Transient(e.clone()),
        Post::Permanent(_, e) => AnchorOutcome::Permanent(e.clone()),
    };
    let s = state.clone();
    let stored = tokio::task::spawn_blocking(move || target.store(&s.db().lock(), result)).await;
    match stored {
        Ok(Ok(())) => outcome,
        Ok(Err(e)) => AnchorOutcome::Transient(format!("storing the anchor failed: {e}")),
        Err(e) => AnchorOutcome::Transient(format!("storing the anchor failed: {e}")),
    }
}

/// Tries everything still waiting for the log, in the real backfill's
/// order: pre-registrations first (so their log index precedes the
/// attestation's), then deviations, then final attestations.
pub async fn anchor_pending(state: &AppState) {
    if state.config().tlog_url.is_none() {
        return;
    }
    let s = state.clone();
    let (preregs, deviations, attestations) = tokio::task::spawn_blocking(move || {
        let conn = s.db().lock();
        (
            prereg::pending(&conn, prereg::Kind::PreRegistration).unwrap_or_default(),
            prereg::pending(&conn, prereg::Kind::Deviation).unwrap_or_default(),
            attestation::pending_anchors(&conn).unwrap_or_default(),
        )
    })
    .await
    .unwrap_or_default();
    let all = preregs
        .iter()
        .map(|id| Artifact::PreRegistration(id))
        .chain(deviations.iter().map(|id| Artifact::Deviation(id)))
        .chain(attestations.iter().map(|id| Artifact::Attestation(id)));
    for artifact in all {
        if let AnchorOutcome::Transient(_) = anchor(state, artifact).await {
            // The log is down: the rest would fail the same way.
            break;
        }
    }
}

/// The background anchorer: runs when woken and every `anchor_retry`.
pub(crate) async fn run(state: AppState) {
    let every = state.config().anchor_retry;
    loop {
        anchor_pending(&state).await;
        tokio::select! {
            () = state.anchor_wake().notified() => {}
            () = tokio::time::sleep(every) => {}
        }
    }
}
