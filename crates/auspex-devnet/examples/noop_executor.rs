//! A no-op executor written in Rust, with the doubler's contract and payload
//! (`worker.md` §3.2–3.3): the worker runs it as
//! `<program> --input IN --output OUT --models DIR --timeout S`; it reads the
//! work unit from `IN` (`{"schema_version": "0.1", "unit_id": …, …,
//! "payload": {"value": <int>}}`) and writes
//! `{"schema_version":"0.1","unit_id":…,"completed_at":…,"exit_code":0,
//! "payload":{"value":v,"doubled":2v}}` to `OUT.tmp`, then renames it onto
//! `OUT`.
//!
//! It uses the standard library only (a small JSON reader is below), so it
//! builds in well under a second with plain `rustc`, which is how the devnet
//! throughput benchmark and the worker overhead benchmark build it:
//!
//! ```sh
//! rustc --edition 2024 -O -C strip=symbols -o noop_executor \
//!     crates/auspex-devnet/examples/noop_executor.rs
//! ```
//!
//! Packages keep no file modes (the canonical archive stores 0644), so a
//! package runs the binary through the dynamic loader, which the sandbox binds
//! read-only: `"command": ["/lib64/ld-linux-x86-64.so.2", "./noop_executor"]`
//! (the `./` matters: the loader looks a bare name up on its library path).
//! Exit status: 0 success, 1 the unit cannot be computed (no integer
//! `payload.value`, overflow), 2 bad arguments or I/O (the harness
//! convention of §3.7). Messages go to stderr, prefixed `executor: `.
#![allow(clippy::print_stderr)] // the executor contract's diagnostics channel

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// A parsed JSON value (numbers kept as their text; arrays, booleans and
/// null are read but not kept: the doubler does not need them).
enum Json {
    Other,
    Number(String),
    Text(String),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A recursive-descent JSON reader over bytes (RFC 8259, depth-limited).
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), String> {
        self.ws();
        if self.bytes.get(self.pos) == Some(&b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", b as char, self.pos))
        }
    }

    fn literal(&mut self, word: &str) -> Result<Json, String> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(Json::Other)
        } else {
            Err(format!("bad literal at byte {}", self.pos))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > 64 {
            return Err("nested too deeply".into());
        }
        self.ws();
        match self.bytes.get(self.pos) {
            Some(b'{') => {
                self.pos += 1;
                let mut members = Vec::new();
                self.ws();
                if self.bytes.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.eat(b':')?;
                    members.push((key, self.value(depth + 1)?));
                    self.ws();
                    match self.bytes.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Object(members));
                        }
                        _ => return Err(format!("expected ',' or '}}' at byte {}", self.pos)),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                self.ws();
                if self.bytes.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(Json::Other);
                }
                loop {
                    self.value(depth + 1)?;
                    self.ws();
                    match self.bytes.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Other);
                        }
                        _ => return Err(format!("expected ',' or ']' at byte {}", self.pos)),
                    }
                }
            }
            Some(b'"') => self.string().map(Json::Text),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') =
                    self.bytes.get(self.pos)
                {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.bytes[start..self.pos])
                    .map_err(|_| "bad number".to_owned())?;
                Ok(Json::Number(text.to_owned()))
            }
            _ => Err(format!("unexpected input at byte {}", self.pos)),
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| format!("bad \\u escape at byte {}", self.pos))?;
        self.pos += 4;
        Ok(digits)
    }

    fn string(&mut self) -> Result<String, String> {
        if self.bytes.get(self.pos) != Some(&b'"') {
            return Err(format!("expected a string at byte {}", self.pos));
        }
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            match self.bytes.get(self.pos) {
                None => return Err("unterminated string".into()),
                Some(b'"') => {
                    self.pos += 1;
                    return String::from_utf8(out).map_err(|_| "string is not UTF-8".into());
                }
                Some(b'\\') => {
                    let esc = self.bytes.get(self.pos + 1).copied();
                    self.pos += 2;
                    let c = match esc {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi)
                                && self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u")
                            {
                                self.pos += 2;
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xD800) << 10) + lo.wrapping_sub(0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        _ => return Err(format!("bad escape at byte {}", self.pos)),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                Some(&b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }
}

fn parse(bytes: &[u8]) -> Result<Json, String> {
    let mut r = Reader { bytes, pos: 0 };
    let v = r.value(0)?;
    r.ws();
    if r.pos != bytes.len() {
        return Err(format!("trailing data at byte {}", r.pos));
    }
    Ok(v)
}

/// A JSON string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Now in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (the official harness's form).
fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// `(input, output)` from `--input IN --output OUT [--models D] [--timeout N]`
/// (also `--flag=value`).
fn args() -> Result<(String, String), String> {
    let mut input = None;
    let mut output = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (a, None),
        };
        let slot = match flag.as_str() {
            "--input" => &mut input,
            "--output" => &mut output,
            "--models" | "--timeout" => &mut None,
            other => return Err(format!("unknown argument {other:?}")),
        };
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{flag} needs a value"))?,
        };
        *slot = Some(value);
    }
    match (input, output) {
        (Some(i), Some(o)) => Ok((i, o)),
        _ => Err("--input and --output are required".into()),
    }
}

fn main() -> ExitCode {
    let (input, output) = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("executor: {e}");
            return ExitCode::from(2);
        }
    };
    let unit = match std::fs::read(&input)
        .map_err(|e| format!("cannot read {input}: {e}"))
        .and_then(|b| parse(&b).map_err(|e| format!("{input} is not JSON: {e}")))
    {
        Ok(u) => u,
        Err(e) => {
            eprintln!("executor: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(Json::Text(unit_id)) = unit.get("unit_id") else {
        eprintln!("executor: the work unit has no string unit_id");
        return ExitCode::from(2);
    };
    let value = match unit.get("payload").and_then(|p| p.get("value")) {
        Some(Json::Number(n)) => n.parse::<i64>().ok(),
        _ => None,
    };
    let Some((value, doubled)) = value.and_then(|v| Some((v, v.checked_mul(2)?))) else {
        eprintln!("executor: payload.value is not an integer that can be doubled");
        return ExitCode::from(1);
    };
    let out = format!(
        "{{\"schema_version\":\"0.1\",\"unit_id\":{},\"completed_at\":\"{}\",\"exit_code\":0,\
         \"payload\":{{\"value\":{value},\"doubled\":{doubled}}}}}",
        quote(unit_id),
        now_rfc3339()
    );
    let tmp = format!("{output}.tmp");
    if let Err(e) = std::fs::write(&tmp, out).and_then(|()| std::fs::rename(&tmp, &output)) {
        eprintln!("executor: cannot write {output}: {e}");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
