//! Result-set attestations, transparency-log anchoring and the evidence
//! bundle, verified with `auspex-crypto`'s verifiers.

use auspex_crypto::attestation::{AttestationInput, AttestationPolicy, verify_attestation};
use auspex_crypto::custody::{CustodyPolicy, verify_root_binding, verify_transfer};
use auspex_crypto::report::Verdict;
use auspex_wire::attestation::AttestationResponse;
use auspex_wire::bundle::EvidenceBundle;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::common::*;

fn coordinator_key(net: &Net) -> [u8; 32] {
    let hex = net.server.state().key().public_hex().to_owned();
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    k
}

fn wire(text: &str) -> auspex_wire::json::Value {
    auspex_wire::json::parse(text.as_bytes()).expect("json")
}

/// Verifies a served attestation; returns the verified value.
fn verified(
    net: &Net,
    text: &str,
    partial: bool,
) -> auspex_crypto::attestation::VerifiedAttestation {
    let resp = AttestationResponse::from_value(&wire(text)).expect("attestation response");
    let v = verify_attestation(
        AttestationInput::Response(&resp),
        &AttestationPolicy {
            authorized_signers: Some(vec![coordinator_key(net)]),
            expect_partial: Some(partial),
        },
    );
    assert!(
        matches!(v.verdict(), Verdict::Verified),
        "{:?}",
        v.report.first_failure()
    );
    v.into_result().expect("verified")
}

/// Tenant + approved experiment with units u1..u6 answered by two workers;
/// the second disagrees on u6 (diverged). Not finalized.
async fn run_two_workers(net: &Net, label: &str) -> (String, Worker, Worker) {
    let (exp, hash) = net.ready(label, 2).await;
    let ids = ["u1", "u2", "u3", "u4", "u5", "u6"];
    let r = net.submit(&exp, label, &hash, &ids).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let seed = label.len() as u8;
    let a = Worker::enroll(net, 200 + seed).await;
    let b = Worker::enroll(net, 100 + seed).await;
    assert_eq!(a.drain(net, false, &|u| json!({"v": u})).await.len(), 6);
    let answered = b
        .drain(net, false, &|u| {
            if u == "u6" {
                json!({"v": "other"})
            } else {
                json!({"v": u})
            }
        })
        .await;
    assert_eq!(answered.len(), 6);
    (exp, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestation_anchor_export_and_restart() {
    let rekor = FakeRekor::start().await;
    let url = rekor.url();
    let net = Net::start_with(|c| c.tlog_url(Some(url))).await;
    let key = tenant_key();
    let (exp, _, _) = run_two_workers(&net, "att-flow").await;
    let path = format!("/api/v0/experiments/{exp}/attestation");

    // 425 before completion, exact envelope.
    let r = net.get(&key, &path).await;
    assert_eq!(r.status, 425, "{}", r.text);
    assert_eq!(
        r.body["detail"]["error"]["code"], "experiment_not_completed",
        "{}",
        r.text
    );
    assert_eq!(
        r.body["detail"]["error"]["details"],
        json!({"status": "approved"})
    );
    // Foreign tenant: 404; anonymous: 403.
    let other = other_key();
    net.add_tenant("other-lab", &other).await;
    assert_eq!(net.get(&other, &path).await.status, 404);
    let r = net.anonymous("GET", &path, None).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "researcher_own_tenant_or_maintainer_required")
    );

    // Checkpoints: partial, fresh id each call, not stored.
    let c1 = net.get(&key, &format!("{path}?checkpoint=true")).await;
    assert_eq!(c1.status, 200, "{}", c1.text);
    assert_eq!(c1.body["partial"], true);
    let v = verified(&net, &c1.text, true);
    assert_eq!(v.predicate().units.len(), 5);
    let c2 = net.get(&key, &format!("{path}?checkpoint=1")).await;
    assert_ne!(c1.body["attestation_id"], c2.body["attestation_id"]);
    assert_eq!(c1.body["merkle_root"], c2.body["merkle_root"]);
    assert_eq!(c1.body["rekor_entry_uuid"], "lab-mode-no-rekor");
    let r = net.get(&key, &format!("{path}?checkpoint=maybe")).await;
    assert_eq!(r.status, 422);

    // Finalize: completes, attestation issued and anchored.
    let r = net.finalize(&exp).await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (200, json!("completed")),
        "{}",
        r.text
    );
    let recent = net
        .get(
            &key,
            &format!("/api/v0/experiments/{exp}/events/recent?limit=2000"),
        )
        .await;
    let kinds: Vec<&str> = recent.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(kinds.contains(&"attestation.issued"), "{kinds:?}");

    let first = net.get(&key, &path).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let v = verified(&net, &first.text, false);
    let p = v.predicate();
    assert_eq!(p.units.len(), 5);
    assert_eq!(p.experiment_id, "att-flow");
    assert_eq!(p.tenant_id, TENANT);
    assert!(p.units.iter().all(|u| {
        u.integrity_basis.as_deref() == Some("within_cell_exact")
            && u.unit_payload_sha256
                .as_deref()
                .is_some_and(|h| h.len() == 64)
    }));
    assert_eq!(first.body["algorithm"], "sha256-merkle-v1");
    assert_eq!(first.body["units"].as_array().map(Vec::len), Some(5));
    assert_eq!(first.body["diverged_units"][0]["unit_id"], "u6");
    assert_eq!(
        first.body["diverged_units"][0]["result_hashes"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // Anchored: a real UUID, the log index and the proof as the log gave it.
    let uuid = first.body["rekor_entry_uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    assert_eq!(uuid.len(), 80, "{uuid}");
    assert!(first.body["rekor_inclusion_proof"]["hashes"].is_array());
    let entry = net
        .http
        .get(format!("{}/api/v1/log/entries/{uuid}", rekor.url()))
        .send()
        .await
        .expect("log")
        .bytes()
        .await
        .expect("log body");
    let cose = STANDARD
        .decode(first.body["cose_b64"].as_str().expect("cose"))
        .expect("b64");
    let digest: [u8; 32] = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&cose).into()
    };
    let trusted = rekor.log.lock().expect("log").trusted_root();
    let opts = auspex_crypto::tlog::VerifyOptions {
        artifact_sha256: Some(digest),
        expected_log_index: first.body["rekor_log_index"].as_u64(),
        ..Default::default()
    };
    let report = auspex_crypto::tlog::verify_entry(&entry, &trusted, &opts);
    let parsed = auspex_crypto::tlog::RekorEntry::parse(&entry).expect("entry");
    assert!(
        report
            .verdict(&auspex_crypto::tlog::required_checks(&parsed, &opts))
            .is_verified(),
        "{:?}",
        report.first_failure()
    );

    // Repeated GETs: same id and bytes, one log entry.
    let second = net.get(&key, &path).await;
    assert_eq!(first.text, second.text);
    assert_eq!(rekor.posts.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Export: custody bound to the attestation root, everything verifies.
    let ex = net
        .get(&key, &format!("/api/v0/experiments/{exp}/results/export"))
        .await;
    assert_eq!(ex.status, 200, "{}", ex.text);
    check_bundle(&net, &ex.text, true);
    assert_eq!(ex.body["transfer"]["root_kind"], "sha256-merkle-v1");
    assert_eq!(
        ex.body["transfer"]["result_set_root"],
        first.body["merkle_root"]
    );
    assert_eq!(
        ex.body["transfer"]["attestation_id"],
        first.body["attestation_id"]
    );
    assert_eq!(ex.body["attestation"]["rekor_entry_uuid"], uuid.as_str());
    assert_eq!(
        ex.body["transfer"]["collected_by_pubkey"],
        key.public_hex().as_str()
    );
    assert_eq!(ex.body["work_units"].as_array().map(Vec::len), Some(6));
    assert_eq!(ex.body["unit_consensus"], json!([]));
    // A maintainer export is collected by `<maintainer>`; every export is a
    // new transfer.
    let mx = net
        .maintainer(
            "GET",
            &format!("/api/v0/experiments/{exp}/results/export"),
            None,
        )
        .await;
    assert_eq!(mx.body["transfer"]["collected_by_pubkey"], "<maintainer>");
    assert_ne!(
        mx.body["transfer"]["transfer_id"],
        ex.body["transfer"]["transfer_id"]
    );
    check_bundle(&net, &mx.text, true);
    let detail = net.get(&key, &format!("/api/v0/experiments/{exp}")).await;
    assert!(detail.body["results_collected_at"].is_string());

    // Restart on the same state: byte-identical attestation.
    let Net { dir, server, .. } = net;
    server.shutdown().await;
    let url = rekor.url();
    let net = Net::start_in(dir, |c| c.tlog_url(Some(url))).await;
    let again = net.get(&key, &path).await;
    assert_eq!(again.text, first.text);
}

/// Verifies a bundle's custody record, attestation, root binding,
/// completeness, input binding and worker signatures.
fn check_bundle(net: &Net, text: &str, expect_attestation: bool) {
    let v = wire(text);
    let b = EvidenceBundle::from_value(&v).expect("bundle");
    assert!(b.is_v1());
    let transfer = b.transfer.as_ref().expect("transfer");
    let custody = verify_transfer(
        transfer,
        &CustodyPolicy {
            authorized_signers: Some(vec![coordinator_key(net)]),
        },
    );
    assert!(
        matches!(custody.verdict(), Verdict::Verified),
        "{:?}",
        custody.report.first_failure()
    );
    let custody = custody.into_result().expect("custody");
    let att = b.attestation.as_ref().map(|a| {
        verify_attestation(
            AttestationInput::Bundle(a),
            &AttestationPolicy {
                authorized_signers: Some(vec![coordinator_key(net)]),
                expect_partial: Some(false),
            },
        )
        .into_result()
        .expect("bundle attestation verifies")
    });
    assert_eq!(att.is_some(), expect_attestation);
    let rows: Vec<(&str, Option<&str>)> = b
        .consensus_results
        .iter()
        .map(|r| {
            (
                r.unit_id.as_deref().unwrap_or(""),
                r.semantic_hash.as_deref(),
            )
        })
        .collect();
    let binding = verify_root_binding(&custody, transfer, rows.iter().copied(), att.as_ref());
    assert!(
        binding.first_failure().is_none(),
        "{:?}",
        binding.first_failure()
    );
    if let Some(a) = &att {
        // Completeness and input binding.
        let mut delivered: Vec<(String, String)> = rows
            .iter()
            .map(|(u, h)| (u.to_string(), h.unwrap_or("").to_owned()))
            .collect();
        delivered.sort();
        let mut attested: Vec<(String, String)> = a
            .predicate()
            .units
            .iter()
            .map(|u| (u.unit_id.clone(), u.consensus_result_hash.clone()))
            .collect();
        attested.sort();
        assert_eq!(delivered, attested);
        for u in &a.predicate().units {
            let w = b
                .work_units
                .iter()
                .find(|w| w.unit_id.as_deref() == Some(u.unit_id.as_str()))
                .expect("work unit");
            let payload = w.payload.as_ref().expect("payload");
            assert_eq!(
                u.unit_payload_sha256.as_deref(),
                Some(auspex_wire::json::canonical_sha256(payload).as_str())
            );
        }
    }
    // Worker signatures over the rows as delivered.
    for row in v
        .get("consensus_results")
        .and_then(auspex_wire::json::Value::as_array)
        .expect("rows")
    {
        let get = |k: &str| {
            row.get(k)
                .cloned()
                .unwrap_or(auspex_wire::json::Value::Null)
        };
        let text = |k: &str| get(k).as_str().map(str::to_owned).unwrap_or_default();
        let payload = get("payload");
        let served = get("served_weights");
        let options = get("generation_options");
        let ran_under = text("ran_under");
        let unit_id = text("unit_id");
        let pubkey = text("worker_pubkey_hex");
        let completed = text("completed_at");
        let schema = auspex_crypto::worker_sig::SchemaVersion::from_value(
            Some(&get("schema_version")).filter(|v| !matches!(v, auspex_wire::json::Value::Null)),
        )
        .expect("schema");
        let signed = auspex_crypto::worker_sig::SignedResult {
            schema_version: schema,
            served_weights: served.as_object(),
            ran_under: (!ran_under.is_empty()).then_some(ran_under.as_str()),
            generation_options: options.as_array().map(Vec::as_slice),
            ..auspex_crypto::worker_sig::SignedResult::v0(
                &unit_id, &pubkey, &completed, 0, &payload,
            )
        };
        auspex_crypto::worker_sig::verify_row(&signed, &text("worker_signature"))
            .expect("worker signature verifies");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestation_is_kept_while_the_log_is_down() {
    let rekor = FakeRekor::start().await;
    rekor.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let url = rekor.url();
    let net = Net::start_with(|c| c.tlog_url(Some(url))).await;
    let key = tenant_key();
    let (exp, _, _) = run_two_workers(&net, "log-down").await;
    assert_eq!(net.finalize(&exp).await.body["status"], "completed");
    let path = format!("/api/v0/experiments/{exp}/attestation");
    let before = net.get(&key, &path).await;
    assert_eq!(before.status, 200, "{}", before.text);
    assert_eq!(before.body["rekor_entry_uuid"], "lab-mode-no-rekor");
    assert_eq!(before.body["rekor_log_index"], 0);
    assert!(before.body.get("rekor_inclusion_proof").is_none());
    verified(&net, &before.text, false);
    // The export still works (not anchored yet).
    let ex = net
        .get(&key, &format!("/api/v0/experiments/{exp}/results/export"))
        .await;
    assert_eq!(ex.status, 200, "{}", ex.text);
    assert_eq!(ex.body["attestation"]["rekor_inclusion_proof"], Value::Null);
    check_bundle(&net, &ex.text, true);

    // The log comes back: the next GET anchors the same attestation.
    rekor.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let after = net.get(&key, &path).await;
    assert_eq!(after.body["attestation_id"], before.body["attestation_id"]);
    assert_eq!(after.body["cose_b64"], before.body["cose_b64"]);
    assert_ne!(after.body["rekor_entry_uuid"], "lab-mode-no-rekor");
    assert!(after.body["rekor_inclusion_proof"].is_object());
    assert_eq!(rekor.posts.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_anchorer_retries() {
    let rekor = FakeRekor::start().await;
    rekor.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let url = rekor.url();
    let net = Net::start_with(|c| {
        c.tlog_url(Some(url))
            .anchor_retry(std::time::Duration::from_millis(200))
    })
    .await;
    let (exp, _, _) = run_two_workers(&net, "bg-anchor").await;
    assert_eq!(net.finalize(&exp).await.body["status"], "completed");
    rekor.down.store(false, std::sync::atomic::Ordering::SeqCst);
    // No GET: the background task anchors it.
    let mut anchored = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if rekor.posts.load(std::sync::atomic::Ordering::SeqCst) >= 1 {
            anchored = true;
            break;
        }
    }
    assert!(anchored, "the background anchorer did not post");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let a = net
        .get(
            &tenant_key(),
            &format!("/api/v0/experiments/{exp}/attestation"),
        )
        .await;
    assert_ne!(
        a.body["rekor_entry_uuid"], "lab-mode-no-rekor",
        "{}",
        a.text
    );
    assert_eq!(rekor.posts.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_mode_and_pre_completion_export() {
    let net = Net::start().await;
    let key = tenant_key();
    let (exp, _, _) = run_two_workers(&net, "lab-mode").await;
    // Before completion: no attestation, flat custody root.
    let ex = net
        .get(&key, &format!("/api/v0/experiments/{exp}/results/export"))
        .await;
    assert_eq!(ex.status, 200, "{}", ex.text);
    assert_eq!(ex.body["attestation"], Value::Null);
    assert_eq!(ex.body["transfer"]["root_kind"], "flat-v0");
    assert_eq!(ex.body["transfer"]["attestation_id"], Value::Null);
    assert_eq!(ex.body["schema"], "auspexai-evidence-bundle/v1");
    check_bundle(&net, &ex.text, false);
    // Completed: placeholders.
    assert_eq!(net.finalize(&exp).await.body["status"], "completed");
    let a = net
        .get(&key, &format!("/api/v0/experiments/{exp}/attestation"))
        .await;
    assert_eq!(a.body["rekor_entry_uuid"], "lab-mode-no-rekor");
    assert_eq!(a.body["rekor_log_index"], 0);
    verified(&net, &a.text, false);
    // Checkpoint after completion is the final attestation.
    let c = net
        .get(
            &key,
            &format!("/api/v0/experiments/{exp}/attestation?checkpoint=true"),
        )
        .await;
    assert_eq!(c.text, a.text);
    let ex = net
        .get(&key, &format!("/api/v0/experiments/{exp}/results/export"))
        .await;
    check_bundle(&net, &ex.text, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_experiment_attests_the_empty_set() {
    let net = Net::start().await;
    let key = tenant_key();
    let (exp, _) = net.ready("empty-set", 1).await;
    assert_eq!(net.finalize(&exp).await.body["status"], "completed");
    let a = net
        .get(&key, &format!("/api/v0/experiments/{exp}/attestation"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["merkle_root"], auspex_crypto::merkle::EMPTY_ROOT_HEX);
    assert_eq!(a.body["unit_count"], 0);
    verified(&net, &a.text, false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestation_anchored_in_the_devnet_tlog() {
    let log_dir = tempfile::tempdir().expect("tmp");
    let tlog = auspex_tlog::serve(auspex_tlog::TlogConfig::new(log_dir.path()))
        .await
        .expect("tlog");
    let url = tlog.url().to_owned();
    let net = Net::start_with(|c| c.tlog_url(Some(url))).await;
    let key = tenant_key();
    let (exp, _, _) = run_two_workers(&net, "real-log").await;
    assert_eq!(net.finalize(&exp).await.body["status"], "completed");
    let a = net
        .get(&key, &format!("/api/v0/experiments/{exp}/attestation"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let uuid = a.body["rekor_entry_uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let why: Option<String> = net
        .server
        .state()
        .db()
        .lock()
        .query_row("SELECT anchor_last_error FROM attestations", [], |r| {
            r.get(0)
        })
        .expect("row");
    assert_ne!(uuid, "lab-mode-no-rekor", "{why:?}");
    assert!(a.body["rekor_inclusion_proof"].is_object(), "{}", a.text);
    verified(&net, &a.text, false);
    let entry = net
        .http
        .get(format!("{}/api/v1/log/entries/{uuid}", tlog.url()))
        .send()
        .await
        .expect("log")
        .bytes()
        .await
        .expect("log body");
    let cose = STANDARD
        .decode(a.body["cose_b64"].as_str().expect("cose"))
        .expect("b64");
    let digest: [u8; 32] = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&cose).into()
    };
    let opts = auspex_crypto::tlog::VerifyOptions {
        artifact_sha256: Some(digest),
        expected_log_index: a.body["rekor_log_index"].as_u64(),
        log_index_rule: auspex_crypto::tlog::LogIndexRule::Exact,
    };
    let report = auspex_crypto::tlog::verify_entry(&entry, tlog.trusted_root(), &opts);
    let parsed = auspex_crypto::tlog::RekorEntry::parse(&entry).expect("entry");
    assert!(
        report
            .verdict(&auspex_crypto::tlog::required_checks(&parsed, &opts))
            .is_verified(),
        "{:?}",
        report.first_failure()
    );
    let ex = net
        .get(&key, &format!("/api/v0/experiments/{exp}/results/export"))
        .await;
    check_bundle(&net, &ex.text, true);
    net.server.shutdown().await;
    tlog.shutdown().await.expect("tlog shutdown");
}
