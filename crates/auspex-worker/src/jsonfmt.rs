//! The JSON text forms the official worker writes (all through
//! `auspex_wire::json` values, so numbers keep Python's int/float model):
//!
//! * [`compact`] — `json.dumps(v, separators=(",", ":"))`: insertion order,
//!   ASCII-escaped; the body of every signed request (`worker.md` §2.1);
//! * [`python_default`] — `json.dumps(v)`: `", "` and `": "` separators,
//!   insertion order, ASCII-escaped; `exec_input.json` and
//!   `AUSPEXAI_EXECUTOR_COMMAND` (§3.1, §3.2);
//! * [`isoformat`] — a coordinator datetime re-serialised by Python's
//!   `datetime.fromisoformat(...).isoformat()` (§3.1: `…Z` → `…+00:00`,
//!   fractions padded to six digits or dropped when zero).

use std::fmt::Write as _;

use auspex_wire::json::{self, Value};
use auspex_wire::workunit::DateTime;

/// `json.dumps(v, separators=(",", ":"))`.
pub fn compact(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out, ",", ":");
    out
}

/// `json.dumps(v)` with Python's default separators.
pub fn python_default(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out, ", ", ": ");
    out
}

fn write(v: &Value, out: &mut String, item_sep: &str, key_sep: &str) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                write(item, out, item_sep, key_sep);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                json::write_ascii_string(k, out);
                out.push_str(key_sep);
                write(item, out, item_sep, key_sep);
            }
            out.push('}');
        }
        // Scalars are written the same way by every Python form.
        other => json::write_canonical(other, out),
    }
}

/// Python `datetime.isoformat()` of a parsed datetime: `+00:00` (never `Z`)
/// for a zero offset, six fraction digits when the microseconds are not zero.
pub fn isoformat_of(dt: &DateTime) -> String {
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if dt.microsecond() != 0 {
        let _ = write!(out, ".{:06}", dt.microsecond());
    }
    if let Some(o) = dt.offset_seconds() {
        let sign = if o < 0 { '-' } else { '+' };
        let a = o.unsigned_abs();
        let _ = write!(out, "{sign}{:02}:{:02}", a / 3600, a / 60 % 60);
        if a % 60 != 0 {
            let _ = write!(out, ":{:02}", a % 60);
        }
    }
    out
}

/// The coordinator's `created_at` as the official runner hands it to the
/// executor (§3.1). Text that does not parse as an ISO datetime is passed on
/// unchanged (the executor's harness will judge it).
pub fn isoformat(text: &str) -> String {
    match DateTime::parse_iso(text) {
        Ok(dt) => isoformat_of(&dt),
        Err(_) => text.to_owned(),
    }
}

/// `datetime.now(UTC).isoformat()` (the runner's fallback `completed_at`).
pub fn now_isoformat() -> String {
    isoformat_of(&DateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Value {
        json::parse(text.as_bytes()).unwrap_or(Value::Null)
    }

    #[test]
    fn compact_keeps_insertion_order_and_escapes() {
        let value = v(r#"{"b": 1, "a": [1.0, 1e-05, "é"], "c": {"z": null, "y": true}}"#);
        assert_eq!(
            compact(&value),
            r#"{"b":1,"a":[1.0,1e-05,"\u00e9"],"c":{"z":null,"y":true}}"#
        );
        assert_eq!(
            python_default(&value),
            r#"{"b": 1, "a": [1.0, 1e-05, "\u00e9"], "c": {"z": null, "y": true}}"#
        );
        assert_eq!(
            python_default(&v(r#"["python", "executor.py"]"#)),
            r#"["python", "executor.py"]"#
        );
    }

    #[test]
    fn isoformat_matches_python() {
        assert_eq!(
            isoformat("2026-07-01T00:00:00.123Z"),
            "2026-07-01T00:00:00.123000+00:00"
        );
        assert_eq!(
            isoformat("2026-07-01T00:00:00Z"),
            "2026-07-01T00:00:00+00:00"
        );
        assert_eq!(
            isoformat("2026-07-01T00:00:00.000Z"),
            "2026-07-01T00:00:00+00:00"
        );
        assert_eq!(
            isoformat("2026-07-01T00:00:00.5+02:00"),
            "2026-07-01T00:00:00.500000+02:00"
        );
        assert_eq!(isoformat("2026-07-01T00:00:00"), "2026-07-01T00:00:00");
        assert_eq!(isoformat("not a date"), "not a date");
        assert!(now_isoformat().ends_with("+00:00"));
    }
}
