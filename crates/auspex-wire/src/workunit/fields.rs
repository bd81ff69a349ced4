//! Field validators shared by the harness-file models (work unit, executor
//! output, result, reducer decision): Pydantic's lax-mode conversions for
//! `int` and `datetime`, which the generic [`Checker`] does not do.

use crate::json::{Object, Value};
use crate::validate::{Checker, JsonPath, ViolationKind};

use super::datetime::DateTime;

/// Pydantic lax `int` from a JSON value: integers, integral finite floats,
/// booleans (0/1) and strings of the form `[+-]?d(_?d)*(.0*)?` after trimming
/// whitespace. Returns `None` (after reporting) otherwise or when outside
/// `min..=max`.
pub(crate) fn lax_int(
    c: &mut Checker,
    path: &JsonPath,
    v: &Value,
    min: Option<i128>,
    max: Option<i128>,
) -> Option<i128> {
    let (n, text) = match v {
        Value::Int(i) => (i.as_str().parse::<i128>().ok(), i.as_str().to_owned()),
        Value::Bool(b) => (Some(i128::from(*b)), b.to_string()),
        Value::Float(f) if !f.is_finite() => {
            c.report(
                path.clone(),
                ViolationKind::WrongType {
                    expected: "finite number",
                    found: "non-finite number",
                },
            );
            return None;
        }
        Value::Float(f) if f.fract() != 0.0 => {
            c.report(
                path.clone(),
                ViolationKind::WrongType {
                    expected: "integer",
                    found: "number with a fractional part",
                },
            );
            return None;
        }
        Value::Float(f) => {
            let n = (f.abs() < 1.0e38).then_some(*f as i128);
            (n, crate::json::python_float_repr(*f))
        }
        Value::String(s) => match parse_int_text(s) {
            Some(n) => (n, s.clone()),
            None => {
                c.report(
                    path.clone(),
                    ViolationKind::WrongType {
                        expected: "integer",
                        found: "string that is not an integer",
                    },
                );
                return None;
            }
        },
        other => {
            c.report(
                path.clone(),
                ViolationKind::WrongType {
                    expected: "integer",
                    found: other.type_name(),
                },
            );
            return None;
        }
    };
    check_range(c, path, n, text, min, max)
}

/// Range check shared by the JSON and CBOR integer readers. `n` is `None`
/// when the value does not even fit `i128`.
pub(crate) fn check_range(
    c: &mut Checker,
    path: &JsonPath,
    n: Option<i128>,
    text: String,
    min: Option<i128>,
    max: Option<i128>,
) -> Option<i128> {
    let constraint = || match (min, max) {
        (Some(lo), Some(hi)) => format!("{lo} <= n <= {hi}"),
        (Some(lo), None) => format!("n >= {lo}"),
        (None, Some(hi)) => format!("n <= {hi}"),
        (None, None) => "n fits 128 bits".to_owned(),
    };
    match n {
        Some(n) if min.is_none_or(|lo| n >= lo) && max.is_none_or(|hi| n <= hi) => Some(n),
        _ => {
            c.report(
                path.clone(),
                ViolationKind::Range {
                    value: text,
                    constraint: constraint(),
                },
            );
            None
        }
    }
}

/// pydantic-core's string → int: trimmed, optional sign, digits with single
/// underscores between them, optionally `.` followed only by zeros. The outer
/// `Option` says whether the grammar matched, the inner whether it fits i128.
pub(crate) fn parse_int_text(s: &str) -> Option<Option<i128>> {
    let t = s.trim();
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (int_part, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    if let Some(f) = frac
        && (f.is_empty() || !f.bytes().all(|b| b == b'0'))
    {
        return None;
    }
    let b = int_part.as_bytes();
    if b.is_empty() || !b[0].is_ascii_digit() || !b[b.len() - 1].is_ascii_digit() {
        return None;
    }
    let mut digits = String::with_capacity(b.len() + 1);
    if neg {
        digits.push('-');
    }
    let mut prev_underscore = false;
    for &ch in b {
        match ch {
            b'0'..=b'9' => {
                digits.push(char::from(ch));
                prev_underscore = false;
            }
            b'_' if !prev_underscore => prev_underscore = true,
            _ => return None,
        }
    }
    Some(digits.parse::<i128>().ok())
}

/// Pydantic `datetime` from a JSON value: ISO text or a Unix timestamp (as a
/// number or decimal text).
pub(crate) fn datetime(c: &mut Checker, path: &JsonPath, v: &Value) -> Option<DateTime> {
    let parsed = match v {
        Value::String(s) => DateTime::parse_pydantic(s),
        Value::Int(i) => match i.as_i64() {
            Some(n) => DateTime::from_timestamp_i64(n),
            None => Err(super::datetime::DateTimeError::TimestampRange),
        },
        Value::Float(f) => DateTime::from_timestamp_f64(*f),
        other => {
            c.report(
                path.clone(),
                ViolationKind::WrongType {
                    expected: "datetime",
                    found: other.type_name(),
                },
            );
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

/// A `dict[str, Any]` member (a JSON object, any content).
pub(crate) fn object(c: &mut Checker, path: &JsonPath, v: &Value) -> Option<Object> {
    match v {
        Value::Object(o) => Some(o.clone()),
        other => {
            c.report(
                path.clone(),
                ViolationKind::WrongType {
                    expected: "object",
                    found: other.type_name(),
                },
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_text_matches_pydantic() {
        for (s, want) in [
            ("1_000", Some(Some(1000))),
            ("+3", Some(Some(3))),
            ("-3", Some(Some(-3))),
            ("3.00", Some(Some(3))),
            ("03", Some(Some(3))),
            ("\t3\n", Some(Some(3))),
            ("3.0 ", Some(Some(3))),
            ("3.", None),
            ("3.5", None),
            ("1e3", None),
            ("0x10", None),
            ("", None),
            (" ", None),
            ("_1", None),
            ("1__0", None),
            ("3_", None),
            ("+-3", None),
            ("- 3", None),
            (".0", None),
            ("3.000000000000000001", None),
        ] {
            assert_eq!(parse_int_text(s), want, "{s:?}");
        }
    }
}
