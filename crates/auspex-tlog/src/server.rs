//! The Rekor v1 REST service (axum, loopback only).
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /api/v1/log/entries` | 201 `{uuid: entry}` with `Location` and `ETag`; 409 for an entry already logged (`Location` of the existing one); 400 for a refused proposal; 413 over the body cap; 415 for a non-JSON content type |
//! | `GET /api/v1/log/entries/{entryUUID}` | 200 `{uuid: entry}` with a fresh inclusion proof, checkpoint and SET against the current tree; 64- or 80-hex IDs, either case; 404 unknown; 422 malformed |
//! | `GET /api/v1/log/entries?logIndex=N` | as above, by index |
//! | `GET /api/v1/log` | `{inactiveShards: [], rootHash, signedTreeHead, treeID, treeSize}` |
//! | `GET /api/v1/log/proof?firstSize=&lastSize=` | `{hashes, rootHash}` (RFC 6962 consistency proof; `firstSize` defaults to 1) |
//! | `GET /api/v1/log/publicKey` | the key as PEM (`application/x-pem-file`) |
//! | `GET /api/v1/log/trusted_root.json` | the Sigstore trusted root of this log (not in Rekor) |
//!
//! Errors are Rekor's `{"code", "message"}`: `code` is the HTTP status,
//! except that malformed path and query parameters answer 422 with
//! go-openapi's validation codes (601 type, 602 required, 605 pattern, 609
//! minimum), as Rekor's generated server does.
//!
//! Appends go through one writer thread that commits whatever requests are
//! waiting in one transaction (group commit: one fsync for many entries); a
//! response is sent only after its entry is committed. Reads use a small
//! pool of separate SQLite connections (WAL readers never wait for the
//! writer).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use auspex_crypto::tlog::TrustedRoot;
use auspex_wire::json::{self, Object, Value};
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use tokio::sync::{mpsc, oneshot};

use crate::error::TlogError;
use crate::keyfile::KeyType;
use crate::kinds;
use crate::store::{Appended, Identity, Log, LogOptions, Reader, SignedCheckpoint, View};

/// The default cap on a request body: 64 MiB, room for the base64 of a
/// COSE attestation over 100,000 units.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;
/// At most this many appends are committed in one transaction.
const MAX_BATCH: usize = 256;
/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;
/// Queued appends before `POST` waits.
const QUEUE: usize = 1024;

/// How to run the service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlogConfig {
    /// The state directory (database and key; created 0700 if missing).
    pub state_dir: PathBuf,
    /// Where to listen: a loopback address; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The host name the log signs as and is reached by (its URL is
    /// `http://<origin_name>:<port>`). `None`: the name the log was created
    /// with, or `127.0.0.1` for a new log (`[::1]` when binding IPv6).
    pub origin_name: Option<String>,
    /// The key type of a new log (default Ed25519).
    pub key_type: Option<KeyType>,
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
}

impl TlogConfig {
    /// A log in `state_dir` on `127.0.0.1:0`, default name, key and caps.
    pub fn new(state_dir: impl Into<PathBuf>) -> TlogConfig {
        TlogConfig {
            state_dir: state_dir.into(),
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            origin_name: None,
            key_type: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

enum Msg {
    Job {
        body: Vec<u8>,
        reply: oneshot::Sender<Result<Appended, TlogError>>,
    },
    Stop,
}

struct AppState {
    id: Arc<Identity>,
    readers: Mutex<Vec<Reader>>,
    writer: mpsc::Sender<Msg>,
    trusted_root_json: String,
    max_body: usize,
    checkpoint: Mutex<Option<SignedCheckpoint>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AppState {
    /// Runs `f` on a pooled read connection, off the async workers.
    async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, TlogError>
    where
        T: Send + 'static,
        F: FnOnce(&AppState, &View<'_>) -> Result<T, TlogError> + Send + 'static,
    {
        let st = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let pooled = lock(&st.readers).pop();
            let reader = match pooled {
                Some(r) => r,
                None => Reader::open(Arc::clone(&st.id))?,
            };
            let out = f(&st, &reader.view());
            let mut pool = lock(&st.readers);
            if pool.len() < MAX_IDLE_READERS {
                pool.push(reader);
            }
            out
        })
        .await
        .map_err(|e| TlogError::Task(e.to_string()))?
    }

    /// The signed checkpoint of the current tree (signed once per size).
    fn current_checkpoint(&self, v: &View<'_>) -> Result<SignedCheckpoint, TlogError> {
        let size = v.size()?;
        if let Some(cp) = lock(&self.checkpoint).as_ref()
            && cp.size == size
        {
            return Ok(cp.clone());
        }
        let cp = v.checkpoint(size)?;
        let mut cached = lock(&self.checkpoint);
        if cached.as_ref().is_none_or(|c| c.size < cp.size) {
            *cached = Some(cp.clone());
        }
        Ok(cp)
    }
}

/// A running log service.
#[derive(Debug)]
pub struct RunningTlog {
    addr: SocketAddr,
    url: String,
    name: String,
    tree_id: u64,
    log_id: [u8; 32],
    state_dir: PathBuf,
    trusted_root: TrustedRoot,
    trusted_root_json: String,
    public_key_pem: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    writer_tx: mpsc::Sender<Msg>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Job { .. } => "Msg::Job",
            Msg::Stop => "Msg::Stop",
        })
    }
}

impl RunningTlog {
    /// The log's base URL, `http://<name>:<port>` (no trailing slash): what
    /// a Rekor client's `rekor_url` is set to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address the service listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The host name the log signs as.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tree ID.
    pub fn tree_id(&self) -> u64 {
        self.tree_id
    }

    /// The log ID (SHA-256 of the DER public key).
    pub fn log_id(&self) -> [u8; 32] {
        self.log_id
    }

    /// The state directory.
    pub fn state_dir(&self) -> &std::path::Path {
        &self.state_dir
    }

    /// The Sigstore trusted root for this log (`baseUrl` = [`RunningTlog::url`]).
    pub fn trusted_root(&self) -> &TrustedRoot {
        &self.trusted_root
    }

    /// [`RunningTlog::trusted_root`] as `trusted_root.json` text.
    pub fn trusted_root_json(&self) -> &str {
        &self.trusted_root_json
    }

    /// The public key, PEM.
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    /// Stops accepting connections, finishes the requests in flight, commits
    /// the queued appends and stops the writer.
    pub async fn shutdown(mut self) -> Result<(), TlogError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = match self.server.take() {
            Some(h) => match h.await {
                Ok(r) => r.map_err(TlogError::Serve),
                Err(e) => Err(TlogError::Task(e.to_string())),
            },
            None => Ok(()),
        };
        let _ = self.writer_tx.send(Msg::Stop).await;
        if let Some(w) = self.writer.take() {
            tokio::task::spawn_blocking(move || w.join())
                .await
                .map_err(|e| TlogError::Task(e.to_string()))?
                .map_err(|_| TlogError::Task("the writer thread panicked".into()))?;
        }
        served
    }
}

impl Drop for RunningTlog {
    /// Stops serving without waiting (the writer finishes what is queued).
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.writer_tx.try_send(Msg::Stop);
    }
}

/// Opens (or creates) the log in `config.state_dir` and serves it on
/// `config.bind` until [`RunningTlog::shutdown`] (or drop).
pub async fn serve(config: TlogConfig) -> Result<RunningTlog, TlogError> {
    if !config.bind.ip().is_loopback() {
        return Err(TlogError::NotLoopback(config.bind));
    }
    let name = config
        .origin_name
        .clone()
        .or_else(|| match config.bind.ip() {
            IpAddr::V6(_) => Some("[::1]".to_owned()),
            IpAddr::V4(_) => None,
        });
    let opts = LogOptions {
        name,
        key_type: config.key_type,
    };
    let dir = config.state_dir.clone();
    let log = tokio::task::spawn_blocking(move || Log::open_with(&dir, &opts))
        .await
        .map_err(|e| TlogError::Task(e.to_string()))??;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| TlogError::Bind {
            addr: config.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| TlogError::Bind {
        addr: config.bind,
        source,
    })?;
    let id = log.identity();
    let url = format!("http://{}:{}", id.name, addr.port());
    let trusted_root = TrustedRoot::new(vec![id.transparency_log(&url)?]);
    let trusted_root_json = trusted_root.to_json();

    let (writer_tx, writer_rx) = mpsc::channel(QUEUE);
    let writer = std::thread::Builder::new()
        .name("auspex-tlog-writer".into())
        .spawn(move || writer_loop(log, writer_rx))
        .map_err(|e| TlogError::Task(format!("cannot start the writer thread: {e}")))?;

    let state = Arc::new(AppState {
        id: Arc::clone(&id),
        readers: Mutex::new(Vec::new()),
        writer: writer_tx.clone(),
        trusted_root_json: trusted_root_json.clone(),
        max_body: config.max_body_bytes,
        checkpoint: Mutex::new(None),
    });
    let app = router(state);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await
    });
    Ok(RunningTlog {
        addr,
        url,
        name: id.name.clone(),
        tree_id: id.tree_id,
        log_id: id.log_id,
        state_dir: config.state_dir,
        trusted_root,
        trusted_root_json,
        public_key_pem: id.public_key_pem.clone(),
        shutdown: Some(stop_tx),
        server: Some(server),
        writer_tx,
        writer: Some(writer),
    })
}

fn writer_loop(mut log: Log, mut rx: mpsc::Receiver<Msg>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = Vec::new();
        let mut stop = false;
        match first {
            Msg::Job { body, reply } => jobs.push((body, reply)),
            Msg::Stop => break,
        }
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job { body, reply }) => jobs.push((body, reply)),
                Ok(Msg::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let (bodies, replies): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        match log.append_batch(bodies) {
            Ok(done) => {
                for (reply, a) in replies.into_iter().zip(done) {
                    let _ = reply.send(Ok(a));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(TlogError::Writer(msg.clone())));
                }
            }
        }
        if stop {
            break;
        }
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/api/v1/log/entries",
            post(create_entry).get(entry_by_index),
        )
        .route("/api/v1/log/entries/{entry_id}", get(entry_by_id))
        .route("/api/v1/log", get(log_info))
        .route("/api/v1/log/proof", get(consistency))
        .route("/api/v1/log/publicKey", get(public_key))
        .route("/api/v1/log/trusted_root.json", get(trusted_root))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, code: u16, message: impl Into<String>) -> Response {
    let mut o = Object::new();
    o.insert("code".into(), Value::from(u64::from(code)));
    o.insert("message".into(), Value::from(message.into()));
    json_response(status, json::canonical(&Value::Object(o)))
}

fn status_error(status: StatusCode, message: impl Into<String>) -> Response {
    error(status, status.as_u16(), message)
}

/// A parameter that fails validation (go-openapi: HTTP 422).
fn invalid_param(code: u16, message: impl Into<String>) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

fn from_error(e: &TlogError) -> Response {
    let status = match e {
        TlogError::Proposal(_) => StatusCode::BAD_REQUEST,
        TlogError::NoSuchEntry(_) => StatusCode::NOT_FOUND,
        TlogError::SizeOutOfRange { .. } | TlogError::ProofRange { .. } => StatusCode::BAD_REQUEST,
        TlogError::EntryId(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    status_error(status, e.to_string())
}

fn entry_location(uuid: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("/api/v1/log/entries/{uuid}")).ok()
}

async fn not_found(req: Request) -> Response {
    status_error(
        StatusCode::NOT_FOUND,
        format!(
            "path {} was not found",
            req.uri().path().chars().take(200).collect::<String>()
        ),
    )
}

async fn method_not_allowed(req: Request) -> Response {
    status_error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {} is not allowed", req.method()),
    )
}

// ---------------------------------------------------------------------------
// Query parameters
// ---------------------------------------------------------------------------

/// The first value of `name` in the query string.
fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// An integer parameter `≥ min`; `Ok(None)` if absent.
#[allow(clippy::result_large_err)] // the error is the response itself
fn int_param(query: Option<&str>, name: &str, min: u64) -> Result<Option<u64>, Response> {
    let Some(v) = query_param(query, name) else {
        return Ok(None);
    };
    let shown: String = v.chars().take(40).collect();
    let n: i64 = v.parse().map_err(|_| {
        invalid_param(
            601,
            format!("{name} in query must be of type int64: \"{shown}\""),
        )
    })?;
    match u64::try_from(n) {
        Ok(n) if n >= min => Ok(Some(n)),
        _ => Err(invalid_param(
            609,
            format!("{name} in query should be greater than or equal to {min}"),
        )),
    }
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

fn is_json(ct: &HeaderValue) -> bool {
    let Ok(s) = ct.to_str() else {
        return false;
    };
    let media = s
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

async fn create_entry(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    if let Some(ct) = headers.get(header::CONTENT_TYPE)
        && !is_json(ct)
    {
        return status_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the proposed entry must be sent as application/json",
        );
    }
    let too_large = || {
        status_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body exceeds {} bytes", st.max_body),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > st.max_body as u64
    {
        return too_large();
    }
    let bytes = match Limited::new(body, st.max_body).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Err(e) => {
            return status_error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}"),
            );
        }
    };
    if bytes.is_empty() {
        return status_error(StatusCode::BAD_REQUEST, "the request body is empty");
    }
    let canonical = match tokio::task::spawn_blocking(move || kinds::canonical_body(&bytes)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return status_error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => return status_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let (reply, rx) = oneshot::channel();
    let unavailable = || {
        status_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the transparency log is shutting down",
        )
    };
    if st
        .writer
        .send(Msg::Job {
            body: canonical,
            reply,
        })
        .await
        .is_err()
    {
        return unavailable();
    }
    let appended = match rx.await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return from_error(&e),
        Err(_) => return unavailable(),
    };
    if appended.duplicate {
        let mut r = status_error(
            StatusCode::CONFLICT,
            format!(
                "an equivalent entry already exists in the transparency log with UUID {}",
                appended.uuid
            ),
        );
        if let Some(loc) = entry_location(&appended.uuid) {
            r.headers_mut().insert(header::LOCATION, loc);
        }
        return r;
    }
    let index = appended.index;
    let entry = st
        .read(move |st, v| {
            let leaf = v
                .leaf_by_index(index)?
                .ok_or_else(|| TlogError::Corrupt(format!("leaf {index} vanished")))?;
            let cp = st.current_checkpoint(v)?;
            v.entry(&leaf, &cp)
        })
        .await;
    match entry {
        Ok(e) => {
            let mut r = json_response(StatusCode::CREATED, e.to_json());
            if let Some(loc) = entry_location(&appended.uuid) {
                r.headers_mut().insert(header::LOCATION, loc);
            }
            if let Ok(etag) = HeaderValue::from_str(&appended.uuid) {
                r.headers_mut().insert(header::ETAG, etag);
            }
            r
        }
        Err(e) => from_error(&e),
    }
}

async fn entry_by_id(
    State(st): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = path else {
        return invalid_param(605, "entryUUID in path is not valid");
    };
    let Ok((tree, leaf_hash)) = crate::store::parse_entry_id(&id) else {
        return invalid_param(
            605,
            "entryUUID in path should match '^([0-9a-fA-F]{64}|[0-9a-fA-F]{80})$'",
        );
    };
    let shown = id.to_ascii_lowercase();
    if tree.is_some_and(|t| t != st.id.tree_id) {
        return status_error(
            StatusCode::NOT_FOUND,
            format!("no entry {shown} in this log (tree ID {})", st.id.tree_id),
        );
    }
    let r = st
        .read(move |st, v| {
            let leaf = v
                .leaf_by_hash(&leaf_hash)?
                .ok_or_else(|| TlogError::NoSuchEntry(shown))?;
            let cp = st.current_checkpoint(v)?;
            v.entry(&leaf, &cp)
        })
        .await;
    match r {
        Ok(e) => json_response(StatusCode::OK, e.to_json()),
        Err(e) => from_error(&e),
    }
}

async fn entry_by_index(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let index = match int_param(q.as_deref(), "logIndex", 0) {
        Ok(Some(i)) => i,
        Ok(None) => return invalid_param(602, "logIndex in query is required"),
        Err(r) => return r,
    };
    let r = st
        .read(move |st, v| {
            let leaf = v
                .leaf_by_index(index)?
                .ok_or_else(|| TlogError::NoSuchEntry(format!("with logIndex {index}")))?;
            let cp = st.current_checkpoint(v)?;
            if leaf.index >= cp.size {
                // Appended after the checkpoint was read: not yet provable.
                return Err(TlogError::NoSuchEntry(format!("with logIndex {index}")));
            }
            v.entry(&leaf, &cp)
        })
        .await;
    match r {
        Ok(e) => json_response(StatusCode::OK, e.to_json()),
        Err(e) => from_error(&e),
    }
}

async fn log_info(State(st): State<Arc<AppState>>) -> Response {
    match st.read(|st, v| st.current_checkpoint(v)).await {
        Ok(cp) => {
            let mut o = Object::new();
            o.insert("inactiveShards".into(), Value::Array(Vec::new()));
            o.insert(
                "rootHash".into(),
                Value::from(auspex_wire::hex_lower(&cp.root_hash)),
            );
            o.insert("signedTreeHead".into(), Value::from(cp.note));
            o.insert("treeID".into(), Value::from(st.id.tree_id.to_string()));
            o.insert("treeSize".into(), Value::from(cp.size));
            json_response(StatusCode::OK, json::canonical(&Value::Object(o)))
        }
        Err(e) => from_error(&e),
    }
}

async fn consistency(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let q = q.as_deref();
    let first = match int_param(q, "firstSize", 1) {
        Ok(v) => v.unwrap_or(1),
        Err(r) => return r,
    };
    let last = match int_param(q, "lastSize", 1) {
        Ok(Some(v)) => v,
        Ok(None) => return invalid_param(602, "lastSize in query is required"),
        Err(r) => return r,
    };
    if let Some(t) = query_param(q, "treeID")
        && t != st.id.tree_id.to_string()
    {
        return status_error(
            StatusCode::BAD_REQUEST,
            format!(
                "treeID {:?} is not this log's ({})",
                t.chars().take(40).collect::<String>(),
                st.id.tree_id
            ),
        );
    }
    let r = st
        .read(move |_, v| {
            let hashes = v.consistency_proof(first, last)?;
            let root = v.root(last)?;
            Ok((hashes, root))
        })
        .await;
    match r {
        Ok((hashes, root)) => {
            let mut o = Object::new();
            o.insert(
                "hashes".into(),
                Value::Array(
                    hashes
                        .iter()
                        .map(|h| Value::from(auspex_wire::hex_lower(h)))
                        .collect(),
                ),
            );
            o.insert(
                "rootHash".into(),
                Value::from(auspex_wire::hex_lower(&root)),
            );
            json_response(StatusCode::OK, json::canonical(&Value::Object(o)))
        }
        Err(e) => from_error(&e),
    }
}

async fn public_key(State(st): State<Arc<AppState>>) -> Response {
    let mut r = Response::new(Body::from(st.id.public_key_pem.clone()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-pem-file"),
    );
    r
}

async fn trusted_root(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    json_response(StatusCode::OK, st.trusted_root_json.clone())
}
