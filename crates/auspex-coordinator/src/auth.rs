//! Who is calling (`coordinator.md` §2): maintainer bearer tokens, RFC 9421
//! signatures by tenant keys (researchers) and worker keys (workers), or
//! nobody.
//!
//! Checks, in the real service's order:
//!
//! 1. `Authorization` present → it must be `Bearer <token>` (401
//!    `malformed_authorization_header`) and the token's SHA-256 must match a
//!    stored, unexpired maintainer token (401 `invalid_maintainer_token`).
//!    Tokens are stored hashed and compared in constant time, so the
//!    database alone does not grant maintainer access.
//! 2. `Signature-Input` present → [`verify_request`] with the coordinator
//!    profile (clock window, covered components, content digest, Ed25519);
//!    the keyid resolves to a tenant first, then to an enrolled, unretired
//!    worker; unknown keys are 401 `invalid_signature`.
//! 3. Replay ([`authenticate_once`]): on routes where running a request
//!    twice changes state in a way its sender did not ask for — the
//!    lifecycle actions (a replayed `pause` after a `resume`) and heartbeats
//!    — a signature whose bytes were already accepted inside the window is
//!    refused (401 `invalid_signature`, `details.reason =
//!    "replayed_signature"`); the real service has no replay cache (§11(c)).
//!    Everywhere else a replay simply runs again and meets the route's own
//!    uniqueness check (409 `duplicate_manifest`,
//!    `unit_id_already_submitted`, `result_already_submitted`,
//!    `assignment_already_resolved`) or reads. Ed25519 is deterministic and
//!    `created` has one-second resolution, so an honest client retrying the
//!    same request within a second sends byte-identical headers; refusing
//!    those with 401 everywhere would hide the typed 409s the SDK's
//!    idempotency relies on (and GET query strings are not covered at all,
//!    so paging within a second repeats a signature).
//! 4. Otherwise the caller is anonymous.

use auspex_crypto::http_sig::{HttpSigError, Policy, RequestParts, verify_request};
use auspex_crypto::manifest::parse_pubkey;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use rusqlite::{OptionalExtension as _, params};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{ApiError, MAX_BODY_BYTES};
use crate::util::{Obj, now_micros};

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// A maintainer bearer token.
    Maintainer {
        /// The login attributed to the token, if any.
        login: Option<String>,
    },
    /// A request signed by a registered tenant key.
    Researcher {
        /// The tenant.
        tenant_id: String,
        /// The signing key, lowercase hex.
        pubkey: String,
    },
    /// A request signed by an enrolled worker's key.
    Worker {
        /// The worker.
        worker_id: String,
        /// The signing key, lowercase hex.
        pubkey: String,
    },
    /// No credential.
    Anonymous,
}

impl Credential {
    /// The credential class string (`last_action_by_class`, error details).
    pub fn class(&self) -> &'static str {
        match self {
            Credential::Maintainer { .. } => "maintainer",
            Credential::Researcher { .. } => "researcher",
            Credential::Worker { .. } => "worker",
            Credential::Anonymous => "anonymous",
        }
    }

    /// Whether this is a maintainer.
    pub fn is_maintainer(&self) -> bool {
        matches!(self, Credential::Maintainer { .. })
    }

    /// The researcher's tenant, if a researcher.
    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            Credential::Researcher { tenant_id, .. } => Some(tenant_id),
            _ => None,
        }
    }

    /// The signing key of a signed request.
    pub fn pubkey(&self) -> Option<&str> {
        match self {
            Credential::Researcher { pubkey, .. } | Credential::Worker { pubkey, .. } => {
                Some(pubkey)
            }
            _ => None,
        }
    }
}

/// A request as received: what signature verification needs, the body
/// capped at [`MAX_BODY_BYTES`] (also when sent chunked, which the real
/// service does not cap).
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// The method.
    pub method: String,
    /// The request target (path and query, still percent-encoded).
    pub target: String,
    /// Header lines with UTF-8 values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl RawRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequest<S> for RawRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<RawRequest, ApiError> {
        RawRequest::read(req, MAX_BODY_BYTES).await
    }
}

impl RawRequest {
    /// Reads `req` with a body cap of `limit` bytes (413 beyond it).
    pub async fn read(req: Request, limit: usize) -> Result<RawRequest, ApiError> {
        let (parts, body) = req.into_parts();
        let target = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
        let mut headers = Vec::with_capacity(parts.headers.len() + 1);
        for (name, value) in &parts.headers {
            if let Ok(v) = value.to_str() {
                headers.push((name.as_str().to_owned(), v.to_owned()));
            }
        }
        // HTTP/2 and absolute-form requests carry the authority in the URI.
        if !headers.iter().any(|(n, _)| n == "host")
            && let Some(a) = parts.uri.authority()
        {
            headers.push(("host".to_owned(), a.as_str().to_owned()));
        }
        let body = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        Ok(RawRequest {
            method: parts.method.as_str().to_owned(),
            target,
            headers,
            body,
        })
    }
}

fn unauthorized(code: &'static str, message: impl Into<String>, details: Obj) -> ApiError {
    ApiError::with(StatusCode::UNAUTHORIZED, code, message, details)
}

fn sha256_hex(s: &str) -> String {
    auspex_wire::hex_lower(&Sha256::digest(s.as_bytes()))
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Identifies the caller of `req` (see the module docs for the order),
/// without the replay check.
pub fn authenticate(state: &AppState, req: &RawRequest) -> Result<Credential, ApiError> {
    authenticate_inner(state, req, false)
}

/// [`authenticate`] plus the replay check: a signature already accepted
/// inside its window is refused.
pub fn authenticate_once(state: &AppState, req: &RawRequest) -> Result<Credential, ApiError> {
    authenticate_inner(state, req, true)
}

fn authenticate_inner(
    state: &AppState,
    req: &RawRequest,
    replay_checked: bool,
) -> Result<Credential, ApiError> {
    if let Some(auth) = req.header("authorization") {
        return maintainer(state, req, auth);
    }
    if req.header("signature-input").is_none() {
        return Ok(Credential::Anonymous);
    }
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let parts = RequestParts::new(&req.method, &req.target, &headers, &req.body);
    let now = now_micros().div_euclid(1_000_000);
    let mut resolved: Option<Result<Credential, ApiError>> = None;
    let policy = Policy::default().window(state.config().signature_window_secs);
    let verified = verify_request(
        &parts,
        now,
        |keyid| {
            let key = parse_pubkey(keyid)?;
            match resolve_key(state, keyid) {
                Ok(Some(c)) => {
                    resolved = Some(Ok(c));
                    Some(key)
                }
                Ok(None) => None,
                Err(e) => {
                    resolved = Some(Err(e));
                    None
                }
            }
        },
        &policy,
    );
    let verified = match (verified, resolved) {
        (_, Some(Err(e))) => return Err(e),
        (Ok(v), Some(Ok(c))) => (v, c),
        (Ok(_), None) => {
            return Err(unauthorized("invalid_signature", "unknown key", Obj::new()));
        }
        (Err(e), _) => return Err(sig_error(&e)),
    };
    let (v, credential) = verified;
    if replay_checked {
        let mut cache = state.replay_cache();
        if let Err(e) = cache.check_and_insert(&v, now) {
            return Err(unauthorized(
                e.code(),
                e.to_string(),
                Obj::new().set("reason", "replayed_signature"),
            ));
        }
    }
    Ok(credential)
}

/// Proof of possession (§2.3): the signature must verify under the
/// request's own keyid, with no registry lookup. Returns the key (lowercase
/// hex). Missing signature headers are 401 `signature_required`.
pub fn authenticate_self_signed(state: &AppState, req: &RawRequest) -> Result<String, ApiError> {
    if req.header("signature-input").is_none() || req.header("signature").is_none() {
        return Err(unauthorized(
            "signature_required",
            "this route needs an RFC 9421 signature by the applying key",
            Obj::new(),
        ));
    }
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let parts = RequestParts::new(&req.method, &req.target, &headers, &req.body);
    let now = now_micros().div_euclid(1_000_000);
    let mut signer: Option<String> = None;
    let policy = Policy::default().window(state.config().signature_window_secs);
    verify_request(
        &parts,
        now,
        |keyid| {
            let key = parse_pubkey(keyid)?;
            signer = Some(keyid.to_ascii_lowercase());
            Some(key)
        },
        &policy,
    )
    .map_err(|e| sig_error(&e))?;
    signer.ok_or_else(|| unauthorized("invalid_signature", "unknown key", Obj::new()))
}

fn sig_error(e: &HttpSigError) -> ApiError {
    let details = match e {
        HttpSigError::SignatureExpired {
            created,
            server_time,
            ..
        } => Obj::new()
            .set("created", *created)
            .set("server_time", *server_time),
        _ => Obj::new(),
    };
    unauthorized(e.code(), e.to_string(), details)
}

/// Resolves a keyid: tenant key → researcher; enrolled, unretired worker
/// key → worker. Reads the last committed state on a read connection, so
/// authentication does not wait for the writer.
fn resolve_key(state: &AppState, keyid: &str) -> Result<Option<Credential>, ApiError> {
    let found = state.db().read(|conn| {
        let tenant: Option<String> = conn
            .prepare_cached("SELECT tenant_id FROM tenants WHERE maintainer_pubkey = ?1")?
            .query_row(params![keyid], |r| r.get(0))
            .optional()?;
        if let Some(tenant_id) = tenant {
            return Ok(Some((true, tenant_id)));
        }
        let worker: Option<String> = conn
            .prepare_cached(
                "SELECT worker_id FROM workers WHERE pubkey_hex = ?1 AND retired_at IS NULL",
            )?
            .query_row(params![keyid], |r| r.get(0))
            .optional()?;
        Ok(worker.map(|w| (false, w)))
    })?;
    Ok(found.map(|(tenant, id)| {
        if tenant {
            Credential::Researcher {
                tenant_id: id,
                pubkey: keyid.to_owned(),
            }
        } else {
            Credential::Worker {
                worker_id: id,
                pubkey: keyid.to_owned(),
            }
        }
    }))
}

fn maintainer(state: &AppState, req: &RawRequest, auth: &str) -> Result<Credential, ApiError> {
    let token = auth
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            unauthorized(
                "malformed_authorization_header",
                "Authorization must be 'Bearer <token>'",
                Obj::new(),
            )
        })?;
    let digest = sha256_hex(token);
    let now = crate::util::iso_now();
    let rows: Vec<(String, Option<String>, Option<String>)> = state.db().read(|conn| {
        let mut stmt =
            conn.prepare_cached("SELECT token_sha256, login, expires_at FROM maintainer_tokens")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()
    })?;
    // Compare against every entry so timing does not reveal which matched.
    let mut found: Option<Option<String>> = None;
    for (hash, login, expires) in rows {
        let live = expires.as_deref().is_none_or(|e| e > now.as_str());
        if ct_eq(hash.as_bytes(), digest.as_bytes()) && live {
            found = Some(login);
        }
    }
    match found {
        Some(login) => {
            let login = match (login, req.header("x-maintainer-login")) {
                (Some(_), Some(h)) => Some(h.to_owned()),
                (l, _) => l,
            };
            Ok(Credential::Maintainer { login })
        }
        None => Err(unauthorized(
            "invalid_maintainer_token",
            "maintainer token not recognised",
            Obj::new(),
        )),
    }
}

/// Stores the hash of a maintainer `token` (plaintext is never stored in
/// the database).
pub fn store_maintainer_token(
    conn: &rusqlite::Connection,
    token: &str,
    login: Option<&str>,
) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT OR IGNORE INTO maintainer_tokens (token_sha256, login, created_at, expires_at) \
         VALUES (?1, ?2, ?3, NULL)",
        params![sha256_hex(token), login, crate::util::iso_now()],
    )?;
    Ok(())
}

/// 403 with `details.credential_class` (the role guards of §2.1).
pub fn forbidden(code: &'static str, message: &str, cred: &Credential) -> ApiError {
    ApiError::with(
        StatusCode::FORBIDDEN,
        code,
        message,
        Obj::new().set("credential_class", cred.class()),
    )
}
