//! `Signature-Input` and `Signature` parsed as RFC 8941 dictionaries with the
//! `sfv` parser (never by string splitting), into typed values.

use sfv::{BareItem, Dictionary, FieldType as _, Item, ListEntry, Parser, Version};

use super::error::{HttpSigError, MalformedKind, SignatureHeader};

/// One covered component identifier (RFC 9421 §2): a lowercase name such as
/// `@path` or `content-digest` plus its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentId {
    name: String,
    sf: bool,
    bs: bool,
    req: bool,
    tr: bool,
    key: Option<String>,
    query_name: Option<String>,
    /// Parameters this verifier does not know, or known ones of the wrong
    /// type; deriving the component fails on any.
    unsupported: Vec<String>,
    serialized: String,
}

impl ComponentId {
    fn from_item(item: &Item, label: &str, index: usize) -> Result<ComponentId, HttpSigError> {
        let name = match &item.bare_item {
            BareItem::String(s) if !s.as_str().is_empty() => s.as_str().to_owned(),
            _ => {
                return Err(malformed(
                    SignatureHeader::SignatureInput,
                    MalformedKind::ComponentNotString {
                        label: label.to_owned(),
                        index,
                    },
                ));
            }
        };
        let mut id = ComponentId {
            name,
            sf: false,
            bs: false,
            req: false,
            tr: false,
            key: None,
            query_name: None,
            unsupported: Vec::new(),
            serialized: item.serialize(),
        };
        for (key, value) in &item.params {
            let flag = value.as_boolean() == Some(true);
            let text = value.as_string().map(|s| s.as_str().to_owned());
            match (key.as_str(), flag, text) {
                ("sf", true, _) => id.sf = true,
                ("bs", true, _) => id.bs = true,
                ("req", true, _) => id.req = true,
                ("tr", true, _) => id.tr = true,
                ("key", _, Some(k)) => id.key = Some(k),
                ("name", _, Some(n)) => id.query_name = Some(n),
                (other, _, _) => id.unsupported.push(other.to_owned()),
            }
        }
        Ok(id)
    }

    /// The component name, e.g. `@method` or `content-digest`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The identifier as it appears in the signature base and in
    /// `Signature-Input`, e.g. `"@query-param";name="Pet"`.
    pub fn serialized(&self) -> &str {
        &self.serialized
    }

    /// Whether the identifier has no parameters at all.
    pub fn is_bare(&self) -> bool {
        !(self.sf || self.bs || self.req || self.tr)
            && self.key.is_none()
            && self.query_name.is_none()
            && self.unsupported.is_empty()
    }

    pub(super) fn sf(&self) -> bool {
        self.sf
    }
    pub(super) fn bs(&self) -> bool {
        self.bs
    }
    pub(super) fn req(&self) -> bool {
        self.req
    }
    pub(super) fn tr(&self) -> bool {
        self.tr
    }
    pub(super) fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }
    pub(super) fn query_name(&self) -> Option<&str> {
        self.query_name.as_deref()
    }
    pub(super) fn unsupported(&self) -> &[String] {
        &self.unsupported
    }
}

/// The signature metadata parameters of RFC 9421 §2.3, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignatureParams {
    /// `created`: Unix seconds.
    pub created: Option<i64>,
    /// `expires`: Unix seconds.
    pub expires: Option<i64>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// `alg`, as sent.
    pub alg: Option<String>,
    /// `keyid`, as sent.
    pub keyid: Option<String>,
    /// `tag`.
    pub tag: Option<String>,
}

/// One member of `Signature-Input`: a label, its covered components, its
/// parameters and the `@signature-params` value they serialize to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureInput {
    label: String,
    components: Vec<ComponentId>,
    params: SignatureParams,
    signature_params: String,
}

impl SignatureInput {
    /// The signature's label (`sig1` for the SDK).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The covered components, in signing order.
    pub fn components(&self) -> &[ComponentId] {
        &self.components
    }

    /// The typed signature parameters.
    pub fn params(&self) -> &SignatureParams {
        &self.params
    }

    /// The value of the `@signature-params` line: the RFC 8941
    /// serialization of the inner list with its parameters (RFC 9421 §2.3).
    /// For the SDK's canonical headers this equals the text after `sig1=`.
    pub fn signature_params(&self) -> &str {
        &self.signature_params
    }
}

fn malformed(header: SignatureHeader, kind: MalformedKind) -> HttpSigError {
    HttpSigError::Malformed { header, kind }
}

fn parse_dictionary(value: &str, header: SignatureHeader) -> Result<Dictionary, HttpSigError> {
    // RFC 9421 §4 defines both fields over RFC 8941 (no dates, no display
    // strings).
    let dict: Dictionary = Parser::new(value)
        .with_version(Version::Rfc8941)
        .parse()
        .map_err(|e| {
            malformed(
                header,
                MalformedKind::Syntax {
                    reason: e.to_string(),
                },
            )
        })?;
    if dict.is_empty() {
        return Err(malformed(header, MalformedKind::Empty));
    }
    Ok(dict)
}

/// Parses a `Signature-Input` field value (all lines already combined with
/// `, `) into its members, in order.
pub fn parse_signature_input(value: &str) -> Result<Vec<SignatureInput>, HttpSigError> {
    let header = SignatureHeader::SignatureInput;
    let dict = parse_dictionary(value, header)?;
    let mut out = Vec::with_capacity(dict.len());
    for (label, entry) in &dict {
        let label = label.as_str().to_owned();
        let ListEntry::InnerList(inner) = entry else {
            return Err(malformed(header, MalformedKind::NotInnerList { label }));
        };
        let components = inner
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| ComponentId::from_item(item, &label, i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut params = SignatureParams::default();
        for (key, value) in &inner.params {
            let param = key.as_str();
            let wrong = |expected| {
                malformed(
                    header,
                    MalformedKind::ParameterType {
                        label: label.clone(),
                        param: param.to_owned(),
                        expected,
                    },
                )
            };
            let int = || value.as_integer().map(i64::from).ok_or(wrong("an integer"));
            let string = || {
                value
                    .as_string()
                    .map(|s| s.as_str().to_owned())
                    .ok_or(wrong("a string"))
            };
            match param {
                "created" => params.created = Some(int()?),
                "expires" => params.expires = Some(int()?),
                "nonce" => params.nonce = Some(string()?),
                "alg" => params.alg = Some(string()?),
                "keyid" => params.keyid = Some(string()?),
                "tag" => params.tag = Some(string()?),
                // Unknown parameters are carried in @signature-params and
                // otherwise ignored (RFC 9421 §2.3).
                _ => {}
            }
        }
        // A one-member list serializes exactly as its inner list does.
        let mut ser = sfv::ListSerializer::new();
        ser.members(std::iter::once(entry));
        let signature_params = ser.finish().unwrap_or_default();
        out.push(SignatureInput {
            label,
            components,
            params,
            signature_params,
        });
    }
    Ok(out)
}

/// Parses a `Signature` field value into `(label, signature bytes)` pairs,
/// in order.
pub fn parse_signature(value: &str) -> Result<Vec<(String, Vec<u8>)>, HttpSigError> {
    let header = SignatureHeader::Signature;
    let dict = parse_dictionary(value, header)?;
    let mut out = Vec::with_capacity(dict.len());
    for (label, entry) in &dict {
        let label = label.as_str().to_owned();
        match entry {
            ListEntry::Item(Item {
                bare_item: BareItem::ByteSequence(bytes),
                ..
            }) => out.push((label, bytes.clone())),
            _ => return Err(malformed(header, MalformedKind::NotByteSequence { label })),
        }
    }
    Ok(out)
}
