//! `devnet.json`: what a running devnet tells the user and other processes.

use std::path::{Path, PathBuf};

use auspex_wire::json::{self, Object, Value};

/// The description of a running devnet (`<state>/devnet.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevnetInfo {
    /// The coordinator's base URL (`http://127.0.0.1:PORT`).
    pub coordinator_url: String,
    /// The coordinator's Ed25519 public key (receipts, attestations, custody).
    pub coordinator_pubkey: String,
    /// The file holding the maintainer bearer token (0600).
    pub maintainer_token_path: PathBuf,
    /// The transparency log's base URL, when one runs.
    pub tlog_url: Option<String>,
    /// The log's Sigstore `trusted_root.json`, when one runs.
    pub trusted_root_path: Option<PathBuf>,
    /// The state directory.
    pub state_dir: PathBuf,
    /// True when the state directory is temporary (removed at shutdown).
    pub ephemeral: bool,
    /// True when uploads are approved without a maintainer.
    pub auto_approve: bool,
    /// The process running the devnet.
    pub pid: u32,
    /// How many workers the devnet started.
    pub workers: usize,
}

/// Why `devnet.json` could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InfoError {
    /// Reading failed.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a devnet description.
    #[error("{path} is not a devnet description: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Writing failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: auspex_crypto::atomic::AtomicWriteError,
    },
}

fn path_value(p: &Path) -> Value {
    Value::from(p.display().to_string())
}

impl DevnetInfo {
    /// The description as JSON.
    pub fn to_value(&self) -> Value {
        let mut o = Object::new();
        o.insert(
            "coordinator_url".into(),
            Value::from(self.coordinator_url.as_str()),
        );
        o.insert(
            "coordinator_pubkey".into(),
            Value::from(self.coordinator_pubkey.as_str()),
        );
        o.insert(
            "maintainer_token_path".into(),
            path_value(&self.maintainer_token_path),
        );
        o.insert("tlog_url".into(), Value::from(self.tlog_url.clone()));
        o.insert(
            "trusted_root_path".into(),
            self.trusted_root_path
                .as_deref()
                .map_or(Value::Null, path_value),
        );
        o.insert("state_dir".into(), path_value(&self.state_dir));
        o.insert("ephemeral".into(), Value::Bool(self.ephemeral));
        o.insert("auto_approve".into(), Value::Bool(self.auto_approve));
        o.insert("pid".into(), Value::from(u64::from(self.pid)));
        o.insert("workers".into(), Value::from(self.workers as u64));
        Value::Object(o)
    }

    /// Reads a description from JSON.
    pub fn from_value(v: &Value, path: &Path) -> Result<DevnetInfo, InfoError> {
        let invalid = |reason: &str| InfoError::Invalid {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| invalid(&format!("{k} missing or not a string")))
        };
        let opt = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let b = |k: &str| matches!(v.get(k), Some(Value::Bool(true)));
        let pid = match v.get("pid") {
            Some(Value::Int(i)) => i
                .as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .ok_or_else(|| invalid("pid out of range"))?,
            _ => return Err(invalid("pid missing")),
        };
        Ok(DevnetInfo {
            coordinator_url: s("coordinator_url")?,
            coordinator_pubkey: s("coordinator_pubkey")?,
            maintainer_token_path: PathBuf::from(s("maintainer_token_path")?),
            tlog_url: opt("tlog_url"),
            trusted_root_path: opt("trusted_root_path").map(PathBuf::from),
            state_dir: PathBuf::from(s("state_dir")?),
            ephemeral: b("ephemeral"),
            auto_approve: b("auto_approve"),
            pid,
            workers: match v.get("workers") {
                Some(Value::Int(i)) => i.as_u64().map_or(0, |n| n as usize),
                _ => 0,
            },
        })
    }

    /// Reads `path`.
    pub fn load(path: &Path) -> Result<DevnetInfo, InfoError> {
        let bytes = std::fs::read(path).map_err(|source| InfoError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let v = json::parse(&bytes).map_err(|e| InfoError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        DevnetInfo::from_value(&v, path)
    }

    /// Writes the description atomically (0600: it names the token file).
    pub fn write(&self, path: &Path) -> Result<(), InfoError> {
        if let Some(parent) = path.parent() {
            auspex_crypto::atomic::create_dir_all(parent, 0o700).map_err(|source| {
                InfoError::Write {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        }
        let mut text = json::python_indent(&self.to_value());
        text.push('\n');
        auspex_crypto::atomic::write_atomic(path, text.as_bytes(), 0o600).map_err(|source| {
            InfoError::Write {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// Reads the maintainer bearer token.
    pub fn maintainer_token(&self) -> Result<String, InfoError> {
        let text = std::fs::read_to_string(&self.maintainer_token_path).map_err(|source| {
            InfoError::Read {
                path: self.maintainer_token_path.clone(),
                source,
            }
        })?;
        token_from_file(&text).ok_or_else(|| InfoError::Invalid {
            path: self.maintainer_token_path.clone(),
            reason: "no token in the file".to_owned(),
        })
    }

    /// True while the process that started this devnet is alive (a zombie
    /// waiting to be reaped by its parent counts as stopped).
    pub fn is_alive(&self) -> bool {
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            // `pid (comm) S …`: the state letter follows the last ')'.
            Ok(stat) => !matches!(
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.trim_start().chars().next()),
                Some('Z' | 'X') | None
            ),
            Err(_) => false,
        }
    }
}

/// The token file is the real service's JSON form (`{"tokens": [{"token":
/// …}]}`), a single `{"token": …}`, or the bare token.
fn token_from_file(text: &str) -> Option<String> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        let v = json::parse_str(trimmed).ok()?;
        let entry = match v.get("tokens").and_then(Value::as_array) {
            Some(tokens) => tokens.first()?,
            None => &v,
        };
        return entry
            .get("token")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Where a running devnet publishes its description for other `auspex`
/// commands: `~/.local/state/auspex/devnet.json`.
pub fn pointer_path(home: &Path) -> PathBuf {
    home.join(".local/state/auspex/devnet.json")
}

/// The devnet described at `pointer`, if its process is still alive.
pub fn discover(pointer: &Path) -> Option<DevnetInfo> {
    let info = DevnetInfo::load(pointer).ok()?;
    info.is_alive().then_some(info)
}

pub(crate) fn remove_pointer_if_ours(pointer: &Path, pid: u32) {
    if DevnetInfo::load(pointer).is_ok_and(|i| i.pid == pid) {
        let _ = std::fs::remove_file(pointer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let info = DevnetInfo {
            coordinator_url: "http://127.0.0.1:1".into(),
            coordinator_pubkey: "ab".repeat(32),
            maintainer_token_path: "/s/coordinator/maintainer.token".into(),
            tlog_url: None,
            trusted_root_path: Some("/s/tlog/trusted_root.json".into()),
            state_dir: "/s".into(),
            ephemeral: true,
            auto_approve: false,
            pid: 42,
            workers: 3,
        };
        let back = DevnetInfo::from_value(&info.to_value(), Path::new("x")).expect("valid");
        assert_eq!(back, info);
        assert_eq!(
            token_from_file("{\"token\": \"abc\"}\n").as_deref(),
            Some("abc")
        );
        assert_eq!(token_from_file("abc\n").as_deref(), Some("abc"));
        assert_eq!(
            token_from_file("{\"tokens\": [{\"token\": \"t1\", \"login\": \"x\"}]}").as_deref(),
            Some("t1")
        );
    }
}
