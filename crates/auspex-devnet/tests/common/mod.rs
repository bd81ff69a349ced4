//! Helpers shared by the devnet's integration tests and its benchmark: a
//! signing tenant client, executor packages (the doubler, shell, and the
//! Rust no-op of `examples/noop_executor.rs`), experiment submission,
//! attestation polling, and the evidence bundle's export and verification
//! (ours and the official SDK's).
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
    create_experiment_with(tenant, work, &Package::of(executor), replication).await
}

/// A package to run: its files and the manifest's `executor.command`.
#[derive(Debug, Clone)]
pub struct Package {
    /// `(relative path, contents)` of every file.
    pub files: Vec<(String, Vec<u8>)>,
    /// The executor command.
    pub command: Vec<String>,
}

impl Package {
    /// The package of one of the stock executors.
    pub fn of(executor: Executor) -> Package {
        match executor {
            Executor::Python => Package {
                files: vec![(
                    "executor.py".into(),
                    std::fs::read(example().join("executor.py")).expect("doubler executor"),
                )],
                command: vec!["python3".into(), "executor.py".into()],
            },
            Executor::Shell => Package::shell(SHELL_EXECUTOR),
        }
    }

    /// `sh executor.sh` with this script.
    pub fn shell(script: &str) -> Package {
        Package {
            files: vec![("executor.sh".into(), script.as_bytes().to_vec())],
            command: vec!["sh".into(), "executor.sh".into()],
        }
    }

    /// The Rust no-op executor (`examples/noop_executor.rs`, built by
    /// [`build_rust_executor`]). Packages keep no file modes (the archive
    /// stores 0644), so it runs through the dynamic loader named in its ELF
    /// header, which the sandbox binds read-only with the system.
    pub fn rust(binary: &Path) -> Package {
        let bytes = std::fs::read(binary).expect("Rust executor binary");
        let loader = elf_interpreter(&bytes).expect("a dynamically linked ELF executable");
        Package {
            files: vec![("noop_executor".into(), bytes)],
            // With a slash: a bare name would be searched for on the
            // loader's library path, not in the package directory.
            command: vec![loader, "./noop_executor".into()],
        }
    }
}

/// The program interpreter (`PT_INTERP`) of a 64-bit little-endian ELF file.
pub fn elf_interpreter(elf: &[u8]) -> Option<String> {
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at =
        |o: usize| usize::try_from(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?)).ok();
    let phoff = u64_at(0x20)?;
    let phentsize = usize::from(u16_at(0x36)?);
    for i in 0..usize::from(u16_at(0x38)?) {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(ph)? == 3 {
            let (offset, size) = (u64_at(ph + 8)?, u64_at(ph + 32)?);
            let text = elf.get(offset..offset.checked_add(size)?)?;
            let text = text.strip_suffix(b"\0").unwrap_or(text);
            return String::from_utf8(text.to_vec()).ok();
        }
    }
    None
}

/// Builds `crates/auspex-devnet/examples/noop_executor.rs` (standard library
/// only) with `rustc -O` into `dir` and returns the binary's path. Plain
/// rustc rather than a nested cargo: it takes well under a second and
/// needs no build lock.
pub fn build_rust_executor(dir: &Path) -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/noop_executor.rs");
    let out = dir.join("noop_executor");
    std::fs::create_dir_all(dir).expect("mkdir");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let o = std::process::Command::new(rustc)
        .args(["--edition", "2024", "-O", "-C", "strip=symbols", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .expect("rustc runs");
    assert!(
        o.status.success(),
        "rustc {} failed: {}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Like [`create_experiment`], with any [`Package`].
pub async fn create_experiment_with(
    tenant: &Tenant,
    work: &Path,
    package: &Package,
    replication: u32,
) -> (String, String) {
    create_experiment_edited(tenant, work, package, replication, |_| {}).await
}

/// Like [`create_experiment_with`]; `edit` changes the doubler's manifest
/// (after the executor and replication are set) before it is signed.
pub async fn create_experiment_edited(
    tenant: &Tenant,
    work: &Path,
    package: &Package,
    replication: u32,
    edit: impl FnOnce(&mut json::Object),
) -> (String, String) {
    let pkg = work.join("pkg");
    std::fs::create_dir_all(&pkg).expect("mkdir");
    for (name, bytes) in &package.files {
        std::fs::write(pkg.join(name), bytes).expect("write");
    }
    let command: Vec<&str> = package.command.iter().map(String::as_str).collect();
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
        edit(m);
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

/// `GET …/results/export`: the evidence bundle v1 as served (a new custody
/// transfer each call).
pub async fn export_bundle(tenant: &Tenant, id: &str) -> Vec<u8> {
    let (status, out) = tenant
        .call(
            "GET",
            &format!("/api/v0/experiments/{id}/results/export"),
            Vec::new(),
            "",
        )
        .await;
    assert_eq!(
        status,
        200,
        "export: {}",
        String::from_utf8_lossy(&out[..out.len().min(2000)])
    );
    out
}

/// An integer JSON value as `i64`.
pub fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => n.as_i64(),
        _ => None,
    }
}

/// Standard base64 (padded) → bytes.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let sextet = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n: u32 = 0;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | u32::from(sextet(c)?);
        }
        n <<= 6 * pad as u32;
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
}

/// What our verifiers established about an evidence bundle.
pub struct CheckedBundle {
    /// The bundle as read.
    pub bundle: auspex_wire::bundle::EvidenceBundle,
    /// Its final attestation, verified against the coordinator's pinned key.
    pub attestation: VerifiedAttestation,
    /// Its receipts by id, each verified against the coordinator's pinned
    /// key (COSE signature and subject digest).
    pub receipts: std::collections::BTreeMap<String, auspex_wire::receipt::Receipt>,
}

/// Verifies an evidence bundle with auspex's verifiers, everything pinned
/// to the devnet coordinator's key: the custody record, the final
/// attestation, the custody root bound to the attested root, completeness
/// (delivered `(unit, semantic hash)` pairs = attested ones), input binding
/// (every attested unit's `unit_payload_sha256` = the hash of its
/// `work_units` payload), every consensus row's worker signature and
/// semantic hash, and every receipt's signature; each row's receipt is in
/// the bundle and names the row's unit and worker. Panics with the first
/// failed check.
pub fn verify_bundle(info: &DevnetInfo, bytes: &[u8]) -> CheckedBundle {
    use auspex_crypto::custody::{CustodyPolicy, verify_root_binding, verify_transfer};
    use auspex_crypto::worker_sig::{RowsPolicy, verify_consensus_rows};

    let key = coordinator_key(info);
    let bundle = auspex_wire::bundle::EvidenceBundle::parse(bytes).expect("bundle parses");
    assert!(bundle.is_v1(), "not a v1 bundle: {:?}", bundle.schema);
    let transfer = bundle.transfer.as_ref().expect("transfer block");
    let custody = verify_transfer(
        transfer,
        &CustodyPolicy {
            authorized_signers: Some(vec![key]),
        },
    );
    let custody = custody
        .into_result()
        .unwrap_or_else(|r| panic!("custody record: {:?}", r.first_failure()));
    let attestation = verify_attestation(
        AttestationInput::Bundle(bundle.attestation.as_ref().expect("attestation block")),
        &AttestationPolicy {
            authorized_signers: Some(vec![key]),
            expect_partial: Some(false),
        },
    )
    .into_result()
    .unwrap_or_else(|r| panic!("bundle attestation: {:?}", r.first_failure()));
    let rows: Vec<(&str, Option<&str>)> = bundle
        .consensus_results
        .iter()
        .map(|r| {
            (
                r.unit_id.as_deref().unwrap_or(""),
                r.semantic_hash.as_deref(),
            )
        })
        .collect();
    let binding = verify_root_binding(&custody, transfer, rows.iter().copied(), Some(&attestation));
    assert!(
        binding.first_failure().is_none(),
        "custody root binding: {:?}",
        binding.first_failure()
    );
    // Completeness: the delivered set is the attested set.
    let mut delivered: Vec<(String, String)> = rows
        .iter()
        .map(|(u, h)| ((*u).to_owned(), h.unwrap_or("").to_owned()))
        .collect();
    delivered.sort();
    let mut attested: Vec<(String, String)> = attestation
        .predicate()
        .units
        .iter()
        .map(|u| (u.unit_id.clone(), u.consensus_result_hash.clone()))
        .collect();
    attested.sort();
    assert_eq!(delivered, attested, "delivered set != attested set");
    // Input binding.
    for u in &attestation.predicate().units {
        let w = bundle
            .work_units
            .iter()
            .rev()
            .find(|w| w.unit_id.as_deref() == Some(u.unit_id.as_str()))
            .unwrap_or_else(|| panic!("no work unit for attested {}", u.unit_id));
        let payload = w.payload.as_ref().expect("work unit payload");
        assert_eq!(
            u.unit_payload_sha256.as_deref(),
            Some(json::canonical_sha256(payload).as_str()),
            "input binding of {}",
            u.unit_id
        );
    }
    // Worker signatures and semantic hashes of every consensus row.
    let sigs = verify_consensus_rows(&bundle.consensus_results, &RowsPolicy::default());
    assert!(
        sigs.report().first_failure().is_none(),
        "worker signatures: {:?}",
        sigs.report().first_failure()
    );
    assert_eq!(sigs.verified(), bundle.consensus_results.len());
    for check in &sigs.rows {
        assert!(
            matches!(check.semantic_hash, Some(Ok(()))),
            "semantic hash of {}: {:?}",
            check.label,
            check.semantic_hash
        );
    }
    // Receipts: signed by the coordinator, one per referenced id.
    let mut receipts = std::collections::BTreeMap::new();
    for r in &bundle.receipts {
        let id = r.receipt_id.clone().expect("receipt_id");
        let cose = b64_decode(r.cose_b64.as_deref().expect("cose_b64")).expect("base64");
        let inspected = auspex_crypto::cose::inspect_receipt(&cose)
            .unwrap_or_else(|e| panic!("receipt {id}: {e}"));
        let envelope = inspected.envelope.expect("a COSE_Sign1 receipt");
        envelope
            .cose
            .verify(Some(&key))
            .unwrap_or_else(|e| panic!("receipt {id} signature: {e}"));
        assert!(envelope.subject_digest_matches, "receipt {id} subject");
        assert!(
            receipts.insert(id.clone(), inspected.receipt).is_none(),
            "receipt {id} twice in the bundle"
        );
    }
    for row in &bundle.consensus_results {
        let unit = row.unit_id.as_deref().expect("unit_id");
        let id = row
            .receipt_id
            .as_deref()
            .expect("receipt_id of a consensus row");
        let receipt = receipts
            .get(id)
            .unwrap_or_else(|| panic!("{unit}: receipt {id} is not in the bundle"));
        assert!(
            receipt.work_unit_ids.iter().any(|u| u == unit),
            "{unit}: receipt {id} covers {:?}",
            receipt.work_unit_ids
        );
        assert_eq!(
            Some(auspex_wire::hex_lower(&receipt.worker_pubkey).as_str()),
            row.worker_pubkey_hex
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref(),
            "{unit}: receipt {id} names another worker"
        );
    }
    assert_eq!(
        transfer.receipt_count.as_ref().and_then(int),
        Some(receipts.len() as i64),
        "transfer.receipt_count"
    );
    CheckedBundle {
        bundle,
        attestation,
        receipts,
    }
}

/// Runs the official SDK's offline verifier on a bundle file:
/// `auspexai-tenant bundle verify FILE --signer KEY` of auspexai-tenant
/// 0.6.67 (`target/py-0.6.67`, installed by `scripts/python-peers.sh`),
/// which must print `verified ✓` with the signer pin `ok`; returns its
/// output. A missing venv fails the test unless `AUSPEX_SKIP_INTEROP=1`
/// (then `None`).
#[allow(clippy::print_stderr)] // says that a check was knowingly skipped
pub fn official_bundle_verify(bundle: &Path, signer_hex: &str) -> Option<String> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/py-0.6.67");
    let cli = venv.join("bin/auspexai-tenant");
    if !cli.exists() {
        if std::env::var("AUSPEX_SKIP_INTEROP").is_ok_and(|v| v == "1") {
            eprintln!("skipped: no target/py-0.6.67 and AUSPEX_SKIP_INTEROP=1");
            return None;
        }
        panic!(
            "the official SDK 0.6.67 is not installed in target/py-0.6.67: run \
             `bash scripts/python-peers.sh` (or set AUSPEX_SKIP_INTEROP=1 to skip)"
        );
    }
    let home = bundle
        .parent()
        .unwrap_or(Path::new("/tmp"))
        .join("sdk-home");
    std::fs::create_dir_all(&home).expect("mkdir");
    let out = std::process::Command::new(&cli)
        .args(["bundle", "verify"])
        .arg(bundle)
        .args(["--signer", signer_hex])
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("LANG", "C.UTF-8")
        .output()
        .expect("auspexai-tenant runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("verified ✓") && text.contains("signer pin:  ok"),
        "official bundle verify ({}): {text}",
        out.status
    );
    Some(text)
}
