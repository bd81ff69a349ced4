//! Faults on the devnet: a dishonest worker makes units diverge (and the
//! signed attestation says so); a worker that leases a replica and stalls,
//! crashes, or is killed while its executor runs loses the replica when the
//! lease expires, another worker computes it and the experiment completes.
//! Nothing is lost or double-counted: every test reads the coordinator's
//! results listing, its database (opened read-only in the devnet's state
//! directory) and the exported evidence bundle, which must verify with
//! auspex's verifiers and with the official SDK's `bundle verify`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auspex_crypto::keys::TenantKey;
use auspex_devnet::{DevnetConfig, DevnetInfo};
use auspex_wire::attestation::AttestationResponse;
use auspex_wire::json::Value;
use auspex_wire::receipt::cbor::Cbor;
use common::{
    CheckedBundle, Executor, Package, SHELL_EXECUTOR, Tenant, create_experiment,
    create_experiment_with, export_bundle, official_bundle_verify, raw_results, start,
    submit_units, verify_bundle, verify_final, wait_anchored_attestation,
};

const UNITS: usize = 4;
const REPLICATION: usize = 3;

fn expected_units() -> BTreeSet<String> {
    (0..UNITS).map(|i| format!("u-{i:03}")).collect()
}

/// Raw result rows per unit → the workers that produced them.
fn workers_by_unit(rows: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut by_unit: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rows {
        let unit = r.get("unit_id").and_then(Value::as_str).expect("unit_id");
        let worker = r
            .get("worker_id")
            .and_then(Value::as_str)
            .expect("worker_id");
        by_unit
            .entry(unit.to_owned())
            .or_default()
            .push(worker.to_owned());
    }
    by_unit
}

/// Waits for the anchored final attestation, verifies it (every unit
/// attested), and returns the raw results after checking each unit was
/// replicated exactly three times.
async fn completed_and_replicated(
    tenant: &Tenant,
    info: &DevnetInfo,
    id: &str,
    deadline: Duration,
) -> Vec<Value> {
    let bytes = wait_anchored_attestation(tenant, id, deadline, Duration::from_millis(200)).await;
    let response = AttestationResponse::parse(&bytes).expect("attestation response");
    let verified = verify_final(info, &response);
    assert_eq!(verified.predicate().units.len(), UNITS);
    let rows = raw_results(tenant, id).await;
    assert_replicated_once(&rows, 3);
    rows
}

/// Every unit has exactly `replication` raw rows, from distinct workers.
fn assert_replicated_once(rows: &[Value], replication: usize) {
    let by_unit = workers_by_unit(rows);
    assert_eq!(
        by_unit.keys().cloned().collect::<BTreeSet<_>>(),
        expected_units()
    );
    for (unit, workers) in &by_unit {
        assert_eq!(workers.len(), replication, "{unit}: {workers:?}");
        let distinct: BTreeSet<&String> = workers.iter().collect();
        assert_eq!(distinct.len(), replication, "{unit}: {workers:?}");
    }
}

fn db(state: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        state.join("coordinator").join("coordinator.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("coordinator database")
}

fn count(conn: &rusqlite::Connection, sql: &str, id: &str) -> i64 {
    conn.query_row(sql, [id], |r| r.get(0)).expect(sql)
}

/// Rows of a query with one `?1` (the experiment id) and `n` text columns.
fn texts(conn: &rusqlite::Connection, sql: &str, id: &str) -> Vec<Vec<Option<String>>> {
    let mut stmt = conn.prepare(sql).expect(sql);
    let n = stmt.column_count();
    stmt.query_map([id], |r| (0..n).map(|i| r.get(i)).collect())
        .expect(sql)
        .collect::<Result<_, _>>()
        .expect(sql)
}

/// One stored result.
#[derive(Debug)]
struct StoredResult {
    result_id: String,
    worker_pubkey_hex: String,
    semantic_hash: String,
    is_consensus: bool,
}

/// One unit's consensus row.
#[derive(Debug)]
struct StoredConsensus {
    agreed: bool,
    agreeing_workers: i64,
    integrity_basis: String,
}

/// What the coordinator's database holds for an experiment.
#[derive(Debug)]
struct Stored {
    /// Unit → its results.
    results: BTreeMap<String, Vec<StoredResult>>,
    /// Result id → receipt id.
    receipts: BTreeMap<String, String>,
    /// Unit → consensus.
    consensus: BTreeMap<String, StoredConsensus>,
    /// Unit → `unit_payload_sha256`.
    payload_hashes: BTreeMap<String, String>,
}

/// Reads the database and checks what every fault must keep: each unit is
/// completed with exactly [`REPLICATION`] results from distinct workers
/// (and keys), each result belongs to an assignment of the same unit and
/// worker that points back at it, no assignment points at a missing
/// result, each result has a receipt or a `no_receipt` outcome (never both,
/// never two receipts), and each unit has one consensus row.
fn stored(state: &Path, id: &str) -> Stored {
    let conn = db(state);
    let units = texts(
        &conn,
        "SELECT unit_id, status, CAST(completions_so_far AS TEXT), \
         CAST(replication_target AS TEXT), unit_payload_sha256 FROM work_units \
         WHERE experiment_id = ?1 ORDER BY unit_id",
        id,
    );
    let ids: BTreeSet<String> = units.iter().filter_map(|u| u[0].clone()).collect();
    assert_eq!(ids, expected_units(), "stored units");
    assert_eq!(units.len(), UNITS, "a unit stored twice: {units:?}");
    let target = REPLICATION.to_string();
    let mut payload_hashes = BTreeMap::new();
    for u in &units {
        assert_eq!(u[1].as_deref(), Some("completed"), "{u:?}");
        assert_eq!(u[2].as_deref(), Some(target.as_str()), "completions {u:?}");
        assert_eq!(u[3].as_deref(), Some(target.as_str()), "target {u:?}");
        payload_hashes.insert(
            u[0].clone().expect("unit"),
            u[4].clone().expect("payload hash"),
        );
    }

    let rows = texts(
        &conn,
        "SELECT r.unit_id, r.result_id, r.worker_id, r.worker_pubkey_hex, r.semantic_hash, \
         CAST(r.is_consensus AS TEXT), a.unit_id, a.worker_id, a.result_id \
         FROM results r LEFT JOIN assignments a ON a.assignment_id = r.assignment_id \
         WHERE r.experiment_id = ?1 ORDER BY r.unit_id, r.result_id",
        id,
    );
    let mut results: BTreeMap<String, Vec<StoredResult>> = BTreeMap::new();
    let mut workers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &rows {
        let f = |i: usize| r[i].clone().unwrap_or_default();
        assert_eq!(
            (f(6), f(7), f(8)),
            (f(0), f(2), f(1)),
            "result and its assignment disagree: {r:?}"
        );
        assert!(
            workers.entry(f(0)).or_default().insert(f(2)),
            "two results of one worker for {}: {rows:#?}",
            f(0)
        );
        results.entry(f(0)).or_default().push(StoredResult {
            result_id: f(1),
            worker_pubkey_hex: f(3),
            semantic_hash: f(4),
            is_consensus: f(5) == "1",
        });
    }
    assert_eq!(
        results.keys().cloned().collect::<BTreeSet<_>>(),
        expected_units()
    );
    for (unit, rs) in &results {
        assert_eq!(rs.len(), REPLICATION, "{unit}: {rs:#?}");
        let keys: BTreeSet<&str> = rs.iter().map(|r| r.worker_pubkey_hex.as_str()).collect();
        assert_eq!(keys.len(), REPLICATION, "{unit}: one key twice {rs:#?}");
        assert!(
            rs.iter().filter(|r| r.is_consensus).count() <= 1,
            "{unit}: two consensus results {rs:#?}"
        );
    }
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM assignments a WHERE a.experiment_id = ?1 \
             AND a.result_id IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM results r WHERE r.result_id = a.result_id)",
            id
        ),
        0,
        "an assignment points at a missing result"
    );

    let receipt_rows = texts(
        &conn,
        "SELECT c.receipt_id, c.result_id, c.unit_id, r.unit_id, c.worker_id, r.worker_id \
         FROM receipts c LEFT JOIN results r ON r.result_id = c.result_id \
         WHERE c.experiment_id = ?1",
        id,
    );
    let mut receipts = BTreeMap::new();
    let mut receipted: BTreeSet<(String, String)> = BTreeSet::new();
    for c in &receipt_rows {
        let f = |i: usize| c[i].clone().unwrap_or_default();
        assert_eq!(
            (f(2), f(4)),
            (f(3), f(5)),
            "receipt for another result: {c:?}"
        );
        assert!(
            receipted.insert((f(2), f(4))),
            "two receipts for one worker's replica: {c:?}"
        );
        assert!(
            receipts.insert(f(1), f(0)).is_none(),
            "two receipts for one result: {c:?}"
        );
    }
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM results r WHERE r.experiment_id = ?1 AND \
             (SELECT COUNT(*) FROM receipts c WHERE c.result_id = r.result_id) + \
             (SELECT COUNT(*) FROM receipt_outcomes o WHERE o.result_id = r.result_id) <> 1",
            id
        ),
        0,
        "a result with neither or both of a receipt and a no_receipt outcome"
    );

    let consensus_rows = texts(
        &conn,
        "SELECT unit_id, CAST(agreed AS TEXT), CAST(agreeing_workers AS TEXT), integrity_basis \
         FROM unit_consensus WHERE experiment_id = ?1",
        id,
    );
    let mut consensus = BTreeMap::new();
    for c in &consensus_rows {
        let f = |i: usize| c[i].clone().unwrap_or_default();
        consensus.insert(
            f(0),
            StoredConsensus {
                agreed: f(1) == "1",
                agreeing_workers: f(2).parse().expect("agreeing_workers"),
                integrity_basis: f(3),
            },
        );
    }
    assert_eq!(
        consensus.keys().cloned().collect::<BTreeSet<_>>(),
        expected_units(),
        "one consensus row per unit"
    );
    Stored {
        results,
        receipts,
        consensus,
        payload_hashes,
    }
}

/// Every unit agreed: three equal hashes, one consensus result, three
/// receipts (one per agreeing replica).
fn assert_all_agreed(s: &Stored) {
    for (unit, c) in &s.consensus {
        assert!(c.agreed, "{unit}: {c:?}");
        assert_eq!(c.agreeing_workers, REPLICATION as i64, "{unit}: {c:?}");
        assert_eq!(c.integrity_basis, "within_cell_exact", "{unit}: {c:?}");
        let rs = &s.results[unit];
        let hashes: BTreeSet<&str> = rs.iter().map(|r| r.semantic_hash.as_str()).collect();
        assert_eq!(hashes.len(), 1, "{unit}: {rs:#?}");
        assert_eq!(rs.iter().filter(|r| r.is_consensus).count(), 1, "{unit}");
        for r in rs {
            assert!(
                s.receipts.contains_key(&r.result_id),
                "{unit}: {} has no receipt",
                r.result_id
            );
        }
    }
    assert_eq!(s.receipts.len(), UNITS * REPLICATION);
}

/// Every unit diverged: no consensus result, no receipt, marked `diverged`.
fn assert_all_diverged(s: &Stored) {
    for (unit, c) in &s.consensus {
        assert!(!c.agreed, "{unit}: {c:?}");
        assert_eq!(c.agreeing_workers, 0, "{unit}: {c:?}");
        assert_eq!(c.integrity_basis, "diverged", "{unit}: {c:?}");
        let rs = &s.results[unit];
        let hashes: BTreeSet<&str> = rs.iter().map(|r| r.semantic_hash.as_str()).collect();
        assert!(hashes.len() >= 2, "{unit}: {rs:#?}");
        assert!(rs.iter().all(|r| !r.is_consensus), "{unit}: {rs:#?}");
    }
    assert!(s.receipts.is_empty(), "{:?}", s.receipts);
}

fn text(c: Option<&Cbor>) -> Option<String> {
    match c {
        Some(Cbor::Text(t)) => Some(t.clone()),
        _ => None,
    }
}

/// The bundle says what the database says: the experiment and its manifest
/// hash; every unit's input once; one consensus row per agreed unit (and
/// none for a diverged one), which is the unit's stored consensus result
/// with its stored receipt; exactly the receipts those rows reference; the
/// agreed units as the attestation's Merkle leaves and the diverged ones in
/// its `diverged_units` with their stored result hashes.
fn assert_bundle_matches(checked: &CheckedBundle, s: &Stored, id: &str, manifest_hash: &str) {
    let b = &checked.bundle;
    assert_eq!(b.experiment_id.as_deref(), Some(id));
    assert_eq!(b.manifest_hash.as_deref(), Some(manifest_hash));
    let inputs: Vec<(String, Option<i64>)> = b
        .work_units
        .iter()
        .map(|w| {
            (
                w.unit_id.clone().expect("work unit id"),
                w.payload
                    .as_ref()
                    .and_then(|p| p.get("value"))
                    .and_then(common::int),
            )
        })
        .collect();
    let expected: Vec<(String, Option<i64>)> = (0..UNITS)
        .map(|i| (format!("u-{i:03}"), Some(i as i64)))
        .collect();
    assert_eq!(inputs, expected, "work_units");

    let agreed: BTreeSet<String> = s
        .consensus
        .iter()
        .filter(|(_, c)| c.agreed)
        .map(|(u, _)| u.clone())
        .collect();
    let diverged: BTreeSet<String> = expected_units().difference(&agreed).cloned().collect();
    let mut delivered = BTreeSet::new();
    let mut referenced = BTreeSet::new();
    for row in &b.consensus_results {
        let unit = row.unit_id.clone().expect("unit_id");
        assert!(delivered.insert(unit.clone()), "{unit} delivered twice");
        let stored = s.results[&unit]
            .iter()
            .find(|r| r.is_consensus)
            .unwrap_or_else(|| panic!("{unit}: a bundle row but no stored consensus result"));
        assert_eq!(row.result_id.as_deref(), Some(stored.result_id.as_str()));
        assert_eq!(
            row.semantic_hash.as_deref(),
            Some(stored.semantic_hash.as_str())
        );
        assert_eq!(
            row.worker_pubkey_hex.as_deref(),
            Some(stored.worker_pubkey_hex.as_str())
        );
        let receipt = row.receipt_id.clone().expect("receipt_id");
        assert_eq!(s.receipts.get(&stored.result_id), Some(&receipt), "{unit}");
        referenced.insert(receipt);
    }
    assert_eq!(delivered, agreed, "consensus rows = agreed units");
    assert_eq!(
        checked.receipts.keys().cloned().collect::<BTreeSet<_>>(),
        referenced,
        "bundle receipts = receipts of the consensus rows"
    );

    let predicate = checked.attestation.predicate();
    let leaves: BTreeSet<String> = predicate.units.iter().map(|u| u.unit_id.clone()).collect();
    assert_eq!(leaves.len(), predicate.units.len(), "a leaf twice");
    assert_eq!(leaves, agreed, "Merkle leaves = agreed units");
    assert_eq!(predicate.unit_count, agreed.len() as u64);
    for u in &predicate.units {
        let row = b
            .consensus_results
            .iter()
            .find(|r| r.unit_id.as_deref() == Some(u.unit_id.as_str()))
            .expect("row of a leaf");
        assert_eq!(row.receipt_id.as_deref(), Some(u.receipt_id.as_str()));
        assert_eq!(
            u.unit_payload_sha256.as_deref(),
            Some(s.payload_hashes[&u.unit_id].as_str())
        );
    }
    let listed: Vec<&Cbor> = predicate
        .diverged_units
        .as_ref()
        .and_then(Cbor::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut listed_units = BTreeSet::new();
    for d in listed {
        let unit = text(d.map_get("unit_id")).expect("diverged unit_id");
        assert!(listed_units.insert(unit.clone()), "{unit} listed twice");
        let hashes: Vec<String> = d
            .map_get("result_hashes")
            .and_then(Cbor::as_array)
            .expect("result_hashes")
            .iter()
            .map(|h| text(Some(h)).expect("result hash text"))
            .collect();
        let stored: Vec<String> = s.results[&unit]
            .iter()
            .map(|r| r.semantic_hash.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(hashes, stored, "{unit}: distinct sorted result hashes");
        // `coordinator.md` §5: a diverged unit also carries its payload
        // digest and `integrity_basis: "diverged"`.
        assert_eq!(
            text(d.map_get("unit_payload_sha256")).as_deref(),
            Some(s.payload_hashes[&unit].as_str()),
            "{unit}: unit_payload_sha256"
        );
        assert_eq!(
            text(d.map_get("integrity_basis")).as_deref(),
            Some("diverged"),
            "{unit}: integrity_basis"
        );
    }
    assert_eq!(listed_units, diverged, "diverged_units = diverged units");
}

/// Exports the bundle, writes it to `dir/bundle.json`, verifies it with
/// auspex's verifiers and the official SDK's `bundle verify`, and checks it
/// against the database.
async fn check_bundle(
    tenant: &Tenant,
    info: &DevnetInfo,
    dir: &Path,
    s: &Stored,
    id: &str,
    manifest_hash: &str,
) {
    let bytes = export_bundle(tenant, id).await;
    let path = dir.join("bundle.json");
    std::fs::write(&path, &bytes).expect("write bundle");
    let checked = verify_bundle(info, &bytes);
    assert_bundle_matches(&checked, s, id, manifest_hash);
    official_bundle_verify(&path, &info.coordinator_pubkey);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dishonest_worker_makes_units_diverge_in_the_signed_attestation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let (devnet, tenant) = start(DevnetConfig {
        state_dir: Some(state.clone()),
        workers: 3,
        faulty_workers: 1,
        fault: Some(auspex_worker::Fault::WrongAnswer),
        ..DevnetConfig::default()
    })
    .await;
    let info = devnet.info().clone();
    let (id, hash) = create_experiment(&tenant, dir.path(), Executor::Python, 3).await;
    submit_units(&tenant, &id, &hash, UNITS).await;

    let bytes = wait_anchored_attestation(
        &tenant,
        &id,
        Duration::from_secs(120),
        Duration::from_millis(200),
    )
    .await;
    let response = AttestationResponse::parse(&bytes).expect("attestation response");
    let verified = verify_final(&info, &response);
    let predicate = verified.predicate();

    // Every unit had one wrong replica: none agrees, all are listed as
    // diverged in the signed predicate, each with its distinct result
    // hashes (checked against the database below).
    let diverged = predicate
        .diverged_units
        .as_ref()
        .and_then(Cbor::as_array)
        .expect("diverged_units in the predicate");
    let listed: BTreeSet<String> = diverged
        .iter()
        .map(|d| text(d.map_get("unit_id")).expect("diverged unit without unit_id"))
        .collect();
    assert_eq!(listed, expected_units());
    assert!(
        predicate.units.is_empty(),
        "a diverged unit is not in the Merkle set"
    );

    // Nothing double-counted: exactly three raw rows per unit, one per
    // worker, and the database agrees; no consensus result and hence no
    // receipt for a diverged unit, and each replica learnt why.
    let rows = raw_results(&tenant, &id).await;
    assert_replicated_once(&rows, 3);
    let s = stored(&state, &id);
    assert_all_diverged(&s);
    let conn = db(&state);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM receipt_outcomes WHERE experiment_id = ?1 \
             AND outcome = 'no_receipt' AND reason = 'quorum_disagreed'",
            &id
        ),
        (UNITS * 3) as i64
    );
    drop(conn);

    // The bundle: no consensus row, no receipt, every unit in the signed
    // attestation's diverged_units; it verifies (ours and the official SDK).
    check_bundle(&tenant, &info, dir.path(), &s, &id, &hash).await;
    devnet.shutdown().await;
}

/// `(unit, worker, result, lease expiry in µs)` of every assignment.
type Assignment = (String, String, Option<String>, i64);

fn assignments(state: &Path, id: &str) -> Vec<Assignment> {
    db(state)
        .prepare(
            "SELECT unit_id, worker_id, result_id, lease_expires_us FROM assignments \
             WHERE experiment_id = ?1",
        )
        .expect("prepare")
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// After a worker lost one replica (stalled, crashed or killed): exactly
/// that assignment kept no result and its lease is over; its unit was
/// computed by three other workers, the last of them leased only after the
/// stalled lease expired; one extra assignment in all; everything agreed.
/// Returns the lost assignment.
fn assert_one_replica_reoffered(
    state: &Path,
    id: &str,
    rows: &[Value],
    lease: Duration,
) -> Assignment {
    let assignments = assignments(state, id);
    let stalled: Vec<_> = assignments.iter().filter(|a| a.2.is_none()).collect();
    assert_eq!(stalled.len(), 1, "{assignments:#?}");
    let (unit, lost_worker, _, expired_us) = stalled[0].clone();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as i64;
    assert!(expired_us < now_us);
    assert_eq!(
        assignments.len(),
        UNITS * REPLICATION + 1,
        "{assignments:#?}"
    );
    assert!(
        rows.iter().all(|r| {
            r.get("unit_id").and_then(Value::as_str) != Some(unit.as_str())
                || r.get("worker_id").and_then(Value::as_str) != Some(lost_worker.as_str())
        }),
        "{unit}: a result of the worker that lost it"
    );
    let lease_us = lease.as_micros() as i64;
    let reoffered = assignments
        .iter()
        .filter(|a| a.0 == unit && a.2.is_some())
        .map(|a| a.3 - lease_us)
        .max()
        .expect("replicas of the stalled unit");
    assert!(
        reoffered >= expired_us,
        "{unit} was not re-offered after the lease: {assignments:#?}"
    );
    (unit, lost_worker, None, expired_us)
}

/// A devnet of four workers, the last of which has `fault` on its first
/// lease: the replica is re-offered after the lease and the experiment
/// completes with everything agreed, nothing lost or counted twice.
async fn replica_reoffered_after(fault: auspex_worker::Fault) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let lease = Duration::from_secs(3);
    let (devnet, tenant) = start(DevnetConfig {
        state_dir: Some(state.clone()),
        workers: 4,
        faulty_workers: 1,
        fault: Some(fault),
        lease: Some(lease),
        ..DevnetConfig::default()
    })
    .await;
    let info = devnet.info().clone();
    let (id, hash) = create_experiment(&tenant, dir.path(), Executor::Python, 3).await;
    submit_units(&tenant, &id, &hash, UNITS).await;

    let rows = completed_and_replicated(&tenant, &info, &id, Duration::from_secs(120)).await;
    let (_, faulty_worker, _, _) = assert_one_replica_reoffered(&state, &id, &rows, lease);
    // The faulty worker produced nothing at all (it stopped at its first
    // lease).
    assert!(
        rows.iter()
            .all(|r| r.get("worker_id").and_then(Value::as_str) != Some(faulty_worker.as_str()))
    );
    let s = stored(&state, &id);
    assert_all_agreed(&s);
    check_bundle(&tenant, &info, dir.path(), &s, &id, &hash).await;
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_replica_is_reoffered_after_its_lease_and_the_experiment_completes() {
    replica_reoffered_after(auspex_worker::Fault::Hang).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_workers_replica_is_reoffered_after_its_lease_and_the_experiment_completes() {
    replica_reoffered_after(auspex_worker::Fault::Crash).await;
}

/// Whether `work` holds `<…>/<unit>/exec_input.json`: the worker prepared
/// the unit's workspace and is running (or about to run) its executor.
fn runs_unit(work: &Path, unit: &str) -> bool {
    let mut stack: Vec<PathBuf> = vec![work.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "exec_input.json")
                && p.parent()
                    .and_then(Path::file_name)
                    .is_some_and(|n| n == unit)
            {
                return true;
            }
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_unit_loses_the_replica_to_another_worker_after_its_lease() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let lease = Duration::from_secs(3);
    let (devnet, tenant) = start(DevnetConfig {
        state_dir: Some(state.clone()),
        workers: 3,
        lease: Some(lease),
        ..DevnetConfig::default()
    })
    .await;
    let info = devnet.info().clone();

    // A fourth worker, ours to kill, polling faster than the devnet's.
    let victim_seed = [0x5a; 32];
    let victim_pubkey = TenantKey::from_seed(victim_seed).public_hex();
    let victim_work = dir.path().join("victim");
    let mut wc = auspex_worker::WorkerConfig::new(
        info.coordinator_url.clone(),
        auspex_worker::KeySource::Key(TenantKey::from_seed(victim_seed)),
        &victim_work,
    );
    wc.poll_interval = Duration::from_millis(100);
    wc.heartbeat_interval = Duration::from_secs(10);
    let victim = auspex_worker::spawn(wc);

    // Every replica takes a second, so the kill lands while the executor
    // runs.
    let slow = SHELL_EXECUTOR.replacen("uid=$(", "sleep 1\nuid=$(", 1);
    let (id, hash) = create_experiment_with(&tenant, dir.path(), &Package::shell(&slow), 3).await;
    submit_units(&tenant, &id, &hash, UNITS).await;

    // Wait for the victim to hold a lease and run its executor, then kill it.
    let conn = db(&state);
    let deadline = Instant::now() + Duration::from_secs(120);
    let unit = loop {
        let held: Option<String> = conn
            .query_row(
                "SELECT unit_id FROM assignments WHERE experiment_id = ?1 \
                 AND worker_pubkey_hex = ?2 AND result_id IS NULL AND refused_at IS NULL",
                [&id, &victim_pubkey],
                |r| r.get(0),
            )
            .ok();
        if let Some(u) = held
            && runs_unit(&victim_work, &u)
        {
            break u;
        }
        assert!(
            Instant::now() < deadline,
            "the victim never ran a unit: {:?}",
            victim.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(conn);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let victim_stats = victim.kill().await;
    assert!(
        victim_stats.results.iter().all(|r| r.unit_id != unit),
        "{unit} was uploaded before the kill: {victim_stats:?}"
    );

    let rows = completed_and_replicated(&tenant, &info, &id, Duration::from_secs(180)).await;
    let (lost_unit, lost_worker, _, _) = assert_one_replica_reoffered(&state, &id, &rows, lease);
    assert_eq!(lost_unit, unit);
    assert_eq!(lost_worker, victim_stats.worker_id);
    let s = stored(&state, &id);
    assert_all_agreed(&s);
    check_bundle(&tenant, &info, dir.path(), &s, &id, &hash).await;
    devnet.shutdown().await;
}
