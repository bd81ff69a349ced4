//! Worker routes (`coordinator.md` §4.2–§4.4, §13.5; `worker.md` §2):
//! enrolment, heartbeat, leasing, result upload, refusal, pre-stage.
//!
//! Leases: an assignment holds one replica slot of its unit until it has a
//! result, is refused, or its lease ([`Config::lease`](crate::Config))
//! expires. An expired replica is offered to *another* worker (the real
//! service only re-delivers to the same worker, §4.2). When no other worker
//! could take it — every other enrolled, active, capable worker already
//! holds or has answered the unit, or refused it for good — the expired
//! lease is re-delivered to its holder instead (same row, fresh lease, one
//! more attempt, up to [`MAX_ATTEMPTS`]), as the real service does after
//! 600 s; otherwise a unit whose holder crashed with replication = fleet
//! size could never complete. The same worker never gets a second replica
//! of a unit: re-delivery reuses its one assignment row, and that row takes
//! one result. A result that arrives after its lease expired is still
//! accepted.
//!
//! Leases and result uploads run in the database's group-commit writer
//! ([`Db::write`](crate::db::Db::write)): their checks and changes happen
//! in one transaction, and the answer is sent after the commit is durable.
//! The CPU-heavy parts of an upload — the worker-signature check, the
//! canonical hashes and JSON — run before, outside the writer; the
//! signature's verdict is still reported at its place in the check order.

use auspex_crypto::worker_sig::{SchemaVersion, SignedResult, semantic_hash, verify_row};
use auspex_wire::json::Value;
use axum::http::StatusCode;
use axum::response::Response;
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};

use crate::AppState;
use crate::auth::{Credential, forbidden};
use crate::consensus;
use crate::db::{ApiResult, unique_violation};
use crate::error::{ApiError, json_response, validation_item};
use crate::util::{
    Obj, is_hex64, is_hex64_lower, iso_from_micros, iso_now, now_micros, ordered_id, parse_stored,
    parse_time, to_json, token_urlsafe,
};

use super::Body;
use super::experiments;

/// Attempts per (unit, worker) including the first (`MAX_ASSIGNMENT_ATTEMPTS`).
pub const MAX_ATTEMPTS: i64 = 3;

#[derive(Debug, Clone)]
struct WorkerRow {
    worker_id: String,
    pubkey_hex: String,
    trust_tier: i64,
    capabilities: Value,
    registered_at: String,
    last_heartbeat_at: Option<String>,
    retired_at: Option<String>,
    quarantined_at: Option<String>,
    quarantine_reason: Option<String>,
    paused_at: Option<String>,
    pause_reason: Option<String>,
}

fn load_worker(conn: &Connection, worker_id: &str) -> rusqlite::Result<Option<WorkerRow>> {
    conn.prepare_cached(
        "SELECT worker_id, pubkey_hex, trust_tier, capabilities_json, registered_at, \
         last_heartbeat_at, retired_at, quarantined_at, quarantine_reason, paused_at, pause_reason \
         FROM workers WHERE worker_id = ?1",
    )?
    .query_row(params![worker_id], |r| {
        Ok(WorkerRow {
            worker_id: r.get(0)?,
            pubkey_hex: r.get(1)?,
            trust_tier: r.get(2)?,
            capabilities: parse_stored(&r.get::<_, String>(3)?),
            registered_at: r.get(4)?,
            last_heartbeat_at: r.get(5)?,
            retired_at: r.get(6)?,
            quarantined_at: r.get(7)?,
            quarantine_reason: r.get(8)?,
            paused_at: r.get(9)?,
            pause_reason: r.get(10)?,
        })
    })
    .optional()
}

/// The worker object (exclude_none); `operator` adds the maintainer-only
/// members.
fn worker_value(w: &WorkerRow, operator: bool) -> Value {
    let mut o = Obj::new()
        .set("worker_id", w.worker_id.as_str())
        .set("trust_tier", w.trust_tier)
        .set("registered_at", w.registered_at.as_str())
        .opt("last_heartbeat_at", w.last_heartbeat_at.clone())
        .opt("retired_at", w.retired_at.clone())
        .opt("quarantined_at", w.quarantined_at.clone());
    if operator {
        o = o
            .opt("quarantine_reason", w.quarantine_reason.clone())
            .opt("paused_at", w.paused_at.clone())
            .set("pubkey_hex", w.pubkey_hex.as_str())
            .set("capabilities", w.capabilities.clone());
    }
    o.build()
}

/// 403 `worker_required` / `worker_id_mismatch` unless the caller is the
/// worker `wid`; then 404 `worker_not_found` when it is gone.
fn self_worker(conn: &Connection, cred: &Credential, wid: &str) -> ApiResult<WorkerRow> {
    match cred {
        Credential::Worker { worker_id, .. } if worker_id == wid => {}
        Credential::Worker { worker_id, .. } => {
            return Err(ApiError::with(
                StatusCode::FORBIDDEN,
                "worker_id_mismatch",
                "the signing worker is not the worker in the path",
                Obj::new()
                    .set("credential_worker_id", worker_id.as_str())
                    .set("url_worker_id", wid),
            ));
        }
        _ => {
            return Err(forbidden(
                "worker_required",
                "a worker credential is required",
                cred,
            ));
        }
    }
    match load_worker(conn, wid)? {
        Some(w) if w.retired_at.is_none() => Ok(w),
        _ => Err(worker_not_found(wid)),
    }
}

fn worker_not_found(wid: &str) -> ApiError {
    ApiError::with(
        StatusCode::NOT_FOUND,
        "worker_not_found",
        format!("worker {wid} not found"),
        Obj::new().set("worker_id", wid),
    )
}

/// `POST /workers/enroll` (anonymous, 201): checks `pubkey_retired`,
/// `pubkey_already_tenant`, `pubkey_already_enrolled` in that order.
pub fn enroll(state: &AppState, body: &Body) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let pubkey = body.req_str("pubkey_hex", &mut errors);
    if let Some(k) = &pubkey
        && !is_hex64(k)
    {
        errors.push(super::pattern_error("pubkey_hex", "^[a-fA-F0-9]+$", k));
    }
    let capabilities = match body.get("capabilities") {
        None => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            errors.push(validation_item(
                &["body", "capabilities"],
                "dict_type",
                "Input should be a valid dictionary",
            ));
            Value::Null
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let pubkey = pubkey.unwrap_or_default().to_ascii_lowercase();
    let conn = state.db().lock();
    let conflict = |code: &'static str, msg: &str, details: Obj| {
        Err(ApiError::with(StatusCode::CONFLICT, code, msg, details))
    };
    let exists = |sql: &str| -> rusqlite::Result<bool> {
        Ok(conn
            .query_row(sql, params![pubkey], |_| Ok(true))
            .optional()?
            .unwrap_or(false))
    };
    if exists("SELECT 1 FROM retired_keys WHERE pubkey_hex = ?1")? {
        return conflict(
            "pubkey_retired",
            "this key was retired",
            Obj::new().set("pubkey_hex", pubkey.as_str()),
        );
    }
    if exists("SELECT 1 FROM tenants WHERE maintainer_pubkey = ?1")? {
        return conflict(
            "pubkey_already_tenant",
            "this key is a tenant key",
            Obj::new().set("pubkey_hex", pubkey.as_str()),
        );
    }
    let worker_id = format!("wkr-{}", token_urlsafe(9));
    let now = iso_now();
    if let Err(e) = conn.execute(
        "INSERT INTO workers (worker_id, pubkey_hex, trust_tier, capabilities_json, registered_at) \
         VALUES (?1, ?2, 0, ?3, ?4)",
        params![worker_id, pubkey, to_json(&capabilities), now],
    ) {
        return match unique_violation(&e) {
            Some(db_error) => conflict(
                "pubkey_already_enrolled",
                "this key is already enrolled",
                Obj::new().set("db_error", db_error),
            ),
            None => Err(e.into()),
        };
    }
    Ok(json_response(
        StatusCode::CREATED,
        &Obj::new()
            .set("worker_id", worker_id)
            .set("trust_tier", 0i64)
            .set("registered_at", now)
            .build(),
    ))
}

/// `GET /workers/{wid}`: the worker itself or a maintainer.
pub fn get(state: &AppState, cred: &Credential, wid: &str) -> ApiResult<Response> {
    let conn = state.db().lock();
    let own = matches!(cred, Credential::Worker { worker_id, .. } if worker_id == wid);
    if !own && !cred.is_maintainer() {
        return Err(forbidden(
            "worker_self_or_maintainer_required",
            "the worker itself or a maintainer is required",
            cred,
        ));
    }
    let w = load_worker(&conn, wid)?.ok_or_else(|| worker_not_found(wid))?;
    Ok(json_response(
        StatusCode::OK,
        &worker_value(&w, cred.is_maintainer()),
    ))
}

/// `POST /workers/{wid}/heartbeat`: `capabilities`, when present, replace
/// the stored ones; 200 with the worker object.
pub fn heartbeat(
    state: &AppState,
    cred: &Credential,
    wid: &str,
    body: &Body,
) -> ApiResult<Response> {
    let capabilities = match body.get("capabilities") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => {
            return Err(ApiError::invalid(
                &["body", "capabilities"],
                "dict_type",
                "Input should be a valid dictionary",
            ));
        }
    };
    let conn = state.db().lock();
    self_worker(&conn, cred, wid)?;
    let now = iso_now();
    match &capabilities {
        Some(c) => conn.execute(
            "UPDATE workers SET last_heartbeat_at = ?2, capabilities_json = ?3 WHERE worker_id = ?1",
            params![wid, now, to_json(c)],
        )?,
        None => conn.execute(
            "UPDATE workers SET last_heartbeat_at = ?2 WHERE worker_id = ?1",
            params![wid, now],
        )?,
    };
    let w = load_worker(&conn, wid)?.ok_or_else(|| worker_not_found(wid))?;
    Ok(json_response(StatusCode::OK, &worker_value(&w, false)))
}

/// `GET /workers/{wid}/prestage`: no pre-stage directives on the devnet.
pub fn prestage(state: &AppState, cred: &Credential, wid: &str) -> ApiResult<Response> {
    let conn = state.db().lock();
    self_worker(&conn, cred, wid)?;
    Ok(json_response(
        StatusCode::OK,
        &Obj::new().set("prestage", Value::Array(Vec::new())).build(),
    ))
}

fn caps_list<'a>(caps: &'a Value, key: &str) -> Vec<&'a str> {
    caps.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `worker_satisfies` (§13.3) for the dimensions the devnet routes on:
/// features, models (provisioned + held or auto-acquire) and
/// `requires_real_execution`.
pub(crate) fn satisfies(caps: &Value, required: &Value, real: bool) -> bool {
    let features = caps_list(caps, "worker_features");
    if !caps_list(required, "features")
        .iter()
        .all(|f| features.contains(f))
    {
        return false;
    }
    let provisioned =
        caps.get("execute_tenant_code").and_then(Value::as_str) == Some("provisioned");
    let models = caps_list(required, "models");
    if models.is_empty() {
        return !real || provisioned;
    }
    if !provisioned {
        return false;
    }
    let auto = matches!(caps.get("auto_acquire"), Some(Value::Bool(true)));
    let held = caps_list(caps, "models");
    auto || models.iter().all(|m| held.contains(m))
}

fn retryable(kind: &str, reason: &str) -> bool {
    let r = reason.to_lowercase();
    matches!(
        kind,
        "runner_failed" | "sandbox_unavailable" | "thermal_critical" | "submit_failed_transient"
    ) || r.contains("package_unavailable")
        || r.contains("serving unavailable")
        || r.contains("serving_version_mismatch")
}

/// Replica slots of a unit in use: rows with a result, plus unrefused rows
/// whose lease has not expired.
const USED_SLOTS: &str = "(SELECT COUNT(*) FROM assignments a WHERE a.experiment_id = u.experiment_id \
     AND a.unit_id = u.unit_id AND a.refused_at IS NULL \
     AND (a.result_id IS NOT NULL OR a.lease_expires_us > ?3))";

enum Pick {
    /// A unit this worker has no row for (`Some(seq)`: it is pending now).
    New(String, Option<i64>),
    /// A retryable refusal of this worker, re-armed (same row).
    Rearm(String, String),
    /// This worker's own expired lease, re-delivered (same row).
    Redeliver(String, String),
}

/// How long a heartbeat keeps a worker in the schedulable fleet
/// (`STALE_HEARTBEAT_MINUTES = 3`, `coordinator.md` §13.3).
const STALE_HEARTBEAT_US: i64 = 3 * 60 * 1_000_000;

/// Whether the worker's own reports take it out of scheduling (thermal
/// critical, volunteer self-pause) or an operator paused it.
fn withheld(caps: &Value, paused_at: Option<&str>) -> bool {
    caps.get("thermal")
        .and_then(|t| t.get("state"))
        .and_then(Value::as_str)
        == Some("critical")
        || matches!(caps.get("self_paused"), Some(Value::Bool(true)))
        || paused_at.is_some()
}

/// Whether a worker other than `holder` could take a replica of `unit_id`
/// now: enrolled, not retired, quarantined, paused or withheld, heartbeat
/// not stale (a worker that never sent one counts), capable for the
/// experiment, and either without an assignment for the unit or with a
/// retryable refusal under the attempt cap.
fn another_taker(
    tx: &Transaction<'_>,
    exp_id: &str,
    unit_id: &str,
    holder: &str,
    required: &Value,
    real: bool,
    now_us: i64,
) -> ApiResult<bool> {
    let mut stmt = tx.prepare_cached(
        "SELECT w.capabilities_json, w.last_heartbeat_at, a.assignment_id, a.refused_at, \
         a.refused_kind, COALESCE(a.refused_reason, ''), a.attempt_count, a.result_id \
         FROM workers w LEFT JOIN assignments a \
           ON a.experiment_id = ?1 AND a.unit_id = ?2 AND a.worker_id = w.worker_id \
         WHERE w.worker_id != ?3 AND w.retired_at IS NULL AND w.quarantined_at IS NULL \
           AND w.paused_at IS NULL",
    )?;
    type Row = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        Option<i64>,
        Option<String>,
    );
    let rows = stmt.query_map(params![exp_id, unit_id, holder], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ))
    })?;
    for row in rows {
        let (caps, heartbeat, assignment, refused_at, kind, reason, attempts, result): Row = row?;
        let stale = heartbeat
            .as_deref()
            .and_then(parse_time)
            .is_some_and(|t| now_us.saturating_sub(t.micros) > STALE_HEARTBEAT_US);
        let caps = parse_stored(&caps);
        if stale || withheld(&caps, None) || !satisfies(&caps, required, real) {
            continue;
        }
        let free = match assignment {
            None => true,
            Some(_) => {
                result.is_none()
                    && refused_at.is_some()
                    && attempts.unwrap_or(MAX_ATTEMPTS) < MAX_ATTEMPTS
                    && retryable(kind.as_deref().unwrap_or(""), &reason)
            }
        };
        if free {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Skip hints a pick found, to record once its transaction has committed
/// ([`Db::pick_hint`](crate::db::Db::pick_hint)).
#[derive(Default)]
struct Hints {
    /// (experiment, hint) for the picking worker.
    found: Vec<(String, i64)>,
    /// (experiment, seq): a pending unit this lease moved to `in_progress`.
    started: Option<(String, i64)>,
}

/// `Scheduler.pick_for_worker`: approved experiments in registration order;
/// within one, pending units first, then in-progress units with a free
/// slot (creation order) — including a unit this worker refused with a
/// retryable kind under the attempt cap, and a unit whose lease this worker
/// let expire when no other worker could take that replica.
///
/// The in-progress walk starts at the worker's skip hint: every
/// in-progress unit below it is already held by this worker, so the walk
/// does not step over all of them on every poll (with unequal workers that
/// run grows with how far they drift apart).
fn pick(
    state: &AppState,
    tx: &Transaction<'_>,
    w: &WorkerRow,
    now_us: i64,
    hints: &mut Hints,
) -> ApiResult<Option<(String, Pick)>> {
    let caps = &w.capabilities;
    if withheld(caps, w.paused_at.as_deref()) {
        return Ok(None);
    }
    let mut stmt = tx.prepare_cached(
        "SELECT experiment_id, required_capabilities, requires_real_execution, \
         max_concurrent_assignments FROM experiments WHERE status = 'approved' ORDER BY seq",
    )?;
    let exps: Vec<(String, String, bool, Option<i64>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    drop(stmt);
    for (exp_id, required, real, max_concurrent) in exps {
        let required = parse_stored(&required);
        if !satisfies(caps, &required, real) {
            continue;
        }
        if let Some(cap) = max_concurrent {
            let active: i64 = tx
                .prepare_cached(
                    "SELECT COUNT(*) FROM assignments WHERE experiment_id = ?1 \
                     AND result_id IS NULL AND refused_at IS NULL AND lease_expires_us > ?2",
                )?
                .query_row(params![exp_id, now_us], |r| r.get(0))?;
            if active >= cap {
                continue;
            }
        }
        let pending: Option<(String, i64)> = tx
            .prepare_cached(
                "SELECT unit_id, seq FROM work_units WHERE experiment_id = ?1 \
                 AND status = 'pending' \
                 AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.experiment_id = ?1 \
                     AND a.unit_id = work_units.unit_id AND a.worker_id = ?2) \
                 ORDER BY seq LIMIT 1",
            )?
            .query_row(params![exp_id, w.worker_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((unit, seq)) = pending {
            return Ok(Some((exp_id, Pick::New(unit, Some(seq)))));
        }
        // Candidates, each with its unit's creation order; the earliest wins.
        let mut best: Option<(i64, Pick)> = None;
        let consider = |best: &mut Option<(i64, Pick)>, seq: i64, p: Pick| {
            if best.as_ref().is_none_or(|(s, _)| seq < *s) {
                *best = Some((seq, p));
            }
        };
        // A retryable refusal of this worker, re-armed (same row).
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT a.assignment_id, a.unit_id, a.refused_kind, COALESCE(a.refused_reason, ''), u.seq \
             FROM assignments a JOIN work_units u \
               ON u.experiment_id = a.experiment_id AND u.unit_id = a.unit_id \
             WHERE a.experiment_id = ?1 AND a.worker_id = ?2 AND a.refused_at IS NOT NULL \
               AND a.result_id IS NULL AND a.attempt_count < {MAX_ATTEMPTS} \
               AND u.status IN ('pending', 'in_progress') AND {USED_SLOTS} < u.replication_target \
             ORDER BY u.seq"
        ))?;
        let rearm: Vec<(String, String, Option<String>, String, i64)> = stmt
            .query_map(params![exp_id, w.worker_id, now_us], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        if let Some((aid, unit, _, _, seq)) = rearm
            .into_iter()
            .find(|(_, _, kind, reason, _)| retryable(kind.as_deref().unwrap_or(""), reason))
        {
            consider(&mut best, seq, Pick::Rearm(aid, unit));
        }
        // The first in-progress unit from the hint on that this worker does
        // not hold becomes its next hint; the walk for a free slot starts
        // there.
        let hint = state.db().pick_hint(&exp_id, &w.worker_id);
        let unheld: Option<i64> = tx
            .prepare_cached(
                "SELECT u.seq FROM work_units u WHERE u.experiment_id = ?1 \
                 AND u.status = 'in_progress' AND u.seq >= ?3 \
                 AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.experiment_id = ?1 \
                     AND a.unit_id = u.unit_id AND a.worker_id = ?2) \
                 ORDER BY u.seq LIMIT 1",
            )?
            .query_row(params![exp_id, w.worker_id, hint], |r| r.get(0))
            .optional()?;
        hints
            .found
            .push((exp_id.clone(), unheld.unwrap_or(i64::MAX)));
        let fresh: Option<(String, i64)> = match unheld {
            None => None,
            Some(from) => tx
                .prepare_cached(&format!(
                    "SELECT u.unit_id, u.seq FROM work_units u WHERE u.experiment_id = ?1 \
                     AND u.status = 'in_progress' AND u.seq >= ?4 \
                     AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.experiment_id = ?1 \
                         AND a.unit_id = u.unit_id AND a.worker_id = ?2) \
                     AND {USED_SLOTS} < u.replication_target ORDER BY u.seq LIMIT 1"
                ))?
                .query_row(params![exp_id, w.worker_id, now_us, from], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?,
        };
        if let Some((unit, seq)) = fresh {
            consider(&mut best, seq, Pick::New(unit, None));
        }
        // This worker's own expired leases (crashed or lost answers), for
        // re-delivery when nobody else could take the replica.
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT a.assignment_id, a.unit_id, u.seq FROM assignments a JOIN work_units u \
               ON u.experiment_id = a.experiment_id AND u.unit_id = a.unit_id \
             WHERE a.experiment_id = ?1 AND a.result_id IS NULL AND a.refused_at IS NULL \
               AND a.lease_expires_us <= ?3 AND a.worker_id = ?2 \
               AND a.attempt_count < {MAX_ATTEMPTS} \
               AND u.status IN ('pending', 'in_progress') AND {USED_SLOTS} < u.replication_target \
             ORDER BY u.seq"
        ))?;
        let expired: Vec<(String, String, i64)> = stmt
            .query_map(params![exp_id, w.worker_id, now_us], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        for (aid, unit, seq) in expired {
            if best.as_ref().is_some_and(|(s, _)| *s < seq) {
                break;
            }
            if !another_taker(tx, &exp_id, &unit, &w.worker_id, &required, real, now_us)? {
                consider(&mut best, seq, Pick::Redeliver(aid, unit));
                break;
            }
        }
        if let Some((_, p)) = best {
            return Ok(Some((exp_id, p)));
        }
    }
    Ok(None)
}

/// `GET /workers/{wid}/assignments`: 423 when quarantined or paused; the
/// exact null shape when there is nothing; else a new (or re-armed, or
/// re-delivered) lease. Runs in the group-commit writer: the lease is
/// durable before the worker hears of it.
pub fn assignments(state: &AppState, cred: &Credential, wid: &str) -> ApiResult<Response> {
    let lease_us = i64::try_from(state.config().lease.as_micros()).unwrap_or(i64::MAX);
    let (job_state, cred, wid) = (state.clone(), cred.clone(), wid.to_owned());
    let hint_state = state.clone();
    let worker = wid.clone();
    let (v, _) = state.db().write(
        move |tx| {
            let mut hints = Hints::default();
            let v = lease(&job_state, tx, &cred, &wid, lease_us, &mut hints)?;
            Ok((v, hints))
        },
        move |(_, hints): &mut (Value, Hints)| {
            let db = hint_state.db();
            for (exp, seq) in &hints.found {
                db.set_pick_hint(exp, &worker, *seq);
            }
            if let Some((exp, seq)) = &hints.started {
                db.lower_pick_hints(exp, *seq);
            }
        },
    )?;
    Ok(json_response(StatusCode::OK, &v))
}

fn lease(
    state: &AppState,
    tx: &Transaction<'_>,
    cred: &Credential,
    wid: &str,
    lease_us: i64,
    hints: &mut Hints,
) -> ApiResult<Value> {
    let w = self_worker(tx, cred, wid)?;
    if let Some(at) = &w.quarantined_at {
        return Err(ApiError::with(
            StatusCode::LOCKED,
            "worker_quarantined",
            "this worker is quarantined",
            Obj::new()
                .set("quarantined_at", at.as_str())
                .set("quarantine_reason", w.quarantine_reason.clone()),
        ));
    }
    if let Some(at) = &w.paused_at {
        return Err(ApiError::with(
            StatusCode::LOCKED,
            "worker_paused",
            "this worker is paused by an operator",
            Obj::new()
                .set("paused_at", at.as_str())
                .set("pause_reason", w.pause_reason.clone())
                .set("no_fault", true),
        ));
    }
    let now_us = now_micros();
    let expires = now_us.saturating_add(lease_us);
    let assigned_at = iso_from_micros(now_us);
    let Some((exp_id, pick)) = pick(state, tx, &w, now_us, hints)? else {
        return Ok(idle_value());
    };
    let mut pending_seq = None;
    let (assignment_id, unit_id) = match pick {
        Pick::New(unit_id, pending) => {
            pending_seq = pending;
            let id = format!("asg-{}", ordered_id());
            if let Err(e) = tx
                .prepare_cached(
                    "INSERT INTO assignments (assignment_id, experiment_id, unit_id, worker_id, \
                     worker_pubkey_hex, assigned_at, lease_expires_us, attempt_count) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1)",
                )?
                .execute(params![
                    id,
                    exp_id,
                    unit_id,
                    w.worker_id,
                    w.pubkey_hex,
                    assigned_at,
                    expires
                ])
            {
                // A concurrent pick of the same (unit, worker): no work.
                return match unique_violation(&e) {
                    Some(_) => Ok(idle_value()),
                    None => Err(e.into()),
                };
            }
            (id, unit_id)
        }
        Pick::Rearm(id, unit_id) => {
            tx.prepare_cached(
                "UPDATE assignments SET refused_at = NULL, refused_kind = NULL, \
                 refused_reason = NULL, assigned_at = ?2, lease_expires_us = ?3, \
                 attempt_count = attempt_count + 1 WHERE assignment_id = ?1",
            )?
            .execute(params![id, assigned_at, expires])?;
            (id, unit_id)
        }
        Pick::Redeliver(id, unit_id) => {
            tx.prepare_cached(
                "UPDATE assignments SET assigned_at = ?2, lease_expires_us = ?3, \
                 attempt_count = attempt_count + 1 WHERE assignment_id = ?1 \
                 AND result_id IS NULL AND refused_at IS NULL",
            )?
            .execute(params![id, assigned_at, expires])?;
            (id, unit_id)
        }
    };
    let started = tx
        .prepare_cached(
            "UPDATE work_units SET status = 'in_progress' WHERE experiment_id = ?1 \
             AND unit_id = ?2 AND status = 'pending'",
        )?
        .execute(params![exp_id, unit_id])?;
    if started > 0 {
        // Other workers' hints must not stay above a unit that just became
        // in progress without them (a seq not at hand resets them all).
        hints.started = Some((exp_id.clone(), pending_seq.unwrap_or(0)));
    }
    let (tenant_id, label, manifest_hash): (String, String, String) = tx
        .prepare_cached(
            "SELECT tenant_id, label, manifest_hash FROM experiments WHERE experiment_id = ?1",
        )?
        .query_row(params![exp_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let (created_at, payload): (String, String) = tx
        .prepare_cached(
            "SELECT created_at, payload_json FROM work_units WHERE experiment_id = ?1 \
             AND unit_id = ?2",
        )?
        .query_row(params![exp_id, unit_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(Obj::new()
        .set("assignment_id", assignment_id)
        .set("assigned_at", assigned_at)
        .set("experiment_id", exp_id)
        .set(
            "work_unit",
            Obj::new()
                .set("schema_version", "0.1")
                .set("unit_id", unit_id)
                .set("tenant_id", tenant_id)
                .set("experiment_id", label)
                .set("manifest_sha256", manifest_hash)
                .set("created_at", created_at)
                .set("payload", parse_stored(&payload)),
        )
        .build())
}

fn idle_value() -> Value {
    Obj::new()
        .set("assignment_id", Value::Null)
        .set("assigned_at", Value::Null)
        .set("experiment_id", Value::Null)
        .set("work_unit", Value::Null)
        .build()
}

#[derive(Debug)]
struct AssignmentRow {
    assignment_id: String,
    experiment_id: String,
    result_id: Option<String>,
    refused_at: Option<String>,
}

/// The worker's assignment for `unit_id` in a live (not aborted/archived)
/// experiment, the exact `assignment_id` when given; else an open one
/// first.
fn find_assignment(
    conn: &Connection,
    wid: &str,
    unit_id: &str,
    assignment_id: Option<&str>,
) -> ApiResult<AssignmentRow> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.assignment_id, a.experiment_id, a.result_id, a.refused_at \
         FROM assignments a JOIN experiments e ON e.experiment_id = a.experiment_id \
         WHERE a.worker_id = ?1 AND a.unit_id = ?2 AND e.status NOT IN ('aborted', 'archived') \
         ORDER BY (a.result_id IS NOT NULL OR a.refused_at IS NOT NULL), a.assigned_at DESC",
    )?;
    let rows: Vec<AssignmentRow> = stmt
        .query_map(params![wid, unit_id], |r| {
            Ok(AssignmentRow {
                assignment_id: r.get(0)?,
                experiment_id: r.get(1)?,
                result_id: r.get(2)?,
                refused_at: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let found = match assignment_id {
        Some(id) => rows.into_iter().find(|a| a.assignment_id == id),
        None => rows.into_iter().next(),
    };
    found.ok_or_else(|| {
        ApiError::with(
            StatusCode::NOT_FOUND,
            "assignment_not_found",
            format!("no assignment of unit {unit_id} for worker {wid}"),
            Obj::new()
                .set("unit_id", unit_id)
                .opt("assignment_id", assignment_id),
        )
    })
}

/// The validated result body.
struct ResultBody {
    unit_id: String,
    worker_pubkey: String,
    completed_at: String,
    exit_code: i64,
    payload: Value,
    worker_signature: String,
    assignment_id: Option<String>,
    schema_version: Option<Value>,
    served_weights: Option<Value>,
    ran_under: Option<String>,
    generation_options: Option<Value>,
}

fn validate_result(body: &Body) -> ApiResult<ResultBody> {
    let mut errors = Vec::new();
    let unit_id = body.req_str("unit_id", &mut errors);
    if let Some(u) = &unit_id
        && !(1..=128).contains(&u.chars().count())
    {
        errors.push(validation_item(
            &["body", "unit_id"],
            "string_too_long",
            "String should have 1 to 128 characters",
        ));
    }
    let worker_pubkey = body.req_str("worker_pubkey", &mut errors);
    if let Some(k) = &worker_pubkey
        && !is_hex64_lower(k)
    {
        errors.push(super::pattern_error("worker_pubkey", "^[a-f0-9]{64}$", k));
    }
    let completed_at = body.req_str("completed_at", &mut errors);
    if let Some(c) = &completed_at
        && parse_time(c).is_none()
    {
        errors.push(validation_item(
            &["body", "completed_at"],
            "datetime_from_date_parsing",
            "Input should be a valid datetime",
        ));
    }
    let exit_code = body.req_int("exit_code", -255, 255, &mut errors);
    let payload = match body.get("payload") {
        None => {
            errors.push(validation_item(
                &["body", "payload"],
                "missing",
                "Field required",
            ));
            None
        }
        Some(p @ Value::Object(_)) => Some(p.clone()),
        Some(_) => {
            errors.push(validation_item(
                &["body", "payload"],
                "dict_type",
                "Input should be a valid dictionary",
            ));
            None
        }
    };
    let worker_signature = body.req_str("worker_signature", &mut errors);
    if worker_signature.as_deref() == Some("") {
        errors.push(validation_item(
            &["body", "worker_signature"],
            "string_too_short",
            "String should have at least 1 character",
        ));
    }
    let assignment_id = body.opt_str("assignment_id", &mut errors);
    if assignment_id
        .as_ref()
        .is_some_and(|a| a.chars().count() > 128)
    {
        errors.push(validation_item(
            &["body", "assignment_id"],
            "string_too_long",
            "String should have at most 128 characters",
        ));
    }
    let ran_under = body.opt_str("ran_under", &mut errors);
    let served_weights = match body.get("served_weights") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => {
            errors.push(validation_item(
                &["body", "served_weights"],
                "dict_type",
                "Input should be a valid dictionary",
            ));
            None
        }
    };
    let generation_options = match body.get("generation_options") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Array(_)) => Some(v.clone()),
        Some(_) => {
            errors.push(validation_item(
                &["body", "generation_options"],
                "list_type",
                "Input should be a valid list",
            ));
            None
        }
    };
    let schema_version = body.get("schema_version").cloned();
    if let Err(e) = SchemaVersion::from_value(schema_version.as_ref()) {
        errors.push(validation_item(
            &["body", "schema_version"],
            "value_error",
            e.to_string(),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    match (
        unit_id,
        worker_pubkey,
        completed_at,
        exit_code,
        payload,
        worker_signature,
    ) {
        (
            Some(unit_id),
            Some(worker_pubkey),
            Some(completed_at),
            Some(exit_code),
            Some(payload),
            Some(worker_signature),
        ) => Ok(ResultBody {
            unit_id,
            worker_pubkey,
            completed_at,
            exit_code,
            payload,
            worker_signature,
            assignment_id,
            schema_version: schema_version.filter(|v| !matches!(v, Value::Null)),
            served_weights,
            ran_under,
            generation_options,
        }),
        _ => Err(ApiError::Validation(Vec::new())),
    }
}

/// `POST /workers/{wid}/assignments/{unit_id}/result` (201), §4.3: self
/// worker (403) → `unit_id_mismatch` (422) → `worker_pubkey_mismatch` (403)
/// → `assignment_not_found` (404) → `result_already_submitted` (409) →
/// (devnet) the worker signature must verify for its schema version, v0–v3
/// (422 `invalid_worker_signature`). Consensus, receipts and auto-complete
/// run in the same transaction.
///
/// The signature check, the hashes and the JSON forms are computed first,
/// outside the group-commit writer; the checks then run in order inside it,
/// and a bad signature is reported at its place in that order.
pub fn result(
    state: &AppState,
    cred: &Credential,
    wid: &str,
    unit_id: &str,
    body: &Body,
) -> ApiResult<Response> {
    let b = validate_result(body)?;
    let served = b.served_weights.as_ref().and_then(Value::as_object);
    let options = b.generation_options.as_ref().and_then(Value::as_array);
    let signed = SignedResult {
        schema_version: SchemaVersion::from_value(b.schema_version.as_ref())
            .unwrap_or(SchemaVersion::V0),
        served_weights: served,
        ran_under: b.ran_under.as_deref(),
        generation_options: options.map(Vec::as_slice),
        ..SignedResult::v0(
            &b.unit_id,
            &b.worker_pubkey,
            &b.completed_at,
            b.exit_code,
            &b.payload,
        )
    };
    let bad_signature = verify_row(&signed, &b.worker_signature).err().map(|e| {
        ApiError::with(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_worker_signature",
            format!("worker_signature does not verify: {e}"),
            Obj::new().set("schema_version", u64::from(signed.schema_version.number())),
        )
    });
    let row = NewResult {
        result_sha256: signed.result_sha256(),
        semantic: semantic_hash(b.exit_code, &b.payload),
        completed_key: parse_time(&b.completed_at)
            .map(|t| t.utc_iso)
            .unwrap_or_default(),
        payload_json: to_json(&b.payload),
        schema_version_json: b.schema_version.as_ref().map(to_json),
        served_weights_json: b.served_weights.as_ref().map(to_json),
        generation_options_json: b.generation_options.as_ref().map(to_json),
        bad_signature,
        b,
    };
    let (job_state, cred, wid, unit_id) = (
        state.clone(),
        cred.clone(),
        wid.to_owned(),
        unit_id.to_owned(),
    );
    let publisher = state.clone();
    let (v, _) = state.db().write(
        move |tx| store_result(&job_state, tx, &cred, &wid, &unit_id, row),
        move |(_, (exp_id, events)): &mut (Value, (String, Vec<Event>))| {
            publisher.publish(Some(exp_id), std::mem::take(events));
        },
    )?;
    Ok(json_response(StatusCode::CREATED, &v))
}

type Event = (&'static str, Value);

/// An upload with everything that does not need the database computed.
struct NewResult {
    b: ResultBody,
    bad_signature: Option<ApiError>,
    result_sha256: String,
    semantic: String,
    completed_key: String,
    payload_json: String,
    schema_version_json: Option<String>,
    served_weights_json: Option<String>,
    generation_options_json: Option<String>,
}

/// The upload's checks and changes, inside the writer's transaction.
/// Returns the response body and the events to publish after the commit.
fn store_result(
    state: &AppState,
    tx: &Transaction<'_>,
    cred: &Credential,
    wid: &str,
    unit_id: &str,
    row: NewResult,
) -> ApiResult<(Value, (String, Vec<Event>))> {
    let NewResult { b, .. } = &row;
    let w = self_worker(tx, cred, wid)?;
    if b.unit_id != unit_id {
        return Err(ApiError::with(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unit_id_mismatch",
            "body unit_id differs from the path",
            Obj::new()
                .set("path_unit_id", unit_id)
                .set("body_unit_id", b.unit_id.as_str()),
        ));
    }
    if b.worker_pubkey != w.pubkey_hex {
        return Err(ApiError::with(
            StatusCode::FORBIDDEN,
            "worker_pubkey_mismatch",
            "worker_pubkey is not the signing key",
            Obj::new()
                .set("worker_pubkey", b.worker_pubkey.as_str())
                .set("credential_pubkey", w.pubkey_hex.as_str()),
        ));
    }
    let a = find_assignment(tx, wid, unit_id, b.assignment_id.as_deref())?;
    if let Some(existing) = &a.result_id {
        return Err(ApiError::with(
            StatusCode::CONFLICT,
            "result_already_submitted",
            "a result was already submitted for this assignment",
            Obj::new()
                .set("assignment_id", a.assignment_id.as_str())
                .set("existing_result_id", existing.as_str()),
        ));
    }
    let NewResult {
        b,
        bad_signature,
        result_sha256,
        semantic,
        completed_key,
        payload_json,
        schema_version_json,
        served_weights_json,
        generation_options_json,
    } = row;
    if let Some(e) = bad_signature {
        return Err(e);
    }
    let mut env = Obj::new();
    for k in ["worker_version", "ollama_version", "served_models"] {
        if let Some(v) = w.capabilities.get(k).filter(|v| !matches!(v, Value::Null)) {
            env = env.set(k, v.clone());
        }
    }
    let now = iso_now();
    let result_id = format!("res-{}", ordered_id());
    let exp = experiments::load(tx, &a.experiment_id)?
        .ok_or_else(|| ApiError::Internal("assignment without experiment".into()))?;
    tx.prepare_cached(
        "INSERT INTO results (result_id, experiment_id, unit_id, assignment_id, worker_id, \
         worker_pubkey_hex, exit_code, payload_json, worker_signature, completed_at, \
         completed_at_key, received_at, semantic_hash, result_sha256, environment_json, \
         schema_version, served_weights_json, ran_under, generation_options_json) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
    )?
    .execute(params![
        result_id,
        a.experiment_id,
        unit_id,
        a.assignment_id,
        wid,
        w.pubkey_hex,
        b.exit_code,
        payload_json,
        b.worker_signature,
        b.completed_at,
        completed_key,
        now,
        semantic,
        result_sha256,
        to_json(&env.build()),
        schema_version_json,
        served_weights_json,
        b.ran_under,
        generation_options_json,
    ])?;
    tx.prepare_cached(
        "UPDATE assignments SET result_id = ?2, refused_at = NULL WHERE assignment_id = ?1",
    )?
    .execute(params![a.assignment_id, result_id])?;
    let (unit_status, completions, target): (String, i64, i64) = tx
        .prepare_cached(
            "UPDATE work_units SET completions_so_far = completions_so_far + 1 \
             WHERE experiment_id = ?1 AND unit_id = ?2 \
             RETURNING status, completions_so_far, replication_target",
        )?
        .query_row(params![a.experiment_id, unit_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let mut events = Vec::new();
    let open = matches!(unit_status.as_str(), "pending" | "in_progress");
    let unit_status_after = if open && completions >= target {
        tx.prepare_cached(
            "UPDATE work_units SET status = 'completed' WHERE experiment_id = ?1 \
             AND unit_id = ?2",
        )?
        .execute(params![a.experiment_id, unit_id])?;
        "completed".to_owned()
    } else {
        unit_status.clone()
    };
    events.push((
        "unit.progress",
        Obj::new()
            .set("unit_id", unit_id)
            .set("unit_status", unit_status_after.as_str())
            .set("completions_so_far", completions)
            .set("replication_target", target)
            .build(),
    ));
    if open && completions >= target {
        events.extend(consensus::settle_unit(
            tx,
            state.key(),
            &exp,
            unit_id,
            target,
        )?);
        events.extend(experiments::maybe_auto_complete(
            tx,
            state.key(),
            &a.experiment_id,
        )?);
    } else if !open {
        consensus::late_result(tx, &result_id, wid, &a.experiment_id, unit_id)?;
    }
    let v = Obj::new()
        .set("result_id", result_id)
        .set("unit_id", unit_id)
        .set("unit_status_after", unit_status_after)
        .set("completions_so_far", completions)
        .set("replication_target", target)
        .build();
    Ok((v, (a.experiment_id, events)))
}

/// `POST /workers/{wid}/assignments/{unit_id}/refuse` (200), §4.4.
pub fn refuse(
    state: &AppState,
    cred: &Credential,
    wid: &str,
    unit_id: &str,
    body: &Body,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let kind = body.req_str("kind", &mut errors);
    if let Some(k) = &kind
        && !(1..=64).contains(&k.chars().count())
    {
        errors.push(validation_item(
            &["body", "kind"],
            "string_too_long",
            "String should have 1 to 64 characters",
        ));
    }
    let reason = body.opt_str("reason", &mut errors).unwrap_or_default();
    if reason.chars().count() > 2048 {
        errors.push(validation_item(
            &["body", "reason"],
            "string_too_long",
            "String should have at most 2048 characters",
        ));
    }
    let assignment_id = body.opt_str("assignment_id", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let kind = kind.unwrap_or_default();
    let conn = state.db().lock();
    self_worker(&conn, cred, wid)?;
    let a = find_assignment(&conn, wid, unit_id, assignment_id.as_deref())?;
    if a.result_id.is_some() || a.refused_at.is_some() {
        return Err(ApiError::with(
            StatusCode::CONFLICT,
            "assignment_already_resolved",
            "this assignment already has a result or a refusal",
            Obj::new()
                .set("assignment_id", a.assignment_id.as_str())
                .set("has_result", a.result_id.is_some())
                .set("already_refused_at", a.refused_at.clone()),
        ));
    }
    let now = iso_now();
    conn.execute(
        "UPDATE assignments SET refused_at = ?2, refused_kind = ?3, refused_reason = ?4 \
         WHERE assignment_id = ?1",
        params![a.assignment_id, now, kind, reason],
    )?;
    Ok(json_response(
        StatusCode::OK,
        &Obj::new()
            .set("assignment_id", a.assignment_id)
            .set("unit_id", unit_id)
            .set("refused_at", now)
            .set("refused_kind", kind)
            .build(),
    ))
}
