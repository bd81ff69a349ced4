//! The maintainer's side of a running devnet: what `auspex devnet tenant
//! add`, `approve` and `status` do, over HTTP with the maintainer bearer
//! token. Errors carry the coordinator's `detail.error.code`.

use std::time::Duration;

use auspex_wire::json::{self, Object, Value};

use crate::info::{DevnetInfo, InfoError};

/// Why an administrative call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The devnet description or token could not be read.
    #[error(transparent)]
    Info(#[from] InfoError),
    /// The coordinator could not be reached.
    #[error("cannot reach the coordinator at {url}")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The coordinator refused the call.
    #[error("the coordinator answered HTTP {status}: {code}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// `detail.error.code` (or the raw `detail`).
        code: String,
        /// `detail.error.message`.
        message: String,
    },
    /// The answer was not JSON.
    #[error("the coordinator's answer is not JSON: {0}")]
    BadResponse(String),
}

fn client() -> Result<reqwest::Client, AdminError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|source| AdminError::Unreachable {
            url: String::new(),
            source,
        })
}

async fn call(
    info: &DevnetInfo,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, AdminError> {
    let token = info.maintainer_token()?;
    let url = format!("{}{path}", info.coordinator_url);
    let mut req = client()?.request(method, &url).bearer_auth(token);
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(json::canonical(&body));
    }
    let resp = req.send().await.map_err(|source| AdminError::Unreachable {
        url: url.clone(),
        source,
    })?;
    let status = resp.status().as_u16();
    let bytes = resp
        .bytes()
        .await
        .map_err(|source| AdminError::Unreachable {
            url: url.clone(),
            source,
        })?;
    let v = json::parse(&bytes).map_err(|e| AdminError::BadResponse(e.to_string()))?;
    if status >= 400 {
        let err = v.get("detail").and_then(|d| d.get("error"));
        let code = err
            .and_then(|e| e.get("code"))
            .and_then(Value::as_str)
            .or_else(|| v.get("detail").and_then(Value::as_str))
            .unwrap_or("error")
            .to_owned();
        let message = err
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        return Err(AdminError::Refused {
            status,
            code,
            message,
        });
    }
    Ok(v)
}

/// Registers tenant `tenant_id` with its Ed25519 public key (64 hex).
pub async fn add_tenant(
    info: &DevnetInfo,
    tenant_id: &str,
    pubkey_hex: &str,
) -> Result<Value, AdminError> {
    let mut body = Object::new();
    body.insert("tenant_id".into(), Value::from(tenant_id));
    body.insert("maintainer_pubkey".into(), Value::from(pubkey_hex));
    call(
        info,
        reqwest::Method::POST,
        "/api/v0/tenants",
        Some(Value::Object(body)),
    )
    .await
}

/// Approves experiment `experiment_id` (the coordinator's `exp-…` id).
pub async fn approve(info: &DevnetInfo, experiment_id: &str) -> Result<Value, AdminError> {
    let path = format!("/api/v0/experiments/{experiment_id}/actions/approve");
    call(info, reqwest::Method::POST, &path, None).await
}

/// The experiments the coordinator holds (maintainer view).
pub async fn experiments(info: &DevnetInfo) -> Result<Value, AdminError> {
    call(info, reqwest::Method::GET, "/api/v0/experiments", None).await
}

/// The registered tenants.
pub async fn tenants(info: &DevnetInfo) -> Result<Value, AdminError> {
    call(info, reqwest::Method::GET, "/api/v0/tenants", None).await
}
