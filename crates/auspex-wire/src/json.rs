//! JSON with Python's semantics, and the two byte-exact encoders built on it.
//!
//! Almost every hash in the protocol is taken over Python's
//! `json.dumps(obj, sort_keys=True, separators=(",", ":"))` of an object that
//! Python's `json.loads` produced (spec `tenant-sdk.md` §3.0). serde_json
//! differs from Python on nearly every detail that matters for those bytes
//! (integers of any size, `1.10` vs `1.1`, `1e-05`, `NaN`, `\u` escapes, key
//! order), so this module has its own small value type and parser:
//!
//! * [`parse`] follows `json.loads`: number tokens with `.`/`e`/`E` become IEEE
//!   doubles (overflow gives infinity), others exact integers of any size (up to
//!   Python's 4300-digit conversion limit); `NaN`, `Infinity`, `-Infinity` are
//!   accepted; a duplicated key keeps its first position and its last value;
//!   control characters inside strings are refused.
//! * [`canonical`] is the Python-canonical encoding (sorted keys, ASCII only,
//!   Python float `repr`).
//! * [`pydantic_compact`] and [`pydantic_indent`] are the Pydantic
//!   `model_dump_json()` layouts (insertion order, raw UTF-8, Ryu floats) used for
//!   the manifest signing input and for files the SDK writes (§3.1).
//!
//! One divergence from Python is deliberate: a lone UTF-16 surrogate escape
//! (`"\ud800"`) is refused, because a Rust `String` cannot hold it.

use std::fmt::Write as _;

use indexmap::IndexMap;

/// Python's default limit on the number of digits in an `int` parsed from text
/// (`sys.get_int_max_str_digits()`); `json.loads` raises beyond it.
pub const MAX_INT_DIGITS: usize = 4300;

/// Nesting depth beyond which [`parse`] refuses input (Python's recursion limit
/// is about 1000 frames; we stop at the same order of magnitude).
pub const MAX_DEPTH: usize = 1000;

/// A JSON value as Python's `json.loads` sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null` (`None`).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer of any size.
    Int(Int),
    /// An IEEE double, including NaN and the infinities.
    Float(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object; keys keep their first insertion position.
    Object(Object),
}

/// An object's members in insertion order.
pub type Object = IndexMap<String, Value>;

/// An integer of any size, held as its canonical decimal text
/// (optional `-`, no leading zeros, never `-0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Int(String);

impl Int {
    /// Parses canonical or non-canonical decimal digits (`-0`, `007`).
    /// Returns `None` when `text` is not an optional `-` followed by digits.
    pub fn from_decimal(text: &str) -> Option<Int> {
        let (neg, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let trimmed = digits.trim_start_matches('0');
        if trimmed.is_empty() {
            return Some(Int("0".to_owned()));
        }
        Some(Int(if neg {
            format!("-{trimmed}")
        } else {
            trimmed.to_owned()
        }))
    }

    /// The canonical decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as `i64`, if it fits.
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }

    /// The value as `u64`, if it fits.
    pub fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }

    /// True for negative values.
    pub fn is_negative(&self) -> bool {
        self.0.starts_with('-')
    }

    /// The nearest `f64` (what Python's `float(int)` gives, infinity on overflow).
    pub fn to_f64(&self) -> f64 {
        self.0.parse().unwrap_or(f64::NAN)
    }
}

impl From<i64> for Int {
    fn from(v: i64) -> Int {
        Int(v.to_string())
    }
}

impl From<u64> for Int {
    fn from(v: u64) -> Int {
        Int(v.to_string())
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(Int::from(v))
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(Int::from(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Value {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

impl From<Object> for Value {
    fn from(v: Object) -> Value {
        Value::Object(v)
    }
}

impl Value {
    /// The JSON type name, as used in error messages (`object`, `array`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// The object's members, if this is an object.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The text, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Member `key` of an object (`None` for non-objects and absent keys).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object().and_then(|o| o.get(key))
    }

    /// Converts from a `serde_json::Value` (numbers keep their serde_json form:
    /// integers stay integers, everything else becomes a double).
    pub fn from_serde(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::from(i)
                } else if let Some(u) = n.as_u64() {
                    Value::from(u)
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from_serde).collect()),
            serde_json::Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_serde(v)))
                    .collect(),
            ),
        }
    }
}

/// Where and why [`parse`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at line {line} column {column} (byte {offset})")]
pub struct ParseError {
    /// What was wrong.
    pub kind: ParseErrorKind,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// 0-based byte offset.
    pub offset: usize,
}

/// The kinds of [`ParseError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The bytes are not UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A UTF-8 byte-order mark opens the text (Python refuses it too).
    #[error("unexpected UTF-8 byte-order mark")]
    Bom,
    /// The input ended early.
    #[error("unexpected end of input")]
    Eof,
    /// A character that cannot start or continue a value here.
    #[error("expected {expected}, found {found:?}")]
    Unexpected {
        /// What the grammar allows here.
        expected: &'static str,
        /// The character found.
        found: char,
    },
    /// Text after the value.
    #[error("extra data after the JSON value")]
    TrailingData,
    /// A raw control character inside a string.
    #[error("invalid control character {0:?} in string")]
    ControlCharacter(char),
    /// An unknown `\` escape.
    #[error("invalid escape")]
    InvalidEscape,
    /// A `\u` escape of a lone UTF-16 surrogate.
    #[error("lone UTF-16 surrogate \\u{0:04x} (not representable)")]
    LoneSurrogate(u16),
    /// An integer with more digits than Python converts.
    #[error("integer has {0} digits, more than Python's limit of 4300")]
    IntTooLong(usize),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Parses JSON text with Python `json.loads` semantics.
pub fn parse(bytes: &[u8]) -> Result<Value, ParseError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let offset = e.valid_up_to();
            // Position the error after the valid prefix.
            let prefix = std::str::from_utf8(&bytes[..offset]).unwrap_or("");
            let (line, column) = line_col(prefix, offset);
            return Err(ParseError {
                kind: ParseErrorKind::InvalidUtf8,
                line,
                column,
                offset,
            });
        }
    };
    parse_str(text)
}

/// Parses JSON text (already UTF-8) with Python `json.loads` semantics.
pub fn parse_str(text: &str) -> Result<Value, ParseError> {
    let mut p = Parser {
        src: text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    if text.starts_with('\u{feff}') {
        return Err(p.error(ParseErrorKind::Bom));
    }
    p.skip_ws();
    let v = p.value()?;
    p.skip_ws();
    if p.pos != p.bytes.len() {
        return Err(p.error(ParseErrorKind::TrailingData));
    }
    Ok(v)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, kind: ParseErrorKind) -> ParseError {
        let mut offset = self.pos.min(self.bytes.len());
        while !self.src.is_char_boundary(offset) {
            offset -= 1;
        }
        let (line, column) = line_col(self.src, offset);
        ParseError {
            kind,
            line,
            column,
            offset,
        }
    }

    fn unexpected(&self, expected: &'static str) -> ParseError {
        match self.src[self.pos.min(self.src.len())..].chars().next() {
            Some(found) => self.error(ParseErrorKind::Unexpected { expected, found }),
            None => self.error(ParseErrorKind::Eof),
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat_literal(&mut self, lit: &str) -> bool {
        if self.src[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    /// One value, without recursion: open containers live on an explicit
    /// stack, so hostile nesting costs heap, never the thread's stack (a
    /// server parses on small-stack worker threads).
    fn value(&mut self) -> Result<Value, ParseError> {
        enum Open {
            Array(Vec<Value>),
            /// Members so far and the key whose value is being parsed.
            Object(Object, String),
        }
        let mut stack: Vec<Open> = Vec::new();
        loop {
            // A value starts here, nested `stack.len()` containers deep.
            if stack.len() > MAX_DEPTH {
                return Err(self.error(ParseErrorKind::TooDeep));
            }
            let mut done = match self.bytes.get(self.pos) {
                None => return Err(self.error(ParseErrorKind::Eof)),
                Some(b'{') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.bytes.get(self.pos) == Some(&b'}') {
                        self.pos += 1;
                        Value::Object(Object::new())
                    } else {
                        let key = self.member_key()?;
                        stack.push(Open::Object(Object::new(), key));
                        continue;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.bytes.get(self.pos) == Some(&b']') {
                        self.pos += 1;
                        Value::Array(Vec::new())
                    } else {
                        stack.push(Open::Array(Vec::new()));
                        continue;
                    }
                }
                Some(b'"') => Value::String(self.string()?),
                Some(b'n') if self.eat_literal("null") => Value::Null,
                Some(b't') if self.eat_literal("true") => Value::Bool(true),
                Some(b'f') if self.eat_literal("false") => Value::Bool(false),
                Some(b'N') if self.eat_literal("NaN") => Value::Float(f64::NAN),
                Some(b'I') if self.eat_literal("Infinity") => Value::Float(f64::INFINITY),
                Some(b'-') if self.eat_literal("-Infinity") => Value::Float(f64::NEG_INFINITY),
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(_) => return Err(self.unexpected("a JSON value")),
            };
            // Hand the finished value to its container; close containers
            // whose last element it was.
            loop {
                let Some(open) = stack.pop() else {
                    return Ok(done);
                };
                self.skip_ws();
                match open {
                    Open::Array(mut items) => {
                        items.push(done);
                        match self.bytes.get(self.pos) {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                stack.push(Open::Array(items));
                                break;
                            }
                            Some(b']') => {
                                self.pos += 1;
                                done = Value::Array(items);
                            }
                            _ => return Err(self.unexpected("',' or ']'")),
                        }
                    }
                    Open::Object(mut members, key) => {
                        // Python dict semantics: a repeated key keeps its
                        // first position and takes the last value.
                        members.insert(key, done);
                        match self.bytes.get(self.pos) {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                let key = self.member_key()?;
                                stack.push(Open::Object(members, key));
                                break;
                            }
                            Some(b'}') => {
                                self.pos += 1;
                                done = Value::Object(members);
                            }
                            _ => return Err(self.unexpected("',' or '}'")),
                        }
                    }
                }
            }
        }
    }

    /// `"key"` `:` and the whitespace after it; the value follows.
    fn member_key(&mut self) -> Result<String, ParseError> {
        if self.bytes.get(self.pos) != Some(&b'"') {
            return Err(self.unexpected("a property name in double quotes"));
        }
        let key = self.string()?;
        self.skip_ws();
        if self.bytes.get(self.pos) != Some(&b':') {
            return Err(self.unexpected("':' delimiter"));
        }
        self.pos += 1;
        self.skip_ws();
        Ok(key)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        if self.bytes[self.pos] == b'-' {
            self.pos += 1;
        }
        match self.bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.unexpected("a digit")),
        }
        let int_end = self.pos;
        let mut is_float = false;
        // Python's scanner takes the fraction and exponent only when complete;
        // a dangling '.' or 'e' is then "extra data".
        if self.bytes.get(self.pos) == Some(&b'.')
            && matches!(self.bytes.get(self.pos + 1), Some(b'0'..=b'9'))
        {
            self.pos += 1;
            self.digits();
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            let save = self.pos;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                self.pos = save;
            } else {
                is_float = true;
            }
        }
        let token = &self.src[start..self.pos];
        if is_float {
            // Rust's parser rounds correctly, like Python's float(); overflow
            // gives infinity in both.
            let f: f64 = token.parse().map_err(|_| {
                let mut p = Parser { ..*self };
                p.pos = start;
                p.unexpected("a number")
            })?;
            Ok(Value::Float(f))
        } else {
            let ndigits = int_end - start - usize::from(token.starts_with('-'));
            if ndigits > MAX_INT_DIGITS {
                let mut p = Parser { ..*self };
                p.pos = start;
                return Err(p.error(ParseErrorKind::IntTooLong(ndigits)));
            }
            // Validated above: optional '-' then digits.
            Ok(Value::Int(
                Int::from_decimal(token).unwrap_or(Int("0".into())),
            ))
        }
    }

    fn hex4(&mut self) -> Result<u16, ParseError> {
        let h = self
            .src
            .get(self.pos..self.pos + 4)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error(ParseErrorKind::InvalidEscape))?;
        self.pos += 4;
        u16::from_str_radix(h, 16).map_err(|_| self.error(ParseErrorKind::InvalidEscape))
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.src[run_start..self.pos]);
            match self.bytes.get(self.pos) {
                None => return Err(self.error(ParseErrorKind::Eof)),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(&b) if b < 0x20 => {
                    return Err(self.error(ParseErrorKind::ControlCharacter(char::from(b))));
                }
                Some(_) => {
                    self.pos += 1; // backslash
                    let esc = self.bytes.get(self.pos).copied();
                    self.pos += 1;
                    match esc {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => {
                            let esc_start = self.pos - 2;
                            let hi = self.hex4()?;
                            let c = if (0xd800..0xdc00).contains(&hi) {
                                // A high surrogate pairs only with an immediately
                                // following \u low surrogate (Python's rule).
                                let lo = if self.src[self.pos..].starts_with("\\u") {
                                    let save = self.pos;
                                    self.pos += 2;
                                    let lo = self.hex4()?;
                                    if (0xdc00..0xe000).contains(&lo) {
                                        Some(lo)
                                    } else {
                                        self.pos = save;
                                        None
                                    }
                                } else {
                                    None
                                };
                                match lo {
                                    Some(lo) => {
                                        let cp = 0x10000
                                            + ((u32::from(hi) - 0xd800) << 10)
                                            + (u32::from(lo) - 0xdc00);
                                        char::from_u32(cp)
                                    }
                                    None => None,
                                }
                            } else {
                                char::from_u32(u32::from(hi))
                            };
                            match c {
                                Some(c) => out.push(c),
                                None => {
                                    self.pos = esc_start;
                                    return Err(self.error(ParseErrorKind::LoneSurrogate(hi)));
                                }
                            }
                        }
                        _ => {
                            self.pos -= 2;
                            return Err(self.error(ParseErrorKind::InvalidEscape));
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Python-canonical encoding (§3.0)
// ---------------------------------------------------------------------------

/// Python `json.dumps(v, sort_keys=True, separators=(",", ":"))` (with the
/// defaults `ensure_ascii=True`, `allow_nan=True`). The result is pure ASCII.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

/// SHA-256 of [`canonical`], as lowercase hex (`unit_payload_sha256`, manifest
/// hash, Merkle leaves hash their own canonical forms).
pub fn canonical_sha256(v: &Value) -> String {
    crate::sha256_hex(canonical(v).as_bytes())
}

/// Appends the Python-canonical encoding of `v` to `out`.
pub fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Int(i) => out.push_str(i.as_str()),
        Value::Float(f) => write_python_float(*f, out),
        Value::String(s) => write_ascii_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            // Python sorts str keys by code point; Rust compares &str by UTF-8
            // bytes, which orders identically.
            let mut keys: Vec<(&String, &Value)> = members.iter().collect();
            keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_ascii_string(k, out);
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
    }
}

/// A string as Python's `json.dumps` writes it with `ensure_ascii=True`.
pub fn write_ascii_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr()` of a `str`: single quotes unless the text holds a
/// single quote and no double quote; backslash escapes for the quote, `\\`,
/// `\n`, `\r`, `\t`, and `\x`/`\u`/`\U` escapes for characters Python does
/// not consider printable.
pub fn python_str_repr(s: &str) -> String {
    crate::manifest::pyrepr_str(s)
}

/// Python's `repr(float)` (what `json.dumps` writes for floats, with `NaN`,
/// `Infinity` and `-Infinity` for the non-finite values).
pub fn python_float_repr(f: f64) -> String {
    let mut out = String::new();
    write_python_float(f, &mut out);
    out
}

/// The shortest round-trip digits of a finite, non-zero `f` and its decimal
/// point position: `f = ±0.d1d2…dn × 10^decpt`.
///
/// Where several shortest digit strings round-trip, Python's `repr` (David
/// Gay's dtoa, mode 0) takes the one closest to the exact binary value, and so
/// does Ryu; Rust's own `{:e}` does not always (it prints
/// `1151919637618719.3` where Python prints `1151919637618719.2`), which the
/// differential test against CPython caught.
fn shortest_digits(f: f64) -> (String, i32) {
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(f.abs());
    let (mantissa, exp) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
    let exp: i32 = exp.trim_start_matches('+').parse().unwrap_or(0);
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all: String = format!("{int_part}{frac_part}");
    let leading = all.bytes().take_while(|&b| b == b'0').count();
    let digits = all[leading..].trim_end_matches('0').to_owned();
    let decpt = int_part.len() as i32 + exp - leading as i32;
    (digits, decpt)
}

fn write_python_float(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if f.is_sign_negative() {
        out.push('-');
    }
    if f == 0.0 {
        out.push_str("0.0");
        return;
    }
    let (digits, decpt) = shortest_digits(f);
    let n = digits.len() as i32;
    if decpt <= -4 || decpt > 16 {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        let _ = write!(out, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    } else if decpt <= 0 {
        out.push_str("0.");
        for _ in 0..-decpt {
            out.push('0');
        }
        out.push_str(&digits);
    } else if decpt >= n {
        out.push_str(&digits);
        for _ in 0..decpt - n {
            out.push('0');
        }
        out.push_str(".0");
    } else {
        out.push_str(&digits[..decpt as usize]);
        out.push('.');
        out.push_str(&digits[decpt as usize..]);
    }
}

// ---------------------------------------------------------------------------
// Pydantic layouts (§3.1)
// ---------------------------------------------------------------------------

/// Pydantic's compact `model_dump_json()` of a value whose objects are already
/// in declaration order: no whitespace, raw UTF-8, Ryu floats.
pub fn pydantic_compact(v: &Value) -> String {
    let mut out = String::new();
    write_pydantic(v, None, 0, &mut out);
    out
}

/// Pydantic's `model_dump_json(indent=2)`: two-space indent, `": "` after keys,
/// no trailing newline.
pub fn pydantic_indent(v: &Value) -> String {
    let mut out = String::new();
    write_pydantic(v, Some(2), 0, &mut out);
    out
}

fn newline(indent: Option<usize>, level: usize, out: &mut String) {
    if let Some(step) = indent {
        out.push('\n');
        for _ in 0..step * level {
            out.push(' ');
        }
    }
}

fn write_pydantic(v: &Value, indent: Option<usize>, level: usize, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Int(i) => out.push_str(i.as_str()),
        // pydantic-core writes non-finite floats as null by default
        // (`ser_json_inf_nan="null"`).
        Value::Float(f) if !f.is_finite() => out.push_str("null"),
        Value::Float(f) => {
            // Ryu's layout, except that pydantic-core signs positive exponents
            // (`1e+16`, where ryu writes `1e16`); negative ones are the same.
            let mut buf = ryu::Buffer::new();
            let text = buf.format_finite(*f);
            match text.split_once('e') {
                Some((mantissa, exp)) if !exp.starts_with('-') => {
                    out.push_str(mantissa);
                    out.push_str("e+");
                    out.push_str(exp);
                }
                _ => out.push_str(text),
            }
        }
        Value::String(s) => write_raw_string(s, out),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(indent, level + 1, out);
                write_pydantic(item, indent, level + 1, out);
            }
            newline(indent, level, out);
            out.push(']');
        }
        Value::Object(members) => {
            if members.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(indent, level + 1, out);
                write_raw_string(k, out);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_pydantic(v, indent, level + 1, out);
            }
            newline(indent, level, out);
            out.push('}');
        }
    }
}

/// A string as pydantic-core (and serde_json) write it: only `"`, `\` and
/// U+0000–U+001F are escaped; everything else, DEL and U+2028 included, is raw.
pub fn write_raw_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{0}'..='\u{1f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            _ => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `json.dumps(v, indent=2)` (ASCII-escaped, insertion order, `", "`
/// never appears because indent puts items on their own lines). Used where the
/// official CLI prints JSON objects it received.
pub fn python_indent(v: &Value) -> String {
    let mut out = String::new();
    write_python_indent(v, 0, &mut out);
    out
}

fn write_python_indent(v: &Value, level: usize, out: &mut String) {
    match v {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(Some(2), level + 1, out);
                write_python_indent(item, level + 1, out);
            }
            newline(Some(2), level, out);
            out.push(']');
        }
        Value::Object(members) if !members.is_empty() => {
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(Some(2), level + 1, out);
                write_ascii_string(k, out);
                out.push_str(": ");
                write_python_indent(v, level + 1, out);
            }
            newline(Some(2), level, out);
            out.push('}');
        }
        other => write_canonical(other, out),
    }
}

#[cfg(test)]
mod tests;
