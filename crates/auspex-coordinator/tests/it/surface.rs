//! The activity rollup, SSE, the model catalog and request queues, driver
//! heartbeats, packages and tenant applications.

use std::time::Duration;

use auspex_crypto::http_sig::sign_request;
use auspex_crypto::keys::TenantKey;
use serde_json::{Value, json};

use crate::common::*;

impl Net {
    /// A signed request with extra headers and a raw body.
    async fn signed_with(
        &self,
        key: &TenantKey,
        method: &str,
        target: &str,
        bytes: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let h = sign_request(key, method, target, &self.authority(), &bytes, now());
        let mut rb = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            self.url(target),
        );
        for (n, v) in h.header_pairs() {
            rb = rb.header(n, v);
        }
        for (n, v) in headers {
            rb = rb.header(*n, *v);
        }
        if !bytes.is_empty() {
            rb = rb.body(bytes);
        }
        rb.send().await.expect("send")
    }
}

async fn heartbeat(net: &Net, w: &Worker, caps: Value) {
    let r = net
        .post(
            &w.key,
            &format!("/api/v0/workers/{}/heartbeat", w.id),
            &json!({ "capabilities": caps }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_rollup() {
    let net = Net::start().await;
    let key = tenant_key();
    let (exp, hash) = net.ready("act-one", 2).await;
    let path = format!("/api/v0/experiments/{exp}/activity");
    let r = net.get(&key, &path).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"experiment_id": exp, "active_contributor_count": 0, "total_work_units": 0,
               "work_unit_counts": {}, "completions_total": 0, "replication_target_total": 0,
               "network_active_workers": 0, "required_capabilities": {"models": []},
               "run_phase": "provisioning"})
    );
    net.submit(&exp, "act-one", &hash, &["a1", "a2", "a3"])
        .await;
    let r = net.get(&key, &path).await;
    assert_eq!(r.body["total_work_units"], 3);
    assert_eq!(r.body["work_unit_counts"], json!({"pending": 3}));
    assert_eq!(r.body["replication_target_total"], 6);
    assert_eq!(r.body["run_phase"], "queued");
    assert_eq!(r.body["queue_position"], 1);
    assert_eq!(r.body["queue_depth"], 1);
    assert_eq!(r.body["diverged_unit_count"], 0);
    assert!(r.body.get("last_activity_at").is_none());

    let a = Worker::enroll(&net, 91).await;
    let b = Worker::enroll(&net, 92).await;
    heartbeat(&net, &a, json!({"os": "linux"})).await;
    a.drain(&net, false, &|u| json!({"u": u})).await;
    let r = net.get(&key, &path).await;
    assert_eq!(r.body["network_active_workers"], 1);
    assert_eq!(r.body["work_unit_counts"], json!({"in_progress": 3}));
    assert_eq!(r.body["completions_total"], 3);
    assert_eq!(r.body["active_contributor_count"], 1);
    assert_eq!(r.body["run_phase"], "running");
    assert!(r.body["last_activity_at"].is_string());
    b.drain(&net, false, &|u| json!({"u": u})).await;
    let r = net.get(&key, &path).await;
    assert_eq!(r.body["work_unit_counts"], json!({"completed": 3}));
    assert_eq!(r.body["completions_total"], 6);
    assert_eq!(r.body["active_contributor_count"], 2);

    // Other tenants and anonymous callers: 404; maintainers see it.
    let other = other_key();
    net.add_tenant("other-lab", &other).await;
    let r = net.get(&other, &path).await;
    assert_eq!((r.status, r.code()), (404, "experiment_not_found"));
    let r = net.anonymous("GET", &path, None).await;
    assert_eq!((r.status, r.code()), (404, "experiment_not_found"));
    assert_eq!(net.maintainer("GET", &path, None).await.status, 200);
}

/// Reads SSE text until `pred` holds on what was read (or a timeout).
async fn read_until(resp: &mut reqwest::Response, buf: &mut String, pred: impl Fn(&str) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !pred(buf) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, resp.chunk()).await {
            Ok(Ok(Some(c))) => buf.push_str(&String::from_utf8_lossy(&c)),
            other => panic!("stream ended or timed out ({other:?}); read so far:\n{buf}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_stream_ping_and_resume() {
    let net = Net::start_with(|c| c.sse_keepalive(Duration::from_millis(400))).await;
    let key = tenant_key();
    let (exp, hash) = net.ready("sse-one", 1).await;
    let path = format!("/api/v0/experiments/{exp}/events");
    let mut resp = net
        .signed_with(
            &key,
            "GET",
            &path,
            Vec::new(),
            &[("accept", "text/event-stream")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().ok(),
        Some("text/event-stream")
    );
    assert_eq!(
        resp.headers()["cache-control"].to_str().ok(),
        Some("no-cache")
    );
    let mut buf = String::new();
    read_until(&mut resp, &mut buf, |b| b.contains("\n\n")).await;
    assert!(buf.starts_with(": connected\n\n"), "{buf}");

    net.submit(&exp, "sse-one", &hash, &["s1"]).await;
    let w = Worker::enroll(&net, 93).await;
    w.drain(&net, false, &|_| json!({"x": 1})).await;
    read_until(&mut resp, &mut buf, |b| b.contains("event: receipt.issued")).await;
    let mut parser = auspex_wire::sse::SseParser::new();
    let events: Vec<auspex_wire::sse::SseEvent> =
        buf.lines().filter_map(|l| parser.feed_line(l)).collect();
    let progress = events
        .iter()
        .find(|e| e.event_type == "unit.progress")
        .expect("unit.progress");
    assert!(
        progress
            .data
            .starts_with(&format!("{{\"experiment_id\":\"{exp}\""))
    );
    let data: Value = serde_json::from_str(&progress.data).expect("json");
    assert_eq!(data["unit_id"], "s1");
    assert_eq!(data["unit_status"], "completed");
    let seq: u64 = progress.id.as_deref().expect("id").parse().expect("seq");
    assert!(progress.wakes_driver());
    // Idle: a ping.
    let len = buf.len();
    read_until(&mut resp, &mut buf, |b| b[len..].contains(": ping\n\n")).await;
    drop(resp);

    // Resume after `seq`: the receipt event comes first, nothing older.
    let mut resp = net
        .signed_with(
            &key,
            "GET",
            &path,
            Vec::new(),
            &[("last-event-id", &seq.to_string())],
        )
        .await;
    let mut buf = String::new();
    read_until(&mut resp, &mut buf, |b| b.contains("event: receipt.issued")).await;
    assert!(!buf.contains("event: unit.progress"), "{buf}");
    assert!(!buf.contains("experiment.submitted"), "{buf}");

    // The firehose is maintainer-only; recent events are served.
    let r = net.get(&key, "/api/v0/events").await;
    assert_eq!((r.status, r.code()), (403, "maintainer_required"));
    let r = net
        .maintainer("GET", "/api/v0/events/recent?limit=5", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.body["events"]
            .as_array()
            .is_some_and(|e| !e.is_empty() && e.len() <= 5)
    );
    let r = net
        .maintainer("GET", "/api/v0/events/recent?limit=0", None)
        .await;
    assert_eq!(r.status, 422);
    let r = net
        .get(&key, &format!("/api/v0/experiments/{exp}/events/recent"))
        .await;
    let first = &r.body["events"][0];
    assert_eq!(first["type"], "experiment.submitted");
    assert_eq!(first["experiment_id"], exp.as_str());
    // Shutdown ends open streams.
    let stream = net.signed_with(&key, "GET", &path, Vec::new(), &[]).await;
    let Net { server, .. } = net;
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("shutdown with an open stream");
    drop(stream);
}

#[tokio::test]
async fn catalog_requests_and_driver_heartbeat() {
    let net = Net::start().await;
    let key = tenant_key();
    let (exp, _) = net.ready("cat-one", 1).await;
    let w = Worker::enroll(&net, 94).await;
    heartbeat(
        &net,
        &w,
        json!({"models": ["qwen2.5:0.5b", "mystery:7b"], "ram_total_gb": 16}),
    )
    .await;
    let r = net.get(&key, "/api/v0/models/catalog").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"models": [{"model_id": "mystery:7b", "worker_count": 1},
                          {"model_id": "qwen2.5:0.5b", "worker_count": 1}],
               "total_active_workers": 1})
    );
    assert_eq!(
        net.anonymous("GET", "/api/v0/models/catalog", None)
            .await
            .status,
        403
    );
    let r = net.get(&w.key, "/api/v0/models/supported").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let models = r.body["models"].as_array().expect("models");
    assert_eq!(models[0]["model_id"], "qwen2.5:0.5b");
    assert_eq!(models[0]["status"], "available");
    assert_eq!(r.body["catalog_source"], "curated");
    assert!(
        models
            .iter()
            .any(|m| m["model_id"] == "mystery:7b" && m["status"] == "unknown")
    );

    // Model requests (0.5.5 `model request`).
    let r = net
        .post(
            &key,
            "/api/v0/model-requests",
            &json!({"model_id": "qwen2.5:0.5b", "reason": "tiny"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (201, json!("available")),
        "{}",
        r.text
    );
    let r = net
        .post(
            &key,
            "/api/v0/model-requests",
            &json!({"model_id": "big:70b", "reason": "big", "hf_repo": "x/y"}),
        )
        .await;
    assert_eq!(r.body["status"], "pending");
    let id = r.body["request_id"].as_str().expect("id").to_owned();
    let r = net
        .maintainer(
            "POST",
            &format!("/api/v0/model-requests/{id}/actions/decline"),
            Some(&json!({"reason": "too big"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (200, json!("declined")),
        "{}",
        r.text
    );
    let r = net.get(&key, "/api/v0/model-requests").await;
    assert_eq!(r.body["requests"].as_array().map(Vec::len), Some(2));
    let r = net
        .post(&key, "/api/v0/model-requests", &json!({"reason": "x"}))
        .await;
    assert_eq!(r.status, 422);

    // Software requests (0.5.5 `software request` / `software list`).
    let r = net
        .post(
            &key,
            "/api/v0/software-requests",
            &json!({"title": "numpy", "description": "arrays", "reason": "maths"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (201, json!("pending")),
        "{}",
        r.text
    );
    let r = net
        .get(&key, "/api/v0/software-requests?status=pending")
        .await;
    assert_eq!(r.body["requests"][0]["title"], "numpy");
    let r = net
        .get(&key, "/api/v0/software-requests?status=bogus")
        .await;
    assert_eq!(r.status, 422);

    // Driver heartbeat (0.6.67).
    let hb = format!("/api/v0/experiments/{exp}/driver-heartbeat");
    let r = net
        .post(
            &key,
            &hb,
            &json!({"status": "driving", "round": 2, "run_id": "r1"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = net.post(&key, &hb, &json!({"status": "sleeping"})).await;
    assert_eq!(r.status, 422);
    let r = net
        .post(&other_key(), &hb, &json!({"status": "gone"}))
        .await;
    assert_eq!(r.status, 401);
}

/// The members of a gzip'd tar (name → bytes).
fn untar(gz: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read as _;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut tar)
        .expect("gunzip");
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 512 <= tar.len() && tar[pos..pos + 512].iter().any(|b| *b != 0) {
        let h = &tar[pos..pos + 512];
        let end = h[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8_lossy(&h[..end]).into_owned();
        let size_text = String::from_utf8_lossy(&h[124..136]);
        let size =
            usize::from_str_radix(size_text.trim_matches(|c: char| c == '\0' || c == ' '), 8)
                .expect("size");
        let data = tar[pos + 512..pos + 512 + size].to_vec();
        out.push((name, data));
        pos += 512 + size.div_ceil(512) * 512;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_upload_and_fetch_by_manifest() {
    let net = Net::start().await;
    let key = tenant_key();
    net.add_tenant(TENANT, &key).await;
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("run.py"), b"print('hi')\n").expect("write");
    std::fs::create_dir(dir.path().join("lib")).expect("mkdir");
    std::fs::write(dir.path().join("lib/util.py"), b"X = 1\n").expect("write");
    let archive = auspex_wire::package::build_package_archive(dir.path()).expect("archive");
    let digest = archive.digest.sha256.clone();
    let headers = [
        ("content-type", "application/gzip"),
        ("x-package-digest", digest.as_str()),
    ];

    let r = net
        .signed_with(
            &key,
            "POST",
            "/api/v0/packages",
            archive.bytes.clone(),
            &headers,
        )
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["package_digest"], digest.as_str());
    assert_eq!(body["status"], "stored");
    let r = net
        .signed_with(
            &key,
            "POST",
            "/api/v0/packages",
            archive.bytes.clone(),
            &headers,
        )
        .await;
    assert_eq!(r.status(), 200);
    let wrong = "0".repeat(64);
    let r = net
        .signed_with(
            &key,
            "POST",
            "/api/v0/packages",
            archive.bytes.clone(),
            &[
                ("content-type", "application/gzip"),
                ("x-package-digest", &wrong),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["detail"]["error"]["code"], "digest_mismatch");
    let r = net
        .signed_with(
            &key,
            "POST",
            "/api/v0/packages",
            b"not gzip".to_vec(),
            &[
                ("content-type", "application/gzip"),
                ("x-package-digest", &digest),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = net
        .signed_with(
            &key,
            "POST",
            "/api/v0/packages",
            archive.bytes.clone(),
            &[("x-package-digest", &digest)],
        )
        .await;
    assert_eq!(r.status(), 415);
    // Over 2 MiB is fine on this route (the 64 MiB cap applies).
    let big_dir = tempfile::tempdir().expect("tmp");
    let noise: Vec<u8> = (0..100_000u32)
        .flat_map(|i| {
            use sha2::Digest as _;
            sha2::Sha256::digest(i.to_le_bytes()).to_vec()
        })
        .collect();
    std::fs::write(big_dir.path().join("weights.bin"), &noise).expect("write");
    let big = auspex_wire::package::build_package_archive(big_dir.path()).expect("archive");
    assert!(big.bytes.len() > 2 * 1024 * 1024);
    let r = net
        .signed_with(
            &key,
            "POST",
            "/api/v0/packages",
            big.bytes.clone(),
            &[
                ("content-type", "application/gzip"),
                ("x-package-digest", &big.digest.sha256),
            ],
        )
        .await;
    assert_eq!(r.status(), 201);

    // A manifest pinning the package; a worker fetches it by manifest hash.
    let mut m = manifest_value(TENANT, "pkg-one", 1, "builtin_hash_agreement");
    m["executor"]["package_sha256"] = json!(digest);
    let sig = sign_value(&key, &m);
    let r = net
        .post(
            &key,
            "/api/v0/experiments",
            &json!({"manifest": m, "signature": sig}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let manifest_hash = r.body["manifest_hash"].as_str().expect("hash").to_owned();
    let w = Worker::enroll(&net, 95).await;
    let path = format!("/api/v0/packages/by-manifest/{manifest_hash}");
    let r = net.signed_with(&w.key, "GET", &path, Vec::new(), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().ok(),
        Some("application/gzip")
    );
    let bytes = r.bytes().await.expect("bytes");
    let members = untar(&bytes);
    let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"run.py") && names.contains(&"lib/util.py"),
        "{names:?}"
    );
    let manifest = &members
        .iter()
        .find(|(n, _)| n == "manifest.json")
        .expect("manifest")
        .1;
    assert_eq!(auspex_wire::sha256_hex(manifest), manifest_hash);
    assert!(names.contains(&"manifest.json.sig"));
    // Researchers cannot fetch; unknown hashes are 404.
    let r = net.get(&key, &path).await;
    assert_eq!((r.status, r.code()), (403, "worker_required"));
    let r = net
        .signed_with(
            &w.key,
            "GET",
            &format!("/api/v0/packages/by-manifest/{}", "a".repeat(64)),
            Vec::new(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = net
        .signed_with(
            &w.key,
            "GET",
            &format!("/api/v0/packages/{digest}"),
            Vec::new(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.bytes().await.expect("bytes").as_ref(),
        archive.bytes.as_slice()
    );
}

#[tokio::test]
async fn tenant_applications() {
    let net = Net::start().await;
    let applicant = TenantKey::from_seed([55; 32]);
    let body = json!({"github_access_token": "gho_token", "requested_tenant_id": "new-lab",
                      "contact_name": "Ada", "affiliation": "independent",
                      "research_classes": ["eval_sweeps", "eval_sweeps", "other"]});
    let r = net
        .anonymous("POST", "/api/v0/tenant-applications", Some(&body))
        .await;
    assert_eq!((r.status, r.code()), (401, "signature_required"));
    let r = net
        .post(&applicant, "/api/v0/tenant-applications", &body)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "pending");
    let id = r.body["application_id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("tapp-"));
    let r = net
        .post(&applicant, "/api/v0/tenant-applications", &body)
        .await;
    assert_eq!((r.status, r.code()), (409, "application_pending"));
    let r = net
        .post(
            &applicant,
            "/api/v0/tenant-applications",
            &json!({"github_access_token": "t2",
            "requested_tenant_id": "x", "contact_name": "A", "affiliation": "B"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = net
        .get(&applicant, "/api/v0/tenant-applications/mine")
        .await;
    assert_eq!(
        r.body,
        json!({"applications": [{"application_id": id, "status": "pending",
                                 "resolution_reason": null, "created_tenant_id": null}]})
    );
    // The maintainer queue.
    // (Not a tenant yet: the key resolves to nobody.)
    let r = net.get(&applicant, "/api/v0/tenant-applications").await;
    assert_eq!(r.status, 401);
    net.add_tenant(TENANT, &tenant_key()).await;
    let r = net.get(&tenant_key(), "/api/v0/tenant-applications").await;
    assert_eq!(
        (r.status, r.body["detail"].clone()),
        (403, json!("maintainer required"))
    );
    let r = net
        .maintainer(
            "GET",
            "/api/v0/tenant-applications?status_filter=pending",
            None,
        )
        .await;
    assert_eq!(
        r.body["applications"][0]["research_classes"],
        json!(["eval_sweeps", "other"])
    );
    assert_eq!(
        r.body["applications"][0]["pubkey_hex"],
        applicant.public_hex().as_str()
    );
    let r = net
        .maintainer(
            "POST",
            &format!("/api/v0/tenant-applications/{id}/actions/approve"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["created_tenant_id"], "new-lab");
    let r = net.get(&applicant, "/api/v0/auth/whoami").await;
    assert_eq!(r.body["tenant_id"], "new-lab");
    let r = net
        .maintainer(
            "POST",
            &format!("/api/v0/tenant-applications/{id}/actions/decline"),
            Some(&json!({"reason": "late"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "invalid_status_transition"));
    let r = net
        .maintainer(
            "POST",
            "/api/v0/tenant-applications/tapp-nope/actions/approve",
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    // A second application with another identity, declined.
    let second = TenantKey::from_seed([56; 32]);
    let mut b2 = body.clone();
    b2["github_access_token"] = json!("gho_other");
    let r = net.post(&second, "/api/v0/tenant-applications", &b2).await;
    let id2 = r.body["application_id"].as_str().expect("id").to_owned();
    let r = net
        .maintainer(
            "POST",
            &format!("/api/v0/tenant-applications/{id2}/actions/decline"),
            Some(&json!({"reason": "no"})),
        )
        .await;
    assert_eq!(r.body["status"], "declined");
    let r = net.get(&second, "/api/v0/tenant-applications/mine").await;
    assert_eq!(r.body["applications"][0]["resolution_reason"], "no");
}
