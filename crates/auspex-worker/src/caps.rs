//! The capabilities report (`worker.md` §2.5), in the official key order.
//! Keys that are empty are omitted as the official worker omits them.
//! Not declared: `gpus_declared`, `declared_caps`, `usable_memory_gb`,
//! `downloads`, `thermal`, `auto_acquire`, `self_paused`, `flavor`.

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

/// What an inference-serving worker declares (`worker.md` §2.5, §7.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Serving {
    /// The backend's serving version, declared as `ollama_version` (the
    /// wire name; the stand-in says `auspex-standin/<version>`).
    pub version: String,
    /// The models served since start, `(model_id, gguf_sha256)`, sorted:
    /// `served_models` and `served_model_digests`.
    pub served: Vec<(String, String)>,
}

/// The full capabilities object. `models` and `model_sizes` describe the
/// store; `serving` (an inference backend is configured) adds
/// `served_models`, `served_model_digests` and `ollama_version`.
pub fn capabilities(
    python_version: Option<&str>,
    sandbox_policy: &str,
    models_dir: Option<&Path>,
    serving: Option<&Serving>,
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
    if let Some(serving) = serving.filter(|s| !s.served.is_empty()) {
        c.insert(
            "served_models".into(),
            Value::Array(
                serving
                    .served
                    .iter()
                    .map(|(id, _)| Value::from(id.as_str()))
                    .collect(),
            ),
        );
        c.insert(
            "served_model_digests".into(),
            Value::Object(
                serving
                    .served
                    .iter()
                    .map(|(id, d)| (id.clone(), Value::from(d.as_str())))
                    .collect(),
            ),
        );
    }
    let sizes = models_dir
        .map(|d| crate::broker::ModelStore::new(d).sizes())
        .unwrap_or_default();
    if !sizes.is_empty() {
        c.insert(
            "model_sizes".into(),
            Value::Object(
                sizes
                    .into_iter()
                    .map(|(id, n)| (id, Value::from(n)))
                    .collect(),
            ),
        );
    }
    if let Some(avail) = meminfo_gib("MemAvailable:") {
        c.insert("available_memory_gb".into(), Value::Float(avail));
    }
    c.insert("execute_tenant_code".into(), Value::from("provisioned"));
    c.insert("sandbox_policy".into(), Value::from(sandbox_policy));
    if let Some(serving) = serving {
        c.insert(
            "ollama_version".into(),
            Value::from(serving.version.as_str()),
        );
    }
    c.insert(
        "worker_features".into(),
        Value::Array(vec![Value::from("generation_policy")]),
    );
    Value::Object(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_is_declared_in_the_official_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::broker::standin::write_standin_model(dir.path(), "tiny").expect("model");
        let plain = capabilities(Some("3.11"), "strict", Some(dir.path()), None);
        let keys = |v: &Value| -> Vec<String> {
            v.as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        assert!(
            !keys(&plain)
                .iter()
                .any(|k| k.starts_with("served") || k == "ollama_version")
        );
        assert!(keys(&plain).contains(&"model_sizes".to_owned()));
        let serving = Serving {
            version: "auspex-standin/0.1.0".into(),
            served: vec![("tiny".into(), "ab".repeat(32))],
        };
        let caps = capabilities(Some("3.11"), "strict", Some(dir.path()), Some(&serving));
        let order: Vec<String> = keys(&caps)
            .into_iter()
            .filter(|k| {
                [
                    "worker_version",
                    "models",
                    "served_models",
                    "served_model_digests",
                    "model_sizes",
                    "execute_tenant_code",
                    "sandbox_policy",
                    "ollama_version",
                    "worker_features",
                ]
                .contains(&k.as_str())
            })
            .collect();
        assert_eq!(
            order,
            [
                "worker_version",
                "models",
                "served_models",
                "served_model_digests",
                "model_sizes",
                "execute_tenant_code",
                "sandbox_policy",
                "ollama_version",
                "worker_features"
            ]
        );
        assert_eq!(
            crate::jsonfmt::compact(caps.get("served_model_digests").expect("digests")),
            format!("{{\"tiny\":\"{}\"}}", "ab".repeat(32))
        );
        assert_eq!(
            caps.get("model_sizes").and_then(|s| s.get("tiny")),
            Some(&Value::from(
                crate::broker::standin::standin_gguf_bytes("tiny").len() as u64
            ))
        );
        // Served-so-far empty: only the version.
        let idle = Serving {
            served: Vec::new(),
            ..serving
        };
        let caps = capabilities(None, "strict", None, Some(&idle));
        assert!(caps.get("served_models").is_none());
        assert_eq!(
            caps.get("ollama_version").and_then(Value::as_str),
            Some("auspex-standin/0.1.0")
        );
    }
}
