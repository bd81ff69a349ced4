//! The model store (`worker.md` §1.1, §7.2): `<store>/<model_id>/` holding
//! exactly one `*.gguf` when the model is served. The served file's SHA-256
//! (`gguf_sha256`) is what the worker attests as `served_weights` — always
//! computed by the worker itself, never taken from the executor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// A model ready to be brokered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedModel {
    /// The store, manifest and routing id.
    pub model_id: String,
    /// The backend-side name, `auspex-<model_id>` (`info`'s
    /// `backend_handle`).
    pub handle: String,
    /// The served GGUF file.
    pub gguf_path: PathBuf,
    /// Its lowercase hex SHA-256.
    pub gguf_sha256: String,
    /// Its size in bytes.
    pub size_bytes: u64,
}

/// Why a model cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// `<store>/<model_id>/` is missing or not a directory.
    #[error("model {model_id:?} is not in the model store {store}")]
    Missing {
        /// The model.
        model_id: String,
        /// The store.
        store: PathBuf,
    },
    /// The directory does not hold exactly one `*.gguf` file.
    #[error("{dir} must hold exactly one *.gguf file, found {found}")]
    NotOneGguf {
        /// The model directory.
        dir: PathBuf,
        /// How many it holds.
        found: usize,
    },
    /// The file could not be read.
    #[error("{path}: {reason}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The `*.gguf` regular files (symbolic links followed) directly in `dir`,
/// sorted.
pub fn gguf_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let io = |e: std::io::Error| ModelError::Io {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "gguf")
                && std::fs::metadata(p).is_ok_and(|m| m.is_file())
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Lowercase hex SHA-256 of `gguf`, a file directly in `dir`, streamed.
///
/// `package_digest` streams every regular file of the directory through
/// SHA-256 and reports each file's hex digest; a model directory normally
/// holds the GGUF alone.
pub fn gguf_sha256(dir: &Path, gguf: &Path) -> Result<String, ModelError> {
    let io = |reason: String| ModelError::Io {
        path: gguf.to_path_buf(),
        reason,
    };
    let name = gguf
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io("the file name is not UTF-8".into()))?;
    let digest = auspex_wire::package::package_digest(dir).map_err(|e| io(e.to_string()))?;
    let prefix = format!("{name}\0");
    digest
        .lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::to_owned)
        .ok_or_else(|| io("file vanished while hashing".into()))
}

type CacheKey = (PathBuf, u64, Option<SystemTime>);

/// A model store with a digest cache (a GGUF is hashed again only when its
/// size or modification time changes).
#[derive(Debug)]
pub struct ModelStore {
    dir: PathBuf,
    digests: Mutex<HashMap<PathBuf, (CacheKey, String)>>,
}

impl ModelStore {
    /// The store at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> ModelStore {
        ModelStore {
            dir: dir.into(),
            digests: Mutex::new(HashMap::new()),
        }
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<store>/<model_id>` when it is a directory. `model_id` must be a
    /// single path segment (the package verifier checks it).
    pub fn model_dir(&self, model_id: &str) -> Option<PathBuf> {
        let single = !model_id.is_empty()
            && model_id != "."
            && model_id != ".."
            && !model_id.contains('/')
            && !model_id.contains('\0');
        let d = self.dir.join(model_id);
        (single && d.is_dir()).then_some(d)
    }

    /// Resolves `model_id` to its one GGUF and that file's digest (blocking:
    /// a large file takes a while to hash the first time).
    pub fn serve(&self, model_id: &str) -> Result<ServedModel, ModelError> {
        let dir = self
            .model_dir(model_id)
            .ok_or_else(|| ModelError::Missing {
                model_id: model_id.to_owned(),
                store: self.dir.clone(),
            })?;
        let files = gguf_files(&dir)?;
        let [gguf] = files.as_slice() else {
            return Err(ModelError::NotOneGguf {
                dir,
                found: files.len(),
            });
        };
        let meta = std::fs::metadata(gguf).map_err(|e| ModelError::Io {
            path: gguf.clone(),
            reason: e.to_string(),
        })?;
        let key: CacheKey = (gguf.clone(), meta.len(), meta.modified().ok());
        let cached = self
            .digests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(gguf)
            .filter(|(k, _)| *k == key)
            .map(|(_, d)| d.clone());
        let sha = match cached {
            Some(d) => d,
            None => {
                let d = gguf_sha256(&dir, gguf)?;
                self.digests
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(gguf.clone(), (key, d.clone()));
                d
            }
        };
        Ok(ServedModel {
            model_id: model_id.to_owned(),
            handle: format!("auspex-{model_id}"),
            gguf_path: gguf.clone(),
            gguf_sha256: sha,
            size_bytes: meta.len(),
        })
    }

    /// `{model_id: bytes}` of the store's models (the heartbeat's
    /// `model_sizes`): the total size of each model directory's GGUF files.
    pub fn sizes(&self) -> Vec<(String, u64)> {
        crate::caps::model_ids(Some(&self.dir))
            .into_iter()
            .filter_map(|id| {
                let files = gguf_files(&self.dir.join(&id)).ok()?;
                let total = files
                    .iter()
                    .filter_map(|f| std::fs::metadata(f).ok())
                    .map(|m| m.len())
                    .sum();
                Some((id, total))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_gguf_is_served_with_its_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ModelStore::new(dir.path());
        assert!(matches!(
            store.serve("tiny"),
            Err(ModelError::Missing { .. })
        ));
        let m = dir.path().join("tiny");
        std::fs::create_dir_all(&m).expect("mkdir");
        std::fs::write(m.join("README"), b"not weights").expect("write");
        assert!(matches!(
            store.serve("tiny"),
            Err(ModelError::NotOneGguf { found: 0, .. })
        ));
        std::fs::write(m.join("w.gguf"), b"hello").expect("write");
        let served = store.serve("tiny").expect("served");
        assert_eq!(
            served.gguf_sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(served.handle, "auspex-tiny");
        assert_eq!(served.size_bytes, 5);
        assert_eq!(store.sizes(), vec![("tiny".to_owned(), 5)]);
        // Changed contents (and size) are hashed again.
        std::fs::write(m.join("w.gguf"), b"hello!").expect("write");
        assert_eq!(
            store.serve("tiny").expect("served").gguf_sha256,
            auspex_wire::sha256_hex(b"hello!")
        );
        std::fs::write(m.join("x.gguf"), b"two").expect("write");
        assert!(matches!(
            store.serve("tiny"),
            Err(ModelError::NotOneGguf { found: 2, .. })
        ));
        assert!(store.model_dir("..").is_none());
    }
}
