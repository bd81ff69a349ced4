//! The official SDK's Rekor check (`auspexai_tenant.attestation.
//! verify_rekor_inclusion`, what `--check-rekor` runs) against this service:
//! with `rekor_url` pointing here it must report our entries included, with
//! every flag true, and must notice a wrong index or artifact.
//!
//! A missing virtual environment fails the test with a hint to run
//! `bash scripts/python-peers.sh`, unless `AUSPEX_SKIP_INTEROP=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use auspex_crypto::tlog::RekorEntry;
use auspex_wire::json::{self, Object, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::common::*;

const SCRIPT: &str = r#"
import base64, json, sys
from auspexai_tenant.attestation import verify_rekor_inclusion
jobs = json.load(open(sys.argv[1]))
out = []
for job in jobs:
    r = verify_rekor_inclusion(
        base64.b64decode(job["cose_b64"]),
        log_index=job["log_index"],
        entry_uuid=job["uuid"],
        rekor_url=job["url"],
    )
    out.append({
        "checked": r.checked,
        "entry_found": r.entry_found,
        "log_index_matches": r.log_index_matches,
        "artifact_committed": r.artifact_committed,
        "inclusion_proof_verified": r.inclusion_proof_verified,
        "included": r.included,
        "error": r.error,
        "tree_size": r.tree_size,
    })
print(json.dumps(out))
"#;

/// The SDK `version` interpreter: `$AUSPEX_PYTHON_<digits>`, else
/// `<workspace>/target/py-<version>/bin/python`.
#[allow(clippy::print_stderr)] // says that a check was knowingly skipped
fn python(version: &str, required: bool) -> Option<PathBuf> {
    let var = format!("AUSPEX_PYTHON_{}", version.replace('.', ""));
    let path = std::env::var_os(&var)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../../target/py-{version}/bin/python"))
        });
    if path.exists() {
        // Resolve `..` through the venv's directory, not the interpreter
        // (a symlink out of the venv): Python finds pyvenv.cfg from it.
        let real = match (path.parent().map(Path::canonicalize), path.file_name()) {
            (Some(Ok(dir)), Some(name)) => dir.join(name),
            _ => path,
        };
        return Some(real);
    }
    if !required {
        eprintln!("auspexai-tenant {version} not installed: its Rekor check NOT RUN");
        return None;
    }
    if std::env::var_os("AUSPEX_SKIP_INTEROP").is_some_and(|v| v == "1") {
        eprintln!(
            "Rekor interop with auspexai-tenant {version} NOT CHECKED: {} missing and \
             AUSPEX_SKIP_INTEROP=1",
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

struct Job {
    cose: Vec<u8>,
    log_index: u64,
    uuid: String,
}

fn run(python: &Path, url: &str, jobs: &[Job]) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jobs.json");
    let list: Vec<Value> = jobs
        .iter()
        .map(|j| {
            let mut o = Object::new();
            o.insert("cose_b64".into(), Value::from(STANDARD.encode(&j.cose)));
            o.insert("log_index".into(), Value::from(j.log_index));
            o.insert("uuid".into(), Value::from(j.uuid.as_str()));
            o.insert("url".into(), Value::from(url));
            Value::Object(o)
        })
        .collect();
    std::fs::write(&path, json::canonical(&Value::Array(list))).expect("write jobs");
    let out = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(&path)
        .env("NO_PROXY", "*")
        .output()
        .expect("run the SDK");
    assert!(
        out.status.success(),
        "the SDK script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match parse(&out.stdout) {
        Value::Array(v) => v,
        other => panic!("unexpected output {other:?}"),
    }
}

fn flag(v: &Value, k: &str) -> bool {
    matches!(v.get(k), Some(Value::Bool(true)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdk_reports_our_entries_included() {
    let pythons: Vec<PathBuf> = [("0.5.5", true), ("0.6.67", false)]
        .into_iter()
        .filter_map(|(v, required)| python(v, required))
        .collect();
    if pythons.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tlog = start(dir.path()).await;
    let url = tlog.url().to_owned();
    let c = client();

    // Anchor a few attestations the way the coordinators do (rekord 0.0.1
    // and the older intoto 0.0.2), with unrelated entries in between so the
    // proofs have depth.
    let mut jobs = Vec::new();
    for i in 0..13u64 {
        let cose = artifact(7000 + i);
        let proposal = if i == 4 {
            intoto_legacy(&cose)
        } else {
            rekord(&cose, &submitter())
        };
        let (status, _, body) = post(&c, &url, proposal).await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        let e = RekorEntry::parse(&body).expect("entry");
        if i % 3 == 1 || i == 4 || i == 12 {
            jobs.push(Job {
                cose,
                log_index: e.log_index,
                uuid: e.uuid.expect("uuid"),
            });
        }
    }
    // The bare leaf hash works as an entry UUID too.
    let bare = Job {
        cose: jobs[0].cose.clone(),
        log_index: jobs[0].log_index,
        uuid: jobs[0].uuid[16..].to_owned(),
    };
    jobs.push(bare);
    let n_good = jobs.len();
    // Negative controls: the SDK really checks what it claims to.
    jobs.push(Job {
        cose: jobs[0].cose.clone(),
        log_index: jobs[0].log_index + 1,
        uuid: jobs[0].uuid.clone(),
    });
    jobs.push(Job {
        cose: b"some other artifact".to_vec(),
        log_index: jobs[0].log_index,
        uuid: jobs[0].uuid.clone(),
    });
    jobs.push(Job {
        cose: jobs[0].cose.clone(),
        log_index: jobs[0].log_index,
        uuid: format!("{:016x}{}", tlog.tree_id(), "ab".repeat(32)),
    });

    for python in pythons {
        let jobs_owned: Vec<Job> = jobs
            .iter()
            .map(|j| Job {
                cose: j.cose.clone(),
                log_index: j.log_index,
                uuid: j.uuid.clone(),
            })
            .collect();
        let url2 = url.clone();
        let results = tokio::task::spawn_blocking(move || run(&python, &url2, &jobs_owned))
            .await
            .expect("sdk");
        assert_eq!(results.len(), jobs.len());
        for (i, r) in results.iter().take(n_good).enumerate() {
            for k in [
                "checked",
                "entry_found",
                "log_index_matches",
                "artifact_committed",
                "inclusion_proof_verified",
                "included",
            ] {
                assert!(flag(r, k), "job {i}: {k} is not true: {r:?}");
            }
            assert_eq!(r.get("error"), Some(&Value::Null), "{r:?}");
            assert_eq!(
                r.get("tree_size").and_then(|v| match v {
                    Value::Int(i) => i.as_u64(),
                    _ => None,
                }),
                Some(13)
            );
        }
        let wrong_index = &results[n_good];
        assert!(flag(wrong_index, "entry_found") && !flag(wrong_index, "log_index_matches"));
        assert!(!flag(wrong_index, "included"));
        let wrong_artifact = &results[n_good + 1];
        assert!(flag(wrong_artifact, "inclusion_proof_verified"));
        assert!(!flag(wrong_artifact, "artifact_committed"));
        assert!(!flag(wrong_artifact, "included"));
        let unknown = &results[n_good + 2];
        assert!(!flag(unknown, "entry_found") && !flag(unknown, "included"));
    }
    tlog.shutdown().await.expect("shutdown");
}
