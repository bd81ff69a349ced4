//! Work unit v0.1 (spec `tenant-sdk.md` §2.4; `schemas/workunit_v0_1.json`) and
//! the `submit_units` envelope (§4.2), plus the shared pieces of the
//! harness-file models: the Pydantic [`DateTime`], the
//! common patterns and [`DocumentError`].
//!
//! Reading follows the SDK's Pydantic model (`extra="forbid"`, lax `datetime`);
//! writing reproduces `model_dump_json()` byte for byte (declaration order,
//! raw UTF-8, `Z` datetimes).
//!
//! ```
//! use auspex_wire::workunit::WorkUnit;
//! let text = br#"{"schema_version":"0.1","unit_id":"u-1","tenant_id":"acme-lab",
//!   "experiment_id":"drift-probe-007","manifest_sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
//!   "created_at":"2025-01-02T03:04:05+00:00","payload":{"seed":1}}"#;
//! let unit = WorkUnit::parse(text).unwrap();
//! assert!(unit.to_pydantic_json(false).contains(r#""created_at":"2025-01-02T03:04:05Z""#));
//! ```

pub mod datetime;
pub(crate) mod fields;

pub use datetime::{DateTime, DateTimeError};

use crate::json::{self, Object, Value};
use crate::pattern;
use crate::validate::{Checker, JsonPath, Violations};

/// The only `schema_version` of the harness-file contracts.
pub const SCHEMA_VERSION: &str = "0.1";

pattern!(UNIT_ID = r"^[a-zA-Z0-9_-]{1,128}$");
pattern!(TENANT_ID = r"^[a-z][a-z0-9-]{2,63}$");
pattern!(EXPERIMENT_ID = r"^[a-z][a-z0-9-]{2,127}$");
pattern!(SHA256_HEX = r"^[a-f0-9]{64}$");
pattern!(BASE64 = r"^[A-Za-z0-9+/=]+$");

/// Why a JSON document could not be read as a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// Not JSON (Python `json.loads` rules).
    #[error("not valid JSON: {0}")]
    Json(#[from] json::ParseError),
    /// JSON, but not a valid instance of the contract.
    #[error("{0}")]
    Invalid(#[from] Violations),
}

/// A work unit as the executor harness receives it (`workunit.json` in the
/// unit tarball).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkUnit {
    /// `^[a-zA-Z0-9_-]{1,128}$`.
    pub unit_id: String,
    /// `^[a-z][a-z0-9-]{2,63}$`.
    pub tenant_id: String,
    /// The tenant's experiment **label**, `^[a-z][a-z0-9-]{2,127}$`.
    pub experiment_id: String,
    /// The manifest hash (§3a), 64 lowercase hex.
    pub manifest_sha256: String,
    /// When the unit was created.
    pub created_at: DateTime,
    /// The tenant-defined payload.
    pub payload: Object,
}

/// Checks `schema_version` is the literal `"0.1"`.
pub(crate) fn schema_version(c: &mut Checker, path: &JsonPath, v: &Value) {
    c.one_of(path, v, &[SCHEMA_VERSION]);
}

impl WorkUnit {
    /// Validates a parsed JSON value, reporting every violation.
    pub fn validate_value(v: &Value) -> Result<WorkUnit, Violations> {
        let mut c = Checker::new();
        let Some(mut o) = c.object(JsonPath::root(), v) else {
            return c.into_result(None);
        };
        let p = o.path.clone();
        if let Some(v) = c.required(&mut o, "schema_version") {
            schema_version(&mut c, &p.key("schema_version"), v);
        }
        let unit_id = c
            .required(&mut o, "unit_id")
            .and_then(|v| c.matches(&p.key("unit_id"), v, &UNIT_ID));
        let tenant_id = c
            .required(&mut o, "tenant_id")
            .and_then(|v| c.matches(&p.key("tenant_id"), v, &TENANT_ID));
        let experiment_id = c
            .required(&mut o, "experiment_id")
            .and_then(|v| c.matches(&p.key("experiment_id"), v, &EXPERIMENT_ID));
        let manifest_sha256 = c
            .required(&mut o, "manifest_sha256")
            .and_then(|v| c.matches(&p.key("manifest_sha256"), v, &SHA256_HEX));
        let created_at = c
            .required(&mut o, "created_at")
            .and_then(|v| fields::datetime(&mut c, &p.key("created_at"), v));
        let payload = c
            .required(&mut o, "payload")
            .and_then(|v| fields::object(&mut c, &p.key("payload"), v));
        c.finish(o);
        let unit = match (
            unit_id,
            tenant_id,
            experiment_id,
            manifest_sha256,
            created_at,
            payload,
        ) {
            (Some(u), Some(t), Some(e), Some(m), Some(cr), Some(pl)) => Some(WorkUnit {
                unit_id: u.to_owned(),
                tenant_id: t.to_owned(),
                experiment_id: e.to_owned(),
                manifest_sha256: m.to_owned(),
                created_at: cr,
                payload: pl,
            }),
            _ => None,
        };
        c.into_result(unit)
    }

    /// Parses and validates JSON text.
    pub fn parse(bytes: &[u8]) -> Result<WorkUnit, DocumentError> {
        Ok(WorkUnit::validate_value(&json::parse(bytes)?)?)
    }

    /// The Pydantic dump as a value (declaration order).
    pub fn to_value(&self) -> Value {
        let mut o = Object::new();
        o.insert("schema_version".into(), SCHEMA_VERSION.into());
        o.insert("unit_id".into(), self.unit_id.clone().into());
        o.insert("tenant_id".into(), self.tenant_id.clone().into());
        o.insert("experiment_id".into(), self.experiment_id.clone().into());
        o.insert(
            "manifest_sha256".into(),
            self.manifest_sha256.clone().into(),
        );
        o.insert("created_at".into(), self.created_at.to_string().into());
        o.insert("payload".into(), Value::Object(self.payload.clone()));
        Value::Object(o)
    }

    /// `model_dump_json()` (compact) or `model_dump_json(indent=2)` — the
    /// latter is the `workunit.json` member text of the unit tarball, without
    /// a trailing newline.
    pub fn to_pydantic_json(&self, indent: bool) -> String {
        dump(&self.to_value(), indent)
    }
}

/// Pydantic compact or indent-2 layout of a value already in declaration order.
pub(crate) fn dump(v: &Value, indent: bool) -> String {
    if indent {
        json::pydantic_indent(v)
    } else {
        json::pydantic_compact(v)
    }
}

/// One unit of a `POST …/work-units` batch (§4.2): the work unit without
/// `created_at` (the coordinator records its own).
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitUnit {
    /// The unit id.
    pub unit_id: String,
    /// The tenant id.
    pub tenant_id: String,
    /// The experiment **label** (`tenant_experiment_label`).
    pub experiment_id: String,
    /// The experiment's `manifest_hash`.
    pub manifest_sha256: String,
    /// The payload, including `_auspexai_round` when the driver tags it.
    pub payload: Object,
}

impl SubmitUnit {
    /// The envelope object in the SDK's order: `schema_version, unit_id,
    /// tenant_id, experiment_id, manifest_sha256, payload`.
    pub fn to_value(&self) -> Value {
        let mut o = Object::new();
        o.insert("schema_version".into(), SCHEMA_VERSION.into());
        o.insert("unit_id".into(), self.unit_id.clone().into());
        o.insert("tenant_id".into(), self.tenant_id.clone().into());
        o.insert("experiment_id".into(), self.experiment_id.clone().into());
        o.insert(
            "manifest_sha256".into(),
            self.manifest_sha256.clone().into(),
        );
        o.insert("payload".into(), Value::Object(self.payload.clone()));
        Value::Object(o)
    }
}
