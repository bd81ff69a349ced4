//! Server-sent-event frames of `GET …/events` (spec `tenant-sdk.md` §4.8): an
//! incremental line splitter for the raw byte stream and the SDK's frame
//! parser (`_SseFrameParser`), byte-for-byte in behaviour.
//!
//! ```
//! use auspex_wire::sse::SseParser;
//! let mut p = SseParser::new();
//! let mut events = Vec::new();
//! for line in [": connected", "", "id: 1", "event: unit.progress", "data: {}", ""] {
//!     events.extend(p.feed_line(line));
//! }
//! assert_eq!(events.len(), 1);
//! assert!(events[0].wakes_driver());
//! ```

/// Event types that end a doorbell wait early.
pub const DOORBELL_EVENTS: &[&str] = &["unit.progress", "receipt.issued", "experiment.status"];

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` value, `message` when none (or an empty one) was given.
    pub event_type: String,
    /// The `data:` lines joined with `\n` (raw text, not parsed).
    pub data: String,
    /// The `id:` value, if any.
    pub id: Option<String>,
}

impl SseEvent {
    /// True for the [`DOORBELL_EVENTS`].
    pub fn wakes_driver(&self) -> bool {
        DOORBELL_EVENTS.contains(&self.event_type.as_str())
    }
}

/// Accumulates field lines into events: a blank line dispatches, `:` lines
/// are comments (`: connected`, `: ping`).
///
/// Exactly the SDK's rules: a field line is split at the first `:` (a line
/// without one is a field with an empty value) and one leading space is
/// removed from the value; only `event`, `data` and `id` are recorded; a blank
/// line dispatches only if an `event` or `data` line was seen since the last
/// dispatch (an `id` alone does not dispatch, and is then kept for the next
/// event); dispatch resets type, data and id. `retry:` is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseParser {
    event_type: Option<String>,
    data: Vec<String>,
    id: Option<String>,
}

impl SseParser {
    /// A parser with no pending fields.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Drops pending fields (on reconnect).
    pub fn reset(&mut self) {
        *self = SseParser::default();
    }

    /// Feeds one line (without its terminator); returns an event when the
    /// line dispatches one.
    pub fn feed_line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            if self.event_type.is_none() && self.data.is_empty() {
                return None;
            }
            let event_type = match self.event_type.take() {
                Some(t) if !t.is_empty() => t,
                _ => "message".to_owned(),
            };
            let event = SseEvent {
                event_type,
                data: std::mem::take(&mut self.data).join("\n"),
                id: self.id.take(),
            };
            return Some(event);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event_type = Some(value.to_owned()),
            "data" => self.data.push(value.to_owned()),
            "id" => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

/// Python `str.splitlines()` boundaries (what httpx's `iter_lines` uses).
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

/// Splits a byte stream into text lines as httpx `Response.iter_lines()`
/// does: UTF-8 decoded incrementally (invalid bytes become U+FFFD), lines end
/// at `\r\n`, `\r`, `\n` or any other `str.splitlines` boundary, a `\r\n` split
/// across chunks counts once.
#[derive(Debug, Clone, Default)]
pub struct LineSplitter {
    /// Undecoded trailing bytes of an incomplete UTF-8 sequence.
    raw: Vec<u8>,
    /// Decoded text not yet terminated.
    text: String,
    /// The previous chunk ended with `\r` (a following `\n` is swallowed).
    after_cr: bool,
}

impl LineSplitter {
    /// An empty splitter.
    pub fn new() -> LineSplitter {
        LineSplitter::default()
    }

    /// Adds bytes; returns the lines completed by them.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.raw.extend_from_slice(chunk);
        let mut decoded = String::new();
        loop {
            match std::str::from_utf8(&self.raw) {
                Ok(s) => {
                    decoded.push_str(s);
                    self.raw.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    decoded.push_str(&String::from_utf8_lossy(&self.raw[..valid]));
                    match e.error_len() {
                        Some(bad) => {
                            decoded.push('\u{fffd}');
                            self.raw.drain(..valid + bad);
                        }
                        None => {
                            // Incomplete sequence at the end: wait for more.
                            self.raw.drain(..valid);
                            break;
                        }
                    }
                }
            }
        }
        self.split(&decoded)
    }

    fn split(&mut self, decoded: &str) -> Vec<String> {
        let mut lines = Vec::new();
        for c in decoded.chars() {
            if self.after_cr {
                self.after_cr = false;
                if c == '\n' {
                    continue;
                }
            }
            if is_line_break(c) {
                lines.push(std::mem::take(&mut self.text));
                self.after_cr = c == '\r';
            } else {
                self.text.push(c);
            }
        }
        lines
    }

    /// Ends the stream: the unterminated last line, if any.
    pub fn finish(&mut self) -> Option<String> {
        if !self.raw.is_empty() {
            self.raw.clear();
            self.text.push('\u{fffd}');
        }
        self.after_cr = false;
        (!self.text.is_empty()).then(|| std::mem::take(&mut self.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_alone_does_not_dispatch_and_carries_over() {
        let mut p = SseParser::new();
        assert_eq!(p.feed_line("id: 5"), None);
        assert_eq!(p.feed_line(""), None);
        assert_eq!(p.feed_line("data: x"), None);
        let e = p.feed_line("").expect("dispatch");
        assert_eq!(e.id.as_deref(), Some("5"));
        assert_eq!(e.event_type, "message");
    }

    #[test]
    fn empty_event_field_dispatches_as_message() {
        let mut p = SseParser::new();
        assert_eq!(p.feed_line("event"), None);
        let e = p.feed_line("").expect("dispatch");
        assert_eq!(e.event_type, "message");
        assert_eq!(e.data, "");
        assert_eq!(p.feed_line("retry: 10"), None);
        assert_eq!(p.feed_line("data:  two spaces"), None);
        assert_eq!(
            p.feed_line("").map(|e| e.data),
            Some(" two spaces".to_owned())
        );
    }

    #[test]
    fn splitter_handles_split_crlf_and_utf8() {
        let mut s = LineSplitter::new();
        assert_eq!(s.push(b"a\r"), vec!["a".to_owned()]);
        assert_eq!(s.push(b"\nb\xc3"), Vec::<String>::new());
        assert_eq!(
            s.push(b"\xa9\n\n"),
            vec!["b\u{e9}".to_owned(), String::new()]
        );
        assert_eq!(s.push(b"c\xffd\re"), vec!["c\u{fffd}d".to_owned()]);
        assert_eq!(s.finish(), Some("e".to_owned()));
        assert_eq!(s.finish(), None);
    }
}
