//! Sandbox escape tests: a hostile executor (`fixtures/packages/attacks`)
//! tries to reach the network, read the worker's key, write outside its
//! workspace, fork-bomb, allocate 10 GiB, fill the disk, spin forever. Each
//! run goes through the real invocation path (`exec::prepare` +
//! `exec::run` under bubblewrap) with small limits; each attempt must end
//! in a refusal whose reason says what happened, and the host must be
//! untouched.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use auspex_crypto::keys::TenantKey;
use auspex_wire::json::{self, Value};
use auspex_worker::client::Lease;
use auspex_worker::exec::{self, Context};
use auspex_worker::package::{VerifiedPackage, verify_dir};
use auspex_worker::{
    BwrapOptions, KeySource, Limits, Refusal, SandboxMode, WorkerConfig, WorkerError, kind,
};
use serde_json::json;

use crate::common::*;

struct Lab {
    dir: tempfile::TempDir,
    work: PathBuf,
    pkg: VerifiedPackage,
    key_path: PathBuf,
}

fn lab() -> Lab {
    lab_with(json!([]))
}

fn lab_with(models: serde_json::Value) -> Lab {
    let dir = tempfile::tempdir().expect("test step");
    let work = dir.path().join("work");
    let src = dir.path().join("src");
    copy_dir(&fixture("attacks"), &src);
    let digest = auspex_wire::package::package_digest(&src)
        .expect("test step")
        .sha256;
    let manifest = json!({"executor": {"command": ["python", "attack.py"], "package_sha256": digest},
                          "experiment_id": "attacks", "models": models, "tenant_id": TENANT});
    let text = serde_json::to_vec(&manifest).expect("test step");
    std::fs::write(src.join("manifest.json"), &text).expect("test step");
    let hash = json::canonical_sha256(&json::parse(&text).expect("test step"));
    let pkg_dir = work.join("packages").join(&hash);
    std::fs::create_dir_all(work.join("packages")).expect("test step");
    std::fs::rename(&src, &pkg_dir).expect("test step");
    let pkg = verify_dir(&pkg_dir, &hash, false).expect("test step");
    // The worker's key, at a known path.
    let key_path = work.join("worker_key.pem");
    auspex_crypto::keys::save(&TenantKey::from_seed([99; 32]), &key_path, false)
        .expect("test step");
    Lab {
        dir,
        work,
        pkg,
        key_path,
    }
}

impl Lab {
    async fn attack(
        &self,
        unit: &str,
        payload: serde_json::Value,
        limits: &Limits,
    ) -> (Refusal, PathBuf, Duration) {
        self.attack_with_models(unit, payload, limits, None).await
    }

    async fn attack_with_models(
        &self,
        unit: &str,
        payload: serde_json::Value,
        limits: &Limits,
        models_dir: Option<&std::path::Path>,
    ) -> (Refusal, PathBuf, Duration) {
        self.attack_under(&SandboxMode::default(), unit, payload, limits, models_dir)
            .await
    }

    async fn attack_under(
        &self,
        mode: &SandboxMode,
        unit: &str,
        payload: serde_json::Value,
        limits: &Limits,
        models_dir: Option<&std::path::Path>,
    ) -> (Refusal, PathBuf, Duration) {
        let Value::Object(payload) = Value::from_serde(&payload) else {
            panic!("payload must be an object");
        };
        let lease = Lease {
            assignment_id: None,
            experiment_id: "exp-attacks".into(),
            unit_id: unit.into(),
            tenant_id: TENANT.into(),
            label: "attacks".into(),
            manifest_sha256: self.pkg.manifest_sha256.clone(),
            created_at: "2026-07-01T00:00:00Z".into(),
            payload,
        };
        let ws = self.work.join("runs").join("0").join(unit);
        let python = PathBuf::from("/usr/bin/python3");
        let inv = exec::prepare(
            &ws,
            &lease,
            &self.pkg,
            &Context {
                python: &python,
                models_dir,
                sandbox: mode,
                limits,
            },
        )
        .expect("test step");
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let started = Instant::now();
        match exec::run(&inv, mode, limits, &rx).await {
            Ok(out) => panic!(
                "attack {unit} produced a result: {}",
                String::from_utf8_lossy(&out.output)
            ),
            Err(r) => (r, ws, started.elapsed()),
        }
    }
}

fn assert_runner_failed(r: &Refusal, needles: &[&str]) {
    assert_eq!(r.kind, kind::RUNNER_FAILED, "{r}");
    for n in needles {
        assert!(r.reason.contains(n), "{n:?} not in: {}", r.reason);
    }
}

/// Live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> usize {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(needle))
        .count()
}

#[tokio::test]
async fn no_network() {
    let lab = lab();
    let canary = std::net::TcpListener::bind("127.0.0.1:0").expect("test step");
    canary.set_nonblocking(true).expect("test step");
    let port = canary.local_addr().expect("test step").port();
    let (r, _, _) = lab
        .attack(
            "net",
            json!({"attack": "network", "host": "127.0.0.1", "port": port}),
            &small_limits(),
        )
        .await;
    assert_runner_failed(&r, &["attack network blocked"]);
    assert!(
        r.reason.contains("Connection refused") || r.reason.contains("unreachable"),
        "{}",
        r.reason
    );
    // Nothing reached the host's loopback.
    assert_eq!(
        canary.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock)
    );
}

#[tokio::test]
async fn the_worker_key_is_not_visible() {
    let lab = lab();
    let path = lab.key_path.to_string_lossy().into_owned();
    let (r, _, _) = lab
        .attack(
            "key",
            json!({"attack": "read-key", "path": path}),
            &small_limits(),
        )
        .await;
    assert_runner_failed(
        &r,
        &["attack read-key blocked", "No such file or directory"],
    );
    assert!(!r.reason.contains("PRIVATE KEY"));
    // Nor anything of the home directory.
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let (r, _, _) = lab
        .attack(
            "home",
            json!({"attack": "read-key", "path": format!("{home}/.profile")}),
            &small_limits(),
        )
        .await;
    assert_runner_failed(&r, &["attack read-key blocked"]);
}

#[tokio::test]
async fn nothing_is_written_outside_the_workspace() {
    let lab = lab();
    let marker = format!("auspex-escape-{}", std::process::id());
    let targets: Vec<PathBuf> = vec![
        lab.work.join(&marker),
        lab.pkg.dir.join(&marker),
        lab.dir.path().join(&marker),
        PathBuf::from("/etc").join(&marker),
        PathBuf::from("/usr").join(&marker),
        PathBuf::from("/tmp").join(&marker),
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(&marker),
    ];
    let paths: Vec<String> = targets
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let (r, ws, _) = lab
        .attack(
            "write",
            json!({"attack": "write-outside", "paths": paths}),
            &small_limits(),
        )
        .await;
    assert_runner_failed(&r, &["attack write-outside", "Read-only file system"]);
    for t in &targets {
        assert!(!t.exists(), "{} was written on the host", t.display());
    }
    assert!(!ws.join(&marker).exists());
}

#[tokio::test]
async fn a_fork_bomb_is_contained_and_cleaned_up() {
    let lab = lab();
    let limits = Limits {
        wall_clock: Duration::from_secs(4),
        processes: 32,
        ..small_limits()
    };
    let (r, ws, elapsed) = lab
        .attack("bomb", json!({"attack": "fork-bomb"}), &limits)
        .await;
    assert_runner_failed(&r, &["timed out after 4s", "fork-bomb"]);
    if auspex_worker::sandbox::running_as_root() {
        // RLIMIT_NPROC bites (root would be exempt; tenant code runs as its
        // own uid).
        assert!(r.reason.contains("fork refused"), "{}", r.reason);
    }
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    // Every process of the bomb is gone, and the host can still fork.
    let needle = ws.join("exec_input.json").to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    while processes_mentioning(&needle) > 0 {
        assert!(Instant::now() < deadline, "bomb processes survived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        std::process::Command::new("/bin/true")
            .status()
            .expect("test step")
            .success()
    );
}

#[tokio::test]
async fn ten_gib_cannot_be_allocated() {
    let lab = lab();
    let (r, _, _) = lab
        .attack("mem", json!({"attack": "memory"}), &small_limits())
        .await;
    assert_runner_failed(&r, &["attack memory blocked", "MemoryError"]);
}

#[tokio::test]
async fn the_disk_cannot_be_filled() {
    let lab = lab();
    let (r, ws, _) = lab
        .attack("disk", json!({"attack": "disk"}), &small_limits())
        .await;
    assert_runner_failed(&r, &["attack disk blocked after 8 MiB", "File too large"]);
    // The workspace on the host holds only the input.
    let names: Vec<String> = std::fs::read_dir(&ws)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(names.iter().all(|n| n == "exec_input.json"), "{names:?}");
    // With a file-size cap above the scratch size, the tmpfs fills up instead.
    let limits = Limits {
        file_size_bytes: 64 << 20,
        ..small_limits()
    };
    let (r, _, _) = lab
        .attack("disk2", json!({"attack": "disk"}), &limits)
        .await;
    assert_runner_failed(&r, &["attack disk blocked", "No space left on device"]);
}

#[tokio::test]
async fn endless_executors_are_killed_on_the_wall_clock_or_cpu_limit() {
    let lab = lab();
    let limits = Limits {
        wall_clock: Duration::from_secs(2),
        ..small_limits()
    };
    let (r, _, elapsed) = lab
        .attack("spin", json!({"attack": "forever"}), &limits)
        .await;
    assert_runner_failed(&r, &["timed out after 2s", "attack forever: spinning"]);
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let limits = Limits {
        cpu_seconds: 1,
        ..small_limits()
    };
    let (r, _, elapsed) = lab
        .attack("cpu", json!({"attack": "forever"}), &limits)
        .await;
    // SIGXCPU (24) from RLIMIT_CPU.
    assert_runner_failed(&r, &["executor killed by signal 24"]);
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[tokio::test]
async fn without_bubblewrap_the_worker_refuses_to_run_tenant_code() {
    let dir = tempfile::tempdir().expect("test step");
    let mut cfg = WorkerConfig::new(
        "http://127.0.0.1:9",
        KeySource::Key(TenantKey::from_seed([5; 32])),
        dir.path().join("work"),
    );
    cfg.sandbox = SandboxMode::Bubblewrap(BwrapOptions {
        bwrap: PathBuf::from("/nonexistent/bwrap"),
        ..BwrapOptions::default()
    });
    match auspex_worker::run(cfg, std::future::pending()).await {
        Err(WorkerError::SandboxUnavailable(msg)) => {
            assert!(msg.contains("apt-get install bubblewrap"), "{msg}");
            assert!(msg.contains("--no-sandbox"), "{msg}");
        }
        other => panic!("expected SandboxUnavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_attack_leased_from_the_coordinator_is_refused_with_its_reason() {
    let net = Net::start(|c| c).await;
    let exp = net
        .experiment("hostile", "attacks", &["python", "attack.py"], 1)
        .await;
    let mut cfg = net.worker_config("victim", 91);
    let key_path = cfg.work_dir.join("keys").join("worker_key.pem");
    cfg.key = KeySource::Path(key_path.clone());
    net.submit(
        &exp,
        &[(
            "steal",
            json!({"attack": "read-key", "path": key_path.to_string_lossy()}),
        )],
    )
    .await;
    let w = auspex_worker::spawn(cfg);
    wait_for("the refusal", Duration::from_secs(30), || {
        !w.stats().refusals.is_empty()
    })
    .await;
    let stats = w.shutdown().await.expect("test step");
    assert!(stats.results.is_empty());
    assert!(key_path.exists(), "the key was generated at the known path");
    let conn = net.server().state().db().lock();
    let (k, reason): (String, String) = conn
        .query_row(
            "SELECT refused_kind, refused_reason FROM assignments WHERE unit_id = 'steal'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("test step");
    assert_eq!(k, "runner_failed");
    assert!(reason.contains("attack read-key blocked"), "{reason}");
    assert!(reason.contains("No such file or directory"), "{reason}");
}

#[tokio::test]
async fn a_model_from_the_store_is_bound_read_only() {
    let lab = lab_with(json!([{"id": "tiny", "version": "1"}]));
    let store = lab.dir.path().join("models");
    std::fs::create_dir_all(store.join("tiny")).expect("test step");
    std::fs::write(store.join("tiny").join("weights.gguf"), b"GGUF").expect("test step");
    let (r, _, _) = lab
        .attack_with_models(
            "models",
            json!({"attack": "models"}),
            &small_limits(),
            Some(&store),
        )
        .await;
    let dir = store.join("tiny").to_string_lossy().into_owned();
    assert_runner_failed(
        &r,
        &[&format!(
            "models {dir} = ['weights.gguf']: Read-only file system; env {dir}"
        )],
    );
    // Without a model in the store: an empty private directory.
    let (r, ws, _) = lab
        .attack("nomodel", json!({"attack": "models"}), &small_limits())
        .await;
    let empty = ws.join("models").to_string_lossy().into_owned();
    assert_runner_failed(&r, &[&format!("models {empty} = []: writable; env None")]);
}

/// The Landlock shim built with this crate.
fn landlock_shim() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_auspex-landlock-shim"))
}

/// With the shim, tenant code runs under Landlock inside bubblewrap: a TCP
/// bind on the sandbox's own loopback, which bubblewrap alone allows, is
/// denied; writes outside the workspace stay impossible; and an ordinary
/// executor still runs (`landlock_runs_a_real_executor`). On a kernel
/// without Landlock the probe says so and the worker does not use the shim.
#[tokio::test]
#[allow(clippy::print_stderr)] // says when the kernel cannot test the layer
async fn landlock_is_a_second_layer_inside_bubblewrap() {
    let shim = landlock_shim();
    let enforcement = match auspex_worker::landlock::probe(&shim) {
        Ok(e) => e,
        Err(why) => {
            assert!(why.contains("Landlock"), "{why}");
            eprintln!("note: this kernel does not enforce Landlock ({why}); layer not tested");
            return;
        }
    };
    assert_eq!(enforcement, auspex_worker::landlock::Enforcement::Full);
    let lab = lab();
    let plain = SandboxMode::default();
    let layered = SandboxMode::Bubblewrap(BwrapOptions {
        landlock_shim: Some(shim),
        ..BwrapOptions::default()
    });
    let (r, _, _) = lab
        .attack_under(
            &plain,
            "bind-plain",
            json!({"attack": "tcp-bind"}),
            &small_limits(),
            None,
        )
        .await;
    assert_runner_failed(&r, &["attack tcp-bind allowed"]);
    let (r, _, _) = lab
        .attack_under(
            &layered,
            "bind-layered",
            json!({"attack": "tcp-bind"}),
            &small_limits(),
            None,
        )
        .await;
    assert_runner_failed(&r, &["attack tcp-bind blocked", "Permission denied"]);
    let outside = lab.dir.path().join("landlock-escape");
    let (r, _, _) = lab
        .attack_under(
            &layered,
            "write-layered",
            json!({"attack": "write-outside", "paths": [
                outside.to_string_lossy(), "/usr/escaped", "/etc/escaped", "/escaped"
            ]}),
            &small_limits(),
            None,
        )
        .await;
    assert_eq!(r.kind, kind::RUNNER_FAILED, "{r}");
    assert!(!r.reason.contains("written"), "{}", r.reason);
    assert!(!outside.exists());
    // A well-behaved executor runs normally under both layers.
    let lease = Lease {
        assignment_id: None,
        experiment_id: "exp-attacks".into(),
        unit_id: "benign".into(),
        tenant_id: TENANT.into(),
        label: "attacks".into(),
        manifest_sha256: lab.pkg.manifest_sha256.clone(),
        created_at: "2026-07-01T00:00:00Z".into(),
        payload: match Value::from_serde(&json!({"attack": "none"})) {
            Value::Object(o) => o,
            _ => unreachable!("an object"),
        },
    };
    let ws = lab.work.join("runs").join("0").join("benign");
    let python = PathBuf::from("/usr/bin/python3");
    let limits = small_limits();
    let inv = exec::prepare(
        &ws,
        &lease,
        &lab.pkg,
        &Context {
            python: &python,
            models_dir: None,
            sandbox: &layered,
            limits: &limits,
        },
    )
    .expect("prepare");
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let out = exec::run(&inv, &layered, &limits, &rx)
        .await
        .expect("a benign executor runs under Landlock");
    assert!(
        String::from_utf8_lossy(&out.output).contains("\"ok\": true"),
        "{}",
        String::from_utf8_lossy(&out.output)
    );
}
