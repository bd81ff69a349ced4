//! Component values (RFC 9421 §2.1 HTTP fields, §2.2 derived components)
//! computed from a received request, under either the RFC's rules or the
//! AuspexAI SDK's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sfv::{Dictionary, FieldType as _, Item, List, Parser};

use super::error::ComponentErrorKind;
use super::parse::ComponentId;

/// A received request, borrowed from whatever HTTP stack carries it.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The method as received (`GET`, `post`, ...).
    pub method: &'a str,
    /// The request target as on the request line (origin form
    /// `/path?query`, still percent-encoded), or an absolute URI.
    pub target: &'a str,
    /// The authority: the `Host` header (HTTP/1.1) or `:authority` (HTTP/2).
    pub authority: &'a str,
    /// `https` or `http`; used by `@scheme`, `@target-uri` and the
    /// default-port rule of `@authority` (RFC mode only).
    pub scheme: &'a str,
    /// Every header field line in order, names in any case. A field sent on
    /// several lines appears several times.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body bytes exactly as received.
    pub body: &'a [u8],
}

impl<'a> RequestParts<'a> {
    /// A request over `https` whose authority is its `Host` header (empty
    /// when there is none).
    pub fn new(
        method: &'a str,
        target: &'a str,
        headers: &'a [(&'a str, &'a str)],
        body: &'a [u8],
    ) -> RequestParts<'a> {
        let authority = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map_or("", |(_, v)| v.trim());
        RequestParts {
            method,
            target,
            authority,
            scheme: "https",
            headers,
            body,
        }
    }

    /// The same request with another scheme.
    pub fn with_scheme(mut self, scheme: &'a str) -> RequestParts<'a> {
        self.scheme = scheme;
        self
    }

    /// The field lines of header `name` (case-insensitive), in order.
    pub fn field_lines(&self, name: &str) -> impl Iterator<Item = &'a str> + '_ {
        let name = name.to_owned();
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| *v)
    }

    /// The combined value of header `name` per RFC 9421 §2.1: each line
    /// trimmed, joined with `, `; `None` when the header is absent.
    pub fn field(&self, name: &str) -> Option<String> {
        let mut lines = self.field_lines(name).peekable();
        lines.peek()?;
        Some(lines.map(str::trim).collect::<Vec<_>>().join(", "))
    }

    /// Path part of the target (origin form or absolute URI), raw.
    fn raw_path(&self) -> Option<&'a str> {
        let t = strip_query(self.target);
        if t.starts_with('/') {
            return Some(t);
        }
        // Absolute form: scheme "://" authority path.
        let rest = &t[t.find("://")? + 3..];
        Some(rest.find('/').map_or("", |i| &rest[i..]))
    }

    fn query(&self) -> Option<&'a str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
}

fn strip_query(target: &str) -> &str {
    target.split_once('?').map_or(target, |(p, _)| p)
}

/// Which rules turn a request into component values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Derivation {
    /// RFC 9421 §2.2 as written: `@method` verbatim, `@path` still
    /// percent-encoded, `@authority` lowercased without the scheme's default
    /// port.
    Rfc9421,
    /// What the AuspexAI SDK signs and the coordinator checks (spec
    /// `tenant-sdk.md` §3b): `@method` uppercased, `@path` percent-decoded
    /// (httpx `url.path`, Starlette `request.url.path`), `@authority` the
    /// Host header lowercased.
    AuspexSdk,
}

/// How a structured field is parsed for `;sf` and `;key` (RFC 9421 §2.1.1:
/// the verifier must know the type; it is never guessed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StructuredType {
    /// An RFC 8941 Item.
    Item,
    /// An RFC 8941 List.
    List,
    /// An RFC 8941 Dictionary.
    Dictionary,
}

/// Structured types of the registered fields a signature is likely to cover.
pub const KNOWN_STRUCTURED_FIELDS: &[(&str, StructuredType)] = &[
    ("accept-signature", StructuredType::Dictionary),
    ("cache-status", StructuredType::List),
    ("content-digest", StructuredType::Dictionary),
    ("priority", StructuredType::Dictionary),
    ("proxy-status", StructuredType::List),
    ("repr-digest", StructuredType::Dictionary),
    ("signature", StructuredType::Dictionary),
    ("signature-input", StructuredType::Dictionary),
    ("want-content-digest", StructuredType::Dictionary),
    ("want-repr-digest", StructuredType::Dictionary),
];

/// `path` as httpx's `URL.path` and Starlette's `request.url.path` give it:
/// the target without its query, percent-decoded as UTF-8 the way Python's
/// `urllib.parse.unquote` does (invalid `%` escapes stay literal, invalid
/// UTF-8 becomes U+FFFD), and `/` when empty.
pub fn sdk_path(target: &str) -> String {
    let path = strip_query(target);
    if path.is_empty() {
        return "/".to_owned();
    }
    String::from_utf8_lossy(&percent_decode(path.as_bytes())).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

pub(super) fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex_val),
                bytes.get(i + 2).copied().and_then(hex_val),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// `application/x-www-form-urlencoded` parsing of one name or value (`+` is
/// a space), then re-encoding as RFC 9421 §2.2.8 prescribes (every byte
/// outside `A-Za-z0-9*-._` as uppercase `%XX`, so a space is `%20`).
pub(super) fn form_reencode(raw: &str) -> String {
    let plus_as_space: Vec<u8> = raw
        .bytes()
        .map(|b| if b == b'+' { b' ' } else { b })
        .collect();
    let decoded = percent_decode(&plus_as_space);
    // WHATWG form parsing decodes as UTF-8 with replacement.
    let text = String::from_utf8_lossy(&decoded);
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The host with the scheme's default port removed, lowercased (RFC 9421
/// §2.2.3 via RFC 9110 §4.2.3).
pub(super) fn normalize_authority(authority: &str, scheme: &str) -> String {
    let lower = authority.trim().to_ascii_lowercase();
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => Some(":443"),
        "http" => Some(":80"),
        _ => None,
    };
    match default {
        Some(port) if lower.ends_with(port) => lower[..lower.len() - port.len()].to_owned(),
        _ => lower,
    }
}

/// The host header value httpx sends for a URL (and so what the SDK signs as
/// `@authority`): the host lowercased, IPv6 literals in brackets, and
/// `:port` only when the port is not the scheme's default (80 for `http`,
/// 443 for `https`).
pub fn authority_for(scheme: &str, host: &str, port: Option<u16>) -> String {
    let host = host.to_ascii_lowercase();
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    };
    match port {
        Some(p) if Some(p) != default => format!("{host}:{p}"),
        _ => host,
    }
}

/// Settings for deriving component values.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules<'p> {
    pub derivation: Derivation,
    pub structured: &'p [(String, StructuredType)],
}

fn checked(value: String) -> Result<String, ComponentErrorKind> {
    // RFC 9421 §2.1/§2.2: values never contain line breaks. A decoded `%0A`
    // in a path would otherwise let one request's base imitate another's
    // lines.
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(ComponentErrorKind::ControlCharacter);
    }
    Ok(value)
}

/// The value of `id` for `req` (RFC 9421 §2.5 step 2.1–2.4).
pub(super) fn component_value(
    req: &RequestParts<'_>,
    id: &ComponentId,
    rules: Rules<'_>,
) -> Result<String, ComponentErrorKind> {
    if let Some(param) = id.unsupported().first() {
        return Err(ComponentErrorKind::UnsupportedParameter {
            param: param.clone(),
        });
    }
    // `req` binds a response signature to its request; `tr` names trailers.
    // Neither applies to a request's own signature.
    for (set, param) in [(id.req(), "req"), (id.tr(), "tr")] {
        if set {
            return Err(ComponentErrorKind::UnsupportedParameter {
                param: param.to_owned(),
            });
        }
    }
    let name = id.name();
    if name.starts_with('@') {
        derived_value(req, id, rules)
    } else {
        field_value(req, id, rules)
    }
}

fn derived_value(
    req: &RequestParts<'_>,
    id: &ComponentId,
    rules: Rules<'_>,
) -> Result<String, ComponentErrorKind> {
    let name = id.name();
    let only_name_param = |allowed: bool| {
        for (set, param) in [
            (id.sf(), "sf"),
            (id.bs(), "bs"),
            (id.key().is_some(), "key"),
            (id.query_name().is_some() && !allowed, "name"),
        ] {
            if set {
                return Err(ComponentErrorKind::UnsupportedParameter {
                    param: param.to_owned(),
                });
            }
        }
        Ok(())
    };
    only_name_param(name == "@query-param")?;
    let sdk = rules.derivation == Derivation::AuspexSdk;
    let value = match name {
        "@method" if sdk => req.method.to_ascii_uppercase(),
        "@method" => req.method.to_owned(),
        "@authority" if sdk => req.authority.trim().to_ascii_lowercase(),
        "@authority" => normalize_authority(req.authority, req.scheme),
        "@scheme" => req.scheme.to_ascii_lowercase(),
        "@path" if sdk => sdk_path(req.raw_path().ok_or(ComponentErrorKind::NoPath)?),
        "@path" => match req.raw_path().ok_or(ComponentErrorKind::NoPath)? {
            "" => "/".to_owned(),
            p => p.to_owned(),
        },
        "@query" => format!("?{}", req.query().unwrap_or("")),
        "@request-target" => req.target.to_owned(),
        "@target-uri" => {
            if req.target.starts_with('/') {
                format!(
                    "{}://{}{}",
                    req.scheme.to_ascii_lowercase(),
                    normalize_authority(req.authority, req.scheme),
                    req.target
                )
            } else {
                req.target.to_owned()
            }
        }
        "@query-param" => {
            let Some(wanted) = id.query_name() else {
                return Err(ComponentErrorKind::UnsupportedParameter {
                    param: "name".to_owned(),
                });
            };
            let mut found = None;
            for pair in req.query().unwrap_or("").split('&') {
                if pair.is_empty() {
                    continue;
                }
                let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
                if form_reencode(n) == wanted {
                    if found.is_some() {
                        return Err(ComponentErrorKind::QueryParamRepeated {
                            name: wanted.to_owned(),
                        });
                    }
                    found = Some(form_reencode(v));
                }
            }
            found.ok_or_else(|| ComponentErrorKind::QueryParamMissing {
                name: wanted.to_owned(),
            })?
        }
        "@status" => return Err(ComponentErrorKind::ResponseOnly),
        _ => return Err(ComponentErrorKind::UnknownDerived),
    };
    checked(value)
}

fn field_value(
    req: &RequestParts<'_>,
    id: &ComponentId,
    rules: Rules<'_>,
) -> Result<String, ComponentErrorKind> {
    let name = id.name();
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ComponentErrorKind::NotLowercase);
    }
    if id.query_name().is_some() {
        return Err(ComponentErrorKind::UnsupportedParameter {
            param: "name".to_owned(),
        });
    }
    // `bs` wraps raw lines; combining it with structured re-serialization is
    // an error (RFC 9421 §2.1.3).
    if id.bs() && (id.sf() || id.key().is_some()) {
        return Err(ComponentErrorKind::UnsupportedParameter {
            param: "bs".to_owned(),
        });
    }
    let lines: Vec<&str> = req.field_lines(name).collect();
    if lines.is_empty() {
        return Err(ComponentErrorKind::MissingField);
    }
    if id.bs() {
        let wrapped: Vec<String> = lines
            .iter()
            .map(|l| format!(":{}:", STANDARD.encode(l.trim().as_bytes())))
            .collect();
        return checked(wrapped.join(", "));
    }
    let combined = lines
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(", ");
    if !id.sf() && id.key().is_none() {
        return checked(combined);
    }
    let ty = rules
        .structured
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, t)| *t)
        .or_else(|| {
            KNOWN_STRUCTURED_FIELDS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| *t)
        })
        .ok_or(ComponentErrorKind::UnknownStructuredType)?;
    let syntax = |e: sfv::Error| ComponentErrorKind::StructuredSyntax {
        reason: e.to_string(),
    };
    if let Some(key) = id.key() {
        // `key` selects one dictionary member (RFC 9421 §2.1.2).
        if ty != StructuredType::Dictionary {
            return Err(ComponentErrorKind::UnknownStructuredType);
        }
        let dict: Dictionary = Parser::new(&combined).parse().map_err(syntax)?;
        let member = dict
            .get(key)
            .ok_or_else(|| ComponentErrorKind::DictionaryKeyMissing {
                key: key.to_owned(),
            })?;
        let mut ser = sfv::ListSerializer::new();
        ser.members(std::iter::once(member));
        return checked(ser.finish().unwrap_or_default());
    }
    let serialized = match ty {
        StructuredType::Item => Parser::new(&combined)
            .parse::<Item>()
            .map_err(syntax)?
            .serialize(),
        StructuredType::List => Parser::new(&combined)
            .parse::<List>()
            .map_err(syntax)?
            .serialize()
            .unwrap_or_default(),
        StructuredType::Dictionary => Parser::new(&combined)
            .parse::<Dictionary>()
            .map_err(syntax)?
            .serialize()
            .unwrap_or_default(),
    };
    checked(serialized)
}
