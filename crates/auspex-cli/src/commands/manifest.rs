//! `auspex manifest validate|sign|verify|hash`.

use std::path::Path;

use auspex_crypto::manifest::{sign_manifest, verify_manifest};
use auspex_wire::json::{self, Value};
use auspex_wire::manifest::{self, Manifest, ManifestError, ManifestSignature, SdkProfile};

use super::{CliError, ExitStatus, read_input, sig_path_for};
use crate::args::ManifestCommand;
use crate::commands::key::load_key;
use crate::printer::Printer;

/// Manifests are small documents; anything larger is a mistake, and is refused
/// before it is read into memory.
const MANIFEST_LIMIT: u64 = 4 << 20;
const SIG_LIMIT: u64 = 64 << 10;

pub fn run(cmd: ManifestCommand, p: &mut Printer) -> Result<ExitStatus, CliError> {
    match cmd {
        ManifestCommand::Validate { path, json } => validate(&path, json, p),
        ManifestCommand::Sign {
            path,
            key,
            output,
            sdk,
        } => {
            let manifest = load_manifest(&path)?;
            let profile = profile_for(&manifest, sdk.as_deref())?;
            let key = load_key(&key, p)?;
            let sig = sign_manifest(&manifest, &key, profile).map_err(|e| {
                CliError::failure(format!("cannot sign {}", path.display())).caused_by(&e)
            })?;
            let out = output.unwrap_or_else(|| sig_path_for(&path));
            auspex_crypto::atomic::write_atomic(&out, sig.to_file_text().as_bytes(), 0o644)
                .map_err(|e| {
                    CliError::failure(format!("cannot write {}", out.display())).caused_by(&e)
                })?;
            p.line(format!("OK: signed {}", path.display()));
            p.line(format!("Signature: {}", out.display()));
            p.line(format!("Maintainer pubkey: {}", sig.maintainer_pubkey));
            Ok(ExitStatus::Success)
        }
        ManifestCommand::Verify {
            path,
            sig,
            signer,
            sdk,
        } => {
            let manifest = load_manifest(&path)?;
            let profile = profile_for(&manifest, sdk.as_deref())?;
            let sig_path = sig.unwrap_or_else(|| sig_path_for(&path));
            let bytes = read_input(&sig_path, SIG_LIMIT, "signature file")?;
            let sig = ManifestSignature::parse(&bytes).map_err(|e| {
                CliError::failure(format!(
                    "{} is not a manifest signature",
                    sig_path.display()
                ))
                .caused_by(&e)
            })?;
            match verify_manifest(&manifest, &sig, profile, signer.as_deref()) {
                Ok(signer_hex) => {
                    p.line(format!("OK: {} is signed by {signer_hex}", path.display()));
                    if signer.is_none() {
                        p.note("note: signer not pinned; pass --signer HEX to require a key");
                    }
                    Ok(ExitStatus::Success)
                }
                Err(e) => Err(CliError::failure(format!(
                    "signature {} does not verify",
                    sig_path.display()
                ))
                .caused_by(&e)),
            }
        }
        ManifestCommand::Hash { path } => {
            let manifest = load_manifest(&path)?;
            p.line(manifest.manifest_hash());
            Ok(ExitStatus::Success)
        }
    }
}

fn profile_for(manifest: &Manifest, sdk: Option<&str>) -> Result<SdkProfile, CliError> {
    match sdk {
        None => Ok(manifest.default_profile()),
        Some("0.5.5") => Ok(SdkProfile::V0_5_5),
        Some("0.6.67") => Ok(SdkProfile::V0_6_67),
        Some(other) => Err(
            CliError::usage(format!("unknown SDK version {other:?} for --sdk"))
                .hint("use 0.5.5 or 0.6.67"),
        ),
    }
}

/// Reads, parses and validates a manifest, turning failures into the official
/// CLI's exits: 2 for unreadable or non-JSON input, 1 for an invalid manifest.
fn load_manifest(path: &Path) -> Result<Manifest, CliError> {
    let bytes = read_input(path, MANIFEST_LIMIT, "manifest")?;
    manifest::parse_manifest(&bytes).map_err(|e| manifest_error(path, &bytes, e))
}

fn declared_version(bytes: &[u8]) -> String {
    json::parse(bytes)
        .ok()
        .and_then(|v| {
            v.get("schema_version")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "0.1".to_owned())
}

fn manifest_error(path: &Path, bytes: &[u8], e: ManifestError) -> CliError {
    match e {
        ManifestError::Json(e) => {
            CliError::usage(format!("{} is not valid JSON", path.display())).cause(e)
        }
        ManifestError::Invalid(violations) => {
            let mut err = CliError::failure(format!(
                "{} failed manifest v{} validation ({} error{})",
                path.display(),
                declared_version(bytes),
                violations.0.len(),
                if violations.0.len() == 1 { "" } else { "s" }
            ));
            for v in &violations.0 {
                err = err.cause(v);
            }
            err
        }
        other => CliError::failure(format!("{} is not a usable manifest", path.display()))
            .caused_by(&other),
    }
}

fn validate(path: &Path, as_json: bool, p: &mut Printer) -> Result<ExitStatus, CliError> {
    if !as_json {
        let manifest = load_manifest(path)?;
        p.line(format!(
            "OK: {} is a valid v{} manifest",
            path.display(),
            manifest.schema_version()
        ));
        return Ok(ExitStatus::Success);
    }
    let bytes = read_input(path, MANIFEST_LIMIT, "manifest")?;
    let mut report = json::Object::new();
    report.insert("path".into(), Value::from(path.display().to_string()));
    let status = match manifest::parse_manifest(&bytes) {
        Ok(m) => {
            report.insert("valid".into(), Value::Bool(true));
            report.insert("schema_version".into(), Value::from(m.schema_version()));
            report.insert("manifest_hash".into(), Value::from(m.manifest_hash()));
            report.insert("errors".into(), Value::Array(Vec::new()));
            ExitStatus::Success
        }
        Err(ManifestError::Invalid(violations)) => {
            report.insert("valid".into(), Value::Bool(false));
            report.insert(
                "schema_version".into(),
                Value::from(declared_version(&bytes)),
            );
            let errors = violations
                .0
                .iter()
                .map(|v| {
                    let mut o = json::Object::new();
                    o.insert("path".into(), Value::from(v.path.to_string()));
                    o.insert("message".into(), Value::from(v.kind.to_string()));
                    Value::Object(o)
                })
                .collect();
            report.insert("errors".into(), Value::Array(errors));
            ExitStatus::Failure
        }
        Err(e) => return Err(manifest_error(path, &bytes, e)),
    };
    p.line(json::python_indent(&Value::Object(report)));
    Ok(status)
}
