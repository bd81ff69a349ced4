//! Coordinator configuration.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// How a coordinator runs. Everything it persists lives under
/// [`Config::state_dir`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The state directory (database, coordinator key, maintainer token).
    pub state_dir: PathBuf,
    /// Where [`serve`](crate::serve) binds; `127.0.0.1:0` picks a free port.
    pub bind: SocketAddr,
    /// Approve every uploaded experiment immediately (the real service
    /// needs a maintainer's `actions/approve`; keep this off to exercise
    /// the `submitted` state and its 409s).
    pub auto_approve: bool,
    /// The replication floor every tenant gets (`resolve_replication`'s tier
    /// floor: 3 for T0, 2 for T1, 1 for T2/T3). Devnet tenants have no
    /// account and hence no tier; the default 1 honours the manifest's
    /// `replication_factor` as written.
    pub tenant_replication_floor: u32,
    /// How long a worker holds a replica before the replica is offered to
    /// another worker, or re-delivered to the same worker when no other
    /// worker could take it (`coordinator.md` §4.2: the real service
    /// re-delivers to the same worker after 600 s and never reassigns; the
    /// devnet reassigns when it can).
    pub lease: Duration,
    /// Allowed clock skew of request signatures (±300 s).
    pub signature_window_secs: i64,
    /// Capacity of the replay cache (unexpired signatures remembered).
    pub replay_capacity: usize,
    /// Base URL of a Rekor-shaped transparency log (`http://127.0.0.1:N`)
    /// where final attestations are anchored (`coordinator.md` §7, §13.8).
    /// `None` (lab mode): attestations keep the placeholders `0` /
    /// `lab-mode-no-rekor`, as the real service's no-op client does.
    pub tlog_url: Option<String>,
    /// Timeout of one anchoring request.
    pub tlog_timeout: Duration,
    /// How often the background task retries attestations the log has not
    /// taken yet (transient failures: the log down, 5xx, 408, 429).
    pub anchor_retry: Duration,
    /// Idle time after which an SSE stream sends `: ping` (15 s).
    pub sse_keepalive: Duration,
}

impl Config {
    /// Defaults for a state directory: loopback with a free port, explicit
    /// approval, floor 1, 600 s leases.
    pub fn new(state_dir: impl Into<PathBuf>) -> Config {
        Config {
            state_dir: state_dir.into(),
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            auto_approve: false,
            tenant_replication_floor: 1,
            lease: Duration::from_secs(600),
            signature_window_secs: auspex_crypto::http_sig::DEFAULT_WINDOW_SECS,
            replay_capacity: 1_000_000,
            tlog_url: None,
            tlog_timeout: Duration::from_secs(5),
            anchor_retry: Duration::from_secs(60),
            sse_keepalive: Duration::from_secs(15),
        }
    }

    /// This config anchoring final attestations in the log at `url`
    /// (`None`: lab mode, placeholders).
    pub fn tlog_url(mut self, url: Option<String>) -> Config {
        self.tlog_url = url.map(|u| u.trim_end_matches('/').to_owned());
        self
    }

    /// This config with another background anchoring retry interval.
    pub fn anchor_retry(mut self, every: Duration) -> Config {
        self.anchor_retry = every;
        self
    }

    /// This config with another SSE keepalive interval.
    pub fn sse_keepalive(mut self, every: Duration) -> Config {
        self.sse_keepalive = every;
        self
    }

    /// This config binding `bind`.
    pub fn bind(mut self, bind: SocketAddr) -> Config {
        self.bind = bind;
        self
    }

    /// This config with auto-approval on or off.
    pub fn auto_approve(mut self, on: bool) -> Config {
        self.auto_approve = on;
        self
    }

    /// This config with another lease duration.
    pub fn lease(mut self, lease: Duration) -> Config {
        self.lease = lease;
        self
    }

    /// This config with another tenant replication floor.
    pub fn tenant_replication_floor(mut self, floor: u32) -> Config {
        self.tenant_replication_floor = floor;
        self
    }

    /// `<state>/coordinator.db`.
    pub fn db_path(&self) -> PathBuf {
        self.state_dir.join("coordinator.db")
    }

    /// `<state>/coordinator_receipt_signing_key.pem` (PKCS#8, 0600).
    pub fn key_path(&self) -> PathBuf {
        self.state_dir.join("coordinator_receipt_signing_key.pem")
    }

    /// `<state>/maintainer.token` (0600): the plaintext bearer token.
    pub fn token_path(&self) -> PathBuf {
        self.state_dir.join("maintainer.token")
    }
}
