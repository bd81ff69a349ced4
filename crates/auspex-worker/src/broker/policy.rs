//! Generation-policy enforcement (`worker.md` §7.4, the 0.2.80 "total
//! chain").
//!
//! The policy is the verified manifest's `inference_determinism` block
//! ([`GenerationPolicy::from_manifest`]); a block this worker cannot honour
//! as declared declines the unit `generation_policy_unhonorable` (never a
//! silent downgrade to greedy). Each `generate` request's `options` are
//! turned into the complete sampler chain by [`sanitize_options`]:
//!
//! 1. the neutral chain `top_k 0, top_p 1.0, min_p 0.0, typical_p 1.0,
//!    repeat_penalty 1.0, repeat_last_n 0, presence_penalty 0.0,
//!    frequency_penalty 0.0, mirostat 0`, `top_k 1` under greedy, the
//!    declared knobs overlaid in place, then `temperature`;
//! 2. allowed request keys: `seed`, `num_predict`, `num_ctx`,
//!    `temperature`, `logprobs`, `top_logprobs` and the declared knobs;
//! 3. greedy: a requested `temperature` must equal 0 and the integer `0` is
//!    emitted; sampling: a number in `[0, declared]`, emitted as a float;
//! 4. a declared knob only at exactly its declared value;
//! 5. `seed` always present (requested integer, else the declared seed
//!    under sampling, 0 under greedy);
//! 6. `num_predict` (clamped to [`MAX_NUM_PREDICT`]), `num_ctx`,
//!    `logprobs`, `top_logprobs` only when requested.
//!
//! The key order of the result is the order the official worker sends and
//! signs (`generation_options` is in the signed result). Comparisons follow
//! Python's `==` (`1 == 1.0 == True`), which is also how distinct chains are
//! recognised when they are recorded ([`py_eq`]).

use auspex_wire::json::{Int, Object, Value};

/// `num_predict` is clamped to this.
pub const MAX_NUM_PREDICT: u64 = 4096;

/// The declarable knobs, in chain order.
pub const KNOBS: [&str; 5] = ["top_p", "top_k", "min_p", "repeat_penalty", "repeat_last_n"];

/// The neutral chain: every member at its no-op value (`top_k 0` disables
/// truncation).
pub fn neutral_chain() -> Object {
    let mut o = Object::new();
    o.insert("top_k".into(), Value::from(0u64));
    o.insert("top_p".into(), Value::Float(1.0));
    o.insert("min_p".into(), Value::Float(0.0));
    o.insert("typical_p".into(), Value::Float(1.0));
    o.insert("repeat_penalty".into(), Value::Float(1.0));
    o.insert("repeat_last_n".into(), Value::from(0u64));
    o.insert("presence_penalty".into(), Value::Float(0.0));
    o.insert("frequency_penalty".into(), Value::Float(0.0));
    o.insert("mirostat".into(), Value::from(0u64));
    o
}

/// Why a manifest's `inference_determinism` block cannot be honoured (the
/// unit is declined `generation_policy_unhonorable: <this>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// A `generate` request's options outside the declared policy
/// (`params_rejected`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OptionsRejected(pub String);

/// The declared generation policy of one unit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GenerationPolicy {
    /// The declared temperature (0: greedy).
    pub temperature: f64,
    /// The declared seed (required when sampling).
    pub seed: Option<Int>,
    /// The declared knobs in [`KNOBS`] order, at their declared values
    /// (`top_p`, `min_p`, `repeat_penalty` as floats; `top_k`,
    /// `repeat_last_n` as integers).
    pub knobs: Vec<(&'static str, Value)>,
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(i.to_f64()),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn int_at_least(i: &Int, min: i64) -> bool {
    match i.as_i64() {
        Some(n) => n >= min,
        // Too large for i64: only the huge positive ones pass.
        None => !i.is_negative(),
    }
}

impl GenerationPolicy {
    /// Greedy decoding, nothing declared.
    pub fn greedy() -> GenerationPolicy {
        GenerationPolicy::default()
    }

    /// Whether the declared temperature is above 0 (seeded sampling).
    pub fn is_sampling(&self) -> bool {
        self.temperature > 0.0
    }

    /// Parses and validates the manifest's `inference_determinism` block
    /// (`manifest` is the whole verified manifest). Absent or `null`:
    /// greedy.
    pub fn from_manifest(manifest: &Value) -> Result<GenerationPolicy, PolicyError> {
        match manifest.get("inference_determinism") {
            None | Some(Value::Null) => Ok(GenerationPolicy::greedy()),
            Some(det) => GenerationPolicy::from_block(det),
        }
    }

    /// Validates one `inference_determinism` object.
    pub fn from_block(det: &Value) -> Result<GenerationPolicy, PolicyError> {
        let err = |m: &str| Err(PolicyError(format!("inference_determinism.{m}")));
        let Some(o) = det.as_object() else {
            return Err(PolicyError(
                "inference_determinism must be an object".into(),
            ));
        };
        // `det.get(k)` in Python: an explicit null is "absent" for every key
        // but temperature, whose default applies only when the key is missing.
        let get = |k: &str| o.get(k).filter(|v| !matches!(v, Value::Null));
        let temperature = match o.get("temperature") {
            None => 0.0,
            Some(v) => match number(v) {
                Some(t) if t.is_nan() => return err("temperature must be >= 0"),
                Some(t) if t < 0.0 => return err("temperature must be >= 0"),
                Some(t) => t,
                None => return err("temperature must be a number"),
            },
        };
        let seed = match get("seed") {
            None => None,
            Some(Value::Int(i)) => Some(i.clone()),
            Some(_) => return err("seed must be an integer"),
        };
        let mut knobs = Vec::new();
        for k in KNOBS {
            let Some(v) = get(k) else { continue };
            let value = match k {
                "top_p" => match number(v) {
                    Some(f) if f > 0.0 && f <= 1.0 => Value::Float(f),
                    _ => return err("top_p must be in (0, 1]"),
                },
                "top_k" => match v {
                    Value::Int(i) if int_at_least(i, 1) => v.clone(),
                    _ => return err("top_k must be a positive integer"),
                },
                "min_p" => match number(v) {
                    Some(f) if (0.0..1.0).contains(&f) => Value::Float(f),
                    _ => return err("min_p must be in [0, 1)"),
                },
                "repeat_penalty" => match number(v) {
                    Some(f) if f > 0.0 => Value::Float(f),
                    _ => return err("repeat_penalty must be > 0"),
                },
                _ => match v {
                    Value::Int(i) if int_at_least(i, -1) => v.clone(),
                    _ => return err("repeat_last_n must be an integer >= -1"),
                },
            };
            knobs.push((k, value));
        }
        let policy = GenerationPolicy {
            temperature,
            seed,
            knobs,
        };
        if policy.is_sampling() && policy.seed.is_none() {
            return Err(PolicyError(
                "seeded sampling (temperature > 0) requires a pinned seed \
                 (reproducibility floor — unseeded sampling is refused)"
                    .into(),
            ));
        }
        Ok(policy)
    }

    /// The declared value of `knob`, if declared.
    pub fn knob(&self, knob: &str) -> Option<&Value> {
        self.knobs.iter().find(|(k, _)| *k == knob).map(|(_, v)| v)
    }

    /// The chain before any request: neutral, `top_k 1` under greedy, the
    /// declared knobs in place, then `temperature` (the declared value as a
    /// float).
    pub fn effective_options(&self) -> Object {
        let mut o = neutral_chain();
        if !self.is_sampling() {
            o.insert("top_k".into(), Value::from(1u64));
        }
        for (k, v) in &self.knobs {
            o.insert((*k).into(), v.clone());
        }
        o.insert("temperature".into(), Value::Float(self.temperature));
        o
    }
}

/// Python's `a == b` on JSON values: numbers by value across int, float and
/// bool; objects by key set regardless of order; arrays element-wise.
pub fn py_eq(a: &Value, b: &Value) -> bool {
    fn as_int(v: &Value) -> Option<Int> {
        match v {
            Value::Int(i) => Some(i.clone()),
            Value::Bool(b) => Some(Int::from(u64::from(*b))),
            _ => None,
        }
    }
    fn int_eq_float(i: &Int, f: f64) -> bool {
        f.is_finite()
            && f.fract() == 0.0
            && Int::from_decimal(&format!("{f:.0}")).is_some_and(|g| g == *i)
    }
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Float(f), other) | (other, Value::Float(f)) => {
            as_int(other).is_some_and(|i| int_eq_float(&i, *f))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        _ => match (as_int(a), as_int(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// Python's `repr()` of a JSON value (for error details).
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Int(i) => i.as_str().to_owned(),
        Value::Float(f) => py_float(*f),
        Value::String(s) => py_str_repr(s),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{}: {}", py_str_repr(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's `str()` of a float.
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        auspex_wire::json::python_float_repr(f)
    }
}

/// Python's `repr()` of a string (the text of several error details).
pub fn py_str_repr(s: &str) -> String {
    auspex_wire::json::python_str_repr(s)
}

fn positive_int(v: &Value) -> Option<&Int> {
    match v {
        Value::Int(i) if int_at_least(i, 1) => Some(i),
        _ => None,
    }
}

/// Turns a request's `options` (`None` or `null`: none) into the complete
/// chain sent to the backend and recorded, or says why it is rejected.
pub fn sanitize_options(
    raw: Option<&Value>,
    policy: &GenerationPolicy,
) -> Result<Object, OptionsRejected> {
    let reject = |m: String| Err(OptionsRejected(m));
    let empty = Object::new();
    let raw = match raw {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(_) => return reject("options must be an object".into()),
    };
    const ALWAYS: [&str; 6] = [
        "seed",
        "num_predict",
        "num_ctx",
        "temperature",
        "logprobs",
        "top_logprobs",
    ];
    let mut unknown: Vec<&str> = raw
        .keys()
        .map(String::as_str)
        .filter(|k| !ALWAYS.contains(k) && policy.knob(k).is_none())
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        let list: Vec<String> = unknown.iter().map(|k| py_str_repr(k)).collect();
        return reject(format!(
            "options not permitted (undeclared or unknown): [{}]",
            list.join(", ")
        ));
    }
    let mut out = policy.effective_options();
    if policy.is_sampling() {
        let temp = match raw.get("temperature") {
            None => policy.temperature,
            Some(v) => match number(v) {
                Some(t) if t >= 0.0 => t,
                _ => return reject("temperature must be a number >= 0".into()),
            },
        };
        if temp > policy.temperature {
            let asked = raw.get("temperature").map(py_repr).unwrap_or_default();
            return reject(format!(
                "temperature {asked} exceeds the manifest-declared {}",
                py_float(policy.temperature)
            ));
        }
        out.insert("temperature".into(), Value::Float(temp));
    } else {
        if let Some(t) = raw.get("temperature")
            && !py_eq(t, &Value::from(0u64))
        {
            return reject(
                "temperature must be 0 (this experiment declared greedy decoding)".into(),
            );
        }
        out.insert("temperature".into(), Value::from(0u64));
    }
    for (k, declared) in &policy.knobs {
        if let Some(asked) = raw.get(*k)
            && !py_eq(asked, declared)
        {
            return reject(format!(
                "{k} {} differs from the manifest-declared {}",
                py_repr(asked),
                py_repr(declared)
            ));
        }
        out.insert((*k).into(), declared.clone());
    }
    let seed = match raw.get("seed") {
        Some(Value::Int(i)) => Value::Int(i.clone()),
        Some(_) => return reject("seed must be an integer".into()),
        None => match (&policy.seed, policy.is_sampling()) {
            (Some(s), true) => Value::Int(s.clone()),
            _ => Value::from(0u64),
        },
    };
    out.insert("seed".into(), seed);
    if let Some(v) = raw.get("num_predict") {
        let Some(n) = positive_int(v) else {
            return reject("num_predict must be a positive integer".into());
        };
        let clamped = n
            .as_u64()
            .map_or(MAX_NUM_PREDICT, |n| n.min(MAX_NUM_PREDICT));
        out.insert("num_predict".into(), Value::from(clamped));
    }
    if let Some(v) = raw.get("num_ctx") {
        if positive_int(v).is_none() {
            return reject("num_ctx must be a positive integer".into());
        }
        out.insert("num_ctx".into(), v.clone());
    }
    if let Some(v) = raw.get("logprobs") {
        if !matches!(v, Value::Bool(_) | Value::Int(_)) {
            return reject("logprobs must be a bool or int".into());
        }
        out.insert("logprobs".into(), v.clone());
    }
    if let Some(v) = raw.get("top_logprobs") {
        match v {
            Value::Int(i) if !i.is_negative() => {}
            _ => return reject("top_logprobs must be a non-negative integer".into()),
        }
        out.insert("top_logprobs".into(), v.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use auspex_wire::json;

    fn parse(text: &str) -> Value {
        json::parse(text.as_bytes()).expect("test JSON")
    }

    fn compact(o: &Object) -> String {
        crate::jsonfmt::compact(&Value::Object(o.clone()))
    }

    fn policy(det: &str) -> GenerationPolicy {
        GenerationPolicy::from_block(&parse(det)).expect("honourable policy")
    }

    #[test]
    fn the_observed_greedy_chain() {
        // worker.md §7.4, observed on the wire and signed (§4.7).
        let p = GenerationPolicy::from_manifest(&parse(r#"{"executor": {}}"#)).expect("greedy");
        let out = sanitize_options(Some(&parse(r#"{"num_predict": 16}"#)), &p).expect("ok");
        assert_eq!(
            compact(&out),
            r#"{"top_k":1,"top_p":1.0,"min_p":0.0,"typical_p":1.0,"repeat_penalty":1.0,"repeat_last_n":0,"presence_penalty":0.0,"frequency_penalty":0.0,"mirostat":0,"temperature":0,"seed":0,"num_predict":16}"#
        );
        // An explicit null block is greedy too; so are no options at all.
        let p = GenerationPolicy::from_manifest(&parse(r#"{"inference_determinism": null}"#))
            .expect("greedy");
        let out = sanitize_options(None, &p).expect("ok");
        assert_eq!(
            compact(&out),
            r#"{"top_k":1,"top_p":1.0,"min_p":0.0,"typical_p":1.0,"repeat_penalty":1.0,"repeat_last_n":0,"presence_penalty":0.0,"frequency_penalty":0.0,"mirostat":0,"temperature":0,"seed":0}"#
        );
    }

    #[test]
    fn the_observed_seeded_sampling_chain() {
        // Declared temperature 0.7, seed 42, top_p 0.9: top_k stays neutral.
        let p = policy(r#"{"temperature": 0.7, "seed": 42, "top_p": 0.9}"#);
        assert!(p.is_sampling());
        let out = sanitize_options(Some(&parse("{}")), &p).expect("ok");
        assert_eq!(
            compact(&out),
            r#"{"top_k":0,"top_p":0.9,"min_p":0.0,"typical_p":1.0,"repeat_penalty":1.0,"repeat_last_n":0,"presence_penalty":0.0,"frequency_penalty":0.0,"mirostat":0,"temperature":0.7,"seed":42}"#
        );
        // Less sampling than declared, a per-round seed, the declared knob
        // at its value, every passthrough key, in the signed order.
        let out = sanitize_options(
            Some(&parse(
                r#"{"top_logprobs": 3, "logprobs": true, "num_ctx": 2048, "num_predict": 99999,
                    "seed": 7, "top_p": 0.9, "temperature": 0}"#,
            )),
            &p,
        )
        .expect("ok");
        assert_eq!(
            compact(&out),
            r#"{"top_k":0,"top_p":0.9,"min_p":0.0,"typical_p":1.0,"repeat_penalty":1.0,"repeat_last_n":0,"presence_penalty":0.0,"frequency_penalty":0.0,"mirostat":0,"temperature":0.0,"seed":7,"num_predict":4096,"num_ctx":2048,"logprobs":true,"top_logprobs":3}"#
        );
    }

    #[test]
    fn declared_knobs_apply_in_place_under_greedy_too() {
        let p = policy(
            r#"{"top_k": 40, "repeat_last_n": -1, "repeat_penalty": 1, "min_p": 0, "top_p": 1}"#,
        );
        assert!(!p.is_sampling());
        let out = sanitize_options(Some(&parse(r#"{"top_k": 40.0, "top_p": true}"#)), &p)
            .expect("equal by value, as Python compares");
        assert_eq!(
            compact(&out),
            r#"{"top_k":40,"top_p":1.0,"min_p":0.0,"typical_p":1.0,"repeat_penalty":1.0,"repeat_last_n":-1,"presence_penalty":0.0,"frequency_penalty":0.0,"mirostat":0,"temperature":0,"seed":0}"#
        );
        let e = sanitize_options(Some(&parse(r#"{"top_k": 41}"#)), &p).expect_err("differs");
        assert_eq!(e.0, "top_k 41 differs from the manifest-declared 40");
        // An undeclared knob is not requestable, even at its neutral value.
        let e = sanitize_options(
            Some(&parse(r#"{"top_p": 1.0}"#)),
            &GenerationPolicy::greedy(),
        )
        .expect_err("undeclared");
        assert_eq!(
            e.0,
            "options not permitted (undeclared or unknown): ['top_p']"
        );
        let e = sanitize_options(
            Some(&parse(r#"{"zeta": 1, "mirostat": 2, "seed": 1}"#)),
            &GenerationPolicy::greedy(),
        )
        .expect_err("unknown");
        assert_eq!(
            e.0,
            "options not permitted (undeclared or unknown): ['mirostat', 'zeta']"
        );
    }

    #[test]
    fn greedy_temperature_and_seed_rules() {
        let g = GenerationPolicy::greedy();
        for ok in [
            r#"{"temperature": 0}"#,
            r#"{"temperature": 0.0}"#,
            r#"{"temperature": -0.0}"#,
        ] {
            let out = sanitize_options(Some(&parse(ok)), &g).expect(ok);
            assert_eq!(out.get("temperature"), Some(&Value::from(0u64)), "{ok}");
        }
        for bad in [
            r#"{"temperature": 0.1}"#,
            r#"{"temperature": "0"}"#,
            r#"{"temperature": null}"#,
        ] {
            let e = sanitize_options(Some(&parse(bad)), &g).expect_err(bad);
            assert_eq!(
                e.0,
                "temperature must be 0 (this experiment declared greedy decoding)"
            );
        }
        let out = sanitize_options(
            Some(&parse(r#"{"seed": 123456789012345678901234567890}"#)),
            &g,
        )
        .expect("big seeds pass through");
        assert_eq!(
            compact(&out).rsplit_once(",").map(|(_, s)| s.to_owned()),
            Some(r#""seed":123456789012345678901234567890}"#.to_owned())
        );
        for bad in [r#"{"seed": true}"#, r#"{"seed": 1.0}"#, r#"{"seed": "1"}"#] {
            let e = sanitize_options(Some(&parse(bad)), &g).expect_err(bad);
            assert_eq!(e.0, "seed must be an integer");
        }
        let e = sanitize_options(Some(&parse("[]")), &g).expect_err("array");
        assert_eq!(e.0, "options must be an object");
    }

    #[test]
    fn sampling_temperature_rules() {
        let p = policy(r#"{"temperature": 0.7, "seed": 42}"#);
        let e = sanitize_options(Some(&parse(r#"{"temperature": 0.8}"#)), &p).expect_err("more");
        assert_eq!(e.0, "temperature 0.8 exceeds the manifest-declared 0.7");
        let e = sanitize_options(Some(&parse(r#"{"temperature": 1}"#)), &p).expect_err("more");
        assert_eq!(e.0, "temperature 1 exceeds the manifest-declared 0.7");
        for bad in [
            r#"{"temperature": -0.1}"#,
            r#"{"temperature": true}"#,
            r#"{"temperature": NaN}"#,
        ] {
            let e = sanitize_options(Some(&parse(bad)), &p).expect_err(bad);
            assert_eq!(e.0, "temperature must be a number >= 0");
        }
        let out = sanitize_options(Some(&parse(r#"{"temperature": 0}"#)), &p).expect("less");
        assert_eq!(out.get("temperature"), Some(&Value::Float(0.0)));
        let out = sanitize_options(None, &p).expect("declared");
        assert_eq!(out.get("temperature"), Some(&Value::Float(0.7)));
        assert_eq!(out.get("seed"), Some(&Value::from(42u64)));
    }

    #[test]
    fn passthrough_and_clamps() {
        let g = GenerationPolicy::greedy();
        for (bad, msg) in [
            (
                r#"{"num_predict": 0}"#,
                "num_predict must be a positive integer",
            ),
            (
                r#"{"num_predict": true}"#,
                "num_predict must be a positive integer",
            ),
            (
                r#"{"num_predict": 5.0}"#,
                "num_predict must be a positive integer",
            ),
            (r#"{"num_ctx": -4}"#, "num_ctx must be a positive integer"),
            (r#"{"logprobs": "yes"}"#, "logprobs must be a bool or int"),
            (r#"{"logprobs": 1.0}"#, "logprobs must be a bool or int"),
            (
                r#"{"top_logprobs": -1}"#,
                "top_logprobs must be a non-negative integer",
            ),
            (
                r#"{"top_logprobs": false}"#,
                "top_logprobs must be a non-negative integer",
            ),
        ] {
            let e = sanitize_options(Some(&parse(bad)), &g).expect_err(bad);
            assert_eq!(e.0, msg, "{bad}");
        }
        let out = sanitize_options(
            Some(&parse(
                r#"{"num_predict": 123456789012345678901234567890, "logprobs": 5}"#,
            )),
            &g,
        )
        .expect("ok");
        assert_eq!(out.get("num_predict"), Some(&Value::from(4096u64)));
        assert_eq!(out.get("logprobs"), Some(&Value::from(5u64)));
    }

    #[test]
    fn unhonourable_blocks_are_refused() {
        for (det, msg) in [
            ("[]", "inference_determinism must be an object"),
            (
                r#"{"temperature": "hot"}"#,
                "inference_determinism.temperature must be a number",
            ),
            (
                r#"{"temperature": null}"#,
                "inference_determinism.temperature must be a number",
            ),
            (
                r#"{"temperature": true}"#,
                "inference_determinism.temperature must be a number",
            ),
            (
                r#"{"temperature": -1}"#,
                "inference_determinism.temperature must be >= 0",
            ),
            (
                r#"{"seed": 1.5}"#,
                "inference_determinism.seed must be an integer",
            ),
            (
                r#"{"top_p": 0}"#,
                "inference_determinism.top_p must be in (0, 1]",
            ),
            (
                r#"{"top_p": 1.5}"#,
                "inference_determinism.top_p must be in (0, 1]",
            ),
            (
                r#"{"top_k": 0}"#,
                "inference_determinism.top_k must be a positive integer",
            ),
            (
                r#"{"top_k": 2.0}"#,
                "inference_determinism.top_k must be a positive integer",
            ),
            (
                r#"{"min_p": 1}"#,
                "inference_determinism.min_p must be in [0, 1)",
            ),
            (
                r#"{"repeat_penalty": 0}"#,
                "inference_determinism.repeat_penalty must be > 0",
            ),
            (
                r#"{"repeat_last_n": -2}"#,
                "inference_determinism.repeat_last_n must be an integer >= -1",
            ),
        ] {
            let e = GenerationPolicy::from_block(&parse(det)).expect_err(det);
            assert_eq!(e.0, msg, "{det}");
        }
        let e = GenerationPolicy::from_block(&parse(r#"{"temperature": 0.5}"#))
            .expect_err("unseeded sampling");
        assert!(e.0.starts_with("seeded sampling (temperature > 0) requires a pinned seed"));
        // Nulls are absent; unknown members (serving_version_pin,
        // seed_policy, hardware_class) are not the policy's business.
        let p = policy(
            r#"{"seed": null, "top_p": null, "serving_version_pin": "ollama/0.1", "seed_policy": "fixed"}"#,
        );
        assert_eq!(p, GenerationPolicy::greedy());
    }

    #[test]
    fn python_equality_and_repr() {
        assert!(py_eq(&parse("1"), &parse("1.0")));
        assert!(py_eq(&parse("true"), &parse("1")));
        assert!(py_eq(&parse("false"), &parse("0.0")));
        assert!(!py_eq(&parse("1"), &parse("\"1\"")));
        assert!(py_eq(
            &parse(r#"{"a": 1, "b": [0]}"#),
            &parse(r#"{"b": [0.0], "a": true}"#)
        ));
        assert!(!py_eq(&parse(r#"{"a": 1}"#), &parse(r#"{"a": 1, "b": 2}"#)));
        assert!(!py_eq(&parse("NaN"), &parse("NaN")));
        assert_eq!(
            py_repr(&parse(r#"["it's", "x", null, true, 1e16]"#)),
            r#"["it's", 'x', None, True, 1e+16]"#
        );
    }
}
