//! The coordinator client (`worker.md` §2): every request but `enroll` is
//! signed with RFC 9421 (`auspex_crypto::http_sig::sign_request`) over the
//! exact body bytes sent; bodies are compact insertion-order JSON
//! ([`crate::jsonfmt::compact`]); the `User-Agent` is the official
//! `auspexai-worker/0.0.1`.
//!
//! Responses are read with a size cap and parsed with Python semantics; a
//! malformed answer is an error value, never a panic.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auspex_crypto::http_sig::sign_request;
use auspex_crypto::keys::TenantKey;
use auspex_wire::json::{self, Object, Value};
use base64::Engine as _;

use crate::jsonfmt;

/// The official worker's fixed user agent (§2.1).
pub const USER_AGENT: &str = "auspexai-worker/0.0.1";
/// Largest JSON answer read.
pub const MAX_JSON_BYTES: usize = 4 << 20;
/// Largest package archive read (the coordinator's upload cap).
pub const MAX_PACKAGE_BYTES: usize = 64 << 20;

/// A failed coordinator call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The base URL cannot be used.
    #[error("coordinator URL {url:?}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// No answer: connection refused, reset, timeout.
    #[error("{route}: {source}")]
    Transport {
        /// The route.
        route: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// An answer with an unexpected status.
    #[error("{route}: HTTP {status} {code}: {message}")]
    Status {
        /// The route.
        route: String,
        /// The HTTP status.
        status: u16,
        /// `detail.error.code` (empty when absent).
        code: String,
        /// `detail.error.message` (or the raw body, shortened).
        message: String,
        /// `detail.error.details` (`null` when absent).
        details: Box<Value>,
    },
    /// A success status with a body that does not have the documented
    /// shape.
    #[error("{route}: malformed answer: {reason}")]
    Malformed {
        /// The route.
        route: String,
        /// What is wrong.
        reason: String,
    },
}

impl ClientError {
    /// Worth retrying later: no answer, 5xx, 408, 429, and a 401 for a
    /// replayed signature (two identical requests signed in one second by
    /// two processes holding this key, e.g. across a restart).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Status {
                status, details, ..
            } => {
                *status >= 500
                    || *status == 408
                    || *status == 429
                    || (*status == 401
                        && details.get("reason").and_then(Value::as_str)
                            == Some("replayed_signature"))
            }
            ClientError::Url { .. } | ClientError::Malformed { .. } => false,
        }
    }

    /// The HTTP status, if there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// `detail.error.code`, if any.
    pub fn code(&self) -> &str {
        match self {
            ClientError::Status { code, .. } => code,
            _ => "",
        }
    }
}

/// What enrolment returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// `wkr-…`.
    pub worker_id: String,
    /// The trust tier (0 for a fresh worker).
    pub trust_tier: i64,
    /// ISO timestamp.
    pub registered_at: String,
}

/// One leased replica (`worker.md` §2.6).
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// Echoed in result and refusal bodies.
    pub assignment_id: Option<String>,
    /// The coordinator's experiment id (`exp-…`; the manifest-pin key).
    pub experiment_id: String,
    /// The unit id (`[A-Za-z0-9_-]{1,128}`, checked).
    pub unit_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The tenant's experiment label.
    pub label: String,
    /// Lowercase hex manifest hash.
    pub manifest_sha256: String,
    /// The coordinator's `created_at`, as sent.
    pub created_at: String,
    /// The unit payload (`{}` when absent).
    pub payload: Object,
}

/// The answer to an assignment poll.
#[derive(Debug, Clone, PartialEq)]
pub enum Poll {
    /// A replica to compute.
    Work(Box<Lease>),
    /// Nothing to do (`idle_reason.code` when given).
    Idle(Option<String>),
    /// HTTP 423: paused or quarantined by an operator.
    Hold {
        /// `worker_paused` / `worker_quarantined`.
        code: String,
        /// The operator's message.
        message: String,
    },
    /// A unit was offered whose id cannot be used safely in a path; it is
    /// left to expire.
    Unusable(String),
}

/// The answer to a result upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// 201 (or a 409 naming the existing result).
    Accepted {
        /// `res-…`.
        result_id: String,
        /// `in_progress` / `completed`.
        unit_status_after: String,
    },
}

/// The state of a result's canonical receipt (§2.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptState {
    /// 200: the COSE_Sign1 bytes.
    Issued(Vec<u8>),
    /// 404: not yet.
    Pending,
    /// 410: never (`details.reason`, e.g. `non_consensus`).
    WillNotIssue(String),
}

#[derive(Debug, Default)]
struct CreatedClock {
    used: HashMap<String, BTreeSet<i64>>,
}

impl CreatedClock {
    /// A `created` for this request that was never used for identical bytes:
    /// the coordinator refuses a replayed heartbeat signature, and Ed25519 is
    /// deterministic, so two identical heartbeats in one second need
    /// different `created` values. Walks back at most 200 s (inside ±300).
    fn pick(&mut self, key: String, now: i64) -> i64 {
        self.used.retain(|_, set| {
            set.retain(|c| *c > now - 400);
            !set.is_empty()
        });
        let set = self.used.entry(key).or_default();
        let mut c = now;
        while set.contains(&c) && c > now - 200 {
            c -= 1;
        }
        set.insert(c);
        c
    }
}

/// A signed-request client for one coordinator and one worker key.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    origin: String,
    prefix: String,
    authority: String,
    key: TenantKey,
    clock: Mutex<CreatedClock>,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn is_unit_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn shorten(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl Client {
    /// A client for `base_url` signing with `key`.
    pub fn new(base_url: &str, key: TenantKey, timeout: Duration) -> Result<Client, ClientError> {
        let trimmed = base_url.trim_end_matches('/');
        let bad = |reason: &str| ClientError::Url {
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let url = reqwest::Url::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a query or fragment is not allowed"));
        }
        let host = url.host_str().ok_or_else(|| bad("no host"))?;
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        }
        .to_ascii_lowercase();
        let prefix = url.path().trim_end_matches('/').to_owned();
        let origin = format!("{}://{}", url.scheme(), authority);
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| bad(&format!("HTTP client: {e}")))?;
        Ok(Client {
            http,
            origin,
            prefix,
            authority,
            key,
            clock: Mutex::new(CreatedClock::default()),
        })
    }

    /// The worker's public key, lowercase hex.
    pub fn pubkey_hex(&self) -> String {
        self.key.public_hex()
    }

    /// The `Host` value requests carry (and sign).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Sends one request; `signed` adds the RFC 9421 headers. Returns the
    /// status and at most `cap` bytes of body (more is an error).
    async fn send(
        &self,
        method: reqwest::Method,
        route: &str,
        body: Option<Vec<u8>>,
        signed: bool,
        cap: usize,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let path = format!("{}{route}", self.prefix);
        let bytes = body.unwrap_or_default();
        let mut rb = self
            .http
            .request(method.clone(), format!("{}{path}", self.origin));
        if signed {
            let created = {
                let key = format!(
                    "{} {path} {}",
                    method.as_str(),
                    auspex_wire::sha256_hex(&bytes)
                );
                let mut clock = self.clock.lock().unwrap_or_else(|p| p.into_inner());
                clock.pick(key, now_secs())
            };
            let h = sign_request(
                &self.key,
                method.as_str(),
                &path,
                &self.authority,
                &bytes,
                created,
            );
            for (n, v) in h.header_pairs() {
                rb = rb.header(n, v);
            }
        }
        if !bytes.is_empty() {
            rb = rb.header("content-type", "application/json").body(bytes);
        }
        let transport = |source| ClientError::Transport {
            route: route.to_owned(),
            source,
        };
        let mut resp = rb.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if out.len() + chunk.len() > cap {
                return Err(ClientError::Malformed {
                    route: route.to_owned(),
                    reason: format!("answer larger than {cap} bytes"),
                });
            }
            out.extend_from_slice(&chunk);
        }
        Ok((status, out))
    }

    fn status_error(route: &str, status: u16, body: &[u8]) -> ClientError {
        let parsed = json::parse(body).ok();
        let err = parsed
            .as_ref()
            .and_then(|v| v.get("detail"))
            .and_then(|d| d.get("error"));
        let text = |k: &str| {
            err.and_then(|e| e.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let detail_plain = parsed
            .as_ref()
            .and_then(|v| v.get("detail"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        ClientError::Status {
            route: route.to_owned(),
            status,
            code: text("code").unwrap_or_default(),
            message: text("message")
                .or(detail_plain)
                .unwrap_or_else(|| shorten(&String::from_utf8_lossy(body), 200)),
            details: Box::new(
                err.and_then(|e| e.get("details"))
                    .cloned()
                    .unwrap_or(Value::Null),
            ),
        }
    }

    async fn json_call(
        &self,
        method: reqwest::Method,
        route: &str,
        body: Option<&Value>,
        signed: bool,
        ok: &[u16],
    ) -> Result<(u16, Value), ClientError> {
        let bytes = body.map(|b| jsonfmt::compact(b).into_bytes());
        let (status, out) = self
            .send(method, route, bytes, signed, MAX_JSON_BYTES)
            .await?;
        if !ok.contains(&status) {
            return Err(Client::status_error(route, status, &out));
        }
        let v = json::parse(&out).map_err(|e| ClientError::Malformed {
            route: route.to_owned(),
            reason: e.to_string(),
        })?;
        Ok((status, v))
    }

    fn malformed(route: &str, reason: impl Into<String>) -> ClientError {
        ClientError::Malformed {
            route: route.to_owned(),
            reason: reason.into(),
        }
    }

    fn req_str(v: &Value, key: &str, route: &str) -> Result<String, ClientError> {
        v.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Client::malformed(route, format!("{key} missing or not a string")))
    }

    /// `POST /api/v0/workers/enroll` (unsigned, 201).
    pub async fn enroll(&self, capabilities: &Value) -> Result<Enrollment, ClientError> {
        let route = "/api/v0/workers/enroll";
        let mut body = Object::new();
        body.insert("pubkey_hex".into(), Value::from(self.pubkey_hex()));
        body.insert("capabilities".into(), capabilities.clone());
        let (_, v) = self
            .json_call(
                reqwest::Method::POST,
                route,
                Some(&Value::Object(body)),
                false,
                &[201],
            )
            .await?;
        Ok(Enrollment {
            worker_id: Client::req_str(&v, "worker_id", route)?,
            trust_tier: match v.get("trust_tier") {
                Some(Value::Int(i)) => i
                    .as_i64()
                    .ok_or_else(|| Client::malformed(route, "trust_tier out of range"))?,
                _ => return Err(Client::malformed(route, "trust_tier missing")),
            },
            registered_at: Client::req_str(&v, "registered_at", route)?,
        })
    }

    /// `POST /workers/{wid}/heartbeat` with the full capabilities.
    pub async fn heartbeat(
        &self,
        worker_id: &str,
        capabilities: &Value,
    ) -> Result<(), ClientError> {
        let route = format!("/api/v0/workers/{worker_id}/heartbeat");
        let mut body = Object::new();
        body.insert("capabilities".into(), capabilities.clone());
        let (_, v) = self
            .json_call(
                reqwest::Method::POST,
                &route,
                Some(&Value::Object(body)),
                true,
                &[200],
            )
            .await?;
        Client::req_str(&v, "worker_id", &route)?;
        Ok(())
    }

    /// `GET /workers/{wid}/assignments` — the lease itself (§2.6).
    pub async fn poll(&self, worker_id: &str) -> Result<Poll, ClientError> {
        let route = format!("/api/v0/workers/{worker_id}/assignments");
        let (status, out) = self
            .send(reqwest::Method::GET, &route, None, true, MAX_JSON_BYTES)
            .await?;
        if status == 423 {
            let e = Client::status_error(&route, status, &out);
            return Ok(Poll::Hold {
                code: e.code().to_owned(),
                message: match e {
                    ClientError::Status { message, .. } => message,
                    _ => String::new(),
                },
            });
        }
        if status != 200 {
            return Err(Client::status_error(&route, status, &out));
        }
        let v = json::parse(&out).map_err(|e| Client::malformed(&route, e.to_string()))?;
        let idle = || {
            Poll::Idle(
                v.get("idle_reason")
                    .and_then(|r| r.get("code"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            )
        };
        let (Some(exp), Some(wu)) = (
            v.get("experiment_id").and_then(Value::as_str),
            v.get("work_unit").and_then(Value::as_object),
        ) else {
            return Ok(idle());
        };
        let field = |k: &str| {
            wu.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| Client::malformed(&route, format!("work_unit.{k} missing")))
        };
        let unit_id = field("unit_id")?;
        if !is_unit_id(&unit_id) {
            return Ok(Poll::Unusable(shorten(&unit_id, 140)));
        }
        let payload = match wu.get("payload") {
            None | Some(Value::Null) => Object::new(),
            Some(Value::Object(o)) => o.clone(),
            Some(_) => {
                return Err(Client::malformed(
                    &route,
                    "work_unit.payload is not an object",
                ));
            }
        };
        Ok(Poll::Work(Box::new(Lease {
            assignment_id: v
                .get("assignment_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            experiment_id: exp.to_owned(),
            unit_id,
            tenant_id: field("tenant_id")?,
            label: field("experiment_id")?,
            manifest_sha256: field("manifest_sha256")?.to_ascii_lowercase(),
            created_at: field("created_at")?,
            payload,
        })))
    }

    /// `POST /workers/{wid}/assignments/{unit}/result` with the exact body
    /// bytes (§2.7). A 409 `result_already_submitted` naming the existing
    /// result counts as accepted.
    pub async fn submit(
        &self,
        worker_id: &str,
        unit_id: &str,
        body: Vec<u8>,
    ) -> Result<Submitted, ClientError> {
        let route = format!("/api/v0/workers/{worker_id}/assignments/{unit_id}/result");
        let (status, out) = self
            .send(
                reqwest::Method::POST,
                &route,
                Some(body),
                true,
                MAX_JSON_BYTES,
            )
            .await?;
        if status == 409 {
            let e = Client::status_error(&route, status, &out);
            if let ClientError::Status { details, .. } = &e
                && let Some(rid) = details.get("existing_result_id").and_then(Value::as_str)
            {
                return Ok(Submitted::Accepted {
                    result_id: rid.to_owned(),
                    unit_status_after: String::new(),
                });
            }
            return Err(e);
        }
        if status != 201 {
            return Err(Client::status_error(&route, status, &out));
        }
        let v = json::parse(&out).map_err(|e| Client::malformed(&route, e.to_string()))?;
        Ok(Submitted::Accepted {
            result_id: Client::req_str(&v, "result_id", &route)?,
            unit_status_after: Client::req_str(&v, "unit_status_after", &route)?,
        })
    }

    /// `POST /workers/{wid}/assignments/{unit}/refuse` (§2.8). 404 and 409
    /// (already resolved) are no-ops.
    pub async fn refuse(
        &self,
        worker_id: &str,
        unit_id: &str,
        kind: &str,
        reason: &str,
        assignment_id: Option<&str>,
    ) -> Result<(), ClientError> {
        let route = format!("/api/v0/workers/{worker_id}/assignments/{unit_id}/refuse");
        let mut body = Object::new();
        body.insert("kind".into(), Value::from(kind));
        body.insert("reason".into(), Value::from(reason));
        if let Some(a) = assignment_id {
            body.insert("assignment_id".into(), Value::from(a));
        }
        match self
            .json_call(
                reqwest::Method::POST,
                &route,
                Some(&Value::Object(body)),
                true,
                &[200],
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.status(), Some(404 | 409)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `GET /workers/{wid}/results/{rid}/canonical-receipt` (§2.9).
    pub async fn canonical_receipt(
        &self,
        worker_id: &str,
        result_id: &str,
    ) -> Result<ReceiptState, ClientError> {
        let route = format!("/api/v0/workers/{worker_id}/results/{result_id}/canonical-receipt");
        let (status, out) = self
            .send(reqwest::Method::GET, &route, None, true, MAX_JSON_BYTES)
            .await?;
        match status {
            200 => {
                let v = json::parse(&out).map_err(|e| Client::malformed(&route, e.to_string()))?;
                let b64 = Client::req_str(&v, "cose_signed_blob_b64", &route)?;
                let blob = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|e| Client::malformed(&route, format!("cose_signed_blob_b64: {e}")))?;
                Ok(ReceiptState::Issued(blob))
            }
            404 => Ok(ReceiptState::Pending),
            410 => {
                let e = Client::status_error(&route, status, &out);
                let reason = match &e {
                    ClientError::Status { details, code, .. } => details
                        .get("reason")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| code.clone()),
                    _ => String::new(),
                };
                Ok(ReceiptState::WillNotIssue(reason))
            }
            _ => Err(Client::status_error(&route, status, &out)),
        }
    }

    /// `GET /packages/by-manifest/{hash}`: the gzip'd tar bytes.
    pub async fn package_by_manifest(&self, manifest_sha256: &str) -> Result<Vec<u8>, ClientError> {
        let route = format!(
            "/api/v0/packages/by-manifest/{}",
            manifest_sha256.to_ascii_lowercase()
        );
        if !is_hex64(manifest_sha256) {
            return Err(Client::malformed(&route, "not a manifest hash"));
        }
        let (status, out) = self
            .send(reqwest::Method::GET, &route, None, true, MAX_PACKAGE_BYTES)
            .await?;
        if status != 200 {
            return Err(Client::status_error(&route, status, &out));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_values_never_repeat_for_identical_requests() {
        let mut c = CreatedClock::default();
        let a = c.pick("k".into(), 1000);
        let b = c.pick("k".into(), 1000);
        let d = c.pick("k".into(), 1001);
        let e = c.pick("k".into(), 1001);
        let other = c.pick("j".into(), 1000);
        assert_eq!((a, b, d, e, other), (1000, 999, 1001, 998, 1000));
    }

    #[test]
    fn base_url_forms() {
        let key = TenantKey::from_seed([1; 32]);
        let c = Client::new(
            "http://127.0.0.1:8080/",
            key.clone(),
            Duration::from_secs(1),
        )
        .expect("valid");
        assert_eq!(c.authority(), "127.0.0.1:8080");
        assert_eq!(c.prefix, "");
        let c = Client::new(
            "http://Example.org/pre/fix/",
            key.clone(),
            Duration::from_secs(1),
        )
        .expect("valid");
        assert_eq!(
            (c.authority(), c.prefix.as_str()),
            ("example.org", "/pre/fix")
        );
        assert!(Client::new("ftp://x", key.clone(), Duration::from_secs(1)).is_err());
        assert!(Client::new("http://x/?q=1", key, Duration::from_secs(1)).is_err());
        assert!(is_unit_id("u-1_A") && !is_unit_id("../x") && !is_unit_id(""));
    }
}
