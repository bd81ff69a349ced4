//! Results (`coordinator.md` §5, `tenant-sdk.md` §4.3–§4.4): the paged
//! list with the `<completed_at>|<result_id>` keyset cursor and single
//! results.
//!
//! Rows are ordered by the worker-reported completion time normalised to
//! UTC (`isoformat()`, `+00:00`), then `result_id`. Each row's
//! `completed_at` is the string the worker signed, verbatim, so a client
//! can re-verify the worker signature. `next_cursor` is present only on a
//! full page. A malformed cursor is a 422 (`invalid_cursor`), where the
//! real service silently misreads it (§12 #13).

use auspex_wire::json::Value;
use axum::http::StatusCode;
use axum::response::Response;
use rusqlite::{Connection, params};

use crate::AppState;
use crate::auth::{Credential, forbidden};
use crate::db::ApiResult;
use crate::error::{ApiError, json_response, validation_item};
use crate::util::{Obj, iso_now, parse_stored, parse_time};

use super::experiments;
use super::query_get;

/// Default page size.
pub const DEFAULT_LIMIT: i64 = 100;
/// Largest page.
pub const MAX_LIMIT: i64 = 500;

const COLS: &str = "r.result_id, r.unit_id, r.completed_at, c.receipt_id, r.is_consensus, \
    r.payload_aged_off_at, r.semantic_hash, r.payload_json, r.worker_signature, r.worker_id, \
    r.worker_pubkey_hex, r.completed_at_key, u.method, u.representative_hash, u.spread_json, \
    u.envelope_json, u.agreeing_workers, u.outlier_count";

const FROM: &str = "FROM results r LEFT JOIN receipts c ON c.result_id = r.result_id \
    LEFT JOIN unit_consensus u ON u.experiment_id = r.experiment_id AND u.unit_id = r.unit_id";

/// One ResultItem (exclude_none) and its cursor key.
fn item(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Value, String, String)> {
    let result_id: String = r.get(0)?;
    let aged: Option<String> = r.get(5)?;
    let payload: Option<String> = r.get(7)?;
    let is_consensus: bool = r.get(4)?;
    let method: Option<String> = r.get(12)?;
    let evidence = match method.as_deref() {
        Some("builtin_within_cell_tolerance") if is_consensus => Some(
            Obj::new()
                .set("method", method.clone().unwrap_or_default())
                .opt("representative_hash", r.get::<_, Option<String>>(13)?)
                .opt(
                    "spread",
                    r.get::<_, Option<String>>(14)?.map(|s| parse_stored(&s)),
                )
                .opt(
                    "envelope",
                    r.get::<_, Option<String>>(15)?.map(|s| parse_stored(&s)),
                )
                .set("agreeing_workers", r.get::<_, i64>(16)?)
                .set("outlier_count", r.get::<_, i64>(17)?),
        ),
        _ => None,
    };
    let v = Obj::new()
        .set("result_id", result_id.as_str())
        .set("unit_id", r.get::<_, String>(1)?)
        .set("completed_at", r.get::<_, String>(2)?)
        .opt("receipt_id", r.get::<_, Option<String>>(3)?)
        .set("is_consensus", is_consensus)
        .opt("aged_off", aged.is_some().then_some(true))
        .opt("payload_aged_off_at", aged.clone())
        .set("semantic_hash", r.get::<_, String>(6)?)
        .opt(
            "payload",
            payload.filter(|_| aged.is_none()).map(|p| parse_stored(&p)),
        )
        .set("worker_signature", r.get::<_, String>(8)?)
        .set("worker_id", r.get::<_, String>(9)?)
        .set("worker_pubkey_hex", r.get::<_, String>(10)?)
        .opt("consensus_evidence", evidence)
        .build();
    Ok((v, r.get(11)?, result_id))
}

/// 403 `researcher_own_tenant_or_maintainer_required` unless the caller is
/// a researcher or a maintainer (ownership is checked with the experiment).
pub(crate) fn viewer(cred: &Credential) -> ApiResult<()> {
    if cred.is_maintainer() || cred.tenant_id().is_some() {
        Ok(())
    } else {
        Err(forbidden(
            "researcher_own_tenant_or_maintainer_required",
            "the owning researcher or a maintainer is required",
            cred,
        ))
    }
}

/// `GET /experiments/{id}/results?include=consensus|raw&limit=&cursor=`.
/// Listing marks the rows delivered.
pub fn list(
    state: &AppState,
    cred: &Credential,
    experiment_id: &str,
    query: &[(String, String)],
) -> ApiResult<Response> {
    viewer(cred)?;
    let mut errors = Vec::new();
    let include = query_get(query, "include").unwrap_or("consensus");
    if !matches!(include, "consensus" | "raw") {
        errors.push(validation_item(
            &["query", "include"],
            "string_pattern_mismatch",
            "String should match pattern '^(consensus|raw)$'",
        ));
    }
    let limit = match query_get(query, "limit") {
        None => DEFAULT_LIMIT,
        Some(s) => match s.trim().parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                errors.push(validation_item(
                    &["query", "limit"],
                    "less_than_equal",
                    format!("Input should be an integer between 1 and {MAX_LIMIT}"),
                ));
                DEFAULT_LIMIT
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let cursor = match query_get(query, "cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(parse_cursor(c)?),
    };
    let mut conn = state.db().lock();
    experiments::load_visible(&conn, cred, experiment_id)?;
    let consensus_only = include == "consensus";
    let (rows, next) = page(&conn, experiment_id, consensus_only, cursor, limit)?;
    let ids: Vec<&str> = rows.iter().map(|(_, id)| id.as_str()).collect();
    if !ids.is_empty() {
        // One transaction (one fsync) for the page, not one per row.
        let now = iso_now();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE results SET delivered_at = COALESCE(delivered_at, ?2) \
                 WHERE result_id = ?1",
            )?;
            for id in &ids {
                stmt.execute(params![id, now])?;
            }
        }
        tx.commit()?;
    }
    let items: Vec<Value> = rows.into_iter().map(|(v, _)| v).collect();
    Ok(json_response(
        StatusCode::OK,
        &Obj::new()
            .set("results", Value::Array(items))
            .opt("next_cursor", next)
            .build(),
    ))
}

/// Parses `<completed_at>|<result_id>`; the time may be any ISO form and
/// is normalised to the stored sort key.
fn parse_cursor(c: &str) -> ApiResult<(String, String)> {
    let bad = || {
        ApiError::with(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_cursor",
            "cursor must be '<completed_at>|<result_id>' as returned in next_cursor",
            Obj::new().set("cursor", c),
        )
    };
    let (time, id) = c.split_once('|').ok_or_else(bad)?;
    let t = parse_time(time).ok_or_else(bad)?;
    Ok((t.utc_iso, id.to_owned()))
}

type Page = (Vec<(Value, String)>, Option<String>);

fn page(
    conn: &Connection,
    experiment_id: &str,
    consensus_only: bool,
    cursor: Option<(String, String)>,
    limit: i64,
) -> ApiResult<Page> {
    let filter = if consensus_only {
        "AND r.is_consensus = 1"
    } else {
        ""
    };
    let (after_t, after_id) = cursor.unwrap_or_default();
    let sql = format!(
        "SELECT {COLS} {FROM} WHERE r.experiment_id = ?1 {filter} \
         AND (r.completed_at_key, r.result_id) > (?2, ?3) \
         ORDER BY r.completed_at_key, r.result_id LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows: Vec<(Value, String, String)> = stmt
        .query_map(params![experiment_id, after_t, after_id, limit], item)?
        .collect::<Result<_, _>>()?;
    let next = if rows.len() as i64 == limit {
        rows.last().map(|(_, t, id)| format!("{t}|{id}"))
    } else {
        None
    };
    Ok((rows.into_iter().map(|(v, _, id)| (v, id)).collect(), next))
}

/// `GET /experiments/{id}/results/{result_id}`: 404 `result_not_found`.
pub fn get(
    state: &AppState,
    cred: &Credential,
    experiment_id: &str,
    result_id: &str,
) -> ApiResult<Response> {
    viewer(cred)?;
    let conn = state.db().lock();
    experiments::load_visible(&conn, cred, experiment_id)?;
    let found = rusqlite::OptionalExtension::optional(conn.query_row(
        &format!("SELECT {COLS} {FROM} WHERE r.experiment_id = ?1 AND r.result_id = ?2"),
        params![experiment_id, result_id],
        item,
    ))?;
    match found {
        Some((v, ..)) => Ok(json_response(StatusCode::OK, &v)),
        None => Err(ApiError::with(
            StatusCode::NOT_FOUND,
            "result_not_found",
            format!("result {result_id} not found"),
            Obj::new().set("result_id", result_id),
        )),
    }
}
