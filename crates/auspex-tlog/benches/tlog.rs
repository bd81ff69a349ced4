//! Transparency-log throughput: appends (one fsync each, and batched), proofs
//! and full entries from a 100,000-leaf log, and the HTTP service under
//! concurrent clients (group commit). Plain `Instant` timing:
//! `cargo bench -p auspex-tlog --bench tlog` (release build; `-- --quick`
//! for a smaller run, which is also what `cargo test --benches` runs).
//! Prints Markdown table rows.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use auspex_crypto::tlog::testlog::LogSigner;
use auspex_tlog::{Log, TlogConfig};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

fn proposal(i: u64, signer: &LogSigner, pem_b64: &str) -> Vec<u8> {
    let content = format!("attestation {i:020}").into_bytes();
    format!(
        r#"{{"apiVersion":"0.0.1","kind":"rekord","spec":{{"data":{{"content":"{}"}},"signature":{{"content":"{}","format":"x509","publicKey":{{"content":"{pem_b64}"}}}}}}}}"#,
        STANDARD.encode(&content),
        STANDARD.encode(signer.sign(&content)),
    )
    .into_bytes()
}

/// xorshift64: deterministic indices without a dependency.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn row(what: &str, n: u64, secs: f64) {
    println!(
        "| {what} | {n} | {:.3} s | {:.0} /s |",
        secs,
        n as f64 / secs
    );
}

fn main() {
    // `cargo bench` passes `--bench`; run as a test (`cargo test --benches`)
    // or with `--quick`, the sizes are small (a smoke test).
    let args: Vec<String> = std::env::args().collect();
    let quick = !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--quick");
    let leaves: u64 = if quick { 10_000 } else { 100_000 };
    let signer = LogSigner::ed25519([0x42; 32]);
    let pem_b64 = STANDARD.encode(auspex_tlog::public_key_pem(&signer.public_key()).unwrap());

    println!("| operation | count | time | rate |");
    println!("| --- | --- | --- | --- |");

    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path()).unwrap();

    // Appends, one transaction (fsync) each, through the proposal checks.
    let n = if quick { 200 } else { 1_000 };
    let t = Instant::now();
    for i in 0..n {
        log.submit(&proposal(i, &signer, &pem_b64)).unwrap();
    }
    row(
        "append (rekord checks + 1 commit each)",
        n,
        t.elapsed().as_secs_f64(),
    );

    // Batched appends of canonical bodies, 256 per transaction.
    let bodies: Vec<Vec<u8>> = (n..leaves)
        .map(|i| format!("{{\"leaf\":{i:020}}}").into_bytes())
        .collect();
    let m = bodies.len() as u64;
    let t = Instant::now();
    let mut it = bodies.into_iter().peekable();
    while it.peek().is_some() {
        let batch: Vec<Vec<u8>> = it.by_ref().take(256).collect();
        log.append_batch(batch).unwrap();
    }
    row(
        "append (batches of 256, 1 commit each)",
        m,
        t.elapsed().as_secs_f64(),
    );
    let size = log.size().unwrap();

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let k = 20_000;
    let t = Instant::now();
    for _ in 0..k {
        let i = rng.below(size);
        log.inclusion_proof(i, size).unwrap();
    }
    row(
        &format!("inclusion proof (tree of {size})"),
        k,
        t.elapsed().as_secs_f64(),
    );
    let t = Instant::now();
    for _ in 0..k {
        let b = 1 + rng.below(size);
        let a = 1 + rng.below(b);
        log.consistency_proof(a, b).unwrap();
    }
    row(
        &format!("consistency proof (sizes ≤ {size})"),
        k,
        t.elapsed().as_secs_f64(),
    );
    let k2 = k / 4;
    let t = Instant::now();
    for _ in 0..k2 {
        log.entry(rng.below(size)).unwrap();
    }
    row(
        "entry (proof + signed checkpoint + SET, Ed25519)",
        k2,
        t.elapsed().as_secs_f64(),
    );
    drop(log);

    // The HTTP service: concurrent POSTs (group commit) and GETs.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let tlog = auspex_tlog::serve(TlogConfig::new(dir.path()))
            .await
            .unwrap();
        let url = Arc::new(tlog.url().to_owned());
        let clients = 16u64;
        let per = if quick { 50 } else { 250 };
        let pem = Arc::new(pem_b64.clone());
        let t = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (url, pem) = (Arc::clone(&url), Arc::clone(&pem));
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::builder().no_proxy().build().unwrap();
                let signer = LogSigner::ed25519([0x42; 32]);
                let mut uuids = Vec::new();
                for i in 0..per {
                    let r = client
                        .post(format!("{url}/api/v1/log/entries"))
                        .header("content-type", "application/json")
                        .body(proposal(c * 1_000_000 + i, &signer, &pem))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 201);
                    let loc = r.headers()["location"].to_str().unwrap().to_owned();
                    uuids.push(loc);
                }
                uuids
            }));
        }
        let mut locations = Vec::new();
        for t in tasks {
            locations.extend(t.await.unwrap());
        }
        row(
            &format!("HTTP POST rekord ({clients} clients, group commit)"),
            clients * per,
            t.elapsed().as_secs_f64(),
        );
        let locations = Arc::new(locations);
        let t = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..8usize {
            let (url, locations) = (Arc::clone(&url), Arc::clone(&locations));
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::builder().no_proxy().build().unwrap();
                for loc in locations.iter().skip(c).step_by(8) {
                    let r = client.get(format!("{url}{loc}")).send().await.unwrap();
                    assert_eq!(r.status().as_u16(), 200);
                    r.bytes().await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        row(
            "HTTP GET entry by UUID (8 clients, fresh proof + checkpoint + SET)",
            locations.len() as u64,
            t.elapsed().as_secs_f64(),
        );
        tlog.shutdown().await.unwrap();
    });
}
