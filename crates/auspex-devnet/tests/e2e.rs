//! A real experiment on the devnet, end to end: a tenant, a signed manifest
//! and package, units computed by three sandboxed workers with their own keys,
//! consensus, receipts, an attestation anchored in the devnet's transparency
//! log — verified by our verifiers against the coordinator's pinned key and
//! the log's trusted root.

mod common;

use std::time::Duration;

use auspex_crypto::tlog::{LogIndexRule, TrustedRoot, VerifyOptions, verify_entry};
use auspex_devnet::DevnetConfig;
use auspex_wire::attestation::AttestationResponse;
use common::Executor;
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_experiment_ends_in_a_verified_anchored_attestation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (devnet, tenant) = common::start(DevnetConfig {
        state_dir: Some(dir.path().join("state")),
        workers: 3,
        ..DevnetConfig::default()
    })
    .await;
    let info = devnet.info().clone();

    // The package and its digest, pinned in the signed manifest; six units.
    let (id, manifest_hash) =
        common::create_experiment(&tenant, dir.path(), Executor::Python, 3).await;
    common::submit_units(&tenant, &id, &manifest_hash, 6).await;

    // Three workers compute every unit; consensus completes the experiment
    // and the attestation is anchored in the devnet's log.
    let attestation = common::wait_anchored_attestation(
        &tenant,
        &id,
        Duration::from_secs(240),
        Duration::from_millis(300),
    )
    .await;
    let response = AttestationResponse::parse(&attestation).expect("attestation response");
    let verified = common::verify_final(&info, &response);
    assert_eq!(verified.predicate().units.len(), 6);

    // Its anchor verifies offline against the log's trusted root.
    let tlog = info.tlog_url.clone().expect("tlog url");
    let entry = reqwest::get(format!(
        "{tlog}/api/v1/log/entries/{}",
        response.rekor_entry_uuid
    ))
    .await
    .expect("entry")
    .bytes()
    .await
    .expect("entry body");
    let root = TrustedRoot::from_json(
        &std::fs::read(info.trusted_root_path.as_ref().expect("root path")).expect("root"),
    )
    .expect("trusted root");
    let artifact: [u8; 32] = Sha256::digest(verified.cose_bytes()).into();
    let opts = VerifyOptions {
        artifact_sha256: Some(artifact),
        expected_log_index: u64::try_from(response.rekor_log_index).ok(),
        log_index_rule: LogIndexRule::Exact,
    };
    let report = verify_entry(&entry, &root, &opts);
    let required = auspex_crypto::tlog::required_checks(
        &auspex_crypto::tlog::RekorEntry::parse(&entry).expect("entry parses"),
        &opts,
    );
    assert!(
        report.verdict(&required).is_verified(),
        "tlog entry does not verify: {report:?}"
    );

    devnet.shutdown().await;
}
