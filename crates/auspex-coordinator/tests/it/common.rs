//! Shared test plumbing: a coordinator on a temp state dir, signed
//! requests, manifests, synthetic workers.
#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use auspex_coordinator::{Config, RunningCoordinator, serve};
use auspex_crypto::http_sig::sign_request;
use auspex_crypto::keys::TenantKey;
use auspex_crypto::manifest::sign_manifest;
use auspex_crypto::worker_sig::{SchemaVersion, SignedResult};
use auspex_wire::manifest::{SdkProfile, parse_manifest};
use ed25519_dalek::SigningKey;
use reqwest::Method;
use serde_json::{Value, json};

pub const TENANT: &str = "acme-lab";

static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn tenant_key() -> TenantKey {
    TenantKey::from_seed([7; 32])
}

pub fn other_key() -> TenantKey {
    TenantKey::from_seed([8; 32])
}

pub struct Net {
    pub dir: tempfile::TempDir,
    pub server: RunningCoordinator,
    pub http: reqwest::Client,
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["detail"]["error"]["code"].as_str().unwrap_or("")
    }
}

impl Net {
    pub async fn start() -> Net {
        Net::start_with(|c| c).await
    }

    pub async fn start_with(f: impl FnOnce(Config) -> Config) -> Net {
        let dir = tempfile::tempdir().expect("test step");
        Net::start_in(dir, f).await
    }

    pub async fn start_in(dir: tempfile::TempDir, f: impl FnOnce(Config) -> Config) -> Net {
        let server = serve(f(Config::new(dir.path()))).await.expect("test step");
        Net {
            dir,
            server,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, target: &str) -> String {
        format!("{}{}", self.server.url(), target)
    }

    pub fn authority(&self) -> String {
        self.server.addr().to_string()
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("test step");
        let status = r.status().as_u16();
        let text = r.text().await.expect("test step");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, body, text }
    }

    /// A request signed by `key` at time `created`.
    pub async fn signed_at(
        &self,
        key: &TenantKey,
        method: &str,
        target: &str,
        body: Option<&Value>,
        created: i64,
    ) -> Resp {
        let bytes = body
            .map(|b| serde_json::to_vec(b).expect("test step"))
            .unwrap_or_default();
        self.signed_raw(key, method, target, bytes, created).await
    }

    pub async fn signed_raw(
        &self,
        key: &TenantKey,
        method: &str,
        target: &str,
        bytes: Vec<u8>,
        created: i64,
    ) -> Resp {
        let h = sign_request(key, method, target, &self.authority(), &bytes, created);
        let mut rb = self.http.request(
            Method::from_bytes(method.as_bytes()).expect("test step"),
            self.url(target),
        );
        for (n, v) in h.header_pairs() {
            rb = rb.header(n, v);
        }
        if !bytes.is_empty() {
            rb = rb.header("content-type", "application/json").body(bytes);
        }
        self.send(rb).await
    }

    /// Signed with a `created` that differs from call to call, so two
    /// identical requests never carry identical signatures.
    pub async fn signed(
        &self,
        key: &TenantKey,
        method: &str,
        target: &str,
        body: Option<&Value>,
    ) -> Resp {
        let n = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 240;
        self.signed_at(key, method, target, body, now() - n as i64)
            .await
    }

    pub async fn get(&self, key: &TenantKey, target: &str) -> Resp {
        self.signed(key, "GET", target, None).await
    }

    pub async fn post(&self, key: &TenantKey, target: &str, body: &Value) -> Resp {
        self.signed(key, "POST", target, Some(body)).await
    }

    pub async fn maintainer(&self, method: &str, target: &str, body: Option<&Value>) -> Resp {
        let token = self.server.state().maintainer_token().to_owned();
        let mut rb = self
            .http
            .request(
                Method::from_bytes(method.as_bytes()).expect("test step"),
                self.url(target),
            )
            .bearer_auth(token);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        self.send(rb).await
    }

    pub async fn anonymous(&self, method: &str, target: &str, body: Option<&Value>) -> Resp {
        let mut rb = self.http.request(
            Method::from_bytes(method.as_bytes()).expect("test step"),
            self.url(target),
        );
        if let Some(b) = body {
            rb = rb.json(b);
        }
        self.send(rb).await
    }

    pub async fn add_tenant(&self, id: &str, key: &TenantKey) {
        let r = self
            .maintainer(
                "POST",
                "/api/v0/tenants",
                Some(&json!({"tenant_id": id, "maintainer_pubkey": key.public_hex()})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }

    /// Uploads a signed manifest; returns (experiment_id, manifest_hash).
    pub async fn upload(
        &self,
        key: &TenantKey,
        tenant: &str,
        label: &str,
        rf: u32,
    ) -> (String, String) {
        let (manifest, sig) = signed_manifest(key, tenant, label, rf, "builtin_hash_agreement");
        let r = self
            .post(
                key,
                "/api/v0/experiments",
                &json!({"manifest": manifest, "signature": sig}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        (
            r.body["experiment_id"]
                .as_str()
                .expect("test step")
                .to_owned(),
            r.body["manifest_hash"]
                .as_str()
                .expect("test step")
                .to_owned(),
        )
    }

    pub async fn approve(&self, exp: &str, query: &str) -> Resp {
        self.maintainer(
            "POST",
            &format!("/api/v0/experiments/{exp}/actions/approve{query}"),
            None,
        )
        .await
    }

    /// Tenant + approved experiment with replication `rf`.
    pub async fn ready(&self, label: &str, rf: u32) -> (String, String) {
        let key = tenant_key();
        if self.get(&key, "/api/v0/auth/whoami").await.body["credential_class"] != "researcher" {
            self.add_tenant(TENANT, &key).await;
        }
        let (exp, hash) = self.upload(&key, TENANT, label, rf).await;
        let r = self.approve(&exp, "").await;
        assert_eq!(r.status, 200, "{}", r.text);
        (exp, hash)
    }

    pub async fn submit(&self, exp: &str, label: &str, hash: &str, ids: &[&str]) -> Resp {
        let units: Vec<Value> = ids
            .iter()
            .map(|id| unit(id, TENANT, label, hash, json!({"i": id})))
            .collect();
        self.post(
            &tenant_key(),
            &format!("/api/v0/experiments/{exp}/work-units"),
            &json!({ "work_units": units }),
        )
        .await
    }
}

pub fn unit(id: &str, tenant: &str, label: &str, hash: &str, payload: Value) -> Value {
    json!({"schema_version": "0.1", "unit_id": id, "tenant_id": tenant, "experiment_id": label,
           "manifest_sha256": hash, "payload": payload})
}

pub fn manifest_value(tenant: &str, label: &str, rf: u32, reducer: &str) -> Value {
    json!({
        "schema_version": "0.1",
        "tenant_id": tenant,
        "tenant_maintainer_contact": "Alice <alice@example.com>",
        "experiment_id": label,
        "research_goal_paragraph": "A goal paragraph that is long enough to pass the fifty character minimum.",
        "models": [{"id": "m", "version": "1", "local_weights_required": false}],
        "prompt_set_characteristics": "Short prompts.",
        "expected_duration_hours": 1,
        "replication_factor": rf,
        "work_unit_source": {"kind": "static", "tarball_sha256": "0".repeat(64)},
        "executor": {"command": ["python", "x.py"]},
        "reducer": {"kind": reducer}
    })
}

pub fn sign_value(key: &TenantKey, manifest: &Value) -> Value {
    let m = parse_manifest(&serde_json::to_vec(manifest).expect("test step")).expect("test step");
    let sig = sign_manifest(&m, key, SdkProfile::V0_5_5).expect("test step");
    json!({"sig_v": sig.sig_v, "maintainer_pubkey": sig.maintainer_pubkey, "signature": sig.signature})
}

pub fn signed_manifest(
    key: &TenantKey,
    tenant: &str,
    label: &str,
    rf: u32,
    reducer: &str,
) -> (Value, Value) {
    let m = manifest_value(tenant, label, rf, reducer);
    let s = sign_value(key, &m);
    (m, s)
}

/// A synthetic worker with its own key.
pub struct Worker {
    pub key: TenantKey,
    pub signing: SigningKey,
    pub id: String,
}

impl Worker {
    pub fn pubkey(&self) -> String {
        self.key.public_hex()
    }

    pub async fn enroll(net: &Net, seed: u8) -> Worker {
        let key = TenantKey::from_seed([seed; 32]);
        let r = net
            .anonymous(
                "POST",
                "/api/v0/workers/enroll",
                Some(&json!({"pubkey_hex": key.public_hex(), "capabilities": {"os": "linux", "worker_version": "0.2.80"}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        Worker {
            signing: SigningKey::from_bytes(&[seed; 32]),
            id: r.body["worker_id"].as_str().expect("test step").to_owned(),
            key,
        }
    }

    pub async fn poll(&self, net: &Net) -> Resp {
        net.get(
            &self.key,
            &format!("/api/v0/workers/{}/assignments", self.id),
        )
        .await
    }

    /// A v3 result body for `unit_id` signed by this worker.
    pub fn result_body(
        &self,
        unit_id: &str,
        assignment_id: Option<&str>,
        payload: Value,
        completed_at: &str,
    ) -> Value {
        let p = auspex_wire::json::parse(
            serde_json::to_string(&payload)
                .expect("test step")
                .as_bytes(),
        )
        .expect("test step");
        let served = auspex_wire::json::Object::new();
        let pubkey = self.pubkey();
        let signed = SignedResult {
            schema_version: SchemaVersion::V3,
            served_weights: Some(&served),
            ran_under: Some("permissive"),
            generation_options: Some(&[]),
            ..SignedResult::v0(unit_id, &pubkey, completed_at, 0, &p)
        };
        let sig = signed.sign(&self.signing);
        let mut b = json!({"unit_id": unit_id, "worker_pubkey": self.pubkey(), "completed_at": completed_at,
            "exit_code": 0, "payload": payload, "worker_signature": sig,
            "schema_version": 3, "served_weights": {}, "ran_under": "permissive", "generation_options": []});
        if let Some(a) = assignment_id {
            b["assignment_id"] = json!(a);
        }
        b
    }

    pub async fn submit(&self, net: &Net, unit_id: &str, body: &Value) -> Resp {
        net.post(
            &self.key,
            &format!("/api/v0/workers/{}/assignments/{unit_id}/result", self.id),
            body,
        )
        .await
    }

    /// Polls once and, if given work, answers with `payload_for(unit_id)`.
    pub async fn work_once(
        &self,
        net: &Net,
        payload_for: &dyn Fn(&str) -> Value,
    ) -> Option<(String, Resp)> {
        let a = self.poll(net).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let unit = a.body["work_unit"]["unit_id"].as_str()?.to_owned();
        let aid = a.body["assignment_id"].as_str().map(str::to_owned);
        let body = self.result_body(
            &unit,
            aid.as_deref(),
            payload_for(&unit),
            "2026-07-01T12:00:00.000001Z",
        );
        let r = self.submit(net, &unit, &body).await;
        Some((unit, r))
    }
}

impl Worker {
    /// A schema-v0 result body (what 0.5.5's bundle verifier re-checks).
    pub fn result_body_v0(
        &self,
        unit_id: &str,
        assignment_id: Option<&str>,
        payload: Value,
        completed_at: &str,
    ) -> Value {
        let p = auspex_wire::json::parse(
            serde_json::to_string(&payload)
                .expect("test step")
                .as_bytes(),
        )
        .expect("test step");
        let pubkey = self.pubkey();
        let sig = SignedResult::v0(unit_id, &pubkey, completed_at, 0, &p).sign(&self.signing);
        let mut b = json!({"unit_id": unit_id, "worker_pubkey": pubkey, "completed_at": completed_at,
            "exit_code": 0, "payload": payload, "worker_signature": sig});
        if let Some(a) = assignment_id {
            b["assignment_id"] = json!(a);
        }
        b
    }

    /// Polls and answers until there is no more work; `v0` picks the
    /// result-signature schema. Returns the units answered.
    pub async fn drain(
        &self,
        net: &Net,
        v0: bool,
        payload_for: &dyn Fn(&str) -> Value,
    ) -> Vec<String> {
        let mut done = Vec::new();
        loop {
            let a = self.poll(net).await;
            assert_eq!(a.status, 200, "{}", a.text);
            let Some(unit) = a.body["work_unit"]["unit_id"].as_str().map(str::to_owned) else {
                return done;
            };
            let aid = a.body["assignment_id"].as_str().map(str::to_owned);
            let at = "2026-07-01T12:00:00.000001+00:00";
            let body = if v0 {
                self.result_body_v0(&unit, aid.as_deref(), payload_for(&unit), at)
            } else {
                self.result_body(&unit, aid.as_deref(), payload_for(&unit), at)
            };
            let r = self.submit(net, &unit, &body).await;
            assert_eq!(r.status, 201, "{unit}: {}", r.text);
            done.push(unit);
        }
    }
}

impl Net {
    /// `finalize-submissions` by the tenant.
    pub async fn finalize(&self, exp: &str) -> Resp {
        self.post(
            &tenant_key(),
            &format!("/api/v0/experiments/{exp}/actions/finalize-submissions"),
            &json!({}),
        )
        .await
    }
}

/// A minimal Rekor v1 stand-in built on `auspex_crypto`'s test log: `POST
/// /api/v1/log/entries` (rekord 0.0.1, `spec.data.content` or
/// `spec.data.hash`), `GET /api/v1/log/entries/{uuid}`. While `down` is
/// set it answers 503.
pub struct FakeRekor {
    pub addr: std::net::SocketAddr,
    pub log: std::sync::Arc<std::sync::Mutex<auspex_crypto::tlog::testlog::TestLog>>,
    pub down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub posts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeRekor {
    pub async fn start() -> FakeRekor {
        use auspex_crypto::tlog::testlog::{LogSigner, TestLog, rekord_body};
        use axum::extract::{Path, State};
        use axum::http::StatusCode;
        use axum::response::IntoResponse;
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;
        use std::sync::atomic::Ordering;

        type Shared = (
            std::sync::Arc<std::sync::Mutex<TestLog>>,
            std::sync::Arc<std::sync::atomic::AtomicBool>,
            std::sync::Arc<std::sync::atomic::AtomicUsize>,
        );
        let mut first = TestLog::new(LogSigner::ed25519([42; 32]), "rekor.test").expect("test log");
        // Someone else's entry first, so ours get non-zero indices (the
        // SDKs print and compare `logIndex` only when it is non-zero).
        first.append(rekord_body(&[0; 32], b"sig", b"key"), now());
        let log = std::sync::Arc::new(std::sync::Mutex::new(first));
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let posts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let shared: Shared = (log.clone(), down.clone(), posts.clone());

        async fn create(
            State(s): State<Shared>,
            body: axum::body::Bytes,
        ) -> axum::response::Response {
            if s.1.load(Ordering::SeqCst) {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            s.2.fetch_add(1, Ordering::SeqCst);
            let v: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(_) => return StatusCode::BAD_REQUEST.into_response(),
            };
            let spec = &v["spec"];
            if v["kind"] != "rekord" || v["apiVersion"] != "0.0.1" {
                return StatusCode::BAD_REQUEST.into_response();
            }
            let digest: [u8; 32] = if let Some(c) = spec["data"]["content"].as_str() {
                let Ok(bytes) = STANDARD.decode(c) else {
                    return StatusCode::BAD_REQUEST.into_response();
                };
                use sha2::Digest as _;
                sha2::Sha256::digest(&bytes).into()
            } else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            let sig = STANDARD
                .decode(spec["signature"]["content"].as_str().unwrap_or(""))
                .unwrap_or_default();
            let key = STANDARD
                .decode(
                    spec["signature"]["publicKey"]["content"]
                        .as_str()
                        .unwrap_or(""),
                )
                .unwrap_or_default();
            let mut log = s.0.lock().unwrap_or_else(|p| p.into_inner());
            let index = log.append(rekord_body(&digest, &sig, &key), now());
            let entry = log.entry(index).expect("entry");
            let text = auspex_wire::json::canonical(&entry.to_value());
            (
                StatusCode::CREATED,
                [("content-type", "application/json")],
                text,
            )
                .into_response()
        }

        async fn fetch(
            State(s): State<Shared>,
            Path(uuid): Path<String>,
        ) -> axum::response::Response {
            let log = s.0.lock().unwrap_or_else(|p| p.into_inner());
            for i in 0..log.size() {
                let entry = log.entry(i).expect("entry");
                if entry.uuid.as_deref() == Some(uuid.as_str()) {
                    let text = auspex_wire::json::canonical(&entry.to_value());
                    return (StatusCode::OK, [("content-type", "application/json")], text)
                        .into_response();
                }
            }
            StatusCode::NOT_FOUND.into_response()
        }

        let app = axum::Router::new()
            .route("/api/v1/log/entries", axum::routing::post(create))
            .route("/api/v1/log/entries/{uuid}", axum::routing::get(fetch))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeRekor {
            addr,
            log,
            down,
            posts,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
