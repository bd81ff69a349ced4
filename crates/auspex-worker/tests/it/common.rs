//! Shared plumbing: a real in-process coordinator, a tenant that uploads
//! signed manifests for the fixture packages, and workers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auspex_coordinator::{Config, RunningCoordinator, serve};
use auspex_crypto::http_sig::sign_request;
use auspex_crypto::keys::TenantKey;
use auspex_crypto::manifest::sign_manifest;
use auspex_wire::manifest::{SdkProfile, parse_manifest};
use auspex_worker::package::LocalSource;
use auspex_worker::{KeySource, Limits, WorkerConfig};
use serde_json::{Value, json};

pub const TENANT: &str = "acme-lab";

static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/packages")
        .join(name)
}

pub fn tenant_key() -> TenantKey {
    TenantKey::from_seed([7; 32])
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

/// A coordinator plus a staging directory for packages (a
/// [`LocalSource`] every worker shares).
pub struct Net {
    pub dir: tempfile::TempDir,
    server: Option<RunningCoordinator>,
    config: Config,
    pub http: reqwest::Client,
    pub staging: PathBuf,
}

/// An uploaded, approved experiment.
pub struct Experiment {
    pub id: String,
    pub label: String,
    pub hash: String,
    pub package_dir: PathBuf,
}

impl Net {
    pub async fn start(f: impl FnOnce(Config) -> Config) -> Net {
        let dir = tempfile::tempdir().expect("test step");
        let config = f(Config::new(dir.path().join("coordinator")).auto_approve(true));
        let server = serve(config.clone()).await.expect("test step");
        let config = config.bind(server.addr());
        let staging = dir.path().join("staging");
        std::fs::create_dir_all(&staging).expect("test step");
        let net = Net {
            dir,
            server: Some(server),
            config,
            http: reqwest::Client::new(),
            staging,
        };
        let r = net
            .maintainer(
                "POST",
                "/api/v0/tenants",
                Some(&json!({"tenant_id": TENANT, "maintainer_pubkey": tenant_key().public_hex()})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        net
    }

    pub fn server(&self) -> &RunningCoordinator {
        self.server.as_ref().expect("the coordinator is running")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.config.bind)
    }

    /// Stops the coordinator (state kept).
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// Starts it again on the same address and state directory.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.server = Some(serve(self.config.clone()).await.expect("test step"));
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("test step");
        let status = r.status().as_u16();
        let text = r.text().await.expect("test step");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, body, text }
    }

    pub async fn maintainer(&self, method: &str, target: &str, body: Option<&Value>) -> Resp {
        let token = self.server().state().maintainer_token().to_owned();
        let mut rb = self
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("test step"),
                format!("{}{target}", self.url()),
            )
            .bearer_auth(token);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        self.send(rb).await
    }

    /// A request signed by the tenant key.
    pub async fn tenant(&self, method: &str, target: &str, body: Option<&Value>) -> Resp {
        let bytes = body
            .map(|b| serde_json::to_vec(b).expect("test step"))
            .unwrap_or_default();
        let n = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 200;
        let h = sign_request(
            &tenant_key(),
            method,
            target,
            &self.config.bind.to_string(),
            &bytes,
            now() - n as i64,
        );
        let mut rb = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("test step"),
            format!("{}{target}", self.url()),
        );
        for (k, v) in h.header_pairs() {
            rb = rb.header(k, v);
        }
        if !bytes.is_empty() {
            rb = rb.header("content-type", "application/json").body(bytes);
        }
        self.send(rb).await
    }

    /// Copies the fixture package, pins its digest in a signed manifest
    /// (`command`), uploads it (auto-approved) and stages the package with
    /// its `manifest.json` under `<staging>/<manifest hash>/`.
    pub async fn experiment(
        &self,
        label: &str,
        fixture_name: &str,
        command: &[&str],
        rf: u32,
    ) -> Experiment {
        let pkg = self.dir.path().join("packages-src").join(label);
        copy_dir(&fixture(fixture_name), &pkg);
        let digest = auspex_wire::package::package_digest(&pkg)
            .expect("test step")
            .sha256;
        let manifest = json!({
            "schema_version": "0.1",
            "tenant_id": TENANT,
            "tenant_maintainer_contact": "Alice <alice@example.com>",
            "experiment_id": label,
            "research_goal_paragraph": "A goal paragraph that is long enough to pass the fifty character minimum.",
            "models": [{"id": "m", "version": "1", "local_weights_required": false}],
            "prompt_set_characteristics": "Short prompts.",
            "expected_duration_hours": 1,
            "replication_factor": rf,
            "work_unit_source": {"kind": "static", "tarball_sha256": "0".repeat(64)},
            "executor": {"command": command, "package_sha256": digest},
            "reducer": {"kind": "builtin_hash_agreement"}
        });
        let text = serde_json::to_vec(&manifest).expect("test step");
        let parsed = parse_manifest(&text).expect("test step");
        let sig = sign_manifest(&parsed, &tenant_key(), SdkProfile::V0_5_5).expect("test step");
        let sig = json!({"sig_v": sig.sig_v, "maintainer_pubkey": sig.maintainer_pubkey, "signature": sig.signature});
        let r = self
            .tenant(
                "POST",
                "/api/v0/experiments",
                Some(&json!({"manifest": manifest, "signature": sig})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.body["experiment_id"]
            .as_str()
            .expect("test step")
            .to_owned();
        let hash = r.body["manifest_hash"]
            .as_str()
            .expect("test step")
            .to_owned();
        assert_eq!(hash, parsed.manifest_hash());
        let staged = self.staging.join(&hash);
        copy_dir(&pkg, &staged);
        std::fs::write(
            staged.join("manifest.json"),
            serde_json::to_vec_pretty(&manifest).expect("test step"),
        )
        .expect("test step");
        Experiment {
            id,
            label: label.to_owned(),
            hash,
            package_dir: pkg,
        }
    }

    /// `POST /api/v0/packages` with the SDK's deterministic archive of the
    /// experiment's package (0.6.67 `package push`).
    pub async fn push_package(&self, exp: &Experiment) -> Resp {
        let archive =
            auspex_wire::package::build_package_archive(&exp.package_dir).expect("test step");
        let n = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 200;
        let target = "/api/v0/packages";
        let h = sign_request(
            &tenant_key(),
            "POST",
            target,
            &self.config.bind.to_string(),
            &archive.bytes,
            now() - n as i64,
        );
        let mut rb = self
            .http
            .post(format!("{}{target}", self.url()))
            .header("content-type", "application/gzip")
            .header("x-package-digest", archive.digest.sha256.as_str());
        for (k, v) in h.header_pairs() {
            rb = rb.header(k, v);
        }
        self.send(rb.body(archive.bytes)).await
    }

    pub async fn submit(&self, exp: &Experiment, units: &[(&str, Value)]) {
        let units: Vec<Value> = units
            .iter()
            .map(|(id, payload)| {
                json!({"schema_version": "0.1", "unit_id": id, "tenant_id": TENANT,
                       "experiment_id": exp.label, "manifest_sha256": exp.hash, "payload": payload})
            })
            .collect();
        let r = self
            .tenant(
                "POST",
                &format!("/api/v0/experiments/{}/work-units", exp.id),
                Some(&json!({ "work_units": units })),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }

    pub async fn units(&self, exp: &Experiment) -> Value {
        let r = self
            .tenant(
                "GET",
                &format!("/api/v0/experiments/{}/work-units", exp.id),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    /// Waits until `done(work-units listing)` holds.
    pub async fn wait_units(
        &self,
        exp: &Experiment,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.units(exp).await;
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting; units: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every unit `completed`.
    pub async fn wait_completed(&self, exp: &Experiment, n: usize, timeout: Duration) -> Value {
        self.wait_units(exp, timeout, |v| {
            v["work_units"]
                .as_array()
                .is_some_and(|a| a.len() == n && a.iter().all(|u| u["status"] == "completed"))
        })
        .await
    }

    /// A worker config for this coordinator: own key and work dir, fast
    /// polls, packages from the staging directory, small limits.
    pub fn worker_config(&self, name: &str, seed: u8) -> WorkerConfig {
        let work = self.dir.path().join("workers").join(name);
        let mut c = WorkerConfig::new(
            self.url(),
            KeySource::Key(TenantKey::from_seed([seed; 32])),
            work,
        );
        c.poll_interval = Duration::from_millis(100);
        c.heartbeat_interval = Duration::from_secs(1);
        c.max_backoff = Duration::from_secs(1);
        c.shutdown_grace = Duration::from_secs(10);
        c.limits = small_limits();
        c.package_sources = vec![Arc::new(LocalSource {
            root: self.staging.clone(),
        })];
        c.auto_fetch = false;
        c
    }

    /// The coordinator's receipt-signing key.
    pub fn coordinator_pubkey(&self) -> [u8; 32] {
        let hex = self.server().state().key().public_hex().to_owned();
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("test step");
        }
        out
    }
}

pub fn small_limits() -> Limits {
    Limits {
        wall_clock: Duration::from_secs(20),
        cpu_seconds: 20,
        address_space_bytes: 1 << 30,
        open_files: 128,
        processes: 64,
        file_size_bytes: 8 << 20,
        scratch_bytes: 16 << 20,
        output_bytes: 1 << 20,
        stderr_tail_bytes: 4096,
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("test step");
    for e in std::fs::read_dir(from).expect("test step") {
        let e = e.expect("test step");
        let dest = to.join(e.file_name());
        if e.file_type().expect("test step").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("test step");
        }
    }
}

/// Waits until `f()` holds.
pub async fn wait_for(what: &str, timeout: Duration, f: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
