//! Helpers shared by the devnet's integration tests and its benchmark: a
//! signing tenant client, the doubler package, experiment submission and
//! attestation polling.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auspex_crypto::attestation::{
    AttestationInput, AttestationPolicy, VerifiedAttestation, verify_attestation,
};
use auspex_crypto::http_sig::sign_request;
use auspex_crypto::keys::TenantKey;
use auspex_crypto::manifest::sign_manifest;
use auspex_devnet::{Devnet, DevnetConfig, DevnetInfo, admin};
use auspex_wire::attestation::AttestationResponse;
use auspex_wire::json::{self, Object, Value};
use auspex_wire::manifest::{SdkProfile, parse_manifest};

/// `examples/doubler`.
pub fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/doubler")
}

/// A researcher of tenant `auspex-examples` signing its requests.
pub struct Tenant {
    pub key: TenantKey,
    pub base: String,
    pub http: reqwest::Client,
}

impl Tenant {
    pub async fn call(
        &self,
        method: &str,
        target: &str,
        body: Vec<u8>,
        ctype: &str,
    ) -> (u16, Vec<u8>) {
        self.call_with(method, target, body, ctype, &[]).await
    }

    pub async fn call_with(
        &self,
        method: &str,
        target: &str,
        body: Vec<u8>,
        ctype: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<u8>) {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let authority = self.base.trim_start_matches("http://");
        let h = sign_request(&self.key, method, target, authority, &body, created);
        let mut rb = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            format!("{}{target}", self.base),
        );
        for (k, v) in h.header_pairs() {
            rb = rb.header(k, v);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if !body.is_empty() {
            rb = rb.header("content-type", ctype).body(body);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.bytes().await.expect("body").to_vec())
    }

    pub async fn json(&self, method: &str, target: &str, body: Option<&Value>) -> Value {
        let bytes = body
            .map(|b| json::pydantic_compact(b).into_bytes())
            .unwrap_or_default();
        let (status, out) = self.call(method, target, bytes, "application/json").await;
        assert!(
            status < 300,
            "{method} {target}: {status} {}",
            String::from_utf8_lossy(&out)
        );
        json::parse(&out).expect("JSON answer")
    }
}

pub fn obj(pairs: Vec<(&str, Value)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Object>(),
    )
}

/// The doubler's executor in a fresh package directory.
pub fn copy_package(to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    std::fs::copy(example().join("executor.py"), to.join("executor.py")).expect("copy");
}

/// A no-op shell executor (same contract and payload as the doubler).
pub const SHELL_EXECUTOR: &str = r#"#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in
    --input) in="$2"; shift 2;;
    --output) out="$2"; shift 2;;
    *) shift 2;;
  esac
done
uid=$(sed -n 's/.*"unit_id": *"\([^"]*\)".*/\1/p' "$in")
v=$(sed -n 's/.*"value": *\([0-9-]*\).*/\1/p' "$in")
printf '{"schema_version":"0.1","unit_id":"%s","completed_at":"%s","exit_code":0,"payload":{"value":%s,"doubled":%s}}' \
  "$uid" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$v" "$((v * 2))" > "$out.tmp"
mv "$out.tmp" "$out"
"#;

/// Which executor a test experiment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executor {
    /// `python3 executor.py` (the doubler).
    Python,
    /// `sh executor.sh` ([`SHELL_EXECUTOR`]).
    Shell,
}

/// A started devnet with the tenant `auspex-examples` registered.
pub async fn start(config: DevnetConfig) -> (Devnet, Tenant) {
    let devnet = Devnet::start(DevnetConfig {
        auto_approve: true,
        ..config
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
    (devnet, tenant)
}

/// Creates a signed, approved experiment running `executor` with the
/// doubler's manifest at `replication`, uploads its package (built in
/// `work`), and returns `(experiment id, manifest hash)`.
pub async fn create_experiment(
    tenant: &Tenant,
    work: &Path,
    executor: Executor,
    replication: u32,
) -> (String, String) {
    let pkg = work.join("pkg");
    let command = match executor {
        Executor::Python => {
            copy_package(&pkg);
            vec!["python3", "executor.py"]
        }
        Executor::Shell => {
            std::fs::create_dir_all(&pkg).expect("mkdir");
            std::fs::write(pkg.join("executor.sh"), SHELL_EXECUTOR).expect("write");
            vec!["sh", "executor.sh"]
        }
    };
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
                ("command", Value::from(command)),
                ("package_sha256", Value::from(digest)),
            ]),
        );
        m.insert(
            "replication_factor".into(),
            Value::from(i64::from(replication)),
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
            Some(&obj(vec![("manifest", manifest), ("signature", signature)])),
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
    (id, parsed.manifest_hash())
}

/// Submits units `u-000…` carrying `value = i` and finalizes submissions.
pub async fn submit_units(tenant: &Tenant, id: &str, manifest_hash: &str, count: usize) {
    let units: Vec<Value> = (0..count)
        .map(|i| {
            obj(vec![
                ("schema_version", Value::from("0.1")),
                ("unit_id", Value::from(format!("u-{i:03}"))),
                ("tenant_id", Value::from("auspex-examples")),
                ("experiment_id", Value::from("doubler-v1")),
                ("manifest_sha256", Value::from(manifest_hash)),
                ("payload", obj(vec![("value", Value::from(i as i64))])),
            ])
        })
        .collect();
    for chunk in units.chunks(500) {
        tenant
            .json(
                "POST",
                &format!("/api/v0/experiments/{id}/work-units"),
                Some(&obj(vec![("work_units", Value::Array(chunk.to_vec()))])),
            )
            .await;
    }
    tenant
        .json(
            "POST",
            &format!("/api/v0/experiments/{id}/actions/finalize-submissions"),
            None,
        )
        .await;
}

/// Polls `GET …/attestation` every `every` until it is anchored in the
/// devnet's log; panics after `within`.
pub async fn wait_anchored_attestation(
    tenant: &Tenant,
    id: &str,
    within: Duration,
    every: Duration,
) -> Vec<u8> {
    let deadline = Instant::now() + within;
    loop {
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
                return out;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no anchored attestation in time: {status} {}",
            String::from_utf8_lossy(&out)
        );
        tokio::time::sleep(every).await;
    }
}

/// The coordinator's pinned key.
pub fn coordinator_key(info: &DevnetInfo) -> [u8; 32] {
    (0..32)
        .map(|i| u8::from_str_radix(&info.coordinator_pubkey[2 * i..2 * i + 2], 16).expect("hex"))
        .collect::<Vec<u8>>()
        .try_into()
        .expect("32 bytes")
}

/// Verifies a final attestation against the coordinator's pinned key.
pub fn verify_final(info: &DevnetInfo, response: &AttestationResponse) -> VerifiedAttestation {
    let verification = verify_attestation(
        AttestationInput::Response(response),
        &AttestationPolicy {
            authorized_signers: Some(vec![coordinator_key(info)]),
            expect_partial: Some(false),
        },
    );
    verification
        .verified()
        .unwrap_or_else(|| panic!("attestation does not verify: {:?}", verification.report))
        .clone()
}

/// Every row of `GET …/results?include=raw` (one page of up to 500: the
/// tests stay below that).
pub async fn raw_results(tenant: &Tenant, id: &str) -> Vec<Value> {
    let page = tenant
        .json(
            "GET",
            &format!("/api/v0/experiments/{id}/results?include=raw&limit=500"),
            None,
        )
        .await;
    match page.get("results") {
        Some(Value::Array(rows)) => {
            assert!(rows.len() < 500, "more raw results than one page");
            rows.clone()
        }
        _ => panic!("no results array: {page:?}"),
    }
}
