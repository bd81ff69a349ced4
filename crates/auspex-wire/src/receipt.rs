//! Contribution receipt v0.1 (spec `tenant-sdk.md` §2.8, §3e;
//! `cddl/receipt_v0_1.cddl`): the typed [`Receipt`], its cbor2-canonical CBOR
//! encoding (the predicate body of an in-toto statement), the decoder, and the
//! JSON form `receipts show` prints.
//!
//! Reading follows the SDK (`cbor2.loads` + Pydantic in Python mode):
//! `worker_pubkey` as a 32-byte string or as hex text; times as tag-0 text,
//! tag-1 epoch numbers, or plain text/numbers under Pydantic's datetime rules;
//! integers in Pydantic's lax sense (bool, integral float, numeric text); text
//! members may be UTF-8 byte strings. Deliberately stricter than 0.5.5: bytes
//! after the CBOR item, duplicate map keys and integers beyond 64 bits are
//! refused, and tag-0 text must carry a UTC offset.
//!
//! The COSE_Sign1 / in-toto wrapping is decoded by `auspex-crypto`'s `cose`
//! module (`inspect_receipt` is what `receipts show` calls); the statement
//! itself by [`crate::attestation::Statement`].

pub mod cbor;

use cbor::{Cbor, CborError};

use crate::json::{self, Object, Value};
use crate::validate::{Checker, JsonPath, ViolationKind, Violations};
use crate::workunit::datetime::DateTimeError;
use crate::workunit::{DateTime, SHA256_HEX, fields};

/// The receipt `version` literal.
pub const RECEIPT_VERSION: &str = "0.1";

/// The in-toto `predicateType` of a receipt statement.
pub const RECEIPT_PREDICATE_TYPE: &str = "https://auspexai.network/receipt/v0";

/// Start and end of the attested work.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeWindow {
    /// Earliest `completed_at` of the agreeing results.
    pub start: DateTime,
    /// Latest `completed_at` of the agreeing results.
    pub end: DateTime,
}

/// How the unit's consensus was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct QuorumAgreement {
    /// The unit's replication target (> 0).
    pub replication_factor: u64,
    /// How many workers agreed (> 0).
    pub agreeing_workers: u64,
    /// `builtin_hash_agreement`, `custom:<name>`, …
    pub method: String,
}

/// A transparency-log anchor of one agreeing result.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultHashAnchor {
    /// Rekor log index (0 for the `lab-mode-no-rekor` placeholder).
    pub rekor_log_index: u64,
    /// Rekor entry UUID or the placeholder.
    pub rekor_entry_uuid: String,
    /// SHA-256 of the result, 64 lowercase hex.
    pub result_sha256: String,
}

/// A contribution receipt (version `0.1`).
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    /// The tenant.
    pub tenant_id: String,
    /// The experiment **label**.
    pub experiment_id: String,
    /// The worker's raw Ed25519 public key.
    pub worker_pubkey: [u8; 32],
    /// The units covered (at least one).
    pub work_unit_ids: Vec<String>,
    /// When the work happened.
    pub time_window: TimeWindow,
    /// Quorum metadata.
    pub quorum_agreement: QuorumAgreement,
    /// One anchor per agreeing result (at least one).
    pub result_hash_anchors: Vec<ResultHashAnchor>,
}

/// Why a receipt could not be read or written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The bytes are not one well-formed CBOR item.
    #[error("receipt is not well-formed CBOR: {0}")]
    Cbor(#[from] CborError),
    /// The text is not JSON.
    #[error("receipt is not valid JSON: {0}")]
    Json(#[from] json::ParseError),
    /// Well-formed, but not a valid receipt.
    #[error("invalid receipt: {0}")]
    Invalid(#[from] Violations),
    /// A time without UTC offset cannot be encoded (cbor2 refuses it too).
    #[error("cannot encode naive datetime time_window.{field} (no UTC offset)")]
    NaiveDatetime {
        /// `start` or `end`.
        field: &'static str,
    },
}

/// Which Pydantic input mode the value comes from.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `model_validate_json`: no byte strings, no tags.
    Json,
    /// `model_validate(cbor2.loads(...))`.
    Python,
}

/// A CBOR map being validated (the CBOR twin of `validate::ObjectCursor`).
struct MapCursor<'a> {
    path: JsonPath,
    entries: Vec<(&'a str, &'a Cbor)>,
    read: Vec<&'static str>,
}

fn key_display(k: &Cbor) -> String {
    match k {
        Cbor::Text(s) => s.clone(),
        Cbor::Unsigned(n) => n.to_string(),
        Cbor::Negative(n) => format!("-{}", u128::from(*n) + 1),
        other => format!("<{}>", other.type_name()),
    }
}

fn wrong(c: &mut Checker, path: &JsonPath, expected: &'static str, v: &Cbor) {
    c.report(
        path.clone(),
        ViolationKind::WrongType {
            expected,
            found: v.type_name(),
        },
    );
}

fn map<'a>(c: &mut Checker, path: JsonPath, v: &'a Cbor) -> Option<MapCursor<'a>> {
    let Some(raw) = v.as_map() else {
        wrong(c, &path, "map", v);
        return None;
    };
    let mut entries: Vec<(&str, &Cbor)> = Vec::with_capacity(raw.len().min(64));
    let mut seen = std::collections::HashSet::new();
    for (k, val) in raw {
        match k {
            Cbor::Text(s) => {
                if !seen.insert(s.as_str()) {
                    c.report(path.key(s), ViolationKind::Rule("duplicate map key".into()));
                } else {
                    entries.push((s, val));
                }
            }
            other => {
                c.report(
                    path.key(&key_display(other)),
                    ViolationKind::WrongType {
                        expected: "text string key",
                        found: other.type_name(),
                    },
                );
            }
        }
    }
    Some(MapCursor {
        path,
        entries,
        read: Vec::new(),
    })
}

fn required<'a>(c: &mut Checker, m: &mut MapCursor<'a>, key: &'static str) -> Option<&'a Cbor> {
    m.read.push(key);
    let v = m.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    if v.is_none() {
        c.report(m.path.key(key), ViolationKind::Missing);
    }
    v
}

fn finish(c: &mut Checker, m: MapCursor<'_>) {
    for (k, _) in &m.entries {
        if !m.read.contains(k) {
            c.report(m.path.key(k), ViolationKind::Unknown);
        }
    }
}

fn text(c: &mut Checker, path: &JsonPath, v: &Cbor, mode: Mode) -> Option<String> {
    match v {
        Cbor::Text(s) => Some(s.clone()),
        Cbor::Bytes(b) if mode == Mode::Python => match String::from_utf8(b.clone()) {
            Ok(s) => Some(s),
            Err(_) => {
                c.report(
                    path.clone(),
                    ViolationKind::Rule("byte string is not valid UTF-8".into()),
                );
                None
            }
        },
        other => {
            wrong(c, path, "string", other);
            None
        }
    }
}

/// Pydantic lax `int` over CBOR, then `min..` (no upper bound but 64 bits).
fn int(c: &mut Checker, path: &JsonPath, v: &Cbor, min: i128) -> Option<u64> {
    let (n, shown): (Option<i128>, String) = match v {
        Cbor::Unsigned(n) => (Some(i128::from(*n)), n.to_string()),
        Cbor::Negative(n) => {
            let n = -1 - i128::from(*n);
            (Some(n), n.to_string())
        }
        Cbor::Bool(b) => (Some(i128::from(*b)), b.to_string()),
        Cbor::Tag(2 | 3, inner) if inner.as_bytes().is_some() => (None, "bignum".into()),
        Cbor::Float(_) | Cbor::Text(_) => {
            // Same rules as the JSON reader.
            let jv = match v {
                Cbor::Float(f) => Value::Float(*f),
                Cbor::Text(s) => Value::String(s.clone()),
                _ => Value::Null,
            };
            let n = fields::lax_int(c, path, &jv, Some(min), None)?;
            return u64::try_from(n).ok().or_else(|| {
                c.report(
                    path.clone(),
                    ViolationKind::Range {
                        value: n.to_string(),
                        constraint: format!("{min} <= n < 2^64"),
                    },
                );
                None
            });
        }
        other => {
            wrong(c, path, "integer", other);
            return None;
        }
    };
    let n = fields::check_range(c, path, n, shown.clone(), Some(min), None)?;
    u64::try_from(n).ok().or_else(|| {
        c.report(
            path.clone(),
            ViolationKind::Range {
                value: shown,
                constraint: format!("{min} <= n < 2^64"),
            },
        );
        None
    })
}

fn datetime(c: &mut Checker, path: &JsonPath, v: &Cbor, mode: Mode) -> Option<DateTime> {
    let parsed: Result<DateTime, DateTimeError> = match (v, mode) {
        (Cbor::Tag(0, inner), Mode::Python) => match inner.as_text() {
            Some(s) => DateTime::parse_iso(s).and_then(|d| {
                if d.is_naive() {
                    Err(DateTimeError::Naive)
                } else {
                    Ok(d)
                }
            }),
            None => Err(DateTimeError::Syntax {
                reason: "tag 0 must wrap a text string",
            }),
        },
        (Cbor::Tag(1, inner), Mode::Python) => match &**inner {
            Cbor::Unsigned(_) | Cbor::Negative(_) => match inner.as_i64() {
                Some(s) => DateTime::from_unix_micros(i128::from(s) * 1_000_000),
                None => Err(DateTimeError::TimestampRange),
            },
            Cbor::Float(f) if f.is_finite() && f.abs() < 1.0e15 => {
                DateTime::from_unix_micros((f * 1_000_000.0).round() as i128)
            }
            _ => Err(DateTimeError::Syntax {
                reason: "tag 1 must wrap a finite number",
            }),
        },
        (Cbor::Text(s), _) => DateTime::parse_pydantic(s),
        (Cbor::Bytes(b), Mode::Python) => match std::str::from_utf8(b) {
            Ok(s) => DateTime::parse_pydantic(s),
            Err(_) => Err(DateTimeError::Syntax {
                reason: "byte string is not valid UTF-8",
            }),
        },
        (Cbor::Unsigned(_) | Cbor::Negative(_), _) => match v.as_i64() {
            Some(n) => DateTime::from_timestamp_i64(n),
            None => Err(DateTimeError::TimestampRange),
        },
        (Cbor::Float(f), _) => DateTime::from_timestamp_f64(*f),
        (other, _) => {
            wrong(c, path, "datetime", other);
            return None;
        }
    };
    match parsed {
        Ok(d) => Some(d),
        Err(e) => {
            c.report(
                path.clone(),
                ViolationKind::Rule(format!("input should be a valid datetime: {e}")),
            );
            None
        }
    }
}

/// Python `bytes.fromhex`: pairs of hex digits, ASCII whitespace allowed
/// between pairs.
fn from_hex_python(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len() / 2);
    let mut i = 0;
    let hex = |c: u8| char::from(c).to_digit(16);
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let hi = hex(b[i])?;
        let lo = hex(*b.get(i + 1)?)?;
        out.push((hi * 16 + lo) as u8);
        i += 2;
    }
    Some(out)
}

fn pubkey(c: &mut Checker, path: &JsonPath, v: &Cbor) -> Option<[u8; 32]> {
    let bytes = match v {
        Cbor::Bytes(b) => b.clone(),
        Cbor::Text(s) => match from_hex_python(s) {
            Some(b) => b,
            None => {
                c.report(
                    path.clone(),
                    ViolationKind::Rule("worker_pubkey text is not hexadecimal".into()),
                );
                return None;
            }
        },
        other => {
            wrong(c, path, "bytes", other);
            return None;
        }
    };
    match <[u8; 32]>::try_from(bytes.as_slice()) {
        Ok(k) => Some(k),
        Err(_) => {
            c.report(
                path.clone(),
                ViolationKind::Rule(format!(
                    "worker_pubkey must be exactly 32 bytes, got {}",
                    bytes.len()
                )),
            );
            None
        }
    }
}

fn list<'a>(c: &mut Checker, path: &JsonPath, v: &'a Cbor, min: usize) -> Option<&'a [Cbor]> {
    let Some(items) = v.as_array() else {
        wrong(c, path, "array", v);
        return None;
    };
    if items.len() < min {
        c.report(
            path.clone(),
            ViolationKind::TooFewItems {
                min,
                actual: items.len(),
            },
        );
        return None;
    }
    Some(items)
}

fn validate(v: &Cbor, mode: Mode) -> Result<Receipt, Violations> {
    let mut c = Checker::new();
    let Some(mut m) = map(&mut c, JsonPath::root(), v) else {
        return c.into_result(None);
    };
    let p = m.path.clone();
    if let Some(v) = required(&mut c, &mut m, "version") {
        match v {
            Cbor::Text(s) if s == RECEIPT_VERSION => {}
            other => c.report(
                p.key("version"),
                ViolationKind::NotAllowed {
                    found: match other {
                        Cbor::Text(s) => s.clone(),
                        o => format!("<{}>", o.type_name()),
                    },
                    allowed: &[RECEIPT_VERSION],
                },
            ),
        }
    }
    let tenant_id = required(&mut c, &mut m, "tenant_id")
        .and_then(|v| text(&mut c, &p.key("tenant_id"), v, mode));
    let experiment_id = required(&mut c, &mut m, "experiment_id")
        .and_then(|v| text(&mut c, &p.key("experiment_id"), v, mode));
    let worker_pubkey = required(&mut c, &mut m, "worker_pubkey")
        .and_then(|v| pubkey(&mut c, &p.key("worker_pubkey"), v));
    let work_unit_ids = required(&mut c, &mut m, "work_unit_ids").and_then(|v| {
        let path = p.key("work_unit_ids");
        let items = list(&mut c, &path, v, 1)?;
        let out: Vec<Option<String>> = items
            .iter()
            .enumerate()
            .map(|(i, it)| text(&mut c, &path.index(i), it, mode))
            .collect();
        out.into_iter().collect::<Option<Vec<String>>>()
    });
    let time_window = required(&mut c, &mut m, "time_window").and_then(|v| {
        let mut tw = map(&mut c, p.key("time_window"), v)?;
        let tp = tw.path.clone();
        let start = required(&mut c, &mut tw, "start")
            .and_then(|v| datetime(&mut c, &tp.key("start"), v, mode));
        let end = required(&mut c, &mut tw, "end")
            .and_then(|v| datetime(&mut c, &tp.key("end"), v, mode));
        finish(&mut c, tw);
        Some(TimeWindow {
            start: start?,
            end: end?,
        })
    });
    let quorum_agreement = required(&mut c, &mut m, "quorum_agreement").and_then(|v| {
        let mut q = map(&mut c, p.key("quorum_agreement"), v)?;
        let qp = q.path.clone();
        let rf = required(&mut c, &mut q, "replication_factor")
            .and_then(|v| int(&mut c, &qp.key("replication_factor"), v, 1));
        let aw = required(&mut c, &mut q, "agreeing_workers")
            .and_then(|v| int(&mut c, &qp.key("agreeing_workers"), v, 1));
        let method = required(&mut c, &mut q, "method")
            .and_then(|v| text(&mut c, &qp.key("method"), v, mode));
        finish(&mut c, q);
        Some(QuorumAgreement {
            replication_factor: rf?,
            agreeing_workers: aw?,
            method: method?,
        })
    });
    let anchors = required(&mut c, &mut m, "result_hash_anchors").and_then(|v| {
        let path = p.key("result_hash_anchors");
        let items = list(&mut c, &path, v, 1)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, it) in items.iter().enumerate() {
            let Some(mut a) = map(&mut c, path.index(i), it) else {
                ok = false;
                continue;
            };
            let ap = a.path.clone();
            let idx = required(&mut c, &mut a, "rekor_log_index")
                .and_then(|v| int(&mut c, &ap.key("rekor_log_index"), v, 0));
            let uuid = required(&mut c, &mut a, "rekor_entry_uuid")
                .and_then(|v| text(&mut c, &ap.key("rekor_entry_uuid"), v, mode));
            let sha = required(&mut c, &mut a, "result_sha256").and_then(|v| {
                let s = text(&mut c, &ap.key("result_sha256"), v, mode)?;
                let js = Value::String(s);
                c.matches(&ap.key("result_sha256"), &js, &SHA256_HEX)
                    .map(str::to_owned)
            });
            finish(&mut c, a);
            match (idx, uuid, sha) {
                (Some(i), Some(u), Some(s)) => out.push(ResultHashAnchor {
                    rekor_log_index: i,
                    rekor_entry_uuid: u,
                    result_sha256: s,
                }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    });
    finish(&mut c, m);
    let receipt = match (
        tenant_id,
        experiment_id,
        worker_pubkey,
        work_unit_ids,
        time_window,
        quorum_agreement,
        anchors,
    ) {
        (Some(t), Some(e), Some(k), Some(w), Some(tw), Some(q), Some(a)) => Some(Receipt {
            tenant_id: t,
            experiment_id: e,
            worker_pubkey: k,
            work_unit_ids: w,
            time_window: tw,
            quorum_agreement: q,
            result_hash_anchors: a,
        }),
        _ => None,
    };
    c.into_result(receipt)
}

impl Receipt {
    /// Validates a decoded CBOR item (Python mode: byte strings and tags as
    /// cbor2 hands them to Pydantic).
    pub fn validate_cbor(v: &Cbor) -> Result<Receipt, Violations> {
        validate(v, Mode::Python)
    }

    /// Validates the JSON form (Pydantic `model_validate_json`:
    /// `worker_pubkey` as hex text, times as text or numbers).
    pub fn validate_value(v: &Value) -> Result<Receipt, Violations> {
        validate(&Cbor::from_json(v), Mode::Json)
    }

    /// Parses and validates the JSON form.
    pub fn parse_json(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        Ok(Receipt::validate_value(&json::parse(bytes)?)?)
    }

    /// The JSON form as a value, in declaration order (`worker_pubkey` hex,
    /// datetimes in Pydantic text).
    pub fn to_value(&self) -> Value {
        let mut o = Object::new();
        o.insert("version".into(), RECEIPT_VERSION.into());
        o.insert("tenant_id".into(), self.tenant_id.clone().into());
        o.insert("experiment_id".into(), self.experiment_id.clone().into());
        o.insert(
            "worker_pubkey".into(),
            crate::hex_lower(&self.worker_pubkey).into(),
        );
        o.insert("work_unit_ids".into(), self.work_unit_ids.clone().into());
        let mut tw = Object::new();
        tw.insert("start".into(), self.time_window.start.to_string().into());
        tw.insert("end".into(), self.time_window.end.to_string().into());
        o.insert("time_window".into(), Value::Object(tw));
        let q = &self.quorum_agreement;
        let mut qo = Object::new();
        qo.insert("replication_factor".into(), q.replication_factor.into());
        qo.insert("agreeing_workers".into(), q.agreeing_workers.into());
        qo.insert("method".into(), q.method.clone().into());
        o.insert("quorum_agreement".into(), Value::Object(qo));
        let anchors: Vec<Value> = self
            .result_hash_anchors
            .iter()
            .map(|a| {
                let mut ao = Object::new();
                ao.insert("rekor_log_index".into(), a.rekor_log_index.into());
                ao.insert("rekor_entry_uuid".into(), a.rekor_entry_uuid.clone().into());
                ao.insert("result_sha256".into(), a.result_sha256.clone().into());
                Value::Object(ao)
            })
            .collect();
        o.insert("result_hash_anchors".into(), Value::Array(anchors));
        Value::Object(o)
    }

    /// `model_dump_json()` (compact) or with `indent` the exact text
    /// `receipts show` prints (before click's final newline).
    pub fn to_pydantic_json(&self, indent: bool) -> String {
        crate::workunit::dump(&self.to_value(), indent)
    }

    /// The text `receipts show` prints: [`Self::to_pydantic_json`] indented.
    pub fn to_pydantic_json_indent(&self) -> String {
        self.to_pydantic_json(true)
    }

    /// The receipt as a CBOR item (map entries in declaration order; the
    /// canonical encoder sorts them). Times become tag 0 text.
    pub fn to_cbor(&self) -> Result<Cbor, ReceiptError> {
        let t = |s: &str| Cbor::Text(s.to_owned());
        let time = |d: &DateTime, field: &'static str| {
            if d.is_naive() {
                Err(ReceiptError::NaiveDatetime { field })
            } else {
                Ok(Cbor::Tag(0, Box::new(Cbor::Text(d.to_string()))))
            }
        };
        let q = &self.quorum_agreement;
        Ok(Cbor::Map(vec![
            (t("version"), t(RECEIPT_VERSION)),
            (t("tenant_id"), t(&self.tenant_id)),
            (t("experiment_id"), t(&self.experiment_id)),
            (t("worker_pubkey"), Cbor::Bytes(self.worker_pubkey.to_vec())),
            (
                t("work_unit_ids"),
                Cbor::Array(self.work_unit_ids.iter().map(|s| t(s)).collect()),
            ),
            (
                t("time_window"),
                Cbor::Map(vec![
                    (t("start"), time(&self.time_window.start, "start")?),
                    (t("end"), time(&self.time_window.end, "end")?),
                ]),
            ),
            (
                t("quorum_agreement"),
                Cbor::Map(vec![
                    (
                        t("replication_factor"),
                        Cbor::Unsigned(q.replication_factor),
                    ),
                    (t("agreeing_workers"), Cbor::Unsigned(q.agreeing_workers)),
                    (t("method"), t(&q.method)),
                ]),
            ),
            (
                t("result_hash_anchors"),
                Cbor::Array(
                    self.result_hash_anchors
                        .iter()
                        .map(|a| {
                            Cbor::Map(vec![
                                (t("rekor_log_index"), Cbor::Unsigned(a.rekor_log_index)),
                                (t("rekor_entry_uuid"), t(&a.rekor_entry_uuid)),
                                (t("result_sha256"), t(&a.result_sha256)),
                            ])
                        })
                        .collect(),
                ),
            ),
        ]))
    }
}

/// `receipts.encode_cbor`: cbor2 `canonical=True` bytes of the receipt
/// (length-first key order, tag-0 times, `worker_pubkey` as bstr(32)).
/// Fails only for a naive time.
pub fn encode_cbor(receipt: &Receipt) -> Result<Vec<u8>, ReceiptError> {
    Ok(cbor::encode_canonical(&receipt.to_cbor()?))
}

/// `receipts.decode_cbor`: one CBOR item (a "naked" receipt), validated.
pub fn decode_cbor(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
    let item = cbor::decode(bytes)?;
    Ok(Receipt::validate_cbor(&item)?)
}
