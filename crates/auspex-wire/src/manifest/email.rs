//! `tenant_maintainer_contact`: the e-mail check and normalisation that
//! Pydantic's `EmailStr` applies (spec `tenant-sdk.md` §3a.1).
//!
//! `EmailStr` first peels an RFC 5322 display-name form (`Name <addr>`) with a
//! regular expression, strips surrounding whitespace, and then hands the
//! address to `email-validator` 2.x with deliverability checks off and every
//! optional syntax disabled (no quoted local parts, no `[IP]` literals, no
//! display names). What comes back is `local@domain` where
//!
//! * the local part keeps its case (except the RFC 2142 role names such as
//!   `Support`/`POSTMASTER`, which are lowercased) and is NFC-normalised;
//! * the domain goes through UTS #46 mapping (lowercasing, full-width
//!   characters, `。` separators) and is returned in its Unicode form, so
//!   `xn--` labels are decoded (`a@xn--bcher-kva.example` → `a@bücher.example`);
//! * a domain without a dot, a top-level label not ending in a letter, and the
//!   special-use names `arpa`, `invalid`, `local`, `localhost`, `onion`, `test`
//!   (and their subdomains) are refused; `example`/`example.com` are accepted.
//!
//! The reasons are email-validator's (and the Python `idna` package's)
//! messages; the test fixture `manifests/email_cases.json` pins them. Known
//! approximations: a character email-validator names by its Unicode name is
//! shown as `U+XXXX` unless it is one of a few common ones; the `ipaddress`
//! detail of a malformed bracketed literal is not reproduced; and on inputs
//! that are invalid in several ways at once the IDNA complaint reported may
//! differ. IDNA 2008 (RFC 5891–5893) validity is checked label by label on top
//! of the `idna` crate's UTS #46 processing, which alone would admit symbols
//! such as `☃` that the Python `idna` package refuses.

use std::sync::LazyLock;

use icu_normalizer::{ComposingNormalizerBorrowed, DecomposingNormalizerBorrowed};
use icu_properties::CodePointMapData;
use icu_properties::props::GeneralCategory;
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use regex::Regex;

use super::pyrepr;

/// Pydantic refuses longer inputs before looking at them.
const MAX_INPUT_LENGTH: usize = 2048;
/// RFC 3696 errata 1690: at most 254 octets for the whole address.
const EMAIL_MAX_LENGTH: usize = 254;
/// RFC 1035: at most 253 octets for the domain.
const DOMAIN_MAX_LENGTH: usize = 253;
/// RFC 1035: at most 63 octets per label.
const DNS_LABEL_LENGTH_LIMIT: usize = 63;

/// RFC 2142 mailbox names that email-validator lowercases.
const CASE_INSENSITIVE_MAILBOX_NAMES: &[&str] = &[
    "info",
    "marketing",
    "sales",
    "support",
    "abuse",
    "noc",
    "security",
    "postmaster",
    "hostmaster",
    "usenet",
    "news",
    "webmaster",
    "www",
    "uucp",
    "ftp",
];

/// IANA special-use names (and their subdomains) that email-validator refuses.
const SPECIAL_USE_DOMAIN_NAMES: &[&str] =
    &["arpa", "invalid", "local", "localhost", "onion", "test"];

/// Why an address was refused: email-validator's (or Pydantic's) reason text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct EmailError {
    /// The reason, e.g. `The part after the @-sign is not valid. It should have a period.`
    pub reason: String,
}

fn fail<T>(reason: impl Into<String>) -> Result<T, EmailError> {
    Err(EmailError {
        reason: reason.into(),
    })
}

/// Pydantic's `pretty_email_regex`, with Python's `\w`/`\s` spelled out for
/// the `regex` crate (`\w` = letters, numbers and `_`; `\s` also covers
/// U+001C–U+001F, which Python's `str.isspace` counts as whitespace).
static PRETTY_EMAIL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let name_chars = r"[\p{L}\p{N}_.!#$%&'*+\-/=?^`{|}~]";
    let ws = r"[\s\x1c-\x1f]";
    let pattern = format!(
        r#"^{ws}*(?:((?:{name_chars}+{ws}+)*{name_chars}+)|"((?:[^"]|")+)")?{ws}*<(.+)>{ws}*$"#
    );
    Regex::new(&pattern).ok()
});

/// Validates `value` as Pydantic's `EmailStr` does and returns the normalised
/// address that the SDK stores (and signs).
pub fn normalize_email(value: &str) -> Result<String, EmailError> {
    if value.chars().count() > MAX_INPUT_LENGTH {
        return fail(format!(
            "Length must not exceed {MAX_INPUT_LENGTH} characters"
        ));
    }
    if value.contains('\r') || value.contains('\n') {
        return fail("Carriage return and line feed characters are not allowed");
    }
    let addr = PRETTY_EMAIL
        .as_ref()
        .and_then(|re| re.captures(value))
        .and_then(|c| c.get(3))
        .map_or(value, |m| m.as_str());
    validate_email(py_strip(addr))
}

// ---------------------------------------------------------------------------
// Unicode helpers
// ---------------------------------------------------------------------------

fn category(c: char) -> GeneralCategory {
    CodePointMapData::<GeneralCategory>::new().get(c)
}

/// The major class of a general category: `L`, `M`, `N`, `P`, `S`, `Z` or `C`.
fn major(gc: GeneralCategory) -> char {
    use GeneralCategory as G;
    match gc {
        G::UppercaseLetter
        | G::LowercaseLetter
        | G::TitlecaseLetter
        | G::ModifierLetter
        | G::OtherLetter => 'L',
        G::NonspacingMark | G::EnclosingMark | G::SpacingMark => 'M',
        G::DecimalNumber | G::LetterNumber | G::OtherNumber => 'N',
        G::DashPunctuation
        | G::OpenPunctuation
        | G::ClosePunctuation
        | G::ConnectorPunctuation
        | G::OtherPunctuation
        | G::InitialPunctuation
        | G::FinalPunctuation => 'P',
        G::MathSymbol | G::CurrencySymbol | G::ModifierSymbol | G::OtherSymbol => 'S',
        G::SpaceSeparator | G::LineSeparator | G::ParagraphSeparator => 'Z',
        _ => 'C',
    }
}

fn nfc(s: &str) -> String {
    ComposingNormalizerBorrowed::new_nfc()
        .normalize(s)
        .into_owned()
}

fn nfkd(s: &str) -> String {
    DecomposingNormalizerBorrowed::new_nfkd()
        .normalize(s)
        .into_owned()
}

/// Python's `str.isspace` for one character.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// Python's `str.rstrip()`.
fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(py_isspace)
}

/// A few Unicode names email-validator is likely to print; others fall back to
/// `U+XXXX`, which is also what Python prints for unnamed code points.
fn unicode_name(c: char) -> Option<&'static str> {
    Some(match c {
        ' ' => "SPACE",
        '\u{a0}' => "NO-BREAK SPACE",
        '\u{ad}' => "SOFT HYPHEN",
        '\u{300}' => "COMBINING GRAVE ACCENT",
        '\u{301}' => "COMBINING ACUTE ACCENT",
        '\u{308}' => "COMBINING DIAERESIS",
        '\u{1680}' => "OGHAM SPACE MARK",
        '\u{2002}' => "EN SPACE",
        '\u{2003}' => "EM SPACE",
        '\u{2009}' => "THIN SPACE",
        '\u{200b}' => "ZERO WIDTH SPACE",
        '\u{200c}' => "ZERO WIDTH NON-JOINER",
        '\u{200d}' => "ZERO WIDTH JOINER",
        '\u{200e}' => "LEFT-TO-RIGHT MARK",
        '\u{200f}' => "RIGHT-TO-LEFT MARK",
        '\u{2028}' => "LINE SEPARATOR",
        '\u{2029}' => "PARAGRAPH SEPARATOR",
        '\u{202e}' => "RIGHT-TO-LEFT OVERRIDE",
        '\u{202f}' => "NARROW NO-BREAK SPACE",
        '\u{2060}' => "WORD JOINER",
        '\u{3000}' => "IDEOGRAPHIC SPACE",
        '\u{feff}' => "ZERO WIDTH NO-BREAK SPACE",
        _ => return None,
    })
}

/// email-validator's `safe_character_display`.
fn display_char(c: char) -> String {
    if c == '\\' {
        return "\"\\\"".to_owned();
    }
    if matches!(major(category(c)), 'L' | 'N' | 'P' | 'S') {
        return if c == '\'' {
            "\"'\"".to_owned()
        } else {
            format!("'{c}'")
        };
    }
    match unicode_name(c) {
        Some(name) => name.to_owned(),
        None if u32::from(c) < 0xffff => format!("U+{:04X}", u32::from(c)),
        None => format!("U+{:08X}", u32::from(c)),
    }
}

/// The displays of the characters of `s` for which `bad` holds, de-duplicated
/// and sorted by their display text (email-validator sorts a set of strings).
fn bad_displays(s: &str, bad: impl Fn(char) -> bool) -> Option<String> {
    let mut shown: Vec<String> = s.chars().filter(|&c| bad(c)).map(display_char).collect();
    if shown.is_empty() {
        return None;
    }
    shown.sort();
    shown.dedup();
    Some(shown.join(", "))
}

/// email-validator's `check_unsafe_chars`.
fn check_unsafe_chars(s: &str, allow_space: bool) -> Result<(), EmailError> {
    let mut bad: Vec<char> = Vec::new();
    for (i, c) in s.chars().enumerate() {
        let gc = category(c);
        let unsafe_char = match major(gc) {
            'L' | 'N' | 'P' | 'S' => false,
            'M' => i == 0,
            'Z' if gc == GeneralCategory::SpaceSeparator => !allow_space,
            _ => true,
        };
        if unsafe_char {
            bad.push(c);
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    bad.sort_unstable();
    bad.dedup();
    let shown: Vec<String> = bad.into_iter().map(display_char).collect();
    fail(format!(
        "The email address contains unsafe characters: {}.",
        shown.join(", ")
    ))
}

// ---------------------------------------------------------------------------
// Character classes (RFC 5322 atext, RFC 6531, RFC 952)
// ---------------------------------------------------------------------------

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_!#$%&'*+-/=?^`{|}~".contains(c)
}

fn is_atext_intl(c: char) -> bool {
    is_atext(c) || c >= '\u{80}'
}

/// `[atext]+(\.[atext]+)*` over the whole string.
fn is_dot_atom(s: &str, atext: fn(char) -> bool) -> bool {
    !s.is_empty() && s.split('.').all(|p| !p.is_empty() && p.chars().all(atext))
}

fn is_hostname_char_intl(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.' || c >= '\u{80}'
}

/// `DOT_ATOM_TEXT_HOSTNAME`: LDH labels that neither start nor end with `-`.
fn is_ascii_hostname(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
    })
}

/// email-validator's `check_dot_atom`.
fn check_dot_atom(label: &str, start: &str, end: &str, hostname: bool) -> Result<(), EmailError> {
    let describe = |template: &str, what: &str| template.replace("{}", what);
    if label.ends_with('.') {
        return fail(describe(end, "period"));
    }
    if label.starts_with('.') {
        return fail(describe(start, "period"));
    }
    if label.contains("..") {
        return fail("An email address cannot have two periods in a row.");
    }
    if hostname {
        if label.ends_with('-') {
            return fail(describe(end, "hyphen"));
        }
        if label.starts_with('-') {
            return fail(describe(start, "hyphen"));
        }
        if label.contains(".-") || label.contains("-.") {
            return fail("An email address cannot have a period and a hyphen next to each other.");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Splitting (display name, local part, domain)
// ---------------------------------------------------------------------------

struct Split {
    display_name: Option<String>,
    original_local: String,
    unescaped_local: String,
    quoted_local: bool,
    domain: String,
}

/// Splits `text` before the first of `specials` that is outside quotes and
/// does not combine with what follows it (email-validator looks at the NFC
/// form of a 32-character window).
fn split_at_unquoted_special<'a>(
    text: &'a str,
    specials: &[char],
) -> Result<(&'a str, &'a str), EmailError> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut inside_quote = false;
    let mut escaped = false;
    let mut end = text.len();
    for (i, &(pos, c)) in chars.iter().enumerate() {
        let window_end = chars.get(i + 32).map_or(text.len(), |&(p, _)| p);
        let combines = !nfc(&text[pos..window_end]).starts_with(c);
        if combines {
            continue;
        }
        if inside_quote {
            if c == '\\' && !escaped {
                escaped = true;
            } else if c == '"' && !escaped {
                inside_quote = false;
                escaped = false;
            } else {
                escaped = false;
            }
        } else if c == '"' {
            inside_quote = true;
        } else if specials.contains(&c) {
            end = pos;
            break;
        }
    }
    if end == text.len() {
        if text.contains('\u{ff20}') {
            return fail(
                "The email address has the \"full-width\" at-sign (@) character instead of a regular at-sign.",
            );
        }
        if text.contains('\u{fe6b}') {
            return fail(
                "The email address has the \"small commercial at\" character instead of a regular at-sign.",
            );
        }
        return fail("An email address must have an @-sign.");
    }
    Ok((&text[..end], &text[end..]))
}

/// Removes surrounding quotes and backslash escapes; returns whether `text`
/// was quoted.
fn unquote(text: &str) -> Result<(String, bool), EmailError> {
    let chars: Vec<char> = text.chars().collect();
    let mut quoted = false;
    let mut escaped = false;
    let mut value = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if quoted {
            if escaped {
                value.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                if i != chars.len() - 1 {
                    let rest: Vec<String> =
                        chars[i + 1..].iter().map(|&c| display_char(c)).collect();
                    return fail(format!(
                        "Extra character(s) found after close quote: {}",
                        rest.join(", ")
                    ));
                }
                break;
            } else {
                value.push(c);
            }
        } else if i == 0 && c == '"' {
            quoted = true;
        } else {
            value.push(c);
        }
    }
    Ok((value, quoted))
}

fn split_email(email: &str) -> Result<Split, EmailError> {
    let (left, right) = split_at_unquoted_special(email, &['@', '<'])?;
    let (display_name, local, domain) = if right.starts_with('<') {
        let (name, name_quoted) = unquote(py_rstrip(left))?;
        // Unquoted display names allow atext and spaces, but not periods.
        if !name_quoted
            && let Some(bad) = bad_displays(&name, |c| c == '.' || (!is_atext(c) && c != ' '))
        {
            return fail(format!(
                "The display name contains invalid characters when not quoted: {bad}."
            ));
        }
        check_unsafe_chars(&name, true)?;
        if !right.contains('>') {
            return fail(
                "An open angle bracket at the start of the email address has to be followed by a close angle bracket at the end.",
            );
        }
        let right = right.trim_end_matches(' ');
        let Some(inner) = right.strip_prefix('<').and_then(|r| r.strip_suffix('>')) else {
            return fail("There can't be anything after the email address.");
        };
        let (local, domain) = split_at_unquoted_special(inner, &['@'])?;
        (Some(name), local, domain)
    } else {
        (None, left, right)
    };
    let domain = domain.strip_prefix('@').unwrap_or(domain);
    let (unescaped_local, quoted_local) = unquote(local)?;
    Ok(Split {
        display_name,
        original_local: local.to_owned(),
        unescaped_local,
        quoted_local,
        domain: domain.to_owned(),
    })
}

// ---------------------------------------------------------------------------
// Local part
// ---------------------------------------------------------------------------

struct LocalPart {
    local_part: String,
    /// `None` when the local part needs SMTPUTF8.
    ascii_local_part: Option<String>,
}

fn validate_local_part(local: &str, quoted: bool) -> Result<LocalPart, EmailError> {
    if local.is_empty() {
        return fail("There must be something before the @-sign.");
    }
    if is_dot_atom(local, is_atext) {
        return Ok(LocalPart {
            local_part: local.to_owned(),
            ascii_local_part: Some(local.to_owned()),
        });
    }
    let valid_quoted = if is_dot_atom(local, is_atext_intl) {
        Some(false)
    } else if quoted {
        if let Some(bad) = bad_displays(local, |c| !((' '..='~').contains(&c) || c >= '\u{80}')) {
            return fail(format!(
                "The email address contains invalid characters in quotes before the @-sign: {bad}."
            ));
        }
        Some(true)
    } else {
        None
    };
    if let Some(is_quoted) = valid_quoted {
        check_unsafe_chars(local, is_quoted)?;
        let smtputf8 = !local.chars().all(|c| (' '..='~').contains(&c));
        let local_part = if is_quoted {
            let mut q = String::from("\"");
            for c in local.chars() {
                if c == '"' || c == '\\' {
                    q.push('\\');
                }
                q.push(c);
            }
            q.push('"');
            q
        } else {
            local.to_owned()
        };
        return Ok(LocalPart {
            ascii_local_part: (!smtputf8).then(|| local_part.clone()),
            local_part,
        });
    }
    if let Some(bad) = bad_displays(local, |c| !(is_atext_intl(c) || c == '.')) {
        return fail(format!(
            "The email address contains invalid characters before the @-sign: {bad}."
        ));
    }
    check_dot_atom(
        local,
        "An email address cannot start with a {}.",
        "An email address cannot have a {} immediately before the @-sign.",
        false,
    )?;
    fail("The email address contains invalid characters before the @-sign.")
}

// ---------------------------------------------------------------------------
// Domain
// ---------------------------------------------------------------------------

/// email-validator's `uts46_valid_char`: characters it refuses before UTS #46
/// mapping.
fn uts46_valid_char(c: char) -> bool {
    let n = u32::from(c);
    if (0x80..=0x9f).contains(&n) {
        return false;
    }
    if ((0x2010..=0x2060).contains(&n)
        && !(0x2024..=0x2026).contains(&n)
        && !(0x2028..=0x202e).contains(&n))
        || matches!(n, 0xad | 0x2064 | 0xff0e)
        || (0x200b..=0x200d).contains(&n)
        || (0x1bca0..=0x1bca3).contains(&n)
    {
        return true;
    }
    use GeneralCategory as G;
    if matches!(
        category(c),
        G::Format
            | G::Unassigned
            | G::PrivateUse
            | G::Surrogate
            | G::SpaceSeparator
            | G::LineSeparator
            | G::ParagraphSeparator
    ) {
        return false;
    }
    // Characters whose decomposition contains a full stop (`⒈`, `․`).
    if !c.is_ascii() && nfkd(c.encode_utf8(&mut [0; 4])).contains('.') {
        return false;
    }
    true
}

/// An approximation of IDNA 2008 (RFC 5892) validity for the code point at
/// `pos` of an already UTS #46-mapped label, returning the Python `idna`
/// package's complaint. The letter/digit/mark categories are PVALID, minus the
/// RFC's exceptions, old Hangul jamo and the ignorable blocks; the CONTEXTO
/// rules are checked (the CONTEXTJ joiners never get here: email-validator
/// refuses format characters first). The `idna` crate follows UTS #46, which
/// admits symbols (`☃`) that the Python `idna` package refuses.
fn idna2008_error(label: &[char], pos: usize) -> Option<String> {
    use GeneralCategory as G;
    use icu_properties::props::Script;
    let c = label[pos];
    let script = |x: char| CodePointMapData::<Script>::new().get(x);
    let context = |ok: bool| {
        (!ok).then(|| {
            format!(
                "Codepoint U+{:04X} not allowed at position {} in {}",
                u32::from(c),
                pos + 1,
                pyrepr::repr_str(&label.iter().collect::<String>())
            )
        })
    };
    let allowed = match c {
        '\u{df}' | '\u{3c2}' | '\u{6fd}' | '\u{6fe}' | '\u{f0b}' | '\u{3007}' => true,
        '\u{b7}' => {
            return context(
                pos > 0 && pos + 1 < label.len() && label[pos - 1] == 'l' && label[pos + 1] == 'l',
            );
        }
        '\u{375}' => {
            return context(
                label
                    .get(pos + 1)
                    .is_some_and(|&n| script(n) == Script::Greek),
            );
        }
        '\u{5f3}' | '\u{5f4}' => {
            return context(pos > 0 && script(label[pos - 1]) == Script::Hebrew);
        }
        '\u{30fb}' => {
            return context(label.iter().any(|&x| {
                x != '\u{30fb}'
                    && matches!(script(x), Script::Hiragana | Script::Katakana | Script::Han)
            }));
        }
        '\u{660}'..='\u{669}' => {
            return context(!label.iter().any(|x| ('\u{6f0}'..='\u{6f9}').contains(x)));
        }
        '\u{6f0}'..='\u{6f9}' => {
            return context(!label.iter().any(|x| ('\u{660}'..='\u{669}').contains(x)));
        }
        '\u{640}' | '\u{7fa}' | '\u{302e}' | '\u{302f}' | '\u{3031}'..='\u{3035}' | '\u{303b}' => {
            false
        }
        '\u{1100}'..='\u{11ff}' | '\u{a960}'..='\u{a97f}' | '\u{d7b0}'..='\u{d7ff}' => false,
        '\u{20d0}'..='\u{20ff}' | '\u{1d100}'..='\u{1d24f}' => false,
        // Letters, marks and digits that NFKC leaves alone (RFC 5892's
        // "Unstable" category removes e.g. `º`, which NFKC maps to `o`).
        _ => {
            matches!(
                category(c),
                G::LowercaseLetter
                    | G::OtherLetter
                    | G::ModifierLetter
                    | G::NonspacingMark
                    | G::SpacingMark
                    | G::DecimalNumber
            ) && {
                let mut buf = [0u8; 4];
                let one = c.encode_utf8(&mut buf);
                ComposingNormalizerBorrowed::new_nfkc().normalize(one) == *one
            }
        }
    };
    (!allowed).then(|| {
        format!(
            "Codepoint U+{:04X} at position {} of {} not allowed",
            u32::from(c),
            pos + 1,
            pyrepr::repr_str(&label.iter().collect::<String>())
        )
    })
}

/// The Bidi Rule (RFC 5893) for one label, worded as the Python `idna`
/// package words it. Without `check_ltr` only labels holding a right-to-left
/// character are checked.
fn bidi_error(label: &str, check_ltr: bool) -> Option<String> {
    use icu_properties::props::BidiClass as B;
    let class = |c: char| CodePointMapData::<B>::new().get(c);
    let chars: Vec<char> = label.chars().collect();
    let first = *chars.first()?;
    let rtl_label = chars
        .iter()
        .any(|&c| matches!(class(c), B::RightToLeft | B::ArabicLetter | B::ArabicNumber));
    if !rtl_label && !check_ltr {
        return None;
    }
    let rtl = match class(first) {
        B::RightToLeft | B::ArabicLetter => true,
        B::LeftToRight => false,
        _ => {
            return Some(format!(
                "First codepoint in label {} must be directionality L, R or AL",
                pyrepr::repr_str(label)
            ));
        }
    };
    let mut valid_ending = false;
    let mut number_type = None;
    for (i, &c) in chars.iter().enumerate() {
        let d = class(c);
        if rtl {
            if !matches!(
                d,
                B::RightToLeft
                    | B::ArabicLetter
                    | B::ArabicNumber
                    | B::EuropeanNumber
                    | B::EuropeanSeparator
                    | B::CommonSeparator
                    | B::EuropeanTerminator
                    | B::OtherNeutral
                    | B::BoundaryNeutral
                    | B::NonspacingMark
            ) {
                return Some(format!(
                    "Invalid direction for codepoint at position {} in a right-to-left label",
                    i + 1
                ));
            }
            if matches!(
                d,
                B::RightToLeft | B::ArabicLetter | B::EuropeanNumber | B::ArabicNumber
            ) {
                valid_ending = true;
            } else if d != B::NonspacingMark {
                valid_ending = false;
            }
            if matches!(d, B::ArabicNumber | B::EuropeanNumber) {
                match number_type {
                    None => number_type = Some(d),
                    Some(t) if t != d => {
                        return Some(
                            "Can not mix numeral types in a right-to-left label".to_owned(),
                        );
                    }
                    Some(_) => {}
                }
            }
        } else {
            if !matches!(
                d,
                B::LeftToRight
                    | B::EuropeanNumber
                    | B::EuropeanSeparator
                    | B::CommonSeparator
                    | B::EuropeanTerminator
                    | B::OtherNeutral
                    | B::BoundaryNeutral
                    | B::NonspacingMark
            ) {
                return Some(format!(
                    "Invalid direction for codepoint at position {} in a left-to-right label",
                    i + 1
                ));
            }
            if matches!(d, B::LeftToRight | B::EuropeanNumber) {
                valid_ending = true;
            } else if d != B::NonspacingMark {
                valid_ending = false;
            }
        }
    }
    (!valid_ending).then(|| "Label ends with illegal codepoint directionality".to_owned())
}

/// `(diff) character(s) too many` as email-validator words it.
fn length_reason(len: usize, limit: usize) -> String {
    let diff = len.saturating_sub(limit);
    format!(
        "({diff} character{} too many)",
        if diff > 1 { "s" } else { "" }
    )
}

/// `idna.check_label`: NFC, hyphens, leading combining mark, code points,
/// Bidi Rule (for labels with right-to-left characters).
fn check_label(label: &str) -> Option<String> {
    if label.is_empty() {
        return Some("Empty Label".to_owned());
    }
    if nfc(label) != label {
        return Some("Label must be in Normalization Form C".to_owned());
    }
    let chars: Vec<char> = label.chars().collect();
    if chars.get(2..4) == Some(&['-', '-'][..]) {
        return Some("Label has disallowed hyphens in 3rd and 4th position".to_owned());
    }
    if chars.first() == Some(&'-') || chars.last() == Some(&'-') {
        return Some("Label must not start or end with a hyphen".to_owned());
    }
    if chars.first().is_some_and(|&c| major(category(c)) == 'M') {
        return Some("Label begins with an illegal combining character".to_owned());
    }
    for (i, &c) in chars.iter().enumerate() {
        let detail = if c.is_ascii() {
            (!(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')).then(|| {
                format!(
                    "Codepoint U+{:04X} at position {} of {} not allowed",
                    u32::from(c),
                    i + 1,
                    pyrepr::repr_str(label)
                )
            })
        } else {
            idna2008_error(&chars, i)
        };
        if detail.is_some() {
            return detail;
        }
    }
    bidi_error(label, false)
}

/// `idna.ulabel` of an ASCII label: decodes an A-label and checks it.
fn ulabel_error(label: &str) -> Option<String> {
    let lower = label.to_ascii_lowercase();
    let Some(puny) = lower.strip_prefix("xn--") else {
        return check_label(&lower);
    };
    if puny.is_empty() {
        return Some("Malformed A-label, no Punycode eligible content found".to_owned());
    }
    if puny.ends_with('-') {
        return Some("A-label must not end with a hyphen".to_owned());
    }
    let Some(decoded) = idna::punycode::decode_to_string(puny) else {
        return Some("Invalid A-label".to_owned());
    };
    if idna::punycode::encode_str(&decoded).as_deref() != Some(puny) {
        return Some("A-label is not the canonical Punycode encoding of its U-label".to_owned());
    }
    check_label(&decoded)
}

/// `idna.uts46_remap(domain, std3_rules=False, transitional=False)`: UTS #46
/// mapping of each code point (A-labels are *not* decoded) followed by NFC.
/// A code point the idna crate refuses on its own (a lone combining mark, a
/// lone Arabic-Indic digit) is kept as it is; the label checks judge it.
fn uts46_remap(uts46: &Uts46, domain: &str) -> String {
    let mut out = String::with_capacity(domain.len());
    for c in domain.chars() {
        if matches!(c, '.' | '\u{3002}' | '\u{ff0e}' | '\u{ff61}') {
            out.push('.');
            continue;
        }
        let mut buf = [0u8; 4];
        let (m, ok) = uts46.to_unicode(
            c.encode_utf8(&mut buf).as_bytes(),
            AsciiDenyList::EMPTY,
            Hyphens::Allow,
        );
        if ok.is_ok() {
            out.push_str(&m);
        } else {
            out.push(c);
        }
    }
    nfc(&out)
}

/// The Bidi Rule across every label once any label is right-to-left
/// (email-validator's check after decoding).
fn domain_bidi_error(domain: &str) -> Option<String> {
    use icu_properties::props::BidiClass as B;
    let class = |c: char| CodePointMapData::<B>::new().get(c);
    if !domain
        .chars()
        .any(|c| matches!(class(c), B::RightToLeft | B::ArabicLetter | B::ArabicNumber))
    {
        return None;
    }
    domain.split('.').find_map(|l| bidi_error(l, true))
}

/// Returns `(domain for display, ASCII domain)`.
fn validate_domain(domain: &str) -> Result<(String, String), EmailError> {
    let domain_chars = domain.chars().count();
    if domain_chars > DOMAIN_MAX_LENGTH {
        return fail(format!(
            "The email address is too long after the @-sign {}.",
            length_reason(domain_chars, DOMAIN_MAX_LENGTH)
        ));
    }
    if let Some(bad) = bad_displays(domain, |c| !is_hostname_char_intl(c)) {
        return fail(format!(
            "The part after the @-sign contains invalid characters: {bad}."
        ));
    }
    check_unsafe_chars(domain, false)?;
    if let Some(bad) = bad_displays(domain, |c| !uts46_valid_char(c)) {
        return fail(format!(
            "The part after the @-sign contains invalid characters: {bad}."
        ));
    }

    let uts46 = Uts46::new();
    let remapped = uts46_remap(&uts46, domain);
    if let Some(bad) = bad_displays(&remapped, |c| !is_hostname_char_intl(c)) {
        return fail(format!(
            "The part after the @-sign contains invalid characters after Unicode normalization: {bad}."
        ));
    }
    check_dot_atom(
        &remapped,
        "An email address cannot have a {} immediately after the @-sign.",
        "An email address cannot end with a {}.",
        true,
    )?;
    for label in remapped.split('.') {
        let c: Vec<char> = label.chars().take(4).collect();
        if c.len() == 4
            && c[2] == '-'
            && c[3] == '-'
            && !(c[0].eq_ignore_ascii_case(&'x') && c[1].eq_ignore_ascii_case(&'n'))
        {
            return fail(
                "An email address cannot have two letters followed by two dashes immediately after the @-sign or after a period, except Punycode.",
            );
        }
    }

    let mut deferred: Option<String> = None;
    let ascii = if is_ascii_hostname(&remapped) {
        remapped.clone()
    } else {
        // `idna.alabel` label by label.
        for label in remapped.split('.') {
            let problem = if label.is_ascii() {
                ulabel_error(label)
            } else {
                check_label(label)
            };
            if let Some(detail) = problem {
                return fail(format!("The part after the @-sign is invalid ({detail})."));
            }
        }
        let ascii = match uts46.to_ascii(
            remapped.as_bytes(),
            AsciiDenyList::EMPTY,
            Hyphens::Allow,
            DnsLength::Ignore,
        ) {
            Ok(ascii) => ascii.into_owned(),
            Err(_) => {
                // Every label passed on its own, so the whole name fails the
                // cross-label Bidi Rule, which email-validator checks only
                // after the length, TLD and special-use checks below.
                deferred = Some(match domain_bidi_error(&remapped) {
                    Some(detail) => {
                        format!("The part after the @-sign is not valid IDNA ({detail}).")
                    }
                    None => "The part after the @-sign is invalid.".to_owned(),
                });
                remapped
                    .split('.')
                    .map(|l| match idna::punycode::encode_str(l) {
                        Some(p) if !l.is_ascii() => format!("xn--{p}"),
                        _ => l.to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join(".")
            }
        };
        if ascii.split('.').any(|l| l.len() > DNS_LABEL_LENGTH_LIMIT) {
            return fail("The part after the @-sign is invalid (Label too long).");
        }
        ascii
    };
    if !is_ascii_hostname(&ascii) {
        return fail(
            "The email address contains invalid characters after the @-sign after IDNA encoding.",
        );
    }
    if ascii.len() > DOMAIN_MAX_LENGTH {
        if ascii == domain {
            return fail(format!(
                "The email address is too long after the @-sign {}.",
                length_reason(ascii.len(), DOMAIN_MAX_LENGTH)
            ));
        }
        let diff = ascii.len() - DOMAIN_MAX_LENGTH;
        return fail(format!(
            "The email address is too long after the @-sign ({diff} byte{} too many after IDNA encoding).",
            if diff == 1 { "" } else { "s" }
        ));
    }
    for label in ascii.split('.') {
        if label.len() > DNS_LABEL_LENGTH_LIMIT {
            return fail(format!(
                "After the @-sign, periods cannot be separated by so many characters {}.",
                length_reason(label.len(), DNS_LABEL_LENGTH_LIMIT)
            ));
        }
    }
    if !ascii.contains('.') {
        return fail("The part after the @-sign is not valid. It should have a period.");
    }
    if !ascii.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return fail(
            "The part after the @-sign is not valid. It is not within a valid top-level domain.",
        );
    }
    for d in SPECIAL_USE_DOMAIN_NAMES {
        if ascii == *d || ascii.ends_with(&format!(".{d}")) {
            return fail(
                "The part after the @-sign is a special-use or reserved name that cannot be used with email.",
            );
        }
    }
    if let Some(reason) = deferred {
        return fail(reason);
    }
    if !ascii.contains("xn--") {
        return Ok((ascii.clone(), ascii));
    }

    // `idna.decode`, then email-validator's re-checks of the Unicode form.
    for label in ascii.split('.') {
        if let Some(detail) = ulabel_error(label) {
            return fail(format!(
                "The part after the @-sign is not valid IDNA ({detail})."
            ));
        }
    }
    let (unicode, ok) = uts46.to_unicode(ascii.as_bytes(), AsciiDenyList::EMPTY, Hyphens::Allow);
    if let Some(detail) = domain_bidi_error(&unicode) {
        return fail(format!(
            "The part after the @-sign is not valid IDNA ({detail})."
        ));
    }
    if ok.is_err() {
        return fail("The part after the @-sign is not valid IDNA.");
    }
    Ok((unicode.into_owned(), ascii))
}

// ---------------------------------------------------------------------------
// The whole address
// ---------------------------------------------------------------------------

fn check_length(addr: &str, context: Option<&str>) -> Result<(), EmailError> {
    let bytes = addr.len();
    if bytes <= EMAIL_MAX_LENGTH {
        return Ok(());
    }
    let diff = bytes - EMAIL_MAX_LENGTH;
    let chars = addr.chars().count();
    let s = if diff > 1 { "s" } else { "" };
    let reason = match context {
        None if chars == bytes => length_reason(chars, EMAIL_MAX_LENGTH),
        None => {
            let widest = addr.chars().map(char::len_utf8).max().unwrap_or(1);
            let at_least = (diff / widest).max(1);
            if at_least == diff {
                format!("({diff} character{s} too many)")
            } else {
                format!("({at_least}-{diff} character{s} too many)")
            }
        }
        Some(ctx) => format!("{ctx} ({diff} byte{s} too many)"),
    };
    fail(format!("The email address is too long {reason}."))
}

/// Why a bracketed domain literal is refused (they always are: Pydantic does
/// not allow them). The `ipaddress` parse errors are not reproduced verbatim.
fn domain_literal_reason(literal: &str) -> String {
    let not_allowed = "A bracketed IP address after the @-sign is not allowed here.".to_owned();
    if !literal.is_empty() && literal.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return match literal.parse::<std::net::Ipv4Addr>() {
            Ok(_) => not_allowed,
            Err(_) => "The address in brackets after the @-sign is not valid: It is not an IPv4 address or is missing an address literal tag.".to_owned(),
        };
    }
    if literal
        .get(..5)
        .is_some_and(|t| t.eq_ignore_ascii_case("ipv6:"))
    {
        return match literal[5..].parse::<std::net::Ipv6Addr>() {
            Ok(_) => not_allowed,
            Err(_) => "The IPv6 address in brackets after the @-sign is not valid.".to_owned(),
        };
    }
    if !literal.contains(':') {
        return "The part after the @-sign in brackets is not an IPv4 address and has no address literal tag.".to_owned();
    }
    if let Some(bad) = bad_displays(literal, |c| !('\u{21}'..='\u{fa}').contains(&c)) {
        return format!(
            "The part after the @-sign contains invalid characters in brackets: {bad}."
        );
    }
    "The part after the @-sign contains an invalid address literal tag in brackets.".to_owned()
}

fn validate_email(email: &str) -> Result<String, EmailError> {
    let split = split_email(email)?;
    let original = format!("{}@{}", split.original_local, split.domain);

    let mut local = validate_local_part(&split.unescaped_local, split.quoted_local)?;
    let normalized_local = nfc(&split.unescaped_local);
    if normalized_local != split.unescaped_local {
        local =
            validate_local_part(&normalized_local, split.quoted_local).map_err(|e| EmailError {
                reason: format!("After Unicode normalization: {}", e.reason),
            })?;
    }
    if split.quoted_local {
        return fail("Quoting the part before the @-sign is not allowed here.");
    }
    if let Some(ascii) = &local.ascii_local_part {
        let lower = ascii.to_ascii_lowercase();
        if CASE_INSENSITIVE_MAILBOX_NAMES.contains(&lower.as_str()) {
            local.local_part = local.local_part.to_ascii_lowercase();
            local.ascii_local_part = Some(lower);
        }
    }

    if split.domain.is_empty() {
        return fail("There must be something after the @-sign.");
    }
    if let Some(literal) = split
        .domain
        .strip_prefix('[')
        .and_then(|d| d.strip_suffix(']'))
    {
        return fail(domain_literal_reason(literal));
    }
    let (domain, ascii_domain) = validate_domain(&split.domain)?;

    let normalized = format!("{}@{}", local.local_part, domain);
    check_length(&original, None)?;
    check_length(&normalized, Some("after normalization"))?;
    let ascii_form = format!(
        "{}@{}",
        local
            .ascii_local_part
            .as_deref()
            .unwrap_or(&local.local_part),
        ascii_domain
    );
    check_length(
        &ascii_form,
        Some("when the part after the @-sign is converted to IDNA ASCII"),
    )?;
    if split.display_name.is_some() {
        return fail(
            "A display name and angle brackets around the email address are not permitted here.",
        );
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str, want: &str) {
        assert_eq!(normalize_email(input).as_deref(), Ok(want), "{input:?}");
    }

    fn bad(input: &str, reason: &str) {
        match normalize_email(input) {
            Err(e) => assert_eq!(e.reason, reason, "{input:?}"),
            Ok(v) => panic!("{input:?} accepted as {v:?}"),
        }
    }

    #[test]
    fn spec_examples() {
        ok(
            "Alice Example <Alice.Example@Example.COM>",
            "Alice.Example@example.com",
        );
        ok("a@xn--bcher-kva.example", "a@bücher.example");
        ok("Bob@Bücher.DE", "Bob@bücher.de");
        ok("  spaced@Example.com  ", "spaced@example.com");
        bad(
            "x@localhost",
            "The part after the @-sign is not valid. It should have a period.",
        );
        bad("weird\"@x.com", "An email address must have an @-sign.");
    }

    #[test]
    fn special_use_and_tld_rules() {
        let special = "The part after the @-sign is a special-use or reserved name that cannot be used with email.";
        for d in [
            "x.test",
            "x.invalid",
            "x.local",
            "x.onion",
            "x.arpa",
            "a.b.localhost",
        ] {
            bad(&format!("a@{d}"), special);
        }
        ok("a@x.example", "a@x.example");
        ok("a@example.com", "a@example.com");
        bad(
            "a@x.123",
            "The part after the @-sign is not valid. It is not within a valid top-level domain.",
        );
    }

    #[test]
    fn role_mailboxes_are_lowercased_others_keep_case() {
        ok("Support@Example.com", "support@example.com");
        ok("POSTMASTER@x.com", "postmaster@x.com");
        ok("Alice@x.COM", "Alice@x.com");
    }

    #[test]
    fn display_names() {
        ok("\"Alice\" <a@x.com>", "a@x.com");
        ok("<a@x.com>", "a@x.com");
        ok("Alice<a@x.com>", "a@x.com");
        ok("Al.ice <a@x.com>", "a@x.com");
        bad(
            "Alice <a@x.com> trailing",
            "There can't be anything after the email address.",
        );
        bad(
            "Name <a@x.com",
            "An open angle bracket at the start of the email address has to be followed by a close angle bracket at the end.",
        );
    }

    #[test]
    fn local_part_rules() {
        bad(
            "\"quoted\"@x.com",
            "Quoting the part before the @-sign is not allowed here.",
        );
        bad(".a@x.com", "An email address cannot start with a period.");
        bad(
            "a.@x.com",
            "An email address cannot have a period immediately before the @-sign.",
        );
        bad(
            "a..b@x.com",
            "An email address cannot have two periods in a row.",
        );
        bad(
            "a b@x.com",
            "The email address contains invalid characters before the @-sign: SPACE.",
        );
        bad(
            "a\u{200b}@x.com",
            "The email address contains unsafe characters: ZERO WIDTH SPACE.",
        );
        ok("e\u{301}@x.com", "\u{e9}@x.com");
        ok("mañana@ÉXAMPLE.com", "mañana@éxample.com");
        bad("@x.com", "There must be something before the @-sign.");
        bad("a@", "There must be something after the @-sign.");
    }

    #[test]
    fn domain_rules() {
        ok("a@ｘ.com", "a@x.com");
        ok("a@Ｘ.ＣＯＭ", "a@x.com");
        ok("a@x。com", "a@x.com");
        ok("a@straße.de", "a@straße.de");
        ok("a@xn--strae-oqa.de", "a@straße.de");
        ok("a@Ωmega.com", "a@ωmega.com");
        ok("a@ⅸ.com", "a@ix.com");
        ok("a@\u{212b}.com", "a@\u{e5}.com");
        ok("a@اختبار.com", "a@اختبار.com");
        bad(
            "a@☃.net",
            "The part after the @-sign is invalid (Codepoint U+2603 at position 1 of '☃' not allowed).",
        );
        bad(
            "a@xn--n3h.net",
            "The part after the @-sign is not valid IDNA (Codepoint U+2603 at position 1 of '☃' not allowed).",
        );
        bad(
            "a@xn--zz.com",
            "The part after the @-sign is not valid IDNA (Invalid A-label).",
        );
        bad(
            "a@1.اختبار",
            "The part after the @-sign is not valid IDNA (First codepoint in label '1' must be directionality L, R or AL).",
        );
        bad(
            "a@⒈.com",
            "The part after the @-sign contains invalid characters: '⒈'.",
        );
        bad(
            "a@-x.com",
            "An email address cannot have a hyphen immediately after the @-sign.",
        );
        bad(
            "a@x-.com",
            "An email address cannot have a period and a hyphen next to each other.",
        );
        bad("a@x.com.", "An email address cannot end with a period.");
        bad(
            "a@ab--cd.com",
            "An email address cannot have two letters followed by two dashes immediately after the @-sign or after a period, except Punycode.",
        );
        bad(
            "a@x_y.com",
            "The part after the @-sign contains invalid characters: '_'.",
        );
        bad(
            "a@[1.2.3.4]",
            "A bracketed IP address after the @-sign is not allowed here.",
        );
        bad(
            "a@x.c\u{ad}om",
            "The email address contains unsafe characters: SOFT HYPHEN.",
        );
    }

    #[test]
    fn pydantic_pre_checks() {
        bad(
            "a@x.com\n",
            "Carriage return and line feed characters are not allowed",
        );
        let long = format!("{}@x.com", "a".repeat(2050));
        bad(&long, "Length must not exceed 2048 characters");
        let long = format!("{}@x.com", "a".repeat(250));
        bad(
            &long,
            "The email address is too long (2 characters too many).",
        );
    }
}
