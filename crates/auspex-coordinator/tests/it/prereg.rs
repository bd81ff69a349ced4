//! Pre-registration anchors and deviations: signed at upload / declaration,
//! anchored in the log before the attestation, carried in the evidence
//! bundle, and accepted by the official 0.6.67 verifier (`pre-reg`,
//! `design<data`, `deviations`).

use std::process::Command;

use auspex_crypto::cose::CoseSign1;
use auspex_crypto::manifest::sign_manifest;
use auspex_wire::attestation::Statement;
use auspex_wire::manifest::{SdkProfile, parse_manifest};
use auspex_wire::receipt::cbor::{self, Cbor};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::common::*;

const LABEL: &str = "prereg-one";

fn prereg_manifest() -> Value {
    let mut m = manifest_value(TENANT, LABEL, 1, "builtin_hash_agreement");
    m["schema_version"] = json!("0.4");
    m["feature_schema"] = json!({
        "answer": {"meaning": "the doubled value", "kind": "count", "role": "summary",
                   "change_means": "the computation changed",
                   "comparison": {"rule": "set_jaccard", "min": 0.9}}
    });
    m["pre_registration"] = json!({
        "version": "0.1",
        "hypothesis": "Doubling is exact on every volunteer machine — même résultat.",
        "analysis_method": "Compare every replica's answer for equality.",
        "features": ["answer"],
        "timescale": "long_horizon",
        "decision_rule": "Any disagreement falsifies the hypothesis.",
        "expected_result": "All agree.",
        "stopping_rule": "Stop after every unit has its replicas."
    });
    m
}

/// Uploads `m` signed (0.6.67 profile) by `key`; asserts 201.
async fn upload(net: &Net, key: &auspex_crypto::keys::TenantKey, m: &Value) -> Resp {
    let parsed = parse_manifest(&serde_json::to_vec(m).expect("json")).expect("valid v0.4");
    let sig = sign_manifest(&parsed, key, SdkProfile::V0_6_67).expect("sign");
    let sig = json!({"sig_v": sig.sig_v, "maintainer_pubkey": sig.maintainer_pubkey, "signature": sig.signature});
    let r = net
        .post(
            key,
            "/api/v0/experiments",
            &json!({"manifest": m, "signature": sig}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r
}

/// The map member `key` of a decoded CBOR map.
fn member<'a>(m: &'a Cbor, key: &str) -> Option<&'a Cbor> {
    match m {
        Cbor::Map(entries) => entries.iter().find_map(|(k, v)| match k {
            Cbor::Text(t) if t == key => Some(v),
            _ => None,
        }),
        _ => None,
    }
}

fn text<'a>(m: &'a Cbor, key: &str) -> &'a str {
    match member(m, key) {
        Some(Cbor::Text(t)) => t,
        other => panic!("{key}: {other:?}"),
    }
}

/// Verifies a coordinator COSE blob and returns (subject, predicate type,
/// decoded predicate).
fn open(cose_b64: &str, signer: &str) -> (String, String, Cbor) {
    let bytes = STANDARD.decode(cose_b64).expect("b64");
    let cose = CoseSign1::decode(&bytes).expect("cose");
    let key: [u8; 32] = hex_bytes(signer).try_into().expect("32 bytes");
    cose.verify(Some(&key)).expect("coordinator signature");
    let st = Statement::decode(cose.payload()).expect("statement");
    assert!(st.subject_digest_matches(), "subject digest");
    let pred = cbor::decode(&st.predicate).expect("predicate");
    (st.subjects[0].name.clone(), st.predicate_type, pred)
}

fn hex_bytes(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_registration_and_deviations_are_anchored_and_bundled() {
    let rekor = FakeRekor::start().await;
    let net = Net::start_with(|c| c.tlog_url(Some(rekor.url()))).await;
    let key = tenant_key();
    net.add_tenant(TENANT, &key).await;
    let m = prereg_manifest();
    let r = upload(&net, &key, &m).await;
    let exp = r.body["experiment_id"].as_str().expect("id").to_owned();
    let hash = r.body["manifest_hash"].as_str().expect("hash").to_owned();
    assert_eq!(net.approve(&exp, "").await.status, 200);
    let coordinator = net.server.state().key().public_hex().to_owned();

    // Deviations: validation, authorization, the tenant's signature.
    let path = format!("/api/v0/experiments/{exp}/pre-registration/deviations");
    let r = net.get(&key, &path).await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"deviations": []})));
    let what = "Switched the primary metric to the median.";
    let why = "Heavy-tailed distribution observed in the pilot — é.";
    let declaration = auspex_coordinator::prereg::declaration_bytes(&hash, what, why);
    let good = STANDARD.encode(key.sign(&declaration));
    let bad = STANDARD.encode(other_key().sign(&declaration));
    let r = net
        .post(
            &key,
            &path,
            &json!({"what_changed": "short", "why": why, "tenant_signature_b64": good}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["detail"][0]["type"], "string_too_short");
    let r = net
        .post(
            &key,
            &path,
            &json!({"what_changed": what, "why": why, "tenant_signature_b64": bad}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "deviation_signature_invalid"),
        "{}",
        r.text
    );
    let r = net
        .maintainer(
            "POST",
            &path,
            Some(&json!({"what_changed": what, "why": why, "tenant_signature_b64": good})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "researcher_or_account_required")
    );
    let other = other_key();
    net.add_tenant("other-lab", &other).await;
    let r = net
        .post(
            &other,
            &path,
            &json!({"what_changed": what, "why": why, "tenant_signature_b64": good}),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "experiment_not_found"));
    let r = net
        .post(
            &key,
            &path,
            &json!({"what_changed": what, "why": why, "tenant_signature_b64": good}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["what_changed"], what);
    assert_eq!(r.body["manifest_hash"], hash.as_str());
    assert_eq!(r.body["tenant_pubkey_hex"], key.public_hex());
    let dev_id = r.body["deviation_id"].as_str().expect("id").to_owned();
    let (subject, ptype, pred) = open(r.body["cose_b64"].as_str().expect("cose"), &coordinator);
    assert_eq!(
        subject,
        format!("auspexai:pre-registration-deviation/{dev_id}")
    );
    assert_eq!(
        ptype,
        "https://auspexai.network/pre-registration-deviation/v0"
    );
    assert_eq!(text(&pred, "manifest_hash"), hash);
    assert_eq!(
        text(&pred, "declaration_sha256"),
        auspex_wire::sha256_hex(&declaration)
    );

    // Data, completion, export.
    let r = net.submit(&exp, LABEL, &hash, &["u1", "u2", "u3"]).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let w = Worker::enroll(&net, 61).await;
    assert_eq!(w.drain(&net, false, &|u| json!({"v": u})).await.len(), 3);
    assert_eq!(net.finalize(&exp).await.status, 200);
    let att = net
        .get(&key, &format!("/api/v0/experiments/{exp}/attestation"))
        .await;
    assert_eq!(att.status, 200, "{}", att.text);
    let bundle = net
        .get(&key, &format!("/api/v0/experiments/{exp}/results/export"))
        .await;
    assert_eq!(bundle.status, 200, "{}", bundle.text);
    let b = &bundle.body;

    let pr = &b["pre_registration"];
    assert_eq!(pr["manifest_hash"], hash.as_str());
    assert_eq!(pr["signing_key_pubkey_hex"], coordinator.as_str());
    let (subject, ptype, pred) = open(pr["cose_b64"].as_str().expect("cose"), &coordinator);
    assert_eq!(subject, format!("auspexai:pre-registration/{exp}"));
    assert_eq!(ptype, "https://auspexai.network/pre-registration/v0");
    assert_eq!(text(&pred, "manifest_hash"), hash);
    assert_eq!(
        text(
            member(&pred, "pre_registration").expect("design"),
            "hypothesis"
        ),
        m["pre_registration"]["hypothesis"].as_str().expect("text")
    );
    // Anchored, and before the attestation: the design precedes the data.
    let pr_index = pr["rekor_log_index"].as_i64().expect("index");
    let att_index = b["attestation"]["rekor_log_index"].as_i64().expect("index");
    assert_ne!(pr["rekor_entry_uuid"], "lab-mode-no-rekor");
    assert!(pr["rekor_inclusion_proof"]["hashes"].is_array());
    assert!(pr_index < att_index, "{pr_index} !< {att_index}");
    let devs = b["deviations"].as_array().expect("deviations");
    assert_eq!(devs.len(), 1);
    assert_eq!(devs[0]["deviation_id"], dev_id.as_str());
    assert_ne!(devs[0]["rekor_entry_uuid"], "lab-mode-no-rekor");

    // The official 0.6.67 verifier accepts all of it.
    let Some(py) = crate::interop::python("0.6.67") else {
        return;
    };
    let file = net.dir.path().join("bundle.json");
    std::fs::write(&file, &bundle.text).expect("write bundle");
    let cli = py.with_file_name("auspexai-tenant");
    let out = Command::new(&cli)
        .args(["bundle", "verify", "--signer", &coordinator])
        .arg(&file)
        .output()
        .expect("run the official CLI");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |prefix: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{stdout}"))
            .to_owned()
    };
    assert!(line("pre-reg:").contains("ok"), "{stdout}");
    assert!(line("design<data:").contains("ok"), "{stdout}");
    assert!(line("deviations:").contains("1 declared"), "{stdout}");
    assert!(!line("deviations:").contains("FAIL"), "{stdout}");
    // A tampered deviation is caught by the official verifier too.
    let mut tampered: Value = serde_json::from_str(&bundle.text).expect("json");
    tampered["deviations"][0]["why"] = json!("A different reason, added later.");
    std::fs::write(&file, tampered.to_string()).expect("write bundle");
    let out = Command::new(&cli)
        .args(["bundle", "verify", "--signer", &coordinator])
        .arg(&file)
        .output()
        .expect("run the official CLI");
    assert!(!out.status.success());
}

/// The official 0.6.67 `experiment deviate` command declares a deviation
/// against the devnet coordinator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_cli_declares_a_deviation() {
    let Some(py) = crate::interop::python("0.6.67") else {
        return;
    };
    let net = Net::start().await;
    let key = tenant_key();
    net.add_tenant(TENANT, &key).await;
    let m = prereg_manifest();
    let r = upload(&net, &key, &m).await;
    let exp = r.body["experiment_id"].as_str().expect("id").to_owned();
    let key_path = net.dir.path().join("tenant_key");
    auspex_crypto::keys::save(&key, &key_path, false).expect("key file");
    let cli = py.with_file_name("auspexai-tenant");
    let url = net.server.url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&cli)
            .args(["experiment", "deviate", &exp, "--coordinator", &url])
            .arg("--key")
            .arg(&key_path)
            .args([
                "--what",
                "Added a robustness check on the median.",
                "--why",
                "Reviewers asked for it after the pilot.",
            ])
            .output()
            .expect("run the official CLI")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let exp = r.body["experiment_id"].as_str().expect("id");
    let r = net
        .get(
            &key,
            &format!("/api/v0/experiments/{exp}/pre-registration/deviations"),
        )
        .await;
    let devs = r.body["deviations"].as_array().expect("list");
    assert_eq!(devs.len(), 1, "{}", r.text);
    assert_eq!(
        devs[0]["what_changed"],
        "Added a robustness check on the median."
    );
}
