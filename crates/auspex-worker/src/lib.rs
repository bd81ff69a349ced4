//! `auspex-worker` — a volunteer worker for the AuspexAI network and the
//! devnet, wire-compatible with the official `auspexai-worker` 0.2.80
//! (`worker.md`).
//!
//! It owns the worker side of the protocol: enrolment (or reuse of an
//! enrolment stored beside the key), heartbeats with the capabilities
//! report, leasing (the assignment poll), package resolution and
//! verification (manifest hash and package digest re-derived from what is
//! staged), safe unpacking of fetched archives, running the executor under
//! the exact invocation contract of §3 inside a bubblewrap sandbox with
//! rlimits and a wall clock, checking its output, signing the result as
//! schema v3 and uploading it (written to disk first, retried with back-off),
//! polling for the canonical receipt until 200 or 410, refusals with the
//! official kinds, graceful shutdown, and fault injection for tests and
//! demos ([`Fault`]).
//!
//! It refuses: to run tenant code without the sandbox unless
//! [`SandboxMode::None`] is chosen explicitly (logged loudly); packages whose
//! manifest hash or digest does not match, or whose archive has links,
//! devices, absolute or `..` paths or exceeds the size caps; a manifest
//! swapped under a pinned experiment; outputs that are too large, not JSON,
//! without an object `payload`, or with an out-of-range `exit_code`;
//! executors that exit non-zero or print non-UTF-8; a unit whose manifest
//! requires a model the store lacks, pins a serving version this worker
//! does not run, or declares a generation policy it cannot honour.
//!
//! Inference ([`broker`], `worker.md` §7): with an [`InferenceBackend`]
//! configured ([`WorkerConfig::inference`]), a unit whose manifest declares
//! a model held in the model store (one `*.gguf`) gets a per-unit broker
//! socket at `<workspace>/inference.sock`, bound into the sandbox; the
//! broker enforces the manifest's generation policy and the result is signed
//! with `served_weights` and the `generation_options` it sent. The only
//! backend shipped is [`broker::standin::StandIn`], a deterministic local
//! text generator that is clearly not a language model (for the devnet);
//! a real serving path implements the same trait.
//!
//! The sandbox is bubblewrap plus rlimits ([`sandbox`] has the exact
//! argv), with Landlock as a second layer when a shim is configured
//! ([`landlock`]: the `auspex` binary, or `auspex-landlock-shim`, restricts
//! itself inside the sandbox and then runs the executor); no seccomp
//! filter.
//!
//! The library never prints; log lines go to [`WorkerConfig::logger`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), auspex_worker::WorkerError> {
//! use auspex_worker::{KeySource, WorkerConfig, run};
//! let config = WorkerConfig::new(
//!     "http://127.0.0.1:8080",
//!     KeySource::Path("/var/lib/auspex-worker/worker_key.pem".into()),
//!     "/var/lib/auspex-worker",
//! );
//! let stats = run(config, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! println!("{} results", stats.results.len());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod broker;
mod caps;
pub mod client;
mod config;
mod error;
pub mod exec;
pub mod jsonfmt;
pub mod landlock;
pub mod package;
pub mod result;
pub mod sandbox;
pub mod state;
mod worker;

pub use broker::InferenceBackend;
pub use caps::{Serving, WORKER_VERSION, capabilities};
pub use config::{
    BwrapOptions, Fault, KeySource, Level, Limits, Logger, SandboxMode, WorkerConfig,
};
pub use error::{Refusal, WorkerError, kind};
pub use worker::{
    MAX_SUBMIT_ATTEMPTS, ReceiptRecord, RefusalRecord, ResultRecord, WorkerHandle, WorkerStats,
    run, spawn,
};
