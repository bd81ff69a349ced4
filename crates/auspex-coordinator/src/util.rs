//! Small shared pieces: random ids, the clock, Python-style datetimes and a
//! JSON writer that keeps member order.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use auspex_wire::json::{self, Object, Value};
use auspex_wire::workunit::DateTime;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Python's `secrets.token_urlsafe(n)`: `n` random bytes, URL-safe base64
/// without padding.
pub fn token_urlsafe(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // The OS RNG failing is not recoverable and not caused by a request;
    // fall back to the clock so an id is still produced (ids are not
    // secrets except maintainer tokens, which are generated at start-up
    // through `secret_token`).
    if getrandom::fill(&mut bytes).is_err() {
        let t = now_micros().to_le_bytes();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = t[i % t.len()] ^ (i as u8);
        }
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An id whose text sorts in creation order: 8 characters of a strictly
/// increasing microsecond clock (per process), then 4 random characters,
/// in a URL-safe alphabet listed in ASCII order — 12 characters, like
/// `token_urlsafe(9)`. Rows keyed by such ids are appended at the end of
/// their B-tree indexes instead of landing on a random page, which keeps
/// the pages a commit writes (and so the group commit's cost) small. Used
/// for the high-volume rows (assignments, results, receipts); the random
/// part keeps them unguessable enough for ids that are not secrets.
pub fn ordered_id() -> String {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    const ALPHABET: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
    let now = now_micros();
    let mut prev = LAST.load(Ordering::Relaxed);
    let t = loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(seen) => prev = seen,
        }
    };
    let mut rnd = [0u8; 3];
    if getrandom::fill(&mut rnd).is_err() {
        rnd = [(t >> 3) as u8, (t >> 11) as u8, (t >> 19) as u8];
    }
    let r = u32::from(rnd[0]) << 16 | u32::from(rnd[1]) << 8 | u32::from(rnd[2]);
    let mut out = String::with_capacity(12);
    for i in (0..8).rev() {
        out.push(char::from(ALPHABET[((t >> (6 * i)) & 63) as usize]));
    }
    for i in (0..4).rev() {
        out.push(char::from(ALPHABET[((r >> (6 * i)) & 63) as usize]));
    }
    out
}

/// A secret token (maintainer bearer): fails instead of degrading.
pub fn secret_token(n: usize) -> Result<String, getrandom::Error> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Python `datetime.isoformat()` of a UTC instant: `YYYY-MM-DDTHH:MM:SS`
/// plus `.ffffff` when the microseconds are non-zero, then `+00:00`.
/// Strings of this form sort in time order (`+` sorts before `.`).
pub fn iso_from_micros(micros: i64) -> String {
    match DateTime::from_unix_micros(i128::from(micros)) {
        Ok(dt) => iso_utc(&dt),
        Err(_) => "1970-01-01T00:00:00+00:00".to_owned(),
    }
}

fn iso_utc(dt: &DateTime) -> String {
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if dt.microsecond() != 0 {
        let _ = write!(s, ".{:06}", dt.microsecond());
    }
    s.push_str("+00:00");
    s
}

/// The current time as [`iso_from_micros`].
pub fn iso_now() -> String {
    iso_from_micros(now_micros())
}

/// A datetime as a client sent it, parsed with Pydantic's rules.
#[derive(Debug, Clone)]
pub struct ParsedTime {
    /// The instant in UTC as Python `isoformat()` (the sort key).
    pub utc_iso: String,
    /// Microseconds since the epoch.
    pub micros: i64,
    /// The parsed value (keeps the sender's offset).
    pub value: DateTime,
}

/// Parses `text` as Pydantic's `datetime` does; naive values are read as
/// UTC for ordering.
pub fn parse_time(text: &str) -> Option<ParsedTime> {
    let value = DateTime::parse_pydantic(text).ok()?;
    let micros = match value.unix_micros() {
        Some(m) => m,
        None => {
            let utc = DateTime::new(
                value.year(),
                value.month(),
                value.day(),
                value.hour(),
                value.minute(),
                value.second(),
                value.microsecond(),
                Some(0),
            )
            .ok()?;
            utc.unix_micros()?
        }
    };
    let micros = i64::try_from(micros).ok()?;
    Some(ParsedTime {
        utc_iso: iso_from_micros(micros),
        micros,
        value,
    })
}

/// JSON text of `v` keeping member order: strings ASCII-escaped and floats
/// in Python `repr` (as `json.dumps` with default settings but compact), so
/// `auspex_wire::json::parse` reads back exactly the same value.
pub fn to_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json::write_ascii_string(k, out);
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
        // Scalars are written exactly as the canonical encoder writes them.
        scalar => json::write_canonical(scalar, out),
    }
}

/// Builder for response objects (member order = insertion order).
#[derive(Debug, Default, Clone)]
pub struct Obj(Object);

impl Obj {
    /// An empty object.
    pub fn new() -> Obj {
        Obj(Object::new())
    }
    /// Sets `key`.
    pub fn set(mut self, key: &str, v: impl Into<Value>) -> Obj {
        self.0.insert(key.to_owned(), v.into());
        self
    }
    /// Sets `key` when `v` is `Some` (Pydantic `exclude_none`).
    pub fn opt(mut self, key: &str, v: Option<impl Into<Value>>) -> Obj {
        if let Some(v) = v {
            self.0.insert(key.to_owned(), v.into());
        }
        self
    }
    /// The value.
    pub fn build(self) -> Value {
        Value::Object(self.0)
    }
}

impl From<Obj> for Value {
    fn from(o: Obj) -> Value {
        o.build()
    }
}

/// Parses stored JSON text written by [`to_json`] (or any JSON); `Null`
/// when it does not parse (stored data is ours, so this does not happen).
pub fn parse_stored(text: &str) -> Value {
    json::parse(text.as_bytes()).unwrap_or(Value::Null)
}

/// Whether `s` is non-empty and every character is in `[A-Za-z0-9_-]`.
pub fn is_id_chars(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `^[a-z][a-z0-9-]*$` with a length range in characters.
pub fn is_label(s: &str, min: usize, max: usize) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        && (min..=max).contains(&s.len())
}

/// Exactly 64 lowercase hex characters.
pub fn is_hex64_lower(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Exactly 64 hex characters, either case.
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_ids_sort_in_creation_order_and_are_unique() {
        let ids: Vec<String> = (0..10_000).map(|_| ordered_id()).collect();
        assert!(ids.iter().all(|i| {
            i.len() == 12
                && i.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }));
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
    }

    #[test]
    fn iso_form_matches_python() {
        assert_eq!(iso_from_micros(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(iso_from_micros(1), "1970-01-01T00:00:00.000001+00:00");
        let p = parse_time("2026-07-01T14:00:00.5+02:00").expect("valid time");
        assert_eq!(p.utc_iso, "2026-07-01T12:00:00.500000+00:00");
        assert!(iso_from_micros(0) < iso_from_micros(1));
    }

    #[test]
    fn json_round_trips() {
        let v = json::parse(br#"{"b":1e16,"a":[1.0,2,"\u00e9",123456789012345678901234]}"#)
            .expect("valid JSON");
        let text = to_json(&v);
        assert_eq!(json::parse(text.as_bytes()).expect("round trip"), v);
        assert!(text.starts_with(r#"{"b":1e+16"#));
    }
}
