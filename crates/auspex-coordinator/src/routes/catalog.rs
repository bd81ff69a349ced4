//! The model catalog (`GET /models/catalog`, `GET /models/supported`,
//! `coordinator.md` §13.7), the model and software request queues the 0.5.5
//! CLI calls (`model request`, `software request`, `software list`), and the
//! 0.6.67 driver heartbeat (§3.2).
//!
//! The request queues are retired in the newest real coordinator (not
//! mounted: 404). The devnet serves them because the 0.5.5 SDK it stands in
//! for calls them; a maintainer resolves requests with
//! `…/actions/{fulfil,decline}` (models) and `…/actions/{approve,decline}`
//! (software). The `supported` list is the fleet's models plus a small
//! curated static catalog (`catalog_source: "curated"`).

use std::collections::BTreeMap;

use auspex_wire::json::Value;
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::AppState;
use crate::auth::{Credential, forbidden};
use crate::db::ApiResult;
use crate::error::{ApiError, json_response, validation_item};
use crate::util::{Obj, iso_now, token_urlsafe};

use super::activity::ACTIVE_HEARTBEAT_SECS;
use super::{Body, experiments, query_get, require_maintainer};

/// One curated catalog model: id, display name, family, parameters (B),
/// quantisation, approximate RAM (GB), Hugging Face repository.
type Curated = (
    &'static str,
    &'static str,
    &'static str,
    f64,
    &'static str,
    f64,
    &'static str,
);

/// The static catalog of the devnet (small models a laptop worker serves).
const CURATED: &[Curated] = &[
    (
        "qwen2.5:0.5b",
        "Qwen2.5 0.5B Instruct",
        "qwen2.5",
        0.5,
        "Q4_K_M",
        0.6,
        "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
    ),
    (
        "llama3.2:1b",
        "Llama 3.2 1B Instruct",
        "llama3.2",
        1.2,
        "Q4_K_M",
        1.3,
        "bartowski/Llama-3.2-1B-Instruct-GGUF",
    ),
    (
        "phi3:mini",
        "Phi-3 Mini 4K Instruct",
        "phi3",
        3.8,
        "Q4_K_M",
        2.4,
        "microsoft/Phi-3-mini-4k-instruct-gguf",
    ),
];

struct Active {
    models: Vec<String>,
    memory_gb: Option<f64>,
    auto_acquire: bool,
}

fn active(conn: &Connection) -> rusqlite::Result<Vec<Active>> {
    let cutoff =
        crate::util::iso_from_micros(crate::util::now_micros() - ACTIVE_HEARTBEAT_SECS * 1_000_000);
    let mut stmt = conn.prepare_cached(
        "SELECT capabilities_json FROM workers WHERE retired_at IS NULL \
         AND quarantined_at IS NULL AND last_heartbeat_at > ?1",
    )?;
    let rows: Vec<String> = stmt
        .query_map(params![cutoff], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows
        .iter()
        .map(|c| {
            let caps = crate::util::parse_stored(c);
            let num = |k: &str| match caps.get(k) {
                Some(Value::Int(i)) => Some(i.to_f64()),
                Some(Value::Float(f)) => Some(*f),
                _ => None,
            };
            Active {
                models: caps
                    .get("models")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                memory_gb: num("usable_memory_gb").or_else(|| num("ram_total_gb")),
                auto_acquire: matches!(caps.get("auto_acquire"), Some(Value::Bool(true))),
            }
        })
        .collect())
}

fn plain_forbidden(detail: &str) -> ApiError {
    ApiError::Plain {
        status: StatusCode::FORBIDDEN,
        detail: detail.to_owned(),
    }
}

/// `GET /models/catalog` (researcher or maintainer): `{models: [{model_id,
/// worker_count}], total_active_workers}`, by count then id.
pub fn catalog(state: &AppState, cred: &Credential) -> ApiResult<Response> {
    if !cred.is_maintainer() && cred.tenant_id().is_none() {
        return Err(plain_forbidden(
            "researcher or maintainer credential required",
        ));
    }
    let conn = state.db().lock();
    let workers = active(&conn)?;
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for w in &workers {
        for m in &w.models {
            *counts.entry(m.as_str()).or_default() += 1;
        }
    }
    let mut models: Vec<(&str, u64)> = counts.into_iter().collect();
    models.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let models: Vec<Value> = models
        .into_iter()
        .map(|(m, n)| Obj::new().set("model_id", m).set("worker_count", n).build())
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &Obj::new()
            .set("models", Value::Array(models))
            .set("total_active_workers", workers.len() as u64)
            .build(),
    ))
}

/// `GET /models/supported` (researcher, maintainer or worker).
pub fn supported(state: &AppState, cred: &Credential) -> ApiResult<Response> {
    if matches!(cred, Credential::Anonymous) {
        return Err(plain_forbidden(
            "researcher, worker or maintainer credential required",
        ));
    }
    let conn = state.db().lock();
    let workers = active(&conn)?;
    let mut ids: Vec<String> = CURATED.iter().map(|c| c.0.to_owned()).collect();
    for w in &workers {
        for m in &w.models {
            if !ids.contains(m) {
                ids.push(m.clone());
            }
        }
    }
    let ram_known = workers.iter().filter(|w| w.memory_gb.is_some()).count() as u64;
    let mut rows: Vec<(u8, u64, f64, String, Value)> = Vec::new();
    for id in ids {
        let curated = CURATED.iter().find(|c| c.0 == id);
        let footprint = curated.map(|c| c.5);
        let on = workers.iter().filter(|w| w.models.contains(&id)).count() as u64;
        let fits = |w: &Active| match (footprint, w.memory_gb) {
            (Some(f), Some(m)) => m >= f,
            _ => false,
        };
        let fit_count = workers.iter().filter(|w| fits(w)).count() as u64;
        let status = if footprint.is_none() || ram_known == 0 {
            "unknown"
        } else if fit_count == 0 {
            "too_big"
        } else if workers.iter().any(|w| fits(w) && w.models.contains(&id)) {
            "available"
        } else {
            "runnable"
        };
        let rank = match status {
            "available" => 0,
            "runnable" => 1,
            "unknown" => 2,
            _ => 3,
        };
        let param_b = curated.map(|c| c.3);
        let v = Obj::new()
            .set("model_id", id.as_str())
            .set("display_name", curated.map_or(id.as_str(), |c| c.1))
            .set("family", curated.map_or(Value::Null, |c| Value::from(c.2)))
            .set("param_b", param_b.map_or(Value::Null, Value::Float))
            .set("quant", curated.map_or(Value::Null, |c| Value::from(c.4)))
            .set(
                "approx_ram_gb",
                footprint.map_or(Value::Null, |f| Value::Float((f * 100.0).round() / 100.0)),
            )
            .set("on_worker_count", on)
            .set("fits_worker_count", fit_count)
            .set("ram_known_workers", ram_known)
            .set("status", status)
            .set("in_catalog", curated.is_some())
            .opt("hf_repo", curated.map(|c| c.6))
            .build();
        rows.push((rank, on, param_b.unwrap_or(999.0), id, v));
    }
    rows.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(b.1.cmp(&a.1))
            .then(a.2.total_cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    Ok(json_response(
        StatusCode::OK,
        &Obj::new()
            .set(
                "models",
                Value::Array(rows.into_iter().map(|r| r.4).collect()),
            )
            .set("total_active_workers", workers.len() as u64)
            .set(
                "fleet_can_auto_acquire",
                workers.iter().any(|w| w.auto_acquire),
            )
            .set("catalog_source", "curated")
            .set("catalog_fetched_at", Value::Null)
            .set("catalog_stale", false)
            .build(),
    ))
}

fn researcher(cred: &Credential) -> ApiResult<&str> {
    cred.tenant_id().ok_or_else(|| {
        forbidden(
            "researcher_required",
            "a researcher credential is required",
            cred,
        )
    })
}

fn text_field(
    body: &Body,
    key: &str,
    min: usize,
    max: usize,
    required: bool,
    errors: &mut Vec<Value>,
) -> Option<String> {
    let v = if required {
        body.req_str(key, errors)
    } else {
        body.opt_str(key, errors)
    }?;
    let n = v.chars().count();
    if n < min || n > max {
        errors.push(validation_item(
            &["body", key],
            "string_too_long",
            format!("String should have {min} to {max} characters"),
        ));
        return None;
    }
    Some(v)
}

const MODEL_REQUEST_COLS: &str = "request_id, tenant_id, model_id, hf_repo, reason, status, \
    created_at, resolved_at, resolved_by, resolution_reason";

fn model_request_value(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let opt = |i: usize| -> rusqlite::Result<Value> {
        Ok(r.get::<_, Option<String>>(i)?
            .map_or(Value::Null, Value::from))
    };
    Ok(Obj::new()
        .set("request_id", r.get::<_, String>(0)?)
        .set("tenant_id", r.get::<_, String>(1)?)
        .set("model_id", r.get::<_, String>(2)?)
        .set("hf_repo", opt(3)?)
        .set("reason", r.get::<_, String>(4)?)
        .set("status", r.get::<_, String>(5)?)
        .set("created_at", r.get::<_, String>(6)?)
        .set("resolved_at", opt(7)?)
        .set("resolved_by", opt(8)?)
        .set("resolution_reason", opt(9)?)
        .build())
}

/// `POST /model-requests` (researcher, 201): `status` is `available` when
/// an active worker already holds the model, else `pending`.
pub fn model_request_create(
    state: &AppState,
    cred: &Credential,
    body: &Body,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let model_id = text_field(body, "model_id", 1, 256, true, &mut errors);
    let hf_repo = text_field(body, "hf_repo", 0, 256, false, &mut errors);
    let reason = text_field(body, "reason", 1, 2000, true, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let tenant = researcher(cred)?.to_owned();
    let (Some(model_id), Some(reason)) = (model_id, reason) else {
        return Err(ApiError::Validation(Vec::new()));
    };
    let conn = state.db().lock();
    let held = active(&conn)?.iter().any(|w| w.models.contains(&model_id));
    let id = format!("mreq-{}", token_urlsafe(9));
    conn.execute(
        "INSERT INTO model_requests (request_id, tenant_id, model_id, hf_repo, reason, status, \
         created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id,
            tenant,
            model_id,
            hf_repo,
            reason,
            if held { "available" } else { "pending" },
            iso_now()
        ],
    )?;
    let v = conn.query_row(
        &format!("SELECT {MODEL_REQUEST_COLS} FROM model_requests WHERE request_id = ?1"),
        params![id],
        model_request_value,
    )?;
    Ok(json_response(StatusCode::CREATED, &v))
}

/// `GET /model-requests?status=`: a maintainer sees every request, a
/// researcher its tenant's.
pub fn model_request_list(
    state: &AppState,
    cred: &Credential,
    query: &[(String, String)],
) -> ApiResult<Response> {
    if !cred.is_maintainer() && cred.tenant_id().is_none() {
        return Err(plain_forbidden(
            "researcher or maintainer credential required",
        ));
    }
    let status = query_get(query, "status");
    let tenant = cred.tenant_id();
    let conn = state.db().lock();
    let mut stmt = conn.prepare(&format!(
        "SELECT {MODEL_REQUEST_COLS} FROM model_requests WHERE (?1 IS NULL OR status = ?1) \
         AND (?2 IS NULL OR tenant_id = ?2) ORDER BY created_at, request_id"
    ))?;
    let items: Vec<Value> = stmt
        .query_map(params![status, tenant], model_request_value)?
        .collect::<Result<_, _>>()?;
    Ok(json_response(
        StatusCode::OK,
        &Obj::new().set("requests", Value::Array(items)).build(),
    ))
}

fn resolve(
    conn: &Connection,
    table: &str,
    id: &str,
    to: &str,
    cred: &Credential,
    reason: &str,
) -> ApiResult<()> {
    let current: Option<String> = conn
        .query_row(
            &format!("SELECT status FROM {table} WHERE request_id = ?1"),
            params![id],
            |r| r.get(0),
        )
        .optional()?;
    match current.as_deref() {
        None => Err(ApiError::Plain {
            status: StatusCode::NOT_FOUND,
            detail: format!("request {id} not found"),
        }),
        Some("pending" | "assessed" | "available") => {
            let by = match cred {
                Credential::Maintainer { login } => login.clone().unwrap_or("maintainer".into()),
                _ => cred.class().to_owned(),
            };
            conn.execute(
                &format!(
                    "UPDATE {table} SET status = ?2, resolved_at = ?3, resolved_by = ?4, \
                     resolution_reason = ?5 WHERE request_id = ?1"
                ),
                params![id, to, iso_now(), by, reason],
            )?;
            Ok(())
        }
        Some(s) => Err(ApiError::with(
            StatusCode::CONFLICT,
            "invalid_status_transition",
            format!("request is {s}"),
            Obj::new()
                .set("current_status", s)
                .set("requested_status", to),
        )),
    }
}

fn action_reason(body: &Body) -> ApiResult<String> {
    let mut errors = Vec::new();
    let reason = text_field(body, "reason", 1, 2000, true, &mut errors);
    match reason {
        Some(r) if errors.is_empty() => Ok(r),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// `POST /model-requests/{id}/actions/{fulfil|decline}` (maintainer).
pub fn model_request_action(
    state: &AppState,
    cred: &Credential,
    id: &str,
    action: &str,
    body: &Body,
) -> ApiResult<Response> {
    let to = match action {
        "fulfil" => "fulfilled",
        "decline" => "declined",
        _ => return Err(not_found()),
    };
    let reason = action_reason(body)?;
    require_maintainer(cred)?;
    let conn = state.db().lock();
    resolve(&conn, "model_requests", id, to, cred, &reason)?;
    let v = conn.query_row(
        &format!("SELECT {MODEL_REQUEST_COLS} FROM model_requests WHERE request_id = ?1"),
        params![id],
        model_request_value,
    )?;
    Ok(json_response(StatusCode::OK, &v))
}

const SOFTWARE_COLS: &str = "request_id, tenant_id, title, description, reason, status, \
    created_at, resolved_at, resolved_by, resolution_reason";

fn software_value(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    Ok(Obj::new()
        .set("request_id", r.get::<_, String>(0)?)
        .set("tenant_id", r.get::<_, String>(1)?)
        .set("status", r.get::<_, String>(5)?)
        .set("title", r.get::<_, String>(2)?)
        .set("description", r.get::<_, String>(3)?)
        .set("reason", r.get::<_, String>(4)?)
        .set("created_at", r.get::<_, String>(6)?)
        .opt("resolved_at", r.get::<_, Option<String>>(7)?)
        .opt("resolved_by", r.get::<_, Option<String>>(8)?)
        .opt("resolution_reason", r.get::<_, Option<String>>(9)?)
        .build())
}

/// `POST /software-requests` (researcher, 201, always `pending`).
pub fn software_create(state: &AppState, cred: &Credential, body: &Body) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let title = text_field(body, "title", 1, 200, true, &mut errors);
    let description = text_field(body, "description", 1, 4000, true, &mut errors);
    let reason = text_field(body, "reason", 1, 2000, true, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let tenant = researcher(cred)?.to_owned();
    let (Some(title), Some(description), Some(reason)) = (title, description, reason) else {
        return Err(ApiError::Validation(Vec::new()));
    };
    let conn = state.db().lock();
    let id = format!("sreq-{}", token_urlsafe(9));
    conn.execute(
        "INSERT INTO software_requests (request_id, tenant_id, title, description, reason, \
         status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)",
        params![id, tenant, title, description, reason, iso_now()],
    )?;
    let v = conn.query_row(
        &format!("SELECT {SOFTWARE_COLS} FROM software_requests WHERE request_id = ?1"),
        params![id],
        software_value,
    )?;
    Ok(json_response(StatusCode::CREATED, &v))
}

/// `GET /software-requests?status=` (researcher: own tenant; maintainer:
/// all).
pub fn software_list(
    state: &AppState,
    cred: &Credential,
    query: &[(String, String)],
) -> ApiResult<Response> {
    if !cred.is_maintainer() && cred.tenant_id().is_none() {
        return Err(plain_forbidden(
            "researcher or maintainer credential required",
        ));
    }
    let status = query_get(query, "status");
    if let Some(s) = status
        && !matches!(
            s,
            "pending" | "assessed" | "approved" | "declined" | "released"
        )
    {
        return Err(ApiError::invalid(
            &["query", "status"],
            "enum",
            "Input should be 'pending', 'assessed', 'approved', 'declined' or 'released'",
        ));
    }
    let tenant = cred.tenant_id();
    let conn = state.db().lock();
    let mut stmt = conn.prepare(&format!(
        "SELECT {SOFTWARE_COLS} FROM software_requests WHERE (?1 IS NULL OR status = ?1) \
         AND (?2 IS NULL OR tenant_id = ?2) ORDER BY created_at, request_id"
    ))?;
    let items: Vec<Value> = stmt
        .query_map(params![status, tenant], software_value)?
        .collect::<Result<_, _>>()?;
    Ok(json_response(
        StatusCode::OK,
        &Obj::new().set("requests", Value::Array(items)).build(),
    ))
}

/// `POST /software-requests/{id}/actions/{approve|decline}` (maintainer).
pub fn software_action(
    state: &AppState,
    cred: &Credential,
    id: &str,
    action: &str,
    body: &Body,
) -> ApiResult<Response> {
    let to = match action {
        "approve" => "approved",
        "decline" => "declined",
        _ => return Err(not_found()),
    };
    let reason = action_reason(body)?;
    require_maintainer(cred)?;
    let conn = state.db().lock();
    resolve(&conn, "software_requests", id, to, cred, &reason)?;
    let v = conn.query_row(
        &format!("SELECT {SOFTWARE_COLS} FROM software_requests WHERE request_id = ?1"),
        params![id],
        software_value,
    )?;
    Ok(json_response(StatusCode::OK, &v))
}

fn not_found() -> ApiError {
    ApiError::Plain {
        status: StatusCode::NOT_FOUND,
        detail: "Not Found".to_owned(),
    }
}

/// `POST /experiments/{id}/driver-heartbeat` (owning researcher or
/// maintainer): body `{status: driving|finalizing|exiting|gone, run_id?,
/// reason?, round?}` → 204; the latest report is kept per experiment.
pub fn driver_heartbeat(
    state: &AppState,
    cred: &Credential,
    experiment_id: &str,
    body: &Body,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let status = body.req_str("status", &mut errors);
    if let Some(s) = &status
        && !matches!(s.as_str(), "driving" | "finalizing" | "exiting" | "gone")
    {
        errors.push(validation_item(
            &["body", "status"],
            "literal_error",
            "Input should be 'driving', 'finalizing', 'exiting' or 'gone'",
        ));
    }
    let run_id = text_field(body, "run_id", 0, 128, false, &mut errors);
    let reason = text_field(body, "reason", 0, 2000, false, &mut errors);
    let round = match body.get("round") {
        None | Some(Value::Null) => None,
        Some(Value::Int(i)) => match i.as_i64() {
            Some(n) if n >= 0 => Some(n),
            _ => {
                errors.push(validation_item(
                    &["body", "round"],
                    "greater_than_equal",
                    "Input should be greater than or equal to 0",
                ));
                None
            }
        },
        Some(_) => {
            errors.push(validation_item(
                &["body", "round"],
                "int_type",
                "Input should be a valid integer",
            ));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let conn = state.db().lock();
    experiments::load_visible(&conn, cred, experiment_id)?;
    if !cred.is_maintainer() && cred.tenant_id().is_none() {
        return Err(ApiError::with(
            StatusCode::FORBIDDEN,
            "experiment_action_forbidden",
            "driver-heartbeat requires the owning researcher or a maintainer",
            Obj::new().set("experiment_id", experiment_id),
        ));
    }
    conn.execute(
        "INSERT INTO driver_status (experiment_id, status, run_id, reason, round, \
         reported_by_class, reported_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (experiment_id) DO UPDATE SET status = excluded.status, \
         run_id = excluded.run_id, reason = excluded.reason, round = excluded.round, \
         reported_by_class = excluded.reported_by_class, reported_at = excluded.reported_at",
        params![
            experiment_id,
            status.unwrap_or_default(),
            run_id,
            reason,
            round,
            cred.class(),
            iso_now()
        ],
    )?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
