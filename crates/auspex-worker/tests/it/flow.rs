//! End to end against a real coordinator: Python and shell executors
//! replicated to three workers with their own keys, consensus, receipts;
//! a dishonest worker; a worker killed mid-unit; graceful shutdown.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auspex_crypto::cose::CoseSign1;
use auspex_worker::{Fault, Level, SandboxMode, WorkerError, WorkerStats, kind, spawn};
use serde_json::json;

use crate::common::*;

fn verify_receipts(net: &Net, stats: &WorkerStats) {
    let coord = net.coordinator_pubkey();
    for r in &stats.receipts {
        let blob = std::fs::read(&r.path).expect("test step");
        let cose = CoseSign1::decode(&blob).expect("test step");
        let signer = cose
            .verify(Some(&coord))
            .expect("receipt signature verifies");
        assert_eq!(signer.hex(), auspex_wire::hex_lower(&coord));
        let st = auspex_wire::attestation::Statement::decode(cose.payload()).expect("test step");
        assert!(st.subject_digest_matches());
        assert_eq!(st.predicate_type, "https://auspexai.network/receipt/v0");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_and_shell_executors_reach_consensus_on_three_workers() {
    let net = Net::start(|c| c).await;
    let py = net
        .experiment("squares", "py-square", &["python", "executor.py"], 3)
        .await;
    let sh = net
        .experiment("echoes", "sh-echo", &["sh", "run.sh"], 3)
        .await;
    net.submit(
        &py,
        &[
            ("u1", json!({"x": 3})),
            ("u2", json!({"x": 4})),
            // Beyond 64 bits: Python ints are arbitrary-size.
            ("u3", json!({"x": 12345678901234567890u64})),
        ],
    )
    .await;
    net.submit(
        &sh,
        &[
            ("w1", json!({"word": "hello"})),
            ("w2", json!({"word": "devnet"})),
        ],
    )
    .await;
    let workers: Vec<_> = [11u8, 12, 13]
        .iter()
        .map(|s| spawn(net.worker_config(&format!("w{s}"), *s)))
        .collect();
    net.wait_completed(&py, 3, Duration::from_secs(90)).await;
    net.wait_completed(&sh, 2, Duration::from_secs(90)).await;
    for w in &workers {
        wait_for("five receipts per worker", Duration::from_secs(30), || {
            w.stats().receipts.len() == 5
        })
        .await;
    }
    let mut by_unit: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut keys = Vec::new();
    for w in workers {
        let stats = w.shutdown().await.expect("clean shutdown");
        assert!(stats.refusals.is_empty(), "{:?}", stats.refusals);
        assert!(
            stats.rejected_results.is_empty(),
            "{:?}",
            stats.rejected_results
        );
        assert_eq!(stats.results.len(), 5);
        assert!(stats.heartbeats >= 1);
        verify_receipts(&net, &stats);
        for r in &stats.results {
            by_unit
                .entry(r.unit_id.clone())
                .or_default()
                .push(r.semantic_hash.clone());
        }
        keys.push(stats.pubkey_hex);
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 3, "three different worker keys");
    assert_eq!(by_unit.len(), 5);
    for (unit, hashes) in by_unit {
        assert_eq!(hashes.len(), 3, "{unit}");
        assert!(hashes.iter().all(|h| *h == hashes[0]), "{unit}: {hashes:?}");
    }
    // The coordinator's view: 3 completions per unit; receipts listed.
    let units = net.units(&py).await;
    for u in units["work_units"].as_array().expect("test step") {
        assert_eq!(u["completions_so_far"], 3, "{u}");
    }
    let r = net
        .tenant(
            "GET",
            &format!("/api/v0/experiments/{}/receipts", sh.id),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let listed = r.body["receipts"].as_array().expect("test step");
    assert_eq!(
        listed.len(),
        6,
        "two units, three receipts each: {}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_dishonest_worker_makes_the_unit_diverge() {
    let net = Net::start(|c| c).await;
    let exp = net
        .experiment("dishonest", "py-square", &["python", "executor.py"], 3)
        .await;
    net.submit(&exp, &[("d1", json!({"x": 5}))]).await;
    let honest1 = spawn(net.worker_config("h1", 21));
    let honest2 = spawn(net.worker_config("h2", 22));
    let mut liar_cfg = net.worker_config("liar", 23);
    liar_cfg.fault = Some(Fault::WrongAnswer);
    let liar = spawn(liar_cfg);
    net.wait_completed(&exp, 1, Duration::from_secs(60)).await;
    for w in [&honest1, &honest2, &liar] {
        wait_for(
            "the 410 for the diverged unit",
            Duration::from_secs(30),
            || w.stats().no_receipt.len() == 1,
        )
        .await;
        assert!(w.stats().receipts.is_empty());
    }
    let liar_hash = liar.stats().results[0].semantic_hash.clone();
    let honest_hash = honest1.stats().results[0].semantic_hash.clone();
    assert_ne!(liar_hash, honest_hash);
    assert_eq!(honest2.stats().results[0].semantic_hash, honest_hash);
    assert_eq!(liar.stats().no_receipt[0].1, "quorum_disagreed");
    for w in [honest1, honest2, liar] {
        w.shutdown().await.expect("test step");
    }
    // Finalize: the experiment completes and its attestation names the unit.
    let r = net
        .tenant(
            "POST",
            &format!(
                "/api/v0/experiments/{}/actions/finalize-submissions",
                exp.id
            ),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "completed", "{}", r.text);
    let a = net
        .tenant(
            "GET",
            &format!("/api/v0/experiments/{}/attestation", exp.id),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let diverged = a.body["diverged_units"].as_array().expect("diverged_units");
    assert_eq!(diverged.len(), 1, "{}", a.text);
    assert_eq!(diverged[0]["unit_id"], "d1");
    assert_eq!(a.body["unit_count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_unit_loses_the_lease_to_another() {
    let net = Net::start(|c| c.lease(Duration::from_millis(1500))).await;
    let exp = net
        .experiment("killed", "py-square", &["python", "executor.py"], 1)
        .await;
    net.submit(&exp, &[("k1", json!({"x": 6, "sleep": 2}))])
        .await;
    let doomed = spawn(net.worker_config("doomed", 31));
    wait_for("the first lease", Duration::from_secs(20), || {
        doomed.stats().leased == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = doomed.kill().await;
    assert!(stats.results.is_empty() && stats.refusals.is_empty());
    let rescuer = spawn(net.worker_config("rescuer", 32));
    let units = net.wait_completed(&exp, 1, Duration::from_secs(60)).await;
    assert_eq!(units["work_units"][0]["completions_so_far"], 1, "{units}");
    wait_for("the rescuer's receipt", Duration::from_secs(20), || {
        rescuer.stats().receipts.len() == 1
    })
    .await;
    let stats = rescuer.shutdown().await.expect("test step");
    assert_eq!(stats.results.len(), 1);
    verify_receipts(&net, &stats);
    // Exactly one result row, from the rescuer.
    let conn = net.server().state().db().lock();
    let rows: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM results WHERE unit_id = 'k1'",
            [],
            |r| r.get(0),
        )
        .expect("test step");
    assert_eq!(rows, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn injected_crash_and_hang_leave_the_unit_to_an_honest_worker() {
    let net = Net::start(|c| c.lease(Duration::from_millis(800))).await;
    let exp = net
        .experiment("crashy", "py-square", &["python", "executor.py"], 1)
        .await;
    net.submit(&exp, &[("c1", json!({"x": 7})), ("c2", json!({"x": 8}))])
        .await;
    let mut crash = net.worker_config("crash", 41);
    crash.fault = Some(Fault::Crash);
    let crash = spawn(crash);
    match crash.join().await {
        Err(WorkerError::InjectedCrash { unit_id }) => assert_eq!(unit_id, "c1"),
        other => panic!("expected an injected crash, got {other:?}"),
    }
    let mut hang = net.worker_config("hang", 42);
    hang.fault = Some(Fault::Hang);
    let hang = spawn(hang);
    wait_for("the hanging lease", Duration::from_secs(20), || {
        hang.stats().leased == 1
    })
    .await;
    let honest = spawn(net.worker_config("honest", 43));
    net.wait_completed(&exp, 2, Duration::from_secs(60)).await;
    let h = hang.shutdown().await.expect("test step");
    assert!(h.results.is_empty() && h.refusals.is_empty());
    assert_eq!(honest.shutdown().await.expect("test step").results.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_results_are_refused_by_the_coordinator() {
    let net = Net::start(|c| c.lease(Duration::from_millis(800))).await;
    let exp = net
        .experiment("garbage", "py-square", &["python", "executor.py"], 1)
        .await;
    net.submit(&exp, &[("g1", json!({"x": 9}))]).await;
    let mut cfg = net.worker_config("garbage", 51);
    cfg.fault = Some(Fault::Garbage);
    let bad = spawn(cfg);
    wait_for("the rejected upload", Duration::from_secs(30), || {
        !bad.stats().rejected_results.is_empty()
    })
    .await;
    let why = bad.stats().rejected_results[0].1.clone();
    assert!(why.contains("invalid_worker_signature"), "{why}");
    bad.shutdown().await.expect("test step");
    let good = spawn(net.worker_config("good", 52));
    net.wait_completed(&exp, 1, Duration::from_secs(30)).await;
    good.shutdown().await.expect("test step");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_finishes_the_unit_in_hand_or_refuses_it_after_the_grace() {
    let net = Net::start(|c| c).await;
    let exp = net
        .experiment("graceful", "py-square", &["python", "executor.py"], 1)
        .await;
    net.submit(
        &exp,
        &[
            ("s1", json!({"x": 1, "sleep": 1.5})),
            ("s2", json!({"x": 2, "sleep": 30})),
        ],
    )
    .await;
    let w = spawn(net.worker_config("graceful", 61));
    wait_for("the first lease", Duration::from_secs(20), || {
        w.stats().leased == 1
    })
    .await;
    let stats = w.shutdown().await.expect("test step");
    assert_eq!(stats.results.len(), 1, "the unit in hand was finished");
    assert_eq!(stats.leased, 1, "nothing new is leased after the signal");
    // Now a short grace: the 30 s unit is killed and refused.
    let mut cfg = net.worker_config("impatient", 62);
    cfg.shutdown_grace = Duration::from_millis(300);
    let w = spawn(cfg);
    wait_for("the second lease", Duration::from_secs(20), || {
        w.stats().leased == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let stats = w.shutdown().await.expect("test step");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(stats.refusals.len(), 1, "{:?}", stats.refusals);
    assert_eq!(stats.refusals[0].kind, kind::RUNNER_FAILED);
    assert!(stats.refusals[0].reason.contains("shutting down"));
    let conn = net.server().state().db().lock();
    let refused: Option<String> = conn
        .query_row(
            "SELECT refused_kind FROM assignments WHERE unit_id = 's2'",
            [],
            |r| r.get(0),
        )
        .expect("test step");
    assert_eq!(refused.as_deref(), Some("runner_failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_runs_units_in_parallel_workspaces() {
    let net = Net::start(|c| c).await;
    let exp = net
        .experiment("parallel", "py-square", &["python", "executor.py"], 1)
        .await;
    let units: Vec<(String, serde_json::Value)> = (0..4)
        .map(|i| (format!("p{i}"), json!({"x": i, "sleep": 2.0})))
        .collect();
    let refs: Vec<(&str, serde_json::Value)> =
        units.iter().map(|(u, p)| (u.as_str(), p.clone())).collect();
    net.submit(&exp, &refs).await;
    let mut cfg = net.worker_config("parallel", 71);
    cfg.concurrency = 4;
    let started = std::time::Instant::now();
    let w = spawn(cfg);
    net.wait_completed(&exp, 4, Duration::from_secs(60)).await;
    let elapsed = started.elapsed();
    let stats = w.shutdown().await.expect("test step");
    assert_eq!(stats.results.len(), 4);
    // Four 2 s units on one worker: in parallel (about 2 s), not 8 s back to
    // back; the margin absorbs a loaded machine.
    assert!(elapsed < Duration::from_millis(7500), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_sandbox_is_an_explicit_loudly_logged_opt_in() {
    let net = Net::start(|c| c).await;
    let exp = net
        .experiment("trusted", "sh-echo", &["sh", "run.sh"], 1)
        .await;
    net.submit(&exp, &[("t1", json!({"word": "trust"}))]).await;
    let lines: Arc<Mutex<Vec<(Level, String)>>> = Arc::default();
    let sink = lines.clone();
    let mut cfg = net.worker_config("trusted", 81);
    cfg.sandbox = SandboxMode::None;
    cfg.logger = Some(Arc::new(move |l, m: &str| {
        sink.lock().expect("test step").push((l, m.to_owned()))
    }));
    let w = spawn(cfg);
    net.wait_completed(&exp, 1, Duration::from_secs(30)).await;
    let stats = w.shutdown().await.expect("test step");
    assert_eq!(stats.results.len(), 1);
    let lines = lines.lock().expect("test step");
    assert!(
        lines
            .iter()
            .any(|(l, m)| *l == Level::Warn && m.contains("SANDBOX DISABLED")),
        "{lines:?}"
    );
    // The coordinator stored what the worker signed.
    let conn = net.server().state().db().lock();
    let (ran_under, version, semantic): (String, i64, String) = conn
        .query_row(
            "SELECT ran_under, schema_version, semantic_hash FROM results WHERE unit_id = 't1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("test step");
    assert_eq!((ran_under.as_str(), version), ("permissive", 3));
    assert_eq!(semantic, stats.results[0].semantic_hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coordinator_outages_are_ridden_out_with_backoff() {
    // The worker starts before the coordinator exists: enrolment retries.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("test step");
    let early = tempfile::tempdir().expect("test step");
    let mut cfg = auspex_worker::WorkerConfig::new(
        format!("http://{port}"),
        auspex_worker::KeySource::Key(auspex_crypto::keys::TenantKey::from_seed([111; 32])),
        early.path().join("work"),
    );
    cfg.poll_interval = Duration::from_millis(100);
    cfg.max_backoff = Duration::from_millis(500);
    cfg.limits = small_limits();
    let w = spawn(cfg.clone());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(w.stats().worker_id.is_empty(), "nothing to enrol with yet");
    let mut net = Net::start(move |c| c.bind(port)).await;
    wait_for("the late enrolment", Duration::from_secs(20), || {
        !w.stats().worker_id.is_empty()
    })
    .await;
    let exp = net
        .experiment("outage", "py-square", &["python", "executor.py"], 1)
        .await;
    // The worker was configured before the staging directory existed.
    let stats = w.shutdown().await.expect("test step");
    assert_eq!(stats.leased, 0);
    cfg.package_sources = vec![Arc::new(auspex_worker::package::LocalSource {
        root: net.staging.clone(),
    })];
    let w = spawn(cfg);
    net.submit(&exp, &[("o1", json!({"x": 3, "sleep": 1.5}))])
        .await;
    wait_for("the lease", Duration::from_secs(20), || {
        w.stats().leased == 1
    })
    .await;
    // The coordinator goes away while the unit runs: the upload fails,
    // stays pending, and is retried until the coordinator is back.
    net.stop().await;
    wait_for("failed uploads", Duration::from_secs(20), || {
        w.stats().submit_retries >= 2
    })
    .await;
    assert!(w.stats().results.is_empty());
    net.restart().await;
    net.wait_completed(&exp, 1, Duration::from_secs(30)).await;
    wait_for("the receipt", Duration::from_secs(20), || {
        w.stats().receipts.len() == 1
    })
    .await;
    let stats = w.shutdown().await.expect("test step");
    assert_eq!(stats.results.len(), 1);
    assert!(stats.submit_retries >= 2, "{stats:?}");
    assert!(stats.rejected_results.is_empty());
    verify_receipts(&net, &stats);
}
