//! Consensus and receipts (`coordinator.md` §5, §6): run once per unit when
//! it first reaches its replication target, inside the transaction that
//! stored the result that completed it.
//!
//! * `builtin_hash_agreement` (and any unknown kind): agreed iff every
//!   replica has the same semantic hash; otherwise the unit is *diverged*:
//!   no receipts, every replica's receipt outcome is `quorum_disagreed`.
//! * `builtin_within_cell_tolerance`: replicas are compared feature by
//!   feature with the manifest's `comparison` envelopes; the representative
//!   is the replica with the most replicas inside its envelope (ties: the
//!   smaller representative hash); agreed iff at least `replication_floor`
//!   replicas are inside. Inliers get receipts, outliers the outcome
//!   `diverged_from_consensus`.
//! * `builtin_process_only`: always agreed; every replica gets a receipt
//!   with `agreeing_workers = 1`; the representative is the smallest
//!   semantic hash.
//!
//! The consensus row (`is_consensus = 1`) is the representative replica
//! (smallest `result_id` among replicas with the representative hash).
//! Receipts are COSE_Sign1 over in-toto statements, signed by the
//! coordinator key, with `lab-mode-no-rekor` anchors (receipts are never
//! Rekor-anchored by the real service either).

use std::collections::{BTreeSet, HashSet};

use auspex_crypto::cose::CoseSign1;
use auspex_wire::attestation::Statement;
use auspex_wire::json::{self, Value};
use auspex_wire::manifest::{ComparisonRule, FeatureComparison, Reducer};
use auspex_wire::receipt::{
    QuorumAgreement, RECEIPT_PREDICATE_TYPE, Receipt, ResultHashAnchor, TimeWindow, encode_cbor,
};
use auspex_wire::workunit::DateTime;
use rusqlite::{Transaction, params};

use crate::db::ApiResult;
use crate::error::ApiError;
use crate::keys::CoordinatorKey;
use crate::routes::experiments::ExperimentRow;
use crate::util::{Obj, iso_now, ordered_id, parse_stored, to_json};

/// The Rekor placeholder of unanchored artifacts.
pub const NO_REKOR_UUID: &str = "lab-mode-no-rekor";

#[derive(Debug, Clone)]
struct Replica {
    result_id: String,
    worker_id: String,
    pubkey: String,
    payload: Value,
    completed_at: String,
    semantic_hash: String,
    result_sha256: String,
}

/// What consensus decided for one unit.
struct Decision {
    method: String,
    agreed: bool,
    /// Replicas that get receipts.
    inliers: Vec<usize>,
    representative: Option<usize>,
    representative_hash: Option<String>,
    agreeing_workers: u64,
    integrity_basis: &'static str,
    spread: Option<Value>,
    envelope: Option<Value>,
}

fn lookup<'a>(payload: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = payload;
    for part in path.split('.') {
        v = v.as_object()?.get(part)?;
    }
    Some(v)
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(i.to_f64()),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn within(a: Option<&Value>, b: Option<&Value>, c: &FeatureComparison) -> bool {
    let (a, b) = match (a, b) {
        (None, None) => return true,
        (Some(a), Some(b)) => (a, b),
        _ => return false,
    };
    match c.rule {
        ComparisonRule::Numeric => match (number(a), number(b)) {
            (Some(x), Some(y)) => {
                let d = (x - y).abs();
                c.abs.is_some_and(|t| d <= t)
                    || c.rel.is_some_and(|r| d <= r * x.abs().max(y.abs()))
                    || d == 0.0
            }
            _ => json::canonical(a) == json::canonical(b),
        },
        ComparisonRule::SetJaccard => match (a.as_array(), b.as_array()) {
            (Some(x), Some(y)) => {
                let x: HashSet<String> = x.iter().map(json::canonical).collect();
                let y: HashSet<String> = y.iter().map(json::canonical).collect();
                let union = x.union(&y).count();
                let inter = x.intersection(&y).count();
                let j = if union == 0 {
                    1.0
                } else {
                    inter as f64 / union as f64
                };
                j >= c.min.unwrap_or(1.0)
            }
            _ => json::canonical(a) == json::canonical(b),
        },
        _ => json::canonical(a) == json::canonical(b),
    }
}

fn tolerance(
    replicas: &[Replica],
    features: &[(String, FeatureComparison)],
    floor: i64,
) -> Decision {
    let rep_hash = |r: &Replica| auspex_crypto::worker_sig::semantic_hash(0, &r.payload);
    let mut best: Option<(usize, Vec<usize>, String)> = None;
    for (i, r) in replicas.iter().enumerate() {
        let inliers: Vec<usize> = replicas
            .iter()
            .enumerate()
            .filter(|(_, x)| {
                features
                    .iter()
                    .all(|(f, c)| within(lookup(&x.payload, f), lookup(&r.payload, f), c))
            })
            .map(|(j, _)| j)
            .collect();
        let h = rep_hash(r);
        let better = match &best {
            None => true,
            Some((_, bi, bh)) => inliers.len() > bi.len() || (inliers.len() == bi.len() && h < *bh),
        };
        if better {
            best = Some((i, inliers, h));
        }
    }
    let (rep, inliers, hash) = best.unwrap_or((0, Vec::new(), String::new()));
    let agreed = !inliers.is_empty() && inliers.len() as i64 >= floor.max(1);
    let mut spread = Obj::new();
    let mut envelope = Obj::new();
    for (f, c) in features {
        let vals: Vec<f64> = inliers
            .iter()
            .filter_map(|&j| {
                replicas
                    .get(j)
                    .and_then(|r| lookup(&r.payload, f))
                    .and_then(number)
            })
            .collect();
        if let (Some(lo), Some(hi)) = (
            vals.iter().copied().reduce(f64::min),
            vals.iter().copied().reduce(f64::max),
        ) {
            spread = spread.set(f, hi - lo);
        }
        envelope = envelope.set(
            f,
            Obj::new()
                .set("rule", c.rule.as_str())
                .opt("rel", c.rel)
                .opt("abs", c.abs)
                .opt("min", c.min),
        );
    }
    Decision {
        method: "builtin_within_cell_tolerance".into(),
        agreed,
        agreeing_workers: inliers.len() as u64,
        inliers: if agreed { inliers } else { Vec::new() },
        representative: agreed.then_some(rep),
        representative_hash: agreed.then_some(hash),
        integrity_basis: if agreed {
            "within_cell_tolerance"
        } else {
            "diverged"
        },
        spread: Some(spread.build()),
        envelope: Some(envelope.build()),
    }
}

fn decide(
    tx: &Transaction<'_>,
    exp: &ExperimentRow,
    replicas: &[Replica],
    target: i64,
) -> ApiResult<Decision> {
    let smallest = |hash: &str| {
        replicas
            .iter()
            .enumerate()
            .filter(|(_, r)| r.semantic_hash == hash)
            .min_by(|a, b| a.1.result_id.cmp(&b.1.result_id))
            .map(|(i, _)| i)
    };
    let basis = if target >= 2 {
        "within_cell_exact"
    } else {
        "process_only"
    };
    match exp.reducer_kind.as_str() {
        "builtin_process_only" => {
            let hash = replicas
                .iter()
                .map(|r| r.semantic_hash.clone())
                .min()
                .unwrap_or_default();
            Ok(Decision {
                method: "builtin_process_only".into(),
                agreed: true,
                inliers: (0..replicas.len()).collect(),
                representative: smallest(&hash),
                representative_hash: Some(hash),
                agreeing_workers: 1,
                integrity_basis: "process_only",
                spread: None,
                envelope: None,
            })
        }
        "builtin_within_cell_tolerance" => {
            let manifest_json: String = tx.query_row(
                "SELECT manifest_json FROM manifests WHERE manifest_hash = ?1",
                params![exp.manifest_hash],
                |r| r.get(0),
            )?;
            let manifest = auspex_wire::manifest::validate_value(&parse_stored(&manifest_json))
                .map_err(|v| ApiError::Internal(format!("stored manifest invalid: {v}")))?;
            let only: Option<Vec<String>> = match manifest.reducer() {
                Reducer::BuiltinWithinCellTolerance { tolerance_features } => {
                    tolerance_features.clone()
                }
                _ => None,
            };
            let features: Vec<(String, FeatureComparison)> = manifest
                .feature_schema()
                .map(|fs| {
                    fs.iter()
                        .filter(|(k, _)| only.as_ref().is_none_or(|o| o.contains(k)))
                        .filter_map(|(k, d)| d.comparison.clone().map(|c| (k.clone(), c)))
                        .collect()
                })
                .unwrap_or_default();
            Ok(tolerance(replicas, &features, exp.replication_floor))
        }
        _ => {
            let distinct: BTreeSet<&str> =
                replicas.iter().map(|r| r.semantic_hash.as_str()).collect();
            let agreed = distinct.len() == 1;
            let hash = distinct.first().map(|h| (*h).to_owned());
            Ok(Decision {
                method: "builtin_hash_agreement".into(),
                agreed,
                inliers: if agreed {
                    (0..replicas.len()).collect()
                } else {
                    Vec::new()
                },
                representative: if agreed {
                    hash.as_deref().and_then(smallest)
                } else {
                    None
                },
                representative_hash: if agreed { hash } else { None },
                agreeing_workers: if agreed { replicas.len() as u64 } else { 0 },
                integrity_basis: if agreed { basis } else { "diverged" },
                spread: None,
                envelope: None,
            })
        }
    }
}

fn aware(text: &str) -> Option<DateTime> {
    let d = DateTime::parse_pydantic(text).ok()?;
    if !d.is_naive() {
        return Some(d);
    }
    DateTime::new(
        d.year(),
        d.month(),
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.microsecond(),
        Some(0),
    )
    .ok()
}

fn decode_pubkey(hex: &str) -> Option<[u8; 32]> {
    auspex_crypto::manifest::parse_pubkey(hex).map(|k| k.to_bytes())
}

/// Settles `unit_id` of `exp` (target `target`): consensus, receipts,
/// receipt outcomes, the consensus row. Returns events to publish after
/// commit.
pub(crate) fn settle_unit(
    tx: &Transaction<'_>,
    key: &CoordinatorKey,
    exp: &ExperimentRow,
    unit_id: &str,
    target: i64,
) -> ApiResult<Vec<(&'static str, Value)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT result_id, worker_id, worker_pubkey_hex, payload_json, completed_at, \
         semantic_hash, result_sha256 FROM results WHERE experiment_id = ?1 AND unit_id = ?2 \
         ORDER BY completed_at_key, result_id",
    )?;
    let all: Vec<Replica> = stmt
        .query_map(params![exp.experiment_id, unit_id], |r| {
            Ok(Replica {
                result_id: r.get(0)?,
                worker_id: r.get(1)?,
                pubkey: r.get(2)?,
                payload: parse_stored(&r.get::<_, Option<String>>(3)?.unwrap_or_default()),
                completed_at: r.get(4)?,
                semantic_hash: r.get(5)?,
                result_sha256: r.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    drop(stmt);
    // One vote per worker key: the first by (completed_at, result_id).
    let mut keys = HashSet::new();
    let replicas: Vec<Replica> = all
        .into_iter()
        .filter(|r| keys.insert(r.pubkey.clone()))
        .collect();
    let d = decide(tx, exp, &replicas, target)?;
    let now = iso_now();

    let mut receipted: HashSet<usize> = HashSet::new();
    let mut receipt_ids = Vec::new();
    if d.agreed && !d.inliers.is_empty() {
        let inliers: Vec<&Replica> = d.inliers.iter().filter_map(|&i| replicas.get(i)).collect();
        let times: Vec<DateTime> = inliers
            .iter()
            .filter_map(|r| aware(&r.completed_at))
            .collect();
        let by_instant = |a: &&DateTime, b: &&DateTime| a.unix_micros().cmp(&b.unix_micros());
        let (Some(start), Some(end)) = (
            times.iter().min_by(by_instant).cloned(),
            times.iter().max_by(by_instant).cloned(),
        ) else {
            return Err(ApiError::Internal("agreeing results without times".into()));
        };
        let anchors: Vec<ResultHashAnchor> = inliers
            .iter()
            .map(|r| ResultHashAnchor {
                rekor_log_index: 0,
                rekor_entry_uuid: NO_REKOR_UUID.to_owned(),
                result_sha256: r.result_sha256.clone(),
            })
            .collect();
        for &i in &d.inliers {
            let Some(r) = replicas.get(i) else { continue };
            let Some(worker_pubkey) = decode_pubkey(&r.pubkey) else {
                continue;
            };
            let receipt = Receipt {
                tenant_id: exp.tenant_id.clone(),
                experiment_id: exp.label.clone(),
                worker_pubkey,
                work_unit_ids: vec![unit_id.to_owned()],
                time_window: TimeWindow { start, end },
                quorum_agreement: QuorumAgreement {
                    replication_factor: target.max(1) as u64,
                    agreeing_workers: d.agreeing_workers.max(1),
                    method: d.method.clone(),
                },
                result_hash_anchors: anchors.clone(),
            };
            let body = encode_cbor(&receipt)
                .map_err(|e| ApiError::Internal(format!("receipt encoding: {e}")))?;
            let receipt_id = format!("rcpt-{}", ordered_id());
            let statement = Statement::wrap(
                &format!("auspexai:receipt/{receipt_id}"),
                RECEIPT_PREDICATE_TYPE,
                body.clone(),
            );
            let cose = CoseSign1::sign(statement.encode(), key.signing_key()).encode();
            tx.prepare_cached(
                "INSERT INTO receipts (receipt_id, experiment_id, unit_id, result_id, worker_id, \
                 worker_pubkey, cose_blob, body_cbor, signing_key_pubkey_hex, issued_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                receipt_id,
                exp.experiment_id,
                unit_id,
                r.result_id,
                r.worker_id,
                r.pubkey,
                cose,
                body,
                key.public_hex(),
                now
            ])?;
            receipted.insert(i);
            receipt_ids.push(Value::from(receipt_id));
        }
    }
    if let Some(rep) = d.representative.and_then(|i| replicas.get(i)) {
        tx.prepare_cached("UPDATE results SET is_consensus = 1 WHERE result_id = ?1")?
            .execute(params![rep.result_id])?;
    }
    // Every stored replica of the unit without a receipt learns it will not
    // get one (duplicates by key included).
    let reason = if d.agreed {
        "diverged_from_consensus"
    } else {
        "quorum_disagreed"
    };
    tx.prepare_cached(
        "INSERT OR IGNORE INTO receipt_outcomes \
         (result_id, worker_id, experiment_id, unit_id, outcome, reason, recorded_at) \
         SELECT r.result_id, r.worker_id, r.experiment_id, r.unit_id, 'no_receipt', ?3, ?4 \
         FROM results r WHERE r.experiment_id = ?1 AND r.unit_id = ?2 \
         AND NOT EXISTS (SELECT 1 FROM receipts c WHERE c.result_id = r.result_id)",
    )?
    .execute(params![exp.experiment_id, unit_id, reason, now])?;
    let outliers: BTreeSet<&str> = replicas
        .iter()
        .enumerate()
        .filter(|(i, _)| !receipted.contains(i))
        .map(|(_, r)| r.semantic_hash.as_str())
        .collect();
    let outlier_values: Vec<Value> = outliers.iter().map(|h| Value::from(*h)).collect();
    let representative_json = d
        .representative
        .and_then(|i| replicas.get(i))
        .map(|r| to_json(&r.payload));
    tx.prepare_cached(
        "INSERT OR REPLACE INTO unit_consensus (experiment_id, unit_id, method, agreed, \
         representative_hash, representative_json, spread_json, envelope_json, agreeing_workers, \
         outlier_count, outlier_result_hashes_json, integrity_basis, recorded_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        exp.experiment_id,
        unit_id,
        d.method,
        d.agreed,
        d.representative_hash,
        representative_json,
        d.spread.as_ref().map(to_json),
        d.envelope.as_ref().map(to_json),
        d.agreeing_workers as i64,
        (replicas.len() - receipted.len()) as i64,
        to_json(&Value::Array(outlier_values)),
        d.integrity_basis,
        now
    ])?;
    let mut events = Vec::new();
    if !receipt_ids.is_empty() {
        events.push((
            "receipt.issued",
            Obj::new()
                .set("unit_id", unit_id)
                .set("agreed", d.agreed)
                .set("agreeing_workers", d.agreeing_workers)
                .set("issued_receipt_ids", Value::Array(receipt_ids))
                .build(),
        ));
    }
    Ok(events)
}

/// Records that a result stored after its unit settled gets no receipt.
pub(crate) fn late_result(
    tx: &Transaction<'_>,
    result_id: &str,
    worker_id: &str,
    experiment_id: &str,
    unit_id: &str,
) -> ApiResult<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO receipt_outcomes \
         (result_id, worker_id, experiment_id, unit_id, outcome, reason, recorded_at) \
         VALUES (?1, ?2, ?3, ?4, 'no_receipt', 'non_consensus', ?5)",
    )?
    .execute(params![
        result_id,
        worker_id,
        experiment_id,
        unit_id,
        iso_now()
    ])?;
    Ok(())
}
