//! The sandbox-local inference broker (`worker.md` §7): the only thing an
//! executor can reach from inside the sandbox, one per unit.
//!
//! **When.** Only when the worker has an [`InferenceBackend`]
//! ([`WorkerConfig::inference`](crate::WorkerConfig::inference)), the
//! manifest declares one model and the model store holds it (§7.1).
//! Otherwise there is no socket and no inference environment.
//!
//! **Socket.** AF_UNIX stream at `<workspace>/inference.sock`
//! ([`SOCKET_NAME`]; a path longer than [`MAX_SOCKET_PATH`] characters
//! declines the unit), created before the executor starts, mode 0666 (the
//! sandbox may run tenant code as another uid; the workspace itself is
//! 0700), bound into the sandbox at the same path, removed when the unit
//! ends. The executor gets `AUSPEXAI_INFERENCE_SOCKET` and
//! `AUSPEXAI_INFERENCE_MODEL`.
//!
//! **Protocol** (§7.3). One connection served at a time; within it,
//! newline-delimited JSON requests, one reply line per request, in order;
//! blank lines ignored; a request line over [`MAX_LINE_BYTES`] (counting
//! its newline) gets a `bad_request` reply and the connection is closed.
//! Replies are Python `json.dumps` default layout (`", "` / `": "`,
//! ASCII-escaped) plus `\n`.
//!
//! * `{"op": "info"}` → `{"ok": true, "model", "gguf_sha256",
//!   "backend_handle"}`, without any check.
//! * `{"op": "generate", "model", "messages", "options"?}` → `{"ok": true,
//!   "message", "eval_count", "model"}`. Checked in this order: the cap
//!   ([`MAX_REQUESTS`] accepted generates per unit: `caps_exceeded`), the
//!   model (exactly the unit's: `unauthorized_model`), the messages (a
//!   non-empty array of `{role: str, content: str}`: `bad_request`), the
//!   options ([`policy::sanitize_options`]: `params_rejected`). A request
//!   that passes counts toward the cap and its chain is recorded (distinct
//!   chains by value, first-seen order: the signed `generation_options`)
//!   before the backend runs; a backend failure is `backend_error`.
//! * Anything else: `bad_request` (not JSON, not an object, unknown op).
//!
//! Errors are `{"ok": false, "error": <code>, "detail": <text>}`.
//!
//! The serving side is pluggable ([`InferenceBackend`]); this crate ships
//! only the labelled [`standin::StandIn`].
//!
//! Two deliberate departures from the 0.2.80 code, both invisible to a
//! well-behaved client: the 1 MiB limit is applied per line (the official
//! broker applies it to its receive buffer, so the outcome can depend on
//! how the kernel chunks a pipelined stream), and a line that is not UTF-8
//! gets a `bad_request` reply (the official broker drops the connection).

pub mod backend;
pub mod models;
pub mod policy;
pub mod standin;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use auspex_wire::json::{self, Object, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};

pub use backend::{BackendError, GenerateRequest, Generation, InferenceBackend};
pub use models::{ModelError, ModelStore, ServedModel};
pub use policy::{GenerationPolicy, PolicyError};

use crate::jsonfmt;

/// The socket's file name in the workspace.
pub const SOCKET_NAME: &str = "inference.sock";
/// The environment variable naming the socket.
pub const SOCKET_ENV: &str = "AUSPEXAI_INFERENCE_SOCKET";
/// The environment variable naming the unit's model.
pub const MODEL_ENV: &str = "AUSPEXAI_INFERENCE_MODEL";
/// Longest socket path, in characters (AF_UNIX allows 107 bytes).
pub const MAX_SOCKET_PATH: usize = 100;
/// Accepted `generate` requests per unit.
pub const MAX_REQUESTS: u32 = 256;
/// Longest request line, newline included.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Why a unit's broker could not be opened (the unit is declined).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The socket path is over [`MAX_SOCKET_PATH`] characters.
    #[error("socket path too long for AF_UNIX ({chars} chars): {path}")]
    PathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in characters.
        chars: usize,
    },
    /// Binding the socket failed.
    #[error("cannot open the inference socket {path}: {source}")]
    Bind {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// What the broker did for one unit.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Record {
    /// Generates that passed validation (toward the cap).
    pub accepted: u32,
    /// The distinct chains sent to the backend, first-seen order.
    pub generation_options: Vec<Object>,
}

impl Record {
    fn note(&mut self, options: &Object) {
        let v = Value::Object(options.clone());
        if !self
            .generation_options
            .iter()
            .any(|o| policy::py_eq(&Value::Object(o.clone()), &v))
        {
            self.generation_options.push(options.clone());
        }
    }
}

/// The protocol, without the socket: one unit's model, backend, policy and
/// record.
#[derive(Debug, Clone)]
pub struct Broker {
    model: ServedModel,
    backend: Arc<dyn InferenceBackend>,
    policy: GenerationPolicy,
    record: Arc<Mutex<Record>>,
}

fn error(code: &str, detail: impl Into<String>) -> Value {
    let mut o = Object::new();
    o.insert("ok".into(), Value::Bool(false));
    o.insert("error".into(), Value::from(code));
    o.insert("detail".into(), Value::from(detail.into()));
    Value::Object(o)
}

fn messages_of(v: Option<&Value>) -> Result<&[Value], &'static str> {
    let Some(Value::Array(items)) = v else {
        return Err("messages must be a non-empty array");
    };
    if items.is_empty() {
        return Err("messages must be a non-empty array");
    }
    let ok = items.iter().all(|m| {
        matches!(m.get("role"), Some(Value::String(_)))
            && matches!(m.get("content"), Some(Value::String(_)))
    });
    if ok {
        Ok(items)
    } else {
        Err("each message must be {role: str, content: str}")
    }
}

/// Python's `bytes.strip()` whitespace.
fn is_py_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

impl Broker {
    /// A broker for `model` under `policy`.
    pub fn new(
        model: ServedModel,
        backend: Arc<dyn InferenceBackend>,
        policy: GenerationPolicy,
    ) -> Broker {
        Broker {
            model,
            backend,
            policy,
            record: Arc::new(Mutex::new(Record::default())),
        }
    }

    /// The served model.
    pub fn model(&self) -> &ServedModel {
        &self.model
    }

    /// A snapshot of the record.
    pub fn record(&self) -> Record {
        self.record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The reply to one request line (without its newline); `None` for a
    /// blank line.
    pub async fn handle_line(&self, line: &[u8]) -> Option<Value> {
        if line.iter().all(|b| is_py_space(*b)) {
            return None;
        }
        Some(self.reply(line).await)
    }

    async fn reply(&self, line: &[u8]) -> Value {
        let request = match json::parse(line) {
            Ok(v) => v,
            Err(e) => return error("bad_request", format!("invalid JSON: {e}")),
        };
        if request.as_object().is_none() {
            return error("bad_request", "request must be a JSON object");
        }
        match request.get("op") {
            Some(Value::String(op)) if op == "info" => {
                let mut o = Object::new();
                o.insert("ok".into(), Value::Bool(true));
                o.insert("model".into(), Value::from(self.model.model_id.as_str()));
                o.insert(
                    "gguf_sha256".into(),
                    Value::from(self.model.gguf_sha256.as_str()),
                );
                o.insert(
                    "backend_handle".into(),
                    Value::from(self.model.handle.as_str()),
                );
                return Value::Object(o);
            }
            Some(Value::String(op)) if op == "generate" => {}
            other => {
                let shown = other.map_or_else(|| "None".to_owned(), policy::py_repr);
                return error("bad_request", format!("unknown op {shown}"));
            }
        }
        let options = {
            let record = self.record.lock().unwrap_or_else(|p| p.into_inner());
            if record.accepted >= MAX_REQUESTS {
                return error(
                    "caps_exceeded",
                    format!("per-unit request cap ({MAX_REQUESTS}) reached"),
                );
            }
            drop(record);
            if request.get("model").and_then(Value::as_str) != Some(self.model.model_id.as_str()) {
                return error(
                    "unauthorized_model",
                    format!(
                        "this unit is authorized for {} only",
                        policy::py_str_repr(&self.model.model_id)
                    ),
                );
            }
            if let Err(e) = messages_of(request.get("messages")) {
                return error("bad_request", e);
            }
            match policy::sanitize_options(request.get("options"), &self.policy) {
                Ok(o) => o,
                Err(e) => return error("params_rejected", e.0),
            }
        };
        {
            let mut record = self.record.lock().unwrap_or_else(|p| p.into_inner());
            record.note(&options);
            record.accepted += 1;
        }
        let messages = messages_of(request.get("messages")).unwrap_or_default();
        let req = GenerateRequest {
            model: &self.model,
            messages,
            options: &options,
        };
        match self.backend.generate(req).await {
            Ok(g) => {
                let mut o = Object::new();
                o.insert("ok".into(), Value::Bool(true));
                o.insert("message".into(), g.message);
                o.insert("eval_count".into(), Value::from(g.eval_count));
                o.insert("model".into(), Value::from(self.model.model_id.as_str()));
                Value::Object(o)
            }
            Err(e) => error("backend_error", e.0),
        }
    }

    /// Serves one connection until the client closes it (or sends an
    /// oversized line).
    pub async fn serve_connection(&self, mut stream: UnixStream) {
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            let n = match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                if pos + 1 > MAX_LINE_BYTES {
                    let _ =
                        send(&mut stream, &error("bad_request", "request line too large")).await;
                    return;
                }
                let line: Vec<u8> = buf.drain(..=pos).collect();
                if let Some(reply) = self.handle_line(&line[..pos]).await
                    && send(&mut stream, &reply).await.is_err()
                {
                    return;
                }
            }
            if buf.len() > MAX_LINE_BYTES {
                let _ = send(&mut stream, &error("bad_request", "request line too large")).await;
                return;
            }
        }
    }
}

/// The reply bytes: Python `json.dumps(reply)` + `\n`.
pub fn reply_line(reply: &Value) -> String {
    let mut s = jsonfmt::python_default(reply);
    s.push('\n');
    s
}

async fn send(stream: &mut UnixStream, reply: &Value) -> std::io::Result<()> {
    stream.write_all(reply_line(reply).as_bytes()).await
}

/// A unit's live broker socket. [`Session::close`] (or dropping it) stops
/// serving and removes the socket file.
#[derive(Debug)]
pub struct Session {
    path: PathBuf,
    broker: Broker,
    task: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Opens `<dir>/inference.sock` and serves `broker` on it, one
    /// connection at a time.
    pub fn open(dir: &Path, broker: Broker) -> Result<Session, OpenError> {
        let path = dir.join(SOCKET_NAME);
        let chars = path.to_string_lossy().chars().count();
        if chars > MAX_SOCKET_PATH {
            return Err(OpenError::PathTooLong { path, chars });
        }
        let bind = |source| OpenError::Bind {
            path: path.clone(),
            source,
        };
        if std::fs::symlink_metadata(&path).is_ok() {
            std::fs::remove_file(&path).map_err(bind)?;
        }
        let listener = UnixListener::bind(&path).map_err(bind)?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .map_err(bind)?;
        let serving = broker.clone();
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => serving.serve_connection(stream).await,
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                }
            }
        });
        Ok(Session { path, broker, task })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The unit's model.
    pub fn model(&self) -> &ServedModel {
        self.broker.model()
    }

    /// Stops serving, removes the socket and returns what was done.
    pub fn close(self) -> Record {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
        self.broker.record()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests;
