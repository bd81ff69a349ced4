//! Work-unit submission (`coordinator.md` §4.1) and the unit listings.

use std::collections::HashSet;

use auspex_wire::json::{self, Value};
use axum::http::StatusCode;
use axum::response::Response;
use rusqlite::params;

use crate::AppState;
use crate::auth::{Credential, forbidden};
use crate::db::{ApiResult, unique_violation};
use crate::error::{ApiError, json_response, validation_item};
use crate::util::{Obj, is_hex64_lower, is_id_chars, is_label, iso_now, parse_stored, to_json};

use super::Body;
use super::experiments::{self, status};

/// One unit of a batch after body validation.
struct Unit {
    unit_id: String,
    tenant_id: String,
    label: String,
    manifest_sha256: String,
    payload: Value,
}

/// Body validation (FastAPI, before every other check): every failure of
/// the batch is listed.
fn validate(body: &Body) -> ApiResult<Vec<Unit>> {
    let items = match body.get("work_units") {
        None => {
            return Err(ApiError::invalid(
                &["body", "work_units"],
                "missing",
                "Field required",
            ));
        }
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(ApiError::invalid(
                &["body", "work_units"],
                "too_short",
                "List should have at least 1 item after validation, not 0",
            ));
        }
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(ApiError::invalid(
                &["body", "work_units"],
                "list_type",
                "Input should be a valid list",
            ));
        }
    };
    let mut errors = Vec::new();
    let mut units = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let idx = i.to_string();
        let loc = |f: &str| -> Vec<String> {
            vec![
                "body".into(),
                "work_units".into(),
                idx.clone(),
                f.to_owned(),
            ]
        };
        let push = |errors: &mut Vec<Value>, f: &str, kind: &str, msg: String| {
            let l = loc(f);
            let refs: Vec<&str> = l.iter().map(String::as_str).collect();
            errors.push(validation_item(&refs, kind, msg));
        };
        let Some(o) = item.as_object() else {
            push(
                &mut errors,
                "",
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from".into(),
            );
            continue;
        };
        let mut text = |f: &str, ok: &dyn Fn(&str) -> bool, pattern: &str| -> Option<String> {
            match o.get(f) {
                None => {
                    push(&mut errors, f, "missing", "Field required".into());
                    None
                }
                Some(Value::String(s)) if ok(s) => Some(s.clone()),
                Some(Value::String(_)) => {
                    push(
                        &mut errors,
                        f,
                        "string_pattern_mismatch",
                        format!("String should match pattern '{pattern}'"),
                    );
                    None
                }
                Some(_) => {
                    push(
                        &mut errors,
                        f,
                        "string_type",
                        "Input should be a valid string".into(),
                    );
                    None
                }
            }
        };
        let unit_id = text(
            "unit_id",
            &|s| is_id_chars(s) && s.chars().count() <= 128,
            "^[a-zA-Z0-9_-]+$",
        );
        let tenant_id = text("tenant_id", &|s| is_label(s, 3, 64), "^[a-z][a-z0-9-]*$");
        let label = text(
            "experiment_id",
            &|s| is_label(s, 3, 128),
            "^[a-z][a-z0-9-]*$",
        );
        let manifest_sha256 = text("manifest_sha256", &is_hex64_lower, "^[a-f0-9]{64}$");
        let payload = match o.get("payload") {
            None => {
                push(&mut errors, "payload", "missing", "Field required".into());
                None
            }
            Some(p @ Value::Object(_)) => Some(p.clone()),
            Some(_) => {
                push(
                    &mut errors,
                    "payload",
                    "dict_type",
                    "Input should be a valid dictionary".into(),
                );
                None
            }
        };
        if let (Some(unit_id), Some(tenant_id), Some(label), Some(manifest_sha256), Some(payload)) =
            (unit_id, tenant_id, label, manifest_sha256, payload)
        {
            units.push(Unit {
                unit_id,
                tenant_id,
                label,
                manifest_sha256,
                payload,
            });
        }
    }
    if errors.is_empty() {
        Ok(units)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Length of Python's `json.dumps(v)` with default settings (`", "` and
/// `": "` separators, ASCII escapes, float `repr`) — what the real service
/// compares with `max_payload_bytes` (§3.5).
pub fn python_dumps_len(v: &Value) -> usize {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Array(items) => {
                out.push('[');
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write(x, out);
                }
                out.push(']');
            }
            Value::Object(members) => {
                out.push('{');
                for (i, (k, x)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    json::write_ascii_string(k, out);
                    out.push_str(": ");
                    write(x, out);
                }
                out.push('}');
            }
            scalar => json::write_canonical(scalar, out),
        }
    }
    let mut s = String::new();
    write(v, &mut s);
    s.len()
}

fn unit_error(code: &'static str, message: String, unit_id: &str) -> ApiError {
    ApiError::with(
        StatusCode::UNPROCESSABLE_ENTITY,
        code,
        message,
        Obj::new().set("unit_id", unit_id),
    )
}

/// `POST /experiments/{id}/work-units` (201), checks in the real order
/// (§4.1): body validation; researcher (403 `researcher_required`);
/// experiment visible (404 `experiment_not_found` — also for another
/// tenant's, where the real service answers 403 `experiment_tenant_mismatch`,
/// §11(c)); open status (409 `experiment_not_open_for_submissions`); not
/// finalized (409 `submissions_finalized`); per unit in order the tenant,
/// label, manifest and in-batch duplicate checks (422); `payload_too_large`
/// (422); `max_units_exceeded` (409, before duplicates); then one
/// transaction, any existing unit id failing the whole batch with 409
/// `unit_id_already_submitted`.
pub fn submit(
    state: &AppState,
    cred: &Credential,
    experiment_id: &str,
    body: &Body,
) -> ApiResult<Response> {
    let units = validate(body)?;
    if !matches!(cred, Credential::Researcher { .. }) {
        return Err(forbidden(
            "researcher_required",
            "a researcher credential is required",
            cred,
        ));
    }
    let mut conn = state.db().lock();
    let e = experiments::load_visible(&conn, cred, experiment_id)?;
    if !matches!(e.status.as_str(), status::APPROVED | status::PAUSED) {
        return Err(ApiError::with(
            StatusCode::CONFLICT,
            "experiment_not_open_for_submissions",
            format!(
                "experiment is {}; units are accepted when approved or paused",
                e.status
            ),
            Obj::new().set("experiment_status", e.status.as_str()),
        ));
    }
    if e.submissions_finalized {
        return Err(ApiError::with(
            StatusCode::CONFLICT,
            "submissions_finalized",
            "submissions are finalized for this experiment",
            Obj::new().set("experiment_id", experiment_id),
        ));
    }
    let mut seen = HashSet::new();
    for u in &units {
        if u.tenant_id != e.tenant_id {
            return Err(unit_error(
                "work_unit_tenant_mismatch",
                format!("unit tenant_id {} is not {}", u.tenant_id, e.tenant_id),
                &u.unit_id,
            ));
        }
        if u.label != e.label {
            return Err(unit_error(
                "work_unit_experiment_label_mismatch",
                format!(
                    "unit experiment_id {} is not the label {}",
                    u.label, e.label
                ),
                &u.unit_id,
            ));
        }
        if u.manifest_sha256 != e.manifest_hash {
            return Err(unit_error(
                "work_unit_manifest_mismatch",
                "unit manifest_sha256 is not the experiment's manifest hash".into(),
                &u.unit_id,
            ));
        }
        if !seen.insert(u.unit_id.as_str()) {
            return Err(unit_error(
                "duplicate_unit_id_in_batch",
                format!("unit_id {} appears twice in the batch", u.unit_id),
                &u.unit_id,
            ));
        }
    }
    if let Some(cap) = e.max_payload_bytes {
        for u in &units {
            let len = python_dumps_len(&u.payload);
            if len as i64 > cap {
                return Err(ApiError::with(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "payload_too_large",
                    format!("payload of unit {} is {len} bytes, cap {cap}", u.unit_id),
                    Obj::new()
                        .set("unit_id", u.unit_id.as_str())
                        .set("payload_bytes", len as u64)
                        .set("max_payload_bytes", cap),
                ));
            }
        }
    }
    let tx = conn.transaction()?;
    if let Some(cap) = e.max_units {
        let existing: i64 = tx.query_row(
            "SELECT COUNT(*) FROM work_units WHERE experiment_id = ?1",
            params![experiment_id],
            |r| r.get(0),
        )?;
        if existing + units.len() as i64 > cap {
            return Err(ApiError::with(
                StatusCode::CONFLICT,
                "max_units_exceeded",
                format!(
                    "{existing} existing + {} submitted units exceed max_units {cap}",
                    units.len()
                ),
                Obj::new()
                    .set("max_units", cap)
                    .set("existing", existing)
                    .set("submitted", units.len() as u64),
            ));
        }
    }
    let now = iso_now();
    {
        let mut stmt = tx.prepare(
            "INSERT INTO work_units (experiment_id, unit_id, payload_json, unit_payload_sha256, \
             status, replication_target, completions_so_far, created_at) \
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, 0, ?6)",
        )?;
        for u in &units {
            if let Err(err) = stmt.execute(params![
                experiment_id,
                u.unit_id,
                to_json(&u.payload),
                json::canonical_sha256(&u.payload),
                e.replication_target,
                now
            ]) {
                return Err(match unique_violation(&err) {
                    Some(_) => ApiError::with(
                        StatusCode::CONFLICT,
                        "unit_id_already_submitted",
                        format!(
                            "unit {} was already submitted; the batch was not stored",
                            u.unit_id
                        ),
                        Obj::new()
                            .set("db_error", "UNIQUE constraint failed: work_units.unit_id")
                            .set("unit_id", u.unit_id.as_str()),
                    ),
                    None => err.into(),
                });
            }
        }
    }
    tx.commit()?;
    let ids: Vec<Value> = units
        .iter()
        .map(|u| Value::from(u.unit_id.as_str()))
        .collect();
    Ok(json_response(
        StatusCode::CREATED,
        &Obj::new()
            .set("submitted_unit_ids", Value::Array(ids))
            .set("count", units.len() as u64)
            .build(),
    ))
}

fn unit_value(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    Ok(Obj::new()
        .set("unit_id", r.get::<_, String>(0)?)
        .set("status", r.get::<_, String>(1)?)
        .set("replication_target", r.get::<_, i64>(2)?)
        .set("completions_so_far", r.get::<_, i64>(3)?)
        .set("created_at", r.get::<_, String>(4)?)
        .set("payload", parse_stored(&r.get::<_, String>(5)?))
        .build())
}

const UNIT_COLS: &str =
    "unit_id, status, replication_target, completions_so_far, created_at, payload_json";

fn viewer(cred: &Credential) -> ApiResult<()> {
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

/// `GET /experiments/{id}/work-units`: every unit in submission order plus
/// `counts_by_status`.
pub fn list(state: &AppState, cred: &Credential, experiment_id: &str) -> ApiResult<Response> {
    viewer(cred)?;
    let conn = state.db().lock();
    experiments::load_visible(&conn, cred, experiment_id)?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {UNIT_COLS} FROM work_units WHERE experiment_id = ?1 ORDER BY seq"
    ))?;
    let units: Vec<Value> = stmt
        .query_map(params![experiment_id], unit_value)?
        .collect::<Result<_, _>>()?;
    let mut counts = Obj::new();
    let mut stmt = conn.prepare(
        "SELECT status, COUNT(*) FROM work_units WHERE experiment_id = ?1 \
         GROUP BY status ORDER BY status",
    )?;
    let rows: Vec<(String, i64)> = stmt
        .query_map(params![experiment_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (s, n) in rows {
        counts = counts.set(&s, n);
    }
    Ok(json_response(
        StatusCode::OK,
        &Obj::new()
            .set("work_units", Value::Array(units))
            .set("counts_by_status", counts)
            .build(),
    ))
}

/// `GET /experiments/{id}/work-units/{unit_id}`: 404 `work_unit_not_found`.
pub fn get(
    state: &AppState,
    cred: &Credential,
    experiment_id: &str,
    unit_id: &str,
) -> ApiResult<Response> {
    viewer(cred)?;
    let conn = state.db().lock();
    experiments::load_visible(&conn, cred, experiment_id)?;
    let v = rusqlite::OptionalExtension::optional(conn.query_row(
        &format!("SELECT {UNIT_COLS} FROM work_units WHERE experiment_id = ?1 AND unit_id = ?2"),
        params![experiment_id, unit_id],
        unit_value,
    ))?;
    match v {
        Some(v) => Ok(json_response(StatusCode::OK, &v)),
        None => Err(ApiError::with(
            StatusCode::NOT_FOUND,
            "work_unit_not_found",
            format!("unit {unit_id} not found"),
            Obj::new().set("unit_id", unit_id),
        )),
    }
}
