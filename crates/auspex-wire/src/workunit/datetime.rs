//! A calendar datetime with an optional UTC offset, parsed the way Pydantic
//! (pydantic-core / speedate) parses a `datetime` field and written the way
//! Pydantic and cbor2 write one (spec `tenant-sdk.md` §3.1 item 7, §3e).
//!
//! Accepted text (observed with pydantic 2.14.4):
//!
//! * `YYYY-MM-DD` alone (midnight, naive);
//! * `YYYY-MM-DD` + one of `T` `t` `_` space + `HH:MM[:SS[(.|,)digits]]`, any
//!   number of fraction digits (truncated to microseconds), then nothing
//!   (naive), `Z`/`z`, or `±HH:MM` / `±HHMM` (hours ≤ 23);
//! * a decimal number (`1735787045`, `1735787045.5`, `-.5`, `1.5E0`) read as a
//!   Unix timestamp, see [`DateTime::from_timestamp_f64`].
//!
//! Years 1–9999; no leap seconds, no hour 24. JSON numbers are timestamps too.
//!
//! Output: `YYYY-MM-DDTHH:MM:SS`, then `.ffffff` only when the microseconds are
//! non-zero, then `Z` for a zero offset, `±HH:MM` for another offset, nothing
//! for a naive value — identical for Pydantic JSON and cbor2 tag-0 text.

use std::fmt;

/// Seconds from 0001-01-01T00:00:00 to the Unix epoch, negated.
const MIN_UNIX_SECONDS: i128 = -62_135_596_800;
/// 9999-12-31T23:59:59 as Unix seconds.
const MAX_UNIX_SECONDS: i128 = 253_402_300_799;
/// Above this absolute value a timestamp is read as milliseconds (speedate).
const MS_WATERSHED: i128 = 20_000_000_000;

/// A datetime as Python's `datetime.datetime` holds it: microsecond
/// resolution, optionally aware (a fixed UTC offset).
///
/// Equality is field-wise (like comparing the written text), not by instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    microsecond: u32,
    offset_seconds: Option<i32>,
}

/// Why a datetime was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DateTimeError {
    /// The text is neither an ISO 8601 datetime/date nor a number.
    #[error("invalid datetime text: {reason}")]
    Syntax {
        /// What is wrong, in words.
        reason: &'static str,
    },
    /// A calendar or clock field is outside its range.
    #[error("{field} value is outside its range")]
    FieldRange {
        /// Which field (`year`, `month`, `day`, `hour`, `minute`, `second`,
        /// `microsecond`, `offset`).
        field: &'static str,
    },
    /// A timestamp before year 1 or after year 9999.
    #[error("timestamp is outside years 1..=9999")]
    TimestampRange,
    /// A NaN timestamp.
    #[error("NaN is not a timestamp")]
    NotANumber,
    /// A value without a UTC offset where one is required.
    #[error("datetime has no UTC offset")]
    Naive,
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize, reason: &'static str) -> Result<u32, DateTimeError> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.b.get(self.pos) {
                Some(c) if c.is_ascii_digit() => {
                    v = v * 10 + u32::from(c - b'0');
                    self.pos += 1;
                }
                _ => return Err(DateTimeError::Syntax { reason }),
            }
        }
        Ok(v)
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos == self.b.len()
    }
}

const EXTRA: DateTimeError = DateTimeError::Syntax {
    reason: "unexpected extra characters at the end of the input",
};

impl DateTime {
    /// A datetime from its fields; `offset_seconds` is the UTC offset (east
    /// positive, strictly within ±24 h), `None` for a naive value.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        microsecond: u32,
        offset_seconds: Option<i32>,
    ) -> Result<DateTime, DateTimeError> {
        let range = |field| Err(DateTimeError::FieldRange { field });
        if !(1..=9999).contains(&year) {
            return range("year");
        }
        if !(1..=12).contains(&month) {
            return range("month");
        }
        if day == 0 || day > days_in_month(year, month) {
            return range("day");
        }
        if hour > 23 {
            return range("hour");
        }
        if minute > 59 {
            return range("minute");
        }
        if second > 59 {
            return range("second");
        }
        if microsecond > 999_999 {
            return range("microsecond");
        }
        if let Some(o) = offset_seconds
            && o.unsigned_abs() >= 86_400
        {
            return range("offset");
        }
        Ok(DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            microsecond,
            offset_seconds,
        })
    }

    /// The UTC datetime `micros` microseconds after the Unix epoch.
    pub fn from_unix_micros(micros: i128) -> Result<DateTime, DateTimeError> {
        let secs = micros.div_euclid(1_000_000);
        if !(MIN_UNIX_SECONDS..=MAX_UNIX_SECONDS).contains(&secs) {
            return Err(DateTimeError::TimestampRange);
        }
        let us = micros.rem_euclid(1_000_000) as u32;
        let days = secs.div_euclid(86_400) as i64;
        let sod = secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        DateTime::new(
            y as u16,
            m,
            d,
            (sod / 3600) as u8,
            (sod / 60 % 60) as u8,
            (sod % 60) as u8,
            us,
            Some(0),
        )
    }

    /// The current time, UTC, from the system clock.
    pub fn now_utc() -> DateTime {
        let micros = match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_micros() as i128,
            Err(e) => -(e.duration().as_micros() as i128),
        };
        DateTime::from_unix_micros(micros).unwrap_or(DateTime {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            microsecond: 0,
            offset_seconds: Some(0),
        })
    }

    /// Microseconds since the Unix epoch of this instant; `None` when naive.
    pub fn unix_micros(&self) -> Option<i128> {
        let offset = i128::from(self.offset_seconds?);
        let days = i128::from(days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        ));
        let secs = days * 86_400
            + i128::from(self.hour) * 3600
            + i128::from(self.minute) * 60
            + i128::from(self.second)
            - offset;
        Some(secs * 1_000_000 + i128::from(self.microsecond))
    }

    /// An integer Unix timestamp as pydantic-core reads it: seconds, or
    /// milliseconds when its absolute value exceeds 2·10¹⁰; UTC.
    pub fn from_timestamp_i64(ts: i64) -> Result<DateTime, DateTimeError> {
        DateTime::from_timestamp_parts(ts, 0, false)
    }

    /// A float Unix timestamp as pydantic-core reads it: the integral part is
    /// seconds (milliseconds above 2·10¹⁰ in absolute value), the fraction is
    /// rounded to microseconds (of that unit); UTC.
    pub fn from_timestamp_f64(ts: f64) -> Result<DateTime, DateTimeError> {
        if ts.is_nan() {
            return Err(DateTimeError::NotANumber);
        }
        let whole = ts.trunc();
        if whole.abs() >= 9.0e18 {
            return Err(DateTimeError::TimestampRange);
        }
        let micros = (ts.fract().abs() * 1_000_000.0).round() as u32;
        DateTime::from_timestamp_parts(whole as i64, micros, ts < 0.0)
    }

    fn from_timestamp_parts(
        whole: i64,
        frac_micros: u32,
        negative: bool,
    ) -> Result<DateTime, DateTimeError> {
        let whole = i128::from(whole);
        let sign: i128 = if negative { -1 } else { 1 };
        let total = if whole.abs() > MS_WATERSHED {
            whole * 1000 + sign * ((i128::from(frac_micros) + 500) / 1000)
        } else {
            whole * 1_000_000 + sign * i128::from(frac_micros)
        };
        DateTime::from_unix_micros(total)
    }

    /// Parses text the way Pydantic's `datetime` field does (ISO 8601 forms or
    /// a decimal Unix timestamp; see the module docs).
    pub fn parse_pydantic(text: &str) -> Result<DateTime, DateTimeError> {
        match DateTime::parse_iso(text) {
            Ok(dt) => Ok(dt),
            Err(iso_err) => match parse_number_text(text) {
                Some(NumberText::Int(i)) => DateTime::from_timestamp_i64(i),
                Some(NumberText::Float(f)) => DateTime::from_timestamp_f64(f),
                None => Err(iso_err),
            },
        }
    }

    /// Parses only the ISO 8601 forms Pydantic accepts (no timestamps).
    pub fn parse_iso(text: &str) -> Result<DateTime, DateTimeError> {
        let b = text.as_bytes();
        if b.len() < 10 {
            return Err(DateTimeError::Syntax {
                reason: "input is too short",
            });
        }
        let mut c = Cursor { b, pos: 0 };
        let year = c.digits(4, "invalid character in year")?;
        if !c.eat(b'-') {
            return Err(DateTimeError::Syntax {
                reason: "invalid date separator, expected `-`",
            });
        }
        let month = c.digits(2, "invalid character in month")?;
        if !c.eat(b'-') {
            return Err(DateTimeError::Syntax {
                reason: "invalid date separator, expected `-`",
            });
        }
        let day = c.digits(2, "invalid character in day")?;
        let (year, month, day) = (year as u16, month as u8, day as u8);
        if c.at_end() {
            return DateTime::new(year, month, day, 0, 0, 0, 0, None);
        }
        match c.peek() {
            Some(b'T' | b't' | b'_' | b' ') => c.pos += 1,
            _ => return Err(EXTRA),
        }
        let hour = c
            .digits(2, "invalid character in hour")
            .map_err(|_| EXTRA)?;
        if !c.eat(b':') {
            return Err(EXTRA);
        }
        let minute = c
            .digits(2, "invalid character in minute")
            .map_err(|_| EXTRA)?;
        let mut second = 0;
        let mut micro = 0u32;
        if c.eat(b':') {
            second = c
                .digits(2, "invalid character in second")
                .map_err(|_| EXTRA)?;
            if matches!(c.peek(), Some(b'.' | b',')) {
                c.pos += 1;
                let mut n = 0;
                while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
                    if n < 6 {
                        micro = micro * 10 + u32::from(d - b'0');
                    }
                    n += 1;
                    c.pos += 1;
                }
                if n == 0 {
                    return Err(EXTRA);
                }
                for _ in n..6 {
                    micro *= 10;
                }
            }
        }
        let offset = match c.peek() {
            None => None,
            Some(b'Z' | b'z') => {
                c.pos += 1;
                Some(0)
            }
            Some(sign @ (b'+' | b'-')) => {
                c.pos += 1;
                let oh = c.digits(2, "invalid timezone hour").map_err(|_| EXTRA)?;
                c.eat(b':');
                let om = c.digits(2, "invalid timezone minute").map_err(|_| EXTRA)?;
                if oh > 23 || om > 59 {
                    return Err(EXTRA);
                }
                let secs = (oh * 3600 + om * 60) as i32;
                Some(if sign == b'-' { -secs } else { secs })
            }
            Some(_) => return Err(EXTRA),
        };
        if !c.at_end() {
            return Err(EXTRA);
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(EXTRA);
        }
        DateTime::new(
            year,
            month,
            day,
            hour as u8,
            minute as u8,
            second as u8,
            micro,
            offset,
        )
    }

    /// Year (1–9999).
    pub fn year(&self) -> u16 {
        self.year
    }
    /// Month (1–12).
    pub fn month(&self) -> u8 {
        self.month
    }
    /// Day of month.
    pub fn day(&self) -> u8 {
        self.day
    }
    /// Hour (0–23).
    pub fn hour(&self) -> u8 {
        self.hour
    }
    /// Minute (0–59).
    pub fn minute(&self) -> u8 {
        self.minute
    }
    /// Second (0–59).
    pub fn second(&self) -> u8 {
        self.second
    }
    /// Microsecond (0–999 999).
    pub fn microsecond(&self) -> u32 {
        self.microsecond
    }
    /// UTC offset in seconds (east positive); `None` when naive.
    pub fn offset_seconds(&self) -> Option<i32> {
        self.offset_seconds
    }
    /// True when the value has no UTC offset.
    pub fn is_naive(&self) -> bool {
        self.offset_seconds.is_none()
    }

    /// The Pydantic / cbor2 text form (see the module docs); same as `Display`.
    pub fn to_pydantic_string(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        if self.microsecond != 0 {
            write!(f, ".{:06}", self.microsecond)?;
        }
        match self.offset_seconds {
            None => Ok(()),
            Some(0) => f.write_str("Z"),
            Some(o) => {
                let sign = if o < 0 { '-' } else { '+' };
                let a = o.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", a / 3600, a / 60 % 60)?;
                if a % 60 != 0 {
                    write!(f, ":{:02}", a % 60)?;
                }
                Ok(())
            }
        }
    }
}

enum NumberText {
    Int(i64),
    Float(f64),
}

/// speedate's numeric fallback: `[+-]? digits* [ . digits* [ (e|E) [+-]? digits+ ] ]`
/// with at least one digit; an exponent only after a decimal point.
fn parse_number_text(text: &str) -> Option<NumberText> {
    let b = text.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let int_digits = i - int_start;
    if i == b.len() {
        if int_digits == 0 {
            return None;
        }
        return text.parse::<i64>().ok().map(NumberText::Int);
    }
    if b[i] != b'.' {
        return None;
    }
    i += 1;
    let frac_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if int_digits == 0 && i == frac_start {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == exp_start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    // Rust's float parser wants a digit before or after the point and no '+'.
    let mut normalized = text.trim_start_matches('+').to_owned();
    if normalized.starts_with('.') || normalized.starts_with("-.") {
        normalized = normalized.replacen('.', "0.", 1);
    }
    normalized.parse::<f64>().ok().map(NumberText::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<String, DateTimeError> {
        DateTime::parse_pydantic(s).map(|d| d.to_string())
    }

    #[test]
    fn iso_forms_match_pydantic() {
        for (input, want) in [
            ("2025-01-02T03:04:05Z", "2025-01-02T03:04:05Z"),
            ("2025-01-02T03:04:05+00:00", "2025-01-02T03:04:05Z"),
            ("2025-01-02T03:04:05-00:00", "2025-01-02T03:04:05Z"),
            ("2025-01-02T03:04:05", "2025-01-02T03:04:05"),
            ("2025-01-02 03:04:05Z", "2025-01-02T03:04:05Z"),
            ("2025-01-02_03:04:05Z", "2025-01-02T03:04:05Z"),
            ("2025-01-02t03:04:05z", "2025-01-02T03:04:05Z"),
            (
                "2025-01-02T03:04:05.1234567Z",
                "2025-01-02T03:04:05.123456Z",
            ),
            (
                "2025-01-02T03:04:05.9999999Z",
                "2025-01-02T03:04:05.999999Z",
            ),
            ("2025-01-02T03:04:05.1Z", "2025-01-02T03:04:05.100000Z"),
            ("2025-01-02T03:04:05.000000Z", "2025-01-02T03:04:05Z"),
            ("2025-01-02T03:04:05,5Z", "2025-01-02T03:04:05.500000Z"),
            ("2025-01-02T03:04Z", "2025-01-02T03:04:00Z"),
            ("2025-01-02", "2025-01-02T00:00:00"),
            ("2025-01-02T03:04:05+0100", "2025-01-02T03:04:05+01:00"),
            ("2025-01-02T03:04:05-0000", "2025-01-02T03:04:05Z"),
            ("2025-01-02T03:04:05-00:30", "2025-01-02T03:04:05-00:30"),
            ("2025-01-02T03:04:05+23:59", "2025-01-02T03:04:05+23:59"),
            ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"),
            ("2000-02-29T00:00:00", "2000-02-29T00:00:00"),
            ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
            ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
            (
                "2025-01-02T03:04:05.123+02:00",
                "2025-01-02T03:04:05.123000+02:00",
            ),
        ] {
            assert_eq!(p(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn iso_refusals_match_pydantic() {
        for input in [
            "2025-01-02T03Z",
            "2025-01-02T03:04:05+01",
            "2025-01-02T03:04:05+01:30:15",
            "2025-01-02T23:59:60Z",
            "2025-02-29T00:00:00Z",
            "1900-02-29T00:00:00",
            "2025-01-02T24:00:00Z",
            "2025-01-02T03:04:05.Z",
            "0000-01-01T00:00:00Z",
            "2025-01-02T03:04:05+24:00",
            "2025-01-02T03:04:05 Z",
            "20250102T030405Z",
            "2025-1-2T03:04:05Z",
            "+2025-01-02T03:04:05Z",
            " 2025-01-02T03:04:05Z",
            "2025-01-02T03:04:05Z ",
            "2025-01-02T03:04:05Z\n",
            "2025-01-02T",
            "2025-01-02 ",
            "2025-01-02T03:04:05ZZ",
            "2025-13-02T03:04:05Z",
            "2025-04-31T03:04:05Z",
            "2025-01-02T3:04:05Z",
            "2025-01-02T03:60:00Z",
            "1e3",
            "1.5abc",
            "",
            ".",
            "-",
            "9223372036854775808",
            "1_000",
        ] {
            assert!(p(input).is_err(), "{input:?} should be refused");
        }
    }

    #[test]
    fn timestamps_match_pydantic() {
        for (input, want) in [
            ("1735787045", "2025-01-02T03:04:05Z"),
            ("1735787045.5", "2025-01-02T03:04:05.500000Z"),
            ("1735787045.1234567", "2025-01-02T03:04:05.123457Z"),
            ("-1.5", "1969-12-31T23:59:58.500000Z"),
            ("-.5", "1969-12-31T23:59:59.500000Z"),
            ("+.5", "1970-01-01T00:00:00.500000Z"),
            ("1.5E0", "1970-01-01T00:00:01.500000Z"),
            ("1735787045.", "2025-01-02T03:04:05Z"),
            ("00000001735787045", "2025-01-02T03:04:05Z"),
            ("20000000001", "1970-08-20T11:33:20.001000Z"),
            ("20000000001.5", "1970-08-20T11:33:20.001500Z"),
            ("-62135596800000", "0001-01-01T00:00:00Z"),
            ("2025", "1970-01-01T00:33:45Z"),
        ] {
            assert_eq!(p(input).as_deref(), Ok(want), "{input}");
        }
        let f = |x: f64| DateTime::from_timestamp_f64(x).map(|d| d.to_string());
        assert_eq!(f(1735787045.9999999).as_deref(), Ok("2025-01-02T03:04:06Z"));
        assert_eq!(f(-0.0000004).as_deref(), Ok("1970-01-01T00:00:00Z"));
        assert_eq!(f(0.0000005).as_deref(), Ok("1970-01-01T00:00:00.000001Z"));
        assert_eq!(f(1.9999995).as_deref(), Ok("1970-01-01T00:00:01.999999Z"));
        assert_eq!(
            f(20000000001.9999).as_deref(),
            Ok("1970-08-20T11:33:20.002000Z")
        );
        assert_eq!(
            f(20000000001.0004).as_deref(),
            Ok("1970-08-20T11:33:20.001000Z")
        );
        assert_eq!(
            f(-20000000001.5).as_deref(),
            Ok("1969-05-14T12:26:39.998500Z")
        );
        assert_eq!(f(1e11).as_deref(), Ok("1973-03-03T09:46:40Z"));
        assert_eq!(f(2.5e10).as_deref(), Ok("1970-10-17T08:26:40Z"));
        assert!(f(f64::NAN).is_err());
        assert!(f(f64::INFINITY).is_err());
        assert!(f(1e20).is_err());
        let i = |x: i64| DateTime::from_timestamp_i64(x).map(|d| d.to_string());
        assert_eq!(
            i(-20000000001).as_deref(),
            Ok("1969-05-14T12:26:39.999000Z")
        );
        assert_eq!(
            i(253402300799999).as_deref(),
            Ok("9999-12-31T23:59:59.999000Z")
        );
        assert!(i(253402300800000).is_err());
        assert!(i(-62135596800001).is_err());
        assert!(i(i64::MAX).is_err());
        assert!(i(i64::MIN).is_err());
    }

    #[test]
    fn unix_micros_round_trip() {
        let d = DateTime::parse_iso("2025-01-02T04:04:05.25+01:00").expect("parses");
        let utc = DateTime::from_unix_micros(d.unix_micros().expect("aware")).expect("in range");
        assert_eq!(utc.to_string(), "2025-01-02T03:04:05.250000Z");
        assert_eq!(
            DateTime::parse_iso("2025-01-02T03:04:05").map(|d| d.unix_micros()),
            Ok(None)
        );
    }
}
