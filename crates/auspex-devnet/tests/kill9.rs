//! Durability of the real `auspex devnet up` process: it is killed with
//! SIGKILL while synthetic workers upload signed results, and restarted on
//! the same state directory. Every acknowledged (201) unit and result is
//! still there, every consensus unit has its receipt, the completed
//! experiment's attestation is byte-identical across a second SIGKILL, and
//! the transparency log's tree after the restart is consistent with a
//! checkpoint taken before the kill.
//!
//! The binary is `auspex-cli`'s, which cannot be a dev-dependency here
//! (the CLI depends on this crate), so the test looks for it next to its
//! own executable (`target/<profile>/auspex`) and, when it is missing, builds
//! it with `cargo build -p auspex-cli --bin auspex` first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auspex_crypto::http_sig::sign_request;
use auspex_crypto::keys::TenantKey;
use auspex_crypto::manifest::sign_manifest;
use auspex_crypto::worker_sig::{SchemaVersion, SignedResult};
use auspex_devnet::DevnetInfo;
use auspex_wire::manifest::{SdkProfile, parse_manifest};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

const TENANT: &str = "kill9-lab";
const UNITS: usize = 200;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `target/<profile>/auspex`, built when missing.
fn auspex_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/kill9-… → target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf();
    let bin = profile_dir.join("auspex");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "auspex-cli", "--bin", "auspex"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo build runs");
        assert!(status.success(), "cargo build -p auspex-cli failed");
    }
    assert!(bin.exists(), "no auspex binary at {}", bin.display());
    bin
}

struct Devnet {
    child: Child,
    info: DevnetInfo,
}

impl Devnet {
    /// `auspex devnet up --state DIR --auto-approve`, waiting for its
    /// `devnet.json` (the one naming this process).
    fn up(bin: &Path, home: &Path, state: &Path) -> Devnet {
        let mut child = Command::new(bin)
            // A short lease: a lease granted just before a kill, whose answer
            // never reached the client, is re-offered after it instead of
            // holding its replica for the default 600 s.
            .args(["devnet", "up", "--auto-approve", "--lease", "3", "--state"])
            .arg(state)
            .env("HOME", home)
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_STATE_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("auspex devnet up");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(info) = DevnetInfo::load(&state.join("devnet.json"))
                && info.pid == child.id()
            {
                return Devnet { child, info };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("auspex devnet up exited: {status}");
            }
            assert!(Instant::now() < deadline, "the devnet did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL (`Child::kill` on Unix) and reap.
    fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }

    fn client(&self) -> Client {
        Client {
            base: self.info.coordinator_url.clone(),
            http: reqwest::Client::new(),
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone)]
struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn signed(
        &self,
        key: &TenantKey,
        method: &str,
        target: &str,
        body: Option<&Value>,
    ) -> reqwest::Result<(u16, Value)> {
        let bytes = body
            .map(|b| serde_json::to_vec(b).expect("json"))
            .unwrap_or_default();
        let authority = self.base.trim_start_matches("http://");
        let h = sign_request(key, method, target, authority, &bytes, now());
        let mut rb = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            format!("{}{target}", self.base),
        );
        for (k, v) in h.header_pairs() {
            rb = rb.header(k, v);
        }
        if !bytes.is_empty() {
            rb = rb.header("content-type", "application/json").body(bytes);
        }
        let r = rb.send().await?;
        let status = r.status().as_u16();
        let text = r.bytes().await?;
        Ok((status, serde_json::from_slice(&text).unwrap_or(Value::Null)))
    }

    async fn ok(&self, key: &TenantKey, method: &str, target: &str, body: Option<&Value>) -> Value {
        let (status, v) = self
            .signed(key, method, target, body)
            .await
            .expect("request");
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
    fn body(&self, unit: &str, aid: Option<&str>) -> Value {
        let payload = json!({"answer": unit});
        let p = auspex_wire::json::parse(payload.to_string().as_bytes()).expect("payload");
        let served = auspex_wire::json::Object::new();
        let pubkey = self.key.public_hex();
        let at = "2026-07-01T12:00:00.000001+00:00";
        let sig = SignedResult {
            schema_version: SchemaVersion::V3,
            served_weights: Some(&served),
            ran_under: Some("permissive"),
            generation_options: Some(&[]),
            ..SignedResult::v0(unit, &pubkey, at, 0, &p)
        }
        .sign(&self.signing);
        let mut b = json!({"unit_id": unit, "worker_pubkey": pubkey, "completed_at": at,
            "exit_code": 0, "payload": payload, "worker_signature": sig, "schema_version": 3,
            "served_weights": {}, "ran_under": "permissive", "generation_options": []});
        if let Some(a) = aid {
            b["assignment_id"] = json!(a);
        }
        b
    }

    fn result_target(&self, unit: &str) -> String {
        format!("/api/v0/workers/{}/assignments/{unit}/result", self.id)
    }

    /// Polls and answers until there is no more work or the coordinator is
    /// gone; records leases and acknowledged results.
    async fn run(&self, c: &Client, log: &Log) {
        loop {
            let target = format!("/api/v0/workers/{}/assignments", self.id);
            let Ok((200, a)) = c.signed(&self.key, "GET", &target, None).await else {
                return;
            };
            let Some(unit) = a["work_unit"]["unit_id"].as_str().map(str::to_owned) else {
                return;
            };
            log.lock()
                .expect("log")
                .leased
                .insert((self.id.clone(), unit.clone()));
            let body = self.body(&unit, a["assignment_id"].as_str());
            match c
                .signed(&self.key, "POST", &self.result_target(&unit), Some(&body))
                .await
            {
                Ok((201, _)) => {
                    log.lock()
                        .expect("log")
                        .acked
                        .insert((self.id.clone(), unit));
                }
                Ok((status, v)) => panic!("result for {unit}: {status} {v}"),
                Err(_) => return,
            }
        }
    }
}

#[derive(Default)]
struct Seen {
    leased: BTreeSet<(String, String)>,
    acked: BTreeSet<(String, String)>,
}
type Log = Arc<Mutex<Seen>>;

fn manifest(key: &TenantKey, label: &str, rf: u32) -> Value {
    let m = json!({
        "schema_version": "0.1",
        "tenant_id": TENANT,
        "tenant_maintainer_contact": "Kill Nine <k9@example.com>",
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

/// An experiment with `n` units (auto-approved); returns its id.
async fn experiment(c: &Client, key: &TenantKey, label: &str, rf: u32, n: usize) -> String {
    let created = c
        .ok(
            key,
            "POST",
            "/api/v0/experiments",
            Some(&manifest(key, label, rf)),
        )
        .await;
    let exp = created["experiment_id"].as_str().expect("id").to_owned();
    let hash = created["manifest_hash"].as_str().expect("hash").to_owned();
    let units: Vec<Value> = (0..n)
        .map(|i| {
            json!({"schema_version": "0.1", "unit_id": format!("u-{i:04}"), "tenant_id": TENANT,
                "experiment_id": label, "manifest_sha256": hash, "payload": {"i": i}})
        })
        .collect();
    let (status, v) = c
        .signed(
            key,
            "POST",
            &format!("/api/v0/experiments/{exp}/work-units"),
            Some(&json!({ "work_units": units })),
        )
        .await
        .expect("units");
    assert_eq!(status, 201, "{v}");
    exp
}

/// Every row of `…/results?include=raw`, paged.
async fn all_results(c: &Client, key: &TenantKey, exp: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut target = format!("/api/v0/experiments/{exp}/results?include=raw&limit=500");
        if let Some(cur) = &cursor {
            let enc: String = cur
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
        let page = c.ok(key, "GET", &target, None).await;
        rows.extend(page["results"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(n) => cursor = Some(n.to_owned()),
            None => return rows,
        }
    }
}

/// Waits for the final attestation, anchored in the devnet's log.
async fn anchored_attestation(c: &Client, key: &TenantKey, exp: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let target = format!("/api/v0/experiments/{exp}/attestation");
        let (status, v) = c
            .signed(key, "GET", &target, None)
            .await
            .expect("attestation");
        let uuid = v["rekor_entry_uuid"].as_str().unwrap_or("");
        if status == 200 && !uuid.is_empty() && uuid != "lab-mode-no-rekor" {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no anchored attestation: {status} {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn checkpoint(tlog: &str) -> (u64, [u8; 32]) {
    let v: Value = reqwest::get(format!("{tlog}/api/v1/log"))
        .await
        .expect("log info")
        .json()
        .await
        .expect("json");
    (
        v["treeSize"].as_u64().expect("treeSize"),
        hex32(v["rootHash"].as_str().expect("rootHash")),
    )
}

fn hex32(s: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    bytes.try_into().expect("32 bytes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_nothing_acknowledged() {
    let bin = auspex_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let state = dir.path().join("state");

    let net = Devnet::up(&bin, &home, &state);
    let c = net.client();
    let key = TenantKey::from_seed([21; 32]);
    let token = net.info.maintainer_token().expect("maintainer token");
    let r = c
        .http
        .post(format!("{}/api/v0/tenants", c.base))
        .bearer_auth(token.trim())
        .json(&json!({"tenant_id": TENANT, "maintainer_pubkey": key.public_hex()}))
        .send()
        .await
        .expect("tenant");
    assert_eq!(r.status().as_u16(), 201);
    let exp = experiment(&c, &key, "kill9-load", 3, UNITS).await;

    // Three workers carry the load; a fourth joins only for the drain, to
    // take a replica whose lease was granted just before the kill (its
    // holder's answer was lost) once that lease expires: the coordinator
    // re-offers an expired replica to another worker, and the other two
    // already hold that unit.
    let mut workers = Vec::new();
    for seed in [31u8, 32, 33, 34] {
        let wkey = TenantKey::from_seed([seed; 32]);
        let r = c
            .http
            .post(format!("{}/api/v0/workers/enroll", c.base))
            .json(&json!({"pubkey_hex": wkey.public_hex(),
                "capabilities": {"os": "linux", "worker_version": "0.2.80"}}))
            .send()
            .await
            .expect("enroll");
        assert_eq!(r.status().as_u16(), 201);
        let v: Value = r.json().await.expect("json");
        workers.push(Arc::new(Worker {
            key: wkey,
            signing: SigningKey::from_bytes(&[seed; 32]),
            id: v["worker_id"].as_str().expect("worker_id").to_owned(),
        }));
    }

    // Load: four concurrent clients per worker; SIGKILL once a third of
    // the results are in.
    let log: Log = Arc::default();
    let mut tasks = Vec::new();
    for w in &workers[..3] {
        for _ in 0..4 {
            let (w, c, log) = (w.clone(), c.clone(), log.clone());
            tasks.push(tokio::spawn(async move { w.run(&c, &log).await }));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while log.lock().expect("log").acked.len() < UNITS * 5 / 2 {
        assert!(Instant::now() < deadline, "load too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    net.kill9();
    for t in tasks {
        t.await.expect("load task");
    }
    let (leased, acked) = {
        let s = log.lock().expect("log");
        (s.leased.clone(), s.acked.clone())
    };
    assert!(acked.len() < UNITS * 3, "the kill came too late");

    // Restart: every acknowledged unit and result is there, and every
    // consensus unit has a receipt.
    let net = Devnet::up(&bin, &home, &state);
    let c = net.client();
    for i in 0..UNITS {
        c.ok(
            &key,
            "GET",
            &format!("/api/v0/experiments/{exp}/work-units/u-{i:04}"),
            None,
        )
        .await;
    }
    let rows = all_results(&c, &key, &exp).await;
    let stored: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["worker_id"].as_str().unwrap_or("").to_owned(),
                r["unit_id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged results lost: {lost:?}");
    let receipts = c
        .ok(
            &key,
            "GET",
            &format!("/api/v0/experiments/{exp}/receipts"),
            None,
        )
        .await;
    let receipt_ids: BTreeSet<&str> = receipts["receipts"]
        .as_array()
        .expect("receipts")
        .iter()
        .filter_map(|r| r["receipt_id"].as_str())
        .collect();
    let consensus: Vec<&Value> = rows.iter().filter(|r| r["is_consensus"] == true).collect();
    assert!(!consensus.is_empty(), "no consensus before the kill");
    for r in &consensus {
        let id = r["receipt_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no receipt: {r}"));
        assert!(receipt_ids.contains(id), "receipt {id} not listed");
    }

    // Finish: answer the leases cut off by the kill (201, or 409 when the
    // result was stored but its 201 never arrived), then drain.
    let by_id: BTreeMap<&str, &Arc<Worker>> = workers.iter().map(|w| (w.id.as_str(), w)).collect();
    for (wid, unit) in leased.difference(&acked) {
        let w = by_id[wid.as_str()];
        let (status, v) = c
            .signed(
                &w.key,
                "POST",
                &w.result_target(unit),
                Some(&w.body(unit, None)),
            )
            .await
            .expect("result");
        assert!(status == 201 || status == 409, "{unit}: {status} {v}");
    }
    // Drain until every replica has its result; a replica whose lease was
    // granted just before the kill comes back once that lease expires.
    let deadline = Instant::now() + Duration::from_secs(90);
    let rows = loop {
        let log: Log = Arc::default();
        for w in &workers {
            w.run(&c, &log).await;
        }
        let rows = all_results(&c, &key, &exp).await;
        if rows.len() >= UNITS * 3 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(rows.len(), UNITS * 3);
    c.ok(
        &key,
        "POST",
        &format!("/api/v0/experiments/{exp}/actions/finalize-submissions"),
        Some(&json!({})),
    )
    .await;
    let first = anchored_attestation(&c, &key, &exp).await;
    assert_eq!(first["unit_count"].as_u64(), Some(UNITS as u64), "{first}");
    let tlog = net.info.tlog_url.clone().expect("tlog url");
    let (size1, root1) = checkpoint(&tlog).await;
    assert!(size1 >= 1);

    // SIGKILL again: the attestation is byte-identical after the restart.
    net.kill9();
    let net = Devnet::up(&bin, &home, &state);
    let c = net.client();
    let again = anchored_attestation(&c, &key, &exp).await;
    for field in [
        "attestation_id",
        "cose_signed_blob_b64",
        "rekor_entry_uuid",
        "rekor_log_index",
    ] {
        assert_eq!(again[field], first[field], "{field} changed");
    }
    assert_eq!(again, first);

    // The log grows (a second experiment is anchored) consistently with
    // the checkpoint taken before the kill.
    let exp2 = experiment(&c, &key, "kill9-after", 1, 1).await;
    workers[0].run(&c, &Arc::default()).await;
    c.ok(
        &key,
        "POST",
        &format!("/api/v0/experiments/{exp2}/actions/finalize-submissions"),
        Some(&json!({})),
    )
    .await;
    anchored_attestation(&c, &key, &exp2).await;
    let tlog = net.info.tlog_url.clone().expect("tlog url");
    let (size2, root2) = checkpoint(&tlog).await;
    assert!(size2 > size1, "{size2} <= {size1}");
    let proof: Value = reqwest::get(format!(
        "{tlog}/api/v1/log/proof?firstSize={size1}&lastSize={size2}"
    ))
    .await
    .expect("proof")
    .json()
    .await
    .expect("json");
    let hashes: Vec<[u8; 32]> = proof["hashes"]
        .as_array()
        .expect("hashes")
        .iter()
        .map(|h| hex32(h.as_str().expect("hex")))
        .collect();
    auspex_crypto::merkle::verify_consistency(size1, size2, &hashes, &root1, &root2)
        .expect("the log after the restart is consistent with the old checkpoint");
    net.kill9();
}
