//! Devnet throughput (issue 6): units per second, end to end (submit → every
//! unit completed), on an in-process devnet with 4 sandboxed workers, for a
//! no-op Python executor (the doubler) and a no-op shell executor (the
//! "native" baseline), at replication 1 and 3.
//!
//! `cargo bench -p auspex-devnet --bench throughput` runs 200 units per
//! case; without `--bench` (as a test) it runs one small case.
#![allow(clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use auspex_devnet::DevnetConfig;
use common::{Executor, create_experiment, start, submit_units};

const WORKERS: usize = 4;

struct Case {
    executor: Executor,
    replication: u32,
    units: usize,
}

async fn run(case: &Case) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let (devnet, tenant) = start(DevnetConfig {
        state_dir: Some(state.clone()),
        workers: WORKERS,
        ..DevnetConfig::default()
    })
    .await;
    let (id, hash) = create_experiment(&tenant, dir.path(), case.executor, case.replication).await;
    let conn = rusqlite::Connection::open_with_flags(
        state.join("coordinator").join("coordinator.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("coordinator database");
    let started = Instant::now();
    submit_units(&tenant, &id, &hash, case.units).await;
    let deadline = started + Duration::from_secs(600);
    loop {
        let done: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM work_units WHERE experiment_id = ?1 AND status = 'completed'",
                [&id],
                |r| r.get(0),
            )
            .expect("count");
        if done as usize >= case.units {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} units completed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    drop(conn);
    devnet.shutdown().await;
    elapsed
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cases: Vec<Case> = if bench {
        [Executor::Python, Executor::Shell]
            .into_iter()
            .flat_map(|executor| {
                [1, 3].into_iter().map(move |replication| Case {
                    executor,
                    replication,
                    units: 200,
                })
            })
            .collect()
    } else {
        vec![Case {
            executor: Executor::Python,
            replication: 1,
            units: 8,
        }]
    };
    println!(
        "| executor | units × replication | wall (s) | units/s | replicas/s | ms per replica per worker |"
    );
    println!("|---|---|---|---|---|---|");
    for case in &cases {
        let elapsed = rt.block_on(run(case));
        let secs = elapsed.as_secs_f64();
        let replicas = case.units as f64 * f64::from(case.replication);
        println!(
            "| {} | {} × {} | {:.2} | {:.1} | {:.1} | {:.1} |",
            match case.executor {
                Executor::Python => "python no-op (doubler)",
                Executor::Shell => "shell no-op",
            },
            case.units,
            case.replication,
            secs,
            case.units as f64 / secs,
            replicas / secs,
            secs * 1000.0 * WORKERS as f64 / replicas,
        );
    }
}
