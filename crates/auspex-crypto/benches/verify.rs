//! Verification-core benchmarks, ours against the official Python SDK in the
//! same run: `cargo bench -p auspex-crypto --bench verify`.
//!
//! Plain `std::time::Instant` timing (no criterion, to keep cold builds
//! fast). Every figure is the **best of several repetitions** of a loop long
//! enough to dwarf the clock's resolution, on one thread. Measured:
//!
//! - Ed25519 `verify_strict`, one signature at a time;
//! - Ed25519 batch verification (`ed25519_dalek::verify_batch`) in batches
//!   of 64, 256 and 1024;
//! - the result-set Merkle root (`sha256-merkle-v1`) of 1,000,000 units with
//!   [`result_set_root`] (sort + leaves + tree) and [`ResultSetHasher`]
//!   (streamed), and of the 100,000 units also given to Python;
//! - COSE_Sign1 decoding + verification of the receipt fixture, and the full
//!   `receipts show` path ([`inspect_receipt`]);
//! - RFC 9421: [`verify_request`] (coordinator rules) and [`sign_request`].
//!
//! The Python side runs in the 0.5.5 SDK's venv (`$AUSPEX_PYTHON_055`, else
//! `target/py-0.5.5/bin/python`): `attestation.merkle_root` over the same
//! 100,000 units (the roots must agree), `attestation._cose_verify` on the
//! same COSE bytes (the helper behind `verify_attestation`), `cryptography`'s
//! Ed25519 `verify` on the same signatures, and `http_signing.sign_request`
//! on the same request (the SDK has no verifier). Without the venv the Python
//! column is skipped and said so.
//!
//! Run as a test (`cargo test --benches`, i.e. without `--bench`) it only
//! smoke-tests each operation on small inputs.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark reports on the terminal

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use auspex_crypto::cose::{CoseSign1, inspect_receipt};
use auspex_crypto::http_sig::{Policy, RequestParts, sign_request, verify_request};
use auspex_crypto::keys::TenantKey;
use auspex_crypto::merkle::{Algorithm, ResultSetHasher, UnitLeaf, dup_last_root, result_set_root};
use auspex_wire::json::{self, Object, Value};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// Units in the headline Merkle benchmark.
const MERKLE_FULL: usize = 1_000_000;
/// Units given to Python (and to us again, for a like-for-like ratio).
const MERKLE_PY: usize = 100_000;
/// Signatures in the Ed25519 data set.
const SIGS: usize = 1024;

struct Mode {
    full: bool,
}

impl Mode {
    fn reps(&self, n: usize) -> usize {
        if self.full { n } else { 1 }
    }
    fn iters(&self, n: usize) -> usize {
        if self.full { n } else { 2 }
    }
}

/// Best time per iteration over `reps` repetitions of `iters` calls.
fn best_of(reps: usize, iters: usize, mut f: impl FnMut()) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed() / u32::try_from(iters).expect("iters fit u32"));
    }
    best
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns >= 1_000_000_000 {
        format!("{:.3} s", d.as_secs_f64())
    } else if ns >= 1_000_000 {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else if ns >= 1_000 {
        format!("{:.2} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{ns} ns")
    }
}

fn per_sec(d: Duration) -> String {
    let rate = 1.0 / d.as_secs_f64();
    if rate >= 1e6 {
        format!("{:.2} M/s", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1} k/s", rate / 1e3)
    } else {
        format!("{rate:.1} /s")
    }
}

/// One result row: ours, and Python's when measured.
struct Row {
    name: String,
    ours: Duration,
    python: Option<Duration>,
}

fn hex(bytes: &[u8]) -> String {
    auspex_wire::hex_lower(bytes)
}

fn sha_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// The units of the Merkle benchmark, deterministic. Their strings are
/// allocated in `unit_id` order, as when an attestation's `units` (sorted by
/// the coordinator) are parsed; [`Units::sorted`] hands them over in that
/// order, [`Units::scrambled`] in a fixed permutation (the worst case: the
/// root must sort, then reads memory at random). Python builds the same set.
struct Units {
    ids: Vec<String>,
    results: Vec<String>,
    receipts: Vec<String>,
    payloads: Vec<String>,
}

impl Units {
    fn new(n: usize) -> Units {
        Units {
            ids: (0..n).map(|i| format!("unit-{i:07}")).collect(),
            results: (0..n).map(|i| sha_hex(&format!("r{i}"))).collect(),
            receipts: (0..n).map(|i| format!("rcpt-{i:07}")).collect(),
            payloads: (0..n).map(|i| sha_hex(&format!("p{i}"))).collect(),
        }
    }

    fn leaf(&self, i: usize) -> UnitLeaf<'_> {
        UnitLeaf {
            unit_id: &self.ids[i],
            consensus_result_hash: &self.results[i],
            receipt_id: &self.receipts[i],
            unit_payload_sha256: Some(&self.payloads[i]),
        }
    }

    fn sorted(&self) -> Vec<UnitLeaf<'_>> {
        (0..self.ids.len()).map(|i| self.leaf(i)).collect()
    }

    /// 611953 is prime and divides neither 10^5 nor 10^6, so
    /// `j -> j*611953 mod n` is a permutation.
    fn scrambled(&self) -> Vec<UnitLeaf<'_>> {
        let n = self.ids.len();
        (0..n).map(|j| self.leaf((j * 611_953) % n)).collect()
    }
}

/// The Ed25519 data set: `n` messages of 200 bytes, each signed by one of
/// 64 keys.
struct SigSet {
    keys: Vec<VerifyingKey>,
    msgs: Vec<Vec<u8>>,
    sigs: Vec<Signature>,
}

impl SigSet {
    fn new(n: usize) -> SigSet {
        let signers: Vec<TenantKey> = (0u8..64).map(|i| TenantKey::from_seed([i; 32])).collect();
        let mut set = SigSet {
            keys: Vec::new(),
            msgs: Vec::new(),
            sigs: Vec::new(),
        };
        for i in 0..n {
            let signer = &signers[i % signers.len()];
            let msg: Vec<u8> = format!("{i:08}").bytes().cycle().take(200).collect();
            set.sigs.push(Signature::from_bytes(&signer.sign(&msg)));
            set.keys.push(signer.verifying_key());
            set.msgs.push(msg);
        }
        set
    }
}

fn receipt_cose() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/receipt.cose");
    std::fs::read(path).expect("tests/fixtures/receipt.cose")
}

/// The request of the RFC 9421 benchmarks.
const RFC_TARGET: &str = "/api/v0/experiments/exp-CmK1YYqC/units?dry_run=true";
const RFC_HOST: &str = "coord.auspexai.network";
const RFC_BODY: &[u8] = br#"{"units":[{"payload":{"prompt":"caf\u00e9","seed":7}}],"round":1}"#;
const RFC_CREATED: i64 = 1_735_787_045;

fn python_055() -> Option<PathBuf> {
    let path = std::env::var_os("AUSPEX_PYTHON_055")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/py-0.5.5/bin/python")
        });
    path.exists().then_some(path)
}

/// The Python timing script: per-iteration best of `reps` for each operation.
const PY_BENCH: &str = r#"
import json, hashlib, sys, time
from pathlib import Path
job = json.load(open(sys.argv[1]))
from auspexai_tenant import attestation, http_signing
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
import auspexai_tenant

def best(reps, iters, f):
    b = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(iters):
            f()
        b = min(b, (time.perf_counter() - t) / iters)
    return b * 1e9

out = {"version": getattr(auspexai_tenant, "__version__", "?"), "python": sys.version.split()[0]}
import cryptography, cbor2
out["cryptography"] = cryptography.__version__
from importlib.metadata import version
out["cbor2"] = version("cbor2")

n = job["merkle_units"]
units = [{
    "unit_id": f"unit-{i:07d}",
    "consensus_result_hash": hashlib.sha256(f"r{i}".encode()).hexdigest(),
    "receipt_id": f"rcpt-{i:07d}",
    "unit_payload_sha256": hashlib.sha256(f"p{i}".encode()).hexdigest(),
} for i in range(n)]
scrambled = [units[(j * 611953) % n] for j in range(n)]
root = [None, None]
def mr_sorted():
    root[0] = attestation.merkle_root(units, algorithm="sha256-merkle-v1")
def mr_scrambled():
    root[1] = attestation.merkle_root(scrambled, algorithm="sha256-merkle-v1")
out["merkle_sorted_ns"] = best(job["merkle_reps"], 1, mr_sorted)
out["merkle_scrambled_ns"] = best(job["merkle_reps"], 1, mr_scrambled)
assert root[0] == root[1]
out["merkle_root"] = root[0]

cose = bytes.fromhex(job["cose_hex"])
ok = attestation._cose_verify(cose)
assert ok[0], "the SDK does not accept the receipt signature"
out["cose_ns"] = best(job["reps"], job["cose_iters"], lambda: attestation._cose_verify(cose))

sigs = [(Ed25519PublicKey.from_public_bytes(bytes.fromhex(k)), bytes.fromhex(m), bytes.fromhex(s))
        for k, m, s in job["ed25519"]]
def verify_all():
    for k, m, s in sigs:
        k.verify(s, m)
out["ed25519_ns"] = best(job["reps"], 1, verify_all) / len(sigs)

Key = getattr(http_signing, "MaintainerKey", None) or getattr(http_signing, "TenantKey")
key = Key.load(Path(job["key_path"]))
body = bytes.fromhex(job["rfc_body_hex"])
hdrs = http_signing.sign_request(key=key, method="POST", path=job["rfc_path"], authority=job["rfc_host"],
                                 body=body, created=job["rfc_created"])
out["rfc_headers"] = hdrs
out["rfc_sign_ns"] = best(job["reps"], job["rfc_iters"], lambda: http_signing.sign_request(
    key=key, method="POST", path=job["rfc_path"], authority=job["rfc_host"], body=body,
    created=job["rfc_created"]))
print(json.dumps(out))
"#;

struct PyResults {
    merkle_sorted: Duration,
    merkle_scrambled: Duration,
    merkle_root: String,
    cose: Duration,
    ed25519: Duration,
    rfc_sign: Duration,
    rfc_signature: String,
    versions: String,
}

fn ns(v: &Value, key: &str) -> Duration {
    let n = match v.get(key) {
        Some(Value::Float(f)) => *f,
        Some(Value::Int(i)) => i.to_f64(),
        other => panic!("python result {key}: {other:?}"),
    };
    Duration::from_secs_f64(n / 1e9)
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("python result {key}"))
        .to_owned()
}

fn run_python(python: &Path, set: &SigSet, cose: &[u8], key: &TenantKey) -> PyResults {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&key_path, key.to_pem()).expect("write key");
    let mut o = Object::new();
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_owned(), v);
    };
    put("merkle_units", Value::from(MERKLE_PY as u64));
    put("merkle_reps", Value::from(3u64));
    put("reps", Value::from(5u64));
    put("cose_hex", Value::from(hex(cose)));
    put("cose_iters", Value::from(2000u64));
    put(
        "ed25519",
        Value::Array(
            (0..set.msgs.len())
                .map(|i| {
                    Value::Array(vec![
                        Value::from(hex(set.keys[i].as_bytes())),
                        Value::from(hex(&set.msgs[i])),
                        Value::from(hex(&set.sigs[i].to_bytes())),
                    ])
                })
                .collect(),
        ),
    );
    put(
        "key_path",
        Value::from(key_path.to_str().expect("utf-8 path")),
    );
    put(
        "rfc_path",
        Value::from(auspex_crypto::http_sig::sdk_path(RFC_TARGET)),
    );
    put("rfc_host", Value::from(RFC_HOST));
    put("rfc_body_hex", Value::from(hex(RFC_BODY)));
    put("rfc_created", Value::from(RFC_CREATED));
    put("rfc_iters", Value::from(2000u64));
    let job_path = dir.path().join("job.json");
    std::fs::write(&job_path, json::canonical(&Value::Object(o))).expect("write job");
    let out = Command::new(python)
        .arg("-c")
        .arg(PY_BENCH)
        .arg(&job_path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python benchmark failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json::parse(&out.stdout).expect("python prints JSON");
    let rfc = v.get("rfc_headers").expect("rfc headers");
    PyResults {
        merkle_sorted: ns(&v, "merkle_sorted_ns"),
        merkle_scrambled: ns(&v, "merkle_scrambled_ns"),
        merkle_root: text(&v, "merkle_root"),
        cose: ns(&v, "cose_ns"),
        ed25519: ns(&v, "ed25519_ns"),
        rfc_sign: ns(&v, "rfc_sign_ns"),
        rfc_signature: text(rfc, "Signature"),
        versions: format!(
            "auspexai-tenant {}, CPython {}, cryptography {}, cbor2 {}",
            text(&v, "version"),
            text(&v, "python"),
            text(&v, "cryptography"),
            text(&v, "cbor2")
        ),
    }
}

fn main() {
    let mode = Mode {
        full: std::env::args().any(|a| a == "--bench"),
    };
    if !mode.full {
        eprintln!("verify bench: smoke run (use `cargo bench` for numbers)");
    }
    let mut rows: Vec<Row> = Vec::new();

    // Ed25519.
    let sigs = if mode.full { SIGS } else { 64 };
    let set = SigSet::new(sigs);
    let single = best_of(mode.reps(5), 1, || {
        for i in 0..sigs {
            black_box(set.keys[i].verify_strict(&set.msgs[i], &set.sigs[i])).expect("valid");
        }
    }) / u32::try_from(sigs).expect("fits");
    rows.push(Row {
        name: "Ed25519 verify_strict (per signature)".into(),
        ours: single,
        python: None,
    });
    let msgs: Vec<&[u8]> = set.msgs.iter().map(Vec::as_slice).collect();
    for batch in [64usize, 256, 1024].into_iter().filter(|b| *b <= sigs) {
        let per = best_of(mode.reps(5), 1, || {
            for start in (0..sigs).step_by(batch) {
                let end = start + batch;
                black_box(ed25519_dalek::verify_batch(
                    &msgs[start..end],
                    &set.sigs[start..end],
                    &set.keys[start..end],
                ))
                .expect("valid batch");
            }
        }) / u32::try_from(sigs).expect("fits");
        rows.push(Row {
            name: format!("Ed25519 verify_batch, batches of {batch} (per signature)"),
            ours: per,
            python: None,
        });
    }

    // Merkle roots.
    let full_n = if mode.full { MERKLE_FULL } else { 1000 };
    let py_n = if mode.full { MERKLE_PY } else { 100 };
    let merkle_row = rows.len();
    let mut py_root = [0u8; 32];
    {
        let units = Units::new(py_n);
        let (sorted, scrambled) = (units.sorted(), units.scrambled());
        for (order, leaves) in [("sorted", &sorted), ("scrambled", &scrambled)] {
            let ours = best_of(mode.reps(5), 1, || {
                py_root = black_box(result_set_root(black_box(leaves), Algorithm::V1));
            });
            rows.push(Row {
                name: format!("result-set root v1, {py_n} units, {order} input"),
                ours,
                python: None,
            });
        }
    }
    let units = Units::new(full_n);
    let (sorted, scrambled) = (units.sorted(), units.scrambled());
    let mut full_root = [0u8; 32];
    let root_1m = best_of(mode.reps(5), 1, || {
        full_root = black_box(result_set_root(black_box(&sorted), Algorithm::V1));
    });
    let root_1m_scrambled = best_of(mode.reps(5), 1, || {
        assert_eq!(
            black_box(result_set_root(black_box(&scrambled), Algorithm::V1)),
            full_root
        );
    });
    let hasher_1m = best_of(mode.reps(5), 1, || {
        let mut h = ResultSetHasher::new(Algorithm::V1);
        for u in &sorted {
            h.push(u);
        }
        assert_eq!(black_box(h.finish()), full_root);
    });
    // Where the time goes (sorted input): leaf hashing, the tree, and the
    // sort of scrambled input.
    let mut hashes = Vec::new();
    let leaves_only = best_of(mode.reps(5), 1, || {
        hashes = black_box(&sorted)
            .iter()
            .map(|u| u.leaf_hash(Algorithm::V1))
            .collect();
    });
    let tree_only = best_of(mode.reps(5), 1, || {
        assert_eq!(black_box(dup_last_root(hashes.clone())), full_root);
    });
    let sort_only = best_of(mode.reps(5), 1, || {
        let mut refs: Vec<&UnitLeaf<'_>> = scrambled.iter().collect();
        refs.sort_by(|a, b| a.unit_id.cmp(b.unit_id));
        black_box(refs);
    });
    drop((hashes, sorted, scrambled));
    drop(units);
    for (name, ours) in [
        (
            format!("result-set root v1, {full_n} units, sorted input"),
            root_1m,
        ),
        (
            format!("result-set root v1, {full_n} units, scrambled input"),
            root_1m_scrambled,
        ),
        (
            format!("result-set root v1, {full_n} units, ResultSetHasher (sorted arrival)"),
            hasher_1m,
        ),
        (format!("… {full_n} sorted: leaf hashes only"), leaves_only),
        (
            format!("… {full_n} sorted: tree only (dup_last_root)"),
            tree_only,
        ),
        (format!("… {full_n} scrambled: sort only"), sort_only),
    ] {
        rows.push(Row {
            name,
            ours,
            python: None,
        });
    }

    // COSE_Sign1.
    let cose = receipt_cose();
    let cose_verify = best_of(mode.reps(5), mode.iters(20_000), || {
        let msg = CoseSign1::decode(black_box(&cose)).expect("decodes");
        black_box(msg.verify(None)).expect("valid");
    });
    let cose_row = rows.len();
    rows.push(Row {
        name: "COSE_Sign1 receipt: decode + verify".into(),
        ours: cose_verify,
        python: None,
    });
    let inspect = best_of(mode.reps(5), mode.iters(20_000), || {
        let r = inspect_receipt(black_box(&cose)).expect("inspects");
        black_box(r);
    });
    rows.push(Row {
        name: "COSE_Sign1 receipt: inspect_receipt (+ statement, receipt)".into(),
        ours: inspect,
        python: None,
    });

    // RFC 9421.
    let key = TenantKey::from_seed([7; 32]);
    let signed = sign_request(&key, "POST", RFC_TARGET, RFC_HOST, RFC_BODY, RFC_CREATED);
    let mut headers = vec![("host", RFC_HOST), ("content-type", "application/json")];
    headers.extend(signed.header_pairs());
    let req = RequestParts::new("POST", RFC_TARGET, &headers, RFC_BODY);
    let vk = key.verifying_key();
    let policy = Policy::default();
    let rfc_verify = best_of(mode.reps(5), mode.iters(20_000), || {
        black_box(verify_request(
            black_box(&req),
            RFC_CREATED,
            |_| Some(vk),
            &policy,
        ))
        .expect("valid");
    });
    rows.push(Row {
        name: "RFC 9421 verify_request (POST, coordinator rules)".into(),
        ours: rfc_verify,
        python: None,
    });
    let rfc_sign = best_of(mode.reps(5), mode.iters(20_000), || {
        black_box(sign_request(
            &key,
            "POST",
            RFC_TARGET,
            RFC_HOST,
            black_box(RFC_BODY),
            RFC_CREATED,
        ));
    });
    let sign_row = rows.len();
    rows.push(Row {
        name: "RFC 9421 sign_request (POST)".into(),
        ours: rfc_sign,
        python: None,
    });

    // Python, same run.
    let mut py_versions = None;
    match (mode.full, python_055()) {
        (true, Some(python)) => {
            let py = run_python(&python, &set, &cose, &key);
            assert_eq!(py.merkle_root, hex(&py_root), "Merkle roots differ");
            assert_eq!(
                py.rfc_signature, signed.signature,
                "RFC 9421 signatures differ"
            );
            rows[0].python = Some(py.ed25519);
            rows[merkle_row].python = Some(py.merkle_sorted);
            rows[merkle_row + 1].python = Some(py.merkle_scrambled);
            rows[cose_row].python = Some(py.cose);
            rows[sign_row].python = Some(py.rfc_sign);
            py_versions = Some(py.versions);
        }
        (true, None) => {
            eprintln!(
                "Python SDK 0.5.5 NOT MEASURED: no venv (run `bash scripts/python-peers.sh` or set \
                 AUSPEX_PYTHON_055)"
            );
        }
        (false, _) => {}
    }

    if !mode.full {
        return;
    }
    println!();
    println!("| operation | ours | ours (rate) | Python SDK 0.5.5 | Python ÷ ours |");
    println!("| --- | --- | --- | --- | --- |");
    for r in &rows {
        let (py, ratio) = match r.python {
            Some(p) => (
                fmt(p),
                format!("{:.1}×", p.as_secs_f64() / r.ours.as_secs_f64()),
            ),
            None => ("—".to_owned(), "—".to_owned()),
        };
        println!(
            "| {} | {} | {} | {py} | {ratio} |",
            r.name,
            fmt(r.ours),
            per_sec(r.ours)
        );
    }
    println!();
    for (order, d) in [("sorted", root_1m), ("scrambled", root_1m_scrambled)] {
        println!(
            "{full_n} v1 leaves, {order} input: {} per unit; target < 1 s: {}",
            fmt(d / u32::try_from(full_n).expect("fits")),
            if d < Duration::from_secs(1) {
                "met"
            } else {
                "NOT MET"
            }
        );
    }
    if let Some(v) = py_versions {
        println!("Python: {v}; roots and RFC 9421 signatures agree with ours.");
    }
}
