//! Executor output v0.1 (spec `tenant-sdk.md` §2.5;
//! `schemas/executor_output_v0_1.json`): the file an executor harness writes
//! for the worker, `model_dump_json(indent=2)` without a trailing newline.

use crate::json::{self, Object, Value};
use crate::validate::{Checker, JsonPath, Violations};
use crate::workunit::{self, DateTime, DocumentError, UNIT_ID, fields};

/// The executor's report for one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorOutput {
    /// `^[a-zA-Z0-9_-]{1,128}$`.
    pub unit_id: String,
    /// When the work finished.
    pub completed_at: DateTime,
    /// Tenant-defined *work* status, −255..=255 (not the process exit code).
    pub exit_code: i32,
    /// The result payload.
    pub payload: Object,
}

impl ExecutorOutput {
    /// Validates a parsed JSON value, reporting every violation.
    pub fn validate_value(v: &Value) -> Result<ExecutorOutput, Violations> {
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
        let completed_at = c
            .required(&mut o, "completed_at")
            .and_then(|v| fields::datetime(&mut c, &p.key("completed_at"), v));
        let exit_code = c
            .required(&mut o, "exit_code")
            .and_then(|v| fields::lax_int(&mut c, &p.key("exit_code"), v, Some(-255), Some(255)));
        let payload = c
            .required(&mut o, "payload")
            .and_then(|v| fields::object(&mut c, &p.key("payload"), v));
        c.finish(o);
        let out = match (unit_id, completed_at, exit_code, payload) {
            (Some(u), Some(t), Some(e), Some(pl)) => Some(ExecutorOutput {
                unit_id: u.to_owned(),
                completed_at: t,
                exit_code: e as i32,
                payload: pl,
            }),
            _ => None,
        };
        c.into_result(out)
    }

    /// Parses and validates JSON text.
    pub fn parse(bytes: &[u8]) -> Result<ExecutorOutput, DocumentError> {
        Ok(ExecutorOutput::validate_value(&json::parse(bytes)?)?)
    }

    /// The Pydantic dump as a value (declaration order).
    pub fn to_value(&self) -> Value {
        let mut o = Object::new();
        o.insert("schema_version".into(), workunit::SCHEMA_VERSION.into());
        o.insert("unit_id".into(), self.unit_id.clone().into());
        o.insert("completed_at".into(), self.completed_at.to_string().into());
        o.insert("exit_code".into(), i64::from(self.exit_code).into());
        o.insert("payload".into(), Value::Object(self.payload.clone()));
        Value::Object(o)
    }

    /// `model_dump_json()` or, with `indent`, the exact file text the
    /// `ExecutorHarness` writes (no trailing newline).
    pub fn to_pydantic_json(&self, indent: bool) -> String {
        workunit::dump(&self.to_value(), indent)
    }
}
