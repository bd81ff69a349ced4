//! Receipt routes (`coordinator.md` §6, §13.2): the tenant list, the
//! worker's canonical receipt (404 pending / 200 / 410 will not issue),
//! and the public fetch by id.

use auspex_wire::json::Value;
use auspex_wire::receipt::decode_cbor;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rusqlite::{OptionalExtension as _, params};

use crate::AppState;
use crate::auth::{Credential, forbidden};
use crate::db::ApiResult;
use crate::error::{ApiError, json_response};
use crate::util::Obj;

use super::experiments;

/// `GET /experiments/{id}/receipts` → `{receipts:[{receipt_id,
/// experiment_id, issued_at}]}` in issue order.
pub fn list(state: &AppState, cred: &Credential, experiment_id: &str) -> ApiResult<Response> {
    if !cred.is_maintainer() && cred.tenant_id().is_none() {
        return Err(forbidden(
            "researcher_own_tenant_or_maintainer_required",
            "the owning researcher or a maintainer is required",
            cred,
        ));
    }
    let conn = state.db().lock();
    experiments::load_visible(&conn, cred, experiment_id)?;
    let mut stmt = conn.prepare(
        "SELECT receipt_id, experiment_id, issued_at FROM receipts WHERE experiment_id = ?1 \
         ORDER BY issued_at, receipt_id",
    )?;
    let items: Vec<Value> = stmt
        .query_map(params![experiment_id], |r| {
            Ok(Obj::new()
                .set("receipt_id", r.get::<_, String>(0)?)
                .set("experiment_id", r.get::<_, String>(1)?)
                .set("issued_at", r.get::<_, String>(2)?)
                .build())
        })?
        .collect::<Result<_, _>>()?;
    Ok(json_response(
        StatusCode::OK,
        &Obj::new().set("receipts", Value::Array(items)).build(),
    ))
}

const RECEIPT_SQL: &str = "SELECT receipt_id, experiment_id, issued_at, signing_key_pubkey_hex, \
    cose_blob, body_cbor FROM receipts";

fn receipt_value(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let cose: Vec<u8> = r.get(4)?;
    let body: Vec<u8> = r.get(5)?;
    Ok(Obj::new()
        .set("receipt_id", r.get::<_, String>(0)?)
        .set("experiment_id", r.get::<_, String>(1)?)
        .set("issued_at", r.get::<_, String>(2)?)
        .set("signing_key_pubkey_hex", r.get::<_, String>(3)?)
        .set("cose_signed_blob_b64", STANDARD.encode(cose))
        .opt("receipt", decode_cbor(&body).ok().map(|rc| rc.to_value()))
        .build())
}

/// `GET /receipts/{receipt_id}` (anonymous): 404 `receipt_not_found`.
pub fn get_public(state: &AppState, receipt_id: &str) -> ApiResult<Response> {
    let conn = state.db().lock();
    let v = conn
        .query_row(
            &format!("{RECEIPT_SQL} WHERE receipt_id = ?1"),
            params![receipt_id],
            receipt_value,
        )
        .optional()?;
    match v {
        Some(v) => Ok(json_response(StatusCode::OK, &v)),
        None => Err(ApiError::with(
            StatusCode::NOT_FOUND,
            "receipt_not_found",
            format!("receipt {receipt_id} not found"),
            Obj::new().set("receipt_id", receipt_id),
        )),
    }
}

/// `GET /workers/{wid}/results/{result_id}/canonical-receipt`: the worker
/// itself or a maintainer; 200 once issued, 410 `receipt_will_not_issue`
/// (`details.reason`) once it never will, else 404 `receipt_not_issued`.
pub fn canonical(
    state: &AppState,
    cred: &Credential,
    wid: &str,
    result_id: &str,
) -> ApiResult<Response> {
    let own = matches!(cred, Credential::Worker { worker_id, .. } if worker_id == wid);
    if !own && !cred.is_maintainer() {
        return Err(ApiError::with(
            StatusCode::FORBIDDEN,
            "worker_self_or_maintainer_required",
            "the worker itself or a maintainer is required",
            Obj::new()
                .set("credential_class", cred.class())
                .opt(
                    "credential_worker_id",
                    match cred {
                        Credential::Worker { worker_id, .. } => Some(worker_id.as_str()),
                        _ => None,
                    },
                )
                .set("url_worker_id", wid),
        ));
    }
    let conn = state.db().lock();
    let v = conn
        .query_row(
            &format!("{RECEIPT_SQL} WHERE result_id = ?1 AND worker_id = ?2"),
            params![result_id, wid],
            receipt_value,
        )
        .optional()?;
    if let Some(v) = v {
        return Ok(json_response(StatusCode::OK, &v));
    }
    let outcome: Option<String> = conn
        .query_row(
            "SELECT reason FROM receipt_outcomes WHERE result_id = ?1 AND worker_id = ?2",
            params![result_id, wid],
            |r| r.get(0),
        )
        .optional()?;
    match outcome {
        Some(reason) => Err(ApiError::with(
            StatusCode::GONE,
            "receipt_will_not_issue",
            "no receipt will be issued for this result",
            Obj::new().set("reason", reason).set("result_id", result_id),
        )),
        None => Err(ApiError::with(
            StatusCode::NOT_FOUND,
            "receipt_not_issued",
            "no receipt has been issued for this result yet",
            Obj::new().set("result_id", result_id),
        )),
    }
}
