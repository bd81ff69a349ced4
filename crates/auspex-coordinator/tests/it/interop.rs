//! The official SDKs (auspexai-tenant 0.5.5 and 0.6.67) against this server
//! and a Rekor-shaped log, with results posted through the worker routes by
//! test workers (schema-v0 signatures for 0.5.5, whose bundle verifier
//! only rebuilds v0; v3 for 0.6.67).

use std::path::{Path, PathBuf};
use std::process::Command;

use auspex_crypto::keys::TenantKey;
use serde_json::json;

use crate::common::*;

pub(crate) fn workspace() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    p.canonicalize().unwrap_or(p)
}

/// The venv python of `version`: `target/py-<version>/bin/python`, or the
/// one `AUSPEX_PY_<version with _ for .>` names (e.g. a venv that also has
/// the `analysis` extra for `bundle table`).
pub(crate) fn python(version: &str) -> Option<PathBuf> {
    let var = format!("AUSPEX_PY_{}", version.replace('.', "_"));
    if let Some(p) = std::env::var_os(&var) {
        return Some(PathBuf::from(p));
    }
    let p = workspace().join(format!("target/py-{version}/bin/python"));
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

struct Sdk {
    py: PathBuf,
    url: String,
    key: PathBuf,
    state: PathBuf,
    env: Vec<(String, String)>,
}

impl Sdk {
    async fn run(&self, phase: &str) -> serde_json::Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sdk_flow.py");
        let mut cmd = Command::new(&self.py);
        cmd.arg(script)
            .args([phase, &self.url])
            .arg(&self.key)
            .arg(&self.state)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let phase = phase.to_owned();
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("test step")
            .expect("test step");
        assert!(
            out.status.success(),
            "sdk phase {phase} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(out.stdout.trim_ascii()).expect("test step")
    }
}

/// The whole flow for one SDK version; returns the final state.
async fn flow(
    version: &str,
    tenant: &str,
    label: &str,
    seed: u8,
    v0: bool,
) -> Option<serde_json::Value> {
    let py = python(version)?;
    let rekor = FakeRekor::start().await;
    let rekor_url = rekor.url();
    let net = Net::start_with(|c| c.tlog_url(Some(rekor_url.clone()))).await;
    let key = TenantKey::from_seed([seed; 32]);
    let key_path = net.dir.path().join("tenant_key");
    auspex_crypto::keys::save(&key, &key_path, false).expect("test step");
    net.add_tenant(tenant, &key).await;
    let sdk = Sdk {
        py,
        url: net.server.url(),
        key: key_path,
        state: net.dir.path().join("sdk_state.json"),
        env: vec![
            ("AUSPEX_REKOR_URL".into(), rekor_url),
            ("AUSPEX_TENANT".into(), tenant.into()),
            ("AUSPEX_LABEL".into(), label.into()),
            (
                "AUSPEX_WORKDIR".into(),
                net.dir.path().display().to_string(),
            ),
        ],
    };

    let state = sdk.run("upload").await;
    let exp = state["experiment_id"]
        .as_str()
        .expect("test step")
        .to_owned();
    let r = net.approve(&exp, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    sdk.run("submit").await;

    let a = Worker::enroll(&net, seed.wrapping_add(100)).await;
    let b = Worker::enroll(&net, seed.wrapping_add(101)).await;
    for w in [&a, &b] {
        let done = w.drain(&net, v0, &|u| json!({"unit": u, "x": 0.5})).await;
        assert_eq!(done.len(), 7);
    }
    if !v0 {
        // 0.6.67 workers fetch the pinned package by manifest hash.
        let hash = state["manifest_hash"].as_str().expect("test step");
        let r = net
            .get(&a.key, &format!("/api/v0/packages/by-manifest/{hash}"))
            .await;
        assert_eq!(r.status, 200);
    }
    let state = sdk.run("finish").await;
    assert_eq!(state["checked"], true);
    assert!(rekor.posts.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    Some(state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_0_5_5_full_flow() {
    let Some(state) = flow("0.5.5", "sdk-lab", "sdk-flow", 21, true).await else {
        return;
    };
    report_table(&state, "0.5.5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_0_6_67_full_flow() {
    let Some(state) = flow("0.6.67", "sdk-lab-new", "sdk-flow-new", 22, false).await else {
        return;
    };
    report_table(&state, "0.6.67");
}

/// `bundle table` needs pandas, which the venvs of `scripts/python-peers.sh`
/// do not install (the `analysis` extra): say so rather than pass silently.
#[allow(clippy::print_stderr)]
fn report_table(state: &serde_json::Value, version: &str) {
    if state["table"] != "written" {
        eprintln!(
            "note: `bundle table` was not run with auspexai-tenant {version}: {} \
             (install auspexai-tenant[analysis]=={version} in target/py-{version})",
            state["table"]
        );
    }
}
