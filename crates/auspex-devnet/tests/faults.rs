//! Faults on the devnet: a dishonest worker makes units diverge (and the
//! signed attestation says so); a worker that leases a replica and stalls
//! loses it when the lease expires, another worker computes it and the
//! experiment completes. Nothing is lost or double-counted: the tests read
//! the coordinator's results listing and its database.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use auspex_devnet::DevnetConfig;
use auspex_wire::attestation::AttestationResponse;
use auspex_wire::json::Value;
use auspex_wire::receipt::cbor::Cbor;
use common::{
    Executor, create_experiment, raw_results, start, submit_units, verify_final,
    wait_anchored_attestation,
};

const UNITS: usize = 4;

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

/// Every unit has exactly `replication` raw rows, from distinct workers.
fn assert_replicated_once(rows: &[Value], replication: usize) {
    let by_unit = workers_by_unit(rows);
    let expected: BTreeSet<String> = (0..UNITS).map(|i| format!("u-{i:03}")).collect();
    assert_eq!(by_unit.keys().cloned().collect::<BTreeSet<_>>(), expected);
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
    // diverged in the signed predicate, each with its three result hashes.
    let diverged = predicate
        .diverged_units
        .as_ref()
        .and_then(Cbor::as_array)
        .expect("diverged_units in the predicate");
    let mut listed = BTreeSet::new();
    for d in diverged {
        let unit = match d.map_get("unit_id") {
            Some(Cbor::Text(u)) => u.clone(),
            other => panic!("diverged unit without unit_id: {other:?}"),
        };
        let hashes = d
            .map_get("result_hashes")
            .and_then(Cbor::as_array)
            .expect("result_hashes");
        let distinct: BTreeSet<String> = hashes
            .iter()
            .map(|h| match h {
                Cbor::Text(t) => t.clone(),
                other => panic!("result hash {other:?}"),
            })
            .collect();
        assert!(distinct.len() >= 2, "{unit}: {hashes:?}");
        listed.insert(unit);
    }
    let expected: BTreeSet<String> = (0..UNITS).map(|i| format!("u-{i:03}")).collect();
    assert_eq!(listed, expected);
    assert!(
        predicate.units.is_empty(),
        "a diverged unit is not in the Merkle set"
    );

    // Nothing double-counted: exactly three raw rows per unit, one per
    // worker, and the database agrees.
    let rows = raw_results(&tenant, &id).await;
    assert_replicated_once(&rows, 3);
    let conn = db(&state);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM results WHERE experiment_id = ?1",
            &id
        ),
        (UNITS * 3) as i64
    );
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM unit_consensus WHERE experiment_id = ?1 AND agreed = 0",
            &id
        ),
        UNITS as i64
    );
    // A diverged unit has no consensus result and hence no receipt.
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM receipts WHERE experiment_id = ?1",
            &id
        ),
        0
    );
    drop(conn);
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_replica_is_reoffered_after_its_lease_and_the_experiment_completes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let lease = Duration::from_secs(3);
    let (devnet, tenant) = start(DevnetConfig {
        state_dir: Some(state.clone()),
        workers: 4,
        faulty_workers: 1,
        fault: Some(auspex_worker::Fault::Hang),
        lease: Some(lease),
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
    assert_eq!(verified.predicate().units.len(), UNITS);

    let rows = raw_results(&tenant, &id).await;
    assert_replicated_once(&rows, 3);
    let conn = db(&state);
    // (unit, worker, result, lease expiry in µs) of every assignment.
    let assignments: Vec<(String, String, Option<String>, i64)> = conn
        .prepare(
            "SELECT unit_id, worker_id, result_id, lease_expires_us FROM assignments \
             WHERE experiment_id = ?1",
        )
        .expect("prepare")
        .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    // Exactly one replica stalled: it kept no result and its lease is over.
    let stalled: Vec<_> = assignments.iter().filter(|a| a.2.is_none()).collect();
    assert_eq!(stalled.len(), 1, "{assignments:#?}");
    let (unit, hung_worker, _, expired_us) = stalled[0];
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as i64;
    assert!(*expired_us < now_us);
    assert_eq!(assignments.len(), UNITS * 3 + 1, "{assignments:#?}");
    // The hung worker produced nothing; its unit was computed by three
    // others, the last of them leased only after the stalled lease expired.
    assert!(
        rows.iter()
            .all(|r| r.get("worker_id").and_then(Value::as_str) != Some(hung_worker.as_str()))
    );
    let lease_us = lease.as_micros() as i64;
    let reoffered = assignments
        .iter()
        .filter(|a| &a.0 == unit && a.2.is_some())
        .map(|a| a.3 - lease_us)
        .max()
        .expect("replicas of the stalled unit");
    assert!(
        reoffered >= *expired_us,
        "{unit} was not re-offered after the lease: {assignments:#?}"
    );
    // Results and receipts: one per computed replica, none twice.
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM results WHERE experiment_id = ?1",
            &id
        ),
        (UNITS * 3) as i64
    );
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM receipts WHERE experiment_id = ?1",
            &id
        ),
        (UNITS * 3) as i64
    );
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM unit_consensus WHERE experiment_id = ?1 AND agreed = 1",
            &id
        ),
        UNITS as i64
    );
    drop(conn);
    devnet.shutdown().await;
}
