//! `auspex tlog verify-entry`: offline verification of a Rekor v1 entry
//! against a pinned Sigstore trusted root (`auspex_crypto::tlog`).
//!
//! Prints one line per check, `passed`, `FAILED` or `not checked`, with the
//! reason; `--json` prints `{entry, verified, required, checks}` instead.
//! Exit 0 only when every required check passed: all of them, except
//! `tlog.body_hash` when no `--artifact-sha256` is given and `tlog.entry_uuid`
//! for a bare entry (those two are then shown as "not checked (not
//! required)"). Exit 1 when a check failed or a required one could not run
//! (absent checkpoint or SET, unknown log); exit 2 when a file is missing or
//! is not an entry / a trusted root at all, or the digest is malformed.

use std::path::Path;

use auspex_crypto::report::{Outcome, Verdict};
use auspex_crypto::tlog::{self, RekorEntry, TrustedRoot, VerifyOptions};
use auspex_wire::json::{self, Object, Value};

use super::{CliError, ExitStatus, read_input};
use crate::args::TlogCommand;
use crate::printer::Printer;

/// Entries and roots are kilobytes; refuse anything absurdly larger.
const INPUT_LIMIT: u64 = 16 << 20;

pub fn run(cmd: TlogCommand, p: &mut Printer) -> Result<ExitStatus, CliError> {
    match cmd {
        TlogCommand::VerifyEntry {
            entry,
            trusted_root,
            artifact_sha256,
            json,
        } => verify_entry(&entry, &trusted_root, artifact_sha256.as_deref(), json, p),
    }
}

fn parse_digest(hex: &str) -> Result<[u8; 32], CliError> {
    let bad = || {
        CliError::usage(format!(
            "--artifact-sha256 {hex:?} is not a SHA-256 digest (64 hex characters)"
        ))
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
            .map_err(|_| bad())?;
    }
    Ok(out)
}

fn verify_entry(
    entry_path: &Path,
    root_path: &Path,
    artifact_sha256: Option<&str>,
    as_json: bool,
    p: &mut Printer,
) -> Result<ExitStatus, CliError> {
    let artifact = artifact_sha256.map(parse_digest).transpose()?;
    let root_bytes = read_input(root_path, INPUT_LIMIT, "trusted root")?;
    let root = TrustedRoot::from_json(&root_bytes).map_err(|e| {
        CliError::usage(format!(
            "{} is not a Sigstore trusted root",
            root_path.display()
        ))
        .caused_by(&e)
    })?;
    let entry_bytes = read_input(entry_path, INPUT_LIMIT, "log entry")?;
    let entry = RekorEntry::parse(&entry_bytes).map_err(|e| {
        CliError::usage(format!("{} is not a Rekor log entry", entry_path.display()))
            .caused_by(&e)
            .hint("expected the JSON answer of GET /api/v1/log/entries/{uuid}")
    })?;
    let opts = VerifyOptions {
        artifact_sha256: artifact,
        ..Default::default()
    };
    let report = tlog::verify_parsed(&entry, &root, &opts);
    let required = tlog::required_checks(&entry, &opts);
    let verdict = report.verdict(&required);

    if as_json {
        let mut o = Object::new();
        o.insert("entry".into(), Value::from(entry.uuid.clone()));
        o.insert("verified".into(), Value::Bool(verdict.is_verified()));
        o.insert(
            "required".into(),
            Value::Array(required.iter().map(|c| Value::from(c.as_str())).collect()),
        );
        o.insert("checks".into(), report.to_value());
        p.line(json::python_indent(&Value::Object(o)));
    } else {
        p.line(format!(
            "entry:       {}",
            entry.uuid.as_deref().unwrap_or("(bare entry, no UUID)")
        ));
        p.line(format!(
            "log index:   {} (integrated {})",
            entry.log_index,
            tlog::Timestamp::from_unix(entry.integrated_time)
        ));
        for check in report.checks() {
            let (label, reason) = match &check.outcome {
                Outcome::Passed => ("passed", None),
                Outcome::Failed(r) => ("FAILED", Some(r.clone())),
                Outcome::NotChecked(r) if required.contains(&check.id) => {
                    ("not checked", Some(r.clone()))
                }
                Outcome::NotChecked(r) => ("not checked", Some(format!("{r} (not required)"))),
            };
            match reason {
                Some(r) => p.line(format!("{label:<11}  {} \u{2014} {r}", check.id)),
                None => p.line(format!("{label:<11}  {}", check.id)),
            }
        }
    }
    match verdict {
        Verdict::Verified => {
            if !as_json {
                p.line("verified \u{2713}");
            }
            Ok(ExitStatus::Success)
        }
        Verdict::Failed(ids) => Err(CliError::failure(format!(
            "transparency-log entry NOT verified: failed {}",
            join(&ids)
        ))),
        Verdict::Incomplete(ids) => Err(CliError::failure(format!(
            "transparency-log entry NOT verified: not checked {}",
            join(&ids)
        ))),
    }
}

fn join(ids: &[auspex_crypto::report::CheckId]) -> String {
    ids.iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
