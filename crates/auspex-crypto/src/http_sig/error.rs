//! The failure domain of RFC 9421 verification, and its mapping to the
//! coordinator's 401 `detail.error.code` strings (spec `coordinator.md` §2.2).

use thiserror::Error;

/// Which signature header a parse failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureHeader {
    /// `Signature-Input` (RFC 9421 §4.1).
    SignatureInput,
    /// `Signature` (RFC 9421 §4.2).
    Signature,
    /// `Content-Digest` (RFC 9530 §2).
    ContentDigest,
}

impl SignatureHeader {
    /// The header's name as written on the wire.
    pub fn name(self) -> &'static str {
        match self {
            SignatureHeader::SignatureInput => "Signature-Input",
            SignatureHeader::Signature => "Signature",
            SignatureHeader::ContentDigest => "Content-Digest",
        }
    }
}

impl std::fmt::Display for SignatureHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What exactly is wrong with a malformed signature header.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MalformedKind {
    /// Not an RFC 8941 structured-field dictionary; `reason` is the parser's
    /// message (with the byte offset).
    #[error("not a structured-field dictionary: {reason}")]
    Syntax {
        /// The structured-field parser's message.
        reason: String,
    },
    /// The header is present but has no members.
    #[error("the dictionary is empty")]
    Empty,
    /// A `Signature-Input` member is not an inner list (`label=(...)`).
    #[error("member {label:?} is not an inner list")]
    NotInnerList {
        /// The member's label.
        label: String,
    },
    /// A covered component is not a non-empty string (`"@method"`).
    #[error("member {label:?}: component #{index} is not a non-empty string")]
    ComponentNotString {
        /// The member's label.
        label: String,
        /// Zero-based position in the inner list.
        index: usize,
    },
    /// A `Signature` member is not a byte sequence (`label=:base64:`).
    #[error("member {label:?} is not a byte sequence")]
    NotByteSequence {
        /// The member's label.
        label: String,
    },
    /// A signature parameter has the wrong type (`created` must be an
    /// integer, `alg`/`keyid`/`nonce`/`tag` strings; RFC 9421 §2.3).
    #[error("member {label:?}: parameter {param:?} must be {expected}")]
    ParameterType {
        /// The member's label.
        label: String,
        /// The parameter name.
        param: String,
        /// `"an integer"` or `"a string"`.
        expected: &'static str,
    },
}

/// Why a covered component could not be given a value (RFC 9421 §2.5 step
/// 2: any such failure makes the whole signature invalid).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ComponentErrorKind {
    /// A name starting with `@` that RFC 9421 §2.2 does not define for
    /// requests (including `@signature-params` itself).
    #[error("unknown derived component")]
    UnknownDerived,
    /// `@status` covers a response; these are requests.
    #[error("response-only component in a request")]
    ResponseOnly,
    /// A component parameter this verifier does not implement or that does
    /// not apply (`req`, `tr`, `name` on a field, `sf` with `bs`, ...).
    #[error("unsupported component parameter {param:?}")]
    UnsupportedParameter {
        /// The parameter name.
        param: String,
    },
    /// Field names must be lowercase in component identifiers (RFC 9421
    /// §2.1).
    #[error("field name is not lowercase")]
    NotLowercase,
    /// The covered header field is absent from the request.
    #[error("header field absent")]
    MissingField,
    /// The value would contain CR, LF or NUL, which could forge lines of the
    /// signature base.
    #[error("value contains a line break or NUL")]
    ControlCharacter,
    /// The request target has no path (`*`, or not a URI).
    #[error("request target has no path")]
    NoPath,
    /// `@query-param;name=...` names a parameter the query does not have.
    #[error("query parameter {name:?} absent")]
    QueryParamMissing {
        /// The (encoded) parameter name.
        name: String,
    },
    /// `@query-param` names a parameter that occurs more than once (RFC 9421
    /// §2.2.8: it must not be used then).
    #[error("query parameter {name:?} occurs more than once")]
    QueryParamRepeated {
        /// The (encoded) parameter name.
        name: String,
    },
    /// `;sf` or `;key` on a field whose structured type is not configured.
    #[error("structured type of the field unknown")]
    UnknownStructuredType,
    /// The field value does not parse as its structured type.
    #[error("field value is not a valid structured field: {reason}")]
    StructuredSyntax {
        /// The structured-field parser's message.
        reason: String,
    },
    /// `;key="k"` names a dictionary member that is absent.
    #[error("dictionary member {key:?} absent")]
    DictionaryKeyMissing {
        /// The requested member.
        key: String,
    },
}

/// A request signature that does not verify. Each variant is one named check
/// of [`verify_request`](super::verify_request) or
/// [`verify_rfc9421`](super::verify_rfc9421); [`HttpSigError::code`] maps it to
/// the coordinator's 401 code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HttpSigError {
    /// No `Signature-Input` header (only an error where a signature is
    /// required, e.g. the coordinator's self-signed routes).
    #[error("the request carries no Signature-Input header")]
    MissingSignatureInput,
    /// `Signature-Input` without `Signature`.
    #[error("Signature-Input is present but Signature is missing")]
    MissingSignature,
    /// A signature header is not what RFC 9421 / RFC 8941 require.
    #[error("malformed {header} header: {kind}")]
    Malformed {
        /// The header.
        header: SignatureHeader,
        /// What is wrong.
        #[source]
        kind: MalformedKind,
    },
    /// The coordinator accepts exactly one signature per request.
    #[error("expected exactly one signature, found {count} in {header}")]
    MultipleSignatures {
        /// The header with more than one member.
        header: SignatureHeader,
        /// Its number of members.
        count: usize,
    },
    /// The label to verify is not in `Signature-Input`, or `Signature` has no
    /// member with the label of `Signature-Input`.
    #[error("no signature labelled {label:?} in {header}")]
    LabelNotFound {
        /// The label looked for.
        label: String,
        /// The header it is missing from.
        header: SignatureHeader,
    },
    /// Several signatures and no label chosen by the policy.
    #[error("several signatures ({labels:?}) and no label chosen")]
    AmbiguousLabel {
        /// The labels present.
        labels: Vec<String>,
    },
    /// A required signature parameter (`created`, `alg`, `keyid`) is absent.
    #[error("signature parameter {param:?} is required")]
    MissingParameter {
        /// The parameter name.
        param: &'static str,
    },
    /// `alg` is not `ed25519`.
    #[error("unsupported signature algorithm {alg:?} (only ed25519)")]
    UnsupportedAlgorithm {
        /// The algorithm named by the signer.
        alg: String,
    },
    /// A component the policy requires is not covered.
    #[error("required component {component} is not covered")]
    MissingComponent {
        /// The component identifier, e.g. `"@path"`.
        component: String,
    },
    /// The coordinator profile covers only `@method`, `@path`, `@authority`
    /// and `content-digest`.
    #[error("component {component} is not allowed by the coordinator profile")]
    ComponentNotAllowed {
        /// The serialized component identifier.
        component: String,
    },
    /// A component is listed twice (RFC 9421 §2.5).
    #[error("component {component} is covered twice")]
    DuplicateComponent {
        /// The serialized component identifier.
        component: String,
    },
    /// A covered component has no valid value for this request.
    #[error("component {component}: {kind}")]
    Component {
        /// The serialized component identifier.
        component: String,
        /// Why it has no value.
        #[source]
        kind: ComponentErrorKind,
    },
    /// `created` is outside the allowed window around the server's clock
    /// (in either direction). `server_time` lets a client resynchronise.
    #[error(
        "signature created at {created} is outside ±{window_secs} s of server time {server_time}"
    )]
    SignatureExpired {
        /// The signature's `created`.
        created: i64,
        /// The verifier's clock.
        server_time: i64,
        /// The allowed skew in seconds.
        window_secs: i64,
    },
    /// The signature's own `expires` has passed (RFC 9421 §2.3; the
    /// coordinator ignores `expires`, this verifier does not).
    #[error("signature expired at {expires}, server time is {server_time}")]
    ExpiresPassed {
        /// The signature's `expires`.
        expires: i64,
        /// The verifier's clock.
        server_time: i64,
    },
    /// `content-digest` is covered but the header is absent.
    #[error("content-digest is covered but the Content-Digest header is absent")]
    MissingContentDigest,
    /// `Content-Digest` has no digest this verifier can check (sha-256; also
    /// sha-512 outside the coordinator profile).
    #[error("Content-Digest has no supported digest algorithm (members: {algorithms:?})")]
    UnsupportedDigestAlgorithm {
        /// The member names present.
        algorithms: Vec<String>,
    },
    /// The digest in `Content-Digest` is not the digest of the body.
    #[error("Content-Digest {algorithm} does not match the body")]
    ContentDigestMismatch {
        /// The digest algorithm (`sha-256`, `sha-512`).
        algorithm: &'static str,
        /// The digest the header claims (base64).
        claimed: String,
        /// The digest of the body received (base64).
        actual: String,
    },
    /// No key is registered for `keyid`.
    #[error("unknown key {keyid:?}")]
    UnknownKey {
        /// The keyid as received (lowercased in the coordinator profile);
        /// `None` when the signature names none.
        keyid: Option<String>,
    },
    /// The signature is not 64 bytes.
    #[error("signature is {len} bytes, Ed25519 signatures are 64")]
    SignatureLength {
        /// The decoded length.
        len: usize,
    },
    /// The Ed25519 signature does not verify over the signature base.
    #[error("signature does not verify under key {keyid:?}")]
    BadSignature {
        /// The keyid of the key tried.
        keyid: Option<String>,
    },
}

impl HttpSigError {
    /// The coordinator's 401 `detail.error.code` for this failure
    /// (`coordinator.md` §2.1–2.3): `signature_expired`,
    /// `unsupported_signature_algorithm`, `auth_error` (Signature missing),
    /// `signature_required` (no signature on a self-signed route), else
    /// `invalid_signature`.
    pub fn code(&self) -> &'static str {
        match self {
            HttpSigError::MissingSignatureInput => "signature_required",
            HttpSigError::MissingSignature => "auth_error",
            HttpSigError::UnsupportedAlgorithm { .. } => "unsupported_signature_algorithm",
            HttpSigError::SignatureExpired { .. } | HttpSigError::ExpiresPassed { .. } => {
                "signature_expired"
            }
            _ => "invalid_signature",
        }
    }

    /// The HTTP status the coordinator answers with (always 401).
    pub fn status(&self) -> u16 {
        401
    }

    /// The verifier's clock, carried by `signature_expired` so that clients
    /// can resynchronise (`details.server_time`).
    pub fn server_time(&self) -> Option<i64> {
        match self {
            HttpSigError::SignatureExpired { server_time, .. }
            | HttpSigError::ExpiresPassed { server_time, .. } => Some(*server_time),
            _ => None,
        }
    }
}
