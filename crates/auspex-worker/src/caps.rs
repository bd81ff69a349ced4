//! The capabilities report (`worker.md` §2.5), in the official key order.
//! Keys that are empty are omitted as the official worker omits them.

use std::path::Path;

use auspex_wire::json::{Object, Value};

/// What this worker reports as `worker_version` (stored by the coordinator
/// in each result's `environment`).
pub const WORKER_VERSION: &str = concat!("auspex-worker/", env!("CARGO_PKG_VERSION"));

fn meminfo_gib(key: &str) -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib / (1024.0 * 1024.0) * 100.0).round() / 100.0)
}

/// The model ids in the store: its sub-directories (sorted).
pub fn model_ids(models_dir: Option<&Path>) -> Vec<String> {
    let Some(dir) = models_dir else {
        return Vec::new();
    };
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    ids.sort();
    ids
}

/// `<python> --version` → `3.11.2` (best effort, once at start).
pub fn python_version(python: &Path) -> Option<String> {
    let out = std::process::Command::new(python)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(if out.stdout.is_empty() {
        &out.stderr
    } else {
        &out.stdout
    })
    .into_owned();
    text.trim()
        .strip_prefix("Python ")
        .map(|v| v.trim().to_owned())
}

/// The full capabilities object.
pub fn capabilities(
    python_version: Option<&str>,
    sandbox_policy: &str,
    models_dir: Option<&Path>,
) -> Value {
    let mut c = Object::new();
    c.insert("os".into(), Value::from(std::env::consts::OS));
    c.insert("arch".into(), Value::from(std::env::consts::ARCH));
    c.insert(
        "python_version".into(),
        python_version.map(Value::from).unwrap_or(Value::Null),
    );
    c.insert(
        "ram_total_gb".into(),
        meminfo_gib("MemTotal:")
            .map(Value::Float)
            .unwrap_or(Value::Null),
    );
    c.insert(
        "cpu_count".into(),
        Value::from(
            std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1),
        ),
    );
    let mut gpus = Object::new();
    gpus.insert("nvidia".into(), Value::from(0u64));
    gpus.insert("amd".into(), Value::Bool(false));
    c.insert("gpus_observed".into(), Value::Object(gpus));
    c.insert("worker_version".into(), Value::from(WORKER_VERSION));
    let models = model_ids(models_dir);
    if !models.is_empty() {
        c.insert(
            "models".into(),
            Value::Array(models.into_iter().map(Value::from).collect()),
        );
    }
    if let Some(avail) = meminfo_gib("MemAvailable:") {
        c.insert("available_memory_gb".into(), Value::Float(avail));
    }
    c.insert("execute_tenant_code".into(), Value::from("provisioned"));
    c.insert("sandbox_policy".into(), Value::from(sandbox_policy));
    c.insert(
        "worker_features".into(),
        Value::Array(vec![Value::from("generation_policy")]),
    );
    Value::Object(c)
}
