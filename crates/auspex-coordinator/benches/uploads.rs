//! Coordinator throughput (issue 5): signed result uploads per second with
//! worker-signature verification and consensus (10,000 units × replication
//! 3, three synthetic workers, several concurrent HTTP clients on
//! loopback), results paging over 100k rows, and an attestation over 100k
//! units. `cargo bench -p auspex-coordinator --bench uploads` runs the full
//! sizes; run as a test (no `--bench`) it shrinks to a few seconds.

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auspex_coordinator::{Config, serve};
use auspex_crypto::http_sig::sign_request;
use auspex_crypto::keys::TenantKey;
use auspex_crypto::manifest::sign_manifest;
use auspex_crypto::worker_sig::{SchemaVersion, SignedResult};
use auspex_wire::manifest::{SdkProfile, parse_manifest};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

const TENANT: &str = "bench-lab";
const CLIENTS: usize = 16;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

struct Ctx {
    base: String,
    authority: String,
    http: reqwest::Client,
}

impl Ctx {
    /// A signed request prepared ahead of time: (method, target, headers, body).
    fn prepare(&self, key: &TenantKey, method: &str, target: &str, body: Vec<u8>) -> Prepared {
        let h = sign_request(key, method, target, &self.authority, &body, now());
        let headers = h
            .header_pairs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        (method.to_owned(), target.to_owned(), headers, body)
    }

    async fn send(&self, req: &Prepared) -> (u16, Value) {
        let (method, target, headers, body) = req;
        let mut rb = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            format!("{}{target}", self.base),
        );
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        if !body.is_empty() {
            rb = rb
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let r = rb.send().await.expect("request");
        let status = r.status().as_u16();
        let bytes = r.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn signed(
        &self,
        key: &TenantKey,
        method: &str,
        target: &str,
        body: Option<&Value>,
    ) -> Value {
        let bytes = body
            .map(|b| serde_json::to_vec(b).expect("json"))
            .unwrap_or_default();
        let req = self.prepare(key, method, target, bytes);
        let (status, v) = self.send(&req).await;
        assert!(status < 300, "{method} {target}: {status} {v}");
        v
    }
}

struct Worker {
    key: TenantKey,
    signing: SigningKey,
    id: String,
}

impl Worker {
    async fn enroll(ctx: &Ctx, seed: u8) -> Worker {
        let key = TenantKey::from_seed([seed; 32]);
        let r = ctx
            .http
            .post(format!("{}/api/v0/workers/enroll", ctx.base))
            .json(&json!({"pubkey_hex": key.public_hex(),
                "capabilities": {"os": "linux", "worker_version": "0.2.80"}}))
            .send()
            .await
            .expect("enroll");
        assert_eq!(r.status().as_u16(), 201);
        let v: Value = r.json().await.expect("json");
        Worker {
            signing: SigningKey::from_bytes(&[seed; 32]),
            id: v["worker_id"].as_str().expect("worker_id").to_owned(),
            key,
        }
    }

    /// A v3 result body signed by this worker (same answer from every
    /// worker, so the replicas agree).
    fn result_body(&self, unit_id: &str) -> Vec<u8> {
        let payload = json!({"answer": unit_id});
        let p = auspex_wire::json::parse(payload.to_string().as_bytes()).expect("payload");
        let served = auspex_wire::json::Object::new();
        let pubkey = self.key.public_hex();
        let at = "2026-07-01T12:00:00.000001+00:00";
        let sig = SignedResult {
            schema_version: SchemaVersion::V3,
            served_weights: Some(&served),
            ran_under: Some("permissive"),
            generation_options: Some(&[]),
            ..SignedResult::v0(unit_id, &pubkey, at, 0, &p)
        }
        .sign(&self.signing);
        serde_json::to_vec(&json!({"unit_id": unit_id,
            "worker_pubkey": pubkey, "completed_at": at, "exit_code": 0, "payload": payload,
            "worker_signature": sig, "schema_version": 3, "served_weights": {},
            "ran_under": "permissive", "generation_options": []}))
        .expect("json")
    }
}

fn manifest(key: &TenantKey, label: &str, rf: u32) -> Value {
    let m = json!({
        "schema_version": "0.1",
        "tenant_id": TENANT,
        "tenant_maintainer_contact": "Bench <bench@example.com>",
        "experiment_id": label,
        "research_goal_paragraph": "A goal paragraph that is long enough to pass the fifty character minimum.",
        "models": [{"id": "m", "version": "1", "local_weights_required": false}],
        "prompt_set_characteristics": "Short prompts.",
        "expected_duration_hours": 1,
        "replication_factor": rf,
        "work_unit_source": {"kind": "static", "tarball_sha256": "0".repeat(64)},
        "executor": {"command": ["python", "x.py"]},
        "reducer": {"kind": "builtin_hash_agreement"}
    });
    let parsed = parse_manifest(&serde_json::to_vec(&m).expect("json")).expect("manifest");
    let s = sign_manifest(&parsed, key, SdkProfile::V0_5_5).expect("signed");
    json!({"manifest": m, "signature": {"sig_v": s.sig_v,
        "maintainer_pubkey": s.maintainer_pubkey, "signature": s.signature}})
}

/// An approved experiment with `n` units; returns its id.
async fn experiment(ctx: &Ctx, key: &TenantKey, label: &str, rf: u32, n: usize) -> String {
    let created = ctx
        .signed(
            key,
            "POST",
            "/api/v0/experiments",
            Some(&manifest(key, label, rf)),
        )
        .await;
    let exp = created["experiment_id"].as_str().expect("id").to_owned();
    let hash = created["manifest_hash"].as_str().expect("hash").to_owned();
    let ids: Vec<usize> = (0..n).collect();
    for chunk in ids.chunks(2_000) {
        let units: Vec<Value> = chunk
            .iter()
            .map(|i| {
                json!({"schema_version": "0.1", "unit_id": format!("u-{i:06}"),
                    "tenant_id": TENANT, "experiment_id": label,
                    "manifest_sha256": hash, "payload": {"i": i}})
            })
            .collect();
        ctx.signed(
            key,
            "POST",
            &format!("/api/v0/experiments/{exp}/work-units"),
            Some(&json!({ "work_units": units })),
        )
        .await;
    }
    exp
}

/// How long a request signed ahead of time is used before it is signed
/// again (the coordinator accepts `created` within ±300 s).
const PRESIGNED_FOR: Duration = Duration::from_secs(200);

/// A request as sent: (method, target, headers, body).
type Prepared = (String, String, Vec<(String, String)>, Vec<u8>);

/// Every worker answers every unit: `CLIENTS` concurrent clients, each
/// bound to one worker, loop poll (lease) → signed upload until there is
/// no more work. Everything a client sends is prepared before the clock
/// starts — the v3 worker signatures and the RFC 9421 request signatures
/// (a request older than [`PRESIGNED_FOR`] is signed again on the spot) —
/// so the clock measures the coordinator, not the client's signing; the
/// coordinator still verifies every signature. `AUSPEX_BENCH_SIGN_INLINE=1`
/// signs each request when it is sent instead (the method of the earlier
/// measurements). Returns uploads/s (each upload paid for its lease poll
/// as well).
async fn upload_all(ctx: &Arc<Ctx>, workers: &[Worker], n: usize) -> f64 {
    let inline = std::env::var_os("AUSPEX_BENCH_SIGN_INLINE").is_some();
    let mut uploads: std::collections::HashMap<(usize, String), (Vec<u8>, Option<Prepared>)> =
        std::collections::HashMap::new();
    for (wi, w) in workers.iter().enumerate() {
        for i in 0..n {
            let unit = format!("u-{i:06}");
            let body = w.result_body(&unit);
            let target = format!("/api/v0/workers/{}/assignments/{unit}/result", w.id);
            let req = (!inline).then(|| ctx.prepare(&w.key, "POST", &target, body.clone()));
            uploads.insert((wi, unit), (body, req));
        }
    }
    let uploads = Arc::new(uploads);
    let signed_at = Instant::now();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let wi = c % workers.len();
        let (ctx, uploads) = (ctx.clone(), uploads.clone());
        let (key, id) = (workers[wi].key.clone(), workers[wi].id.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            let lease_target = format!("/api/v0/workers/{id}/assignments");
            let mut lease = (
                Instant::now(),
                ctx.prepare(&key, "GET", &lease_target, Vec::new()),
            );
            loop {
                if inline || lease.0.elapsed() > PRESIGNED_FOR {
                    lease = (
                        Instant::now(),
                        ctx.prepare(&key, "GET", &lease_target, Vec::new()),
                    );
                }
                let (status, v) = ctx.send(&lease.1).await;
                assert_eq!(status, 200, "{v}");
                let Some(unit) = v["work_unit"]["unit_id"].as_str() else {
                    return done;
                };
                let (body, prepared) = &uploads[&(wi, unit.to_owned())];
                let (status, v) = match prepared {
                    Some(req) if signed_at.elapsed() < PRESIGNED_FOR => ctx.send(req).await,
                    _ => {
                        let target = format!("/api/v0/workers/{id}/assignments/{unit}/result");
                        ctx.send(&ctx.prepare(&key, "POST", &target, body.clone()))
                            .await
                    }
                };
                assert_eq!(status, 201, "{unit}: {v}");
                done += 1;
            }
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("client");
    }
    assert_eq!(total, n * workers.len());
    total as f64 / t.elapsed().as_secs_f64()
}

async fn run(units: usize, big: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(Config::new(dir.path()).auto_approve(true))
        .await
        .expect("coordinator");
    let ctx = Arc::new(Ctx {
        base: server.url(),
        authority: server.addr().to_string(),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(CLIENTS * 2)
            .build()
            .expect("client"),
    });
    let key = TenantKey::from_seed([3; 32]);
    let r = ctx
        .http
        .post(format!("{}/api/v0/tenants", ctx.base))
        .bearer_auth(server.state().maintainer_token())
        .json(&json!({"tenant_id": TENANT, "maintainer_pubkey": key.public_hex()}))
        .send()
        .await
        .expect("tenant");
    assert_eq!(r.status().as_u16(), 201);
    let mut workers = Vec::new();
    for seed in [101, 102, 103] {
        workers.push(Worker::enroll(&ctx, seed).await);
    }

    // 1. units × replication 3.
    let exp = experiment(&ctx, &key, "bench-rf3", 3, units).await;
    let upload_rate = upload_all(&ctx, &workers, units).await;
    let receipts = ctx
        .signed(
            &key,
            "GET",
            &format!("/api/v0/experiments/{exp}/receipts"),
            None,
        )
        .await;
    let n_receipts = receipts["receipts"].as_array().map_or(0, Vec::len);
    let g = server.state().db().group_commit_stats();
    println!(
        "uploads: {units} units x 3 = {} signed results from {CLIENTS} clients: \
         {upload_rate:.0} uploads/s (each with its lease poll); {n_receipts} receipts",
        units * 3,
    );
    println!(
        "  group commit: {} jobs in {} commits ({:.1} per commit); writer busy {:.1} s \
         running jobs + {:.1} s committing",
        g.jobs,
        g.commits,
        g.jobs as f64 / g.commits.max(1) as f64,
        g.running.as_secs_f64(),
        g.committing.as_secs_f64()
    );

    // 2. `big` units × replication 1: paging and attestation.
    let exp = experiment(&ctx, &key, "bench-big", 1, big).await;
    let big_rate = upload_all(&ctx, &workers[..1], big).await;
    println!("uploads: {big} units x 1: {big_rate:.0} uploads/s");
    let t = Instant::now();
    let mut rows = 0usize;
    let mut cursor: Option<String> = None;
    loop {
        let mut target = format!("/api/v0/experiments/{exp}/results?include=raw&limit=500");
        if let Some(c) = &cursor {
            let enc: String = c
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            target.push_str(&format!("&cursor={enc}"));
        }
        let page = ctx.signed(&key, "GET", &target, None).await;
        rows += page["results"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let paging = t.elapsed();
    assert_eq!(rows, big);
    println!(
        "paging: {rows} rows in {:.2} s ({:.0} rows/s, pages of 500)",
        paging.as_secs_f64(),
        rows as f64 / paging.as_secs_f64()
    );
    let t = Instant::now();
    let cp = ctx
        .signed(
            &key,
            "GET",
            &format!("/api/v0/experiments/{exp}/attestation?checkpoint=true"),
            None,
        )
        .await;
    let checkpoint = t.elapsed();
    assert!(
        cp["cose_signed_blob_b64"].as_str().is_some() || cp.is_object(),
        "{cp}"
    );
    let t = Instant::now();
    ctx.signed(
        &key,
        "POST",
        &format!("/api/v0/experiments/{exp}/actions/finalize-submissions"),
        Some(&json!({})),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let req = ctx.prepare(
            &key,
            "GET",
            &format!("/api/v0/experiments/{exp}/attestation"),
            Vec::new(),
        );
        let (status, _) = ctx.send(&req).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no attestation: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fin = t.elapsed();
    println!(
        "attestation over {big} units: checkpoint {:.3} s; finalize → final attestation {:.3} s",
        checkpoint.as_secs_f64(),
        fin.as_secs_f64()
    );
    server.shutdown().await;
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (units, big) = if bench { (10_000, 100_000) } else { (30, 100) };
    // `AUSPEX_BENCH_UNITS` / `AUSPEX_BENCH_BIG` override the two sizes.
    let size = |var: &str, default: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (units, big) = (
        size("AUSPEX_BENCH_UNITS", units),
        size("AUSPEX_BENCH_BIG", big),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(units, big));
}
