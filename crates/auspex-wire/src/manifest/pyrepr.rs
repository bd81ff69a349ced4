//! Python `repr` of the few values the SDK's error messages interpolate
//! (`{path!r}`, `sorted(knobs)`), so our messages read like the SDK's.

use icu_properties::CodePointMapData;
use icu_properties::props::GeneralCategory;

/// Python's `str.isprintable` for one character.
fn printable(c: char) -> bool {
    use GeneralCategory as G;
    if c == ' ' {
        return true;
    }
    !matches!(
        CodePointMapData::<GeneralCategory>::new().get(c),
        G::Control
            | G::Format
            | G::Surrogate
            | G::PrivateUse
            | G::Unassigned
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::SpaceSeparator
    )
}

/// Python's `repr(s)` for a `str`.
pub(crate) fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if printable(c) => out.push(c),
            c => {
                let n = u32::from(c);
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
        }
    }
    out.push(quote);
    out
}

/// Python's `repr(list_of_str)`, e.g. `['top_k', 'top_p']`.
pub(crate) fn repr_str_list<S: AsRef<str>>(items: &[S]) -> String {
    let inner: Vec<String> = items.iter().map(|s| repr_str(s.as_ref())).collect();
    format!("[{}]", inner.join(", "))
}

/// Python's `str(float)` for a finite value.
pub(crate) fn float(f: f64) -> String {
    crate::json::python_float_repr(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        assert_eq!(repr_str("abc"), "'abc'");
        assert_eq!(repr_str("g's"), "\"g's\"");
        assert_eq!(repr_str("q\"x"), "'q\"x'");
        assert_eq!(repr_str("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(repr_str("a\nb\u{7f}\u{200b}é😀"), "'a\\nb\\x7f\\u200bé😀'");
        assert_eq!(repr_str_list(&["top_k", "top_p"]), "['top_k', 'top_p']");
        assert_eq!(float(2.0), "2.0");
        assert_eq!(float(-1e22), "-1e+22");
    }
}
