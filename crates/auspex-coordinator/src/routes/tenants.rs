//! Tenants (`coordinator.md` §13.6) and the maintainer token bootstrap
//! (§2.4).
//!
//! `POST /tenants` (maintainer) registers a tenant with its researcher key;
//! [`add_tenant`] does the same for the devnet CLI without HTTP.

use auspex_wire::json::Value;
use axum::http::StatusCode;
use axum::response::Response;
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::auth::{Credential, store_maintainer_token};
use crate::config::Config;
use crate::db::{ApiResult, Db, unique_violation};
use crate::error::{ApiError, json_response};
use crate::util::{Obj, is_hex64, iso_now, secret_token, to_json};
use crate::{AppState, StartError};

use super::{Body, require_maintainer};

/// A tenant to register.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTenant {
    /// `^[a-z0-9_-]+$` (the work-unit validator is stricter:
    /// `^[a-z][a-z0-9-]{2,63}$`; ids outside it can never submit units).
    pub tenant_id: String,
    /// The researcher's Ed25519 key, 64 hex characters (stored lowercased).
    pub maintainer_pubkey: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Contact e-mail.
    pub contact_email: Option<String>,
    /// Whether the contact is public.
    pub contact_public: Option<bool>,
    /// Free text.
    pub description: Option<String>,
}

/// Why a tenant could not be registered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    /// The tenant id is not `^[a-z0-9_-]+$`.
    #[error("tenant id {0:?} must match ^[a-z0-9_-]+$")]
    InvalidId(String),
    /// The key is not 64 hex characters.
    #[error("maintainer_pubkey {0:?} is not 64 hex characters")]
    InvalidKey(String),
    /// The id or the key is already registered.
    #[error("duplicate tenant: {db_error}")]
    Duplicate {
        /// SQLite's message.
        db_error: String,
    },
    /// The key is an enrolled worker's key.
    #[error("key {0} is an enrolled worker key")]
    KeyIsWorker(String),
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(#[from] rusqlite::Error),
}

fn valid_tenant_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

/// Registers a tenant (the library form of `POST /tenants`).
pub fn add_tenant(state: &AppState, tenant: &NewTenant) -> Result<Value, TenantError> {
    let conn = state.db().lock();
    insert_tenant(&conn, tenant)
}

pub(crate) fn insert_tenant(conn: &Connection, t: &NewTenant) -> Result<Value, TenantError> {
    if !valid_tenant_id(&t.tenant_id) {
        return Err(TenantError::InvalidId(t.tenant_id.clone()));
    }
    if !is_hex64(&t.maintainer_pubkey) {
        return Err(TenantError::InvalidKey(t.maintainer_pubkey.clone()));
    }
    let pubkey = t.maintainer_pubkey.to_ascii_lowercase();
    // Stricter than the real service (§13.6): a key may not be both, since
    // the resolver would make the worker unreachable.
    let is_worker: bool = conn
        .query_row(
            "SELECT 1 FROM workers WHERE pubkey_hex = ?1",
            params![pubkey],
            |_| Ok(true),
        )
        .optional()?
        .unwrap_or(false);
    if is_worker {
        return Err(TenantError::KeyIsWorker(pubkey));
    }
    let now = iso_now();
    match conn.execute(
        "INSERT INTO tenants (tenant_id, maintainer_pubkey, display_name, contact_email, \
         contact_public, description, registered_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            t.tenant_id,
            pubkey,
            t.display_name,
            t.contact_email,
            t.contact_public,
            t.description,
            now
        ],
    ) {
        Ok(_) => {}
        Err(e) => {
            return Err(match unique_violation(&e) {
                Some(db_error) => TenantError::Duplicate { db_error },
                None => TenantError::Storage(e),
            });
        }
    }
    Ok(load_tenant(conn, &t.tenant_id, true)?.unwrap_or(Value::Null))
}

/// The tenant object; `private` adds `contact_email` and `maintainer_pubkey`.
fn load_tenant(
    conn: &Connection,
    tenant_id: &str,
    private: bool,
) -> Result<Option<Value>, rusqlite::Error> {
    conn.query_row(
        "SELECT tenant_id, display_name, description, contact_public, registered_at, revision, \
         contact_email, maintainer_pubkey FROM tenants WHERE tenant_id = ?1",
        params![tenant_id],
        |r| Ok(tenant_value(r, private)),
    )
    .optional()?
    .transpose()
}

fn tenant_value(r: &rusqlite::Row<'_>, private: bool) -> Result<Value, rusqlite::Error> {
    let mut o = Obj::new()
        .set("tenant_id", r.get::<_, String>(0)?)
        .opt("display_name", r.get::<_, Option<String>>(1)?)
        .opt("description", r.get::<_, Option<String>>(2)?)
        .opt("contact_public", r.get::<_, Option<bool>>(3)?)
        .set("registered_at", r.get::<_, String>(4)?)
        .set("revision", r.get::<_, i64>(5)?);
    if private {
        o = o
            .opt("contact_email", r.get::<_, Option<String>>(6)?)
            .set("maintainer_pubkey", r.get::<_, String>(7)?);
    }
    Ok(o.build())
}

/// `POST /tenants` (maintainer): 201 tenant object; 409 `duplicate_tenant`.
pub fn create(state: &AppState, cred: &Credential, body: &Body) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let tenant_id = body.req_str("tenant_id", &mut errors);
    let pubkey = body.req_str("maintainer_pubkey", &mut errors);
    let display_name = body.opt_str("display_name", &mut errors);
    let contact_email = body.opt_str("contact_email", &mut errors);
    let contact_public = body.opt_bool("contact_public", &mut errors);
    let description = body.opt_str("description", &mut errors);
    let account_id = body.opt_str("account_id", &mut errors);
    if let Some(t) = &tenant_id
        && !valid_tenant_id(t)
    {
        errors.push(super::pattern_error("tenant_id", "^[a-z0-9_-]+$", t));
    }
    if let Some(k) = &pubkey
        && !is_hex64(k)
    {
        errors.push(super::pattern_error(
            "maintainer_pubkey",
            "^[a-fA-F0-9]{64}$",
            k,
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    require_maintainer(cred)?;
    if let Some(a) = account_id {
        return Err(ApiError::with(
            StatusCode::BAD_REQUEST,
            "unknown_account",
            format!("account {a} does not exist (the devnet has no accounts)"),
            Obj::new().set("account_id", a),
        ));
    }
    let t = NewTenant {
        tenant_id: tenant_id.unwrap_or_default(),
        maintainer_pubkey: pubkey.unwrap_or_default(),
        display_name,
        contact_email,
        contact_public,
        description,
    };
    let conn = state.db().lock();
    match insert_tenant(&conn, &t) {
        Ok(v) => Ok(json_response(StatusCode::CREATED, &v)),
        Err(TenantError::Duplicate { db_error }) => Err(ApiError::with(
            StatusCode::CONFLICT,
            "duplicate_tenant",
            "tenant id or key already registered",
            Obj::new().set("db_error", db_error),
        )),
        Err(TenantError::KeyIsWorker(k)) => Err(ApiError::with(
            StatusCode::CONFLICT,
            "pubkey_already_worker",
            "this key is an enrolled worker key",
            Obj::new().set("pubkey_hex", k),
        )),
        Err(TenantError::Storage(e)) => Err(e.into()),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

/// `GET /tenants`: public fields for all, private ones for the maintainer
/// and for the caller's own tenant.
pub fn list(state: &AppState, cred: &Credential) -> ApiResult<Response> {
    let conn = state.db().lock();
    let mut stmt = conn.prepare(
        "SELECT tenant_id, display_name, description, contact_public, registered_at, revision, \
         contact_email, maintainer_pubkey FROM tenants ORDER BY tenant_id",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let private = cred.is_maintainer() || cred.tenant_id() == Some(id.as_str());
        out.push(tenant_value(r, private)?);
    }
    Ok(json_response(
        StatusCode::OK,
        &Obj::new().set("tenants", Value::Array(out)).build(),
    ))
}

/// `GET /tenants/{id}`: 404 `tenant_not_found`.
pub fn get(state: &AppState, cred: &Credential, tenant_id: &str) -> ApiResult<Response> {
    let private = cred.is_maintainer() || cred.tenant_id() == Some(tenant_id);
    let conn = state.db().lock();
    match load_tenant(&conn, tenant_id, private)? {
        Some(v) => Ok(json_response(StatusCode::OK, &v)),
        None => Err(ApiError::with(
            StatusCode::NOT_FOUND,
            "tenant_not_found",
            format!("tenant {tenant_id} not found"),
            Obj::new().set("tenant_id", tenant_id),
        )),
    }
}

/// `GET /auth/whoami`: the caller's credential class and identity.
pub fn whoami(cred: &Credential) -> ApiResult<Response> {
    let o = match cred {
        Credential::Maintainer { login } => Obj::new()
            .set("credential_class", "maintainer")
            .opt("login", login.clone()),
        Credential::Researcher { tenant_id, pubkey } => Obj::new()
            .set("credential_class", "researcher")
            .set("tenant_id", tenant_id.as_str())
            .set("pubkey_hex", pubkey.as_str()),
        Credential::Worker { worker_id, pubkey } => Obj::new()
            .set("credential_class", "worker")
            .set("worker_id", worker_id.as_str())
            .set("pubkey_hex", pubkey.as_str()),
        Credential::Anonymous => Obj::new().set("credential_class", "anonymous"),
    };
    Ok(json_response(StatusCode::OK, &o.build()))
}

/// Reads `<state>/maintainer.token` (the real service's JSON format,
/// `{"tokens":[{"token","created_at","expires_at"}]}`) or creates it with a
/// fresh `token_urlsafe(32)`; makes sure the database knows the token's
/// hash. Returns the first token.
pub(crate) fn ensure_maintainer_token(config: &Config, db: &Db) -> Result<String, StartError> {
    let path = config.token_path();
    let err = |reason: String| StartError::Token {
        path: path.display().to_string(),
        reason,
    };
    let token = match std::fs::read(&path) {
        Ok(bytes) => {
            let v = auspex_wire::json::parse(&bytes).map_err(|e| err(e.to_string()))?;
            v.get("tokens")
                .and_then(Value::as_array)
                .and_then(|t| t.first())
                .and_then(|t| t.get("token"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| err("no tokens[0].token".to_owned()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = secret_token(32).map_err(|e| err(e.to_string()))?;
            let file = Obj::new()
                .set(
                    "tokens",
                    Value::Array(vec![
                        Obj::new()
                            .set("token", token.as_str())
                            .set("created_at", iso_now())
                            .set("expires_at", Value::Null)
                            .build(),
                    ]),
                )
                .build();
            auspex_crypto::atomic::write_atomic(&path, to_json(&file).as_bytes(), 0o600)
                .map_err(|e| err(e.to_string()))?;
            token
        }
        Err(e) => return Err(err(e.to_string())),
    };
    let conn = db.lock();
    store_maintainer_token(&conn, &token, None).map_err(|e| err(e.to_string()))?;
    Ok(token)
}
