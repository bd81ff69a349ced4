//! Verification: the coordinator profile ([`verify_request`]) and general
//! RFC 9421 ([`verify_rfc9421`]).

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use sfv::{BareItem, Dictionary, Item, ListEntry, Parser};
use sha2::{Digest, Sha256, Sha512};

use super::components::{Derivation, RequestParts, Rules, StructuredType, component_value};
use super::error::{HttpSigError, MalformedKind, SignatureHeader};
use super::parse::{SignatureInput, SignatureParams, parse_signature, parse_signature_input};
use super::{ALG_ED25519, CONTENT_DIGEST, DEFAULT_WINDOW_SECS};

impl SignatureInput {
    /// The signature base (RFC 9421 §2.5) this signature covers in `req`:
    /// one `"<component>": <value>` line per covered component, then the
    /// `"@signature-params"` line, joined by `\n` without a trailing newline.
    ///
    /// `structured` declares the structured type of fields covered with
    /// `;sf` or `;key` beyond [`KNOWN_STRUCTURED_FIELDS`](super::KNOWN_STRUCTURED_FIELDS).
    pub fn signature_base(
        &self,
        req: &RequestParts<'_>,
        derivation: Derivation,
        structured: &[(String, StructuredType)],
    ) -> Result<String, HttpSigError> {
        let rules = Rules {
            derivation,
            structured,
        };
        let mut base = String::new();
        let mut seen = HashSet::new();
        for c in self.components() {
            if !seen.insert(c.serialized()) {
                return Err(HttpSigError::DuplicateComponent {
                    component: c.serialized().to_owned(),
                });
            }
            let value = component_value(req, c, rules).map_err(|kind| HttpSigError::Component {
                component: c.serialized().to_owned(),
                kind,
            })?;
            base.push_str(c.serialized());
            base.push_str(": ");
            base.push_str(&value);
            base.push('\n');
        }
        base.push_str("\"@signature-params\": ");
        base.push_str(self.signature_params());
        Ok(base)
    }
}

/// The coordinator's verification policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// Allowed `|now − created|` in seconds, inclusive (300).
    pub window_secs: i64,
    /// Require this label; `None` accepts any label, as the coordinator
    /// does (the SDK uses `sig1`).
    pub label: Option<String>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            window_secs: DEFAULT_WINDOW_SECS,
            label: None,
        }
    }
}

impl Policy {
    /// This policy with another clock window.
    pub fn window(mut self, window_secs: i64) -> Policy {
        self.window_secs = window_secs;
        self
    }

    /// This policy requiring `label`.
    pub fn label(mut self, label: &str) -> Policy {
        self.label = Some(label.to_owned());
        self
    }
}

/// A request whose signature passed every check of [`verify_request`]. Only
/// this module constructs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    label: String,
    keyid: String,
    created: i64,
    covered: Vec<String>,
    key: VerifyingKey,
    signature: [u8; 64],
}

impl VerifiedRequest {
    /// The signature's label.
    pub fn label(&self) -> &str {
        &self.label
    }
    /// The signer's keyid, lowercased (64 hex characters for AuspexAI keys).
    pub fn keyid(&self) -> &str {
        &self.keyid
    }
    /// The signature's `created`.
    pub fn created(&self) -> i64 {
        self.created
    }
    /// The covered component names, in order.
    pub fn covered(&self) -> &[String] {
        &self.covered
    }
    /// The key the signature verified under.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }
    /// The 64 signature bytes (the key of a [`ReplayCache`](super::ReplayCache)).
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }
}

/// Components the coordinator profile allows (`coordinator.md` §2.2).
const PROFILE_COMPONENTS: [&str; 4] = ["@method", "@path", "@authority", CONTENT_DIGEST];
/// Components the coordinator profile requires on every request.
const PROFILE_REQUIRED: [&str; 3] = ["@method", "@path", "@authority"];

/// Verifies `req` with the coordinator's rules (`coordinator.md` §2.2),
/// looking the signer up by its lowercased `keyid`.
///
/// Checks, in order (each failure is its own [`HttpSigError`] variant; the
/// first failing check is reported):
///
/// 1. `Signature-Input` and `Signature` are present (`signature_required`,
///    `auth_error`).
/// 2. Both parse as RFC 8941 dictionaries of the right member types; the
///    `created`/`expires` parameters are integers, `alg`/`keyid` strings.
/// 3. Exactly one signature, the same label in both headers (and the
///    policy's label when it sets one).
/// 4. `created`, `alg` and `keyid` are present.
/// 5. `alg` is `ed25519` (`unsupported_signature_algorithm`).
/// 6. Covered components: only `@method`, `@path`, `@authority`,
///    `content-digest`, without parameters or duplicates; the first three
///    always, `content-digest` whenever the body is non-empty — so the body
///    cannot be swapped.
/// 7. `|now − created| ≤ window` (`signature_expired`, with `server_time`),
///    and `expires`, if present, has not passed — bounds replay.
/// 8. When `content-digest` is covered: the header is present and its
///    `sha-256` equals SHA-256 of the body.
/// 9. `lookup(keyid)` knows the key (`invalid_signature`).
/// 10. The Ed25519 signature (strict: canonical `S`, no small-order keys)
///     verifies over the signature base built with the SDK's component
///     rules ([`Derivation::AuspexSdk`]).
///
/// The `@signature-params` line is the RFC 8941 serialization of the parsed
/// `Signature-Input` member; the coordinator uses the header text verbatim.
/// The two agree for every canonical serialization (all the SDK and worker
/// emit); a non-canonical one (extra spaces inside the list, leading zeros)
/// fails here with `invalid_signature`.
pub fn verify_request<F>(
    req: &RequestParts<'_>,
    now: i64,
    lookup: F,
    policy: &Policy,
) -> Result<VerifiedRequest, HttpSigError>
where
    F: FnOnce(&str) -> Option<VerifyingKey>,
{
    // 1. Presence.
    let input_value = req
        .field("signature-input")
        .ok_or(HttpSigError::MissingSignatureInput)?;
    let sig_value = req
        .field("signature")
        .ok_or(HttpSigError::MissingSignature)?;

    // 2. Structure.
    let inputs = parse_signature_input(&input_value)?;
    let sigs = parse_signature(&sig_value)?;

    // 3. One signature, matching labels.
    let [input] = inputs.as_slice() else {
        return Err(HttpSigError::MultipleSignatures {
            header: SignatureHeader::SignatureInput,
            count: inputs.len(),
        });
    };
    let [(sig_label, sig_bytes)] = sigs.as_slice() else {
        return Err(HttpSigError::MultipleSignatures {
            header: SignatureHeader::Signature,
            count: sigs.len(),
        });
    };
    if let Some(label) = &policy.label
        && label != input.label()
    {
        return Err(HttpSigError::LabelNotFound {
            label: label.clone(),
            header: SignatureHeader::SignatureInput,
        });
    }
    if sig_label != input.label() {
        return Err(HttpSigError::LabelNotFound {
            label: input.label().to_owned(),
            header: SignatureHeader::Signature,
        });
    }

    // 4. Required parameters (names and alg/keyid values compared
    // case-insensitively, as the coordinator does).
    let params = input.params();
    let created = params
        .created
        .ok_or(HttpSigError::MissingParameter { param: "created" })?;
    let alg = params
        .alg
        .as_deref()
        .ok_or(HttpSigError::MissingParameter { param: "alg" })?;
    let keyid = params
        .keyid
        .as_deref()
        .ok_or(HttpSigError::MissingParameter { param: "keyid" })?
        .to_ascii_lowercase();

    // 5. Algorithm.
    if !alg.eq_ignore_ascii_case(ALG_ED25519) {
        return Err(HttpSigError::UnsupportedAlgorithm {
            alg: alg.to_owned(),
        });
    }

    // 6. Covered components.
    let mut seen = HashSet::new();
    for c in input.components() {
        if !c.is_bare() || !PROFILE_COMPONENTS.contains(&c.name()) {
            return Err(HttpSigError::ComponentNotAllowed {
                component: c.serialized().to_owned(),
            });
        }
        if !seen.insert(c.name()) {
            return Err(HttpSigError::DuplicateComponent {
                component: c.serialized().to_owned(),
            });
        }
    }
    let body_needs_digest = !req.body.is_empty();
    for required in PROFILE_REQUIRED
        .iter()
        .chain(body_needs_digest.then_some(&CONTENT_DIGEST))
    {
        if !seen.contains(required) {
            return Err(HttpSigError::MissingComponent {
                component: format!("\"{required}\""),
            });
        }
    }

    // 7. Clock.
    check_time(params, now, Some(policy.window_secs))?;

    // 8. Body digest.
    if seen.contains(CONTENT_DIGEST) {
        check_content_digest(req, false)?;
    }

    // 9. Key.
    let key = lookup(&keyid).ok_or_else(|| HttpSigError::UnknownKey {
        keyid: Some(keyid.clone()),
    })?;

    // 10. Signature.
    let base = input.signature_base(req, Derivation::AuspexSdk, &[])?;
    let signature = verify_ed25519(&key, &base, sig_bytes, Some(&keyid))?;
    Ok(VerifiedRequest {
        label: input.label().to_owned(),
        keyid,
        created,
        covered: input
            .components()
            .iter()
            .map(|c| c.name().to_owned())
            .collect(),
        key,
        signature,
    })
}

/// Policy of the general verifier [`verify_rfc9421`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rfc9421Policy {
    /// The label to verify; `None` requires the request to carry exactly one
    /// signature.
    pub label: Option<String>,
    /// Component names that must be covered (parameters not compared).
    pub required_components: Vec<String>,
    /// Allowed `|now − created|` in seconds; `None` skips the check.
    pub window_secs: Option<i64>,
    /// Whether `created` must be present.
    pub require_created: bool,
    /// Whether a covered `content-digest` is checked against the body
    /// (sha-256 and sha-512; RFC 9530).
    pub check_content_digest: bool,
    /// How component values are derived.
    pub derivation: Derivation,
    /// Structured types of fields covered with `;sf`/`;key`, beyond
    /// [`KNOWN_STRUCTURED_FIELDS`](super::KNOWN_STRUCTURED_FIELDS).
    pub structured_fields: Vec<(String, StructuredType)>,
}

impl Default for Rfc9421Policy {
    /// RFC rules, no required component, no clock check, digests checked.
    fn default() -> Rfc9421Policy {
        Rfc9421Policy {
            label: None,
            required_components: Vec::new(),
            window_secs: None,
            require_created: false,
            check_content_digest: true,
            derivation: Derivation::Rfc9421,
            structured_fields: Vec::new(),
        }
    }
}

impl Rfc9421Policy {
    /// This policy verifying the signature labelled `label`.
    pub fn label(mut self, label: &str) -> Rfc9421Policy {
        self.label = Some(label.to_owned());
        self
    }

    /// This policy also requiring `component` (a name such as `@authority`).
    pub fn require(mut self, component: &str) -> Rfc9421Policy {
        self.required_components.push(component.to_owned());
        self
    }

    /// This policy requiring `created` within `±window_secs` of `now`.
    pub fn window(mut self, window_secs: i64) -> Rfc9421Policy {
        self.window_secs = Some(window_secs);
        self.require_created = true;
        self
    }

    /// This policy deriving component values with `derivation`.
    pub fn derivation(mut self, derivation: Derivation) -> Rfc9421Policy {
        self.derivation = derivation;
        self
    }

    /// This policy knowing that field `name` has structured type `ty`.
    pub fn structured(mut self, name: &str, ty: StructuredType) -> Rfc9421Policy {
        self.structured_fields.push((name.to_ascii_lowercase(), ty));
        self
    }
}

/// A signature that passed every check of [`verify_rfc9421`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    label: String,
    params: SignatureParams,
    covered: Vec<String>,
    base: String,
    signature: [u8; 64],
}

impl VerifiedSignature {
    /// The verified label.
    pub fn label(&self) -> &str {
        &self.label
    }
    /// Its parameters.
    pub fn params(&self) -> &SignatureParams {
        &self.params
    }
    /// The covered component identifiers, serialized, in order.
    pub fn covered(&self) -> &[String] {
        &self.covered
    }
    /// The exact signature base that verified.
    pub fn base(&self) -> &str {
        &self.base
    }
    /// The 64 signature bytes.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }
}

/// Verifies one Ed25519 RFC 9421 signature of `req` covering any request
/// components of RFC 9421 §2 (derived components including `@query`,
/// `@query-param`, `@target-uri`, `@request-target`, `@scheme`; header fields
/// plain or with `;sf`, `;key`, `;bs`).
///
/// Checks, in order: headers present; both parse; the label is chosen
/// (policy or the only one) and present in both; `alg`, when given, is
/// `ed25519` (the key decides otherwise, RFC 9421 §3.3.7); required
/// components covered; `created` present if required and within the window,
/// `expires` not passed; every covered component has a value (RFC 9421
/// §2.5); a covered `content-digest` matches the body; `lookup(params)`
/// yields a key; the signature verifies (strict Ed25519).
pub fn verify_rfc9421<F>(
    req: &RequestParts<'_>,
    now: i64,
    lookup: F,
    policy: &Rfc9421Policy,
) -> Result<VerifiedSignature, HttpSigError>
where
    F: FnOnce(&SignatureParams) -> Option<VerifyingKey>,
{
    let input_value = req
        .field("signature-input")
        .ok_or(HttpSigError::MissingSignatureInput)?;
    let sig_value = req
        .field("signature")
        .ok_or(HttpSigError::MissingSignature)?;
    let inputs = parse_signature_input(&input_value)?;
    let sigs = parse_signature(&sig_value)?;

    let input = match &policy.label {
        Some(label) => inputs.iter().find(|i| i.label() == label).ok_or_else(|| {
            HttpSigError::LabelNotFound {
                label: label.clone(),
                header: SignatureHeader::SignatureInput,
            }
        })?,
        None => match inputs.as_slice() {
            [only] => only,
            _ => {
                return Err(HttpSigError::AmbiguousLabel {
                    labels: inputs.iter().map(|i| i.label().to_owned()).collect(),
                });
            }
        },
    };
    let sig_bytes = sigs
        .iter()
        .find(|(l, _)| l == input.label())
        .map(|(_, b)| b)
        .ok_or_else(|| HttpSigError::LabelNotFound {
            label: input.label().to_owned(),
            header: SignatureHeader::Signature,
        })?;

    let params = input.params();
    if let Some(alg) = &params.alg
        && alg != ALG_ED25519
    {
        return Err(HttpSigError::UnsupportedAlgorithm { alg: alg.clone() });
    }
    for required in &policy.required_components {
        if !input.components().iter().any(|c| c.name() == required) {
            return Err(HttpSigError::MissingComponent {
                component: format!("\"{required}\""),
            });
        }
    }
    if policy.require_created && params.created.is_none() {
        return Err(HttpSigError::MissingParameter { param: "created" });
    }
    check_time(params, now, policy.window_secs)?;

    let base = input.signature_base(req, policy.derivation, &policy.structured_fields)?;
    if policy.check_content_digest
        && input
            .components()
            .iter()
            .any(|c| c.name() == CONTENT_DIGEST)
    {
        check_content_digest(req, true)?;
    }
    let key = lookup(params).ok_or_else(|| HttpSigError::UnknownKey {
        keyid: params.keyid.clone(),
    })?;
    let signature = verify_ed25519(&key, &base, sig_bytes, params.keyid.as_deref())?;
    Ok(VerifiedSignature {
        label: input.label().to_owned(),
        params: params.clone(),
        covered: input
            .components()
            .iter()
            .map(|c| c.serialized().to_owned())
            .collect(),
        base,
        signature,
    })
}

fn check_time(
    params: &SignatureParams,
    now: i64,
    window_secs: Option<i64>,
) -> Result<(), HttpSigError> {
    if let (Some(created), Some(window)) = (params.created, window_secs)
        && now.abs_diff(created) > window.unsigned_abs()
    {
        return Err(HttpSigError::SignatureExpired {
            created,
            server_time: now,
            window_secs: window,
        });
    }
    if let Some(expires) = params.expires
        && now > expires
    {
        return Err(HttpSigError::ExpiresPassed {
            expires,
            server_time: now,
        });
    }
    Ok(())
}

/// RFC 9530 `Content-Digest` against the body. The coordinator profile
/// accepts only `sha-256`; the general verifier also checks `sha-512`.
/// Members with other algorithms are ignored; at least one must be checked.
fn check_content_digest(req: &RequestParts<'_>, allow_sha512: bool) -> Result<(), HttpSigError> {
    let header = SignatureHeader::ContentDigest;
    let value = req
        .field("content-digest")
        .ok_or(HttpSigError::MissingContentDigest)?;
    let dict: Dictionary = Parser::new(&value)
        .parse()
        .map_err(|e| HttpSigError::Malformed {
            header,
            kind: MalformedKind::Syntax {
                reason: e.to_string(),
            },
        })?;
    let mut checked = false;
    for (alg, entry) in &dict {
        let (algorithm, actual) = match alg.as_str() {
            "sha-256" => ("sha-256", Sha256::digest(req.body).to_vec()),
            "sha-512" if allow_sha512 => ("sha-512", Sha512::digest(req.body).to_vec()),
            _ => continue,
        };
        let ListEntry::Item(Item {
            bare_item: BareItem::ByteSequence(claimed),
            ..
        }) = entry
        else {
            return Err(HttpSigError::Malformed {
                header,
                kind: MalformedKind::NotByteSequence {
                    label: alg.as_str().to_owned(),
                },
            });
        };
        if *claimed != actual {
            return Err(HttpSigError::ContentDigestMismatch {
                algorithm,
                claimed: STANDARD.encode(claimed),
                actual: STANDARD.encode(&actual),
            });
        }
        checked = true;
    }
    if !checked {
        return Err(HttpSigError::UnsupportedDigestAlgorithm {
            algorithms: dict.keys().map(|k| k.as_str().to_owned()).collect(),
        });
    }
    Ok(())
}

fn verify_ed25519(
    key: &VerifyingKey,
    base: &str,
    sig: &[u8],
    keyid: Option<&str>,
) -> Result<[u8; 64], HttpSigError> {
    let bytes: [u8; 64] = sig
        .try_into()
        .map_err(|_| HttpSigError::SignatureLength { len: sig.len() })?;
    key.verify_strict(base.as_bytes(), &Signature::from_bytes(&bytes))
        .map_err(|_| HttpSigError::BadSignature {
            keyid: keyid.map(str::to_owned),
        })?;
    Ok(bytes)
}
