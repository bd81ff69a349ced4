//! The detached manifest signature file (`<manifest>.sig`, §2.3).

use crate::json::{self, Object, Value};
use crate::validate::{Checker, JsonPath};

use super::ManifestError;

crate::pattern!(PUBKEY_HEX = "^[a-f0-9]{64}$");
crate::pattern!(SIGNATURE_B64 = "^[A-Za-z0-9+/=]+$");

/// The only `sig_v` there is.
pub const SIG_V: &str = "0.1";

/// A `ManifestSignature` v0.1: `{sig_v, maintainer_pubkey, signature}`.
///
/// `maintainer_pubkey` is the lowercase hex of the tenant's 32-byte Ed25519
/// key (the name predates the tenant/maintainer rename); `signature` is the
/// padded standard base64 of the 64-byte signature over the manifest's
/// signing input. Parsing checks the shape only; verifying the signature (and
/// trusting the key) is the caller's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestSignature {
    /// Always `"0.1"`.
    pub sig_v: String,
    /// Lowercase hex Ed25519 public key (`^[a-f0-9]{64}$`).
    pub maintainer_pubkey: String,
    /// Base64 signature (`^[A-Za-z0-9+/=]+$`).
    pub signature: String,
}

impl ManifestSignature {
    /// A v0.1 envelope for a public key (lowercase hex) and a base64 signature.
    pub fn new(
        maintainer_pubkey: impl Into<String>,
        signature: impl Into<String>,
    ) -> ManifestSignature {
        ManifestSignature {
            sig_v: SIG_V.to_owned(),
            maintainer_pubkey: maintainer_pubkey.into(),
            signature: signature.into(),
        }
    }

    /// Parses and validates a `.sig` file (JSON; unknown members refused).
    pub fn parse(bytes: &[u8]) -> Result<ManifestSignature, ManifestError> {
        let v = json::parse(bytes)?;
        Ok(ManifestSignature::from_value(&v)?)
    }

    /// Validates an already parsed value.
    pub fn from_value(v: &Value) -> Result<ManifestSignature, crate::validate::Violations> {
        let mut c = Checker::new();
        let Some(mut o) = c.object(JsonPath::root(), v) else {
            return c.into_result(None);
        };
        let sig_v = c
            .required(&mut o, "sig_v")
            .and_then(|v| c.one_of(&JsonPath::root().key("sig_v"), v, &[SIG_V]));
        let pubkey = c
            .required(&mut o, "maintainer_pubkey")
            .and_then(|v| c.matches(&JsonPath::root().key("maintainer_pubkey"), v, &PUBKEY_HEX));
        let signature = c
            .required(&mut o, "signature")
            .and_then(|v| c.matches(&JsonPath::root().key("signature"), v, &SIGNATURE_B64));
        c.finish(o);
        let built = match (sig_v, pubkey, signature) {
            (Some(a), Some(b), Some(s)) => Some(ManifestSignature {
                sig_v: a.to_owned(),
                maintainer_pubkey: b.to_owned(),
                signature: s.to_owned(),
            }),
            _ => None,
        };
        c.into_result(built)
    }

    /// The JSON object, members in declaration order.
    pub fn to_value(&self) -> Value {
        let mut o = Object::new();
        o.insert("sig_v".to_owned(), Value::from(self.sig_v.as_str()));
        o.insert(
            "maintainer_pubkey".to_owned(),
            Value::from(self.maintainer_pubkey.as_str()),
        );
        o.insert("signature".to_owned(), Value::from(self.signature.as_str()));
        Value::Object(o)
    }

    /// The exact text `manifest sign` writes: Pydantic indent-2 dump plus a
    /// final newline.
    pub fn to_file_text(&self) -> String {
        let mut text = json::pydantic_indent(&self.to_value());
        text.push('\n');
        text
    }
}
