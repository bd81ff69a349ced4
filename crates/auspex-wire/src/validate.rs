//! Validation of parsed JSON against the wire contracts, reporting **every**
//! violation with its JSON path (`models[0].id: field required`).
//!
//! The rules follow the official SDK's Pydantic models (spec `tenant-sdk.md`
//! §2.1): unknown members are refused (`extra="forbid"`), string lengths count
//! Unicode code points, and patterns are matched by the same regex engine
//! Pydantic uses (the `regex` crate), so `$` anchors at the true end of the
//! string and a trailing newline does not match.
//!
//! A type's validator walks the [`Value`] once with a [`Checker`], collecting
//! [`Violation`]s instead of stopping at the first; the caller gets either the
//! typed value or all of them.

use std::fmt;

use regex::Regex;

use crate::json::{Object, Value};

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// A path from the document root to a value, displayed as `models[0].id`
/// (the root itself displays as `(root)`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonPath(pub Vec<Segment>);

impl JsonPath {
    /// The root path.
    pub fn root() -> JsonPath {
        JsonPath(Vec::new())
    }

    /// This path extended by an object member.
    pub fn key(&self, key: &str) -> JsonPath {
        let mut p = self.clone();
        p.0.push(Segment::Key(key.to_owned()));
        p
    }

    /// This path extended by an array index.
    pub fn index(&self, i: usize) -> JsonPath {
        let mut p = self.clone();
        p.0.push(Segment::Index(i));
        p
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(root)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) => {
                    let plain = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    match (i, plain) {
                        (0, true) => f.write_str(k)?,
                        (_, true) => write!(f, ".{k}")?,
                        (_, false) => write!(f, "[{k:?}]")?,
                    }
                }
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// What is wrong with one value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ViolationKind {
    /// A required member is absent.
    #[error("field required")]
    Missing,
    /// A member the contract does not define (`extra="forbid"`).
    #[error("extra fields not permitted")]
    Unknown,
    /// The JSON type is wrong.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// The type the contract requires.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// A string does not match the contract's pattern.
    #[error("string does not match pattern {pattern}")]
    Pattern {
        /// The pattern, as the contract states it.
        pattern: &'static str,
    },
    /// A string is too short or too long (counted in code points).
    #[error("string length {actual} is outside {min}..={max} characters")]
    Length {
        /// Minimum length.
        min: usize,
        /// Maximum length.
        max: usize,
        /// Actual length in code points.
        actual: usize,
    },
    /// An array has too few items.
    #[error("array has {actual} items, at least {min} required")]
    TooFewItems {
        /// Minimum number of items.
        min: usize,
        /// Actual number.
        actual: usize,
    },
    /// A number is outside its range; `constraint` says which bound, e.g. `> 0`.
    #[error("number {value} does not satisfy {constraint}")]
    Range {
        /// The value as written in the input.
        value: String,
        /// The violated bound, e.g. `> 0` or `<= 8760`.
        constraint: String,
    },
    /// A value outside an enumeration or constant.
    #[error("value {found:?} is not one of {allowed:?}")]
    NotAllowed {
        /// What was found.
        found: String,
        /// The permitted values.
        allowed: &'static [&'static str],
    },
    /// An e-mail address the SDK's validator refuses.
    #[error("not a valid e-mail address: {0}")]
    Email(String),
    /// A rule that spans several members.
    #[error("{0}")]
    Rule(String),
}

/// One violation at one path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct Violation {
    /// Where.
    pub path: JsonPath,
    /// What.
    pub kind: ViolationKind,
}

/// Every violation found in one document (never empty).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct Violations(pub Vec<Violation>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} validation error{}", if n == 1 { "" } else { "s" })?;
        for v in &self.0 {
            write!(f, "\n  {v}")?;
        }
        Ok(())
    }
}

/// Collects violations while a validator walks a document.
#[derive(Debug, Default)]
pub struct Checker {
    violations: Vec<Violation>,
}

/// An object being validated: remembers which members were read so that the
/// rest can be reported as unknown by [`Checker::finish`].
#[derive(Debug)]
pub struct ObjectCursor<'a> {
    /// The object's path.
    pub path: JsonPath,
    /// The members.
    pub members: &'a Object,
    read: Vec<&'static str>,
}

impl<'a> ObjectCursor<'a> {
    /// The path of member `key`.
    pub fn path_of(&self, key: &str) -> JsonPath {
        self.path.key(key)
    }

    /// True if `key` is present (marks it read).
    pub fn has(&mut self, key: &'static str) -> bool {
        self.read.push(key);
        self.members.contains_key(key)
    }
}

impl Checker {
    /// A new, empty checker.
    pub fn new() -> Checker {
        Checker::default()
    }

    /// Records a violation.
    pub fn report(&mut self, path: JsonPath, kind: ViolationKind) {
        self.violations.push(Violation { path, kind });
    }

    /// True if nothing was reported so far.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// `Ok(value)` when nothing was reported, else every violation.
    pub fn into_result<T>(self, value: Option<T>) -> Result<T, Violations> {
        match value {
            Some(v) if self.violations.is_empty() => Ok(v),
            _ if self.violations.is_empty() => Err(Violations(vec![Violation {
                path: JsonPath::root(),
                kind: ViolationKind::Rule("invalid document".to_owned()),
            }])),
            _ => Err(Violations(self.violations)),
        }
    }

    /// Starts validating `v` as an object.
    pub fn object<'a>(&mut self, path: JsonPath, v: &'a Value) -> Option<ObjectCursor<'a>> {
        match v {
            Value::Object(members) => Some(ObjectCursor {
                path,
                members,
                read: Vec::new(),
            }),
            other => {
                self.report(
                    path,
                    ViolationKind::WrongType {
                        expected: "object",
                        found: other.type_name(),
                    },
                );
                None
            }
        }
    }

    /// A required member; reports [`ViolationKind::Missing`] when absent.
    pub fn required<'a>(
        &mut self,
        obj: &mut ObjectCursor<'a>,
        key: &'static str,
    ) -> Option<&'a Value> {
        obj.read.push(key);
        let v = obj.members.get(key);
        if v.is_none() {
            self.report(obj.path.key(key), ViolationKind::Missing);
        }
        v
    }

    /// An optional member: `None` when absent or `null` (Pydantic's
    /// `Optional[...] = None`).
    pub fn optional<'a>(
        &mut self,
        obj: &mut ObjectCursor<'a>,
        key: &'static str,
    ) -> Option<&'a Value> {
        obj.read.push(key);
        obj.members.get(key).filter(|v| !matches!(v, Value::Null))
    }

    /// Reports every member that no `required`/`optional`/`has` call read.
    pub fn finish(&mut self, obj: ObjectCursor<'_>) {
        for key in obj.members.keys() {
            if !obj.read.iter().any(|r| r == key) {
                self.report(obj.path.key(key), ViolationKind::Unknown);
            }
        }
    }

    fn wrong_type(&mut self, path: &JsonPath, expected: &'static str, v: &Value) {
        self.report(
            path.clone(),
            ViolationKind::WrongType {
                expected,
                found: v.type_name(),
            },
        );
    }

    /// A string value.
    pub fn string<'a>(&mut self, path: &JsonPath, v: &'a Value) -> Option<&'a str> {
        match v {
            Value::String(s) => Some(s),
            other => {
                self.wrong_type(path, "string", other);
                None
            }
        }
    }

    /// A string whose length in code points lies in `min..=max`.
    pub fn string_len<'a>(
        &mut self,
        path: &JsonPath,
        v: &'a Value,
        min: usize,
        max: usize,
    ) -> Option<&'a str> {
        let s = self.string(path, v)?;
        let actual = s.chars().count();
        if actual < min || actual > max {
            self.report(path.clone(), ViolationKind::Length { min, max, actual });
            return None;
        }
        Some(s)
    }

    /// A string matching `re` (whose source text is `pattern`).
    pub fn string_pattern<'a>(
        &mut self,
        path: &JsonPath,
        v: &'a Value,
        re: &Regex,
        pattern: &'static str,
    ) -> Option<&'a str> {
        let s = self.string(path, v)?;
        if !re.is_match(s) {
            self.report(path.clone(), ViolationKind::Pattern { pattern });
            return None;
        }
        Some(s)
    }

    /// A string equal to one of `allowed`.
    pub fn one_of<'a>(
        &mut self,
        path: &JsonPath,
        v: &'a Value,
        allowed: &'static [&'static str],
    ) -> Option<&'a str> {
        let s = self.string(path, v)?;
        if !allowed.contains(&s) {
            self.report(
                path.clone(),
                ViolationKind::NotAllowed {
                    found: s.to_owned(),
                    allowed,
                },
            );
            return None;
        }
        Some(s)
    }

    /// A boolean.
    pub fn boolean(&mut self, path: &JsonPath, v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                self.wrong_type(path, "boolean", other);
                None
            }
        }
    }

    /// An integer in `min..=max`. Integral floats (`3.0`) are accepted as
    /// Pydantic's lax mode does; booleans and fractional numbers are not.
    pub fn integer(&mut self, path: &JsonPath, v: &Value, min: i64, max: i64) -> Option<i64> {
        let (n, text) = match v {
            Value::Int(i) => match i.as_i64() {
                Some(n) => (n, i.as_str().to_owned()),
                None => {
                    self.report(
                        path.clone(),
                        ViolationKind::Range {
                            value: i.as_str().to_owned(),
                            constraint: format!("{min} <= n <= {max}"),
                        },
                    );
                    return None;
                }
            },
            Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                (*f as i64, crate::json::python_float_repr(*f))
            }
            Value::Float(f) => {
                self.report(
                    path.clone(),
                    ViolationKind::WrongType {
                        expected: "integer",
                        found: if f.is_finite() {
                            "number with a fractional part"
                        } else {
                            "non-finite number"
                        },
                    },
                );
                return None;
            }
            other => {
                self.wrong_type(path, "integer", other);
                return None;
            }
        };
        if n < min || n > max {
            self.report(
                path.clone(),
                ViolationKind::Range {
                    value: text,
                    constraint: format!("{min} <= n <= {max}"),
                },
            );
            return None;
        }
        Some(n)
    }

    /// A number (integer or float) as `f64`; booleans are refused.
    pub fn number(&mut self, path: &JsonPath, v: &Value) -> Option<f64> {
        match v {
            Value::Int(i) => Some(i.to_f64()),
            Value::Float(f) => Some(*f),
            other => {
                self.wrong_type(path, "number", other);
                None
            }
        }
    }

    /// An array.
    pub fn array<'a>(&mut self, path: &JsonPath, v: &'a Value) -> Option<&'a [Value]> {
        match v {
            Value::Array(items) => Some(items),
            other => {
                self.wrong_type(path, "array", other);
                None
            }
        }
    }

    /// An array with at least `min` items.
    pub fn array_min<'a>(
        &mut self,
        path: &JsonPath,
        v: &'a Value,
        min: usize,
    ) -> Option<&'a [Value]> {
        let items = self.array(path, v)?;
        if items.len() < min {
            self.report(
                path.clone(),
                ViolationKind::TooFewItems {
                    min,
                    actual: items.len(),
                },
            );
            return None;
        }
        Some(items)
    }

    /// An array of strings with at least `min` items.
    pub fn string_list(&mut self, path: &JsonPath, v: &Value, min: usize) -> Option<Vec<String>> {
        let items = self.array_min(path, v, min)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.string(&path.index(i), item) {
                Some(s) => out.push(s.to_owned()),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// Declares a lazily compiled regex with its source text, for
/// [`Checker::string_pattern`].
#[macro_export]
macro_rules! pattern {
    ($name:ident = $re:literal) => {
        #[allow(missing_docs)]
        pub static $name: $crate::validate::Pattern = $crate::validate::Pattern::new($re);
    };
}

/// A regex compiled on first use, remembering its source text.
#[derive(Debug)]
pub struct Pattern {
    source: &'static str,
    re: std::sync::OnceLock<Regex>,
}

impl Pattern {
    /// A pattern from its source text (compiled on first use).
    pub const fn new(source: &'static str) -> Pattern {
        Pattern {
            source,
            re: std::sync::OnceLock::new(),
        }
    }

    /// The source text.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// The compiled regex. The sources are literals in this crate, covered by
    /// tests, so compilation cannot fail at run time.
    #[allow(clippy::expect_used)]
    pub fn regex(&self) -> &Regex {
        self.re
            .get_or_init(|| Regex::new(self.source).expect("pattern literals are valid regexes"))
    }

    /// True if `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        self.regex().is_match(s)
    }
}

impl Checker {
    /// A string matching a [`Pattern`].
    pub fn matches<'a>(&mut self, path: &JsonPath, v: &'a Value, p: &Pattern) -> Option<&'a str> {
        self.string_pattern(path, v, p.regex(), p.source())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_display_like_pydantic_locations() {
        let p = JsonPath::root().key("models").index(0).key("id");
        assert_eq!(p.to_string(), "models[0].id");
        assert_eq!(JsonPath::root().to_string(), "(root)");
        assert_eq!(JsonPath::root().key("a b").to_string(), "[\"a b\"]");
    }

    #[test]
    fn dollar_does_not_accept_trailing_newline() {
        let p = Pattern::new("^[a-z]{3}$");
        assert!(p.is_match("abc"));
        assert!(!p.is_match("abc\n"));
    }
}
