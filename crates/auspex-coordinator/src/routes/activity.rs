//! The activity rollup `GET /experiments/{id}/activity` (`coordinator.md`
//! §13.1; the SDK's `Experiment.progress()`, `tenant-sdk.md` §4.6).
//!
//! Counts only, never volunteer identities. Viewers are the maintainer and
//! the owning researcher; everyone else gets 404 `experiment_not_found`.
//! Read-only. The devnet has no accounts, so `own_workers` and
//! `download_progress` (model pre-staging) never appear.

use auspex_wire::json::Value;
use axum::http::StatusCode;
use axum::response::Response;
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::AppState;
use crate::auth::Credential;
use crate::db::ApiResult;
use crate::error::json_response;
use crate::util::{Obj, iso_from_micros, now_micros, parse_stored};

use super::experiments::{self, ExperimentRow};
use super::workers::satisfies;

/// A worker is active while its last heartbeat is this recent (the real
/// `STALE_HEARTBEAT_MINUTES = 3`).
pub const ACTIVE_HEARTBEAT_SECS: i64 = 180;

struct WorkerCaps {
    worker_id: String,
    capabilities: Value,
}

/// Workers not retired, not quarantined, heartbeat within 3 minutes;
/// `schedulable` also drops operator-paused ones.
fn active_workers(conn: &Connection, schedulable: bool) -> rusqlite::Result<Vec<WorkerCaps>> {
    let cutoff = iso_from_micros(now_micros() - ACTIVE_HEARTBEAT_SECS * 1_000_000);
    let mut stmt = conn.prepare_cached(
        "SELECT worker_id, capabilities_json, paused_at FROM workers WHERE retired_at IS NULL \
         AND quarantined_at IS NULL AND last_heartbeat_at IS NOT NULL AND last_heartbeat_at > ?1",
    )?;
    let rows = stmt
        .query_map(params![cutoff], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .filter(|(_, _, paused)| !schedulable || paused.is_none())
        .map(|(worker_id, caps, _)| WorkerCaps {
            worker_id,
            capabilities: parse_stored(&caps),
        })
        .collect())
}

fn queue(conn: &Connection, e: &ExperimentRow) -> rusqlite::Result<(Option<i64>, i64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.experiment_id FROM experiments e WHERE e.status = 'approved' AND EXISTS \
         (SELECT 1 FROM work_units u WHERE u.experiment_id = e.experiment_id \
          AND u.status = 'pending') ORDER BY e.seq",
    )?;
    let ids: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let pos = ids
        .iter()
        .position(|x| *x == e.experiment_id)
        .map(|p| p as i64 + 1);
    Ok((pos, ids.len() as i64))
}

/// `GET /experiments/{id}/activity`.
pub fn get(state: &AppState, cred: &Credential, experiment_id: &str) -> ApiResult<Response> {
    let conn = state.db().lock();
    let e = experiments::load_visible(&conn, cred, experiment_id)?;
    let caps = parse_stored(&e.required_capabilities);
    let caps_empty = caps.as_object().is_none_or(|c| c.is_empty());
    let required_models = caps
        .get("models")
        .and_then(Value::as_array)
        .is_some_and(|m| !m.is_empty());

    let mut counts = Obj::new();
    let mut stmt = conn.prepare_cached(
        "SELECT status, COUNT(*), SUM(completions_so_far), SUM(replication_target) \
         FROM work_units WHERE experiment_id = ?1 GROUP BY status ORDER BY status",
    )?;
    let rows: Vec<(String, i64, i64, i64)> = stmt
        .query_map(params![experiment_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    drop(stmt);
    let (mut total, mut completions, mut targets) = (0i64, 0i64, 0i64);
    for (status, n, c, t) in &rows {
        counts = counts.set(status, *n);
        total += n;
        completions += c;
        targets += t;
    }
    let contributors: i64 = conn.query_row(
        "SELECT COUNT(DISTINCT worker_id) FROM results WHERE experiment_id = ?1",
        params![experiment_id],
        |r| r.get(0),
    )?;
    let last_activity: Option<String> = conn
        .query_row(
            "SELECT MAX(received_at) FROM results WHERE experiment_id = ?1",
            params![experiment_id],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let active = active_workers(&conn, false)?.len();
    let (capable, busy) = if required_models {
        let real = e.requires_real_execution;
        let capable: Vec<WorkerCaps> = active_workers(&conn, true)?
            .into_iter()
            .filter(|w| satisfies(&w.capabilities, &caps, real))
            .collect();
        let mut busy = 0i64;
        let now_us = now_micros();
        let mut stmt = conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM assignments a JOIN experiments x \
             ON x.experiment_id = a.experiment_id WHERE a.worker_id = ?1 \
             AND x.status = 'approved' AND a.result_id IS NULL AND a.refused_at IS NULL \
             AND a.lease_expires_us > ?2)",
        )?;
        for w in &capable {
            if stmt.query_row(params![w.worker_id, now_us], |r| r.get::<_, bool>(0))? {
                busy += 1;
            }
        }
        (Some(capable.len() as i64), Some(busy))
    } else {
        (None, None)
    };
    let phase = experiments::run_phase(&conn, &e)?;
    let diverged: Option<i64> = if total > 0 {
        Some(conn.query_row(
            "SELECT COUNT(*) FROM unit_consensus WHERE experiment_id = ?1 AND agreed = 0",
            params![experiment_id],
            |r| r.get(0),
        )?)
    } else {
        None
    };
    let (queue_position, queue_depth) = if phase == Some("queued") {
        let (p, d) = queue(&conn, &e)?;
        (p, p.map(|_| d))
    } else {
        (None, None)
    };
    let liveness_note = match phase {
        Some("paused") => Some(match e.last_action_by_class.as_deref() {
            Some("system") => "paused by the network",
            Some("maintainer") => "paused by a maintainer",
            _ => "paused",
        }),
        Some("queued") if capable == Some(0) => {
            Some("queued: no active worker can run this experiment's models yet")
        }
        Some("queued") if active == 0 => Some("queued: no worker is active on the network"),
        Some("queued") => Some("queued: waiting for a worker"),
        _ => None,
    };
    let v = Obj::new()
        .set("experiment_id", experiment_id)
        .set("active_contributor_count", contributors)
        .set("total_work_units", total)
        .set("work_unit_counts", counts)
        .opt("last_activity_at", last_activity)
        .set("completions_total", completions)
        .set("replication_target_total", targets)
        .set("network_active_workers", active as u64)
        .opt(
            "required_capabilities",
            (!caps_empty).then_some(caps.clone()),
        )
        .opt("capable_worker_count", capable)
        .opt(
            "capable_busy_count",
            busy.filter(|_| capable.unwrap_or(0) > 0),
        )
        .opt("liveness_note", liveness_note)
        .opt("diverged_unit_count", diverged)
        .opt("run_phase", phase)
        .opt("queue_position", queue_position)
        .opt("queue_depth", queue_depth)
        .build();
    Ok(json_response(StatusCode::OK, &v))
}
