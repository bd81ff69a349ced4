//! A small, defensive CBOR (RFC 8949) decoder and the cbor2 `canonical=True`
//! encoder, for the protocol's CBOR objects: receipts, in-toto statements,
//! result-set predicates and COSE_Sign1 (spec `tenant-sdk.md` §3e).
//!
//! The decoder never trusts a length prefix: a byte or text string longer than
//! the rest of the input, or an array/map announcing more items than bytes
//! remain, is refused before anything is allocated; nesting (arrays, maps and
//! tags alike) deeper than [`MAX_DEPTH`] is refused; bytes after the top-level
//! item are refused (cbor2 ignores them; we do not want two readings of one
//! file). Indefinite-length items, half/single/double floats, tags and simple
//! values are decoded; duplicate map keys are kept in order (callers decide, see
//! [`Cbor::map_get`]).
//!
//! The encoder writes what cbor2 writes with `canonical=True`: definite lengths,
//! shortest integer heads, map entries sorted by the length and then the bytes
//! of their encoded keys (RFC 7049 §3.9), floats in the smallest IEEE width that
//! keeps the value (NaN as `f9 7e00`).

use std::cmp::Ordering;

/// Nesting depth (arrays, maps and tags) beyond which [`decode`] refuses input.
pub const MAX_DEPTH: usize = 128;

/// A decoded CBOR data item.
#[derive(Debug, Clone, PartialEq)]
pub enum Cbor {
    /// Major type 0: an unsigned integer.
    Unsigned(u64),
    /// Major type 1: the integer `-1 - n`.
    Negative(u64),
    /// Major type 2: a byte string.
    Bytes(Vec<u8>),
    /// Major type 3: a text string.
    Text(String),
    /// Major type 4: an array.
    Array(Vec<Cbor>),
    /// Major type 5: a map, entries in input order (duplicates kept).
    Map(Vec<(Cbor, Cbor)>),
    /// Major type 6: a tagged item.
    Tag(u64, Box<Cbor>),
    /// `false` / `true`.
    Bool(bool),
    /// `null`.
    Null,
    /// `undefined`.
    Undefined,
    /// Another simple value.
    Simple(u8),
    /// A half, single or double precision float.
    Float(f64),
}

impl Cbor {
    /// A short name of the item's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Cbor::Unsigned(_) | Cbor::Negative(_) => "integer",
            Cbor::Bytes(_) => "byte string",
            Cbor::Text(_) => "text string",
            Cbor::Array(_) => "array",
            Cbor::Map(_) => "map",
            Cbor::Tag(..) => "tagged item",
            Cbor::Bool(_) => "boolean",
            Cbor::Null => "null",
            Cbor::Undefined => "undefined",
            Cbor::Simple(_) => "simple value",
            Cbor::Float(_) => "float",
        }
    }

    /// The value as `i64`, for integers that fit.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Cbor::Unsigned(n) => i64::try_from(*n).ok(),
            Cbor::Negative(n) => i64::try_from(*n).ok().map(|n| -1 - n),
            _ => None,
        }
    }

    /// The text, for text strings.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Cbor::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, for byte strings.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Cbor::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The entries, for maps.
    pub fn as_map(&self) -> Option<&[(Cbor, Cbor)]> {
        match self {
            Cbor::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items, for arrays.
    pub fn as_array(&self) -> Option<&[Cbor]> {
        match self {
            Cbor::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The value of text key `key` in a map: the **last** entry wins, as when
    /// cbor2 builds a Python dict. `None` for non-maps and absent keys.
    pub fn map_get(&self, key: &str) -> Option<&Cbor> {
        self.as_map()?
            .iter()
            .rev()
            .find(|(k, _)| k.as_text() == Some(key))
            .map(|(_, v)| v)
    }

    /// Converts to a JSON [`Value`](crate::json::Value) when the item has a
    /// JSON reading: text-keyed maps, arrays, text, integers, floats, booleans
    /// and null. Byte strings, tags, `undefined`, other simple values and
    /// non-text map keys have none (`None`). Duplicate keys: last value wins.
    pub fn to_json(&self) -> Option<crate::json::Value> {
        use crate::json::{Int, Object, Value};
        Some(match self {
            Cbor::Unsigned(n) => Value::from(*n),
            Cbor::Negative(n) => {
                let text = format!("-{}", u128::from(*n) + 1);
                Value::Int(Int::from_decimal(&text)?)
            }
            Cbor::Text(s) => Value::String(s.clone()),
            Cbor::Array(items) => Value::Array(
                items
                    .iter()
                    .map(Cbor::to_json)
                    .collect::<Option<Vec<_>>>()?,
            ),
            Cbor::Map(entries) => {
                let mut o = Object::new();
                for (k, v) in entries {
                    o.insert(k.as_text()?.to_owned(), v.to_json()?);
                }
                Value::Object(o)
            }
            Cbor::Bool(b) => Value::Bool(*b),
            Cbor::Null => Value::Null,
            Cbor::Float(f) => Value::Float(*f),
            Cbor::Bytes(_) | Cbor::Tag(..) | Cbor::Undefined | Cbor::Simple(_) => return None,
        })
    }

    /// Converts a JSON value: objects become text-keyed maps, integers that fit
    /// 64 bits become CBOR integers and larger ones bignums (tags 2/3, as cbor2
    /// writes Python ints), everything else the obvious item.
    pub fn from_json(v: &crate::json::Value) -> Cbor {
        use crate::json::Value;
        match v {
            Value::Null => Cbor::Null,
            Value::Bool(b) => Cbor::Bool(*b),
            Value::Int(i) => {
                if let Some(u) = i.as_u64() {
                    Cbor::Unsigned(u)
                } else if let Some(n) = i.as_i64() {
                    // n < 0 here, and -1 - n >= 0 fits u64.
                    Cbor::Negative(u64::try_from(-1 - i128::from(n)).unwrap_or(0))
                } else {
                    bignum_from_decimal(i.as_str())
                }
            }
            Value::Float(f) => Cbor::Float(*f),
            Value::String(s) => Cbor::Text(s.clone()),
            Value::Array(items) => Cbor::Array(items.iter().map(Cbor::from_json).collect()),
            Value::Object(o) => Cbor::Map(
                o.iter()
                    .map(|(k, v)| (Cbor::Text(k.clone()), Cbor::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// A decimal integer outside 64 bits as a CBOR bignum (tag 2 for `n`, tag 3
/// for `-1 - n`), big-endian magnitude without leading zeros.
fn bignum_from_decimal(text: &str) -> Cbor {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    // Big-endian base-256 magnitude, built by repeated multiply-add.
    let mut mag: Vec<u8> = Vec::new();
    for d in digits.bytes() {
        let mut carry = u32::from(d.wrapping_sub(b'0'));
        for byte in mag.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            mag.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    if neg {
        // -1 - n = -(n + 1) → magnitude n - 1 for tag 3 (n >= 1 here).
        for byte in mag.iter_mut().rev() {
            if *byte == 0 {
                *byte = 0xff;
            } else {
                *byte -= 1;
                break;
            }
        }
        while mag.first() == Some(&0) && mag.len() > 1 {
            mag.remove(0);
        }
    }
    Cbor::Tag(if neg { 3 } else { 2 }, Box::new(Cbor::Bytes(mag)))
}

/// Why [`decode`] refused its input. Every variant carries the byte offset of
/// the offending item's first byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CborError {
    /// The input is empty.
    #[error("empty input: no CBOR data item")]
    Empty,
    /// The input ended inside an item.
    #[error("CBOR input ends early at byte {offset}")]
    Truncated {
        /// Where more bytes were needed.
        offset: usize,
    },
    /// A string, array or map announces more than the rest of the input holds.
    #[error(
        "CBOR item at byte {offset} declares length {declared}, but only {available} bytes remain"
    )]
    LengthExceedsInput {
        /// Item offset.
        offset: usize,
        /// The declared length (bytes for strings, items for arrays/maps).
        declared: u64,
        /// Bytes left after the head.
        available: usize,
    },
    /// Additional-information values 28–30 are reserved.
    #[error("reserved additional information {info} at byte {offset}")]
    Reserved {
        /// Item offset.
        offset: usize,
        /// The reserved value.
        info: u8,
    },
    /// Indefinite length on an integer, tag or simple value, or a `break`
    /// outside an indefinite-length item.
    #[error("invalid indefinite-length encoding or stray break at byte {offset}")]
    InvalidIndefinite {
        /// Item offset.
        offset: usize,
    },
    /// A chunk of an indefinite-length string has another type.
    #[error("chunk of the wrong type inside an indefinite-length string at byte {offset}")]
    InvalidChunk {
        /// Chunk offset.
        offset: usize,
    },
    /// A text string is not UTF-8.
    #[error("text string at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Item offset.
        offset: usize,
    },
    /// A simple value 0–31 written in the two-byte form.
    #[error("invalid two-byte simple value {value} at byte {offset}")]
    InvalidSimple {
        /// Item offset.
        offset: usize,
        /// The value.
        value: u8,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("CBOR nesting deeper than {limit} levels at byte {offset}")]
    TooDeep {
        /// Item offset.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// Bytes follow the top-level item.
    #[error("{remaining} unexpected bytes after the CBOR item (from byte {offset})")]
    TrailingBytes {
        /// Where the extra bytes start.
        offset: usize,
        /// How many there are.
        remaining: usize,
    },
}

/// Decodes exactly one CBOR data item spanning all of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Cbor, CborError> {
    if bytes.is_empty() {
        return Err(CborError::Empty);
    }
    let (item, used) = decode_prefix(bytes)?;
    if used != bytes.len() {
        return Err(CborError::TrailingBytes {
            offset: used,
            remaining: bytes.len() - used,
        });
    }
    Ok(item)
}

/// Decodes the first CBOR data item of `bytes`; returns it and the number of
/// bytes it spans.
pub fn decode_prefix(bytes: &[u8]) -> Result<(Cbor, usize), CborError> {
    if bytes.is_empty() {
        return Err(CborError::Empty);
    }
    let mut d = Decoder { bytes, pos: 0 };
    let item = d.item(0)?;
    Ok((item, d.pos))
}

/// What a head announces.
enum Arg {
    /// A definite value/length.
    Value(u64),
    /// Additional information 31 (indefinite length / break).
    Indefinite,
}

struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&[u8], CborError> {
        if self.remaining() < n {
            return Err(CborError::Truncated {
                offset: self.bytes.len(),
            });
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, CborError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a head: (major type, argument).
    fn head(&mut self, start: usize) -> Result<(u8, u8, Arg), CborError> {
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        let arg = match info {
            0..=23 => Arg::Value(u64::from(info)),
            24 => Arg::Value(u64::from(self.byte()?)),
            25 => {
                let b = self.take(2)?;
                Arg::Value(u64::from(u16::from_be_bytes([b[0], b[1]])))
            }
            26 => {
                let b = self.take(4)?;
                Arg::Value(u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
            }
            27 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Arg::Value(u64::from_be_bytes(a))
            }
            28..=30 => {
                return Err(CborError::Reserved {
                    offset: start,
                    info,
                });
            }
            _ => Arg::Indefinite,
        };
        Ok((major, info, arg))
    }

    fn checked_len(&self, start: usize, declared: u64, per_item: u64) -> Result<usize, CborError> {
        let available = self.remaining();
        let need = declared.checked_mul(per_item);
        match need {
            Some(need) if need <= available as u64 => Ok(declared as usize),
            _ => Err(CborError::LengthExceedsInput {
                offset: start,
                declared,
                available,
            }),
        }
    }

    fn peek_break(&self) -> bool {
        self.bytes.get(self.pos) == Some(&0xff)
    }

    fn item(&mut self, depth: usize) -> Result<Cbor, CborError> {
        let start = self.pos;
        let (major, info, arg) = self.head(start)?;
        match (major, arg) {
            (0, Arg::Value(n)) => Ok(Cbor::Unsigned(n)),
            (1, Arg::Value(n)) => Ok(Cbor::Negative(n)),
            (2, Arg::Value(n)) => {
                let len = self.checked_len(start, n, 1)?;
                Ok(Cbor::Bytes(self.take(len)?.to_vec()))
            }
            (3, Arg::Value(n)) => {
                let len = self.checked_len(start, n, 1)?;
                let raw = self.take(len)?;
                match std::str::from_utf8(raw) {
                    Ok(s) => Ok(Cbor::Text(s.to_owned())),
                    Err(_) => Err(CborError::InvalidUtf8 { offset: start }),
                }
            }
            (2 | 3, Arg::Indefinite) => self.indefinite_string(start, major),
            (4, arg) => {
                if depth >= MAX_DEPTH {
                    return Err(CborError::TooDeep {
                        offset: start,
                        limit: MAX_DEPTH,
                    });
                }
                let mut items = Vec::new();
                match arg {
                    Arg::Value(n) => {
                        let len = self.checked_len(start, n, 1)?;
                        items.reserve(len.min(1024));
                        for _ in 0..len {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                    Arg::Indefinite => loop {
                        if self.peek_break() {
                            self.pos += 1;
                            break;
                        }
                        if self.remaining() == 0 {
                            return Err(CborError::Truncated { offset: self.pos });
                        }
                        items.push(self.item(depth + 1)?);
                    },
                }
                Ok(Cbor::Array(items))
            }
            (5, arg) => {
                if depth >= MAX_DEPTH {
                    return Err(CborError::TooDeep {
                        offset: start,
                        limit: MAX_DEPTH,
                    });
                }
                let mut entries = Vec::new();
                match arg {
                    Arg::Value(n) => {
                        let len = self.checked_len(start, n, 2)?;
                        entries.reserve(len.min(1024));
                        for _ in 0..len {
                            let k = self.item(depth + 1)?;
                            let v = self.item(depth + 1)?;
                            entries.push((k, v));
                        }
                    }
                    Arg::Indefinite => loop {
                        if self.peek_break() {
                            self.pos += 1;
                            break;
                        }
                        if self.remaining() == 0 {
                            return Err(CborError::Truncated { offset: self.pos });
                        }
                        let k = self.item(depth + 1)?;
                        let v = self.item(depth + 1)?;
                        entries.push((k, v));
                    },
                }
                Ok(Cbor::Map(entries))
            }
            (6, Arg::Value(tag)) => {
                if depth >= MAX_DEPTH {
                    return Err(CborError::TooDeep {
                        offset: start,
                        limit: MAX_DEPTH,
                    });
                }
                let inner = self.item(depth + 1)?;
                Ok(Cbor::Tag(tag, Box::new(inner)))
            }
            (7, Arg::Value(v)) => match info {
                20 => Ok(Cbor::Bool(false)),
                21 => Ok(Cbor::Bool(true)),
                22 => Ok(Cbor::Null),
                23 => Ok(Cbor::Undefined),
                0..=19 => Ok(Cbor::Simple(info)),
                24 => {
                    let value = (v & 0xff) as u8;
                    if value < 32 {
                        Err(CborError::InvalidSimple {
                            offset: start,
                            value,
                        })
                    } else {
                        Ok(Cbor::Simple(value))
                    }
                }
                25 => Ok(Cbor::Float(f16_to_f64((v & 0xffff) as u16))),
                26 => Ok(Cbor::Float(f64::from(f32::from_bits(
                    (v & 0xffff_ffff) as u32,
                )))),
                _ => Ok(Cbor::Float(f64::from_bits(v))),
            },
            _ => Err(CborError::InvalidIndefinite { offset: start }),
        }
    }

    fn indefinite_string(&mut self, start: usize, major: u8) -> Result<Cbor, CborError> {
        let mut buf = Vec::new();
        loop {
            if self.peek_break() {
                self.pos += 1;
                break;
            }
            let chunk_start = self.pos;
            let (m, _, arg) = self.head(chunk_start)?;
            let n = match (m == major, arg) {
                (true, Arg::Value(n)) => n,
                _ => {
                    return Err(CborError::InvalidChunk {
                        offset: chunk_start,
                    });
                }
            };
            let len = self.checked_len(chunk_start, n, 1)?;
            let raw = self.take(len)?;
            if major == 3 && std::str::from_utf8(raw).is_err() {
                return Err(CborError::InvalidUtf8 {
                    offset: chunk_start,
                });
            }
            buf.extend_from_slice(raw);
        }
        if major == 2 {
            Ok(Cbor::Bytes(buf))
        } else {
            String::from_utf8(buf)
                .map(Cbor::Text)
                .map_err(|_| CborError::InvalidUtf8 { offset: start })
        }
    }
}

/// IEEE 754 binary16 → f64.
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    let mag = match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    };
    sign * mag
}

/// f64 → binary16 bits, if the conversion is exact (finite values only).
fn f64_to_f16_exact(f: f64) -> Option<u16> {
    let sign: u16 = if f.is_sign_negative() { 0x8000 } else { 0 };
    if f == 0.0 {
        return Some(sign);
    }
    let a = f.abs();
    // Normal range: 2^-14 ..= 65504; subnormal: multiples of 2^-24 below 2^-14.
    if a >= 2f64.powi(-14) {
        let exp = a.log2().floor() as i32;
        if !(-14..=15).contains(&exp) {
            return None;
        }
        let mant = a / 2f64.powi(exp) - 1.0; // in [0, 1)
        let frac = mant * 1024.0;
        if frac.fract() != 0.0 {
            return None;
        }
        let bits = sign | (((exp + 15) as u16) << 10) | (frac as u16);
        (f16_to_f64(bits) == f).then_some(bits)
    } else {
        let frac = a / 2f64.powi(-24);
        if frac.fract() != 0.0 || frac >= 1024.0 {
            return None;
        }
        let bits = sign | (frac as u16);
        (f16_to_f64(bits) == f).then_some(bits)
    }
}

/// The cbor2 `canonical=True` encoding of `item`.
pub fn encode_canonical(item: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(item, &mut out);
    out
}

fn write_head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.push(m | 24);
        out.push(n as u8);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends the canonical encoding of `item` to `out`.
pub fn write_canonical(item: &Cbor, out: &mut Vec<u8>) {
    match item {
        Cbor::Unsigned(n) => write_head(0, *n, out),
        Cbor::Negative(n) => write_head(1, *n, out),
        Cbor::Bytes(b) => {
            write_head(2, b.len() as u64, out);
            out.extend_from_slice(b);
        }
        Cbor::Text(s) => {
            write_head(3, s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        }
        Cbor::Array(items) => {
            write_head(4, items.len() as u64, out);
            for i in items {
                write_canonical(i, out);
            }
        }
        Cbor::Map(entries) => {
            let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = entries
                .iter()
                .map(|(k, v)| (encode_canonical(k), encode_canonical(v)))
                .collect();
            encoded.sort_by(|a, b| canonical_key_order(&a.0, &b.0));
            write_head(5, encoded.len() as u64, out);
            for (k, v) in encoded {
                out.extend_from_slice(&k);
                out.extend_from_slice(&v);
            }
        }
        Cbor::Tag(tag, inner) => {
            write_head(6, *tag, out);
            write_canonical(inner, out);
        }
        Cbor::Bool(false) => out.push(0xf4),
        Cbor::Bool(true) => out.push(0xf5),
        Cbor::Null => out.push(0xf6),
        Cbor::Undefined => out.push(0xf7),
        Cbor::Simple(v) => {
            if *v < 24 {
                out.push(0xe0 | v);
            } else {
                out.push(0xf8);
                out.push(*v);
            }
        }
        Cbor::Float(f) => write_float(*f, out),
    }
}

/// cbor2's canonical key order: shorter encoded keys first, then bytewise.
pub fn canonical_key_order(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn write_float(f: f64, out: &mut Vec<u8>) {
    if f.is_nan() {
        out.extend_from_slice(&[0xf9, 0x7e, 0x00]);
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 {
            &[0xf9, 0x7c, 0x00]
        } else {
            &[0xf9, 0xfc, 0x00]
        });
    } else if let Some(h) = f64_to_f16_exact(f) {
        out.push(0xf9);
        out.extend_from_slice(&h.to_be_bytes());
    } else if f64::from(f as f32) == f {
        out.push(0xfa);
        out.extend_from_slice(&(f as f32).to_bits().to_be_bytes());
    } else {
        out.push(0xfb);
        out.extend_from_slice(&f.to_bits().to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        crate::hex_lower(b)
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }

    #[test]
    fn floats_match_cbor2_canonical() {
        for (f, want) in [
            (1.5, "f93e00"),
            (100000.0, "fa47c35000"),
            (1.1, "fb3ff199999999999a"),
            (f64::NAN, "f97e00"),
            (f64::INFINITY, "f97c00"),
            (-0.0, "f98000"),
            (5.960464477539063e-08, "f90001"),
            (65504.0, "f97bff"),
            (65536.0, "fa47800000"),
        ] {
            assert_eq!(hex(&encode_canonical(&Cbor::Float(f))), want, "{f}");
        }
        for h in [
            "f93e00",
            "f90001",
            "f97bff",
            "fa47c35000",
            "fb3ff199999999999a",
        ] {
            let v = decode(&unhex(h)).expect("decodes");
            assert_eq!(hex(&encode_canonical(&v)), h);
        }
    }

    #[test]
    fn maps_sort_length_first() {
        let m = Cbor::Map(vec![
            (Cbor::Text("bb".into()), Cbor::Unsigned(1)),
            (Cbor::Text("c".into()), Cbor::Unsigned(2)),
            (Cbor::Text("a".into()), Cbor::Unsigned(3)),
        ]);
        assert_eq!(hex(&encode_canonical(&m)), "a361610361630262626201");
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        assert_eq!(decode(&[]), Err(CborError::Empty));
        assert!(matches!(
            decode(&unhex("0102")),
            Err(CborError::TrailingBytes {
                offset: 1,
                remaining: 1
            })
        ));
        assert!(matches!(
            decode(&unhex("5a00010000")),
            Err(CborError::LengthExceedsInput {
                declared: 65536,
                ..
            })
        ));
        assert!(matches!(
            decode(&unhex("9bffffffffffffffff")),
            Err(CborError::LengthExceedsInput { .. })
        ));
        assert!(matches!(
            decode(&unhex("bb7fffffffffffffff00")),
            Err(CborError::LengthExceedsInput { .. })
        ));
        assert!(matches!(
            decode(&unhex("1c")),
            Err(CborError::Reserved { info: 28, .. })
        ));
        assert!(matches!(
            decode(&unhex("ff")),
            Err(CborError::InvalidIndefinite { offset: 0 })
        ));
        assert!(matches!(
            decode(&unhex("1f")),
            Err(CborError::InvalidIndefinite { .. })
        ));
        assert!(matches!(
            decode(&unhex("62c328")),
            Err(CborError::InvalidUtf8 { .. })
        ));
        assert!(matches!(
            decode(&unhex("5f6161ff")),
            Err(CborError::InvalidChunk { .. })
        ));
        assert!(matches!(
            decode(&unhex("f818")),
            Err(CborError::InvalidSimple { value: 24, .. })
        ));
        assert!(matches!(
            decode(&unhex("a2010101")),
            Err(CborError::LengthExceedsInput { .. })
        ));
        assert!(matches!(
            decode(&unhex("9f01")),
            Err(CborError::Truncated { .. })
        ));
        let deep = vec![0x81u8; 10_000];
        assert!(matches!(decode(&deep), Err(CborError::TooDeep { .. })));
        let tags = vec![0xc0u8; 10_000];
        assert!(matches!(decode(&tags), Err(CborError::TooDeep { .. })));
    }

    #[test]
    fn indefinite_items_decode() {
        assert_eq!(
            decode(&unhex("5f4101420203ff")),
            Ok(Cbor::Bytes(vec![1, 2, 3]))
        );
        assert_eq!(decode(&unhex("7f6161ff")), Ok(Cbor::Text("a".into())));
        assert_eq!(
            decode(&unhex("9f01ff")),
            Ok(Cbor::Array(vec![Cbor::Unsigned(1)]))
        );
        assert_eq!(
            decode(&unhex("bf6161f5ff")),
            Ok(Cbor::Map(vec![(Cbor::Text("a".into()), Cbor::Bool(true))]))
        );
    }

    #[test]
    fn bignums_from_json_ints() {
        let v =
            crate::json::parse(b"[18446744073709551616, -18446744073709551617, -5]").expect("json");
        let c = Cbor::from_json(&v);
        assert_eq!(
            hex(&encode_canonical(&c)),
            "83c249010000000000000000c34901000000000000000024"
        );
    }
}
