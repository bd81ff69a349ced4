//! The result-set attestation route (`coordinator.md` §7) and the evidence
//! bundle export (§8, §13.8 EB-1; `tenant-sdk.md` §7.1).
//!
//! Both are split in three steps so the transparency log is never called
//! with the database locked: (1) load or build and store the final
//! attestation; (2) if it is not anchored yet, try the log once; (3) answer
//! from the stored row.

use std::collections::{BTreeSet, HashSet};

use auspex_crypto::custody::{CustodyRecord, ROOT_KIND_FLAT};
use auspex_crypto::merkle;
use auspex_wire::json::Value;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rusqlite::{Connection, params};

use crate::attestation::{self, StoredAttestation};
use crate::auth::{Credential, RawRequest, authenticate};
use crate::db::ApiResult;
use crate::error::{ApiError, json_response};
use crate::util::{Obj, iso_now, parse_stored, token_urlsafe};
use crate::{AppState, anchor};

use super::experiments::{self, ExperimentRow, status};
use super::{query_bool, query_params, results};

/// Runs `f` on the blocking pool; a panic becomes a 500.
async fn on_pool<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&AppState) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let s = state.clone();
    tokio::task::spawn_blocking(move || f(&s))
        .await
        .map_err(|e| ApiError::Internal(format!("handler panicked: {e}")))?
}

/// Tries the log once when `a` is a final, unanchored attestation; returns
/// the row as stored afterwards.
async fn anchored(state: &AppState, a: StoredAttestation) -> ApiResult<StoredAttestation> {
    if a.partial || a.anchored() || state.config().tlog_url.is_none() {
        return Ok(a);
    }
    if !matches!(
        anchor::anchor_one(state, &a.attestation_id).await,
        anchor::AnchorOutcome::Anchored | anchor::AnchorOutcome::Skipped
    ) {
        return Ok(a);
    }
    let id = a.attestation_id.clone();
    let reloaded = on_pool(state, move |s| {
        let conn = s.db().lock();
        attestation::load_by_id(&conn, &id)
    })
    .await?;
    Ok(reloaded.unwrap_or(a))
}

/// The final attestation of `e`, built and stored (with its event) if the
/// experiment completed and none exists. `None` when it is not completed.
fn final_attestation(state: &AppState, e: &ExperimentRow) -> ApiResult<Option<StoredAttestation>> {
    let mut conn = state.db().lock();
    if let Some(a) = attestation::load_final(&conn, &e.experiment_id)? {
        return Ok(Some(a));
    }
    if e.status != status::COMPLETED {
        return Ok(None);
    }
    let tx = conn.transaction()?;
    let (a, created) = attestation::ensure_final(&tx, state.key(), e)?;
    tx.commit()?;
    if created {
        state.publish(Some(&e.experiment_id), [attestation::issued_event(&a)]);
    }
    Ok(Some(a))
}

fn not_completed(e: &ExperimentRow) -> ApiError {
    ApiError::with(
        StatusCode::TOO_EARLY,
        "experiment_not_completed",
        format!(
            "experiment is {}; the result-set attestation exists once it is completed \
             (use checkpoint=true for a partial one)",
            e.status
        ),
        Obj::new().set("status", e.status.as_str()),
    )
}

/// `GET /experiments/{id}/attestation[?checkpoint=true]`: the persisted
/// final attestation (built on first use), a transient `partial` checkpoint
/// before completion when asked, else 425 `experiment_not_completed`.
pub(crate) async fn get_attestation(
    State(state): State<AppState>,
    super::Params(id): super::Params<String>,
    req: RawRequest,
) -> Response {
    let run = async {
        let a = on_pool(&state, move |s| {
            let q = query_params(&req.target);
            let checkpoint = query_bool(&q, "checkpoint")?;
            let cred = authenticate(s, &req)?;
            results::viewer(&cred)?;
            let e = {
                let conn = s.db().lock();
                experiments::load_visible(&conn, &cred, &id)?
            };
            if let Some(a) = final_attestation(s, &e)? {
                return Ok(a);
            }
            if checkpoint {
                let conn = s.db().lock();
                return attestation::checkpoint(&conn, s.key(), &e);
            }
            Err(not_completed(&e))
        })
        .await?;
        let a = anchored(&state, a).await?;
        let body = on_pool(&state, move |_| attestation::response_json(&a)).await?;
        let mut resp = (StatusCode::OK, body).into_response();
        resp.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        Ok::<_, ApiError>(resp)
    };
    run.await.unwrap_or_else(|e| e.into_response())
}

/// `GET /experiments/{id}/results/export`: the evidence bundle v1.
pub(crate) async fn export(
    State(state): State<AppState>,
    super::Params(id): super::Params<String>,
    req: RawRequest,
) -> Response {
    let run = async {
        let (cred, e, a) = on_pool(&state, move |s| {
            let cred = authenticate(s, &req)?;
            results::viewer(&cred)?;
            let e = {
                let conn = s.db().lock();
                experiments::load_visible(&conn, &cred, &id)?
            };
            let a = final_attestation(s, &e)?;
            Ok((cred, e, a))
        })
        .await?;
        let a = match a {
            Some(a) => Some(anchored(&state, a).await?),
            None => None,
        };
        let v = on_pool(&state, move |s| bundle(s, &cred, &e, a.as_ref())).await?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &v))
    };
    run.await.unwrap_or_else(|e| e.into_response())
}

fn opt_json(text: Option<String>) -> Value {
    text.map_or(Value::Null, |t| parse_stored(&t))
}

struct Row {
    value: Value,
    unit_id: String,
    semantic_hash: String,
    receipt_id: Option<String>,
}

fn consensus_rows(conn: &Connection, experiment_id: &str) -> ApiResult<Vec<Row>> {
    let mut stmt = conn.prepare(
        "SELECT r.result_id, r.unit_id, r.semantic_hash, r.payload_json, r.payload_aged_off_at, \
         r.worker_signature, r.worker_pubkey_hex, r.exit_code, r.environment_json, \
         r.schema_version, r.served_weights_json, r.ran_under, r.generation_options_json, \
         c.receipt_id, r.completed_at \
         FROM results r LEFT JOIN receipts c ON c.result_id = r.result_id \
         WHERE r.experiment_id = ?1 AND r.is_consensus = 1 \
         ORDER BY r.completed_at_key, r.result_id",
    )?;
    let rows = stmt
        .query_map(params![experiment_id], |r| {
            let aged: Option<String> = r.get(4)?;
            let payload: Option<String> = r.get(3)?;
            let unit_id: String = r.get(1)?;
            let semantic_hash: String = r.get(2)?;
            let receipt_id: Option<String> = r.get(13)?;
            let value = Obj::new()
                .set("result_id", r.get::<_, String>(0)?)
                .set("unit_id", unit_id.as_str())
                .set("semantic_hash", semantic_hash.as_str())
                .set(
                    "payload",
                    match (&aged, payload) {
                        (None, Some(p)) => parse_stored(&p),
                        _ => Value::Null,
                    },
                )
                .set("aged_off", aged.is_some())
                .set("worker_signature", r.get::<_, String>(5)?)
                .set("worker_pubkey_hex", r.get::<_, String>(6)?)
                .set("exit_code", r.get::<_, i64>(7)?)
                .set("environment", opt_json(r.get(8)?))
                .set(
                    "schema_version",
                    match r.get::<_, rusqlite::types::Value>(9)? {
                        rusqlite::types::Value::Integer(n) => Value::from(n),
                        rusqlite::types::Value::Text(t) => parse_stored(&t),
                        _ => Value::Null,
                    },
                )
                .set("served_weights", opt_json(r.get(10)?))
                .set(
                    "ran_under",
                    r.get::<_, Option<String>>(11)?
                        .map_or(Value::Null, Value::from),
                )
                .set("generation_options", opt_json(r.get(12)?))
                .set(
                    "receipt_id",
                    receipt_id.clone().map_or(Value::Null, Value::from),
                )
                .set("completed_at", r.get::<_, String>(14)?)
                .build();
            Ok(Row {
                value,
                unit_id,
                semantic_hash,
                receipt_id,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// `unit_consensus` entries of the non-exact reducers (tolerance: the
/// representative vector; process-only: none by design).
fn unit_consensus(conn: &Connection, experiment_id: &str) -> ApiResult<Vec<Value>> {
    let mut stmt = conn.prepare(
        "SELECT unit_id, method, representative_json, representative_hash, spread_json, \
         envelope_json, agreeing_workers, outlier_count FROM unit_consensus \
         WHERE experiment_id = ?1 AND agreed = 1 AND method <> 'builtin_hash_agreement' \
         ORDER BY unit_id",
    )?;
    let rows = stmt
        .query_map(params![experiment_id], |r| {
            let method: String = r.get(1)?;
            let representative = if method == "builtin_process_only" {
                Value::Null
            } else {
                opt_json(r.get(2)?)
            };
            Ok(Obj::new()
                .set("unit_id", r.get::<_, String>(0)?)
                .set("method", method)
                .set("representative", representative)
                .set(
                    "representative_hash",
                    r.get::<_, Option<String>>(3)?
                        .map_or(Value::Null, Value::from),
                )
                .set("spread", opt_json(r.get(4)?))
                .set("envelope", opt_json(r.get(5)?))
                .set("agreeing_workers", r.get::<_, i64>(6)?)
                .set("outlier_count", r.get::<_, i64>(7)?)
                .build())
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Assembles the bundle, signs the custody record and stores the transfer.
fn bundle(
    state: &AppState,
    cred: &Credential,
    e: &ExperimentRow,
    att: Option<&StoredAttestation>,
) -> ApiResult<Value> {
    let conn = state.db().lock();
    let manifest: Option<String> = rusqlite::OptionalExtension::optional(conn.query_row(
        "SELECT manifest_json FROM manifests WHERE manifest_hash = ?1",
        params![e.manifest_hash],
        |r| r.get(0),
    ))?;
    let mut stmt = conn.prepare(
        "SELECT unit_id, payload_json FROM work_units WHERE experiment_id = ?1 ORDER BY unit_id",
    )?;
    let work_units: Vec<Value> = stmt
        .query_map(params![e.experiment_id], |r| {
            Ok(Obj::new()
                .set("unit_id", r.get::<_, String>(0)?)
                .set("payload", parse_stored(&r.get::<_, String>(1)?))
                .build())
        })?
        .collect::<Result<_, _>>()?;
    drop(stmt);
    let rows = consensus_rows(&conn, &e.experiment_id)?;
    let mut receipt_ids: Vec<&str> = Vec::new();
    let mut seen = HashSet::new();
    for r in &rows {
        if let Some(id) = r.receipt_id.as_deref()
            && seen.insert(id)
        {
            receipt_ids.push(id);
        }
    }
    let mut receipts = Vec::with_capacity(receipt_ids.len());
    {
        let mut stmt =
            conn.prepare_cached("SELECT cose_blob FROM receipts WHERE receipt_id = ?1")?;
        for id in &receipt_ids {
            let cose: Vec<u8> = stmt.query_row(params![id], |r| r.get(0))?;
            receipts.push(
                Obj::new()
                    .set("receipt_id", *id)
                    .set("cose_b64", STANDARD.encode(cose))
                    .build(),
            );
        }
    }

    // Root selection (§13.8).
    let delivered: BTreeSet<(&str, &str)> = rows
        .iter()
        .map(|r| (r.unit_id.as_str(), r.semantic_hash.as_str()))
        .collect();
    let flat = || {
        merkle::flat_custody_root(
            rows.iter()
                .map(|r| (r.unit_id.as_str(), Some(r.semantic_hash.as_str()))),
        )
    };
    let (root, root_kind) = match att {
        None => (flat(), ROOT_KIND_FLAT.to_owned()),
        Some(a) => {
            let (recomputed, attested) = attestation::current_set(&conn, &e.experiment_id)?;
            if recomputed != a.merkle_root {
                return Err(ApiError::with(
                    StatusCode::CONFLICT,
                    "attestation_root_mismatch",
                    "the stored rows no longer give the attested Merkle root",
                    Obj::new().set("attestation_id", a.attestation_id.as_str()),
                ));
            }
            let attested: BTreeSet<(&str, &str)> = attested
                .iter()
                .map(|(u, h)| (u.as_str(), h.as_str()))
                .collect();
            if attested == delivered {
                (a.merkle_root.clone(), a.algorithm.clone())
            } else {
                (flat(), ROOT_KIND_FLAT.to_owned())
            }
        }
    };
    let collected_by = cred.pubkey().unwrap_or("<maintainer>").to_owned();
    let collected_at = iso_now();
    let record = CustodyRecord {
        result_set_root: &root,
        collected_by: &collected_by,
        collected_at: &collected_at,
        manifest_hash: &e.manifest_hash,
    };
    let signature = record
        .sign(state.key().signing_key())
        .map_err(|err| ApiError::Internal(format!("custody record: {err}")))?;
    let transfer_id = format!("xfer-{}", token_urlsafe(12));
    let attestation_id = att.map(|a| a.attestation_id.clone());
    conn.execute(
        "INSERT INTO result_transfers (transfer_id, experiment_id, tenant_id, collected_by_pubkey, \
         collected_at, manifest_hash, result_set_root, root_kind, attestation_id, receipt_count, \
         coordinator_signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            transfer_id,
            e.experiment_id,
            e.tenant_id,
            collected_by,
            collected_at,
            e.manifest_hash,
            root,
            root_kind,
            attestation_id,
            receipts.len() as i64,
            signature
        ],
    )?;
    conn.execute(
        "UPDATE experiments SET results_collected_at = COALESCE(results_collected_at, ?2) \
         WHERE experiment_id = ?1",
        params![e.experiment_id, collected_at],
    )?;
    conn.execute(
        "UPDATE results SET delivered_at = COALESCE(delivered_at, ?2) \
         WHERE experiment_id = ?1 AND is_consensus = 1",
        params![e.experiment_id, collected_at],
    )?;
    let unit_consensus = unit_consensus(&conn, &e.experiment_id)?;
    let pre_registration = crate::prereg::bundle_block(&conn, &e.experiment_id)?;
    let deviations = crate::prereg::deviations(&conn, &e.experiment_id)?;
    let receipt_count = receipts.len() as u64;
    let transfer = Obj::new()
        .set("transfer_id", transfer_id)
        .set("result_set_root", root)
        .set("root_kind", root_kind)
        .set(
            "attestation_id",
            attestation_id.map_or(Value::Null, Value::from),
        )
        .set("collected_at", collected_at)
        .set("collected_by_pubkey", collected_by)
        .set("manifest_hash", e.manifest_hash.as_str())
        .set("receipt_count", receipt_count)
        .set("coordinator_signature", signature)
        .set("coordinator_pubkey_hex", state.key().public_hex());
    Ok(Obj::new()
        .set("schema", auspex_wire::bundle::SCHEMA_V1)
        .set("experiment_id", e.experiment_id.as_str())
        .set("manifest_hash", e.manifest_hash.as_str())
        .set(
            "manifest",
            manifest.map_or(Value::Null, |m| parse_stored(&m)),
        )
        .set("work_units", Value::Array(work_units))
        .set(
            "consensus_results",
            Value::Array(rows.into_iter().map(|r| r.value).collect()),
        )
        .set("unit_consensus", Value::Array(unit_consensus))
        .set("pre_registration", pre_registration.unwrap_or(Value::Null))
        .set("deviations", Value::Array(deviations))
        .set("receipts", Value::Array(receipts))
        .set(
            "attestation",
            att.map_or(Value::Null, attestation::bundle_block),
        )
        .set("transfer", transfer)
        .build())
}
