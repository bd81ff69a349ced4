//! Error and refusal types.

use std::path::PathBuf;

use crate::client::ClientError;

/// Refusal kinds the worker sends (`worker.md` §2.8; the coordinator treats
/// `runner_failed`, `sandbox_unavailable` and reasons tagged
/// `(package_unavailable)` as retryable, `coordinator.md` §4.4, §13.3).
pub mod kind {
    /// The experiment's manifest changed under a pinned experiment id.
    pub const MANIFEST_SWAP: &str = "refused_manifest_swap";
    /// A sensitive unit the operator has not accepted.
    pub const SENSITIVE: &str = "refused_sensitive";
    /// A denied tenant.
    pub const TENANT_DENY: &str = "refused_tenant_deny";
    /// A tenant missing from the allow list.
    pub const TENANT_ALLOW_LIST_MISS: &str = "refused_tenant_allow_list_miss";
    /// The executor crashed, exited non-zero, timed out, or its output was
    /// missing or malformed (also: the worker shut down mid-unit).
    pub const RUNNER_FAILED: &str = "runner_failed";
    /// The sandbox could not be set up.
    pub const SANDBOX_UNAVAILABLE: &str = "sandbox_unavailable";
    /// The package is unavailable or fails verification, or the unit needs
    /// something this worker does not have.
    pub const EXECUTOR_REFUSED: &str = "executor_refused";
}

/// Why a leased unit was not computed: sent to the coordinator as a
/// `refuse` (kind + reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {reason}")]
pub struct Refusal {
    /// One of [`kind`].
    pub kind: &'static str,
    /// Human-readable, with machine tags such as `(package_unavailable)`;
    /// at most 2048 characters on the wire.
    pub reason: String,
}

impl Refusal {
    /// A refusal of `kind`.
    pub fn new(kind: &'static str, reason: impl Into<String>) -> Refusal {
        Refusal {
            kind,
            reason: reason.into(),
        }
    }

    /// `executor_refused`.
    pub fn executor(reason: impl Into<String>) -> Refusal {
        Refusal::new(kind::EXECUTOR_REFUSED, reason)
    }

    /// `runner_failed`.
    pub fn runner(reason: impl Into<String>) -> Refusal {
        Refusal::new(kind::RUNNER_FAILED, reason)
    }

    /// `sandbox_unavailable`.
    pub fn sandbox(reason: impl Into<String>) -> Refusal {
        Refusal::new(kind::SANDBOX_UNAVAILABLE, reason)
    }

    /// The reason cut to the coordinator's 2048-character limit (keeping
    /// the end, where the stderr tail and the tags are).
    pub fn wire_reason(&self) -> String {
        let n = self.reason.chars().count();
        if n <= 2048 {
            return self.reason.clone();
        }
        let tail: String = self.reason.chars().skip(n - 2047).collect();
        format!("…{tail}")
    }
}

/// Why a worker stopped (or could not start).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The configuration cannot work.
    #[error("invalid worker configuration: {0}")]
    Config(String),
    /// The key file could not be read, created or parsed.
    #[error("worker key {path}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: auspex_crypto::keys::KeyError,
    },
    /// A state file or directory could not be read or written.
    #[error("worker state {path}: {reason}")]
    State {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Bubblewrap (or util-linux) is missing or does not work; tenant code
    /// is never run unsandboxed unless asked.
    #[error("{0}")]
    SandboxUnavailable(String),
    /// Enrolment failed for good (e.g. the key is already enrolled and the
    /// enrolment record is lost, or it is a tenant key).
    #[error("enrolment failed")]
    Enroll(#[source] ClientError),
    /// The coordinator answered with something this worker cannot use.
    #[error("coordinator")]
    Coordinator(#[source] ClientError),
    /// [`Fault::Crash`](crate::Fault::Crash): the worker "died" holding a
    /// unit.
    #[error("injected crash while holding unit {unit_id}")]
    InjectedCrash {
        /// The unit that was leased and abandoned.
        unit_id: String,
    },
}
