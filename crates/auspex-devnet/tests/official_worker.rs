//! The official volunteer worker (`auspexai-worker==0.2.80`, installed by
//! `scripts/python-peers.sh`) joins the devnet next to two of our workers:
//! it enrols, leases, runs the tenant's package, and its signed results
//! (v3 signature, verified by our coordinator at upload) reach consensus
//! with ours and earn receipts.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use auspex_devnet::DevnetConfig;
use auspex_wire::json::{self, Value};
use common::obj;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The official worker's virtual environment, or `None` when interop tests
/// are skipped (`AUSPEX_SKIP_INTEROP=1`).
#[allow(clippy::print_stderr)] // says that a check was knowingly skipped
fn worker_venv() -> Option<PathBuf> {
    let venv = repo().join("target/py-worker-0.2.80");
    if venv.join("bin/auspexai-worker").exists() {
        return Some(venv);
    }
    if std::env::var("AUSPEX_SKIP_INTEROP").is_ok_and(|v| v == "1") {
        eprintln!("skipped: no target/py-worker-0.2.80 and AUSPEX_SKIP_INTEROP=1");
        return None;
    }
    panic!(
        "the official worker is not installed in target/py-worker-0.2.80: run `bash scripts/python-peers.sh` \
         (or set AUSPEX_SKIP_INTEROP=1 to skip)"
    );
}

/// Kills the official worker's daemon when the test ends, also on panic.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The official worker's command line, isolated under `home`.
fn official(venv: &Path, home: &Path, config: &Path) -> Command {
    let bin = venv.join("bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(bin.join("auspexai-worker"));
    cmd.arg("--config")
        .arg(config)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("AUSPEXAI_WORKER_STATE_DIR", home.join("state"))
        .env("AUSPEXAI_WORKER_DATA_DIR", home.join("data"))
        .env("AUSPEXAI_WORKER_KEYSTORE_BACKEND", "encrypted_file")
        .env("AUSPEXAI_WORKER_DASHBOARD_ENABLED", "0")
        .env("LANG", "C.UTF-8");
    cmd
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_worker_joins_and_agrees_with_ours() {
    let Some(venv) = worker_venv() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (devnet, tenant) = common::start(DevnetConfig {
        state_dir: Some(dir.path().join("state")),
        workers: 2,
        ..DevnetConfig::default()
    })
    .await;
    let info = devnet.info().clone();

    // The doubler package and a signed manifest pinning its digest.
    let (id, manifest_hash) =
        common::create_experiment(&tenant, dir.path(), common::Executor::Python, 3).await;

    // The official worker: own key and config under a temporary HOME,
    // pointed at the devnet, CPU-only, passthrough sandbox, running the
    // tenant's provisioned package.
    let home = dir.path().join("official");
    std::fs::create_dir_all(&home).expect("mkdir");
    let config = home.join("worker.toml");
    std::fs::write(
        &config,
        format!(
            "[coordinator]\nurl = \"{}\"\nheartbeat_interval_seconds = 2\nassignment_poll_interval_seconds = 1\n\n\
             [identity]\nkeystore_backend = \"encrypted_file\"\n\n\
             [sandbox]\nuse_bubblewrap = false\npolicy = \"permissive\"\nrunner_timeout_seconds = 120\n\n\
             [executor]\nexecute_tenant_code = \"provisioned\"\n\n\
             [dashboard]\nenabled = false\n",
            info.coordinator_url
        )
    )
    .expect("config");
    let boot = official(&venv, &home, &config)
        .arg("bootstrap")
        .output()
        .expect("bootstrap runs");
    assert!(
        boot.status.success(),
        "bootstrap: {}\n{}",
        String::from_utf8_lossy(&boot.stdout),
        String::from_utf8_lossy(&boot.stderr)
    );
    let status_out = official(&venv, &home, &config)
        .arg("status")
        .output()
        .expect("status runs");
    let text = format!(
        "{}\n{}\n{}",
        String::from_utf8_lossy(&boot.stdout),
        String::from_utf8_lossy(&status_out.stdout),
        String::from_utf8_lossy(&status_out.stderr)
    );
    let pubkey = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| is_hex64(w))
        .unwrap_or_else(|| panic!("no pubkey in bootstrap/status output:\n{text}"))
        .to_owned();
    let log = std::fs::File::create(home.join("daemon.log")).expect("log");
    let _daemon = ChildGuard(
        official(&venv, &home, &config)
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("daemon starts"),
    );
    let daemon_log = || std::fs::read_to_string(home.join("daemon.log")).unwrap_or_default();

    // Units with replication 3: two of ours plus the official worker.
    const UNITS: usize = 3;
    let units: Vec<Value> = (0..UNITS)
        .map(|i| {
            obj(vec![
                ("schema_version", Value::from("0.1")),
                ("unit_id", Value::from(format!("u-{i:03}"))),
                ("tenant_id", Value::from("auspex-examples")),
                ("experiment_id", Value::from("doubler-v1")),
                ("manifest_sha256", Value::from(manifest_hash.as_str())),
                ("payload", obj(vec![("value", Value::from(i as i64 + 20))])),
            ])
        })
        .collect();
    tenant
        .json(
            "POST",
            &format!("/api/v0/experiments/{id}/work-units"),
            Some(&obj(vec![("work_units", Value::Array(units))])),
        )
        .await;
    tenant
        .json(
            "POST",
            &format!("/api/v0/experiments/{id}/actions/finalize-submissions"),
            None,
        )
        .await;

    // Every unit reaches consensus with three agreeing results, one of them
    // the official worker's, each with a receipt.
    let deadline = Instant::now() + Duration::from_secs(240);
    let rows = loop {
        let v = tenant
            .json(
                "GET",
                &format!("/api/v0/experiments/{id}/results?include=raw&limit=100"),
                None,
            )
            .await;
        let rows: Vec<Value> = match v.get("results") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let done = rows.len() == 3 * UNITS
            && rows
                .iter()
                .all(|r| r.get("receipt_id").and_then(Value::as_str).is_some())
            && rows
                .iter()
                .filter(|r| matches!(r.get("is_consensus"), Some(Value::Bool(true))))
                .count()
                == UNITS;
        if done {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "no consensus in time; results: {}\nofficial worker log:\n{}",
            json::pydantic_compact(&v),
            daemon_log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let field = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    for i in 0..UNITS {
        let unit = format!("u-{i:03}");
        let mine: Vec<&Value> = rows
            .iter()
            .filter(|r| field(r, "unit_id") == unit)
            .collect();
        assert_eq!(mine.len(), 3, "{unit}: three results");
        let hash = field(mine[0], "semantic_hash");
        assert!(
            mine.iter().all(|r| field(r, "semantic_hash") == hash),
            "{unit}: results agree"
        );
        let pubkeys: Vec<String> = mine.iter().map(|r| field(r, "worker_pubkey_hex")).collect();
        assert_eq!(
            pubkeys.iter().filter(|p| **p == pubkey).count(),
            1,
            "{unit}: one result from the official worker {pubkey}: {pubkeys:?}"
        );
        let official_row = mine
            .iter()
            .find(|r| field(r, "worker_pubkey_hex") == pubkey)
            .expect("official row");
        let doubled = official_row
            .get("payload")
            .and_then(|p| p.get("doubled"))
            .and_then(|v| match v {
                Value::Int(n) => n.as_i64(),
                _ => None,
            });
        assert_eq!(doubled, Some(2 * (i as i64 + 20)), "{unit}: doubled");
        // Accepted at upload (our coordinator answers 422 to a bad v3
        // signature), and the worker itself fetched its canonical receipt.
        let rid = field(official_row, "result_id");
        let submitted = format!("submitted result for unit {unit} (result_id={rid}");
        let promoted = format!("promoted local receipt for result {rid} to canonical");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = daemon_log();
            if log.contains(&submitted) && log.contains(&promoted) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{unit}: the official worker did not log its upload and receipt:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    devnet.shutdown().await;
}
