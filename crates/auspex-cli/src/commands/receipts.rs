//! `auspex receipts show`.

use std::path::Path;

use auspex_crypto::cose::{InspectError, inspect_receipt};
use auspex_wire::json::{self, Value};
use auspex_wire::receipt::ReceiptError;

use super::{CliError, ExitStatus, read_input};
use crate::args::ReceiptsCommand;
use crate::printer::Printer;

/// Receipts are a few hundred bytes; refuse anything absurdly larger.
const RECEIPT_LIMIT: u64 = 16 << 20;

pub fn run(cmd: ReceiptsCommand, p: &mut Printer) -> Result<ExitStatus, CliError> {
    match cmd {
        ReceiptsCommand::Show { path, json, signer } => show(&path, json, signer.as_deref(), p),
    }
}

fn decode_error(path: &Path, e: InspectError) -> CliError {
    match e {
        // Well-formed but invalid receipt content: a validation failure (exit 1).
        InspectError::Receipt(ReceiptError::Invalid(violations)) => {
            let mut err =
                CliError::failure(format!("{} failed receipt v0.1 validation", path.display()));
            for v in &violations.0 {
                err = err.cause(v);
            }
            err
        }
        other => CliError::usage(format!("failed to decode {}", path.display())).caused_by(&other),
    }
}

fn parse_pin(signer: Option<&str>) -> Result<Option<[u8; 32]>, CliError> {
    let Some(hex) = signer else { return Ok(None) };
    match auspex_crypto::manifest::parse_pubkey(&hex.to_ascii_lowercase()) {
        Some(key) => Ok(Some(key.to_bytes())),
        None => Err(CliError::usage(format!(
            "--signer {hex:?} is not an Ed25519 public key (64 hex characters)"
        ))),
    }
}

fn show(
    path: &Path,
    as_json: bool,
    signer: Option<&str>,
    p: &mut Printer,
) -> Result<ExitStatus, CliError> {
    let pin = parse_pin(signer)?;
    let bytes = read_input(path, RECEIPT_LIMIT, "receipt")?;
    let inspection = inspect_receipt(&bytes).map_err(|e| decode_error(path, e))?;
    let receipt_text = inspection.receipt.to_pydantic_json_indent();

    let Some(env) = &inspection.envelope else {
        // A naked receipt: print exactly what the official CLI prints.
        if as_json {
            let mut o = json::Object::new();
            o.insert("format".into(), Value::from("cbor"));
            o.insert("signature".into(), Value::from("absent"));
            o.insert("receipt".into(), inspection.receipt.to_value());
            p.line(json::python_indent(&Value::Object(o)));
        } else {
            p.line(&receipt_text);
        }
        p.note("note: unsigned receipt (naked CBOR): there is no signature to check");
        if pin.is_some() {
            return Err(CliError::failure(
                "--signer was given, but this receipt carries no signature",
            ));
        }
        return Ok(ExitStatus::Success);
    };

    let verdict = match pin {
        Some(pin) => env.cose.verify(Some(&pin)),
        None => env.signature.clone(),
    };
    let signer_hex = env.signer_hex().unwrap_or("(none)").to_owned();
    let sig_word = if verdict.is_ok() { "valid" } else { "INVALID" };
    let digest_word = if env.subject_digest_matches {
        "ok"
    } else {
        "MISMATCH"
    };
    if as_json {
        let mut o = json::Object::new();
        o.insert("format".into(), Value::from("cose_sign1"));
        o.insert("tagged".into(), Value::Bool(env.cose.is_tagged()));
        o.insert("signer".into(), Value::from(signer_hex.clone()));
        o.insert("signer_pinned".into(), Value::Bool(pin.is_some()));
        o.insert("signature".into(), Value::from(sig_word));
        if let Err(e) = &verdict {
            o.insert("signature_error".into(), Value::from(e.to_string()));
        }
        o.insert(
            "predicate_type".into(),
            Value::from(env.statement.predicate_type.clone()),
        );
        o.insert("subject_digest".into(), Value::from(digest_word));
        o.insert("receipt".into(), inspection.receipt.to_value());
        p.line(json::python_indent(&Value::Object(o)));
    } else {
        p.line("format:      COSE_Sign1 over an in-toto statement");
        p.line(format!("predicate:   {}", env.statement.predicate_type));
        p.line(format!("signer:      {signer_hex}"));
        p.line(format!(
            "signer pin:  {}",
            if pin.is_some() {
                "checked"
            } else {
                "not pinned (no --signer)"
            }
        ));
        p.line(format!("signature:   {sig_word}"));
        p.line(format!("subject:     digest {digest_word}"));
        p.line("receipt:");
        p.line(&receipt_text);
    }
    if let Err(e) = verdict {
        return Err(CliError::failure("the receipt's signature does not verify").caused_by(&e));
    }
    if !env.subject_digest_matches {
        return Err(CliError::failure(
            "the statement's subject digest is not the SHA-256 of its predicate",
        ));
    }
    Ok(ExitStatus::Success)
}
