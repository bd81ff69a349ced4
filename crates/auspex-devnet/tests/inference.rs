//! An experiment that uses the inference client, end to end on the devnet:
//! its manifest declares a model, the devnet's three workers serve the
//! model *stand-in* through the real per-unit broker (`worker.md` §7), a
//! stdlib-only executor inside the bubblewrap sandbox asks it for text,
//! the replicas agree (the stand-in is deterministic), receipts are issued,
//! the attestation is anchored, and the exported rows carry
//! `served_weights` and `generation_options` under verifying v3 worker
//! signatures.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use auspex_crypto::worker_sig::{SignedResult, verify_row};
use auspex_devnet::DevnetConfig;
use auspex_wire::attestation::AttestationResponse;
use auspex_wire::json::{self, Value};

use auspex_worker::broker::standin::{CONTENT_PREFIX, standin_gguf_bytes};
use common::{Tenant, obj};

const MODEL: &str = "standin-tiny";
const LABEL: &str = "standin-chat-v1";
const UNITS: usize = 4;

/// `(unit_id, worker_id, semantic_hash, served_weights_json,
/// generation_options_json)` of one stored replica.
type Replica = (String, String, String, String, String);

/// A stdlib-only executor speaking the broker protocol itself.
const EXECUTOR: &str = r#"import json, os, socket, sys

def ask(request):
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(60)
    conn.connect(os.environ["AUSPEXAI_INFERENCE_SOCKET"])
    conn.sendall((json.dumps(request) + "\n").encode("utf-8"))
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    conn.close()
    return json.loads(data.decode("utf-8"))

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
with open(args["--input"], encoding="utf-8") as f:
    unit = json.load(f)
model = os.environ["AUSPEXAI_INFERENCE_MODEL"]
prompt = unit["payload"]["prompt"]
info = ask({"op": "info"})
reply = ask({"op": "generate", "model": model,
             "messages": [{"role": "user", "content": prompt}],
             "options": {"num_predict": 6}})
refused = ask({"op": "generate", "model": "someone-else",
               "messages": [{"role": "user", "content": prompt}]})
out = {"schema_version": "0.1", "unit_id": unit["unit_id"],
       "completed_at": "2026-07-01T00:00:00Z", "exit_code": 0,
       "payload": {"prompt": prompt, "gguf_sha256": info["gguf_sha256"],
                   "text": reply["message"]["content"], "eval_count": reply["eval_count"],
                   "refused": refused["error"]}}
with open(args["--output"] + ".tmp", "w", encoding="utf-8") as f:
    json.dump(out, f)
os.rename(args["--output"] + ".tmp", args["--output"])
"#;

/// Uploads a signed manifest declaring the stand-in model and the package;
/// returns `(experiment id, manifest hash)`.
async fn create_experiment(tenant: &Tenant, work: &std::path::Path) -> (String, String) {
    let package = common::Package {
        files: vec![("executor.py".into(), EXECUTOR.as_bytes().to_vec())],
        command: vec!["python3".into(), "executor.py".into()],
    };
    common::create_experiment_edited(tenant, work, &package, 3, |m| {
        m.insert("experiment_id".into(), Value::from(LABEL));
        m.insert(
            "models".into(),
            Value::Array(vec![obj(vec![
                ("id", Value::from(MODEL)),
                ("version", Value::from("stand-in")),
                ("local_weights_required", Value::Bool(true)),
            ])]),
        );
    })
    .await
}

async fn submit_prompts(tenant: &Tenant, id: &str, manifest_hash: &str) {
    let units: Vec<Value> = (0..UNITS)
        .map(|i| {
            obj(vec![
                ("schema_version", Value::from("0.1")),
                ("unit_id", Value::from(format!("u-{i:03}"))),
                ("tenant_id", Value::from("auspex-examples")),
                ("experiment_id", Value::from(LABEL)),
                ("manifest_sha256", Value::from(manifest_hash)),
                (
                    "payload",
                    obj(vec![(
                        "prompt",
                        Value::from(format!("Question number {i}?")),
                    )]),
                ),
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inference_experiment_runs_on_the_stand_in_and_its_rows_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let (devnet, tenant) = common::start(DevnetConfig {
        state_dir: Some(state.clone()),
        workers: 3,
        stand_in_model: Some(MODEL.into()),
        ..DevnetConfig::default()
    })
    .await;
    let info = devnet.info().clone();
    let model_file = state.join("models").join(MODEL).join("standin.gguf");
    let digest = auspex_wire::sha256_hex(&standin_gguf_bytes(MODEL));
    assert_eq!(
        auspex_wire::sha256_hex(&std::fs::read(&model_file).expect("stand-in model file")),
        digest
    );

    let (id, hash) = create_experiment(&tenant, dir.path()).await;
    submit_prompts(&tenant, &id, &hash).await;
    let bytes = common::wait_anchored_attestation(
        &tenant,
        &id,
        Duration::from_secs(240),
        Duration::from_millis(300),
    )
    .await;
    let response = AttestationResponse::parse(&bytes).expect("attestation response");
    let verified = common::verify_final(&info, &response);
    assert_eq!(verified.predicate().units.len(), UNITS);

    // The exported consensus rows: served weights and the chain the broker
    // sent, under verifying v3 worker signatures.
    let bundle = tenant
        .json(
            "GET",
            &format!("/api/v0/experiments/{id}/results/export"),
            None,
        )
        .await;
    let rows = bundle
        .get("consensus_results")
        .and_then(Value::as_array)
        .expect("consensus_results");
    assert_eq!(rows.len(), UNITS);
    let chain = r#"[{"top_k":1,"top_p":1.0,"min_p":0.0,"typical_p":1.0,"repeat_penalty":1.0,"repeat_last_n":0,"presence_penalty":0.0,"frequency_penalty":0.0,"mirostat":0,"temperature":0,"seed":0,"num_predict":6}]"#;
    let mut texts = BTreeSet::new();
    for row in rows {
        assert_eq!(row.get("schema_version"), Some(&Value::from(3u64)));
        assert_eq!(row.get("ran_under").and_then(Value::as_str), Some("strict"));
        assert_eq!(
            auspex_worker::jsonfmt::compact(row.get("served_weights").expect("served_weights")),
            format!("{{\"{MODEL}\":\"{digest}\"}}")
        );
        assert_eq!(
            auspex_worker::jsonfmt::compact(
                row.get("generation_options").expect("generation_options")
            ),
            chain
        );
        let signed = SignedResult::from_value(row).expect("signed members");
        let sig = row
            .get("worker_signature")
            .and_then(Value::as_str)
            .expect("signature");
        verify_row(&signed, sig).expect("the v3 worker signature verifies");
        let payload = row.get("payload").expect("payload");
        assert_eq!(
            payload.get("gguf_sha256").and_then(Value::as_str),
            Some(digest.as_str())
        );
        assert_eq!(payload.get("eval_count"), Some(&Value::from(6u64)));
        assert_eq!(
            payload.get("refused").and_then(Value::as_str),
            Some("unauthorized_model")
        );
        let text = payload
            .get("text")
            .and_then(Value::as_str)
            .expect("text")
            .to_owned();
        assert!(text.starts_with(CONTENT_PREFIX), "{text}");
        texts.insert(text);
        assert_eq!(
            row.get("environment")
                .and_then(|e| e.get("ollama_version"))
                .and_then(Value::as_str),
            Some(format!("auspex-standin/{}", env!("CARGO_PKG_VERSION")).as_str())
        );
    }
    assert_eq!(texts.len(), UNITS, "different prompts, different text");
    assert_eq!(
        bundle
            .get("receipts")
            .and_then(Value::as_array)
            .map(Vec::len),
        Some(UNITS)
    );

    // Every replica of every unit: three workers, one semantic hash, the
    // same served weights and chain.
    let conn = rusqlite::Connection::open_with_flags(
        state.join("coordinator").join("coordinator.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("coordinator db");
    let replicas: Vec<Replica> = conn
        .prepare(
            "SELECT unit_id, worker_id, semantic_hash, served_weights_json, \
             generation_options_json FROM results WHERE experiment_id = ?1",
        )
        .expect("prepare")
        .query_map([&id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let mut per_unit: BTreeMap<&str, Vec<&Replica>> = BTreeMap::new();
    for r in &replicas {
        per_unit.entry(r.0.as_str()).or_default().push(r);
    }
    assert_eq!(per_unit.len(), UNITS);
    for (unit, rs) in per_unit {
        assert_eq!(rs.len(), 3, "{unit}");
        let workers: BTreeSet<&str> = rs.iter().map(|r| r.1.as_str()).collect();
        assert_eq!(workers.len(), 3, "{unit}: three different workers");
        let hashes: BTreeSet<&str> = rs.iter().map(|r| r.2.as_str()).collect();
        assert_eq!(hashes.len(), 1, "{unit}: the replicas agree");
        for r in rs {
            assert_eq!(
                json::canonical(&json::parse(r.3.as_bytes()).expect("weights")),
                format!("{{\"{MODEL}\":\"{digest}\"}}")
            );
            assert_eq!(
                json::canonical(&json::parse(r.4.as_bytes()).expect("chain")),
                json::canonical(&json::parse(chain.as_bytes()).expect("chain"))
            );
        }
    }
    drop(conn);
    devnet.shutdown().await;
}
