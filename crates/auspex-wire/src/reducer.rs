//! Reducer decision v0.1 (spec `tenant-sdk.md` §2.7;
//! `schemas/reducer_decision_v0_1.json`): the file a reducer harness writes.
//!
//! `merged` is required when the verdict is `agree` and must be absent when it
//! is `disagree`. The 0.5.5 harness nevertheless writes `"merged": null` for a
//! disagreement (Pydantic dumps every declared field), so the file it produces
//! violates its own JSON Schema. This module therefore offers two writers:
//!
//! * [`ReducerDecision::to_schema_json`] omits `merged` for `disagree` — valid
//!   against the published schema; use it for files we write.
//! * [`ReducerDecision::to_pydantic_json`] reproduces the SDK's bytes
//!   (`"merged": null`), for byte-compatibility tests and peers that compare
//!   files.
//!
//! Reading accepts both (Pydantic treats an explicit `null` like absence).

use crate::json::{self, Object, Value};
use crate::validate::{Checker, JsonPath, ViolationKind, Violations};
use crate::workunit::{self, DocumentError, fields};

/// The reducer's verdict over a unit's results.
#[derive(Debug, Clone, PartialEq)]
pub enum ReducerDecision {
    /// The results agree; `merged` is the consensus payload.
    Agree {
        /// The merged result.
        merged: Object,
    },
    /// The results disagree; nothing is merged.
    Disagree,
}

const VERDICTS: &[&str] = &["agree", "disagree"];

impl ReducerDecision {
    /// The verdict text (`agree` / `disagree`).
    pub fn verdict(&self) -> &'static str {
        match self {
            ReducerDecision::Agree { .. } => "agree",
            ReducerDecision::Disagree => "disagree",
        }
    }

    /// Validates a parsed JSON value, reporting every violation. The
    /// verdict/merged rule is checked only once the fields themselves are
    /// valid (as Pydantic's model validator), and reported at the root.
    pub fn validate_value(v: &Value) -> Result<ReducerDecision, Violations> {
        let mut c = Checker::new();
        let Some(mut o) = c.object(JsonPath::root(), v) else {
            return c.into_result(None);
        };
        let p = o.path.clone();
        if let Some(v) = c.required(&mut o, "schema_version") {
            workunit::schema_version(&mut c, &p.key("schema_version"), v);
        }
        let verdict = c
            .required(&mut o, "verdict")
            .and_then(|v| c.one_of(&p.key("verdict"), v, VERDICTS));
        let merged_raw = c.optional(&mut o, "merged");
        let merged = merged_raw.map(|v| fields::object(&mut c, &p.key("merged"), v));
        c.finish(o);
        if !c.is_clean() {
            return c.into_result(None);
        }
        let decision = match (verdict, merged) {
            (Some("agree"), Some(Some(m))) => Some(ReducerDecision::Agree { merged: m }),
            (Some("agree"), None) => {
                c.report(
                    JsonPath::root(),
                    ViolationKind::Rule("merged is required when verdict is 'agree'".into()),
                );
                None
            }
            (Some("disagree"), None) => Some(ReducerDecision::Disagree),
            (Some("disagree"), Some(_)) => {
                c.report(
                    JsonPath::root(),
                    ViolationKind::Rule("merged must be omitted when verdict is 'disagree'".into()),
                );
                None
            }
            _ => None,
        };
        c.into_result(decision)
    }

    /// Parses and validates JSON text.
    pub fn parse(bytes: &[u8]) -> Result<ReducerDecision, DocumentError> {
        Ok(ReducerDecision::validate_value(&json::parse(bytes)?)?)
    }

    /// The SDK's dump as a value: `merged` is always present (`null` for
    /// `disagree`).
    pub fn to_pydantic_value(&self) -> Value {
        let mut o = self.head();
        o.insert(
            "merged".into(),
            match self {
                ReducerDecision::Agree { merged } => Value::Object(merged.clone()),
                ReducerDecision::Disagree => Value::Null,
            },
        );
        Value::Object(o)
    }

    /// The schema-valid form as a value: `merged` only for `agree`.
    pub fn to_schema_value(&self) -> Value {
        let mut o = self.head();
        if let ReducerDecision::Agree { merged } = self {
            o.insert("merged".into(), Value::Object(merged.clone()));
        }
        Value::Object(o)
    }

    fn head(&self) -> Object {
        let mut o = Object::new();
        o.insert("schema_version".into(), workunit::SCHEMA_VERSION.into());
        o.insert("verdict".into(), self.verdict().into());
        o
    }

    /// Byte-identical to the 0.5.5 `ReducerHarness` output
    /// (`model_dump_json(indent=2)` with `indent`), including its
    /// schema-violating `"merged": null` for `disagree`.
    pub fn to_pydantic_json(&self, indent: bool) -> String {
        workunit::dump(&self.to_pydantic_value(), indent)
    }

    /// Same layout as [`Self::to_pydantic_json`] but omitting `merged` for
    /// `disagree`, so the file validates against the published JSON Schema.
    pub fn to_schema_json(&self, indent: bool) -> String {
        workunit::dump(&self.to_schema_value(), indent)
    }
}
