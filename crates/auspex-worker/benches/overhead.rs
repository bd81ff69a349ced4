//! Per-unit overhead of the worker (+ sandbox) over a bare launch of the
//! same executor: `cargo bench -p auspex-worker --bench overhead`.
//!
//! For a no-op shell executor, a no-op Python executor and a no-op Rust
//! executor (`crates/auspex-devnet/examples/noop_executor.rs`, the doubler's
//! contract, built here with `rustc -O`) it times, per unit (median and p90
//! of N runs after warm-up):
//!
//! * **bare** — `std::process::Command` spawning the executor with the same
//!   argv and waiting for it (the floor);
//! * **worker, no sandbox** — the worker's own per-unit path without
//!   isolation: fresh workspace + `exec_input.json` (`exec::prepare`), run
//!   with stdout/stderr capture and the wall-clock guard (`exec::run`), the
//!   output read and checked (`exec::parse_report`), the v3 result signed
//!   and its upload body laid out (`result::sign_report`), workspace removed;
//! * **worker + bubblewrap + Landlock** — the same with the Landlock shim
//!   restricting the executor inside the sandbox (where the kernel has it).
//! * **worker + bubblewrap** — the same under the sandbox (bwrap namespaces,
//!   tmpfs workspace, `setpriv`/`prlimit`, the wrapper shell).
//!
//! Coordinator round trips are not included (they are network-bound and the
//! same with or without the sandbox).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auspex_crypto::keys::TenantKey;
use auspex_wire::json::{self, Object, Value};
use auspex_worker::client::Lease;
use auspex_worker::exec::{self, Context};
use auspex_worker::package::{VerifiedPackage, verify_dir};
use auspex_worker::{Limits, SandboxMode, result};

const WARMUP: usize = 5;

fn runs() -> usize {
    std::env::var("AUSPEX_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
}

fn package(root: &Path, name: &str, file: &str, body: &[u8], command: &[&str]) -> VerifiedPackage {
    let src = root.join(format!("{name}-src"));
    std::fs::create_dir_all(&src).expect("bench setup");
    std::fs::write(src.join(file), body).expect("bench setup");
    if command.first() == Some(&"./noop_executor") {
        // A package staged by the worker keeps no modes unless the archive
        // had them; here the directory is staged directly.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(src.join(file), std::fs::Permissions::from_mode(0o755))
            .expect("bench setup");
    }
    let digest = auspex_wire::package::package_digest(&src)
        .expect("bench setup")
        .sha256;
    let mut exec = Object::new();
    exec.insert(
        "command".into(),
        Value::Array(command.iter().map(|c| Value::from(*c)).collect()),
    );
    exec.insert("package_sha256".into(), Value::from(digest));
    let mut m = Object::new();
    m.insert("executor".into(), Value::Object(exec));
    let manifest = Value::Object(m);
    std::fs::write(src.join("manifest.json"), json::canonical(&manifest)).expect("bench setup");
    let hash = json::canonical_sha256(&manifest);
    let dir = root.join("packages").join(&hash);
    std::fs::create_dir_all(root.join("packages")).expect("bench setup");
    std::fs::rename(&src, &dir).expect("bench setup");
    verify_dir(&dir, &hash, false).expect("bench setup")
}

fn lease(pkg: &VerifiedPackage, i: usize) -> Lease {
    let mut payload = Object::new();
    payload.insert("value".into(), Value::from(i as u64));
    Lease {
        assignment_id: Some(format!("asg-{i}")),
        experiment_id: "exp-bench".into(),
        unit_id: format!("u{i}"),
        tenant_id: "acme-lab".into(),
        label: "bench".into(),
        manifest_sha256: pkg.manifest_sha256.clone(),
        created_at: "2026-07-01T00:00:00Z".into(),
        payload,
    }
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (p(0.5), p(0.9))
}

fn bare(pkg: &VerifiedPackage, python: &Path, ws: &Path) -> Vec<Duration> {
    std::fs::create_dir_all(ws.join("models")).expect("bench setup");
    std::fs::write(
        ws.join("exec_input.json"),
        br#"{"schema_version": "0.1", "unit_id": "u0", "tenant_id": "acme-lab", "experiment_id": "bench", "manifest_sha256": "00", "created_at": "2026-07-01T00:00:00+00:00", "payload": {"value": 0}}"#,
    )
    .expect("bench setup");
    let program = match pkg.command[0].as_str() {
        "python" | "python3" => python.to_path_buf(),
        other => PathBuf::from(other),
    };
    let mut out = Vec::new();
    for i in 0..WARMUP + runs() {
        let t = Instant::now();
        let status = std::process::Command::new(&program)
            .args(&pkg.command[1..])
            .arg("--input")
            .arg(ws.join("exec_input.json"))
            .arg("--output")
            .arg(ws.join("exec_output.json"))
            .arg("--models")
            .arg(ws.join("models"))
            .args(["--timeout", "600"])
            .current_dir(&pkg.dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("bare run");
        assert!(status.success());
        if i >= WARMUP {
            out.push(t.elapsed());
        }
    }
    out
}

fn worker_path(
    rt: &tokio::runtime::Runtime,
    pkg: &VerifiedPackage,
    python: &Path,
    runs_dir: &Path,
    mode: &SandboxMode,
) -> Vec<Duration> {
    let key = TenantKey::from_seed([3; 32]);
    let limits = Limits::default();
    let (_tx, never) = tokio::sync::watch::channel(false);
    let mut out = Vec::new();
    for i in 0..WARMUP + runs() {
        let l = lease(pkg, i);
        let ws = runs_dir.join("0").join(&l.unit_id);
        let t = Instant::now();
        let inv = exec::prepare(
            &ws,
            &l,
            pkg,
            &Context {
                python,
                models_dir: None,
                sandbox: mode,
                limits: &limits,
            },
        )
        .expect("prepare");
        let run = rt
            .block_on(exec::run(&inv, mode, &limits, &never))
            .expect("run");
        let report = exec::parse_report(&run.output, false).expect("report");
        let up = result::sign_report(
            &key,
            &l.unit_id,
            l.assignment_id.as_deref(),
            &report,
            mode.ran_under(),
            None,
        );
        std::fs::remove_dir_all(&ws).expect("cleanup");
        std::hint::black_box(up);
        if i >= WARMUP {
            out.push(t.elapsed());
        }
    }
    out
}

/// The exact bubblewrap argv the worker builds, spawned directly with
/// `std::process::Command` (the sandbox's own cost, without the worker's
/// bookkeeping).
fn bare_bwrap(
    pkg: &VerifiedPackage,
    python: &Path,
    runs_dir: &Path,
    mode: &SandboxMode,
) -> Vec<Duration> {
    let SandboxMode::Bubblewrap(opts) = mode else {
        return Vec::new();
    };
    let limits = Limits::default();
    let l = lease(pkg, 0);
    let ws = runs_dir.join("bare").join(&l.unit_id);
    let inv = exec::prepare(
        &ws,
        &l,
        pkg,
        &Context {
            python,
            models_dir: None,
            sandbox: mode,
            limits: &limits,
        },
    )
    .expect("prepare");
    let uid = auspex_worker::sandbox::running_as_root()
        .then(|| auspex_worker::sandbox::UidLease::acquire(opts.sandbox_uid_base))
        .flatten();
    let input = inv.input_path();
    let plan = auspex_worker::sandbox::SandboxPlan {
        package_dir: &inv.package_dir,
        workspace: &inv.workspace,
        host_input: &input,
        model_dir: None,
        inference_socket: None,
        extra_ro: &inv.extra_ro,
        drop_to_uid: uid.as_ref().map(|u| u.uid()),
        env: &inv.env,
        argv: &inv.argv,
    };
    let argv = auspex_worker::sandbox::bwrap_argv(opts, &limits, &plan);
    let mut out = Vec::new();
    for i in 0..WARMUP + runs() {
        let t = Instant::now();
        let o = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .stdin(std::process::Stdio::null())
            .output()
            .expect("bwrap run");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        if i >= WARMUP {
            out.push(t.elapsed());
        }
    }
    out
}

/// Builds the devnet's no-op Rust executor (standard library only) with
/// `rustc -O` into `dir`.
fn build_rust_executor(dir: &Path) -> PathBuf {
    let src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../auspex-devnet/examples/noop_executor.rs");
    let out = dir.join("noop_executor.bin");
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

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let root = tempfile::tempdir().expect("bench setup");
    let python = PathBuf::from("/usr/bin/python3");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let shell = package(
        root.path(),
        "sh",
        "run.sh",
        b"printf '{\"payload\":{\"ok\":true},\"completed_at\":\"2026-01-01T00:00:00Z\"}' > \"$4\"\n",
        &["sh", "run.sh"],
    );
    let py = package(
        root.path(),
        "py",
        "noop.py",
        b"import json, sys\nout = sys.argv[sys.argv.index('--output') + 1]\n\
         with open(out, 'w') as f:\n    json.dump({'payload': {'ok': True}, \
         'completed_at': '2026-01-01T00:00:00Z'}, f)\n",
        &["python", "noop.py"],
    );
    let rust = package(
        root.path(),
        "rust",
        "noop_executor",
        &std::fs::read(build_rust_executor(root.path())).expect("bench setup"),
        &["./noop_executor"],
    );
    let sandbox = SandboxMode::default();
    let sandboxed = auspex_worker::sandbox::check_tools(match &sandbox {
        SandboxMode::Bubblewrap(o) => o,
        SandboxMode::None => unreachable!("default is bubblewrap"),
    })
    .is_ok();
    // The second layer, as `auspex worker run` sets it up where the kernel
    // enforces Landlock (the shim built with this crate).
    // (`AUSPEX_LANDLOCK_SHIM=target/release/auspex` measures the CLI binary
    // as the shim, as `auspex worker run` uses it.)
    let shim = std::env::var_os("AUSPEX_LANDLOCK_SHIM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_auspex-landlock-shim")));
    let layered = auspex_worker::landlock::probe(&shim).ok().map(|_| {
        SandboxMode::Bubblewrap(auspex_worker::BwrapOptions {
            landlock_shim: Some(shim.clone()),
            ..auspex_worker::BwrapOptions::default()
        })
    });
    let mut lines = vec![
        format!(
            "runs per row: {} (after {WARMUP} warm-up), as {}",
            runs(),
            if auspex_worker::sandbox::running_as_root() {
                "root (tenant code dropped to its own uid)"
            } else {
                "an unprivileged user (user namespace)"
            }
        ),
        String::new(),
        "| executor | path | median ms | p90 ms | median overhead over bare, ms |".into(),
        "|---|---|---|---|---|".into(),
    ];
    for (name, pkg) in [
        ("shell no-op", &shell),
        ("python no-op", &py),
        ("rust no-op", &rust),
    ] {
        let runs_dir = root.path().join(format!("runs-{name}").replace(' ', "-"));
        let (b50, b90) = stats(bare(pkg, &python, &root.path().join("bare-ws")));
        lines.push(format!(
            "| {name} | bare launch | {} | {} | — |",
            ms(b50),
            ms(b90)
        ));
        let (w50, w90) = stats(worker_path(
            &rt,
            pkg,
            &python,
            &runs_dir,
            &SandboxMode::None,
        ));
        lines.push(format!(
            "| {name} | worker, no sandbox | {} | {} | {} |",
            ms(w50),
            ms(w90),
            ms(w50.saturating_sub(b50))
        ));
        if sandboxed {
            let (x50, x90) = stats(bare_bwrap(pkg, &python, &runs_dir, &sandbox));
            lines.push(format!(
                "| {name} | its bwrap argv, spawned directly | {} | {} | {} |",
                ms(x50),
                ms(x90),
                ms(x50.saturating_sub(b50))
            ));
            let (s50, s90) = stats(worker_path(&rt, pkg, &python, &runs_dir, &sandbox));
            lines.push(format!(
                "| {name} | worker + bubblewrap | {} | {} | {} |",
                ms(s50),
                ms(s90),
                ms(s50.saturating_sub(b50))
            ));
            match &layered {
                Some(mode) => {
                    let (l50, l90) = stats(worker_path(&rt, pkg, &python, &runs_dir, mode));
                    lines.push(format!(
                        "| {name} | worker + bubblewrap + Landlock | {} | {} | {} |",
                        ms(l50),
                        ms(l90),
                        ms(l50.saturating_sub(b50))
                    ));
                }
                None => lines.push(format!(
                    "| {name} | worker + bubblewrap + Landlock | — | — | kernel does not enforce Landlock |"
                )),
            }
        } else {
            lines.push(format!(
                "| {name} | worker + bubblewrap | — | — | bwrap not installed |"
            ));
        }
    }
    let mut out = std::io::stdout().lock();
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
}
