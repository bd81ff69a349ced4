//! Tenant applications (`coordinator.md` §13.6, `tenant-sdk.md` §9): the
//! SDK's `apply` flow and the maintainer queue.
//!
//! Submission and `mine` are proof-of-possession routes (§2.3): the RFC 9421
//! signature is verified against the request's own keyid, with no registry
//! lookup. The devnet has no identity provider: any non-empty
//! `github_access_token` is accepted and stands for a fabricated GitHub
//! identity derived from it (`gh-<8 hex>`, account `acct-<12 hex>`), so the
//! same token is the same applicant (409 `application_pending` while one of
//! its applications is pending). Approval creates the tenant with the
//! applying key.

use auspex_wire::json::Value;
use axum::http::StatusCode;
use axum::response::Response;
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::AppState;
use crate::auth::Credential;
use crate::db::ApiResult;
use crate::error::{ApiError, json_response, validation_item};
use crate::util::{Obj, iso_now, parse_stored, to_json, token_urlsafe};

use super::Body;
use super::tenants::{NewTenant, TenantError, insert_tenant};

/// Research classes an application may name.
pub const RESEARCH_CLASSES: &[&str] = &[
    "behavioral_drift",
    "eval_sweeps",
    "refusal_boundary_mapping",
    "cross_model_comparison",
    "quantization_effects",
    "prompt_sensitivity",
    "other",
];

fn length(
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
    if n < min {
        errors.push(validation_item(
            &["body", key],
            "string_too_short",
            format!("String should have at least {min} characters"),
        ));
        None
    } else if n > max {
        errors.push(validation_item(
            &["body", key],
            "string_too_long",
            format!("String should have at most {max} characters"),
        ));
        None
    } else {
        Some(v)
    }
}

/// `POST /tenant-applications` (proof of possession by `pubkey`): 201
/// `{application_id, status}`.
pub fn submit(state: &AppState, pubkey: &str, body: &Body) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let token = length(body, "github_access_token", 1, 4096, true, &mut errors);
    let requested = length(body, "requested_tenant_id", 1, 64, true, &mut errors);
    let contact = length(body, "contact_name", 1, 200, true, &mut errors);
    let affiliation = length(body, "affiliation", 1, 200, true, &mut errors);
    let summary = length(body, "research_summary", 0, 4000, false, &mut errors);
    let mut classes: Vec<String> = Vec::new();
    match body.get("research_classes") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, it) in items.iter().enumerate() {
                match it.as_str() {
                    Some(c) if RESEARCH_CLASSES.contains(&c) => {
                        if !classes.iter().any(|x| x == c) {
                            classes.push(c.to_owned());
                        }
                    }
                    _ => errors.push(validation_item(
                        &["body", "research_classes", &i.to_string()],
                        "literal_error",
                        format!("Input should be one of {}", RESEARCH_CLASSES.join(", ")),
                    )),
                }
            }
        }
        Some(_) => errors.push(validation_item(
            &["body", "research_classes"],
            "list_type",
            "Input should be a valid list",
        )),
    }
    let summary = summary.unwrap_or_default();
    if errors.is_empty() && classes.is_empty() && summary.trim().is_empty() {
        errors.push(validation_item(
            &["body"],
            "value_error",
            "Value error, give at least one research class or a research summary",
        ));
    }
    let (Some(token), Some(requested), Some(contact), Some(affiliation)) =
        (token, requested, contact, affiliation)
    else {
        return Err(ApiError::Validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let identity = auspex_wire::sha256_hex(token.as_bytes());
    let github_login = format!("gh-{}", &identity[..8]);
    let account_id = format!("acct-{}", &identity[8..20]);
    let conn = state.db().lock();
    let pending: bool = conn
        .query_row(
            "SELECT 1 FROM tenant_applications WHERE account_id = ?1 AND status = 'pending'",
            params![account_id],
            |_| Ok(true),
        )
        .optional()?
        .unwrap_or(false);
    if pending {
        return Err(ApiError::with(
            StatusCode::CONFLICT,
            "application_pending",
            "this GitHub account already has a pending application",
            Obj::new().set("github_login", github_login),
        ));
    }
    let id = format!("tapp-{}", token_urlsafe(9));
    conn.execute(
        "INSERT INTO tenant_applications (application_id, account_id, github_login, \
         requested_tenant_id, contact_name, affiliation, research_summary, \
         research_classes_json, pubkey_hex, status, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10)",
        params![
            id,
            account_id,
            github_login,
            requested,
            contact,
            affiliation,
            summary,
            to_json(&Value::Array(
                classes.into_iter().map(Value::from).collect()
            )),
            pubkey,
            iso_now()
        ],
    )?;
    drop(conn);
    state.publish(
        None,
        [(
            "application.submitted",
            Obj::new()
                .set("application_id", id.as_str())
                .set("account_id", account_id.as_str())
                .set("github_login", github_login.as_str())
                .set("requested_tenant_id", requested.as_str())
                .set("status", "pending")
                .build(),
        )],
    );
    Ok(json_response(
        StatusCode::CREATED,
        &Obj::new()
            .set("application_id", id)
            .set("status", "pending")
            .build(),
    ))
}

/// `GET /tenant-applications/mine`: the caller key's applications.
pub fn mine(state: &AppState, pubkey: &str) -> ApiResult<Response> {
    let conn = state.db().lock();
    let mut stmt = conn.prepare(
        "SELECT application_id, status, resolution_reason, created_tenant_id \
         FROM tenant_applications WHERE pubkey_hex = ?1 ORDER BY created_at, application_id",
    )?;
    let items: Vec<Value> = stmt
        .query_map(params![pubkey], |r| {
            let opt = |i: usize| -> rusqlite::Result<Value> {
                Ok(r.get::<_, Option<String>>(i)?
                    .map_or(Value::Null, Value::from))
            };
            Ok(Obj::new()
                .set("application_id", r.get::<_, String>(0)?)
                .set("status", r.get::<_, String>(1)?)
                .set("resolution_reason", opt(2)?)
                .set("created_tenant_id", opt(3)?)
                .build())
        })?
        .collect::<Result<_, _>>()?;
    Ok(json_response(
        StatusCode::OK,
        &Obj::new().set("applications", Value::Array(items)).build(),
    ))
}

const COLS: &str = "application_id, account_id, github_login, requested_tenant_id, contact_name, \
    affiliation, research_summary, research_classes_json, pubkey_hex, status, created_at, \
    resolved_at, resolved_by, resolution_reason, created_tenant_id";

fn full_value(conn: &Connection, r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let opt = |i: usize| -> rusqlite::Result<Value> {
        Ok(r.get::<_, Option<String>>(i)?
            .map_or(Value::Null, Value::from))
    };
    let account: String = r.get(1)?;
    let mut stmt = conn.prepare_cached(
        "SELECT created_tenant_id FROM tenant_applications WHERE account_id = ?1 \
         AND created_tenant_id IS NOT NULL ORDER BY resolved_at",
    )?;
    let existing: Vec<Value> = stmt
        .query_map(params![account], |x| x.get::<_, String>(0))?
        .map(|x| x.map(Value::from))
        .collect::<Result<_, _>>()?;
    Ok(Obj::new()
        .set("application_id", r.get::<_, String>(0)?)
        .set("account_id", account.as_str())
        .set("github_login", r.get::<_, String>(2)?)
        .set("requested_tenant_id", r.get::<_, String>(3)?)
        .set("contact_name", r.get::<_, String>(4)?)
        .set("affiliation", r.get::<_, String>(5)?)
        .set("research_summary", r.get::<_, String>(6)?)
        .set("research_classes", parse_stored(&r.get::<_, String>(7)?))
        .set("pubkey_hex", r.get::<_, String>(8)?)
        .set("status", r.get::<_, String>(9)?)
        .set("created_at", r.get::<_, String>(10)?)
        .set("resolved_at", opt(11)?)
        .set("resolved_by", opt(12)?)
        .set("resolution_reason", opt(13)?)
        .set("created_tenant_id", opt(14)?)
        .set("account_existing_tenants", Value::Array(existing))
        .build())
}

fn maintainer_only(cred: &Credential) -> ApiResult<()> {
    if cred.is_maintainer() {
        Ok(())
    } else {
        Err(ApiError::Plain {
            status: StatusCode::FORBIDDEN,
            detail: "maintainer required".to_owned(),
        })
    }
}

/// `GET /tenant-applications?status_filter=` (maintainer).
pub fn list(state: &AppState, cred: &Credential, status: Option<&str>) -> ApiResult<Response> {
    maintainer_only(cred)?;
    let conn = state.db().lock();
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLS} FROM tenant_applications WHERE (?1 IS NULL OR status = ?1) \
         ORDER BY created_at, application_id"
    ))?;
    let mut rows = stmt.query(params![status])?;
    let mut items = Vec::new();
    while let Some(r) = rows.next()? {
        items.push(full_value(&conn, r)?);
    }
    Ok(json_response(
        StatusCode::OK,
        &Obj::new().set("applications", Value::Array(items)).build(),
    ))
}

fn load_full(conn: &Connection, id: &str) -> ApiResult<Value> {
    Ok(conn.query_row(
        &format!("SELECT {COLS} FROM tenant_applications WHERE application_id = ?1"),
        params![id],
        |r| full_value(conn, r),
    )?)
}

/// `POST /tenant-applications/{id}/actions/{approve|decline}` (maintainer).
pub fn action(
    state: &AppState,
    cred: &Credential,
    id: &str,
    action: &str,
    body: &Body,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let (override_id, reason) = match action {
        "approve" => (
            length(body, "tenant_id_override", 1, 64, false, &mut errors),
            None,
        ),
        "decline" => (None, length(body, "reason", 1, 2000, true, &mut errors)),
        _ => {
            return Err(ApiError::Plain {
                status: StatusCode::NOT_FOUND,
                detail: "Not Found".to_owned(),
            });
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    maintainer_only(cred)?;
    let by = match cred {
        Credential::Maintainer { login } => login.clone().unwrap_or_else(|| "maintainer".into()),
        _ => cred.class().to_owned(),
    };
    let mut conn = state.db().lock();
    let tx = conn.transaction()?;
    let row: Option<(String, String, String)> = tx
        .query_row(
            "SELECT status, requested_tenant_id, pubkey_hex FROM tenant_applications \
             WHERE application_id = ?1",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((status, requested, pubkey)) = row else {
        return Err(ApiError::Plain {
            status: StatusCode::NOT_FOUND,
            detail: format!("application {id} not found"),
        });
    };
    let to = if action == "approve" {
        "approved"
    } else {
        "declined"
    };
    if status != "pending" {
        return Err(ApiError::with(
            StatusCode::CONFLICT,
            "invalid_status_transition",
            format!("application is {status}"),
            Obj::new()
                .set("current_status", status.as_str())
                .set("requested_status", to),
        ));
    }
    let mut created = None;
    if action == "approve" {
        let tenant_id = override_id.unwrap_or(requested);
        let t = NewTenant {
            tenant_id: tenant_id.clone(),
            maintainer_pubkey: pubkey,
            ..NewTenant::default()
        };
        match insert_tenant(&tx, &t) {
            Ok(_) => created = Some(tenant_id),
            Err(TenantError::Duplicate { db_error }) => {
                return Err(ApiError::with(
                    StatusCode::CONFLICT,
                    "tenant_id_taken",
                    "the tenant id or the key is already registered; retry with tenant_id_override",
                    Obj::new()
                        .set("tenant_id", tenant_id)
                        .set("db_error", db_error),
                ));
            }
            Err(TenantError::InvalidId(bad)) => {
                return Err(ApiError::with(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_tenant_id",
                    "tenant ids match ^[a-z0-9_-]+$; retry with tenant_id_override",
                    Obj::new().set("tenant_id", bad),
                ));
            }
            Err(TenantError::KeyIsWorker(k)) => {
                return Err(ApiError::with(
                    StatusCode::CONFLICT,
                    "tenant_id_taken",
                    "the applying key is an enrolled worker key",
                    Obj::new().set("pubkey_hex", k),
                ));
            }
            Err(TenantError::Storage(e)) => return Err(e.into()),
            Err(e) => return Err(ApiError::Internal(e.to_string())),
        }
    }
    tx.execute(
        "UPDATE tenant_applications SET status = ?2, resolved_at = ?3, resolved_by = ?4, \
         resolution_reason = ?5, created_tenant_id = ?6 WHERE application_id = ?1",
        params![id, to, iso_now(), by, reason, created],
    )?;
    tx.commit()?;
    let v = load_full(&conn, id)?;
    drop(conn);
    state.publish(
        None,
        [(
            "application.resolved",
            Obj::new()
                .set("application_id", id)
                .set("status", to)
                .set("resolved_by", by)
                .set(
                    "created_tenant_id",
                    created.map_or(Value::Null, Value::from),
                )
                .build(),
        )],
    );
    Ok(json_response(StatusCode::OK, &v))
}
