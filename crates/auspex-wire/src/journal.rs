//! The driver's run journal (spec `tenant-sdk.md` §5.2): JSON Lines, one
//! record per line, each line Python-canonical JSON
//! (`json.dumps(record, separators=(",", ":"), sort_keys=True)`) plus `\n`.
//!
//! This module owns the record vocabulary, the exact line bytes, reading a
//! journal's text back, and `resume_state`. Appending with `fsync` is the
//! caller's I/O.

use std::collections::BTreeSet;

use crate::json::{self, Object, Value};

/// `kind` of a submit record.
pub const KIND_SUBMIT: &str = "submit";
/// `kind` of a round-boundary checkpoint.
pub const KIND_ROUND_DONE: &str = "round_done";
/// `kind` written after finalize.
pub const KIND_FINALIZED: &str = "finalized";
/// `kind` written after abort.
pub const KIND_ABORTED: &str = "aborted";

/// One pinned unit of a submit record (payload without `_auspexai_round`).
#[derive(Debug, Clone, PartialEq)]
pub struct JournalUnit {
    /// The unit id.
    pub unit_id: String,
    /// The generator's payload.
    pub payload: Value,
}

/// A journal record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A round's units, written **before** the POST.
    Submit {
        /// The round.
        round: i64,
        /// The pinned units.
        units: Vec<JournalUnit>,
    },
    /// The round-boundary checkpoint.
    RoundDone {
        /// The round.
        round: i64,
        /// The results cursor (`<completed_at>|<result_id>`), or none.
        cursor: Option<String>,
        /// The aggregate's checkpoint object.
        aggregate: Value,
    },
    /// Finalize was called.
    Finalized,
    /// Abort was called.
    Aborted,
    /// An object with another or no `kind`; kept verbatim, ignored by
    /// [`resume_state`] (as the SDK ignores it).
    Other(Object),
}

/// Why journal text could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The file is not UTF-8.
    #[error("journal is not valid UTF-8")]
    NotUtf8,
    /// A non-blank line is not JSON (e.g. a torn last line).
    #[error("journal line {line}: {error}")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The parse error.
        error: json::ParseError,
    },
    /// A line is JSON but not a valid record.
    #[error("journal line {line}: {problem}")]
    Record {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: RecordError,
    },
}

/// What is wrong with one record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record is not a JSON object.
    #[error("record is not an object (found {0})")]
    NotAnObject(&'static str),
    /// A member is missing.
    #[error("{kind} record lacks {member:?}")]
    Missing {
        /// The record kind.
        kind: &'static str,
        /// The member.
        member: &'static str,
    },
    /// A member has the wrong type.
    #[error("{kind} record member {member:?} must be {expected}")]
    WrongType {
        /// The record kind.
        kind: &'static str,
        /// The member.
        member: &'static str,
        /// The required type.
        expected: &'static str,
    },
}

fn round_of(o: &Object, kind: &'static str) -> Result<i64, RecordError> {
    let wrong = RecordError::WrongType {
        kind,
        member: "round",
        expected: "an integer",
    };
    match o.get("round") {
        None => Err(RecordError::Missing {
            kind,
            member: "round",
        }),
        Some(Value::Int(i)) => i.as_i64().ok_or(wrong),
        Some(Value::Float(f)) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
            Ok(*f as i64)
        }
        Some(_) => Err(wrong),
    }
}

impl Record {
    /// The record as the SDK's dict (member order is irrelevant: lines are
    /// key-sorted).
    pub fn to_value(&self) -> Value {
        let mut o = Object::new();
        match self {
            Record::Submit { round, units } => {
                o.insert("kind".into(), KIND_SUBMIT.into());
                o.insert("round".into(), (*round).into());
                let units = units
                    .iter()
                    .map(|u| {
                        let mut uo = Object::new();
                        uo.insert("unit_id".into(), u.unit_id.clone().into());
                        uo.insert("payload".into(), u.payload.clone());
                        Value::Object(uo)
                    })
                    .collect();
                o.insert("units".into(), Value::Array(units));
            }
            Record::RoundDone {
                round,
                cursor,
                aggregate,
            } => {
                o.insert("kind".into(), KIND_ROUND_DONE.into());
                o.insert("round".into(), (*round).into());
                o.insert("cursor".into(), cursor.clone().into());
                o.insert("aggregate".into(), aggregate.clone());
            }
            Record::Finalized => {
                o.insert("kind".into(), KIND_FINALIZED.into());
            }
            Record::Aborted => {
                o.insert("kind".into(), KIND_ABORTED.into());
            }
            Record::Other(other) => return Value::Object(other.clone()),
        }
        Value::Object(o)
    }

    /// The exact journal line: Python-canonical JSON plus `\n`.
    pub fn to_line(&self) -> String {
        let mut line = json::canonical(&self.to_value());
        line.push('\n');
        line
    }

    /// Reads one record.
    pub fn from_value(v: &Value) -> Result<Record, RecordError> {
        let o = v
            .as_object()
            .ok_or(RecordError::NotAnObject(v.type_name()))?;
        match o.get("kind").and_then(Value::as_str) {
            Some(KIND_SUBMIT) => {
                let kind = KIND_SUBMIT;
                let round = round_of(o, kind)?;
                let wrong_units = RecordError::WrongType {
                    kind,
                    member: "units",
                    expected: "an array of {unit_id, payload} objects",
                };
                let items = match o.get("units") {
                    None => {
                        return Err(RecordError::Missing {
                            kind,
                            member: "units",
                        });
                    }
                    Some(v) => v.as_array().ok_or(wrong_units.clone())?,
                };
                let mut units = Vec::with_capacity(items.len());
                for it in items {
                    let (Some(id), Some(payload)) =
                        (it.get("unit_id").and_then(Value::as_str), it.get("payload"))
                    else {
                        return Err(wrong_units);
                    };
                    units.push(JournalUnit {
                        unit_id: id.to_owned(),
                        payload: payload.clone(),
                    });
                }
                Ok(Record::Submit { round, units })
            }
            Some(KIND_ROUND_DONE) => {
                let kind = KIND_ROUND_DONE;
                let round = round_of(o, kind)?;
                let cursor = match o.get("cursor") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(_) => {
                        return Err(RecordError::WrongType {
                            kind,
                            member: "cursor",
                            expected: "a string or null",
                        });
                    }
                };
                let aggregate = o.get("aggregate").cloned().unwrap_or(Value::Null);
                Ok(Record::RoundDone {
                    round,
                    cursor,
                    aggregate,
                })
            }
            Some(KIND_FINALIZED) => Ok(Record::Finalized),
            Some(KIND_ABORTED) => Ok(Record::Aborted),
            _ => Ok(Record::Other(o.clone())),
        }
    }
}

/// Python `str.splitlines()` boundaries.
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | '\u{b}'
            | '\u{c}'
            | '\u{1c}'
            | '\u{1d}'
            | '\u{1e}'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

fn python_splitlines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if is_line_break(c) {
            out.push(&text[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r'
                && let Some(&(j, '\n')) = chars.peek()
            {
                chars.next();
                end = j + 1;
            }
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Reads a journal file's bytes like `RunJournal.records()`: lines split as
/// Python's `splitlines`, whitespace-only lines skipped, every other line
/// must be a JSON record (a torn last line is an error).
pub fn parse_journal(bytes: &[u8]) -> Result<Vec<Record>, JournalError> {
    let text = std::str::from_utf8(bytes).map_err(|_| JournalError::NotUtf8)?;
    let mut out = Vec::new();
    for (i, line) in python_splitlines(text).into_iter().enumerate() {
        // Python's str.strip(): Unicode whitespace plus U+001C..U+001F.
        let stripped =
            line.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c));
        if stripped.is_empty() {
            continue;
        }
        let v =
            json::parse_str(stripped).map_err(|error| JournalError::Json { line: i + 1, error })?;
        let rec = Record::from_value(&v).map_err(|problem| JournalError::Record {
            line: i + 1,
            problem,
        })?;
        out.push(rec);
    }
    Ok(out)
}

/// How a previous run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    /// A `finalized` record exists (the last terminal record wins).
    Finalized,
    /// An `aborted` record exists (the last terminal record wins).
    Aborted,
}

impl Terminal {
    /// `finalized` / `aborted`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Terminal::Finalized => KIND_FINALIZED,
            Terminal::Aborted => KIND_ABORTED,
        }
    }
}

/// The restart point reconstructed from a journal (§5.2 `resume_state`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeState {
    /// Set when the loop already terminated.
    pub terminal: Option<Terminal>,
    /// The cursor at the last completed round boundary.
    pub cursor: Option<String>,
    /// The aggregate checkpoint at that boundary.
    pub aggregate: Option<Value>,
    /// The round to (re)run next: last completed round + 1.
    pub current_round: i64,
    /// The units already submitted for `current_round` (re-submit these).
    pub pinned_units: Option<Vec<JournalUnit>>,
    /// Unit ids of every round up to the last completed one.
    pub folded_units: BTreeSet<String>,
    /// True if the journal had any record.
    pub resumed: bool,
}

/// `resume_state(records)`: the last `round_done` (by round number) gives the
/// boundary; the next round's last `submit` is pinned; units of submitted
/// rounds up to the boundary count as folded.
pub fn resume_state(records: &[Record]) -> ResumeState {
    let mut state = ResumeState {
        terminal: None,
        cursor: None,
        aggregate: None,
        current_round: 0,
        pinned_units: None,
        folded_units: BTreeSet::new(),
        resumed: !records.is_empty(),
    };
    let mut last_done = -1i64;
    let mut submits: Vec<(i64, &Vec<JournalUnit>)> = Vec::new();
    for rec in records {
        match rec {
            Record::Submit { round, units } => {
                submits.retain(|(r, _)| r != round);
                submits.push((*round, units));
            }
            Record::RoundDone {
                round,
                cursor,
                aggregate,
            } => {
                if *round > last_done {
                    last_done = *round;
                    state.cursor = cursor.clone();
                    state.aggregate =
                        (!matches!(aggregate, Value::Null)).then(|| aggregate.clone());
                }
            }
            Record::Finalized => state.terminal = Some(Terminal::Finalized),
            Record::Aborted => state.terminal = Some(Terminal::Aborted),
            Record::Other(_) => {}
        }
    }
    state.current_round = last_done + 1;
    state.pinned_units = submits
        .iter()
        .find(|(r, _)| *r == state.current_round)
        .map(|(_, u)| (*u).clone());
    state.folded_units = submits
        .iter()
        .filter(|(r, _)| *r <= last_done)
        .flat_map(|(_, units)| units.iter().map(|u| u.unit_id.clone()))
        .collect();
    state
}
