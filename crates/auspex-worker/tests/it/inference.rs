//! The inference broker from the outside: the official SDK's
//! `InferenceClient` (`lite.py`, 0.5.5 and 0.6.67) against our socket, and
//! an executor inside the real bubblewrap sandbox reaching its broker.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use auspex_wire::json::{self, Value};
use auspex_worker::SandboxMode;
use auspex_worker::broker::standin::{CONTENT_PREFIX, StandIn, write_standin_model};
use auspex_worker::broker::{
    Broker, GenerationPolicy, MODEL_ENV, ModelStore, SOCKET_ENV, ServedModel, Session,
};
use auspex_worker::client::Lease;
use auspex_worker::exec::{self, Context};
use auspex_worker::package::verify_dir;

use crate::common::*;

const MODEL: &str = "standin-tiny";

/// The interpreter of the SDK `version` venv: `$AUSPEX_PYTHON_<digits>`,
/// else `<workspace>/target/py-<version>/bin/python`. Missing → the test
/// fails unless `AUSPEX_SKIP_INTEROP=1`.
#[allow(clippy::print_stderr)] // says that a check was knowingly skipped
fn python(version: &str) -> Option<PathBuf> {
    let var = format!("AUSPEX_PYTHON_{}", version.replace('.', ""));
    let path = std::env::var_os(&var)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../../target/py-{version}/bin/python"))
        });
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("AUSPEX_SKIP_INTEROP").is_some_and(|v| v == "1") {
        eprintln!(
            "inference broker interop with auspexai-tenant {version} NOT CHECKED: {} missing \
             and AUSPEX_SKIP_INTEROP=1",
            path.display()
        );
        return None;
    }
    panic!(
        "the auspexai-tenant {version} interpreter {} does not exist: run \
         `bash scripts/python-peers.sh` (or set {var}), or set AUSPEX_SKIP_INTEROP=1 to skip \
         the interop tests knowingly",
        path.display()
    );
}

fn served(store: &Path) -> ServedModel {
    write_standin_model(store, MODEL).expect("stand-in model");
    ModelStore::new(store).serve(MODEL).expect("served")
}

/// Calls the official client; prints what it got as JSON.
const CLIENT: &str = r#"
import json
from auspexai_tenant.lite import InferenceClient, InferenceError

c = InferenceClient.from_env()
out = {"info": c.info()}
out["generate"] = c.generate([{"role": "user", "content": "Say hello"}], options={"num_predict": 5})
out["again"] = c.generate([{"role": "user", "content": "Say hello"}], options={"num_predict": 5, "seed": 9})
out["default"] = c.generate([{"role": "user", "content": "Say hello"}])
errors = []
for kwargs in (
    {"messages": [{"role": "user", "content": "x"}], "model": "other"},
    {"messages": [{"role": "user", "content": "x"}], "options": {"temperature": 0.5}},
    {"messages": [{"role": "user", "content": "x"}], "options": {"top_k": 40}},
    {"messages": []},
):
    try:
        c.generate(**kwargs)
        errors.append(None)
    except InferenceError as e:
        errors.append([e.code, e.detail])
out["errors"] = errors
print(json.dumps(out))
"#;

async fn official_client_round_trip(version: &str) {
    let Some(py) = python(version) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let model = served(&dir.path().join("models"));
    let sock_dir = dir.path().join("ws");
    std::fs::create_dir_all(&sock_dir).expect("mkdir");
    let session = Session::open(
        &sock_dir,
        Broker::new(model.clone(), Arc::new(StandIn), GenerationPolicy::greedy()),
    )
    .expect("broker");
    let out = tokio::process::Command::new(&py)
        .arg("-c")
        .arg(CLIENT)
        .env(SOCKET_ENV, session.path())
        .env(MODEL_ENV, MODEL)
        .output()
        .await
        .expect("python runs");
    assert!(
        out.status.success(),
        "{version}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = json::parse(&out.stdout).expect("client output JSON");
    let info = got.get("info").expect("info");
    assert_eq!(info.get("ok"), Some(&Value::Bool(true)));
    assert_eq!(info.get("model").and_then(Value::as_str), Some(MODEL));
    assert_eq!(
        info.get("gguf_sha256").and_then(Value::as_str),
        Some(model.gguf_sha256.as_str())
    );
    assert_eq!(
        info.get("backend_handle").and_then(Value::as_str),
        Some("auspex-standin-tiny")
    );
    let generated = got.get("generate").expect("generate");
    assert_eq!(generated.get("model").and_then(Value::as_str), Some(MODEL));
    assert_eq!(generated.get("eval_count"), Some(&Value::from(5u64)));
    let message = generated.get("message").expect("message");
    assert_eq!(
        message.get("role").and_then(Value::as_str),
        Some("assistant")
    );
    let text = message
        .get("content")
        .and_then(Value::as_str)
        .expect("content");
    assert!(text.starts_with(CONTENT_PREFIX), "{text}");
    // Greedy: a different seed changes nothing.
    assert_eq!(got.get("again"), Some(generated));
    assert_eq!(
        got.get("default").and_then(|d| d.get("eval_count")),
        Some(&Value::from(24u64))
    );
    let errors = got.get("errors").and_then(Value::as_array).expect("errors");
    let codes: Vec<&str> = errors
        .iter()
        .map(|e| e.as_array().and_then(|a| a[0].as_str()).unwrap_or("none"))
        .collect();
    assert_eq!(
        codes,
        [
            "unauthorized_model",
            "params_rejected",
            "params_rejected",
            "bad_request"
        ]
    );
    let record = session.close();
    assert_eq!(record.accepted, 3);
    // Two distinct chains: num_predict 5 with seed 0, then seed 9; the
    // default call differs again (no num_predict).
    let chains: Vec<String> = record
        .generation_options
        .iter()
        .map(|o| auspex_worker::jsonfmt::compact(&Value::Object(o.clone())))
        .collect();
    assert_eq!(chains.len(), 3, "{chains:?}");
    assert!(chains[0].ends_with(r#""temperature":0,"seed":0,"num_predict":5}"#));
    assert!(chains[1].ends_with(r#""temperature":0,"seed":9,"num_predict":5}"#));
    assert!(chains[2].ends_with(r#""temperature":0,"seed":0}"#));
}

#[tokio::test]
async fn the_official_0_6_67_client_talks_to_the_broker() {
    official_client_round_trip("0.6.67").await;
}

#[tokio::test]
async fn the_official_0_5_5_client_talks_to_the_broker() {
    official_client_round_trip("0.5.5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandboxed_executor_reaches_its_broker_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    let src = dir.path().join("src");
    copy_dir(&fixture("inference"), &src);
    let digest = auspex_wire::package::package_digest(&src)
        .expect("digest")
        .sha256;
    let manifest = serde_json::json!({
        "executor": {"command": ["python3", "executor.py"], "package_sha256": digest},
        "experiment_id": "inference", "tenant_id": TENANT,
        "models": [{"id": MODEL, "version": "1", "local_weights_required": true}],
    });
    let text = serde_json::to_vec(&manifest).expect("manifest");
    std::fs::write(src.join("manifest.json"), &text).expect("write");
    let hash = json::canonical_sha256(&json::parse(&text).expect("json"));
    std::fs::create_dir_all(work.join("packages")).expect("mkdir");
    let pkg_dir = work.join("packages").join(&hash);
    std::fs::rename(&src, &pkg_dir).expect("rename");
    let pkg = verify_dir(&pkg_dir, &hash, false).expect("verified");
    assert!(pkg.model_required);
    let store = dir.path().join("models");
    let model = served(&store);

    let Value::Object(payload) = Value::from_serde(&serde_json::json!({"prompt": "hello"})) else {
        panic!("payload");
    };
    let lease = Lease {
        assignment_id: None,
        experiment_id: "exp-inference".into(),
        unit_id: "u-1".into(),
        tenant_id: TENANT.into(),
        label: "inference".into(),
        manifest_sha256: hash.clone(),
        created_at: "2026-07-01T00:00:00Z".into(),
        payload,
    };
    let mode = SandboxMode::default();
    let limits = small_limits();
    let ws = work.join("runs").join("0").join("u-1");
    let python = PathBuf::from("/usr/bin/python3");
    let mut inv = exec::prepare(
        &ws,
        &lease,
        &pkg,
        &Context {
            python: &python,
            models_dir: Some(&store),
            sandbox: &mode,
            limits: &limits,
        },
    )
    .expect("prepared");
    let session = Session::open(
        &ws,
        Broker::new(model.clone(), Arc::new(StandIn), GenerationPolicy::greedy()),
    )
    .expect("broker");
    inv.attach_inference(session.path(), MODEL);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let run = exec::run(&inv, &mode, &limits, &rx).await;
    let record = session.close();
    let run = run.unwrap_or_else(|r| panic!("the executor failed: {r}"));
    let report = exec::parse_report(&run.output, false).expect("report");
    let p = Value::Object(report.payload);
    assert_eq!(p.get("model").and_then(Value::as_str), Some(MODEL));
    assert_eq!(
        p.get("gguf_sha256").and_then(Value::as_str),
        Some(model.gguf_sha256.as_str())
    );
    assert_eq!(p.get("eval_count"), Some(&Value::from(6u64)));
    assert_eq!(
        p.get("refused").and_then(Value::as_str),
        Some("unauthorized_model")
    );
    let text = p.get("text").and_then(Value::as_str).expect("text");
    assert!(text.starts_with(CONTENT_PREFIX), "{text}");
    // The broker saw exactly the one accepted generate and its chain.
    assert_eq!(record.accepted, 1);
    assert_eq!(record.generation_options.len(), 1);
    assert_eq!(
        auspex_worker::jsonfmt::compact(&Value::Object(record.generation_options[0].clone())),
        r#"{"top_k":1,"top_p":1.0,"min_p":0.0,"typical_p":1.0,"repeat_penalty":1.0,"repeat_last_n":0,"presence_penalty":0.0,"frequency_penalty":0.0,"mirostat":0,"temperature":0,"seed":0,"num_predict":6}"#
    );
    assert!(!ws.join("inference.sock").exists());
    let _ = std::fs::remove_dir_all(&ws);
}
