//! Devnet throughput (issue 6): units per second, end to end (submit → every
//! unit completed), on an in-process devnet with 4 sandboxed workers, for a
//! no-op Python executor (the doubler), a no-op Rust executor
//! (`examples/noop_executor.rs`, built here with `rustc -O`) and a no-op
//! shell executor, at replication 1 and 3.
//!
//! `cargo bench -p auspex-devnet --bench throughput` runs 200 units per
//! case (`AUSPEX_BENCH_UNITS=N` to change it); without `--bench` (as a
//! test) it runs two small cases, one Python and one Rust, to check that
//! both executors go through.
#![allow(clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use auspex_devnet::DevnetConfig;
use common::{Executor, Package, build_rust_executor, create_experiment_with, start, submit_units};

const WORKERS: usize = 4;

#[derive(Clone, Copy)]
enum Kind {
    Python,
    Rust,
    Shell,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Python => "python no-op (doubler)",
            Kind::Rust => "rust no-op",
            Kind::Shell => "shell no-op",
        }
    }
}

struct Case {
    kind: Kind,
    replication: u32,
    units: usize,
}

async fn run(case: &Case, rust_executor: &Path) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let (devnet, tenant) = start(DevnetConfig {
        state_dir: Some(state.clone()),
        workers: WORKERS,
        ..DevnetConfig::default()
    })
    .await;
    let package = match case.kind {
        Kind::Python => Package::of(Executor::Python),
        Kind::Shell => Package::of(Executor::Shell),
        Kind::Rust => Package::rust(rust_executor),
    };
    let (id, hash) = create_experiment_with(&tenant, dir.path(), &package, case.replication).await;
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
        // A broken executor is refused on every worker: fail fast.
        let refused: Option<String> = conn
            .query_row(
                "SELECT refused_kind || ': ' || refused_reason FROM assignments \
                 WHERE experiment_id = ?1 AND refused_at IS NOT NULL LIMIT 1",
                [&id],
                |r| r.get(0),
            )
            .ok();
        assert!(refused.is_none(), "a replica was refused: {refused:?}");
        assert!(Instant::now() < deadline, "only {done} units completed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    // Every unit agreed: the executor ran and its results reached
    // consensus (a broken executor would refuse and never complete).
    let agreed: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM unit_consensus WHERE experiment_id = ?1 AND agreed = 1",
            [&id],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(agreed as usize, case.units, "units without agreement");
    drop(conn);
    devnet.shutdown().await;
    elapsed
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let units: usize = std::env::var("AUSPEX_BENCH_UNITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let bin_dir = tempfile::tempdir().expect("tempdir");
    let built = Instant::now();
    let rust_executor = build_rust_executor(bin_dir.path());
    println!(
        "rust executor built with rustc -O in {:.2} s ({} bytes)",
        built.elapsed().as_secs_f64(),
        std::fs::metadata(&rust_executor).map_or(0, |m| m.len())
    );
    let cases: Vec<Case> = if bench {
        [Kind::Python, Kind::Rust, Kind::Shell]
            .into_iter()
            .flat_map(|kind| {
                [1, 3].into_iter().map(move |replication| Case {
                    kind,
                    replication,
                    units,
                })
            })
            .collect()
    } else {
        [Kind::Python, Kind::Rust]
            .into_iter()
            .map(|kind| Case {
                kind,
                replication: 1,
                units: 4,
            })
            .collect()
    };
    println!("load average before: {}", load_average());
    println!(
        "| executor | units × replication | wall (s) | units/s | replicas/s | ms per replica per worker | load avg (1 min) after |"
    );
    println!("|---|---|---|---|---|---|---|");
    for case in &cases {
        let elapsed = rt.block_on(run(case, &rust_executor));
        let secs = elapsed.as_secs_f64();
        let replicas = case.units as f64 * f64::from(case.replication);
        println!(
            "| {} | {} × {} | {:.2} | {:.1} | {:.1} | {:.1} | {} |",
            case.kind.label(),
            case.units,
            case.replication,
            secs,
            case.units as f64 / secs,
            replicas / secs,
            secs * 1000.0 * WORKERS as f64 / replicas,
            load_average().split_whitespace().next().unwrap_or("?"),
        );
    }
}
