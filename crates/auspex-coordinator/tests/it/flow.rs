//! The whole researcher + worker flow: consensus, divergence, receipts,
//! results pages, completion.

use auspex_crypto::cose::CoseSign1;
use auspex_wire::attestation::Statement;
use auspex_wire::receipt::decode_cbor;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn three_workers_consensus_receipts_pages() {
    let net = Net::start().await;
    let key = tenant_key();
    let (exp, hash) = net.ready("flow-one", 3).await;
    let ids = ["u1", "u2", "u3", "u4", "u5"];
    let r = net.submit(&exp, "flow-one", &hash, &ids).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let workers = [
        Worker::enroll(&net, 71).await,
        Worker::enroll(&net, 72).await,
        Worker::enroll(&net, 73).await,
    ];
    // Worker 3 disagrees on u5.
    for (n, w) in workers.iter().enumerate() {
        loop {
            let dissent = n == 2;
            let out = w
                .work_once(&net, &|u| {
                    if dissent && u == "u5" {
                        json!({"answer": "other"})
                    } else {
                        json!({"answer": u})
                    }
                })
                .await;
            let Some((_, r)) = out else { break };
            assert_eq!(r.status, 201, "{}", r.text);
        }
    }
    let r = net
        .get(&key, &format!("/api/v0/experiments/{exp}/work-units"))
        .await;
    assert_eq!(r.body["counts_by_status"], json!({"completed": 5}));
    let r = net.get(&key, &format!("/api/v0/experiments/{exp}")).await;
    assert_eq!(r.body["status"], "approved");
    assert_eq!(r.body["run_phase"], "running");

    // Receipts: 4 agreed units × 3 workers.
    let r = net
        .get(&key, &format!("/api/v0/experiments/{exp}/receipts"))
        .await;
    let receipts = r.body["receipts"].as_array().expect("test step").clone();
    assert_eq!(receipts.len(), 12);
    assert!(
        receipts
            .iter()
            .all(|x| x["experiment_id"] == exp.as_str() && x["issued_at"].is_string())
    );

    // Raw pages of 4 with the cursor: 15 results.
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("?include=raw&limit=4&cursor={}", urlencode(c)),
            None => "?include=raw&limit=4".to_owned(),
        };
        let r = net
            .get(&key, &format!("/api/v0/experiments/{exp}/results{q}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let page = r.body["results"].as_array().expect("test step").clone();
        let next = r
            .body
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        assert_eq!(next.is_some(), page.len() == 4);
        all.extend(page);
        match next {
            Some(c) => {
                assert!(c.contains('|') && c.contains("+00:00"), "{c}");
                cursor = Some(c);
            }
            None => break,
        }
    }
    assert_eq!(all.len(), 15);
    let distinct: std::collections::HashSet<_> =
        all.iter().map(|x| x["result_id"].clone()).collect();
    assert_eq!(distinct.len(), 15);
    // completed_at verbatim, as the worker signed it.
    assert!(
        all.iter()
            .all(|x| x["completed_at"] == "2026-07-01T12:00:00.000001Z")
    );

    // Consensus: one row per agreed unit; the diverged unit has none.
    let r = net
        .get(
            &key,
            &format!("/api/v0/experiments/{exp}/results?include=consensus"),
        )
        .await;
    let cons = r.body["results"].as_array().expect("test step").clone();
    assert_eq!(cons.len(), 4);
    assert!(r.body.get("next_cursor").is_none());
    for row in &cons {
        assert_eq!(row["is_consensus"], true);
        assert!(
            row["receipt_id"]
                .as_str()
                .expect("test step")
                .starts_with("rcpt-")
        );
        assert_eq!(row["payload"]["answer"], row["unit_id"]);
        assert_eq!(row["semantic_hash"].as_str().expect("test step").len(), 64);
        let one = net
            .get(
                &key,
                &format!(
                    "/api/v0/experiments/{exp}/results/{}",
                    row["result_id"].as_str().expect("test step")
                ),
            )
            .await;
        assert_eq!(&one.body, row);
    }
    assert!(!cons.iter().any(|x| x["unit_id"] == "u5"));
    let r = net
        .get(&key, &format!("/api/v0/experiments/{exp}/results/res-nope"))
        .await;
    assert_eq!((r.status, r.code()), (404, "result_not_found"));

    // Each worker's canonical receipts verify under the coordinator key.
    let coord = net.server.state().key().public_hex().to_owned();
    for w in &workers {
        let mine: Vec<&Value> = all
            .iter()
            .filter(|x| x["worker_pubkey_hex"] == w.pubkey().as_str())
            .collect();
        assert_eq!(mine.len(), 5);
        for row in mine {
            let rid = row["result_id"].as_str().expect("test step");
            let r = net
                .get(
                    &w.key,
                    &format!("/api/v0/workers/{}/results/{rid}/canonical-receipt", w.id),
                )
                .await;
            if row["unit_id"] == "u5" {
                assert_eq!((r.status, r.code()), (410, "receipt_will_not_issue"));
                assert_eq!(
                    r.body["detail"]["error"]["details"]["reason"],
                    "quorum_disagreed"
                );
                continue;
            }
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["signing_key_pubkey_hex"], coord.as_str());
            let blob = STANDARD
                .decode(r.body["cose_signed_blob_b64"].as_str().expect("test step"))
                .expect("test step");
            let cose = CoseSign1::decode(&blob).expect("test step");
            let signer = cose.verify(None).expect("test step");
            assert_eq!(signer.hex(), coord);
            let st = Statement::decode(cose.payload()).expect("test step");
            assert!(st.subject_digest_matches());
            assert_eq!(st.predicate_type, "https://auspexai.network/receipt/v0");
            let rc = decode_cbor(&st.predicate).expect("test step");
            assert_eq!(rc.tenant_id, TENANT);
            assert_eq!(rc.experiment_id, "flow-one");
            assert_eq!(
                rc.work_unit_ids,
                vec![row["unit_id"].as_str().expect("test step").to_owned()]
            );
            assert_eq!(rc.quorum_agreement.replication_factor, 3);
            assert_eq!(rc.quorum_agreement.agreeing_workers, 3);
            assert_eq!(rc.quorum_agreement.method, "builtin_hash_agreement");
            assert_eq!(rc.result_hash_anchors.len(), 3);
            assert_eq!(auspex_wire::hex_lower(&rc.worker_pubkey), w.pubkey());
            assert_eq!(r.body["receipt"]["tenant_id"], TENANT);
            // The public route serves the same bytes.
            let id = r.body["receipt_id"].as_str().expect("test step");
            let p = net
                .anonymous("GET", &format!("/api/v0/receipts/{id}"), None)
                .await;
            assert_eq!(
                p.body["cose_signed_blob_b64"],
                r.body["cose_signed_blob_b64"]
            );
        }
    }

    // Finalize: every unit is settled, so the run completes.
    let r = net
        .signed(
            &key,
            "POST",
            &format!("/api/v0/experiments/{exp}/actions/finalize-submissions"),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "completed", "{}", r.text);
    assert!(r.body["completed_at"].is_string());
    let events = net.server.state().events().recent(Some(&exp), 100);
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"experiment.submitted"));
    assert_eq!(kinds.iter().filter(|k| **k == "unit.progress").count(), 15);
    assert_eq!(kinds.iter().filter(|k| **k == "receipt.issued").count(), 4);
    // Completion, then its attestation.
    assert_eq!(
        &kinds[kinds.len() - 2..],
        &["experiment.status", "attestation.issued"]
    );
}

#[tokio::test]
async fn auto_complete_after_finalize_when_last_unit_settles() {
    let net = Net::start_with(|c| c.auto_approve(true)).await;
    let key = tenant_key();
    net.add_tenant(TENANT, &key).await;
    let (exp, hash) = net.upload(&key, TENANT, "auto-one", 1).await;
    let r = net.get(&key, &format!("/api/v0/experiments/{exp}")).await;
    assert_eq!(r.body["status"], "approved");
    assert_eq!(r.body["last_action_by_class"], "system");
    net.submit(&exp, "auto-one", &hash, &["only"]).await;
    let r = net
        .signed(
            &key,
            "POST",
            &format!("/api/v0/experiments/{exp}/actions/finalize-submissions"),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "approved");
    assert_eq!(r.body["run_phase"], "completing");
    let w = Worker::enroll(&net, 81).await;
    let (_, r) = w
        .work_once(&net, &|_| json!({"ok": true}))
        .await
        .expect("test step");
    assert_eq!(r.body["unit_status_after"], "completed");
    let r = net.get(&key, &format!("/api/v0/experiments/{exp}")).await;
    assert_eq!(r.body["status"], "completed");
    assert_eq!(r.body["integrity_policy"], "trusted");
}

#[tokio::test]
async fn process_only_gives_every_replica_a_receipt() {
    let net = Net::start().await;
    let key = tenant_key();
    net.add_tenant(TENANT, &key).await;
    let mut m = manifest_value(TENANT, "proc-one", 2, "builtin_process_only");
    m["schema_version"] = json!("0.6");
    let s = {
        let parsed =
            auspex_wire::manifest::parse_manifest(&serde_json::to_vec(&m).expect("test step"))
                .expect("test step");
        let sig = auspex_crypto::manifest::sign_manifest(
            &parsed,
            &key,
            auspex_wire::manifest::SdkProfile::V0_6_67,
        )
        .expect("test step");
        json!({"sig_v": sig.sig_v, "maintainer_pubkey": sig.maintainer_pubkey, "signature": sig.signature})
    };
    let r = net
        .post(
            &key,
            "/api/v0/experiments",
            &json!({"manifest": m, "signature": s}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let exp = r.body["experiment_id"]
        .as_str()
        .expect("test step")
        .to_owned();
    let hash = r.body["manifest_hash"]
        .as_str()
        .expect("test step")
        .to_owned();
    net.approve(&exp, "").await;
    net.submit(&exp, "proc-one", &hash, &["p1"]).await;
    let a = Worker::enroll(&net, 91).await;
    let b = Worker::enroll(&net, 92).await;
    a.work_once(&net, &|_| json!({"v": "a"}))
        .await
        .expect("test step");
    b.work_once(&net, &|_| json!({"v": "b"}))
        .await
        .expect("test step");
    let r = net
        .get(&key, &format!("/api/v0/experiments/{exp}/receipts"))
        .await;
    assert_eq!(r.body["receipts"].as_array().expect("test step").len(), 2);
    let r = net
        .get(
            &key,
            &format!("/api/v0/experiments/{exp}/results?include=consensus"),
        )
        .await;
    assert_eq!(r.body["results"].as_array().expect("test step").len(), 1);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn tolerance_reducer_receipts_inliers_and_flags_the_outlier() {
    let net = Net::start().await;
    let key = tenant_key();
    net.add_tenant(TENANT, &key).await;
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../auspex-wire/tests/fixtures/manifests/v0_3_example.json");
    let mut m: Value =
        serde_json::from_slice(&std::fs::read(fixture).expect("fixture")).expect("fixture JSON");
    m["experiment_id"] = json!("tol-one");
    m["replication_factor"] = json!(3);
    m["tenant_maintainer_contact"] = json!("ada@example.com");
    let parsed = auspex_wire::manifest::parse_manifest(&serde_json::to_vec(&m).expect("json"))
        .expect("valid v0.3 manifest");
    let sig = auspex_crypto::manifest::sign_manifest(
        &parsed,
        &key,
        auspex_wire::manifest::SdkProfile::V0_6_67,
    )
    .expect("signable");
    let s = json!({"sig_v": sig.sig_v, "maintainer_pubkey": sig.maintainer_pubkey, "signature": sig.signature});
    let r = net
        .post(
            &key,
            "/api/v0/experiments",
            &json!({"manifest": m, "signature": s}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["replication_floor"], 2);
    let exp = r.body["experiment_id"].as_str().expect("id").to_owned();
    let hash = r.body["manifest_hash"].as_str().expect("hash").to_owned();
    net.approve(&exp, "").await;
    net.submit(&exp, "tol-one", &hash, &["t1"]).await;
    let ws = [
        (Worker::enroll(&net, 131).await, 0.50),
        (Worker::enroll(&net, 132).await, 0.52),
        (Worker::enroll(&net, 133).await, 0.90),
    ];
    let mut ids = Vec::new();
    for (w, ratio) in &ws {
        let ratio = *ratio;
        let (_, r) = w
            .work_once(
                &net,
                &move |_| json!({"lexical": {"type_token_ratio": ratio}, "response_sha256": "h1"}),
            )
            .await
            .expect("work");
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.body["result_id"].as_str().expect("id").to_owned());
    }
    let r = net
        .get(&key, &format!("/api/v0/experiments/{exp}/receipts"))
        .await;
    assert_eq!(r.body["receipts"].as_array().expect("list").len(), 2);
    let r = net
        .get(
            &key,
            &format!("/api/v0/experiments/{exp}/results?include=consensus"),
        )
        .await;
    let rows = r.body["results"].as_array().expect("list").clone();
    assert_eq!(rows.len(), 1);
    let ev = &rows[0]["consensus_evidence"];
    assert_eq!(ev["method"], "builtin_within_cell_tolerance");
    assert_eq!(ev["agreeing_workers"], 2);
    assert_eq!(ev["outlier_count"], 1);
    let (outlier, _) = &ws[2];
    let r = net
        .get(
            &outlier.key,
            &format!(
                "/api/v0/workers/{}/results/{}/canonical-receipt",
                outlier.id, ids[2]
            ),
        )
        .await;
    assert_eq!((r.status, r.code()), (410, "receipt_will_not_issue"));
    assert_eq!(
        r.body["detail"]["error"]["details"]["reason"],
        "diverged_from_consensus"
    );
}
