//! RFC 3339 instants, as the trusted root's `validFor` windows write them
//! (protobuf JSON `Timestamp`: `2021-01-12T11:53:27Z`, optionally with 1–9
//! fraction digits; numeric offsets are accepted too).

use std::fmt;

use thiserror::Error;

/// A UTC instant with nanosecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

/// Why a timestamp does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TimeError {
    /// Not of the form `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
    #[error("{0:?} is not an RFC 3339 timestamp (YYYY-MM-DDTHH:MM:SS[.fff]Z)")]
    Syntax(String),
    /// A field is out of range (month 13, 31 April, hour 24, …).
    #[error("{0:?} is not a valid date and time")]
    Range(String),
}

impl Timestamp {
    /// Whole seconds since the Unix epoch.
    pub fn from_unix(secs: i64) -> Timestamp {
        Timestamp { secs, nanos: 0 }
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub fn unix_seconds(self) -> i64 {
        self.secs
    }

    /// Parses an RFC 3339 `date-time` (upper- or lowercase `T`/`Z`).
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, TimeError> {
        let syntax = || TimeError::Syntax(s.chars().take(64).collect());
        let range = || TimeError::Range(s.chars().take(64).collect());
        let b = s.as_bytes();
        if b.len() < 20 {
            return Err(syntax());
        }
        let num = |from: usize, to: usize| -> Result<i64, TimeError> {
            let part = b.get(from..to).ok_or_else(syntax)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return Err(syntax());
            }
            Ok(part
                .iter()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
        };
        let sep = |at: usize, want: &[u8]| -> Result<(), TimeError> {
            match b.get(at) {
                Some(c) if want.contains(c) => Ok(()),
                _ => Err(syntax()),
            }
        };
        let year = num(0, 4)?;
        sep(4, b"-")?;
        let month = num(5, 7)?;
        sep(7, b"-")?;
        let day = num(8, 10)?;
        sep(10, b"Tt")?;
        let hour = num(11, 13)?;
        sep(13, b":")?;
        let minute = num(14, 16)?;
        sep(16, b":")?;
        let second = num(17, 19)?;
        let mut pos = 19;
        let mut nanos: u32 = 0;
        if b.get(pos) == Some(&b'.') {
            pos += 1;
            let start = pos;
            while b.get(pos).is_some_and(u8::is_ascii_digit) {
                pos += 1;
            }
            let digits = pos - start;
            if digits == 0 || digits > 9 {
                return Err(syntax());
            }
            let frac = num(start, pos)?;
            let scaled = frac * 10i64.pow(9 - digits as u32);
            nanos = u32::try_from(scaled).map_err(|_| syntax())?;
        }
        let offset_secs = match b.get(pos) {
            Some(b'Z' | b'z') if pos + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if pos + 6 == b.len() => {
                sep(pos + 3, b":")?;
                let oh = num(pos + 1, pos + 3)?;
                let om = num(pos + 4, pos + 6)?;
                if oh > 23 || om > 59 {
                    return Err(range());
                }
                let off = oh * 3600 + om * 60;
                if *sign == b'-' { -off } else { off }
            }
            _ => return Err(syntax()),
        };
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(range());
        }
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
        Ok(Timestamp { secs, nanos })
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, fraction digits only when needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sigstore_roots_timestamps() {
        let t = Timestamp::parse_rfc3339("2021-01-12T11:53:27Z").expect("parses");
        assert_eq!(t.unix_seconds(), 1_610_452_407);
        assert_eq!(t.to_string(), "2021-01-12T11:53:27Z");
        let t = Timestamp::parse_rfc3339("2021-01-12T11:53:27.000Z").expect("parses");
        assert_eq!(t, Timestamp::from_unix(1_610_452_407));
        let t = Timestamp::parse_rfc3339("2022-04-13T20:06:15.5+02:00").expect("parses");
        assert_eq!(t.unix_seconds(), 1_649_880_375 - 7200);
        assert_eq!(t.to_string(), "2022-04-13T18:06:15.5Z");
        assert_eq!(
            Timestamp::parse_rfc3339("1970-01-01T00:00:00Z").map(|t| t.unix_seconds()),
            Ok(0)
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2000-02-29T00:00:00Z").map(|t| t.to_string()),
            Ok("2000-02-29T00:00:00Z".to_owned())
        );
    }

    #[test]
    fn refuses_malformed_and_out_of_range() {
        for bad in [
            "",
            "2021-01-12",
            "2021-01-12 11:53:27Z",
            "2021-01-12T11:53:27",
            "2021-01-12T11:53:27.Z",
            "2021-01-12T11:53:27.0000000000Z",
            "2021-13-12T11:53:27Z",
            "2021-04-31T11:53:27Z",
            "2021-02-29T11:53:27Z",
            "2021-01-12T24:00:00Z",
            "2021-01-12T11:60:00Z",
            "2021-01-12T11:53:60Z",
            "2021-01-12T11:53:27+2:00",
            "+021-01-12T11:53:27Z",
            "2021-01-12T11:53:27Zjunk",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 11_016, 18_639, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
