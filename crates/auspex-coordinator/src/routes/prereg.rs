//! `POST|GET /experiments/{id}/pre-registration/deviations` (`coordinator.md`
//! §3.2): append-only, tenant-signed deviations from a pre-registered design.

use auspex_crypto::manifest::parse_pubkey;
use auspex_wire::json::Value;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signature;

use super::Body;
use super::experiments;
use crate::AppState;
use crate::auth::Credential;
use crate::db::ApiResult;
use crate::error::{ApiError, json_response, validation_item};
use crate::prereg::{self, NewDeviation};
use crate::util::Obj;

fn text(body: &Body, key: &str, errors: &mut Vec<Value>) -> Option<String> {
    let v = body.req_str(key, errors)?;
    let n = v.chars().count();
    if n < 10 {
        errors.push(validation_item(
            &["body", key],
            "string_too_short",
            "String should have at least 10 characters",
        ));
        return None;
    }
    if n > 2000 {
        errors.push(validation_item(
            &["body", key],
            "string_too_long",
            "String should have at most 2000 characters",
        ));
        return None;
    }
    Some(v)
}

/// `POST …/pre-registration/deviations` → 201 with the signed record.
pub fn create(
    state: &AppState,
    cred: &Credential,
    experiment_id: &str,
    body: &Body,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let what_changed = text(body, "what_changed", &mut errors);
    let why = text(body, "why", &mut errors);
    let signature_b64 = body.req_str("tenant_signature_b64", &mut errors);
    let (Some(what_changed), Some(why), Some(signature_b64)) = (what_changed, why, signature_b64)
    else {
        return Err(ApiError::Validation(errors));
    };
    let mut conn = state.db().lock();
    let exp = experiments::load_visible(&conn, cred, experiment_id)?;
    // Only the owning researcher can declare: the declaration is signed
    // with the tenant's key.
    let Credential::Researcher { pubkey, .. } = cred else {
        return Err(ApiError::with(
            StatusCode::FORBIDDEN,
            "researcher_or_account_required",
            "a deviation is declared by the owning researcher, signed with the tenant key",
            Obj::new().set("experiment_id", experiment_id),
        ));
    };
    let declaration = prereg::declaration_bytes(&exp.manifest_hash, &what_changed, &why);
    let invalid = |reason: &str| {
        ApiError::with(
            StatusCode::UNPROCESSABLE_ENTITY,
            "deviation_signature_invalid",
            format!(
                "tenant_signature_b64 is not the caller's Ed25519 signature over the canonical \
                 declaration {{\"manifest_hash\",\"what_changed\",\"why\"}}: {reason}"
            ),
            Obj::new().set("reason", reason),
        )
    };
    let sig_bytes = STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| invalid("not base64"))?;
    let sig = Signature::from_slice(&sig_bytes).map_err(|_| invalid("not 64 bytes"))?;
    let key = parse_pubkey(pubkey).ok_or_else(|| invalid("caller key unusable"))?;
    key.verify_strict(&declaration, &sig)
        .map_err(|_| invalid("signature does not verify"))?;
    let tx = conn.transaction()?;
    let id = prereg::insert_deviation(
        &tx,
        state.key(),
        &NewDeviation {
            experiment_id: &exp.experiment_id,
            manifest_hash: &exp.manifest_hash,
            what_changed: &what_changed,
            why: &why,
            tenant_pubkey_hex: pubkey,
            tenant_signature_b64: signature_b64.trim(),
        },
    )?;
    tx.commit()?;
    let record = prereg::deviation(&conn, &id)?
        .ok_or_else(|| ApiError::Internal("stored deviation vanished".into()))?;
    drop(conn);
    state.wake_anchorer();
    Ok(json_response(StatusCode::CREATED, &record))
}

/// `GET …/pre-registration/deviations` → `{deviations: […]}`.
pub fn list(state: &AppState, cred: &Credential, experiment_id: &str) -> ApiResult<Response> {
    let conn = state.db().lock();
    let exp = experiments::load_visible(&conn, cred, experiment_id)?;
    let all = prereg::deviations(&conn, &exp.experiment_id)?;
    Ok(json_response(
        StatusCode::OK,
        &Obj::new().set("deviations", Value::Array(all)).build(),
    ))
}
