//! A real experiment on the devnet, end to end: a tenant, a signed manifest
//! and package, units computed by three sandboxed workers with their own keys,
//! consensus, receipts, an attestation anchored in the devnet's transparency
//! log — verified by our verifiers against the coordinator's pinned key and
//! the log's trusted root.

mod common;

use std::time::{Duration, Instant};

use auspex_crypto::attestation::{AttestationInput, AttestationPolicy, verify_attestation};
use auspex_crypto::keys::TenantKey;
use auspex_crypto::manifest::sign_manifest;
use auspex_crypto::tlog::{LogIndexRule, TrustedRoot, VerifyOptions, verify_entry};
use auspex_devnet::{Devnet, DevnetConfig, admin};
use auspex_wire::attestation::AttestationResponse;
use auspex_wire::json::{self, Value};
use auspex_wire::manifest::{SdkProfile, parse_manifest};
use common::{Tenant, copy_package, example, obj};
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_experiment_ends_in_a_verified_anchored_attestation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start(DevnetConfig {
        state_dir: Some(dir.path().join("state")),
        auto_approve: true,
        workers: 3,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet starts");
    let info = devnet.info().clone();
    let tenant = Tenant {
        key: TenantKey::from_seed([9; 32]),
        base: info.coordinator_url.clone(),
        http: reqwest::Client::new(),
    };
    admin::add_tenant(&info, "auspex-examples", &tenant.key.public_hex())
        .await
        .expect("tenant added");

    // The package and its digest, pinned in the signed manifest.
    let pkg = dir.path().join("pkg");
    copy_package(&pkg);
    let digest = auspex_wire::package::package_digest(&pkg)
        .expect("digest")
        .sha256;
    let mut manifest =
        json::parse(&std::fs::read(example().join("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    if let Value::Object(m) = &mut manifest {
        m.insert(
            "executor".into(),
            obj(vec![
                ("command", Value::from(vec!["python3", "executor.py"])),
                ("package_sha256", Value::from(digest)),
            ]),
        );
    }
    let text = json::pydantic_compact(&manifest);
    let parsed = parse_manifest(text.as_bytes()).expect("valid manifest");
    let sig = sign_manifest(&parsed, &tenant.key, SdkProfile::V0_5_5).expect("signed");
    let signature = obj(vec![
        ("sig_v", Value::from(sig.sig_v)),
        ("maintainer_pubkey", Value::from(sig.maintainer_pubkey)),
        ("signature", Value::from(sig.signature)),
    ]);
    let created = tenant
        .json(
            "POST",
            "/api/v0/experiments",
            Some(&obj(vec![
                ("manifest", manifest.clone()),
                ("signature", signature),
            ])),
        )
        .await;
    let id = created
        .get("experiment_id")
        .and_then(Value::as_str)
        .expect("id")
        .to_owned();
    assert_eq!(
        created.get("status").and_then(Value::as_str),
        Some("approved")
    );

    let archive = auspex_wire::package::build_package_archive(&pkg).expect("archive");
    let (status, out) = tenant
        .call_with(
            "POST",
            "/api/v0/packages",
            archive.bytes.clone(),
            "application/gzip",
            &[("x-package-digest", archive.digest.sha256.as_str())],
        )
        .await;
    assert!(
        status < 300,
        "package upload: {status} {}",
        String::from_utf8_lossy(&out)
    );

    let units: Vec<Value> = (0..6)
        .map(|i| {
            obj(vec![
                ("schema_version", Value::from("0.1")),
                ("unit_id", Value::from(format!("u-{i:03}"))),
                ("tenant_id", Value::from("auspex-examples")),
                ("experiment_id", Value::from("doubler-v1")),
                ("manifest_sha256", Value::from(parsed.manifest_hash())),
                ("payload", obj(vec![("value", Value::from(i as i64))])),
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

    // Three workers compute every unit; consensus completes the experiment
    // and the attestation is anchored in the devnet's log.
    let deadline = Instant::now() + Duration::from_secs(240);
    let attestation = loop {
        let (status, out) = tenant
            .call(
                "GET",
                &format!("/api/v0/experiments/{id}/attestation"),
                Vec::new(),
                "",
            )
            .await;
        if status == 200 {
            let v = json::parse(&out).expect("JSON");
            let anchored = v
                .get("rekor_entry_uuid")
                .and_then(Value::as_str)
                .is_some_and(|u| !u.is_empty() && u != "lab-mode-no-rekor");
            if anchored {
                break out;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no anchored attestation in time: {status} {}",
            String::from_utf8_lossy(&out)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let response = AttestationResponse::parse(&attestation).expect("attestation response");
    let coordinator: [u8; 32] = (0..32)
        .map(|i| u8::from_str_radix(&info.coordinator_pubkey[2 * i..2 * i + 2], 16).expect("hex"))
        .collect::<Vec<u8>>()
        .try_into()
        .expect("32 bytes");
    let verification = verify_attestation(
        AttestationInput::Response(&response),
        &AttestationPolicy {
            authorized_signers: Some(vec![coordinator]),
            expect_partial: Some(false),
        },
    );
    let verified = verification
        .verified()
        .unwrap_or_else(|| panic!("attestation does not verify: {:?}", verification.report))
        .clone();
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
