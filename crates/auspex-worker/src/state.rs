//! Worker state on disk, under the work directory:
//!
//! * `enrollment.json` (or `<key>.enrollment.json`): `{coordinator URL:
//!   {worker_id, pubkey_hex, trust_tier, registered_at}}`;
//! * `pins.json`: `{exp-id: manifest_sha256}` — the manifest pin (§1.2);
//! * `results/pending/<name>.json`: signed results written *before* the
//!   upload and removed once the coordinator has them (retried otherwise);
//! * `results/submitted/<result_id>.json`: results whose receipt is awaited;
//! * `results/receipts/<result_id>.cose`: canonical receipts (COSE_Sign1);
//! * `results/no_receipt/<result_id>.json`, `results/parked/<name>.json`:
//!   terminal outcomes kept for the operator.
//!
//! Every write is atomic (`auspex_crypto::atomic`); every read tolerates a
//! corrupt or foreign file by skipping it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use auspex_wire::json::{self, Object, Value};

use crate::error::WorkerError;
use crate::jsonfmt;

fn state_err(path: &Path, reason: impl std::fmt::Display) -> WorkerError {
    WorkerError::State {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Writes a JSON value atomically (0600).
pub fn write_json(path: &Path, v: &Value) -> Result<(), WorkerError> {
    auspex_crypto::atomic::write_atomic(path, jsonfmt::compact(v).as_bytes(), 0o600)
        .map_err(|e| state_err(path, e))
}

/// Reads a JSON file of at most 8 MiB; `None` when absent or unreadable.
pub fn read_json(path: &Path) -> Option<Value> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > 8 << 20 {
        return None;
    }
    json::parse(&std::fs::read(path).ok()?).ok()
}

/// A stored enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEnrollment {
    /// `wkr-…`.
    pub worker_id: String,
    /// The key it was made with.
    pub pubkey_hex: String,
}

/// The enrolment file: one entry per coordinator URL.
#[derive(Debug)]
pub struct EnrollmentFile {
    path: PathBuf,
}

impl EnrollmentFile {
    /// The file at `path`.
    pub fn new(path: PathBuf) -> EnrollmentFile {
        EnrollmentFile { path }
    }

    /// The record for `url` made with `pubkey_hex`.
    pub fn get(&self, url: &str, pubkey_hex: &str) -> Option<StoredEnrollment> {
        let v = read_json(&self.path)?;
        let e = v.get(url)?;
        let wid = e.get("worker_id")?.as_str()?;
        let pk = e.get("pubkey_hex")?.as_str()?;
        (pk == pubkey_hex).then(|| StoredEnrollment {
            worker_id: wid.to_owned(),
            pubkey_hex: pk.to_owned(),
        })
    }

    /// Stores the record for `url`.
    pub fn put(
        &self,
        url: &str,
        e: &StoredEnrollment,
        trust_tier: i64,
        registered_at: &str,
    ) -> Result<(), WorkerError> {
        let mut all = match read_json(&self.path) {
            Some(Value::Object(o)) => o,
            _ => Object::new(),
        };
        let mut rec = Object::new();
        rec.insert("worker_id".into(), Value::from(e.worker_id.as_str()));
        rec.insert("pubkey_hex".into(), Value::from(e.pubkey_hex.as_str()));
        rec.insert("trust_tier".into(), Value::from(trust_tier));
        rec.insert("registered_at".into(), Value::from(registered_at));
        all.insert(url.to_owned(), Value::Object(rec));
        write_json(&self.path, &Value::Object(all))
    }
}

/// Manifest pins: the first manifest hash seen per coordinator experiment.
#[derive(Debug)]
pub struct Pins {
    path: PathBuf,
    map: Mutex<BTreeMap<String, String>>,
}

/// The pin check's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    /// First sighting (now pinned) or the same hash.
    Ok,
    /// The experiment was pinned to another manifest.
    Swapped {
        /// The pinned hash.
        pinned: String,
    },
}

impl Pins {
    /// Loads `path` (missing → empty).
    pub fn load(path: PathBuf) -> Pins {
        let map = match read_json(&path) {
            Some(Value::Object(o)) => o
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
                .collect(),
            _ => BTreeMap::new(),
        };
        Pins {
            path,
            map: Mutex::new(map),
        }
    }

    /// Pins on first sight, compares afterwards (persisted on change).
    pub fn check(
        &self,
        experiment_id: &str,
        manifest_sha256: &str,
    ) -> Result<PinCheck, WorkerError> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(experiment_id) {
            Some(p) if p == manifest_sha256 => Ok(PinCheck::Ok),
            Some(p) => Ok(PinCheck::Swapped { pinned: p.clone() }),
            None => {
                map.insert(experiment_id.to_owned(), manifest_sha256.to_owned());
                let o: Object = map
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect();
                write_json(&self.path, &Value::Object(o))?;
                Ok(PinCheck::Ok)
            }
        }
    }
}

/// A signed result awaiting acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The file name stem.
    pub name: String,
    /// The unit.
    pub unit_id: String,
    /// The body to (re-)send.
    pub body: Vec<u8>,
    /// Attempts so far.
    pub attempts: u64,
    /// The semantic hash (for the stats).
    pub semantic_hash: String,
}

/// The `results/` tree.
#[derive(Debug)]
pub struct Results {
    root: PathBuf,
}

fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(160)
        .collect()
}

impl Results {
    /// `<work_dir>/results`, created with its sub-directories.
    pub fn open(root: PathBuf) -> Result<Results, WorkerError> {
        for sub in ["pending", "submitted", "receipts", "no_receipt", "parked"] {
            let d = root.join(sub);
            auspex_crypto::atomic::create_dir_all(&d, 0o700).map_err(|e| state_err(&d, e))?;
        }
        Ok(Results { root })
    }

    fn pending_path(&self, name: &str) -> PathBuf {
        self.root.join("pending").join(format!("{name}.json"))
    }

    /// Records a result before its upload.
    pub fn add_pending(&self, p: &Pending) -> Result<(), WorkerError> {
        let mut o = Object::new();
        o.insert("unit_id".into(), Value::from(p.unit_id.as_str()));
        o.insert(
            "body".into(),
            Value::from(String::from_utf8_lossy(&p.body).into_owned()),
        );
        o.insert("attempts".into(), Value::from(p.attempts));
        o.insert(
            "semantic_hash".into(),
            Value::from(p.semantic_hash.as_str()),
        );
        write_json(&self.pending_path(&p.name), &Value::Object(o))
    }

    /// A name for a new pending record.
    pub fn pending_name(unit_id: &str, assignment_id: Option<&str>) -> String {
        safe_name(&format!("{}-{unit_id}", assignment_id.unwrap_or("none")))
    }

    /// Up to `n` pending records, oldest file name first.
    pub fn pending(&self, n: usize) -> Vec<Pending> {
        let Ok(rd) = std::fs::read_dir(self.root.join("pending")) else {
            return Vec::new();
        };
        let mut names: Vec<(std::time::SystemTime, String)> = rd
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".json")?.to_owned();
                let t = e.metadata().ok()?.modified().ok()?;
                Some((t, stem))
            })
            .collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|(_, name)| {
                let v = read_json(&self.pending_path(&name))?;
                Some(Pending {
                    unit_id: v.get("unit_id")?.as_str()?.to_owned(),
                    body: v.get("body")?.as_str()?.as_bytes().to_vec(),
                    attempts: match v.get("attempts") {
                        Some(Value::Int(i)) => i.as_u64().unwrap_or(0),
                        _ => 0,
                    },
                    semantic_hash: v
                        .get("semantic_hash")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    name,
                })
            })
            .take(n)
            .collect()
    }

    /// The upload succeeded: drop the pending record, await the receipt.
    pub fn submitted(&self, name: &str, unit_id: &str, result_id: &str) -> Result<(), WorkerError> {
        let mut o = Object::new();
        o.insert("unit_id".into(), Value::from(unit_id));
        o.insert("result_id".into(), Value::from(result_id));
        write_json(
            &self
                .root
                .join("submitted")
                .join(format!("{}.json", safe_name(result_id))),
            &Value::Object(o),
        )?;
        let _ = std::fs::remove_file(self.pending_path(name));
        Ok(())
    }

    /// The upload failed for good: keep it for the operator.
    pub fn park(&self, name: &str, why: &str) {
        let from = self.pending_path(name);
        if let Some(Value::Object(mut o)) = read_json(&from) {
            o.insert("parked_because".into(), Value::from(why));
            let _ = write_json(
                &self.root.join("parked").join(format!("{name}.json")),
                &Value::Object(o),
            );
        }
        let _ = std::fs::remove_file(from);
    }

    /// Up to `n` results awaiting a receipt: `(unit_id, result_id)`.
    pub fn awaiting_receipt(&self, n: usize) -> Vec<(String, String)> {
        let Ok(rd) = std::fs::read_dir(self.root.join("submitted")) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|p| {
                let v = read_json(&p)?;
                Some((
                    v.get("unit_id")?.as_str()?.to_owned(),
                    v.get("result_id")?.as_str()?.to_owned(),
                ))
            })
            .take(n)
            .collect()
    }

    /// Stores a canonical receipt; returns its path.
    pub fn receipt(&self, result_id: &str, cose: &[u8]) -> Result<PathBuf, WorkerError> {
        let path = self
            .root
            .join("receipts")
            .join(format!("{}.cose", safe_name(result_id)));
        auspex_crypto::atomic::write_atomic(&path, cose, 0o600).map_err(|e| state_err(&path, e))?;
        let _ = std::fs::remove_file(
            self.root
                .join("submitted")
                .join(format!("{}.json", safe_name(result_id))),
        );
        Ok(path)
    }

    /// The coordinator will never issue one (410).
    pub fn no_receipt(&self, result_id: &str, reason: &str) {
        let name = format!("{}.json", safe_name(result_id));
        let mut o = Object::new();
        o.insert("result_id".into(), Value::from(result_id));
        o.insert("reason".into(), Value::from(reason));
        let _ = write_json(&self.root.join("no_receipt").join(&name), &Value::Object(o));
        let _ = std::fs::remove_file(self.root.join("submitted").join(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_survive_a_restart_and_catch_a_swap() {
        let dir = tempfile::tempdir().expect("test step");
        let path = dir.path().join("pins.json");
        let pins = Pins::load(path.clone());
        assert_eq!(pins.check("exp-1", "aa").expect("io"), PinCheck::Ok);
        assert_eq!(pins.check("exp-1", "aa").expect("io"), PinCheck::Ok);
        let again = Pins::load(path);
        assert_eq!(
            again.check("exp-1", "bb").expect("io"),
            PinCheck::Swapped {
                pinned: "aa".into()
            }
        );
        assert_eq!(again.check("exp-2", "bb").expect("io"), PinCheck::Ok);
    }

    #[test]
    fn pending_results_round_trip_and_park() {
        let dir = tempfile::tempdir().expect("test step");
        let r = Results::open(dir.path().join("results")).expect("open");
        let name = Results::pending_name("u/1", Some("asg-1"));
        assert_eq!(name, "asg-1-u_1");
        let p = Pending {
            name: name.clone(),
            unit_id: "u1".into(),
            body: br#"{"unit_id":"u1"}"#.to_vec(),
            attempts: 2,
            semantic_hash: "ab".into(),
        };
        r.add_pending(&p).expect("write");
        assert_eq!(r.pending(5), vec![p]);
        r.submitted(&name, "u1", "res-1").expect("write");
        assert!(r.pending(5).is_empty());
        assert_eq!(
            r.awaiting_receipt(5),
            vec![("u1".to_owned(), "res-1".to_owned())]
        );
        r.receipt("res-1", b"cose").expect("write");
        assert!(r.awaiting_receipt(5).is_empty());
        let enr = EnrollmentFile::new(dir.path().join("e.json"));
        let rec = StoredEnrollment {
            worker_id: "wkr-1".into(),
            pubkey_hex: "ab".into(),
        };
        enr.put("http://a", &rec, 0, "t").expect("write");
        assert_eq!(enr.get("http://a", "ab"), Some(rec));
        assert_eq!(enr.get("http://a", "cd"), None);
        assert_eq!(enr.get("http://b", "ab"), None);
    }
}
