//! `auspex-coordinator` — the devnet coordinator: a wire-compatible
//! stand-in for the AuspexAI coordinator service (`coordinator.md`).
//!
//! It owns the coordinator's HTTP API under `/api/v0` and everything behind
//! it: the tenant registry and maintainer bearer tokens, RFC 9421 request
//! verification with a replay cache, the experiment lifecycle with
//! approval, work-unit submission in the real check order, worker
//! enrolment, leases and refusals, result upload with worker-signature
//! verification, hash-agreement / tolerance / process-only consensus, and
//! receipts (COSE_Sign1 over in-toto statements) signed by one persistent
//! coordinator key. State lives in one SQLite database (WAL,
//! `synchronous=FULL`) under the state directory; nothing is kept only in
//! memory except the replay cache, the event ring and the lease picker's
//! skip hints (derived from committed rows). Leases and result uploads are
//! group-committed: one fsync per batch, each answered after its commit.
//!
//! It refuses what the real service merely stores: manifests whose
//! signature does not verify under the uploading tenant's key, and worker
//! results whose signature does not verify (both 422). Other tenants'
//! experiments are 404 everywhere. It does not print (internal errors
//! aside, which go to stderr) and does no network I/O besides serving.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use auspex_coordinator::{Config, serve};
//! let running = serve(Config::new("/tmp/devnet-state")).await?;
//! println!("coordinator on http://{}", running.addr());
//! running.shutdown().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod anchor;
pub mod attestation;
pub mod auth;
mod config;
mod consensus;
pub mod db;
pub mod error;
pub mod events;
pub mod keys;
pub mod prereg;
mod routes;
pub mod util;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use auspex_crypto::http_sig::ReplayCache;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::Config;
pub use routes::tenants::{NewTenant, TenantError, add_tenant};

use crate::db::Db;
use crate::error::{ApiError, MAX_BODY_BYTES};
use crate::events::EventBus;
use crate::keys::CoordinatorKey;

/// Shared state of one coordinator: configuration, database, signing key,
/// replay cache and event bus. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: Config,
    db: Db,
    key: CoordinatorKey,
    replay: Mutex<ReplayCache>,
    events: EventBus,
    maintainer_token: String,
    http: reqwest::Client,
    anchor_wake: tokio::sync::Notify,
    anchor_in_flight: anchor::InFlight,
    closing: tokio::sync::watch::Sender<bool>,
}

/// Why a coordinator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The state directory could not be created.
    #[error("state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: auspex_crypto::atomic::AtomicWriteError,
    },
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// The coordinator key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] keys::CoordinatorKeyError),
    /// The maintainer token file could not be read or written.
    #[error("maintainer token {path}: {reason}")]
    Token {
        /// The token file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The HTTP client for the transparency log could not be built.
    #[error("transparency-log client: {0}")]
    Http(String),
    /// Binding the listener failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl AppState {
    /// Opens the state directory: creates it (0700), opens and migrates the
    /// database, loads or creates the coordinator key and the maintainer
    /// token (`<state>/maintainer.token`, 0600).
    pub fn open(config: Config) -> Result<AppState, StartError> {
        auspex_crypto::atomic::create_dir_all(&config.state_dir, 0o700).map_err(|source| {
            StartError::StateDir {
                path: config.state_dir.display().to_string(),
                source,
            }
        })?;
        let db = Db::open(&config.db_path())?;
        let key = CoordinatorKey::load_or_create(&config.key_path())?;
        let maintainer_token = routes::tenants::ensure_maintainer_token(&config, &db)?;
        let replay = ReplayCache::new(config.signature_window_secs, config.replay_capacity);
        let http = reqwest::Client::builder()
            .timeout(config.tlog_timeout)
            .connect_timeout(config.tlog_timeout)
            .build()
            .map_err(|e| StartError::Http(e.to_string()))?;
        Ok(AppState(Arc::new(Inner {
            config,
            db,
            key,
            replay: Mutex::new(replay),
            events: EventBus::new(),
            maintainer_token,
            http,
            anchor_wake: tokio::sync::Notify::new(),
            anchor_in_flight: anchor::InFlight::default(),
            closing: tokio::sync::watch::Sender::new(false),
        })))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.0.db
    }

    /// The coordinator signing key.
    pub fn key(&self) -> &CoordinatorKey {
        &self.0.key
    }

    /// The event bus.
    pub fn events(&self) -> &EventBus {
        &self.0.events
    }

    /// The maintainer bearer token (also in `<state>/maintainer.token`).
    pub fn maintainer_token(&self) -> &str {
        &self.0.maintainer_token
    }

    /// The HTTP client of the transparency log.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.0.http
    }

    pub(crate) fn anchor_wake(&self) -> &tokio::sync::Notify {
        &self.0.anchor_wake
    }

    pub(crate) fn anchor_in_flight(&self) -> &anchor::InFlight {
        &self.0.anchor_in_flight
    }

    /// Flips to `true` when the server shuts down (ends SSE streams).
    pub(crate) fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.0.closing.subscribe()
    }

    /// Asks the background anchorer to look for unanchored attestations.
    pub fn wake_anchorer(&self) {
        self.0.anchor_wake.notify_one();
    }

    /// Publishes events of `experiment_id` (after their change committed);
    /// an `attestation.issued` also wakes the anchorer.
    pub(crate) fn publish(
        &self,
        experiment_id: Option<&str>,
        events: impl IntoIterator<Item = (&'static str, auspex_wire::json::Value)>,
    ) {
        for (kind, data) in events {
            if kind == "attestation.issued" {
                self.wake_anchorer();
            }
            self.0.events.publish(kind, experiment_id, data);
        }
    }

    pub(crate) fn replay_cache(&self) -> MutexGuard<'_, ReplayCache> {
        self.0.replay.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs route code on the blocking pool (it uses SQLite) and turns its
/// error — or a panic — into a response.
pub(crate) async fn blocking<F>(state: AppState, f: F) -> Response
where
    F: FnOnce(&AppState) -> Result<Response, ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(move || f(&state)).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => e.into_response(),
        Err(join) => ApiError::Internal(format!("handler panicked: {join}")).into_response(),
    }
}

/// The coordinator's routes (everything under `/api/v0`) with the real
/// service's transport behaviour: the 2 MiB `Content-Length` cap answered
/// before authentication, security headers on every response, FastAPI's
/// `{"detail":"Not Found"}` for unknown paths.
pub fn router(state: AppState) -> Router {
    routes::routes()
        .fallback(|| async {
            ApiError::Plain {
                status: StatusCode::NOT_FOUND,
                detail: "Not Found".to_owned(),
            }
        })
        .method_not_allowed_fallback(|| async {
            ApiError::Plain {
                status: StatusCode::METHOD_NOT_ALLOWED,
                detail: "Method Not Allowed".to_owned(),
            }
        })
        // The cap runs first; the security headers wrap every response,
        // the cap's 413 included.
        .layer(axum::middleware::from_fn(body_cap))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// `coordinator.md` §2.5: a declared `Content-Length` over 2 MiB is refused
/// before anything else (paths ending in `/packages` have their own cap).
async fn body_cap(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64)
        && !req.uri().path().ends_with("/packages")
    {
        return ApiError::PayloadTooLarge.into_response();
    }
    next.run(req).await
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
    ] {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    resp
}

/// A coordinator serving on a bound address.
#[derive(Debug)]
pub struct RunningCoordinator {
    addr: SocketAddr,
    state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    anchorer: JoinHandle<()>,
}

impl RunningCoordinator {
    /// The bound address (the real port when the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The shared state (database, key, token).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting connections, lets in-flight requests finish, and
    /// waits for the server task.
    pub async fn shutdown(mut self) {
        self.state.0.closing.send_replace(true);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        self.anchorer.abort();
        let _ = (&mut self.anchorer).await;
    }
}

/// Opens the state and serves the router on `config.bind`.
pub async fn serve(config: Config) -> Result<RunningCoordinator, StartError> {
    let bind = config.bind;
    let state = tokio::task::spawn_blocking(move || AppState::open(config))
        .await
        .map_err(|e| StartError::Token {
            path: String::new(),
            reason: format!("start-up task failed: {e}"),
        })??;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| StartError::Bind { addr: bind, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr: bind, source })?;
    let (tx, rx) = oneshot::channel::<()>();
    let app = router(state.clone());
    let anchorer = tokio::spawn(anchor::run(state.clone()));
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok(RunningCoordinator {
        addr,
        state,
        shutdown: Some(tx),
        task,
        anchorer,
    })
}
