//! `auspex package digest`.

use auspex_wire::package::package_digest;

use super::{CliError, ExitStatus};
use crate::args::PackageCommand;
use crate::printer::Printer;

pub fn run(cmd: PackageCommand, p: &mut Printer) -> Result<ExitStatus, CliError> {
    match cmd {
        PackageCommand::Digest { dir, files } => {
            let digest = package_digest(&dir).map_err(|e| {
                CliError::failure(format!(
                    "cannot compute the package digest of {}",
                    dir.display()
                ))
                .caused_by(&e)
            })?;
            if files {
                for line in &digest.lines {
                    // `rel\0sha256`: show it as `sha256  rel`.
                    let (rel, sha) = line.split_once('\0').unwrap_or((line.as_str(), ""));
                    p.note(format!("{sha}  {rel}"));
                }
            }
            p.line(&digest.sha256);
            Ok(ExitStatus::Success)
        }
    }
}
