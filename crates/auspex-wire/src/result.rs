//! Result v0.1 (spec `tenant-sdk.md` §2.6; `schemas/result_v0_1.json`): the
//! `result_*.json` files a reducer harness reads. `worker_signature` is only
//! carried here; its actual signing input is §3h, not this envelope.

use crate::json::{self, Object, Value};
use crate::validate::{Checker, JsonPath, Violations};
use crate::workunit::{self, BASE64, DateTime, DocumentError, SHA256_HEX, UNIT_ID, fields};

/// One worker's signed result for a unit.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkResult {
    /// `^[a-zA-Z0-9_-]{1,128}$`.
    pub unit_id: String,
    /// The worker's Ed25519 public key, 64 lowercase hex.
    pub worker_pubkey: String,
    /// When the work finished.
    pub completed_at: DateTime,
    /// Tenant-defined work status, −255..=255.
    pub exit_code: i32,
    /// The result payload.
    pub payload: Object,
    /// Base64 Ed25519 signature (`^[A-Za-z0-9+/=]+$`), not checked here.
    pub worker_signature: String,
}

impl WorkResult {
    /// Validates a parsed JSON value, reporting every violation.
    pub fn validate_value(v: &Value) -> Result<WorkResult, Violations> {
        let mut c = Checker::new();
        let Some(mut o) = c.object(JsonPath::root(), v) else {
            return c.into_result(None);
        };
        let p = o.path.clone();
        if let Some(v) = c.required(&mut o, "schema_version") {
            workunit::schema_version(&mut c, &p.key("schema_version"), v);
        }
        let unit_id = c
            .required(&mut o, "unit_id")
            .and_then(|v| c.matches(&p.key("unit_id"), v, &UNIT_ID));
        let worker_pubkey = c
            .required(&mut o, "worker_pubkey")
            .and_then(|v| c.matches(&p.key("worker_pubkey"), v, &SHA256_HEX));
        let completed_at = c
            .required(&mut o, "completed_at")
            .and_then(|v| fields::datetime(&mut c, &p.key("completed_at"), v));
        let exit_code = c
            .required(&mut o, "exit_code")
            .and_then(|v| fields::lax_int(&mut c, &p.key("exit_code"), v, Some(-255), Some(255)));
        let payload = c
            .required(&mut o, "payload")
            .and_then(|v| fields::object(&mut c, &p.key("payload"), v));
        let worker_signature = c
            .required(&mut o, "worker_signature")
            .and_then(|v| c.matches(&p.key("worker_signature"), v, &BASE64));
        c.finish(o);
        let out = match (
            unit_id,
            worker_pubkey,
            completed_at,
            exit_code,
            payload,
            worker_signature,
        ) {
            (Some(u), Some(k), Some(t), Some(e), Some(pl), Some(s)) => Some(WorkResult {
                unit_id: u.to_owned(),
                worker_pubkey: k.to_owned(),
                completed_at: t,
                exit_code: e as i32,
                payload: pl,
                worker_signature: s.to_owned(),
            }),
            _ => None,
        };
        c.into_result(out)
    }

    /// Parses and validates JSON text.
    pub fn parse(bytes: &[u8]) -> Result<WorkResult, DocumentError> {
        Ok(WorkResult::validate_value(&json::parse(bytes)?)?)
    }

    /// The Pydantic dump as a value (declaration order).
    pub fn to_value(&self) -> Value {
        let mut o = Object::new();
        o.insert("schema_version".into(), workunit::SCHEMA_VERSION.into());
        o.insert("unit_id".into(), self.unit_id.clone().into());
        o.insert("worker_pubkey".into(), self.worker_pubkey.clone().into());
        o.insert("completed_at".into(), self.completed_at.to_string().into());
        o.insert("exit_code".into(), i64::from(self.exit_code).into());
        o.insert("payload".into(), Value::Object(self.payload.clone()));
        o.insert(
            "worker_signature".into(),
            self.worker_signature.clone().into(),
        );
        Value::Object(o)
    }

    /// `model_dump_json()` or `model_dump_json(indent=2)`.
    pub fn to_pydantic_json(&self, indent: bool) -> String {
        workunit::dump(&self.to_value(), indent)
    }
}
