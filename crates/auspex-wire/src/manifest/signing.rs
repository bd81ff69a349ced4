//! The Pydantic dump of a manifest: the signing input (§3.1, §3a.1, §3a.3).
//!
//! Every declared field is emitted in declaration order, absent optionals as
//! `null`, defaults as their value (`sensitive_content_flags: []`,
//! `requires_real_execution: false`, …). Which fields are declared depends on
//! the SDK whose model is reproduced: 0.5.5 knows manifest v0.1 only, 0.6.67
//! declares the v0.2–v0.7 members too (and dumps them for a v0.1 manifest).

use crate::json::{Object, Value};
use crate::validate::{Checker, JsonPath};

use super::types::*;
use super::{Manifest, SdkProfile, SigningInputError, check};

fn obj<const N: usize>(members: [(&str, Value); N]) -> Value {
    let mut o = Object::with_capacity(N);
    for (k, v) in members {
        o.insert(k.to_owned(), v);
    }
    Value::Object(o)
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn opt_s(v: Option<&String>) -> Value {
    v.map_or(Value::Null, |x| s(x))
}

fn opt_f(v: Option<f64>) -> Value {
    v.map_or(Value::Null, Value::Float)
}

fn opt_i(v: Option<&crate::json::Int>) -> Value {
    v.map_or(Value::Null, |i| Value::Int(i.clone()))
}

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().map(|x| s(x)).collect())
}

fn model(m: &Model, profile: SdkProfile) -> Value {
    let mut members = vec![
        ("id", s(&m.id)),
        ("version", s(&m.version)),
        (
            "local_weights_required",
            Value::Bool(m.local_weights_required),
        ),
        ("hf_repo", opt_s(m.hf_repo.as_ref())),
        ("hf_filename", opt_s(m.hf_filename.as_ref())),
    ];
    if profile == SdkProfile::V0_6_67 {
        members.push((
            "expected_gguf_sha256",
            opt_s(m.expected_gguf_sha256.as_ref()),
        ));
    }
    Value::Object(
        members
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

fn work_unit_source(w: &WorkUnitSource) -> Value {
    match w {
        WorkUnitSource::Static { tarball_sha256 } => {
            obj([("kind", s("static")), ("tarball_sha256", s(tarball_sha256))])
        }
        WorkUnitSource::Http { url } => obj([("kind", s("http")), ("url", s(url))]),
    }
}

fn executor(e: &Executor) -> Value {
    obj([
        ("command", strings(&e.command)),
        ("image_sha256", opt_s(e.image_sha256.as_ref())),
        ("package_sha256", opt_s(e.package_sha256.as_ref())),
    ])
}

fn reducer(r: &Reducer) -> Value {
    match r {
        Reducer::BuiltinHashAgreement | Reducer::BuiltinProcessOnly => obj([("kind", s(r.kind()))]),
        Reducer::BuiltinWithinCellTolerance { tolerance_features } => obj([
            ("kind", s(r.kind())),
            (
                "tolerance_features",
                tolerance_features.as_deref().map_or(Value::Null, strings),
            ),
        ]),
        Reducer::Custom {
            command,
            image_sha256,
        } => obj([
            ("kind", s(r.kind())),
            ("command", strings(command)),
            ("image_sha256", opt_s(image_sha256.as_ref())),
        ]),
    }
}

fn inference_determinism(d: &InferenceDeterminism) -> Value {
    obj([
        ("temperature", Value::Float(d.temperature)),
        ("seed", opt_i(d.seed.as_ref())),
        ("serving_version_pin", opt_s(d.serving_version_pin.as_ref())),
        ("hardware_class", opt_s(d.hardware_class.as_ref())),
        ("top_p", opt_f(d.top_p)),
        ("top_k", opt_i(d.top_k.as_ref())),
        ("min_p", opt_f(d.min_p)),
        ("repeat_penalty", opt_f(d.repeat_penalty)),
        ("repeat_last_n", opt_i(d.repeat_last_n.as_ref())),
        ("seed_policy", s(d.seed_policy.as_str())),
    ])
}

fn output_schema(o: &OutputSchema) -> Value {
    obj([
        ("measurement_level", s(o.measurement_level.as_str())),
        (
            "shape",
            o.shape.as_ref().map_or(Value::Null, |sh| {
                Value::Array(sh.iter().map(|i| Value::Int(i.clone())).collect())
            }),
        ),
        ("dtype", opt_s(o.dtype.as_ref())),
    ])
}

fn feature_declaration(d: &FeatureDeclaration) -> Value {
    obj([
        ("meaning", s(&d.meaning)),
        ("kind", s(d.kind.as_str())),
        ("role", s(d.role.as_str())),
        ("change_means", s(&d.change_means)),
        ("unit", opt_s(d.unit.as_ref())),
        (
            "range",
            d.range.as_ref().map_or(Value::Null, |r| {
                obj([("min", Value::Float(r.min)), ("max", opt_f(r.max))])
            }),
        ),
        (
            "categories",
            d.categories.as_deref().map_or(Value::Null, strings),
        ),
        ("algorithm", opt_s(d.algorithm.as_ref())),
        (
            "element_kind",
            d.element_kind.map_or(Value::Null, |k| s(k.as_str())),
        ),
        ("max_cardinality", opt_i(d.max_cardinality.as_ref())),
        ("invariant_to", strings(&d.invariant_to)),
        (
            "valid_when",
            d.valid_when.as_ref().map_or(Value::Null, |w| {
                obj([
                    ("field", s(&w.field)),
                    ("op", s(w.op.as_str())),
                    (
                        "value",
                        match &w.value {
                            ValidWhenValue::Float(f) => Value::Float(*f),
                            ValidWhenValue::Int(i) => Value::Int(i.clone()),
                            ValidWhenValue::Str(x) => s(x),
                        },
                    ),
                ])
            }),
        ),
        (
            "comparison",
            d.comparison.as_ref().map_or(Value::Null, |c| {
                obj([
                    ("rule", s(c.rule.as_str())),
                    ("rel", opt_f(c.rel)),
                    ("abs", opt_f(c.abs)),
                    ("min", opt_f(c.min)),
                ])
            }),
        ),
    ])
}

fn pre_registration(p: &PreRegistration) -> Value {
    obj([
        ("version", s(&p.version)),
        ("hypothesis", s(&p.hypothesis)),
        ("analysis_method", s(&p.analysis_method)),
        ("features", strings(&p.features)),
        ("timescale", s(p.timescale.as_str())),
        ("decision_rule", s(&p.decision_rule)),
        ("expected_result", s(&p.expected_result)),
        ("stopping_rule", s(&p.stopping_rule)),
        ("comparison_keys", strings(&p.comparison_keys)),
        ("min_replication", opt_i(p.min_replication.as_ref())),
    ])
}

fn config_provenance(c: &ConfigProvenance) -> Value {
    obj([
        ("profile", opt_s(c.profile.as_ref())),
        ("resolved_config_sha256", s(&c.resolved_config_sha256)),
        ("git_commit", opt_s(c.git_commit.as_ref())),
        ("git_dirty", c.git_dirty.map_or(Value::Null, Value::Bool)),
    ])
}

/// Checks that `profile`'s model accepts `m` (beyond what validation checked).
fn representable(m: &Manifest, profile: SdkProfile) -> Result<(), SigningInputError> {
    match profile {
        SdkProfile::V0_5_5 if m.schema_version != SchemaVersion::V0_1 => {
            Err(SigningInputError::UnsupportedVersion {
                profile,
                schema_version: m.schema_version,
            })
        }
        // A v0.1 manifest was validated against the 0.5.5 model; 0.6.67 adds
        // the `models[].id` constraint.
        SdkProfile::V0_6_67 if m.schema_version == SchemaVersion::V0_1 => {
            let mut c = Checker::new();
            let root = JsonPath::root();
            for (i, model) in m.models.iter().enumerate() {
                let p = root.key("models").index(i).key("id");
                check::model_id(&mut c, &p, &Value::String(model.id.clone()));
            }
            c.into_result(Some(()))
                .map_err(|violations| SigningInputError::Rejected {
                    profile,
                    violations,
                })
        }
        _ => Ok(()),
    }
}

/// The normalised model as a JSON value whose objects are in declaration order.
pub(super) fn dump(m: &Manifest, profile: SdkProfile) -> Result<Value, SigningInputError> {
    representable(m, profile)?;
    let later = profile == SdkProfile::V0_6_67;
    let mut o = Object::new();
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_owned(), v);
    };
    put("schema_version", s(m.schema_version.as_str()));
    put("tenant_id", s(&m.tenant_id));
    put("tenant_maintainer_contact", s(&m.tenant_maintainer_contact));
    put("experiment_id", s(&m.experiment_id));
    put("research_goal_paragraph", s(&m.research_goal_paragraph));
    if later {
        put(
            "research_class",
            m.research_class.map_or(Value::Null, |r| s(r.as_str())),
        );
    }
    put(
        "models",
        Value::Array(m.models.iter().map(|x| model(x, profile)).collect()),
    );
    put(
        "prompt_set_characteristics",
        s(&m.prompt_set_characteristics),
    );
    put(
        "sensitive_content_flags",
        Value::Array(
            m.sensitive_content_flags
                .iter()
                .map(|f| s(f.as_str()))
                .collect(),
        ),
    );
    put(
        "approver_attestations",
        m.approver_attestations
            .as_ref()
            .map_or(Value::Null, |list| {
                Value::Array(
                    list.iter()
                        .map(|a| {
                            obj([
                                ("approver_pubkey", s(&a.approver_pubkey)),
                                ("sig", s(&a.sig)),
                            ])
                        })
                        .collect(),
                )
            }),
    );
    put(
        "expected_duration_hours",
        Value::Float(m.expected_duration_hours),
    );
    put(
        "replication_factor",
        Value::from(u64::from(m.replication_factor)),
    );
    put("work_unit_source", work_unit_source(&m.work_unit_source));
    put("executor", executor(&m.executor));
    put("reducer", reducer(&m.reducer));
    if later {
        put(
            "requires_real_execution",
            Value::Bool(m.requires_real_execution),
        );
        put(
            "inference_determinism",
            m.inference_determinism
                .as_ref()
                .map_or(Value::Null, inference_determinism),
        );
        put(
            "output_schema",
            m.output_schema.as_ref().map_or(Value::Null, output_schema),
        );
        put(
            "feature_schema",
            m.feature_schema.as_ref().map_or(Value::Null, |fs| {
                Value::Object(
                    fs.iter()
                        .map(|(k, d)| (k.clone(), feature_declaration(d)))
                        .collect(),
                )
            }),
        );
        put(
            "pre_registration",
            m.pre_registration
                .as_ref()
                .map_or(Value::Null, pre_registration),
        );
        put(
            "config_provenance",
            m.config_provenance
                .as_ref()
                .map_or(Value::Null, config_provenance),
        );
        put(
            "capture",
            m.capture
                .map_or(Value::Null, |c| obj([("raw", Value::Bool(c.raw))])),
        );
    }
    Ok(Value::Object(o))
}
