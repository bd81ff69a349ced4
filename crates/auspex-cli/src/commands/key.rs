//! `auspex key generate|pubkey`.

use std::path::PathBuf;

use auspex_crypto::keys::{self, KeyError, TenantKey};

use super::{CliError, ExitStatus, home_dir};
use crate::args::{KeyArg, KeyCommand};
use crate::printer::Printer;

pub fn run(cmd: KeyCommand, p: &mut Printer) -> Result<ExitStatus, CliError> {
    match cmd {
        KeyCommand::Generate { output, force } => generate(output, force, p),
        KeyCommand::Pubkey(key) => {
            let key = load_key(&key, p)?;
            p.line(key.public_hex());
            Ok(ExitStatus::Success)
        }
    }
}

fn generate(output: Option<PathBuf>, force: bool, p: &mut Printer) -> Result<ExitStatus, CliError> {
    let path = match output {
        Some(path) => path,
        None => keys::default_key_path(&home_dir()?),
    };
    let key = TenantKey::generate()
        .map_err(|e| CliError::failure("cannot generate a key").caused_by(&e))?;
    match keys::save(&key, &path, force) {
        Ok(()) => {}
        Err(KeyError::Exists { .. }) => {
            return Err(
                CliError::failure(format!("{} already exists", path.display()))
                    .hint("re-run with --force to overwrite it (the old key is then lost)"),
            );
        }
        Err(e) => {
            return Err(
                CliError::failure(format!("cannot write the key to {}", path.display()))
                    .caused_by(&e),
            );
        }
    }
    p.line(format!("Generated tenant key at {}", path.display()));
    p.line(format!("Public key: {}", key.public_hex()));
    p.line("Register this public key with the AuspexAI coordinator to enable manifest uploads.");
    Ok(ExitStatus::Success)
}

/// Loads the key named by `--key`, or the default one (saying on stderr when
/// the legacy `maintainer_key` file is used).
pub fn load_key(arg: &KeyArg, p: &mut Printer) -> Result<TenantKey, CliError> {
    let path = match &arg.key {
        Some(path) => path.clone(),
        None => {
            let resolved = keys::resolve_key_for_reading(&home_dir()?);
            if resolved.fell_back_to_legacy {
                p.note(format!(
                    "note: using the legacy key file {} (no tenant_key beside it)",
                    resolved.path.display()
                ));
            }
            resolved.path
        }
    };
    keys::load(&path).map_err(|e| {
        let status = match e {
            KeyError::NotFound { .. } => ExitStatus::Usage,
            _ => ExitStatus::Failure,
        };
        let err = CliError::new(
            status,
            format!("failed to load key from {}", path.display()),
        )
        .caused_by(&e);
        match e {
            KeyError::NotFound { .. } => {
                err.hint("create one with `auspex key generate`, or pass --key PATH")
            }
            _ => err,
        }
    })
}
