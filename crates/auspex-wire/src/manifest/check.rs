//! Validation of a parsed manifest against the official Pydantic models:
//! auspexai-tenant 0.5.5 for `schema_version` `"0.1"`, 0.6.67 for `"0.2"` to
//! `"0.7"` (and, to report everything else, for a missing or unknown version).
//!
//! Field checks follow Pydantic: unknown members are refused at every level,
//! absent optionals become `None`, an explicit `null` is accepted only where the
//! model says `X | None`, string lengths count code points, patterns use the
//! `regex` crate. Lax coercions are narrowed as the spec recommends: numbers
//! accept JSON integers and floats (integers widen to `f64`, integral floats
//! narrow to integers within ±2⁶³), nothing accepts booleans for numbers or
//! strings for numbers/booleans, and NaN/±Infinity are refused everywhere.
//!
//! Model-level rules (`@model_validator`) are evaluated whenever the members
//! they read are valid, and every failing rule is reported (Pydantic stops at
//! the first failing rule and skips them all when any field is invalid).
//! Rule messages are the SDK's, without Pydantic's `Value error, ` prefix;
//! manifest-wide rules are reported at `(root)` as Pydantic does.

use crate::json::{self, Int, Value};
use crate::validate::{Checker, JsonPath, ObjectCursor, Pattern, ViolationKind, Violations};

use super::email;
use super::pyrepr;
use super::types::*;
use super::{Manifest, SdkProfile};

crate::pattern!(TENANT_ID = "^[a-z][a-z0-9-]{2,63}$");
crate::pattern!(EXPERIMENT_ID = "^[a-z][a-z0-9-]{2,127}$");
crate::pattern!(MODEL_ID = "^[A-Za-z0-9][A-Za-z0-9._:-]*$");
crate::pattern!(APPROVER_PUBKEY = "^ed25519:[A-Za-z0-9+/=]+$");
crate::pattern!(BASE64 = "^[A-Za-z0-9+/=]+$");
crate::pattern!(SHA256_HEX = "^[a-f0-9]{64}$");
crate::pattern!(HTTPS_URL = "^https://");
crate::pattern!(GIT_COMMIT = "^[a-f0-9]{7,40}$");

/// Longest `models[].id` the 0.6.67 model accepts.
pub(super) const MODEL_ID_MAX_LEN: usize = 128;

/// Top-level members that only the 0.6.67 model declares (manifest v0.2+).
const LATER_MEMBERS: &[&str] = &[
    "research_class",
    "requires_real_execution",
    "inference_determinism",
    "output_schema",
    "feature_schema",
    "pre_registration",
    "config_provenance",
    "capture",
];

const APPROVER_RULE: &str = "approver_attestations is required when sensitive_content_flags is non-empty (Principles §5.12 research ethics)";

// ---------------------------------------------------------------------------
// Member access
// ---------------------------------------------------------------------------

/// A required member with its path.
fn req<'a>(
    c: &mut Checker,
    o: &mut ObjectCursor<'a>,
    key: &'static str,
) -> Option<(JsonPath, &'a Value)> {
    let v = c.required(o, key)?;
    Some((o.path_of(key), v))
}

/// An `X | None = None` member: `None` when absent or `null`.
fn opt<'a>(
    c: &mut Checker,
    o: &mut ObjectCursor<'a>,
    key: &'static str,
) -> Option<(JsonPath, &'a Value)> {
    let v = c.optional(o, key)?;
    Some((o.path_of(key), v))
}

/// A member with a non-`None` default: `None` when absent; an explicit `null`
/// is handed to the type check (and refused there).
fn dflt<'a>(o: &mut ObjectCursor<'a>, key: &'static str) -> Option<(JsonPath, &'a Value)> {
    if !o.has(key) {
        return None;
    }
    let v = o.members.get(key)?;
    Some((o.path_of(key), v))
}

/// Runs `check` on an optional member. Outer `None`: invalid; inner `None`:
/// absent (or `null`).
fn optional<'a, T>(
    c: &mut Checker,
    o: &mut ObjectCursor<'a>,
    key: &'static str,
    check: impl FnOnce(&mut Checker, &JsonPath, &'a Value) -> Option<T>,
) -> Option<Option<T>> {
    match opt(c, o, key) {
        None => Some(None),
        Some((p, v)) => check(c, &p, v).map(Some),
    }
}

/// Runs `check` on a member with a default.
fn defaulted<'a, T>(
    o: &mut ObjectCursor<'a>,
    c: &mut Checker,
    key: &'static str,
    default: T,
    check: impl FnOnce(&mut Checker, &JsonPath, &'a Value) -> Option<T>,
) -> Option<T> {
    match dflt(o, key) {
        None => Some(default),
        Some((p, v)) => check(c, &p, v),
    }
}

/// Runs `check` on a required member.
fn required<'a, T>(
    c: &mut Checker,
    o: &mut ObjectCursor<'a>,
    key: &'static str,
    check: impl FnOnce(&mut Checker, &JsonPath, &'a Value) -> Option<T>,
) -> Option<T> {
    let (p, v) = req(c, o, key)?;
    check(c, &p, v)
}

// ---------------------------------------------------------------------------
// Scalar checks
// ---------------------------------------------------------------------------

fn string(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<String> {
    c.string(p, v).map(str::to_owned)
}

fn string_len(
    min: usize,
    max: usize,
) -> impl Fn(&mut Checker, &JsonPath, &Value) -> Option<String> {
    move |c, p, v| c.string_len(p, v, min, max).map(str::to_owned)
}

/// A string of at least `min` code points (no maximum).
fn string_min(min: usize) -> impl Fn(&mut Checker, &JsonPath, &Value) -> Option<String> {
    move |c, p, v| {
        let s = c.string(p, v)?;
        let n = s.chars().count();
        if n < min {
            c.report(
                p.clone(),
                ViolationKind::Rule(format!(
                    "string length {n} is below the minimum of {min} character{}",
                    if min == 1 { "" } else { "s" }
                )),
            );
            return None;
        }
        Some(s.to_owned())
    }
}

fn pattern(pat: &'static Pattern) -> impl Fn(&mut Checker, &JsonPath, &Value) -> Option<String> {
    move |c, p, v| c.matches(p, v, pat).map(str::to_owned)
}

fn boolean(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<bool> {
    c.boolean(p, v)
}

fn enumerated<E>(
    allowed: &'static [&'static str],
    parse: fn(&str) -> Option<E>,
) -> impl Fn(&mut Checker, &JsonPath, &Value) -> Option<E> {
    move |c, p, v| c.one_of(p, v, allowed).and_then(parse)
}

fn string_list(min: usize) -> impl Fn(&mut Checker, &JsonPath, &Value) -> Option<Vec<String>> {
    move |c, p, v| c.string_list(p, v, min)
}

/// A numeric bound of a `float` field.
#[derive(Clone, Copy)]
enum Bound {
    Gt(f64),
    Ge(f64),
    Lt(f64),
    Le(f64),
}

impl Bound {
    fn holds(self, f: f64) -> bool {
        match self {
            Bound::Gt(b) => f > b,
            Bound::Ge(b) => f >= b,
            Bound::Lt(b) => f < b,
            Bound::Le(b) => f <= b,
        }
    }

    fn describe(self) -> String {
        let (op, b) = match self {
            Bound::Gt(b) => (">", b),
            Bound::Ge(b) => (">=", b),
            Bound::Lt(b) => ("<", b),
            Bound::Le(b) => ("<=", b),
        };
        format!("{op} {}", pyrepr::float(b).trim_end_matches(".0"))
    }
}

/// A Python `float` field: JSON integers and floats, finite only.
fn float(bounds: &'static [Bound]) -> impl Fn(&mut Checker, &JsonPath, &Value) -> Option<f64> {
    move |c, p, v| {
        let (f, text) = match v {
            Value::Int(i) => (i.to_f64(), i.as_str().to_owned()),
            Value::Float(f) => (*f, json::python_float_repr(*f)),
            other => {
                c.report(
                    p.clone(),
                    ViolationKind::WrongType {
                        expected: "number",
                        found: other.type_name(),
                    },
                );
                return None;
            }
        };
        if !f.is_finite() {
            let found = match v {
                Value::Int(_) => "integer too large for a float",
                _ if f.is_nan() => "NaN",
                _ if f > 0.0 => "Infinity",
                _ => "-Infinity",
            };
            c.report(
                p.clone(),
                ViolationKind::WrongType {
                    expected: "finite number",
                    found,
                },
            );
            return None;
        }
        for b in bounds {
            if !b.holds(f) {
                c.report(
                    p.clone(),
                    ViolationKind::Range {
                        value: text,
                        constraint: b.describe(),
                    },
                );
                return None;
            }
        }
        Some(f)
    }
}

/// 2⁶³ as a double: Pydantic converts integral floats strictly inside ±2⁶³.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// A Python `int` field with optional inclusive bounds; integers of any size,
/// integral floats within ±2⁶³ (as Pydantic's lax mode converts them).
fn int(
    min: Option<i64>,
    max: Option<i64>,
) -> impl Fn(&mut Checker, &JsonPath, &Value) -> Option<Int> {
    move |c, p, v| {
        let i = match v {
            Value::Int(i) => i.clone(),
            Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < TWO_POW_63 => {
                Int::from_decimal(&format!("{f:.0}"))?
            }
            Value::Float(f) => {
                let found = if !f.is_finite() {
                    "non-finite number"
                } else if f.fract() != 0.0 {
                    "number with a fractional part"
                } else {
                    "integral number outside the 64-bit range"
                };
                c.report(
                    p.clone(),
                    ViolationKind::WrongType {
                        expected: "integer",
                        found,
                    },
                );
                return None;
            }
            other => {
                c.report(
                    p.clone(),
                    ViolationKind::WrongType {
                        expected: "integer",
                        found: other.type_name(),
                    },
                );
                return None;
            }
        };
        let below = min.is_some_and(|m| match i.as_i64() {
            Some(x) => x < m,
            None => i.is_negative(),
        });
        let above = max.is_some_and(|m| match i.as_i64() {
            Some(x) => x > m,
            None => !i.is_negative(),
        });
        if below || above {
            let constraint = match (min, max) {
                (Some(lo), Some(hi)) => format!("{lo} <= n <= {hi}"),
                (Some(lo), None) => format!(">= {lo}"),
                (None, Some(hi)) => format!("<= {hi}"),
                (None, None) => String::new(),
            };
            c.report(
                p.clone(),
                ViolationKind::Range {
                    value: i.as_str().to_owned(),
                    constraint,
                },
            );
            return None;
        }
        Some(i)
    }
}

/// A list whose items are checked by `item`; `None` if any item fails.
fn list_of<'a, T>(
    c: &mut Checker,
    p: &JsonPath,
    v: &'a Value,
    min: usize,
    item: impl Fn(&mut Checker, &JsonPath, &'a Value) -> Option<T>,
) -> Option<Vec<T>> {
    let items = c.array_min(p, v, min)?;
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, it) in items.iter().enumerate() {
        match item(c, &p.index(i), it) {
            Some(t) => out.push(t),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// Reads the discriminator `kind` of a tagged union; reports a missing,
/// non-string or unknown tag at `<path>.kind`.
fn tag<'a>(
    c: &mut Checker,
    o: &mut ObjectCursor<'a>,
    allowed: &'static [&'static str],
) -> Option<&'a str> {
    let (p, v) = req(c, o, "kind")?;
    c.one_of(&p, v, allowed)
}

fn rule(c: &mut Checker, p: &JsonPath, msg: impl Into<String>) {
    c.report(p.clone(), ViolationKind::Rule(msg.into()));
}

// ---------------------------------------------------------------------------
// Nested models
// ---------------------------------------------------------------------------

/// `models[]` entry. The 0.6.67 model constrains `id` and adds
/// `expected_gguf_sha256`.
fn model(sdk: SdkProfile) -> impl Fn(&mut Checker, &JsonPath, &Value) -> Option<Model> {
    move |c, p, v| {
        let mut o = c.object(p.clone(), v)?;
        let id = match sdk {
            SdkProfile::V0_5_5 => required(c, &mut o, "id", string),
            SdkProfile::V0_6_67 => required(c, &mut o, "id", model_id),
        };
        let version = required(c, &mut o, "version", string);
        let local_weights_required = required(c, &mut o, "local_weights_required", boolean);
        let hf_repo = optional(c, &mut o, "hf_repo", string);
        let hf_filename = optional(c, &mut o, "hf_filename", string);
        let expected_gguf_sha256 = match sdk {
            SdkProfile::V0_5_5 => Some(None),
            SdkProfile::V0_6_67 => {
                optional(c, &mut o, "expected_gguf_sha256", pattern(&SHA256_HEX))
            }
        };
        c.finish(o);
        Some(Model {
            id: id?,
            version: version?,
            local_weights_required: local_weights_required?,
            hf_repo: hf_repo?,
            hf_filename: hf_filename?,
            expected_gguf_sha256: expected_gguf_sha256?,
        })
    }
}

/// The 0.6.67 `Model.id`: at most 128 code points, then the pattern.
pub(super) fn model_id(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<String> {
    let s = c.string(p, v)?;
    let n = s.chars().count();
    if n > MODEL_ID_MAX_LEN {
        c.report(
            p.clone(),
            ViolationKind::Length {
                min: 0,
                max: MODEL_ID_MAX_LEN,
                actual: n,
            },
        );
        return None;
    }
    c.matches(p, v, &MODEL_ID).map(str::to_owned)
}

fn approver_attestation(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<ApproverAttestation> {
    let mut o = c.object(p.clone(), v)?;
    let approver_pubkey = required(c, &mut o, "approver_pubkey", pattern(&APPROVER_PUBKEY));
    let sig = required(c, &mut o, "sig", pattern(&BASE64));
    c.finish(o);
    Some(ApproverAttestation {
        approver_pubkey: approver_pubkey?,
        sig: sig?,
    })
}

fn work_unit_source(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<WorkUnitSource> {
    let mut o = c.object(p.clone(), v)?;
    let kind = tag(c, &mut o, &["static", "http"])?;
    let out = if kind == "static" {
        required(c, &mut o, "tarball_sha256", pattern(&SHA256_HEX))
            .map(|tarball_sha256| WorkUnitSource::Static { tarball_sha256 })
    } else {
        required(c, &mut o, "url", pattern(&HTTPS_URL)).map(|url| WorkUnitSource::Http { url })
    };
    c.finish(o);
    out
}

fn executor(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<Executor> {
    let mut o = c.object(p.clone(), v)?;
    let command = required(c, &mut o, "command", string_list(1));
    let image_sha256 = optional(c, &mut o, "image_sha256", pattern(&SHA256_HEX));
    let package_sha256 = optional(c, &mut o, "package_sha256", pattern(&SHA256_HEX));
    c.finish(o);
    Some(Executor {
        command: command?,
        image_sha256: image_sha256?,
        package_sha256: package_sha256?,
    })
}

fn reducer(sdk: SdkProfile) -> impl Fn(&mut Checker, &JsonPath, &Value) -> Option<Reducer> {
    move |c, p, v| {
        let mut o = c.object(p.clone(), v)?;
        let allowed: &'static [&'static str] = match sdk {
            SdkProfile::V0_5_5 => &["builtin_hash_agreement", "custom"],
            SdkProfile::V0_6_67 => &[
                "builtin_hash_agreement",
                "builtin_within_cell_tolerance",
                "builtin_process_only",
                "custom",
            ],
        };
        let kind = tag(c, &mut o, allowed)?;
        let out = match kind {
            "builtin_hash_agreement" => Some(Reducer::BuiltinHashAgreement),
            "builtin_process_only" => Some(Reducer::BuiltinProcessOnly),
            "builtin_within_cell_tolerance" => {
                optional(c, &mut o, "tolerance_features", string_list(1)).map(
                    |tolerance_features| Reducer::BuiltinWithinCellTolerance { tolerance_features },
                )
            }
            _ => {
                let command = required(c, &mut o, "command", string_list(1));
                let image_sha256 = optional(c, &mut o, "image_sha256", pattern(&SHA256_HEX));
                match (command, image_sha256) {
                    (Some(command), Some(image_sha256)) => Some(Reducer::Custom {
                        command,
                        image_sha256,
                    }),
                    _ => None,
                }
            }
        };
        c.finish(o);
        out
    }
}

fn inference_determinism(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<InferenceDeterminism> {
    let mut o = c.object(p.clone(), v)?;
    let temperature = defaulted(&mut o, c, "temperature", 0.0, float(&[Bound::Ge(0.0)]));
    let seed = optional(c, &mut o, "seed", int(None, None));
    let serving_version_pin = optional(c, &mut o, "serving_version_pin", string);
    let hardware_class = optional(c, &mut o, "hardware_class", string);
    let top_p = optional(c, &mut o, "top_p", float(&[Bound::Gt(0.0), Bound::Le(1.0)]));
    let top_k = optional(c, &mut o, "top_k", int(Some(1), None));
    let min_p = optional(c, &mut o, "min_p", float(&[Bound::Ge(0.0), Bound::Lt(1.0)]));
    let repeat_penalty = optional(c, &mut o, "repeat_penalty", float(&[Bound::Gt(0.0)]));
    let repeat_last_n = optional(c, &mut o, "repeat_last_n", int(Some(-1), None));
    let seed_policy = defaulted(
        &mut o,
        c,
        "seed_policy",
        SeedPolicy::Fixed,
        enumerated(SeedPolicy::ALL, SeedPolicy::from_wire),
    );
    c.finish(o);
    let det = InferenceDeterminism {
        temperature: temperature?,
        seed: seed?,
        serving_version_pin: serving_version_pin?,
        hardware_class: hardware_class?,
        top_p: top_p?,
        top_k: top_k?,
        min_p: min_p?,
        repeat_penalty: repeat_penalty?,
        repeat_last_n: repeat_last_n?,
        seed_policy: seed_policy?,
    };
    let mut ok = true;
    if det.is_sampling() && det.seed.is_none() {
        rule(
            c,
            p,
            "seeded sampling (temperature > 0) requires a pinned 'seed' — unseeded sampling is not accepted (reproducibility floor)",
        );
        ok = false;
    }
    if det.seed_policy == SeedPolicy::PerRound && !det.is_sampling() {
        rule(
            c,
            p,
            "seed_policy 'per_round' requires temperature > 0 — a seed-stream is meaningless under greedy decoding (declare it only under sampling)",
        );
        ok = false;
    }
    ok.then_some(det)
}

fn output_schema(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<OutputSchema> {
    let mut o = c.object(p.clone(), v)?;
    let measurement_level = required(
        c,
        &mut o,
        "measurement_level",
        enumerated(MeasurementLevel::ALL, MeasurementLevel::from_wire),
    );
    let shape = optional(c, &mut o, "shape", |c, p, v| {
        list_of(c, p, v, 0, int(None, None))
    });
    let dtype = optional(c, &mut o, "dtype", string);
    c.finish(o);
    Some(OutputSchema {
        measurement_level: measurement_level?,
        shape: shape?,
        dtype: dtype?,
    })
}

fn feature_range(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<FeatureRange> {
    let mut o = c.object(p.clone(), v)?;
    let min = required(c, &mut o, "min", float(&[]));
    let max = optional(c, &mut o, "max", float(&[]));
    c.finish(o);
    let range = FeatureRange {
        min: min?,
        max: max?,
    };
    if let Some(max) = range.max
        && max < range.min
    {
        rule(
            c,
            p,
            format!(
                "range max ({}) < min ({})",
                pyrepr::float(max),
                pyrepr::float(range.min)
            ),
        );
        return None;
    }
    Some(range)
}

fn valid_when(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<ValidWhen> {
    let mut o = c.object(p.clone(), v)?;
    let field = required(c, &mut o, "field", string);
    let op = required(
        c,
        &mut o,
        "op",
        enumerated(ValidWhenOp::ALL, ValidWhenOp::from_wire),
    );
    let value = required(c, &mut o, "value", |c, p, v| match v {
        Value::Int(i) => Some(ValidWhenValue::Int(i.clone())),
        Value::Float(_) => float(&[])(c, p, v).map(ValidWhenValue::Float),
        Value::String(s) => Some(ValidWhenValue::Str(s.clone())),
        other => {
            c.report(
                p.clone(),
                ViolationKind::WrongType {
                    expected: "number or string",
                    found: other.type_name(),
                },
            );
            None
        }
    });
    c.finish(o);
    Some(ValidWhen {
        field: field?,
        op: op?,
        value: value?,
    })
}

fn feature_comparison(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<FeatureComparison> {
    let mut o = c.object(p.clone(), v)?;
    let rule_kind = required(
        c,
        &mut o,
        "rule",
        enumerated(ComparisonRule::ALL, ComparisonRule::from_wire),
    );
    let rel = optional(c, &mut o, "rel", float(&[]));
    let abs = optional(c, &mut o, "abs", float(&[]));
    let min = optional(c, &mut o, "min", float(&[]));
    c.finish(o);
    let cmp = FeatureComparison {
        rule: rule_kind?,
        rel: rel?,
        abs: abs?,
        min: min?,
    };
    let mut ok = true;
    match cmp.rule {
        ComparisonRule::Numeric if cmp.rel.is_none() && cmp.abs.is_none() => {
            rule(c, p, "comparison rule 'numeric' needs 'rel' or 'abs'");
            ok = false;
        }
        ComparisonRule::SetJaccard if !cmp.min.is_some_and(|m| (0.0..=1.0).contains(&m)) => {
            rule(c, p, "comparison rule 'set_jaccard' needs 'min' in [0,1]");
            ok = false;
        }
        ComparisonRule::Exact | ComparisonRule::CategoricalExact
            if cmp.rel.is_some() || cmp.abs.is_some() || cmp.min.is_some() =>
        {
            rule(
                c,
                p,
                format!("comparison rule '{}' takes no rel/abs/min", cmp.rule),
            );
            ok = false;
        }
        _ => {}
    }
    ok.then_some(cmp)
}

fn feature_declaration(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<FeatureDeclaration> {
    let mut o = c.object(p.clone(), v)?;
    let meaning = required(c, &mut o, "meaning", string_min(1));
    let kind = required(
        c,
        &mut o,
        "kind",
        enumerated(FeatureKind::ALL, FeatureKind::from_wire),
    );
    let role = required(
        c,
        &mut o,
        "role",
        enumerated(FeatureRole::ALL, FeatureRole::from_wire),
    );
    let change_means = required(c, &mut o, "change_means", string_min(1));
    let unit = optional(c, &mut o, "unit", string);
    let range = optional(c, &mut o, "range", feature_range);
    let categories = optional(c, &mut o, "categories", string_list(0));
    let algorithm = optional(c, &mut o, "algorithm", string);
    let element_kind = optional(
        c,
        &mut o,
        "element_kind",
        enumerated(SetElementKind::ALL, SetElementKind::from_wire),
    );
    let max_cardinality = optional(c, &mut o, "max_cardinality", int(Some(1), None));
    let invariant_to = defaulted(&mut o, c, "invariant_to", Vec::new(), string_list(0));
    let valid_when_v = optional(c, &mut o, "valid_when", valid_when);
    let comparison = optional(c, &mut o, "comparison", feature_comparison);
    c.finish(o);
    let d = FeatureDeclaration {
        meaning: meaning?,
        kind: kind?,
        role: role?,
        change_means: change_means?,
        unit: unit?,
        range: range?,
        categories: categories?,
        algorithm: algorithm?,
        element_kind: element_kind?,
        max_cardinality: max_cardinality?,
        invariant_to: invariant_to?,
        valid_when: valid_when_v?,
        comparison: comparison?,
    };
    let k = d.kind;
    let mut problems: Vec<String> = Vec::new();
    if k == FeatureKind::Numeric && d.range.is_none() {
        problems.push("kind 'numeric' requires a 'range' (a bounded measure)".to_owned());
    }
    if matches!(k, FeatureKind::Categorical | FeatureKind::Ordinal)
        && d.categories.as_ref().is_none_or(Vec::is_empty)
    {
        problems.push(format!(
            "kind '{k}' requires a non-empty 'categories' (a CLOSED set — the §7 no-free-text guarantee)"
        ));
    }
    if k == FeatureKind::Hash && d.algorithm.as_deref().is_none_or(str::is_empty) {
        problems.push("kind 'hash' requires an 'algorithm' (e.g. 'sha256')".to_owned());
    }
    if k == FeatureKind::Set && (d.element_kind.is_none() || d.max_cardinality.is_none()) {
        problems.push("kind 'set' requires 'element_kind' and 'max_cardinality'".to_owned());
    }
    if d.range.is_some() && !matches!(k, FeatureKind::Numeric | FeatureKind::Count) {
        problems.push(format!(
            "'range' is only valid for numeric/count, not '{k}'"
        ));
    }
    if d.categories.is_some()
        && !matches!(
            k,
            FeatureKind::Categorical | FeatureKind::Ordinal | FeatureKind::Set
        )
    {
        problems.push(format!(
            "'categories' is only valid for categorical/ordinal/set, not '{k}'"
        ));
    }
    if d.algorithm.is_some() && k != FeatureKind::Hash {
        problems.push(format!("'algorithm' is only valid for hash, not '{k}'"));
    }
    if (d.element_kind.is_some() || d.max_cardinality.is_some()) && k != FeatureKind::Set {
        problems.push(format!(
            "'element_kind'/'max_cardinality' are only valid for set, not '{k}'"
        ));
    }
    let ok = problems.is_empty();
    for m in problems {
        rule(c, p, m);
    }
    ok.then_some(d)
}

fn feature_schema(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<FeatureSchema> {
    let Value::Object(members) = v else {
        c.report(
            p.clone(),
            ViolationKind::WrongType {
                expected: "object",
                found: v.type_name(),
            },
        );
        return None;
    };
    let mut out = FeatureSchema::new();
    let mut ok = true;
    for (key, decl) in members {
        match feature_declaration(c, &p.key(key), decl) {
            Some(d) => {
                out.insert(key.clone(), d);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn pre_registration(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<PreRegistration> {
    let mut o = c.object(p.clone(), v)?;
    let version = defaulted(&mut o, c, "version", "0.1".to_owned(), |c, p, v| {
        c.one_of(p, v, &["0.1"]).map(str::to_owned)
    });
    let hypothesis = required(c, &mut o, "hypothesis", string_len(20, 2000));
    let analysis_method = required(c, &mut o, "analysis_method", string_len(10, 2000));
    let features = required(c, &mut o, "features", string_list(1));
    let timescale = required(
        c,
        &mut o,
        "timescale",
        enumerated(Timescale::ALL, Timescale::from_wire),
    );
    let decision_rule = required(c, &mut o, "decision_rule", string_len(10, 2000));
    let expected_result = required(c, &mut o, "expected_result", string_len(5, 2000));
    let stopping_rule = required(c, &mut o, "stopping_rule", string_len(10, 1000));
    let comparison_keys = defaulted(&mut o, c, "comparison_keys", Vec::new(), string_list(0));
    let min_replication = optional(c, &mut o, "min_replication", int(Some(1), None));
    c.finish(o);
    Some(PreRegistration {
        version: version?,
        hypothesis: hypothesis?,
        analysis_method: analysis_method?,
        features: features?,
        timescale: timescale?,
        decision_rule: decision_rule?,
        expected_result: expected_result?,
        stopping_rule: stopping_rule?,
        comparison_keys: comparison_keys?,
        min_replication: min_replication?,
    })
}

fn config_provenance(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<ConfigProvenance> {
    let mut o = c.object(p.clone(), v)?;
    let profile = optional(c, &mut o, "profile", string);
    let resolved = required(c, &mut o, "resolved_config_sha256", pattern(&SHA256_HEX));
    let git_commit = optional(c, &mut o, "git_commit", pattern(&GIT_COMMIT));
    let git_dirty = optional(c, &mut o, "git_dirty", boolean);
    c.finish(o);
    Some(ConfigProvenance {
        profile: profile?,
        resolved_config_sha256: resolved?,
        git_commit: git_commit?,
        git_dirty: git_dirty?,
    })
}

fn capture(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<Capture> {
    let mut o = c.object(p.clone(), v)?;
    let raw = defaulted(&mut o, c, "raw", false, boolean);
    c.finish(o);
    Some(Capture { raw: raw? })
}

fn contact(c: &mut Checker, p: &JsonPath, v: &Value) -> Option<String> {
    let s = c.string(p, v)?;
    match email::normalize_email(s) {
        Ok(n) => Some(n),
        Err(e) => {
            c.report(p.clone(), ViolationKind::Email(e.reason));
            None
        }
    }
}

// ---------------------------------------------------------------------------
// The manifest
// ---------------------------------------------------------------------------

/// Validates a parsed manifest; see the module docs.
pub(super) fn validate(v: &Value) -> Result<Manifest, Violations> {
    let mut c = Checker::new();
    let root = JsonPath::root();
    let Some(mut o) = c.object(root.clone(), v) else {
        return c.into_result(None);
    };
    let c = &mut c;

    let version = required(
        c,
        &mut o,
        "schema_version",
        enumerated(SchemaVersion::ALL, SchemaVersion::from_wire),
    );
    let sdk = match version {
        Some(SchemaVersion::V0_1) => SdkProfile::V0_5_5,
        _ => SdkProfile::V0_6_67,
    };
    let later = sdk == SdkProfile::V0_6_67;

    let tenant_id = required(c, &mut o, "tenant_id", pattern(&TENANT_ID));
    let contact_v = required(c, &mut o, "tenant_maintainer_contact", contact);
    let experiment_id = required(c, &mut o, "experiment_id", pattern(&EXPERIMENT_ID));
    let goal = required(c, &mut o, "research_goal_paragraph", string_len(50, 2000));
    let research_class = if later {
        optional(
            c,
            &mut o,
            "research_class",
            enumerated(ResearchClass::ALL, ResearchClass::from_wire),
        )
    } else {
        Some(None)
    };
    let models = required(c, &mut o, "models", |c, p, v| {
        list_of(c, p, v, 1, model(sdk))
    });
    let prompts = required(
        c,
        &mut o,
        "prompt_set_characteristics",
        string_len(10, 1000),
    );
    let flag_names = match sdk {
        SdkProfile::V0_5_5 => SensitiveContentFlag::V0_1,
        SdkProfile::V0_6_67 => SensitiveContentFlag::ALL,
    };
    let flags = defaulted(
        &mut o,
        c,
        "sensitive_content_flags",
        Vec::new(),
        |c, p, v| {
            list_of(
                c,
                p,
                v,
                0,
                enumerated(flag_names, SensitiveContentFlag::from_wire),
            )
        },
    );
    let attestations = optional(c, &mut o, "approver_attestations", |c, p, v| {
        list_of(c, p, v, 0, approver_attestation)
    });
    let hours = required(
        c,
        &mut o,
        "expected_duration_hours",
        float(&[Bound::Gt(0.0), Bound::Le(8760.0)]),
    );
    let replication = required(c, &mut o, "replication_factor", int(Some(1), Some(100)))
        .and_then(|i| i.as_i64())
        .and_then(|n| u8::try_from(n).ok());
    let wus = required(c, &mut o, "work_unit_source", work_unit_source);
    let exec = required(c, &mut o, "executor", executor);
    let red = required(c, &mut o, "reducer", reducer(sdk));

    let (real, det, out_schema, features, prereg, provenance, cap);
    if later {
        real = defaulted(&mut o, c, "requires_real_execution", false, boolean);
        det = optional(c, &mut o, "inference_determinism", inference_determinism);
        out_schema = optional(c, &mut o, "output_schema", output_schema);
        features = optional(c, &mut o, "feature_schema", feature_schema);
        prereg = optional(c, &mut o, "pre_registration", pre_registration);
        provenance = optional(c, &mut o, "config_provenance", config_provenance);
        cap = optional(c, &mut o, "capture", capture);
    } else {
        (real, det, out_schema, features, prereg, provenance, cap) = (
            Some(false),
            Some(None),
            Some(None),
            Some(None),
            Some(None),
            Some(None),
            Some(None),
        );
        for key in LATER_MEMBERS {
            if o.has(key) {
                rule(
                    c,
                    &o.path_of(key),
                    "extra fields not permitted (a member of manifest v0.2 and later; this file says schema_version \"0.1\")",
                );
            }
        }
    }
    c.finish(o);

    // Model-level rules, in the SDK's declaration order.
    if later {
        if let (Some(Some(cap)), Some(flags)) = (&cap, &flags)
            && cap.raw
            && !flags.contains(&SensitiveContentFlag::RawContentCapture)
        {
            rule(
                c,
                &root,
                "capture.raw requires 'raw_content_capture' in sensitive_content_flags (raw capture must never auto-approve)",
            );
        }
        if let (Some(Some(det)), Some(rf), Some(red)) = (&det, replication, &red)
            && det.is_sampling()
            && rf > 1
            && matches!(
                red,
                Reducer::BuiltinHashAgreement | Reducer::BuiltinWithinCellTolerance { .. }
            )
        {
            rule(
                c,
                &root,
                format!(
                    "seeded sampling (temperature > 0) at replication_factor {rf} is incoherent with the agreement reducer {} — sampled replicas legitimately differ; declare replication_factor 1 (process-only: each replica an independent sample) or a non-agreement collection mode (inference_determinism memo §3c)",
                    pyrepr::repr_str(red.kind())
                ),
            );
        }
        if let (Some(Some(det)), Some(ver)) = (&det, version) {
            let mut knobs = det.sampling_knobs();
            knobs.sort_unstable();
            if !knobs.is_empty() && !ver.at_least(SchemaVersion::V0_5) {
                rule(
                    c,
                    &root,
                    format!(
                        "sampling knobs {} require schema_version \"0.5\" or later (the published v0.2-v0.4 schemas are immutable and do not carry them)",
                        pyrepr::repr_str_list(&knobs)
                    ),
                );
            }
        }
        if let Some(ver) = version
            && !ver.at_least(SchemaVersion::V0_6)
        {
            if matches!(red, Some(Reducer::BuiltinProcessOnly)) {
                rule(
                    c,
                    &root,
                    "the builtin_process_only reducer requires schema_version \"0.6\" or later (the published v0.1-v0.5 schemas are immutable and do not carry it)",
                );
            }
            if matches!(provenance, Some(Some(_))) {
                rule(
                    c,
                    &root,
                    "config_provenance requires schema_version \"0.6\" or later (the published v0.1-v0.5 schemas are immutable and do not carry it)",
                );
            }
        }
        if let (Some(Some(det)), Some(ver)) = (&det, version)
            && !ver.at_least(SchemaVersion::V0_7)
        {
            let mut penalties = det.penalty_knobs();
            penalties.sort_unstable();
            if !penalties.is_empty() {
                rule(
                    c,
                    &root,
                    format!(
                        "penalty knobs {} require schema_version \"0.7\" or later (the published v0.1-v0.6 schemas are immutable and do not carry them)",
                        pyrepr::repr_str_list(&penalties)
                    ),
                );
            }
            let mut knobs = det.sampling_knobs();
            knobs.sort_unstable();
            if !knobs.is_empty() && !det.is_sampling() {
                rule(
                    c,
                    &root,
                    format!(
                        "sampling knobs {} at temperature 0 require schema_version \"0.7\" or later — before v0.7 a knob was declarable only under sampling (temperature > 0)",
                        pyrepr::repr_str_list(&knobs)
                    ),
                );
            }
        }
    }
    if let (Some(flags), Some(att)) = (&flags, &attestations) {
        let needs_approver = flags
            .iter()
            .any(|f| *f != SensitiveContentFlag::RawContentCapture);
        if needs_approver && att.as_ref().is_none_or(Vec::is_empty) {
            rule(c, &root, APPROVER_RULE);
        }
    }
    if let Some(Some(pr)) = &prereg {
        if let Some(ver) = version
            && !ver.at_least(SchemaVersion::V0_4)
        {
            rule(
                c,
                &root,
                "a manifest declaring pre_registration must set schema_version \"0.4\" or later (the D16.2 published-contract member)",
            );
        }
        if let Some(fs) = &features {
            match fs {
                Some(fs) if !fs.is_empty() => {
                    for path in &pr.features {
                        match fs.get(path) {
                            None => rule(
                                c,
                                &root,
                                format!(
                                    "pre_registration feature {} is not in feature_schema",
                                    pyrepr::repr_str(path)
                                ),
                            ),
                            Some(decl) if decl.comparison.is_none() => rule(
                                c,
                                &root,
                                format!(
                                    "pre_registration feature {} declares no 'comparison' — the pre-registered envelope IS the feature's comparison; declare it there",
                                    pyrepr::repr_str(path)
                                ),
                            ),
                            Some(_) => {}
                        }
                    }
                    for key in &pr.comparison_keys {
                        if !fs.contains_key(key) {
                            rule(
                                c,
                                &root,
                                format!(
                                    "pre_registration comparison_key {} is not in feature_schema",
                                    pyrepr::repr_str(key)
                                ),
                            );
                        }
                    }
                }
                _ => rule(
                    c,
                    &root,
                    "pre_registration requires a feature_schema (the design is declared over self-describing features — D16.1)",
                ),
            }
        }
    }

    let built = (|| {
        Some(Manifest {
            schema_version: version?,
            tenant_id: tenant_id?,
            tenant_maintainer_contact: contact_v?,
            experiment_id: experiment_id?,
            research_goal_paragraph: goal?,
            research_class: research_class?,
            models: models?,
            prompt_set_characteristics: prompts?,
            sensitive_content_flags: flags?,
            approver_attestations: attestations?,
            expected_duration_hours: hours?,
            replication_factor: replication?,
            work_unit_source: wus?,
            executor: exec?,
            reducer: red?,
            requires_real_execution: real?,
            inference_determinism: det?,
            output_schema: out_schema?,
            feature_schema: features?,
            pre_registration: prereg?,
            config_provenance: provenance?,
            capture: cap?,
            raw: v.clone(),
        })
    })();
    std::mem::take(c).into_result(built)
}
