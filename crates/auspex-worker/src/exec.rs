//! The executor invocation contract (`worker.md` §3) and one run of it.
//!
//! * **Input**: `<ws>/exec_input.json`, Python default JSON formatting, keys
//!   `schema_version` (`"0.1"`), `unit_id`, `tenant_id`, `experiment_id`
//!   (the tenant label), `manifest_sha256`, `created_at` (re-serialised by
//!   `isoformat()`), `payload`.
//! * **argv**: `executor.command` with `python`/`python3` replaced by the
//!   worker's interpreter and other bare names looked up on the augmented
//!   `PATH`, then exactly `--input <ws>/exec_input.json --output
//!   <ws>/exec_output.json --models <dir> --timeout <N>`; cwd = the package.
//! * **Environment**: `PATH` (interpreter dir, `/opt/homebrew/bin`,
//!   `/usr/local/bin`, `/usr/bin`, `/bin`, then the previous path), under the
//!   sandbox only `TMPDIR=/tmp`, `LANG=C.UTF-8`, `HOME=/tmp` besides, plus
//!   `AUSPEXAI_UNIT_ID`, `AUSPEXAI_MANIFEST_SHA256`, `AUSPEXAI_OUTPUT_PATH`,
//!   `AUSPEXAI_EXECUTOR_COMMAND`, `AUSPEXAI_EXECUTOR_DIR`,
//!   `AUSPEXAI_EXECUTOR_TIMEOUT`, `AUSPEXAI_MODELS_DIR` (model runs),
//!   `AUSPEXAI_INFERENCE_SOCKET` and `AUSPEXAI_INFERENCE_MODEL` (units with
//!   an inference broker, [`Invocation::attach_inference`]) and
//!   `AUSPEXAI_CAPTURE_RAW=1` (raw-capture manifests).
//! * **Outcome**: only process status 0 yields a result; the output must be
//!   a JSON object whose `payload` is an object; `completed_at` is kept
//!   verbatim (or the run's own `isoformat()` time when falsy), `exit_code`
//!   is Python's `int()` of the value (default 0; must end in −255..=255);
//!   stdout and stderr must be valid UTF-8 (the official runner crashes
//!   otherwise). Anything else is a `runner_failed` refusal carrying the last
//!   500 characters of stderr.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use auspex_wire::json::{self, Object, Value};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::client::Lease;
use crate::config::{Limits, SandboxMode};
use crate::error::Refusal;
use crate::jsonfmt;
use crate::package::VerifiedPackage;
use crate::sandbox::{self, SandboxPlan, UidLease};

/// Characters of stderr quoted in a `runner_failed` reason.
pub const STDERR_IN_REASON: usize = 500;

/// `which`: the first executable `name` on `path`.
pub fn which(name: &str, path: &str) -> Option<PathBuf> {
    path.split(':').filter(|d| !d.is_empty()).find_map(|d| {
        let p = Path::new(d).join(name);
        let meta = std::fs::metadata(&p).ok()?;
        let exec = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0;
        (meta.is_file() && exec).then_some(p)
    })
}

/// Everything one executor run needs, derived from the lease, the verified
/// package and the configuration.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The workspace (`<work_dir>/runs/<slot>/<unit_id>`).
    pub workspace: PathBuf,
    /// The package directory (cwd).
    pub package_dir: PathBuf,
    /// A model directory from the store, when the manifest's model is there.
    pub model_dir: Option<PathBuf>,
    /// argv, program first (resolved).
    pub argv: Vec<String>,
    /// `AUSPEXAI_*` and the rest of the environment the executor gets on
    /// top of the base environment.
    pub env: Vec<(String, String)>,
    /// The interpreter's directory prefix when it lives outside the system
    /// directories (bound read-only under the sandbox).
    pub extra_ro: Vec<PathBuf>,
    /// The unit's inference broker socket (`<ws>/inference.sock`), bound
    /// into the sandbox at the same path ([`Invocation::attach_inference`]).
    pub inference_socket: Option<PathBuf>,
}

impl Invocation {
    /// `<ws>/exec_input.json`.
    pub fn input_path(&self) -> PathBuf {
        self.workspace.join("exec_input.json")
    }

    /// `<ws>/exec_output.json`.
    pub fn output_path(&self) -> PathBuf {
        self.workspace.join("exec_output.json")
    }

    /// Gives the executor the unit's inference broker: the socket (made
    /// visible inside the sandbox) and `AUSPEXAI_INFERENCE_SOCKET`,
    /// `AUSPEXAI_INFERENCE_MODEL` (`worker.md` §3.1, §7.3).
    pub fn attach_inference(&mut self, socket: &Path, model_id: &str) {
        self.env.push((
            crate::broker::SOCKET_ENV.into(),
            socket.to_string_lossy().into_owned(),
        ));
        self.env
            .push((crate::broker::MODEL_ENV.into(), model_id.to_owned()));
        self.inference_socket = Some(socket.to_path_buf());
    }
}

/// The `exec_input.json` object (key order as the official runner writes).
pub fn input_value(lease: &Lease) -> Value {
    let mut o = Object::new();
    o.insert("schema_version".into(), Value::from("0.1"));
    o.insert("unit_id".into(), Value::from(lease.unit_id.as_str()));
    o.insert("tenant_id".into(), Value::from(lease.tenant_id.as_str()));
    o.insert("experiment_id".into(), Value::from(lease.label.as_str()));
    o.insert(
        "manifest_sha256".into(),
        Value::from(lease.manifest_sha256.as_str()),
    );
    o.insert(
        "created_at".into(),
        Value::from(jsonfmt::isoformat(&lease.created_at)),
    );
    o.insert("payload".into(), Value::Object(lease.payload.clone()));
    Value::Object(o)
}

/// What the worker needs from its configuration to build an invocation.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The interpreter for `python`/`python3`.
    pub python: &'a Path,
    /// The model store.
    pub models_dir: Option<&'a Path>,
    /// Isolation.
    pub sandbox: &'a SandboxMode,
    /// Limits (the advisory `--timeout` is the wall clock).
    pub limits: &'a Limits,
}

/// Creates a fresh workspace (mode 0700, any old one wiped), writes
/// `exec_input.json` and builds the argv and environment.
pub fn prepare(
    workspace: &Path,
    lease: &Lease,
    pkg: &VerifiedPackage,
    ctx: &Context<'_>,
) -> Result<Invocation, Refusal> {
    use std::os::unix::fs::PermissionsExt;
    let io = |what: &str, e: std::io::Error| Refusal::runner(format!("workspace {what}: {e}"));
    if workspace.exists() {
        std::fs::remove_dir_all(workspace).map_err(|e| io("wipe", e))?;
    }
    std::fs::create_dir_all(workspace).map_err(|e| io("create", e))?;
    std::fs::set_permissions(workspace, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io("chmod", e))?;
    let input = workspace.join("exec_input.json");
    std::fs::write(&input, jsonfmt::python_default(&input_value(lease)))
        .map_err(|e| io("input", e))?;
    // Readable by the sandbox uid through its read-only bind.
    std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| io("chmod", e))?;

    let model_dir = match (ctx.models_dir, &pkg.model_id) {
        (Some(store), Some(id)) if store.join(id).is_dir() => Some(store.join(id)),
        _ => None,
    };
    let sandboxed = matches!(ctx.sandbox, SandboxMode::Bubblewrap(_));
    let models_arg = match &model_dir {
        Some(m) => m.clone(),
        None => {
            let m = workspace.join("models");
            if !sandboxed {
                std::fs::create_dir_all(&m).map_err(|e| io("models", e))?;
            }
            m
        }
    };
    let py_dir = ctx
        .python
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let previous = if sandboxed {
        "/usr/bin:/bin:/usr/sbin:/sbin".to_owned()
    } else {
        std::env::var("PATH").unwrap_or_default()
    };
    let path = format!("{py_dir}:/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:{previous}");
    let Some((first, rest)) = pkg.command.split_first() else {
        return Err(Refusal::executor(
            "executor.command is empty (invalid_package)",
        ));
    };
    let program = match first.as_str() {
        "python" | "python3" => ctx.python.to_string_lossy().into_owned(),
        p if p.contains('/') => p.to_owned(),
        p => which(p, &path)
            .map(|w| w.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.to_owned()),
    };
    let timeout = ctx.limits.wall_clock.as_secs().max(1).to_string();
    let mut argv = vec![program];
    argv.extend(rest.iter().cloned());
    let ws = |name: &str| workspace.join(name).to_string_lossy().into_owned();
    argv.extend([
        "--input".into(),
        ws("exec_input.json"),
        "--output".into(),
        ws("exec_output.json"),
        "--models".into(),
        models_arg.to_string_lossy().into_owned(),
        "--timeout".into(),
        timeout.clone(),
    ]);
    let command_json = Value::Array(
        pkg.command
            .iter()
            .map(|c| Value::from(c.as_str()))
            .collect(),
    );
    let mut env: Vec<(String, String)> = vec![("PATH".into(), path)];
    if sandboxed {
        env.extend([
            ("TMPDIR".into(), "/tmp".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("HOME".into(), "/tmp".into()),
        ]);
    }
    env.extend([
        ("AUSPEXAI_UNIT_ID".into(), lease.unit_id.clone()),
        (
            "AUSPEXAI_MANIFEST_SHA256".into(),
            lease.manifest_sha256.clone(),
        ),
        ("AUSPEXAI_OUTPUT_PATH".into(), ws("output.json")),
        (
            "AUSPEXAI_EXECUTOR_COMMAND".into(),
            jsonfmt::python_default(&command_json),
        ),
        (
            "AUSPEXAI_EXECUTOR_DIR".into(),
            pkg.dir.to_string_lossy().into_owned(),
        ),
        ("AUSPEXAI_EXECUTOR_TIMEOUT".into(), timeout),
    ]);
    if let Some(m) = &model_dir {
        env.push((
            "AUSPEXAI_MODELS_DIR".into(),
            m.to_string_lossy().into_owned(),
        ));
    }
    if pkg.capture_raw {
        env.push(("AUSPEXAI_CAPTURE_RAW".into(), "1".into()));
    }
    // An interpreter outside the system directories (pyenv, a venv under
    // /opt) must be visible inside the sandbox: bind its prefix.
    let mut extra_ro = Vec::new();
    if sandboxed
        && let Ok(real) = std::fs::canonicalize(ctx.python)
        && !["/usr", "/bin", "/lib", "/lib64", "/sbin"]
            .iter()
            .any(|d| real.starts_with(d))
        && let Some(prefix) = real.parent().and_then(Path::parent)
        && prefix.parent().is_some()
    {
        extra_ro.push(prefix.to_path_buf());
    }
    Ok(Invocation {
        workspace: workspace.to_path_buf(),
        package_dir: pkg.dir.clone(),
        model_dir,
        argv,
        env,
        extra_ro,
        inference_socket: None,
    })
}

/// A successful run: the output file's bytes.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// `exec_output.json` as the executor wrote it.
    pub output: Vec<u8>,
    /// The tail of stderr.
    pub stderr_tail: String,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// Incremental strict UTF-8 check with a kept tail.
#[derive(Debug, Default)]
struct Stream {
    tail: Vec<u8>,
    pending: Vec<u8>,
    valid: bool,
    total: u64,
}

impl Stream {
    fn new() -> Stream {
        Stream {
            valid: true,
            ..Stream::default()
        }
    }

    fn feed(&mut self, chunk: &[u8], keep: usize) {
        self.total += chunk.len() as u64;
        if self.valid {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(chunk);
            match std::str::from_utf8(&buf) {
                Ok(_) => {}
                Err(e) if e.error_len().is_none() => {
                    self.pending = buf[e.valid_up_to()..].to_vec();
                }
                Err(_) => self.valid = false,
            }
        }
        self.tail.extend_from_slice(chunk);
        if self.tail.len() > keep {
            let cut = self.tail.len() - keep;
            self.tail.drain(..cut);
        }
    }

    fn finish(&mut self) {
        if !self.pending.is_empty() {
            self.valid = false;
        }
    }

    fn tail_text(&self) -> String {
        String::from_utf8_lossy(&self.tail).into_owned()
    }
}

async fn drain(mut r: impl AsyncRead + Unpin, keep: usize) -> Stream {
    let mut s = Stream::new();
    let mut buf = vec![0u8; 16 << 10];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => s.feed(&buf[..n], keep),
        }
    }
    s.finish();
    s
}

/// Reads at most `cap` bytes; `None` when there was more.
async fn read_capped(mut r: impl AsyncRead + Unpin, cap: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return Some(out),
            Ok(n) => {
                if (out.len() + n) as u64 > cap {
                    return None;
                }
                out.extend_from_slice(&buf[..n]);
            }
        }
    }
}

fn last_chars(s: &str, n: usize) -> String {
    let count = s.chars().count();
    if count <= n {
        return s.trim_end().to_owned();
    }
    s.chars()
        .skip(count - n)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

fn with_stderr(msg: String, stderr: &str) -> String {
    let tail = last_chars(stderr, STDERR_IN_REASON);
    if tail.is_empty() {
        msg
    } else {
        format!("{msg}; stderr: {tail}")
    }
}

/// SIGKILL to the process group `pid` leads (the child was started with
/// `process_group(0)`); with `leader_alive`, to the leader too (only before
/// it is reaped, so the pid cannot have been reused).
fn kill_group(pid: Option<u32>, leader_alive: bool) {
    if let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        if leader_alive {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Runs the invocation under `mode` with `limits`. Returns the output bytes
/// on process status 0, else the refusal to send.
pub async fn run(
    inv: &Invocation,
    mode: &SandboxMode,
    limits: &Limits,
    cancel: &tokio::sync::watch::Receiver<bool>,
) -> Result<RunOutput, Refusal> {
    let start = Instant::now();
    let Some(program) = inv.argv.first() else {
        return Err(Refusal::runner("empty executor command"));
    };
    let _uid;
    let mut cmd = match mode {
        SandboxMode::Bubblewrap(opts) => {
            let drop_to = if sandbox::running_as_root() {
                _uid = UidLease::acquire(opts.sandbox_uid_base)
                    .ok_or_else(|| Refusal::sandbox("no free sandbox uid"))?;
                Some(_uid.uid())
            } else {
                None
            };
            let mut extra = opts.extra_ro_binds.clone();
            extra.extend(inv.extra_ro.iter().cloned());
            let input = inv.input_path();
            let plan = SandboxPlan {
                package_dir: &inv.package_dir,
                workspace: &inv.workspace,
                host_input: &input,
                model_dir: inv.model_dir.as_deref(),
                inference_socket: inv.inference_socket.as_deref(),
                extra_ro: &extra,
                drop_to_uid: drop_to,
                env: &inv.env,
                argv: &inv.argv,
            };
            let argv = sandbox::bwrap_argv(opts, limits, &plan);
            let mut c = tokio::process::Command::new(&argv[0]);
            c.args(&argv[1..])
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .current_dir("/");
            c
        }
        SandboxMode::None => {
            let mut c = tokio::process::Command::new(program);
            c.args(&inv.argv[1..])
                .envs(inv.env.iter().map(|(k, v)| (k, v)))
                .current_dir(&inv.package_dir);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| match mode {
        SandboxMode::Bubblewrap(_) => {
            Refusal::sandbox(sandbox::install_hint(&format!("cannot start bwrap: {e}")))
        }
        SandboxMode::None => Refusal::runner(format!("cannot start {program}: {e}")),
    })?;
    let pid = child.id();
    let keep = limits.stderr_tail_bytes.max(STDERR_IN_REASON * 4);
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        kill_group(pid, true);
        return Err(Refusal::runner("executor pipes missing"));
    };
    let stderr_task = tokio::spawn(drain(stderr, keep));
    let sandboxed = matches!(mode, SandboxMode::Bubblewrap(_));
    let out_cap = limits.output_bytes + 256;
    let stdout_task = tokio::spawn(async move {
        if sandboxed {
            match read_capped(stdout, out_cap).await {
                Some(b) => (Some(b), Stream::new()),
                None => (None, Stream::new()),
            }
        } else {
            (Some(Vec::new()), drain(stdout, 0).await)
        }
    });
    let mut cancel = cancel.clone();
    let cancelled = async move {
        loop {
            if *cancel.borrow_and_update() {
                return;
            }
            if cancel.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    enum End {
        Exited(std::process::ExitStatus),
        WaitFailed(String),
        TimedOut,
        Cancelled,
    }
    let end = tokio::select! {
        r = child.wait() => match r {
            Ok(st) => End::Exited(st),
            Err(e) => End::WaitFailed(e.to_string()),
        },
        _ = tokio::time::sleep(limits.wall_clock) => End::TimedOut,
        _ = cancelled => End::Cancelled,
    };
    if matches!(end, End::Exited(_)) {
        // Whatever the executor left behind in its process group goes too.
        kill_group(pid, false);
    } else {
        kill_group(pid, true);
        let _ = child.wait().await;
    }
    // A process that left the group (setsid, no sandbox) may still hold a
    // pipe: do not wait for it forever.
    let grace = Duration::from_secs(2);
    let (out, out_stream) = match tokio::time::timeout(grace, stdout_task).await {
        Ok(Ok(v)) => v,
        _ => (Some(Vec::new()), Stream::new()),
    };
    let err_stream = match tokio::time::timeout(grace, stderr_task).await {
        Ok(Ok(v)) => v,
        _ => Stream::new(),
    };
    let stderr_text = err_stream.tail_text();
    let elapsed = start.elapsed();
    let status = match end {
        End::Exited(st) => st,
        End::WaitFailed(e) => {
            return Err(Refusal::runner(with_stderr(
                format!("waiting for the executor failed: {e}"),
                &stderr_text,
            )));
        }
        End::TimedOut => {
            return Err(Refusal::runner(with_stderr(
                format!(
                    "runner timed out after {}s (killed)",
                    limits.wall_clock.as_secs_f64()
                ),
                &stderr_text,
            )));
        }
        End::Cancelled => {
            return Err(Refusal::runner("aborted: the worker is shutting down"));
        }
    };
    let Some(out) = out else {
        return Err(Refusal::runner(format!(
            "executor output larger than {} bytes (killed)",
            limits.output_bytes
        )));
    };
    if !err_stream.valid || !out_stream.valid {
        return Err(Refusal::runner(with_stderr(
            "executor wrote bytes that are not valid UTF-8 to stdout or stderr".into(),
            &stderr_text,
        )));
    }
    let output = if sandboxed {
        parse_wrapper(&out, status, &stderr_text)?
    } else {
        if !status.success() {
            return Err(Refusal::runner(with_stderr(
                format!("executor exited with {status}"),
                &stderr_text,
            )));
        }
        read_output_file(&inv.output_path(), limits.output_bytes, &stderr_text)?
    };
    Ok(RunOutput {
        output,
        stderr_tail: stderr_text,
        elapsed,
    })
}

/// Splits the wrapper's stdout into its markers and the output bytes.
fn parse_wrapper(
    out: &[u8],
    status: std::process::ExitStatus,
    stderr: &str,
) -> Result<Vec<u8>, Refusal> {
    let up = format!("{}\n", sandbox::MARK_UP);
    let Some(rest) = out.strip_prefix(up.as_bytes()) else {
        return Err(Refusal::sandbox(with_stderr(
            format!("the sandbox did not start (bwrap {status})"),
            stderr,
        )));
    };
    let line_end = rest.iter().position(|b| *b == b'\n');
    let rc = line_end
        .and_then(|n| std::str::from_utf8(&rest[..n]).ok())
        .and_then(|l| l.strip_prefix(sandbox::MARK_EXIT))
        .and_then(|v| v.trim().parse::<i32>().ok());
    let Some(rc) = rc else {
        return Err(Refusal::runner(with_stderr(
            format!(
                "executor killed before it finished (sandbox {status}; CPU, memory or process limit?)"
            ),
            stderr,
        )));
    };
    if rc != 0 {
        let what = if rc > 128 {
            let sig = rc - 128;
            let why = match sig {
                9 => " (SIGKILL: hard CPU limit or out of memory)",
                24 => " (SIGXCPU: CPU time limit)",
                25 => " (SIGXFSZ: file size limit)",
                11 => " (SIGSEGV)",
                6 => " (SIGABRT)",
                _ => "",
            };
            format!("executor killed by signal {sig}{why} (exit status {rc})")
        } else {
            format!("executor exited with status {rc}")
        };
        return Err(Refusal::runner(with_stderr(what, stderr)));
    }
    let body = &rest[line_end.map(|n| n + 1).unwrap_or(rest.len())..];
    if body.is_empty() {
        return Err(Refusal::runner(with_stderr(
            "executor exited 0 but wrote no exec_output.json".into(),
            stderr,
        )));
    }
    Ok(body.to_vec())
}

fn read_output_file(path: &Path, cap: u64, stderr: &str) -> Result<Vec<u8>, Refusal> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| {
        Refusal::runner(with_stderr(
            format!("executor exited 0 but exec_output.json is missing: {e}"),
            stderr,
        ))
    })?;
    if !meta.is_file() {
        return Err(Refusal::runner("exec_output.json is not a regular file"));
    }
    if meta.len() > cap {
        return Err(Refusal::runner(format!(
            "executor output larger than {cap} bytes"
        )));
    }
    let f =
        std::fs::File::open(path).map_err(|e| Refusal::runner(format!("exec_output.json: {e}")))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, cap + 1), &mut bytes)
        .map_err(|e| Refusal::runner(format!("exec_output.json: {e}")))?;
    if bytes.len() as u64 > cap {
        return Err(Refusal::runner(format!(
            "executor output larger than {cap} bytes"
        )));
    }
    Ok(bytes)
}

/// The executor's report, checked as the official runner and daemon check
/// it (§3.3).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorReport {
    /// Signed verbatim.
    pub completed_at: String,
    /// Data, signed and hashed.
    pub exit_code: i64,
    /// The payload (minus a captured `raw_response`).
    pub payload: Object,
    /// A detached raw response (raw-capture manifests only).
    pub raw_response: Option<String>,
}

fn python_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => i.as_i64(),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Float(f) if f.is_finite() => {
            let t = f.trunc();
            (t.abs() < 9.0e15).then_some(t as i64)
        }
        Value::String(s) => {
            let t = s.trim().replace('_', "");
            t.parse::<i64>().ok()
        }
        _ => None,
    }
}

/// Parses `exec_output.json` (§3.3).
pub fn parse_report(bytes: &[u8], capture_raw: bool) -> Result<ExecutorReport, Refusal> {
    let v = json::parse(bytes)
        .map_err(|e| Refusal::runner(format!("exec_output.json is not JSON: {e}")))?;
    let Some(o) = v.as_object() else {
        return Err(Refusal::runner("exec_output.json is not a JSON object"));
    };
    let mut payload = match o.get("payload") {
        Some(Value::Object(p)) => p.clone(),
        Some(other) => {
            return Err(Refusal::runner(format!(
                "exec_output.json payload is {}, not an object",
                other.type_name()
            )));
        }
        None => return Err(Refusal::runner("exec_output.json has no payload")),
    };
    let completed_at = match o.get("completed_at") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => jsonfmt::now_isoformat(),
        Some(Value::String(s)) if s.is_empty() => jsonfmt::now_isoformat(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Int(i)) if i.as_str() == "0" => jsonfmt::now_isoformat(),
        Some(Value::Int(i)) => i.as_str().to_owned(),
        Some(Value::Float(f)) if *f == 0.0 => jsonfmt::now_isoformat(),
        Some(Value::Float(f)) => json::python_float_repr(*f),
        Some(Value::Bool(true)) => "True".to_owned(),
        Some(other) => {
            return Err(Refusal::runner(format!(
                "exec_output.json completed_at is {}, not a string",
                other.type_name()
            )));
        }
    };
    let exit_code = match o.get("exit_code") {
        None => 0,
        Some(v) => python_int(v).ok_or_else(|| {
            Refusal::runner(format!(
                "exec_output.json exit_code {} is not an integer",
                json::canonical(v)
            ))
        })?,
    };
    if !(-255..=255).contains(&exit_code) {
        return Err(Refusal::runner(format!(
            "exec_output.json exit_code {exit_code} is outside -255..255"
        )));
    }
    let raw_response = if capture_raw {
        match payload.get("raw_response") {
            Some(Value::String(_)) => match payload.shift_remove("raw_response") {
                Some(Value::String(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    } else {
        None
    };
    Ok(ExecutorReport {
        completed_at,
        exit_code,
        payload,
        raw_response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_rules() {
        let r = parse_report(
            br#"{"schema_version":"0.1","unit_id":"zz","completed_at":"2026-01-01T00:00:00Z","exit_code":3,"payload":{"a":1.50,"raw_response":"x"}}"#,
            true,
        )
        .expect("valid");
        assert_eq!(r.completed_at, "2026-01-01T00:00:00Z");
        assert_eq!(r.exit_code, 3);
        assert_eq!(r.raw_response.as_deref(), Some("x"));
        assert_eq!(json::canonical(&Value::Object(r.payload)), r#"{"a":1.5}"#);
        let r = parse_report(br#"{"payload":{},"exit_code":"7"}"#, false).expect("valid");
        assert_eq!(r.exit_code, 7);
        assert!(r.completed_at.ends_with("+00:00"));
        for bad in [
            &br#"[]"#[..],
            br#"{"payload":[]}"#,
            br#"{}"#,
            br#"{"payload":{},"exit_code":null}"#,
            br#"{"payload":{},"exit_code":999}"#,
            br#"{"payload":{},"completed_at":{"a":1}}"#,
            b"\xff",
        ] {
            assert!(parse_report(bad, false).is_err());
        }
    }

    #[test]
    fn utf8_stream_check_spans_chunks() {
        let mut s = Stream::new();
        let e = "é".as_bytes();
        s.feed(&e[..1], 10);
        s.feed(&e[1..], 10);
        s.finish();
        assert!(s.valid);
        let mut s = Stream::new();
        s.feed(b"ok\xff", 10);
        s.finish();
        assert!(!s.valid);
        let mut s = Stream::new();
        s.feed(&e[..1], 10);
        s.finish();
        assert!(!s.valid);
        let mut s = Stream::new();
        s.feed(b"0123456789abc", 4);
        assert_eq!(s.tail_text(), "9abc");
    }
}
