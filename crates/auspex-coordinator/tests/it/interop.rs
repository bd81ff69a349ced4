//! The official SDK (auspexai-tenant 0.5.5) against this server, with
//! results posted through the worker routes by test workers.

use std::path::{Path, PathBuf};
use std::process::Command;

use auspex_crypto::keys::TenantKey;
use serde_json::json;

use crate::common::*;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> Option<PathBuf> {
    let p = workspace().join("target/py-0.5.5/bin/python");
    if p.exists() {
        return Some(p);
    }
    if std::env::var("AUSPEX_SKIP_INTEROP").as_deref() == Ok("1") {
        return None;
    }
    panic!(
        "the official SDK venv is missing ({}): run `bash scripts/python-peers.sh` \
         (or set AUSPEX_SKIP_INTEROP=1)",
        p.display()
    );
}

fn run(py: &Path, phase: &str, url: &str, key: &Path, state: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sdk_flow.py");
    let out = Command::new(py)
        .arg(script)
        .args([phase, url])
        .arg(key)
        .arg(state)
        .output()
        .expect("test step");
    assert!(
        out.status.success(),
        "sdk phase {phase} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(out.stdout.trim_ascii()).expect("test step")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_full_flow() {
    let Some(py) = python() else { return };
    let net = Net::start().await;
    let key = TenantKey::from_seed([21; 32]);
    let key_path = net.dir.path().join("tenant_key");
    auspex_crypto::keys::save(&key, &key_path, false).expect("test step");
    let state_path = net.dir.path().join("sdk_state.json");
    net.add_tenant("sdk-lab", &key).await;
    let url = net.server.url();

    let (py2, u2, k2, s2) = (
        py.clone(),
        url.clone(),
        key_path.clone(),
        state_path.clone(),
    );
    let state = tokio::task::spawn_blocking(move || run(&py2, "upload", &u2, &k2, &s2))
        .await
        .expect("test step");
    let exp = state["experiment_id"]
        .as_str()
        .expect("test step")
        .to_owned();
    let r = net.approve(&exp, "").await;
    assert_eq!(r.status, 200, "{}", r.text);

    let (py2, u2, k2, s2) = (
        py.clone(),
        url.clone(),
        key_path.clone(),
        state_path.clone(),
    );
    tokio::task::spawn_blocking(move || run(&py2, "submit", &u2, &k2, &s2))
        .await
        .expect("test step");

    let a = Worker::enroll(&net, 121).await;
    let b = Worker::enroll(&net, 122).await;
    for w in [&a, &b] {
        while let Some((unit, r)) = w.work_once(&net, &|u| json!({"unit": u, "x": 0.5})).await {
            assert_eq!(r.status, 201, "{unit}: {}", r.text);
        }
    }

    let (py2, u2, k2, s2) = (
        py.clone(),
        url.clone(),
        key_path.clone(),
        state_path.clone(),
    );
    let state = tokio::task::spawn_blocking(move || run(&py2, "finish", &u2, &k2, &s2))
        .await
        .expect("test step");
    assert_eq!(state["checked"], true);
}
