//! The pinned trust: a Sigstore `trusted_root.json`
//! (`application/vnd.dev.sigstore.trustedroot+json;version=0.1` and later),
//! of which only `tlogs` is used:
//!
//! ```json
//! {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
//!  "tlogs": [{"baseUrl": "https://rekor.sigstore.dev",
//!             "hashAlgorithm": "SHA2_256",
//!             "publicKey": {"rawBytes": "<base64 DER SubjectPublicKeyInfo>",
//!                           "keyDetails": "PKIX_ECDSA_P256_SHA_256",
//!                           "validFor": {"start": "2021-01-12T11:53:27Z"}},
//!             "logId": {"keyId": "<base64 SHA-256 of the DER key>"}}],
//!  "certificateAuthorities": […], "ctlogs": […], "timestampAuthorities": […]}
//! ```
//!
//! `certificateAuthorities`, `ctlogs` and `timestampAuthorities` are ignored.
//! A log whose key type is not supported (RSA, P-384, …) is kept, marked
//! unusable, so that a real root with such entries still loads; a supported
//! key that does not decode is an error. `keyDetails` may be the enum name or
//! its protobuf number (5 = P-256, 7 = Ed25519). `validFor` is optional (no
//! window = always valid, as in the protobuf definition); when present its
//! `start` is required and both ends are inclusive.

use auspex_wire::json::{self, Object, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

use super::key::{KEY_DETAILS_ED25519, KEY_DETAILS_P256, KeyError, LogKey};
use super::time::{TimeError, Timestamp};

/// The media type this crate writes.
pub const MEDIA_TYPE_V01: &str = "application/vnd.dev.sigstore.trustedroot+json;version=0.1";

/// Why a trusted root cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TrustedRootError {
    /// Not JSON.
    #[error("trusted root is not JSON: {0}")]
    Json(#[from] json::ParseError),
    /// `mediaType` is absent.
    #[error("mediaType is missing (not a Sigstore trusted root)")]
    MissingMediaType,
    /// `mediaType` is not a Sigstore trusted root's.
    #[error(
        "mediaType {0:?} is not a Sigstore trusted root (application/vnd.dev.sigstore.trustedroot…)"
    )]
    MediaType(String),
    /// A member is absent or of the wrong type.
    #[error("{path} is {found}, expected {expected}")]
    Shape {
        /// The member's path (`tlogs[0].publicKey.rawBytes`).
        path: String,
        /// The type wanted.
        expected: &'static str,
        /// `absent` or the JSON type found.
        found: &'static str,
    },
    /// A base64 member does not decode.
    #[error("{0} is not base64")]
    Base64(String),
    /// A key does not decode as its declared type.
    #[error("{path}: {source}")]
    Key {
        /// The key's path.
        path: String,
        /// Why.
        source: KeyError,
    },
    /// A validity bound is not an RFC 3339 timestamp.
    #[error("{path}: {source}")]
    Time {
        /// The member's path.
        path: String,
        /// Why.
        source: TimeError,
    },
    /// A validity window ends before it starts.
    #[error("{path}: validity ends ({end}) before it starts ({start})")]
    EmptyWindow {
        /// The window's path.
        path: String,
        /// Start.
        start: Timestamp,
        /// End.
        end: Timestamp,
    },
}

/// One transparency log the root trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparencyLog {
    /// The log's URL (`https://rekor.sigstore.dev`).
    pub base_url: String,
    /// `hashAlgorithm` (`SHA2_256`), if given.
    pub hash_algorithm: Option<String>,
    /// `keyDetails` as written (or the name of its protobuf number).
    pub key_details: String,
    /// `rawBytes`: the DER SubjectPublicKeyInfo as given.
    pub spki_der: Vec<u8>,
    /// The key, when its type is supported.
    pub key: Option<LogKey>,
    /// Start of the key's validity (inclusive), if bounded.
    pub valid_from: Option<Timestamp>,
    /// End of the key's validity (inclusive), if bounded.
    pub valid_until: Option<Timestamp>,
    /// `logId.keyId`: the ID entries name the log by.
    pub log_id: Vec<u8>,
}

impl TransparencyLog {
    /// A log with a supported key and Rekor's log ID (SHA-256 of the key's
    /// DER), for roots made by tests and the devnet.
    pub fn new(
        base_url: impl Into<String>,
        key: LogKey,
        valid_from: Option<Timestamp>,
        valid_until: Option<Timestamp>,
    ) -> Result<TransparencyLog, KeyError> {
        Ok(TransparencyLog {
            base_url: base_url.into(),
            hash_algorithm: Some("SHA2_256".to_owned()),
            key_details: key.key_details().to_owned(),
            spki_der: key.spki_der()?,
            log_id: key.log_id()?.to_vec(),
            key: Some(key),
            valid_from,
            valid_until,
        })
    }

    /// The name the log signs checkpoints as: `baseUrl` without its scheme,
    /// trailing slash and port (`rekor.sigstore.dev`;
    /// `http://127.0.0.1:3000` → `127.0.0.1`), which is the hostname Rekor
    /// is configured with (`--rekor_server.hostname`) and signs under. The
    /// port is not part of it, so a log served on a changing local port
    /// keeps one identity.
    pub fn note_name(&self) -> &str {
        let u = self.base_url.as_str();
        let u = u
            .strip_prefix("https://")
            .or_else(|| u.strip_prefix("http://"))
            .unwrap_or(u);
        let u = u.trim_end_matches('/');
        if u.contains('/') {
            return u; // a path: not a bare authority, keep it whole
        }
        match u.rsplit_once(':') {
            // `host:port` or `[v6]:port`; a bare IPv6 address has more colons.
            Some((host, port))
                if !host.is_empty()
                    && !port.is_empty()
                    && port.bytes().all(|b| b.is_ascii_digit())
                    && (!host.contains(':') || (host.starts_with('[') && host.ends_with(']'))) =>
            {
                host
            }
            _ => u,
        }
    }

    /// True if `t` lies inside the key's validity window (bounds inclusive).
    pub fn valid_at(&self, t: Timestamp) -> bool {
        self.valid_from.is_none_or(|s| s <= t) && self.valid_until.is_none_or(|e| t <= e)
    }

    fn to_value(&self) -> Value {
        let mut pk = Object::new();
        pk.insert(
            "rawBytes".into(),
            Value::from(STANDARD.encode(&self.spki_der)),
        );
        pk.insert("keyDetails".into(), Value::from(self.key_details.as_str()));
        if self.valid_from.is_some() || self.valid_until.is_some() {
            let mut w = Object::new();
            if let Some(s) = self.valid_from {
                w.insert("start".into(), Value::from(s.to_string()));
            }
            if let Some(e) = self.valid_until {
                w.insert("end".into(), Value::from(e.to_string()));
            }
            pk.insert("validFor".into(), Value::Object(w));
        }
        let mut id = Object::new();
        id.insert("keyId".into(), Value::from(STANDARD.encode(&self.log_id)));
        let mut o = Object::new();
        o.insert("baseUrl".into(), Value::from(self.base_url.as_str()));
        if let Some(h) = &self.hash_algorithm {
            o.insert("hashAlgorithm".into(), Value::from(h.as_str()));
        }
        o.insert("publicKey".into(), Value::Object(pk));
        o.insert("logId".into(), Value::Object(id));
        Value::Object(o)
    }
}

/// The transparency logs of a Sigstore trusted root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRoot {
    /// `mediaType` as written.
    pub media_type: String,
    /// The logs, in file order.
    pub tlogs: Vec<TransparencyLog>,
}

impl TrustedRoot {
    /// A root trusting `tlogs` (media type version 0.1).
    pub fn new(tlogs: Vec<TransparencyLog>) -> TrustedRoot {
        TrustedRoot {
            media_type: MEDIA_TYPE_V01.to_owned(),
            tlogs,
        }
    }

    /// Parses `trusted_root.json`.
    pub fn from_json(bytes: &[u8]) -> Result<TrustedRoot, TrustedRootError> {
        let doc = json::parse(bytes)?;
        let top = obj(&doc, "the trusted root")?;
        let media_type = match top.get("mediaType") {
            Some(Value::String(m)) => m.clone(),
            Some(v) => {
                return Err(TrustedRootError::Shape {
                    path: "mediaType".into(),
                    expected: "a string",
                    found: v.type_name(),
                });
            }
            None => return Err(TrustedRootError::MissingMediaType),
        };
        if !media_type.starts_with("application/vnd.dev.sigstore.trustedroot") {
            return Err(TrustedRootError::MediaType(media_type));
        }
        let tlogs = match top.get("tlogs") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, t)| parse_tlog(t, &format!("tlogs[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(v) => {
                return Err(TrustedRootError::Shape {
                    path: "tlogs".into(),
                    expected: "an array",
                    found: v.type_name(),
                });
            }
        };
        Ok(TrustedRoot { media_type, tlogs })
    }

    /// The first log whose `logId.keyId` is `log_id`.
    pub fn find_log(&self, log_id: &[u8]) -> Option<&TransparencyLog> {
        self.tlogs.iter().find(|t| t.log_id == log_id)
    }

    /// The root as JSON (`tlogs` only, empty lists for the other members).
    pub fn to_value(&self) -> Value {
        let mut o = Object::new();
        o.insert("mediaType".into(), Value::from(self.media_type.as_str()));
        o.insert(
            "tlogs".into(),
            Value::Array(self.tlogs.iter().map(TransparencyLog::to_value).collect()),
        );
        for k in ["certificateAuthorities", "ctlogs", "timestampAuthorities"] {
            o.insert(k.into(), Value::Array(Vec::new()));
        }
        Value::Object(o)
    }

    /// [`TrustedRoot::to_value`] indented, as `trusted_root.json` files are.
    pub fn to_json(&self) -> String {
        let mut s = json::python_indent(&self.to_value());
        s.push('\n');
        s
    }
}

fn parse_tlog(v: &Value, path: &str) -> Result<TransparencyLog, TrustedRootError> {
    let t = obj(v, path)?;
    let base_url = string(t, "baseUrl", path)?.to_owned();
    let hash_algorithm = opt_string(t, "hashAlgorithm", path)?.map(str::to_owned);
    let pk_path = format!("{path}.publicKey");
    let pk = obj(member(t, "publicKey", path)?, &pk_path)?;
    let raw = string(pk, "rawBytes", &pk_path)?;
    let spki_der = STANDARD
        .decode(raw)
        .map_err(|_| TrustedRootError::Base64(format!("{pk_path}.rawBytes")))?;
    let key_details = match member(pk, "keyDetails", &pk_path)? {
        Value::String(s) => s.clone(),
        Value::Int(i) => match i.as_i64() {
            Some(5) => KEY_DETAILS_P256.to_owned(),
            Some(7) => KEY_DETAILS_ED25519.to_owned(),
            _ => format!("keyDetails #{}", i.as_str()),
        },
        other => {
            return Err(TrustedRootError::Shape {
                path: format!("{pk_path}.keyDetails"),
                expected: "a string",
                found: other.type_name(),
            });
        }
    };
    let key =
        LogKey::from_spki_der(&spki_der, &key_details).map_err(|source| TrustedRootError::Key {
            path: format!("{pk_path}.rawBytes"),
            source,
        })?;
    let (valid_from, valid_until) = match pk.get("validFor") {
        None | Some(Value::Null) => (None, None),
        Some(w) => {
            let w_path = format!("{pk_path}.validFor");
            let w = obj(w, &w_path)?;
            let start = time(string(w, "start", &w_path)?, &format!("{w_path}.start"))?;
            let end = match opt_string(w, "end", &w_path)? {
                Some(e) => Some(time(e, &format!("{w_path}.end"))?),
                None => None,
            };
            if let Some(end) = end
                && end < start
            {
                return Err(TrustedRootError::EmptyWindow {
                    path: w_path,
                    start,
                    end,
                });
            }
            (Some(start), end)
        }
    };
    let id_path = format!("{path}.logId");
    let id = obj(member(t, "logId", path)?, &id_path)?;
    let log_id = STANDARD
        .decode(string(id, "keyId", &id_path)?)
        .map_err(|_| TrustedRootError::Base64(format!("{id_path}.keyId")))?;
    Ok(TransparencyLog {
        base_url,
        hash_algorithm,
        key_details,
        spki_der,
        key,
        valid_from,
        valid_until,
        log_id,
    })
}

fn time(s: &str, path: &str) -> Result<Timestamp, TrustedRootError> {
    Timestamp::parse_rfc3339(s).map_err(|source| TrustedRootError::Time {
        path: path.to_owned(),
        source,
    })
}

fn obj<'a>(v: &'a Value, path: &str) -> Result<&'a Object, TrustedRootError> {
    v.as_object().ok_or_else(|| TrustedRootError::Shape {
        path: path.to_owned(),
        expected: "an object",
        found: v.type_name(),
    })
}

fn member<'a>(o: &'a Object, key: &str, path: &str) -> Result<&'a Value, TrustedRootError> {
    match o.get(key) {
        None | Some(Value::Null) => Err(TrustedRootError::Shape {
            path: format!("{path}.{key}"),
            expected: "present",
            found: "absent",
        }),
        Some(v) => Ok(v),
    }
}

fn string<'a>(o: &'a Object, key: &str, path: &str) -> Result<&'a str, TrustedRootError> {
    let v = member(o, key, path)?;
    v.as_str().ok_or_else(|| TrustedRootError::Shape {
        path: format!("{path}.{key}"),
        expected: "a string",
        found: v.type_name(),
    })
}

fn opt_string<'a>(
    o: &'a Object,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, TrustedRootError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(TrustedRootError::Shape {
            path: format!("{path}.{key}"),
            expected: "a string",
            found: v.type_name(),
        }),
    }
}
