//! `auspex-devnet` composes the devnet: a Rekor-shaped transparency log, a
//! coordinator that anchors its attestations in it, and N sandboxed workers
//! with their own keys, on 127.0.0.1 in one process, with state kept
//! in a directory the user names or in a temporary one, and the small
//! maintainer client that `auspex devnet …` uses to administer a running
//! devnet (add a tenant, approve an experiment, ask for its status).
//!
//! With [`DevnetConfig::stand_in_model`] the workers also serve a model
//! *stand-in* through the real inference broker (`worker.md` §7): a
//! deterministic local text generator, labelled as such everywhere, so that
//! executors using the inference client run on the devnet.
//!
//! A running devnet is described by `devnet.json` in its state directory, and
//! a copy of that file at [`pointer_path`] lets other `auspex` commands find
//! it without being told where it is. Nothing here prints.
#![deny(missing_docs)]

mod info;

pub mod admin;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use auspex_coordinator::RunningCoordinator;

pub use crate::info::{DevnetInfo, InfoError, discover, pointer_path};

/// How to start a devnet.
#[derive(Debug, Clone, Default)]
pub struct DevnetConfig {
    /// Keep state here (created if missing); `None` → a temporary directory
    /// removed when the devnet stops.
    pub state_dir: Option<PathBuf>,
    /// The coordinator's port on 127.0.0.1 (0 picks a free one).
    pub coordinator_port: u16,
    /// Approve uploaded experiments without a maintainer's action.
    pub auto_approve: bool,
    /// How many workers to start (each with its own key and workspace under
    /// `<state>/workers/`).
    pub workers: usize,
    /// How many of them misbehave (the last ones), and how.
    pub faulty_workers: usize,
    /// The misbehaviour of the faulty workers.
    pub fault: Option<auspex_worker::Fault>,
    /// Run executors without the bubblewrap sandbox (trusted code only).
    pub no_sandbox: bool,
    /// How long a worker holds a replica before it is offered to another
    /// worker; `None` keeps the coordinator's default (600 s).
    pub lease: Option<std::time::Duration>,
    /// Where to publish the pointer file ([`pointer_path`] of the user's
    /// home); `None` publishes nothing (tests).
    pub pointer: Option<PathBuf>,
    /// Give every worker the model stand-in under this model id: a
    /// labelled stand-in model file at `<state>/models/<id>/standin.gguf`
    /// (no weights) in their model store, served through the real inference
    /// broker by the deterministic stand-in generator
    /// (`auspex_worker::broker::standin`). A manifest declaring this model
    /// then runs end to end; results carry its `served_weights` and the
    /// `generation_options` used.
    pub stand_in_model: Option<String>,
    /// The Landlock shim for the workers' sandboxes
    /// (`auspex_worker::landlock`; the `auspex` binary), already probed.
    pub landlock_shim: Option<PathBuf>,
}

/// Why a devnet could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevnetError {
    /// The temporary state directory could not be created.
    #[error("cannot create a temporary state directory")]
    TempDir(#[source] std::io::Error),
    /// The coordinator did not start.
    #[error("the coordinator did not start")]
    Coordinator(#[source] auspex_coordinator::StartError),
    /// The transparency log did not start.
    #[error("the transparency log did not start")]
    Tlog(#[source] auspex_tlog::TlogError),
    /// The log's trusted root could not be written.
    #[error("cannot write the log's trusted root to {path}")]
    TrustedRoot {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: auspex_crypto::atomic::AtomicWriteError,
    },
    /// `devnet.json` (or the pointer file) could not be written.
    #[error(transparent)]
    Info(#[from] InfoError),
    /// The stand-in model could not be created.
    #[error("cannot create the stand-in model {model_id:?} under {path}")]
    StandInModel {
        /// The model id.
        model_id: String,
        /// The model store.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A running devnet. Dropping it without [`Devnet::shutdown`] stops the
/// servers with the runtime; the state directory stays (unless temporary).
#[derive(Debug)]
pub struct Devnet {
    info: DevnetInfo,
    coordinator: RunningCoordinator,
    tlog: auspex_tlog::RunningTlog,
    workers: Vec<auspex_worker::WorkerHandle>,
    pointer: Option<PathBuf>,
    _temp: Option<tempfile::TempDir>,
}

impl Devnet {
    /// Starts the devnet's services and writes `devnet.json`.
    pub async fn start(config: DevnetConfig) -> Result<Devnet, DevnetError> {
        let (state_dir, temp, ephemeral) = match &config.state_dir {
            Some(dir) => (dir.clone(), None, false),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("auspex-devnet-")
                    .tempdir()
                    .map_err(DevnetError::TempDir)?;
                (t.path().to_path_buf(), Some(t), true)
            }
        };
        // The log first: the coordinator anchors attestations in it.
        let tlog_dir = state_dir.join("tlog");
        let tlog = auspex_tlog::serve(auspex_tlog::TlogConfig::new(&tlog_dir))
            .await
            .map_err(DevnetError::Tlog)?;
        let trusted_root_path = tlog_dir.join("trusted_root.json");
        auspex_crypto::atomic::write_atomic(
            &trusted_root_path,
            tlog.trusted_root_json().as_bytes(),
            0o644,
        )
        .map_err(|source| DevnetError::TrustedRoot {
            path: trusted_root_path.clone(),
            source,
        })?;
        let coord_dir = state_dir.join("coordinator");
        let mut cc =
            auspex_coordinator::Config::new(&coord_dir).tlog_url(Some(tlog.url().to_owned()));
        cc.bind = SocketAddr::from((Ipv4Addr::LOCALHOST, config.coordinator_port));
        cc.auto_approve = config.auto_approve;
        if let Some(lease) = config.lease {
            cc.lease = lease;
        }
        let coordinator = auspex_coordinator::serve(cc)
            .await
            .map_err(DevnetError::Coordinator)?;
        let models_dir = state_dir.join("models");
        if let Some(id) = &config.stand_in_model {
            auspex_worker::broker::standin::write_standin_model(&models_dir, id).map_err(
                |source| DevnetError::StandInModel {
                    model_id: id.clone(),
                    path: models_dir.clone(),
                    source,
                },
            )?;
        }
        let mut workers = Vec::with_capacity(config.workers);
        for i in 0..config.workers {
            let dir = state_dir.join("workers").join(format!("w{i}"));
            let mut wc = auspex_worker::WorkerConfig::new(
                coordinator.url(),
                auspex_worker::KeySource::Path(dir.join("worker_key")),
                dir.join("work"),
            );
            // Loopback is cheap: poll often so that units start promptly.
            wc.poll_interval = std::time::Duration::from_millis(300);
            wc.heartbeat_interval = std::time::Duration::from_secs(10);
            if config.no_sandbox {
                wc.sandbox = auspex_worker::SandboxMode::None;
            } else if let Some(shim) = &config.landlock_shim {
                wc.sandbox = auspex_worker::SandboxMode::Bubblewrap(auspex_worker::BwrapOptions {
                    landlock_shim: Some(shim.clone()),
                    ..auspex_worker::BwrapOptions::default()
                });
            }
            if config.stand_in_model.is_some() {
                wc.models_dir = Some(models_dir.clone());
                wc.inference = Some(std::sync::Arc::new(
                    auspex_worker::broker::standin::StandIn::new(),
                ));
            }
            if i >= config.workers.saturating_sub(config.faulty_workers) {
                wc.fault = config.fault;
            }
            workers.push(auspex_worker::spawn(wc));
        }
        let info = DevnetInfo {
            coordinator_url: coordinator.url(),
            coordinator_pubkey: coordinator.state().key().public_hex().to_owned(),
            maintainer_token_path: coord_dir.join("maintainer.token"),
            tlog_url: Some(tlog.url().to_owned()),
            trusted_root_path: Some(trusted_root_path),
            state_dir: state_dir.clone(),
            ephemeral,
            auto_approve: config.auto_approve,
            pid: std::process::id(),
            workers: config.workers,
        };
        info.write(&state_dir.join("devnet.json"))?;
        if let Some(pointer) = &config.pointer {
            info.write(pointer)?;
        }
        Ok(Devnet {
            info,
            coordinator,
            tlog,
            workers,
            pointer: config.pointer,
            _temp: temp,
        })
    }

    /// What a user (or another process) needs to reach this devnet.
    pub fn info(&self) -> &DevnetInfo {
        &self.info
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.info.state_dir
    }

    /// Stops the servers, removes the pointer file if it still names this
    /// devnet, and removes the state directory if it was temporary.
    pub async fn shutdown(self) {
        for w in self.workers {
            let _ = w.shutdown().await;
        }
        self.coordinator.shutdown().await;
        let _ = self.tlog.shutdown().await;
        if let Some(pointer) = &self.pointer {
            info::remove_pointer_if_ours(pointer, self.info.pid);
        }
    }
}
